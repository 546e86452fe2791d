/*
 * delivery/dkimpool — see dkimpool.h.
 *
 * One mutex guards the request queue, the answered list and the
 * stopping flag.  Workers take a request, sign it without the lock, put
 * it on the answered list and activate one event on the scheduler's
 * loop (thread-safe with evthread_use_pthreads); that event runs every
 * answered callback, so a burst of signatures costs the loop one wakeup.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "delivery/dkimpool.h"
#include "message/msgfilter.h"
#include "util/log.h"

#define DKIMPOOL_THREADS_MAX	16
#define DKIMPOOL_KEYS_MAX	4
/* The stored header section is the client's (at most
 * MSGFILTER_MAX_HEADER) plus what outpost added (trace, Message-ID,
 * Date, a rewritten From). */
#define DKIMPOOL_HEADER_MAX	(MSGFILTER_MAX_HEADER + 64 * 1024)
/* Below the event loops (nice 0): signing is batch work. */
#define DKIMPOOL_NICE		5

struct dkimpool {
	struct dkim_store *store;
	struct event	*done_ev;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct dkimpool_req *head, **tailp;
	struct dkimpool_req *done, **donetailp;
	int		 stopping;
	int		 nthreads;
	pthread_t	 threads[DKIMPOOL_THREADS_MAX];
};

int
dkimpool_read_header(int fd, off_t offset, uint64_t size, size_t max,
    char **out, size_t *outlen)
{
	char *buf = NULL, *nb, *end;
	size_t have = 0, cap = 0, scan = 0;
	uint64_t limit = size < max ? size : max;

	*out = NULL;
	*outlen = 0;
	for (;;) {
		ssize_t n;
		size_t want;

		/* the empty line: CRLF at the start, or CRLF CRLF */
		if (have >= 2 && memcmp(buf, "\r\n", 2) == 0) {
			have = 0;
			break;
		}
		if (have >= 4 && (end = memmem(buf + scan, have - scan,
		    "\r\n\r\n", 4)) != NULL) {
			have = (size_t)(end - buf) + 2;
			break;
		}
		scan = have > 3 ? have - 3 : 0;
		if (have >= limit) {
			if (limit < size) {
				free(buf);
				errno = EBADMSG;	/* over max */
				return -1;
			}
			break;		/* no body: all of it is header */
		}
		if (cap - have < 4096) {
			size_t ncap = cap ? cap * 2 : 16384;

			if (ncap > limit + 1)
				ncap = (size_t)limit + 1;
			if ((nb = realloc(buf, ncap)) == NULL) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = nb;
			cap = ncap;
		}
		want = cap - have;
		if (want > limit - have)
			want = (size_t)(limit - have);
		n = pread(fd, buf + have, want, offset + (off_t)have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			errno = n < 0 ? errno : EIO;	/* shorter than queued */
			return -1;
		}
		have += (size_t)n;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*out = buf;
	*outlen = have;
	return 0;
}

static void
sign_one(struct dkimpool *p, struct dkimpool_req *r)
{
	const struct dkim_key *keys[DKIMPOOL_KEYS_MAX];
	struct dkim_keyset *ks;
	char *hdr = NULL, what[DKIMPOOL_KEYS_MAX * 100] = "";
	size_t hlen = 0, n, i;
	int fd;

	/* the generation first: a reload in between only means that the
	 * scheduler signs once more */
	r->gen = dkim_store_generation(p->store);
	ks = dkim_store_get(p->store);
	n = ks != NULL ? dkim_keyset_find(ks, r->domain, keys,
	    DKIMPOOL_KEYS_MAX) : 0;
	if (n == 0) {
		r->err = ENOKEY;
		snprintf(r->text, sizeof(r->text), "no key for %s any more "
		    "(removed since the message arrived)", r->domain);
		goto out;
	}
	if ((fd = open(r->path, O_RDONLY | O_CLOEXEC)) < 0) {
		r->err = errno ? errno : EIO;
		snprintf(r->text, sizeof(r->text), "cannot open the queued "
		    "message: %s", strerror(r->err));
		goto out;
	}
	if (dkimpool_read_header(fd, r->offset, r->size, DKIMPOOL_HEADER_MAX,
	    &hdr, &hlen) < 0) {
		r->err = errno ? errno : EIO;
		snprintf(r->text, sizeof(r->text), "cannot read the queued "
		    "message's header: %s", r->err == EBADMSG ?
		    "header section too large" : strerror(r->err));
		close(fd);
		goto out;
	}
	close(fd);
	if (dkim_sign_stored(keys, n, hdr, hlen, r->utf8, r->bh, time(NULL),
	    r->expire, &r->sig, &r->siglen, r->text, sizeof(r->text)) < 0) {
		r->err = strcmp(r->text, "out of memory") == 0 ? ENOMEM :
		    EBADMSG;
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t wl = strlen(what);

		snprintf(what + wl, sizeof(what) - wl, "%ss=%s (%s)",
		    i ? ", " : "", keys[i]->selector,
		    dkim_alg_name(keys[i]->alg));
	}
	log_info("%s: dkim: signed d=%s, %s", r->qid, keys[0]->domain, what);
	r->err = 0;
out:
	free(hdr);
	dkim_keyset_release(ks);
}

static void *
worker_main(void *arg)
{
	struct dkimpool *p = arg;
	struct dkimpool_req *r;

	/* per thread on Linux: only this worker is lowered */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    DKIMPOOL_NICE);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;		/* the rest is cancelled by _free */
		r = p->head;
		if ((p->head = r->next) == NULL)
			p->tailp = &p->head;
		r->next = NULL;
		pthread_mutex_unlock(&p->mu);

		sign_one(p, r);

		pthread_mutex_lock(&p->mu);
		*p->donetailp = r;
		p->donetailp = &r->next;
		/* one activation covers everything answered until it runs */
		event_active(p->done_ev, EV_TIMEOUT, 1);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
run_list(struct dkimpool_req *r)
{
	struct dkimpool_req *next;

	for (; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		r->cb(r);
	}
}

static void
done_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dkimpool *p = arg;
	struct dkimpool_req *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	list = p->done;
	p->done = NULL;
	p->donetailp = &p->done;
	pthread_mutex_unlock(&p->mu);
	run_list(list);
}

struct dkimpool *
dkimpool_new(struct event_base *base, struct dkim_store *store, int nthreads,
    char *err, size_t errlen)
{
	struct dkimpool *p;
	sigset_t all, old;
	int i, rc;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > DKIMPOOL_THREADS_MAX)
		nthreads = DKIMPOOL_THREADS_MAX;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->store = store;
	p->tailp = &p->head;
	p->donetailp = &p->done;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->done_ev = event_new(base, -1, 0, done_fire, p)) == NULL) {
		snprintf(err, errlen, "out of memory");
		dkimpool_free(p);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if ((rc = pthread_create(&p->threads[i], NULL, worker_main,
		    p)) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "cannot start a DKIM signing "
			    "thread: %s", strerror(rc));
			dkimpool_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return p;
}

void
dkimpool_free(struct dkimpool *p)
{
	struct dkimpool_req *list, *r, **tp;
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* answered first, then the never-started ones, cancelled */
	list = p->done;
	for (tp = &list; *tp != NULL; tp = &(*tp)->next)
		;
	*tp = p->head;
	for (r = p->head; r != NULL; r = r->next) {
		r->err = ECANCELED;
		snprintf(r->text, sizeof(r->text), "shutting down");
	}
	p->head = p->done = NULL;
	run_list(list);
	if (p->done_ev != NULL)
		event_free(p->done_ev);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
dkimpool_submit(struct dkimpool *p, struct dkimpool_req *r)
{
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	r->next = NULL;
	r->err = 0;
	r->sig = NULL;
	r->siglen = 0;
	r->text[0] = '\0';
	*p->tailp = r;
	p->tailp = &r->next;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}
