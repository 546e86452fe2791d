/*
 * loopcall — see loopcall.h.  One heap record per call; it frees itself
 * after fn returns.
 */
#include <stdlib.h>
#include <event2/event.h>

#include "util/loopcall.h"

struct loopcall_rec {
	struct event	*ev;
	void		(*fn)(void *);
	void		*arg;
};

static void
loopcall_fire(evutil_socket_t fd, short what, void *p)
{
	struct loopcall_rec *rec = p;

	(void)fd;
	(void)what;
	rec->fn(rec->arg);
	event_free(rec->ev);
	free(rec);
}

int
loopcall(struct event_base *base, void (*fn)(void *arg), void *arg)
{
	struct loopcall_rec *rec;

	if ((rec = malloc(sizeof(*rec))) == NULL)
		return -1;
	rec->fn = fn;
	rec->arg = arg;
	if ((rec->ev = event_new(base, -1, 0, loopcall_fire, rec)) == NULL) {
		free(rec);
		return -1;
	}
	/* event_active() is thread-safe once evthread_use_pthreads() ran. */
	event_active(rec->ev, EV_TIMEOUT, 1);
	return 0;
}
