/*
 * send — `outpost send`: submit one message to any SMTP server, like
 * msmtp.  The message is RFC 5322 text on stdin, or it is built from
 * --from/--to/--subject with the body on stdin.  The server comes from an
 * account in the accounts file (-a NAME, or its default) or from --host
 * and friends; options override the account.  Secrets never come from
 * argv (password file, password command, $OUTPOST_PASSWORD, OAuth2 token
 * command).
 *
 * The message is first copied to an unlinked temporary file so that its
 * size is known (MAIL SIZE=) and smtpc can stream it.  Exit codes: see
 * client.h; per-recipient refusals are printed one per line with the
 * server's words.  After a success, messages waiting in the outbox are
 * retried (the server is evidently reachable).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/accounts_file.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/message.h"
#include "cli/outbox.h"
#include "util/log.h"

static const char send_usage[] =
"usage: outpost send [-a ACCOUNT] [--host H] [--port P]\n"
"           [--tls starttls|implicit|none] [--insecure-plaintext]\n"
"           [--user U] [--password-file F | --password-command CMD |\n"
"            --oauth2-token-command CMD] [--ca-file F] [--tls-servername N]\n"
"           [--from ADDR] [--to ADDR]... [--cc ADDR]... [--bcc ADDR]...\n"
"           [--subject S] [-t] [--helo NAME] [--connect-timeout S]\n"
"           [--timeout S] [--accounts FILE] [-v]\n"
"Reads the message (or with --subject, the body) on standard input.\n"
"The password comes from --password-file, --password-command or\n"
"$OUTPOST_PASSWORD, never from the command line.\n";

enum {
	O_HOST = 256, O_PORT, O_TLS, O_INSECURE, O_USER, O_PWFILE, O_PWCMD,
	O_TOKCMD, O_CA, O_SNI, O_FROM, O_TO, O_CC, O_BCC, O_SUBJECT, O_HELO,
	O_CTIMEOUT, O_TIMEOUT, O_ACCOUNTS,
};

static const struct option send_opts[] = {
	{ "account",		required_argument, NULL, 'a' },
	{ "accounts",		required_argument, NULL, O_ACCOUNTS },
	{ "host",		required_argument, NULL, O_HOST },
	{ "port",		required_argument, NULL, O_PORT },
	{ "tls",		required_argument, NULL, O_TLS },
	{ "insecure-plaintext",	no_argument,	   NULL, O_INSECURE },
	{ "user",		required_argument, NULL, O_USER },
	{ "password-file",	required_argument, NULL, O_PWFILE },
	{ "password-command",	required_argument, NULL, O_PWCMD },
	{ "oauth2-token-command", required_argument, NULL, O_TOKCMD },
	{ "ca-file",		required_argument, NULL, O_CA },
	{ "tls-servername",	required_argument, NULL, O_SNI },
	{ "from",		required_argument, NULL, O_FROM },
	{ "to",			required_argument, NULL, O_TO },
	{ "cc",			required_argument, NULL, O_CC },
	{ "bcc",		required_argument, NULL, O_BCC },
	{ "subject",		required_argument, NULL, O_SUBJECT },
	{ "helo",		required_argument, NULL, O_HELO },
	{ "connect-timeout",	required_argument, NULL, O_CTIMEOUT },
	{ "timeout",		required_argument, NULL, O_TIMEOUT },
	{ "verbose",		no_argument,	   NULL, 'v' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
parse_secs(const char *v, int *out)
{
	char	*end;
	long	 n = strtol(v, &end, 10);

	if (*v == '\0' || (*end != '\0' && strcmp(end, "s") != 0) || n < 1 ||
	    n > 3600)
		return -1;
	*out = (int)n;
	return 0;
}

/* Appends ", addr" to a header value being built. */
static int
hdr_append(char **h, const char *addr)
{
	char	*n;
	size_t	 l = *h != NULL ? strlen(*h) : 0;

	if ((n = realloc(*h, l + strlen(addr) + 3)) == NULL)
		return -1;
	snprintf(n + l, strlen(addr) + 3, "%s%s", l > 0 ? ", " : "", addr);
	*h = n;
	return 0;
}

/* Whether a header value is safe to put on one line. */
static int
one_line(const char *s)
{
	return strpbrk(s, "\r\n") == NULL && strlen(s) < 900;
}

/* Copies stdin into fd unchanged (a built message's body). */
static int
copy_raw(FILE *in, int fd, uint64_t *size)
{
	char	 buf[65536];
	size_t	 n;
	ssize_t	 w;
	size_t	 off;

	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		for (off = 0; off < n; off += (size_t)w)
			if ((w = write(fd, buf + off, n - off)) <= 0)
				return -1;
		*size += n;
	}
	return ferror(in) ? -1 : 0;
}

/* The domain for Message-ID: the sender's. */
static const char *
addr_domain(const char *a)
{
	const char	*at = a != NULL ? strrchr(a, '@') : NULL;

	return at != NULL && at[1] != '\0' ? at + 1 : cli_helo_name();
}

int
cli_send(int argc, char **argv, const struct config *cfg)
{
	struct acct		 a;
	struct msg_rcpts	 rcpts = { NULL, 0 };
	struct msg_opts		 mo;
	struct cli_submit	 req;
	struct smtpc_status	 st;
	struct smtpc_rcpt	*r = NULL;
	char			 apath[4096], err[1024], tmpl[4200], date[64];
	char			*to_h = NULL, *cc_h = NULL, *built = NULL;
	const char		*account = NULL, *accounts = NULL, *from = NULL;
	const char		*subject = NULL, *tmpdir;
	struct acct		 over;
	uint64_t		 size = 0;
	size_t			 i, nexplicit;
	int			 c, rc = EX_SOFTWARE, fd = -1, collect = 0;
	int			 ctimeout = 0, timeout = 0, verbose = 0, session;
	int			 lrc, nbad = 0;

	(void)cfg;
	signal(SIGPIPE, SIG_IGN);
	acct_init(&a);
	acct_init(&over);
	optind = 0;
	while ((c = getopt_long(argc, argv, "a:tvh", send_opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			account = optarg;
			break;
		case 't':
			collect = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			fputs(send_usage, stdout);
			rc = EX_OK;
			goto out;
		case O_ACCOUNTS:
			accounts = optarg;
			break;
		case O_HOST:
			acct_set(&over.host, optarg);
			break;
		case O_PORT:
			over.port = atoi(optarg);
			if (over.port < 1 || over.port > 65535) {
				fprintf(stderr, "outpost: --port must be "
				    "1-65535\n");
				rc = EX_USAGE;
				goto out;
			}
			break;
		case O_TLS:
			if ((over.tls = acct_tls_parse(optarg)) == -1) {
				fprintf(stderr, "outpost: --tls must be "
				    "starttls, implicit or none\n");
				rc = EX_USAGE;
				goto out;
			}
			break;
		case O_INSECURE:
			over.insecure_plaintext = 1;
			break;
		case O_USER:
			acct_set(&over.user, optarg);
			break;
		case O_PWFILE:
			acct_set(&over.password_file, optarg);
			break;
		case O_PWCMD:
			acct_set(&over.password_command, optarg);
			break;
		case O_TOKCMD:
			acct_set(&over.oauth2_token_command, optarg);
			break;
		case O_CA:
			acct_set(&over.ca_file, optarg);
			break;
		case O_SNI:
			acct_set(&over.tls_servername, optarg);
			break;
		case O_FROM:
			from = optarg;
			break;
		case O_TO:
		case O_CC:
		case O_BCC:
			if (msg_rcpt_add(&rcpts, optarg, strlen(optarg), NULL)
			    == -1) {
				fprintf(stderr, "outpost: bad address \"%.80s\""
				    "\n", optarg);
				rc = EX_DATAERR;
				goto out;
			}
			if ((c == O_TO && hdr_append(&to_h, optarg) == -1) ||
			    (c == O_CC && hdr_append(&cc_h, optarg) == -1))
				goto out;
			break;
		case O_SUBJECT:
			subject = optarg;
			break;
		case O_HELO:
			acct_set(&over.helo, optarg);
			break;
		case O_CTIMEOUT:
		case O_TIMEOUT:
			if (parse_secs(optarg, c == O_CTIMEOUT ? &ctimeout :
			    &timeout) == -1) {
				fprintf(stderr, "outpost: timeouts are 1-3600 "
				    "seconds\n");
				rc = EX_USAGE;
				goto out;
			}
			break;
		default:
			fputs(send_usage, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind < argc) {
		/* recipients may also be plain arguments, as with msmtp */
		for (; optind < argc; optind++)
			if (msg_rcpt_add(&rcpts, argv[optind],
			    strlen(argv[optind]), NULL) == -1) {
				fprintf(stderr, "outpost: bad address \"%.80s\""
				    "\n", argv[optind]);
				rc = EX_DATAERR;
				goto out;
			}
	}
	if (verbose)
		log_set_level(LOGL_DEBUG);

	/* the account: from the file when asked for (or when no --host) */
	if (accounts == NULL && acct_file_path(apath, sizeof(apath)) == 0)
		accounts = apath;
	if (account != NULL || over.host == NULL) {
		lrc = accounts != NULL ? acct_file_load(accounts, account, &a,
		    err, sizeof(err)) : 1;
		if (lrc == -1 || (lrc == 1 && account != NULL)) {
			if (lrc == 1)
				snprintf(err, sizeof(err), "no accounts file "
				    "%.900s", accounts != NULL ? accounts : "");
			fprintf(stderr, "outpost: %s\n", err);
			rc = EX_CONFIG;
			goto out;
		}
	}
#define OVER(f) do { if (over.f != NULL) { acct_set(&a.f, over.f); } } while (0)
	OVER(host);
	OVER(user);
	OVER(password_file);
	OVER(password_command);
	OVER(oauth2_token_command);
	OVER(ca_file);
	OVER(tls_servername);
	OVER(helo);
#undef OVER
	if (over.host != NULL && account == NULL) {
		/* an ad-hoc server: the file's port/tls do not apply */
		a.port = 0;
		a.tls = ACCT_TLS_UNSET;
		acct_set(&a.provider, NULL);
	}
	if (over.port != 0)
		a.port = over.port;
	if (over.tls != ACCT_TLS_UNSET)
		a.tls = over.tls;
	if (over.insecure_plaintext)
		a.insecure_plaintext = 1;
	if (over.password_command != NULL || over.oauth2_token_command != NULL
	    || over.password_file != NULL) {
		/* the command line's secret source wins over the file's */
		if (over.password_command == NULL)
			acct_set(&a.password_command, NULL);
		if (over.oauth2_token_command == NULL)
			acct_set(&a.oauth2_token_command, NULL);
		if (over.password_file == NULL)
			acct_set(&a.password_file, NULL);
	}
	if (acct_finish(&a, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (from == NULL)
		from = a.from != NULL ? a.from : (a.user != NULL &&
		    strchr(a.user, '@') != NULL ? a.user : NULL);
	if (from == NULL || !one_line(from)) {
		fprintf(stderr, "outpost: no sender: give --from ADDR (or from ="
		    " in the account)\n");
		rc = EX_USAGE;
		goto out;
	}
	nexplicit = rcpts.n;
	if (nexplicit == 0)
		collect = 1;

	/* the message, into an unlinked temporary file */
	tmpdir = getenv("TMPDIR");
	snprintf(tmpl, sizeof(tmpl), "%s/outpost-send-XXXXXX",
	    tmpdir != NULL && *tmpdir == '/' ? tmpdir : "/tmp");
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) == -1) {
		fprintf(stderr, "outpost: cannot create a temporary file: %s\n",
		    strerror(errno));
		rc = EX_CANTCREAT;
		goto out;
	}
	unlink(tmpl);
	if (subject != NULL) {
		time_t		 now = time(NULL);
		struct tm	 tm;
		size_t		 blen;

		if (!one_line(subject) || nexplicit == 0) {
			fprintf(stderr, "outpost: --subject needs --to (and a "
			    "one-line subject)\n");
			rc = EX_USAGE;
			goto out;
		}
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		blen = strlen(from) + (to_h ? strlen(to_h) : 0) +
		    (cc_h ? strlen(cc_h) : 0) + strlen(subject) + 512;
		if ((built = malloc(blen)) == NULL)
			goto out;
		snprintf(built, blen, "From: %s\r\n%s%s%s%s%s%s"
		    "Subject: %s\r\nDate: %s\r\n"
		    "Message-ID: <%lld.%08x%08x@%s>\r\nMIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n", from,
		    to_h ? "To: " : "", to_h ? to_h : "", to_h ? "\r\n" : "",
		    cc_h ? "Cc: " : "", cc_h ? cc_h : "", cc_h ? "\r\n" : "",
		    subject, date, (long long)now, randombytes_random(),
		    randombytes_random(), addr_domain(from));
		size = strlen(built);
		if (write(fd, built, size) != (ssize_t)size ||
		    copy_raw(stdin, fd, &size) == -1) {
			fprintf(stderr, "outpost: cannot copy the message: %s\n",
			    strerror(errno));
			rc = EX_IOERR;
			goto out;
		}
	} else {
		memset(&mo, 0, sizeof(mo));
		mo.collect = collect;
		mo.from_header = from;
		mo.msgid_domain = addr_domain(from);
		if (msg_copy(stdin, fd, &mo, &rcpts, &size, err, sizeof(err))
		    == -1) {
			fprintf(stderr, "outpost: %s\n", err);
			rc = EX_DATAERR;
			goto out;
		}
	}
	if (rcpts.n == 0) {
		fprintf(stderr, "outpost: no recipients: give --to ADDR or put "
		    "To:/Cc:/Bcc: in the message\n");
		rc = EX_USAGE;
		goto out;
	}
	if ((r = calloc(rcpts.n, sizeof(*r))) == NULL)
		goto out;
	for (i = 0; i < rcpts.n; i++)
		r[i].addr = rcpts.v[i];

	memset(&req, 0, sizeof(req));
	req.a = &a;
	req.from = from;
	req.rcpts = r;
	req.nrcpts = rcpts.n;
	req.body.fd = fd;
	req.body.offset = 0;
	req.body.length = -1;
	req.body.size = size;
	req.connect_timeout = ctimeout;
	req.timeout = timeout;
	req.verbose = verbose;
	rc = cli_submit_run(&req, &st, &session);
	if (st.result == SMTPC_OK) {
		for (i = 0; i < rcpts.n; i++)
			if (r[i].result != SMTPC_OK) {
				nbad++;
				fprintf(stderr, "outpost: <%s> refused: %d %s "
				    "%s\n", r[i].addr, r[i].code, r[i].enhanced,
				    r[i].text);
			}
		if (verbose) {
			char	 line[SMTPC_TEXT_MAX + 32];

			fprintf(stderr, "outpost: sent: %s\n",
			    smtpc_status_format(&st, line, sizeof(line)));
		}
		rc = nbad > 0 ? EX_UNAVAILABLE : EX_OK;
		/* the server works: retry what waits in the outbox */
		if (accounts != NULL && account == NULL && over.host == NULL)
			outbox_flush(accounts, 1);
	} else
		cli_report("not sent", &a, &st);
out:
	if (fd != -1)
		close(fd);
	free(r);
	free(to_h);
	free(cc_h);
	free(built);
	msg_rcpts_free(&rcpts);
	acct_free(&over);
	acct_free(&a);
	return rc;
}
