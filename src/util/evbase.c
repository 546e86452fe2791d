/*
 * evbase — see evbase.h.
 *
 * Owns: nothing beyond each call.
 * Fails: NULL when libevent cannot create a base.
 */
#include <event2/event.h>

#include "util/evbase.h"

struct event_base *
evbase_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}
