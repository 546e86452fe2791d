/*
 * security — the account-security commands of `outpost`:
 *   user 2fa EMAIL on [--secret-out FILE] | off | verify CODE
 *   user alias add|del|list EMAIL [ALIAS]
 *   user disable|enable|release EMAIL   (entry points used by user.c)
 *   apppass add EMAIL LABEL | list EMAIL | revoke EMAIL LABEL
 *
 * Owns nothing between calls: each command opens the account store, loads
 * the server secret (DATA_DIR/secret.key, created on first use) when it
 * needs it, and closes both.  Secrets shown to the operator (the new app
 * password, the TOTP secret) go to standard output once and are wiped
 * from memory; the TOTP code is read from standard input.
 *
 * Exit codes (sysexits.h): 0; EX_USAGE bad arguments; EX_DATAERR bad
 * address, label, or a wrong TOTP code; EX_NOUSER unknown user (or label
 * / alias: EX_NOUSER too, said in words); EX_CANTCREAT duplicate label or
 * alias, or a limit reached; EX_IOERR database or key file trouble.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <qrencode.h>
#include <sodium.h>

#include "auth/accounts.h"
#include "auth/apppass.h"
#include "auth/totp.h"
#include "cli/cli.h"
#include "util/config.h"
#include "util/log.h"

#define SEC_ERR_MAX	512

static int
is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

static struct accounts *
sec_open(const struct config *cfg, int need_key)
{
	char err[SEC_ERR_MAX], path[4096];
	unsigned char key[SERVERKEY_LEN];
	struct accounts *a;
	struct stat sb;

	if (cfg == NULL || cfg->accounts_db == NULL) {
		fprintf(stderr, "outpost: no account database configured\n");
		return NULL;
	}
	if (stat(cfg->accounts_db, &sb) == -1) {
		fprintf(stderr, "outpost: no account database at %s (add a "
		    "user first)\n", cfg->accounts_db);
		return NULL;
	}
	if ((a = accounts_open(cfg->accounts_db, 0, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "outpost: %s\n", err);
		return NULL;
	}
	if (need_key) {
		snprintf(path, sizeof(path), "%s/secret.key", cfg->data_dir);
		if (serverkey_load(path, key, err, sizeof(err)) != 0) {
			fprintf(stderr, "outpost: server key: %s\n", err);
			accounts_close(a);
			return NULL;
		}
		accounts_set_key(a, key);
		sodium_memzero(key, sizeof(key));
	}
	return a;
}

static int
sec_error(int rc, const char *err)
{
	fprintf(stderr, "outpost: %s\n", err);
	switch (rc) {
	case ACCT_NOUSER:
	case ACCT_NOTFOUND:
		return EX_NOUSER;
	case ACCT_BADADDR:
	case ACCT_BADPASS:
	case ACCT_BADCODE:
	case ACCT_NOTOTP:
		return EX_DATAERR;
	case ACCT_EXISTS:
	case ACCT_LIMIT:
		return EX_CANTCREAT;
	default:
		return EX_IOERR;
	}
}

static void
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0)
		snprintf(buf, len, "never");
	else if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

/* ---------------------------------------------------------------- */
/* disable / enable / release (called from user.c's table) */

int
cli_user_status(const struct config *cfg, const char *addr, const char *what)
{
	char err[SEC_ERR_MAX];
	struct accounts *a;
	int rc;

	if ((a = sec_open(cfg, 0)) == NULL)
		return EX_IOERR;
	if (strcmp(what, "disable") == 0)
		rc = accounts_user_set_enabled(a, addr, 0, err, sizeof(err));
	else if (strcmp(what, "enable") == 0)
		rc = accounts_user_set_enabled(a, addr, 1, err, sizeof(err));
	else
		rc = accounts_user_set_held(a, addr, 0, err, sizeof(err));
	accounts_close(a);
	if (rc != ACCT_OK)
		return sec_error(rc, err);
	if (strcmp(what, "disable") == 0) {
		log_info("account %s disabled: AUTH refused from now on", addr);
		printf("user %s disabled: logins are refused at once\n", addr);
	} else if (strcmp(what, "enable") == 0) {
		log_info("account %s enabled", addr);
		printf("user %s enabled\n", addr);
	} else {
		log_info("account %s released: outgoing mail no longer held",
		    addr);
		printf("user %s released: it can send again (takes effect at "
		    "its next login)\n", addr);
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* aliases */

static int
print_alias(void *ctx, const char *alias)
{
	(void)ctx;
	printf("%s\n", alias);
	return 0;
}

static const char alias_usage[] =
    "usage: outpost [-c FILE] user alias add EMAIL ALIAS\n"
    "       outpost [-c FILE] user alias del EMAIL ALIAS\n"
    "       outpost [-c FILE] user alias list EMAIL\n"
    "An alias is another full address the account may send as (MAIL FROM\n"
    "and From:).  It cannot be another account's address.\n";

int
cli_user_alias(int argc, char **argv, const struct config *cfg)
{
	char err[SEC_ERR_MAX];
	struct accounts *a;
	int rc;

	/* argv: "alias" OP EMAIL [ALIAS] */
	if (argc >= 2 && is_help(argv[1])) {
		fputs(alias_usage, stdout);
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "list") == 0 ? argc != 3 : argc != 4)
	    || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "del") != 0 &&
	    strcmp(argv[1], "list") != 0)) {
		fputs(alias_usage, stderr);
		return EX_USAGE;
	}
	if ((a = sec_open(cfg, 0)) == NULL)
		return EX_IOERR;
	if (strcmp(argv[1], "add") == 0)
		rc = accounts_alias_add(a, argv[2], argv[3], err, sizeof(err));
	else if (strcmp(argv[1], "del") == 0)
		rc = accounts_alias_del(a, argv[2], argv[3], err, sizeof(err));
	else
		rc = accounts_alias_list(a, argv[2], print_alias, NULL, err,
		    sizeof(err));
	accounts_close(a);
	if (rc < 0)
		return sec_error(rc, err);
	if (strcmp(argv[1], "add") == 0)
		printf("alias %s added to %s\n", argv[3], argv[2]);
	else if (strcmp(argv[1], "del") == 0)
		printf("alias %s removed from %s\n", argv[3], argv[2]);
	return 0;
}

/* ---------------------------------------------------------------- */
/* 2FA */

/* RFC 3986 unreserved stay, the rest is %XX (otpauth label/issuer). */
static void
pct_encode(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char c;

	for (; *in != '\0' && o + 4 < len; in++) {
		c = (unsigned char)*in;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~@", c) != NULL)
			out[o++] = (char)c;
		else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* The QR code with UTF-8 half blocks: two module rows per text line. */
static void
print_qr(const char *text)
{
	QRcode *qr;
	int x, y, w, q = 2;

	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8,
	    1)) == NULL) {
		fprintf(stderr, "outpost: cannot make a QR code (%s); use the "
		    "URI above\n", strerror(errno));
		return;
	}
	w = qr->width;
	/* light modules are printed as blocks: most terminals are dark, and
	 * a scanner wants dark modules on a light quiet zone */
	for (y = -q; y < w + q; y += 2) {
		for (x = -q; x < w + q; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w &&
			    (qr->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			    (qr->data[(y + 1) * w + x] & 1);

			if (!top && !bot)
				fputs("\xe2\x96\x88", stdout);	/* full */
			else if (!top)
				fputs("\xe2\x96\x80", stdout);	/* upper */
			else if (!bot)
				fputs("\xe2\x96\x84", stdout);	/* lower */
			else
				fputs(" ", stdout);
		}
		fputs("\n", stdout);
	}
	QRcode_free(qr);
}

static int
write_secret_file(const char *path, const char *b32)
{
	int fd;
	size_t n = strlen(b32);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1 || write(fd, b32, n) != (ssize_t)n || write(fd, "\n",
	    1) != 1) {
		fprintf(stderr, "outpost: cannot write %s: %s\n", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static const char twofa_usage[] =
    "usage: outpost [-c FILE] user 2fa EMAIL on [--secret-out FILE]\n"
    "       outpost [-c FILE] user 2fa EMAIL off\n"
    "       outpost [-c FILE] user 2fa EMAIL verify CODE\n"
    "on: makes a new TOTP secret, prints the otpauth:// URI and a QR code\n"
    "for an authenticator app, then reads one current 6-digit code from\n"
    "standard input to confirm.  From then on the regular password no\n"
    "longer works over SMTP: use app passwords (outpost apppass add).\n"
    "--secret-out FILE also writes the base32 secret to FILE (mode 0600).\n"
    "off: turns 2FA off.  verify: checks a code (exit 0 when it is right;\n"
    "a code is accepted only once).\n";

static int
twofa_on(const struct config *cfg, struct accounts *a, const char *addr,
    const char *secret_out)
{
	unsigned char sec[TOTP_SECRET_LEN];
	char b32[TOTP_B32_MAX], err[SEC_ERR_MAX], uri[4096], lab[600];
	char elab[1900], iss[300], code[64];
	struct account_info ai;
	int rc, n;

	if ((rc = accounts_user_get(a, addr, &ai, err, sizeof(err))) != ACCT_OK)
		return sec_error(rc, err);
	if (ai.totp_enabled) {
		fprintf(stderr, "outpost: 2FA is already on for %s (turn it "
		    "off first to enrol a new device)\n", ai.email);
		return EX_CANTCREAT;
	}
	if ((rc = accounts_totp_enrol(a, addr, sec, err, sizeof(err))) !=
	    ACCT_OK)
		return sec_error(rc, err);
	totp_b32_encode(sec, sizeof(sec), b32, sizeof(b32));
	sodium_memzero(sec, sizeof(sec));
	pct_encode(cfg->domain != NULL ? cfg->domain : "outpost", iss,
	    sizeof(iss));
	snprintf(lab, sizeof(lab), "%s:%s", iss, ai.email);
	pct_encode(lab, elab, sizeof(elab));
	snprintf(uri, sizeof(uri), "otpauth://totp/%s?secret=%s&issuer=%s&"
	    "algorithm=SHA1&digits=6&period=30", elab, b32, iss);
	printf("Scan this with your authenticator app, or enter the URI:\n\n"
	    "%s\n\n", uri);
	print_qr(uri);
	printf("\nSecret (for manual entry): %s\n", b32);
	fflush(stdout);
	if (secret_out != NULL && write_secret_file(secret_out, b32) != 0) {
		sodium_memzero(b32, sizeof(b32));
		sodium_memzero(uri, sizeof(uri));
		accounts_totp_off(a, addr, err, sizeof(err));
		return EX_IOERR;
	}
	sodium_memzero(b32, sizeof(b32));
	sodium_memzero(uri, sizeof(uri));
	n = cli_read_password("Enter the 6-digit code the app shows now: ", 0,
	    code, sizeof(code));
	if (n <= 0) {
		accounts_totp_off(a, addr, err, sizeof(err));
		fprintf(stderr, "outpost: no code given: 2FA stays off for "
		    "%s\n", ai.email);
		return EX_DATAERR;
	}
	rc = accounts_totp_confirm(a, addr, code, time(NULL), err, sizeof(err));
	sodium_memzero(code, sizeof(code));
	if (rc != ACCT_OK) {
		accounts_totp_off(a, addr, NULL, 0);
		fprintf(stderr, "outpost: %s: 2FA stays off for %s (check the "
		    "phone's clock and try again)\n", err, ai.email);
		return rc == ACCT_BADCODE ? EX_DATAERR : EX_IOERR;
	}
	log_info("2FA turned on for %s", ai.email);
	printf("2FA is on for %s.  Its regular password no longer works "
	    "for sending mail;\ncreate an app password for each mail "
	    "program: outpost apppass add %s LABEL\n", ai.email, ai.email);
	return 0;
}

int
cli_user_2fa(int argc, char **argv, const struct config *cfg)
{
	char addr[256], err[SEC_ERR_MAX];
	const char *secret_out = NULL;
	struct accounts *a;
	int rc, i;

	/* argv: "2fa" EMAIL OP [CODE | --secret-out FILE] */
	for (i = 1; i < argc; i++)
		if (is_help(argv[i])) {
			fputs(twofa_usage, stdout);
			return 0;
		}
	if (argc == 5 && strcmp(argv[2], "on") == 0 &&
	    strcmp(argv[3], "--secret-out") == 0)
		secret_out = argv[4];
	else if (argc < 3 || (strcmp(argv[2], "on") != 0 &&
	    strcmp(argv[2], "off") != 0 && strcmp(argv[2], "verify") != 0) ||
	    (strcmp(argv[2], "verify") == 0 ? argc != 4 : argc != 3)) {
		fputs(twofa_usage, stderr);
		return EX_USAGE;
	}
	if (accounts_addr_normalize(argv[1], addr, sizeof(addr)) != 0) {
		fprintf(stderr, "outpost: not a valid full address\n");
		return EX_DATAERR;
	}
	if ((a = sec_open(cfg, 1)) == NULL)
		return EX_IOERR;
	if (strcmp(argv[2], "on") == 0)
		rc = twofa_on(cfg, a, addr, secret_out);
	else if (strcmp(argv[2], "off") == 0) {
		rc = accounts_totp_off(a, addr, err, sizeof(err));
		if (rc == ACCT_OK) {
			log_info("2FA turned off for %s", addr);
			printf("2FA is off for %s: its regular password works "
			    "again over SMTP\n", addr);
		} else
			rc = sec_error(rc, err);
	} else {
		rc = accounts_totp_verify(a, addr, argv[3], time(NULL), err,
		    sizeof(err));
		if (rc == ACCT_OK)
			printf("code accepted for %s\n", addr);
		else
			rc = sec_error(rc, err);
	}
	accounts_close(a);
	return rc;
}

/* ---------------------------------------------------------------- */
/* app passwords */

static const char apppass_usage[] =
    "usage: outpost [-c FILE] apppass add EMAIL LABEL\n"
    "       outpost [-c FILE] apppass list EMAIL\n"
    "       outpost [-c FILE] apppass revoke EMAIL LABEL\n"
    "add prints a new app password (16 letters, shown once) for one mail\n"
    "program or device; it works with or without 2FA.  Spaces and case do\n"
    "not matter when it is typed.  revoke makes it fail at once.  Changing\n"
    "the account's password revokes all of them.\n";

static int
print_apppass(void *ctx, const struct apppass_info *ai)
{
	char c[64], u[64];

	(void)ctx;
	fmt_time(ai->created, c, sizeof(c));
	fmt_time(ai->last_used, u, sizeof(u));
	printf("%s\tcreated %s\tlast used %s%s%s\n", ai->label, c, u,
	    ai->last_ip[0] ? " from " : "", ai->last_ip);
	return 0;
}

int
cli_apppass(int argc, char **argv, const struct config *cfg)
{
	char err[SEC_ERR_MAX], shown[APPPASS_SHOWN_LEN + 1];
	struct accounts *a;
	int rc, i;

	for (i = 1; i < argc; i++)
		if (is_help(argv[i])) {
			fputs(apppass_usage, stdout);
			return 0;
		}
	if (argc < 3 || (strcmp(argv[1], "list") == 0 ? argc != 3 :
	    argc != 4) || (strcmp(argv[1], "add") != 0 &&
	    strcmp(argv[1], "list") != 0 && strcmp(argv[1], "revoke") != 0)) {
		fputs(apppass_usage, stderr);
		return EX_USAGE;
	}
	if ((a = sec_open(cfg, 1)) == NULL)
		return EX_IOERR;
	if (strcmp(argv[1], "add") == 0) {
		rc = accounts_apppass_add(a, argv[2], argv[3], shown,
		    sizeof(shown), err, sizeof(err));
		if (rc == ACCT_OK) {
			printf("App password for %s (%s):\n\n    %s\n\n"
			    "Type it in the mail program instead of the regular "
			    "password (spaces do not matter).\nIt is shown only "
			    "this once.\n", argv[2], argv[3], shown);
			sodium_memzero(shown, sizeof(shown));
		}
	} else if (strcmp(argv[1], "list") == 0)
		rc = accounts_apppass_list(a, argv[2], print_apppass, NULL, err,
		    sizeof(err));
	else {
		rc = accounts_apppass_revoke(a, argv[2], argv[3], err,
		    sizeof(err));
		if (rc == ACCT_OK) {
			log_info("app password \"%s\" of %s revoked", argv[3],
			    argv[2]);
			printf("app password \"%s\" of %s revoked\n", argv[3],
			    argv[2]);
		}
	}
	accounts_close(a);
	return rc < 0 ? sec_error(rc, err) : 0;
}
