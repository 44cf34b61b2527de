/* The per-process ring: a bounded lock-free multi-producer queue of 64-byte records in a shared-memory file.
 * Producers never wait: a full ring drops the record and counts it (see tailguard/record.h for the protocol).
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
#include "tailguard/log.h"

#define FIRST_RECORDS 1024u  /* reserved at creation: 64 KiB */
#define GROW_RECORDS 4096u   /* then 256 KiB at a time */
#define NAMES_CHUNK (64u << 10)

static int ring_fd = -1;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static int grow_failed;

static int reserve(uint64_t offset, uint64_t len) {
    int rc = posix_fallocate(ring_fd, (off_t)offset, (off_t)len);
    if (rc != 0 && !grow_failed) {
        grow_failed = 1;
        tg_warn("cannot reserve more shared memory for the ring (%s): further records are dropped and counted",
                strerror(rc));
    }
    return rc == 0;
}

/* Makes slot `idx` usable; 0 when memory cannot be reserved (the caller drops the record). */
static int grow_records(tg_ring_header *h, uint32_t idx) {
    pthread_mutex_lock(&grow_lock);
    uint32_t ready = h->records_ready;
    while (idx >= ready && !grow_failed) {
        uint32_t n = h->capacity - ready < GROW_RECORDS ? h->capacity - ready : GROW_RECORDS;
        if (!reserve(h->records_offset + (uint64_t)ready * TG_RECORD_SIZE, (uint64_t)n * TG_RECORD_SIZE)) break;
        ready += n;
        __atomic_store_n(&h->records_ready, ready, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&grow_lock);
    return idx < ready;
}

int tg_ring_grow_names(tg_ring_header *h, uint32_t need) {
    pthread_mutex_lock(&grow_lock);
    while (h->names_ready < need && !grow_failed) {
        uint32_t n = (uint32_t)(h->names_size - h->names_ready) < NAMES_CHUNK ? (uint32_t)(h->names_size - h->names_ready)
                                                                              : NAMES_CHUNK;
        if (n == 0 || !reserve(h->names_offset + h->names_ready, n)) break;
        __atomic_store_n(&h->names_ready, h->names_ready + n, __ATOMIC_RELEASE);
    }
    int ok = h->names_ready >= need;
    pthread_mutex_unlock(&grow_lock);
    return ok;
}

tg_record *tg_ring_claim_slow(tg_ring_header *h, uint64_t *pos_out, int is_launch) {
    tg_record *slots = (tg_record *)((char *)h + TG_HEADER_SIZE + TG_NAMES_SIZE);
    uint32_t cap = h->capacity;
    uint64_t pos = __atomic_load_n(&h->tail, __ATOMIC_RELAXED);
    for (;;) {
        if (pos - __atomic_load_n(&h->head, __ATOMIC_ACQUIRE) >= cap) break; /* full */
        uint32_t idx = (uint32_t)(pos & (cap - 1));
        if (idx >= __atomic_load_n(&h->records_ready, __ATOMIC_ACQUIRE) && !grow_records(h, idx)) break;
        if (__atomic_compare_exchange_n(&h->tail, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *pos_out = pos;
            return &slots[idx];
        }
    }
    __atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
    if (is_launch) __atomic_fetch_add(&h->dropped_launches, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Creates the file under a temporary name with its first chunks reserved; the caller fills the descriptor and
 * renames it into place. The descriptor stays open for later reservations. */
int tg_ring_create(const char *tmp_path, uint32_t capacity, tg_ring_header **out, char *err, unsigned err_len) {
    uint64_t size = (uint64_t)TG_HEADER_SIZE + TG_NAMES_SIZE + (uint64_t)capacity * TG_RECORD_SIZE;
    int fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create %s: %s", tmp_path, strerror(errno));
        return -1;
    }
    uint32_t first = capacity < FIRST_RECORDS ? capacity : FIRST_RECORDS;
    int rc = ftruncate(fd, (off_t)size) != 0 ? errno : 0;
    if (!rc) rc = posix_fallocate(fd, 0, TG_HEADER_SIZE + NAMES_CHUNK);
    if (!rc) rc = posix_fallocate(fd, TG_HEADER_SIZE + TG_NAMES_SIZE, (off_t)first * TG_RECORD_SIZE);
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
    if (ring_fd >= 0) close(ring_fd); /* a forked child's copy of its parent's descriptor */
    ring_fd = fd;
    grow_failed = 0;
    pthread_mutex_init(&grow_lock, 0);
    tg_ring_header *h = p;
    memcpy(h->magic, TG_RING_MAGIC, sizeof h->magic);
    h->layout_version = TG_LAYOUT_VERSION;
    h->header_size = TG_HEADER_SIZE;
    h->record_size = TG_RECORD_SIZE;
    h->capacity = capacity;
    h->names_offset = TG_HEADER_SIZE;
    h->names_size = TG_NAMES_SIZE;
    h->records_offset = TG_HEADER_SIZE + TG_NAMES_SIZE;
    h->file_size = size;
    h->names_ready = NAMES_CHUNK;
    h->records_ready = first;
    /* the zero-filled slots are free for lap 0: nothing to initialise */
    *out = h;
    return 0;
}
