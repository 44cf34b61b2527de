/* The shim's cost per launch on a real GPU, measured inside one process: bursts of N empty-kernel launches alternate
 * between libcuda's cuLaunchKernel as the program calls it (through the shim's wrapper when the shim is preloaded) and
 * the real cuLaunchKernel, found in libcuda's own symbol table. Comparing paired bursts of the same process cancels
 * what varies between processes (memory placement, clocks), which is larger than the effect measured. Without the shim
 * both paths are the same function: that run is the control and should show ~0.
 * Prints JSON: median ns per launch of each path and the median of per-round differences.
 * Usage: launch_ab N ROUNDS   (link: -lcuda -ldl) */
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
static double burst(tg_pfn_cuLaunchKernel launch, int n) {
    unsigned zero = 0;
    void *params[] = {&zero};
    double t0 = now_ns();
    for (int i = 0; i < n; i++)
        if (launch(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL)) exit(3);
    double t1 = now_ns();
    if (cuCtxSynchronize()) exit(3);
    return (t1 - t0) / n;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000, rounds = argc > 2 ? atoi(argv[2]) : 400;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 1;
    if (cuModuleLoadData(&mod, ptx) || cuModuleGetFunction(&fn, mod, "ab_empty")) return 1;
    tg_pfn_cuLaunchKernel as_called = cuLaunchKernel,
                          real = (tg_pfn_cuLaunchKernel)libcuda_symbol("launch_ab", "cuLaunchKernel");
    for (int i = 0; i < 300; i++) burst(as_called, 1000); /* warm-up, past one lap of the shim's default ring */
    for (int i = 0; i < 20; i++) burst(real, 1000);
    double *a = malloc(sizeof(double) * rounds), *b = malloc(sizeof(double) * rounds), *d = malloc(sizeof(double) * rounds);
    for (int r = 0; r < rounds; r++) {
        if (r % 2) {
            a[r] = burst(as_called, n);
            b[r] = burst(real, n);
        } else {
            b[r] = burst(real, n);
            a[r] = burst(as_called, n);
        }
        d[r] = a[r] - b[r];
    }
    printf("{\"shim_in_path\":%s,\"launches_per_burst\":%d,\"rounds\":%d,\"as_called_ns\":%.1f,\"real_ns\":%.1f,"
           "\"added_ns\":%.1f}\n",
           (void *)as_called != (void *)real ? "true" : "false", n, rounds, median(a, rounds), median(b, rounds),
           median(d, rounds));
    return 0;
}
