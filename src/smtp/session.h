/*
 * session — one SMTP submission session (RFC 5321, 6409, 3207, 8314, 4954,
 * 3030): the state machine, its facts and its transaction.
 *
 * Three things are kept apart (STYLE.md 3): the state (one enum, changed
 * only by session_enter()), the facts (TLS on, EHLO seen, authenticated)
 * and the transaction (created at MAIL, gone at the end of DATA/BDAT or
 * RSET).  The verb table in session_cmd.c holds each verb's
 * preconditions, so each handler only parses its own arguments.
 *
 * Ownership and lifetime: a session belongs to the worker that accepted
 * it and is only touched on that worker's thread.  It is never freed
 * inside a callback chain that still uses it: session_close() marks it and
 * the free happens from the loop once the output is flushed.  Async work
 * (password check, spool commit) parks the session in a wait state under a
 * small heap record; when the session goes away first, the record is
 * detached and the result is dropped.
 */
#ifndef OUTPOST_SMTP_SESSION_H
#define OUTPOST_SMTP_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "queue/spool.h"
#include "smtp/dataread.h"

struct smtp_worker;
struct smtp_listener;
struct bufferevent;
struct msgfilter;
struct event;

enum smtp_state {
	SMTP_ST_HANDSHAKE,	/* implicit TLS: waiting for the handshake */
	SMTP_ST_INIT,		/* greeted; before EHLO/HELO */
	SMTP_ST_READY,		/* EHLO seen, no transaction */
	SMTP_ST_MAIL,		/* MAIL accepted */
	SMTP_ST_RCPT,		/* at least one RCPT accepted */
	SMTP_ST_AUTH,		/* waiting for a SASL response line */
	SMTP_ST_DATA,		/* reading DATA content */
	SMTP_ST_BDAT,		/* reading a BDAT chunk */
	SMTP_ST_WAIT,		/* async work pending; input is not read */
	SMTP_ST_STARTTLS,	/* 220 sent, switching to TLS when flushed */
	SMTP_ST_CLOSING,	/* flushing the last reply, then freed */
};

/* Facts about the connection. */
#define SMTP_F_TLS	0x01	/* TLS is up */
#define SMTP_F_EHLO	0x02	/* EHLO (not HELO) was used */
#define SMTP_F_HELO	0x04	/* EHLO or HELO seen since the last reset */
#define SMTP_F_AUTH	0x08	/* authenticated */
#define SMTP_F_DRAIN	0x10	/* server stopping: close after this step */
#define SMTP_F_LOCAL	0x20	/* [local] unix socket: user from the peer uid */

struct smtp_tx {
	struct envelope	 env;
	uint64_t	 size_param;	/* MAIL SIZE= */
	struct spool_msg *msg;		/* open while DATA/BDAT is read */
	struct msgfilter *mf;		/* header checks + DKIM, with msg */
	struct dataread	 dr;
	int		 bdat;		/* BDAT used in this transaction */
	int		 bdat_err;	/* sticky BDAT failure: reply code */
	char		 bdat_errtext[128];
	/* minimum data rate (session_data.c, session_data_rate()) */
	uint64_t	 rate_bytes;	/* content octets received so far */
	int64_t		 rate_start_ms;	/* monotonic ms of the first; 0 = none */
};

struct quota;

struct smtp_pending {
	struct smtp_session *s;		/* NULL once the session is gone */
	/* a message commit: whom it is charged to once queued (also when
	 * the client left meanwhile); quota NULL = nobody */
	struct quota	*quota;
	char		 qname[300];
	size_t		 nrcpts;
};

struct smtp_session {
	struct smtp_session	*prev, *next;	/* worker's list */
	struct smtp_worker	*w;
	const struct smtp_listener *lst;
	struct bufferevent	*bev;
	evutil_socket_t		 fd;
	SSL			*ssl;		/* owned by bev once TLS is up */
	struct event		*free_ev;	/* deferred free */

	char			 id[24];	/* "c-1a2b3c" for log lines */
	char			 ip[64];	/* client address, text */
	char			 peer[80];	/* "[ip]:port" */

	enum smtp_state		 state;
	enum smtp_state		 resume;	/* state after SMTP_ST_WAIT */
	unsigned		 flags;		/* SMTP_F_* */
	char			 helo[256];
	char			 user[256];	/* authenticated login */
	char			 tlsinfo[128];	/* for Received: */
	char			 tlsproto[16];

	struct smtp_tx		*tx;
	int			 nerrors;
	int			 skipping;	/* discarding an over-long line */
	int			 uncounted;	/* per-address count released */
	long			 local_uid;	/* SMTP_F_LOCAL: the peer's uid */
	const char		*verb;		/* command being answered, for logs */

	/* account security (session_cmd.c) */
	char			*aliases;	/* "a\0b\0\0" of the login, heap */
	int			 trusted;	/* client in the listener's trusted_networks */
	char			 trusted_net[64]; /* that network, "net:CIDR" */
	int			 throttled;	/* a 454 was sent: next time 421 */
	struct event		*auth_delay_ev;	/* delayed AUTH failure reply */
	int			 auth_delay_code;
	char			 auth_delay_text[200];

	/* SASL exchange in progress */
	int			 auth_mech;	/* 1 PLAIN, 2 LOGIN, 3 XOAUTH2, 4 OAUTHBEARER */
	int			 auth_oauth_fail; /* error challenge sent: next line gets 535 */
	char			 auth_login_user[1025];
	struct smtp_pending	*pending;

	/* BDAT chunk being read */
	uint64_t		 bdat_size;	/* announced size of this chunk */
	uint64_t		 bdat_left;
	int			 bdat_last;
	int			 bdat_discard;	/* chunk is thrown away */
	int			 bdat_reply;	/* code to send after it (0: normal) */
	char			 bdat_text[128];
};

/* Takes over an accepted socket (counted already). Returns 0 or -1. */
int	smtp_session_start(struct smtp_worker *w, const struct smtp_listener *l,
	    evutil_socket_t fd, const struct sockaddr *sa, int salen);

/* Sends 421 (if text) and closes; see the lifetime note above. */
void	smtp_session_close(struct smtp_session *s, const char *text);
/* Server drain: 421 now if idle, else after the current step. */
void	smtp_session_drain(struct smtp_session *s);
/* Immediate teardown (worker exit). */
void	smtp_session_free(struct smtp_session *s);

/* Internal API shared by session*.c */
void	session_enter(struct smtp_session *s, enum smtp_state st);
void	session_reply(struct smtp_session *s, int code, const char *esc,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	session_reply_raw(struct smtp_session *s, const char *text);
void	session_error(struct smtp_session *s);	/* count a protocol error */
void	session_process(struct smtp_session *s);
void	session_command(struct smtp_session *s, char *line, size_t len);
void	session_auth_line(struct smtp_session *s, char *line, size_t len);
void	session_tx_free(struct smtp_session *s);
void	session_reset(struct smtp_session *s);	/* after STARTTLS */
int	session_data_start(struct smtp_session *s, int bdat);
void	session_data_input(struct smtp_session *s);
void	session_bdat_input(struct smtp_session *s);
void	session_starttls_switch(struct smtp_session *s);
void	session_resume(struct smtp_session *s);
struct smtp_pending *session_pending_new(struct smtp_session *s);
/* 1 when addr is the login or one of its aliases (session_cmd.c). */
int	session_sender_owned(const struct smtp_session *s, const char *addr);
/* Whose quota this session's mail counts against: the login, the trusted
 * network ("net:CIDR"), or NULL (session_cmd.c). */
const char *session_quota_name(const struct smtp_session *s);
void	session_pending_done(struct smtp_pending *p);

#define SMTP_LINE_MAX		1000	/* RFC 5321 4.5.3.1.4 plus extension room */
#define SMTP_AUTH_LINE_MAX	12288	/* RFC 4954 4 */
#define SMTP_INPUT_MAX		(256 * 1024) /* read high-water mark */

#endif
