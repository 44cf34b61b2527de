/* Control files (tailguard/control.h): their names, their validity, and opening them without trusting the directory's
 * other users. Shared by the shim (which arbitrates) and the addon (`tailguard ps`, `tailguard priority`). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tailguard/control.h"

int tg_ctl_header_ok(const tg_ctl *c, const uint8_t *uuid) {
    return !memcmp(c->magic, TG_CTL_MAGIC, 8) && c->version == TG_CTL_VERSION && c->size == sizeof(tg_ctl) &&
           c->slot_count == TG_CTL_SLOTS && c->checksum == tg_ctl_checksum(c) &&
           (!uuid || !memcmp(c->gpu_uuid, uuid, 16));
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A decimal number without sign or leading zero ending at '.'; advances *s past it. */
static int decimal(const char **s, uint64_t max, uint64_t *out) {
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max) return -1;
    }
    *s = p;
    *out = v;
    return 0;
}

int tg_ctl_name_parse(const char *name, uint8_t uuid[16], uint32_t *uid, unsigned *alternate) {
    if (strncmp(name, "gpu-", 4) != 0) return -1;
    const char *p = name + 4;
    for (int i = 0; i < 16; i++) {
        int hi = hex_digit(p[2 * i]), lo = hi < 0 ? -1 : hex_digit(p[2 * i + 1]);
        if (lo < 0) return -1;
        uuid[i] = (uint8_t)(hi << 4 | lo);
    }
    p += 32;
    uint64_t u, n = 0;
    if (*p++ != '.' || decimal(&p, 0xffffffffu, &u) != 0) return -1;
    if (*p == '.' && p[1] != 'c') {
        p++;
        if (decimal(&p, TG_CTL_ALTERNATES, &n) != 0 || n == 0) return -1;
    }
    if (strcmp(p, ".ctl") != 0) return -1;
    *uid = (uint32_t)u;
    *alternate = (unsigned)n;
    return 0;
}

static void name_of(char *out, size_t cap, const char *dir, const uint8_t uuid[16], uint32_t uid, unsigned alt) {
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
    if (alt) snprintf(out, cap, "%s/gpu-%s.%u.%u.ctl", dir, hex, (unsigned)uid, alt);
    else snprintf(out, cap, "%s/gpu-%s.%u.ctl", dir, hex, (unsigned)uid);
}

/* Writes a fresh block under a temporary name and links it into place: no reader ever sees a half-made one. 1: this
 * process made it; 0: the name was taken meanwhile; -1: cannot create files here (errno). */
static int create(const char *path, const uint8_t uuid[16], uint32_t gid) {
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int t = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (t < 0) return -1;
    tg_ctl init;
    memset(&init, 0, sizeof init);
    memcpy(init.magic, TG_CTL_MAGIC, 8);
    init.version = TG_CTL_VERSION;
    init.size = sizeof(tg_ctl);
    memcpy(init.gpu_uuid, uuid, 16);
    init.slot_count = TG_CTL_SLOTS;
    init.checksum = tg_ctl_checksum(&init);
    int ok = fchmod(t, 0644) == 0 && write(t, &init, sizeof init) == (ssize_t)sizeof init;
    if (ok && gid != (uint32_t)getegid()) {
        int ignored = fchown(t, (uid_t)-1, (gid_t)gid); /* a group of ours whose ceiling is higher; best effort */
        (void)ignored;
    }
    close(t);
    int rc = !ok ? -1 : link(tmp, path) == 0 ? 1 : errno == EEXIST ? 0 : -1;
    int saved = errno;
    unlink(tmp);
    errno = saved;
    return rc;
}

int tg_ctl_open_own(const char *dir, const uint8_t uuid[16], uint32_t gid, char *err, size_t err_len) {
    uint32_t me = (uint32_t)geteuid();
    char path[600], first_squatter[64] = "";
    for (unsigned alt = 0; alt <= TG_CTL_ALTERNATES; alt++) {
        name_of(path, sizeof path, dir, uuid, me, alt);
        for (int attempt = 0; attempt < 3; attempt++) {
            int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0 && errno == ENOENT) {
                if (create(path, uuid, gid) < 0) {
                    snprintf(err, err_len, "cannot create %s: %s", path, strerror(errno));
                    return -1;
                }
                continue; /* made by us or by a sibling meanwhile: open it */
            }
            struct stat st;
            if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == me) {
                tg_ctl head;
                if (st.st_size == (off_t)sizeof(tg_ctl) && pread(fd, &head, sizeof head, 0) == (ssize_t)sizeof head &&
                    tg_ctl_header_ok(&head, uuid)) {
                    if (st.st_mode & 022) fchmod(fd, 0644); /* ours: nobody else writes it */
                    return fd;
                }
                close(fd);
                snprintf(err, err_len,
                         "the GPU control file %s is corrupt or from another tailguard version (remove it when no "
                         "process uses the GPU)",
                         path);
                return -1;
            }
            /* a link, or a file someone else made under our name: theirs says nothing for us; try the next name */
            if (fd >= 0 && !first_squatter[0] && fstat(fd, &st) == 0)
                snprintf(first_squatter, sizeof first_squatter, "uid %u", (unsigned)st.st_uid);
            else if (fd < 0 && !first_squatter[0])
                snprintf(first_squatter, sizeof first_squatter, "%s", errno == ELOOP ? "a link" : strerror(errno));
            if (fd >= 0) close(fd);
            break;
        }
    }
    snprintf(err, err_len, "every name for uid %u's control file in %s is taken by someone else (the first by %s)", me,
             dir, first_squatter);
    return -1;
}

int tg_ctl_open_peer(int dirfd, const char *name, uint32_t *uid, uint32_t *gid) {
    uint8_t uuid[16];
    uint32_t named;
    unsigned alt;
    if (tg_ctl_name_parse(name, uuid, &named, &alt) != 0) return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0) return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != named || st.st_size != (off_t)sizeof(tg_ctl)) {
        close(fd);
        return -1;
    }
    *uid = (uint32_t)st.st_uid;
    *gid = (uint32_t)st.st_gid;
    return fd;
}
