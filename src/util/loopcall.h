/*
 * loopcall — run a function on a given event loop's thread, from any
 * thread.
 *
 * Used by the worker threads (password hashing, spool commit) to hand
 * their results back to the session's event loop.  Requires
 * evthread_use_pthreads() before any event_base is created (outpostd does
 * it first thing).  The call is queued with event_active(), so it runs on
 * the next loop iteration, never inline.
 */
#ifndef OUTPOST_LOOPCALL_H
#define OUTPOST_LOOPCALL_H

struct event_base;

/* Returns 0, or -1 when out of memory (fn is then not called). */
int	loopcall(struct event_base *base, void (*fn)(void *arg), void *arg);

#endif
