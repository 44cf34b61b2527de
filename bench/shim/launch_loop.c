/* Launch-cost loop for `npm run bench:shim`: ROUNDS rounds of N launches of a 0-microsecond kernel on the simulated
 * GPU (through libcuda's exported symbols), a sync after each round. Prints the median ns per launch as JSON.
 * Usage: launch_loop N ROUNDS */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tailguard/cuda_abi.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000, rounds = argc > 2 ? atoi(argv[2]) : 9;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUstream s;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, "bench_kernel")) return 1;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) return 1;
    unsigned us = 0;
    void *params[] = {&us};
    for (int i = 0; i < 10000; i++) cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
    cuStreamSynchronize(s);
    double *ns = malloc(sizeof(double) * (size_t)rounds);
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
        double t1 = now_ns();
        cuStreamSynchronize(s);
        ns[r] = (t1 - t0) / n;
    }
    qsort(ns, (size_t)rounds, sizeof *ns, cmp);
    printf("{\"median_ns\":%.2f,\"best_ns\":%.2f}\n", ns[rounds / 2], ns[0]);
    return 0;
}
