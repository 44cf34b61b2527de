/* The one simulated device shared by every process on the machine: a small shared-memory file that says who executes
 * now, who waits, and when the current slice ends. Arbitration is lock-free (one CAS-updated owner word), so a process
 * that dies or is stopped at any instant can never leave a lock behind; waiters take the device from an owner that
 * overstays its slice (see SIM_GRACE_NS), and reclaim the slots of processes that are gone.
 *
 * Layout (struct sim_shared, version 1, 4224 bytes): a header (magic "TGSIMGPU", version, size, UUID), the arbitration
 * line (owner word = generation << 8 | slot + 1, waiting bitmask, last release time), then 64 slots of one cache line,
 * one per attached process (pid + start time as identity, a futex word to wake it, its grant and slice deadline).
 *
 * Round robin: an owner at the end of its slice with others waiting hands the device directly to the next waiting slot
 * after its own (in slot order) and wakes it; an owner whose queue empties does the same at once; with nobody waiting
 * it keeps the device and starts a new slice. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <unistd.h>

#include "sim.h"
#include "tailguard/log.h"
#include "tailguard/options.h"
#include "tailguard/ring_files.h"

#define SIM_MAGIC 0x5550474d49534754ull /* "TGSIMGPU" read as a little-endian word */
#define SIM_VERSION 3u
#define SIM_SLOTS 64
#define SIM_LIVENESS_NS 20000000ull /* a waiter looks whether the owner still exists at least this often */
/* An owner whose queued work ran out (idle_at) but whose worker thread has not yet run to give the device back (the
 * host is slow to schedule it) is taken over this long after that point, as of that point on the timeline: a real
 * GPU does not wait for a CPU thread to move on to the next context. */
#define SIM_TAKEOVER_NS 50000ull

struct sim_slot {
    _Atomic int32_t pid;          /* 0: free */
    _Atomic uint32_t wake;        /* futex word, bumped whenever the device is handed to this slot */
    _Atomic uint64_t start_time;  /* /proc/<pid>/stat start time: tells a reused pid apart; 0 while unknown */
    _Atomic uint64_t grant_ns;    /* device-timeline time at which the latest grant to this slot starts */
    _Atomic uint64_t deadline_ns; /* end of the slot's current slice (meaningful while it owns the device) */
    _Atomic uint64_t slice_ns;    /* the process's own slice length (TAILGUARD_SIM_SLICE_US) */
    _Atomic uint64_t device_ns;   /* device time consumed (statistics) */
    _Atomic uint64_t grants;      /* times it was given the device (statistics) */
    _Atomic uint64_t idle_at;     /* while owning: timeline time its queued work runs out (0: more is queued) */
    _Atomic uint64_t ready_ns;    /* when its waiting work was submitted (the doorbell; see sim_device_more_work) */
} __attribute__((aligned(64)));

struct sim_shared {
    uint64_t magic;
    uint32_t version, size;
    unsigned char uuid[16];
    char reserved0[32];
    _Atomic uint64_t owner;           /* (generation << 8) | (slot + 1); slot part 0 = free */
    _Atomic uint64_t waiting;         /* bit i: slot i has work and waits for the device */
    _Atomic uint64_t last_release_ns; /* device-timeline time at which the device was last left free */
    char reserved1[40];
    struct sim_slot slots[SIM_SLOTS];
};
_Static_assert(sizeof(struct sim_shared) == 128 + 128 * SIM_SLOTS, "shared layout changed: bump SIM_VERSION");

/* This process's view. Everything but open/leave/after_fork runs on the worker thread only. */
static struct {
    struct sim_shared *shm;
    unsigned char uuid[16];
    char path[PATH_MAX];
    int slot;           /* -1: not attached yet */
    uint64_t own;       /* generation of our current grant; 0 when not owning */
    uint64_t deadline;  /* end of our current slice */
    uint64_t slice_ns;
    uint64_t start_time;
    pid_t pid;
    int fd;             /* the device file, open while attached: it carries the slot's liveness lock (-1: none) */
    _Atomic int left;   /* the process is exiting and has left the device */
} dev = {.slot = -1, .fd = -1};

static inline uint64_t pack(int slot, uint64_t gen) { return gen << 8 | (uint64_t)(slot + 1); }
static inline int owner_slot(uint64_t o) { return (int)(o & 0xff) - 1; }
static inline uint64_t owner_gen(uint64_t o) { return o >> 8; }
static inline uint64_t bit(int slot) { return 1ull << slot; }
static inline uint64_t floor_now(uint64_t now) { return now > SIM_LAG_NS ? now - SIM_LAG_NS : 0; }

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts, uint32_t val3) {
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, val3);
}

/* Process-shared futex wait with an absolute CLOCK_MONOTONIC deadline. */
static void wait_until(_Atomic uint32_t *w, uint32_t seen, uint64_t abs_ns) {
    struct timespec ts = {(time_t)(abs_ns / 1000000000u), (long)(abs_ns % 1000000000u)};
    futex(w, FUTEX_WAIT_BITSET, seen, &ts, FUTEX_BITSET_MATCH_ANY);
}

static void wake_slot(int n) {
    struct sim_slot *s = &dev.shm->slots[n];
    atomic_fetch_add(&s->wake, 1);
    if (n != dev.slot) futex(&s->wake, FUTEX_WAKE, 1, NULL, 0);
}

/* The next slot after `from` in the cyclic slot order whose bit is set in mask (mask != 0). */
static int rr_next(uint64_t mask, int from) {
    unsigned s = (unsigned)(from + 1) & 63;
    uint64_t rot = s ? (mask >> s) | (mask << (64 - s)) : mask;
    return (int)((unsigned)(__builtin_ctzll(rot) + s) & 63);
}

/* Each attached process holds an open-file-description lock on byte (SIM_LOCK_BASE + slot) of the device file while
 * it is attached: the kernel drops it when the process exits, and every process sees that whatever its PID namespace
 * (a pid from another namespace names another process, or none, here). */
#define SIM_LOCK_BASE (1 << 20)

/* Whether the process attached as `pid` to slot `i` has gone: its liveness lock is free; without a device file (a
 * private device) or OFD locks, /proc says (exited, or its pid now names another process). */
static int slot_gone(int i, int32_t pid) {
    if (pid == 0) return 1;
    if (pid == dev.pid && i == dev.slot) return 0;
    int locked = dev.fd >= 0 ? tg_lock_held(dev.fd, SIM_LOCK_BASE + (uint64_t)i) : -1;
    if (locked >= 0) return !locked;
    return !tg_process_alive((uint32_t)pid, atomic_load(&dev.shm->slots[i].start_time));
}

/* Gives the device that `o` names to the next waiting slot in `cand` (round robin after o's slot), granting from
 * timeline time t; with no live candidate the device is left free (and one waiter, if any appeared, is woken). Does
 * nothing if the owner word is no longer o. */
static void handoff(uint64_t o, uint64_t cand, uint64_t t) {
    struct sim_shared *shm = dev.shm;
    int from = owner_slot(o);
    uint64_t gen = owner_gen(o) + 1;
    while (cand) {
        int n = rr_next(cand, from);
        cand &= ~bit(n);
        struct sim_slot *ns = &shm->slots[n];
        int32_t np = atomic_load(&ns->pid);
        if (slot_gone(n, np)) {
            atomic_fetch_and(&shm->waiting, ~bit(n)); /* gone: its slot is reclaimed by whoever needs one */
            continue;
        }
        uint64_t grant = t, fl = floor_now(sim_now()), ready = atomic_load(&ns->ready_ns);
        if (grant < fl) grant = fl;
        if (grant < ready) grant = ready; /* its work was submitted then */
        atomic_store(&ns->idle_at, 0);    /* whatever it committed in an earlier tenure */
        atomic_store(&ns->grant_ns, grant);
        atomic_store(&ns->deadline_ns, grant + atomic_load(&ns->slice_ns));
        if (!atomic_compare_exchange_strong(&shm->owner, &o, pack(n, gen))) return;
        wake_slot(n);
        return;
    }
    uint64_t last = atomic_load(&shm->last_release_ns);
    if (t > last) atomic_store(&shm->last_release_ns, t);
    if (!atomic_compare_exchange_strong(&shm->owner, &o, gen << 8)) return;
    /* A waiter that set its bit after we looked would otherwise sleep until the old slice's grace ran out. */
    uint64_t w = atomic_load(&shm->waiting);
    if (w) wake_slot(rr_next(w, from));
}

/* Frees the slot of a process that has gone, taking the device back from it if it owned it. */
static void reclaim(int x, int32_t xpid) {
    struct sim_shared *shm = dev.shm;
    struct sim_slot *xs = &shm->slots[x];
    atomic_fetch_and(&shm->waiting, ~bit(x));
    uint64_t o = atomic_load(&shm->owner);
    if (owner_slot(o) == x) handoff(o, atomic_load(&shm->waiting) & ~bit(x), sim_now());
    atomic_store(&xs->start_time, 0);
    int32_t expect = xpid;
    if (atomic_compare_exchange_strong(&xs->pid, &expect, 0))
        tg_debug("simulated GPU: reclaimed slot %d of process %d, which has exited", x, (int)xpid);
}

static void uuid_from_path(const char *path, unsigned char out[16]) {
    uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}; /* two FNV-1a lanes */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        h[0] = (h[0] ^ *p) * 0x100000001b3ull;
        h[1] = (h[1] ^ *p ^ 0x5a) * 0x100000001b3ull;
    }
    for (int i = 0; i < 16; i++) out[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
    out[6] = (unsigned char)((out[6] & 0x0f) | 0x50); /* name-based UUID, RFC 4122 variant */
    out[8] = (unsigned char)((out[8] & 0x3f) | 0x80);
}

static void init_shared(struct sim_shared *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->version = SIM_VERSION;
    s->size = (uint32_t)sizeof *s;
    uuid_from_path(path, s->uuid);
    atomic_thread_fence(memory_order_release);
    s->magic = SIM_MAGIC;
}

/* Creates the device file complete, then publishes it with link(2), which fails if another process published first:
 * nobody can ever map a half-initialised device. */
static int create_file(const char *path, char *why, size_t whylen) {
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    unlink(tmp); /* a leftover of a dead process that had our pid */
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(why, whylen, "cannot create %s (%s)", tmp, strerror(errno));
        return -1;
    }
    struct sim_shared *s = MAP_FAILED;
    if (ftruncate(fd, sizeof *s) == 0)
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        snprintf(why, whylen, "cannot size or map %s (%s)", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    init_shared(s, path);
    munmap(s, sizeof *s);
    close(fd);
    int rc = link(tmp, path);
    if (rc != 0 && errno != EEXIST) rc = rename(tmp, path) == 0 ? 0 : -1; /* file systems without hard links */
    int err = errno;
    unlink(tmp);
    if (rc != 0 && err != EEXIST) {
        snprintf(why, whylen, "cannot create it (%s)", strerror(err));
        return -1;
    }
    return 0;
}

static struct sim_shared *map_file(const char *path, char *why, size_t whylen, int *keep_fd) {
    for (int attempt = 0; attempt < 4; attempt++) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            if (create_file(path, why, whylen) != 0) return NULL;
            continue;
        }
        if (fd < 0) {
            snprintf(why, whylen, "cannot open it (%s)", strerror(errno));
            return NULL;
        }
        struct stat st;
        if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct sim_shared)) {
            snprintf(why, whylen, "it is %lld bytes long, not a tailguard simulated GPU (%zu bytes)",
                     (long long)st.st_size, sizeof(struct sim_shared));
            close(fd);
            return NULL;
        }
        struct sim_shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (s == MAP_FAILED) {
            snprintf(why, whylen, "cannot map it (%s)", strerror(errno));
            close(fd);
            return NULL;
        }
        if (s->magic != SIM_MAGIC || s->version != SIM_VERSION || s->size != sizeof *s) {
            snprintf(why, whylen,
                     "it is not a compatible tailguard simulated GPU (magic %#llx, version %u, size %u; expected "
                     "%#llx, %u, %zu)",
                     (unsigned long long)s->magic, s->version, s->size, (unsigned long long)SIM_MAGIC, SIM_VERSION,
                     sizeof *s);
            munmap(s, sizeof *s);
            close(fd);
            return NULL;
        }
        *keep_fd = fd;
        return s;
    }
    snprintf(why, whylen, "it keeps disappearing while being opened");
    return NULL;
}

static struct sim_shared *private_device(void) {
    struct sim_shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) {
        static struct sim_shared fallback;
        s = &fallback;
    }
    init_shared(s, dev.path);
    return s;
}

/* This process's slice length: TAILGUARD_SIM_SLICE_US, or what its channel group was set to (control.c). */
static uint64_t own_slice(void) { return __atomic_load_n(&dev.slice_ns, __ATOMIC_RELAXED); }

void sim_device_set_slice(uint64_t ns) {
    __atomic_store_n(&dev.slice_ns, ns, __ATOMIC_RELAXED);
    if (dev.slot >= 0) atomic_store(&dev.shm->slots[dev.slot].slice_ns, ns);
}

void sim_device_open(void) {
    tg_option_string(TG_OPT_SIM_DEVICE, dev.path, sizeof dev.path);
    __atomic_store_n(&dev.slice_ns, tg_option_uint(TG_OPT_SIM_SLICE_US, SIM_MIN_SLICE_US, SIM_MAX_SLICE_US, 0) * 1000u, __ATOMIC_RELAXED);
    dev.pid = getpid();
    dev.start_time = tg_process_start_ticks((uint32_t)dev.pid);
    char why[PATH_MAX + 512];
    dev.shm = map_file(dev.path, why, sizeof why, &dev.fd);
    if (!dev.shm) {
        tg_warn("simulated GPU file %s: %s; this process uses a private simulated GPU instead (shared with no other "
                "process). Remove the file, or set TAILGUARD_SIM_DEVICE to another path, to share one again",
                dev.path, why);
        dev.shm = private_device();
    }
    memcpy(dev.uuid, dev.shm->uuid, sizeof dev.uuid);
}

void sim_device_uuid(unsigned char out[16]) { memcpy(out, dev.uuid, 16); }

static int claim_slot(void) {
    struct sim_shared *shm = dev.shm;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < SIM_SLOTS; i++) {
            struct sim_slot *s = &shm->slots[i];
            int32_t zero = 0;
            if (atomic_load(&s->pid) != 0 || !atomic_compare_exchange_strong(&s->pid, &zero, (int32_t)dev.pid))
                continue;
            /* its liveness lock: held by nobody once its last holder has exited (if someone still has it, that
             * process is leaving the slot right now: try the next) */
            if (dev.fd >= 0 && tg_lock_hold(dev.fd, SIM_LOCK_BASE + (uint64_t)i) == 0) {
                atomic_store(&s->pid, 0);
                continue;
            }
            atomic_store(&s->start_time, dev.start_time);
            atomic_store(&s->slice_ns, own_slice());
            atomic_store(&s->deadline_ns, 0);
            atomic_store(&s->grant_ns, 0);
            atomic_store(&s->device_ns, 0);
            atomic_store(&s->grants, 0);
            /* Leftovers of a previous holder of this slot that left without cleaning up. */
            atomic_fetch_and(&shm->waiting, ~bit(i));
            uint64_t o = atomic_load(&shm->owner);
            if (owner_slot(o) == i) {
                dev.slot = i;
                handoff(o, atomic_load(&shm->waiting) & ~bit(i), sim_now());
            }
            return i;
        }
        for (int i = 0; i < SIM_SLOTS; i++) {
            int32_t pid = atomic_load(&shm->slots[i].pid);
            if (pid && slot_gone(i, pid)) reclaim(i, pid);
        }
    }
    return -1;
}

static void attach(void) {
    dev.slot = claim_slot();
    if (dev.slot >= 0) return;
    tg_warn("simulated GPU file %s: all %d process slots are taken by live processes; this process uses a private "
            "simulated GPU instead",
            dev.path, SIM_SLOTS);
    dev.shm = private_device();
    dev.slot = claim_slot();
}

/* Takes the device from an owner that overstayed its slice (stopped, or not scheduled) or has gone: the hardware
 * would have preempted it. Its slot leaves the waiting set until it asks again, so a stopped process is not handed the
 * device over and over. */
static void preempt(uint64_t o, int x, int32_t xpid) {
    struct sim_shared *shm = dev.shm;
    if (xpid != 0 && slot_gone(x, xpid)) {
        reclaim(x, xpid);
        return;
    }
    atomic_fetch_and(&shm->waiting, ~bit(x));
    tg_debug("simulated GPU: preempting process %d, which overstayed its slice", (int)xpid);
    /* On the timeline the hardware switched at the end of its slice, however late its host thread is: the next
     * process starts there (handoff keeps that within SIM_LAG_NS of now). The owner's own timeline never passes its
     * deadline, so the two do not overlap. */
    handoff(o, atomic_load(&shm->waiting) & ~bit(x), atomic_load(&shm->slots[x].deadline_ns));
}

/* The owner's work ran out at timeline time t and it has not let go: take the device as of t. */
static int take_over(uint64_t o, int x, uint64_t t, uint64_t ptime) {
    struct sim_shared *shm = dev.shm;
    int me = dev.slot;
    uint64_t grant = t > ptime ? t : ptime, fl = floor_now(sim_now());
    if (grant < fl) grant = fl;
    atomic_store(&shm->slots[me].grant_ns, grant);
    atomic_store(&shm->slots[me].deadline_ns, grant + own_slice());
    if (!atomic_compare_exchange_strong(&shm->owner, &o, pack(me, owner_gen(o) + 1))) return 0;
    atomic_store(&shm->slots[x].idle_at, 0);
    return 1;
}

void sim_device_committed(uint64_t idle_at) {
    if (!dev.own || dev.slot < 0) return;
    struct sim_shared *shm = dev.shm;
    atomic_store(&shm->slots[dev.slot].idle_at, idle_at);
    uint64_t others = atomic_load(&shm->waiting) & ~bit(dev.slot);
    if (idle_at && others) wake_slot(rr_next(others, dev.slot)); /* so it can take over if we are late */
}

void sim_device_more_work(int kernel) {
    struct sim_shared *shm = dev.shm;
    int me = dev.slot;
    if (!shm || me < 0) return;
    if (owner_slot(atomic_load(&shm->owner)) == me) {
        atomic_store(&shm->slots[me].idle_at, 0);
    } else if (kernel && !(atomic_load(&shm->waiting) & bit(me))) {
        atomic_store(&shm->slots[me].ready_ns, sim_now());
        /* The doorbell: like the hardware's scheduler, the device learns of runnable work when it is submitted, not
         * when this process's worker thread next runs, so the owner hands over at its slice end even if that thread
         * is slow to wake. The worker clears the bit when it gets the device (only kernels need it). */
        atomic_fetch_or(&shm->waiting, bit(me));
    }
}

void sim_device_acquire(uint64_t *ptime) {
    if (dev.own) {
        if (atomic_load(&dev.shm->owner) == pack(dev.slot, dev.own)) {
            if (atomic_load(&dev.shm->waiting) & bit(dev.slot)) atomic_fetch_and(&dev.shm->waiting, ~bit(dev.slot));
            return;
        }
        dev.own = 0; /* preempted by a waiter after we overstayed */
    }
    if (dev.slot < 0) attach();
    struct sim_shared *shm = dev.shm;
    int me = dev.slot;
    struct sim_slot *ms = &shm->slots[me];
    int asked = 0;
    uint64_t checked = 0, recheck = 0, o;
    for (;;) {
        while (atomic_load(&dev.left)) pause(); /* exiting: never rejoin (signals are blocked on the worker) */
        uint32_t w = atomic_load(&ms->wake);
        o = atomic_load(&shm->owner);
        int x = owner_slot(o);
        if (x == me) break;
        uint64_t now = sim_now();
        if (x < 0) {
            uint64_t grant = atomic_load(&shm->last_release_ns), fl = floor_now(now);
            if (fl < *ptime) fl = *ptime; /* our work was submitted then */
            if (grant < fl) grant = fl;
            atomic_store(&ms->grant_ns, grant);
            atomic_store(&ms->deadline_ns, grant + own_slice());
            if (atomic_compare_exchange_strong(&shm->owner, &o, pack(me, owner_gen(o) + 1))) {
                o = pack(me, owner_gen(o) + 1);
                break;
            }
            continue;
        }
        /* Announce ourselves, then look again: an owner releasing meanwhile either sees the bit or we see it free. */
        if (!asked || !(atomic_load(&shm->waiting) & bit(me))) {
            atomic_fetch_or(&shm->waiting, bit(me));
            asked = 1;
            continue;
        }
        struct sim_slot *xs = &shm->slots[x];
        int32_t xpid = atomic_load(&xs->pid);
        uint64_t until = atomic_load(&xs->deadline_ns) + SIM_GRACE_NS;
        int gone = xpid == 0;
        if (!gone && (o != checked || now >= recheck)) { /* a cheap liveness check: a killed owner costs nothing */
            checked = o;
            recheck = now + SIM_LIVENESS_NS;
            gone = slot_gone(x, xpid);
        }
        if (gone || now >= until) {
            preempt(o, x, xpid);
            continue;
        }
        uint64_t idle_at = atomic_load(&xs->idle_at), wake_at = until < recheck ? until : recheck;
        if (idle_at) {
            if (now >= idle_at + SIM_TAKEOVER_NS) {
                if (take_over(o, x, idle_at, *ptime)) {
                    o = atomic_load(&shm->owner);
                    break;
                }
                continue;
            }
            if (idle_at + SIM_TAKEOVER_NS < wake_at) wake_at = idle_at + SIM_TAKEOVER_NS;
        }
        wait_until(&ms->wake, w, wake_at);
    }
    if (asked || (atomic_load(&shm->waiting) & bit(me))) atomic_fetch_and(&shm->waiting, ~bit(me));
    dev.own = owner_gen(o);
    dev.deadline = atomic_load(&ms->deadline_ns);
    uint64_t grant = atomic_load(&ms->grant_ns);
    if (*ptime < grant) {
        *ptime = grant;
    } else if (*ptime > grant) { /* granted before our work was ready: the slice starts with the work */
        dev.deadline += *ptime - grant;
        atomic_store(&ms->deadline_ns, dev.deadline);
    }
    atomic_fetch_add_explicit(&ms->grants, 1, memory_order_relaxed);
}

uint64_t sim_device_deadline(void) { return dev.deadline; }

void sim_device_slice_end(uint64_t t) {
    if (!dev.own) return;
    struct sim_shared *shm = dev.shm;
    uint64_t o = pack(dev.slot, dev.own);
    if (atomic_load(&shm->owner) != o) {
        dev.own = 0;
        return;
    }
    uint64_t others = atomic_load(&shm->waiting) & ~bit(dev.slot);
    if (others) {
        dev.own = 0;
        handoff(o, others, t);
        return;
    }
    uint64_t dl = dev.deadline + own_slice(); /* nobody waits: a fresh slice */
    if (dl <= t) dl = t + own_slice();
    atomic_store(&shm->slots[dev.slot].deadline_ns, dl);
    dev.deadline = dl;
}

void sim_device_release(uint64_t t) {
    if (!dev.own) return;
    struct sim_shared *shm = dev.shm;
    /* A doorbell rung while we owned the device (a submitter racing with our worker's acquire) is stale: work
     * submitted after this point rings again, and work already queued is acquired for by our worker. */
    if (atomic_load(&shm->waiting) & bit(dev.slot)) atomic_fetch_and(&shm->waiting, ~bit(dev.slot));
    uint64_t o = pack(dev.slot, dev.own);
    dev.own = 0;
    if (atomic_load(&shm->owner) != o) return;
    handoff(o, atomic_load(&shm->waiting) & ~bit(dev.slot), t);
}

void sim_device_account(uint64_t ns) {
    if (dev.slot >= 0) atomic_fetch_add_explicit(&dev.shm->slots[dev.slot].device_ns, ns, memory_order_relaxed);
}

void sim_device_leave(void) {
    atomic_store(&dev.left, 1);
    if (!dev.shm || dev.slot < 0) return;
    struct sim_shared *shm = dev.shm;
    int me = dev.slot;
    atomic_fetch_and(&shm->waiting, ~bit(me));
    uint64_t o = atomic_load(&shm->owner);
    if (owner_slot(o) == me) handoff(o, atomic_load(&shm->waiting) & ~bit(me), sim_now());
    atomic_store(&shm->slots[me].start_time, 0);
    atomic_store(&shm->slots[me].pid, 0);
    dev.own = 0;
}

void sim_device_after_fork(void) {
    dev.slot = -1;
    dev.own = 0;
    dev.pid = getpid();
    dev.start_time = tg_process_start_ticks((uint32_t)dev.pid);
    /* the inherited descriptor shares the parent's open file description, and so its liveness lock: the child opens
     * its own (or, failing that, tells liveness from /proc) */
    if (dev.fd >= 0) {
        close(dev.fd);
        dev.fd = open(dev.path, O_RDWR | O_CLOEXEC);
    }
}
