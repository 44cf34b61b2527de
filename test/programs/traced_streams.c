/* A server whose threads each launch on and sync only their own stream, under continuous load, every request with a
 * W3C trace context (tailguard/tailguard.h): the process's request window never ends while it runs (a window ends at a
 * sync that covers every stream it used), so each request's span must leave at the request's end (docs/tracing.md).
 * Usage: traced_streams THREADS SECONDS  -- each thread serves requests back to back for SECONDS; request r of thread
 *                                           t has the traceparent 00-<7473 0000 0000 00tt, r+1>-<(t+1)<<32 | r+1>-01.
 *                                           At exit, one line per thread: "thread T requests N".
 *        traced_streams THREADS SECONDS open  -- the same after a kernel on a stream of its own that nothing syncs:
 *                                           the window stays open from the start even with one thread; longer
 *                                           requests (2 × 3 ms), back to back. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_check.h"
#include "tailguard/tailguard.h"

static CUcontext ctx;
static CUfunction fn;
static double seconds;
static unsigned kernel_us = 400;
static long pause_ns = 300000;
static int served[64];
static pthread_barrier_t started;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg) {
    long id = (long)arg;
    CUstream own;
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuStreamCreate(&own, CU_STREAM_NON_BLOCKING));
    pthread_barrier_wait(&started);
    double end = now_s() + seconds;
    int r = 0;
    for (; now_s() < end; r++) {
        char tp[64];
        snprintf(tp, sizeof tp, "00-%016llx%016llx-%016llx-01", 0x7473000000000000ull + (unsigned long long)id,
                 (unsigned long long)r + 1, ((unsigned long long)id + 1) << 32 | (unsigned)(r + 1));
        if (tailguard_begin(tp, "infer") != 0) exit(3);
        unsigned us = kernel_us;
        void *params[] = {&us};
        for (int k = 0; k < 2; k++) CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, own, params, NULL));
        CHECK(cuStreamSynchronize(own)); /* its own stream only: the others' work stays in flight */
        if (tailguard_end() != 0) exit(3);
        struct timespec pause = {0, pause_ns};
        if (pause_ns) nanosleep(&pause, NULL);
    }
    served[id] = r;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    seconds = argc > 2 ? atof(argv[2]) : 3;
    if (threads < 1 || threads > 64 || seconds <= 0) return 2;
    if (tailguard_present() != TAILGUARD_ABI_VERSION) return 5;
    CUdevice dev;
    CUmodule mod;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "x"));
    CHECK(cuModuleGetFunction(&fn, mod, "traced_kernel"));
    if (argc > 3 && !strcmp(argv[3], "open")) {
        CUstream unsynced;
        unsigned us = 100;
        void *params[] = {&us};
        CHECK(cuStreamCreate(&unsynced, CU_STREAM_NON_BLOCKING));
        CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, unsynced, params, NULL));
        kernel_us = 3000;
        pause_ns = 0;
    }
    pthread_t t[64];
    pthread_barrier_init(&started, NULL, (unsigned)threads);
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < threads; i++) printf("thread %d requests %d\n", i, served[i]);
    return 0;
}
