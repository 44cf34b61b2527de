/* Exercises the simulated GPU's CUDA face (test/native/sim.test.ts). One program, one mode per test:
 *   identity | durations N US | names | streams | run N US NAME | copies | graph | hostfunc | errors | cost N
 * Prints key=value lines for the test to check; exits non-zero with a message on the first failed call. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/cuda_abi.h"

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        CUresult rc_ = (call);                                                                                         \
        if (rc_ != CUDA_SUCCESS) {                                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, rc_);                                 \
            exit(2);                                                                                                   \
        }                                                                                                              \
    } while (0)
#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                                        \
            exit(3);                                                                                                   \
        }                                                                                                              \
    } while (0)

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static CUfunction function(const char *name) {
    static CUmodule module;
    if (!module) {
        static const char image[] = "not a real cubin";
        CHECK(cuModuleLoadData(&module, image));
    }
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, module, name));
    return f;
}

/* A kernel that occupies the device for `us` microseconds (its first parameter). */
static void launch(CUfunction f, uint32_t us, CUstream s) {
    void *params[] = {&us};
    CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL));
}

static void identity(void) {
    int count = -1;
    EXPECT(cuDeviceGetCount(&count) == CUDA_ERROR_NOT_INITIALIZED);
    int version = 0;
    CHECK(cuDriverGetVersion(&version)); /* allowed before cuInit, as in the real driver */
    CHECK(cuInit(0));
    CHECK(cuDeviceGetCount(&count));
    CUdevice dev;
    CHECK(cuDeviceGet(&dev, 0));
    EXPECT(cuDeviceGet(&dev, 1) == CUDA_ERROR_INVALID_DEVICE);
    char name[128], bus[32];
    CHECK(cuDeviceGetName(name, sizeof name, dev));
    CHECK(cuDeviceGetPCIBusId(bus, sizeof bus, dev));
    CUuuid u1, u2;
    CHECK(cuDeviceGetUuid(&u1, dev));
    CHECK(cuDeviceGetUuid_v2(&u2, dev));
    EXPECT(memcmp(&u1, &u2, sizeof u1) == 0);
    size_t mem;
    CHECK(cuDeviceTotalMem_v2(&mem, dev));
    int sms, major, minor;
    CHECK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
    CHECK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    CHECK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    CUcontext ctx, cur;
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuCtxGetCurrent(&cur));
    EXPECT(cur == ctx);
    printf("count=%d\nversion=%d\nname=%s\nbus=%s\nmem=%zu\nsms=%d\ncc=%d.%d\nuuid=", count, version, name, bus, mem,
           sms, major, minor);
    for (int i = 0; i < 16; i++) printf("%02x", (unsigned char)u1.bytes[i]);
    printf("\n");
    CHECK(cuDevicePrimaryCtxRelease_v2(dev));
}

static void durations(int n, uint32_t us) {
    CHECK(cuInit(0));
    CUfunction f = function("sleepy");
    launch(f, 0, NULL); /* starts the worker: not part of what is measured */
    CHECK(cuCtxSynchronize());
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) launch(f, us, NULL);
    uint64_t submitted = now_ns();
    CHECK(cuCtxSynchronize());
    uint64_t t1 = now_ns();
    printf("total_ns=%" PRIu64 "\nsubmit_ns=%" PRIu64 "\n", t1 - t0, submitted - t0);

    CUevent a, b;
    CUstream s;
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK(cuEventCreate(&a, 0));
    CHECK(cuEventCreate(&b, 0));
    CHECK(cuEventRecord(a, s));
    launch(f, us, s);
    CHECK(cuEventRecord(b, s));
    printf("query_early=%d\nstream_query_early=%d\n", cuEventQuery(b), cuStreamQuery(s));
    float early;
    printf("elapsed_early=%d\n", cuEventElapsedTime(&early, a, b));
    CHECK(cuEventSynchronize(b));
    CHECK(cuEventQuery(b));
    CHECK(cuStreamQuery(s));
    float ms = -1;
    CHECK(cuEventElapsedTime(&ms, a, b));
    printf("event_ms=%.4f\n", ms);
    CHECK(cuEventDestroy_v2(a));
    CHECK(cuEventDestroy_v2(b));
    CHECK(cuStreamDestroy_v2(s));
}

static void names(void) {
    CHECK(cuInit(0));
    unsigned char image[64];
    for (unsigned i = 0; i < sizeof image; i++) image[i] = (unsigned char)(i * 37 + 11); /* any image loads */
    CUmodule m1, m2;
    CHECK(cuModuleLoadData(&m1, image));
    CHECK(cuModuleLoadData(&m2, "\x7f" "ELF garbage"));
    const char *wanted[] = {"_Z6kernelPfi", "void at::native::vectorized_elementwise_kernel<4>(int)", "x", ""};
    for (unsigned i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        CUfunction f, again, other;
        CHECK(cuModuleGetFunction(&f, m1, wanted[i]));
        CHECK(cuModuleGetFunction(&again, m1, wanted[i]));
        CHECK(cuModuleGetFunction(&other, m2, wanted[i]));
        EXPECT(f == again);
        const char *name = NULL;
        CHECK(cuFuncGetName(&name, f));
        EXPECT(name && strcmp(name, wanted[i]) == 0);
        CHECK(cuFuncGetName(&name, other));
        EXPECT(strcmp(name, wanted[i]) == 0);
        printf("name=%s\n", name);
    }
    CUfunction f;
    EXPECT(cuModuleGetFunction(&f, NULL, "k") == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuModuleGetFunction(NULL, m1, "k") == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuModuleLoadData(NULL, image) == CUDA_ERROR_INVALID_VALUE);
    const char *name;
    EXPECT(cuFuncGetName(&name, NULL) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuFuncGetName(NULL, f) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuModuleUnload(m2));
    EXPECT(cuModuleUnload(m2) == CUDA_ERROR_INVALID_HANDLE);
    printf("ok\n");
}

/* Kernels of varying length spread over several streams (and the legacy and per-thread default streams); the test
 * checks each stream's order in the trace. Host functions record the order in which they ran. */
static int host_order[64], host_count;
static void host_mark(void *arg) { host_order[host_count++] = (int)(intptr_t)arg; }

static void *other_thread(void *arg) {
    CUfunction f = function("pt_other");
    for (int i = 0; i < 3; i++) {
        uint32_t us = 100;
        void *params[] = {&us};
        CHECK(cuLaunchKernel_ptsz(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
    }
    CHECK(cuStreamSynchronize_ptsz(NULL));
    return arg;
}

static void streams(void) {
    CHECK(cuInit(0));
    enum { NS = 4, PER = 12 };
    CUstream s[NS];
    for (int i = 0; i < NS; i++) {
        if (i == 0) s[i] = NULL;
        else if (i == 1) CHECK(cuStreamCreateWithPriority(&s[i], CU_STREAM_NON_BLOCKING, -1));
        else CHECK(cuStreamCreate(&s[i], 0));
        printf("stream %d 0x%" PRIxPTR "\n", i, (uintptr_t)s[i]);
    }
    char name[32];
    int hosts = 0;
    for (int j = 0; j < PER; j++)
        for (int i = 0; i < NS; i++) {
            int k = (i + j) % NS;
            snprintf(name, sizeof name, "k%d_%d", k, j);
            uint32_t us = (uint32_t)((j * 7 + k * 3) % 5) * 150;
            void *params[] = {&us};
            if ((i + j) % 3 == 0) {
                CUlaunchConfig cfg = {1, 1, 1, 64, 1, 1, 0, s[k], NULL, 0};
                CHECK(cuLaunchKernelEx(&cfg, function(name), params, NULL));
            } else if ((i + j) % 3 == 1) {
                CHECK(cuLaunchCooperativeKernel(function(name), 2, 1, 1, 64, 1, 1, 0, s[k], params));
            } else {
                size_t size = sizeof us;
                void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &us, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                                 CU_LAUNCH_PARAM_END};
                CHECK(cuLaunchKernel(function(name), 4, 1, 1, 64, 1, 1, 0, s[k], NULL, extra));
            }
            if (j % 4 == 3 && i == 0) CHECK(cuLaunchHostFunc(s[k], host_mark, (void *)(intptr_t)hosts++));
        }
    /* The per-thread default stream of this thread (cuStreamPerThread) and of another thread. */
    for (int j = 0; j < 3; j++) {
        uint32_t us = 50;
        void *params[] = {&us};
        CHECK(cuLaunchKernel(function("pt_main"), 1, 1, 1, 1, 1, 1, 0, CU_STREAM_PER_THREAD, params, NULL));
    }
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    for (int i = 1; i < NS; i++) CHECK(cuStreamSynchronize(s[i]));
    CHECK(cuCtxSynchronize());
    EXPECT(host_count == hosts);
    for (int i = 0; i < host_count; i++) EXPECT(host_order[i] == i);
    for (int i = 1; i < NS; i++) CHECK(cuStreamDestroy_v2(s[i]));
    printf("ok\n");
}

/* N kernels named NAME of US microseconds on the legacy stream, back to back, then one synchronisation. */
static void run(int n, uint32_t us, const char *name) {
    CHECK(cuInit(0));
    CUfunction f = function(name);
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) launch(f, us, NULL);
    printf("launched\n");
    fflush(stdout);
    CHECK(cuCtxSynchronize());
    printf("total_ns=%" PRIu64 "\n", now_ns() - t0);
}

static int bytes_equal(const unsigned char *a, int value, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != (unsigned char)value) return 0;
    return 1;
}

static void copies(void) {
    CHECK(cuInit(0));
    enum { N = 4096 };
    unsigned char *host = malloc(N), *back = malloc(N);
    for (int i = 0; i < N; i++) host[i] = (unsigned char)(i * 7);
    CUdeviceptr a, b;
    CHECK(cuMemAlloc_v2(&a, N));
    CHECK(cuMemAlloc_v2(&b, N));
    EXPECT(cuMemAlloc_v2(&b, 0) == CUDA_ERROR_INVALID_VALUE);
    /* synchronous */
    CHECK(cuMemcpyHtoD_v2(a, host, N));
    CHECK(cuMemcpyDtoD_v2(b, a, N));
    memset(back, 0, N);
    CHECK(cuMemcpyDtoH_v2(back, b, N));
    EXPECT(memcmp(back, host, N) == 0);
    CHECK(cuMemcpy(a, b, N));
    CHECK(cuMemcpyPeer(b, NULL, a, NULL, N));
    CHECK(cuMemcpyDtoH_v2_ptds(back, b, N));
    EXPECT(memcmp(back, host, N) == 0);
    CHECK(cuMemsetD8_v2(a, 0x5a, N));
    CHECK(cuMemcpyDtoH_v2(back, a, N));
    EXPECT(bytes_equal(back, 0x5a, N));
    CHECK(cuMemsetD16_v2(a, 0x1234, N / 2));
    CHECK(cuMemsetD32_v2_ptds(b, 0xdeadbeef, N / 4));
    uint16_t w16;
    uint32_t w32;
    memcpy(&w16, (void *)(uintptr_t)(a + N - 2), 2);
    memcpy(&w32, (void *)(uintptr_t)(b + N - 4), 4);
    EXPECT(w16 == 0x1234 && w32 == 0xdeadbeef);
    EXPECT(cuMemsetD32_v2(a + 1, 0, 4) == CUDA_ERROR_INVALID_VALUE); /* misaligned */

    /* asynchronous, in stream order behind a long kernel */
    CUstream s;
    CHECK(cuStreamCreate(&s, 0));
    uint32_t us = 30000;
    void *params[] = {&us};
    CHECK(cuLaunchKernel(function("before_copy"), 1, 1, 1, 1, 1, 1, 0, s, params, NULL));
    memset(back, 0, N);
    CHECK(cuMemsetD8Async(a, 0x11, N, s));
    CHECK(cuMemcpyDtoDAsync_v2(b, a, N, s));
    CHECK(cuMemcpyDtoHAsync_v2(back, b, N, s));
    EXPECT(bytes_equal(back, 0, N)); /* still behind the kernel */
    EXPECT(cuStreamQuery(s) == CUDA_ERROR_NOT_READY);
    CHECK(cuStreamSynchronize(s));
    EXPECT(bytes_equal(back, 0x11, N));
    CHECK(cuMemcpyHtoDAsync_v2(a, host, N, s));
    CHECK(cuMemcpyAsync(b, a, N, s));
    CHECK(cuMemcpyPeerAsync(a, NULL, b, NULL, N, s));
    CHECK(cuMemcpyDtoHAsync_v2_ptsz(back, a, N, s));
    CHECK(cuStreamSynchronize(s));
    EXPECT(memcmp(back, host, N) == 0);
    CHECK(cuMemsetD16Async(a, 0xabcd, N / 2, s));
    CHECK(cuMemsetD32Async_ptsz(b, 0x01020304, N / 4, s));
    CHECK(cuStreamSynchronize(s));
    memcpy(&w16, (void *)(uintptr_t)(a + 6), 2);
    memcpy(&w32, (void *)(uintptr_t)(b + 8), 4);
    EXPECT(w16 == 0xabcd && w32 == 0x01020304);

    /* 2D: a 5 x 7 window of a pitched device matrix, to and from host, sync and async; and 2D fills */
    enum { W = 5, H = 7, DP = 64, HP = 16 };
    unsigned char src2[HP * H], dst2[HP * H];
    for (int i = 0; i < HP * H; i++) src2[i] = (unsigned char)(i + 1);
    CUdeviceptr m;
    CHECK(cuMemAlloc_v2(&m, DP * (H + 2)));
    CHECK(cuMemsetD8_v2(m, 0, DP * (H + 2)));
    CUDA_MEMCPY2D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = src2;
    c.srcPitch = HP;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = m;
    c.dstPitch = DP;
    c.dstXInBytes = 3;
    c.dstY = 1;
    c.WidthInBytes = W;
    c.Height = H;
    CHECK(cuMemcpy2D_v2(&c));
    const unsigned char *dm = (const unsigned char *)(uintptr_t)m;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) EXPECT(dm[(y + 1) * DP + 3 + x] == src2[y * HP + x]);
    EXPECT(dm[DP + 2] == 0 && dm[DP + 3 + W] == 0 && dm[0] == 0);
    CUDA_MEMCPY2D r = {0};
    r.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    r.srcDevice = m;
    r.srcPitch = DP;
    r.srcXInBytes = 3;
    r.srcY = 1;
    r.dstMemoryType = CU_MEMORYTYPE_HOST;
    r.dstHost = dst2;
    r.dstPitch = HP;
    r.WidthInBytes = W;
    r.Height = H;
    memset(dst2, 0, sizeof dst2);
    CHECK(cuMemcpy2DAsync_v2(&r, s));
    CHECK(cuStreamSynchronize(s));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) EXPECT(dst2[y * HP + x] == src2[y * HP + x]);
    CHECK(cuMemsetD2D8Async(m, DP, 0xee, 4, 3, s));
    CHECK(cuMemsetD2D32Async_ptsz(m + 32, DP, 0x11223344, 2, 2, s));
    CHECK(cuStreamSynchronize(s));
    EXPECT(dm[0] == 0xee && dm[2 * DP + 3] == 0xee && dm[2 * DP + 4] != 0xee && dm[3 * DP] != 0xee);
    memcpy(&w32, dm + DP + 36, 4);
    EXPECT(w32 == 0x11223344);
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    EXPECT(cuMemcpy2D_v2(&c) == CUDA_ERROR_NOT_SUPPORTED);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcPitch = 2; /* smaller than the width */
    EXPECT(cuMemcpy2D_v2(&c) == CUDA_ERROR_INVALID_VALUE);

    /* 3D: 2 slices of 3 rows of 4 bytes, host → device → host */
    unsigned char src3[2 * 3 * 8], dst3[2 * 3 * 8];
    for (unsigned i = 0; i < sizeof src3; i++) src3[i] = (unsigned char)(200 - i);
    CUdeviceptr v;
    CHECK(cuMemAlloc_v2(&v, 2 * 4 * 16));
    CUDA_MEMCPY3D d = {0};
    d.srcMemoryType = CU_MEMORYTYPE_HOST;
    d.srcHost = src3;
    d.srcPitch = 8;
    d.srcHeight = 3;
    d.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    d.dstDevice = v;
    d.dstPitch = 16;
    d.dstHeight = 4;
    d.WidthInBytes = 4;
    d.Height = 3;
    d.Depth = 2;
    CHECK(cuMemcpy3D_v2(&d));
    CUDA_MEMCPY3D e = {0};
    e.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
    e.srcDevice = v;
    e.srcPitch = 16;
    e.srcHeight = 4;
    e.dstMemoryType = CU_MEMORYTYPE_HOST;
    e.dstHost = dst3;
    e.dstPitch = 8;
    e.dstHeight = 3;
    e.WidthInBytes = 4;
    e.Height = 3;
    e.Depth = 2;
    memset(dst3, 0, sizeof dst3);
    CHECK(cuMemcpy3DAsync_v2(&e, s));
    CHECK(cuStreamSynchronize(s));
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++) EXPECT(dst3[z * 24 + y * 8 + x] == src3[z * 24 + y * 8 + x]);

    CHECK(cuStreamDestroy_v2(s));
    CHECK(cuMemFree_v2(a));
    CHECK(cuMemFree_v2(b));
    CHECK(cuMemFree_v2(m));
    CHECK(cuMemFree_v2(v));
    EXPECT(cuMemFree_v2(v) == CUDA_ERROR_INVALID_VALUE); /* double free is refused */
    free(host);
    free(back);
    printf("ok\n");
}

static _Atomic int graph_hosts;
static void graph_host(void *arg) { graph_hosts++; }

static void graph(void) {
    CHECK(cuInit(0));
    CUstream s, side;
    CHECK(cuStreamCreate(&s, 0));
    CHECK(cuStreamCreate(&side, 0));
    CUgraph g;
    EXPECT(cuStreamEndCapture(s, &g) == 401);                                         /* not capturing */
    EXPECT(cuStreamBeginCapture_v2(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    EXPECT(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == 401);        /* already capturing */
    uint64_t t0 = now_ns();
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "g%d", i);
        launch(function(name), 4000, s);
    }
    CHECK(cuLaunchHostFunc(s, graph_host, NULL));
    /* fork/join: a second stream joins the capture through an event */
    CUevent fork, join;
    CHECK(cuEventCreate(&fork, 0));
    CHECK(cuEventCreate(&join, 0));
    CHECK(cuEventRecord(fork, s));
    CHECK(cuStreamWaitEvent(side, fork, 0));
    launch(function("g_side"), 1000, side);
    CHECK(cuEventRecord(join, side));
    CHECK(cuStreamWaitEvent(s, join, 0));
    EXPECT(cuStreamSynchronize(s) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK(cuStreamEndCapture(s, &g));
    uint64_t captured = now_ns() - t0;
    EXPECT(graph_hosts == 0);
    CHECK(cuCtxSynchronize());
    EXPECT(graph_hosts == 0); /* nothing ran while capturing */
    CUgraphExec x;
    CHECK(cuGraphInstantiateWithFlags(&x, g, 0));
    t0 = now_ns();
    CHECK(cuGraphLaunch(x, s));
    CHECK(cuGraphLaunch(x, s));
    CHECK(cuStreamSynchronize(s));
    uint64_t ran = now_ns() - t0;
    EXPECT(graph_hosts == 2);
    CHECK(cuGraphExecDestroy(x));
    CHECK(cuGraphDestroy(g));
    EXPECT(cuGraphExecDestroy(x) == CUDA_ERROR_INVALID_HANDLE);
    /* A stream destroyed while capturing: a capture it joined goes on; one it began is abandoned. */
    CUstream tmp;
    CUgraph g2;
    CHECK(cuStreamCreate(&tmp, 0));
    CHECK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK(cuEventRecord(fork, s));
    CHECK(cuStreamWaitEvent(tmp, fork, 0));
    launch(function("joined_then_destroyed"), 1000, tmp);
    CHECK(cuStreamDestroy_v2(tmp));
    CHECK(cuStreamEndCapture(s, &g2));
    CHECK(cuGraphDestroy(g2));
    CHECK(cuStreamCreate(&tmp, 0));
    CHECK(cuStreamBeginCapture_v2(tmp, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    CHECK(cuStreamWaitEvent(side, fork, 0)); /* fork was last recorded into the capture of s, which has ended */
    launch(function("abandoned"), 1000, tmp);
    CHECK(cuStreamDestroy_v2(tmp));
    CHECK(cuCtxSynchronize());
    EXPECT(cuStreamBeginCapture_v2(s, 7) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuEventDestroy_v2(fork));
    CHECK(cuEventDestroy_v2(join));
    printf("stream=0x%" PRIxPTR "\ncapture_ns=%" PRIu64 "\nlaunch_ns=%" PRIu64 "\nok\n", (uintptr_t)s, captured, ran);
}

static void errors(void) {
    const char *str;
    CHECK(cuGetErrorName(CUDA_ERROR_INVALID_HANDLE, &str));
    EXPECT(strcmp(str, "CUDA_ERROR_INVALID_HANDLE") == 0);
    CHECK(cuGetErrorString(CUDA_ERROR_NOT_READY, &str));
    EXPECT(cuGetErrorString(12345, &str) == CUDA_ERROR_INVALID_VALUE);
    CUfunction f = NULL;
    EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_ERROR_NOT_INITIALIZED);
    CHECK(cuInit(0));
    EXPECT(cuInit(1) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_ERROR_INVALID_HANDLE);
    f = function("k");
    EXPECT(cuLaunchKernel(f, 0, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuLaunchKernel(f, 1, 1, 1, 1024, 2, 1, 0, NULL, NULL, NULL) == CUDA_ERROR_INVALID_VALUE);
    CUstream bogus = (CUstream)(void *)&str;
    EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, bogus, NULL, NULL) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuStreamDestroy_v2(NULL) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuStreamCreate(NULL, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuEventCreate(NULL, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuEventRecord(NULL, NULL) == CUDA_ERROR_INVALID_HANDLE);
    CUevent e1, e2;
    CHECK(cuEventCreate(&e1, 0));
    CHECK(cuEventCreate(&e2, 0x2 /* disable timing */));
    CHECK(cuEventQuery(e1)); /* never recorded: complete */
    float ms;
    EXPECT(cuEventElapsedTime(&ms, e1, e1) == CUDA_ERROR_INVALID_HANDLE); /* never recorded */
    CHECK(cuEventRecord(e1, NULL));
    CHECK(cuEventRecord(e2, NULL));
    CHECK(cuEventSynchronize(e2));
    EXPECT(cuEventElapsedTime(&ms, e1, e2) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuEventElapsedTime(NULL, e1, e1) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuEventDestroy_v2(e1));
    EXPECT(cuEventDestroy_v2(e1) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuDeviceGetName(NULL, 10, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuDeviceGetUuid(NULL, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuDeviceGetAttribute(NULL, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuCtxGetCurrent(NULL) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemAlloc_v2(NULL, 16) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyHtoD_v2(0, &ms, 4) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuGraphLaunch(NULL, NULL) == CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuGraphInstantiateWithFlags(NULL, NULL, 0) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuLaunchHostFunc(NULL, NULL, NULL) == CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuStreamWaitEvent(NULL, NULL, 0) == CUDA_ERROR_INVALID_HANDLE);
    printf("ok\n");
}

/* Cost of a 0 µs launch on the legacy stream: the median over batches, in nanoseconds per launch. */
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void cost(int batches) {
    CHECK(cuInit(0));
    CUfunction f = function("empty");
    enum { BATCH = 500 };
    uint64_t *per = malloc(sizeof *per * (size_t)batches);
    uint32_t us = 0;
    void *params[] = {&us};
    for (int i = 0; i < 20000; i++) CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL)); /* warm up */
    CHECK(cuCtxSynchronize());
    for (int b = 0; b < batches; b++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < BATCH; i++) CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
        per[b] = (now_ns() - t0) / BATCH;
        if (b % 2) CHECK(cuCtxSynchronize()); /* half the batches start with a sleeping worker */
    }
    CHECK(cuCtxSynchronize());
    qsort(per, (size_t)batches, sizeof *per, cmp_u64);
    printf("median_ns=%" PRIu64 "\np10_ns=%" PRIu64 "\np90_ns=%" PRIu64 "\n", per[batches / 2], per[batches / 10],
           per[batches * 9 / 10]);
    free(per);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "identity")) identity();
    else if (!strcmp(mode, "durations") && argc == 4) durations(atoi(argv[2]), (uint32_t)atoi(argv[3]));
    else if (!strcmp(mode, "names")) names();
    else if (!strcmp(mode, "streams")) streams();
    else if (!strcmp(mode, "run") && argc == 5) run(atoi(argv[2]), (uint32_t)atoi(argv[3]), argv[4]);
    else if (!strcmp(mode, "copies")) copies();
    else if (!strcmp(mode, "graph")) graph();
    else if (!strcmp(mode, "errors")) errors();
    else if (!strcmp(mode, "cost") && argc == 3) cost(atoi(argv[2]));
    else {
        fprintf(stderr, "usage: %s identity|durations N US|names|streams|run N US NAME|copies|graph|errors|cost N\n",
                argv[0]);
        return 64;
    }
    return 0;
}
