/* Timestamps are CLOCK_MONOTONIC ns (a vDSO call, ~20 ns with the tsc clocksource); the anchor pairs one with
 * CLOCK_REALTIME so the agent can turn them into epoch time. */
#include "shim.h"

void tg_clock_anchor(uint64_t *realtime_ns, uint64_t *monotonic_ns) {
    /* Take the pair whose bracketing monotonic reads are closest: the realtime read sits in the middle. */
    uint64_t best_gap = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        struct timespec rt;
        uint64_t m0 = tg_now();
        clock_gettime(CLOCK_REALTIME, &rt);
        uint64_t m1 = tg_now();
        if (m1 - m0 < best_gap) {
            best_gap = m1 - m0;
            *realtime_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
            *monotonic_ns = m0 + (m1 - m0) / 2;
        }
    }
}
