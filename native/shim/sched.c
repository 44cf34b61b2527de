/* The scheduler: priorities between processes sharing a GPU, arbitrated by the shims themselves through the GPU's
 * control block (tailguard/control.h); no daemon takes part.
 *
 * Every attached process has a slot. A process is busy from its first work after idle until a synchronisation shows
 * its work complete (a context/device sync, or a stream or event sync covering every stream it used); each busy
 * period is a request window, with begin and end records. Before a launch, a process looks for a valid busy slot of
 * higher priority and, while there is one, holds the launch: the calling thread waits, so launches are released in
 * the order they were made and a stream is never reordered. Each hold is a record naming who caused it.
 *
 * Fail-open rules: a busy claim lapses when its process dies, stops or stays silent past the lease; a control block
 * that is corrupt or of another version turns scheduling off (with one message), never the program. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "tailguard/control.h"
#include "tailguard/log.h"
#include "tailguard/options.h"
#include "tailguard/ring_files.h"
#include "interpose/wrap.h"

int tg_sched_state;  /* 0: not attached yet, 1: scheduling, -1: off */
static tg_ctl *ctl;
static int ctl_fd = -1; /* the control block, open while attached: it carries my slot's liveness lock */
static uint32_t my_ns;  /* my PID namespace */
static int me = -1;  /* my slot */
static uint64_t lease_ns, share_hold_ns, share_run_ns;
static const uint64_t share_cap_ns = 50000000; /* the longest minimum-share turn (50% of 100 ms) */
static uint64_t window_ns; /* TAILGUARD_WINDOW_US, in ns (the in-flight window, below) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* This process's request window (busy period). */
#define MAX_STREAMS 4
static struct {
    int busy;
    uint64_t since, seq, launches_at_begin;
    int streams_n, streams_many;
    uint64_t streams[MAX_STREAMS];
} win;
static uint64_t free_until; /* min-share: no holds before this time */
static int holds_on = 1;    /* TAILGUARD_HOLDS */

/* What this process knows about the others' liveness (a /proc read is too slow to repeat at every launch). */
static struct {
    uint32_t pid, ns;
    uint64_t checked;
    int ok;
} seen[TG_CTL_SLOTS];

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *timeout) {
    return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}

/* ---- the control block ---- */

static int usable(const tg_ctl *c, const uint8_t uuid[16]) {
    return !memcmp(c->magic, TG_CTL_MAGIC, 8) && c->version == TG_CTL_VERSION && c->size == sizeof(tg_ctl) &&
           c->slot_count == TG_CTL_SLOTS && c->checksum == tg_ctl_checksum(c) && !memcmp(c->gpu_uuid, uuid, 16);
}

/* Opens (or creates, race-free: built under a temporary name, then linked into place) the GPU's control block. */
static tg_ctl *open_control(const char *dir, const uint8_t uuid[16]) {
    char path[512], tmp[560], hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
    snprintf(path, sizeof path, "%s/gpu-%s.ctl", dir, hex);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
        int t = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (t >= 0) {
            fchmod(t, 0666); /* processes of every user on the GPU share it */
            tg_ctl init;
            memset(&init, 0, sizeof init);
            memcpy(init.magic, TG_CTL_MAGIC, 8);
            init.version = TG_CTL_VERSION;
            init.size = sizeof(tg_ctl);
            memcpy(init.gpu_uuid, uuid, 16);
            init.slot_count = TG_CTL_SLOTS;
            init.checksum = tg_ctl_checksum(&init);
            int ok = write(t, &init, sizeof init) == (ssize_t)sizeof init;
            close(t);
            if (ok && link(tmp, path) != 0) {
                /* another process won the race (EEXIST): fine, theirs is used; otherwise the open below says why */
            }
            unlink(tmp);
        }
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        tg_warn("cannot open the GPU control block %s (%s): priorities are not enforced in this process", path,
                strerror(errno));
        return 0;
    }
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof(tg_ctl))
        p = mmap(0, sizeof(tg_ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED || !usable(p, uuid)) {
        tg_warn("the GPU control block %s is corrupt or from another tailguard version: priorities are not "
                "enforced in this process (remove the file when no process uses the GPU)",
                path);
        if (p != MAP_FAILED) munmap(p, sizeof(tg_ctl));
        close(fd);
        return 0;
    }
    ctl_fd = fd;
    return p;
}

/* Slot i's liveness lock, taken for as long as this process is attached; 0 if another process has it (a file system
 * without OFD locks has none to take: /proc alone tells liveness there). */
static int lock_slot(unsigned i) { return tg_lock_hold(ctl_fd, TG_CTL_SLOT_LOCK_OFFSET(i)) != 0; }

static void lock_ctl(void) {
    uint32_t self = (uint32_t)getpid();
    for (int spins = 0;; spins++) {
        uint32_t owner = 0;
        if (__atomic_compare_exchange_n(&ctl->lock, &owner, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
        /* taken only for microseconds: a holder that is gone is replaced */
        if (spins > 1000 && !tg_process_alive(owner, 0) &&
            __atomic_compare_exchange_n(&ctl->lock, &owner, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        sched_yield();
    }
}
static void unlock_ctl(void) { __atomic_store_n(&ctl->lock, 0, __ATOMIC_RELEASE); }

static void clear_busy(int slot) {
    if (!__atomic_exchange_n(&ctl->slot[slot].busy, 0, __ATOMIC_ACQ_REL)) return;
    __atomic_fetch_and(&ctl->busy_mask, ~(1ull << slot), __ATOMIC_RELEASE);
    __atomic_fetch_add(&ctl->idle_seq, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&ctl->waiters, __ATOMIC_ACQUIRE)) futex(&ctl->idle_seq, FUTEX_WAKE, INT32_MAX, 0);
}

/* Takes a slot: this process's own (an exec'd image keeps its pid, and dropped the lock with the descriptor), else a
 * free one, else one whose process is gone; and its liveness lock, which also settles a race for one slot. */
static int claim_slot(int priority) {
    uint32_t pid = (uint32_t)getpid();
    uint64_t ticks = tg_process_start_ticks(pid);
    int found = -1;
    lock_ctl();
    for (unsigned i = 0; i < TG_CTL_SLOTS && found < 0; i++) {
        tg_ctl_slot *s = &ctl->slot[i];
        if (s->pid == pid && s->pid_ns == my_ns && s->start_ticks == ticks && lock_slot(i)) found = (int)i;
    }
    for (unsigned i = 0; i < TG_CTL_SLOTS && found < 0; i++)
        if (!tg_ctl_slot_alive(ctl, ctl_fd, i, my_ns) && lock_slot(i)) found = (int)i;
    if (found >= 0) {
        tg_ctl_slot *s = &ctl->slot[found];
        clear_busy(found);
        s->pid_ns = my_ns;
        s->start_ticks = ticks;
        s->priority = priority;
        s->mechanisms = 0;
        s->timeslice_us = 0;
        s->held_ns = 0;
        s->holds = 0;
        s->in_sync = 0;
        s->window = 0;
        __atomic_store_n(&s->pid, pid, __ATOMIC_RELEASE);
    }
    unlock_ctl();
    return found;
}

/* First work on the GPU: find its control block and take a slot. */
static void attach(void) {
    pthread_mutex_lock(&lock);
    if (tg_sched_state == 0) {
        uint8_t uuid[16];
        char dir[256];
        static int tries;
        tg_sched_state = -1;
        if (tg_option_bool(TG_OPT_DISABLE)) goto out;
        if (!tg_gpu_uuid(uuid)) {
            /* another thread may still be finding out the GPU (its first launch): try again at the next calls */
            if (++tries < 10000) tg_sched_state = 0;
            else tg_warn("the GPU of this process is unknown: priorities are not enforced in this process");
            goto out;
        }
        tg_option_string(TG_OPT_DIR, dir, sizeof dir);
        my_ns = tg_pid_namespace();
        ctl = open_control(dir, uuid);
        if (!ctl) goto out;
        tg_ring_header *h = tg_ring_get();
        int priority = h ? h->priority : tg_option_priority_env();
        me = claim_slot(priority);
        if (me < 0) {
            tg_warn("all %u slots of the GPU control block are taken: priorities are not enforced in this process",
                    TG_CTL_SLOTS);
            goto out;
        }
        lease_ns = tg_option_uint(TG_OPT_LEASE_MS, 1, 10000, 0) * 1000000ull;
        window_ns = tg_option_uint(TG_OPT_WINDOW_US, 0, 1000000, 0) * 1000ull;
        holds_on = tg_option_bool(TG_OPT_HOLDS);
        uint64_t share = tg_option_uint(TG_OPT_MIN_SHARE, 0, 50, 0);
        share_hold_ns = share ? (100 - share) * 1000000ull : 0; /* per 100 ms: held at most this long ... */
        share_run_ns = share * 1000000ull;                       /* ... then free for this long */
        if (share) __atomic_fetch_or(&ctl->slot[me].mechanisms, TG_MECH_MIN_SHARE, __ATOMIC_RELAXED);
        __atomic_store_n(&tg_sched_state, 1, __ATOMIC_RELEASE); /* publishes ctl, me and the options above */
        tg_debug("scheduling on slot %d of the GPU control block (priority %d)", me, priority);
    }
out:
    pthread_mutex_unlock(&lock);
}

/* ---- records ---- */

static void emit(int kind, int op, int api, uint64_t t0, uint64_t t1, uint64_t stream, const void *payload) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    tg_lane *l = tg_lane_get(h);
    uint64_t pos;
    tg_record *r = tg_begin(h, l, &pos, kind, 0);
    if (!r) return;
    tg_set_time(r, t0, t1);
    r->op = (uint8_t)op;
    r->api = (uint16_t)api;
    r->stream = stream;
    memcpy(&r->u, payload, sizeof r->u);
    tg_publish(h, l, r, pos);
}

static uint64_t lane_launches(void) {
    tg_ring_header *h = tg_ring_get();
    uint64_t n = 0;
    if (h)
        for (unsigned i = 0; i < h->lanes_used && i < TG_LANES; i++)
            n += __atomic_load_n(&tg_lanes(h)[i].launches, __ATOMIC_RELAXED);
    return n;
}

/* ---- busy and idle ---- */

static void become_busy(uint64_t now, uint64_t stream) {
    pthread_mutex_lock(&lock);
    if (!win.busy) {
        tg_ctl_slot *s = &ctl->slot[me];
        win.busy = 1;
        win.since = now;
        win.seq++;
        win.streams_n = 0;
        win.streams_many = 0;
        win.launches_at_begin = lane_launches();
        s->busy_since = now;
        s->window = win.seq;
        __atomic_store_n(&s->lease_until, now + lease_ns, __ATOMIC_RELAXED);
        __atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
        __atomic_fetch_or(&ctl->busy_mask, 1ull << me, __ATOMIC_RELEASE);
        tg_record u;
        memset(&u, 0, sizeof u);
        u.u.window.seq = win.seq;
        emit(TG_KIND_WINDOW, TG_OP_BEGIN, TG_API_NONE, now, now, stream, &u.u);
    }
    int known = win.streams_many;
    for (int i = 0; i < win.streams_n && !known; i++) known = win.streams[i] == stream;
    if (!known) {
        if (win.streams_n < MAX_STREAMS) win.streams[win.streams_n++] = stream;
        else win.streams_many = 1;
    }
    pthread_mutex_unlock(&lock);
}

static int stream_known(uint64_t stream) {
    if (win.streams_many) return 1;
    for (int i = 0; i < win.streams_n; i++)
        if (win.streams[i] == stream) return 1;
    return 0;
}

static int window_uses_only(uint64_t stream) {
    if (win.streams_many) return 0;
    for (int i = 0; i < win.streams_n; i++)
        if (win.streams[i] != stream) return 0;
    return 1;
}

static void become_idle(uint64_t now) {
    tg_record u;
    memset(&u, 0, sizeof u);
    u.u.window.seq = win.seq;
    u.u.window.launches = (uint32_t)(lane_launches() - win.launches_at_begin);
    u.u.window.streams = win.streams_many ? MAX_STREAMS + 1 : (uint32_t)win.streams_n;
    uint64_t since = win.since;
    win.busy = 0;
    clear_busy(me);
    emit(TG_KIND_WINDOW, TG_OP_END, TG_API_NONE, since, now, 0, &u.u);
}

/* ---- who holds whom ---- */

/* Process pid of my PID namespace runs: it exists and is neither stopped nor a zombie (/proc/PID/stat's state). */
static int running(uint32_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    const char *st = strrchr(buf, ')');
    return st && st[1] == ' ' && st[2] != 'T' && st[2] != 't' && st[2] != 'Z' && st[2] != 'X';
}

/* A busy claim counts while its process lives, is not stopped, and waits in a sync or called within the lease. A
 * process in another PID namespace cannot be looked at: its claim counts while its liveness lock is held and within
 * the lease, whether or not it waits in a sync (it may be stopped there, which only /proc would tell). */
static int claim_valid(int i, uint64_t now) {
    tg_ctl_slot *s = &ctl->slot[i];
    if (!__atomic_load_n(&s->busy, __ATOMIC_ACQUIRE)) return 0;
    uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE), ns = __atomic_load_n(&s->pid_ns, __ATOMIC_ACQUIRE);
    int local = ns == my_ns;
    if (seen[i].pid != pid || seen[i].ns != ns || now - seen[i].checked > 5000000) { /* at most every 5 ms */
        seen[i].pid = pid;
        seen[i].ns = ns;
        seen[i].checked = now;
        seen[i].ok = local ? running(pid) : tg_ctl_slot_alive(ctl, ctl_fd, (unsigned)i, my_ns);
    }
    if (!seen[i].ok) return 0;
    return (local && __atomic_load_n(&s->in_sync, __ATOMIC_ACQUIRE)) ||
           now < __atomic_load_n(&s->lease_until, __ATOMIC_ACQUIRE);
}

/* The busy process of highest priority above mine with a valid claim, or -1. */
static int blocker(uint64_t now) {
    uint64_t mask = __atomic_load_n(&ctl->busy_mask, __ATOMIC_ACQUIRE) & ~(1ull << me);
    if (TG_LIKELY(!mask)) return -1;
    int mine = __atomic_load_n(&ctl->slot[me].priority, __ATOMIC_RELAXED), best = -1, best_p = mine;
    while (mask) {
        int i = __builtin_ctzll(mask);
        mask &= mask - 1;
        int p = __atomic_load_n(&ctl->slot[i].priority, __ATOMIC_RELAXED);
        if (p > best_p && claim_valid(i, now)) {
            best = i;
            best_p = p;
        }
    }
    return best;
}

static void hold(int api, uint64_t stream, int cause, uint64_t now) {
    tg_ctl_slot *c = &ctl->slot[cause];
    tg_record u;
    memset(&u, 0, sizeof u);
    u.u.hold.cause_pid = c->pid;
    u.u.hold.cause_priority = c->priority;
    u.u.hold.cause_window = c->window;
    u.u.hold.priority = ctl->slot[me].priority;
    u.u.hold.released_by = TG_RELEASE_IDLE;
    uint64_t t0 = now;
    for (;;) {
        uint32_t seq = __atomic_load_n(&ctl->idle_seq, __ATOMIC_ACQUIRE);
        now = tg_now();
        int b = blocker(now);
        if (b < 0) {
            /* gone idle, or its claim lapsed (dead, stopped, silent past the lease) */
            if (__atomic_load_n(&ctl->slot[cause].busy, __ATOMIC_ACQUIRE) &&
                __atomic_load_n(&ctl->slot[cause].window, __ATOMIC_RELAXED) == u.u.hold.cause_window)
                u.u.hold.released_by = TG_RELEASE_LAPSED;
            break;
        }
        if (share_hold_ns && now - t0 >= share_hold_ns) {
            /* our minimum share is due: everyone above us holds their launches for share_run_ns */
            free_until = now + share_run_ns;
            __atomic_store_n(&ctl->share_priority, ctl->slot[me].priority, __ATOMIC_RELAXED);
            __atomic_store_n(&ctl->share_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
            __atomic_store_n(&ctl->share_until, free_until, __ATOMIC_RELEASE);
            u.u.hold.released_by = TG_RELEASE_MIN_SHARE;
            break;
        }
        __atomic_fetch_add(&ctl->waiters, 1, __ATOMIC_ACQ_REL);
        struct timespec ts = {0, 2000000}; /* wake to re-check leases and liveness */
        futex(&ctl->idle_seq, FUTEX_WAIT, seq, &ts);
        __atomic_fetch_sub(&ctl->waiters, 1, __ATOMIC_ACQ_REL);
    }
    tg_ctl_slot *s = &ctl->slot[me];
    __atomic_fetch_add(&s->holds, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->held_ns, now - t0, __ATOMIC_RELAXED);
    emit(TG_KIND_HOLD, TG_OP_HOLD_PRIORITY, api, t0, now, stream, &u.u);
}

/* ---- the in-flight window ----
 *
 * While a process of higher priority is attached, this process keeps at most TAILGUARD_WINDOW_US of estimated GPU
 * time in flight: what it already submitted runs before (or time-sliced with) higher-priority work that arrives, so
 * the window bounds how long that work can wait behind it. Completion is seen through the process's own events,
 * recorded after a batch of launches worth about half the window (never after every launch: an event per launch
 * costs far more than it is worth). The GPU time of a launch is learned from the time between consecutive events of a
 * stream, over intervals during which the stream never ran dry. */
#define CHECKPOINTS 64
#define STREAMS 8
static const tg_gpu_ops *gpu;
static int window_on;                 /* a higher-priority process is attached */
static uint64_t window_checked;       /* when that was last looked at */
static uint64_t est_ns[2];            /* learned GPU time per launch: kernels, graphs */
static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static struct checkpoint {
    void *event;
    int stream;         /* index in streams[] */
    uint32_t launches;
    uint64_t est;
    int graphs;         /* graph launches among them */
    int continuous;     /* the stream's previous checkpoint had not completed when this one was recorded */
    int done;
} cp[CHECKPOINTS];
static unsigned cp_count;             /* pending checkpoints, oldest first */
static struct stream_state {
    void *stream;
    uint64_t key, pending_est;
    uint32_t pending_launches, pending_graphs;
    void *last_event;                 /* its most recently recorded checkpoint (pending or done) */
    void *done_event;                 /* its most recently completed checkpoint: the start of the next interval */
    int last_pending;
} streams[STREAMS];
static int streams_n;
static void *pool[CHECKPOINTS + STREAMS * 2];
static int pool_n;

void tg_sched_set_ops(const tg_gpu_ops *ops) { gpu = ops; }

static void *take_event(void) {
    if (pool_n) return pool[--pool_n];
    void *e = 0;
    return gpu->event_create(&e) == 0 ? e : 0;
}
static void give_event(void *e) {
    if (e && pool_n < (int)(sizeof pool / sizeof *pool)) pool[pool_n++] = e;
}

static struct stream_state *stream_of(void *stream, uint64_t key) {
    for (int i = 0; i < streams_n; i++)
        if (streams[i].key == key) return &streams[i];
    if (streams_n == STREAMS) return 0; /* more streams than tracked: their work counts only through holds */
    struct stream_state *st = &streams[streams_n++];
    memset(st, 0, sizeof *st);
    st->stream = stream;
    st->key = key;
    return st;
}

/* A checkpoint completed: learn from it, and let go of the event that started its interval. */
static void completed(struct checkpoint *c) {
    struct stream_state *st = &streams[c->stream];
    uint64_t ns;
    int kind = c->graphs == 0 ? 0 : c->graphs == (int)c->launches ? 1 : -1;
    if (c->continuous && st->done_event && kind >= 0 && c->launches &&
        gpu->elapsed_ns(st->done_event, c->event, &ns) == 0) {
        uint64_t per = ns / c->launches;
        est_ns[kind] = est_ns[kind] ? (3 * est_ns[kind] + per) / 4 : per;
    }
    give_event(st->done_event);
    st->done_event = c->event;
    if (st->last_event == c->event) st->last_pending = 0;
    c->done = 1;
}

static uint64_t in_flight(int poll) {
    uint64_t sum = 0;
    unsigned keep = 0;
    for (unsigned i = 0; i < cp_count; i++) {
        if (!cp[i].done && poll && gpu->event_query(cp[i].event) != 1) completed(&cp[i]);
        if (cp[i].done) continue;
        sum += cp[i].est;
        cp[keep++] = cp[i];
    }
    cp_count = keep;
    for (int i = 0; i < streams_n; i++) sum += streams[i].pending_est;
    return sum;
}

static void checkpoint(struct stream_state *st) {
    if (cp_count == CHECKPOINTS) return;
    void *e = take_event();
    if (!e || gpu->event_record(e, st->stream) != 0) {
        give_event(e);
        return;
    }
    struct checkpoint *c = &cp[cp_count++];
    c->event = e;
    c->stream = (int)(st - streams);
    c->launches = st->pending_launches;
    c->graphs = (int)st->pending_graphs;
    c->est = st->pending_est;
    c->continuous = st->last_event && st->last_pending && gpu->event_query(st->last_event) == 1;
    c->done = 0;
    st->last_event = e;
    st->last_pending = 1;
    st->pending_est = 0;
    st->pending_launches = st->pending_graphs = 0;
}

/* Is a process of higher priority attached to this GPU? Looked at every 20 ms (so a priority changed at runtime, or a
 * process that attached or left, takes effect within 20 ms of this process's next launch). */
static void refresh_window(uint64_t now) {
    if (now - window_checked < 20000000) return;
    window_checked = now;
    int mine = ctl->slot[me].priority, higher = 0;
    for (unsigned i = 0; i < TG_CTL_SLOTS && !higher; i++) {
        uint32_t pid = __atomic_load_n(&ctl->slot[i].pid, __ATOMIC_ACQUIRE);
        higher = (int)i != me && pid && ctl->slot[i].priority > mine;
    }
    /* the channel groups' timeslice follows (a driver call only when the verdict changes) */
    int shortened = 0;
    uint32_t ts = tg_timeslice_update(higher, &shortened);
    ctl->slot[me].timeslice_us = ts;
    /* With a short timeslice, work in flight delays a higher-priority request by at most one short slice whatever
     * its amount, and bounding it only costs throughput (measured: docs/scheduling.md): the window is for devices
     * without that lever (HIP, or a driver that refused the control). */
    int window = higher && window_ns && gpu && !shortened;
    uint32_t mech = higher ? (holds_on ? TG_MECH_HOLDS : 0) | (window ? TG_MECH_WINDOW : 0) |
                                 (shortened ? TG_MECH_TIMESLICE : 0)
                           : 0;
    uint32_t mask = TG_MECH_HOLDS | TG_MECH_WINDOW | TG_MECH_TIMESLICE;
    uint32_t old = __atomic_load_n(&ctl->slot[me].mechanisms, __ATOMIC_RELAXED);
    __atomic_store_n(&ctl->slot[me].mechanisms, (old & ~mask) | mech, __ATOMIC_RELAXED);
    window_on = window;
}

/* Before a launch: wait (a window hold) while in-flight work plus this launch would exceed the window. */
static void window_wait(int api, uint64_t key, int graph) {
    pthread_mutex_lock(&wlock);
    uint64_t next = est_ns[graph] ? est_ns[graph] : window_ns / 2, t0 = 0;
    uint64_t flying = in_flight(1);
    while (flying && flying + next > window_ns) {
        if (!t0) t0 = tg_now();
        /* nothing recorded yet covers the pending work: record a checkpoint to wait for */
        if (cp_count == 0)
            for (int i = 0; i < streams_n; i++)
                if (streams[i].pending_launches) checkpoint(&streams[i]);
        if (cp_count == 0) break;
        gpu->event_sync(cp[0].event);
        flying = in_flight(1);
    }
    pthread_mutex_unlock(&wlock);
    if (t0) {
        uint64_t now = tg_now();
        tg_record u;
        memset(&u, 0, sizeof u);
        u.u.hold.priority = ctl->slot[me].priority;
        u.u.hold.released_by = TG_RELEASE_DRAINED;
        __atomic_fetch_add(&ctl->slot[me].holds, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&ctl->slot[me].held_ns, now - t0, __ATOMIC_RELAXED);
        emit(TG_KIND_HOLD, TG_OP_HOLD_WINDOW, api, t0, now, key, &u.u);
    }
}

static int is_graph(int api) {
    return api == TG_API_cuGraphLaunch || api == TG_API_cuGraphLaunch_ptsz || api == TG_API_hipGraphLaunch;
}

void tg_sched_submitted(int api, uint64_t key) {
    /* the key is also a usable handle: 0 the legacy default stream, 2 the thread's per-thread default stream */
    void *stream = (void *)(uintptr_t)key;
    int graph = is_graph(api);
    if (!window_on || tg_capturing(stream)) return; /* captured launches do not run now */
    pthread_mutex_lock(&wlock);
    struct stream_state *st = stream_of(stream, key);
    if (st) {
        st->pending_est += est_ns[graph] ? est_ns[graph] : window_ns / 2;
        st->pending_launches++;
        st->pending_graphs += (uint32_t)graph;
        if (st->pending_est >= window_ns / 2) checkpoint(st);
    }
    pthread_mutex_unlock(&wlock);
}

/* ---- the wrappers' hooks ---- */

/* A lower-priority process's minimum share is due: hold this launch until it has had it. */
static void yield_share(int api, uint64_t stream, uint64_t until, uint64_t now) {
    tg_record u;
    memset(&u, 0, sizeof u);
    u.u.hold.cause_pid = __atomic_load_n(&ctl->share_pid, __ATOMIC_RELAXED);
    u.u.hold.cause_priority = __atomic_load_n(&ctl->share_priority, __ATOMIC_RELAXED);
    u.u.hold.priority = ctl->slot[me].priority;
    u.u.hold.released_by = TG_RELEASE_MIN_SHARE;
    if (until - now > share_cap_ns) until = now + share_cap_ns; /* a corrupt or stale value holds us briefly only */
    struct timespec ts = {(time_t)((until - now) / 1000000000u), (long)((until - now) % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    uint64_t t1 = tg_now();
    __atomic_fetch_add(&ctl->slot[me].holds, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ctl->slot[me].held_ns, t1 - now, __ATOMIC_RELAXED);
    emit(TG_KIND_HOLD, TG_OP_HOLD_SHARE, api, now, t1, stream, &u.u);
}

void tg_sched_work(int api, uint64_t stream, int is_launch) {
    if (TG_UNLIKELY(__atomic_load_n(&tg_sched_state, __ATOMIC_ACQUIRE) == 0)) attach();
    /* off, or still 0: the GPU is not known yet (attach retries at the next call) */
    if (__atomic_load_n(&tg_sched_state, __ATOMIC_ACQUIRE) <= 0) return;
    uint64_t now = tg_now();
    uint64_t share_until = __atomic_load_n(&ctl->share_until, __ATOMIC_ACQUIRE);
    if (TG_UNLIKELY(share_until > now) && is_launch &&
        ctl->slot[me].priority > __atomic_load_n(&ctl->share_priority, __ATOMIC_RELAXED)) {
        yield_share(api, stream, share_until, now);
        now = tg_now();
    }
    if (is_launch && holds_on && now >= free_until) {
        int b = blocker(now);
        if (TG_UNLIKELY(b >= 0)) {
            hold(api, stream, b, now);
            now = tg_now();
        }
    }
    refresh_window(now);
    if (is_launch && window_on) {
        window_wait(api, stream, is_graph(api));
        now = tg_now();
    }
    tg_ctl_slot *s = &ctl->slot[me];
    __atomic_store_n(&s->lease_until, now + lease_ns, __ATOMIC_RELAXED);
    if (TG_UNLIKELY(!win.busy) || TG_UNLIKELY(!stream_known(stream))) become_busy(now, stream);
}

void tg_sched_sync_enter(void) {
    if (tg_sched_state <= 0) return;
    __atomic_fetch_add(&ctl->slot[me].in_sync, 1, __ATOMIC_ACQ_REL);
}

/* Work known complete on `stream` (or everywhere): the request window ends if it covered only that. */
static void completed_on(int scope, uint64_t stream, uint64_t now) {
    if (!win.busy) return;
    pthread_mutex_lock(&lock);
    if (win.busy && (scope == TG_SYNC_ALL || window_uses_only(stream))) become_idle(now);
    pthread_mutex_unlock(&lock);
}

void tg_sched_sync_exit(int scope, uint64_t stream, int ok) {
    if (tg_sched_state <= 0) return;
    tg_ctl_slot *s = &ctl->slot[me];
    uint64_t now = tg_now();
    __atomic_store_n(&s->lease_until, now + lease_ns, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&s->in_sync, 1, __ATOMIC_ACQ_REL);
    if (ok) completed_on(scope, stream, now);
}

void tg_sched_polled(uint64_t stream, int done) {
    if (tg_sched_state <= 0) return;
    uint64_t now = tg_now();
    /* polling is waiting for the GPU too: it keeps the claim alive like a blocking sync */
    __atomic_store_n(&ctl->slot[me].lease_until, now + lease_ns, __ATOMIC_RELAXED);
    if (done) completed_on(TG_SYNC_STREAM, stream, now);
}

/* Events: which stream each was last recorded on, and how many launches the process had made by then, so that an
 * event found complete (synced or queried) ends a window on that stream only if nothing was launched after it was
 * recorded: programs also record and query events in the middle of their work (PyTorch's allocator does). */
#define EVENTS 256
static struct {
    uint64_t event, stream, launches;
} events[EVENTS];

void tg_sched_event_recorded(uint64_t event, uint64_t stream) {
    if (tg_sched_state <= 0) return;
    unsigned i = (unsigned)((event >> 4) * 0x9E3779B97F4A7C15ull >> 56) % EVENTS;
    events[i].event = 0; /* a collision forgets an older event: its sync then leaves the window open */
    events[i].stream = stream;
    events[i].launches = lane_launches();
    __atomic_store_n(&events[i].event, event, __ATOMIC_RELEASE);
}

uint64_t tg_sched_event_stream(uint64_t event, int *known) {
    unsigned i = (unsigned)((event >> 4) * 0x9E3779B97F4A7C15ull >> 56) % EVENTS;
    *known = 0;
    if (tg_sched_state <= 0 || __atomic_load_n(&events[i].event, __ATOMIC_ACQUIRE) != event) return 0;
    uint64_t stream = events[i].stream, launches = events[i].launches;
    *known = __atomic_load_n(&events[i].event, __ATOMIC_ACQUIRE) == event && launches == lane_launches();
    return stream;
}

int tg_sched_priority(void) { return tg_sched_state > 0 ? ctl->slot[me].priority : 0; }

void tg_sched_after_fork(void) {
    /* the child is another process: it takes a slot of its own at its first work; its copy of the parent's
     * descriptor would keep the parent's liveness lock held after the parent's death */
    if (ctl_fd >= 0) close(ctl_fd);
    ctl_fd = -1;
    tg_sched_state = 0;
    ctl = 0;
    me = -1;
    memset(&win, 0, sizeof win);
    memset(seen, 0, sizeof seen);
    free_until = 0;
    pthread_mutex_init(&lock, 0);
    /* the parent's events are not the child's: forget them (the child is a new CUDA process anyway) */
    cp_count = 0;
    streams_n = 0;
    pool_n = 0;
    window_on = 0;
    window_checked = 0;
    pthread_mutex_init(&wlock, 0);
    tg_timeslice_after_fork();
}

void tg_sched_exit(void) {
    if (tg_sched_state <= 0) return;
    clear_busy(me);
    __atomic_store_n(&ctl->slot[me].pid, 0, __ATOMIC_RELEASE);
}
