/* Messages for people on stderr: one write(2) per line so lines from many processes never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tailguard/log.h"
#include "tailguard/options.h"

static const char *component = "tailguard";
static int level = -1; /* parsed on first use */

void tg_log_set_component(const char *name) { component = name; }

void tg_log(int lvl, const char *fmt, ...) {
    if (level < 0) {
        level = TG_LOG_WARN; /* in force while the variable itself is parsed (it may warn) */
        level = tg_option_log_level();
    }
    if (lvl > level) return;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    int n = snprintf(line, sizeof line, "%s[%d]: %s: ", component, (int)getpid(), names[lvl & 3]);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && n < (int)sizeof line) n += vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(2, line, (size_t)n);
    (void)ignored;
}
