/*
 * server — the account page's listener, TLS, limits, request dispatch and
 * the asynchronous password checks (see server.h).
 *
 * Every request: TLS checked (a connection without it gets nothing),
 * method GET/HEAD/POST only, headers and body bounded by evhttp, the
 * session cookie looked up, and for a POST the body decoded and its CSRF
 * token compared with the session's before any handler runs.  Replies
 * carry the security headers (CSP without scripts, no framing, no
 * referrer, no caching).
 *
 * Async checks (sign-in: authpool; password change: a job thread) park
 * the request in a web_pending record found again by session id; at stop
 * the records are detached from their requests before evhttp frees the
 * connections, and the loop keeps running (bounded) until every answer
 * came back, so no callback ever finds a freed base.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "auth/accounts.h"
#include "auth/apppass.h"
#include "auth/authpool.h"
#include "auth/throttle.h"
#include "smtp/server.h"
#include "util/config.h"
#include "util/log.h"
#include "util/loopcall.h"
#include "web/server.h"
#include "web/web_int.h"

#define STOP_WAIT_SECS	10

enum pend_kind { PEND_SIGNIN, PEND_PASSWD };

struct web_pending {
	struct web_server	*w;
	struct evhttp_request	*req;	/* NULL once detached (stop) */
	enum pend_kind		 kind;
	char			 sid[WEB_TOKEN_LEN + 1];
	char			 email[256];
	char			 ip[64];
	/* password change job (its thread only until loopcall) */
	char			 cur[WEB_FORM_VALUE_MAX + 1];
	char			 nw[WEB_FORM_VALUE_MAX + 1];
	int			 result;	/* 0 ok, 1 wrong password, -1 error */
	int			 revoked;
	struct web_pending	*next, *prev;
};

static const char csp[] =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

void
web_reply(struct web_ctx *c, int code, const char *reason,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	char cookie[300];

	if (evhttp_find_header(h, "Content-Type") == NULL)
		evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	if (c->clear_cookie) {
		if (web_cookie_format(cookie, sizeof(cookie), WEB_COOKIE_NAME,
		    "", -1) == 0)
			evhttp_add_header(h, "Set-Cookie", cookie);
	} else if (c->set_cookie && c->s != NULL &&
	    web_cookie_format(cookie, sizeof(cookie), WEB_COOKIE_NAME,
	    c->s->id, web_session_max_age(&c->w->sess, c->s, c->now)) == 0)
		evhttp_add_header(h, "Set-Cookie", cookie);
	evhttp_send_reply(c->req, code, reason, body);
}

void
web_redirect(struct web_ctx *c, const char *to)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
	    "Location", to);
	web_reply(c, 303, "See Other", NULL);
}

static void
simple_page(struct web_ctx *c, int code, const char *reason,
    const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	page_begin(b, reason, NULL, 0);
	evbuffer_add_printf(b, "<h1>%s</h1>\n<p>", reason);
	html_escape(b, text);
	evbuffer_add_printf(b, "</p>\n<p><a href=\"/\">Back to your "
	    "account</a></p>\n");
	page_end(b);
	web_reply(c, code, reason, b);
	evbuffer_free(b);
}

/* ---------------------------------------------------------------- */
/* async checks */

static struct web_pending *
pending_new(struct web_ctx *c, enum pend_kind kind)
{
	struct web_server *w = c->w;
	struct web_pending *p;

	if (w->npending >= WEB_MAX_JOBS || (p = calloc(1, sizeof(*p))) ==
	    NULL)
		return NULL;
	p->w = w;
	p->req = c->req;
	p->kind = kind;
	memcpy(p->sid, c->s->id, sizeof(p->sid));
	snprintf(p->email, sizeof(p->email), "%s", c->s->email);
	snprintf(p->ip, sizeof(p->ip), "%s", c->ip);
	p->next = w->pending;
	if (w->pending != NULL)
		w->pending->prev = p;
	w->pending = p;
	w->npending++;
	c->s->busy = 1;
	return p;
}

/* Unlinks p; returns its session (busy cleared) or NULL when it is gone. */
static struct web_session *
pending_done(struct web_pending *p, time_t now)
{
	struct web_server *w = p->w;
	struct web_session *s;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		w->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	w->npending--;
	if ((s = web_session_find(&w->sess, p->sid, now)) != NULL)
		s->busy = 0;
	if (w->stopping && w->npending == 0)
		event_base_loopbreak(w->base);
	return s;
}

static void
signin_done(void *arg, struct auth_answer *ans)
{
	struct web_pending *p = arg;
	struct web_server *w = p->w;
	struct web_ctx c;
	enum auth_result r = ans->result;
	int ok = 0, need_code = 0;

	free(ans->aliases);
	memset(&c, 0, sizeof(c));
	c.w = w;
	c.req = p->req;
	c.now = time(NULL);
	snprintf(c.ip, sizeof(c.ip), "%s", p->ip);
	c.s = pending_done(p, c.now);
	if (r == AUTH_OK)
		ok = 1;
	else if (r == AUTH_NEED_APPPASS)
		need_code = 1;
	/* an app password never signs in to the page; a disabled account
	 * gets the same answer as a wrong password */
	if (ok || need_code) {
		if (ans->canon != NULL && *ans->canon != '\0')
			snprintf(p->email, sizeof(p->email), "%s", ans->canon);
	} else if (r != AUTH_TEMPFAIL)
		throttle_fail(w->srv->throttle, p->email, p->ip,
		    w->cfg->auth_failure_window, c.now);
	if (c.req == NULL) {		/* stopping: nobody to answer */
		free(p);
		return;
	}
	if (c.s == NULL) {
		web_redirect(&c, "/signin");
		free(p);
		return;
	}
	if (r == AUTH_TEMPFAIL) {
		log_warn("web: %s sign-in for %s: account store unavailable",
		    p->ip, p->email);
		page_signin(&c, "The service is busy. Try again in a minute.",
		    0);
	} else if (ok) {
		throttle_success(w->srv->throttle, p->email, p->ip, c.now);
		web_session_rotate(c.s, c.now);
		c.s->state = WS_AUTHED;
		snprintf(c.s->email, sizeof(c.s->email), "%s", p->email);
		c.set_cookie = 1;
		log_info("web: %s sign-in user=%s", p->ip, p->email);
		web_redirect(&c, "/");
	} else if (need_code) {
		web_session_rotate(c.s, c.now);
		c.s->state = WS_NEED_CODE;
		c.s->code_tries = 0;
		snprintf(c.s->email, sizeof(c.s->email), "%s", p->email);
		c.set_cookie = 1;
		page_signin(&c, NULL, 1);
	} else {
		log_info("web: %s sign-in failed user=%s", p->ip, p->email);
		page_signin(&c, WEB_FAIL_MSG, 0);
	}
	sodium_memzero(p, sizeof(*p));
	free(p);
}

void
web_signin_start(struct web_ctx *c, const char *email, const char *password)
{
	struct web_server *w = c->w;
	struct web_pending *p;
	size_t plen = strlen(password);

	snprintf(c->s->email, sizeof(c->s->email), "%s", email);
	if (throttle_check(w->srv->throttle, email, c->ip,
	    w->cfg->auth_failures, w->cfg->auth_failure_window, c->now,
	    NULL) != THR_OK) {
		log_info("web: %s sign-in for %s refused: too many failed "
		    "logins", c->ip, email);
		page_signin(c, "Too many attempts. Try again later.", 0);
		return;
	}
	if ((p = pending_new(c, PEND_SIGNIN)) == NULL) {
		page_signin(c, "The service is busy. Try again in a minute.",
		    0);
		return;
	}
	authpool_verify_ex(w->srv->auth, w->base, email, password, plen,
	    signin_done, p);
}

static void
passwd_done(void *arg)
{
	struct web_pending *p = arg;
	struct web_ctx c;

	memset(&c, 0, sizeof(c));
	c.w = p->w;
	c.req = p->req;
	c.now = time(NULL);
	snprintf(c.ip, sizeof(c.ip), "%s", p->ip);
	c.s = pending_done(p, c.now);
	if (p->result == 1)
		throttle_fail(c.w->srv->throttle, p->email, p->ip,
		    c.w->cfg->auth_failure_window, c.now);
	if (p->result == 0)
		log_info("web: %s password changed user=%s, %d app passwords "
		    "revoked", p->ip, p->email, p->revoked);
	if (c.req != NULL) {
		if (c.s == NULL || c.s->state != WS_AUTHED)
			web_redirect(&c, "/signin");
		else if (p->result == 0) {
			char msg[200];

			snprintf(msg, sizeof(msg), "Your password was changed. "
			    "All your app passwords (%d) were revoked: create "
			    "new ones for your devices.", p->revoked);
			page_security(&c, msg, 0);
		} else if (p->result == 1)
			page_security(&c, "The current password is wrong.", 1);
		else
			page_security(&c, "The password could not be changed. "
			    "Try again later.", 1);
	}
	sodium_memzero(p, sizeof(*p));
	free(p);
}

/* The job thread: argon2id twice (check, then hash), never on a loop. */
static void *
passwd_job(void *arg)
{
	struct web_pending *p = arg;
	struct web_server *w = p->w;
	struct pwhash_params pp;
	struct accounts *a;
	enum auth_result r;
	char err[256], canon[256];
	int n;

	pp.opslimit = w->cfg->argon2_opslimit;
	pp.memlimit = w->cfg->argon2_memlimit;
	p->result = -1;
	if ((a = accounts_open(w->cfg->accounts_db, 0, err, sizeof(err))) ==
	    NULL)
		log_err("web: password change: %s", err);
	else {
		r = accounts_verify(a, p->email, p->cur, strlen(p->cur), &pp,
		    canon, sizeof(canon));
		if (r == AUTH_DENIED || r == AUTH_DISABLED)
			p->result = 1;
		else if ((r == AUTH_OK || r == AUTH_NEED_APPPASS) &&
		    accounts_user_passwd(a, p->email, p->nw, strlen(p->nw), &pp,
		    err, sizeof(err)) == ACCT_OK) {
			n = accounts_apppass_revoke_all(a, p->email, err,
			    sizeof(err));
			p->revoked = n < 0 ? 0 : n;
			p->result = 0;
		} else
			log_err("web: password change for %s: %s", p->email,
			    err);
		accounts_close(a);
	}
	sodium_memzero(p->cur, sizeof(p->cur));
	sodium_memzero(p->nw, sizeof(p->nw));
	if (loopcall(w->base, passwd_done, p) != 0)
		log_err("web: password change answer lost (out of memory)");
	return NULL;
}

void
web_passwd_start(struct web_ctx *c, const char *cur, const char *nw)
{
	struct web_pending *p;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if ((p = pending_new(c, PEND_PASSWD)) == NULL) {
		page_security(c, "The service is busy. Try again in a minute.",
		    1);
		return;
	}
	snprintf(p->cur, sizeof(p->cur), "%s", cur);
	snprintf(p->nw, sizeof(p->nw), "%s", nw);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, passwd_job, p);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		p->req = NULL;
		p->result = -1;
		passwd_done(p);
		page_security(c, "The service is busy. Try again in a minute.",
		    1);
	}
}

/* ---------------------------------------------------------------- */
/* dispatch */

static int
has_tls(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return 0;
	return bufferevent_openssl_get_ssl(bev) != NULL;
}

/* The POST body: form decoded, CSRF token checked.  0 or -1 (answered). */
static int
read_post(struct web_ctx *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	const char *ct, *tok;
	size_t len = evbuffer_get_length(in);
	unsigned char *body;

	ct = evhttp_find_header(evhttp_request_get_input_headers(c->req),
	    "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded",
	    33) != 0) {
		simple_page(c, 415, "Unsupported Media Type",
		    "Forms only, please.");
		return -1;
	}
	if (len > WEB_MAX_BODY || (c->form = malloc(sizeof(*c->form))) ==
	    NULL) {
		simple_page(c, 413, "Payload Too Large", "The form is too big.");
		return -1;
	}
	body = evbuffer_pullup(in, -1);
	if ((len > 0 && body == NULL) ||
	    web_form_parse((const char *)body, len, c->form) != 0) {
		simple_page(c, 400, "Bad Request", "The form could not be read.");
		return -1;
	}
	tok = web_form_get(c->form, "csrf");
	if (c->s == NULL || !web_token_eq(tok, c->s->csrf)) {
		log_info("web: %s POST refused: missing or wrong CSRF token",
		    c->ip);
		simple_page(c, 403, "Forbidden", "This form has expired. Go "
		    "back, reload the page and try again.");
		return -1;
	}
	return 0;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct web_server *w = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *uri = evhttp_request_get_uri(req), *cookies;
	char path[128], sid[WEB_TOKEN_LEN + 1], *addr = NULL;
	struct web_ctx c;
	ev_uint16_t port = 0;
	size_t n;

	if (!has_tls(req)) {	/* never a page without TLS */
		evhttp_send_error(req, 400, NULL);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.w = w;
	c.req = req;
	c.now = time(NULL);
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(c.ip, sizeof(c.ip), "%s", addr != NULL ? addr : "?");
	if (w->stopping) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	/* the path without the query; anything odd is a 404 */
	n = strcspn(uri, "?#");
	if (n == 0 || n >= sizeof(path) || uri[0] != '/') {
		simple_page(&c, 404, "Not Found", "There is no such page.");
		return;
	}
	memcpy(path, uri, n);
	path[n] = '\0';
	cookies = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Cookie");
	if (cookies != NULL && web_cookie_get(cookies, WEB_COOKIE_NAME, sid,
	    sizeof(sid)) == 0)
		c.s = web_session_find(&w->sess, sid, c.now);
	if (cmd == EVHTTP_REQ_POST) {
		if (read_post(&c) != 0)
			goto out;
		web_route(&c, path, 1);
	} else
		web_route(&c, path, 0);
out:
	if (c.form != NULL) {
		web_form_wipe(c.form);
		free(c.form);
	}
}

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	struct web_server *w = arg;
	struct bufferevent *bev;
	SSL_CTX *ctx;
	SSL *ssl;

	if ((ctx = smtp_server_tls_ctx(w->srv)) == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (ssl == NULL)
		return NULL;	/* on_request() then refuses the plain link */
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* ---------------------------------------------------------------- */
/* life cycle */

struct web_server *
web_server_new(struct config *cfg, struct smtp_server *srv, char *err,
    size_t errlen)
{
	unsigned char key[SERVERKEY_LEN];
	struct web_server *w;
	char host[80], path[4096], why[256];
	int port;

	if (config_split_hostport(cfg->web_listen, host, sizeof(host),
	    &port) != 0) {
		snprintf(err, errlen, "[account_page] listen: bad address");
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->srv = srv;
	snprintf(w->listen, sizeof(w->listen), "%s", cfg->web_listen);
	web_sessions_init(&w->sess, cfg->web_session_idle,
	    cfg->web_session_lifetime);
	if ((w->db = accounts_open(cfg->accounts_db, 0, why, sizeof(why))) ==
	    NULL) {
		snprintf(err, errlen, "account page: %s", why);
		goto fail;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/secret.key",
	    cfg->data_dir) >= sizeof(path) ||
	    serverkey_load(path, key, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "account page: server key: %s", why);
		goto fail;
	}
	accounts_set_key(w->db, key);
	sodium_memzero(key, sizeof(key));
	if ((w->base = event_base_new()) == NULL ||
	    (w->http = evhttp_new(w->base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(w->http, WEB_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, WEB_MAX_BODY);
	evhttp_set_timeout(w->http, WEB_TIMEOUT);
	evhttp_set_bevcb(w->http, tls_bevcb, w);
	evhttp_set_gencb(w->http, on_request, w);
	if ((w->bound = evhttp_bind_socket_with_handle(w->http, host,
	    (ev_uint16_t)port)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s (account page): %s",
		    cfg->web_listen, strerror(errno));
		goto fail;
	}
	return w;
fail:
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->base != NULL)
		event_base_free(w->base);
	if (w->db != NULL)
		accounts_close(w->db);
	free(w);
	return NULL;
}

static void *
web_thread(void *arg)
{
	struct web_server *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int
web_server_start(struct web_server *w, char *err, size_t errlen)
{
	if (pthread_create(&w->thread, NULL, web_thread, w) != 0) {
		snprintf(err, errlen, "cannot start the account page thread");
		return -1;
	}
	w->started = 1;
	log_info("account page on https://%s/", w->listen);
	return 0;
}

/* On the page's thread: stop serving; the loop ends when the last
 * pending check has answered (or at the deadline). */
static void
stop_on_loop(void *arg)
{
	struct web_server *w = arg;
	struct web_pending *p;

	w->stopping = 1;
	for (p = w->pending; p != NULL; p = p->next)
		p->req = NULL;	/* evhttp_free frees their connections */
	evhttp_free(w->http);
	w->http = NULL;
	if (w->npending == 0)
		event_base_loopbreak(w->base);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web_server *w = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(w->base);
}

void
web_server_stop(struct web_server *w)
{
	struct timeval tv = { STOP_WAIT_SECS, 0 };
	struct event *dl = NULL;
	int leak;

	if (w == NULL)
		return;
	if (w->started) {
		dl = evtimer_new(w->base, deadline_cb, w);
		if (dl != NULL)
			evtimer_add(dl, &tv);
		if (loopcall(w->base, stop_on_loop, w) != 0)
			event_base_loopbreak(w->base);
		pthread_join(w->thread, NULL);
	} else {
		evhttp_free(w->http);
		w->http = NULL;
	}
	if (dl != NULL)
		event_free(dl);
	if (w->http != NULL)
		evhttp_free(w->http);
	/* a check still out would answer to this base: keep it then */
	leak = w->npending > 0;
	if (leak)
		log_warn("account page: %d checks still running at stop",
		    w->npending);
	web_sessions_free(&w->sess);
	accounts_close(w->db);
	if (!leak) {
		int i;

		/* the connections' TLS bufferevents finish freeing in
		 * deferred callbacks: let them run (the thread is gone) */
		for (i = 0; i < 4; i++)
			event_base_loop(w->base, EVLOOP_NONBLOCK);
		event_base_free(w->base);
		free(w);
	}
}
