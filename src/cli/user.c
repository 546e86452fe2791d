/*
 * user — `outpost user add|del|passwd|list|show`: account administration
 * on the SQLite store named by [accounts] database in outpost.conf, and
 * cli_read_password(), the one way the CLI reads a secret.
 *
 * Passwords come from standard input only: on a terminal they are typed
 * twice without echo; otherwise the first line is the password.  Buffers
 * that held one are wiped with sodium_memzero().  The terminal's echo is
 * restored even when the prompt is interrupted by a signal.
 *
 * Exit codes (sysexits.h):
 *   0            done
 *   EX_USAGE     bad arguments
 *   EX_DATAERR   not a valid full address; empty or over-long password;
 *                the two typed passwords differ
 *   EX_CANTCREAT user add: the user already exists (scripts can tell it
 *                apart from a bad address)
 *   EX_NOUSER    del/passwd/show: no such user
 *   EX_CONFIG    no account database configured
 *   EX_IOERR     the database cannot be opened, read or written
 *   EX_SOFTWARE  internal errors (out of memory, hashing failed)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "util/config.h"
#include "util/log.h"

#define USER_PASS_MAX	1024
#define USER_ERR_MAX	512

/* ---------------------------------------------------------------- */
/* Reading a password */

static struct termios	 tty_saved;
static volatile sig_atomic_t tty_restore;	/* tty_saved must be put back */

static void
tty_sig(int sig)
{
	if (tty_restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Reads one line from fd into buf without stdio (so no copy of the secret
 * stays in a stdio buffer).  Returns its length without the line end, -1
 * on a read error or EOF before any byte, -2 when longer than len - 1, -3
 * when it holds a NUL byte.
 */
static int
read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	char c;
	int toolong = 0, nul = 0, any = 0;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == -1 || !any)
				return -1;
			break;
		}
		any = 1;
		if (c == '\n')
			break;
		if (c == '\0')
			nul = 1;
		if (n + 1 < len)
			buf[n++] = c;
		else
			toolong = 1;	/* keep reading to the end of line */
	}
	c = 0;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (toolong)
		return -2;
	if (nul)
		return -3;
	return (int)n;
}

static int
tty_read(const char *prompt, char *buf, size_t len)
{
	struct termios noecho;
	struct sigaction sa, old[4];
	static const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	int i, n;

	if (tcgetattr(STDIN_FILENO, &tty_saved) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_sig;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	noecho = tty_saved;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	noecho.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	tty_restore = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == -1) {
		tty_restore = 0;
		n = -1;
		goto done;
	}
	n = read_line(STDIN_FILENO, buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	tty_restore = 0;
done:
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	return n;
}

static int
pass_error(int n, size_t len)
{
	if (n == -2)
		fprintf(stderr, "outpost: password is longer than %zu bytes\n",
		    len - 1);
	else if (n == -3)
		fprintf(stderr, "outpost: password contains a NUL byte\n");
	else if (n == 0)
		fprintf(stderr, "outpost: empty password refused\n");
	else
		fprintf(stderr, "outpost: no password on standard input\n");
	return -1;
}

int
cli_read_password(const char *prompt, int confirm, char *buf, size_t len)
{
	char *again;
	int n, m;

	if (buf == NULL || len < 2)
		return -1;
	buf[0] = '\0';
	if (!isatty(STDIN_FILENO)) {
		n = read_line(STDIN_FILENO, buf, len);
		if (n <= 0) {
			sodium_memzero(buf, len);
			return pass_error(n, len);
		}
		return n;
	}

	n = tty_read(prompt != NULL ? prompt : "Password: ", buf, len);
	if (n <= 0) {
		sodium_memzero(buf, len);
		return pass_error(n, len);
	}
	if (!confirm)
		return n;
	if ((again = sodium_malloc(len)) == NULL) {
		sodium_memzero(buf, len);
		fprintf(stderr, "outpost: out of memory\n");
		return -1;
	}
	m = tty_read("Retype password: ", again, len);
	if (m != n || sodium_memcmp(buf, again, (size_t)n) != 0) {
		sodium_free(again);
		sodium_memzero(buf, len);
		if (m < 0)
			return pass_error(m, len);
		fprintf(stderr, "outpost: passwords do not match\n");
		return -1;
	}
	sodium_free(again);
	return n;
}

/* ---------------------------------------------------------------- */
/* Helpers */

static const char usage_text[] =
    "usage: outpost [-c FILE] user add EMAIL       add an account (password on stdin)\n"
    "       outpost [-c FILE] user del EMAIL       delete an account\n"
    "       outpost [-c FILE] user passwd EMAIL    set a new password (on stdin)\n"
    "       outpost [-c FILE] user list            list all accounts\n"
    "       outpost [-c FILE] user show EMAIL      show one account and today's usage\n"
    "       outpost [-c FILE] user disable|enable EMAIL\n"
    "       outpost [-c FILE] user release EMAIL   end a hold on its outgoing mail\n"
    "       outpost [-c FILE] user 2fa EMAIL on|off|verify CODE\n"
    "       outpost [-c FILE] user alias add|del|list EMAIL [ALIAS]\n"
    "       outpost [-c FILE] user admin EMAIL on|off\n"
    "Use the whole address as EMAIL, like me@example.org.  On a terminal the\n"
    "password is asked twice without echo; otherwise the first line of\n"
    "standard input is the password.\n";

struct user_cmd {
	const char	*name;
	int		 needs_addr;
	const char	*help;
	int		(*run)(const struct config *, const char *);
};

static int
bad_address(const char *arg)
{
	char esc[600];
	const char *at = strchr(arg, '@');

	log_escape(esc, sizeof(esc), arg, strnlen(arg, 512));
	if (at == NULL || at == arg || at[1] == '\0')
		fprintf(stderr, "outpost: not a full address: \"%s\" (use the "
		    "whole address, like me@example.org)\n", esc);
	else
		fprintf(stderr, "outpost: not a valid address: \"%s\"\n", esc);
	return EX_DATAERR;
}

/* mkdir -p for the database's parent directory; private to the owner. */
static int
make_parent(const char *path)
{
	char *dir, *p;
	int rc = 0;

	if ((dir = strdup(path)) == NULL)
		return -1;
	if ((p = strrchr(dir, '/')) == NULL || p == dir) {
		free(dir);
		return 0;
	}
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;

			*p = '\0';
			if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
				fprintf(stderr, "outpost: cannot create %s: "
				    "%s\n", dir, strerror(errno));
				rc = -1;
				break;
			}
			*p = save;
			if (save == '\0')
				break;
		}
	}
	free(dir);
	return rc;
}

static struct pwhash_params
params_of(const struct config *cfg)
{
	struct pwhash_params pp;

	pp.opslimit = cfg->argon2_opslimit;
	pp.memlimit = cfg->argon2_memlimit;
	return pp;
}

/* Opens the store; *missing is set (and NULL returned) when the file does
 * not exist yet and create is 0, so callers can answer "no such user". */
static struct accounts *
open_store(const struct config *cfg, int create, int *missing)
{
	char err[USER_ERR_MAX];
	struct accounts *a;
	struct stat sb;

	*missing = 0;
	if (!create && stat(cfg->accounts_db, &sb) == -1 && errno == ENOENT) {
		*missing = 1;
		return NULL;
	}
	if (create && make_parent(cfg->accounts_db) != 0)
		return NULL;
	if ((a = accounts_open(cfg->accounts_db, create, err,
	    sizeof(err))) == NULL)
		fprintf(stderr, "outpost: %s\n", err);
	return a;
}

static int
store_error(int rc, const char *addr, const char *err)
{
	switch (rc) {
	case ACCT_EXISTS:
		fprintf(stderr, "outpost: user %s already exists\n", addr);
		return EX_CANTCREAT;
	case ACCT_NOUSER:
		fprintf(stderr, "outpost: no such user %s\n", addr);
		return EX_NOUSER;
	case ACCT_BADADDR:
		return bad_address(addr);
	case ACCT_BADPASS:
		fprintf(stderr, "outpost: %s\n", err);
		return EX_DATAERR;
	default:
		fprintf(stderr, "outpost: %s\n", err);
		return EX_IOERR;
	}
}

static void
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

/* ---------------------------------------------------------------- */
/* Subcommands; addr is already normalized. */

/* Reads the new password for addr into a locked buffer; NULL on failure
 * (message printed).  The caller sodium_free()s it. */
static char *
ask_password(const char *addr, int *len)
{
	char prompt[320], *buf;

	if ((buf = sodium_malloc(USER_PASS_MAX + 1)) == NULL) {
		fprintf(stderr, "outpost: out of memory\n");
		return NULL;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", addr);
	if ((*len = cli_read_password(prompt, 1, buf,
	    USER_PASS_MAX + 1)) <= 0) {
		sodium_free(buf);
		return NULL;
	}
	return buf;
}

static int
user_add(const struct config *cfg, const char *addr)
{
	struct pwhash_params pp = params_of(cfg);
	char err[USER_ERR_MAX], *pass;
	struct account_info ai;
	struct accounts *a;
	int rc, len, missing;

	if ((a = open_store(cfg, 1, &missing)) == NULL)
		return EX_IOERR;
	/* Say "exists" before asking for a password that would be wasted,
	 * naming the account as stored (its case may differ). */
	rc = accounts_user_get(a, addr, &ai, err, sizeof(err));
	if (rc != ACCT_NOUSER) {
		accounts_close(a);
		return store_error(rc == ACCT_OK ? ACCT_EXISTS : rc,
		    rc == ACCT_OK ? ai.email : addr, err);
	}
	if ((pass = ask_password(addr, &len)) == NULL) {
		accounts_close(a);
		return EX_DATAERR;
	}
	rc = accounts_user_add(a, addr, pass, (size_t)len, &pp, err,
	    sizeof(err));
	sodium_free(pass);
	accounts_close(a);
	if (rc != ACCT_OK)
		return store_error(rc, addr, err);
	printf("user %s added\n", addr);
	return 0;
}

static int
user_del(const struct config *cfg, const char *addr)
{
	char err[USER_ERR_MAX];
	struct accounts *a;
	int rc, missing;

	if ((a = open_store(cfg, 0, &missing)) == NULL)
		return missing ? store_error(ACCT_NOUSER, addr, "") : EX_IOERR;
	rc = accounts_user_del(a, addr, err, sizeof(err));
	accounts_close(a);
	if (rc != ACCT_OK)
		return store_error(rc, addr, err);
	printf("user %s deleted\n", addr);
	return 0;
}

static int
user_passwd(const struct config *cfg, const char *addr)
{
	struct pwhash_params pp = params_of(cfg);
	char err[USER_ERR_MAX], *pass;
	struct accounts *a;
	int rc, len, missing;

	if ((a = open_store(cfg, 0, &missing)) == NULL)
		return missing ? store_error(ACCT_NOUSER, addr, "") : EX_IOERR;
	if ((rc = accounts_user_get(a, addr, NULL, err,
	    sizeof(err))) != ACCT_OK) {
		accounts_close(a);
		return store_error(rc, addr, err);
	}
	if ((pass = ask_password(addr, &len)) == NULL) {
		accounts_close(a);
		return EX_DATAERR;
	}
	rc = accounts_user_passwd(a, addr, pass, (size_t)len, &pp, err,
	    sizeof(err));
	sodium_free(pass);
	accounts_close(a);
	if (rc != ACCT_OK)
		return store_error(rc, addr, err);
	printf("password changed for %s; its app passwords (if any) were "
	    "revoked: create new ones with outpost apppass add\n", addr);
	return 0;
}

static int
list_one(void *ctx, const struct account_info *ai)
{
	(void)ctx;
	if (ai->enabled)
		printf("%s\n", ai->email);
	else
		printf("%s\tdisabled\n", ai->email);
	return 0;
}

static int
user_list(const struct config *cfg, const char *unused)
{
	char err[USER_ERR_MAX];
	struct accounts *a;
	int n, missing;

	(void)unused;
	if ((a = open_store(cfg, 0, &missing)) == NULL)
		return missing ? 0 : EX_IOERR;
	n = accounts_user_list(a, list_one, NULL, err, sizeof(err));
	accounts_close(a);
	if (n < 0) {
		fprintf(stderr, "outpost: %s\n", err);
		return EX_IOERR;
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "outpost: write error: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

static int
user_show(const struct config *cfg, const char *addr)
{
	char err[USER_ERR_MAX], created[64], updated[64];
	struct account_info ai;
	struct usage_row u;
	struct accounts *a;
	time_t now;
	int rc, missing, napp, nalias;

	if ((a = open_store(cfg, 0, &missing)) == NULL)
		return missing ? store_error(ACCT_NOUSER, addr, "") : EX_IOERR;
	rc = accounts_user_get(a, addr, &ai, err, sizeof(err));
	if (rc != ACCT_OK) {
		accounts_close(a);
		return store_error(rc, addr, err);
	}
	now = time(NULL);
	if (accounts_usage_get(a, ai.email, (int64_t)now / 86400, &u) !=
	    ACCT_OK)
		memset(&u, 0, sizeof(u));
	napp = accounts_apppass_list(a, ai.email, NULL, NULL, err, sizeof(err));
	nalias = accounts_alias_list(a, ai.email, NULL, NULL, err, sizeof(err));
	accounts_close(a);
	fmt_time(ai.created, created, sizeof(created));
	fmt_time(ai.updated, updated, sizeof(updated));
	printf("address: %s\n", ai.email);
	printf("status:  %s%s\n", ai.enabled ? "enabled" : "disabled",
	    ai.held ? ", outgoing mail on hold (outpost user release)" : "");
	printf("2fa:     %s\n", ai.totp_enabled ? "on" : "off");
	printf("app passwords: %d\n", napp < 0 ? 0 : napp);
	printf("aliases: %d\n", nalias < 0 ? 0 : nalias);
	printf("created: %s\n", created);
	printf("updated: %s\n", updated);
	/* the daemon writes counters every few seconds ([accounts]
	 * counter_flush), so these may lag by that much */
	printf("today:   %lld messages of %d, %lld recipients of %d, "
	    "%lld limit hits\n", (long long)u.messages, cfg->daily_messages,
	    (long long)u.recipients, cfg->daily_recipients,
	    (long long)u.quota_hits);
	if (u.hour == (int64_t)now / 3600)
		printf("this hour: %lld messages of %d\n",
		    (long long)u.hour_messages, cfg->hourly_messages);
	else
		printf("this hour: 0 messages of %d\n", cfg->hourly_messages);
	return 0;
}

static int
user_disable(const struct config *cfg, const char *addr)
{
	return cli_user_status(cfg, addr, "disable");
}

static int
user_enable(const struct config *cfg, const char *addr)
{
	return cli_user_status(cfg, addr, "enable");
}

static int
user_release(const struct config *cfg, const char *addr)
{
	return cli_user_status(cfg, addr, "release");
}

static const struct user_cmd user_cmds[] = {
	{ "disable", 1, "usage: outpost [-c FILE] user disable EMAIL\n"
	    "Refuses every login of EMAIL at once (the daemon logs each refusal).\n",
	    user_disable },
	{ "enable", 1, "usage: outpost [-c FILE] user enable EMAIL\n"
	    "Lets a disabled account log in again.\n", user_enable },
	{ "release", 1, "usage: outpost [-c FILE] user release EMAIL\n"
	    "Ends the hold on EMAIL's outgoing mail (put there when it hit its\n"
	    "limits repeatedly) and clears today's limit hits.\n", user_release },
	{ "add", 1, "usage: outpost [-c FILE] user add EMAIL\n"
	    "Adds the account EMAIL (the whole address).  The password is read\n"
	    "from standard input: typed twice without echo on a terminal,\n"
	    "otherwise the first line.  It is never taken from the command line.\n",
	    user_add },
	{ "del", 1, "usage: outpost [-c FILE] user del EMAIL\n"
	    "Deletes the account EMAIL.\n", user_del },
	{ "passwd", 1, "usage: outpost [-c FILE] user passwd EMAIL\n"
	    "Sets a new password for EMAIL, read from standard input as for\n"
	    "`user add`.\n", user_passwd },
	{ "list", 0, "usage: outpost [-c FILE] user list\n"
	    "Prints every account, one address per line; disabled accounts are\n"
	    "followed by a tab and \"disabled\".\n", user_list },
	{ "show", 1, "usage: outpost [-c FILE] user show EMAIL\n"
	    "Prints the account's address, status and dates (UTC).\n",
	    user_show },
};

static int
is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int
cli_user(int argc, char **argv, const struct config *cfg)
{
	const struct user_cmd *cmd = NULL;
	char addr[256];
	const char *pos[2];
	int i, npos = 0, opts = 1;
	size_t k;

	if (argc < 2 || is_help(argv[1])) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : 0;
	}
	if (strcmp(argv[1], "2fa") == 0)
		return cli_user_2fa(argc - 1, argv + 1, cfg);
	if (strcmp(argv[1], "alias") == 0)
		return cli_user_alias(argc - 1, argv + 1, cfg);
	if (strcmp(argv[1], "admin") == 0)
		return cli_user_admin(argc - 1, argv + 1, cfg);
	for (k = 0; k < sizeof(user_cmds) / sizeof(user_cmds[0]); k++)
		if (strcmp(argv[1], user_cmds[k].name) == 0)
			cmd = &user_cmds[k];
	if (cmd == NULL) {
		char esc[128];

		fprintf(stderr, "outpost: unknown user command \"%s\"\n",
		    log_escape(esc, sizeof(esc), argv[1],
		    strnlen(argv[1], 100)));
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (opts && is_help(argv[i])) {
			fputs(cmd->help, stdout);
			return 0;
		}
		if (opts && strcmp(argv[i], "--") == 0) {
			opts = 0;
			continue;
		}
		if (opts && argv[i][0] == '-' && argv[i][1] != '\0') {
			char esc[128];

			fprintf(stderr, "outpost: user %s: unknown option "
			    "\"%s\"\n", cmd->name, log_escape(esc, sizeof(esc),
			    argv[i], strnlen(argv[i], 100)));
			fputs(cmd->help, stderr);
			return EX_USAGE;
		}
		if (npos == 2) {
			npos++;
			break;
		}
		pos[npos++] = argv[i];
	}
	if (npos != cmd->needs_addr) {
		fputs(cmd->help, stderr);
		return EX_USAGE;
	}
	if (cfg == NULL || cfg->accounts_db == NULL ||
	    cfg->accounts_db[0] == '\0') {
		fprintf(stderr, "outpost: no account database configured "
		    "([accounts] database)\n");
		return EX_CONFIG;
	}
	if (cmd->needs_addr) {
		if (accounts_addr_normalize(pos[0], addr, sizeof(addr)) != 0)
			return bad_address(pos[0]);
		return cmd->run(cfg, addr);
	}
	return cmd->run(cfg, NULL);
}
