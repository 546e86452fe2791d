/*
 * delivery/fdreap — a helper thread that closes message descriptors for
 * the scheduler (see fdreap.h for why).
 *
 * Owns: the thread and the descriptors handed to it.
 * Fails: never to the caller; without the thread (or with a full ring)
 * the close happens inline, which is only slower.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery/fdreap.h"

/* The thread wakes for a batch, or FDREAP_LINGER_MS after the first
 * descriptor of one: a wake-up per descriptor would cost the scheduler
 * two futex calls per message, more than the close it saves at times. */
#define FDREAP_BATCH		32
#define FDREAP_LINGER_MS	20

struct fdreap {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	pthread_t	 thread;
	struct fdreap_ring ring;
	int		 stop;
};

void
fdreap_ring_init(struct fdreap_ring *r)
{
	memset(r, 0, sizeof(*r));
}

int
fdreap_ring_push(struct fdreap_ring *r, int fd)
{
	if (r->n == FDREAP_MAX)
		return -1;
	r->fds[(r->head + r->n) % FDREAP_MAX] = fd;
	r->n++;
	return 0;
}

size_t
fdreap_ring_take(struct fdreap_ring *r, int *out, size_t max)
{
	size_t k;

	for (k = 0; k < max && r->n > 0; k++) {
		out[k] = r->fds[r->head];
		r->head = (r->head + 1) % FDREAP_MAX;
		r->n--;
	}
	return k;
}

static void *
fdreap_main(void *arg)
{
	struct fdreap *r = arg;
	int batch[FDREAP_MAX];
	size_t n, i;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->ring.n == 0 && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->ring.n < FDREAP_BATCH && !r->stop) {
			struct timespec ts;

			/* one wait, bounded: a spurious wake-up only closes
			 * a smaller batch */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += FDREAP_LINGER_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		}
		n = fdreap_ring_take(&r->ring, batch, FDREAP_MAX);
		if (n == 0)	/* stop, and nothing left */
			break;
		pthread_mutex_unlock(&r->mu);
		for (i = 0; i < n; i++)
			close(batch[i]);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct fdreap *
fdreap_new(void)
{
	struct fdreap *r;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	fdreap_ring_init(&r->ring);
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r);
		return NULL;
	}
	if (pthread_condattr_init(&ca) != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		return NULL;
	}
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		return NULL;
	}
	/* signals belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&r->thread, NULL, fdreap_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return NULL;
	}
	return r;
}

void
fdreap_close(struct fdreap *r, int fd)
{
	int queued;

	if (fd < 0)
		return;
	if (r == NULL) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&r->mu);
	queued = fdreap_ring_push(&r->ring, fd) == 0;
	/* the first wakes the thread from its wait on an empty ring (it
	 * then lingers), a full batch from the linger */
	if (queued && (r->ring.n == 1 || r->ring.n == FDREAP_BATCH))
		pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (!queued)
		close(fd);	/* the disk is slow: wait here, as before */
}

void
fdreap_free(struct fdreap *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);	/* it closes what is left first */
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
