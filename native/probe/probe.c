/* tg-probe: the program `tailguard doctor` runs under the shim. It reaches the CUDA driver the two ways real programs
 * do -- calls to libcuda's exported symbols, and the CUDA runtime's dlopen + dlsym("cuGetProcAddress_v2") path, both
 * stream variants -- launching one empty kernel each way, and prints what it did as one JSON line. It runs against
 * the real driver (an empty PTX kernel) or the simulated GPU (which accepts any image). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "tailguard/cuda_abi.h"

static const char ptx[] = ".version 7.0\n.target sm_50\n.address_size 64\n"
                          ".visible .entry tg_probe_empty(.param .u32 tg_probe_empty_param_0)\n{\n\tret;\n}\n";

#define CHECK(call)                                                                                              \
    do {                                                                                                         \
        CUresult r_ = (call);                                                                                    \
        if (r_ != CUDA_SUCCESS) {                                                                                \
            printf("{\"ok\":false,\"failed\":\"%s\",\"result\":%d}\n", #call, r_);                               \
            return 1;                                                                                            \
        }                                                                                                        \
    } while (0)

int main(void) {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    char name[128] = "";
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    cuDeviceGetName(name, sizeof name, dev);
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, ptx));
    CHECK(cuModuleGetFunction(&fn, mod, "tg_probe_empty"));
    unsigned int zero_us = 0;
    void *params[] = {&zero_us};

    /* 1: the exported symbol, as a program linked to libcuda calls it */
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));

    /* 2, 3: the CUDA runtime's path */
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    tg_pfn_cuGetProcAddress_v2 gpa = lib ? (tg_pfn_cuGetProcAddress_v2)dlsym(lib, "cuGetProcAddress_v2") : NULL;
    if (!gpa) {
        printf("{\"ok\":false,\"failed\":\"dlsym(cuGetProcAddress_v2)\",\"result\":-1}\n");
        return 1;
    }
    tg_pfn_cuLaunchKernel launch = NULL, launch_ptsz = NULL;
    CHECK(gpa("cuLaunchKernel", (void **)&launch, 13000, CU_GET_PROC_ADDRESS_DEFAULT, NULL));
    CHECK(gpa("cuLaunchKernel", (void **)&launch_ptsz, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL));
    CHECK(launch(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK(launch_ptsz(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK(cuCtxSynchronize());
    printf("{\"ok\":true,\"device\":\"%s\",\"launches\":3,\"syncs\":1}\n", name);
    return 0;
}
