/* Per-kernel device time (test/native/kernel-timing.test.ts): kernels of known simulated durations, launched while
 * the shim times them through CUPTI (TAILGUARD_KERNEL_TIMING). argv[1]:
 *   loop N  N rounds of a 1 ms and a 3 ms kernel on one stream, an async copy and memset, then a stream sync
 *   traced N  the same rounds, each a request with a trace context of its own (tailguard_begin/end)
 *   graph   a graph of a 1 ms and a 2 ms kernel, captured and replayed twice
 *   fork    a round in the parent, then a forked child makes a round of its own (it must run unchanged)
 * Prints "cupti <0|1>" (whether a libcupti is mapped into the process) and "ok" last. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_check.h"
#include "tailguard/tailguard.h"

static CUfunction fn;
static char host[4096];
static CUdeviceptr dev;

static void launch(CUstream s, uint32_t us) {
    void *p[] = {&us};
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, p, NULL));
}

static void round_on(CUstream s) {
    launch(s, 1000);
    launch(s, 3000);
    CHECK(cuMemcpyHtoDAsync_v2(dev, host, sizeof host, s));
    CHECK(cuMemsetD8Async(dev, 0, sizeof host, s));
    CHECK(cuStreamSynchronize(s));
}

static int cupti_mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "libcupti")) found = 1;
    if (f) fclose(f);
    return found;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "loop";
    CUcontext ctx;
    CUmodule mod;
    CUstream s;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "image"));
    CHECK(cuModuleGetFunction(&fn, mod, "work"));
    CHECK(cuMemAlloc_v2(&dev, sizeof host));
    CHECK(cuStreamCreate(&s, 0));
    if (!strcmp(mode, "loop")) {
        int n = argc > 2 ? atoi(argv[2]) : 10;
        for (int i = 0; i < n; i++) round_on(s);
    } else if (!strcmp(mode, "traced")) {
        int n = argc > 2 ? atoi(argv[2]) : 10;
        for (int i = 0; i < n; i++) {
            char tp[64];
            snprintf(tp, sizeof tp, "00-%032x-%016x-01", i + 1, i + 1);
            if (tailguard_begin(tp, "infer") != 0) fprintf(stderr, "request %d not begun\n", i);
            round_on(s);
            tailguard_end();
        }
    } else if (!strcmp(mode, "graph")) {
        CUgraph g;
        CUgraphExec x;
        CHECK(cuStreamBeginCapture_v2(s, 0));
        launch(s, 1000);
        launch(s, 2000);
        CHECK(cuStreamEndCapture(s, &g));
        CHECK(cuGraphInstantiateWithFlags(&x, g, 0));
        for (int i = 0; i < 2; i++) CHECK(cuGraphLaunch(x, s));
        CHECK(cuStreamSynchronize(s));
    } else if (!strcmp(mode, "fork")) {
        round_on(s);
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            /* the simulated GPU, like a driver that allows it, runs in the child: a round of its own */
            CUstream cs;
            CHECK(cuStreamCreate(&cs, 0));
            round_on(cs);
            printf("child ok\n");
            fflush(stdout);
            _exit(0);
        }
        int st = 0;
        waitpid(child, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child failed: %d\n", st);
            return 3;
        }
        round_on(s);
    }
    printf("cupti %d\n", cupti_mapped());
    printf("ok\n");
    return 0;
}
