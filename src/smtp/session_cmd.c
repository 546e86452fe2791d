/*
 * session_cmd.c — the verb table and the command handlers.
 *
 * session_command() checks the line (NUL, bare CR/LF), finds the verb,
 * checks its preconditions from the table in one place (state, EHLO seen,
 * TLS, AUTH) and only then calls the handler, which parses its own
 * arguments.  AUTH's SASL exchange continues in session_auth_line().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "auth/authpool.h"
#include "auth/oauth2.h"
#include "auth/quota.h"
#include "auth/sasl.h"
#include "auth/throttle.h"
#include "util/cidr.h"
#include "smtp/parse.h"
#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"

#define NEED_HELO	0x01	/* EHLO/HELO first */
#define NEED_TLS	0x02	/* on a starttls listener: STARTTLS first */
#define NEED_AUTH	0x04	/* authenticated */
#define NO_ARGS		0x08	/* the verb takes no arguments */

#define ST(x)		(1u << (x))
#define ST_IDLE		(ST(SMTP_ST_INIT) | ST(SMTP_ST_READY))
#define ST_ANY		(ST_IDLE | ST(SMTP_ST_MAIL) | ST(SMTP_ST_RCPT))

typedef void (*cmd_fn)(struct smtp_session *, const char *args);

static void cmd_ehlo(struct smtp_session *, const char *);
static void cmd_helo(struct smtp_session *, const char *);
static void cmd_starttls(struct smtp_session *, const char *);
static void cmd_auth(struct smtp_session *, const char *);
static void cmd_mail(struct smtp_session *, const char *);
static void cmd_rcpt(struct smtp_session *, const char *);
static void cmd_data(struct smtp_session *, const char *);
static void cmd_bdat(struct smtp_session *, const char *);
static void cmd_rset(struct smtp_session *, const char *);
static void cmd_noop(struct smtp_session *, const char *);
static void cmd_quit(struct smtp_session *, const char *);
static void cmd_vrfy(struct smtp_session *, const char *);
static void cmd_expn(struct smtp_session *, const char *);
static void cmd_help(struct smtp_session *, const char *);

static const struct smtp_verb_def {
	enum smtp_verb	 verb;
	const char	*name;
	unsigned	 states;	/* where it is in sequence */
	unsigned	 needs;
	cmd_fn		 run;
} verbs[] = {
	{ SMTP_V_EHLO,	   "EHLO",     ST_ANY, 0,			cmd_ehlo },
	{ SMTP_V_HELO,	   "HELO",     ST_ANY, 0,			cmd_helo },
	{ SMTP_V_STARTTLS, "STARTTLS", ST_ANY, NEED_HELO,		cmd_starttls },
	{ SMTP_V_AUTH,	   "AUTH",     ST_ANY, NEED_HELO | NEED_TLS,	cmd_auth },
	{ SMTP_V_MAIL,	   "MAIL",     ST_ANY, NEED_HELO | NEED_TLS | NEED_AUTH, cmd_mail },
	{ SMTP_V_RCPT,	   "RCPT",     ST_ANY, NEED_HELO | NEED_TLS | NEED_AUTH, cmd_rcpt },
	{ SMTP_V_DATA,	   "DATA",     ST_ANY, NEED_HELO | NEED_TLS | NEED_AUTH | NO_ARGS, cmd_data },
	{ SMTP_V_BDAT,	   "BDAT",     ST_ANY, 0,			cmd_bdat },
	{ SMTP_V_RSET,	   "RSET",     ST_ANY, NO_ARGS,			cmd_rset },
	{ SMTP_V_NOOP,	   "NOOP",     ST_ANY, 0,			cmd_noop },
	{ SMTP_V_QUIT,	   "QUIT",     ST_ANY, NO_ARGS,			cmd_quit },
	{ SMTP_V_VRFY,	   "VRFY",     ST_ANY, 0,			cmd_vrfy },
	{ SMTP_V_EXPN,	   "EXPN",     ST_ANY, 0,			cmd_expn },
	{ SMTP_V_HELP,	   "HELP",     ST_ANY, 0,			cmd_help },
};

/*
 * Is the client in this listener's trusted_networks?  Decided once per
 * session; the matching network names its quota ("net:CIDR").
 */
static int
session_trusted(struct smtp_session *s)
{
	const struct listener_conf *lc = s->lst->conf;
	char net[48];
	int i;

	if (s->trusted != 0)
		return s->trusted == 1;
	s->trusted = 2;
	for (i = 0; i < lc->ntrusted; i++)
		if (cidr_match(&lc->trusted[i], 1, s->ip)) {
			cidr_format(&lc->trusted[i], net, sizeof(net));
			snprintf(s->trusted_net, sizeof(s->trusted_net),
			    "net:%s", net);
			s->trusted = 1;
			log_info("%s: client %s is in trusted network %s of "
			    "listener %s", s->id, s->peer, net, lc->name);
			break;
		}
	return s->trusted == 1;
}

/* The quota name of this session: the login, or the trusted network. */
const char *
session_quota_name(const struct smtp_session *s)
{
	if (s->flags & SMTP_F_AUTH)
		return s->user;
	return s->trusted == 1 ? s->trusted_net : NULL;
}

static void
session_quota_limits(const struct smtp_session *s, struct quota_limits *lim)
{
	const struct config *cfg = s->w->srv->cfg;

	lim->daily_messages = __atomic_load_n(&cfg->daily_messages,
	    __ATOMIC_RELAXED);
	lim->daily_recipients = __atomic_load_n(&cfg->daily_recipients,
	    __ATOMIC_RELAXED);
	lim->hourly_messages = __atomic_load_n(&cfg->hourly_messages,
	    __ATOMIC_RELAXED);
	lim->hold_after = __atomic_load_n(&cfg->hold_after_quota_hits,
	    __ATOMIC_RELAXED);
}

/* Replies for a quota verdict; returns 1 when refused. */
static int
session_quota_refuse(struct smtp_session *s, enum quota_verdict v,
    const char *name)
{
	switch (v) {
	case QUOTA_OK:
		return 0;
	case QUOTA_DAILY:
		log_info("%s: daily quota exceeded, name=%s, client=%s", s->id,
		    name, s->peer);
		session_reply(s, 550, "5.4.5", "Daily sending quota exceeded");
		return 1;
	case QUOTA_HOURLY:
		log_info("%s: hourly limit exceeded, name=%s, client=%s", s->id,
		    name, s->peer);
		session_reply(s, 450, "4.7.1",
		    "Hourly sending limit exceeded, try again later");
		return 1;
	case QUOTA_HELD:
		log_info("%s: refused, outgoing mail of %s is on hold, client=%s",
		    s->id, name, s->peer);
		session_reply(s, 550, "5.7.1", "Sending from this account is "
		    "on hold; contact your administrator");
		return 1;
	}
	return 0;
}

static int
session_needs_starttls(const struct smtp_session *s)
{
	/* the [local] socket never leaves the machine: no TLS there */
	return s->lst->conf->tls == LISTENER_TLS_STARTTLS &&
	    !(s->flags & SMTP_F_TLS) && !(s->flags & SMTP_F_LOCAL);
}

void
session_command(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_verb_def *v = NULL;
	enum smtp_verb verb;
	const char *args = NULL;
	size_t i;

	s->verb = "-";
	if (memchr(line, '\0', len) != NULL) {
		session_reply(s, 500, "5.5.2", "NUL byte in command line is not allowed");
		session_error(s);
		return;
	}
	/* CRLF_STRICT left any bare CR or LF inside the line: never a line end
	 * (SMTP smuggling defence), always an error. */
	if (strpbrk(line, "\r\n") != NULL) {
		session_reply(s, 500, "5.5.2", "Bare CR or LF in command line is not allowed");
		session_error(s);
		return;
	}
	verb = smtp_parse_verb(line, &args);
	if (verb == SMTP_V_HTTP) {
		/* A web client or a cross-protocol attack: no reply at all. */
		log_info("%s: HTTP request line from %s, closing", s->id, s->peer);
		smtp_session_close(s, NULL);
		return;
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb) {
			v = &verbs[i];
			break;
		}
	if (v == NULL) {
		session_reply(s, 502, "5.5.1", "Unrecognized command");
		session_error(s);
		return;
	}
	s->verb = v->name;
	if ((v->needs & NO_ARGS) && args != NULL && *args != '\0') {
		session_reply(s, 501, "5.5.4", "Syntax error, no parameters allowed");
		session_error(s);
		return;
	}
	if ((v->needs & NEED_HELO) && !(s->flags & SMTP_F_HELO)) {
		session_reply(s, 503, "5.5.1", "EHLO/HELO first");
		session_error(s);
		return;
	}
	/* RFC 3207 4 / RFC 8314: no AUTH and no mail before TLS. */
	if ((v->needs & NEED_TLS) && session_needs_starttls(s)) {
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		session_error(s);
		return;
	}
	/* No relaying without authentication, on any listener, unless the
	 * operator listed the client's network for this one. */
	if ((v->needs & NEED_AUTH) && !(s->flags & SMTP_F_AUTH) &&
	    !session_trusted(s)) {
		session_reply(s, 530, "5.7.0", "Authentication required");
		session_error(s);
		return;
	}
	if (!(v->states & ST(s->state))) {
		session_reply(s, 503, "5.5.1", "Bad sequence of commands");
		session_error(s);
		return;
	}
	v->run(s, args ? args : "");
}

/* ---- EHLO / HELO ---- */

static int
session_set_helo(struct smtp_session *s, const char *args)
{
	if (*args == '\0' || smtp_helo_valid(args) != 0) {
		session_reply(s, 501, "5.5.4",
		    "EHLO requires a domain name or address literal");
		session_error(s);
		return -1;
	}
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	/* RFC 5321 4.1.4: EHLO in a transaction resets it. */
	session_tx_free(s);
	s->flags |= SMTP_F_HELO;
	session_enter(s, SMTP_ST_READY);
	return 0;
}

static void
cmd_ehlo(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->w->srv->cfg;
	char buf[1024];
	int n;

	if (session_set_helo(s, args) == -1)
		return;
	s->flags |= SMTP_F_EHLO;
	n = snprintf(buf, sizeof(buf),
	    "250-%s at your service, [%s]\r\n"
	    "250-SIZE %llu\r\n"
	    "250-8BITMIME\r\n"
	    "%s"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-PIPELINING\r\n"
	    "250-CHUNKING\r\n"
	    "250-DSN\r\n"
	    "%s"
	    "250 SMTPUTF8\r\n",
	    cfg->hostname, s->ip, (unsigned long long)cfg->max_message_size,
	    session_needs_starttls(s) ? "250-STARTTLS\r\n" : "",
	    /* RFC 4954 4: AUTH only where the password is protected */
	    !(s->flags & SMTP_F_TLS) || (s->flags & SMTP_F_AUTH) ? "" :
	    s->w->srv->oauth2 != NULL ?
	    "250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n" :
	    "250-AUTH PLAIN LOGIN\r\n");
	if (n > 0 && (size_t)n < sizeof(buf))
		session_reply_raw(s, buf);
}

static void
cmd_helo(struct smtp_session *s, const char *args)
{
	if (session_set_helo(s, args) == -1)
		return;
	s->flags &= ~SMTP_F_EHLO;
	session_reply(s, 250, NULL, "%s at your service", s->w->srv->cfg->hostname);
}

/* ---- STARTTLS ---- */

static void
cmd_starttls(struct smtp_session *s, const char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t extra;

	if (s->flags & SMTP_F_TLS) {
		session_reply(s, 503, "5.5.1", "TLS already active");
		session_error(s);
		return;
	}
	if (s->flags & SMTP_F_LOCAL) {
		session_reply(s, 502, "5.5.1",
		    "STARTTLS is not offered on the local socket");
		session_error(s);
		return;
	}
	if (*args != '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, 503, "5.5.1", "Not allowed during a mail transaction");
		session_error(s);
		return;
	}
	/* CVE-2011-0411: what was pipelined after STARTTLS in plaintext must
	 * never be executed inside the TLS session. */
	if ((extra = evbuffer_get_length(in)) > 0) {
		log_info("%s: discarding %zu bytes pipelined after STARTTLS, client=%s",
		    s->id, extra, s->peer);
		evbuffer_drain(in, extra);
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	bufferevent_disable(s->bev, EV_READ);
	session_enter(s, SMTP_ST_STARTTLS);
	/* session_writecb switches once the 220 is flushed */
}

/* RFC 3207 4.2: after TLS the session starts over, forgetting EHLO. */
void
session_reset(struct smtp_session *s)
{
	session_tx_free(s);
	s->flags &= ~(SMTP_F_EHLO | SMTP_F_HELO);
	s->helo[0] = '\0';
}

/* ---- AUTH ---- */

/*
 * Failed AUTH replies go out after auth_failure_delay (longer once the
 * throttle is hit), from an evtimer: the loop never sleeps, and input is
 * not read meanwhile (SMTP_ST_WAIT).  close != 0: 421 and close instead.
 */
static void
auth_delay_fire(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->verb = "AUTH";
	session_enter(s, SMTP_ST_READY);
	if (s->auth_delay_code == 421) {
		smtp_session_close(s, "421 4.7.0 Too many login attempts, "
		    "closing connection");
		return;
	}
	session_reply(s, s->auth_delay_code, s->auth_delay_text[0] ?
	    s->auth_delay_text : NULL, "%s", s->auth_delay_text +
	    strlen(s->auth_delay_text) + 1);
	if (s->auth_delay_code >= 500)
		session_error(s);
	session_resume(s);
}

/* Sends "code esc text" after delay seconds (0: at once). */
static void
auth_reply_later(struct smtp_session *s, int code, const char *esc,
    const char *text, int delay)
{
	struct timeval tv = { delay, 0 };
	size_t el = strlen(esc);

	s->auth_delay_code = code;
	/* esc, NUL, text: one buffer, both bounded */
	snprintf(s->auth_delay_text, sizeof(s->auth_delay_text), "%s", esc);
	snprintf(s->auth_delay_text + el + 1,
	    sizeof(s->auth_delay_text) - el - 1, "%s", text);
	if (s->auth_delay_ev == NULL)
		s->auth_delay_ev = evtimer_new(s->w->base, auth_delay_fire, s);
	if (delay <= 0 || s->auth_delay_ev == NULL ||
	    evtimer_add(s->auth_delay_ev, &tv) != 0) {
		auth_delay_fire(-1, 0, s);
		return;
	}
	/* input keeps being read (bounded by the high-water mark) but not
	 * processed while waiting: no epoll_ctl churn per AUTH */
	session_enter(s, SMTP_ST_WAIT);
}

static const char *
auth_mech_name(const struct smtp_session *s)
{
	static const char *const names[] = { "?", "PLAIN", "LOGIN", "XOAUTH2",
	    "OAUTHBEARER" };

	return s->auth_mech >= 1 && s->auth_mech <= 4 ?
	    names[s->auth_mech] : "?";
}

/* The 535 text, with the help URL when configured. */
static void
auth_text_535(const struct config *cfg, char *buf, size_t len)
{
	if (cfg->help_url != NULL && cfg->help_url[0] != '\0')
		snprintf(buf, len, "Username and Password not accepted. For "
		    "more information, go to %s", cfg->help_url);
	else
		snprintf(buf, len, "Username and Password not accepted");
}

/* A failed login: counted, logged, answered after the delay. */
static void
auth_failed(struct smtp_session *s, const char *account, const char *why,
    int code, const char *esc, const char *text)
{
	const struct config *cfg = s->w->srv->cfg;
	int n = 0, delay;

	if (s->w->srv->throttle != NULL)
		n = throttle_fail(s->w->srv->throttle, account, s->ip,
		    __atomic_load_n(&cfg->auth_failure_window, __ATOMIC_RELAXED),
		    time(NULL));
	log_info("%s: auth failed, user=%s, method=%s, client=%s, reason=%s, "
	    "failures=%d", s->id, s->auth_login_user, auth_mech_name(s),
	    s->peer, why, n);
	delay = __atomic_load_n(&cfg->auth_failure_delay, __ATOMIC_RELAXED);
	auth_reply_later(s, code, esc, text, delay);
}

/* Sender addresses this login may use: itself and its aliases.  Also for
 * the From: header check at the end of DATA (session.h). */
int
session_sender_owned(const struct smtp_session *s, const char *addr)
{
	const char *a;

	/* root on the [local] socket sends as anyone, as with Postfix's
	 * sendmail; other local users only as LOGIN@qualify_domain */
	if ((s->flags & SMTP_F_LOCAL) && s->local_uid == 0)
		return 1;
	if (strcasecmp(addr, s->user) == 0)
		return 1;
	if (s->aliases == NULL)
		return 0;
	for (a = s->aliases; *a != '\0'; a += strlen(a) + 1)
		if (strcasecmp(addr, a) == 0)
			return 1;
	return 0;
}

/*
 * A refused bearer token, as Gmail does it: counted and logged now, then
 * a 334 carrying the JSON error (RFC 7628 3.2.2), and the 535 only after
 * the client's (empty or ^A) answer, after the failure delay.
 */
static void
auth_token_failed(struct smtp_session *s, const char *account,
    const char *why, int status, int from_cb)
{
	const struct config *cfg = s->w->srv->cfg;
	char b64[600], line[620], acct[256];
	int n = 0;

	snprintf(acct, sizeof(acct), "%.255s", account);
	if (s->w->srv->throttle != NULL)
		n = throttle_fail(s->w->srv->throttle, acct, s->ip,
		    __atomic_load_n(&cfg->auth_failure_window, __ATOMIC_RELAXED),
		    time(NULL));
	log_info("%s: auth failed, user=%s, method=%s, client=%s, reason=%s, "
	    "failures=%d", s->id, s->auth_login_user[0] != '\0' ?
	    s->auth_login_user : "-", auth_mech_name(s), s->peer, why, n);
	sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
	session_enter(s, SMTP_ST_AUTH);
	s->auth_oauth_fail = 1;
	if (oauth2_error_challenge(s->auth_mech == 3 ? OAUTH2_XOAUTH2 :
	    OAUTH2_OAUTHBEARER, status == O2_SCOPE ? O2_SCOPE : O2_INVALID,
	    cfg->oauth2_required_scope, b64, sizeof(b64)) != 0)
		b64[0] = '\0';
	snprintf(line, sizeof(line), "334 %s\r\n", b64);
	session_reply_raw(s, line);
	if (from_cb)	/* inline, the command loop goes on by itself */
		session_resume(s);
}

/* The client's answer to the error challenge: always 535. */
static void
auth_token_final(struct smtp_session *s)
{
	char text[300];

	s->auth_oauth_fail = 0;
	auth_text_535(s->w->srv->cfg, text, sizeof(text));
	auth_reply_later(s, 535, "5.7.8", text, __atomic_load_n(
	    &s->w->srv->cfg->auth_failure_delay, __ATOMIC_RELAXED));
}

static void
auth_done(void *arg, struct auth_answer *ans)
{
	struct smtp_pending *p = arg;
	struct smtp_session *s = p->s;
	const struct config *cfg;
	char text[300], acct[256];
	time_t now = time(NULL);

	session_pending_done(p);
	if (s == NULL) {
		free(ans->aliases);
		return;
	}
	cfg = s->w->srv->cfg;
	s->verb = "AUTH";
	if (s->auth_mech >= 3 && ans->result != AUTH_OK &&
	    ans->result != AUTH_TEMPFAIL) {
		auth_token_failed(s, ans->canon != NULL ? ans->canon :
		    s->auth_login_user, ans->oauth_reason != NULL &&
		    ans->oauth_reason[0] != '\0' ? ans->oauth_reason :
		    "bad-token", ans->oauth_status, 1);
		free(ans->aliases);
		ans->aliases = NULL;
		return;
	}
	/* the login as typed, for the counters (canonical when known) */
	snprintf(acct, sizeof(acct), "%.255s", ans->canon != NULL ?
	    ans->canon : s->auth_login_user);
	switch (ans->result) {
	case AUTH_OK:
	case AUTH_OK_APPPASS:
		session_enter(s, SMTP_ST_READY);
		s->flags |= SMTP_F_AUTH;
		snprintf(s->user, sizeof(s->user), "%s", ans->canon);
		free(s->aliases);
		s->aliases = ans->aliases;
		ans->aliases = NULL;
		if (s->w->srv->throttle != NULL)
			throttle_success(s->w->srv->throttle, s->user, s->ip,
			    now);
		if (s->w->srv->quota != NULL) {
			quota_set_held(s->w->srv->quota, s->user, ans->held);
			if (ans->result == AUTH_OK_APPPASS)
				quota_note_apppass(s->w->srv->quota,
				    ans->apppass_id, s->ip, now);
		}
		log_info("%s: auth ok, user=%s, method=%s, via=%s, client=%s",
		    s->id, s->user, auth_mech_name(s),
		    s->auth_mech >= 3 ? "oauth2-token" :
		    ans->result == AUTH_OK_APPPASS ? "app-password" :
		    ans->cached ? "password(cached)" : "password", s->peer);
		session_reply(s, 235, "2.7.0", "Accepted");
		sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
		session_resume(s);
		return;
	case AUTH_TEMPFAIL:
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 454, "4.7.0",
		    "Temporary authentication failure, try again later");
		sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
		session_resume(s);
		return;
	case AUTH_NEED_APPPASS:
		/* RFC 4954 6: 534 5.7.9, Gmail's text */
		if (cfg->help_url != NULL && cfg->help_url[0] != '\0')
			snprintf(text, sizeof(text), "Application-specific "
			    "password required. For more information, go to %s",
			    cfg->help_url);
		else
			snprintf(text, sizeof(text), "Application-specific "
			    "password required");
		auth_failed(s, acct, "2fa-app-password-required", 534, "5.7.9",
		    text);
		break;
	case AUTH_DISABLED:
		log_warn("%s: auth refused: account %s is disabled, client=%s",
		    s->id, acct, s->peer);
		auth_text_535(cfg, text, sizeof(text));
		auth_failed(s, acct, "account-disabled", 535, "5.7.8", text);
		break;
	default:
		auth_text_535(cfg, text, sizeof(text));
		auth_failed(s, acct, "bad-credentials", 535, "5.7.8", text);
		break;
	}
	free(ans->aliases);
	ans->aliases = NULL;
	sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
}

/*
 * Before any password work: is this address (or this account from this
 * address) throttled?  Then 454, or 421 and close when the client tries
 * again in the same session.  Returns 1 when the attempt was answered.
 */
static int
auth_throttled(struct smtp_session *s, const char *user)
{
	const struct config *cfg = s->w->srv->cfg;
	enum throttle_verdict v;
	char acct[256];
	int retry = 0, delay;
	static const char *const why[] = { "", "address", "account+address",
	    "account" };

	if (s->w->srv->throttle == NULL)
		return 0;
	if (accounts_addr_normalize(user, acct, sizeof(acct)) != 0)
		snprintf(acct, sizeof(acct), "%.255s", s->auth_login_user);
	v = throttle_check(s->w->srv->throttle, acct, s->ip,
	    __atomic_load_n(&cfg->auth_failures, __ATOMIC_RELAXED),
	    __atomic_load_n(&cfg->auth_failure_window, __ATOMIC_RELAXED),
	    time(NULL), &retry);
	if (v == THR_OK)
		return 0;
	log_warn("%s: auth throttled, user=%s, client=%s, by=%s, retry_in=%ds%s",
	    s->id, s->auth_login_user, s->peer, why[v], retry,
	    s->throttled ? ", closing" : "");
	/* back-off: twice the normal failure delay, at least 1 s */
	delay = 2 * __atomic_load_n(&cfg->auth_failure_delay, __ATOMIC_RELAXED);
	if (delay < 1)
		delay = 1;
	sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
	if (s->throttled) {
		auth_reply_later(s, 421, "4.7.0", "", delay);
		return 1;
	}
	s->throttled = 1;
	auth_reply_later(s, 454, "4.7.0",
	    "Too many login attempts, please try again later", delay);
	return 1;
}

static void
auth_verify(struct smtp_session *s, const char *user, const char *pass,
    size_t passlen)
{
	struct smtp_pending *p;
	char esc[300];

	/* keep the (escaped) name for the failure log line */
	log_escape(esc, sizeof(esc), user, strlen(user));
	snprintf(s->auth_login_user, sizeof(s->auth_login_user), "%s", esc);
	if (auth_throttled(s, user))
		return;
	if ((p = session_pending_new(s)) == NULL) {
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 454, "4.7.0",
		    "Temporary authentication failure, try again later");
		return;
	}
	authpool_verify_ex(s->w->srv->auth, s->w->base, user, pass, passlen,
	    auth_done, p);
}

/*
 * Scratch memory for a decoded credential: wiped before it is freed.
 * Not sodium_malloc(): its guard pages cost ~10 system calls per login
 * (mmap, mlock, mprotect, madvise, munmap), and the same bytes already
 * sit in ordinary memory in the input buffer and the auth pool's
 * request, which wipe them the same way.
 */
static void *
secret_alloc(size_t len)
{
	return calloc(1, len);
}

static void
secret_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	sodium_memzero(p, len);
	free(p);
}

/* XOAUTH2 / OAUTHBEARER response (base64) -> token check on the pool. */
static void
auth_token(struct smtp_session *s, const char *b64, size_t len)
{
	enum oauth2_mech mech = s->auth_mech == 3 ? OAUTH2_XOAUTH2 :
	    OAUTH2_OAUTHBEARER;
	struct oauth2_sasl *os;
	unsigned char *raw;
	struct smtp_pending *p;
	char esc[300];
	long n;

	raw = secret_alloc(SMTP_AUTH_LINE_MAX);
	os = secret_alloc(sizeof(*os));
	if (raw == NULL || os == NULL) {
		secret_free(raw, SMTP_AUTH_LINE_MAX);
		secret_free(os, sizeof(*os));
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 454, "4.7.0",
		    "Temporary authentication failure, try again later");
		return;
	}
	n = sasl_b64_decode(b64, len, raw, SMTP_AUTH_LINE_MAX);
	if (n <= 0 || oauth2_sasl_decode(mech, raw, (size_t)n, os) != 0) {
		/* garbage gets the same answer as a bad token */
		s->auth_login_user[0] = '\0';
		if (!auth_throttled(s, ""))
			auth_token_failed(s, "", "malformed-response",
			    O2_INVALID, 0);
		goto out;
	}
	log_escape(esc, sizeof(esc), os->user, strlen(os->user));
	snprintf(s->auth_login_user, sizeof(s->auth_login_user), "%s", esc);
	if (auth_throttled(s, os->user))
		goto out;
	if ((p = session_pending_new(s)) == NULL) {
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 454, "4.7.0",
		    "Temporary authentication failure, try again later");
		goto out;
	}
	authpool_verify_token(s->w->srv->auth, s->w->base, os->user,
	    os->token, os->tokenlen, auth_done, p);
out:
	secret_free(raw, SMTP_AUTH_LINE_MAX);
	secret_free(os, sizeof(*os));
}

static void
auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	struct sasl_plain *sp;
	int r;

	if ((sp = secret_alloc(sizeof(*sp))) == NULL) {
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 454, "4.7.0",
		    "Temporary authentication failure, try again later");
		return;
	}
	r = sasl_plain_decode(b64, len, sp);
	if (r == SASL_MALFORMED) {
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 501, "5.5.2", "Cannot decode response");
		session_error(s);
	} else if (r == SASL_AUTHZ_MISMATCH) {
		/* acting for someone else is not offered */
		char text[300], esc[300];

		log_escape(esc, sizeof(esc), sp->authcid, strlen(sp->authcid));
		snprintf(s->auth_login_user, sizeof(s->auth_login_user), "%s",
		    esc);
		if (!auth_throttled(s, sp->authcid)) {
			auth_text_535(s->w->srv->cfg, text, sizeof(text));
			auth_failed(s, s->auth_login_user, "authzid-differs",
			    535, "5.7.8", text);
			sodium_memzero(s->auth_login_user,
			    sizeof(s->auth_login_user));
		}
	} else {
		auth_verify(s, sp->authcid, sp->passwd, sp->passwdlen);
	}
	secret_free(sp, sizeof(*sp));
}

static void
cmd_auth(struct smtp_session *s, const char *args)
{
	const char *sp = strchr(args, ' ');
	size_t mlen = sp ? (size_t)(sp - args) : strlen(args);
	const char *initial = sp ? sp + 1 : NULL;

	if (s->flags & SMTP_F_AUTH) {
		session_reply(s, 503, "5.5.1", "Already authenticated");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, 503, "5.5.1", "Not allowed during a mail transaction");
		session_error(s);
		return;
	}
	if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		s->auth_mech = 1;
		if (initial == NULL) {
			session_enter(s, SMTP_ST_AUTH);
			session_reply_raw(s, "334 \r\n");
			return;
		}
		session_enter(s, SMTP_ST_AUTH);
		auth_plain(s, initial, strlen(initial));
	} else if (mlen == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		s->auth_mech = 2;
		s->auth_login_user[0] = '\0';
		session_enter(s, SMTP_ST_AUTH);
		if (initial != NULL) {
			long n = sasl_login_decode(initial, strlen(initial),
			    s->auth_login_user, sizeof(s->auth_login_user));
			if (n <= 0) {
				session_enter(s, SMTP_ST_READY);
				session_reply(s, 501, "5.5.2", "Cannot decode response");
				session_error(s);
				return;
			}
			session_reply_raw(s, "334 UGFzc3dvcmQ6\r\n");
		} else {
			session_reply_raw(s, "334 VXNlcm5hbWU6\r\n");
		}
	} else if (s->w->srv->oauth2 != NULL && ((mlen == 7 &&
	    strncasecmp(args, "XOAUTH2", 7) == 0) || (mlen == 11 &&
	    strncasecmp(args, "OAUTHBEARER", 11) == 0))) {
		s->auth_mech = mlen == 7 ? 3 : 4;
		s->auth_oauth_fail = 0;
		s->auth_login_user[0] = '\0';
		session_enter(s, SMTP_ST_AUTH);
		if (initial == NULL) {
			session_reply_raw(s, "334 \r\n");
			return;
		}
		auth_token(s, initial, strlen(initial));
	} else if (mlen == 0) {
		session_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		session_error(s);
	} else {
		session_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		session_error(s);
	}
}

/* A response line in the middle of a SASL exchange. */
void
session_auth_line(struct smtp_session *s, char *line, size_t len)
{
	s->verb = "AUTH";
	if (memchr(line, '\0', len) != NULL || strpbrk(line, "\r\n") != NULL) {
		session_enter(s, SMTP_ST_READY);
		session_reply(s, 501, "5.5.2", "Cannot decode response");
		session_error(s);
		return;
	}
	/* RFC 7628 3.2.3: after the error challenge only 535 is left,
	 * whatever the client answers (^A, empty or "*") */
	if (s->auth_oauth_fail) {
		auth_token_final(s);
		return;
	}
	/* RFC 4954 4: "*" cancels the exchange. */
	if (len == 1 && line[0] == '*') {
		session_enter(s, SMTP_ST_READY);
		sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
		session_reply(s, 501, "5.7.0", "Authentication cancelled");
		session_error(s);
		return;
	}
	if (s->auth_mech == 1) {
		auth_plain(s, line, len);
		return;
	}
	if (s->auth_mech == 3 || s->auth_mech == 4) {
		auth_token(s, line, len);
		return;
	}
	if (s->auth_login_user[0] == '\0') {
		long n = sasl_login_decode(line, len, s->auth_login_user,
		    sizeof(s->auth_login_user));
		if (n <= 0) {
			s->auth_login_user[0] = '\0';
			session_enter(s, SMTP_ST_READY);
			session_reply(s, 501, "5.5.2", "Cannot decode response");
			session_error(s);
			return;
		}
		session_reply_raw(s, "334 UGFzc3dvcmQ6\r\n");
		return;
	} else {
		char *pw = secret_alloc(SASL_FIELD_MAX + 1);
		char user[sizeof(s->auth_login_user)];
		long n;

		if (pw == NULL) {
			session_enter(s, SMTP_ST_READY);
			session_reply(s, 454, "4.7.0",
			    "Temporary authentication failure, try again later");
			return;
		}
		n = sasl_login_decode(line, len, pw, SASL_FIELD_MAX + 1);
		if (n < 0) {
			secret_free(pw, SASL_FIELD_MAX + 1);
			session_enter(s, SMTP_ST_READY);
			session_reply(s, 501, "5.5.2", "Cannot decode response");
			session_error(s);
			return;
		}
		memcpy(user, s->auth_login_user, sizeof(user));
		auth_verify(s, user, pw, (size_t)n);
		secret_free(pw, SASL_FIELD_MAX + 1);
	}
}

/* ---- MAIL / RCPT ---- */

static void
cmd_mail(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->w->srv->cfg;
	struct smtp_path path;
	struct smtp_tx *tx;
	int r;

	if (s->tx != NULL) {
		session_reply(s, 503, "5.5.1", "Sender already specified");
		session_error(s);
		return;
	}
	memset(&path, 0, sizeof(path));
	if (*args == '\0')
		r = SMTP_P_SYNTAX;
	else
		r = smtp_parse_mail(args, 1, &path);	/* DSN: RFC 3461 */
	switch (r) {
	case SMTP_P_OK:
		break;
	case SMTP_P_PARAM:
		session_reply(s, 555, "5.5.4", "Unsupported or malformed parameter");
		session_error(s);
		smtp_path_clear(&path);
		return;
	case SMTP_P_UTF8:
		session_reply(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		session_error(s);
		smtp_path_clear(&path);
		return;
	case SMTP_P_TOOLONG:
		session_reply(s, 501, "5.1.7", "Sender address too long");
		session_error(s);
		smtp_path_clear(&path);
		return;
	default:
		session_reply(s, 501, "5.1.7", "Bad sender address syntax");
		session_error(s);
		smtp_path_clear(&path);
		return;
	}
	/* RFC 1870 6.2: refuse at once what would be refused after DATA. */
	if (path.has_size && path.size > cfg->max_message_size) {
		session_reply(s, 552, "5.3.4",
		    "Message size exceeds the limit of %llu bytes",
		    (unsigned long long)cfg->max_message_size);
		smtp_path_clear(&path);
		return;
	}
	if (spool_space_ok(s->w->srv->spool) != 0) {
		session_reply(s, 452, "4.3.1",
		    "Insufficient system storage, try again later");
		smtp_path_clear(&path);
		return;
	}
	if (s->w->srv->quota != NULL && session_quota_name(s) != NULL) {
		struct quota_limits lim;

		session_quota_limits(s, &lim);
		if (session_quota_refuse(s, quota_check_mail(s->w->srv->quota,
		    session_quota_name(s), &lim, time(NULL)),
		    session_quota_name(s))) {
			smtp_path_clear(&path);
			return;
		}
	}
	/* Sender rule: the login or one of its aliases ("<>" is fine). */
	if ((s->flags & SMTP_F_AUTH) && path.addr[0] != '\0' &&
	    !session_sender_owned(s, path.addr)) {
		char esc[300];

		log_escape(esc, sizeof(esc), path.addr, strlen(path.addr));
		if (cfg->sender_rule != NULL &&
		    strcmp(cfg->sender_rule, "rewrite") == 0) {
			log_info("%s: sender <%s> rewritten to <%s>, not owned "
			    "by the login", s->id, esc, s->user);
			snprintf(path.addr, sizeof(path.addr), "%s", s->user);
		} else {
			log_info("%s: sender <%s> refused, not owned by user %s, "
			    "client=%s", s->id, esc, s->user, s->peer);
			session_reply(s, 553, "5.7.1", "Sender address rejected: "
			    "not owned by user %s", s->user);
			smtp_path_clear(&path);
			return;
		}
	}
	if ((tx = calloc(1, sizeof(*tx))) == NULL ||
	    (tx->env.mail_from = strdup(path.addr)) == NULL ||
	    (tx->env.auth_user = strdup(s->user)) == NULL ||
	    (tx->env.client_addr = strdup(s->ip)) == NULL ||
	    (tx->env.helo = strdup(s->helo)) == NULL) {
		if (tx != NULL) {
			envelope_clear(&tx->env);
			free(tx);
		}
		smtp_path_clear(&path);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	tx->env.body = path.body == 2 ? ENV_BODY_8BITMIME :
	    path.body == 3 ? ENV_BODY_BINARYMIME : ENV_BODY_7BIT;
	tx->env.smtputf8 = path.smtputf8;
	/* RFC 3461 4.3/4.4: kept with the envelope for the DSNs */
	tx->env.envid = path.envid;
	path.envid = NULL;
	tx->env.ret = path.ret == 1 ? ENV_RET_FULL :
	    path.ret == 2 ? ENV_RET_HDRS : ENV_RET_UNSET;
	tx->size_param = path.size;
	s->tx = tx;
	smtp_path_clear(&path);
	session_enter(s, SMTP_ST_MAIL);
	session_reply(s, 250, "2.1.0", "OK");
}

static void
cmd_rcpt(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->w->srv->cfg;
	struct smtp_tx *tx = s->tx;
	struct envelope_rcpt *r;
	struct smtp_path path;
	int st;

	if (tx == NULL) {
		session_reply(s, 503, "5.5.1", "MAIL first");
		session_error(s);
		return;
	}
	memset(&path, 0, sizeof(path));
	st = smtp_parse_rcpt(args, 1, tx->env.smtputf8, &path);	/* DSN */
	if (st != SMTP_P_OK) {
		if (st == SMTP_P_PARAM)
			session_reply(s, 555, "5.5.4", "Unsupported or malformed parameter");
		else if (st == SMTP_P_UTF8)
			session_reply(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		else if (st == SMTP_P_TOOLONG)
			session_reply(s, 501, "5.1.3", "Address too long");
		else
			session_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		session_error(s);
		smtp_path_clear(&path);
		return;
	}
	/* RFC 5321 4.5.3.1.10: 452 for too many, the client sends the rest
	 * in another transaction. */
	if (tx->env.nrcpts >= (size_t)cfg->max_recipients) {
		session_reply(s, 452, "4.5.3", "Too many recipients");
		smtp_path_clear(&path);
		return;
	}
	if (s->w->srv->quota != NULL && session_quota_name(s) != NULL) {
		struct quota_limits lim;

		session_quota_limits(s, &lim);
		if (session_quota_refuse(s, quota_check_rcpt(s->w->srv->quota,
		    session_quota_name(s), &lim, (int)tx->env.nrcpts + 1,
		    time(NULL)), session_quota_name(s))) {
			smtp_path_clear(&path);
			return;
		}
	}
	r = realloc(tx->env.rcpts, (tx->env.nrcpts + 1) * sizeof(*r));
	if (r == NULL) {
		smtp_path_clear(&path);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	tx->env.rcpts = r;
	r = &tx->env.rcpts[tx->env.nrcpts];
	memset(r, 0, sizeof(*r));
	if ((r->addr = strdup(path.addr)) == NULL) {
		smtp_path_clear(&path);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	r->notify = path.notify;
	r->orcpt = path.orcpt;		/* RFC 3461 4.2, for the DSNs */
	path.orcpt = NULL;
	tx->env.nrcpts++;
	smtp_path_clear(&path);
	session_enter(s, SMTP_ST_RCPT);
	session_reply(s, 250, "2.1.5", "OK");
}

/* ---- DATA / BDAT ---- */

static void
cmd_data(struct smtp_session *s, const char *args)
{
	(void)args;
	if (s->tx == NULL) {
		session_reply(s, 503, "5.5.1", "MAIL first");
		session_error(s);
		return;
	}
	if (s->tx->bdat) {
		session_reply(s, 503, "5.5.1", "DATA not allowed after BDAT");
		session_error(s);
		return;
	}
	if (s->tx->env.nrcpts == 0) {
		session_reply(s, 503, "5.5.1", "RCPT first");
		session_error(s);
		return;
	}
	/* the quota was checked at MAIL and RCPT; the message counts once
	 * it is queued (commit_done in session_data.c) */
	if (session_data_start(s, 0) == -1)
		return;
	session_reply(s, 354, NULL, "Go ahead, end with <CR><LF>.<CR><LF>");
	session_enter(s, SMTP_ST_DATA);
}

/*
 * RFC 3030: the chunk follows the command line at once, so even a refused
 * BDAT must have its bytes read and thrown away — they must never run as
 * commands.  Only an unparsable size forces a close.
 */
static void
cmd_bdat(struct smtp_session *s, const char *args)
{
	uint64_t size;
	int last;

	if (smtp_parse_bdat(args, &size, &last) != 0) {
		s->verb = "BDAT";
		smtp_session_close(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	s->bdat_size = size;
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_discard = 1;
	s->bdat_reply = 0;
	if (!(s->flags & SMTP_F_HELO)) {
		s->bdat_reply = 503;
		snprintf(s->bdat_text, sizeof(s->bdat_text), "5.5.1 EHLO/HELO first");
	} else if (session_needs_starttls(s)) {
		s->bdat_reply = 530;
		snprintf(s->bdat_text, sizeof(s->bdat_text),
		    "5.7.0 Must issue a STARTTLS command first");
	} else if (!(s->flags & SMTP_F_AUTH) && !session_trusted(s)) {
		s->bdat_reply = 530;
		snprintf(s->bdat_text, sizeof(s->bdat_text),
		    "5.7.0 Authentication required");
	} else if (s->tx == NULL) {
		s->bdat_reply = 503;
		snprintf(s->bdat_text, sizeof(s->bdat_text), "5.5.1 MAIL first");
	} else if (s->tx->env.nrcpts == 0) {
		s->bdat_reply = 503;
		snprintf(s->bdat_text, sizeof(s->bdat_text), "5.5.1 RCPT first");
	} else if (s->tx->bdat_err) {
		/* an earlier chunk failed: discard up to LAST */
		s->bdat_reply = s->tx->bdat_err;
		snprintf(s->bdat_text, sizeof(s->bdat_text), "%s",
		    s->tx->bdat_errtext);
	} else {
		int first = !s->tx->bdat;

		if (first && session_data_start(s, 1) == -1) {
			/* reply given; still swallow the chunk */
			s->bdat_reply = -1;
		} else {
			/* counted once queued, as for DATA */
			s->bdat_discard = 0;
		}
	}
	session_enter(s, SMTP_ST_BDAT);
}

static void
cmd_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	session_tx_free(s);
	if (s->state != SMTP_ST_INIT)
		session_enter(s, SMTP_ST_READY);
	session_reply(s, 250, "2.0.0", "OK");
}

static void
cmd_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 250, "2.0.0", "OK");
}

static void
cmd_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_session_close(s, "221 2.0.0 Bye");
}

static void
cmd_vrfy(struct smtp_session *s, const char *args)
{
	(void)args;
	/* RFC 5321 3.5.3: 252 without revealing whether the user exists. */
	session_reply(s, 252, "2.5.0",
	    "Cannot verify users, but will accept the message and attempt delivery");
}

static void
cmd_expn(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 502, "5.5.1", "EXPN is not supported");
}

static void
cmd_help(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->w->srv->cfg;

	(void)args;
	session_reply(s, 214, "2.0.0",
	    "outpost: commands EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT VRFY HELP%s%s",
	    cfg->help_url ? "; see " : "", cfg->help_url ? cfg->help_url : "");
}
