/*
 * throttle — counting failed logins, shared by every worker thread.
 *
 * Three counters, each a fixed window of `window` seconds that starts at
 * the first failure:
 *   per client address         (anyone hammering from one place)
 *   per (account, address)     (someone guessing one account)
 *   per account, counting only failures from addresses that never logged
 *   in to that account successfully (password spraying from many places)
 * and a memory of (account, address) pairs that did log in successfully
 * (kept for THROTTLE_KNOWN_TTL).  The per-account counter only ever
 * throttles addresses outside that memory, so an attacker cannot lock the
 * real user out.
 *
 * Bounded: at most max_entries records; when full, expired ones are swept
 * and, failing that, the oldest record goes.  Thread-safe (one mutex).
 */
#ifndef OUTPOST_THROTTLE_H
#define OUTPOST_THROTTLE_H

#include <stddef.h>
#include <time.h>

#define THROTTLE_KNOWN_TTL	(30 * 86400)

enum throttle_verdict {
	THR_OK = 0,
	THR_ADDR = 1,		/* too many failures from this address */
	THR_PAIR = 2,		/* too many for this account from this address */
	THR_ACCOUNT = 3,	/* too many for this account from unknown places */
};

struct throttle;

struct throttle *throttle_new(size_t max_entries);
void	throttle_free(struct throttle *t);

/* May this address try this account now?  account may be "" (not known
 * yet).  *retry (if non-NULL) gets seconds until the window ends. */
enum throttle_verdict throttle_check(struct throttle *t, const char *account,
	    const char *addr, int limit, int window, time_t now, int *retry);
/* A failed login (535, or 534 for a right password without an app
 * password).  Returns the address's failure count in its window. */
int	throttle_fail(struct throttle *t, const char *account,
	    const char *addr, int window, time_t now);
/* A successful login: remembers the pair and clears its counter. */
void	throttle_success(struct throttle *t, const char *account,
	    const char *addr, time_t now);
size_t	throttle_size(struct throttle *t);

/* The last THROTTLE_RECENT failures (any account) are kept in a ring so
 * the account page can show a person the failed logins against their
 * account (time and client address). */
#define THROTTLE_RECENT		256
struct throttle_event {
	time_t	 when;
	char	 addr[64];
};
/* Copies the newest (at most max) failures recorded against account
 * (compared case-insensitively) into out, newest first.  Returns the
 * count. */
size_t	throttle_recent_for(struct throttle *t, const char *account,
	    struct throttle_event *out, size_t max);
/* Failed logins recorded in the last secs seconds (at most an hour; per
 * minute, so a little more may count), for `outpost status`. */
unsigned long throttle_recent_failures(struct throttle *t, int secs,
	    time_t now);

#endif
