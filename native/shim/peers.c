/* The GPU's control files as this process sees them (tailguard/control.h): its own user's file and its slot in it,
 * the other users' files, the ceiling the admin's policy gives each owner, and whose busy claims are valid.
 *
 * Nothing another user writes can crash, hang or starve this process: every file is mapped at a fixed place of a
 * region reserved once, so a file that goes away is replaced by zeros at the same address while other threads read
 * it (never unmapped under them); every mapping is guarded (tailguard/guard.h), so a file truncated under us reads as
 * zeros; priorities are clamped to their owner's ceiling; a claim counts only while its process -- pid and start time,
 * or a write lock only its owner can take -- lives, and never past the longest lease; every wait is bounded. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "tailguard/directory.h"
#include "tailguard/guard.h"
#include "tailguard/log.h"
#include "tailguard/options.h"
#include "tailguard/policy.h"

tg_peer tg_peers[TG_PEERS];
int32_t tg_my_ceiling = TG_PRIORITY_MAX;

static uint8_t gpu[16];
static char dir[256];
static int dir_fd = -1;
static DIR *scan;          /* the directory, read a bounded number of entries at a time */
static int scanning;       /* a pass over the directory is under way */
static struct timespec dir_mtime;
static uint64_t policy_checked, policy_stamp;
static tg_policy policy;
static uint32_t my_ns, my_uid;
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;

/* What this process knows about the others' liveness (a /proc read is too slow to repeat at every launch). */
static struct seen {
    uint32_t pid, ns;
    uint64_t checked;
    int ok;
} seen[TG_PEERS][TG_CTL_SLOTS];

#define SCAN_ENTRIES 256            /* directory entries looked at per refresh: bounded however many files there are */
#define POLICY_EVERY_NS 1000000000u /* DIR/policy is looked at again once a second */

/* ---- the mappings ---- */

static int map_at(int f, int fd, int writable) {
    void *want = TG_PEER(f);
    void *p = mmap(want, sizeof(tg_ctl), PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED | MAP_FIXED, fd, 0);
    return p == want ? 0 : -1;
}

/* Zeros at f's place: readers racing with this see the file or nothing busy, never a fault. */
static void unmap_at(int f) {
    __atomic_store_n(&tg_peers[f].ceiling, INT32_MIN, __ATOMIC_RELEASE);
    mmap(TG_PEER(f), TG_PEER_SPAN, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tg_peers[f].fd >= 0) close(tg_peers[f].fd);
    tg_peers[f].fd = -1;
    tg_peers[f].ino = 0;
    memset(seen[f], 0, sizeof seen[f]);
}

static int reserve_area(void) {
    if (tg_hot.peer_area) return 0;
    void *p = mmap(0, (size_t)TG_PEERS * TG_PEER_SPAN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    tg_hot.peer_area = p;
    for (int f = 0; f < TG_PEERS; f++) {
        tg_peers[f].fd = -1;
        tg_peers[f].ceiling = INT32_MIN;
        tg_guard_add(TG_PEER(f), TG_PEER_SPAN);
    }
    return 0;
}

/* ---- the policy ---- */

static void apply_policy(void) {
    uint32_t gid = 0;
    tg_my_ceiling = tg_policy_ceiling_self(&policy, &gid);
    for (int f = 0; f < tg_hot.npeers; f++)
        if (tg_peers[f].fd >= 0)
            __atomic_store_n(&tg_peers[f].ceiling, tg_policy_ceiling(&policy, tg_peers[f].uid, tg_peers[f].gid),
                             __ATOMIC_RELEASE);
    /* the group that gives us our ceiling goes on our file, so every reader computes the same ceiling */
    if (tg_peers[0].fd >= 0 && gid != tg_peers[0].gid && fchown(tg_peers[0].fd, (uid_t)-1, (gid_t)gid) == 0) {
        tg_peers[0].gid = gid;
        __atomic_store_n(&tg_peers[0].ceiling, tg_my_ceiling, __ATOMIC_RELEASE);
    }
}

/* Reads DIR/policy again when it changed (by inode, size and time); says once what is wrong with a bad one. */
static void load_policy(int force) {
    struct stat st;
    uint64_t stamp = fstatat(dir_fd, "policy", &st, AT_SYMLINK_NOFOLLOW) == 0
                         ? (uint64_t)st.st_ino * 1000003u ^ (uint64_t)st.st_size * 7919u ^
                               (uint64_t)st.st_mtim.tv_sec * 1000000000u ^ (uint64_t)st.st_mtim.tv_nsec
                         : 1;
    if (!force && stamp == policy_stamp) return;
    policy_stamp = stamp;
    struct stat d;
    uint32_t owner = fstat(dir_fd, &d) == 0 ? (uint32_t)d.st_uid : 0;
    tg_policy_load(dir, owner, &policy);
    if (policy.problem[0]) tg_warn("%s", policy.problem);
    apply_policy();
}

/* ---- my own file ---- */

static int lock_ctl(tg_ctl *c) {
    uint32_t self = (uint32_t)getpid();
    uint64_t t0 = tg_clock_monotonic();
    for (int spins = 0;; spins++) {
        uint32_t owner = 0;
        if (__atomic_compare_exchange_n(&c->lock, &owner, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 1;
        /* taken only for microseconds: a holder that is gone is replaced, and one that never lets go is given up on */
        if (spins > 1000 && !tg_process_alive(owner, 0) &&
            __atomic_compare_exchange_n(&c->lock, &owner, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 1;
        if (spins > 1000 && tg_clock_monotonic() - t0 > 100000000u) return 0;
        if (spins > 100) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, 0);
        } else
            sched_yield();
    }
}
static void unlock_ctl(tg_ctl *c) { __atomic_store_n(&c->lock, 0, __ATOMIC_RELEASE); }

/* Slot i's liveness lock, taken for as long as this process is attached; 0 if another process has it (a file system
 * without OFD locks has none to take: /proc alone tells liveness there). */
static int lock_slot(unsigned i) { return tg_lock_hold(tg_peers[0].fd, TG_CTL_SLOT_LOCK_OFFSET(i)) != 0; }

/* Takes a slot: this process's own (an exec'd image keeps its pid, and dropped the lock with the descriptor), else a
 * free one, else one whose process is gone; and its liveness lock, which also settles a race for one slot. */
static int claim_slot(int priority) {
    tg_ctl *c = TG_OWN();
    uint32_t pid = (uint32_t)getpid();
    uint64_t ticks = tg_process_start_ticks(pid);
    int found = -1;
    if (!lock_ctl(c)) {
        tg_warn("the control file's lock stays taken: priorities are not enforced in this process");
        return -1;
    }
    for (unsigned i = 0; i < TG_CTL_SLOTS && found < 0; i++) {
        tg_ctl_slot *s = &c->slot[i];
        if (s->pid == pid && s->pid_ns == my_ns && s->start_ticks == ticks && lock_slot(i)) found = (int)i;
    }
    for (unsigned i = 0; i < TG_CTL_SLOTS && found < 0; i++)
        if (!tg_ctl_slot_alive(c, tg_peers[0].fd, i, my_ns) && lock_slot(i)) found = (int)i;
    if (found >= 0) {
        tg_ctl_slot *s = &c->slot[found];
        tg_peer_clear_busy(found);
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
    unlock_ctl(c);
    return found;
}

/* ---- the other users' files ---- */

/* One directory entry: a control file of this GPU from a user we do not follow yet becomes a peer. At most one file
 * per user (the one with the lowest alternate number), so nobody can crowd out other users' files. */
static void consider(const char *name) {
    uint8_t uuid[16];
    uint32_t named, uid, gid;
    unsigned alt;
    if (tg_ctl_name_parse(name, uuid, &named, &alt) != 0 || memcmp(uuid, gpu, 16) != 0) return;
    int fd = tg_ctl_open_peer(dir_fd, name, &uid, &gid);
    if (fd < 0) return;
    struct stat st;
    fstat(fd, &st);
    int free_slot = -1;
    for (int f = 0; f < tg_hot.npeers; f++) {
        tg_peer *p = &tg_peers[f];
        if (p->fd < 0) {
            if (free_slot < 0 && f > 0) free_slot = f;
            continue;
        }
        if (p->ino == (uint64_t)st.st_ino && p->dev == (uint64_t)st.st_dev) {
            p->mark = 1; /* already followed */
            close(fd);
            return;
        }
        if (p->uid == uid && (f == 0 || p->alternate <= alt)) { /* this user's file is another one */
            close(fd);
            return;
        }
    }
    if (free_slot < 0) {
        if (tg_hot.npeers == TG_PEERS) {
            close(fd);
            return;
        }
        free_slot = tg_hot.npeers;
    }
    /* a user's file with a lower alternate number replaces the one we had (its processes are there) */
    for (int f = 1; f < tg_hot.npeers; f++)
        if (tg_peers[f].fd >= 0 && tg_peers[f].uid == uid) unmap_at(f);
    int f = free_slot;
    if (map_at(f, fd, 0) != 0 || !tg_ctl_header_ok(TG_PEER(f), gpu)) {
        mmap(TG_PEER(f), TG_PEER_SPAN, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        close(fd);
        return;
    }
    tg_peer *p = &tg_peers[f];
    p->fd = fd;
    p->uid = uid;
    p->gid = gid;
    p->alternate = alt;
    p->dev = (uint64_t)st.st_dev;
    p->ino = (uint64_t)st.st_ino;
    p->mark = 1;
    memset(seen[f], 0, sizeof seen[f]);
    __atomic_store_n(&p->ceiling, tg_policy_ceiling(&policy, uid, gid), __ATOMIC_RELEASE);
    if (f == tg_hot.npeers) __atomic_store_n(&tg_hot.npeers, f + 1, __ATOMIC_RELEASE);
}

/* Follows the directory: a bounded number of entries per call, a new pass only when the directory changed. Files that
 * a whole pass did not find again, were truncated or stopped being valid are dropped. */
static void scan_peers(void) {
    for (int f = 1; f < tg_hot.npeers; f++)
        if (tg_peers[f].fd >= 0 && (tg_guard_lost(TG_PEER(f)) || !tg_ctl_header_ok(TG_PEER(f), gpu))) unmap_at(f);
    if (!scan) return;
    if (!scanning) {
        struct stat st;
        if (fstat(dirfd(scan), &st) != 0 ||
            (st.st_mtim.tv_sec == dir_mtime.tv_sec && st.st_mtim.tv_nsec == dir_mtime.tv_nsec))
            return;
        dir_mtime = st.st_mtim;
        rewinddir(scan);
        for (int f = 0; f < tg_hot.npeers; f++) tg_peers[f].mark = f == 0;
        scanning = 1;
    }
    struct dirent *e = 0;
    for (int n = 0; n < SCAN_ENTRIES && (e = readdir(scan)); n++)
        if (e->d_name[0] == 'g') consider(e->d_name);
    if (e) return; /* more next time */
    scanning = 0;
    for (int f = 1; f < tg_hot.npeers; f++)
        if (tg_peers[f].fd >= 0 && !tg_peers[f].mark) unmap_at(f);
}

void tg_peers_refresh(uint64_t now) {
    if (pthread_mutex_trylock(&scan_lock) != 0) return; /* another thread is at it */
    tg_guard_keep();
    if (now - policy_checked >= POLICY_EVERY_NS) {
        policy_checked = now;
        load_policy(0);
    }
    scan_peers();
    pthread_mutex_unlock(&scan_lock);
}

int tg_peers_attach(const char *directory, const uint8_t uuid[16], int priority) {
    snprintf(dir, sizeof dir, "%s", directory);
    memcpy(gpu, uuid, 16);
    my_ns = tg_pid_namespace();
    my_uid = (uint32_t)geteuid();
    tg_dir_info info;
    if (tg_dir_inspect(dir, &info) != 0) {
        if (!tg_dir_unusable) tg_warn("priorities are not enforced in this process: %s", info.problem);
        return -1;
    }
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0 || reserve_area() != 0) {
        tg_warn("cannot open %s (%s): priorities are not enforced in this process", dir, strerror(errno));
        return -1;
    }
    tg_policy_load(dir, info.uid, &policy);
    if (policy.problem[0]) tg_warn("%s", policy.problem);
    uint32_t gid = 0;
    tg_my_ceiling = tg_policy_ceiling_self(&policy, &gid);
    char err[700];
    int fd = tg_ctl_open_own(dir, uuid, gid, err, sizeof err);
    if (fd < 0) {
        tg_warn("%s: priorities are not enforced in this process", err);
        return -1;
    }
    struct stat st;
    fstat(fd, &st);
    if (map_at(0, fd, 1) != 0) {
        close(fd);
        tg_warn("cannot map the GPU control file in %s (%s): priorities are not enforced in this process", dir,
                strerror(errno));
        return -1;
    }
    tg_peer *own = &tg_peers[0];
    own->fd = fd;
    own->uid = my_uid;
    own->gid = (uint32_t)st.st_gid;
    own->dev = (uint64_t)st.st_dev;
    own->ino = (uint64_t)st.st_ino;
    own->mark = 1;
    __atomic_store_n(&tg_hot.npeers, 1, __ATOMIC_RELEASE);
    policy_stamp = 0;
    policy_checked = tg_clock_monotonic();
    load_policy(1); /* the ceilings, and our file's group */
    __atomic_store_n(&own->ceiling, tg_policy_ceiling(&policy, own->uid, own->gid), __ATOMIC_RELEASE);
    if (priority > tg_my_ceiling)
        tg_warn("priority %d is above the ceiling %d that %s gives uid %u: this process runs at %d (the admin "
                "sets ceilings, see docs/security.md)",
                priority, tg_my_ceiling, policy.from_file ? "the policy" : "the default policy", my_uid,
                tg_my_ceiling);
    tg_hot.me = claim_slot(priority);
    if (tg_hot.me < 0) {
        tg_warn("all %u slots of uid %u's GPU control file are taken: priorities are not enforced in this process",
                TG_CTL_SLOTS, my_uid);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    scan = dfd >= 0 ? fdopendir(dfd) : 0;
    memset(&dir_mtime, 0, sizeof dir_mtime);
    /* a first pass (bounded), so that the processes already there count from our first launch */
    for (int pass = 0; scan && pass < 16; pass++) {
        scan_peers();
        if (!scanning) break;
    }
    return tg_hot.me;
}

/* ---- claims ---- */

void tg_peer_clear_busy(int slot) {
    tg_ctl *c = TG_OWN();
    if (!__atomic_exchange_n(&c->slot[slot].busy, 0, __ATOMIC_ACQ_REL)) return;
    __atomic_fetch_and(&c->busy_mask, ~(1ull << slot), __ATOMIC_RELEASE);
    __atomic_fetch_add(&c->idle_seq, 1, __ATOMIC_RELEASE);
    int n = __atomic_load_n(&tg_hot.npeers, __ATOMIC_ACQUIRE), waiting = 0;
    for (int f = 0; f < n && !waiting; f++) waiting = __atomic_load_n(&TG_PEER(f)->waiters, __ATOMIC_RELAXED) != 0;
    if (waiting) tg_futex_wake(&c->idle_seq);
}

int tg_peer_claim_valid(int f, int i, uint64_t now) {
    tg_ctl_slot *s = &TG_PEER(f)->slot[i];
    if (!__atomic_load_n(&s->busy, __ATOMIC_ACQUIRE)) return 0;
    uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE), ns = __atomic_load_n(&s->pid_ns, __ATOMIC_ACQUIRE);
    int local = ns == my_ns;
    struct seen *w = &seen[f][i];
    if (w->pid != pid || w->ns != ns || now - w->checked > 5000000) { /* at most every 5 ms */
        w->pid = pid;
        w->ns = ns;
        w->checked = now;
        if (!pid) w->ok = 0;
        else if (local) {
            /* my namespace: the process with this pid *and* start time runs (not stopped, not a zombie), and nobody
             * can tell its lock is gone; a pid reused by another process fails the start time */
            uint64_t ticks = 0;
            char state = 0;
            w->ok = tg_process_stat(pid, &ticks, &state) == 0 &&
                    ticks == __atomic_load_n(&s->start_ticks, __ATOMIC_RELAXED) && state != 'T' && state != 't' &&
                    state != 'Z' && state != 'X' && tg_lock_held(tg_peers[f].fd, TG_CTL_SLOT_LOCK_OFFSET(i)) != 0;
        } else
            w->ok = tg_lock_held(tg_peers[f].fd, TG_CTL_SLOT_LOCK_OFFSET(i)) == 1;
    }
    if (!w->ok) return 0;
    uint64_t lease = __atomic_load_n(&s->lease_until, __ATOMIC_ACQUIRE);
    if (lease > now + TG_CTL_LEASE_MAX_NS) return 0; /* no process renews that far ahead: forged or corrupt */
    return (local && __atomic_load_n(&s->in_sync, __ATOMIC_ACQUIRE)) || now < lease;
}

int tg_peer_slot_alive(int f, int i, uint64_t now) {
    tg_ctl_slot *s = &TG_PEER(f)->slot[i];
    uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE), ns = __atomic_load_n(&s->pid_ns, __ATOMIC_ACQUIRE);
    struct seen *w = &seen[f][i];
    if (w->pid != pid || w->ns != ns || now - w->checked > 100000000) { /* at most every 100 ms */
        w->pid = pid;
        w->ns = ns;
        w->checked = now;
        w->ok = pid && tg_ctl_slot_alive(TG_PEER(f), tg_peers[f].fd, (unsigned)i, my_ns);
    }
    return w->ok;
}

void tg_peers_after_fork(void) {
    /* the child is another process: it takes a slot of its own at its first work. Its copies of the parent's
     * descriptors would keep the parent's liveness lock held after the parent's death. */
    for (int f = 0; f < tg_hot.npeers; f++)
        if (tg_peers[f].fd >= 0) unmap_at(f);
    tg_hot.npeers = 0;
    tg_hot.me = -1;
    if (scan) closedir(scan);
    scan = 0;
    scanning = 0;
    if (dir_fd >= 0) close(dir_fd);
    dir_fd = -1;
    memset(seen, 0, sizeof seen);
    pthread_mutex_init(&scan_lock, 0);
}

void tg_peers_exit(void) {
    if (tg_hot.me < 0 || tg_hot.npeers < 1) return;
    tg_peer_clear_busy(tg_hot.me);
    __atomic_store_n(&TG_OWN()->slot[tg_hot.me].pid, 0, __ATOMIC_RELEASE);
}
