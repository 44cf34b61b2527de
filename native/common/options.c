/* Parses the TAILGUARD_* variables declared in tailguard/options.def. Bad values never stop the host program: they get
 * one message naming the variable, the value, what is accepted, and the default used instead. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tailguard/log.h"
#include "tailguard/options.h"

const tg_option_info tg_options[TG_OPT_COUNT] = {
#define TG_OPTION(id, var, type, def, accepted, reader, meaning) \
    [TG_OPT_##id] = {var, def, accepted, reader, meaning, TG_OPT_TYPE_##type},
#include "tailguard/options.def"
#undef TG_OPTION
};

static const char *const formerly[TG_OPT_COUNT] = {
#define TG_OPTION(id, var, type, def, accepted, reader, meaning)
#define TG_OPTION_RENAMED(id, old_variable) [TG_OPT_##id] = old_variable,
#include "tailguard/options.def"
#undef TG_OPTION
};

extern char **environ;
static unsigned char warned[TG_OPT_COUNT], renamed_said[TG_OPT_COUNT];

const char *tg_option_formerly(tg_option_id id) { return formerly[id]; }

static void bad_value(tg_option_id id, const char *value) {
    if (warned[id]) return;
    warned[id] = 1;
    tg_warn("%s=\"%s\" is not valid (accepted: %s); using the default \"%s\"", tg_options[id].variable, value,
            tg_options[id].accepted, tg_options[id].default_value);
}

static const char *set_value(const char *variable) {
    const char *v = variable ? getenv(variable) : NULL;
    return (v && *v) ? v : NULL;
}

/* A renamed option given by its old name: said once per process, with the value in force. */
static void say_renamed(tg_option_id id) {
    const char *now = set_value(tg_options[id].variable), *old = set_value(formerly[id]);
    if (!old || renamed_said[id]) return;
    renamed_said[id] = 1;
    if (now)
        tg_warn("%s (the old name of %s) is ignored: %s=\"%s\" is set too and wins; unset %s", formerly[id],
                tg_options[id].variable, tg_options[id].variable, now, formerly[id]);
    else
        tg_warn("%s is the old name of %s: its value \"%s\" is used; set %s instead", formerly[id],
                tg_options[id].variable, old, tg_options[id].variable);
}

/* The option's value as set, under its name or else its old one; NULL when neither is set (or set empty). */
static const char *raw(tg_option_id id) {
    const char *v = set_value(tg_options[id].variable);
    if (formerly[id]) {
        say_renamed(id);
        if (!v) v = set_value(formerly[id]);
    }
    return v;
}

int tg_option_log_level(void) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = raw(TG_OPT_LOG_LEVEL);
    if (!v) return TG_LOG_WARN;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0) return i;
    if (strcasecmp(v, "warning") == 0) return TG_LOG_WARN;
    bad_value(TG_OPT_LOG_LEVEL, v);
    return TG_LOG_WARN;
}

int tg_option_bool(tg_option_id id) {
    const char *v = raw(id);
    int def = strcmp(tg_options[id].default_value, "1") == 0;
    if (!v) return def;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) return 1;
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) return 0;
    bad_value(id, v);
    return def;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

uint64_t tg_option_uint(tg_option_id id, uint64_t min, uint64_t max, int power_of_two) {
    uint64_t def = 0, x;
    parse_u64(tg_options[id].default_value, &def);
    const char *v = raw(id);
    if (!v) return def;
    if (parse_u64(v, &x) || x < min || x > max || (power_of_two && (x & (x - 1)))) {
        bad_value(id, v);
        return def;
    }
    return x;
}

int tg_option_priority(const char *text, int *out) {
    if (!text) return -1;
    if (!strcasecmp(text, "high")) { *out = TG_PRIORITY_HIGH; return 0; }
    if (!strcasecmp(text, "normal")) { *out = TG_PRIORITY_NORMAL; return 0; }
    if (!strcasecmp(text, "low")) { *out = TG_PRIORITY_LOW; return 0; }
    errno = 0;
    char *end;
    long x = strtol(text, &end, 10);
    if (end == text || *end || errno || x < TG_PRIORITY_MIN || x > TG_PRIORITY_MAX) return -1;
    *out = (int)x;
    return 0;
}

int tg_option_priority_env(void) {
    int p = TG_PRIORITY_NORMAL;
    const char *v = raw(TG_OPT_PRIORITY);
    if (v && tg_option_priority(v, &p) != 0) {
        bad_value(TG_OPT_PRIORITY, v);
        p = TG_PRIORITY_NORMAL;
    }
    return p;
}

static int valid_string(tg_option_id id, const char *v, unsigned len) {
    size_t n = strlen(v);
    if (n + 1 > len) return 0;
    switch (tg_options[id].type) {
    case TG_OPT_TYPE_PATH:
        return v[0] == '/';
    case TG_OPT_TYPE_STRING:
        if (n > 31) return 0;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)v[i]) && v[i] != '_' && v[i] != '-') return 0;
        return 1;
    default:
        return 1;
    }
}

const char *tg_option_string(tg_option_id id, char *buf, unsigned len) {
    const char *v = raw(id);
    if (v && !valid_string(id, v, len)) {
        bad_value(id, v);
        v = NULL;
    }
    if (!v) v = tg_options[id].default_value;
    size_t n = strlen(v);
    if (n >= len) n = len - 1;
    memcpy(buf, v, n);
    buf[n] = 0;
    return buf;
}

void tg_options_check_unknown(void) {
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "TAILGUARD_", 10) != 0) continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        int known = 0;
        for (int i = 0; i < TG_OPT_COUNT && !known; i++) {
            known = strlen(tg_options[i].variable) == n && strncmp(tg_options[i].variable, *e, n) == 0;
            if (!known && formerly[i] && strlen(formerly[i]) == n && strncmp(formerly[i], *e, n) == 0) {
                known = 1;
                say_renamed((tg_option_id)i);
            }
        }
        if (!known) tg_warn("unknown variable %.*s ignored (see `tailguard options` for the known ones)", (int)n, *e);
    }
}
