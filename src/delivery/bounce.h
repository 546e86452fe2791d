/*
 * delivery/bounce — delivery status notifications (RFC 3464 in an
 * RFC 6522 multipart/report; RFC 6533 global types for SMTPUTF8 mail),
 * sent to the envelope sender from MAILER-DAEMON@hostname with a null
 * reverse path, so a DSN is never answered by another DSN.
 *
 * Owns: nothing past each call.  dlv_dsn_build() reads the original
 * message (headers, or all of it for RET=FULL) from its spool file.
 * Fails: -1 with errno; the caller logs and carries on (the recipient's
 * state is still final; a lost notice is logged, never retried forever).
 */
#ifndef OUTPOST_DLV_BOUNCE_H
#define OUTPOST_DLV_BOUNCE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "queue/spool.h"

enum dlv_dsn_kind {
	DLV_DSN_FAILURE,	/* "Undelivered Mail Returned to Sender" */
	DLV_DSN_DELAY,		/* "Delayed Mail (still being retried)" */
	DLV_DSN_SUCCESS,	/* relayed to a hop without DSN / delivered */
};

struct dlv_dsn_rcpt {
	const char	*addr;
	const char	*orcpt;		/* as given with ORCPT=, or NULL */
	const char	*action;	/* failed | delayed | relayed | delivered */
	char		 status[16];	/* "5.1.1" */
	const char	*remote_mta;	/* host name, or NULL */
	const char	*diag;		/* "550 5.1.1 No such user", or NULL */
	time_t		 last_attempt;	/* 0 = none */
};

struct dlv_dsn {
	enum dlv_dsn_kind kind;
	const char	*hostname;	/* Reporting-MTA, MAILER-DAEMON@ */
	const struct envelope *env;	/* the original message */
	int		 msgfd;		/* its spool file, or -1 */
	off_t		 body;		/* where its message bytes start */
	time_t		 retry_until;	/* for DELAY */
	const struct dlv_dsn_rcpt *rcpts;
	size_t		 nrcpts;
	uint64_t	 full_max;	/* RET=FULL beyond this: headers only */
};

/*
 * Writes the DSN message (CRLF lines) through put(arg, data, len), which
 * returns 0 or -1.  Returns 0 or -1.
 */
int	dlv_dsn_build(const struct dlv_dsn *d,
	    int (*put)(void *arg, const void *data, size_t len), void *arg);

/* Which recipients want a DSN of this kind (RFC 3461 4.1: without NOTIFY,
 * failures and delays are reported, successes not). */
int	dlv_dsn_wanted(unsigned notify, enum dlv_dsn_kind kind);

#endif
