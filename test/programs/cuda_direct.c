/* A program linked directly to libcuda (-lcuda): it calls the driver's exported symbols, so the shim must intercept
 * them as exported symbols. It exercises every kind of intercepted call and prints its own results, which must be the
 * same with and without the shim. Usage: cuda_direct LAUNCHES */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tailguard/cuda_abi.h"

#define CHECK(call)                                                                                              \
    do {                                                                                                         \
        CUresult r_ = (call);                                                                                    \
        if (r_ != CUDA_SUCCESS) {                                                                                \
            fprintf(stderr, "%s failed: %d\n", #call, r_);                                                       \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

static int host_calls;
void direct_host_callback(void *arg) { host_calls += *(int *)arg; }

int main(int argc, char **argv) {
    int launches = argc > 1 ? atoi(argv[1]) : 100;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction kernel_a, kernel_b;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "any image"));
    CHECK(cuModuleGetFunction(&kernel_a, mod, "direct_kernel_a"));
    CHECK(cuModuleGetFunction(&kernel_b, mod, "_Z15direct_kernel_bPfi")); /* a C++ mangled name */
    CUstream s1, s2;
    CHECK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK(cuStreamCreateWithPriority(&s2, CU_STREAM_NON_BLOCKING, -1));

    /* launches: grid and block encode the launch index so the test can check every field */
    for (int i = 0; i < launches; i++) {
        unsigned us = 1;
        void *params[] = {&us};
        CUstream s = (i % 2) ? s2 : s1;
        CHECK(cuLaunchKernel(i % 3 ? kernel_a : kernel_b, (unsigned)i + 1, 2, 3, 32, 4, 1, (unsigned)(i % 5) * 1024, s,
                             params, NULL));
    }
    unsigned us = 2;
    void *params[] = {&us};
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = 7, cfg.gridDimY = 8, cfg.gridDimZ = 9, cfg.blockDimX = 64, cfg.blockDimY = 2, cfg.blockDimZ = 1;
    cfg.hStream = s1;
    CHECK(cuLaunchKernelEx(&cfg, kernel_a, params, NULL));
    CHECK(cuLaunchCooperativeKernel(kernel_b, 4, 1, 1, 128, 1, 1, 0, s2, params));
    int add = 5;
    CHECK(cuLaunchHostFunc(s1, direct_host_callback, &add));

    /* a graph: captured launches are recorded as captured; the graph launch as one launch */
    CUgraph graph;
    CUgraphExec exec;
    CHECK(cuStreamBeginCapture_v2(s2, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuLaunchKernel(kernel_a, 1, 1, 1, 1, 1, 1, 0, s2, params, NULL));
    CHECK(cuLaunchKernel(kernel_b, 1, 1, 1, 1, 1, 1, 0, s2, params, NULL));
    CHECK(cuStreamEndCapture(s2, &graph));
    CHECK(cuGraphInstantiateWithFlags(&exec, graph, 0));
    CHECK(cuGraphLaunch(exec, s2));

    /* copies and memsets, synchronous and asynchronous, whose data the program checks */
    enum { N = 4096 };
    unsigned char *host = malloc(N), *back = malloc(N);
    for (int i = 0; i < N; i++) host[i] = (unsigned char)(i * 7 + 3);
    CUdeviceptr d1, d2;
    CHECK(cuMemAlloc_v2(&d1, N));
    CHECK(cuMemAlloc_v2(&d2, N));
    CHECK(cuMemcpyHtoD_v2(d1, host, N));
    CHECK(cuMemcpyDtoD_v2(d2, d1, N));
    CHECK(cuMemsetD8_v2(d1, 0x11, 16));
    CHECK(cuMemsetD32Async(d1 + 16, 0x22222222u, 4, s1));
    CHECK(cuMemcpyHtoDAsync_v2(d1 + 64, host, 64, s1));
    CHECK(cuMemcpyDtoHAsync_v2(back, d2, N, s1));

    /* events, waits, syncs */
    CUevent ev;
    CHECK(cuEventCreate(&ev, 0));
    CHECK(cuEventRecord(ev, s1));
    CHECK(cuStreamWaitEvent(s2, ev, 0));
    CHECK(cuEventSynchronize(ev));
    CHECK(cuStreamSynchronize(s1));
    CHECK(cuStreamSynchronize(s2));
    unsigned char tail[80];
    CHECK(cuMemcpyDtoH_v2(tail, d1, sizeof tail));
    CHECK(cuCtxSynchronize());
    CHECK(cuStreamDestroy_v2(s2));

    unsigned long sum = 0;
    for (int i = 0; i < N; i++) sum = sum * 31 + back[i];
    for (unsigned i = 0; i < sizeof tail; i++) sum = sum * 31 + tail[i];
    printf("checksum=%lx host_calls=%d launches=%d\n", sum, host_calls, launches);
    return 0;
}
