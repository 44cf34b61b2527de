/* The admin's priority policy (tailguard/policy.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tailguard/options.h"
#include "tailguard/policy.h"

static void defaults(tg_policy *p, uint32_t admin_uid) {
    memset(p, 0, sizeof *p);
    p->default_ceiling = TG_PRIORITY_NORMAL;
    p->admin_uid = admin_uid;
}

/* The next whitespace-separated word of [*s, end) as a NUL-terminated copy: 1, or 0 when there is none, -1 when it
 * is longer than cap - 1. */
static int word(const char **s, const char *end, char *out, size_t cap) {
    while (*s < end && (**s == ' ' || **s == '\t' || **s == '\r')) (*s)++;
    size_t n = 0;
    while (*s < end && **s != ' ' && **s != '\t' && **s != '\r') {
        if (n + 1 >= cap) return -1;
        out[n++] = *(*s)++;
    }
    out[n] = 0;
    return n > 0;
}

static int id_of(const char *text, uint32_t *id) {
    char *e;
    errno = 0;
    unsigned long v = strtoul(text, &e, 10);
    if (text[0] < '0' || text[0] > '9' || *e || errno || v > 0xfffffffful) return -1;
    *id = (uint32_t)v;
    return 0;
}

int tg_policy_parse(const char *text, size_t len, tg_policy *p, char *err, size_t err_len) {
    uint32_t admin = p->admin_uid;
    defaults(p, admin);
    err[0] = 0;
    const char *s = text, *end = text + len;
    for (unsigned line = 1; s < end; line++) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        const char *hash = memchr(s, '#', (size_t)(eol - s));
        const char *stop = hash ? hash : eol, *c = s;
        char w[4][32];
        int n = 0, r = 0;
        while (n < 4 && (r = word(&c, stop, w[n], sizeof w[n])) == 1) n++;
        const char *why = 0;
        int32_t ceiling = 0;
        uint32_t id = 0;
        if (r < 0) why = "a word is too long";
        else if (n == 4) why = "too many words";
        else if (n == 0) why = 0; /* blank or comment */
        else if (!strcmp(w[0], "default")) {
            if (n != 2) why = "expected: default <priority>";
            else if (tg_option_priority(w[1], &ceiling)) why = "the priority is not -100..100, high, normal or low";
            else p->default_ceiling = ceiling;
        } else if (!strcmp(w[0], "uid") || !strcmp(w[0], "gid")) {
            if (n != 3) why = "expected: uid|gid <number> <priority>";
            else if (id_of(w[1], &id)) why = "the id is not a number (names are not looked up: use the number)";
            else if (tg_option_priority(w[2], &ceiling)) why = "the priority is not -100..100, high, normal or low";
            else if (p->rules == TG_POLICY_RULES) why = "more rules than the 256 a policy may have";
            else {
                p->rule[p->rules].kind = w[0][0] == 'u' ? TG_POLICY_UID : TG_POLICY_GID;
                p->rule[p->rules].id = id;
                p->rule[p->rules].ceiling = ceiling;
                p->rules++;
            }
        } else
            why = "unknown rule (expected default, uid or gid)";
        if (why) {
            int shown = (int)(stop - s) > 60 ? 60 : (int)(stop - s);
            for (int i = 0; i < shown; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) shown = i;
            snprintf(err, err_len, "line %u \"%.*s\": %s", line, shown, s, why);
            defaults(p, admin);
            return -1;
        }
        s = eol + 1;
    }
    return 0;
}

int tg_policy_load(const char *dir, uint32_t dir_uid, tg_policy *p) {
    defaults(p, dir_uid);
    char path[300], text[TG_POLICY_MAX_BYTES], err[300];
    snprintf(path, sizeof path, "%s/policy", dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(p->problem, sizeof p->problem, "%s cannot be read (%s): only the defaults apply", path,
                 errno == ELOOP ? "a symbolic link" : strerror(errno));
        return -1;
    }
    struct stat st;
    const char *why = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) why = "not a regular file";
    else if (st.st_uid != 0 && st.st_uid != dir_uid) why = "it does not belong to root or to the directory's owner";
    else if (st.st_mode & 022) why = "users other than its owner can write it";
    else if (st.st_size > TG_POLICY_MAX_BYTES) why = "larger than 64 KiB";
    ssize_t n = why ? 0 : pread(fd, text, sizeof text, 0);
    close(fd);
    if (!why && n < 0) why = "it cannot be read";
    if (why) {
        snprintf(p->problem, sizeof p->problem, "%s is not used: %s; only the defaults apply (see docs/security.md)",
                 path, why);
        return -1;
    }
    if (tg_policy_parse(text, (size_t)n, p, err, sizeof err) != 0) {
        snprintf(p->problem, sizeof p->problem, "%s %s; only the defaults apply", path, err);
        return -1;
    }
    p->from_file = 1;
    return 0;
}

int32_t tg_policy_ceiling(const tg_policy *p, uint32_t uid, uint32_t gid) {
    if (uid == 0 || uid == p->admin_uid) return TG_PRIORITY_MAX;
    int32_t best = 0;
    int matched = 0;
    for (uint32_t i = 0; i < p->rules && i < TG_POLICY_RULES; i++) {
        uint32_t want = p->rule[i].kind == TG_POLICY_UID ? uid : gid;
        if (p->rule[i].id != want) continue;
        if (!matched || p->rule[i].ceiling > best) best = p->rule[i].ceiling;
        matched = 1;
    }
    return matched ? best : p->default_ceiling;
}

int32_t tg_policy_ceiling_self(const tg_policy *p, uint32_t *gid) {
    uint32_t uid = (uint32_t)geteuid(), g = (uint32_t)getegid();
    int32_t best = tg_policy_ceiling(p, uid, g);
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++) {
        int32_t c = tg_policy_ceiling(p, uid, (uint32_t)groups[i]);
        if (c > best) {
            best = c;
            g = (uint32_t)groups[i];
        }
    }
    if (gid) *gid = g;
    return best;
}
