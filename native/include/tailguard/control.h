/* The per-GPU control block: how the shims of processes sharing one GPU arbitrate among themselves, without a daemon.
 * One file per GPU, $TAILGUARD_DIR/gpu-<uuid>.ctl, created by the first process that launches on that GPU. Each
 * attached process takes a slot: its priority, and whether it has GPU work in flight (busy) -- from its first launch
 * after idle until its work is known complete. A process holds its launches while a valid busy slot of higher priority
 * exists. The agent and `tailguard priority` may change priorities here; scheduling never needs them.
 *
 * A busy claim is valid while its process lives and is not stopped, and either waits in a blocking sync (the GPU is
 * working for it) or made an intercepted call within the lease (TAILGUARD_LEASE_MS). So a process that dies, is
 * stopped or hangs while busy holds others for at most the lease.
 *
 * Processes may be in different PID namespaces (containers sharing a GPU and $TAILGUARD_DIR): a slot names its
 * process by pid *and* PID namespace, and each attached process holds an open-file-description lock (F_OFD_SETLK) on
 * its slot's first byte of the file for as long as it is attached; the kernel drops it when the process exits, which
 * every process can see whatever its namespace. A claim from another namespace, whose process cannot be looked at in
 * /proc, counts while that lock is held and within the lease only (a process stopped in a sync there lapses too). */
#ifndef TAILGUARD_CONTROL_H
#define TAILGUARD_CONTROL_H
#include <stdint.h>

#include "tailguard/ring_files.h"

#define TG_CTL_MAGIC "TGCTL\0\0\0"
#define TG_CTL_VERSION 2u
#define TG_CTL_SLOTS 64u

/* Mechanisms in effect for a slot (mechanisms bits), shown by `tailguard ps`. */
enum tg_mechanism {
    TG_MECH_HOLDS = 1 << 0,     /* launches are held while higher-priority work is in flight */
    TG_MECH_WINDOW = 1 << 1,    /* in-flight work is bounded (a higher-priority process is attached) */
    TG_MECH_TIMESLICE = 1 << 2, /* the driver's channel-group timeslice was set for this priority */
    TG_MECH_MIN_SHARE = 1 << 3, /* a minimum share of GPU time releases held launches */
};

typedef struct tg_ctl_slot {
    /* who (written when the slot is taken) */
    uint32_t pid;              /*   0 0: free */
    uint32_t pid_ns;           /*   4 its PID namespace (inode of /proc/PID/ns/pid): the namespace pid is in */
    uint64_t start_ticks;      /*   8 with pid, names the process */
    int32_t priority;          /*  16 effective priority; `tailguard priority` writes it */
    uint32_t mechanisms;       /*  20 enum tg_mechanism */
    uint32_t timeslice_us;     /*  24 timeslice last applied to the process's channel groups (0: none) */
    uint32_t reserved1;        /*  28 */
    uint64_t held_ns;          /*  32 total time its launches were held */
    uint64_t holds;            /*  40 number of holds */
    uint8_t pad0[64 - 48];
    /* its work in flight (written by the process, read by everyone) */
    uint32_t busy;             /*  64 1 while it has work in flight */
    uint32_t in_sync;          /*  68 threads of it waiting in a blocking sync */
    uint64_t busy_since;       /*  72 CLOCK_MONOTONIC ns */
    uint64_t lease_until;      /*  80 its claim lapses then unless renewed (or in_sync) */
    uint64_t window;           /*  88 sequence number of its current (or last) request window */
    uint8_t pad1[128 - 96];
} tg_ctl_slot;

typedef struct tg_ctl {
    char magic[8];             /*    0 TG_CTL_MAGIC */
    uint32_t version;          /*    8 */
    uint32_t size;             /*   12 sizeof(tg_ctl) */
    uint8_t gpu_uuid[16];      /*   16 the GPU this block arbitrates */
    uint32_t slot_count;       /*   32 TG_CTL_SLOTS */
    uint32_t checksum;         /*   36 FNV-1a of bytes [0, 36) */
    uint8_t pad0[64 - 40];
    uint32_t idle_seq;         /*   64 futex word: bumped whenever a slot stops being busy */
    uint32_t waiters;          /*   68 threads waiting on idle_seq */
    uint8_t pad1[128 - 72];
    uint64_t busy_mask;        /*  128 bit i set while slot i is busy */
    uint64_t share_until;      /*  136 TAILGUARD_MIN_SHARE: until then, processes above share_priority hold */
    int32_t share_priority;    /*  144 the priority of the process whose minimum share is due */
    uint32_t share_pid;        /*  148 and its pid */
    uint8_t pad2[192 - 152];
    uint32_t lock;             /*  192 taken (CAS) only to claim or free a slot */
    uint8_t pad3[256 - 196];
    tg_ctl_slot slot[TG_CTL_SLOTS]; /* 256 */
} tg_ctl;

#ifdef __cplusplus
#define TG_CTL_ASSERT static_assert
#else
#define TG_CTL_ASSERT _Static_assert
#endif
TG_CTL_ASSERT(sizeof(tg_ctl_slot) == 128, "slot size");
TG_CTL_ASSERT(__builtin_offsetof(tg_ctl_slot, busy) == 64, "busy on its own line");
TG_CTL_ASSERT(__builtin_offsetof(tg_ctl, slot) == 256, "control block layout");

/* The byte of the control-block file whose lock says slot i's process is alive. */
#define TG_CTL_SLOT_LOCK_OFFSET(i) (__builtin_offsetof(tg_ctl, slot) + (i) * sizeof(tg_ctl_slot))

/* Is slot i's process attached and alive, seen from PID namespace my_ns (fd: the control block)? In my namespace /proc
 * says, and a liveness lock nobody holds means it has left; in another namespace only the lock can tell. */
static inline int tg_ctl_slot_alive(const tg_ctl *c, int fd, unsigned i, uint32_t my_ns) {
    const tg_ctl_slot *s = &c->slot[i];
    uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
    if (!pid) return 0;
    uint64_t lock = TG_CTL_SLOT_LOCK_OFFSET(i);
    if (s->pid_ns == my_ns) return tg_process_alive(pid, s->start_ticks) && tg_lock_held(fd, lock) != 0;
    return tg_lock_held(fd, lock) == 1;
}

static inline uint32_t tg_ctl_checksum(const tg_ctl *c) {
    uint32_t x = 2166136261u;
    const unsigned char *p = (const unsigned char *)c;
    for (unsigned i = 0; i < __builtin_offsetof(tg_ctl, checksum); i++) x = (x ^ p[i]) * 16777619u;
    return x;
}

#endif
