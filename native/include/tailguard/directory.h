/* $TAILGUARD_DIR: whether this process may trust it, and whether it can create files in it (docs/security.md).
 *
 * A directory is trusted when it is a real directory (not a symbolic link), belongs to root or to this process's
 * effective user, and, when other users may write to it, has the sticky bit (so none of them can remove or rename
 * files that are not theirs). Anything else -- a directory another user created first, a link -- is never used:
 * its owner could remove or replace every file in it. Shared by the shim, the agent and the CLI, so the rule is one. */
#ifndef TAILGUARD_DIRECTORY_H
#define TAILGUARD_DIRECTORY_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_dir_info {
    int exists;         /* it exists and is a directory */
    int trusted;        /* the rule above holds */
    int writable;       /* this process can create files in it */
    uint32_t uid, gid;  /* its owner and group */
    uint32_t mode;      /* permission bits, sticky and setgid included (07777) */
    char problem[512];  /* when not trusted or not writable: what is wrong and what to do, for people */
} tg_dir_info;

/* Looks at dir without changing anything; returns 0 when it is trusted and writable. */
int tg_dir_inspect(const char *dir, tg_dir_info *out);
/* Creates dir when it does not exist (and its parents): shared, mode 1777, when root creates it; private, 0700,
 * when another user does (nobody else would trust it anyway). Then inspects it. */
int tg_dir_prepare(const char *dir, tg_dir_info *out);

#ifdef __cplusplus
}
#endif
#endif
