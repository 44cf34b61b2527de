/* The optional kernel trace for ordering tests: with TAILGUARD_SIM_TRACE=DIR each process writes DIR/sim-trace.PID,
 * one line per executed kernel:
 *   <stream, 0x hex; 0x0 = legacy default stream> <kernel sequence number within the stream, from 0> <kernel name>
 *   <first start ns> <completion ns> <device ns consumed>
 * Times are CLOCK_MONOTONIC on the device timeline. Whitespace in names becomes '_'. Lines are buffered and written on
 * every synchronisation, when the worker goes idle, and at exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "tailguard/log.h"
#include "tailguard/options.h"

int sim_trace_enabled;
static char dir[PATH_MAX];
static int fd = -1;
static char buf[1 << 16];
static size_t len;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void sim_trace_open(void) {
    tg_option_string(TG_OPT_SIM_TRACE, dir, sizeof dir);
    sim_trace_enabled = dir[0] != 0;
}

/* Under lock. */
static void write_out(void) {
    if (fd < 0) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/sim-trace.%d", dir, (int)getpid());
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            tg_warn("cannot write the kernel trace %s (%s); TAILGUARD_SIM_TRACE must name an existing directory; "
                    "tracing is off for this process",
                    path, strerror(errno));
            sim_trace_enabled = 0;
            len = 0;
            return;
        }
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    len = 0;
}

void sim_trace_kernel(uintptr_t stream, uint64_t seq, const char *name, uint64_t first_start, uint64_t done,
                      uint64_t device_ns) {
    pthread_mutex_lock(&lock);
    if (!sim_trace_enabled) {
        pthread_mutex_unlock(&lock);
        return;
    }
    if (len + 600 > sizeof buf) write_out();
    /* Names are arbitrary strings: keep the line's six fields apart. */
    char clean[401];
    size_t i = 0;
    for (const char *c = name && *name ? name : "?"; *c && i < sizeof clean - 1; c++, i++)
        clean[i] = (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') ? '_' : *c;
    clean[i] = 0;
    int n = snprintf(buf + len, sizeof buf - len, "0x%" PRIxPTR " %" PRIu64 " %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                     stream, seq, clean, first_start, done, device_ns);
    if (n > 0 && (size_t)n < sizeof buf - len) len += (size_t)n;
    pthread_mutex_unlock(&lock);
}

void sim_trace_flush(void) {
    if (!sim_trace_enabled) return;
    pthread_mutex_lock(&lock);
    if (len && sim_trace_enabled) write_out();
    pthread_mutex_unlock(&lock);
}

void sim_trace_after_fork(void) {
    pthread_mutex_init(&lock, NULL);
    if (fd >= 0) close(fd);
    fd = -1;
    len = 0;
}
