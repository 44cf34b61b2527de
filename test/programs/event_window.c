/* Request windows and events (test/native/sched.test.ts): kernel A, event E1 recorded after it, kernel B, then E1 is waited
 * for (synchronised, or queried until complete: argv[1] = "sync" | "query") while B still runs, then the stream is
 * synchronised. Only the stream sync shows all the work complete, so the process must stay busy until then: one
 * request window, ending after the stream sync began. Prints the CLOCK_MONOTONIC time at which that sync began. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_check.h"

int main(int argc, char **argv) {
    int query = argc > 1 && !strcmp(argv[1], "query");
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUstream s;
    CUevent e1;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "image"));
    CHECK(cuModuleGetFunction(&fn, mod, "work"));
    CHECK(cuStreamCreate(&s, 0));
    CHECK(cuEventCreate(&e1, 0));
    uint32_t a = 5000, b = 50000; /* microseconds */
    void *pa[] = {&a}, *pb[] = {&b};
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, pa, NULL));
    CHECK(cuEventRecord(e1, s));
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, pb, NULL));
    if (query) {
        CUresult r;
        while ((r = cuEventQuery(e1)) == CUDA_ERROR_NOT_READY) {
        }
        CHECK(r);
    } else {
        CHECK(cuEventSynchronize(e1));
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    CHECK(cuStreamSynchronize(s));
    printf("%lld\n", (long long)t.tv_sec * 1000000000ll + t.tv_nsec);
    return 0;
}
