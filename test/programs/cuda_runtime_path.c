/* Reaches the driver the way the CUDA runtime (and so PyTorch) does: dlopen("libcuda.so.1"), dlsym for
 * cuGetProcAddress_v2, then cuGetProcAddress for every entry point, in both the default and the per-thread default
 * stream variants. Nothing is linked to libcuda. Usage: cuda_runtime_path LAUNCHES_PER_VARIANT */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "tailguard/cuda_abi.h"

static tg_pfn_cuGetProcAddress_v2 gpa;

static void *get(const char *name, cuuint64_t flags) {
    void *p = NULL;
    CUdriverProcAddressQueryResult status = -1;
    CUresult r = gpa(name, &p, 13000, flags, &status);
    if (r != CUDA_SUCCESS || !p || status != CU_GET_PROC_ADDRESS_SUCCESS) {
        fprintf(stderr, "cuGetProcAddress(%s, %llu) failed: %d status %d\n", name, (unsigned long long)flags, r,
                status);
        exit(1);
    }
    return p;
}

#define CHECK(call)                                                                                              \
    do {                                                                                                         \
        CUresult r_ = (call);                                                                                    \
        if (r_ != CUDA_SUCCESS) {                                                                                \
            fprintf(stderr, "%s failed: %d\n", #call, r_);                                                       \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    gpa = (tg_pfn_cuGetProcAddress_v2)dlsym(lib, "cuGetProcAddress_v2");
    if (!gpa) return 1;
    /* the runtime asks for cuGetProcAddress itself through cuGetProcAddress */
    gpa = (tg_pfn_cuGetProcAddress_v2)get("cuGetProcAddress", 0);
    tg_pfn_cuInit init = get("cuInit", 0);
    tg_pfn_cuDeviceGet device_get = get("cuDeviceGet", 0);
    tg_pfn_cuDevicePrimaryCtxRetain retain = get("cuDevicePrimaryCtxRetain", 0);
    tg_pfn_cuCtxSetCurrent set_current = get("cuCtxSetCurrent", 0);
    tg_pfn_cuModuleLoadData load = get("cuModuleLoadData", 0);
    tg_pfn_cuModuleGetFunction get_function = get("cuModuleGetFunction", 0);
    tg_pfn_cuMemAlloc_v2 alloc = get("cuMemAlloc", 0);
    tg_pfn_cuLaunchKernel launch = get("cuLaunchKernel", CU_GET_PROC_ADDRESS_DEFAULT);
    tg_pfn_cuLaunchKernel_ptsz launch_ptsz = get("cuLaunchKernel", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    tg_pfn_cuMemcpyHtoDAsync_v2 h2d = get("cuMemcpyHtoDAsync", 0);
    tg_pfn_cuMemcpyDtoHAsync_v2_ptsz d2h_ptsz = get("cuMemcpyDtoHAsync", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    tg_pfn_cuStreamSynchronize sync = get("cuStreamSynchronize", 0);
    tg_pfn_cuStreamSynchronize_ptsz sync_ptsz = get("cuStreamSynchronize", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    tg_pfn_cuCtxSynchronize ctx_sync = get("cuCtxSynchronize", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    if ((void *)launch == (void *)launch_ptsz) {
        fprintf(stderr, "default and per-thread variants are the same pointer\n");
        return 1;
    }
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CHECK(init(0));
    CHECK(device_get(&dev, 0));
    CHECK(retain(&ctx, dev));
    CHECK(set_current(ctx));
    CHECK(load(&mod, "image"));
    CHECK(get_function(&fn, mod, "runtime_path_kernel"));
    unsigned us = 1;
    void *params[] = {&us};
    for (int i = 0; i < n; i++) CHECK(launch(fn, 1, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    for (int i = 0; i < n; i++) CHECK(launch_ptsz(fn, 2, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    int data[64], back[64];
    for (int i = 0; i < 64; i++) data[i] = i * i;
    CUdeviceptr d;
    CHECK(alloc(&d, sizeof data));
    CHECK(h2d(d, data, sizeof data, NULL));
    CHECK(sync(NULL));
    CHECK(d2h_ptsz(back, d, sizeof back, NULL));
    CHECK(sync_ptsz(NULL));
    CHECK(ctx_sync());
    long sum = 0;
    for (int i = 0; i < 64; i++) sum += back[i];
    printf("sum=%ld launches=%d\n", sum, 2 * n);
    return 0;
}
