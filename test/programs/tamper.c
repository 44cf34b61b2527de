/* What a hostile local user (or a corrupt file) does to tailguard's shared files, for test/native/security.test.ts and the
 * fault-injection test. Every command acts on files with plain system calls and prints what happened:
 *
 *   tamper open FILE                      can this user open FILE for writing? prints "opened" or "denied: why"
 *   tamper truncate FILE SIZE             truncates (prints "truncated" or "denied: why")
 *   tamper write FILE OFFSET HEX          writes bytes at OFFSET
 *   tamper zero FILE OFFSET LEN           writes zeros
 *   tamper random FILE OFFSET LEN SEED    writes pseudo-random bytes
 *   tamper u64 FILE OFFSET VALUE          writes a little-endian 64-bit value
 *   tamper forge DIR PID TICKS LEASE_S    in every GPU control file of DIR this user can write: a busy, in-sync slot of
 *                                         priority 100 for PID (start time TICKS, lease LEASE_S seconds from now),
 *                                         and the lock word taken by PID; prints how many files it changed
 *   tamper own DIR UUIDHEX PID TICKS LEASE_S
 *                                         creates this user's own control file for the GPU (as a shim would) holding
 *                                         the same forged slot
 *   tamper readlock FILE OFFSET SECONDS   holds a read lock on one byte (anyone who can read a file can)
 *   tamper sleep SECONDS                  a live process of this user, for pids */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/control.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int put(const char *file, off_t off, const void *bytes, size_t n) {
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || pwrite(fd, bytes, n, off) != (ssize_t)n) {
        printf("denied: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    printf("written\n");
    return 0;
}

/* The forged slot: busy, waiting in a sync, priority 100, its lease far ahead, the lock word taken. */
static void forge_slot(tg_ctl *c, unsigned i, uint32_t pid, uint64_t ticks, uint64_t lease_s) {
    tg_ctl_slot *s = &c->slot[i];
    memset(s, 0, sizeof *s);
    s->pid = pid;
    s->start_ticks = ticks;
    s->priority = 100;
    s->busy = 1;
    s->in_sync = 1;
    s->lease_until = now_ns() + lease_s * 1000000000ull;
    c->busy_mask |= 1ull << i;
    c->lock = pid;
}

static int forge_file(const char *path, uint32_t pid, uint64_t ticks, uint64_t lease_s) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return 0;
    tg_ctl c;
    if (pread(fd, &c, sizeof c, 0) != (ssize_t)sizeof c) {
        close(fd);
        return 0;
    }
    forge_slot(&c, TG_CTL_SLOTS - 1, pid, ticks, lease_s);
    /* the header stays as it is (its checksum with it): only what a writer of the file may write changes */
    int ok = pwrite(fd, (char *)&c + 64, sizeof c - 64, 64) == (ssize_t)(sizeof c - 64);
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of tamper.c\n");
        return 2;
    }
    const char *cmd = argv[1], *file = argv[2];
    if (!strcmp(cmd, "open")) {
        int fd = open(file, O_RDWR | O_CLOEXEC), e = errno;
        printf(fd >= 0 ? "opened\n" : "denied: %s\n", strerror(e));
        return 0;
    }
    if (!strcmp(cmd, "truncate") && argc == 4) {
        int rc = truncate(file, atoll(argv[3])), e = errno;
        printf(rc == 0 ? "truncated\n" : "denied: %s\n", strerror(e));
        return 0;
    }
    if (!strcmp(cmd, "write") && argc == 5) {
        size_t n = strlen(argv[4]) / 2;
        unsigned char *b = malloc(n + 1);
        for (size_t i = 0; i < n; i++) sscanf(argv[4] + 2 * i, "%2hhx", &b[i]);
        return put(file, atoll(argv[3]), b, n);
    }
    if (!strcmp(cmd, "zero") && argc == 5) {
        size_t n = (size_t)atoll(argv[4]);
        void *b = calloc(1, n + 1);
        return put(file, atoll(argv[3]), b, n);
    }
    if (!strcmp(cmd, "random") && argc == 6) {
        size_t n = (size_t)atoll(argv[4]);
        unsigned char *b = malloc(n + 1);
        uint64_t x = (uint64_t)atoll(argv[5]) * 0x9E3779B97F4A7C15ull + 1;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[i] = (unsigned char)x;
        }
        return put(file, atoll(argv[3]), b, n);
    }
    if (!strcmp(cmd, "u64") && argc == 5) {
        uint64_t v = strtoull(argv[4], 0, 0);
        return put(file, atoll(argv[3]), &v, sizeof v);
    }
    if (!strcmp(cmd, "forge") && argc == 6) {
        DIR *d = opendir(file);
        int changed = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, "gpu-", 4) || n < 8 || strcmp(e->d_name + n - 4, ".ctl")) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", file, e->d_name);
            changed += forge_file(path, (uint32_t)atol(argv[3]), strtoull(argv[4], 0, 10), strtoull(argv[5], 0, 10));
        }
        printf("forged %d\n", changed);
        return 0;
    }
    if (!strcmp(cmd, "own") && argc == 7) {
        uint8_t uuid[16];
        for (int i = 0; i < 16; i++) sscanf(argv[3] + 2 * i, "%2hhx", &uuid[i]);
        char err[512];
        int fd = tg_ctl_open_own(file, uuid, (uint32_t)getegid(), err, sizeof err);
        if (fd < 0) {
            printf("denied: %s\n", err);
            return 1;
        }
        close(fd);
        char path[1024];
        snprintf(path, sizeof path, "%s/gpu-%s.%u.ctl", file, argv[3], (unsigned)geteuid());
        printf("forged %d\n", forge_file(path, (uint32_t)atol(argv[4]), strtoull(argv[5], 0, 10), strtoull(argv[6], 0, 10)));
        return 0;
    }
    if (!strcmp(cmd, "readlock") && argc == 5) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = atoll(argv[3]), .l_len = 1};
        int ok = fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0, e = errno;
        printf(ok ? "locked\n" : "denied: %s\n", strerror(e));
        fflush(stdout);
        sleep((unsigned)atoi(argv[4]));
        return 0;
    }
    if (!strcmp(cmd, "sleep")) {
        printf("%d\n", (int)getpid());
        fflush(stdout);
        sleep((unsigned)atoi(file));
        return 0;
    }
    fprintf(stderr, "tamper: unknown command or arguments\n");
    return 2;
}
