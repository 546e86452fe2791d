/*
 * smtpc — the one SMTP client of outpost (RFC 5321, 3207, 4954, 2920,
 * 1870, 6152, 6531, 3461, 8314), event-driven on libevent.
 *
 * Used by the delivery engine (many concurrent sessions on the worker
 * loops) and by `outpost send`, `outpost sendmail` and `outpost doctor`
 * (one session on their own event_base).  A session is one TCP
 * connection to one address; DNS, MX ordering and retry policy belong to
 * the caller.
 *
 * Model: asynchronous operations, at most one outstanding at a time.
 *
 *   s = smtpc_new(base, &params, cb, arg);
 *   smtpc_connect(s, sa, salen);   -> cb(s, SMTPC_OP_CONNECT, &st, arg)
 *        connect, greeting, EHLO (HELO fallback), STARTTLS + EHLO again
 *        (or implicit TLS before the greeting), per params.tls/verify.
 *   smtpc_auth(s, ...);            -> cb(s, SMTPC_OP_AUTH, &st, arg)
 *   smtpc_send(s, &msg);           -> cb(s, SMTPC_OP_SEND, &st, arg)
 *        MAIL, RCPT..., DATA (pipelined when PIPELINING is offered),
 *        the body dot-stuffed on the fly, the final dot.  Per-recipient
 *        results land in msg.rcpts[i]; may be called again on the same
 *        connection (an RSET is sent first when the server still holds a
 *        transaction).
 *   smtpc_rset(s);                 -> cb(s, SMTPC_OP_RSET, &st, arg)
 *   smtpc_quit(s);                 -> cb(s, SMTPC_OP_QUIT, &st, arg)
 *   smtpc_free(s);
 *
 * Callbacks always run from the event loop, never from inside the API
 * call that started the operation (an immediate failure is queued with
 * event_active()).  The callback may call any smtpc_* function on s,
 * including smtpc_free(s) (the free is then deferred until the callback
 * returns).  st points to session memory valid only during the callback.
 *
 * Failure: every operation ends with exactly one callback whose status
 * says SMTPC_OK, SMTPC_TEMPFAIL or SMTPC_PERMFAIL (only a 5xx reply, or a
 * message larger than the server's SIZE, is permanent — chasquid
 * courier), the step it ended in, the error kind and the server's reply
 * text (or our own words for local errors).  After a failed CONNECT, or
 * any SMTPC_E_ other than SMTPC_E_REPLY, the connection is unusable: free
 * the session.  After SMTPC_E_REPLY the connection can be reused (send
 * another message or QUIT) unless the code was 421.
 *
 * Bounds (hostile servers): a reply line may be at most SMTPC_LINE_MAX
 * octets and a reply at most SMTPC_LINES_MAX lines; beyond, the session
 * fails with SMTPC_E_PROTOCOL (no buffer growth).  Every step has its own
 * deadline (an evtimer, not an idle timer, so a server that dribbles one
 * byte a second still times out); the body transfer's deadline is per
 * block of progress (RFC 5321 4.5.3.2.5).
 *
 * Threads: a session belongs to the thread running its event_base.  The
 * SSL_CTX may be shared by many sessions on many threads (OpenSSL
 * reference-counts it; configure it before sharing).
 */
#ifndef OUTPOST_SMTPC_H
#define OUTPOST_SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct event_base;
struct smtpc;

/* Limits on what a server may send us. */
#define SMTPC_LINE_MAX		4096	/* octets per reply line, CRLF included */
#define SMTPC_LINES_MAX		100	/* lines per (multi-line) reply */
#define SMTPC_TEXT_MAX		1024	/* reply text kept in a status */
#define SMTPC_RCPT_TEXT_MAX	512	/* reply text kept per recipient */

/* Results.  Values match the delivery engine's DLV_OK/TEMPFAIL/PERMFAIL
 * ordering (0/1/2) so that "worse" compares greater. */
enum smtpc_result {
	SMTPC_OK = 0,
	SMTPC_TEMPFAIL = 1,	/* 4xx, network, timeout, TLS, local error */
	SMTPC_PERMFAIL = 2,	/* 5xx, or message over the server's SIZE */
};

/* What went wrong (status.err). */
enum smtpc_err {
	SMTPC_E_NONE = 0,
	SMTPC_E_REPLY,		/* the server answered with a failure code */
	SMTPC_E_TIMEOUT,	/* the step's deadline passed */
	SMTPC_E_REFUSED,	/* TCP connection refused (RST) */
	SMTPC_E_NETWORK,	/* other socket error, or the server closed */
	SMTPC_E_TLS,		/* handshake failed (text has OpenSSL's reason) */
	SMTPC_E_TLS_PLAINTEXT,	/* implicit TLS, but the server spoke
				 * plaintext (probably a STARTTLS port) */
	SMTPC_E_GREETING_TLS,	/* plaintext expected, but the server sent
				 * TLS records (probably an implicit-TLS port) */
	SMTPC_E_VERIFY,		/* certificate not trusted / wrong name /
				 * expired, with params.verify = VERIFY */
	SMTPC_E_NOSTARTTLS,	/* TLS required but STARTTLS not offered
				 * (or refused) */
	SMTPC_E_NOAUTH,		/* AUTH not offered, no usable mechanism, or
				 * refused over plaintext */
	SMTPC_E_SIZE,		/* message larger than the server's SIZE */
	SMTPC_E_PROTOCOL,	/* malformed or oversized reply */
	SMTPC_E_BODY,		/* the body source failed (read error) */
	SMTPC_E_LOCAL,		/* out of memory, bad arguments, socket() */
	SMTPC_E_STATE,		/* operation not allowed now (another one is
				 * running, or the connection is gone) */
};

/* The step an operation ended in (status.step); also what the session is
 * doing, for logs. */
enum smtpc_step {
	SMTPC_STEP_NONE = 0,
	SMTPC_STEP_CONNECT,
	SMTPC_STEP_TLS,		/* implicit TLS or post-STARTTLS handshake */
	SMTPC_STEP_GREETING,
	SMTPC_STEP_EHLO,	/* EHLO or the HELO fallback */
	SMTPC_STEP_STARTTLS,
	SMTPC_STEP_AUTH,
	SMTPC_STEP_RSET,
	SMTPC_STEP_MAIL,
	SMTPC_STEP_RCPT,
	SMTPC_STEP_DATA,	/* the DATA command */
	SMTPC_STEP_BODY,	/* body transfer and the reply to the dot */
	SMTPC_STEP_QUIT,
};

enum smtpc_op {
	SMTPC_OP_CONNECT = 1,
	SMTPC_OP_AUTH,
	SMTPC_OP_SEND,
	SMTPC_OP_RSET,
	SMTPC_OP_QUIT,
};

enum smtpc_tls_mode {
	SMTPC_TLS_NONE = 0,	/* plaintext, never STARTTLS */
	SMTPC_TLS_OPPORTUNISTIC,/* STARTTLS when offered, else plaintext (MX
				 * delivery default); a failed handshake is
				 * SMTPC_E_TLS (the caller may retry with NONE) */
	SMTPC_TLS_STARTTLS,	/* STARTTLS required (submission port 587) */
	SMTPC_TLS_IMPLICIT,	/* TLS from the first byte (port 465, RFC 8314) */
};

enum smtpc_verify {
	SMTPC_VERIFY_NONE = 0,	/* encrypt, do not look at the certificate */
	SMTPC_VERIFY_OPPORTUNISTIC, /* check, record in smtpc_tls_verified(),
				 * carry on either way (logging) */
	SMTPC_VERIFY_REQUIRED,	/* chain must verify against the CA store
				 * and the name must match tls_name:
				 * otherwise SMTPC_E_VERIFY */
};

/* SASL mechanisms (bits in caps.auth; values for smtpc_auth()). */
#define SMTPC_AUTH_PLAIN	0x01
#define SMTPC_AUTH_LOGIN	0x02
#define SMTPC_AUTH_XOAUTH2	0x04
#define SMTPC_AUTH_OAUTHBEARER	0x08
#define SMTPC_AUTH_CRAM_MD5	0x10	/* recognised, never used */
#define SMTPC_AUTH_AUTO		0	/* pick: password -> PLAIN, else LOGIN;
					 * token -> XOAUTH2, else OAUTHBEARER */

/* Capability flags (caps.flags), from the EHLO reply. */
#define SMTPC_CAP_ESMTP		0x001	/* EHLO accepted (not HELO) */
#define SMTPC_CAP_SIZE		0x002
#define SMTPC_CAP_PIPELINING	0x004
#define SMTPC_CAP_STARTTLS	0x008
#define SMTPC_CAP_AUTH		0x010
#define SMTPC_CAP_8BITMIME	0x020
#define SMTPC_CAP_SMTPUTF8	0x040
#define SMTPC_CAP_DSN		0x080
#define SMTPC_CAP_CHUNKING	0x100
#define SMTPC_CAP_ENHANCEDSTATUSCODES 0x200

struct smtpc_caps {
	unsigned	 flags;		/* SMTPC_CAP_* */
	uint64_t	 size;		/* SIZE value; 0 = none or no limit */
	unsigned	 auth;		/* SMTPC_AUTH_* bits offered */
	char		 auth_list[256];/* AUTH mechanisms as advertised */
	char		 domain[256];	/* the name on the first EHLO line */
};

struct smtpc_status {
	enum smtpc_result result;
	enum smtpc_step	 step;
	enum smtpc_err	 err;
	int		 code;		/* reply code, 0 when none */
	char		 enhanced[16];	/* "5.7.8" when the reply had one */
	/* Server reply text (multi-line replies joined with a space,
	 * without codes; control bytes escaped), or our own words when
	 * err is not SMTPC_E_REPLY.  Truncated at SMTPC_TEXT_MAX. */
	char		 text[SMTPC_TEXT_MAX];
};

struct smtpc_params {
	/* Name for EHLO/HELO (required; a FQDN or an address literal). */
	const char	*helo;
	enum smtpc_tls_mode tls;
	enum smtpc_verify verify;
	/* Client context from tls_client_ctx_new(ca_file, 0, ...): smtpc
	 * applies the verify policy itself after the handshake, so create
	 * the context with verify = 0 (with 1, OpenSSL aborts the handshake
	 * and the error is less clear).  Required unless tls == NONE.  Not
	 * owned; must outlive the session. */
	SSL_CTX		*ssl_ctx;
	/* Name to send as SNI and to match the certificate against (host
	 * name, or an address literal); NULL = no SNI and, with
	 * VERIFY_REQUIRED, only the chain is checked. */
	const char	*tls_name;
	/* Bind the socket to this local address before connecting (port 0
	 * normally); NULL = any. */
	const struct sockaddr *source;
	socklen_t	 source_len;
	/* Per-step deadlines in seconds; 0 = the default in parentheses
	 * (RFC 5321 4.5.3.2 where it gives one). */
	int		 timeout_connect;	/* (30) */
	int		 timeout_greeting;	/* (300) */
	int		 timeout_tls;		/* (60) handshake */
	int		 timeout_cmd;		/* (300) EHLO, STARTTLS, AUTH,
						 * MAIL, RCPT, RSET, QUIT */
	int		 timeout_data;		/* (120) reply to DATA */
	int		 timeout_block;		/* (180) body: per block of
						 * progress */
	int		 timeout_dot;		/* (600) reply to the final dot */
	/* Allow AUTH over a connection without TLS (tests, localhost). */
	int		 allow_plaintext_auth;
	/* Prefix for debug log lines (queue id or "send"); NULL = "smtpc". */
	const char	*log_id;
};

/* Where the message body (the RFC 5322 text) comes from.  Line ends are
 * normalised to CRLF (LF or a lone CR become CRLF), lines starting with a
 * dot are dot-stuffed, and a final CRLF is added when missing.  Exactly one
 * source: fd >= 0, else read != NULL, else buf; prefix, when set, goes
 * before it (header fields added at delivery, e.g. DKIM-Signature). */
struct smtpc_body {
	const char	*prefix;	/* not copied; NULL = none */
	size_t		 prefixlen;
	int		 fd;		/* read with pread() from offset ... */
	off_t		 offset;
	off_t		 length;	/* ... this many bytes, or -1 = to EOF */
	/* Returns bytes read (> 0), 0 at the end, -1 on error.  Called from
	 * the event loop: must not block for long. */
	ssize_t		(*read)(void *arg, char *buf, size_t len);
	void		*read_arg;
	const char	*buf;		/* in memory, not copied */
	size_t		 buflen;
	/* Size in octets for MAIL SIZE= (approximate is fine, RFC 1870);
	 * 0 = unknown, not sent. */
	uint64_t	 size;
};

struct smtpc_rcpt {
	const char	*addr;		/* without <>; in */
	const char	*params;	/* extra RCPT parameters (e.g. DSN
					 * "NOTIFY=FAILURE ORCPT=rfc822;x"),
					 * or NULL; in */
	/* out: this recipient's outcome: the RCPT reply when it failed
	 * there, else the reply to the final dot (or the failure that
	 * ended the transaction). */
	enum smtpc_result result;
	int		 code;
	char		 enhanced[16];
	char		 text[SMTPC_RCPT_TEXT_MAX];
};

struct smtpc_msg {
	const char	*from;		/* reverse path without <>; "" = null */
	/* Extra MAIL parameters ("RET=HDRS ENVID=x"), or NULL.  smtpc adds
	 * SIZE= itself (when offered and body.size is set) and BODY=8BITMIME
	 * / SMTPUTF8 when the flags below ask and the server offers them. */
	const char	*mail_params;
	int		 body_8bit;	/* add BODY=8BITMIME when offered */
	int		 smtputf8;	/* add SMTPUTF8; fails with PERMFAIL
					 * (E_REPLY-like, code 0) when not
					 * offered */
	struct smtpc_rcpt *rcpts;	/* nrcpts entries; not copied: must
					 * stay valid until the callback */
	size_t		 nrcpts;
	struct smtpc_body body;		/* not copied either */
};

/*
 * One callback per operation.  For SMTPC_OP_SEND, st is the result of the
 * message as a whole: SMTPC_OK when at least one recipient was accepted
 * and the data was accepted (look at msg->rcpts[i].result for the rest),
 * otherwise the failure that ended it (all recipients refused: the worst
 * RCPT reply, PERMFAIL only when every refusal was a 5xx).
 */
typedef void	smtpc_cb(struct smtpc *s, enum smtpc_op op,
		    const struct smtpc_status *st, void *arg);

/* Returns NULL when out of memory or params are invalid (helo missing, TLS
 * without ssl_ctx).  params' strings are copied; ssl_ctx and source are
 * not (source is only used by smtpc_connect). */
struct smtpc	*smtpc_new(struct event_base *base,
		    const struct smtpc_params *params, smtpc_cb *cb, void *arg);

/* Each returns 0 when the operation started (its callback will come), or
 * -1 when it could not start (another operation running, bad arguments);
 * then no callback comes. */
int	smtpc_connect(struct smtpc *s, const struct sockaddr *sa,
	    socklen_t salen);
/* mech: SMTPC_AUTH_* or SMTPC_AUTH_AUTO.  secret: the password, or for
 * XOAUTH2/OAUTHBEARER the access token (is_token != 0).  Both are copied
 * and wiped after use; never logged. */
int	smtpc_auth(struct smtpc *s, unsigned mech, const char *user,
	    const char *secret, int is_token);
int	smtpc_send(struct smtpc *s, struct smtpc_msg *msg);
int	smtpc_rset(struct smtpc *s);
/* Sends QUIT and waits (timeout_cmd) for the reply or the close; the
 * callback reports SMTPC_OK either way unless nothing could be sent. */
int	smtpc_quit(struct smtpc *s);
/* 1 when s is connected, between operations, and the server has not
 * closed the connection meanwhile (an idle connection may be reused). */
int	smtpc_idle_ok(const struct smtpc *s);
/* Closes the connection without QUIT (if any) and frees.  Safe inside the
 * callback; NULL is a no-op. */
void	smtpc_free(struct smtpc *s);

/* Facts, valid after SMTPC_OP_CONNECT succeeded (and for the doctor, also
 * after it failed at a later step than the one that sets them). */
const struct smtpc_caps *smtpc_caps(const struct smtpc *s);
/* The greeting's text (first line, escaped), "" before it. */
const char	*smtpc_greeting(const struct smtpc *s);
/* The SSL of the connection, NULL when TLS is not up.  For
 * tls_describe(), SSL_get0_peer_certificate() and the like; do not read or write it. */
SSL		*smtpc_ssl(const struct smtpc *s);
/* 1 when the certificate verified (chain and tls_name), 0 when it did not
 * (then *why, if not NULL, points to X509_verify_cert_error_string()),
 * -1 when TLS is not up. */
int		 smtpc_tls_verified(const struct smtpc *s, const char **why);
/* The step the session is in now (for "timed out in STEP" logs). */
enum smtpc_step	 smtpc_step_now(const struct smtpc *s);

/* Words for log lines and errors: "connect", "greeting", "EHLO", ... */
const char	*smtpc_step_name(enum smtpc_step step);
const char	*smtpc_result_name(enum smtpc_result r); /* ok/deferred/bounced */
/* "535 5.7.8 Username and Password not accepted" for a reply, the text for
 * other errors.  Returns buf. */
char		*smtpc_status_format(const struct smtpc_status *st, char *buf,
		    size_t len);

/* ---- Building blocks, exposed for the unit tests and the doctor ---- */

/* Incremental reply parser (reply.c).  Feed it one line at a time,
 * without CRLF; it checks the code (2xx-5xx, same code on every line,
 * '-' or ' ' or end after it) and the line count, and keeps the text. */
struct smtpc_reply {
	int		 code;
	int		 nlines;
	char		 enhanced[16];
	char		 text[SMTPC_TEXT_MAX];
	size_t		 textlen;
};
enum smtpc_reply_rc {
	SMTPC_REPLY_MORE = 0,	/* a continuation line; feed the next */
	SMTPC_REPLY_DONE = 1,	/* last line seen; r is complete */
	SMTPC_REPLY_BAD = -1,	/* malformed, too long or too many lines */
};
void	smtpc_reply_init(struct smtpc_reply *r);
/* line is untrusted, len <= SMTPC_LINE_MAX - 2 is the caller's job (longer
 * is BAD here too).  textp and textlenp, when not NULL, get the line's
 * text after the code and separator (EHLO keywords). */
int	smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len,
	    const char **textp, size_t *textlenp);
/* Parses one EHLO keyword line (text after "250-") into caps. */
void	smtpc_caps_parse_line(struct smtpc_caps *caps, const char *text,
	    size_t len);

/* On-the-fly CRLF normalisation and dot-stuffing (body.c). */
struct smtpc_stuff {
	int	 bol;		/* at the beginning of a line */
	int	 cr;		/* a CR is pending */
};
void	smtpc_stuff_init(struct smtpc_stuff *st);
/* Appends the transformed in[0..len) to out (an evbuffer).  Returns 0 or
 * -1 (out of memory). */
struct evbuffer;
int	smtpc_stuff_add(struct smtpc_stuff *st, const char *in, size_t len,
	    struct evbuffer *out);
/* Ends the body: pending CR, missing final CRLF, then ".\r\n". */
int	smtpc_stuff_end(struct smtpc_stuff *st, struct evbuffer *out);

/* Base64 for SASL (RFC 4648, no line breaks).  Returns the output length
 * (NUL-terminated) or -1 when out is too small / in is not valid. */
int	smtpc_b64_encode(const unsigned char *in, size_t len, char *out,
	    size_t outlen);
int	smtpc_b64_decode(const char *in, size_t len, unsigned char *out,
	    size_t outlen);

#endif
