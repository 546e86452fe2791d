/*
 * client — the CLI side of the SMTP client: one smtpc session run to
 * completion per call on a private event_base, secrets from files,
 * commands or the environment, submission to an account with address
 * fallback, and exit codes.  See client.h.
 *
 * Owns: the event_base, SSL_CTX and session inside a struct cli_conn
 * (freed by cli_conn_close()).  Secrets live only in caller buffers and
 * are wiped by the caller; a password command's output is read through a
 * pipe, bounded, and its exit status checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "cli/client.h"
#include "cli/oauth2.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/log.h"

static void
conn_cb(struct smtpc *s, enum smtpc_op op, const struct smtpc_status *st,
    void *arg)
{
	struct cli_conn	*c = arg;

	(void)s;
	(void)op;
	c->st = *st;
	c->done = 1;
}

/* Runs the loop until the operation's callback came. */
static int
conn_wait(struct cli_conn *c)
{
	while (!c->done)
		if (event_base_loop(c->base, EVLOOP_ONCE) == -1) {
			memset(&c->st, 0, sizeof(c->st));
			c->st.result = SMTPC_TEMPFAIL;
			c->st.err = SMTPC_E_LOCAL;
			snprintf(c->st.text, sizeof(c->st.text),
			    "event loop failed");
			return SMTPC_TEMPFAIL;
		}
	return c->st.result;
}

const char *
cli_helo_name(void)
{
	static char	 name[256];

	if (name[0] == '\0' && (gethostname(name, sizeof(name) - 1) != 0 ||
	    name[0] == '\0' || strpbrk(name, " \t\r\n") != NULL))
		snprintf(name, sizeof(name), "localhost");
	return name;
}

static int
conn_local_fail(struct cli_conn *c, const char *fmt, const char *arg)
{
	memset(&c->st, 0, sizeof(c->st));
	c->st.result = SMTPC_TEMPFAIL;
	c->st.err = SMTPC_E_LOCAL;
	snprintf(c->st.text, sizeof(c->st.text), fmt, arg);
	return SMTPC_TEMPFAIL;
}

int
cli_conn_open(struct cli_conn *c, const struct cli_conn_opts *o,
    const struct sockaddr *sa, socklen_t salen)
{
	struct smtpc_params	 p;
	char			 err[512];

	memset(c, 0, sizeof(*c));
	if ((c->base = event_base_new()) == NULL)
		return conn_local_fail(c, "%s", "cannot create an event loop");
	memset(&p, 0, sizeof(p));
	if (o->tls != ACCT_TLS_NONE) {
		c->ctx = tls_client_ctx_new(o->ca_file, 0, err, sizeof(err));
		if (c->ctx == NULL)
			return conn_local_fail(c, "%s", err);
	}
	p.helo = o->helo != NULL ? o->helo : cli_helo_name();
	p.tls = o->tls == ACCT_TLS_IMPLICIT ? SMTPC_TLS_IMPLICIT :
	    o->tls == ACCT_TLS_STARTTLS ? SMTPC_TLS_STARTTLS : SMTPC_TLS_NONE;
	p.verify = o->verify;
	p.ssl_ctx = c->ctx;
	p.tls_name = o->tls_name;
	p.timeout_connect = o->connect_timeout > 0 ? o->connect_timeout : 30;
	if (o->timeout > 0) {
		p.timeout_greeting = p.timeout_tls = p.timeout_cmd =
		    p.timeout_data = p.timeout_block = o->timeout;
		p.timeout_dot = o->timeout * 2;
	}
	p.allow_plaintext_auth = o->allow_plain_auth;
	p.log_id = "outpost";
	if ((c->s = smtpc_new(c->base, &p, conn_cb, c)) == NULL)
		return conn_local_fail(c, "%s", "cannot create an SMTP session "
		    "(bad HELO name?)");
	if (smtpc_connect(c->s, sa, salen) == -1)
		return conn_local_fail(c, "%s", "cannot start connecting");
	return conn_wait(c);
}

int
cli_conn_auth(struct cli_conn *c, const char *user, const char *secret,
    int is_token)
{
	c->done = 0;
	if (smtpc_auth(c->s, SMTPC_AUTH_AUTO, user, secret, is_token) == -1)
		return conn_local_fail(c, "%s", "cannot start AUTH (user name "
		    "too long or invalid?)");
	return conn_wait(c);
}

int
cli_conn_send(struct cli_conn *c, struct smtpc_msg *m)
{
	c->done = 0;
	if (smtpc_send(c->s, m) == -1)
		return conn_local_fail(c, "%s", "cannot start the transaction");
	return conn_wait(c);
}

void
cli_conn_close(struct cli_conn *c)
{
	if (c->s != NULL) {
		c->done = 0;
		if (smtpc_quit(c->s) == 0)
			conn_wait(c);
		smtpc_free(c->s);
		c->s = NULL;
	}
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	if (c->base != NULL)
		event_base_free(c->base);
	c->base = NULL;
}

/* ---- secrets ---- */

/* Keeps the first line of buf[0..n), without its line end. */
static size_t
first_line(char *buf, size_t n)
{
	size_t	 i;

	for (i = 0; i < n && buf[i] != '\n' && buf[i] != '\r'; i++)
		;
	buf[i] = '\0';
	return i;
}

static int
secret_command(const char *cmd, char *buf, size_t len, char *err,
    size_t errlen)
{
	int	 fds[2], status;
	pid_t	 pid;
	size_t	 n = 0;
	ssize_t	 r;
	char	 drain[256];

	if (pipe2(fds, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		/* the command's stdout is the pipe; stdin and stderr are
		 * the user's (gpg/pass may prompt) */
		if (dup2(fds[1], STDOUT_FILENO) == -1)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (n < len - 1) {
		r = read(fds[0], buf + n, len - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	/* the rest is not ours to keep, but the command must not block */
	while ((r = read(fds[0], drain, sizeof(drain))) > 0 ||
	    (r == -1 && errno == EINTR))
		;
	explicit_bzero(drain, sizeof(drain));
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		explicit_bzero(buf, len);
		snprintf(err, errlen, "the password/token command failed "
		    "(exit status %d)", WIFEXITED(status) ?
		    WEXITSTATUS(status) : -1);
		return -1;
	}
	if (first_line(buf, n) == 0) {
		snprintf(err, errlen, "the password/token command printed "
		    "nothing");
		return -1;
	}
	return 1;
}

static int
secret_file(const char *path, char *buf, size_t len, char *err,
    size_t errlen)
{
	int	 fd;
	size_t	 n = 0;
	ssize_t	 r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot read the password file %s: %s",
		    path, strerror(errno));
		return -1;
	}
	while (n < len - 1) {
		r = read(fd, buf + n, len - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (first_line(buf, n) == 0) {
		snprintf(err, errlen, "the password file %s is empty", path);
		return -1;
	}
	return 1;
}

int
cli_secret(const struct acct *a, char *buf, size_t len, int *is_token,
    char *err, size_t errlen)
{
	const char	*env;

	*is_token = 0;
	if (len < 2)
		return -1;
	buf[0] = '\0';
	if (a->oauth2_token_command != NULL) {
		*is_token = 1;
		return secret_command(a->oauth2_token_command, buf, len, err,
		    errlen);
	}
	if (a->auth_oauth2) {	/* built in: the refresh-token grant */
		*is_token = 1;
		return cli_oauth2_token(a, buf, len, err, errlen);
	}
	if (a->password_command != NULL)
		return secret_command(a->password_command, buf, len, err,
		    errlen);
	if (a->password_file != NULL)
		return secret_file(a->password_file, buf, len, err, errlen);
	if ((env = getenv("OUTPOST_PASSWORD")) != NULL && *env != '\0') {
		if (strlen(env) >= len) {
			snprintf(err, errlen, "OUTPOST_PASSWORD is too long");
			return -1;
		}
		memcpy(buf, env, strlen(env) + 1);
		return 1;
	}
	if (a->user != NULL) {
		snprintf(err, errlen, "no password for %s: give "
		    "--password-file, --password-command or set "
		    "OUTPOST_PASSWORD (never on the command line)", a->user);
		return -1;
	}
	return 0;
}

/* ---- submission ---- */

int
cli_exit_code(const struct smtpc_status *st)
{
	if (st->result == SMTPC_OK)
		return EX_OK;
	switch (st->err) {
	case SMTPC_E_REFUSED:
		return EX_UNAVAILABLE;
	case SMTPC_E_TIMEOUT:
		return st->step == SMTPC_STEP_CONNECT ? EX_UNAVAILABLE :
		    EX_TEMPFAIL;
	case SMTPC_E_NETWORK:
		return st->step == SMTPC_STEP_CONNECT ? EX_UNAVAILABLE :
		    EX_TEMPFAIL;
	case SMTPC_E_TLS:
	case SMTPC_E_TLS_PLAINTEXT:
	case SMTPC_E_GREETING_TLS:
	case SMTPC_E_VERIFY:
	case SMTPC_E_NOSTARTTLS:
	case SMTPC_E_PROTOCOL:
		return EX_PROTOCOL;
	case SMTPC_E_NOAUTH:
		return EX_NOPERM;
	case SMTPC_E_SIZE:
		return EX_DATAERR;
	case SMTPC_E_BODY:
		return EX_IOERR;
	case SMTPC_E_LOCAL:
	case SMTPC_E_STATE:
		return st->result == SMTPC_PERMFAIL ? EX_DATAERR : EX_SOFTWARE;
	case SMTPC_E_NONE:
	case SMTPC_E_REPLY:
		break;
	}
	if (st->step == SMTPC_STEP_AUTH)
		return EX_NOPERM;
	return st->result == SMTPC_PERMFAIL ? EX_UNAVAILABLE : EX_TEMPFAIL;
}

void
cli_report(const char *prefix, const struct acct *a,
    const struct smtpc_status *st)
{
	char	 buf[SMTPC_TEXT_MAX + 64];

	smtpc_status_format(st, buf, sizeof(buf));
	if (a->port == 0)	/* the local socket: a path, no port */
		fprintf(stderr, "outpost: %s: %s%s%s: %s\n", prefix, a->host,
		    st->err == SMTPC_E_REPLY || st->code > 0 ? " said at " :
		    "", st->err == SMTPC_E_REPLY || st->code > 0 ?
		    smtpc_step_name(st->step) : "", buf);
	else if (st->err == SMTPC_E_REPLY || st->code > 0)
		fprintf(stderr, "outpost: %s: %s:%d said at %s: %s\n", prefix,
		    a->host, a->port, smtpc_step_name(st->step), buf);
	else
		fprintf(stderr, "outpost: %s: %s:%d: %s\n", prefix, a->host,
		    a->port, buf);
	if (a->port == 0)
		return;
	if (st->code == 535)
		fprintf(stderr, "outpost: hint: the user name is the full "
		    "address and the password is wrong, or the account has "
		    "two-factor authentication on and needs an app "
		    "password\n");
	else if (st->code == 534)
		fprintf(stderr, "outpost: hint: this account requires an app "
		    "password; make one on the account page and use it "
		    "instead of your regular password\n");
	else if (st->err == SMTPC_E_TLS_PLAINTEXT)
		fprintf(stderr, "outpost: hint: port %d speaks STARTTLS; use "
		    "--tls starttls (or port 465 for TLS)\n", a->port);
	else if (st->err == SMTPC_E_TIMEOUT && st->step ==
	    SMTPC_STEP_GREETING && a->tls != ACCT_TLS_IMPLICIT)
		fprintf(stderr, "outpost: hint: no greeting; if port %d "
		    "expects TLS from the start use --tls implicit\n",
		    a->port);
	else if (st->err != SMTPC_E_REPLY && st->step == SMTPC_STEP_CONNECT)
		fprintf(stderr, "outpost: hint: run 'outpost doctor %s:%d' "
		    "for a step-by-step check\n", a->host, a->port);
}

int
cli_local_socket(const char *conf, char *path, size_t pathlen, char *domain,
    size_t domainlen, char *err, size_t errlen)
{
	struct config	 cfg;
	const char	*env = getenv("OUTPOST_CONFIG");
	char		 lerr[1024];
	int		 rc = 0;

	if (conf == NULL)
		conf = env != NULL && *env != '\0' ? env : CLI_SYSTEM_CONF;
	/* no daemon configured here, or not for us to read */
	if (access(conf, R_OK) != 0)
		return 0;
	if (config_load(&cfg, conf, lerr, sizeof(lerr)) == -1) {
		snprintf(err, errlen, "%s", lerr);
		return -1;
	}
	if (cfg.local_socket != NULL) {
		if (snprintf(path, pathlen, "%s", cfg.local_socket) >=
		    (int)pathlen || snprintf(domain, domainlen, "%s",
		    cfg.local_qualify_domain != NULL ?
		    cfg.local_qualify_domain : cfg.domain) >= (int)domainlen) {
			snprintf(err, errlen, "%s: [local] socket or domain too "
			    "long", conf);
			rc = -1;
		} else
			rc = 1;
	}
	config_free(&cfg);
	return rc;
}

/* Submission over the local outpostd's unix socket: no TLS, no AUTH. */
static int
submit_local(struct cli_submit *req, struct smtpc_status *st,
    int *session_level)
{
	struct sockaddr_un	 sun;
	struct cli_conn		 c;
	struct cli_conn_opts	 o;
	struct smtpc_msg	 m;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    req->local_socket) >= (int)sizeof(sun.sun_path)) {
		snprintf(st->text, sizeof(st->text), "socket path too long: %s",
		    req->local_socket);
		st->result = SMTPC_PERMFAIL;
		return EX_CONFIG;
	}
	memset(&o, 0, sizeof(o));
	o.tls = ACCT_TLS_NONE;
	o.verify = SMTPC_VERIFY_NONE;
	o.connect_timeout = req->connect_timeout > 0 ? req->connect_timeout :
	    10;
	o.timeout = req->timeout;
	if (cli_conn_open(&c, &o, (struct sockaddr *)&sun, sizeof(sun)) !=
	    SMTPC_OK) {
		*st = c.st;
		cli_conn_close(&c);
		return cli_exit_code(st);
	}
	if (req->verbose)
		fprintf(stderr, "outpost: connected to the local server at %s\n",
		    req->local_socket);
	memset(&m, 0, sizeof(m));
	m.from = req->from;
	m.rcpts = req->rcpts;
	m.nrcpts = req->nrcpts;
	m.body = req->body;
	m.body_8bit = 1;
	cli_conn_send(&c, &m);
	*st = c.st;
	*session_level = !(st->err == SMTPC_E_REPLY || st->err ==
	    SMTPC_E_SIZE || st->err == SMTPC_E_NONE);
	cli_conn_close(&c);
	return cli_exit_code(st);
}

int
cli_submit_run(struct cli_submit *req, struct smtpc_status *st,
    int *session_level)
{
	const struct acct	*a = req->a;
	struct addrinfo		 hints, *res = NULL, *ai;
	struct cli_conn		 c;
	struct cli_conn_opts	 o;
	struct smtpc_msg	 m;
	char			 port[16], secret[CLI_SECRET_MAX], err[512];
	int			 rc, gai, is_token = 0, have_secret;

	*session_level = 1;
	memset(st, 0, sizeof(*st));
	st->result = SMTPC_TEMPFAIL;
	st->err = SMTPC_E_LOCAL;
	if (req->local_socket != NULL)
		return submit_local(req, st, session_level);

	have_secret = cli_secret(a, secret, sizeof(secret), &is_token, err,
	    sizeof(err));
	if (have_secret == -1) {
		snprintf(st->text, sizeof(st->text), "%s", err);
		st->step = SMTPC_STEP_AUTH;
		return EX_NOPERM;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%d", a->port);
	if ((gai = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		snprintf(st->text, sizeof(st->text), "cannot resolve %s: %s",
		    a->host, gai_strerror(gai));
		st->step = SMTPC_STEP_CONNECT;
		explicit_bzero(secret, sizeof(secret));
		return gai == EAI_AGAIN || gai == EAI_SYSTEM ? EX_TEMPFAIL :
		    EX_NOHOST;
	}
	memset(&o, 0, sizeof(o));
	o.tls = a->tls;
	o.verify = a->tls_verify ? SMTPC_VERIFY_REQUIRED : SMTPC_VERIFY_NONE;
	o.ca_file = a->ca_file;
	o.tls_name = a->tls_servername != NULL ? a->tls_servername : a->host;
	o.helo = a->helo;
	o.connect_timeout = req->connect_timeout;
	o.timeout = req->timeout;
	o.allow_plain_auth = a->insecure_plaintext;

	rc = SMTPC_TEMPFAIL;
	memset(&c, 0, sizeof(c));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = cli_conn_open(&c, &o, ai->ai_addr, ai->ai_addrlen);
		if (rc == SMTPC_OK)
			break;
		*st = c.st;
		cli_conn_close(&c);
		/* only a failure to reach this address moves on */
		if (st->step != SMTPC_STEP_CONNECT)
			break;
		if (req->verbose && ai->ai_next != NULL)
			fprintf(stderr, "outpost: %s: %s; trying the next "
			    "address\n", a->host, st->text);
	}
	freeaddrinfo(res);
	if (rc != SMTPC_OK) {
		explicit_bzero(secret, sizeof(secret));
		return cli_exit_code(st);
	}
	if (req->verbose)
		fprintf(stderr, "outpost: connected to %s:%d (%s)\n", a->host,
		    a->port, smtpc_ssl(c.s) != NULL ?
		    tls_version_name(smtpc_ssl(c.s)) : "no TLS");
	if (have_secret == 1) {
		rc = cli_conn_auth(&c, a->user != NULL ? a->user : "", secret,
		    is_token);
		explicit_bzero(secret, sizeof(secret));
		if (rc != SMTPC_OK) {
			*st = c.st;
			cli_conn_close(&c);
			return cli_exit_code(st);
		}
	}
	memset(&m, 0, sizeof(m));
	m.from = req->from;
	m.rcpts = req->rcpts;
	m.nrcpts = req->nrcpts;
	m.body = req->body;
	m.body_8bit = 1;
	cli_conn_send(&c, &m);
	*st = c.st;
	/* a reply about the message is the message's fate; anything else
	 * (connection lost, timeout) is worth a retry */
	*session_level = !(st->err == SMTPC_E_REPLY || st->err ==
	    SMTPC_E_SIZE || st->err == SMTPC_E_NONE);
	cli_conn_close(&c);
	return cli_exit_code(st);
}
