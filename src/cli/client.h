/*
 * client — what `outpost send`, `sendmail`, `outbox` and `doctor` share:
 * running the smtpc client synchronously on a private event_base, getting
 * the secret (password file, password command, environment, OAuth2 token
 * command — never argv), submitting one message to an account, and the
 * sysexits(3) code for a result.
 *
 * Exit codes (also in outpost(1)):
 *   EX_OK          accepted
 *   EX_NOHOST      the server's name does not resolve
 *   EX_UNAVAILABLE connection refused / timed out, or a 5xx refusal of
 *                  the message (MAIL, RCPT, DATA)
 *   EX_TEMPFAIL    a 4xx reply, the connection lost mid-way
 *   EX_NOPERM      AUTH refused (535, 534) or impossible (no mechanism,
 *                  no TLS), no secret available
 *   EX_PROTOCOL    TLS failed (handshake, certificate, wrong security type
 *                  for the port) or the server broke the protocol
 *   EX_CONFIG      bad account settings
 *   EX_SOFTWARE / EX_OSERR  local failures
 */
#ifndef OUTPOST_CLI_CLIENT_H
#define OUTPOST_CLI_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#include "cli/accounts_file.h"
#include "smtpc/smtpc.h"

struct event_base;

#define CLI_SECRET_MAX	8192

/* One connection driven synchronously. */
struct cli_conn {
	struct event_base	*base;
	SSL_CTX			*ctx;
	struct smtpc		*s;
	int			 done;
	struct smtpc_status	 st;
};

struct cli_conn_opts {
	int	 tls;			/* ACCT_TLS_* */
	int	 verify;		/* SMTPC_VERIFY_* */
	const char *ca_file;
	const char *tls_name;		/* NULL = none */
	const char *helo;		/* NULL = this host's name */
	int	 connect_timeout;	/* seconds; 0 = 30 */
	int	 timeout;		/* per command; 0 = smtpc defaults */
	int	 allow_plain_auth;
};

/* Connects (greeting, EHLO, STARTTLS) to one address.  Returns the
 * SMTPC_* result; c->st has the status.  The connection stays open
 * (c->s != NULL) even on failure, for the doctor's questions; call
 * cli_conn_close() in every case. */
int	cli_conn_open(struct cli_conn *c, const struct cli_conn_opts *o,
	    const struct sockaddr *sa, socklen_t salen);
int	cli_conn_auth(struct cli_conn *c, const char *user,
	    const char *secret, int is_token);
int	cli_conn_send(struct cli_conn *c, struct smtpc_msg *m);
/* QUIT when still connected, then frees everything. */
void	cli_conn_close(struct cli_conn *c);

/* The name for EHLO: gethostname(), or "localhost". */
const char *cli_helo_name(void);

/*
 * The account's secret into buf: oauth2_token_command (then *is_token =
 * 1), else password_command, else password_file, else $OUTPOST_PASSWORD.
 * Returns 1 with a secret, 0 when the account has no source (and no
 * user), -1 with a message in err.  Wipe buf after use.
 */
int	cli_secret(const struct acct *a, char *buf, size_t len, int *is_token,
	    char *err, size_t errlen);

/*
 * Submits one message to account a (resolving its host, trying each
 * address until one connects, AUTH when a->user is set).  rcpts get
 * per-recipient results.  Returns a sysexits code; st gets the status
 * that decided it and *session_level is set to 1 when the failure was not
 * about this message (connection, TLS, AUTH: a later retry may succeed),
 * 0 when the server judged the message or its recipients.
 */
struct cli_submit {
	const struct acct	*a;
	const char		*from;
	struct smtpc_rcpt	*rcpts;
	size_t			 nrcpts;
	struct smtpc_body	 body;
	int			 connect_timeout;
	int			 timeout;
	int			 verbose;	/* progress lines on stderr */
	/* set: submit over this unix socket (the local outpostd's [local]
	 * listener) instead of a->host: no TLS, no AUTH — the daemon knows
	 * us by our uid */
	const char		*local_socket;
};
int	cli_submit_run(struct cli_submit *req, struct smtpc_status *st,
	    int *session_level);

/*
 * The local outpostd's [local] socket, from its configuration: conf, else
 * $OUTPOST_CONFIG, else /etc/outpost/outpost.conf.  Returns 1 with the
 * socket path and the domain local users send as (LOGIN@domain), 0 when
 * there is no readable configuration or it has no [local] socket, -1 when
 * the configuration is broken (message in err).
 */
#define CLI_SYSTEM_CONF	"/etc/outpost/outpost.conf"
int	cli_local_socket(const char *conf, char *path, size_t pathlen,
	    char *domain, size_t domainlen, char *err, size_t errlen);

/* The sysexits code for a status. */
int	cli_exit_code(const struct smtpc_status *st);

/* Prints "outpost: PREFIX: the server said: 535 5.7.8 ..." (or our own
 * words) and a hint line for the usual causes. */
void	cli_report(const char *prefix, const struct acct *a,
	    const struct smtpc_status *st);

#endif
