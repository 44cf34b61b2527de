/* A HIP program linked to libamdhip64: kernels by host function pointer (what hipLaunchKernelGGL compiles to), module
 * kernels, the extended launches, copies and syncs; and hipLaunchKernel once more through dlsym.
 * Usage: hip_app LAUNCHES */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "tailguard/hip_abi.h"

#define CHECK(call)                                                                                              \
    do {                                                                                                         \
        hipError_t r_ = (call);                                                                                  \
        if (r_ != hipSuccess) {                                                                                  \
            fprintf(stderr, "%s failed: %d\n", #call, r_);                                                       \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

/* stand-ins for the host stubs hipcc generates for __global__ functions */
void hip_vector_add(void) {}
void hip_reduce(void) {}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    hipStream_t s;
    CHECK(hipSetDevice(0));
    CHECK(hipStreamCreate(&s));
    unsigned us = 1;
    void *args[] = {&us};
    for (int i = 0; i < n; i++) {
        dim3 grid = {(uint32_t)i + 1, 1, 1}, block = {256, 1, 1};
        CHECK(hipLaunchKernel((const void *)(i % 2 ? hip_vector_add : hip_reduce), grid, block, args, 0, s));
    }
    hipModule_t mod;
    hipFunction_t f;
    CHECK(hipModuleLoadData(&mod, "code object"));
    CHECK(hipModuleGetFunction(&f, mod, "module_kernel"));
    CHECK(hipModuleLaunchKernel(f, 3, 2, 1, 64, 1, 1, 0, s, args, NULL));
    CHECK(hipExtModuleLaunchKernel(f, 1024, 1, 1, 256, 1, 1, 0, s, args, NULL, NULL, NULL, 0));
    dim3 g = {5, 1, 1}, b = {32, 1, 1};
    CHECK(hipExtLaunchKernel((const void *)hip_reduce, g, b, args, 0, s, NULL, NULL, 0));
    tg_pfn_hipLaunchKernel via_dlsym = (tg_pfn_hipLaunchKernel)dlsym(RTLD_DEFAULT, "hipLaunchKernel");
    if (!via_dlsym) return 1;
    CHECK(via_dlsym((const void *)hip_vector_add, g, b, args, 0, s));

    enum { N = 1024 };
    int host[N], back[N];
    for (int i = 0; i < N; i++) host[i] = i ^ 0x5a5a;
    void *d;
    CHECK(hipMalloc(&d, sizeof host));
    CHECK(hipMemcpy(d, host, sizeof host, hipMemcpyHostToDevice));
    CHECK(hipMemsetAsync(d, 0, 16, s));
    CHECK(hipMemcpyAsync(back, d, sizeof back, hipMemcpyDeviceToHost, s));
    CHECK(hipStreamSynchronize(s));
    CHECK(hipDeviceSynchronize());
    long sum = 0;
    for (int i = 0; i < N; i++) sum += back[i];
    printf("sum=%ld launches=%d\n", sum, n + 4);
    return 0;
}
