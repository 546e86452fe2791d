/*
 * parse — the SMTP command line and its arguments, as pure functions over
 * untrusted input.
 *
 * A command line reaches these functions without its CRLF, already checked
 * by the session for length, NUL, and bare CR/LF.  Nothing here allocates
 * except smtp_parse_mail/rcpt (into the caller's struct, freed by
 * smtp_path_clear).  Limits (RFC 5321 4.5.3.1): local part 64 octets,
 * domain 255, path 256.
 */
#ifndef OUTPOST_SMTP_PARSE_H
#define OUTPOST_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_V_UNKNOWN = 0,
	SMTP_V_HELO, SMTP_V_EHLO, SMTP_V_STARTTLS, SMTP_V_AUTH, SMTP_V_MAIL,
	SMTP_V_RCPT, SMTP_V_DATA, SMTP_V_BDAT, SMTP_V_RSET, SMTP_V_NOOP,
	SMTP_V_QUIT, SMTP_V_VRFY, SMTP_V_EXPN, SMTP_V_HELP,
	SMTP_V_HTTP,		/* GET/POST/HEAD/PUT/CONNECT/OPTIONS...: close at once */
};

/*
 * Splits "VERB args": the verb is matched case-insensitively; *args points
 * into line after the single space (or at "" when none).  MAIL and RCPT
 * are recognised by "MAIL FROM:" / "RCPT TO:" prefixes (case-insensitive;
 * a space after the colon is tolerated, as many clients send it) and *args
 * then points after the colon.  "MAIL" without "FROM:" returns
 * SMTP_V_MAIL with *args = NULL (a syntax error for the caller).
 */
enum smtp_verb smtp_parse_verb(const char *line, const char **args);

/* The address from MAIL/RCPT with its ESMTP parameters. */
struct smtp_path {
	char	 addr[257];	/* without <>, "" for the null sender <> */
	int	 utf8;		/* addr holds non-ASCII octets */
	/* parameters */
	int	 has_size;
	uint64_t size;		/* SIZE= (RFC 1870) */
	int	 body;		/* 0 unset, 1 7BIT, 2 8BITMIME, 3 BINARYMIME */
	int	 smtputf8;	/* SMTPUTF8 (RFC 6531) */
	int	 auth_given;	/* AUTH= (RFC 4954 5); value ignored */
	char	*envid;		/* ENVID= (RFC 3461), xtext as given, or NULL */
	int	 ret;		/* 0 unset, 1 FULL, 2 HDRS */
	unsigned notify;	/* RCPT NOTIFY= flags as ENV_NOTIFY_* in queue/spool.h */
	char	*orcpt;		/* ORCPT= as given, or NULL */
};

enum smtp_parse_status {
	SMTP_P_OK = 0,
	SMTP_P_SYNTAX = -1,	/* bad path syntax: 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	SMTP_P_TOOLONG = -2,	/* local part > 64, domain > 255, path > 256: 501 */
	SMTP_P_PARAM = -3,	/* unknown or malformed parameter: 555 5.5.4 */
	SMTP_P_UTF8 = -4,	/* non-ASCII address without SMTPUTF8: 553 5.6.7 */
};

/*
 * Parses "<addr> [PARAM[=VALUE] ...]" after "MAIL FROM:".  allow_dsn
 * enables ENVID/RET (otherwise they are SMTP_P_PARAM).  The null path <>
 * is valid for MAIL.  A source route "<@a,@b:user@d>" is accepted and the
 * route dropped (RFC 5321 4.1.2, C.).  Returns smtp_parse_status.
 */
int	smtp_parse_mail(const char *args, int allow_dsn, struct smtp_path *out);
/* The same after "RCPT TO:"; <> is a syntax error; "<Postmaster>" is
 * accepted.  allow_dsn enables NOTIFY/ORCPT. utf8_ok says whether the
 * transaction declared SMTPUTF8. */
int	smtp_parse_rcpt(const char *args, int allow_dsn, int utf8_ok,
	    struct smtp_path *out);
void	smtp_path_clear(struct smtp_path *p);

/* Checks a Mailbox (local@domain, RFC 5321 4.1.2: dot-string or
 * quoted-string local part; domain name or address literal [1.2.3.4] /
 * [IPv6:...]).  utf8 allows non-ASCII octets (valid UTF-8 required).
 * Returns SMTP_P_OK or an error status. */
int	smtp_mailbox_valid(const char *addr, size_t len, int utf8);

/* Checks the EHLO/HELO argument: a domain or an address literal, at most
 * 255 octets, printable ASCII.  Returns 0 if acceptable. */
int	smtp_helo_valid(const char *arg);

/* Parses the BDAT argument "SIZE [LAST]".  Returns 0 and fills size/last,
 * or -1.  size is bounded by the caller. */
int	smtp_parse_bdat(const char *args, uint64_t *size, int *last);

#endif
