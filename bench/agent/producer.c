/* Record producer for `npm run bench:agent`: request windows of K kernel launches and a stream sync, paced to R
 * records per second for S seconds, through the shim on the do-nothing driver (bench/shim/null_driver.c), so the
 * records are the shim's own (launches, syncs, window begin and end: K + 3 per window) and the driver costs nothing.
 * Prints what it made as JSON. Usage: producer RECORDS_PER_S SECONDS K */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tailguard/cuda_abi.h"
#include "../cuda_setup.h"
#include "../timing.h"

int main(int argc, char **argv) {
    double rate = argc > 1 ? atof(argv[1]) : 1e6, seconds = argc > 2 ? atof(argv[2]) : 10;
    int k = argc > 3 ? atoi(argv[3]) : 16;
    CUfunction fn;
    CUstream s;
    if (bench_cuda_setup(&fn, &s)) return 1;
    unsigned us = 0;
    void *params[] = {&us};
    double per_window = k + 3, t0 = now_ns(), end = t0 + seconds * 1e9;
    long windows = 0, behind_max = 0;
    for (;;) {
        double now = now_ns();
        if (now >= end) break;
        /* windows due by now at the requested rate; sleep when ahead, catch up when behind */
        long due = (long)((now - t0) * 1e-9 * rate / per_window);
        if (windows >= due) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (due - windows > behind_max) behind_max = due - windows;
        for (long w = windows; w < due; w++) {
            for (int i = 0; i < k; i++)
                if (cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, NULL)) return 1;
            if (cuStreamSynchronize(s)) return 1;
        }
        windows = due;
    }
    double took = (now_ns() - t0) * 1e-9;
    printf("{\"windows\":%ld,\"launches\":%ld,\"records\":%ld,\"seconds\":%.3f,\"records_per_s\":%.0f,"
           "\"max_windows_behind\":%ld}\n",
           windows, windows * k, (long)(windows * per_window), took, windows * per_window / took, behind_max);
    return 0;
}
