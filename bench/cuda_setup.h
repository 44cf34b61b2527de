/* The CUDA setup the C benchmark loops share (bench/shim/launch_loop.c, bench/agent/producer.c): device 0's primary
 * context, a kernel "bench_kernel" (a 0-microsecond kernel on the simulated GPU; any handle on the do-nothing driver)
 * and a non-blocking stream. */
#ifndef TAILGUARD_BENCH_CUDA_SETUP_H
#define TAILGUARD_BENCH_CUDA_SETUP_H
#include "tailguard/cuda_abi.h"

/* 0 on success. */
static inline int bench_cuda_setup(CUfunction *fn, CUstream *s) {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(fn, mod, "bench_kernel")) return 1;
    return cuStreamCreate(s, CU_STREAM_NON_BLOCKING) != 0;
}
#endif
