/*
 * cli/oauth2 — access tokens for `auth = oauth2` accounts: the built-in
 * refresh-token grant (RFC 6749 6) against the account's token endpoint.
 *
 * Owns the access-token cache next to the refresh token:
 * REFRESH_TOKEN_FILE.access, mode 0600, one line "EXPIRY TOKEN".  A cached
 * token is used until 60 s before its expiry; otherwise the refresh token
 * is exchanged (libcurl, 20 s timeout, answer at most 64 KiB) and a
 * rotated refresh token replaces the old one (written to a temporary file
 * and renamed, 0600).  Secrets are never logged or put on a command line.
 *
 * Fails with a message naming what the endpoint said ("invalid_grant:
 * Token has been expired or revoked") so `outpost doctor` can explain it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "cli/accounts_file.h"
#include "cli/oauth2.h"

#define CO_RESP_MAX	(64 * 1024)
#define CO_SECRET_MAX	4096

/* First line of path into buf (NUL-terminated, trailing CR/LF cut). */
static int
co_read_line(const char *path, char *buf, size_t len, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		snprintf(err, errlen, "%s is empty", path);
		return -1;
	}
	return 0;
}

/* Writes text to path atomically with mode 0600. */
static int
co_write_0600(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[4200];
	size_t len = strlen(text);
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path,
	    (long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 ||
	    close(fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

struct co_buf {
	char	*p;
	size_t	 len;
};

static size_t
co_write(char *data, size_t sz, size_t n, void *arg)
{
	struct co_buf *b = arg;

	if (sz * n > CO_RESP_MAX - b->len)
		return 0;
	memcpy(b->p + b->len, data, sz * n);
	b->len += sz * n;
	return sz * n;
}

/* POSTs form to url; the JSON answer into *out.  -1 with err. */
long
cli_oauth2_post(const char *url, const char *form, json_t **out, char *err,
    size_t errlen)
{
	struct co_buf b = { NULL, 0 };
	CURL *c;
	CURLcode rc;
	long code = 0;

	*out = NULL;
	if ((b.p = malloc(CO_RESP_MAX + 1)) == NULL ||
	    (c = curl_easy_init()) == NULL) {
		free(b.p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, co_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "outpost/" OUTPOST_VERSION);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "token endpoint %s: %s", url,
		    curl_easy_strerror(rc));
		free(b.p);
		return -1;
	}
	*out = json_loadb(b.p, b.len, 0, NULL);
	sodium_memzero(b.p, b.len);
	free(b.p);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(err, errlen, "token endpoint %s: HTTP %ld, answer is "
		    "not JSON", url, code);
		return -1;
	}
	return code;
}

/* "error: description" of an OAuth2 error answer into err. */
void
cli_oauth2_explain(json_t *j, long code, char *err, size_t errlen)
{
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j,
	    "error_description"));

	snprintf(err, errlen, "the token endpoint refused (HTTP %ld): %.64s%s"
	    "%.200s%s", code, e != NULL ? e : "no error code",
	    d != NULL ? ": " : "", d != NULL ? d : "",
	    e != NULL && strcmp(e, "invalid_grant") == 0 ?
	    " (the refresh token is expired or revoked: run `outpost oauth2 "
	    "authorize` again)" : "");
}

/* Appends "&key=urlencoded(value)" to a sodium-free heap string. */
static int
co_form_add(char **form, const char *key, const char *value)
{
	char *esc, *n;
	int rc;

	if ((esc = curl_easy_escape(NULL, value, 0)) == NULL)
		return -1;
	rc = asprintf(&n, "%s%s%s=%s", *form != NULL ? *form : "",
	    *form != NULL ? "&" : "", key, esc);
	sodium_memzero(esc, strlen(esc));
	curl_free(esc);
	if (rc < 0)
		return -1;
	if (*form != NULL) {
		sodium_memzero(*form, strlen(*form));
		free(*form);
	}
	*form = n;
	return 0;
}

int
cli_oauth2_token(const struct acct *a, char *buf, size_t len, char *err,
    size_t errlen)
{
	char cache[4200], line[CO_SECRET_MAX + 32], refresh[CO_SECRET_MAX],
	    secret[1024], *form = NULL, *sp, *text = NULL;
	const char *tok, *newrt;
	json_t *j = NULL;
	long code, long_exp;
	json_int_t expires_in = 3600;
	time_t now = time(NULL);
	int rc = -1;

	if (a->oauth2_token_endpoint == NULL || a->client_id == NULL ||
	    a->refresh_token_file == NULL) {
		snprintf(err, errlen, "auth = oauth2 needs oauth2_token_command, "
		    "or oauth2_token_endpoint (or provider = gmail), client_id "
		    "and refresh_token_file (outpost oauth2 authorize)");
		return -1;
	}
	if ((size_t)snprintf(cache, sizeof(cache), "%s.access",
	    a->refresh_token_file) >= sizeof(cache)) {
		snprintf(err, errlen, "refresh_token_file path too long");
		return -1;
	}
	/* a cached access token with more than a minute left */
	if (co_read_line(cache, line, sizeof(line), err, errlen) == 0 &&
	    (sp = strchr(line, ' ')) != NULL) {
		long_exp = strtol(line, NULL, 10);
		if (long_exp > now + 60 && strlen(sp + 1) < len) {
			snprintf(buf, len, "%s", sp + 1);
			sodium_memzero(line, sizeof(line));
			return 1;
		}
	}
	sodium_memzero(line, sizeof(line));
	if (co_read_line(a->refresh_token_file, refresh, sizeof(refresh), err,
	    errlen) != 0)
		return -1;
	secret[0] = '\0';
	if (a->client_secret_file != NULL && co_read_line(
	    a->client_secret_file, secret, sizeof(secret), err, errlen) != 0)
		goto out;
	if (co_form_add(&form, "grant_type", "refresh_token") ||
	    co_form_add(&form, "refresh_token", refresh) ||
	    co_form_add(&form, "client_id", a->client_id) ||
	    (secret[0] != '\0' && co_form_add(&form, "client_secret",
	    secret))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((code = cli_oauth2_post(a->oauth2_token_endpoint, form, &j, err,
	    errlen)) < 0)
		goto out;
	tok = json_string_value(json_object_get(j, "access_token"));
	if (code != 200 || tok == NULL) {
		cli_oauth2_explain(j, code, err, errlen);
		goto out;
	}
	if (strlen(tok) >= len || strlen(tok) > CO_SECRET_MAX ||
	    strpbrk(tok, " \r\n") != NULL) {
		snprintf(err, errlen, "the token endpoint sent an unusable "
		    "access token");
		goto out;
	}
	if (json_is_integer(json_object_get(j, "expires_in")))
		expires_in = json_integer_value(json_object_get(j,
		    "expires_in"));
	if (expires_in < 0 || expires_in > 86400 * 365)
		expires_in = 0;
	snprintf(buf, len, "%s", tok);
	/* the cache is a convenience: failing to write it is no error */
	if (asprintf(&text, "%lld %s\n", (long long)now + expires_in, tok) >=
	    0) {
		char ignore[256];

		(void)co_write_0600(cache, text, ignore, sizeof(ignore));
		sodium_memzero(text, strlen(text));
		free(text);
	}
	/* RFC 6749 6: the server may rotate the refresh token */
	newrt = json_string_value(json_object_get(j, "refresh_token"));
	if (newrt != NULL && newrt[0] != '\0' && strcmp(newrt, refresh) != 0 &&
	    strlen(newrt) < CO_SECRET_MAX) {
		char rt[CO_SECRET_MAX + 2];

		snprintf(rt, sizeof(rt), "%s\n", newrt);
		if (co_write_0600(a->refresh_token_file, rt, err, errlen) != 0) {
			sodium_memzero(rt, sizeof(rt));
			goto out;
		}
		sodium_memzero(rt, sizeof(rt));
	}
	rc = 1;
out:
	json_decref(j);
	if (form != NULL) {
		sodium_memzero(form, strlen(form));
		free(form);
	}
	sodium_memzero(refresh, sizeof(refresh));
	sodium_memzero(secret, sizeof(secret));
	return rc;
}

/* ------------------------------------------------------------------ */
/* outpost oauth2 authorize -a ACCOUNT: authorization code + PKCE with a
 * loopback redirect (RFC 8252 7.3, RFC 7636). */

#include <getopt.h>
#include <poll.h>
#include <sysexits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/evp.h>

#include "cli/cli.h"

#define CO_REQ_MAX	8192
#define CO_REQS_MAX	50	/* requests served before giving up */

static void
co_b64url(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0;

	for (i = 0; i < len && o + 2 < outlen; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6 && o + 1 < outlen) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0 && o + 1 < outlen)
		out[o++] = tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Value of key in an urlencoded query (decoded into out), or -1. */
static int
co_query(const char *q, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	const char *p = q;

	while (p != NULL && *p != '\0') {
		size_t vl = strcspn(p, "&");

		if (vl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			int dl = 0;
			char *d = curl_easy_unescape(NULL, p + kl + 1,
			    (int)(vl - kl - 1), &dl);

			if (d == NULL || (size_t)dl >= outlen ||
			    memchr(d, '\0', (size_t)dl) != NULL) {
				curl_free(d);
				return -1;
			}
			memcpy(out, d, (size_t)dl);
			out[dl] = '\0';
			curl_free(d);
			return 0;
		}
		p = p[vl] == '&' ? p + vl + 1 : NULL;
	}
	return -1;
}

static void
co_http_reply(int fd, const char *status, const char *body)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\nContent-Length: %zu\r\nConnection: "
	    "close\r\n\r\n%s", status, strlen(body), body);

	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!write(fd, buf, (size_t)n);
}

/* Waits for the redirect; the code into code.  0, or -1 with err. */
static int
co_wait_code(int lfd, const char *state, int timeout, char *code,
    size_t codelen, char *err, size_t errlen)
{
	time_t end = time(NULL) + timeout;
	int served;

	for (served = 0; served < CO_REQS_MAX; served++) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		char req[CO_REQ_MAX + 1], got[256], e[256], *q, *sp;
		size_t have = 0;
		long left = (long)(end - time(NULL));
		int fd, r;

		if (left <= 0 || poll(&pfd, 1, (int)left * 1000) <= 0) {
			snprintf(err, errlen, "no answer from the browser "
			    "within %d s", timeout);
			return -1;
		}
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		/* one request head, bounded in size and time */
		while (have < CO_REQ_MAX && memmem(req, have, "\r\n\r\n",
		    4) == NULL) {
			struct pollfd cp = { fd, POLLIN, 0 };
			ssize_t n;

			if (poll(&cp, 1, 10000) <= 0 ||
			    (n = read(fd, req + have, CO_REQ_MAX - have)) <= 0)
				break;
			have += (size_t)n;
		}
		req[have] = '\0';
		if (strncmp(req, "GET /", 5) != 0 ||
		    (sp = strchr(req + 4, ' ')) == NULL) {
			co_http_reply(fd, "400 Bad Request", "bad request\n");
			close(fd);
			continue;
		}
		*sp = '\0';
		q = strchr(req + 4, '?');
		if (q == NULL) {	/* /favicon.ico and friends */
			co_http_reply(fd, "404 Not Found", "not found\n");
			close(fd);
			continue;
		}
		q++;
		if (co_query(q, "state", got, sizeof(got)) != 0 ||
		    strcmp(got, state) != 0) {
			co_http_reply(fd, "400 Bad Request",
			    "outpost: wrong or missing state\n");
			close(fd);
			continue;
		}
		if (co_query(q, "error", e, sizeof(e)) == 0) {
			co_http_reply(fd, "200 OK", "outpost: authorization "
			    "refused; see the terminal.\n");
			close(fd);
			snprintf(err, errlen, "the authorization server said: "
			    "%s", e);
			return -1;
		}
		r = co_query(q, "code", code, codelen);
		co_http_reply(fd, r == 0 ? "200 OK" : "400 Bad Request", r == 0 ?
		    "outpost: authorized. You can close this window.\n" :
		    "outpost: no code in the redirect\n");
		close(fd);
		if (r == 0)
			return 0;
	}
	snprintf(err, errlen, "too many requests on the redirect listener");
	return -1;
}

static const char co_usage[] =
"usage: outpost oauth2 authorize -a ACCOUNT [--accounts FILE] [--timeout S]\n";

int
cli_oauth2(int argc, char **argv, const struct config *cfg)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ "accounts", required_argument, NULL, 'A' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct acct a;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	unsigned char rnd[32], dig[32];
	unsigned int dl = sizeof(dig);
	char apath[4096], err[1024], verifier[64], challenge[64], state[32],
	    redirect[64], code[2048], secret[1024], *url = NULL, *form = NULL,
	    *text = NULL;
	const char *account = NULL, *accounts = NULL, *rt, *at;
	json_t *j = NULL;
	int ch, n, lfd = -1, timeout = 300, rc = EX_SOFTWARE;
	long http;

	(void)cfg;
	acct_init(&a);
	secret[0] = '\0';
	if (argc < 2 || strcmp(argv[1], "authorize") != 0) {
		fputs(co_usage, stderr);
		return EX_USAGE;
	}
	argc--;
	argv++;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "a:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': account = optarg; break;
		case 'A': accounts = optarg; break;
		case 'T':
			timeout = atoi(optarg);
			if (timeout < 1 || timeout > 3600) {
				fputs("outpost: --timeout is 1-3600 s\n", stderr);
				return EX_USAGE;
			}
			break;
		case 'h': fputs(co_usage, stdout); return EX_OK;
		default: fputs(co_usage, stderr); return EX_USAGE;
		}
	}
	if (account == NULL || optind != argc) {
		fputs(co_usage, stderr);
		return EX_USAGE;
	}
	if (accounts == NULL && acct_file_path(apath, sizeof(apath)) == 0)
		accounts = apath;
	n = accounts != NULL ? acct_file_load(accounts, account, &a, err,
	    sizeof(err)) : 1;
	if (n != 0 || acct_finish(&a, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpost: %s\n", n == 1 ? "no accounts file" :
		    err);
		rc = EX_CONFIG;
		goto out;
	}
	if (a.oauth2_auth_endpoint == NULL || a.oauth2_token_endpoint == NULL ||
	    a.client_id == NULL || a.refresh_token_file == NULL) {
		fprintf(stderr, "outpost: account %s needs auth = oauth2, "
		    "oauth2_auth_endpoint and oauth2_token_endpoint (or "
		    "provider = gmail), client_id and refresh_token_file\n",
		    account);
		rc = EX_CONFIG;
		goto out;
	}
	if (a.client_secret_file != NULL && co_read_line(a.client_secret_file,
	    secret, sizeof(secret), err, sizeof(err)) != 0) {
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_CONFIG;
		goto out;
	}
	/* PKCE S256 and the state */
	randombytes_buf(rnd, sizeof(rnd));
	co_b64url(rnd, sizeof(rnd), verifier, sizeof(verifier));
	if (EVP_Digest(verifier, strlen(verifier), dig, &dl, EVP_sha256(),
	    NULL) != 1)
		goto out;
	co_b64url(dig, dl, challenge, sizeof(challenge));
	randombytes_buf(rnd, 16);
	co_b64url(rnd, 16, state, sizeof(state));
	/* the loopback listener (RFC 8252 7.3: any port) */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
		fprintf(stderr, "outpost: loopback listener: %s\n",
		    strerror(errno));
		rc = EX_OSERR;
		goto out;
	}
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u/",
	    (unsigned)ntohs(sin.sin_port));
	if (co_form_add(&url, "response_type", "code") ||
	    co_form_add(&url, "client_id", a.client_id) ||
	    co_form_add(&url, "redirect_uri", redirect) ||
	    co_form_add(&url, "scope", a.oauth2_scope != NULL ?
	    a.oauth2_scope : "") ||
	    co_form_add(&url, "state", state) ||
	    co_form_add(&url, "code_challenge", challenge) ||
	    co_form_add(&url, "code_challenge_method", "S256") ||
	    /* Google: a refresh token only with offline access + consent */
	    co_form_add(&url, "access_type", "offline") ||
	    co_form_add(&url, "prompt", "consent"))
		goto out;
	printf("Open this URL in a browser and allow access:\n\n%s%s%s\n\n"
	    "Waiting for the redirect to %s (at most %d s)...\n",
	    a.oauth2_auth_endpoint, strchr(a.oauth2_auth_endpoint, '?') ?
	    "&" : "?", url, redirect, timeout);
	fflush(stdout);
	if (co_wait_code(lfd, state, timeout, code, sizeof(code), err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (co_form_add(&form, "grant_type", "authorization_code") ||
	    co_form_add(&form, "code", code) ||
	    co_form_add(&form, "redirect_uri", redirect) ||
	    co_form_add(&form, "client_id", a.client_id) ||
	    co_form_add(&form, "code_verifier", verifier) ||
	    (secret[0] != '\0' && co_form_add(&form, "client_secret",
	    secret)))
		goto out;
	if ((http = cli_oauth2_post(a.oauth2_token_endpoint, form, &j, err,
	    sizeof(err))) < 0) {
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_UNAVAILABLE;
		goto out;
	}
	rt = json_string_value(json_object_get(j, "refresh_token"));
	at = json_string_value(json_object_get(j, "access_token"));
	if (http != 200 || rt == NULL || rt[0] == '\0' ||
	    strlen(rt) >= CO_SECRET_MAX || strpbrk(rt, "\r\n") != NULL) {
		if (http == 200)
			snprintf(err, sizeof(err), "the token endpoint sent no "
			    "refresh token");
		else
			cli_oauth2_explain(j, http, err, sizeof(err));
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_NOPERM;
		goto out;
	}
	if (asprintf(&text, "%s\n", rt) < 0 ||
	    co_write_0600(a.refresh_token_file, text, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_CANTCREAT;
		goto out;
	}
	/* a fresh access token too, so the next send needs no refresh */
	if (at != NULL && strpbrk(at, " \r\n") == NULL &&
	    json_is_integer(json_object_get(j, "expires_in"))) {
		char cache[4200], *line = NULL;

		if ((size_t)snprintf(cache, sizeof(cache), "%s.access",
		    a.refresh_token_file) < sizeof(cache) &&
		    asprintf(&line, "%lld %s\n", (long long)time(NULL) +
		    (long long)json_integer_value(json_object_get(j,
		    "expires_in")), at) >= 0) {
			(void)co_write_0600(cache, line, err, sizeof(err));
			sodium_memzero(line, strlen(line));
		}
		free(line);
	}
	printf("Authorized: refresh token stored in %s (mode 0600).\n",
	    a.refresh_token_file);
	rc = EX_OK;
out:
	if (lfd != -1)
		close(lfd);
	if (text != NULL) {
		sodium_memzero(text, strlen(text));
		free(text);
	}
	if (form != NULL) {
		sodium_memzero(form, strlen(form));
		free(form);
	}
	free(url);
	json_decref(j);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(code, sizeof(code));
	sodium_memzero(verifier, sizeof(verifier));
	acct_free(&a);
	return rc;
}

/* ------------------------------------------------------------------ */
/* outpost doctor: why was a token refused? */

#include "auth/oauth2.h"

void
cli_oauth2_diagnose(const char *token, const char *user,
    const char *server_text, char *out, size_t outlen)
{
	const char *d1 = strchr(token, '.'), *d2, *email, *sub, *scope = NULL;
	unsigned char body[8192];
	char need[256] = "";
	const char *p;
	long n;
	json_t *j = NULL, *sc;
	long long exp = 0;
	time_t now = time(NULL);

	/* the scope the server wants, from its JSON error */
	if ((p = strstr(server_text, "\"scope\":\"")) != NULL) {
		p += 9;
		snprintf(need, sizeof(need), "%.*s", (int)strcspn(p, "\""), p);
	}
	if (strstr(server_text, "insufficient_scope") != NULL) {
		snprintf(out, outlen, "the token lacks the scope the server "
		    "requires (%s): authorize again with that scope "
		    "(oauth2_scope)", need[0] ? need : "see the server's "
		    "required_scope");
		return;
	}
	if (d1 == NULL || (d2 = strchr(d1 + 1, '.')) == NULL ||
	    (n = oauth2_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), body,
	    sizeof(body) - 1)) <= 0 ||
	    (j = json_loadb((const char *)body, (size_t)n, 0, NULL)) == NULL) {
		snprintf(out, outlen, "invalid_token: the server refused the "
		    "token (expired, revoked, for another audience or user); "
		    "get a new one (outpost oauth2 authorize -a ACCOUNT)");
		return;
	}
	/* a JWT: read (not verify) its claims to say which check failed */
	if (json_is_number(json_object_get(j, "exp")))
		exp = (long long)json_number_value(json_object_get(j, "exp"));
	email = json_string_value(json_object_get(j, "email"));
	sub = json_string_value(json_object_get(j, "sub"));
	sc = json_object_get(j, "scope");
	if (sc == NULL)
		sc = json_object_get(j, "scp");
	scope = json_string_value(sc);
	if (exp != 0 && exp <= (long long)now)
		snprintf(out, outlen, "invalid_token: the token expired %lld s "
		    "ago; get a fresh one (a refresh, or outpost oauth2 "
		    "authorize -a ACCOUNT)", (long long)now - exp);
	else if (email != NULL && strcasecmp(email, user) != 0 &&
	    (sub == NULL || strcasecmp(sub, user) != 0))
		snprintf(out, outlen, "invalid_token: the token is for %.100s, "
		    "not for %.100s: log in as the token's user or authorize "
		    "the right account", email, user);
	else if (need[0] != '\0' && scope != NULL &&
	    strstr(scope, need) == NULL)
		snprintf(out, outlen, "invalid_token: the token's scope "
		    "(%.100s) lacks %.100s", scope, need);
	else
		snprintf(out, outlen, "invalid_token: the token looks current "
		    "and is for %.100s, so the server refused its issuer, "
		    "audience or signature, or the account is unknown or "
		    "disabled there", email != NULL ? email : user);
	json_decref(j);
}
