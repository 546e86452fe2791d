/*
 * delivery/dkimpool — DKIM signing of queued messages, on worker threads.
 *
 * outpost signs at delivery time (as Exim does), not before the "250":
 * the submission side only decides whether a message is signed and with
 * which domain, and keeps the body hash it computed while the body went
 * by (both in the envelope).  Before a message's first delivery attempt
 * the scheduler asks this pool for the DKIM-Signature fields; a worker
 * reads the message's header section from the spool file, signs it with
 * the domain's current keys and hands the fields back on the scheduler's
 * loop.  Retries reuse them unless the keys were reloaded since or the
 * signature is old (half of [dkim] expire, or a day).  RSA-2048 costs ~0.25 ms of CPU: off the
 * submission path it no longer delays any client's reply, and across
 * threads it does not cap the delivery rate at one core.
 *
 * The workers run at a lower CPU priority than the SMTP event loops:
 * under overload, answering clients comes first and signing (like the
 * deliveries that wait for it) catches up when the CPU is free.
 *
 * Owns: its threads, the queued and answered requests until their
 * callback has run.  Every request gets its callback exactly once, on
 * the loop given to dkimpool_new() — at dkimpool_free() with err
 * ECANCELED for what was not done, on the calling thread.
 */
#ifndef OUTPOST_DELIVERY_DKIMPOOL_H
#define OUTPOST_DELIVERY_DKIMPOOL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message/dkim.h"
#include "queue/spool.h"

struct event_base;
struct dkim_store;
struct dkimpool;

struct dkimpool_req {
	/* in (the caller fills these) */
	char		 qid[SPOOL_QID_SIZE];	/* for the log lines */
	char		 path[PATH_MAX];	/* the queued message file */
	off_t		 offset;		/* where the message starts */
	uint64_t	 size;			/* message bytes from there */
	char		 domain[DKIM_DOMAIN_MAX + 1];
	unsigned char	 bh[32];
	int		 utf8;
	long		 expire;		/* x= seconds after t=; 0 none */
	void		(*cb)(struct dkimpool_req *r);	/* owns r then */
	void		*arg;
	/* out: err 0 and the fields in sig (malloc'd; the callback takes
	 * or frees it); ENOKEY: the domain has no key any more (send it
	 * unsigned); EBADMSG: the stored header does not parse; EIO,
	 * ENOMEM...: try again later.  text says why in plain words. */
	int		 err;
	char		*sig;
	size_t		 siglen;
	unsigned long	 gen;		/* dkim_store_generation() used */
	char		 text[400];
	struct dkimpool_req *next;
};

/* nthreads 1..16.  Returns NULL with err set. */
struct dkimpool *dkimpool_new(struct event_base *base,
	    struct dkim_store *store, int nthreads, char *err, size_t errlen);
/* Stops and joins the workers, then calls back (on this thread) every
 * request not yet called back.  base's loop must not be running. */
void	dkimpool_free(struct dkimpool *p);
/* Queues r.  Returns 0, or -1 when the pool is stopping (r untouched). */
int	dkimpool_submit(struct dkimpool *p, struct dkimpool_req *r);

/*
 * The header section of a stored message: reads fd from offset (at most
 * size bytes, and at most max) up to the empty line that ends the header
 * section (or to the end when there is none).  *out gets the fields
 * without the empty line (malloc'd).  Returns 0, or -1 with errno
 * (EBADMSG: longer than max; EIO, ENOMEM).
 */
int	dkimpool_read_header(int fd, off_t offset, uint64_t size, size_t max,
	    char **out, size_t *outlen);

#endif
