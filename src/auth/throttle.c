/*
 * throttle — failed-login counters (see throttle.h).
 *
 * Owns a chained hash table of records keyed by a short string:
 *   "a|ADDR", "p|ACCOUNT|ADDR", "u|ACCOUNT" (failure windows) and
 *   "k|ACCOUNT|ADDR" (a pair that logged in successfully).
 * Accounts are lower-cased (logins are case-insensitive) and every key is
 * bounded in length.  Failures: when memory runs out a failure is simply
 * not counted (logged once a minute); nothing here refuses a login on its
 * own account.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/throttle.h"
#include "util/log.h"

#define THR_BUCKETS	4096
#define THR_KEY_MAX	600

struct thr_rec {
	struct thr_rec	*next;
	time_t		 start;		/* window start (or last success) */
	time_t		 expires;
	int		 count;
	char		 key[];		/* NUL-terminated */
};

struct throttle {
	pthread_mutex_t	 mu;
	struct thr_rec	*b[THR_BUCKETS];
	size_t		 n, max;
	time_t		 oom_logged;
	/* failures per minute over the last hour (outpost status) */
	unsigned long	 per_min[60];
	time_t		 per_min_at[60];	/* which minute each slot holds */
	/* the last failures, for the account page (throttle_recent_for) */
	struct {
		time_t	 when;
		char	 account[256];
		char	 addr[64];
	}		 recent[THROTTLE_RECENT];
	size_t		 recent_next;
};

struct throttle *
throttle_new(size_t max_entries)
{
	struct throttle *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->max = max_entries < 16 ? 16 : max_entries;
	return t;
}

void
throttle_free(struct throttle *t)
{
	struct thr_rec *r, *nx;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < THR_BUCKETS; i++)
		for (r = t->b[i]; r != NULL; r = nx) {
			nx = r->next;
			free(r);
		}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* FNV-1a */
static size_t
thr_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *k != '\0'; k++) {
		h ^= (unsigned char)*k;
		h *= 1099511628211ULL;
	}
	return (size_t)(h % THR_BUCKETS);
}

static void
mkkey(char *out, size_t len, char kind, const char *account, const char *addr)
{
	size_t o = 0, i;
	const char *parts[2] = { account, addr };
	int p;

	out[o++] = kind;
	for (p = 0; p < 2; p++) {
		if (parts[p] == NULL)
			continue;
		out[o++] = '|';
		for (i = 0; parts[p][i] != '\0' && o + 2 < len; i++)
			out[o++] = (char)tolower((unsigned char)parts[p][i]);
	}
	out[o] = '\0';
}

static struct thr_rec *
thr_find(struct throttle *t, const char *key, time_t now)
{
	struct thr_rec *r, **pp;

	for (pp = &t->b[thr_hash(key)]; (r = *pp) != NULL; ) {
		if (r->expires <= now) {	/* lazy expiry */
			*pp = r->next;
			free(r);
			t->n--;
			continue;
		}
		if (strcmp(r->key, key) == 0)
			return r;
		pp = &r->next;
	}
	return NULL;
}

/* Makes room for one record: drops expired ones, else the oldest. */
static void
thr_evict(struct throttle *t, time_t now)
{
	struct thr_rec *r, **pp, **oldest = NULL;
	size_t i;

	for (i = 0; i < THR_BUCKETS; i++)
		for (pp = &t->b[i]; (r = *pp) != NULL; ) {
			if (r->expires <= now) {
				*pp = r->next;
				free(r);
				t->n--;
				continue;
			}
			if (oldest == NULL || r->start < (*oldest)->start)
				oldest = pp;
			pp = &r->next;
		}
	if (t->n >= t->max && oldest != NULL) {
		r = *oldest;
		*oldest = r->next;
		free(r);
		t->n--;
	}
}

static struct thr_rec *
thr_get(struct throttle *t, const char *key, time_t now)
{
	struct thr_rec *r;
	size_t len, h;

	if ((r = thr_find(t, key, now)) != NULL)
		return r;
	if (t->n >= t->max)
		thr_evict(t, now);
	len = strlen(key);
	if ((r = calloc(1, sizeof(*r) + len + 1)) == NULL) {
		if (now - t->oom_logged >= 60) {
			t->oom_logged = now;
			log_err("throttle: out of memory, a failed login was "
			    "not counted");
		}
		return NULL;
	}
	memcpy(r->key, key, len + 1);
	r->start = now;
	h = thr_hash(key);
	r->next = t->b[h];
	t->b[h] = r;
	t->n++;
	return r;
}

static int
over(struct thr_rec *r, int limit, time_t now, int *retry)
{
	if (r == NULL || r->count < limit)
		return 0;
	if (retry != NULL)
		*retry = (int)(r->expires - now);
	return 1;
}

enum throttle_verdict
throttle_check(struct throttle *t, const char *account, const char *addr,
    int limit, int window, time_t now, int *retry)
{
	char key[THR_KEY_MAX];
	enum throttle_verdict v = THR_OK;
	int known;

	(void)window;
	if (retry != NULL)
		*retry = 0;
	if (account == NULL)
		account = "";
	pthread_mutex_lock(&t->mu);
	mkkey(key, sizeof(key), 'a', NULL, addr);
	if (over(thr_find(t, key, now), limit, now, retry))
		v = THR_ADDR;
	if (v == THR_OK && *account != '\0') {
		mkkey(key, sizeof(key), 'p', account, addr);
		if (over(thr_find(t, key, now), limit, now, retry))
			v = THR_PAIR;
	}
	if (v == THR_OK && *account != '\0') {
		mkkey(key, sizeof(key), 'k', account, addr);
		known = thr_find(t, key, now) != NULL;
		mkkey(key, sizeof(key), 'u', account, NULL);
		if (!known && over(thr_find(t, key, now), limit, now, retry))
			v = THR_ACCOUNT;
	}
	pthread_mutex_unlock(&t->mu);
	return v;
}

static int
bump(struct throttle *t, const char *key, int window, time_t now)
{
	struct thr_rec *r;

	if ((r = thr_get(t, key, now)) == NULL)
		return 0;
	if (r->count == 0) {
		r->start = now;
		r->expires = now + window;
	}
	r->count++;
	return r->count;
}

int
throttle_fail(struct throttle *t, const char *account, const char *addr,
    int window, time_t now)
{
	char key[THR_KEY_MAX];
	int n, known = 0;

	if (account == NULL)
		account = "";
	if (window < 1)
		window = 1;
	pthread_mutex_lock(&t->mu);
	{
		size_t slot = (size_t)((now / 60) % 60);

		if (t->per_min_at[slot] != now / 60) {
			t->per_min_at[slot] = now / 60;
			t->per_min[slot] = 0;
		}
		t->per_min[slot]++;
	}
	if (*account != '\0') {
		size_t r = t->recent_next++ % THROTTLE_RECENT;

		t->recent[r].when = now;
		snprintf(t->recent[r].account, sizeof(t->recent[r].account),
		    "%s", account);
		snprintf(t->recent[r].addr, sizeof(t->recent[r].addr), "%s",
		    addr);
	}
	mkkey(key, sizeof(key), 'a', NULL, addr);
	n = bump(t, key, window, now);
	if (*account != '\0') {
		mkkey(key, sizeof(key), 'p', account, addr);
		bump(t, key, window, now);
		mkkey(key, sizeof(key), 'k', account, addr);
		known = thr_find(t, key, now) != NULL;
		if (!known) {
			mkkey(key, sizeof(key), 'u', account, NULL);
			bump(t, key, window, now);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

void
throttle_success(struct throttle *t, const char *account, const char *addr,
    time_t now)
{
	char key[THR_KEY_MAX];
	struct thr_rec *r;

	if (account == NULL || *account == '\0')
		return;
	pthread_mutex_lock(&t->mu);
	mkkey(key, sizeof(key), 'k', account, addr);
	if ((r = thr_get(t, key, now)) != NULL) {
		r->start = now;
		r->expires = now + THROTTLE_KNOWN_TTL;
		r->count = 1;
	}
	mkkey(key, sizeof(key), 'p', account, addr);
	if ((r = thr_find(t, key, now)) != NULL)
		r->expires = now;	/* cleared; swept lazily */
	pthread_mutex_unlock(&t->mu);
}

unsigned long
throttle_recent_failures(struct throttle *t, int secs, time_t now)
{
	unsigned long sum = 0;
	time_t from;
	int i;

	if (secs > 3600)
		secs = 3600;
	from = (now - secs) / 60;
	pthread_mutex_lock(&t->mu);
	for (i = 0; i < 60; i++)
		if (t->per_min_at[i] >= from && t->per_min_at[i] <= now / 60)
			sum += t->per_min[i];
	pthread_mutex_unlock(&t->mu);
	return sum;
}

size_t
throttle_recent_for(struct throttle *t, const char *account,
    struct throttle_event *out, size_t max)
{
	size_t i, n = 0, idx, total;

	pthread_mutex_lock(&t->mu);
	total = t->recent_next < THROTTLE_RECENT ? t->recent_next :
	    THROTTLE_RECENT;
	for (i = 0; i < total && n < max; i++) {
		idx = (t->recent_next - 1 - i) % THROTTLE_RECENT;
		if (strcasecmp(t->recent[idx].account, account) != 0)
			continue;
		out[n].when = t->recent[idx].when;
		snprintf(out[n].addr, sizeof(out[n].addr), "%s",
		    t->recent[idx].addr);
		n++;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t
throttle_size(struct throttle *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}
