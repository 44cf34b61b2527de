/* The admin's priority policy: $TAILGUARD_DIR/policy says the highest priority a process may take, by the user (uid)
 * or group (gid) it runs as (docs/security.md). It is read only when it belongs to root or to the directory's owner
 * and nobody else can write it. One rule per line, '#' starts a comment:
 *
 *     default <priority>        every user not named below (without this line: normal, 0)
 *     uid <number> <priority>   processes of this user
 *     gid <number> <priority>   processes whose control file carries this group (docs/security.md)
 *
 * <priority> as TAILGUARD_PRIORITY takes it: -100..100, high, normal or low. Root and the directory's owner are the
 * admin: no ceiling. A user or group named by several rules gets the highest. Every process clamps its own priority
 * to its ceiling, and every reader clamps every other process's to the ceiling of the user that owns its control file
 * (which the kernel attests), so a process that writes a higher number gains nothing. */
#ifndef TAILGUARD_POLICY_H
#define TAILGUARD_POLICY_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_POLICY_RULES 256
#define TG_POLICY_MAX_BYTES 65536

enum tg_policy_kind { TG_POLICY_UID = 1, TG_POLICY_GID = 2 };

typedef struct tg_policy {
    int32_t default_ceiling;
    uint32_t admin_uid;   /* the directory's owner (root is always admin) */
    uint32_t rules;
    struct {
        uint32_t kind, id;
        int32_t ceiling;
    } rule[TG_POLICY_RULES];
    int from_file;        /* 1: DIR/policy was read; 0: defaults only */
    char problem[768];    /* why the file was not used, or its first bad line ("" when none) */
} tg_policy;

/* Parses policy text. On an error, p holds only the defaults and err says which line is wrong and why; 0 on success. */
int tg_policy_parse(const char *text, size_t len, tg_policy *p, char *err, size_t err_len);
/* Loads DIR/policy (dir_uid: the directory's owner). A missing file gives the defaults and no problem; an untrusted or
 * malformed one gives the defaults and a problem. Returns 0 when the file was missing or used. */
int tg_policy_load(const char *dir, uint32_t dir_uid, tg_policy *p);
/* The ceiling of a control file's owner: its user, and the group the file carries. */
int32_t tg_policy_ceiling(const tg_policy *p, uint32_t uid, uint32_t gid);
/* This process's ceiling over its effective user and all its groups; *gid: the group that gives it (to carry on the
 * control file so that readers reach the same ceiling). */
int32_t tg_policy_ceiling_self(const tg_policy *p, uint32_t *gid);

#ifdef __cplusplus
}
#endif
#endif
