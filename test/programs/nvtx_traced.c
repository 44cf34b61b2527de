/* NVTX ranges whose message is a W3C traceparent, as a server marks its requests: THREADS threads, each serving
 * REQUESTS requests, request r of thread t inside the push range 00-<7467 0000 0000 00tt, r+1>-<tt r+1>-01 with a
 * nested "infer" range around its two launches; the threads share one stream (so a sync ends the request window).
 * With "named", each request is one range instead, "infer <traceparent>": the range and the request at once.
 * Usage: nvtx_traced THREADS REQUESTS [named] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <nvtx3/nvToolsExt.h>

#include "tailguard/cuda_abi.h"

static CUcontext ctx;
static CUfunction fn;
static CUstream shared;
static int requests, named;

static void *worker(void *arg) {
    long id = (long)arg;
    if (cuCtxSetCurrent(ctx)) exit(1);
    unsigned us = 300;
    void *params[] = {&us};
    for (int r = 0; r < requests; r++) {
        char tp[64];
        snprintf(tp, sizeof tp, "00-%016llx%016llx-%016llx-01", 0x7467000000000000ull + (unsigned long long)id,
                 (unsigned long long)r + 1, ((unsigned long long)id + 1) << 32 | (unsigned)(r + 1));
        if (named) {
            char msg[80];
            snprintf(msg, sizeof msg, "infer %s", tp);
            nvtxRangePushA(msg);
        } else {
            nvtxRangePushA(tp);
            nvtxRangePushA("infer");
        }
        for (int k = 0; k < 2; k++)
            if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, shared, params, NULL)) exit(1);
        if (cuStreamSynchronize(shared)) exit(1);
        nvtxRangePop();
        if (!named) nvtxRangePop();
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    requests = argc > 2 ? atoi(argv[2]) : 5;
    named = argc > 3 && argv[3][0] == 'n';
    CUdevice dev;
    CUmodule mod;
    if (threads < 1 || threads > 64) return 2;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, "nvtx_kernel")) return 1;
    if (cuStreamCreate(&shared, CU_STREAM_NON_BLOCKING)) return 1;
    pthread_t t[64];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("requests=%d\n", threads * requests);
    return 0;
}
