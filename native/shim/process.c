/* The attached process: at load the shim reads its options and registers the process by creating its ring (the
 * descriptor in the ring header is what `tailguard ps` lists). A forked child gets a ring of its own on its first
 * record; an exec'd image gets a new ring and marks the previous image's ring as replaced. At exit the ring is marked
 * exited and, when nobody will read it, removed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "tailguard/directory.h"
#include "tailguard/guard.h"
#include "tailguard/log.h"
#include "tailguard/options.h"
#include "tailguard/ring_files.h"

tg_ring_header *tg_ring;
int tg_ring_wanted;
int tg_dir_unusable;
__thread uint32_t tg_tid_cache __attribute__((tls_model("initial-exec")));

static char ring_path[512];
static char dir[256];
static char session[32];
static uint32_t lane_capacity;
static int priority;
static atomic_int creating; /* a forked child's first records race to create its ring */

uint32_t tg_tid_slow(void) {
    tg_tid_cache = (uint32_t)syscall(SYS_gettid);
    return tg_tid_cache;
}

void tg_mark_path(unsigned bit) {
    tg_ring_header *h = tg_ring_get();
    if (h && !(__atomic_load_n(&h->attach_paths, __ATOMIC_RELAXED) & bit))
        __atomic_fetch_or(&h->attach_paths, bit, __ATOMIC_RELAXED);
}

static uint32_t read_cmdline(char *out, uint32_t cap) {
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, out, cap);
    close(fd);
    return n > 0 ? (uint32_t)n : 0;
}

/* A ring already named after this pid and start time belongs to the image this process exec'd from: marked replaced
 * through plain reads and writes, not a mapping (the file could be shrunk under one). */
static void mark_replaced(const char *path) {
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    struct stat st;
    tg_ring_header h;
    /* an earlier image of this process dropped its writer lock at exec: a held one is another process's, of another
     * PID namespace with the same pid and start tick, whose ring is live and not ours to end */
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || !S_ISREG(st.st_mode) ||
        tg_lock_held(fd, TG_RING_WRITER_LOCK) == 1 || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
        memcmp(h.magic, TG_RING_MAGIC, 8) != 0 || h.state != TG_STATE_RUNNING) {
        close(fd);
        return;
    }
    uint64_t when = tg_clock_monotonic();
    uint32_t state = TG_STATE_EXECED;
    if (pwrite(fd, &when, sizeof when, offsetof(tg_ring_header, exit_monotonic)) == (ssize_t)sizeof when &&
        pwrite(fd, &state, sizeof state, offsetof(tg_ring_header, state)) == (ssize_t)sizeof state) {
    }
    close(fd);
}

static void emit_process(tg_ring_header *h, int op) {
    uint64_t pos;
    tg_lane *l;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_PROCESS, op, tg_now());
    if (!r) return;
    r->u.process.pid = h->pid;
    r->u.process.ppid = h->ppid;
    r->u.process.priority = h->priority;
    tg_publish(h, l, r, pos);
}

static int create_ring(void) {
    tg_dir_info info;
    if (tg_dir_prepare(dir, &info) != 0) {
        tg_dir_unusable = 1; /* said once, here: the scheduler stays off without saying it again */
        tg_warn("this process is neither recorded nor scheduled: %s", info.problem);
        return -1;
    }
    uint32_t pid = (uint32_t)getpid();
    uint64_t ticks = tg_process_start_ticks(pid);
    uint32_t gen = 0;
    for (;; gen++) {
        snprintf(ring_path, sizeof ring_path, "%s/%u.%llu.%u.ring", dir, pid, (unsigned long long)ticks, gen);
        if (access(ring_path, F_OK) != 0 || gen == 255) break;
        mark_replaced(ring_path);
    }
    char tmp[sizeof ring_path + 8], err[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", ring_path);
    unlink(tmp); /* left by an image that died while creating it */
    tg_ring_header *h;
    if (tg_ring_create(tmp, lane_capacity, &h, err, sizeof err) != 0) {
        tg_warn("%s: this process is not recorded", err);
        return -1;
    }
    h->pid = pid;
    h->ppid = (uint32_t)getppid();
    h->start_ticks = ticks;
    h->uid = (uint32_t)getuid();
    h->exec_generation = gen;
    tg_clock_anchor(&h->anchor_realtime, &h->anchor_monotonic);
    memcpy(h->session, session, sizeof h->session);
    snprintf(h->shim_version, sizeof h->shim_version, "%s", TG_VERSION);
    h->cmdline_len = read_cmdline(h->cmdline, TG_CMDLINE_MAX);
    h->checksum = tg_header_checksum(h);
    h->priority = priority;
    h->gpu_ordinal = -1;
    h->state = TG_STATE_RUNNING;
    if (rename(tmp, ring_path) != 0) {
        tg_warn("cannot publish %s (%s): this process is not recorded", ring_path, strerror(errno));
        unlink(tmp);
        tg_guard_remove(h);
        munmap(h, h->file_size);
        return -1;
    }
    emit_process(h, TG_OP_START);
    __atomic_store_n(&tg_ring, h, __ATOMIC_RELEASE);
    tg_context_ring_created(h); /* after: its names go into this ring's table */
    tg_debug("recording into %s (%u records per thread lane)", ring_path, lane_capacity);
    return 0;
}

tg_ring_header *tg_ring_slow(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&creating, &expected, 1)) return 0; /* another thread is creating it */
    if (!tg_ring && tg_ring_wanted) {
        tg_names_forget();
        if (create_ring() != 0) tg_ring_wanted = 0;
    }
    atomic_store(&creating, 0);
    return tg_ring;
}

static void after_fork_child(void) {
    tg_ring = 0; /* the parent's ring stays the parent's; the child makes its own on its first record */
    tg_tid_cache = 0;
    tg_lanes_after_fork();
    tg_sched_after_fork();
    atomic_store(&creating, 0);
    tg_names_after_fork();
    tg_context_after_fork();
    tg_kt_after_fork();
}

__attribute__((constructor)) static void tg_init(void) {
    tg_log_set_component("tailguard");
    tg_clock_init();
    tg_dlsym_init();
    if (tg_option_bool(TG_OPT_DISABLE)) {
        tg_info("TAILGUARD_DISABLE=1: passing every call through, recording nothing");
        return;
    }
    tg_options_check_unknown();
    tg_option_string(TG_OPT_DIR, dir, sizeof dir);
    tg_option_string(TG_OPT_SESSION, session, sizeof session);
    lane_capacity = (uint32_t)tg_option_uint(TG_OPT_RING_RECORDS, 1024, 1u << 24, 1);
    priority = tg_option_priority_env();
    tg_context_init();
    tg_ring_wanted = 1;
    if (create_ring() != 0) tg_ring_wanted = 0;
    else tg_sweep_stale_rings(dir); /* rings of processes that died without exiting (SIGKILL, _exit) */
    pthread_atfork(0, 0, after_fork_child);
}

__attribute__((destructor)) static void tg_fini(void) {
    tg_sched_exit();
    tg_ring_header *h = tg_ring;
    if (!h) return;
    emit_process(h, TG_OP_EXIT);
    h->exit_monotonic = tg_now();
    __atomic_store_n(&h->state, TG_STATE_EXITED, __ATOMIC_RELEASE);
    if (!tg_ring_has_reader(h, dir)) unlink(ring_path); /* the mapping stays valid for calls made after this */
}

static uint8_t gpu_uuid[16];
static int gpu_uuid_known;

int tg_gpu_uuid(uint8_t out[16]) {
    if (!__atomic_load_n(&gpu_uuid_known, __ATOMIC_ACQUIRE)) return 0;
    memcpy(out, gpu_uuid, 16);
    return 1;
}

void tg_gpu_identity(int ordinal, const char *name, const unsigned char uuid[16], const char *pci) {
    if (uuid && !gpu_uuid_known) {
        memcpy(gpu_uuid, uuid, 16);
        __atomic_store_n(&gpu_uuid_known, 1, __ATOMIC_RELEASE);
    }
    tg_ring_header *h = tg_ring_get();
    if (!h || __atomic_load_n(&h->gpu_known, __ATOMIC_ACQUIRE)) return;
    h->gpu_ordinal = ordinal;
    if (uuid) memcpy(h->gpu_uuid, uuid, sizeof h->gpu_uuid);
    snprintf(h->gpu_name, sizeof h->gpu_name, "%s", name ? name : "");
    snprintf(h->gpu_pci, sizeof h->gpu_pci, "%s", pci ? pci : "");
    __atomic_store_n(&h->gpu_known, 1, __ATOMIC_RELEASE);
}
