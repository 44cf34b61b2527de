/* The cost of a request window's device timing (TAILGUARD_GPU_TIME, docs/gpu-time.md) on a real GPU, inside one
 * process: bursts of W windows (one empty kernel and a cuStreamSynchronize each: the shortest request there is)
 * alternate between the entry points as the program calls them (through the shim's wrappers when the shim is
 * preloaded) and the real ones, found in libcuda's own symbol table. The difference of paired bursts is what the shim
 * adds per window; bench/gpu/window-ab.mjs runs this with TAILGUARD_GPU_TIME=on and =off in alternating processes,
 * and the difference of those differences is what device timing adds per window. Prints JSON: median ns per window
 * of each path and the median of per-round differences.
 * Usage: window_ab W ROUNDS   (link: -lcuda -ldl) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tailguard/cuda_abi.h"
#include "../timing.h"
#include "libcuda_symbols.h"

static const char ptx[] = ".version 7.0\n.target sm_50\n.address_size 64\n"
                          ".visible .entry ab_empty(.param .u32 ab_empty_param_0)\n{\n\tret;\n}\n";

static CUfunction fn;
static CUstream stream;
static double burst(tg_pfn_cuLaunchKernel launch, tg_pfn_cuStreamSynchronize sync, int n) {
    unsigned zero = 0;
    void *params[] = {&zero};
    double t0 = now_ns();
    for (int i = 0; i < n; i++)
        if (launch(fn, 1, 1, 1, 32, 1, 1, 0, stream, params, NULL) || sync(stream)) exit(3);
    return (now_ns() - t0) / n;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200, rounds = argc > 2 ? atoi(argv[2]) : 200;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, ptx) || cuModuleGetFunction(&fn, mod, "ab_empty")) return 1;
    if (cuStreamCreate(&stream, 0)) return 1;
    tg_pfn_cuLaunchKernel launch = cuLaunchKernel, real_launch = (tg_pfn_cuLaunchKernel)libcuda_symbol("window_ab", "cuLaunchKernel");
    tg_pfn_cuStreamSynchronize sync = cuStreamSynchronize,
                               real_sync = (tg_pfn_cuStreamSynchronize)libcuda_symbol("window_ab", "cuStreamSynchronize");
    for (int i = 0; i < 20; i++) burst(launch, sync, n); /* warm-up: the shim's event pool, its anchor */
    for (int i = 0; i < 5; i++) burst(real_launch, real_sync, n);
    double *a = malloc(sizeof(double) * rounds), *b = malloc(sizeof(double) * rounds), *d = malloc(sizeof(double) * rounds);
    for (int r = 0; r < rounds; r++) {
        if (r % 2) {
            a[r] = burst(launch, sync, n);
            b[r] = burst(real_launch, real_sync, n);
        } else {
            b[r] = burst(real_launch, real_sync, n);
            a[r] = burst(launch, sync, n);
        }
        d[r] = a[r] - b[r];
    }
    printf("{\"shim_in_path\":%s,\"windows_per_burst\":%d,\"rounds\":%d,\"as_called_ns\":%.1f,\"real_ns\":%.1f,"
           "\"added_ns\":%.1f}\n",
           (void *)launch != (void *)real_launch ? "true" : "false", n, rounds, median(a, rounds), median(b, rounds),
           median(d, rounds));
    return 0;
}
