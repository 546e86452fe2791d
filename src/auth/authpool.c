/*
 * authpool — argon2id password checks on worker threads.
 *
 * Owns N threads, each with its own struct accounts connection (opened in
 * authpool_new so that a bad database fails at start-up), and a bounded
 * FIFO of requests guarded by one mutex and condition variable.
 *
 * A request is one heap record that carries the copied user and password
 * in, and the result and canonical address back: the worker wipes the
 * password, fills in the answer and hands the record to the requesting
 * loop with loopcall(); the loop side calls the callback and frees it.
 *
 * Failures: a full queue, a stopping pool or a database error answer
 * AUTH_TEMPFAIL, always through loopcall(), never inline, so a caller is
 * never re-entered from authpool_verify().  Only when memory runs out so
 * far that not even that can be queued is the callback lost (logged).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/authcache.h"
#include "auth/authpool.h"
#include "auth/oauth2.h"
#include "auth/sasl.h"
#include "util/log.h"
#include "util/loopcall.h"

#define AP_QUEUE_MAX	10000
#define AP_THREADS_MAX	64
#define AP_USER_MAX	SASL_FIELD_MAX
#define AP_PASS_MAX	SASL_FIELD_MAX

struct ap_req {
	struct ap_req	*next;
	struct event_base *base;
	authpool_cb	 cb;
	authpool_cb_ex	 cb_ex;		/* instead of cb when set */
	void		*arg;
	enum auth_result result;
	int64_t		 apppass_id;
	int		 held;
	int		 cached;
	char		*aliases;	/* heap; handed to cb_ex */
	size_t		 passlen;
	char		 user[AP_USER_MAX + 1];
	char		 pass[AP_PASS_MAX + 1];	/* wiped before delivery */
	char		 canon[256];
	char		*token;		/* token request: heap, wiped */
	size_t		 tokenlen;
	int		 o2status;
	char		 o2reason[128];
};

struct ap_worker {
	struct authpool	*ap;
	struct accounts	*acct;
	pthread_t	 tid;
	int		 started;
};

struct authpool {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct ap_req	*head, *tail;	/* FIFO, guarded by mu */
	size_t		 pending;	/* requests in the FIFO */
	int		 stopping;	/* guarded by mu */
	time_t		 full_logged;	/* last "queue full" line, guarded by mu */
	struct pwhash_params pp;
	struct ap_worker *workers;
	int		 nworkers;
	struct authcache *cache;	/* NULL: no caching */
	struct oauth2	*o2;		/* NULL: tokens are refused */
};

static int
ap_ok(enum auth_result r)
{
	return r == AUTH_OK || r == AUTH_OK_APPPASS ||
	    r == AUTH_NEED_APPPASS || r == AUTH_DISABLED;
}

static void
ap_deliver(void *p)
{
	struct ap_req *r = p;
	struct auth_answer ans;

	if (r->cb_ex != NULL) {
		memset(&ans, 0, sizeof(ans));
		ans.result = r->result;
		ans.canon = ap_ok(r->result) ? r->canon : NULL;
		ans.apppass_id = r->apppass_id;
		ans.held = r->held;
		ans.cached = r->cached;
		ans.aliases = r->aliases;	/* ownership passes */
		r->aliases = NULL;
		ans.oauth_status = r->o2status;
		ans.oauth_reason = r->o2reason;
		r->cb_ex(r->arg, &ans);
	} else {
		free(r->aliases);
		r->cb(r->arg, r->result, r->result == AUTH_OK ? r->canon :
		    NULL);
	}
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/*
 * Sends r back to its loop with the result set.  loopcall() can only fail
 * for lack of memory: retry briefly rather than drop the answer.
 */
static void
ap_answer(struct ap_req *r, enum auth_result result)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int tries;

	sodium_memzero(r->pass, sizeof(r->pass));
	r->passlen = 0;
	if (r->token != NULL) {
		sodium_memzero(r->token, r->tokenlen);
		free(r->token);
		r->token = NULL;
		r->tokenlen = 0;
	}
	r->result = result;
	if (!ap_ok(result))
		r->canon[0] = '\0';
	for (tries = 0; tries < 100; tries++) {
		if (loopcall(r->base, ap_deliver, r) == 0)
			return;
		nanosleep(&ts, NULL);
	}
	log_err("authpool: out of memory, an AUTH answer was lost");
	free(r->aliases);
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* A bearer token: the provider's word, then the account. */
static enum auth_result
ap_token(struct ap_worker *w, struct ap_req *r)
{
	struct oauth2_result res;
	struct verify_out vo;
	enum auth_result ar;

	if (w->ap->o2 == NULL) {
		r->o2status = O2_INVALID;
		snprintf(r->o2reason, sizeof(r->o2reason), "oauth2-off");
		return AUTH_DENIED;
	}
	oauth2_verify(w->ap->o2, r->token, r->tokenlen, r->user, time(NULL),
	    &res);
	r->o2status = (int)res.status;
	snprintf(r->o2reason, sizeof(r->o2reason), "%s", res.reason);
	if (res.status == O2_TEMPFAIL)
		return AUTH_TEMPFAIL;
	if (res.status != O2_OK)
		return AUTH_DENIED;
	ar = accounts_lookup_login(w->acct, res.user, &vo);
	if (ar == AUTH_OK || ar == AUTH_DISABLED) {
		snprintf(r->canon, sizeof(r->canon), "%s", vo.canon);
		r->held = vo.held;
		if (ar == AUTH_OK)
			r->aliases = accounts_alias_blob(w->acct, vo.user_id);
		else
			snprintf(r->o2reason, sizeof(r->o2reason),
			    "account-disabled");
	} else if (ar == AUTH_DENIED) {
		r->o2status = O2_INVALID;
		snprintf(r->o2reason, sizeof(r->o2reason), "unknown-account");
	}
	return ar;
}

static void *
ap_main(void *p)
{
	struct ap_worker *w = p;
	struct authpool *ap = w->ap;
	struct ap_req *r;
	struct verify_out vo;
	enum auth_result res;

	for (;;) {
		pthread_mutex_lock(&ap->mu);
		while (ap->head == NULL && !ap->stopping)
			pthread_cond_wait(&ap->cv, &ap->mu);
		/* On stop, leave the queue to authpool_free(): it answers it. */
		if (ap->stopping) {
			pthread_mutex_unlock(&ap->mu);
			break;
		}
		r = ap->head;
		ap->head = r->next;
		if (ap->head == NULL)
			ap->tail = NULL;
		ap->pending--;
		pthread_mutex_unlock(&ap->mu);

		r->next = NULL;
		if (r->token != NULL) {
			ap_answer(r, ap_token(w, r));
			continue;
		}
		if (r->cb_ex == NULL) {
			res = accounts_verify(w->acct, r->user, r->pass,
			    r->passlen, &ap->pp, r->canon, sizeof(r->canon));
			ap_answer(r, res);
			continue;
		}
		res = accounts_verify_ex(w->acct, r->user, r->pass,
		    r->passlen, &ap->pp, ap->cache, &vo);
		if (ap_ok(res)) {
			snprintf(r->canon, sizeof(r->canon), "%s", vo.canon);
			r->apppass_id = vo.apppass_id;
			r->held = vo.held;
			r->cached = vo.cached;
			if (res == AUTH_OK || res == AUTH_OK_APPPASS)
				r->aliases = accounts_alias_blob(w->acct,
				    vo.user_id);
		}
		sodium_memzero(&vo, sizeof(vo));
		ap_answer(r, res);
	}
	return NULL;
}

struct authpool *
authpool_new(const char *dbpath, int nthreads,
    const struct pwhash_params *pp, char *err, size_t errlen)
{
	struct authpool *ap;
	long ncpu;
	int i, rc;

	if (nthreads <= 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (int)(ncpu > AP_THREADS_MAX ?
		    AP_THREADS_MAX : ncpu) : 1;
	}
	if (nthreads > AP_THREADS_MAX)
		nthreads = AP_THREADS_MAX;
	if ((ap = calloc(1, sizeof(*ap))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (pp != NULL)
		ap->pp = *pp;
	if (pthread_mutex_init(&ap->mu, NULL) != 0) {
		free(ap);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "pthread_mutex_init failed");
		return NULL;
	}
	if (pthread_cond_init(&ap->cv, NULL) != 0) {
		pthread_mutex_destroy(&ap->mu);
		free(ap);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "pthread_cond_init failed");
		return NULL;
	}
	if ((ap->workers = calloc((size_t)nthreads,
	    sizeof(*ap->workers))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ap->nworkers = nthreads;
	/*
	 * Create the file and schema if needed: a fresh setup has an empty
	 * store, and the daemon should still start (every login is denied).
	 */
	for (i = 0; i < nthreads; i++) {
		ap->workers[i].ap = ap;
		if ((ap->workers[i].acct = accounts_open(dbpath, 1, err,
		    errlen)) == NULL)
			goto fail;
	}
	for (i = 0; i < nthreads; i++) {
		if ((rc = pthread_create(&ap->workers[i].tid, NULL, ap_main,
		    &ap->workers[i])) != 0) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "pthread_create: %s",
				    strerror(rc));
			goto fail;
		}
		ap->workers[i].started = 1;
	}
	return ap;
fail:
	authpool_free(ap);
	return NULL;
}

void
authpool_free(struct authpool *ap)
{
	struct ap_req *r, *next;
	int i;

	if (ap == NULL)
		return;
	pthread_mutex_lock(&ap->mu);
	ap->stopping = 1;
	r = ap->head;
	ap->head = ap->tail = NULL;
	ap->pending = 0;
	pthread_cond_broadcast(&ap->cv);
	pthread_mutex_unlock(&ap->mu);

	/* Answer what never reached a worker while the busy ones finish. */
	for (; r != NULL; r = next) {
		next = r->next;
		ap_answer(r, AUTH_TEMPFAIL);
	}
	for (i = 0; i < ap->nworkers; i++) {
		if (ap->workers[i].started)
			pthread_join(ap->workers[i].tid, NULL);
		accounts_close(ap->workers[i].acct);
	}
	free(ap->workers);
	authcache_free(ap->cache);
	pthread_cond_destroy(&ap->cv);
	pthread_mutex_destroy(&ap->mu);
	free(ap);
}

/* token (heap, or NULL for a password check): ownership passes. */
static void
ap_submit(struct authpool *ap, struct event_base *base,
    const char *user, const char *password, size_t passlen,
    char *token, size_t tokenlen,
    authpool_cb cb, authpool_cb_ex cb_ex, void *arg)
{
	struct ap_req *r;
	size_t ulen;
	int full = 0, logit = 0;
	time_t now;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		if (token != NULL) {
			sodium_memzero(token, tokenlen);
			free(token);
		}
		log_err("authpool: out of memory, an AUTH answer was lost");
		return;
	}
	r->token = token;
	r->tokenlen = tokenlen;
	r->base = base;
	r->cb = cb;
	r->cb_ex = cb_ex;
	r->arg = arg;
	ulen = user != NULL ? strnlen(user, AP_USER_MAX + 1) : 0;
	/*
	 * Over-long input cannot match any account.  The SASL layer bounds
	 * both fields to the same sizes, so a client cannot reach this early
	 * answer to probe timing.
	 */
	if (ulen > AP_USER_MAX || passlen > AP_PASS_MAX ||
	    (password == NULL && passlen > 0)) {
		ap_answer(r, AUTH_DENIED);
		return;
	}
	memcpy(r->user, user != NULL ? user : "", ulen);
	r->user[ulen] = '\0';
	if (passlen > 0)
		memcpy(r->pass, password, passlen);
	r->passlen = passlen;

	pthread_mutex_lock(&ap->mu);
	if (ap->stopping || ap->pending >= AP_QUEUE_MAX) {
		full = 1;
		/* One line a second is enough under a flood. */
		now = time(NULL);
		if (!ap->stopping && now != ap->full_logged) {
			ap->full_logged = now;
			logit = 1;
		}
	} else {
		if (ap->tail != NULL)
			ap->tail->next = r;
		else
			ap->head = r;
		ap->tail = r;
		ap->pending++;
		pthread_cond_signal(&ap->cv);
	}
	pthread_mutex_unlock(&ap->mu);
	if (full) {
		if (logit)
			log_warn("authpool: queue full (%d pending), answering "
			    "tempfail", AP_QUEUE_MAX);
		ap_answer(r, AUTH_TEMPFAIL);
	}
}

void
authpool_verify(struct authpool *ap, struct event_base *base,
    const char *user, const char *password, size_t passlen,
    authpool_cb cb, void *arg)
{
	ap_submit(ap, base, user, password, passlen, NULL, 0, cb, NULL, arg);
}

void
authpool_verify_ex(struct authpool *ap, struct event_base *base,
    const char *user, const char *password, size_t passlen,
    authpool_cb_ex cb, void *arg)
{
	ap_submit(ap, base, user, password, passlen, NULL, 0, NULL, cb, arg);
}

void
authpool_set_oauth2(struct authpool *ap, struct oauth2 *o2)
{
	pthread_mutex_lock(&ap->mu);
	ap->o2 = o2;
	pthread_mutex_unlock(&ap->mu);
}

void
authpool_verify_token(struct authpool *ap, struct event_base *base,
    const char *user, const char *token, size_t tokenlen,
    authpool_cb_ex cb, void *arg)
{
	char *t;

	/* a token larger than any AUTH line can carry cannot be valid; the
	 * over-long "password" makes ap_submit deny it through loopcall */
	if (tokenlen == 0 || tokenlen > OAUTH2_TOKEN_MAX ||
	    (t = malloc(tokenlen + 1)) == NULL) {
		ap_submit(ap, base, "", NULL, AP_PASS_MAX + 1, NULL, 0, NULL,
		    cb, arg);
		return;
	}
	memcpy(t, token, tokenlen);
	t[tokenlen] = '\0';
	ap_submit(ap, base, user, NULL, 0, t, tokenlen, NULL, cb, arg);
}

int
authpool_configure(struct authpool *ap, const unsigned char key[32],
    int cache_ttl, size_t cache_slots)
{
	int i;

	pthread_mutex_lock(&ap->mu);
	for (i = 0; i < ap->nworkers; i++)
		if (key != NULL)
			accounts_set_key(ap->workers[i].acct, key);
	if (ap->cache == NULL && cache_ttl > 0)
		ap->cache = authcache_new(cache_slots, cache_ttl);
	pthread_mutex_unlock(&ap->mu);
	return cache_ttl > 0 && ap->cache == NULL ? -1 : 0;
}
