/* The per-process ring: lanes of 64-byte records in a shared-memory file (see tailguard/record.h for the layout and
 * the protocol). Each launching thread claims a lane of its own, so the common path takes no locked instruction;
 * threads beyond the first TG_LANES - 1 share the last lane with a CAS. Producers never wait: a full lane drops the
 * record and counts it.
 *
 * Memory is reserved (fallocate) in chunks ahead of use: a process that records a handful of records pays for a few
 * pages, not for the whole ring, and a full /dev/shm shows up as a failed reservation (records dropped and counted,
 * one warning) instead of a SIGBUS in the application. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "tailguard/guard.h"
#include "tailguard/log.h"
#include "tailguard/ring_files.h"

#define FIRST_RECORDS 1024u /* reserved when a lane is claimed: 64 KiB */
#define GROW_RECORDS 4096u  /* then 256 KiB at a time */
#define NAMES_CHUNK (64u << 10)

__thread tg_lane *tg_lane_tls __attribute__((tls_model("initial-exec")));
__thread tg_record *tg_lane_slots_tls __attribute__((tls_model("initial-exec")));
__thread uint32_t tg_lane_cap __attribute__((tls_model("initial-exec")));
__thread int tg_lane_exclusive __attribute__((tls_model("initial-exec")));
__thread uint64_t tg_lane_limit __attribute__((tls_model("initial-exec")));

static int ring_fd = -1;
static uint64_t ring_size; /* what the file was made: smaller now means someone truncated it */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static int grow_failed;
static pthread_key_t lane_key;
static pthread_once_t lane_key_once = PTHREAD_ONCE_INIT;

static int reserve(uint64_t offset, uint64_t len) {
    int rc = posix_fallocate(ring_fd, (off_t)offset, (off_t)len);
    if (rc != 0 && !grow_failed) {
        grow_failed = 1;
        struct stat st;
        if (fstat(ring_fd, &st) == 0 && (uint64_t)st.st_size < ring_size)
            tg_warn("the ring file was truncated (%lld bytes, not %llu; by its user, or root): further records are "
                    "dropped and counted", (long long)st.st_size, (unsigned long long)ring_size);
        else
            tg_warn("cannot reserve more shared memory for the ring (%s): further records are dropped and counted",
                    strerror(rc));
    }
    return rc == 0;
}

/* Makes slot `idx` of lane `lane` usable; 0 when memory cannot be reserved (the caller drops the record). */
static int grow_records(tg_ring_header *h, tg_lane *l, uint32_t idx) {
    unsigned lane = (unsigned)(l - tg_lanes(h));
    uint32_t cap = tg_lane_capacity(h, lane);
    uint64_t base = (uint64_t)((char *)tg_lane_slots(h, lane) - (char *)h);
    pthread_mutex_lock(&grow_lock);
    uint32_t ready = l->records_ready;
    while (idx >= ready && !grow_failed) {
        uint32_t step = ready ? GROW_RECORDS : FIRST_RECORDS;
        uint32_t n = cap - ready < step ? cap - ready : step;
        if (!reserve(base + (uint64_t)ready * TG_RECORD_SIZE, (uint64_t)n * TG_RECORD_SIZE)) break;
        ready += n;
        __atomic_store_n(&l->records_ready, ready, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&grow_lock);
    return idx < ready;
}

int tg_ring_grow_names(tg_ring_header *h, uint32_t need) {
    pthread_mutex_lock(&grow_lock);
    while (h->names_ready < need && !grow_failed) {
        uint32_t left = (uint32_t)(h->names_size - h->names_ready), n = left < NAMES_CHUNK ? left : NAMES_CHUNK;
        if (n == 0 || !reserve(h->names_offset + h->names_ready, n)) break;
        __atomic_store_n(&h->names_ready, h->names_ready + n, __ATOMIC_RELEASE);
    }
    int ok = h->names_ready >= need;
    pthread_mutex_unlock(&grow_lock);
    return ok;
}

/* ---- lanes ---- */

/* Whether the ring's recording session still has its recorder: a kill(pid, 0), at most every 100 ms, and only when
 * that recorder's position is what keeps a lane full. */
static int recorder_alive(const tg_ring_header *h) {
    static uint64_t checked;
    static int alive = 1;
    uint64_t now = tg_clock_monotonic();
    if (now - checked >= 100000000u) {
        char session[sizeof h->session + 1];
        memcpy(session, h->session, sizeof h->session);
        session[sizeof h->session] = 0;
        alive = tg_session_alive(session);
        checked = now;
    }
    return alive;
}

uint64_t tg_lane_consumed(const tg_ring_header *h, const tg_lane *l) {
    uint64_t head = __atomic_load_n(&l->head, __ATOMIC_ACQUIRE);
    if (TG_LIKELY(!h->session[0])) return head; /* the agent's, whether it drains yet or not */
    uint64_t session = __atomic_load_n(&l->session_head, __ATOMIC_ACQUIRE);
    uint64_t oldest = __atomic_load_n(&h->consumer_pid, __ATOMIC_ACQUIRE) && head < session ? head : session;
    uint32_t cap = tg_lane_capacity(h, (unsigned)(l - tg_lanes(h)));
    uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_RELAXED);
    /* a recorder that is gone frees its lanes for the agent (or for nobody) */
    if (tail >= session && tail - session >= cap && !recorder_alive(h)) return head;
    return oldest;
}

static void release_lane(void *lane) {
    /* the thread is gone: its lane (counters and positions included) passes to the next thread that needs one */
    if (lane && tg_lane_exclusive) __atomic_store_n(&((tg_lane *)lane)->owner_tid, 0, __ATOMIC_RELEASE);
    tg_lane_tls = 0;
}
static void make_lane_key(void) { pthread_key_create(&lane_key, release_lane); }

tg_lane *tg_lane_claim(tg_ring_header *h) {
    tg_lane *lanes = tg_lanes(h);
    uint32_t tid = tg_tid();
    unsigned idx = TG_SHARED_LANE;
    for (unsigned i = 0; i < TG_SHARED_LANE; i++) {
        uint32_t none = 0;
        if (__atomic_load_n(&lanes[i].owner_tid, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&lanes[i].owner_tid, &none, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            idx = i;
            break;
        }
    }
    uint32_t used = __atomic_load_n(&h->lanes_used, __ATOMIC_RELAXED);
    while (used < idx + 1 &&
           !__atomic_compare_exchange_n(&h->lanes_used, &used, idx + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
    }
    tg_lane *l = &lanes[idx];
    if (!l->records_ready) grow_records(h, l, 0);
    pthread_once(&lane_key_once, make_lane_key);
    pthread_setspecific(lane_key, l);
    tg_lane_exclusive = idx != TG_SHARED_LANE;
    tg_lane_cap = tg_lane_capacity(h, idx);
    tg_lane_limit = tg_lane_consumed(h, l) + tg_lane_cap;
    tg_lane_slots_tls = tg_lane_slots(h, idx);
    tg_lane_tls = l;
    return l;
}

void tg_lane_drop(tg_lane *l, int is_launch) {
    if (tg_lane_exclusive) { /* the lane's only producer: plain increments, read by others as relaxed loads */
        __atomic_store_n(&l->dropped, l->dropped + 1, __ATOMIC_RELAXED);
        if (is_launch) {
            __atomic_store_n(&l->dropped_launches, l->dropped_launches + 1, __ATOMIC_RELAXED);
            __atomic_store_n(&l->launches, l->launches + 1, __ATOMIC_RELAXED);
        }
    } else {
        __atomic_fetch_add(&l->dropped, 1, __ATOMIC_RELAXED);
        if (is_launch) {
            __atomic_fetch_add(&l->dropped_launches, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&l->launches, 1, __ATOMIC_RELAXED);
        }
    }
}

tg_record *tg_claim_slow(tg_ring_header *h, tg_lane *l, uint64_t *pos_out, int is_launch) {
    uint32_t cap = tg_lane_cap;
    tg_record *slots = tg_lane_slots_tls;
    if (tg_lane_exclusive) {
        uint64_t pos = l->tail;
        uint32_t idx = (uint32_t)(pos & (cap - 1));
        tg_lane_limit = tg_lane_consumed(h, l) + cap; /* what the consumers have freed by now */
        if (pos < tg_lane_limit &&
            (idx < __atomic_load_n(&l->records_ready, __ATOMIC_ACQUIRE) || grow_records(h, l, idx))) {
            if (is_launch) __atomic_store_n(&l->launches, l->launches + 1, __ATOMIC_RELAXED);
            *pos_out = pos;
            return &slots[idx];
        }
    } else {
        uint64_t pos = __atomic_load_n(&l->tail, __ATOMIC_RELAXED);
        for (;;) {
            /* full only when pos is ahead of what the consumers freed: a pos read before they moved past it is
             * stale, not full (the CAS below fails and reads it again) */
            uint64_t consumed = tg_lane_consumed(h, l);
            if (pos >= consumed && pos - consumed >= cap) break;
            uint32_t idx = (uint32_t)(pos & (cap - 1));
            if (idx >= __atomic_load_n(&l->records_ready, __ATOMIC_ACQUIRE) && !grow_records(h, l, idx)) break;
            if (__atomic_compare_exchange_n(&l->tail, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                if (is_launch) __atomic_fetch_add(&l->launches, 1, __ATOMIC_RELAXED);
                *pos_out = pos;
                return &slots[idx];
            }
        }
    }
    tg_lane_drop(l, is_launch);
    return 0;
}

/* Creates the file under a temporary name with its header and name table's first chunk reserved; the caller fills the
 * descriptor and renames it into place. The descriptor stays open for later reservations. */
int tg_ring_create(const char *tmp_path, uint32_t lane_capacity, tg_ring_header **out, char *err, unsigned err_len) {
    uint64_t records = TG_NAMES_OFFSET + (uint64_t)TG_NAMES_SIZE;
    uint64_t size = tg_ring_file_size(lane_capacity);
    int fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create %s: %s", tmp_path, strerror(errno));
        return -1;
    }
    tg_lock_hold(fd, TG_RING_WRITER_LOCK); /* before anything else: a sweeper in another PID namespace sees it alive */
    int rc = ftruncate(fd, (off_t)size) != 0 ? errno : 0;
    if (!rc) rc = posix_fallocate(fd, 0, TG_NAMES_OFFSET + NAMES_CHUNK);
    if (rc) {
        snprintf(err, err_len, "cannot reserve shared memory for %s: %s", tmp_path, strerror(rc));
        close(fd);
        unlink(tmp_path);
        return -1;
    }
    void *p = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, err_len, "cannot map %s: %s", tmp_path, strerror(errno));
        close(fd);
        unlink(tmp_path);
        return -1;
    }
    tg_guard_add(p, size); /* someone who shrinks the file costs us our records, not the program */
    if (ring_fd >= 0) close(ring_fd); /* a forked child's copy of its parent's descriptor */
    ring_fd = fd;
    ring_size = size;
    grow_failed = 0;
    pthread_mutex_init(&grow_lock, 0);
    tg_ring_header *h = p;
    memcpy(h->magic, TG_RING_MAGIC, sizeof h->magic);
    h->layout_version = TG_LAYOUT_VERSION;
    h->header_size = TG_HEADER_SIZE;
    h->record_size = TG_RECORD_SIZE;
    h->lane_count = TG_LANES;
    h->lane_capacity = lane_capacity;
    h->names_offset = TG_NAMES_OFFSET;
    h->names_size = TG_NAMES_SIZE;
    h->records_offset = records;
    h->file_size = size;
    h->names_ready = NAMES_CHUNK;
    /* zero-filled lanes are empty: nothing else to initialise */
    *out = h;
    return 0;
}

/* A forked child: only the forking thread exists, its lane belongs to the parent's ring. Its copy of the parent's
 * descriptor would keep the parent's writer lock held after the parent's death: closed (the child's first record
 * creates its own ring). */
void tg_lanes_after_fork(void) {
    if (ring_fd >= 0) close(ring_fd);
    ring_fd = -1;
    tg_lane_tls = 0;
    tg_lane_slots_tls = 0;
    tg_lane_cap = 0;
    tg_lane_exclusive = 0;
    tg_lane_limit = 0;
    pthread_mutex_init(&grow_lock, 0);
}
