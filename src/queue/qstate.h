/*
 * queue/qstate — per-recipient delivery state of a queued message, kept
 * beside the message in SPOOL/state/QID.
 *
 * The message file in SPOOL/queue/ is immutable once committed; what
 * changes (each recipient's status, attempts, the next retry time, hold,
 * the delay warning, a short history) lives in this small text file,
 * rewritten whole with write + rename (atomic: a reader sees the old or
 * the new file, never a mix).
 *
 * Durability window (documented in outpost.conf(5)): the state file is
 * NOT fsync'd.  After kill -9 or a daemon crash it is intact (the page
 * cache survives); after a power loss or kernel crash the last marks may
 * be lost, and a recipient already delivered may then be delivered again
 * (a duplicate, never a loss).  A second, narrower window exists for any
 * crash: between the remote server's 250 to the final dot and the write
 * of the mark (microseconds).
 *
 * Format (version 1), LF line ends, text values %XX-encoded (bytes
 * outside 0x21..0x7E and '%'), "-" for empty:
 *	outpost-state 1
 *	attempts 3
 *	next 1700000300
 *	held 0
 *	warned 0
 *	rcpt 0 deferred 1700000000 451 4.3.0 Try%20again
 *	hist 1700000000 0 deferred mx.example.net[192.0.2.1]:25 451%20...
 *	.
 * Fails: qstate_read returns -1 with errno (ENOENT: no state yet, which
 * means "every recipient pending"; EBADMSG: unreadable).
 */
#ifndef OUTPOST_QSTATE_H
#define OUTPOST_QSTATE_H

#include <stddef.h>
#include <time.h>

#define QSTATE_TEXT_MAX	512	/* reply text kept per recipient */
#define QSTATE_HIST_MAX	16	/* history entries kept (heap, on demand:
				 * a queue of 10,000 deferred messages
				 * must not cost 100 MB) */
#define QSTATE_RCPTS_MAX 100000

enum qstate_rcpt_status {
	QS_PENDING = 0,		/* not tried yet */
	QS_DEFERRED,		/* last try failed temporarily */
	QS_SENT,		/* accepted by the next hop: final */
	QS_FAILED,		/* permanent failure (bounced): final */
};

struct qstate_rcpt {
	enum qstate_rcpt_status status;
	time_t	 when;			/* of the last status change */
	int	 code;			/* last reply code, 0 = none */
	char	 enhanced[16];		/* "4.4.1", "" = none */
	char	 text[QSTATE_TEXT_MAX];	/* last reply or our reason */
	int	 notified;		/* its DSN (failure/relayed) was sent */
};

struct qstate_hist {
	time_t	 when;
	size_t	 rcpt;
	enum qstate_rcpt_status status;
	char	 relay[128];		/* "mx.example.net[192.0.2.1]:25" */
	char	 text[256];
};

struct qstate {
	int	 attempts;
	time_t	 next;			/* next try; 0 = now */
	int	 held;
	int	 warned;		/* delay warning sent */
	struct qstate_rcpt *rcpts;
	size_t	 nrcpts;
	struct qstate_hist *hist;	/* oldest first; grown on demand */
	size_t	 nhist, histcap;
};

/* Allocates n pending recipients.  Returns 0 or -1 (ENOMEM). */
int	qstate_init(struct qstate *st, size_t nrcpts);
void	qstate_clear(struct qstate *st);
/* Appends a history entry (drops the oldest past QSTATE_HIST_MAX; out
 * of memory drops the new one: the history is informational). */
void	qstate_hist_add(struct qstate *st, time_t when, size_t rcpt,
	    enum qstate_rcpt_status status, const char *relay, const char *text);
const char *qstate_status_name(enum qstate_rcpt_status s);

/* Reads SPOOL/state/QID into st for a message of nrcpts recipients; a
 * missing file gives a fresh state and returns 0 too (*found = 0). */
int	qstate_read(const char *spool, const char *qid, size_t nrcpts,
	    struct qstate *st, int *found);
/* Writes it (tmp + rename, no fsync: see the window above). */
int	qstate_write(const char *spool, const char *qid, const struct qstate *st);
/* Serialisation, exposed for unit tests. */
int	qstate_format(const struct qstate *st, char **out, size_t *len);
int	qstate_parse(const char *buf, size_t len, size_t nrcpts,
	    struct qstate *st);

/* Removes a message: queue/QID first (the commit point of removal), then
 * state/QID.  Returns 0, or -1 with errno (ENOENT when not queued). */
int	spool_msg_remove(const char *spool, const char *qid);
/* Removes state/QID if there is one (after spool_retire()). */
void	qstate_remove(const char *spool, const char *qid);
/* Removes state files whose message is gone (after a crash between the
 * two unlinks).  Returns the number removed. */
int	qstate_gc(const char *spool);

#endif
