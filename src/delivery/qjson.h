/*
 * delivery/qjson — one queued message as JSON, the same for the daemon's
 * control socket and for `outpost queue` reading a stopped daemon's
 * spool, so both print the same thing.
 *
 * Owns: the returned json_t (caller json_decref()s).  NULL when out of
 * memory.
 */
#ifndef OUTPOST_DLV_QJSON_H
#define OUTPOST_DLV_QJSON_H

#include <jansson.h>

#include "queue/qstate.h"
#include "queue/spool.h"

/* detail: also the envelope's DSN fields and the history.
 * active: a delivery attempt is running now (daemon only). */
json_t	*dlv_msg_json(const struct envelope *env, const struct qstate *st,
	    int active, int detail);

/* The state a message is in, for lists and counts: "active", "held",
 * "deferred" (tried, failed for now) or "queued" (not tried yet). */
const char *dlv_msg_state(const struct qstate *st, int active);

#endif
