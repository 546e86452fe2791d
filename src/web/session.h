/*
 * session — the account page's sign-in sessions, cookies and CSRF tokens.
 *
 * A session lives in memory on the page's event-loop thread only (no
 * lock): 256-bit random id (the cookie), a 256-bit CSRF token put in
 * every form, the state (anonymous: a sign-in form was shown; password
 * accepted and a TOTP code expected; signed in), the address, and its
 * times.  It ends after `idle` seconds without a request or `lifetime`
 * seconds after it began, whichever comes first; the id and token are
 * replaced at each sign-in step (no fixation).  A restart signs everyone
 * out.
 *
 * Bounded: at most WEB_SESSIONS_MAX; when full, expired ones are swept,
 * then the oldest anonymous one goes, and failing that a new session is
 * refused (NULL).  Ids are compared in constant time.
 */
#ifndef OUTPOST_WEB_SESSION_H
#define OUTPOST_WEB_SESSION_H

#include <stddef.h>
#include <time.h>

#define WEB_TOKEN_LEN		64	/* hex of 32 random bytes */
#define WEB_SESSIONS_MAX	4096
#define WEB_COOKIE_NAME		"outpost_session"
#define WEB_CODE_TRIES		5	/* TOTP codes per password step */

enum web_sess_state {
	WS_ANON = 0,		/* sign-in form shown */
	WS_NEED_CODE = 1,	/* password right, 2FA on: code expected */
	WS_AUTHED = 2,		/* signed in */
};

struct web_session {
	char		 id[WEB_TOKEN_LEN + 1];
	char		 csrf[WEB_TOKEN_LEN + 1];
	enum web_sess_state state;
	char		 email[256];
	time_t		 created;	/* of this state (reset at sign-in) */
	time_t		 last;		/* last request */
	int		 code_tries;
	int		 busy;		/* an async check is pending */
	int		 has_pending_secret;
	unsigned char	 pending_secret[20];	/* 2FA enrolment in progress */
	struct web_session *next;
};

struct web_sessions {
	struct web_session *head;
	size_t		 n;
	int		 idle, lifetime;
};

/* 32 bytes from the CSPRNG as 64 hex digits. */
void	web_token_new(char out[WEB_TOKEN_LEN + 1]);
/* 1 when both are well-formed tokens and equal (constant time). */
int	web_token_eq(const char *a, const char *b);

/* The value of cookie name in a Cookie: header.  0, or -1 when absent or
 * longer than outlen - 1. */
int	web_cookie_get(const char *header, const char *name, char *out,
	    size_t outlen);
/* "NAME=VALUE; Path=/; Max-Age=N; Secure; HttpOnly; SameSite=Strict"
 * (max_age < 0: an expiring cookie, value emptied).  0, or -1 when out
 * is too small. */
int	web_cookie_format(char *out, size_t outlen, const char *name,
	    const char *value, int max_age);

void	web_sessions_init(struct web_sessions *t, int idle, int lifetime);
void	web_sessions_free(struct web_sessions *t);
/* A new anonymous session, or NULL (table full of live sign-ins). */
struct web_session *web_session_new(struct web_sessions *t, time_t now);
/* The live session with this id (its last time updated), or NULL. */
struct web_session *web_session_find(struct web_sessions *t, const char *id,
	    time_t now);
/* New id and CSRF token (a sign-in step). */
void	web_session_rotate(struct web_session *s, time_t now);
void	web_session_del(struct web_sessions *t, struct web_session *s);
/* Seconds the cookie should live (until the lifetime ends). */
int	web_session_max_age(const struct web_sessions *t,
	    const struct web_session *s, time_t now);

#endif
