/* Messages for people, on stderr, filtered by TAILGUARD_LOG_LEVEL. Never called on the launch path. */
#ifndef TAILGUARD_LOG_H
#define TAILGUARD_LOG_H
#ifdef __cplusplus
extern "C" {
#endif

void tg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define tg_error(...) tg_log(0, __VA_ARGS__)
#define tg_warn(...) tg_log(1, __VA_ARGS__)
#define tg_info(...) tg_log(2, __VA_ARGS__)
#define tg_debug(...) tg_log(3, __VA_ARGS__)

/* The component name printed in front of each message ("tailguard", "tailguard-sim"). */
void tg_log_set_component(const char *name);

#ifdef __cplusplus
}
#endif
#endif
