/* Kernel names: each function handle is resolved to its name once (by the API family's resolver), given a small id,
 * and the (id, name) pair is appended to the ring's name table. Launch records carry only the id.
 * Lookups are lock-free (open addressing, key published last); inserts take a mutex, once per handle. */
#include <pthread.h>
#include <string.h>

#include "shim.h"

#define SLOTS 16384u /* distinct kernels per process; beyond this, ids are 0 ("unknown") */
#define MAX_PROBE 64u

static struct {
    _Atomic(uintptr_t) key;
    uint32_t id;
} table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_id = 1;

static inline uint32_t slot_of(uintptr_t key) {
    return (uint32_t)((key >> 4) * 0x9E3779B97F4A7C15ull >> 50) & (SLOTS - 1);
}

uint32_t tg_name_lookup(const void *key) {
    uintptr_t k = (uintptr_t)key;
    uint32_t i = slot_of(k);
    for (uint32_t n = 0; n < MAX_PROBE; n++, i = (i + 1) & (SLOTS - 1)) {
        uintptr_t seen = atomic_load_explicit(&table[i].key, memory_order_acquire);
        if (seen == k) return table[i].id;
        if (seen == 0) return 0;
    }
    return 0;
}

/* Appends (id, name) to the ring's name table and publishes it; a full table counts the name as dropped. */
static void publish_name(uint32_t id, const char *name) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    size_t len = strlen(name);
    uint16_t flags = 0;
    if (len > TG_NAME_MAX) {
        len = TG_NAME_MAX;
        flags = 1;
    }
    uint32_t used = h->names_used;
    uint32_t need = (uint32_t)((sizeof(tg_name_entry) + len + 3) & ~3u);
    if (used + need > h->names_size || (used + need > h->names_ready && !tg_ring_grow_names(h, used + need))) {
        h->names_dropped++;
        return;
    }
    tg_name_entry *e = (tg_name_entry *)((char *)h + h->names_offset + used);
    e->id = id;
    e->len = (uint16_t)len;
    e->flags = flags;
    memcpy(e->name, name, len);
    h->names_count++;
    __atomic_store_n(&h->names_used, used + need, __ATOMIC_RELEASE);
}

uint32_t tg_name_id_slow(const void *key, tg_name_resolver resolve) {
    uintptr_t k = (uintptr_t)key;
    if (k == 0) return 0;
    pthread_mutex_lock(&lock);
    uint32_t id = tg_name_lookup(key);
    if (id == 0) {
        uint32_t i = slot_of(k), n = 0;
        while (n < MAX_PROBE && atomic_load_explicit(&table[i].key, memory_order_relaxed) != 0) {
            i = (i + 1) & (SLOTS - 1);
            n++;
        }
        if (n < MAX_PROBE) {
            char buf[TG_NAME_MAX + 1];
            const char *name = resolve(key, buf, sizeof buf);
            id = next_id++;
            publish_name(id, name ? name : "?");
            table[i].id = id;
            atomic_store_explicit(&table[i].key, k, memory_order_release);
        }
    }
    pthread_mutex_unlock(&lock);
    return id;
}

static const char *same_name(const void *key, char *buf, unsigned len) {
    (void)buf;
    (void)len;
    return key;
}

uint32_t tg_name_intern(const char *name) { return tg_name_id(name, same_name); }

/* Text with no stable address (an NVTX message may be built in a reused buffer) is keyed by a hash of its bytes with
 * the top bit set, which no user-space address has; the text itself reaches the resolver through this thread. */
static __thread const char *text_pending;
static __thread size_t text_pending_len;
/* Distinct texts interned at most: a program that puts a counter in its messages must not use up the table that its
 * kernels' names need. Beyond it, new texts get id 0 (no name). */
#define TEXTS_MAX 4096u
static _Atomic uint32_t texts;

static const char *pending_text(const void *key, char *buf, unsigned len) {
    (void)key;
    size_t n = text_pending_len < len - 1 ? text_pending_len : len - 1;
    memcpy(buf, text_pending, n);
    buf[n] = 0;
    return buf;
}

uint32_t tg_name_intern_text(const char *text, size_t len, uint64_t hash) {
    const void *key = (const void *)(uintptr_t)(hash | (1ull << 63));
    uint32_t id = tg_name_lookup(key);
    if (TG_LIKELY(id != 0)) return id;
    if (atomic_load_explicit(&texts, memory_order_relaxed) >= TEXTS_MAX) return 0;
    atomic_fetch_add_explicit(&texts, 1, memory_order_relaxed);
    text_pending = text;
    text_pending_len = len;
    return tg_name_id_slow(key, pending_text);
}

/* In a forked child (only the forking thread survives): the lock may have been held by a thread that is gone. */
void tg_names_after_fork(void) { pthread_mutex_init(&lock, 0); }

/* A forked child starts a ring of its own, with an empty name table: forget the parent's ids (done when the child
 * creates its ring, not at fork, so fork + exec costs nothing). */
void tg_names_forget(void) {
    memset(table, 0, sizeof table);
    next_id = 1;
    atomic_store(&texts, 0);
}
