/* Ring files in $TAILGUARD_DIR: their names, whether their process lives, and when a ring may be removed. Shared by
 * the shim (which sweeps stale rings when a process starts) and the addon (`tailguard ps`), so the rule is one. */
#ifndef TAILGUARD_RING_FILES_H
#define TAILGUARD_RING_FILES_H
#include <dirent.h>
#include <limits.h>
#include <stdint.h>

#include "tailguard/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "<pid>.<start ticks>.<generation>.ring" (optionally ".tmp" while being created); 0 on success. */
int tg_ring_name_parse(const char *name, uint32_t *pid, uint64_t *ticks, uint32_t *generation, int *is_tmp);
/* The one walk over a directory's ring files, for the shim's sweep, `tailguard ps` and `tailguard priority`, and the
 * agent's collector: each entry named like a ring, with what its name says and its path. Other files (control
 * files, the policy, agent.pid) are not yielded. Not bounded: each caller looks at every ring there is.
 *
 *     tg_ring_walk w;
 *     if (tg_ring_walk_open(&w, dir) == 0) {
 *         while (tg_ring_walk_next(&w, 0)) use(w.path, w.pid, w.ticks);
 *         tg_ring_walk_close(&w);
 *     } */
typedef struct tg_ring_walk {
    DIR *dir;
    size_t dir_len;       /* of "DIR/" at the start of path */
    char path[PATH_MAX];  /* "DIR/NAME" of the current ring file */
    const char *name;     /* NAME, inside path */
    uint32_t pid, generation;
    uint64_t ticks;       /* its process's start time, as named */
    int is_tmp;           /* a ring still being created (".ring.tmp") */
} tg_ring_walk;
/* 0, or -1 when the directory cannot be read (then next yields nothing, and close does nothing). */
int tg_ring_walk_open(tg_ring_walk *w, const char *dir);
/* The next ring file (and half-created .tmp ones when with_tmp): 1, or 0 when there are no more. */
int tg_ring_walk_next(tg_ring_walk *w, int with_tmp);
void tg_ring_walk_close(tg_ring_walk *w);
/* Opens a ring file the way every reader must: never through a symbolic link (another user could plant one), never
 * waiting on a FIFO; access is O_RDONLY or O_RDWR. */
int tg_ring_file_open(const char *path, int access);
/* /proc/PID/stat of a process of this PID namespace: its start time (field 22) and state letter (field 3); -1 when
 * it does not exist. The one parser of that file in C. */
int tg_process_stat(uint32_t pid, uint64_t *ticks, char *state);
/* Start time of a live process (field 22 of /proc/PID/stat), 0 when it does not exist. */
uint64_t tg_process_start_ticks(uint32_t pid);
/* The process that created a ring still runs (same pid, same start time). */
int tg_process_alive(uint32_t pid, uint64_t ticks);
/* This process's PID namespace: the inode of /proc/self/ns/pid (0 if unknown). */
uint32_t tg_pid_namespace(void);
/* Liveness locks: a process holds an open-file-description write lock on one byte of a shared file for as long as it
 * is there (the kernel drops it when the process exits, or execs with the descriptor close-on-exec), and every process
 * sees whether it is held, whatever its PID namespace (where a pid names another process, or none). Used for ring
 * files (their writer), GPU control-block slots and simulated-GPU slots. tg_lock_hold: 1 taken, 0 another process
 * holds it, -1 the file system has no OFD locks. tg_lock_held: 1 held, 0 not, -1 cannot tell. */
int tg_lock_hold(int fd, uint64_t byte);
int tg_lock_held(int fd, uint64_t byte);
/* Byte 0 of a ring file: its writer's liveness lock, taken when the file is created. */
#define TG_RING_WRITER_LOCK 0u
/* A ring's writer is alive: it holds the ring's lock (fd: the ring file, or -1), or, for a ring without one (an exec'd
 * image's earlier ring; a file system without OFD locks), /proc shows its process (pid, ticks). */
int tg_ring_alive(int fd, uint32_t pid, uint64_t ticks);
/* A session id is "<recorder pid>-<suffix>"; the recorder is alive. */
int tg_session_alive(const char *session);
/* The agent registered in DIR/agent.pid ("PID TICKS", or "PID" from an older agent) is alive with that start time, or
 * stopped without unregistering less than TAILGUARD_AGENT_GRACE_S ago (it will come back for the rings). */
int tg_agent_alive(const char *dir);
/* Someone will still read this ring: its recording session, a draining consumer, or a running agent. */
int tg_ring_has_reader(const tg_ring_header *h, const char *dir);
/* Removes rings (and half-created .tmp files) of processes that are gone and that nobody will read.
 * Returns how many were removed. */
int tg_sweep_stale_rings(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
