/* The per-GPU control files: how the shims of processes sharing one GPU arbitrate among themselves, without a daemon.
 *
 * Each user has one file per GPU, $TAILGUARD_DIR/gpu-<uuid>.<uid>.ctl, created by that user's first process to launch
 * on the GPU with mode 0644: everyone sharing the directory reads it, only its user (and root) can write it. Each
 * attached process takes a slot in its user's file: its priority, and whether it has GPU work in flight (busy) -- from
 * its first launch after idle until its work is known complete. A process holds its launches while a valid busy slot
 * of higher effective priority exists in any of the GPU's files. `tailguard priority` may change priorities here;
 * scheduling never needs it, nor the agent.
 *
 * What a file says is believed only as far as its owner may say it (docs/security.md): a slot's effective priority
 * is its priority clamped to the ceiling that the admin's policy (tailguard/policy.h) gives the file's owner -- the
 * kernel's word for who wrote it, never the file's content -- and a file whose name names another uid is ignored.
 * When a user's name is already taken by someone else, its file is gpu-<uuid>.<uid>.<n>.ctl, the first free n.
 *
 * A busy claim is valid while its process lives and is not stopped, and either waits in a blocking sync (the GPU is
 * working for it) or made an intercepted call within the lease (TAILGUARD_LEASE_MS). So a process that dies, is
 * stopped or hangs while busy holds others for at most the lease, and a pid reused by another process counts for
 * nothing (a process is its pid and its start time).
 *
 * Processes may be in different PID namespaces (containers sharing a GPU and $TAILGUARD_DIR): a slot names its
 * process by pid *and* PID namespace, and each attached process holds an open-file-description write lock
 * (F_OFD_SETLK) on its slot's first byte of the file for as long as it is attached; the kernel drops it when the
 * process exits, which every process can see whatever its namespace. A claim from another namespace, whose process
 * cannot be looked at in /proc, counts while that lock is held and within the lease only (a process stopped in a sync
 * there lapses too). Only a write lock counts: anyone who can read the file can take a read lock. */
#ifndef TAILGUARD_CONTROL_H
#define TAILGUARD_CONTROL_H
#include <stddef.h>
#include <stdint.h>

#include "tailguard/ring_files.h"

#define TG_CTL_MAGIC "TGCTL\0\0\0"
#define TG_CTL_VERSION 3u
#define TG_CTL_SLOTS 64u
#define TG_CTL_ALTERNATES 15u               /* gpu-<uuid>.<uid>.<n>.ctl, n = 1..15, when the plain name is taken */
#define TG_CTL_LEASE_MAX_NS 10000000000ull  /* the longest lease TAILGUARD_LEASE_MS allows: one further ahead is forged */

/* Mechanisms in effect for a slot (mechanisms bits), shown by `tailguard ps`. */
enum tg_mechanism {
    TG_MECH_HOLDS = 1 << 0,     /* launches are held while higher-priority work is in flight */
    TG_MECH_BUDGET = 1 << 1,    /* in-flight work is bounded (a higher-priority process is attached) */
    TG_MECH_TIMESLICE = 1 << 2, /* the driver's channel-group timeslice was set for this priority */
    TG_MECH_MIN_SHARE = 1 << 3, /* a minimum share of GPU time releases held launches */
};

typedef struct tg_ctl_slot {
    /* who (written when the slot is taken) */
    uint32_t pid;              /*   0 0: free */
    uint32_t pid_ns;           /*   4 its PID namespace (inode of /proc/PID/ns/pid): the namespace pid is in */
    uint64_t start_ticks;      /*   8 with pid, names the process */
    int32_t priority;          /*  16 the priority asked for (TAILGUARD_PRIORITY, `tailguard priority`); every reader
                                *     clamps it to the ceiling of the file's owner */
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
    uint32_t idle_seq;         /*   64 futex word: bumped whenever a slot of this file stops being busy */
    uint32_t waiters;          /*   68 threads of this user's processes waiting for a busy slot (of any file) */
    uint8_t pad1[128 - 72];
    uint64_t busy_mask;        /*  128 bit i set while slot i is busy */
    uint64_t share_until;      /*  136 TAILGUARD_MIN_SHARE: until then, processes above share_priority hold */
    int32_t share_priority;    /*  144 the priority of the process whose minimum share is due */
    uint32_t share_pid;        /*  148 and its pid (a live slot of this file, or the claim is ignored) */
    uint8_t pad2[192 - 152];
    uint32_t lock;             /*  192 taken (CAS, bounded wait) only to claim or free a slot */
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

/* The byte of the control file whose lock says slot i's process is alive. */
#define TG_CTL_SLOT_LOCK_OFFSET(i) (__builtin_offsetof(tg_ctl, slot) + (i) * sizeof(tg_ctl_slot))

/* Is slot i's process attached and alive, seen from PID namespace my_ns (fd: the control file)? In my namespace /proc
 * says (pid and start time), and a liveness lock nobody holds means it has left; in another namespace only the lock
 * can tell. */
static inline int tg_ctl_slot_alive(const tg_ctl *c, int fd, unsigned i, uint32_t my_ns) {
    const tg_ctl_slot *s = &c->slot[i];
    uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
    if (!pid) return 0;
    uint64_t lock = TG_CTL_SLOT_LOCK_OFFSET(i);
    if (__atomic_load_n(&s->pid_ns, __ATOMIC_RELAXED) == my_ns)
        return tg_process_alive(pid, __atomic_load_n(&s->start_ticks, __ATOMIC_RELAXED)) && tg_lock_held(fd, lock) != 0;
    return tg_lock_held(fd, lock) == 1;
}

static inline uint32_t tg_ctl_checksum(const tg_ctl *c) {
    uint32_t x = 2166136261u;
    const unsigned char *p = (const unsigned char *)c;
    for (unsigned i = 0; i < __builtin_offsetof(tg_ctl, checksum); i++) x = (x ^ p[i]) * 16777619u;
    return x;
}

#ifdef __cplusplus
extern "C" {
#endif
/* A control block's header is whole (magic, version, sizes, checksum) and, when uuid is given, that GPU's: 1 if so. */
int tg_ctl_header_ok(const tg_ctl *c, const uint8_t *uuid);
/* "gpu-<32 hex digits>.<uid>.ctl" or "gpu-<hex>.<uid>.<n>.ctl" (n = 1..TG_CTL_ALTERNATES): 0 and its parts, else -1. */
int tg_ctl_name_parse(const char *name, uint8_t uuid[16], uint32_t *uid, unsigned *alternate);
/* Opens (creating it when needed, race-free) this user's control file for the GPU, read-write; gid: the group it
 * should carry (tg_policy_ceiling_self). Returns the descriptor, or -1 with err saying why. */
int tg_ctl_open_own(const char *dir, const uint8_t uuid[16], uint32_t gid, char *err, size_t err_len);
/* Opens a control file DIR/name (dirfd) for reading when it is a regular file the size of a control block, not a
 * link, and owned by the uid its name gives; *uid and *gid: its owner. Returns the descriptor or -1. */
int tg_ctl_open_peer(int dirfd, const char *name, uint32_t *uid, uint32_t *gid);
#ifdef __cplusplus
}
#endif

#endif
