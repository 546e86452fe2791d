/*
 * evbase — the event loops of the daemon's busy threads.
 */
#ifndef OUTPOST_UTIL_EVBASE_H
#define OUTPOST_UTIL_EVBASE_H

#include <event2/event.h>

/*
 * A new event base for a thread that serves many sockets (SMTP workers,
 * the delivery scheduler).  With epoll it batches interest changes
 * (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): bufferevents switch read and
 * write interest on every reply, and without the changelist each switch
 * is an epoll_ctl call (36 per message measured in scenario 1 of
 * bench/).  The flag is unsafe only with fds cloned by dup(), which the
 * daemon never puts in an event loop.  NULL when out of memory.
 */
struct event_base *evbase_new(void);

#endif
