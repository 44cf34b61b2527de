/* Brackets each launch with the program's own CLOCK_MONOTONIC reads and prints them, for 80 ms (past the shim's
 * TSC calibration), so a test can check that the shim's timestamps are CLOCK_MONOTONIC. */
#include <stdio.h>
#include <time.h>

#include "tailguard/cuda_abi.h"

static unsigned long long mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(void) {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, "clock_kernel")) return 1;
    unsigned us = 0;
    void *params[] = {&us};
    unsigned long long start = mono();
    while (mono() - start < 80000000ull) {
        unsigned long long before = mono();
        if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL)) return 1;
        unsigned long long after = mono();
        printf("%llu %llu\n", before, after);
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
    }
    return cuCtxSynchronize() != CUDA_SUCCESS;
}
