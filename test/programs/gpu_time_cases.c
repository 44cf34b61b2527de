/* The bad cases of measured GPU time (test/native/gpu-time.test.ts): programs that must run unchanged while the shim
 * times their request windows. argv[1]:
 *   nosync   three requests of one 200 ms kernel, each waited for by polling the stream: prints the longest a launch
 *            took (ms) and the fewest polls a request needed (a sync inserted by the shim would make launches long
 *            or leave nothing to poll)
 *   destroy  a request whose stream is destroyed before the context sync, then a normal request
 *   capture  a stream captured into a graph (its launches do not run), the graph replayed on another stream and
 *            synchronised, then a normal request; then a request on the legacy stream while another stream captures
 *   fork     a request in flight when the process forks; the child makes a request of its own
 * Each prints "ok" last. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cuda_check.h"

static CUfunction fn;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void launch(CUstream s, uint32_t us) {
    void *p[] = {&us};
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, p, NULL));
}

static void request(uint32_t us) {
    CUstream s;
    CHECK(cuStreamCreate(&s, 0));
    launch(s, us);
    CHECK(cuStreamSynchronize(s));
    CHECK(cuStreamDestroy_v2(s));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    CUcontext ctx;
    CUmodule mod;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "image"));
    CHECK(cuModuleGetFunction(&fn, mod, "work"));
    if (!strcmp(mode, "nosync")) {
        CUstream s;
        CHECK(cuStreamCreate(&s, 0));
        double longest = 0;
        long fewest = -1;
        for (int i = 0; i < 3; i++) {
            double t0 = now_ms();
            launch(s, 200000);
            double t1 = now_ms();
            if (t1 - t0 > longest) longest = t1 - t0;
            long polls = 0;
            CUresult r;
            while ((r = cuStreamQuery(s)) == CUDA_ERROR_NOT_READY) {
                polls++;
                usleep(1000);
            }
            CHECK(r);
            if (fewest < 0 || polls < fewest) fewest = polls;
        }
        printf("longest launch %.3f ms, fewest polls %ld\n", longest, fewest);
    } else if (!strcmp(mode, "destroy")) {
        CUstream s;
        CHECK(cuStreamCreate(&s, 0));
        launch(s, 20000);
        CHECK(cuStreamDestroy_v2(s));
        CHECK(cuCtxSynchronize());
        request(2000);
    } else if (!strcmp(mode, "capture")) {
        CUstream s, r;
        CUgraph g;
        CUgraphExec x;
        CHECK(cuStreamCreate(&s, 0));
        CHECK(cuStreamCreate(&r, 0));
        CHECK(cuStreamBeginCapture_v2(s, 0));
        launch(s, 3000);
        launch(s, 3000);
        CHECK(cuStreamEndCapture(s, &g));
        CHECK(cuGraphInstantiateWithFlags(&x, g, 0));
        CHECK(cuGraphLaunch(x, r));
        CHECK(cuStreamSynchronize(r));
        CHECK(cuCtxSynchronize()); /* the window used s too (captured): only this ends it */
        request(2000);
        CHECK(cuStreamBeginCapture_v2(s, 0));
        launch(NULL, 2000); /* a record on the legacy stream now would invalidate the capture */
        CHECK(cuStreamSynchronize(NULL));
        CHECK(cuStreamEndCapture(s, &g));
    } else if (!strcmp(mode, "fork")) {
        CUstream s;
        CHECK(cuStreamCreate(&s, 0));
        launch(s, 50000);
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            request(2000);
            printf("child ok\n");
            fflush(stdout);
            _exit(0);
        }
        CHECK(cuStreamSynchronize(s));
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "the child failed (status %d)\n", status);
            return 3;
        }
        request(2000);
    } else {
        fprintf(stderr, "usage: gpu_time_cases nosync|destroy|capture|fork\n");
        return 2;
    }
    printf("ok\n");
    return 0;
}
