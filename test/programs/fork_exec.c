/* A parent that forks a child which execs this program again: both launch, each from its own process.
 * Usage: fork_exec LAUNCHES  (the exec'd child runs as: fork_exec --child LAUNCHES) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tailguard/cuda_abi.h"

static int launch_n(const char *kernel, int n) {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, kernel)) return 1;
    unsigned us = 0;
    void *params[] = {&us};
    for (int i = 0; i < n; i++)
        if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL)) return 1;
    return cuCtxSynchronize() != CUDA_SUCCESS;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--child")) return launch_n("child_kernel", atoi(argv[2]));
    int n = argc > 1 ? atoi(argv[1]) : 10;
    pid_t pid = fork();
    if (pid == 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", n * 2);
        execl("/proc/self/exe", argv[0], "--child", count, (char *)NULL);
        _exit(127);
    }
    int rc = launch_n("parent_kernel", n);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent=%d child_status=%d\n", rc, WEXITSTATUS(status));
    return rc || WEXITSTATUS(status);
}
