/* Reading TAILGUARD_* options: each is parsed once from the environment; a malformed value gets one clear message and
 * the documented default. Shared by the shim and the simulated GPU (native/common/options.c). */
#ifndef TAILGUARD_OPTIONS_H
#define TAILGUARD_OPTIONS_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stdint.h>

typedef enum {
#define TG_OPTION(id, var, type, def, accepted, reader, meaning) TG_OPT_##id,
#include "tailguard/options.def"
#undef TG_OPTION
    TG_OPT_COUNT
} tg_option_id;

typedef enum { TG_OPT_TYPE_ENUM, TG_OPT_TYPE_BOOL, TG_OPT_TYPE_PATH, TG_OPT_TYPE_UINT, TG_OPT_TYPE_PRIORITY,
               TG_OPT_TYPE_STRING } tg_option_type;

typedef struct {
    const char *variable, *default_value, *accepted, *reader, *meaning;
    tg_option_type type;
} tg_option_info;

extern const tg_option_info tg_options[TG_OPT_COUNT];

enum { TG_LOG_ERROR = 0, TG_LOG_WARN = 1, TG_LOG_INFO = 2, TG_LOG_DEBUG = 3 };
/* Priorities: the one definition of the words TAILGUARD_PRIORITY, `tailguard priority` and the admin's policy accept
 * and of the range. agent/src/ingest/native.ts mirrors them and test/docs/priorities.test.ts proves that it, the
 * options table and every document that restates them agree. */
#define TG_PRIORITY_HIGH 10
#define TG_PRIORITY_NORMAL 0
#define TG_PRIORITY_LOW (-10)
#define TG_PRIORITY_MIN (-100)
#define TG_PRIORITY_MAX 100

/* The priority in force for a process that asks for `asked` and whose user's ceiling (tailguard/policy.h) is
 * `ceiling`: what every reader of a control file believes (tailguard/control.h). */
static inline int32_t tg_priority_in_force(int32_t asked, int32_t ceiling) {
    int32_t p = asked < TG_PRIORITY_MIN ? TG_PRIORITY_MIN : asked > TG_PRIORITY_MAX ? TG_PRIORITY_MAX : asked;
    return p < ceiling ? p : ceiling;
}

/* Parsed values; a malformed value is reported once (at warn level) and replaced by the default. */
int tg_option_log_level(void);
int tg_option_bool(tg_option_id id);
uint64_t tg_option_uint(tg_option_id id, uint64_t min, uint64_t max, int power_of_two);
int tg_option_priority(const char *text, int *out); /* 0 when text is a valid priority */
int tg_option_priority_env(void);
/* The value as given (or the default), copied into buf; for PATH options, relative paths are rejected. */
const char *tg_option_string(tg_option_id id, char *buf, unsigned len);
/* The variable's old name where the option was renamed (options.def), else NULL. The old name is read where the new
 * one is not set, with one warning per process naming both. */
const char *tg_option_formerly(tg_option_id id);
/* Warns once about TAILGUARD_* variables that no option of this table knows (typos), and about old names. */
void tg_options_check_unknown(void);

#ifdef __cplusplus
}
#endif
#endif
