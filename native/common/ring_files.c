/* Ring files: naming, liveness of their processes, and the one rule for removing them (see ring_files.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/options.h"
#include "tailguard/ring_files.h"

int tg_ring_name_parse(const char *name, uint32_t *pid, uint64_t *ticks, uint32_t *generation, int *is_tmp) {
    unsigned long p, g;
    unsigned long long t;
    int used = 0;
    if (sscanf(name, "%lu.%llu.%lu.ring%n", &p, &t, &g, &used) != 3 || used == 0) return -1;
    if (strcmp(name + used, "") == 0) *is_tmp = 0;
    else if (strcmp(name + used, ".tmp") == 0) *is_tmp = 1;
    else return -1;
    *pid = (uint32_t)p;
    *ticks = t;
    *generation = (uint32_t)g;
    return 0;
}

int tg_ring_walk_open(tg_ring_walk *w, const char *dir) {
    size_t n = strlen(dir);
    w->dir = n + 1 < sizeof w->path ? opendir(dir) : NULL;
    if (!w->dir) return -1;
    memcpy(w->path, dir, n);
    w->path[n] = '/';
    w->dir_len = n + 1;
    w->name = w->path + w->dir_len;
    return 0;
}

int tg_ring_walk_next(tg_ring_walk *w, int with_tmp) {
    struct dirent *e;
    while (w->dir && (e = readdir(w->dir))) {
        if (tg_ring_name_parse(e->d_name, &w->pid, &w->ticks, &w->generation, &w->is_tmp) != 0) continue;
        if (w->is_tmp && !with_tmp) continue;
        size_t n = strlen(e->d_name);
        if (w->dir_len + n >= sizeof w->path) continue; /* no path names it: the kernel would refuse it too */
        memcpy(w->path + w->dir_len, e->d_name, n + 1);
        return 1;
    }
    return 0;
}

void tg_ring_walk_close(tg_ring_walk *w) {
    if (w->dir) closedir(w->dir);
    w->dir = NULL;
}

int tg_ring_file_open(const char *path, int access) {
    return open(path, access | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

/* Reads a small file (a /proc entry, a pid file) into buf, NUL-terminated; 0 when it cannot be read. */
static ssize_t read_small(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? n : 0;
}

int tg_process_stat(uint32_t pid, uint64_t *ticks, char *state) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    if (!read_small(path, buf, sizeof buf)) return -1;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
    if (!p || p[1] != ' ' || !p[2]) return -1;
    if (state) *state = p[2];
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    if (ticks) *ticks = strtoull(p, 0, 10);
    return 0;
}

uint64_t tg_process_start_ticks(uint32_t pid) {
    uint64_t ticks = 0;
    return tg_process_stat(pid, &ticks, 0) == 0 ? ticks : 0;
}

int tg_process_alive(uint32_t pid, uint64_t ticks) {
    if (pid == 0) return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) return 0;
    uint64_t now = tg_process_start_ticks(pid);
    return now == 0 || ticks == 0 || now == ticks; /* unreadable /proc: trust kill() */
}

uint32_t tg_pid_namespace(void) {
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
}

static struct flock byte_lock(uint64_t byte) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)byte;
    fl.l_len = 1;
    return fl;
}

int tg_lock_hold(int fd, uint64_t byte) {
    struct flock fl = byte_lock(byte);
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return 1;
    return errno == EAGAIN || errno == EACCES ? 0 : -1;
}

int tg_lock_held(int fd, uint64_t byte) {
    struct flock fl = byte_lock(byte);
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -1;
    /* a read lock proves nothing: anyone who can open the file for reading can take one */
    return fl.l_type == F_WRLCK;
}

int tg_ring_alive(int fd, uint32_t pid, uint64_t ticks) {
    return (fd >= 0 && tg_lock_held(fd, TG_RING_WRITER_LOCK) == 1) || tg_process_alive(pid, ticks);
}

static int pid_alive(uint32_t pid) { return pid != 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

int tg_session_alive(const char *session) {
    char *end;
    unsigned long pid = strtoul(session, &end, 10);
    return end != session && *end == '-' && pid_alive((uint32_t)pid);
}

int tg_agent_alive(const char *dir) {
    char path[512], buf[64], *end;
    snprintf(path, sizeof path, "%s/agent.pid", dir);
    /* "PID TICKS\n": the agent's pid and start time (field 22 of /proc/PID/stat), so that a pid a crashed agent left
     * behind, and another process has now, is not taken for it; an older agent's file has the pid alone (ticks 0:
     * the pid says it). Empty (being rewritten) or absent: nobody runs, and the grace below decides. */
    read_small(path, buf, sizeof buf);
    unsigned long pid = strtoul(buf, &end, 10);
    unsigned long long ticks = strtoull(end, 0, 10);
    if (pid != 0 && tg_process_alive((uint32_t)pid, ticks)) return 1;
    /* registered but not running: crashed or restarting. It touches the file every second while it runs, and
     * removes it when it stops on purpose; keep rings for it until the grace since its last beat runs out. */
    struct stat st;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t grace = tg_option_uint(TG_OPT_AGENT_GRACE_S, 0, 86400, 0);
    return stat(path, &st) == 0 && now.tv_sec - st.st_mtim.tv_sec >= 0 &&
           (uint64_t)(now.tv_sec - st.st_mtim.tv_sec) < grace;
}

int tg_ring_has_reader(const tg_ring_header *h, const char *dir) {
    char session[sizeof h->session + 1];
    memcpy(session, h->session, sizeof h->session);
    session[sizeof h->session] = 0;
    if (session[0] && tg_session_alive(session)) return 1;
    if (pid_alive(__atomic_load_n(&h->consumer_pid, __ATOMIC_ACQUIRE))) return 1;
    return tg_agent_alive(dir);
}

int tg_sweep_stale_rings(const char *dir) {
    tg_ring_walk w;
    if (tg_ring_walk_open(&w, dir) != 0) return 0;
    int removed = 0;
    while (tg_ring_walk_next(&w, 1)) {
        const char *path = w.path;
        int fd = tg_ring_file_open(path, O_RDONLY), link = fd < 0 && errno == ELOOP;
        int keep = tg_ring_alive(fd, w.pid, w.ticks);
        if (!keep && !w.is_tmp) {
            /* a copy of the header, not a mapping: its owner may shrink the file while we look */
            tg_ring_header h;
            if (fd < 0) keep = !link;                              /* cannot look: leave it (a link is garbage) */
            else if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) keep = 0; /* not a ring: garbage */
            else keep = memcmp(h.magic, TG_RING_MAGIC, 8) == 0 && tg_ring_has_reader(&h, dir);
        }
        if (fd >= 0) close(fd);
        if (!keep && unlink(path) == 0) removed++;
    }
    tg_ring_walk_close(&w);
    return removed;
}
