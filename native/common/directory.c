/* $TAILGUARD_DIR's trust rule (tailguard/directory.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tailguard/directory.h"

#define ADVICE "the admin should create it as root with mode 1777 (every user), or group tailguard and mode 3770 " \
               "(members only): see docs/security.md"

int tg_dir_inspect(const char *dir, tg_dir_info *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (dir[0] != '/') {
        snprintf(out->problem, sizeof out->problem, "%s is not an absolute path", dir);
        return -1;
    }
    if (lstat(dir, &st) != 0) {
        snprintf(out->problem, sizeof out->problem, "%s: %s", dir, strerror(errno));
        return -1;
    }
    out->uid = (uint32_t)st.st_uid;
    out->gid = (uint32_t)st.st_gid;
    out->mode = (uint32_t)(st.st_mode & 07777);
    if (S_ISLNK(st.st_mode)) {
        snprintf(out->problem, sizeof out->problem,
                 "%s is a symbolic link, which is not followed (another user may have planted it); %s", dir, ADVICE);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(out->problem, sizeof out->problem, "%s is not a directory", dir);
        return -1;
    }
    out->exists = 1;
    uid_t me = geteuid();
    if (st.st_uid != 0 && st.st_uid != me) {
        snprintf(out->problem, sizeof out->problem,
                 "%s belongs to uid %u (not root, not uid %u): that user could remove or replace every file in it, so "
                 "it is not used; remove it, or set TAILGUARD_DIR to a directory of your own; %s",
                 dir, (unsigned)st.st_uid, (unsigned)me, ADVICE);
        return -1;
    }
    if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
        snprintf(out->problem, sizeof out->problem,
                 "%s (mode %04o) is writable by other users but not sticky: any of them could remove your files, so it "
                 "is not used; chmod +t %s",
                 dir, (unsigned)out->mode, dir);
        return -1;
    }
    out->trusted = 1;
    out->writable = faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0;
    if (!out->writable) {
        snprintf(out->problem, sizeof out->problem,
                 "%s (owner uid %u, group %u, mode %04o) is not writable by uid %u; %s",
                 dir, (unsigned)out->uid, (unsigned)out->gid, (unsigned)out->mode, (unsigned)me, ADVICE);
        return -1;
    }
    return 0;
}

int tg_dir_prepare(const char *dir, tg_dir_info *out) {
    char tmp[512];
    if (dir[0] == '/' && snprintf(tmp, sizeof tmp, "%s", dir) < (int)sizeof tmp) {
        for (char *p = tmp + 1; *p; p++) {
            if (*p != '/') continue;
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) break;
            *p = '/';
        }
        int shared = geteuid() == 0;
        if (mkdir(tmp, shared ? 0777 : 0700) == 0 && shared) chmod(tmp, 01777);
    }
    return tg_dir_inspect(dir, out);
}
