/* The scheduler: priorities between processes sharing a GPU, arbitrated by the shims themselves through the GPU's
 * control files (tailguard/control.h, followed by peers.c); no daemon takes part.
 *
 * Every attached process has a slot in its user's file. A process is busy from its first work after idle until a
 * synchronisation shows its work complete (a context/device sync, or a stream or event sync covering every stream it
 * used); each busy period is a request window, with begin and end records. Before a launch, a process looks for a
 * valid busy slot of higher effective priority and, while there is one, holds the launch: the calling thread waits,
 * so launches are released in the order they were made and a stream is never reordered. Each hold is a record naming
 * who caused it.
 *
 * Fail-open rules: a busy claim lapses when its process dies, stops, is replaced by another with its pid, or stays
 * silent past the lease; a control file that is corrupt, of another version or untrusted turns scheduling off (with
 * one message), never the program; a minimum share another process claims holds us at most half the time.
 *
 * The control files themselves are peers.c's; the in-flight budget, the third lever beside holds and the timeslice,
 * is budget.c's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

tg_sched_hot tg_hot __attribute__((aligned(64))) = {.me = -1, .holds_on = 1};
static uint64_t share_hold_ns, share_run_ns;
static const uint64_t share_cap_ns = 50000000; /* the longest minimum-share turn (50% of 100 ms) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* This process's request window (busy period). */
#define MAX_STREAMS 4
static struct {
    int busy;
    uint64_t since, seq, launches_at_begin;
    int streams_n, streams_many;
    uint64_t streams[MAX_STREAMS];
} win;
/* Minimum shares other processes claimed: we yield to them at most half of every 100 ms, whatever they write. */
static uint64_t yield_period_start, yielded_ns;

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *timeout) {
    return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}
void tg_futex_wake(uint32_t *word) { futex(word, FUTEX_WAKE, INT32_MAX, 0); }

/* First work on the GPU: find the control files and take a slot. */
static void attach(void) {
    pthread_mutex_lock(&lock);
    if (tg_hot.state == 0) {
        uint8_t uuid[16];
        char dir[256];
        static int tries;
        tg_hot.state = -1;
        if (tg_option_bool(TG_OPT_DISABLE)) goto out;
        if (!tg_gpu_uuid(uuid)) {
            /* another thread may still be finding out the GPU (its first launch): try again at the next calls */
            if (++tries < 10000) tg_hot.state = 0;
            else tg_warn("the GPU of this process is unknown: priorities are not enforced in this process");
            goto out;
        }
        tg_option_string(TG_OPT_DIR, dir, sizeof dir);
        tg_ring_header *h = tg_ring_get();
        int priority = h ? h->priority : tg_option_priority_env();
        if (tg_peers_attach(dir, uuid, priority) < 0) goto out;
        tg_hot.lease_ns = tg_option_uint(TG_OPT_LEASE_MS, 1, 10000, 0) * 1000000ull;
        tg_budget_configure();
        tg_hot.holds_on = tg_option_bool(TG_OPT_HOLDS);
        uint64_t share = tg_option_uint(TG_OPT_MIN_SHARE, 0, 50, 0);
        share_hold_ns = share ? (100 - share) * 1000000ull : 0; /* per 100 ms: held at most this long ... */
        share_run_ns = share * 1000000ull;                       /* ... then free for this long */
        if (share) __atomic_fetch_or(&TG_OWN_SLOT()->mechanisms, TG_MECH_MIN_SHARE, __ATOMIC_RELAXED);
        if (h && h->priority > tg_my_ceiling) h->priority = tg_my_ceiling; /* what `ps` shows is what is in force */
        __atomic_store_n(&tg_hot.state, 1, __ATOMIC_RELEASE); /* publishes the files, my slot and the options */
        tg_debug("scheduling on slot %d of uid %u's GPU control file (priority %d)", tg_hot.me, (unsigned)geteuid(),
                 tg_my_priority());
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

void tg_sched_held(int op, int api, uint64_t t0, uint64_t t1, uint64_t stream, const void *payload) {
    tg_ctl_slot *s = TG_OWN_SLOT();
    __atomic_fetch_add(&s->holds, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->held_ns, t1 - t0, __ATOMIC_RELAXED);
    emit(TG_KIND_HOLD, op, api, t0, t1, stream, payload);
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
        tg_ctl_slot *s = TG_OWN_SLOT();
        win.busy = 1;
        win.since = now;
        win.seq++;
        win.streams_n = 0;
        win.streams_many = 0;
        win.launches_at_begin = lane_launches();
        s->busy_since = now;
        s->window = win.seq;
        __atomic_store_n(&s->lease_until, now + tg_hot.lease_ns, __ATOMIC_RELAXED);
        __atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
        __atomic_fetch_or(&TG_OWN()->busy_mask, 1ull << tg_hot.me, __ATOMIC_RELEASE);
        tg_record u;
        memset(&u, 0, sizeof u);
        u.u.window.seq = win.seq;
        emit(TG_KIND_WINDOW, TG_OP_BEGIN, TG_API_NONE, now, now, stream, &u.u);
        tg_gpu_time_poll();
        tg_gpu_time_window_begin(win.seq);
    }
    int known = win.streams_many;
    for (int i = 0; i < win.streams_n && !known; i++) known = win.streams[i] == stream;
    if (!known) {
        if (win.streams_n < MAX_STREAMS) win.streams[win.streams_n++] = stream;
        else win.streams_many = 1;
        tg_gpu_time_stream(stream); /* before the stream's first work of the window */
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
    tg_peer_clear_busy(tg_hot.me);
    emit(TG_KIND_WINDOW, TG_OP_END, TG_API_NONE, since, now, 0, &u.u);
    tg_gpu_time_window_end(u.u.window.seq, now);
}

/* ---- who holds whom ---- */

/* The busy process of highest effective priority above mine with a valid claim, as file * TG_CTL_SLOTS + slot, or
 * -1. One load per file when nobody is busy. */
static int blocker(uint64_t now) {
    int n = __atomic_load_n(&tg_hot.npeers, __ATOMIC_ACQUIRE), best = -1, best_p = INT32_MIN;
    for (int f = 0; f < n; f++) {
        uint64_t mask = __atomic_load_n(&TG_PEER(f)->busy_mask, __ATOMIC_ACQUIRE);
        if (f == 0) mask &= ~(1ull << tg_hot.me);
        while (TG_UNLIKELY(mask)) {
            int i = __builtin_ctzll(mask);
            mask &= mask - 1;
            if (best_p == INT32_MIN) best_p = tg_my_priority(); /* only when someone is busy */
            int p = tg_peer_priority(f, i);
            if (p > best_p && tg_peer_claim_valid(f, i, now)) {
                best = f * (int)TG_CTL_SLOTS + i;
                best_p = p;
            }
        }
    }
    return best;
}

static void hold(int api, uint64_t stream, int cause, uint64_t now) {
    int cf = cause / (int)TG_CTL_SLOTS, ci = cause % (int)TG_CTL_SLOTS;
    tg_ctl *cc = TG_PEER(cf);
    tg_record u;
    memset(&u, 0, sizeof u);
    u.u.hold.cause_pid = __atomic_load_n(&cc->slot[ci].pid, __ATOMIC_RELAXED);
    u.u.hold.cause_priority = tg_peer_priority(cf, ci);
    u.u.hold.cause_window = __atomic_load_n(&cc->slot[ci].window, __ATOMIC_RELAXED);
    u.u.hold.priority = tg_my_priority();
    u.u.hold.released_by = TG_RELEASE_IDLE;
    uint64_t t0 = now;
    for (;;) {
        uint32_t seq = __atomic_load_n(&cc->idle_seq, __ATOMIC_ACQUIRE);
        now = tg_now();
        int b = blocker(now);
        if (b < 0) {
            /* gone idle, or its claim lapsed (dead, stopped, silent past the lease) */
            if (__atomic_load_n(&cc->slot[ci].busy, __ATOMIC_ACQUIRE) &&
                __atomic_load_n(&cc->slot[ci].window, __ATOMIC_RELAXED) == u.u.hold.cause_window)
                u.u.hold.released_by = TG_RELEASE_LAPSED;
            break;
        }
        if (share_hold_ns && now - t0 >= share_hold_ns) {
            /* our minimum share is due: everyone above us holds their launches for share_run_ns */
            tg_hot.free_until = now + share_run_ns;
            tg_ctl *own = TG_OWN();
            __atomic_store_n(&own->share_priority, tg_my_priority(), __ATOMIC_RELAXED);
            __atomic_store_n(&own->share_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
            __atomic_store_n(&own->share_until, tg_hot.free_until, __ATOMIC_RELEASE);
            u.u.hold.released_by = TG_RELEASE_MIN_SHARE;
            break;
        }
        if (b != cause) { /* another process took over: wait for its file */
            cause = b;
            cf = cause / (int)TG_CTL_SLOTS;
            ci = cause % (int)TG_CTL_SLOTS;
            cc = TG_PEER(cf);
            continue;
        }
        __atomic_fetch_add(&TG_OWN()->waiters, 1, __ATOMIC_ACQ_REL);
        struct timespec ts = {0, 2000000}; /* wake to re-check leases and liveness */
        if (futex(&cc->idle_seq, FUTEX_WAIT, seq, &ts) != 0 && errno != EAGAIN && errno != ETIMEDOUT &&
            errno != EINTR)
            nanosleep(&ts, 0); /* a futex the kernel refuses (an odd mapping): poll instead */
        __atomic_fetch_sub(&TG_OWN()->waiters, 1, __ATOMIC_ACQ_REL);
    }
    tg_sched_held(TG_OP_HOLD_PRIORITY, api, t0, now, stream, &u.u);
}

/* ---- which levers are in force ---- */

/* Is a process of higher priority attached to this GPU? Looked at every 20 ms (so a priority changed at runtime, or a
 * process that attached or left, takes effect within 20 ms of this process's next launch). */
static void refresh_levers(uint64_t now) {
    if (now - tg_hot.levers_checked < 20000000) return;
    tg_hot.levers_checked = now;
    tg_peers_refresh(now);
    int mine = tg_my_priority(), higher = 0, n = __atomic_load_n(&tg_hot.npeers, __ATOMIC_ACQUIRE);
    for (int f = 0; f < n && !higher; f++)
        for (int i = 0; i < (int)TG_CTL_SLOTS && !higher; i++)
            higher = !(f == 0 && i == tg_hot.me) && __atomic_load_n(&TG_PEER(f)->slot[i].pid, __ATOMIC_ACQUIRE) &&
                     tg_peer_priority(f, i) > mine && tg_peer_slot_alive(f, i, now);
    /* the channel groups' timeslice follows (a driver call only when the verdict changes) */
    int shortened = 0;
    uint32_t ts = tg_timeslice_update(higher, &shortened);
    TG_OWN_SLOT()->timeslice_us = ts;
    /* With a short timeslice, work in flight delays a higher-priority request by at most one short slice whatever
     * its amount, and bounding it only costs throughput (measured: docs/scheduling.md): the budget is for devices
     * without that lever (HIP, or a driver that refused the control). */
    int budget = higher && !shortened && tg_budget_usable();
    uint32_t mech = higher ? (tg_hot.holds_on ? TG_MECH_HOLDS : 0) | (budget ? TG_MECH_BUDGET : 0) |
                                 (shortened ? TG_MECH_TIMESLICE : 0)
                           : 0;
    uint32_t mask = TG_MECH_HOLDS | TG_MECH_BUDGET | TG_MECH_TIMESLICE;
    uint32_t old = __atomic_load_n(&TG_OWN_SLOT()->mechanisms, __ATOMIC_RELAXED);
    __atomic_store_n(&TG_OWN_SLOT()->mechanisms, (old & ~mask) | mech, __ATOMIC_RELAXED);
    tg_hot.budget_on = budget;
}

/* ---- the wrappers' hooks ---- */

/* Some file claims a minimum share that runs past now (one load per file: the common answer is no). */
static inline int share_claimed(uint64_t now) {
    int n = __atomic_load_n(&tg_hot.npeers, __ATOMIC_ACQUIRE), claimed = 0;
    for (int f = 0; f < n; f++) claimed |= __atomic_load_n(&TG_PEER(f)->share_until, __ATOMIC_RELAXED) > now;
    return claimed;
}

/* The file of a lower-priority process whose minimum share is due now, or -1. A claim counts only when a live slot of
 * that file made it, and its priority is clamped like any other. */
static int share_due(uint64_t now) {
    int n = __atomic_load_n(&tg_hot.npeers, __ATOMIC_ACQUIRE);
    for (int f = 0; f < n; f++) {
        tg_ctl *c = TG_PEER(f);
        if (TG_LIKELY(__atomic_load_n(&c->share_until, __ATOMIC_ACQUIRE) <= now)) continue;
        int theirs = __atomic_load_n(&c->share_priority, __ATOMIC_RELAXED);
        int ceiling = __atomic_load_n(&tg_peers[f].ceiling, __ATOMIC_ACQUIRE);
        if (theirs > ceiling) theirs = ceiling;
        if (tg_my_priority() <= theirs) continue;
        uint32_t pid = __atomic_load_n(&c->share_pid, __ATOMIC_RELAXED);
        for (int i = 0; i < (int)TG_CTL_SLOTS; i++)
            if (pid && __atomic_load_n(&c->slot[i].pid, __ATOMIC_RELAXED) == pid && tg_peer_slot_alive(f, i, now))
                return f;
    }
    return -1;
}

/* A lower-priority process's minimum share is due: hold this launch until it has had it -- but never for more than
 * half of any 100 ms, whatever the claims say (a claim is only another process's word). */
static void yield_share(int api, uint64_t stream, int f, uint64_t now) {
    tg_ctl *c = TG_PEER(f);
    uint64_t until = __atomic_load_n(&c->share_until, __ATOMIC_ACQUIRE);
    if (now - yield_period_start >= 100000000) {
        yield_period_start = now;
        yielded_ns = 0;
    }
    if (yielded_ns >= share_cap_ns || until <= now) return;
    if (until - now > share_cap_ns - yielded_ns) until = now + (share_cap_ns - yielded_ns);
    tg_record u;
    memset(&u, 0, sizeof u);
    u.u.hold.cause_pid = __atomic_load_n(&c->share_pid, __ATOMIC_RELAXED);
    u.u.hold.cause_priority = __atomic_load_n(&c->share_priority, __ATOMIC_RELAXED);
    u.u.hold.priority = tg_my_priority();
    u.u.hold.released_by = TG_RELEASE_MIN_SHARE;
    struct timespec ts = {(time_t)((until - now) / 1000000000u), (long)((until - now) % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    uint64_t t1 = tg_now();
    yielded_ns += t1 - now;
    tg_sched_held(TG_OP_HOLD_SHARE, api, now, t1, stream, &u.u);
}

void tg_sched_work(int api, uint64_t stream, int is_launch) {
    if (TG_UNLIKELY(__atomic_load_n(&tg_hot.state, __ATOMIC_ACQUIRE) == 0)) attach();
    /* off, or still 0: the GPU is not known yet (attach retries at the next call) */
    if (__atomic_load_n(&tg_hot.state, __ATOMIC_ACQUIRE) <= 0) return;
    uint64_t now = tg_now();
    if (is_launch && TG_UNLIKELY(share_claimed(now))) {
        int f = share_due(now);
        if (f >= 0) {
            yield_share(api, stream, f, now);
            now = tg_now();
        }
    }
    if (is_launch && tg_hot.holds_on && now >= tg_hot.free_until) {
        int b = blocker(now);
        if (TG_UNLIKELY(b >= 0)) {
            hold(api, stream, b, now);
            now = tg_now();
        }
    }
    refresh_levers(now);
    if (is_launch && tg_hot.budget_on) {
        tg_budget_wait(api, stream);
        now = tg_now();
    }
    tg_ctl_slot *s = TG_OWN_SLOT();
    __atomic_store_n(&s->lease_until, now + tg_hot.lease_ns, __ATOMIC_RELAXED);
    if (TG_UNLIKELY(!win.busy) || TG_UNLIKELY(!stream_known(stream))) become_busy(now, stream);
}

void tg_sched_sync_enter(void) {
    if (tg_hot.state <= 0) return;
    __atomic_fetch_add(&TG_OWN_SLOT()->in_sync, 1, __ATOMIC_ACQ_REL);
}

/* Work known complete on `stream` (or everywhere): the request window ends if it covered only that. */
static void completed_on(int scope, uint64_t stream, uint64_t now) {
    if (!win.busy) return;
    pthread_mutex_lock(&lock);
    if (win.busy && (scope == TG_SYNC_ALL || window_uses_only(stream))) become_idle(now);
    pthread_mutex_unlock(&lock);
}

void tg_sched_sync_exit(int scope, uint64_t stream, int ok) {
    if (tg_hot.state <= 0) return;
    tg_ctl_slot *s = TG_OWN_SLOT();
    uint64_t now = tg_now();
    __atomic_store_n(&s->lease_until, now + tg_hot.lease_ns, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&s->in_sync, 1, __ATOMIC_ACQ_REL);
    if (ok) completed_on(scope, stream, now);
}

void tg_sched_polled(uint64_t stream, int done) {
    if (tg_hot.state <= 0) return;
    uint64_t now = tg_now();
    /* polling is waiting for the GPU too: it keeps the claim alive like a blocking sync */
    __atomic_store_n(&TG_OWN_SLOT()->lease_until, now + tg_hot.lease_ns, __ATOMIC_RELAXED);
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
    if (tg_hot.state <= 0) return;
    unsigned i = (unsigned)((event >> 4) * 0x9E3779B97F4A7C15ull >> 56) % EVENTS;
    events[i].event = 0; /* a collision forgets an older event: its sync then leaves the window open */
    events[i].stream = stream;
    events[i].launches = lane_launches();
    __atomic_store_n(&events[i].event, event, __ATOMIC_RELEASE);
}

uint64_t tg_sched_event_stream(uint64_t event, int *known) {
    unsigned i = (unsigned)((event >> 4) * 0x9E3779B97F4A7C15ull >> 56) % EVENTS;
    *known = 0;
    if (tg_hot.state <= 0 || __atomic_load_n(&events[i].event, __ATOMIC_ACQUIRE) != event) return 0;
    uint64_t stream = events[i].stream, launches = events[i].launches;
    *known = __atomic_load_n(&events[i].event, __ATOMIC_ACQUIRE) == event && launches == lane_launches();
    return stream;
}

int tg_sched_priority(void) { return tg_hot.state > 0 ? tg_my_priority() : 0; }

void tg_sched_after_fork(void) {
    /* the child is another process: it takes a slot of its own at its first work */
    tg_peers_after_fork();
    tg_hot.state = 0;
    memset(&win, 0, sizeof win);
    tg_hot.free_until = 0;
    yield_period_start = yielded_ns = 0;
    pthread_mutex_init(&lock, 0);
    tg_hot.budget_on = 0;
    tg_hot.levers_checked = 0;
    tg_budget_after_fork();
    tg_gpu_time_after_fork();
    tg_timeslice_after_fork();
}

void tg_sched_exit(void) {
    if (tg_hot.state <= 0) return;
    tg_peers_exit();
}
