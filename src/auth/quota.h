/*
 * quota — sending counters per account (and per trusted network), shared
 * by every worker thread, written to the account store in batches.
 *
 * Per name ("alice@example.org" or "net:192.0.2.0/24") and UTC day: the
 * messages and recipients sent today, the messages of the current hour,
 * and how often a limit was hit today.  When limits are hit
 * hold_after times in a day, the account is put on hold (users.held): its
 * MAIL is refused until `outpost user release`.  The decision is logged
 * as "quota: HOLD user=..." for operators to alert on.
 *
 * Bounces: the delivery engine reports each recipient of an
 * authenticated user's mail that failed permanently (quota_bounce(), on
 * its own thread).  They are counted per user in a fixed window of
 * bounce_window seconds that starts at the first bounce; the
 * hold_after_bounces-th bounce in one window holds the user the same way
 * ("quota: HOLD user=..., reason=bounces, count=N").  That count lives in
 * memory only: a restart forgets it (a hold, once decided, is stored).
 *
 * Counters live in memory (a bounded hash table guarded by one mutex) and
 * a background thread writes the changed ones, plus app passwords' "last
 * used", every flush_interval seconds in one SQLite transaction (WAL), so
 * there is no fsync per message or login.  At start the day's rows are
 * loaded, so counters survive a restart; quota_close() flushes a last
 * time.  A crash loses at most one interval of counting.
 */
#ifndef OUTPOST_QUOTA_H
#define OUTPOST_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/accounts.h"

struct quota;

struct quota_limits {
	int	 daily_messages;	/* 0 = no limit */
	int	 daily_recipients;	/* 0 = no limit */
	int	 hourly_messages;	/* 0 = no limit */
	int	 hold_after;		/* quota hits a day before a hold; 0 = never */
};

struct quota_bounce_limits {
	int	 hold_after;		/* bounces in a window before a hold; 0 = never */
	int	 window;		/* seconds (at least 1) */
};

enum quota_verdict {
	QUOTA_OK = 0,
	QUOTA_DAILY = 1,	/* 550 5.4.5 */
	QUOTA_HOURLY = 2,	/* 450 4.7.1 */
	QUOTA_HELD = 3,		/* account on hold: 550 5.7.1 */
};

/* Opens its own connection to dbpath and starts the flush thread.  dbpath
 * NULL: memory only (unit tests).  NULL with a message in err. */
struct quota *quota_open(const char *dbpath, int flush_interval,
	    size_t max_entries, char *err, size_t errlen);
/* Stops the thread after a last flush. */
void	quota_close(struct quota *q);

/* May name start a message now?  (MAIL) */
enum quota_verdict quota_check_mail(struct quota *q, const char *name,
	    const struct quota_limits *lim, time_t now);
/* May name's message have ntx recipients (this RCPT included)? */
enum quota_verdict quota_check_rcpt(struct quota *q, const char *name,
	    const struct quota_limits *lim, int ntx, time_t now);
/* A message with nrcpts recipients was accepted (queued after the end of
 * DATA/BDAT); a message refused there does not count. */
void	quota_count(struct quota *q, const char *name, int nrcpts,
	    time_t now);
/* A recipient of name's message failed permanently (a hard bounce).
 * Returns 1 when this bounce put name on hold, else 0.  Trusted
 * networks ("net:...") are never held. */
int	quota_bounce(struct quota *q, const char *name,
	    const struct quota_bounce_limits *lim, time_t now);
/* Bounces counted for name in its current window (0 when it is over). */
int	quota_bounces(struct quota *q, const char *name,
	    const struct quota_bounce_limits *lim, time_t now);
/* The account's users.held as read at AUTH (a release clears the hits
 * and the bounce count). */
void	quota_set_held(struct quota *q, const char *name, int held);
/* Today's numbers for name (zeros when none). */
void	quota_usage(struct quota *q, const char *name, time_t now,
	    struct usage_row *out);
/* An app password was used (written at the next flush). */
void	quota_note_apppass(struct quota *q, int64_t id, const char *ip,
	    time_t when);
/* Writes everything pending now.  0, or -1 when the write failed (the
 * changes stay pending). */
int	quota_flush(struct quota *q);

#endif
