/*
 * authpool — password verification off the event loops.
 *
 * A fixed set of threads, each with its own struct accounts connection,
 * takes verification requests from a queue and answers on the requesting
 * event loop's thread.  argon2id costs tens of milliseconds of CPU: it must
 * never run on an event-loop thread.
 *
 * Cancellation: the callback is always called exactly once.  A session
 * that goes away while a request is pending must not be freed under it;
 * the usual pattern is a small heap "pending" record that the session
 * detaches (sets its session pointer to NULL) and the callback frees.
 */
#ifndef OUTPOST_AUTHPOOL_H
#define OUTPOST_AUTHPOOL_H

#include <stddef.h>
#include "auth/accounts.h"

struct event_base;
struct authpool;

/* Returns NULL with a message in err (e.g. database cannot be opened). */
struct authpool *authpool_new(const char *dbpath, int nthreads,
	    const struct pwhash_params *pp, char *err, size_t errlen);
/* Answers every pending request (AUTH_TEMPFAIL) and joins the threads. */
void	authpool_free(struct authpool *ap);

/*
 * Queues a verification.  user and password are copied (the copy of the
 * password is wiped after use).  cb(arg, result, canon) runs on base's
 * thread; canon is the stored address on AUTH_OK (valid during the call).
 */
typedef void (*authpool_cb)(void *arg, enum auth_result result,
	    const char *canon);
void	authpool_verify(struct authpool *ap, struct event_base *base,
	    const char *user, const char *password, size_t passlen,
	    authpool_cb cb, void *arg);

#endif
