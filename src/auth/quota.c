/*
 * quota — in-memory sending counters with batched SQLite persistence
 * (see quota.h).
 *
 * Owns: the counter table (chained hash, at most max_entries records;
 * when full, records of past days and then clean ones are dropped — a
 * dropped record forgets its in-memory bounce window, never a hold), a
 * small array of pending app-password "last used" notes (bounded; the
 * newest wins per id), one struct accounts connection used only by the
 * flush thread, and that thread.
 *
 * Locking: q->mu guards the table and the notes; quota_bounce() is
 * called on the delivery thread, everything else on the SMTP workers.  The flush copies what is
 * dirty under the lock and writes it without holding it, so the event
 * loops never wait for SQLite.  Failures: a failed write leaves the
 * records dirty for the next round (logged); out of memory means a
 * message is not counted (logged) rather than refused.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/quota.h"
#include "util/log.h"

#define Q_BUCKETS	4096
#define Q_NOTES_MAX	1024
#define Q_NAME_MAX	299

struct q_rec {
	struct q_rec	*next;
	struct usage_row u;	/* name, day, counters */
	int		 held;
	int		 hold_pending;	/* write users.held = 1 */
	int		 dirty;
	time_t		 bounce_start;	/* start of the bounce window */
	int		 bounces;	/* hard bounces in that window */
};

struct q_note {
	int64_t		 id;
	time_t		 when;
	char		 ip[64];
};

struct quota {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct q_rec	*b[Q_BUCKETS];
	size_t		 n, max;
	struct q_note	 notes[Q_NOTES_MAX];
	size_t		 nnotes;
	int		 stopping;
	int		 interval;
	time_t		 oom_logged;

	struct accounts	*acct;		/* flush thread only */
	pthread_mutex_t	 flush_mu;	/* one flush at a time */
	pthread_t	 tid;
	int		 started;
};

static size_t
q_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *k != '\0'; k++) {
		h ^= (unsigned char)tolower((unsigned char)*k);
		h *= 1099511628211ULL;
	}
	return (size_t)(h % Q_BUCKETS);
}

static int64_t
day_of(time_t now)
{
	return (int64_t)now / 86400;
}

static int64_t
hour_of(time_t now)
{
	return (int64_t)now / 3600;
}

static struct q_rec *
q_find(struct quota *q, const char *name)
{
	struct q_rec *r;

	for (r = q->b[q_hash(name)]; r != NULL; r = r->next)
		if (strcasecmp(r->u.name, name) == 0)
			return r;
	return NULL;
}

/* Drops one record of a past day, or failing that one clean record. */
static void
q_evict(struct quota *q, int64_t today)
{
	struct q_rec *r, **pp, **victim = NULL;
	size_t i;

	for (i = 0; i < Q_BUCKETS && victim == NULL; i++)
		for (pp = &q->b[i]; (r = *pp) != NULL; pp = &r->next)
			if (!r->dirty && !r->held && r->u.day < today) {
				victim = pp;
				break;
			}
	for (i = 0; i < Q_BUCKETS && victim == NULL; i++)
		for (pp = &q->b[i]; (r = *pp) != NULL; pp = &r->next)
			if (!r->dirty && !r->held) {
				victim = pp;
				break;
			}
	if (victim != NULL) {
		r = *victim;
		*victim = r->next;
		free(r);
		q->n--;
	}
}

/* The record for name, rolled over to today; NULL when out of room. */
static struct q_rec *
q_get(struct quota *q, const char *name, time_t now)
{
	struct q_rec *r;
	int64_t today = day_of(now);
	size_t h;

	if ((r = q_find(q, name)) == NULL) {
		if (strlen(name) > Q_NAME_MAX)
			return NULL;
		if (q->n >= q->max)
			q_evict(q, today);
		if (q->n >= q->max || (r = calloc(1, sizeof(*r))) == NULL) {
			if (now - q->oom_logged >= 60) {
				q->oom_logged = now;
				log_err("quota: counter table full, %s is not "
				    "counted", name);
			}
			return NULL;
		}
		snprintf(r->u.name, sizeof(r->u.name), "%s", name);
		r->u.day = today;
		h = q_hash(name);
		r->next = q->b[h];
		q->b[h] = r;
		q->n++;
	}
	if (r->u.day != today) {
		r->u.day = today;
		r->u.messages = r->u.recipients = 0;
		r->u.hour_messages = 0;
		r->u.quota_hits = 0;
	}
	if (r->u.hour != hour_of(now)) {
		r->u.hour = hour_of(now);
		r->u.hour_messages = 0;
	}
	return r;
}

static int
q_load_one(void *ctx, const struct usage_row *u)
{
	struct quota *q = ctx;
	struct q_rec *r;

	if ((r = q_get(q, u->name, (time_t)(u->day * 86400))) == NULL)
		return 0;
	r->u = *u;
	r->dirty = 0;
	return 0;
}

/* Copies out what must be written; clears the marks. */
static size_t
q_collect(struct quota *q, struct q_rec **out, struct q_note *notes,
    size_t *nnotes)
{
	struct q_rec *r, *c, *list = NULL;
	size_t i, n = 0;

	for (i = 0; i < Q_BUCKETS; i++)
		for (r = q->b[i]; r != NULL; r = r->next) {
			if (!r->dirty && !r->hold_pending)
				continue;
			if ((c = malloc(sizeof(*c))) == NULL)
				continue;	/* stays dirty */
			*c = *r;
			c->next = list;
			list = c;
			r->dirty = 0;
			r->hold_pending = 0;
			n++;
		}
	memcpy(notes, q->notes, q->nnotes * sizeof(*notes));
	*nnotes = q->nnotes;
	q->nnotes = 0;
	*out = list;
	return n;
}

/* Puts the marks back after a failed write (newer changes are kept). */
static void
q_restore(struct quota *q, struct q_rec *list, struct q_note *notes,
    size_t nnotes)
{
	struct q_rec *r, *c;
	size_t i;

	for (c = list; c != NULL; c = c->next)
		if ((r = q_find(q, c->u.name)) != NULL) {
			r->dirty = 1;
			r->hold_pending |= c->hold_pending;
		}
	for (i = 0; i < nnotes && q->nnotes < Q_NOTES_MAX; i++)
		q->notes[q->nnotes++] = notes[i];
}

int
quota_flush(struct quota *q)
{
	struct q_rec *list = NULL, *c, *nx;
	struct q_note *notes;
	char err[256];
	size_t nnotes = 0, i;
	int rc = 0;

	if (q->acct == NULL)
		return 0;
	if ((notes = malloc(sizeof(q->notes))) == NULL)
		return -1;
	pthread_mutex_lock(&q->flush_mu);
	pthread_mutex_lock(&q->mu);
	q_collect(q, &list, notes, &nnotes);
	pthread_mutex_unlock(&q->mu);
	if (list == NULL && nnotes == 0)
		goto done;
	if (accounts_begin(q->acct) != 0) {
		rc = -1;
		goto failed;
	}
	for (c = list; c != NULL && rc == 0; c = c->next) {
		if (accounts_usage_put(q->acct, &c->u) != 0)
			rc = -1;
		else if (c->hold_pending && accounts_user_set_held(q->acct,
		    c->u.name, 1, err, sizeof(err)) != ACCT_OK)
			log_warn("quota: cannot record the hold of %s: %s",
			    c->u.name, err);
	}
	for (i = 0; i < nnotes && rc == 0; i++)
		if (accounts_apppass_touch(q->acct, notes[i].id,
		    notes[i].when, notes[i].ip) != 0)
			rc = -1;
	if (rc == 0 && accounts_commit(q->acct) != 0)
		rc = -1;
	else if (rc != 0)
		accounts_commit(q->acct);	/* ends the transaction */
failed:
	if (rc != 0) {
		log_err("quota: writing counters failed, will retry");
		pthread_mutex_lock(&q->mu);
		q_restore(q, list, notes, nnotes);
		pthread_mutex_unlock(&q->mu);
	}
done:
	pthread_mutex_unlock(&q->flush_mu);
	for (c = list; c != NULL; c = nx) {
		nx = c->next;
		free(c);
	}
	free(notes);
	return rc;
}

static void *
q_main(void *p)
{
	struct quota *q = p;
	struct timespec ts;
	int stop;

	for (;;) {
		pthread_mutex_lock(&q->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += q->interval;
		while (!q->stopping &&
		    pthread_cond_timedwait(&q->cv, &q->mu, &ts) != ETIMEDOUT)
			;
		stop = q->stopping;
		pthread_mutex_unlock(&q->mu);
		quota_flush(q);
		if (stop)
			break;
	}
	return NULL;
}

struct quota *
quota_open(const char *dbpath, int flush_interval, size_t max_entries,
    char *err, size_t errlen)
{
	struct quota *q;
	int rc;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_mutex_init(&q->flush_mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->max = max_entries < 16 ? 16 : max_entries;
	q->interval = flush_interval < 1 ? 1 : flush_interval;
	if (dbpath == NULL)
		return q;
	if ((q->acct = accounts_open(dbpath, 1, err, errlen)) == NULL)
		goto fail;
	if (accounts_usage_each(q->acct, day_of(time(NULL)), q_load_one,
	    q) < 0) {
		snprintf(err, errlen, "cannot read the usage counters");
		goto fail;
	}
	if ((rc = pthread_create(&q->tid, NULL, q_main, q)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));
		goto fail;
	}
	q->started = 1;
	return q;
fail:
	quota_close(q);
	return NULL;
}

void
quota_close(struct quota *q)
{
	struct q_rec *r, *nx;
	size_t i;

	if (q == NULL)
		return;
	if (q->started) {
		pthread_mutex_lock(&q->mu);
		q->stopping = 1;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->tid, NULL);
	}
	accounts_close(q->acct);
	for (i = 0; i < Q_BUCKETS; i++)
		for (r = q->b[i]; r != NULL; r = nx) {
			nx = r->next;
			free(r);
		}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->flush_mu);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* Holds r's account: MAIL is refused from now on, and the flush thread
 * writes users.held soon.  Caller holds q->mu and logs the HOLD line. */
static void
q_hold(struct quota *q, struct q_rec *r)
{
	r->held = 1;
	r->hold_pending = 1;
	pthread_cond_signal(&q->cv);	/* write it soon */
}

/* A limit was hit: count it, and hold the account at the threshold. */
static void
q_hit(struct quota *q, struct q_rec *r, const struct quota_limits *lim,
    const char *what)
{
	r->u.quota_hits++;
	r->dirty = 1;
	if (lim->hold_after > 0 && !r->held &&
	    r->u.quota_hits >= lim->hold_after &&
	    strncmp(r->u.name, "net:", 4) != 0) {
		q_hold(q, r);
		log_warn("quota: HOLD user=%s, reason=quota, count=%lld: "
		    "outgoing mail held after %lld limit hits today (last: %s); "
		    "release with `outpost user release %s`", r->u.name,
		    (long long)r->u.quota_hits, (long long)r->u.quota_hits,
		    what, r->u.name);
	}
}

/* r's bounce window as of now: a window that is over starts again. */
static void
q_bounce_roll(struct q_rec *r, const struct quota_bounce_limits *lim,
    time_t now)
{
	int window = lim->window < 1 ? 1 : lim->window;

	/* a clock that went back also ends the window */
	if (r->bounces > 0 && (now < r->bounce_start ||
	    now - r->bounce_start >= window))
		r->bounces = 0;
	if (r->bounces == 0)
		r->bounce_start = now;
}

int
quota_bounce(struct quota *q, const char *name,
    const struct quota_bounce_limits *lim, time_t now)
{
	struct q_rec *r;
	int held = 0;

	if (lim->hold_after <= 0 || strncmp(name, "net:", 4) == 0)
		return 0;
	pthread_mutex_lock(&q->mu);
	if ((r = q_get(q, name, now)) != NULL) {
		q_bounce_roll(r, lim, now);
		if (r->bounces < INT_MAX)
			r->bounces++;
		if (!r->held && r->bounces >= lim->hold_after) {
			q_hold(q, r);
			held = 1;
			log_warn("quota: HOLD user=%s, reason=bounces, count=%d: "
			    "outgoing mail held after %d hard bounces in %d s; "
			    "release with `outpost user release %s`", r->u.name,
			    r->bounces, r->bounces, lim->window, r->u.name);
		}
	}
	pthread_mutex_unlock(&q->mu);
	return held;
}

int
quota_bounces(struct quota *q, const char *name,
    const struct quota_bounce_limits *lim, time_t now)
{
	struct q_rec *r;
	int n = 0;
	int window = lim->window < 1 ? 1 : lim->window;

	pthread_mutex_lock(&q->mu);
	if ((r = q_find(q, name)) != NULL && r->bounces > 0 &&
	    now >= r->bounce_start && now - r->bounce_start < window)
		n = r->bounces;
	pthread_mutex_unlock(&q->mu);
	return n;
}

enum quota_verdict
quota_check_mail(struct quota *q, const char *name,
    const struct quota_limits *lim, time_t now)
{
	struct q_rec *r;
	enum quota_verdict v = QUOTA_OK;

	pthread_mutex_lock(&q->mu);
	if ((r = q_get(q, name, now)) != NULL) {
		if (r->held)
			v = QUOTA_HELD;
		else if (lim->daily_messages > 0 &&
		    r->u.messages >= lim->daily_messages) {
			v = QUOTA_DAILY;
			q_hit(q, r, lim, "daily messages");
		} else if (lim->hourly_messages > 0 &&
		    r->u.hour_messages >= lim->hourly_messages) {
			v = QUOTA_HOURLY;
			q_hit(q, r, lim, "hourly messages");
		}
	}
	pthread_mutex_unlock(&q->mu);
	return v;
}

enum quota_verdict
quota_check_rcpt(struct quota *q, const char *name,
    const struct quota_limits *lim, int ntx, time_t now)
{
	struct q_rec *r;
	enum quota_verdict v = QUOTA_OK;

	pthread_mutex_lock(&q->mu);
	if ((r = q_get(q, name, now)) != NULL) {
		if (r->held)
			v = QUOTA_HELD;
		else if (lim->daily_recipients > 0 &&
		    r->u.recipients + ntx > lim->daily_recipients) {
			v = QUOTA_DAILY;
			q_hit(q, r, lim, "daily recipients");
		}
	}
	pthread_mutex_unlock(&q->mu);
	return v;
}

void
quota_count(struct quota *q, const char *name, int nrcpts, time_t now)
{
	struct q_rec *r;

	pthread_mutex_lock(&q->mu);
	if ((r = q_get(q, name, now)) != NULL) {
		r->u.messages++;
		r->u.hour_messages++;
		r->u.recipients += nrcpts > 0 ? nrcpts : 0;
		r->dirty = 1;
	}
	pthread_mutex_unlock(&q->mu);
}

void
quota_set_held(struct quota *q, const char *name, int held)
{
	struct q_rec *r;

	pthread_mutex_lock(&q->mu);
	if ((r = q_get(q, name, time(NULL))) != NULL) {
		if (held)
			r->held = 1;
		else if (r->held && !r->hold_pending) {
			/* released by the operator since */
			r->held = 0;
			r->u.quota_hits = 0;
			r->bounces = 0;
			r->dirty = 1;
		}
	}
	pthread_mutex_unlock(&q->mu);
}

void
quota_usage(struct quota *q, const char *name, time_t now,
    struct usage_row *out)
{
	struct q_rec *r;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->day = day_of(now);
	pthread_mutex_lock(&q->mu);
	if ((r = q_find(q, name)) != NULL && r->u.day == out->day) {
		*out = r->u;
		if (r->u.hour != hour_of(now))
			out->hour_messages = 0;
	}
	pthread_mutex_unlock(&q->mu);
}

void
quota_note_apppass(struct quota *q, int64_t id, const char *ip, time_t when)
{
	size_t i;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->nnotes; i++)
		if (q->notes[i].id == id)
			break;
	if (i == q->nnotes && q->nnotes < Q_NOTES_MAX)
		q->nnotes++;
	if (i < q->nnotes) {
		q->notes[i].id = id;
		q->notes[i].when = when;
		snprintf(q->notes[i].ip, sizeof(q->notes[i].ip), "%s",
		    ip != NULL ? ip : "");
	}
	/* full: this use is not recorded; the next one will be */
	pthread_mutex_unlock(&q->mu);
}
