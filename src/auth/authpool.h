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
#include <stdint.h>
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

/*
 * The extended check (accounts_verify_ex): app passwords, 2FA, disabled
 * accounts, the argon2id cache.  On an OK result the answer also carries
 * the account's aliases ("a\0b\0\0", heap, or NULL): the callback owns
 * that buffer and must free() it (or keep it).
 */
struct auth_answer {
	enum auth_result result;
	const char	*canon;		/* stored address on any OK-ish result */
	int64_t		 apppass_id;	/* on AUTH_OK_APPPASS */
	int		 held;		/* account's mail is on hold */
	int		 cached;	/* argon2id skipped thanks to the cache */
	char		*aliases;
	/* token checks (authpool_verify_token) only: */
	int		 oauth_status;	/* enum oauth2_status; 0 for passwords */
	const char	*oauth_reason;	/* "expired", "wrong-user"... or "" */
};
typedef void (*authpool_cb_ex)(void *arg, struct auth_answer *ans);
void	authpool_verify_ex(struct authpool *ap, struct event_base *base,
	    const char *user, const char *password, size_t passlen,
	    authpool_cb_ex cb, void *arg);

/*
 * OAuth2: checks a bearer token (oauth2_verify: signature or
 * introspection) and then that its user is a known account, on a pool
 * thread.  user is the SASL user ("" when the mechanism gave none).
 * Results: AUTH_OK (canon = the account; 2FA accounts included),
 * AUTH_DENIED with oauth_status/oauth_reason, AUTH_DISABLED,
 * AUTH_TEMPFAIL.  Without authpool_set_oauth2() every token is denied.
 */
struct oauth2;
void	authpool_set_oauth2(struct authpool *ap, struct oauth2 *o2);
void	authpool_verify_token(struct authpool *ap, struct event_base *base,
	    const char *user, const char *token, size_t tokenlen,
	    authpool_cb_ex cb, void *arg);

/*
 * Gives every worker the server secret (app passwords, TOTP) and sets up
 * the argon2id success cache (ttl seconds, 0 = off; slots bounds it).
 * Call once after authpool_new(), before the first request.  0 or -1.
 */
int	authpool_configure(struct authpool *ap, const unsigned char key[32],
	    int cache_ttl, size_t cache_slots);

#endif
