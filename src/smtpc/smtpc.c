/*
 * smtpc — the SMTP client session: connect, greeting, EHLO/HELO,
 * STARTTLS or implicit TLS, AUTH, MAIL/RCPT/DATA (pipelined when offered),
 * RSET, QUIT.  See smtpc.h for the contract.
 *
 * Shape (STYLE.md 3, mirrored from OpenSMTPD's mta_session.c): one field
 * says which step the session is in; smtpc_send_cmd() writes what a step
 * sends, smtpc_on_reply() reacts to the complete reply of that step.
 * Every entry from libevent (read, write, event, timer, deferred) goes
 * through smtpc_enter()/smtpc_leave(), so a user callback can free the
 * session anywhere: the free is deferred until the outermost entry
 * returns.
 *
 * Owns: the socket and bufferevents (a plain socket bufferevent, with an
 * OpenSSL filter on top once TLS is up; the filter owns the SSL), one step
 * timer, one deferred-callback event, copies of the params' strings and of
 * the AUTH secret (wiped).  Does not own: the SSL_CTX, the message and its
 * body source.
 *
 * Failure: every operation ends with one callback carrying a status (see
 * smtpc.h); a failure other than a server reply marks the connection
 * broken and closes it at once, so a truncated body is never followed by
 * the final dot.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpc/smtpc.h"
#include "tls/tls.h"
#include "util/log.h"

#define SMTPC_READ_HIWAT	(SMTPC_LINE_MAX * 4)
#define SMTPC_BODY_HIWAT	(64 * 1024)	/* output kept queued in DATA */
#define SMTPC_BODY_LOWAT	(16 * 1024)	/* refill below this */
#define SMTPC_BODY_CHUNK	(16 * 1024)	/* one read from the source */
#define SMTPC_SECRET_MAX	8192		/* password or OAuth2 token */
#define SMTPC_ADDR_MAX		256		/* RFC 5321 4.5.3.1.3 path */
#define SMTPC_PARAMS_MAX	512

struct smtpc {
	struct event_base	*base;
	smtpc_cb		*cb;
	void			*arg;

	/* params (strings copied) */
	char			*helo;
	char			*tls_name;
	char			*log_id;
	enum smtpc_tls_mode	 tls;
	enum smtpc_verify	 verify;
	SSL_CTX			*ssl_ctx;
	struct sockaddr_storage	 src;
	socklen_t		 srclen;
	int			 t_connect, t_greeting, t_tls, t_cmd, t_data,
				 t_block, t_dot;
	int			 allow_plain_auth;

	/* connection */
	struct bufferevent	*bev;		/* top of the stack */
	SSL			*ssl;		/* owned by the filter bev */
	struct event		*timer;
	struct event		*defer;
	int			 tls_on;
	int			 starttls_done;
	int			 helo_fallback;	/* EHLO refused, HELO sent */
	int			 broken;	/* connection unusable */
	int			 need_rset;	/* server holds a transaction */
	int			 first_byte_seen;

	/* the running operation */
	enum smtpc_op		 op;		/* 0 when idle */
	enum smtpc_step		 step;
	struct smtpc_reply	 reply;
	struct smtpc_status	 st;
	struct smtpc_caps	 caps;
	char			 greeting[256];

	/* AUTH */
	unsigned		 auth_mech;
	int			 auth_stage;
	char			*auth_user;
	char			*auth_secret;
	char			 auth_challenge[256]; /* decoded 334 error */

	/* SEND */
	struct smtpc_msg	*msg;
	int			 tx_after_rset;
	int			 pipelining;
	size_t			 tx_sent;	/* commands written */
	size_t			 tx_replied;	/* replies handled */
	size_t			 naccepted;
	int			 mail_failed;
	int			 data_empty;	/* 354 with no recipient */
	struct smtpc_status	 worst;		/* worst RCPT refusal */
	struct smtpc_stuff	 stuff;
	off_t			 body_off;
	off_t			 body_left;	/* -1 = to EOF */
	size_t			 body_memoff;
	size_t			 body_prefoff;	/* of body.prefix sent */
	int			 body_done;

	int			 depth;		/* libevent entries active */
	int			 dead;		/* smtpc_free() inside a callback */
};

static void	smtpc_readcb(struct bufferevent *, void *);
static void	smtpc_writecb(struct bufferevent *, void *);
static void	smtpc_eventcb(struct bufferevent *, short, void *);
static void	smtpc_on_reply(struct smtpc *);
static void	smtpc_tx_next(struct smtpc *);

/* ---- names ---- */

const char *
smtpc_step_name(enum smtpc_step step)
{
	switch (step) {
	case SMTPC_STEP_NONE:		return "idle";
	case SMTPC_STEP_CONNECT:	return "connect";
	case SMTPC_STEP_TLS:		return "TLS handshake";
	case SMTPC_STEP_GREETING:	return "greeting";
	case SMTPC_STEP_EHLO:		return "EHLO";
	case SMTPC_STEP_STARTTLS:	return "STARTTLS";
	case SMTPC_STEP_AUTH:		return "AUTH";
	case SMTPC_STEP_RSET:		return "RSET";
	case SMTPC_STEP_MAIL:		return "MAIL FROM";
	case SMTPC_STEP_RCPT:		return "RCPT TO";
	case SMTPC_STEP_DATA:		return "DATA";
	case SMTPC_STEP_BODY:		return "end of data";
	case SMTPC_STEP_QUIT:		return "QUIT";
	}
	return "?";
}

const char *
smtpc_result_name(enum smtpc_result r)
{
	switch (r) {
	case SMTPC_OK:		return "ok";
	case SMTPC_TEMPFAIL:	return "deferred";
	case SMTPC_PERMFAIL:	return "bounced";
	}
	return "?";
}

char *
smtpc_status_format(const struct smtpc_status *st, char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return buf;
	if (st->code > 0)
		snprintf(buf, len, "%d%s%s%s%s", st->code,
		    st->enhanced[0] ? " " : "", st->enhanced,
		    st->text[0] ? " " : "", st->text);
	else
		snprintf(buf, len, "%s", st->text);
	return buf;
}

/* Copies a NUL-terminated string, truncating (reply text into the
 * smaller per-recipient field). */
static void
text_copy(char *dst, size_t len, const char *src)
{
	size_t	 n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static enum smtpc_result
code_result(int code)
{
	if (code >= 200 && code < 400)
		return SMTPC_OK;
	if (code >= 500)
		return SMTPC_PERMFAIL;
	return SMTPC_TEMPFAIL;
}

/* ---- lifetime ---- */

static void
smtpc_close(struct smtpc *s)
{
	if (s->timer != NULL)
		evtimer_del(s->timer);
	if (s->bev != NULL) {
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		/* the filter frees the SSL and the underlying bufferevent,
		 * which closes the socket */
		bufferevent_free(s->bev);
		s->bev = NULL;
		s->ssl = NULL;
	}
	s->broken = 1;
}

int
smtpc_idle_ok(const struct smtpc *s)
{
	return s != NULL && s->bev != NULL && !s->broken && s->op == 0;
}

static void
smtpc_wipe_secret(struct smtpc *s)
{
	if (s->auth_secret != NULL) {
		explicit_bzero(s->auth_secret, strlen(s->auth_secret));
		free(s->auth_secret);
		s->auth_secret = NULL;
	}
	free(s->auth_user);
	s->auth_user = NULL;
}

static void
smtpc_destroy(struct smtpc *s)
{
	smtpc_close(s);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->defer != NULL)
		event_free(s->defer);
	smtpc_wipe_secret(s);
	free(s->helo);
	free(s->tls_name);
	free(s->log_id);
	free(s);
}

static void
smtpc_enter(struct smtpc *s)
{
	s->depth++;
}

/* Returns 1 when s was freed. */
static int
smtpc_leave(struct smtpc *s)
{
	if (--s->depth == 0 && s->dead) {
		smtpc_destroy(s);
		return 1;
	}
	return 0;
}

void
smtpc_free(struct smtpc *s)
{
	if (s == NULL)
		return;
	if (s->depth > 0) {
		/* inside our own callback chain: close now, free later */
		s->dead = 1;
		s->op = 0;
		smtpc_close(s);
		if (s->defer != NULL)
			event_del(s->defer);
		return;
	}
	smtpc_destroy(s);
}

/* ---- completion ---- */

static void
smtpc_arm(struct smtpc *s, int secs)
{
	struct timeval	 tv = { secs, 0 };

	evtimer_add(s->timer, &tv);
}

/* Ends the running operation with s->st and runs the callback. */
static void
smtpc_done(struct smtpc *s)
{
	enum smtpc_op	 op = s->op;

	if (op == 0 || s->dead)
		return;
	evtimer_del(s->timer);
	s->op = 0;
	s->msg = NULL;
	if (s->st.step == SMTPC_STEP_NONE)
		s->st.step = s->step;
	if (s->st.result != SMTPC_OK && s->st.err != SMTPC_E_REPLY)
		smtpc_close(s);
	else if (s->st.err == SMTPC_E_REPLY && s->st.code == 421)
		smtpc_close(s);	/* RFC 5321 3.8: the server is closing */
	s->step = SMTPC_STEP_NONE;
	smtpc_wipe_secret(s);
	if (s->st.result != SMTPC_OK || s->st.code >= 400)
		log_debug("%s: %s %s: %s", s->log_id, smtpc_step_name(
		    s->st.step), smtpc_result_name(s->st.result), s->st.text);
	s->cb(s, op, &s->st, s->arg);
}

static void
smtpc_set_status(struct smtpc *s, enum smtpc_result r, enum smtpc_err err,
    int code, const char *fmt, ...)
{
	va_list	 ap;

	memset(&s->st, 0, sizeof(s->st));
	s->st.result = r;
	s->st.err = err;
	s->st.code = code;
	s->st.step = s->step;
	va_start(ap, fmt);
	vsnprintf(s->st.text, sizeof(s->st.text), fmt, ap);
	va_end(ap);
}

/* Fails the running operation now (from inside a libevent callback). */
static void
smtpc_fail(struct smtpc *s, enum smtpc_result r, enum smtpc_err err,
    const char *fmt, ...)
{
	va_list	 ap;

	memset(&s->st, 0, sizeof(s->st));
	s->st.result = r;
	s->st.err = err;
	s->st.step = s->step;
	va_start(ap, fmt);
	vsnprintf(s->st.text, sizeof(s->st.text), fmt, ap);
	va_end(ap);
	smtpc_done(s);
}

/* The status from the reply just parsed. */
static void
smtpc_status_from_reply(struct smtpc *s, struct smtpc_status *st)
{
	memset(st, 0, sizeof(*st));
	st->code = s->reply.code;
	st->result = code_result(s->reply.code);
	st->err = st->result == SMTPC_OK ? SMTPC_E_NONE : SMTPC_E_REPLY;
	st->step = s->step;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", s->reply.enhanced);
	text_copy(st->text, sizeof(st->text), s->reply.text);
}

static void
smtpc_done_reply(struct smtpc *s)
{
	smtpc_status_from_reply(s, &s->st);
	smtpc_done(s);
}

static void
smtpc_defercb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc	*s = arg;

	(void)fd;
	(void)what;
	smtpc_enter(s);
	smtpc_done(s);
	smtpc_leave(s);
}

/* Starts op and ends it at once with the status set by the caller: the
 * callback runs on the next loop iteration, never inside the API call. */
static int
smtpc_fail_later(struct smtpc *s, enum smtpc_op op)
{
	s->op = op;
	event_active(s->defer, EV_TIMEOUT, 0);
	return 0;
}

static void
smtpc_timercb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc	*s = arg;

	(void)fd;
	(void)what;
	smtpc_enter(s);
	if (s->op == SMTPC_OP_QUIT) {
		smtpc_set_status(s, SMTPC_OK, SMTPC_E_NONE, 0,
		    "no reply to QUIT");
		smtpc_done(s);
	} else if (s->op != 0)
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_TIMEOUT,
		    "timed out waiting for the %s", smtpc_step_name(s->step));
	smtpc_leave(s);
}

/* ---- construction ---- */

static int
str_ok(const char *v, size_t max)
{
	size_t	 i;

	if (v == NULL)
		return 1;
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] < 0x21 || v[i] == 0x7f || i >= max)
			return 0;
	return 1;
}

static int
pick(int v, int dflt)
{
	return v > 0 ? v : dflt;
}

struct smtpc *
smtpc_new(struct event_base *base, const struct smtpc_params *p,
    smtpc_cb *cb, void *arg)
{
	struct smtpc	*s;

	if (base == NULL || p == NULL || cb == NULL || p->helo == NULL ||
	    *p->helo == '\0' || !str_ok(p->helo, 255) ||
	    !str_ok(p->tls_name, 253) ||
	    (p->tls != SMTPC_TLS_NONE && p->ssl_ctx == NULL) ||
	    (p->source != NULL && (p->source_len == 0 ||
	    p->source_len > sizeof(struct sockaddr_storage))))
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->cb = cb;
	s->arg = arg;
	s->tls = p->tls;
	s->verify = p->verify;
	s->ssl_ctx = p->ssl_ctx;
	s->allow_plain_auth = p->allow_plaintext_auth;
	if (p->source != NULL) {
		memcpy(&s->src, p->source, p->source_len);
		s->srclen = p->source_len;
	}
	s->t_connect = pick(p->timeout_connect, 30);
	s->t_greeting = pick(p->timeout_greeting, 300);
	s->t_tls = pick(p->timeout_tls, 60);
	s->t_cmd = pick(p->timeout_cmd, 300);
	s->t_data = pick(p->timeout_data, 120);
	s->t_block = pick(p->timeout_block, 180);
	s->t_dot = pick(p->timeout_dot, 600);
	if ((s->helo = strdup(p->helo)) == NULL ||
	    (p->tls_name != NULL && *p->tls_name != '\0' &&
	    (s->tls_name = strdup(p->tls_name)) == NULL) ||
	    (s->log_id = strdup(p->log_id != NULL ? p->log_id : "smtpc")) ==
	    NULL ||
	    (s->timer = evtimer_new(base, smtpc_timercb, s)) == NULL ||
	    (s->defer = event_new(base, -1, 0, smtpc_defercb, s)) == NULL) {
		smtpc_destroy(s);
		return NULL;
	}
	return s;
}

/* ---- output ---- */

static int
smtpc_printf(struct smtpc *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
smtpc_printf(struct smtpc *s, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
	return rc < 0 ? -1 : 0;
}

/* Writes one command line (debug-logged unless secret). */
static int
smtpc_cmd(struct smtpc *s, int secret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
smtpc_cmd(struct smtpc *s, int secret, const char *fmt, ...)
{
	char	 line[SMTPC_ADDR_MAX + SMTPC_PARAMS_MAX + 64];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	if (secret)
		log_debug("%s: > %.*s <secret>", s->log_id,
		    (int)strcspn(line, " ") + 0, line);
	else
		log_debug("%s: > %s", s->log_id, line);
	return smtpc_printf(s, "%s\r\n", line);
}

static void
smtpc_expect(struct smtpc *s, enum smtpc_step step, int secs)
{
	s->step = step;
	smtpc_reply_init(&s->reply);
	smtpc_arm(s, secs);
}

static void
smtpc_send_ehlo(struct smtpc *s)
{
	memset(&s->caps, 0, sizeof(s->caps));
	smtpc_expect(s, SMTPC_STEP_EHLO, s->t_cmd);
	if (smtpc_cmd(s, 0, "%s %s", s->helo_fallback ? "HELO" : "EHLO",
	    s->helo) == -1)
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL, "out of memory");
}

/* ---- TLS ---- */

/* OpenSSL's reasons for a handshake that met a plaintext server. */
static int
tls_reason_plaintext(unsigned long e)
{
	int	 r = ERR_GET_REASON(e);

	return r == SSL_R_WRONG_VERSION_NUMBER ||
	    r == SSL_R_PACKET_LENGTH_TOO_LONG || r == SSL_R_HTTP_REQUEST ||
	    r == SSL_R_UNKNOWN_PROTOCOL;
}

static void
smtpc_start_tls(struct smtpc *s)
{
	struct bufferevent	*f;
	SSL			*ssl;

	if ((ssl = SSL_new(s->ssl_ctx)) == NULL) {
		ERR_clear_error();
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
		    "cannot create a TLS session");
		return;
	}
	if (s->tls_name != NULL && tls_client_set_host(ssl, s->tls_name) ==
	    -1) {
		SSL_free(ssl);
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
		    "cannot set the TLS name \"%s\"", s->tls_name);
		return;
	}
	f = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (f == NULL) {
		SSL_free(ssl);
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
		    "cannot start TLS");
		return;
	}
	s->bev = f;
	s->ssl = ssl;
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	bufferevent_setcb(f, smtpc_readcb, smtpc_writecb, smtpc_eventcb, s);
	bufferevent_setwatermark(f, EV_READ, 0, SMTPC_READ_HIWAT);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	s->step = SMTPC_STEP_TLS;
	smtpc_arm(s, s->t_tls);
}

static void
smtpc_tls_ready(struct smtpc *s)
{
	const char	*why = NULL;
	int		 v;

	s->tls_on = 1;
	v = smtpc_tls_verified(s, &why);
	if (v != 1 && s->verify == SMTPC_VERIFY_REQUIRED) {
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_VERIFY,
		    "certificate not trusted for %s: %s", s->tls_name != NULL
		    ? s->tls_name : "the server", why != NULL ? why : "?");
		return;
	}
	log_debug("%s: tls proto=%s, verified=%s", s->log_id,
	    tls_version_name(s->ssl), v == 1 ? "yes" : "no");
	if (s->starttls_done)
		smtpc_send_ehlo(s);	/* RFC 3207 4.2: EHLO again */
	else
		smtpc_expect(s, SMTPC_STEP_GREETING, s->t_greeting);
}

int
smtpc_tls_verified(const struct smtpc *s, const char **why)
{
	X509	*peer;
	long	 vr;

	if (why != NULL)
		*why = NULL;
	if (s->ssl == NULL || !s->tls_on)
		return -1;
	peer = SSL_get0_peer_certificate(s->ssl);
	if (peer == NULL) {
		if (why != NULL)
			*why = "the server sent no certificate";
		return 0;
	}
	vr = SSL_get_verify_result(s->ssl);
	if (vr != X509_V_OK) {
		if (why != NULL)
			*why = X509_verify_cert_error_string(vr);
		return 0;
	}
	return 1;
}

/* ---- connect ---- */

int
smtpc_connect(struct smtpc *s, const struct sockaddr *sa, socklen_t salen)
{
	evutil_socket_t	 fd;

	if (s == NULL || s->op != 0 || s->bev != NULL || s->broken ||
	    s->dead || sa == NULL || salen == 0)
		return -1;
	s->step = SMTPC_STEP_CONNECT;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL, 0,
		    "socket: %s", strerror(errno));
		s->broken = 1;
		return smtpc_fail_later(s, SMTPC_OP_CONNECT);
	}
	{
		/* Pipelined commands and the final dot are small writes that
		 * must not wait for the ACK of the previous segment (Nagle
		 * + the peer's delayed ACK stall every reused connection). */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	}
	if (s->srclen > 0 && bind(fd, (struct sockaddr *)&s->src,
	    s->srclen) == -1) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL, 0,
		    "cannot bind the source address: %s", strerror(errno));
		close(fd);
		s->broken = 1;
		return smtpc_fail_later(s, SMTPC_OP_CONNECT);
	}
	if ((s->bev = bufferevent_socket_new(s->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL, 0,
		    "out of memory");
		s->broken = 1;
		return smtpc_fail_later(s, SMTPC_OP_CONNECT);
	}
	bufferevent_setcb(s->bev, smtpc_readcb, smtpc_writecb, smtpc_eventcb,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPC_READ_HIWAT);
	s->op = SMTPC_OP_CONNECT;
	smtpc_arm(s, s->t_connect);
	if (bufferevent_socket_connect(s->bev, sa, (int)salen) == -1) {
		/* libevent reports most failures through the event
		 * callback; this is the rest (bad address family...). */
		evtimer_del(s->timer);
		smtpc_set_status(s, SMTPC_TEMPFAIL, errno == ECONNREFUSED ?
		    SMTPC_E_REFUSED : SMTPC_E_NETWORK, 0, "connect: %s",
		    strerror(errno));
		return smtpc_fail_later(s, SMTPC_OP_CONNECT);
	}
	return 0;
}

static void
smtpc_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc	*s = arg;
	char		 buf[512];
	unsigned long	 e;
	int		 plaintext = 0, err;

	(void)bev;
	smtpc_enter(s);
	if (what & BEV_EVENT_CONNECTED) {
		if (s->step == SMTPC_STEP_CONNECT) {
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
			if (s->tls == SMTPC_TLS_IMPLICIT)
				smtpc_start_tls(s);
			else
				smtpc_expect(s, SMTPC_STEP_GREETING,
				    s->t_greeting);
		} else if (s->step == SMTPC_STEP_TLS)
			smtpc_tls_ready(s);
		goto out;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		goto out;
	err = EVUTIL_SOCKET_ERROR();
	if (s->op == SMTPC_OP_QUIT) {
		smtpc_set_status(s, SMTPC_OK, SMTPC_E_NONE, 0,
		    "connection closed");
		smtpc_close(s);
		smtpc_done(s);
		goto out;
	}
	if (s->op == 0) {
		/* idle: the server went away (e.g. its idle timeout) */
		smtpc_close(s);
		goto out;
	}
	if (s->step == SMTPC_STEP_CONNECT) {
		if (err == ECONNREFUSED)
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_REFUSED,
			    "connection refused");
		else
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_NETWORK,
			    "connect: %s", err != 0 ?
			    evutil_socket_error_to_string(err) : "failed");
		goto out;
	}
	if (s->step == SMTPC_STEP_TLS) {
		buf[0] = '\0';
		while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
			if (tls_reason_plaintext(e))
				plaintext = 1;
			if (buf[0] == '\0')
				ERR_error_string_n(e, buf, sizeof(buf));
		}
		ERR_clear_error();
		if (plaintext && s->tls == SMTPC_TLS_IMPLICIT)
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_TLS_PLAINTEXT,
			    "TLS handshake failed: the server answered in "
			    "plaintext (is this a STARTTLS port?)");
		else
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_TLS,
			    "TLS handshake failed: %s", buf[0] != '\0' ? buf :
			    (what & BEV_EVENT_EOF) ?
			    "the server closed the connection" :
			    "connection error");
		goto out;
	}
	if (what & BEV_EVENT_EOF)
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_NETWORK,
		    "the server closed the connection during the %s",
		    smtpc_step_name(s->step));
	else
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_NETWORK,
		    "connection lost during the %s: %s",
		    smtpc_step_name(s->step), err != 0 ?
		    evutil_socket_error_to_string(err) : "error");
out:
	smtpc_leave(s);
}

/* ---- input ---- */

static void
smtpc_readcb(struct bufferevent *bev, void *arg)
{
	struct smtpc		*s = arg;
	struct evbuffer		*in;
	struct evbuffer_ptr	 p;
	char			 line[SMTPC_LINE_MAX];
	const char		*t;
	size_t			 eol, n, tl;
	int			 rc;
	unsigned char		 c;

	(void)bev;
	smtpc_enter(s);
	while (!s->dead && s->bev != NULL && s->op != 0 &&
	    s->step != SMTPC_STEP_CONNECT && s->step != SMTPC_STEP_TLS) {
		in = bufferevent_get_input(s->bev);
		if (evbuffer_get_length(in) == 0)
			break;
		if (!s->first_byte_seen && s->step == SMTPC_STEP_GREETING) {
			s->first_byte_seen = 1;
			evbuffer_copyout(in, &c, 1);
			/* TLS handshake or alert record: the port speaks
			 * TLS from the first byte */
			if (c == 0x15 || c == 0x16) {
				smtpc_fail(s, SMTPC_TEMPFAIL,
				    SMTPC_E_GREETING_TLS, "the server sent TLS "
				    "instead of a greeting (is this an "
				    "implicit-TLS port?)");
				break;
			}
		}
		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) >= SMTPC_LINE_MAX)
				smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_PROTOCOL,
				    "reply line longer than %d octets",
				    SMTPC_LINE_MAX);
			break;
		}
		n = (size_t)p.pos;
		if (n + eol > SMTPC_LINE_MAX) {
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_PROTOCOL,
			    "reply line longer than %d octets",
			    SMTPC_LINE_MAX);
			break;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol);
		line[n] = '\0';
		rc = smtpc_reply_feed(&s->reply, line, n, &t, &tl);
		if (rc == SMTPC_REPLY_BAD) {
			char	 esc[80];

			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_PROTOCOL,
			    "malformed reply to %s: \"%s\"",
			    smtpc_step_name(s->step),
			    log_escape(esc, sizeof(esc), line, n));
			break;
		}
		if (s->step == SMTPC_STEP_GREETING && s->reply.nlines == 1)
			log_escape(s->greeting, sizeof(s->greeting), line, n);
		if (s->step == SMTPC_STEP_EHLO && s->reply.code == 250) {
			if (s->reply.nlines == 1) {
				size_t	 dl = strcspn(t, " ");

				log_escape(s->caps.domain,
				    sizeof(s->caps.domain), t,
				    dl < tl ? dl : tl);
			} else if (!s->helo_fallback)
				smtpc_caps_parse_line(&s->caps, t, tl);
		}
		if (log_get_level() >= LOGL_DEBUG && s->reply.nlines <= 20) {
			char	 esc[256];

			log_debug("%s: < %s", s->log_id,
			    log_escape(esc, sizeof(esc), line, n));
		}
		if (rc == SMTPC_REPLY_DONE)
			smtpc_on_reply(s);
	}
	smtpc_leave(s);
}

/* ---- replies, per step ---- */

static void
smtpc_on_greeting(struct smtpc *s)
{
	if (s->reply.code != 220) {
		smtpc_done_reply(s);
		return;
	}
	smtpc_send_ehlo(s);
}

static void
smtpc_on_ehlo(struct smtpc *s)
{
	int	 want_tls;

	if (s->reply.code != 250) {
		/* RFC 5321 4.1.4: fall back to HELO when EHLO is refused
		 * (but not when the server is going away) */
		if (!s->helo_fallback && s->reply.code >= 500) {
			s->helo_fallback = 1;
			smtpc_send_ehlo(s);
			return;
		}
		smtpc_done_reply(s);
		return;
	}
	if (!s->helo_fallback)
		s->caps.flags |= SMTPC_CAP_ESMTP;
	want_tls = !s->tls_on && (s->tls == SMTPC_TLS_STARTTLS ||
	    s->tls == SMTPC_TLS_OPPORTUNISTIC);
	if (want_tls && (s->caps.flags & SMTPC_CAP_STARTTLS)) {
		smtpc_expect(s, SMTPC_STEP_STARTTLS, s->t_cmd);
		if (smtpc_cmd(s, 0, "STARTTLS") == -1)
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
			    "out of memory");
		return;
	}
	if (want_tls && s->tls == SMTPC_TLS_STARTTLS) {
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_NOSTARTTLS,
		    "the server does not offer STARTTLS");
		return;
	}
	smtpc_set_status(s, SMTPC_OK, SMTPC_E_NONE, 250, "%s",
	    s->caps.domain);
	smtpc_done(s);
}

static void
smtpc_on_starttls(struct smtpc *s)
{
	struct evbuffer	*in;

	if (s->reply.code != 220) {
		if (s->tls == SMTPC_TLS_OPPORTUNISTIC &&
		    s->reply.code != 421) {
			/* carry on in plaintext, as opportunistic TLS
			 * does (RFC 3207 4.1) */
			smtpc_set_status(s, SMTPC_OK, SMTPC_E_NONE, 250,
			    "%s", s->caps.domain);
			smtpc_done(s);
			return;
		}
		smtpc_status_from_reply(s, &s->st);
		s->st.err = SMTPC_E_NOSTARTTLS;
		if (s->st.result == SMTPC_OK)
			s->st.result = SMTPC_TEMPFAIL;
		smtpc_done(s);
		return;
	}
	/* RFC 3207 4.2 and the STARTTLS-injection attacks: anything the
	 * server sent after its 220, before the handshake, is discarded. */
	in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	s->starttls_done = 1;
	memset(&s->caps, 0, sizeof(s->caps));
	smtpc_start_tls(s);
}

/* ---- AUTH ---- */

/* Sends "AUTH MECH b64(data)" or a bare base64 line (prefix NULL). */
static int
smtpc_send_b64(struct smtpc *s, const char *prefix, const unsigned char *d,
    size_t len)
{
	char	*b64;
	size_t	 need = (len + 2) / 3 * 4 + 1;
	int	 rc = -1;

	if ((b64 = malloc(need)) == NULL)
		return -1;
	if (smtpc_b64_encode(d, len, b64, need) < 0)
		goto out;
	if (prefix != NULL) {
		log_debug("%s: > %s <secret>", s->log_id, prefix);
		rc = smtpc_printf(s, "%s %s\r\n", prefix,
		    len == 0 ? "=" : b64);
	} else {
		log_debug("%s: > <secret>", s->log_id);
		rc = smtpc_printf(s, "%s\r\n", b64);
	}
out:
	explicit_bzero(b64, need);
	free(b64);
	return rc;
}

/* Builds the initial response of PLAIN / XOAUTH2 / OAUTHBEARER. */
static int
smtpc_auth_initial(struct smtpc *s)
{
	const char	*u = s->auth_user, *p = s->auth_secret;
	unsigned char	*buf;
	size_t		 cap, n = 0, i;
	int		 rc = -1;

	cap = strlen(u) * 3 + strlen(p) + 64;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	switch (s->auth_mech) {
	case SMTPC_AUTH_PLAIN:
		/* RFC 4616: [authzid] NUL authcid NUL passwd */
		buf[n++] = '\0';
		memcpy(buf + n, u, strlen(u));
		n += strlen(u);
		buf[n++] = '\0';
		memcpy(buf + n, p, strlen(p));
		n += strlen(p);
		rc = smtpc_send_b64(s, "AUTH PLAIN", buf, n);
		break;
	case SMTPC_AUTH_XOAUTH2:
		/* Google's format: user=U ^A auth=Bearer T ^A ^A */
		n = (size_t)snprintf((char *)buf, cap,
		    "user=%s\001auth=Bearer %s\001\001", u, p);
		rc = n < cap ? smtpc_send_b64(s, "AUTH XOAUTH2", buf, n) : -1;
		break;
	case SMTPC_AUTH_OAUTHBEARER:
		/* RFC 7628 3.1: gs2 header with the user escaped (RFC 5801:
		 * ',' as =2C, '=' as =3D), then kvpairs */
		memcpy(buf, "n,a=", 4);
		n = 4;
		for (i = 0; u[i] != '\0'; i++) {
			if (u[i] == ',' || u[i] == '=') {
				memcpy(buf + n, u[i] == ',' ? "=2C" : "=3D", 3);
				n += 3;
			} else
				buf[n++] = (unsigned char)u[i];
		}
		i = (size_t)snprintf((char *)buf + n, cap - n,
		    ",\001auth=Bearer %s\001\001", p);
		if (i < cap - n)
			rc = smtpc_send_b64(s, "AUTH OAUTHBEARER", buf, n + i);
		n += i < cap - n ? i : 0;
		break;
	case SMTPC_AUTH_LOGIN:
		log_debug("%s: > AUTH LOGIN", s->log_id);
		rc = smtpc_printf(s, "AUTH LOGIN\r\n");
		break;
	}
	explicit_bzero(buf, cap);
	free(buf);
	return rc;
}

int
smtpc_auth(struct smtpc *s, unsigned mech, const char *user,
    const char *secret, int is_token)
{
	unsigned	 offered;

	if (s == NULL || s->op != 0 || s->dead || user == NULL ||
	    secret == NULL || *user == '\0' || strlen(user) > SMTPC_ADDR_MAX ||
	    strlen(secret) > SMTPC_SECRET_MAX ||
	    strpbrk(user, "\r\n") != NULL || (mech != SMTPC_AUTH_AUTO &&
	    mech != SMTPC_AUTH_PLAIN && mech != SMTPC_AUTH_LOGIN &&
	    mech != SMTPC_AUTH_XOAUTH2 && mech != SMTPC_AUTH_OAUTHBEARER))
		return -1;
	s->step = SMTPC_STEP_AUTH;
	if (s->broken || s->bev == NULL) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_STATE, 0,
		    "not connected");
		return smtpc_fail_later(s, SMTPC_OP_AUTH);
	}
	if (!s->tls_on && !s->allow_plain_auth) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_NOAUTH, 0,
		    "refusing to send credentials over a connection without "
		    "TLS");
		return smtpc_fail_later(s, SMTPC_OP_AUTH);
	}
	offered = s->caps.auth;
	if (!(s->caps.flags & SMTPC_CAP_AUTH)) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_NOAUTH, 0,
		    "the server does not offer AUTH on this connection");
		return smtpc_fail_later(s, SMTPC_OP_AUTH);
	}
	if (mech == SMTPC_AUTH_AUTO) {
		if (is_token)
			mech = (offered & SMTPC_AUTH_XOAUTH2) ?
			    SMTPC_AUTH_XOAUTH2 : (offered &
			    SMTPC_AUTH_OAUTHBEARER) ? SMTPC_AUTH_OAUTHBEARER : 0;
		else
			mech = (offered & SMTPC_AUTH_PLAIN) ? SMTPC_AUTH_PLAIN :
			    (offered & SMTPC_AUTH_LOGIN) ? SMTPC_AUTH_LOGIN : 0;
	}
	if (mech == 0 || !(offered & mech)) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_NOAUTH, 0,
		    "no usable AUTH mechanism (the server offers: %s)",
		    s->caps.auth_list[0] ? s->caps.auth_list : "none");
		return smtpc_fail_later(s, SMTPC_OP_AUTH);
	}
	if ((s->auth_user = strdup(user)) == NULL ||
	    (s->auth_secret = strdup(secret)) == NULL) {
		smtpc_wipe_secret(s);
		return -1;
	}
	s->auth_mech = mech;
	s->auth_stage = 0;
	s->auth_challenge[0] = '\0';
	if (smtpc_auth_initial(s) == -1) {
		smtpc_wipe_secret(s);
		return -1;
	}
	s->op = SMTPC_OP_AUTH;
	smtpc_expect(s, SMTPC_STEP_AUTH, s->t_cmd);
	return 0;
}

static void
smtpc_on_auth(struct smtpc *s)
{
	unsigned char	 dec[SMTPC_TEXT_MAX];
	const char	*v;
	int		 n;

	if (s->reply.code == 235) {
		smtpc_done_reply(s);
		return;
	}
	if (s->reply.code != 334) {
		smtpc_status_from_reply(s, &s->st);
		if (s->auth_challenge[0] != '\0') {
			size_t	 l = strlen(s->st.text);

			snprintf(s->st.text + l, sizeof(s->st.text) - l,
			    " (%s)", s->auth_challenge);
		}
		if (s->st.result == SMTPC_OK) {
			s->st.result = SMTPC_TEMPFAIL;
			s->st.err = SMTPC_E_PROTOCOL;
		}
		smtpc_done(s);
		return;
	}
	/* 334: a challenge */
	s->auth_stage++;
	if (s->auth_stage > 3) {
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_PROTOCOL,
		    "too many AUTH challenges");
		return;
	}
	/* an OAuth2 error challenge (JSON) is kept for the message; read
	 * it before the reply buffer is reset */
	if (s->auth_mech == SMTPC_AUTH_XOAUTH2 ||
	    s->auth_mech == SMTPC_AUTH_OAUTHBEARER) {
		v = s->reply.text;
		n = smtpc_b64_decode(v, strcspn(v, " "), dec, sizeof(dec));
		if (n > 0)
			log_escape(s->auth_challenge,
			    sizeof(s->auth_challenge), (char *)dec, (size_t)n);
	}
	smtpc_reply_init(&s->reply);
	smtpc_arm(s, s->t_cmd);
	switch (s->auth_mech) {
	case SMTPC_AUTH_LOGIN:
		/* "Username:" then "Password:" (we do not trust the
		 * prompt's words, only their order) */
		if (s->auth_stage == 1)
			v = s->auth_user;
		else if (s->auth_stage == 2)
			v = s->auth_secret;
		else {
			smtpc_printf(s, "*\r\n");
			return;
		}
		if (smtpc_send_b64(s, NULL, (const unsigned char *)v,
		    strlen(v)) == -1)
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
			    "out of memory");
		return;
	case SMTPC_AUTH_XOAUTH2:
	case SMTPC_AUTH_OAUTHBEARER:
		/* the server's error (JSON) as a challenge (kept above):
		 * answer as RFC 7628 3.2.3 / Google say so that the server
		 * sends its final 5xx */
		if (s->auth_mech == SMTPC_AUTH_OAUTHBEARER)
			smtpc_printf(s, "AQ==\r\n");
		else
			smtpc_printf(s, "\r\n");
		return;
	default:
		/* PLAIN sent an initial response: a challenge is odd;
		 * cancel (RFC 4954 4) and take the server's final answer */
		smtpc_printf(s, "*\r\n");
		return;
	}
}

/* ---- RSET, QUIT ---- */

int
smtpc_rset(struct smtpc *s)
{
	if (s == NULL || s->op != 0 || s->dead)
		return -1;
	s->step = SMTPC_STEP_RSET;
	if (s->broken || s->bev == NULL) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_STATE, 0,
		    "not connected");
		return smtpc_fail_later(s, SMTPC_OP_RSET);
	}
	if (smtpc_cmd(s, 0, "RSET") == -1)
		return -1;
	s->op = SMTPC_OP_RSET;
	s->tx_after_rset = 0;
	smtpc_expect(s, SMTPC_STEP_RSET, s->t_cmd);
	return 0;
}

int
smtpc_quit(struct smtpc *s)
{
	if (s == NULL || s->op != 0 || s->dead)
		return -1;
	s->step = SMTPC_STEP_QUIT;
	if (s->broken || s->bev == NULL) {
		smtpc_set_status(s, SMTPC_OK, SMTPC_E_NONE, 0,
		    "not connected");
		return smtpc_fail_later(s, SMTPC_OP_QUIT);
	}
	if (smtpc_cmd(s, 0, "QUIT") == -1)
		return -1;
	s->op = SMTPC_OP_QUIT;
	smtpc_expect(s, SMTPC_STEP_QUIT, s->t_cmd);
	return 0;
}

/* ---- SEND: MAIL, RCPT..., DATA, body, dot ---- */

static int
addr_ok(const char *a)
{
	size_t	 i;

	if (a == NULL)
		return 0;
	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f || a[i] == '<'
		    || a[i] == '>' || a[i] == ' ' || i >= SMTPC_ADDR_MAX)
			return 0;
	return 1;
}

static int
params_ok(const char *p)
{
	size_t	 i;

	if (p == NULL)
		return 1;
	for (i = 0; p[i] != '\0'; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f ||
		    i >= SMTPC_PARAMS_MAX)
			return 0;
	return 1;
}

int
smtpc_send(struct smtpc *s, struct smtpc_msg *m)
{
	size_t	 i;
	int	 bad = 0;

	if (s == NULL || s->op != 0 || s->dead || m == NULL ||
	    m->nrcpts == 0 || m->rcpts == NULL)
		return -1;
	if ((m->body.fd < 0 && m->body.read == NULL && m->body.buf == NULL &&
	    m->body.buflen > 0) || (m->body.prefix == NULL &&
	    m->body.prefixlen > 0))
		return -1;
	s->msg = m;
	s->step = SMTPC_STEP_MAIL;
	for (i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].result = SMTPC_TEMPFAIL;
		m->rcpts[i].code = 0;
		m->rcpts[i].enhanced[0] = '\0';
		m->rcpts[i].text[0] = '\0';
		if (!addr_ok(m->rcpts[i].addr) || *m->rcpts[i].addr == '\0' ||
		    !params_ok(m->rcpts[i].params))
			bad = 1;
	}
	if (s->broken || s->bev == NULL) {
		smtpc_set_status(s, SMTPC_TEMPFAIL, SMTPC_E_STATE, 0,
		    "not connected");
		return smtpc_fail_later(s, SMTPC_OP_SEND);
	}
	if (bad || !addr_ok(m->from) || !params_ok(m->mail_params)) {
		smtpc_set_status(s, SMTPC_PERMFAIL, SMTPC_E_LOCAL, 0,
		    "invalid address or parameter in the envelope");
		for (i = 0; i < m->nrcpts; i++) {
			m->rcpts[i].result = SMTPC_PERMFAIL;
			text_copy(m->rcpts[i].text,
			    sizeof(m->rcpts[i].text), s->st.text);
		}
		/* the connection is still fine */
		s->st.err = SMTPC_E_REPLY;
		return smtpc_fail_later(s, SMTPC_OP_SEND);
	}
	if ((s->caps.flags & SMTPC_CAP_SIZE) && s->caps.size > 0 &&
	    m->body.size > s->caps.size) {
		smtpc_set_status(s, SMTPC_PERMFAIL, SMTPC_E_SIZE, 0,
		    "message size %llu exceeds the server's limit of %llu "
		    "octets", (unsigned long long)m->body.size,
		    (unsigned long long)s->caps.size);
		for (i = 0; i < m->nrcpts; i++) {
			m->rcpts[i].result = SMTPC_PERMFAIL;
			text_copy(m->rcpts[i].text,
			    sizeof(m->rcpts[i].text), s->st.text);
		}
		s->st.err = SMTPC_E_REPLY;	/* connection reusable */
		return smtpc_fail_later(s, SMTPC_OP_SEND);
	}
	if (m->smtputf8 && !(s->caps.flags & SMTPC_CAP_SMTPUTF8)) {
		smtpc_set_status(s, SMTPC_PERMFAIL, SMTPC_E_REPLY, 0,
		    "the message needs SMTPUTF8 and the server does not "
		    "offer it");
		for (i = 0; i < m->nrcpts; i++) {
			m->rcpts[i].result = SMTPC_PERMFAIL;
			text_copy(m->rcpts[i].text,
			    sizeof(m->rcpts[i].text), s->st.text);
		}
		return smtpc_fail_later(s, SMTPC_OP_SEND);
	}
	s->op = SMTPC_OP_SEND;
	s->tx_sent = s->tx_replied = s->naccepted = 0;
	s->mail_failed = s->data_empty = s->body_done = 0;
	memset(&s->worst, 0, sizeof(s->worst));
	s->pipelining = (s->caps.flags & SMTPC_CAP_PIPELINING) != 0;
	if (s->need_rset) {
		s->tx_after_rset = 1;
		if (smtpc_cmd(s, 0, "RSET") == -1) {
			s->op = 0;
			return -1;
		}
		smtpc_expect(s, SMTPC_STEP_RSET, s->t_cmd);
		return 0;
	}
	smtpc_expect(s, SMTPC_STEP_MAIL, s->t_cmd);
	smtpc_tx_next(s);
	return 0;
}

/* Writes command number i of the transaction: 0 = MAIL, 1..n = RCPT,
 * n + 1 = DATA. */
static int
smtpc_tx_write(struct smtpc *s, size_t i)
{
	struct smtpc_msg	*m = s->msg;
	char			 size[40] = "";
	const char		*p;

	if (i == 0) {
		if ((s->caps.flags & SMTPC_CAP_SIZE) && m->body.size > 0)
			snprintf(size, sizeof(size), " SIZE=%llu",
			    (unsigned long long)m->body.size);
		return smtpc_cmd(s, 0, "MAIL FROM:<%s>%s%s%s%s%s", m->from,
		    size, m->body_8bit && (s->caps.flags &
		    SMTPC_CAP_8BITMIME) ? " BODY=8BITMIME" : "",
		    m->smtputf8 ? " SMTPUTF8" : "",
		    m->mail_params != NULL && *m->mail_params ? " " : "",
		    m->mail_params != NULL ? m->mail_params : "");
	}
	if (i <= m->nrcpts) {
		p = m->rcpts[i - 1].params;
		return smtpc_cmd(s, 0, "RCPT TO:<%s>%s%s", m->rcpts[i - 1].addr,
		    p != NULL && *p ? " " : "", p != NULL ? p : "");
	}
	return smtpc_cmd(s, 0, "DATA");
}

/* Sends what may be sent now: everything at once with PIPELINING (RFC
 * 2920 3.1: DATA is the last command of the group), else the next one. */
static void
smtpc_tx_next(struct smtpc *s)
{
	size_t	 total = s->msg->nrcpts + 2;

	while (s->tx_sent < total) {
		if (!s->pipelining && s->tx_sent > s->tx_replied)
			break;
		if (s->tx_sent == total - 1 && !s->pipelining &&
		    s->naccepted == 0)
			break;	/* no DATA without a recipient */
		if (smtpc_tx_write(s, s->tx_sent) == -1) {
			smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL,
			    "out of memory");
			return;
		}
		s->tx_sent++;
	}
}

static void
rcpt_set(struct smtpc_rcpt *r, const struct smtpc_status *st)
{
	r->result = st->result;
	r->code = st->code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", st->enhanced);
	text_copy(r->text, sizeof(r->text), st->text);
}

/* Ends the transaction with the failure st for every recipient that was
 * accepted (or not yet answered). */
static void
smtpc_tx_fail_all(struct smtpc *s, const struct smtpc_status *st)
{
	size_t	 i;

	for (i = 0; i < s->msg->nrcpts; i++)
		if (s->msg->rcpts[i].result == SMTPC_OK ||
		    s->msg->rcpts[i].code == 0)
			rcpt_set(&s->msg->rcpts[i], st);
	if (&s->st != st)
		s->st = *st;
	smtpc_done(s);
}

/* All recipients refused: the message's status is the worst refusal. */
static void
smtpc_tx_all_refused(struct smtpc *s)
{
	s->st = s->worst;
	s->st.step = SMTPC_STEP_RCPT;
	smtpc_done(s);
}

static int
body_fill(struct smtpc *s)
{
	struct smtpc_body	*b = &s->msg->body;
	struct evbuffer		*out = bufferevent_get_output(s->bev);
	char			 buf[SMTPC_BODY_CHUNK];
	ssize_t			 n;
	size_t			 want;

	while (!s->body_done && evbuffer_get_length(out) < SMTPC_BODY_HIWAT) {
		want = sizeof(buf);
		if (s->body_prefoff < b->prefixlen) {
			n = (ssize_t)(b->prefixlen - s->body_prefoff);
			if ((size_t)n > want)
				n = (ssize_t)want;
			memcpy(buf, b->prefix + s->body_prefoff, (size_t)n);
			s->body_prefoff += (size_t)n;
		} else if (b->fd >= 0) {
			if (s->body_left >= 0 && (off_t)want > s->body_left)
				want = (size_t)s->body_left;
			n = want == 0 ? 0 : pread(b->fd, buf, want,
			    s->body_off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n > 0) {
				s->body_off += n;
				if (s->body_left >= 0)
					s->body_left -= n;
			}
		} else if (b->read != NULL) {
			n = b->read(b->read_arg, buf, want);
		} else {
			n = (ssize_t)(b->buflen - s->body_memoff);
			if ((size_t)n > want)
				n = (ssize_t)want;
			if (n > 0)
				memcpy(buf, b->buf + s->body_memoff, (size_t)n);
			s->body_memoff += n > 0 ? (size_t)n : 0;
		}
		if (n < 0)
			return -1;
		if (n == 0) {
			if (smtpc_stuff_end(&s->stuff, out) == -1)
				return -2;
			s->body_done = 1;
			/* be told when everything is written */
			bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
			break;
		}
		if (smtpc_stuff_add(&s->stuff, buf, (size_t)n, out) == -1)
			return -2;
	}
	return 0;
}

static void
smtpc_body_pump(struct smtpc *s)
{
	int	 rc;

	/* On failure the dot is never sent after a short body: smtpc_fail
	 * drops the connection, so the server discards the partial
	 * message. */
	if ((rc = body_fill(s)) == -1) {
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_BODY,
		    "cannot read the message: %s", strerror(errno));
		return;
	}
	if (rc != 0) {
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_LOCAL, "out of memory");
		return;
	}
	smtpc_arm(s, s->t_block);
}

static void
smtpc_body_start(struct smtpc *s)
{
	struct smtpc_body	*b = &s->msg->body;

	smtpc_stuff_init(&s->stuff);
	s->body_off = b->offset;
	s->body_left = b->length;
	s->body_memoff = 0;
	s->body_prefoff = 0;
	s->body_done = 0;
	s->step = SMTPC_STEP_BODY;
	smtpc_reply_init(&s->reply);
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTPC_BODY_LOWAT, 0);
	smtpc_body_pump(s);
}

static void
smtpc_writecb(struct bufferevent *bev, void *arg)
{
	struct smtpc	*s = arg;

	smtpc_enter(s);
	if (s->op == SMTPC_OP_SEND && s->step == SMTPC_STEP_BODY &&
	    s->bev == bev) {
		if (!s->body_done)
			smtpc_body_pump(s);
		else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			smtpc_arm(s, s->t_dot);	/* all sent: wait for it */
	}
	smtpc_leave(s);
}

static void
smtpc_on_tx(struct smtpc *s)
{
	struct smtpc_msg	*m = s->msg;
	struct smtpc_status	 st;
	size_t			 idx = s->tx_replied++, i;

	smtpc_status_from_reply(s, &st);
	if (idx == 0) {				/* MAIL */
		if (st.result != SMTPC_OK || s->reply.code >= 300) {
			s->mail_failed = 1;
			if (st.result == SMTPC_OK)
				st.result = SMTPC_TEMPFAIL;
			s->worst = st;
			if (!s->pipelining) {
				smtpc_tx_fail_all(s, &st);
				return;
			}
		} else
			s->need_rset = 1;
		smtpc_expect(s, SMTPC_STEP_RCPT, s->t_cmd);
	} else if (idx <= m->nrcpts) {		/* RCPT */
		i = idx - 1;
		if (s->mail_failed) {
			rcpt_set(&m->rcpts[i], &s->worst);
		} else if (s->reply.code >= 200 && s->reply.code < 300) {
			s->naccepted++;
			m->rcpts[i].result = SMTPC_OK;
			m->rcpts[i].code = 0;	/* final reply pending */
			text_copy(m->rcpts[i].text,
			    sizeof(m->rcpts[i].text), st.text);
		} else {
			if (st.result == SMTPC_OK)
				st.result = SMTPC_TEMPFAIL;
			rcpt_set(&m->rcpts[i], &st);
			if (s->worst.code == 0 || st.result > s->worst.result)
				s->worst = st;
		}
		if (idx == m->nrcpts) {
			if (!s->pipelining && s->naccepted == 0) {
				smtpc_tx_all_refused(s);
				return;
			}
			smtpc_expect(s, SMTPC_STEP_DATA, s->t_data);
		} else
			smtpc_expect(s, SMTPC_STEP_RCPT, s->t_cmd);
	} else {				/* DATA */
		if (s->reply.code == 354) {
			if (s->mail_failed || s->naccepted == 0) {
				/* RFC 2920 3.1: pipelined DATA got 354 with
				 * no recipient: send an empty message's dot
				 * and report the refusals */
				s->data_empty = 1;
				s->step = SMTPC_STEP_BODY;
				smtpc_reply_init(&s->reply);
				smtpc_printf(s, ".\r\n");
				smtpc_arm(s, s->t_dot);
				return;
			}
			smtpc_body_start(s);
			return;
		}
		if (s->mail_failed) {
			s->st = s->worst;
			s->st.step = SMTPC_STEP_MAIL;
			smtpc_done(s);
			return;
		}
		if (s->naccepted == 0) {
			smtpc_tx_all_refused(s);
			return;
		}
		if (st.result == SMTPC_OK)
			st.result = SMTPC_TEMPFAIL;
		smtpc_tx_fail_all(s, &st);
		return;
	}
	smtpc_tx_next(s);
}

static void
smtpc_on_dot(struct smtpc *s)
{
	struct smtpc_msg	*m = s->msg;
	struct smtpc_status	 st;
	size_t			 i;

	if (!s->body_done && !s->data_empty) {
		/* a reply in the middle of the body: the server gave up;
		 * the connection cannot be resynchronised */
		smtpc_status_from_reply(s, &st);
		if (st.result == SMTPC_OK)
			st.result = SMTPC_TEMPFAIL;
		smtpc_close(s);
		smtpc_tx_fail_all(s, &st);
		return;
	}
	s->need_rset = 0;
	if (s->data_empty) {
		if (s->mail_failed) {
			s->st = s->worst;
			s->st.step = SMTPC_STEP_MAIL;
			smtpc_done(s);
		} else
			smtpc_tx_all_refused(s);
		return;
	}
	smtpc_status_from_reply(s, &st);
	if (st.result == SMTPC_OK && s->reply.code >= 300) {
		st.result = SMTPC_TEMPFAIL;
		st.err = SMTPC_E_PROTOCOL;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].result == SMTPC_OK)
			rcpt_set(&m->rcpts[i], &st);
	s->st = st;
	smtpc_done(s);
}

static void
smtpc_on_reply(struct smtpc *s)
{
	switch (s->step) {
	case SMTPC_STEP_GREETING:
		smtpc_on_greeting(s);
		break;
	case SMTPC_STEP_EHLO:
		smtpc_on_ehlo(s);
		break;
	case SMTPC_STEP_STARTTLS:
		smtpc_on_starttls(s);
		break;
	case SMTPC_STEP_AUTH:
		smtpc_on_auth(s);
		break;
	case SMTPC_STEP_RSET:
		if (s->op == SMTPC_OP_SEND && s->tx_after_rset) {
			s->tx_after_rset = 0;
			if (s->reply.code != 250) {
				smtpc_status_from_reply(s, &s->st);
				if (s->st.result == SMTPC_OK)
					s->st.result = SMTPC_TEMPFAIL;
				smtpc_tx_fail_all(s, &s->st);
				return;
			}
			s->need_rset = 0;
			smtpc_expect(s, SMTPC_STEP_MAIL, s->t_cmd);
			smtpc_tx_next(s);
			return;
		}
		if (s->reply.code == 250)
			s->need_rset = 0;
		smtpc_done_reply(s);
		break;
	case SMTPC_STEP_MAIL:
	case SMTPC_STEP_RCPT:
	case SMTPC_STEP_DATA:
		smtpc_on_tx(s);
		break;
	case SMTPC_STEP_BODY:
		smtpc_on_dot(s);
		break;
	case SMTPC_STEP_QUIT:
		s->st.result = SMTPC_OK;
		smtpc_status_from_reply(s, &s->st);
		s->st.result = SMTPC_OK;
		s->st.err = SMTPC_E_NONE;
		smtpc_close(s);
		smtpc_done(s);
		break;
	default:
		smtpc_fail(s, SMTPC_TEMPFAIL, SMTPC_E_PROTOCOL,
		    "unexpected reply");
		break;
	}
}

/* ---- accessors ---- */

const struct smtpc_caps *
smtpc_caps(const struct smtpc *s)
{
	return &s->caps;
}

const char *
smtpc_greeting(const struct smtpc *s)
{
	return s->greeting;
}

SSL *
smtpc_ssl(const struct smtpc *s)
{
	return s->tls_on ? s->ssl : NULL;
}

enum smtpc_step
smtpc_step_now(const struct smtpc *s)
{
	return s->step;
}
