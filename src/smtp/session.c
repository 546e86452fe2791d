/*
 * session.c — an SMTP session's life: accept, TLS, reading command lines
 * under their limits, writing replies, closing.
 *
 * Input is read from the bufferevent's input buffer by session_process(),
 * which dispatches on the state: command lines (bounded, strict CRLF),
 * SASL response lines, DATA content (dataread), BDAT chunks.  Nothing is
 * read while async work is pending (SMTP_ST_WAIT): the input stays
 * buffered (bounded by the read high-water mark) and is processed when
 * the work completes, so pipelined commands keep their order.
 *
 * Failure: a client can only make its own session fail.  Every reply
 * goes through session_reply(), which logs 4xx/5xx with the command.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <sodium.h>

#include "smtp/server.h"
#include "smtp/session.h"
#include "tls/tls.h"
#include "util/log.h"

static void session_readcb(struct bufferevent *bev, void *arg);
static void session_writecb(struct bufferevent *bev, void *arg);
static void session_eventcb(struct bufferevent *bev, short what, void *arg);

static const char *const state_names[] = {
	"HANDSHAKE", "INIT", "READY", "MAIL", "RCPT", "AUTH", "DATA", "BDAT",
	"WAIT", "STARTTLS", "CLOSING",
};

static void session_set_timeouts(struct smtp_session *s);

static int
state_is_data(enum smtp_state st)
{
	return st == SMTP_ST_DATA || st == SMTP_ST_BDAT;
}

void
session_enter(struct smtp_session *s, enum smtp_state st)
{
	enum smtp_state old = s->state;

	if (old == st)
		return;
	log_debug("%s: state %s -> %s", s->id, state_names[old],
	    state_names[st]);
	s->state = st;
	/* content uploads get data_timeout, commands idle_timeout */
	if (s->bev != NULL && state_is_data(old) != state_is_data(st))
		session_set_timeouts(s);
}

static void
session_set_timeouts(struct smtp_session *s)
{
	const struct config *cfg = s->w->srv->cfg;
	struct timeval rd = { cfg->idle_timeout, 0 };
	struct timeval wr = { cfg->idle_timeout, 0 };

	if (state_is_data(s->state))
		rd.tv_sec = cfg->data_timeout;
	bufferevent_set_timeouts(s->bev, &rd, &wr);
}

/*
 * Writes one reply line "CODE ESC TEXT\r\n" (esc may be NULL for 220/354
 * style replies).  4xx/5xx are logged with the command that caused them.
 */
void
session_reply(struct smtp_session *s, int code, const char *esc,
    const char *fmt, ...)
{
	char text[512], line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	if (esc != NULL)
		n = snprintf(line, sizeof(line), "%d %s %s\r\n", code, esc, text);
	else
		n = snprintf(line, sizeof(line), "%d %s\r\n", code, text);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	if (code >= 400)
		log_info("%s: reject: %s from %s: %d %s %s", s->id,
		    s->verb ? s->verb : "-", s->peer, code, esc ? esc : "",
		    text);
	if (s->bev != NULL)
		bufferevent_write(s->bev, line, (size_t)n);
}

/* For multi-line replies built by the caller (EHLO). */
void
session_reply_raw(struct smtp_session *s, const char *text)
{
	if (s->bev != NULL)
		bufferevent_write(s->bev, text, strlen(text));
}

void
session_error(struct smtp_session *s)
{
	int max = s->w->srv->cfg->max_errors;

	/* Postfix's hard error limit: a client that keeps failing is either
	 * broken or probing; drop it. */
	if (++s->nerrors >= max && s->state != SMTP_ST_CLOSING)
		smtp_session_close(s, "421 4.7.0 Too many errors, closing connection");
}

struct smtp_pending *
session_pending_new(struct smtp_session *s)
{
	struct smtp_pending *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->s = s;
	s->pending = p;
	s->resume = s->state;
	session_enter(s, SMTP_ST_WAIT);
	return p;
}

/* Called at the top of each async callback's session part: unlinks p. */
void
session_pending_done(struct smtp_pending *p)
{
	if (p->s != NULL)
		p->s->pending = NULL;
	free(p);
}

/* After async work: go on with whatever the client pipelined meanwhile. */
void
session_resume(struct smtp_session *s)
{
	if (s->state == SMTP_ST_CLOSING)
		return;
	if (s->flags & SMTP_F_DRAIN) {
		smtp_session_close(s, "421 4.3.2 Service shutting down, try again later");
		return;
	}
	session_set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	smtp_session_free(arg);
}

/*
 * Closes after the output is flushed.  text, when given, is a full reply
 * line without CRLF (a 421 as RFC 5321 3.8 asks).  Safe to call from any
 * callback: the free itself is deferred.
 */
/*
 * The per-address count is released as soon as the session starts
 * closing, not when it is freed: a client that reconnects right after
 * reading our 221 must not find its own closing session still counted.
 */
static void
session_uncount(struct smtp_session *s)
{
	if (!s->uncounted) {
		s->uncounted = 1;
		smtp_conn_release(s->w->srv, s->ip);
	}
}

void
smtp_session_close(struct smtp_session *s, const char *text)
{
	if (s->state == SMTP_ST_CLOSING)
		return;
	if (text != NULL && s->bev != NULL) {
		bufferevent_write(s->bev, text, strlen(text));
		bufferevent_write(s->bev, "\r\n", 2);
		if (text[0] == '4' || text[0] == '5')
			log_info("%s: %s, client=%s", s->id, text, s->peer);
	}
	session_enter(s, SMTP_ST_CLOSING);
	session_uncount(s);
	if (s->bev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		event_active(s->free_ev, EV_TIMEOUT, 1);
		return;
	}
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
	/* the write callback frees once everything is sent */
}

void
smtp_session_drain(struct smtp_session *s)
{
	s->flags |= SMTP_F_DRAIN;
	switch (s->state) {
	case SMTP_ST_DATA:
	case SMTP_ST_BDAT:
	case SMTP_ST_WAIT:
		/* let the transaction finish; session_resume() closes */
		break;
	case SMTP_ST_CLOSING:
		break;
	default:
		smtp_session_close(s, "421 4.3.2 Service shutting down, try again later");
	}
}

void
smtp_session_free(struct smtp_session *s)
{
	struct smtp_worker *w = s->w;

	if (s->pending != NULL) {
		s->pending->s = NULL;	/* the callback drops its result */
		s->pending = NULL;
	}
	session_tx_free(s);
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	/* A TLS bev owns the socket and the SSL (BEV_OPT_CLOSE_ON_FREE); a
	 * plaintext one does not, so that STARTTLS can reuse the socket. */
	if (s->ssl == NULL && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->free_ev != NULL)
		event_free(s->free_ev);
	if (s->auth_delay_ev != NULL)	/* session_cmd.c's delayed reply */
		event_free(s->auth_delay_ev);
	free(s->aliases);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	w->nsessions--;
	session_uncount(s);
	log_info("%s: disconnect from %s", s->id, s->peer);
	sodium_memzero(s->auth_login_user, sizeof(s->auth_login_user));
	free(s);
	if (w->nsessions == 0) {
		struct timeval now;

		/* After a burst, give the freed session memory back to the
		 * system (glibc keeps it in the thread's arena otherwise);
		 * at most every 10 s, since it walks the whole heap. */
		event_base_gettimeofday_cached(w->base, &now);
		if (now.tv_sec - w->last_trim >= 10) {
			w->last_trim = now.tv_sec;
#ifndef __SANITIZE_ADDRESS__
			/* ASan has its own allocator: glibc's trim would walk
			 * arenas that were never set up */
			malloc_trim(0);
#endif
		}
		if (w->stopping)
			event_base_loopexit(w->base, NULL);
	}
}

/*
 * A [local] socket peer: SO_PEERCRED's uid, its login from the passwd
 * database, "LOGIN@qualify_domain" as an authenticated user (the sender
 * rule and the quotas apply to it as to a login).  Returns 0, or -1 with
 * why in buf (a uid without a name, or a name unfit for an address).
 */
static int
session_local_peer(struct smtp_session *s, char *why, size_t whylen)
{
	const struct config *cfg = s->w->srv->cfg;
	struct ucred cr;
	struct passwd pw, *res = NULL;
	socklen_t crlen = sizeof(cr);
	char pwbuf[4096];
	const char *dom, *p;
	int r;

	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
		snprintf(why, whylen, "no peer credentials");
		return -1;
	}
	s->local_uid = (long)cr.uid;
	snprintf(s->ip, sizeof(s->ip), "uid:%u", (unsigned)cr.uid);
	snprintf(s->peer, sizeof(s->peer), "local uid=%u", (unsigned)cr.uid);
	r = getpwuid_r(cr.uid, &pw, pwbuf, sizeof(pwbuf), &res);
	if (r != 0 || res == NULL || pw.pw_name == NULL ||
	    pw.pw_name[0] == '\0' || strlen(pw.pw_name) > 64) {
		snprintf(why, whylen, "uid %u has no user name",
		    (unsigned)cr.uid);
		return -1;
	}
	/* a local part as RFC 5321 allows unquoted, nothing more */
	for (p = pw.pw_name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._-+$", *p) != NULL) ||
		    (*p == '.' && (p == pw.pw_name || p[1] == '.' ||
		    p[1] == '\0'))) {
			snprintf(why, whylen, "user name of uid %u is not "
			    "usable in an address", (unsigned)cr.uid);
			return -1;
		}
	snprintf(s->peer, sizeof(s->peer), "local uid=%u(%s)",
	    (unsigned)cr.uid, pw.pw_name);
	dom = cfg->local_qualify_domain != NULL ? cfg->local_qualify_domain :
	    cfg->domain;
	if (snprintf(s->user, sizeof(s->user), "%s@%s", pw.pw_name, dom) >=
	    (int)sizeof(s->user)) {
		snprintf(why, whylen, "address too long");
		return -1;
	}
	s->flags |= SMTP_F_LOCAL | SMTP_F_AUTH;
	return 0;
}

static void
session_greet(struct smtp_session *s)
{
	session_enter(s, SMTP_ST_INIT);
	session_reply(s, 220, NULL, "%s ESMTP outpost ready",
	    s->w->srv->cfg->hostname);
}

static int
session_tls_bev(struct smtp_session *s)
{
	SSL_CTX *ctx;
	SSL *ssl;

	if ((ctx = smtp_server_tls_ctx(s->w->srv)) == NULL)
		return -1;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);	/* the SSL holds its own reference */
	if (ssl == NULL)
		return -1;
	s->bev = bufferevent_openssl_socket_new(s->w->base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	s->ssl = ssl;
	/* a client that closes without close_notify is not an error */
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	return 0;
}

static void
session_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, session_readcb, session_writecb,
	    session_eventcb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_INPUT_MAX);
	session_set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

int
smtp_session_start(struct smtp_worker *w, const struct smtp_listener *l,
    evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct smtp_session *s;
	char host[INET6_ADDRSTRLEN];
	int port = 0, one = 1;

	(void)salen;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	s->w = w;
	s->lst = l;
	s->fd = fd;
	host[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		/* an IPv4-mapped peer is that IPv4 address, for limits too */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host,
			    sizeof(host));
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(s->ip, sizeof(s->ip), "%s", host);
	snprintf(s->peer, sizeof(s->peer), "[%s]:%d", host, port);
	snprintf(s->id, sizeof(s->id), "c-%x%05llx", (unsigned)w->index,
	    (unsigned long long)(++w->next_id & 0xfffff));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	s->next = w->sessions;
	if (w->sessions != NULL)
		w->sessions->prev = s;
	w->sessions = s;
	w->nsessions++;

	if ((s->free_ev = event_new(w->base, -1, 0, session_free_cb, s)) == NULL)
		goto fail;
	if (l->conf->local) {
		char why[128], line[200];

		/* the uid is known before a byte is read: no STARTTLS, no AUTH */
		if (session_local_peer(s, why, sizeof(why)) != 0) {
			log_info("%s: connect from %s, listener=%s refused: %s",
			    s->id, s->peer, l->conf->name, why);
			if ((s->bev = bufferevent_socket_new(w->base, fd,
			    BEV_OPT_DEFER_CALLBACKS)) == NULL)
				goto fail;
			session_setup_bev(s);
			snprintf(line, sizeof(line), "554 5.7.1 Local submission "
			    "refused: %s", why);
			smtp_session_close(s, line);
			return 0;
		}
		log_info("%s: connect from %s, listener=%s, user=%s", s->id,
		    s->peer, l->conf->name, s->user);
	} else
		log_info("%s: connect from %s, listener=%s", s->id, s->peer,
		    l->conf->name);
	if (l->conf->tls == LISTENER_TLS_IMPLICIT && !l->conf->local) {
		if (session_tls_bev(s) == -1)
			goto fail;
		s->state = SMTP_ST_HANDSHAKE;
		session_setup_bev(s);
	} else {
		/* No CLOSE_ON_FREE: STARTTLS replaces this bev on the same fd. */
		s->bev = bufferevent_socket_new(w->base, fd,
		    BEV_OPT_DEFER_CALLBACKS);
		if (s->bev == NULL)
			goto fail;
		session_setup_bev(s);
		session_greet(s);
	}
	return 0;
fail:
	log_err("%s: cannot set up the session (out of memory or TLS)", s->id);
	smtp_session_free(s);
	return 0;	/* the socket is closed and uncounted by the free */
}

/* STARTTLS: called once the 220 is flushed; the plaintext bev is replaced
 * by a TLS one on the same socket.  Plaintext the client pipelined after
 * STARTTLS was drained in cmd_starttls (CVE-2011-0411); anything still in
 * the kernel is read as TLS and fails the handshake. */
void
session_starttls_switch(struct smtp_session *s)
{
	bufferevent_free(s->bev);
	s->bev = NULL;
	if (session_tls_bev(s) == -1) {
		log_err("%s: cannot start TLS", s->id);
		event_active(s->free_ev, EV_TIMEOUT, 1);
		session_enter(s, SMTP_ST_CLOSING);
		return;
	}
	session_enter(s, SMTP_ST_HANDSHAKE);
	session_setup_bev(s);
}

static void
session_tls_up(struct smtp_session *s)
{
	s->flags |= SMTP_F_TLS;
	tls_describe(s->ssl, s->tlsinfo, sizeof(s->tlsinfo));
	snprintf(s->tlsproto, sizeof(s->tlsproto), "%s", SSL_get_version(s->ssl));
	log_info("%s: tls proto=%s, cipher=%s%s", s->id, s->tlsproto,
	    SSL_get_cipher_name(s->ssl),
	    SSL_session_reused(s->ssl) ? ", resumed" : "");
	if (s->lst->conf->tls == LISTENER_TLS_IMPLICIT)
		session_greet(s);
	else {
		/* RFC 3207 4.2: forget everything learned in plaintext */
		session_reset(s);
		session_enter(s, SMTP_ST_INIT);
	}
}

/*
 * Finds the next command line.  Returns 1 with the line (without CRLF,
 * NUL-terminated, heap) in *out, 0 when more input is needed, or -1 when
 * the line was over limit and was discarded (the reply is sent here).
 */
static int
session_getline(struct smtp_session *s, char **out, size_t *outlen)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t limit = s->state == SMTP_ST_AUTH ? SMTP_AUTH_LINE_MAX :
	    SMTP_LINE_MAX;
	struct evbuffer_ptr eol;
	size_t eol_len = 0, buffered = evbuffer_get_length(in);
	char verb[5];

	/* RFC 4954 4: an AUTH command with its initial response may be as
	 * long as a continuation line (bearer tokens need it) */
	if (limit == SMTP_LINE_MAX && evbuffer_copyout(in, verb, 5) == 5 &&
	    strncasecmp(verb, "AUTH ", 5) == 0)
		limit = SMTP_AUTH_LINE_MAX;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
	if (eol.pos < 0) {
		if (buffered > limit || s->skipping) {
			/* Keep a trailing CR: it may start the CRLF we need. */
			size_t keep = 0;
			unsigned char last;

			if (buffered > 0) {
				struct evbuffer_ptr p;
				evbuffer_ptr_set(in, &p, buffered - 1, EVBUFFER_PTR_SET);
				if (evbuffer_copyout_from(in, &p, &last, 1) == 1 &&
				    last == '\r')
					keep = 1;
			}
			evbuffer_drain(in, buffered - keep);
			s->skipping = 1;
		}
		return 0;
	}
	if (s->skipping || (size_t)eol.pos + 2 > limit) {
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		s->skipping = 0;
		s->verb = "-";
		/* an over-long SASL response ends the exchange (RFC 4954 4) */
		if (s->state == SMTP_ST_AUTH) {
			s->auth_oauth_fail = 0;
			sodium_memzero(s->auth_login_user,
			    sizeof(s->auth_login_user));
			session_enter(s, SMTP_ST_READY);
		}
		session_reply(s, 500, "5.5.2", "Line too long");
		session_error(s);
		return -1;
	}
	if ((*out = malloc((size_t)eol.pos + 1)) == NULL) {
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return -1;
	}
	evbuffer_remove(in, *out, (size_t)eol.pos);
	evbuffer_drain(in, eol_len);
	(*out)[eol.pos] = '\0';
	*outlen = (size_t)eol.pos;
	return 1;
}

/*
 * Works through the buffered input as far as the state allows.  Stops at
 * SMTP_ST_WAIT (async work), STARTTLS, CLOSING, or when input runs out.
 */
void
session_process(struct smtp_session *s)
{
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int r;

		if (s->bev == NULL)
			return;
		switch (s->state) {
		case SMTP_ST_DATA:
			session_data_input(s);
			if (s->state == SMTP_ST_DATA)
				return;	/* needs more input */
			continue;
		case SMTP_ST_BDAT:
			session_bdat_input(s);
			if (s->state == SMTP_ST_BDAT)
				return;
			continue;
		case SMTP_ST_INIT:
		case SMTP_ST_READY:
		case SMTP_ST_MAIL:
		case SMTP_ST_RCPT:
		case SMTP_ST_AUTH:
			break;
		default:
			return;
		}
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
			return;
		r = session_getline(s, &line, &len);
		if (r == 0)
			return;
		if (r < 0)
			continue;
		if (s->state == SMTP_ST_AUTH)
			session_auth_line(s, line, len);
		else
			session_command(s, line, len);
		sodium_memzero(line, len);	/* may have held an AUTH secret */
		free(line);
	}
}

static void
session_readcb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	session_process(s);
}

static void
session_writecb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	/* Called when the output buffer drained below the low-water mark. */
	if (s->state == SMTP_ST_CLOSING)
		event_active(s->free_ev, EV_TIMEOUT, 1);
	else if (s->state == SMTP_ST_STARTTLS)
		session_starttls_switch(s);
}

static void
session_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	const struct config *cfg = s->w->srv->cfg;
	char buf[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		session_tls_up(s);
		session_process(s);
		return;
	}
	if (s->state == SMTP_ST_CLOSING) {
		event_active(s->free_ev, EV_TIMEOUT, 1);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_WRITING) {
			log_info("%s: write timeout, client=%s", s->id, s->peer);
			event_active(s->free_ev, EV_TIMEOUT, 1);
			session_enter(s, SMTP_ST_CLOSING);
			return;
		}
		log_info("%s: timeout after %s, client=%s", s->id,
		    state_names[s->state], s->peer);
		snprintf(buf, sizeof(buf),
		    "421 4.4.2 %s Timeout exceeded, closing connection",
		    cfg->hostname);
		if (s->state == SMTP_ST_HANDSHAKE) {
			event_active(s->free_ev, EV_TIMEOUT, 1);
			session_enter(s, SMTP_ST_CLOSING);
			return;
		}
		smtp_session_close(s, buf);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e;

		buf[0] = '\0';
		while ((e = bufferevent_get_openssl_error(s->bev)) != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		if (s->state == SMTP_ST_HANDSHAKE)
			log_info("%s: TLS handshake failed, client=%s%s%s", s->id,
			    s->peer, buf[0] ? ": " : "", buf);
		else if (buf[0] != '\0')
			log_info("%s: TLS error: %s", s->id, buf);
	}
	if ((what & BEV_EVENT_EOF) && s->state == SMTP_ST_DATA)
		log_info("%s: lost connection after DATA, client=%s", s->id,
		    s->peer);
	/* EOF or error: nothing more can be sent */
	session_enter(s, SMTP_ST_CLOSING);
	event_active(s->free_ev, EV_TIMEOUT, 1);
}
