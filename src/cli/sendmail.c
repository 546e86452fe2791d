/*
 * sendmail — `outpost sendmail` and the `outpost` binary invoked as
 * `sendmail`: the sendmail(8) command line that cron, PHP's mail(), git
 * send-email and mailx use, submitting through the default account of the
 * accounts file (or -a NAME).
 *
 *   sendmail [-t] [-i] [-oi] [-f FROM] [-F NAME] [-a ACCOUNT] [RCPT...]
 *   accepted and ignored: -B TYPE -N DSN -R RET -V ENVID -o* -bm -em -U
 *   -G -L TAG -h N -n -m -v (verbose); -bp lists and -q flushes the outbox
 *
 * Never loses a message: the input goes into an outbox temporary file
 * first; when the server fails temporarily (network, 4xx, TLS, AUTH), the
 * file is made durable in the outbox (fsync'd, 0700) for `outpost outbox
 * flush` or the next send, and the exit status is 0 as with a sendmail
 * that queued the mail (a warning goes to stderr).  A permanent refusal
 * (5xx to MAIL, RCPT or the data) is reported with the server's words and
 * a non-zero status (EX_UNAVAILABLE, EX_DATAERR for a size refusal).
 *
 * Bare recipients ("root") get "@" + qualify_domain (the account's, the
 * file's top-level one, else the sender's domain).  Without -i, a line
 * holding a single "." ends the message.  Owns nothing beyond the call.
 *
 * Without an accounts file (user crontabs, PHP as www-data), the message
 * goes to the local outpostd over its [local] unix socket, named in the
 * system configuration (-C FILE, $OUTPOST_CONFIG, else
 * /etc/outpost/outpost.conf).  The daemon knows the caller by its uid
 * (SO_PEERCRED) and lets it send only as LOGIN@domain (root: as anyone),
 * so the sender is that address.  When the daemon is down the message
 * waits in the outbox as account "@local" (OUTBOX_LOCAL) and goes to the
 * socket on the next flush.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli/accounts_file.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/message.h"
#include "cli/outbox.h"
#include "util/log.h"

/* Options that take a value, in the next argument when not attached. */
static const char sm_with_arg[] = "fFrBNRVaLhOXCp";

static const char sendmail_usage[] =
"usage: sendmail [-t] [-i] [-f FROM] [-F NAME] [-a ACCOUNT] [-C CONF] [RCPT...]\n"
"       sendmail -bp        (list the outbox)\n"
"       sendmail -q         (send what waits in the outbox)\n";

static const char *
login_name(void)
{
	struct passwd	*pw = getpwuid(getuid());
	const char	*u = getenv("USER");

	if (pw != NULL && pw->pw_name != NULL)
		return pw->pw_name;
	return u != NULL && *u != '\0' ? u : "nobody";
}

int
cli_sendmail(int argc, char **argv, const struct config *cfg)
{
	struct acct		 a;
	struct msg_rcpts	 args = { NULL, 0 }, rcpts = { NULL, 0 };
	struct msg_rcpts	 left = { NULL, 0 };
	struct msg_opts		 mo;
	struct outbox_tmp	 t;
	struct cli_submit	 req;
	struct smtpc_status	 st;
	struct smtpc_rcpt	*r = NULL;
	struct stat		 sb;
	char			 apath[4096], err[1024], fromhdr[1200];
	char			 envfrom[600], why[SMTPC_TEXT_MAX + 64];
	const char		*from = NULL, *fullname = NULL, *account = NULL;
	const char		*conf = NULL, *outbox_account;
	char			 lsock[256], ldomain[256];
	int			 local = 0;
	const char		*qualify, *opt, *val;
	uint64_t		 size;
	size_t			 i;
	int			 collect = 0, dot_ends = 1, verbose = 0, rc;
	int			 mode_bp = 0, mode_q = 0, session, lrc, nperm = 0;
	int			 opts_done = 0;

	(void)cfg;
	signal(SIGPIPE, SIG_IGN);
	acct_init(&a);
	t.fd = -1;
	t.path[0] = '\0';
	for (i = 1; i < (size_t)argc; i++) {
		opt = argv[i];
		if (opts_done || opt[0] != '-' || opt[1] == '\0') {
			if (msg_rcpt_add(&args, opt, strlen(opt), NULL) == -1) {
				fprintf(stderr, "sendmail: bad recipient "
				    "\"%.80s\"\n", opt);
				rc = EX_DATAERR;
				goto out;
			}
			continue;
		}
		if (strcmp(opt, "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (strcmp(opt, "--help") == 0) {
			fputs(sendmail_usage, stdout);
			rc = EX_OK;
			goto out;
		}
		if (strchr(sm_with_arg, opt[1]) != NULL) {
			val = opt[2] != '\0' ? opt + 2 : (i + 1 < (size_t)argc ?
			    argv[++i] : NULL);
			if (val == NULL) {
				fprintf(stderr, "sendmail: %s needs a value\n",
				    opt);
				rc = EX_USAGE;
				goto out;
			}
			if (opt[1] == 'f' || opt[1] == 'r')
				from = val;
			else if (opt[1] == 'F')
				fullname = val;
			else if (opt[1] == 'a')
				account = val;
			else if (opt[1] == 'C')
				conf = val;	/* sendmail's -C: outpost.conf */
			continue;
		}
		switch (opt[1]) {
		case 't':
			collect = 1;
			break;
		case 'i':
			dot_ends = 0;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'o':
			/* -oi is -i; -oem, -oee, -odb, -oQ... are sendmail's
			 * queue and error modes and mean nothing here */
			if (strcmp(opt, "-oi") == 0)
				dot_ends = 0;
			break;
		case 'b':
			if (strcmp(opt, "-bp") == 0)
				mode_bp = 1;
			else if (strcmp(opt, "-bm") != 0) {
				fprintf(stderr, "sendmail: %s is not "
				    "supported\n", opt);
				rc = EX_USAGE;
				goto out;
			}
			break;
		case 'q':
			mode_q = 1;
			break;
		case 'e': case 'U': case 'G': case 'n': case 'm': case 'd':
			break;
		default:
			fprintf(stderr, "sendmail: unknown option %s\n", opt);
			fputs(sendmail_usage, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (verbose)
		log_set_level(LOGL_DEBUG);
	if (acct_file_path(apath, sizeof(apath)) == -1)
		apath[0] = '\0';	/* no HOME: only the local socket can do */
	if (mode_bp) {
		char	*av[] = { "outbox", "list", NULL };

		rc = cli_outbox(2, av, NULL);
		goto out;
	}
	if (mode_q) {
		rc = outbox_flush_conf(apath, conf, !verbose) == 0 ? EX_OK :
		    EX_TEMPFAIL;
		goto out;
	}
	lrc = apath[0] != '\0' ? acct_file_load(apath, account, &a, err,
	    sizeof(err)) : 1;
	if (lrc == 1 && account == NULL) {
		/* no accounts file: the local outpostd, when there is one */
		local = cli_local_socket(conf, lsock, sizeof(lsock), ldomain,
		    sizeof(ldomain), err, sizeof(err));
		if (local == -1) {
			fprintf(stderr, "sendmail: %s\n", err);
			rc = EX_CONFIG;
			goto out;
		}
	}
	if (lrc == 1 && !local) {
		fprintf(stderr, "sendmail: no accounts file %s and no local "
		    "outpostd socket ([local] socket in %s): create an accounts "
		    "file with a default account (see outpost(1), ACCOUNTS "
		    "FILE)\n", apath[0] != '\0' ? apath : "(no HOME)",
		    conf != NULL ? conf : getenv("OUTPOST_CONFIG") != NULL ?
		    getenv("OUTPOST_CONFIG") : CLI_SYSTEM_CONF);
		rc = EX_CONFIG;
		goto out;
	}
	if (local) {
		/* the daemon's view of us: LOGIN@domain; root may pick -f */
		struct passwd	*pw = getpwuid(geteuid());

		if (pw == NULL || pw->pw_name == NULL) {
			fprintf(stderr, "sendmail: uid %u has no user name\n",
			    (unsigned)geteuid());
			rc = EX_NOUSER;
			goto out;
		}
		acct_set(&a.host, lsock);
		a.port = 0;
		a.tls = ACCT_TLS_NONE;
		acct_set(&a.name, pw->pw_name);	/* the login, below */
		if ((from == NULL || strchr(from, '@') == NULL) &&
		    snprintf(envfrom, sizeof(envfrom), "%s@%s", from != NULL &&
		    geteuid() == 0 ? from : a.name, ldomain) <
		    (int)sizeof(envfrom))
			from = envfrom;
		acct_set(&a.name, NULL);
		qualify = ldomain;
	} else if (lrc == -1 || acct_finish(&a, err, sizeof(err)) == -1) {
		fprintf(stderr, "sendmail: %s\n", err);
		rc = EX_CONFIG;
		goto out;
	}
	/* the sender and the domain for bare names */
	if (!local)
		qualify = a.qualify_domain;
	if (qualify == NULL && a.from != NULL && strchr(a.from, '@'))
		qualify = strrchr(a.from, '@') + 1;
	if (qualify == NULL && a.user != NULL && strchr(a.user, '@'))
		qualify = strrchr(a.user, '@') + 1;
	if (qualify == NULL)
		qualify = cli_helo_name();
	if (from == NULL)
		from = a.from;
	if (from == NULL)
		from = a.user != NULL && strchr(a.user, '@') ? a.user : NULL;
	if (from == NULL || strchr(from, '@') == NULL) {
		if (snprintf(envfrom, sizeof(envfrom), "%s@%s", from != NULL ?
		    from : login_name(), qualify) >= (int)sizeof(envfrom)) {
			fprintf(stderr, "sendmail: sender address too long\n");
			rc = EX_DATAERR;
			goto out;
		}
		from = envfrom;
	}
	/* from is set on every path above (cppcheck loses it) */
	// cppcheck-suppress nullPointerRedundantCheck
	if (strpbrk(from, "\r\n<> ") != NULL) {
		fprintf(stderr, "sendmail: bad sender address\n");
		rc = EX_DATAERR;
		goto out;
	}
	if (fullname != NULL && strpbrk(fullname, "\r\n\"\\") == NULL)
		snprintf(fromhdr, sizeof(fromhdr), "\"%.200s\" <%s>",
		    fullname, from);
	else
		snprintf(fromhdr, sizeof(fromhdr), "%s", from);

	/* the message, into the outbox's tmp/ */
	if (outbox_tmp_open(&t, err, sizeof(err)) == -1) {
		fprintf(stderr, "sendmail: %s\n", err);
		rc = EX_CANTCREAT;
		goto out;
	}
	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = dot_ends;
	mo.collect = collect;
	mo.from_header = fromhdr;
	mo.msgid_domain = strrchr(from, '@') + 1;
	mo.qualify = qualify;	/* cron's "To: alice", "From: root (Cron..." */
	if (msg_copy(stdin, t.fd, &mo, &rcpts, &size, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "sendmail: %s\n", err);
		rc = EX_DATAERR;
		goto out;
	}
	for (i = 0; i < args.n; i++)
		msg_rcpt_add(&rcpts, args.v[i], strlen(args.v[i]), NULL);
	/* qualify bare names now, on a clean list */
	{
		struct msg_rcpts	 q = { NULL, 0 };

		for (i = 0; i < rcpts.n; i++)
			if (msg_rcpt_add(&q, rcpts.v[i], strlen(rcpts.v[i]),
			    qualify) == -1) {
				fprintf(stderr, "sendmail: bad recipient "
				    "\"%.80s\"\n", rcpts.v[i]);
				msg_rcpts_free(&q);
				rc = EX_DATAERR;
				goto out;
			}
		msg_rcpts_free(&rcpts);
		rcpts = q;
	}
	if (rcpts.n == 0) {
		fprintf(stderr, "sendmail: no recipients (give them as "
		    "arguments, or -t with To:/Cc:/Bcc:)\n");
		rc = EX_USAGE;
		goto out;
	}
	if ((r = calloc(rcpts.n, sizeof(*r))) == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	for (i = 0; i < rcpts.n; i++)
		r[i].addr = rcpts.v[i];
	if (fstat(t.fd, &sb) == -1) {
		rc = EX_IOERR;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.a = &a;
	req.from = from;
	req.rcpts = r;
	req.nrcpts = rcpts.n;
	req.body.fd = t.fd;
	req.body.length = -1;
	req.body.size = (uint64_t)sb.st_size;
	req.verbose = verbose;
	req.local_socket = local ? lsock : NULL;
	rc = cli_submit_run(&req, &st, &session);
	smtpc_status_format(&st, why, sizeof(why));

	if (st.result != SMTPC_OK && !session && st.result ==
	    SMTPC_PERMFAIL) {
		/* the server refused this message for good */
		cli_report("not sent", &a, &st);
		for (i = 0; i < rcpts.n; i++)
			if (r[i].code >= 500 && r[i].code != st.code)
				fprintf(stderr, "sendmail: <%s>: %d %s %s\n",
				    r[i].addr, r[i].code, r[i].enhanced,
				    r[i].text);
		goto out;	/* rc from cli_submit_run */
	}
	for (i = 0; i < rcpts.n; i++) {
		if (!session && r[i].result == SMTPC_OK)
			continue;
		if (!session && r[i].result == SMTPC_PERMFAIL) {
			nperm++;
			fprintf(stderr, "sendmail: <%s> refused: %d %s %s\n",
			    r[i].addr, r[i].code, r[i].enhanced, r[i].text);
			continue;
		}
		msg_rcpt_add(&left, r[i].addr, strlen(r[i].addr), NULL);
	}
	if (left.n > 0) {
		/* temporary trouble: keep it, durably, for a retry */
		outbox_account = local ? OUTBOX_LOCAL : account;
		if (outbox_commit(&t, outbox_account, from, left.v, left.n, why,
		    err, sizeof(err)) == -1) {
			fprintf(stderr, "sendmail: not sent (%s) and %s\n", why,
			    err);
			rc = EX_TEMPFAIL;
			goto out;
		}
		if (local)
			fprintf(stderr, "sendmail: the local server at %s is "
			    "unavailable (%s); the message waits in the outbox: "
			    "run 'outpost outbox flush' to retry\n", a.host,
			    why);
		else
			fprintf(stderr, "sendmail: %s:%d unavailable (%s); the "
			    "message waits in the outbox: run 'outpost outbox "
			    "flush' to retry\n", a.host, a.port, why);
		rc = nperm > 0 ? EX_UNAVAILABLE : EX_OK;
		goto out;
	}
	rc = nperm > 0 ? EX_UNAVAILABLE : EX_OK;
	if (nperm == 0)
		outbox_flush_conf(apath, conf, 1);
out:
	outbox_tmp_discard(&t);
	free(r);
	msg_rcpts_free(&args);
	msg_rcpts_free(&rcpts);
	msg_rcpts_free(&left);
	acct_free(&a);
	return rc;
}
