/*
 * init — `outpost init DIR`: writes a working local setup into DIR.
 *
 *   DIR/outpost.conf                      commented INI (loads with config_load)
 *   DIR/tls/ca.key, ca.crt                local CA, EC P-256, 10 years
 *   DIR/tls/server.key, server.crt        EC P-256, 825 days, signed by the CA
 *   DIR/data/                 (0700)      account database, spool/
 *   DIR/data/dkim/DOMAIN/mail-ed.ed25519.key, mail-rsa.rsa.key  DKIM keys (PKCS#8)
 *
 * Keys are 0600, certificates 0644.  All keys and certificates are made in
 * memory before anything is written; files are created with O_EXCL, and
 * outpost.conf is written last, so "DIR/outpost.conf exists" means a
 * complete setup.  On any failure everything this run created is removed
 * again and the command exits non-zero with one line on stderr.
 *
 * Defaults when options are missing: the host name is gethostname() when it
 * is fully qualified, else mail.DOMAIN when --domain is given, else
 * "localhost"; the domain is the host name minus its first label when that
 * still has a dot, else "example.test" (a reserved name, RFC 2606, so a
 * forgotten --domain can never sign mail as someone else's domain).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "cli/pki.h"
#include "tls/tls.h"
#include "util/config.h"

#define INIT_CA_DAYS		3650
#define INIT_SERVER_DAYS	825	/* the CA/B limit browsers and Apple enforce */
#define INIT_SELECTOR		"mail"	/* [dkim] selector: the base name */
/* Distinct selectors per algorithm: two TXT records at one name make
 * verifiers pick one at random and fail half the time. */
#define INIT_SELECTOR_ED	INIT_SELECTOR "-ed"
#define INIT_SELECTOR_RSA	INIT_SELECTOR "-rsa"
#define INIT_DEFAULT_DOMAIN	"example.test"
#define INIT_SUBMISSION		"127.0.0.1:2587"
#define INIT_SUBMISSIONS	"127.0.0.1:2465"
#define INIT_ACCOUNT_PAGE	"127.0.0.1:2443"
#define INIT_NAME_MAX		254
#define INIT_UNDO_MAX		24
#define INIT_TXT_MAX		2048

struct init_opts {
	const char	*dir;
	char		 hostname[INIT_NAME_MAX];
	char		 domain[INIT_NAME_MAX];
	const char	*submission;
	const char	*submissions;
};

/* What this run created, removed in reverse order if a later step fails. */
struct init_undo {
	char	*path[INIT_UNDO_MAX];
	int	 isdir[INIT_UNDO_MAX];
	int	 n;
};

struct init_keys {
	EVP_PKEY	*ca_key, *srv_key, *dkim_ed, *dkim_rsa;
	X509		*ca, *srv;
	char		 txt_ed[INIT_TXT_MAX];	/* quoted, ready for a zone */
	char		 txt_rsa[INIT_TXT_MAX];
};

static void
init_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: outpost init DIR [--hostname H] [--domain D]\n"
	    "                        [--submission ADDR:PORT] "
	    "[--submissions ADDR:PORT]\n"
	    "\n"
	    "Writes a working setup into DIR: outpost.conf, a local CA and a "
	    "server\ncertificate in DIR/tls/, DKIM keys and DIR/data/.\n"
	    "  --hostname H     server name (default: this machine's name "
	    "if fully\n"
	    "                   qualified, else mail.DOMAIN, else localhost)\n"
	    "  --domain D       mail domain (default: the host name minus its "
	    "first\n"
	    "                   label, else example.test)\n"
	    "  --submission A   STARTTLS listener (default " INIT_SUBMISSION
	    ")\n"
	    "  --submissions A  implicit-TLS listener (default "
	    INIT_SUBMISSIONS ")\n");
}

/* Copies a DNS name lowercased; rejects anything that is not one. */
static int
init_set_name(char *dst, const char *src, const char *what)
{
	size_t	 i, len;

	len = strlen(src);
	if (len >= INIT_NAME_MAX || !pki_valid_dnsname(src)) {
		fprintf(stderr, "outpost: invalid %s \"%.*s\": use letters, "
		    "digits, hyphens and dots, like mail.example.org\n", what,
		    (int)(len > 80 ? 80 : len), src);
		return -1;
	}
	for (i = 0; i <= len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	return 0;
}

/*
 * ADDR:PORT as the config takes it: "127.0.0.1:2587", "[::1]:587",
 * "*:587", "host.example:587".  Checked here so that nothing odd ends up
 * in outpost.conf (the value is written into it verbatim).
 */
static int
init_valid_listen(const char *s)
{
	const char	*colon, *p;
	size_t		 hlen;
	long		 port;
	char		*end;

	if (s == NULL || strlen(s) > 300 || (colon = strrchr(s, ':')) == NULL)
		return 0;
	hlen = (size_t)(colon - s);
	if (hlen == 0)
		return 0;
	if (s[0] == '[') {
		if (hlen < 3 || s[hlen - 1] != ']')
			return 0;
		for (p = s + 1; p < s + hlen - 1; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return 0;
	} else if (!(hlen == 1 && s[0] == '*')) {
		for (p = s; p < colon; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' &&
			    *p != '-')
				return 0;
	}
	if (!isdigit((unsigned char)colon[1]))
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

/* This machine's name when it is fully qualified (has a dot). */
static int
init_fqdn(char *host, size_t len)
{
	if (gethostname(host, len) != 0)
		return -1;
	host[len - 1] = '\0';	/* not terminated when truncated */
	if (strchr(host, '.') == NULL || !pki_valid_dnsname(host))
		return -1;
	return 0;
}

static int
init_parse(int argc, char **argv, struct init_opts *o)
{
	const char	*opt, *val, *hostname = NULL, *domain = NULL;
	char		 host[HOST_NAME_MAX + 1];
	const char	*dot;
	size_t		 olen;
	int		 i;

	memset(o, 0, sizeof(*o));
	o->submission = INIT_SUBMISSION;
	o->submissions = INIT_SUBMISSIONS;

	for (i = 1; i < argc; i++) {
		opt = argv[i];
		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			init_usage(stdout);
			return 1;
		}
		if (strncmp(opt, "--", 2) != 0) {
			if (o->dir != NULL) {
				fprintf(stderr, "outpost: init takes one "
				    "directory, got \"%s\" and \"%s\"\n",
				    o->dir, opt);
				return -1;
			}
			o->dir = opt;
			continue;
		}
		/* --name VALUE or --name=VALUE */
		if ((val = strchr(opt, '=')) != NULL) {
			olen = (size_t)(val - opt);
			val++;
		} else {
			olen = strlen(opt);
			if (i + 1 >= argc) {
				fprintf(stderr, "outpost: %s needs a value\n",
				    opt);
				return -1;
			}
			val = argv[++i];
		}
#define OPT_IS(name) (olen == sizeof(name) - 1 && \
	    strncmp(opt, name, olen) == 0)
		if (OPT_IS("--hostname"))
			hostname = val;
		else if (OPT_IS("--domain"))
			domain = val;
		else if (OPT_IS("--submission"))
			o->submission = val;
		else if (OPT_IS("--submissions"))
			o->submissions = val;
		else {
			fprintf(stderr, "outpost: init: unknown option "
			    "\"%.*s\"; see outpost init --help\n",
			    (int)(olen > 80 ? 80 : olen), opt);
			return -1;
		}
#undef OPT_IS
	}
	if (o->dir == NULL || *o->dir == '\0') {
		init_usage(stderr);
		return -1;
	}
	if (strlen(o->dir) > PATH_MAX - 64 || strchr(o->dir, '\n') != NULL) {
		fprintf(stderr, "outpost: directory name too long or odd\n");
		return -1;
	}
	if (!init_valid_listen(o->submission) ||
	    !init_valid_listen(o->submissions)) {
		fprintf(stderr, "outpost: listen addresses look like "
		    "127.0.0.1:2587, [::1]:587 or *:587\n");
		return -1;
	}
	if (strcmp(o->submission, o->submissions) == 0) {
		fprintf(stderr, "outpost: --submission and --submissions "
		    "cannot both listen on %s\n", o->submission);
		return -1;
	}

	if (domain != NULL && init_set_name(o->domain, domain, "domain") == -1)
		return -1;
	if (hostname != NULL) {
		if (init_set_name(o->hostname, hostname, "host name") == -1)
			return -1;
	} else if (init_fqdn(host, sizeof(host)) == 0) {
		if (init_set_name(o->hostname, host, "host name") == -1)
			return -1;
	} else if (domain != NULL) {
		if ((size_t)snprintf(o->hostname, sizeof(o->hostname),
		    "mail.%s", o->domain) >= sizeof(o->hostname) ||
		    !pki_valid_dnsname(o->hostname)) {
			fprintf(stderr, "outpost: domain too long\n");
			return -1;
		}
	} else
		snprintf(o->hostname, sizeof(o->hostname), "localhost");

	if (domain == NULL) {
		dot = strchr(o->hostname, '.');
		if (dot != NULL && strchr(dot + 1, '.') != NULL)
			snprintf(o->domain, sizeof(o->domain), "%s", dot + 1);
		else
			snprintf(o->domain, sizeof(o->domain), "%s",
			    INIT_DEFAULT_DOMAIN);
	}
	/* The certificate's CN has an upper bound of 64 (RFC 5280 A.1). */
	if (strlen(o->hostname) > 64) {
		fprintf(stderr, "outpost: host name longer than 64 bytes; "
		    "pick a shorter one with --hostname\n");
		return -1;
	}
	return 0;
}

/* DIR/rel into buf; -1 when it does not fit. */
static int
init_path(char *buf, size_t len, const char *dir, const char *rel)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "outpost: path too long: %s/%s\n", dir, rel);
		return -1;
	}
	return 0;
}

static int
init_undo_add(struct init_undo *u, const char *path, int isdir)
{
	if (u->n >= INIT_UNDO_MAX || (u->path[u->n] = strdup(path)) == NULL)
		return -1;
	u->isdir[u->n++] = isdir;
	return 0;
}

static void
init_undo_run(struct init_undo *u, int remove)
{
	while (u->n > 0) {
		u->n--;
		if (remove) {
			if (u->isdir[u->n])
				rmdir(u->path[u->n]);
			else
				unlink(u->path[u->n]);
		}
		free(u->path[u->n]);
	}
}

/* Creates dir with exactly mode; an existing directory is fine and kept
 * as it is (the operator may have made DIR beforehand). */
static int
init_mkdir(struct init_undo *u, const char *path, mode_t mode)
{
	struct stat	 st;

	if (mkdir(path, mode) == 0) {
		if (init_undo_add(u, path, 1) == -1) {
			rmdir(path);
			fprintf(stderr, "outpost: out of memory\n");
			return -1;
		}
		/* mkdir's mode is filtered by the umask; set it exactly. */
		if (chmod(path, mode) == -1) {
			fprintf(stderr, "outpost: cannot set the mode of %s: "
			    "%s\n", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fprintf(stderr, "outpost: cannot create directory %s: %s\n", path,
	    errno == EEXIST ? "a file of that name exists" : strerror(errno));
	return -1;
}

static int
init_write_key(struct init_undo *u, const char *dir, const char *rel,
    EVP_PKEY *key)
{
	char	 path[PATH_MAX], err[512];

	if (init_path(path, sizeof(path), dir, rel) == -1)
		return -1;
	if (pki_write_key(path, key, 0600, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		return -1;
	}
	if (init_undo_add(u, path, 0) == -1) {
		unlink(path);
		return -1;
	}
	return 0;
}

static int
init_write_cert(struct init_undo *u, const char *dir, const char *rel,
    X509 *cert)
{
	char	 path[PATH_MAX], err[512];

	if (init_path(path, sizeof(path), dir, rel) == -1)
		return -1;
	if (pki_write_cert(path, cert, 0644, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		return -1;
	}
	if (init_undo_add(u, path, 0) == -1) {
		unlink(path);
		return -1;
	}
	return 0;
}

static void
init_keys_free(struct init_keys *k)
{
	EVP_PKEY_free(k->ca_key);
	EVP_PKEY_free(k->srv_key);
	EVP_PKEY_free(k->dkim_ed);
	EVP_PKEY_free(k->dkim_rsa);
	X509_free(k->ca);
	X509_free(k->srv);
	memset(k, 0, sizeof(*k));
}

static int
init_dkim_txt(EVP_PKEY *key, char *out, size_t outlen)
{
	char	 value[INIT_TXT_MAX], err[512];

	if (pki_dkim_txt_value(key, value, sizeof(value), err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		return -1;
	}
	if (pki_txt_quote(value, out, outlen) == -1) {
		fprintf(stderr, "outpost: DKIM record too long\n");
		return -1;
	}
	return 0;
}

/* Makes every key and certificate in memory, before touching the disk. */
static int
init_make_keys(const struct init_opts *o, struct init_keys *k)
{
	char	 err[1024], cn[64], rnd[3];
	int	 n;

	memset(k, 0, sizeof(*k));
	if ((k->ca_key = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err))) ==
	    NULL ||
	    (k->srv_key = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err))) ==
	    NULL ||
	    (k->dkim_ed = pki_key_new(PKI_KEY_ED25519, err, sizeof(err))) ==
	    NULL ||
	    (k->dkim_rsa = pki_key_new(PKI_KEY_RSA2048, err, sizeof(err))) ==
	    NULL)
		goto fail;

	/* A random tag keeps CAs from two setups apart in a trust store
	 * that holds both (same subject, different keys confuses tools). */
	if (RAND_bytes((unsigned char *)rnd, sizeof(rnd)) != 1) {
		snprintf(err, sizeof(err), "no randomness");
		goto fail;
	}
	n = snprintf(cn, sizeof(cn), "outpost local CA %02x%02x%02x",
	    (unsigned char)rnd[0], (unsigned char)rnd[1],
	    (unsigned char)rnd[2]);
	if (n < 0 || (size_t)n >= sizeof(cn))
		goto fail;
	if ((k->ca = pki_ca_new(k->ca_key, cn, o->domain, INIT_CA_DAYS, err,
	    sizeof(err))) == NULL)
		goto fail;
	if ((k->srv = pki_server_cert_new(k->srv_key, k->ca, k->ca_key,
	    o->hostname, INIT_SERVER_DAYS, err, sizeof(err))) == NULL)
		goto fail;
	if (init_dkim_txt(k->dkim_ed, k->txt_ed, sizeof(k->txt_ed)) == -1 ||
	    init_dkim_txt(k->dkim_rsa, k->txt_rsa, sizeof(k->txt_rsa)) == -1) {
		init_keys_free(k);
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "outpost: %s\n", err);
	init_keys_free(k);
	return -1;
}

/*
 * The configuration text.  Keys the setup depends on are set; the rest
 * are commented out with their defaults so the file doubles as a
 * reference.  Returns a malloc'd string or NULL.
 */
/*
 * The [local] socket block: on, as run/outpost.sock, unless that path
 * would not fit a unix socket address (107 bytes), then shown commented
 * out with the reason.  Every "# key = value" line in it is a valid
 * value (init_test uncomments them all).
 */
static const char *
init_local_block(const struct init_opts *o, char *buf, size_t len)
{
	char	*cwd = NULL;
	size_t	 n;
	int	 fits;

	n = strlen(o->dir) + strlen("/run/outpost.sock");
	if (o->dir[0] != '/') {
		if ((cwd = getcwd(NULL, 0)) == NULL)
			n = SIZE_MAX / 2;
		else
			n += strlen(cwd) + 1;
		free(cwd);
	}
	fits = n <= 107;
	snprintf(buf, len,
"# Local submission for `outpost sendmail` without an accounts file (user\n"
"# crontabs, PHP as www-data): a unix socket anyone on this machine may\n"
"# use (mode 0666).  The caller's uid is its identity: it sends as\n"
"# LOGIN@qualify_domain (default: the [server] domain) and as nothing\n"
"# else; root may send as anyone.  In production put the socket in a\n"
"# directory of its own, e.g. /run/outpost/outpost.sock.%s\n"
"%s[local]\n"
"%ssocket = %s\n"
"# qualify_domain = %s\n"
"\n", fits ? "  Remove the\n# section to turn it off." :
	    "\n# Off: DIR/run/outpost.sock is too long for a unix socket.",
	    fits ? "" : "# ", fits ? "" : "# ",
	    fits ? "run/outpost.sock" : "/run/outpost/outpost.sock", o->domain);
	return buf;
}

static char *
init_conf_text(const struct init_opts *o)
{
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*fp;
	char		 date[32], local[1024];
	time_t		 now = time(NULL);
	struct tm	 tm;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
		snprintf(date, sizeof(date), "today");
	if ((fp = open_memstream(&text, &len)) == NULL)
		return NULL;
	fprintf(fp,
"# outpost.conf — written by `outpost init` on %s.\n"
"#\n"
"# INI format: [section], key = value, comments start with # or ;.\n"
"# Durations take a unit (30s, 5m, 4h, 5d); sizes take K, M or G.\n"
"# Relative paths are relative to the directory of this file.\n"
"# Lines starting with \"# key =\" show the built-in default; remove\n"
"# the \"# \" to change one.  Unknown keys are errors.  Check with\n"
"#   outpostd -c outpost.conf --check-config\n"
"# See outpost.conf(5) for every key.\n"
"\n"
"[server]\n"
"# The name in the greeting, in EHLO and Received: headers, and in the\n"
"# TLS certificate (tls/server.crt is made for it).  Clients connect to\n"
"# this name.\n"
"hostname = %s\n"
"# The domain mail is sent for; DKIM signatures use d=%s.\n"
"domain = %s\n"
"# Account database, spool and DKIM keys (data/dkim/DOMAIN/SELECTOR.*.key).\n"
"data_dir = data\n"
"# Event-loop threads; 0 = one per CPU core.\n"
"# workers = 0\n"
"# Appended to authentication errors: \"For more information, go to URL\".\n"
"# help_url = https://%s/help/smtp\n"
"# Show the authenticated login in Received: headers.\n"
"# received_show_user = no\n"
"\n"
"# Message submission, port 587 style (RFC 6409): plaintext greeting,\n"
"# STARTTLS required before AUTH and MAIL.  Production: listen = *:587\n"
"[listener submission]\n"
"listen = %s\n"
"tls = starttls\n"
"\n"
"# Submission over TLS, port 465 style (RFC 8314): TLS from the first\n"
"# byte.  Production: listen = *:465\n"
"[listener submissions]\n"
"listen = %s\n"
"tls = implicit\n"
"\n"
"%s"
"# The account page (HTTPS, same certificate): people sign in, turn on\n"
"# 2-Step Verification and make their own app passwords.  Delete the\n"
"# section to turn it off.\n"
"[account_page]\n"
"listen = " INIT_ACCOUNT_PAGE "\n"
"# session_idle = 15m\n"
"# session_lifetime = 8h\n"
"\n"
"[tls]\n"
"# Certificate chain (PEM, server certificate first) and its key.  Made\n"
"# by outpost init and signed by the local CA; put a public CA's\n"
"# certificate here (e.g. Let's Encrypt) for clients you do not control.\n"
"# SIGHUP reloads them.\n"
"cert = tls/server.crt\n"
"key = tls/server.key\n"
"# The local CA that signed cert; clients verify the server with it.\n"
"ca = tls/ca.crt\n"
"# TLS 1.2 ciphers (OpenSSL names) and TLS 1.3 suites; the defaults are\n"
"# Mozilla's \"intermediate\" profile.  TLS 1.0 and 1.1 are never offered.\n"
"# ciphers = " TLS_DEFAULT_CIPHERS "\n"
"# ciphersuites = " TLS_DEFAULT_SUITES "\n"
"\n"
"[accounts]\n"
"# Accounts, app passwords and aliases (SQLite).\n"
"# database = data/accounts.db\n"
"# Manage them with: outpost -c outpost.conf user add you@%s\n"
"# Argon2id cost for password hashes (libsodium \"interactive\" limits).\n"
"# argon2_opslimit = 2\n"
"# argon2_memlimit = 64M\n"
"# Password-hashing threads; 0 = one per CPU core.\n"
"# auth_threads = 0\n"
"\n"
"[spool]\n"
"# dir = data/spool\n"
"# Below this much free disk space,\n"
"# MAIL is answered 452 4.3.1 instead of accepting mail it cannot keep.\n"
"# min_free_space = 100M\n"
"\n"
"[limits]\n"
"# Gmail-like defaults.\n"
"# max_message_size = 35M\n"
"# max_recipients = 100\n"
"# idle_timeout = 5m\n"
"# data_timeout = 10m\n"
"# max_connections = 20000\n"
"# max_connections_per_ip = 20\n"
"# max_errors = 20\n"
"# max_received = 50\n"
"# min_data_rate = 1024\n"
"# daily_messages = 2000\n"
"# daily_recipients = 10000\n"
"# auth_failures = 10\n"
"# auth_failure_window = 10m\n"
"\n"
"[delivery]\n"
"# Without a smarthost, mail goes straight to each domain's MX on port 25.\n"
"# To relay everything through a provider instead:\n"
"# smarthost = smtp.gmail.com:587\n"
"# smarthost_tls = starttls\n"
"# smarthost_user = you@gmail.com\n"
"# smarthost_password_file = /etc/outpost/smarthost.password\n"
"# DNS resolver to ask (default: /etc/resolv.conf).\n"
"# dns = 127.0.0.1:53\n"
"# port = 25\n"
"# opportunistic: use STARTTLS when offered; required: never send in clear.\n"
"# tls = opportunistic\n"
"# retry_interval = 5m\n"
"# max_retry_interval = 4h\n"
"# queue_lifetime = 5d\n"
"# delay_warning = 4h\n"
"\n"
"[dkim]\n"
"# Keys: data/dkim/%s/%s.ed25519.key and %s.rsa.key, found by name at\n"
"# start and on SIGHUP (both: two signatures).  Publish the TXT records\n"
"# that `outpost dkim show %s` prints.  selector is the base of the names\n"
"# that `outpost dkim keygen` picks (%s-ed, %s-rsa).\n"
"selector = %s\n"
"# Signature lifetime (x= tag); 0, the default, means none.\n"
"# expire = 7d\n"
"\n"
"# OAuth2 bearer tokens for XOAUTH2 / OAUTHBEARER (off unless set):\n"
"# [oauth2]\n"
"# issuer = https://accounts.example.test\n"
"# audience = smtp\n"
"# jwks_file = /etc/outpost/jwks.json\n"
"# required_scope = https://mail.google.com/\n"
"# user_claim = email\n"
"\n"
"[log]\n"
"# err, warn, info or debug.  Lines go to stderr.\n"
"level = info\n"
"# syslog = no\n",
	    date, o->hostname, o->domain, o->domain, o->hostname,
	    o->submission, o->submissions,
	    init_local_block(o, local, sizeof(local)), o->domain,
	    o->domain, INIT_SELECTOR_ED, INIT_SELECTOR_RSA, o->domain,
	    INIT_SELECTOR, INIT_SELECTOR, INIT_SELECTOR);
	if (ferror(fp)) {
		fclose(fp);
		free(text);
		return NULL;
	}
	if (fclose(fp) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int
init_write_conf(struct init_undo *u, const char *path, const char *text)
{
	size_t	 len = strlen(text), off = 0;
	ssize_t	 n;
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		fprintf(stderr, "outpost: cannot create %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (init_undo_add(u, path, 0) == -1) {
		close(fd);
		unlink(path);
		return -1;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "outpost: cannot write %s: %s\n", path,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Creates directories and files; records each in u for rollback. */
static int
init_write_all(const struct init_opts *o, const struct init_keys *k,
    struct init_undo *u)
{
	char		 path[PATH_MAX], rel[PATH_MAX], err[1024];
	char		*text;
	struct config	 cfg;
	int		 rc;

	if (init_mkdir(u, o->dir, 0755) == -1)
		return -1;
	if (init_path(path, sizeof(path), o->dir, "tls") == -1 ||
	    init_mkdir(u, path, 0755) == -1)
		return -1;
	/* Only the daemon's user may read accounts, spool and DKIM keys. */
	if (init_path(path, sizeof(path), o->dir, "data") == -1 ||
	    init_mkdir(u, path, 0700) == -1 ||
	    init_path(path, sizeof(path), o->dir, "data/spool") == -1 ||
	    init_mkdir(u, path, 0700) == -1 ||
	    init_path(path, sizeof(path), o->dir, "data/dkim") == -1 ||
	    init_mkdir(u, path, 0700) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "data/dkim/%s", o->domain);
	if (init_path(path, sizeof(path), o->dir, rel) == -1 ||
	    init_mkdir(u, path, 0700) == -1)
		return -1;

	if (init_write_key(u, o->dir, "tls/ca.key", k->ca_key) == -1 ||
	    init_write_cert(u, o->dir, "tls/ca.crt", k->ca) == -1 ||
	    init_write_key(u, o->dir, "tls/server.key", k->srv_key) == -1 ||
	    init_write_cert(u, o->dir, "tls/server.crt", k->srv) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "data/dkim/%s/%s.ed25519.key", o->domain,
	    INIT_SELECTOR_ED);
	if (init_write_key(u, o->dir, rel, k->dkim_ed) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "data/dkim/%s/%s.rsa.key", o->domain,
	    INIT_SELECTOR_RSA);
	if (init_write_key(u, o->dir, rel, k->dkim_rsa) == -1)
		return -1;

	if ((text = init_conf_text(o)) == NULL) {
		fprintf(stderr, "outpost: out of memory\n");
		return -1;
	}
	if (init_path(path, sizeof(path), o->dir, "outpost.conf") == -1) {
		free(text);
		return -1;
	}
	rc = init_write_conf(u, path, text);
	free(text);
	if (rc == -1)
		return -1;

	/* The file must load with the daemon's own parser: a setup that
	 * outpostd then refuses is worse than no setup. */
	memset(&cfg, 0, sizeof(cfg));
	if (config_load(&cfg, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: internal error: the written "
		    "configuration does not load: %s\n", err);
		return -1;
	}
	config_free(&cfg);
	return 0;
}

static void
init_report(const struct init_opts *o, const struct init_keys *k)
{
	const char	*d = o->dir;

	printf("outpost: wrote a working setup for %s (host %s) into %s/\n\n",
	    o->domain, o->hostname, d);
	printf("  %s/outpost.conf       configuration\n", d);
	printf("  %s/tls/ca.crt         local CA certificate (10 years)\n", d);
	printf("  %s/tls/ca.key         local CA key (0600; keep it private)\n",
	    d);
	printf("  %s/tls/server.crt     certificate for %s, localhost, "
	    "127.0.0.1, ::1\n", d, o->hostname);
	printf("  %s/tls/server.key     its key (0600)\n", d);
	printf("  %s/data/              account database and spool (0700)\n", d);
	printf("  %s/data/dkim/%s/%s.ed25519.key, %s.rsa.key  DKIM keys\n\n",
	    d, o->domain, INIT_SELECTOR_ED, INIT_SELECTOR_RSA);
	printf("Listeners: %s (STARTTLS, like port 587), %s (implicit TLS, "
	    "like port 465).\n", o->submission, o->submissions);
	printf("Account page (sign in, 2FA, app passwords): https://"
	    INIT_ACCOUNT_PAGE "/\n\n");
	printf("Clients verify the server with: %s/tls/ca.crt\n"
	    "  (e.g. msmtp tls_trust_file, Python "
	    "ssl.create_default_context(cafile=...))\n\n", d);
	printf("Next steps:\n");
	printf("  1. start the server:   outpostd -c %s/outpost.conf\n", d);
	printf("  2. add an account:     outpost -c %s/outpost.conf user add "
	    "you@%s\n", d, o->domain);
	printf("  3. publish these DNS records (DKIM keys; `outpost -c "
	    "%s/outpost.conf dkim show %s`\n     prints them again with the "
	    "SPF and DMARC records):\n", d, o->domain);
	printf("     %s._domainkey.%s IN TXT %s\n", INIT_SELECTOR_ED, o->domain,
	    k->txt_ed);
	printf("     %s._domainkey.%s IN TXT %s\n", INIT_SELECTOR_RSA,
	    o->domain, k->txt_rsa);
}

int
cli_init(int argc, char **argv)
{
	struct init_opts	 o;
	struct init_keys	 k;
	struct init_undo	 u;
	struct stat		 st;
	char			 conf[PATH_MAX];
	int			 rc;

	if ((rc = init_parse(argc, argv, &o)) != 0)
		return rc > 0 ? EX_OK : EX_USAGE;
	if (init_path(conf, sizeof(conf), o.dir, "outpost.conf") == -1)
		return EX_USAGE;
	if (lstat(conf, &st) == 0) {
		fprintf(stderr, "outpost: %s already holds a setup "
		    "(outpost.conf exists); remove it or pick another "
		    "directory\n", o.dir);
		return EX_CANTCREAT;
	}

	if (init_make_keys(&o, &k) == -1)
		return EX_SOFTWARE;
	memset(&u, 0, sizeof(u));
	rc = init_write_all(&o, &k, &u);
	/* On failure, take back everything this run created. */
	init_undo_run(&u, rc == -1);
	if (rc == -1) {
		init_keys_free(&k);
		return EX_CANTCREAT;
	}
	init_report(&o, &k);
	init_keys_free(&k);
	fflush(stdout);
	return EX_OK;
}
