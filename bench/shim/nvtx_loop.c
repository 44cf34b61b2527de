/* Times NVTX push/pop pairs (bench/nvtx.mjs): the same loop with or without the shim as the process's NVTX tool.
 * Usage: nvtx_loop PAIRS ROUNDS; prints {"median_ns": N}, the median over rounds of ns per NVTX call (push or pop).
 * Rounds are 1 ms apart (untimed). The warm-up fills one lap of the ring first, as bench/shim/launch_loop.c does (memory reserved as the ring fills). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <nvtx3/nvToolsExt.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int pairs = argc > 1 ? atoi(argv[1]) : 1000, rounds = argc > 2 ? atoi(argv[2]) : 400;
    double *ns = malloc(sizeof *ns * (size_t)rounds);
    for (int i = 0; i < 150000; i++) { /* 300 000 records: one lap of a 262 144-record lane, paced as the rounds */
        nvtxRangePushA("forward");
        nvtxRangePop();
        if (i % 1000 == 999) usleep(1000);
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < pairs; i++) {
            nvtxRangePushA("forward");
            nvtxRangePop();
        }
        ns[r] = (now_ns() - t0) / (2.0 * pairs);
        usleep(1000); /* untimed: lets the collector keep up, so that "recording" times records written, not dropped */
    }
    qsort(ns, (size_t)rounds, sizeof *ns, cmp);
    printf("{\"median_ns\": %.2f}\n", ns[rounds / 2]);
    return 0;
}
