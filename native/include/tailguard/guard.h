/* Mappings that someone else can truncate. A shared-memory file can be shrunk by its owner (a ring by its process's
 * user, a control file by the user it belongs to) at any moment; touching a page of a mapping past the file's new end
 * raises SIGBUS, which would kill the host program or the agent. A guarded mapping cannot: the first SIGBUS on it
 * replaces the whole mapping with private zero-filled memory, the access that faulted completes against the zeros,
 * and the mapping is marked lost. Readers see zeros (no magic, nothing busy, empty lanes) and fail open; writers
 * write into memory nobody reads. Every other SIGBUS goes to the handler the program had (or kills as before).
 *
 * The handler is installed at the first tg_guard_add; tg_guard_keep re-installs it in front of a handler the program
 * set since (chaining to it), and is called from places that run periodically, never from a signal handler. */
#ifndef TAILGUARD_GUARD_H
#define TAILGUARD_GUARD_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Registers [addr, addr + len) (page-aligned, as mmap returns it); 0 on success, -1 when the table is full (the
 * mapping then stays unguarded: the caller should not map foreign files it cannot guard). */
int tg_guard_add(void *addr, size_t len);
/* Forgets a range before it is unmapped. */
void tg_guard_remove(void *addr);
/* 1 once the mapping at addr was replaced by zeros after its file shrank. */
int tg_guard_lost(const void *addr);
/* Puts the handler back in front if the program replaced it; cheap enough for every few milliseconds. */
void tg_guard_keep(void);
/* How many SIGBUS the guard absorbed (for tests and diagnostics). */
unsigned tg_guard_absorbed(void);

#ifdef __cplusplus
}
#endif
#endif
