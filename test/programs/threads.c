/* Many threads launching at once: THREADS threads x LAUNCHES launches, each thread on its own stream; with WAVES, that
 * many waves one after another (each wave's threads exit before the next starts).
 * Usage: threads THREADS LAUNCHES [WAVES] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tailguard/cuda_abi.h"

static int per_thread;
static CUcontext ctx;
static CUfunction fn;
/* All of a wave's threads have their stream (and so their lane) before any launches, and none exits (handing its lane
 * on) before all have synced: each thread of a wave records into a lane of its own however the OS schedules them. */
static pthread_barrier_t started, finished;

static void *worker(void *arg) {
    long id = (long)arg;
    CUstream s;
    if (cuCtxSetCurrent(ctx) || cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) exit(1);
    pthread_barrier_wait(&started);
    unsigned us = 0;
    void *params[] = {&us};
    for (int i = 0; i < per_thread; i++)
        /* grid.x carries the sequence number and grid.y the thread, so the test can check order per thread */
        if (cuLaunchKernel(fn, (unsigned)i + 1, (unsigned)id + 1, 1, 1, 1, 1, 0, s, params, NULL)) exit(1);
    if (cuStreamSynchronize(s)) exit(1);
    pthread_barrier_wait(&finished);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 8;
    per_thread = argc > 2 ? atoi(argv[2]) : 1000;
    CUdevice dev;
    CUmodule mod;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, "threaded_kernel")) return 1;
    int waves = argc > 3 ? atoi(argv[3]) : 1;
    pthread_t t[256];
    if (threads < 1 || threads > 256) return 2;
    pthread_barrier_init(&started, NULL, (unsigned)threads);
    pthread_barrier_init(&finished, NULL, (unsigned)threads);
    for (int w = 0; w < waves; w++) {
        /* grid.y numbers the thread across all waves */
        for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(w * threads + i));
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    }
    printf("threads=%d launches=%d\n", threads * waves, threads * waves * per_thread);
    return 0;
}
