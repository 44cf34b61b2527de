/* Reaches the simulated driver the way the CUDA runtime does: dlopen("libcuda.so.1"), dlsym("cuGetProcAddress_v2"),
 * then cuGetProcAddress for base names. Checks that every declared entry point is exported, and prints one line per
 * query for test/native/sim.test.ts:
 *   <base name> <cudaVersion> <flags> <result> <status> <symbol the pointer is, by dladdr> <same as dlsym: 1|0> */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define TG_ABI_NO_PROTOTYPES
#include "tailguard/cuda_abi.h"

static const char *const declared[] = {
#define NAME(ret, name, params) #name,
    TG_CUDA_FUNCTIONS(NAME)
#undef NAME
};

int main(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int missing = 0;
    for (size_t i = 0; i < sizeof declared / sizeof declared[0]; i++)
        if (!dlsym(lib, declared[i])) {
            printf("missing %s\n", declared[i]);
            missing++;
        }
    printf("declared=%zu missing=%d\n", sizeof declared / sizeof declared[0], missing);

    tg_pfn_cuGetProcAddress_v2 get = (tg_pfn_cuGetProcAddress_v2)dlsym(lib, "cuGetProcAddress_v2");
    if (!get) return 2;
    static const struct {
        const char *name;
        int version;
    } queries[] = {
        {"cuInit", 13000},           {"cuGetProcAddress", 13000}, {"cuGetProcAddress", 11030},
        {"cuLaunchKernel", 13000},   {"cuLaunchKernelEx", 13000}, {"cuLaunchCooperativeKernel", 13000},
        {"cuMemcpyHtoD", 13000},     {"cuMemcpyHtoD", 3000},      {"cuMemcpyDtoHAsync", 13000},
        {"cuMemcpy", 13000},         {"cuMemsetD32", 13000},      {"cuMemsetD2D8Async", 13000},
        {"cuStreamDestroy", 13000},  {"cuStreamDestroy", 3020},   {"cuEventDestroy", 13000},
        {"cuStreamSynchronize", 13000}, {"cuStreamBeginCapture", 13000}, {"cuStreamBeginCapture", 10000},
        {"cuDevicePrimaryCtxRelease", 13000}, {"cuDeviceGetUuid", 13000}, {"cuDeviceGetUuid", 11000},
        {"cuCtxCreate", 13000},      {"cuMemAlloc", 13000},       {"cuMemFree", 13000},
        {"cuDeviceTotalMem", 13000}, {"cuGraphInstantiate", 13000}, {"cuGraphInstantiate", 11040},
        {"cuGraphLaunch", 13000},    {"cuFuncGetName", 13000},    {"cuEventRecord", 13000},
        {"cuLaunchHostFunc", 13000}, {"cuMemcpy3D", 13000},       {"cuStreamEndCapture", 13000},
        {"cuMemcpyHtoD_v2", 13000},  {"cuNoSuchFunction", 13000}, {"", 13000},
    };
    static const cuuint64_t flag_sets[] = {CU_GET_PROC_ADDRESS_DEFAULT, CU_GET_PROC_ADDRESS_LEGACY_STREAM,
                                           CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
        for (size_t f = 0; f < 3; f++) {
            void *pfn = (void *)1;
            CUdriverProcAddressQueryResult status = -1;
            CUresult rc = get(queries[i].name, &pfn, queries[i].version, flag_sets[f], &status);
            const char *sym = "NULL";
            int same = 0;
            Dl_info info;
            if (pfn && dladdr(pfn, &info) && info.dli_sname) {
                sym = info.dli_sname;
                same = dlsym(lib, sym) == pfn;
            }
            printf("%s %d %llu %d %d %s %d\n", *queries[i].name ? queries[i].name : "(empty)", queries[i].version,
                   (unsigned long long)flag_sets[f], rc, status, sym, same);
        }
    /* status may be NULL; the 4-argument lookup agrees with the 5-argument one */
    void *a = NULL, *b = NULL;
    tg_pfn_cuGetProcAddress get4 = (tg_pfn_cuGetProcAddress)dlsym(lib, "cuGetProcAddress");
    printf("null_status=%d\n", get("cuLaunchKernel", &a, 12000, 0, NULL));
    CUresult rc4 = get4("cuLaunchKernel", &b, 12000, 0);
    printf("four_args=%d same=%d\n", rc4, a == b && a == dlsym(lib, "cuLaunchKernel"));
    printf("null_pfn=%d\n", get("cuLaunchKernel", NULL, 12000, 0, NULL));
    return 0;
}
