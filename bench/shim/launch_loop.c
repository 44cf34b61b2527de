/* Launch-cost loop for `npm run bench:shim`. Each round blocks the stream behind a host callback (a gate), times N
 * launches of a 0-microsecond kernel through libcuda's exported symbols, opens the gate and synchronises. With the
 * gate closed the simulated GPU does not execute the round's kernels while they are being launched, so what is timed
 * is the launch path itself, not its interplay with the simulator's worker thread. N must fit the simulator's queue
 * (1024). Warm-up rounds first fill one lap of the ring's lane, so the shim's one-time reservation of ring memory
 * (chunks reserved as the ring first fills) is not mixed into the steady-state cost. Prints the median ns per launch
 * over all timed rounds as JSON. Usage: launch_loop N ROUNDS */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/cuda_abi.h"
#include "../cuda_setup.h"
#include "../timing.h"

static int gate; /* 0: closed */

static void gate_wait(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE)) syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}
static void gate_open(void) {
    __atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}


int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000, rounds = argc > 2 ? atoi(argv[2]) : 500;
    CUfunction fn;
    CUstream s;
    if (bench_cuda_setup(&fn, &s)) return 1;
    unsigned us = 0;
    void *params[] = {&us};
    double *ns = malloc(sizeof(double) * (size_t)rounds);
    int warmup = 300000 / n + 1; /* more records than a lane of the benchmark's ring (262144) holds */
    for (int r = -warmup; r < rounds; r++) {
        __atomic_store_n(&gate, 0, __ATOMIC_RELEASE);
        if (cuLaunchHostFunc(s, gate_wait, NULL)) return 1;
        double t0 = now_ns();
        for (int i = 0; i < n; i++)
            if (cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, NULL)) return 1;
        double t1 = now_ns();
        gate_open();
        if (cuStreamSynchronize(s)) return 1;
        if (r >= 0) ns[r] = (t1 - t0) / n;
    }
    qsort(ns, (size_t)rounds, sizeof *ns, cmp_double);
    printf("{\"median_ns\":%.2f,\"best_ns\":%.2f}\n", ns[rounds / 2], ns[0]);
    return 0;
}
