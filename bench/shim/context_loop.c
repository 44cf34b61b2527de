/* The cost of a request's trace context: tailguard_begin + tailguard_end (tailguard/tailguard.h's dlsym wrappers), in
 * rounds of PAIRS pairs; prints {"median_ns": ns per pair, the median over ROUNDS rounds} (bench/context.mjs). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tailguard/tailguard.h"

static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int pairs = argc > 1 ? atoi(argv[1]) : 1000, rounds = argc > 2 ? atoi(argv[2]) : 200;
    static const char tp[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    double *ns = calloc((size_t)rounds, sizeof *ns);
    if (!ns || pairs < 1 || rounds < 1) return 2;
    for (int i = 0; i < 20000; i++) { /* warm-up: the lane, its memory, the name */
        tailguard_begin(tp, "infer");
        tailguard_end();
    }
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = now();
        for (int i = 0; i < pairs; i++) {
            tailguard_begin(tp, "infer");
            tailguard_end();
        }
        ns[r] = (double)(now() - t0) / pairs;
    }
    qsort(ns, (size_t)rounds, sizeof *ns, cmp);
    printf("{\"median_ns\": %.1f, \"shim\": %d}\n", ns[rounds / 2], tailguard_present());
    return 0;
}
