/* Exercises the simulated GPU's HIP face (test/native/sim.test.ts): launches by host function pointer, module launches
 * (kernelParams and `extra`), the hipExt* launches with their events, copies and fills, synchronisation, graphs and
 * names. Prints key=value lines; exits non-zero with a message on the first failed call. Built with -rdynamic, so
 * dladdr can name the kernel stubs below. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tailguard/hip_abi.h"

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        hipError_t rc_ = (call);                                                                                       \
        if (rc_ != hipSuccess) {                                                                                       \
            fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", __FILE__, __LINE__, #call, rc_, hipGetErrorString(rc_));    \
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

/* Host-side stubs standing in for __global__ functions: only their addresses matter. */
void sim_hip_stub_a(void) {}
void sim_hip_stub_b(void) { puts("never called"); }

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int counter;
static void host_fn(void *arg) { counter += (int)(intptr_t)arg; }

int main(void) {
    dim3 one = {1, 1, 1}, block = {256, 1, 1};
    int count = 0, dev = -1, version = 0;
    CHECK(hipGetDeviceCount(&count)); /* no hipInit needed */
    CHECK(hipInit(0));
    CHECK(hipSetDevice(0));
    EXPECT(hipSetDevice(1) == hipErrorInvalidDevice);
    CHECK(hipGetDevice(&dev));
    CHECK(hipDriverGetVersion(&version));
    char name[64], bus[32];
    CHECK(hipDeviceGetName(name, sizeof name, 0));
    CHECK(hipDeviceGetPCIBusId(bus, sizeof bus, 0));
    hipUUID uuid;
    CHECK(hipDeviceGetUuid(&uuid, 0));
    printf("count=%d\ndevice=%d\nversion=%d\nname=%s\nbus=%s\nuuid=", count, dev, version, name, bus);
    for (int i = 0; i < 16; i++) printf("%02x", (unsigned char)uuid.bytes[i]);
    printf("\n");

    /* Names: a symbol, and an address that is no symbol. */
    void *anonymous = malloc(16);
    printf("name_a=%s\nname_anon=%s\nexpect_anon=kernel@0x%" PRIxPTR "\n", hipKernelNameRefByPtr((void *)sim_hip_stub_a, NULL),
           hipKernelNameRefByPtr(anonymous, NULL), (uintptr_t)anonymous);

    /* hipLaunchKernel with host function pointers: durations from the first argument. */
    hipStream_t s;
    CHECK(hipStreamCreateWithFlags(&s, hipStreamNonBlocking));
    uint32_t us = 3000;
    void *args[] = {&us};
    uint64_t t0 = now_ns();
    CHECK(hipLaunchKernel((void *)sim_hip_stub_a, one, block, args, 0, s));
    CHECK(hipLaunchKernel((void *)sim_hip_stub_b, one, block, args, 0, s));
    CHECK(hipLaunchKernel(anonymous, one, block, args, 0, s));
    EXPECT(hipStreamQuery(s) == hipErrorNotReady);
    CHECK(hipStreamSynchronize(s));
    printf("three_ns=%" PRIu64 "\n", now_ns() - t0);
    EXPECT(hipLaunchKernel(NULL, one, block, args, 0, s) != hipSuccess);

    /* Module launches: kernelParams, then `extra` (HIP's END is 3). */
    hipModule_t mod;
    hipFunction_t fn;
    CHECK(hipModuleLoadData(&mod, "any image"));
    CHECK(hipModuleGetFunction(&fn, mod, "_Z10hip_modulePf"));
    printf("module_name=%s\n", hipKernelNameRef(fn));
    t0 = now_ns();
    CHECK(hipModuleLaunchKernel(fn, 1, 1, 1, 64, 1, 1, 0, s, args, NULL));
    uint32_t buf[2] = {2000, 77};
    size_t size = sizeof buf;
    void *extra[] = {(void *)1, buf, (void *)2, &size, (void *)3};
    CHECK(hipModuleLaunchKernel(fn, 1, 1, 1, 64, 1, 1, 0, s, NULL, extra));
    CHECK(hipDeviceSynchronize());
    printf("module_ns=%" PRIu64 "\n", now_ns() - t0);

    /* hipExt* launches: their events time the kernel alone. */
    hipEvent_t start, stop, start2, stop2;
    CHECK(hipEventCreate(&start));
    CHECK(hipEventCreate(&stop));
    CHECK(hipEventCreateWithFlags(&start2, 0));
    CHECK(hipEventCreateWithFlags(&stop2, 0));
    us = 4000;
    CHECK(hipExtLaunchKernel((void *)sim_hip_stub_a, one, block, args, 0, s, start, stop, 0));
    CHECK(hipExtModuleLaunchKernel(fn, 256, 1, 1, 64, 1, 1, 0, s, args, NULL, start2, stop2, 0));
    EXPECT(hipEventQuery(stop2) == hipErrorNotReady);
    CHECK(hipEventSynchronize(stop2));
    float ms1 = 0, ms2 = 0, between = 0;
    CHECK(hipEventElapsedTime(&ms1, start, stop));
    CHECK(hipEventElapsedTime(&ms2, start2, stop2));
    CHECK(hipEventElapsedTime(&between, start, stop2));
    printf("ext_ms=%.4f\next_module_ms=%.4f\next_total_ms=%.4f\n", ms1, ms2, between);

    /* Host functions in stream order, including the per-thread default stream. */
    CHECK(hipLaunchHostFunc(s, host_fn, (void *)1));
    CHECK(hipLaunchKernel_spt((void *)sim_hip_stub_b, one, block, args, 0, NULL));
    CHECK(hipLaunchHostFunc(hipStreamPerThread, host_fn, (void *)10));
    CHECK(hipStreamSynchronize_spt(NULL));
    EXPECT(counter == 11);

    /* Copies and fills round-trip real data. */
    enum { N = 1 << 16 };
    unsigned char *h = malloc(N), *back = malloc(N);
    for (int i = 0; i < N; i++) h[i] = (unsigned char)(i * 13 + 5);
    void *a, *b;
    CHECK(hipMalloc(&a, N));
    CHECK(hipMalloc(&b, N));
    CHECK(hipMemcpy(a, h, N, hipMemcpyHostToDevice));
    CHECK(hipMemcpyDtoD(b, a, N));
    CHECK(hipMemcpyDtoH(back, b, N));
    EXPECT(memcmp(back, h, N) == 0);
    EXPECT(hipMemcpy(a, h, N, 17) != hipSuccess);
    CHECK(hipMemset(a, 0x3c, N));
    CHECK(hipMemcpy_spt(back, a, N, hipMemcpyDefault));
    for (int i = 0; i < N; i++) EXPECT(back[i] == 0x3c);
    us = 20000; /* a long kernel, then async work behind it */
    CHECK(hipLaunchKernel((void *)sim_hip_stub_a, one, block, args, 0, s));
    memset(back, 0, N);
    CHECK(hipMemcpyHtoDAsync(a, h, N, s));
    CHECK(hipMemcpyDtoDAsync(b, a, N, s));
    CHECK(hipMemcpyDtoHAsync(back, b, N, s));
    EXPECT(back[1] == 0 && back[N - 1] == 0);
    CHECK(hipStreamSynchronize(s));
    EXPECT(memcmp(back, h, N) == 0);
    CHECK(hipMemsetAsync(a, 0x7e, N, s));
    CHECK(hipMemcpyAsync(back, a, N, hipMemcpyDeviceToHost, s));
    CHECK(hipMemcpyAsync_spt(b, h, N, hipMemcpyHostToDevice, s));
    CHECK(hipStreamSynchronize(s));
    EXPECT(back[0] == 0x7e && back[N - 1] == 0x7e && memcmp(b, h, N) == 0);
    CHECK(hipMemsetD8(a, 0x01, 8));
    CHECK(hipMemsetD16(a, 0xbeef, 4));
    CHECK(hipMemsetD32(b, (int)0xcafef00d, 4));
    CHECK(hipMemsetD8Async(a, 0x02, 8, s));
    CHECK(hipMemsetD16Async((char *)a + 8, 0x1111, 2, s));
    CHECK(hipMemsetD32Async((char *)b + 16, 0x22222222, 1, s));
    CHECK(hipStreamSynchronize(s));
    uint32_t w;
    memcpy(&w, b, 4);
    EXPECT(w == 0xcafef00d);
    memcpy(&w, (char *)b + 16, 4);
    EXPECT(w == 0x22222222);
    EXPECT(((unsigned char *)a)[7] == 0x02 && ((unsigned char *)a)[8] == 0x11);
    CHECK(hipFree(a));
    CHECK(hipFree(b));
    CHECK(hipFree(NULL));

    /* Graphs: capture, instantiate, launch twice. */
    hipGraph_t g;
    hipGraphExec_t x;
    EXPECT(hipStreamBeginCapture(NULL, 0) == 900);
    CHECK(hipStreamBeginCapture(s, 0));
    us = 1500;
    CHECK(hipLaunchKernel((void *)sim_hip_stub_b, one, block, args, 0, s));
    CHECK(hipModuleLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
    CHECK(hipLaunchHostFunc(s, host_fn, (void *)100));
    CHECK(hipStreamEndCapture(s, &g));
    CHECK(hipDeviceSynchronize());
    EXPECT(counter == 11);
    hipGraphNode_t err = (hipGraphNode_t)1;
    char log[16] = "x";
    CHECK(hipGraphInstantiate(&x, g, &err, log, sizeof log));
    EXPECT(err == NULL);
    t0 = now_ns();
    CHECK(hipGraphLaunch(x, s));
    CHECK(hipGraphLaunch(x, s));
    CHECK(hipStreamSynchronize(s));
    printf("graph_ns=%" PRIu64 "\n", now_ns() - t0);
    EXPECT(counter == 211);
    CHECK(hipGraphExecDestroy(x));
    CHECK(hipGraphDestroy(g));

    CHECK(hipEventDestroy(start));
    CHECK(hipEventDestroy(stop));
    CHECK(hipEventDestroy(start2));
    CHECK(hipEventDestroy(stop2));
    CHECK(hipModuleUnload(mod));
    CHECK(hipStreamDestroy(s));
    EXPECT(hipStreamDestroy(s) == hipErrorInvalidHandle);
    EXPECT(hipEventRecord(NULL, NULL) == hipErrorInvalidHandle);
    EXPECT(hipMalloc(NULL, 4) == hipErrorInvalidValue);
    printf("stream=0x%" PRIxPTR "\nok\n", (uintptr_t)s);
    free(h);
    free(back);
    free(anonymous);
    return 0;
}
