/*
 * pages — the account page's HTML and its routes after the dispatch in
 * server.c: sign-in (password, then a TOTP code when 2FA is on),
 * security (2FA on with a QR code, 2FA off, password change), app
 * passwords, usage, and the administrators' page.
 *
 * Plain server-rendered HTML with one small stylesheet (/style.css), no
 * script.  Every string that is not a literal here goes through
 * html_escape().  The quick account-store calls run here on the page's
 * own thread; the argon2id checks are started in server.c.  Secrets
 * (passwords, TOTP secrets, codes) never reach a log line or a URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <qrencode.h>
#include <sodium.h>

#include "auth/accounts.h"
#include "auth/apppass.h"
#include "auth/quota.h"
#include "auth/throttle.h"
#include "auth/totp.h"
#include "delivery/qjson.h"
#include "queue/qstate.h"
#include "queue/spool.h"
#include "smtp/server.h"
#include "util/config.h"
#include "util/log.h"
#include "web/web_int.h"

#define ADMIN_LIST_MAX	500
#define QUEUE_SCAN_MAX	100000

static const char style[] =
    "body{font-family:system-ui,sans-serif;max-width:40em;margin:0 auto;"
    "padding:1em;line-height:1.4;color:#202124}\n"
    "nav a{margin-right:1em}\n"
    "input[type=text],input[type=password],input[type=email]{width:100%;"
    "padding:.5em;box-sizing:border-box;font-size:1em}\n"
    "button{padding:.5em 1em;font-size:1em;margin:.3em 0}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}\n"
    ".msg{background:#e6f4ea;padding:.6em}.err{background:#fce8e6;"
    "padding:.6em}\n"
    ".secret{font-family:monospace;font-size:1.4em;letter-spacing:.1em}\n"
    ".qr{width:220px;height:220px}\n";

static void
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0)
		snprintf(buf, len, "never");
	else if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

void
page_begin(struct evbuffer *b, const char *title, const struct web_session *s,
    int admin)
{
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>");
	html_escape(b, title);
	evbuffer_add_printf(b, " - outpost account</title>\n<link "
	    "rel=\"stylesheet\" href=\"/style.css\"></head>\n<body>\n");
	if (s != NULL && s->state == WS_AUTHED) {
		evbuffer_add_printf(b, "<nav><a href=\"/\">Account</a>"
		    "<a href=\"/security\">Security</a><a href=\"/apppasswords\">"
		    "App passwords</a><a href=\"/usage\">Usage</a>%s</nav>\n"
		    "<form method=\"post\" action=\"/signout\"><input "
		    "type=\"hidden\" name=\"csrf\" value=\"%s\">Signed in as "
		    "<b id=\"who\">", admin ? "<a href=\"/admin\">Admin</a>" : "",
		    s->csrf);
		html_escape(b, s->email);
		evbuffer_add_printf(b, "</b> <button id=\"signout\">Sign out"
		    "</button></form>\n");
	}
}

void
page_end(struct evbuffer *b)
{
	evbuffer_add_printf(b, "</body></html>\n");
}

static void
msg_block(struct evbuffer *b, const char *msg, int err)
{
	if (msg == NULL)
		return;
	evbuffer_add_printf(b, "<p class=\"%s\" id=\"%s\">", err ? "err" : "msg",
	    err ? "error" : "message");
	html_escape(b, msg);
	evbuffer_add_printf(b, "</p>\n");
}

static void
csrf_field(struct evbuffer *b, const struct web_session *s)
{
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"csrf\" "
	    "value=\"%s\">\n", s->csrf);
}

/* Sends b (200) and frees it. */
static void
send_page(struct web_ctx *c, struct evbuffer *b)
{
	page_end(b);
	web_reply(c, 200, "OK", b);
	evbuffer_free(b);
}

static struct evbuffer *
new_page(struct web_ctx *c, const char *title)
{
	struct evbuffer *b = evbuffer_new();
	int admin = 0;

	if (b == NULL) {
		evhttp_send_error(c->req, 500, NULL);
		return NULL;
	}
	if (c->s != NULL && c->s->state == WS_AUTHED)
		admin = accounts_user_admin(c->w->db, c->s->email) == 1;
	page_begin(b, title, c->s, admin);
	return b;
}

/* ---------------------------------------------------------------- */
/* sign-in */

void
page_signin(struct web_ctx *c, const char *msg, int code_step)
{
	struct evbuffer *b;

	if (c->s == NULL) {
		if ((c->s = web_session_new(&c->w->sess, c->now)) == NULL) {
			evhttp_send_error(c->req, 503, NULL);
			return;
		}
		c->set_cookie = 1;
	}
	if ((b = new_page(c, "Sign in")) == NULL)
		return;
	if (code_step) {
		evbuffer_add_printf(b, "<h1>2-Step Verification</h1>\n");
		msg_block(b, msg, 1);
		evbuffer_add_printf(b, "<p>Enter the 6-digit code from your "
		    "authenticator app for <b>");
		html_escape(b, c->s->email);
		evbuffer_add_printf(b, "</b>.</p>\n<form method=\"post\" "
		    "action=\"/signin/code\">\n");
		csrf_field(b, c->s);
		evbuffer_add_printf(b, "<label>Code <input type=\"text\" "
		    "name=\"code\" id=\"code\" inputmode=\"numeric\" "
		    "autocomplete=\"one-time-code\" maxlength=\"8\" required>"
		    "</label>\n<button id=\"next\">Next</button></form>\n"
		    "<p><a href=\"/signin\">Start again</a></p>\n");
	} else {
		evbuffer_add_printf(b, "<h1>Sign in</h1>\n");
		msg_block(b, msg, 1);
		evbuffer_add_printf(b, "<form method=\"post\" action=\"/signin\">"
		    "\n");
		csrf_field(b, c->s);
		evbuffer_add_printf(b, "<label>Email address <input "
		    "type=\"email\" name=\"email\" id=\"email\" "
		    "autocomplete=\"username\" required></label>\n<label>Password "
		    "<input type=\"password\" name=\"password\" id=\"password\" "
		    "autocomplete=\"current-password\" required></label>\n"
		    "<button id=\"signin\">Sign in</button></form>\n");
	}
	send_page(c, b);
}

static void
do_signin(struct web_ctx *c)
{
	const char *email = web_form_get(c->form, "email");
	const char *pw = web_form_get(c->form, "password");
	char addr[256];

	/* POSTs reach here only with a session: read_post() checks its
	 * CSRF token (the analyzer does not see across files) */
	if (c->s->state == WS_AUTHED) { // NOLINT(clang-analyzer-core.NullDereference)
		web_redirect(c, "/");
		return;
	}
	if (c->s->busy) {
		page_signin(c, "A sign-in is already being checked.", 0);
		return;
	}
	if (email == NULL || pw == NULL || *pw == '\0' ||
	    accounts_addr_normalize(email, addr, sizeof(addr)) != 0) {
		page_signin(c, WEB_FAIL_MSG, 0);
		return;
	}
	c->s->state = WS_ANON;
	web_signin_start(c, addr, pw);
}

static void
do_signin_code(struct web_ctx *c)
{
	const char *code = web_form_get(c->form, "code");
	char err[256];
	int rc;

	/* a session is certain here too (read_post) */
	if (c->s->state != WS_NEED_CODE) { // NOLINT(clang-analyzer-core.NullDereference)
		web_redirect(c, "/signin");
		return;
	}
	if (throttle_check(c->w->srv->throttle, c->s->email, c->ip,
	    c->w->cfg->auth_failures, c->w->cfg->auth_failure_window, c->now,
	    NULL) != THR_OK) {
		c->s->state = WS_ANON;
		page_signin(c, "Too many attempts. Try again later.", 0);
		return;
	}
	rc = accounts_totp_verify(c->w->db, c->s->email, code ? code : "",
	    c->now, err, sizeof(err));
	if (rc == ACCT_OK) {
		throttle_success(c->w->srv->throttle, c->s->email, c->ip,
		    c->now);
		web_session_rotate(c->s, c->now);
		c->s->state = WS_AUTHED;
		c->set_cookie = 1;
		log_info("web: %s sign-in user=%s (2FA)", c->ip, c->s->email);
		web_redirect(c, "/");
		return;
	}
	throttle_fail(c->w->srv->throttle, c->s->email, c->ip,
	    c->w->cfg->auth_failure_window, c->now);
	log_info("web: %s sign-in failed user=%s (code: %s)", c->ip,
	    c->s->email, err);
	if (++c->s->code_tries >= WEB_CODE_TRIES) {
		c->s->state = WS_ANON;
		page_signin(c, WEB_FAIL_MSG, 0);
		return;
	}
	page_signin(c, WEB_FAIL_MSG, 1);
}

/* ---------------------------------------------------------------- */
/* home */

static void
page_home(struct web_ctx *c)
{
	struct account_info ai;
	struct evbuffer *b;
	char err[256];

	if (accounts_user_get(c->w->db, c->s->email, &ai, err, sizeof(err)) !=
	    ACCT_OK)
		memset(&ai, 0, sizeof(ai));
	if ((b = new_page(c, "Account")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>Your account</h1>\n<p>2-Step "
	    "Verification is <b id=\"tfa\">%s</b>.</p>\n", ai.totp_enabled ?
	    "on" : "off");
	evbuffer_add_printf(b, "<ul><li><a href=\"/security\">Security: "
	    "2-Step Verification and password</a></li>\n<li><a "
	    "href=\"/apppasswords\">App passwords for your mail apps and "
	    "devices</a></li>\n<li><a href=\"/usage\">Today's sending and "
	    "failed sign-ins</a></li></ul>\n");
	if (ai.held)
		evbuffer_add_printf(b, "<p class=\"err\">Your outgoing mail is on "
		    "hold: ask your administrator.</p>\n");
	send_page(c, b);
}

/* ---------------------------------------------------------------- */
/* security: 2FA and password */

/* An inline SVG of text as a QR code (libqrencode). */
static void
qr_svg(struct evbuffer *b, const char *text)
{
	QRcode *qr;
	int x, y, w;

	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1)) ==
	    NULL) {
		evbuffer_add_printf(b, "<p>(The QR code could not be made: use "
		    "the key below.)</p>\n");
		return;
	}
	w = qr->width;
	evbuffer_add_printf(b, "<svg class=\"qr\" id=\"qr\" "
	    "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	    "role=\"img\" aria-label=\"QR code\" shape-rendering=\"crispEdges\">"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path d=\"",
	    w + 8, w + 8, w + 8, w + 8);
	for (y = 0; y < w; y++)
		for (x = 0; x < w; x++)
			if (qr->data[y * w + x] & 1)
				evbuffer_add_printf(b, "M%d %dh1v1h-1z", x + 4,
				    y + 4);
	evbuffer_add_printf(b, "\" fill=\"#000\"/></svg>\n");
	QRcode_free(qr);
}

static void
enrol_block(struct web_ctx *c, struct evbuffer *b)
{
	char b32[TOTP_B32_MAX], uri[600], shown[TOTP_B32_MAX + 16];
	size_t i, o = 0;

	if (totp_b32_encode(c->s->pending_secret, sizeof(c->s->pending_secret),
	    b32, sizeof(b32)) < 0)
		return;
	snprintf(uri, sizeof(uri), "otpauth://totp/outpost:%s?secret=%s&"
	    "issuer=outpost&digits=6&period=30", c->s->email, b32);
	for (i = 0; b32[i] != '\0' && o + 2 < sizeof(shown); i++) {
		if (i > 0 && i % 4 == 0)
			shown[o++] = ' ';
		shown[o++] = b32[i];
	}
	shown[o] = '\0';
	evbuffer_add_printf(b, "<h2>Set up your authenticator app</h2>\n<p>Scan "
	    "this QR code with your authenticator app:</p>\n");
	qr_svg(b, uri);
	evbuffer_add_printf(b, "<p>Or enter this key by hand:</p>\n<p "
	    "class=\"secret\" id=\"secret\">%s</p>\n", shown);
	evbuffer_add_printf(b, "<form method=\"post\" "
	    "action=\"/security/2fa/confirm\">\n");
	csrf_field(b, c->s);
	evbuffer_add_printf(b, "<label>Code shown by the app <input "
	    "type=\"text\" name=\"code\" id=\"confirm-code\" "
	    "inputmode=\"numeric\" autocomplete=\"one-time-code\" "
	    "maxlength=\"8\" required></label>\n<button id=\"confirm\">Turn on"
	    "</button></form>\n");
	sodium_memzero(b32, sizeof(b32));
	sodium_memzero(uri, sizeof(uri));
	sodium_memzero(shown, sizeof(shown));
}

void
page_security(struct web_ctx *c, const char *msg, int err)
{
	struct account_info ai;
	struct evbuffer *b;
	char why[256];

	if (accounts_user_get(c->w->db, c->s->email, &ai, why, sizeof(why)) !=
	    ACCT_OK)
		memset(&ai, 0, sizeof(ai));
	if ((b = new_page(c, "Security")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>Security</h1>\n");
	msg_block(b, msg, err);
	evbuffer_add_printf(b, "<h2>2-Step Verification</h2>\n<p>It is <b "
	    "id=\"tfa\">%s</b>.</p>\n", ai.totp_enabled ? "on" : "off");
	if (ai.totp_enabled) {
		evbuffer_add_printf(b, "<p>With it on, mail apps need an <a "
		    "href=\"/apppasswords\">app password</a>; your password "
		    "alone no longer sends mail.</p>\n<form method=\"post\" "
		    "action=\"/security/2fa/off\">\n");
		csrf_field(b, c->s);
		evbuffer_add_printf(b, "<label>Code from your app <input "
		    "type=\"text\" name=\"code\" id=\"off-code\" "
		    "inputmode=\"numeric\" maxlength=\"8\" required></label>\n"
		    "<button id=\"tfa-off\">Turn off</button></form>\n");
	} else if (c->s->has_pending_secret)
		enrol_block(c, b);
	else {
		evbuffer_add_printf(b, "<form method=\"post\" "
		    "action=\"/security/2fa/start\">\n");
		csrf_field(b, c->s);
		evbuffer_add_printf(b, "<button id=\"tfa-on\">Turn on 2-Step "
		    "Verification</button></form>\n");
	}
	evbuffer_add_printf(b, "<h2>Password</h2>\n<p>Changing it revokes all "
	    "your app passwords.</p>\n<form method=\"post\" "
	    "action=\"/security/password\">\n");
	csrf_field(b, c->s);
	evbuffer_add_printf(b, "<label>Current password <input type=\"password\" "
	    "name=\"current\" id=\"current\" autocomplete=\"current-password\" "
	    "required></label>\n<label>New password (8 characters or more) "
	    "<input type=\"password\" name=\"new\" id=\"new\" "
	    "autocomplete=\"new-password\" required></label>\n<label>New "
	    "password again <input type=\"password\" name=\"new2\" id=\"new2\" "
	    "autocomplete=\"new-password\" required></label>\n<button "
	    "id=\"change\">Change password</button></form>\n");
	send_page(c, b);
}

static void
do_2fa_start(struct web_ctx *c)
{
	struct account_info ai;
	char err[256];

	/* enrolling again would turn 2FA off until confirmed: while it is
	 * on, only the code-checked "turn off" may change it */
	if (accounts_user_get(c->w->db, c->s->email, &ai, err, sizeof(err)) !=
	    ACCT_OK || ai.totp_enabled) {
		page_security(c, "2-Step Verification is already on. Turn it "
		    "off first (that asks for a code).", 1);
		return;
	}
	if (accounts_totp_enrol(c->w->db, c->s->email, c->s->pending_secret,
	    err, sizeof(err)) != ACCT_OK) {
		log_err("web: 2FA enrolment for %s: %s", c->s->email, err);
		page_security(c, "2-Step Verification could not be set up. Try "
		    "again later.", 1);
		return;
	}
	c->s->has_pending_secret = 1;
	page_security(c, NULL, 0);
}

static void
do_2fa_confirm(struct web_ctx *c)
{
	const char *code = web_form_get(c->form, "code");
	char err[256];

	if (!c->s->has_pending_secret) {
		web_redirect(c, "/security");
		return;
	}
	if (accounts_totp_confirm(c->w->db, c->s->email, code ? code : "",
	    c->now, err, sizeof(err)) != ACCT_OK) {
		page_security(c, "That code is not right. Check the time on "
		    "your phone and try the next code.", 1);
		return;
	}
	sodium_memzero(c->s->pending_secret, sizeof(c->s->pending_secret));
	c->s->has_pending_secret = 0;
	log_info("web: %s 2FA on user=%s", c->ip, c->s->email);
	page_security(c, "2-Step Verification is on. Your mail apps now need "
	    "app passwords.", 0);
}

static void
do_2fa_off(struct web_ctx *c)
{
	const char *code = web_form_get(c->form, "code");
	char err[256];

	if (accounts_totp_verify(c->w->db, c->s->email, code ? code : "",
	    c->now, err, sizeof(err)) != ACCT_OK) {
		throttle_fail(c->w->srv->throttle, c->s->email, c->ip,
		    c->w->cfg->auth_failure_window, c->now);
		page_security(c, "That code is not right.", 1);
		return;
	}
	if (accounts_totp_off(c->w->db, c->s->email, err, sizeof(err)) !=
	    ACCT_OK) {
		log_err("web: 2FA off for %s: %s", c->s->email, err);
		page_security(c, "2-Step Verification could not be turned off. "
		    "Try again later.", 1);
		return;
	}
	log_info("web: %s 2FA off user=%s", c->ip, c->s->email);
	page_security(c, "2-Step Verification is off.", 0);
}

static void
do_password(struct web_ctx *c)
{
	const char *cur = web_form_get(c->form, "current");
	const char *nw = web_form_get(c->form, "new");
	const char *nw2 = web_form_get(c->form, "new2");

	if (cur == NULL || nw == NULL || nw2 == NULL || *cur == '\0') {
		page_security(c, "Fill in every password field.", 1);
		return;
	}
	if (strcmp(nw, nw2) != 0) {
		page_security(c, "The new passwords do not match.", 1);
		return;
	}
	if (strlen(nw) < 8) {
		page_security(c, "The new password is too short: use 8 "
		    "characters or more.", 1);
		return;
	}
	if (c->s->busy) {
		page_security(c, "A change is already being made.", 1);
		return;
	}
	web_passwd_start(c, cur, nw);
}

/* ---------------------------------------------------------------- */
/* app passwords */

struct ap_list {
	struct evbuffer	*b;
	const struct web_session *s;
	int		 n;
};

static int
ap_row(void *ctx, const struct apppass_info *ap)
{
	struct ap_list *l = ctx;
	char created[40], used[40];

	fmt_time(ap->created, created, sizeof(created));
	fmt_time(ap->last_used, used, sizeof(used));
	evbuffer_add_printf(l->b, "<tr><td class=\"label\">");
	html_escape(l->b, ap->label);
	evbuffer_add_printf(l->b, "</td><td>%s</td><td>%s</td><td>", created,
	    used);
	html_escape(l->b, ap->last_ip[0] ? ap->last_ip : "-");
	evbuffer_add_printf(l->b, "</td><td><form method=\"post\" "
	    "action=\"/apppasswords/revoke\"><input type=\"hidden\" "
	    "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"label\" "
	    "value=\"", l->s->csrf);
	html_escape(l->b, ap->label);
	evbuffer_add_printf(l->b, "\"><button class=\"revoke\">Revoke</button>"
	    "</form></td></tr>\n");
	l->n++;
	return 0;
}

static void
page_apppass(struct web_ctx *c, const char *msg, int err, const char *shown,
    const char *label)
{
	struct ap_list l;
	struct evbuffer *b;
	char why[256];

	if ((b = new_page(c, "App passwords")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>App passwords</h1>\n");
	msg_block(b, msg, err);
	if (shown != NULL) {
		evbuffer_add_printf(b, "<h2>Your app password for “");
		html_escape(b, label);
		evbuffer_add_printf(b, "”</h2>\n<p class=\"secret\" "
		    "id=\"apppass\">%s</p>\n<p>Copy it now: it is not shown "
		    "again. Type it in your mail app instead of your password "
		    "(spaces do not matter).</p>\n", shown);
		evbuffer_add_printf(b, "<h3>Mail app settings</h3>\n<table>"
		    "<tr><th>Outgoing server (SMTP)</th><td id=\"server\">");
		html_escape(b, c->w->cfg->hostname);
		evbuffer_add_printf(b, "</td></tr>\n<tr><th>Port and security"
		    "</th><td>587 with STARTTLS, or 465 with SSL/TLS</td></tr>\n"
		    "<tr><th>User name</th><td id=\"username\">");
		html_escape(b, c->s->email);
		evbuffer_add_printf(b, "</td></tr>\n<tr><th>Password</th><td>the "
		    "app password above</td></tr></table>\n");
	}
	evbuffer_add_printf(b, "<p>An app password lets a mail app or device "
	    "send as you when 2-Step Verification is on.</p>\n<h2>Create one"
	    "</h2>\n<form method=\"post\" action=\"/apppasswords/create\">\n");
	csrf_field(b, c->s);
	evbuffer_add_printf(b, "<label>Name it after the app or device <input "
	    "type=\"text\" name=\"label\" id=\"label\" maxlength=\"%d\" "
	    "required></label>\n<button id=\"create\">Create</button></form>\n"
	    "<h2>Your app passwords</h2>\n<table id=\"apppasswords\"><tr><th>"
	    "Name</th><th>Created</th><th>Last used</th><th>Last client</th>"
	    "<th></th></tr>\n", ACCT_LABEL_LEN);
	l.b = b;
	l.s = c->s;
	l.n = 0;
	if (accounts_apppass_list(c->w->db, c->s->email, ap_row, &l, why,
	    sizeof(why)) < 0)
		log_err("web: app passwords of %s: %s", c->s->email, why);
	evbuffer_add_printf(b, "</table>\n");
	if (l.n == 0)
		evbuffer_add_printf(b, "<p>You have none.</p>\n");
	send_page(c, b);
}

static void
do_apppass_create(struct web_ctx *c)
{
	const char *label = web_form_get(c->form, "label");
	char shown[APPPASS_SHOWN_LEN + 8], err[256];
	int rc;

	if (label == NULL || *label == '\0') {
		page_apppass(c, "Give the app password a name.", 1, NULL, NULL);
		return;
	}
	rc = accounts_apppass_add(c->w->db, c->s->email, label, shown,
	    sizeof(shown), err, sizeof(err));
	if (rc == ACCT_EXISTS)
		page_apppass(c, "You already have an app password with that "
		    "name.", 1, NULL, NULL);
	else if (rc == ACCT_LIMIT)
		page_apppass(c, "You have too many app passwords: revoke one "
		    "first.", 1, NULL, NULL);
	else if (rc != ACCT_OK)
		page_apppass(c, "That name cannot be used: use letters, digits, "
		    "spaces and simple punctuation, at most 64.", 1, NULL, NULL);
	else {
		log_info("web: %s app password created user=%s", c->ip,
		    c->s->email);
		page_apppass(c, NULL, 0, shown, label);
	}
	sodium_memzero(shown, sizeof(shown));
}

static void
do_apppass_revoke(struct web_ctx *c)
{
	const char *label = web_form_get(c->form, "label");
	char err[256];

	if (label == NULL || accounts_apppass_revoke(c->w->db, c->s->email,
	    label, err, sizeof(err)) != ACCT_OK) {
		page_apppass(c, "There is no app password with that name.", 1,
		    NULL, NULL);
		return;
	}
	log_info("web: %s app password revoked user=%s", c->ip, c->s->email);
	page_apppass(c, "The app password was revoked: it no longer works.",
	    0, NULL, NULL);
}

/* ---------------------------------------------------------------- */
/* usage */

static void
page_usage(struct web_ctx *c)
{
	struct throttle_event ev[20];
	struct usage_row u;
	struct evbuffer *b;
	const struct config *cfg = c->w->cfg;
	char when[40];
	size_t n, i;

	memset(&u, 0, sizeof(u));
	if (c->w->srv->quota != NULL)
		quota_usage(c->w->srv->quota, c->s->email, c->now, &u);
	if ((b = new_page(c, "Usage")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>Today's sending</h1>\n<table id=\"usage\">"
	    "<tr><th>Messages</th><td id=\"messages\">%lld of %d</td></tr>\n"
	    "<tr><th>Recipients</th><td id=\"recipients\">%lld of %d</td></tr>"
	    "\n</table>\n<p>The day is counted in UTC.</p>\n",
	    (long long)u.messages, cfg->daily_messages,
	    (long long)u.recipients, cfg->daily_recipients);
	n = throttle_recent_for(c->w->srv->throttle, c->s->email, ev,
	    sizeof(ev) / sizeof(ev[0]));
	evbuffer_add_printf(b, "<h2>Recent failed sign-ins</h2>\n<p>Wrong "
	    "passwords or codes for your address, on this page and from mail "
	    "apps, since the server started.</p>\n<table id=\"failures\">"
	    "<tr><th>Time</th><th>From address</th></tr>\n");
	for (i = 0; i < n; i++) {
		fmt_time(ev[i].when, when, sizeof(when));
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", when);
		html_escape(b, ev[i].addr);
		evbuffer_add_printf(b, "</td></tr>\n");
	}
	evbuffer_add_printf(b, "</table>\n");
	if (n == 0)
		evbuffer_add_printf(b, "<p>None.</p>\n");
	send_page(c, b);
}

/* ---------------------------------------------------------------- */
/* administrators */

struct admin_list {
	struct evbuffer	*b;
	const struct web_session *s;
	int		 n;
};

static int
admin_row(void *ctx, const struct account_info *ai)
{
	struct admin_list *l = ctx;

	if (l->n >= ADMIN_LIST_MAX)
		return 1;
	evbuffer_add_printf(l->b, "<tr><td>");
	html_escape(l->b, ai->email);
	evbuffer_add_printf(l->b, "</td><td>%s</td><td><form method=\"post\" "
	    "action=\"/admin/user\"><input type=\"hidden\" name=\"csrf\" "
	    "value=\"%s\"><input type=\"hidden\" name=\"email\" value=\"",
	    ai->enabled ? "enabled" : "disabled", l->s->csrf);
	html_escape(l->b, ai->email);
	evbuffer_add_printf(l->b, "\"><input type=\"hidden\" name=\"action\" "
	    "value=\"%s\"><button>%s</button></form></td></tr>\n",
	    ai->enabled ? "disable" : "enable", ai->enabled ? "Disable" :
	    "Enable");
	l->n++;
	return 0;
}

struct queue_sum {
	const char	*spool;
	unsigned long	 n, held, deferred;
	time_t		 oldest;
};

static int
queue_one(void *ctx, const struct envelope *env)
{
	struct queue_sum *q = ctx;
	struct qstate st;
	const char *state;
	int found;

	if (++q->n >= QUEUE_SCAN_MAX)
		return 1;
	if (q->oldest == 0 || env->arrival < q->oldest)
		q->oldest = env->arrival;
	if (qstate_read(q->spool, env->qid, env->nrcpts, &st, &found) < 0)
		return 0;
	state = dlv_msg_state(&st, 0);
	if (strcmp(state, "held") == 0)
		q->held++;
	else if (strcmp(state, "deferred") == 0)
		q->deferred++;
	qstate_clear(&st);
	return 0;
}

static void
page_admin(struct web_ctx *c, const char *msg, int err)
{
	struct admin_list l;
	struct queue_sum q;
	struct evbuffer *b;
	char why[256], oldest[40];

	if ((b = new_page(c, "Admin")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>Administration</h1>\n");
	msg_block(b, msg, err);
	memset(&q, 0, sizeof(q));
	q.spool = c->w->cfg->spool_dir;
	if (spool_list(c->w->cfg->spool_dir, queue_one, &q, why,
	    sizeof(why)) < 0)
		evbuffer_add_printf(b, "<p class=\"err\">The queue cannot be "
		    "read.</p>\n");
	fmt_time(q.oldest, oldest, sizeof(oldest));
	evbuffer_add_printf(b, "<h2>Queue</h2>\n<table id=\"queue\"><tr><th>"
	    "Messages</th><td id=\"qmessages\">%lu</td></tr>\n<tr><th>Deferred"
	    "</th><td>%lu</td></tr>\n<tr><th>Held</th><td>%lu</td></tr>\n<tr>"
	    "<th>Oldest</th><td>%s</td></tr></table>\n", q.n, q.deferred,
	    q.held, q.n ? oldest : "-");
	evbuffer_add_printf(b, "<h2>Accounts</h2>\n<table id=\"users\"><tr><th>"
	    "Address</th><th>Status</th><th></th></tr>\n");
	l.b = b;
	l.s = c->s;
	l.n = 0;
	if (accounts_user_list(c->w->db, admin_row, &l, why, sizeof(why)) < 0)
		log_err("web: user list: %s", why);
	evbuffer_add_printf(b, "</table>\n");
	if (l.n >= ADMIN_LIST_MAX)
		evbuffer_add_printf(b, "<p>Only the first %d accounts are shown; "
		    "use <code>outpost user list</code>.</p>\n", ADMIN_LIST_MAX);
	send_page(c, b);
}

static void
do_admin_user(struct web_ctx *c)
{
	const char *email = web_form_get(c->form, "email");
	const char *action = web_form_get(c->form, "action");
	char err[256], msg[400];
	int enable;

	if (email == NULL || action == NULL || (strcmp(action, "enable") != 0 &&
	    strcmp(action, "disable") != 0)) {
		page_admin(c, "Unknown action.", 1);
		return;
	}
	enable = strcmp(action, "enable") == 0;
	if (accounts_user_set_enabled(c->w->db, email, enable, err,
	    sizeof(err)) != ACCT_OK) {
		page_admin(c, "No such account.", 1);
		return;
	}
	log_info("web: %s admin %s %sd account %s", c->ip, c->s->email, action,
	    email);
	snprintf(msg, sizeof(msg), "%s is now %s.", email, enable ? "enabled" :
	    "disabled");
	page_admin(c, msg, 0);
}

/* ---------------------------------------------------------------- */
/* routing */

static void
not_found(struct web_ctx *c)
{
	struct evbuffer *b;

	if ((b = new_page(c, "Not found")) == NULL)
		return;
	evbuffer_add_printf(b, "<h1>Not found</h1>\n<p><a href=\"/\">Your "
	    "account</a></p>\n");
	page_end(b);
	web_reply(c, 404, "Not Found", b);
	evbuffer_free(b);
}

void
web_route(struct web_ctx *c, const char *path, int post)
{
	int authed = c->s != NULL && c->s->state == WS_AUTHED;

	if (!post && strcmp(path, "/style.css") == 0) {
		struct evbuffer *b = evbuffer_new();

		if (b == NULL) {
			evhttp_send_error(c->req, 500, NULL);
			return;
		}
		evbuffer_add(b, style, sizeof(style) - 1);
		evhttp_add_header(evhttp_request_get_output_headers(c->req),
		    "Content-Type", "text/css; charset=utf-8");
		web_reply(c, 200, "OK", b);
		evbuffer_free(b);
		return;
	}
	if (strcmp(path, "/signin") == 0) {
		if (post)
			do_signin(c);
		else if (authed)
			web_redirect(c, "/");
		else
			page_signin(c, NULL, c->s != NULL &&
			    c->s->state == WS_NEED_CODE);
		return;
	}
	if (strcmp(path, "/signin/code") == 0) {
		if (post)
			do_signin_code(c);
		else
			web_redirect(c, "/signin");
		return;
	}
	if (post && strcmp(path, "/signout") == 0) {
		if (c->s != NULL) {
			if (authed)
				log_info("web: %s sign-out user=%s", c->ip,
				    c->s->email);
			web_session_del(&c->w->sess, c->s);
			c->s = NULL;
		}
		c->clear_cookie = 1;
		web_redirect(c, "/signin");
		return;
	}
	if (!authed) {
		web_redirect(c, "/signin");
		return;
	}
	if (strcmp(path, "/") == 0 && !post)
		page_home(c);
	else if (strcmp(path, "/security") == 0 && !post)
		page_security(c, NULL, 0);
	else if (strcmp(path, "/security/2fa/start") == 0 && post)
		do_2fa_start(c);
	else if (strcmp(path, "/security/2fa/confirm") == 0 && post)
		do_2fa_confirm(c);
	else if (strcmp(path, "/security/2fa/off") == 0 && post)
		do_2fa_off(c);
	else if (strcmp(path, "/security/password") == 0 && post)
		do_password(c);
	else if (strcmp(path, "/apppasswords") == 0 && !post)
		page_apppass(c, NULL, 0, NULL, NULL);
	else if (strcmp(path, "/apppasswords/create") == 0 && post)
		do_apppass_create(c);
	else if (strcmp(path, "/apppasswords/revoke") == 0 && post)
		do_apppass_revoke(c);
	else if (strcmp(path, "/usage") == 0 && !post)
		page_usage(c);
	else if (strncmp(path, "/admin", 6) == 0 &&
	    accounts_user_admin(c->w->db, c->s->email) == 1) {
		if (strcmp(path, "/admin") == 0 && !post)
			page_admin(c, NULL, 0);
		else if (strcmp(path, "/admin/user") == 0 && post)
			do_admin_user(c);
		else
			not_found(c);
	} else
		not_found(c);
}
