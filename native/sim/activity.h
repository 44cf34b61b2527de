/* What the simulated CUPTI (cupti.c → build/sim/libcupti.so.13) learns from the simulated GPU: which operations were
 * submitted, by which thread, and when the device ran them. The simulated libcuda exports one internal function,
 * tailguard_sim_activity, that the simulated CUPTI looks up with dlsym and gives its hooks to. */
#ifndef TAILGUARD_SIM_ACTIVITY_H
#define TAILGUARD_SIM_ACTIVITY_H
#include <stdint.h>

enum { SIM_ACT_KERNEL = 1, SIM_ACT_COPY = 2, SIM_ACT_FILL = 3 };

typedef struct sim_activity_hooks {
    /* On the submitting thread, as the operation is queued: the operation's correlation id (0: none). */
    uint32_t (*submitted)(int kind);
    /* When the device has run it: its start and end on the device timeline (CLOCK_MONOTONIC ns), bytes for copies
     * and fills. Called by the simulated GPU's worker thread. */
    void (*executed)(int kind, uint32_t correlation, const char *name, uint64_t start, uint64_t end, uint64_t bytes,
                     uintptr_t stream);
} sim_activity_hooks;

/* Exported by the simulated libcuda: hooks (or NULL) for every operation submitted from now on. */
typedef void (*sim_activity_fn)(const sim_activity_hooks *hooks);
#define SIM_ACTIVITY_SYMBOL "tailguard_sim_activity"

#endif
