/* Requests with W3C trace context, through tailguard/tailguard.h's dlsym wrappers (no link to the shim).
 * Usage: trace_context threads THREADS REQUESTS  -- each thread serves REQUESTS requests, request r of thread t with the
 *                                                  traceparent 00-<7467 0000 0000 00tt, r+1>-<tt r+1>-01 (`expected`)
 *        trace_context plain REQUESTS            -- requests without the ABI (the context is TRACEPARENT's, if any)
 *        trace_context fork                      -- a request of the parent (TP_A, "parent") open across fork: the
 *                                                  child serves one under it, then execs `plain 2` with TRACEPARENT=TP_B
 *        trace_context abi                       -- bad input to the ABI: every answer checked, "abi ok" at the end
 *        trace_context absent                    -- without the shim: the wrappers say so and the program runs */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tailguard/cuda_abi.h"
#include "tailguard/tailguard.h"

static CUcontext ctx;
static CUfunction fn;
/* the threads share one stream: a sync of it shows all their work done and ends the request window, which so holds
 * launches of several threads' requests at once (a stream per thread would keep one window open throughout) */
static CUstream shared;
static int requests;
static pthread_barrier_t started;

static void traceparent(char *out, size_t n, long thread, int request, const char *flags) {
    snprintf(out, n, "00-%016llx%016llx-%016llx-%s", 0x7467000000000000ull + (unsigned long long)thread,
             (unsigned long long)request + 1, ((unsigned long long)thread + 1) << 32 | (unsigned)(request + 1), flags);
}

static void request(CUstream s) {
    unsigned us = 300;
    void *params[] = {&us};
    for (int k = 0; k < 2; k++)
        if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, params, NULL)) exit(1);
    if (cuStreamSynchronize(s)) exit(1);
}

static void *worker(void *arg) {
    long id = (long)arg;
    if (cuCtxSetCurrent(ctx)) exit(1);
    pthread_barrier_wait(&started);
    for (int r = 0; r < requests; r++) {
        char tp[64];
        /* odd requests of thread 3 are not sampled by the app: the flag must reach the span */
        traceparent(tp, sizeof tp, id, r, id == 3 && r % 2 ? "00" : "01");
        if (tailguard_begin(tp, "infer") != 0) exit(3);
        request(shared);
        if (tailguard_end() != 0) exit(3);
    }
    return NULL;
}

/* a thread that exits with a request open: the shim ends it */
static void *leaves_open(void *arg) {
    (void)arg;
    if (tailguard_begin("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "left open") != 0) exit(3);
    return NULL;
}

static void setup(void) {
    CUdevice dev;
    CUmodule mod;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) exit(1);
    if (cuModuleLoadData(&mod, "x") || cuModuleGetFunction(&fn, mod, "traced_kernel")) exit(1);
}

#define CHECK(expr, want)                                                                                            \
    do {                                                                                                             \
        int got_ = (expr);                                                                                           \
        if (got_ != (want)) {                                                                                        \
            fprintf(stderr, "%s: %d, not %d\n", #expr, got_, (want));                                                \
            exit(4);                                                                                                 \
        }                                                                                                            \
    } while (0)

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "threads";
    if (!strcmp(mode, "threads")) {
        int threads = argc > 2 ? atoi(argv[2]) : 4;
        requests = argc > 3 ? atoi(argv[3]) : 10;
        if (threads < 1 || threads > 64) return 2;
        if (tailguard_present() != TAILGUARD_ABI_VERSION) return 5;
        setup();
        if (cuStreamCreate(&shared, CU_STREAM_NON_BLOCKING)) return 1;
        pthread_t t[64];
        pthread_barrier_init(&started, NULL, (unsigned)threads);
        for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        printf("requests=%d\n", threads * requests);
    } else if (!strcmp(mode, "plain")) {
        setup();
        CUstream s;
        if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) return 1;
        int n = argc > 2 ? atoi(argv[2]) : 5;
        for (int r = 0; r < n; r++) {
            request(s);
            struct timespec pause = {0, 2000000};
            nanosleep(&pause, NULL);
        }
        printf("requests=%d\n", n);
    } else if (!strcmp(mode, "fork")) {
        static const char tp_a[] = "00-000000000000000000000000000000aa-00000000000000a1-01";
        if (tailguard_begin(tp_a, "parent") != 0) return 3;
        pid_t child = fork();
        if (child < 0) return 1;
        setup();
        CUstream s;
        if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) return 1;
        request(s);
        if (tailguard_end() != 0) return 3;
        if (child == 0) {
            setenv("TRACEPARENT", "00-000000000000000000000000000000bb-00000000000000b1-01", 1);
            execl(argv[0], argv[0], "plain", "2", (char *)NULL);
            return 1;
        }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 6;
        printf("child=%d\n", (int)child);
    } else if (!strcmp(mode, "abi")) {
        static const char *const bad[] = {
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    /* short */
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",  /* version 00 is exactly 55 */
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   /* not hex */
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span id */
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* separator */
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* a later version: "-" after 55 */
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        };
        CHECK(tailguard_present(), TAILGUARD_ABI_VERSION);
        for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(tailguard_begin(bad[i], "bad"), -EINVAL);
        for (unsigned i = 1; i < sizeof bad / sizeof *bad; i++) CHECK(tailguard_process_context(bad[i]), -EINVAL);
        CHECK(tailguard_end(), -ENOENT); /* the bad ones opened nothing */
        /* a later version with more fields is read as version 00 */
        CHECK(tailguard_begin("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes", NULL), 0);
        CHECK(tailguard_end(), 0);
        for (int i = 0; i < TAILGUARD_MAX_DEPTH; i++) CHECK(tailguard_begin(NULL, "nested"), 0);
        CHECK(tailguard_begin(NULL, "too deep"), -EOVERFLOW);
        for (int i = 0; i < TAILGUARD_MAX_DEPTH; i++) CHECK(tailguard_end(), 0);
        CHECK(tailguard_end(), -ENOENT);
        CHECK(tailguard_process_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), 0);
        CHECK(tailguard_process_context(NULL), 0);
        CHECK(tailguard_process_context(""), 0);
        pthread_t t;
        if (pthread_create(&t, NULL, leaves_open, NULL) || pthread_join(t, NULL)) return 1;
        printf("abi ok\n");
    } else if (!strcmp(mode, "absent")) {
        CHECK(tailguard_present(), 0);
        CHECK(tailguard_begin("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x"), TAILGUARD_ABSENT);
        CHECK(tailguard_end(), TAILGUARD_ABSENT);
        CHECK(tailguard_process_context(NULL), TAILGUARD_ABSENT);
        setup();
        CUstream s;
        if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) return 1;
        request(s);
        printf("absent ok\n");
    } else
        return 2;
    return 0;
}
