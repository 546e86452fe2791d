/*
 * parse — SMTP command verbs and the arguments of MAIL, RCPT, EHLO/HELO
 * and BDAT, as pure functions over untrusted input (see parse.h).
 *
 * Owns nothing global.  The only allocations are the ENVID/ORCPT copies
 * in struct smtp_path, freed by smtp_path_clear().  Every function bounds
 * what it reads by the limits of RFC 5321 4.5.3.1 and RFC 3461, never
 * writes past a fixed buffer, and reports bad input through its return
 * value (enum smtp_parse_status or -1); nothing here aborts or logs.
 * On any MAIL/RCPT error the output struct is left cleared.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/spool.h"
#include "smtp/parse.h"

#define LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define PATH_MAX_OCTETS	256	/* RFC 5321 4.5.3.1.3 */
#define ENVID_MAX	100	/* RFC 3461 4.4 */
#define ORCPT_MAX	500	/* RFC 3461 4.2 */
#define DIGITS_MAX	20	/* enough for any uint64_t */

/* ASCII-only classes: never depend on the locale for protocol bytes. */
static int
is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_hexupper(unsigned char c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* RFC 5322 3.2.3: atext. */
static int
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Returns 1 if s[0..len) is well-formed UTF-8 (RFC 3629 4): no overlong
 * forms, no surrogates, nothing above U+10FFFF.
 */
static int
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3;
		else
			return 0;	/* C0, C1 (overlong), F5+, bare continuation */
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		/* RFC 3629 4: the second-octet ranges that exclude overlongs,
		 * surrogates and code points past U+10FFFF. */
		if (c == 0xE0 && s[i + 1] < 0xA0)
			return 0;
		if (c == 0xED && s[i + 1] >= 0xA0)
			return 0;
		if (c == 0xF0 && s[i + 1] < 0x90)
			return 0;
		if (c == 0xF4 && s[i + 1] >= 0x90)
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
has_8bit(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/*
 * Parses 1..DIGITS_MAX decimal digits s[0..len) into *out without
 * overflow.  Returns 0 or -1.
 */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > DIGITS_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (!is_digit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verbs                                                               */

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} verb_table[] = {
	{ "HELO",	SMTP_V_HELO },
	{ "EHLO",	SMTP_V_EHLO },
	{ "STARTTLS",	SMTP_V_STARTTLS },
	{ "AUTH",	SMTP_V_AUTH },
	{ "MAIL",	SMTP_V_MAIL },
	{ "RCPT",	SMTP_V_RCPT },
	{ "DATA",	SMTP_V_DATA },
	{ "BDAT",	SMTP_V_BDAT },
	{ "RSET",	SMTP_V_RSET },
	{ "NOOP",	SMTP_V_NOOP },
	{ "QUIT",	SMTP_V_QUIT },
	{ "VRFY",	SMTP_V_VRFY },
	{ "EXPN",	SMTP_V_EXPN },
	{ "HELP",	SMTP_V_HELP },
};

/* RFC 9110 9.3 methods; an HTTP request sent to an SMTP port is an attack
 * (cross-protocol), the session closes at once. */
static const char *const http_methods[] = {
	"GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS",
	"PATCH", "TRACE",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Returns the verb of line and points *args into line (see parse.h).
 * *args is "" for a verb without arguments, NULL for MAIL/RCPT without
 * their FROM:/TO: keyword and for SMTP_V_UNKNOWN / SMTP_V_HTTP.
 */
enum smtp_verb
smtp_parse_verb(const char *line, const char **args)
{
	size_t n, i;

	*args = NULL;
	if (line == NULL)
		return SMTP_V_UNKNOWN;
	/* The verb is the run of characters up to the first space or end. */
	for (n = 0; line[n] != '\0' && line[n] != ' '; n++)
		if (n > 16)
			return SMTP_V_UNKNOWN;	/* longer than any verb */

	if (line[n] == ' ')
		for (i = 0; i < NELEM(http_methods); i++)
			if (strlen(http_methods[i]) == n &&
			    strncasecmp(line, http_methods[i], n) == 0)
				return SMTP_V_HTTP;

	for (i = 0; i < NELEM(verb_table); i++) {
		const char *rest, *kw;
		size_t kwlen;

		if (strlen(verb_table[i].name) != n ||
		    strncasecmp(line, verb_table[i].name, n) != 0)
			continue;
		rest = line[n] == ' ' ? line + n + 1 : line + n;
		if (verb_table[i].verb != SMTP_V_MAIL &&
		    verb_table[i].verb != SMTP_V_RCPT) {
			*args = rest;
			return verb_table[i].verb;
		}
		/* RFC 5321 4.1.1.2 / 4.1.1.3: "MAIL FROM:" and "RCPT TO:". */
		kw = verb_table[i].verb == SMTP_V_MAIL ? "FROM:" : "TO:";
		kwlen = strlen(kw);
		if (line[n] == ' ' && strncasecmp(rest, kw, kwlen) == 0) {
			rest += kwlen;
			/* Not RFC: many clients send "MAIL FROM: <a@b>". */
			while (*rest == ' ')
				rest++;
			*args = rest;
		}
		return verb_table[i].verb;
	}
	return SMTP_V_UNKNOWN;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

/*
 * Checks a domain name d[0..len): dot-separated labels of letters, digits
 * and hyphens, 1..63 octets, no hyphen at either end (RFC 5321 4.1.2
 * sub-domain, RFC 1035 2.3.4).  With utf8, octets >= 0x80 count as letters
 * (U-labels, RFC 6531 3.3); the caller validated UTF-8.  underscore adds
 * '_' to the alphabet (for EHLO names only).
 */
static int
domain_name_valid(const char *d, size_t len, int utf8, int underscore)
{
	size_t i, lab = 0;

	if (len == 0)
		return SMTP_P_SYNTAX;
	if (len > DOMAIN_MAX)
		return SMTP_P_TOOLONG;	/* RFC 5321 4.5.3.1.2 */
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)d[i] : '.';

		if (c == '.') {
			if (lab == 0 || d[i - 1] == '-' || d[i - lab] == '-')
				return SMTP_P_SYNTAX;
			if (lab > LABEL_MAX)
				return SMTP_P_SYNTAX;
			lab = 0;
			continue;
		}
		if (c >= 0x80) {
			if (!utf8)
				return SMTP_P_UTF8;
		} else if (!is_alpha(c) && !is_digit(c) && c != '-' &&
		    !(underscore && c == '_'))
			return SMTP_P_SYNTAX;
		lab++;
	}
	return SMTP_P_OK;
}

/*
 * Checks an address literal "[...]" d[0..len) (RFC 5321 4.1.3): IPv4 or
 * "IPv6:" followed by an IPv6 address.  General literals are refused.
 */
static int
addr_literal_valid(const char *d, size_t len)
{
	char tmp[64];
	unsigned char bin[16];
	int af = AF_INET;

	if (len < 3 || d[0] != '[' || d[len - 1] != ']')
		return SMTP_P_SYNTAX;
	d++;
	len -= 2;
	if (len >= 5 && strncasecmp(d, "IPv6:", 5) == 0) {
		af = AF_INET6;
		d += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(tmp))
		return SMTP_P_SYNTAX;
	memcpy(tmp, d, len);
	tmp[len] = '\0';
	return inet_pton(af, tmp, bin) == 1 ? SMTP_P_OK : SMTP_P_SYNTAX;
}

/*
 * Checks a local part l[0..len): Dot-string or Quoted-string (RFC 5321
 * 4.1.2).  Octets >= 0x80 are allowed when utf8 (RFC 6531 3.3); the
 * caller validated UTF-8.
 */
static int
local_part_valid(const char *l, size_t len, int utf8)
{
	size_t i;

	if (len == 0)
		return SMTP_P_SYNTAX;
	if (len > LOCAL_MAX)
		return SMTP_P_TOOLONG;	/* RFC 5321 4.5.3.1.1 */
	if (l[0] == '"') {
		/* RFC 5321 4.1.2: Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
		if (len < 2 || l[len - 1] != '"')
			return SMTP_P_SYNTAX;
		for (i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)l[i];

			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (i + 1 >= len - 1)
					return SMTP_P_SYNTAX;
				c = (unsigned char)l[++i];
				if (c < 32 || c > 126)
					return SMTP_P_SYNTAX;
				continue;
			}
			if (c >= 0x80) {
				if (!utf8)
					return SMTP_P_UTF8;
				continue;
			}
			/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
			if (c < 32 || c > 126 || c == '"')
				return SMTP_P_SYNTAX;
		}
		return SMTP_P_OK;
	}
	/* Dot-string = Atom *("." Atom) */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c == '.') {
			if (i == 0 || i == len - 1 || l[i - 1] == '.')
				return SMTP_P_SYNTAX;
			continue;
		}
		if (c >= 0x80) {
			if (!utf8)
				return SMTP_P_UTF8;
			continue;
		}
		if (!is_atext(c))
			return SMTP_P_SYNTAX;
	}
	return SMTP_P_OK;
}

/*
 * Returns the length of the local part at the start of a[0..len): up to
 * the closing quote of a Quoted-string, or up to the first '@'.  Returns
 * len if there is no '@' boundary.
 */
static size_t
local_part_end(const char *a, size_t len)
{
	size_t i;

	if (len > 0 && a[0] == '"') {
		for (i = 1; i < len; i++) {
			if (a[i] == '\\' && i + 1 < len)
				i++;
			else if (a[i] == '"')
				return i + 1;
		}
		return len;
	}
	for (i = 0; i < len && a[i] != '@'; i++)
		;
	return i;
}

int
smtp_mailbox_valid(const char *addr, size_t len, int utf8)
{
	size_t llen;
	int rc;

	if (addr == NULL || len == 0)
		return SMTP_P_SYNTAX;
	if (has_8bit(addr, len)) {
		/* RFC 6531 3.3: non-ASCII only with SMTPUTF8. */
		if (!utf8)
			return SMTP_P_UTF8;
		if (!utf8_valid((const unsigned char *)addr, len))
			return SMTP_P_SYNTAX;
	}
	/* RFC 5321 4.1.2: Mailbox = Local-part "@" ( Domain / address-literal ) */
	llen = local_part_end(addr, len);
	if (llen >= len || addr[llen] != '@')
		return SMTP_P_SYNTAX;
	if ((rc = local_part_valid(addr, llen, utf8)) != SMTP_P_OK)
		return rc;
	addr += llen + 1;
	len -= llen + 1;
	if (len > 0 && addr[0] == '[')
		return addr_literal_valid(addr, len);
	return domain_name_valid(addr, len, utf8, 0);
}

/*
 * Checks a source route "@a,@b" r[0..len) (RFC 5321 4.1.2 A-d-l).  Its
 * domains are validated, then the route is ignored (RFC 5321 C).
 */
static int
route_valid(const char *r, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t j;
		int rc;

		if (r[i] != '@')
			return SMTP_P_SYNTAX;
		i++;
		for (j = i; j < len && r[j] != ','; j++)
			;
		if (j > i && r[i] == '[')
			rc = addr_literal_valid(r + i, j - i);
		else
			rc = domain_name_valid(r + i, j - i, 0, 0);
		if (rc != SMTP_P_OK)
			return rc == SMTP_P_UTF8 ? SMTP_P_SYNTAX : rc;
		i = j;
		if (i < len) {		/* at ',' */
			i++;
			if (i == len)
				return SMTP_P_SYNTAX;
		}
	}
	return SMTP_P_OK;
}

/*
 * Splits "<path>" at the start of s: sets *mbox and *mlen to the mailbox
 * (source route removed) and *rest just past '>'.  Checks brackets,
 * quoting and the path length, not the mailbox itself.
 */
static int
split_path(const char *s, const char **mbox, size_t *mlen, const char **rest)
{
	size_t i, colon = 0;
	int inq = 0;

	/* RFC 5321 4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"; no lenience
	 * for missing brackets. */
	if (s[0] != '<')
		return SMTP_P_SYNTAX;
	for (i = 1; s[i] != '\0'; i++) {
		if (i > PATH_MAX_OCTETS)
			return SMTP_P_TOOLONG;	/* RFC 5321 4.5.3.1.3 */
		if (inq) {
			if (s[i] == '\\' && s[i + 1] != '\0')
				i++;
			else if (s[i] == '"')
				inq = 0;
			continue;
		}
		if (s[i] == '"')
			inq = 1;
		else if (s[i] == '>')
			break;
		else if (s[i] == ':' && colon == 0 && s[1] == '@')
			colon = i;
		else if (s[i] == '<' || s[i] == ' ')
			return SMTP_P_SYNTAX;
	}
	if (s[i] != '>')
		return SMTP_P_SYNTAX;
	/* RFC 5321 4.5.3.1.3: the path is at most 256 octets, counting
	 * the angle brackets. */
	if (i + 1 > PATH_MAX_OCTETS)
		return SMTP_P_TOOLONG;
	*rest = s + i + 1;
	if (s[1] == '@') {
		int rc;

		if (colon == 0)
			return SMTP_P_SYNTAX;
		if ((rc = route_valid(s + 1, colon - 1)) != SMTP_P_OK)
			return rc;
		*mbox = s + colon + 1;
		*mlen = i - colon - 1;
		if (*mlen == 0)
			return SMTP_P_SYNTAX;	/* "<@a:>" */
		return SMTP_P_OK;
	}
	*mbox = s + 1;
	*mlen = i - 1;
	return SMTP_P_OK;
}

/* ------------------------------------------------------------------ */
/* ESMTP parameters                                                    */

/* RFC 3461 4: xtext = *( xchar / hexchar ), xchar is 33..126 except '+'
 * and '=', hexchar is "+" two upper-case hex digits. */
static int
xtext_valid(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '+') {
			if (len - i < 3 || !is_hexupper((unsigned char)v[i + 1]) ||
			    !is_hexupper((unsigned char)v[i + 2]))
				return 0;
			i += 2;
			continue;
		}
		if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

enum param_kw {
	P_SIZE, P_BODY, P_SMTPUTF8, P_AUTH, P_ENVID, P_RET, P_NOTIFY,
	P_ORCPT, P_NKW
};

#define FOR_MAIL	0x1
#define FOR_RCPT	0x2
#define NEEDS_DSN	0x4

static const struct {
	const char	*name;
	enum param_kw	 kw;
	unsigned	 flags;
} param_table[] = {
	{ "SIZE",	P_SIZE,		FOR_MAIL },		/* RFC 1870 */
	{ "BODY",	P_BODY,		FOR_MAIL },		/* RFC 6152 */
	{ "SMTPUTF8",	P_SMTPUTF8,	FOR_MAIL },		/* RFC 6531 */
	{ "AUTH",	P_AUTH,		FOR_MAIL },		/* RFC 4954 5 */
	{ "ENVID",	P_ENVID,	FOR_MAIL | NEEDS_DSN },	/* RFC 3461 4.4 */
	{ "RET",	P_RET,		FOR_MAIL | NEEDS_DSN },	/* RFC 3461 4.3 */
	{ "NOTIFY",	P_NOTIFY,	FOR_RCPT | NEEDS_DSN },	/* RFC 3461 4.1 */
	{ "ORCPT",	P_ORCPT,	FOR_RCPT | NEEDS_DSN },	/* RFC 3461 4.2 */
};

/* Case-insensitive compare of v[0..len) with the NUL-terminated word. */
static int
word_eq(const char *v, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

static int
parse_notify(const char *v, size_t len, unsigned *out)
{
	size_t i = 0;
	unsigned flags = 0;

	/* RFC 3461 4.1: "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) */
	if (word_eq(v, len, "NEVER")) {
		*out = ENV_NOTIFY_NEVER;
		return 0;
	}
	while (i < len) {
		size_t j;

		for (j = i; j < len && v[j] != ','; j++)
			;
		if (word_eq(v + i, j - i, "SUCCESS"))
			flags |= ENV_NOTIFY_SUCCESS;
		else if (word_eq(v + i, j - i, "FAILURE"))
			flags |= ENV_NOTIFY_FAILURE;
		else if (word_eq(v + i, j - i, "DELAY"))
			flags |= ENV_NOTIFY_DELAY;
		else
			return -1;	/* includes empty items and NEVER in a list */
		i = j;
		if (i < len && ++i == len)
			return -1;	/* trailing comma */
	}
	if (flags == 0)
		return -1;
	*out = flags;
	return 0;
}

static char *
dup_n(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/*
 * Parses one "KEYWORD[=VALUE]" token t[0..len) into out.  seen tracks
 * duplicates.  Returns SMTP_P_OK or SMTP_P_PARAM (also on allocation
 * failure: the command is refused, the daemon carries on).
 */
static int
parse_param(const char *t, size_t len, unsigned verb, int allow_dsn,
    unsigned *seen, struct smtp_path *out)
{
	const char *eq, *v = NULL;
	size_t klen, vlen = 0, i;
	uint64_t n;

	eq = memchr(t, '=', len);
	klen = eq != NULL ? (size_t)(eq - t) : len;
	/* RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (klen == 0 || t[0] == '-')
		return SMTP_P_PARAM;
	for (i = 0; i < klen; i++)
		if (!is_alpha((unsigned char)t[i]) &&
		    !is_digit((unsigned char)t[i]) && t[i] != '-')
			return SMTP_P_PARAM;
	if (eq != NULL) {
		v = eq + 1;
		vlen = len - klen - 1;
		/* esmtp-value = 1*(%d33-60 / %d62-126) */
		if (vlen == 0)
			return SMTP_P_PARAM;
		for (i = 0; i < vlen; i++)
			if ((unsigned char)v[i] < 33 ||
			    (unsigned char)v[i] > 126 || v[i] == '=')
				return SMTP_P_PARAM;
	}
	for (i = 0; i < NELEM(param_table); i++)
		if (word_eq(t, klen, param_table[i].name))
			break;
	if (i == NELEM(param_table) || !(param_table[i].flags & verb))
		return SMTP_P_PARAM;	/* RFC 5321 4.1.1.11: 555 */
	if ((param_table[i].flags & NEEDS_DSN) && !allow_dsn)
		return SMTP_P_PARAM;
	if (*seen & (1u << param_table[i].kw))
		return SMTP_P_PARAM;	/* each keyword at most once */
	*seen |= 1u << param_table[i].kw;

	if (param_table[i].kw == P_SMTPUTF8) {
		if (v != NULL)
			return SMTP_P_PARAM;	/* RFC 6531 3.4: no value */
		out->smtputf8 = 1;
		return SMTP_P_OK;
	}
	if (v == NULL)
		return SMTP_P_PARAM;	/* every other keyword needs a value */

	switch (param_table[i].kw) {
	case P_SIZE:
		/* RFC 1870 6: size-value = 1*20DIGIT */
		if (parse_u64(v, vlen, &n) != 0)
			return SMTP_P_PARAM;
		out->has_size = 1;
		out->size = n;
		return SMTP_P_OK;
	case P_BODY:
		/* RFC 6152 2, RFC 3030 3 */
		if (word_eq(v, vlen, "7BIT"))
			out->body = 1;
		else if (word_eq(v, vlen, "8BITMIME"))
			out->body = 2;
		else if (word_eq(v, vlen, "BINARYMIME"))
			out->body = 3;
		else
			return SMTP_P_PARAM;
		return SMTP_P_OK;
	case P_AUTH:
		/* RFC 4954 5: AUTH=xtext / "<>"; accepted and ignored. */
		if (!xtext_valid(v, vlen))
			return SMTP_P_PARAM;
		out->auth_given = 1;
		return SMTP_P_OK;
	case P_ENVID:
		/* RFC 3461 4.4: xtext, at most 100 characters */
		if (vlen > ENVID_MAX || !xtext_valid(v, vlen))
			return SMTP_P_PARAM;
		if ((out->envid = dup_n(v, vlen)) == NULL)
			return SMTP_P_PARAM;
		return SMTP_P_OK;
	case P_RET:
		/* RFC 3461 4.3: RET=FULL / RET=HDRS */
		if (word_eq(v, vlen, "FULL"))
			out->ret = ENV_RET_FULL;
		else if (word_eq(v, vlen, "HDRS"))
			out->ret = ENV_RET_HDRS;
		else
			return SMTP_P_PARAM;
		return SMTP_P_OK;
	case P_NOTIFY:
		if (parse_notify(v, vlen, &out->notify) != 0)
			return SMTP_P_PARAM;
		return SMTP_P_OK;
	case P_ORCPT:
		/* RFC 3461 4.2: addr-type ";" xtext, at most 500 characters;
		 * only the rfc822 type is accepted. */
		if (vlen > ORCPT_MAX || vlen <= 7 ||
		    strncasecmp(v, "rfc822;", 7) != 0 ||
		    !xtext_valid(v + 7, vlen - 7))
			return SMTP_P_PARAM;
		if ((out->orcpt = dup_n(v, vlen)) == NULL)
			return SMTP_P_PARAM;
		return SMTP_P_OK;
	default:
		return SMTP_P_PARAM;
	}
}

/* Parses the space-separated parameters after '>'. */
static int
parse_params(const char *s, unsigned verb, int allow_dsn,
    struct smtp_path *out)
{
	unsigned seen = 0;
	int rc;

	if (*s != '\0' && *s != ' ')
		return SMTP_P_SYNTAX;	/* "<a@b>x" */
	for (;;) {
		size_t len;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			return SMTP_P_OK;
		len = strcspn(s, " ");
		rc = parse_param(s, len, verb, allow_dsn, &seen, out);
		if (rc != SMTP_P_OK)
			return rc;
		s += len;
	}
}

/* Shared body of smtp_parse_mail / smtp_parse_rcpt. */
static int
parse_path_cmd(const char *args, unsigned verb, int allow_dsn, int utf8_ok,
    struct smtp_path *out)
{
	const char *mbox = NULL, *rest = NULL;
	size_t mlen = 0;
	int rc, utf8;

	memset(out, 0, sizeof(*out));
	if (args == NULL)
		return SMTP_P_SYNTAX;
	/* Not RFC: tolerate "MAIL FROM: <a@b>". */
	while (*args == ' ')
		args++;
	if ((rc = split_path(args, &mbox, &mlen, &rest)) != SMTP_P_OK)
		goto fail;
	if ((rc = parse_params(rest, verb, allow_dsn, out)) != SMTP_P_OK)
		goto fail;
	/* RFC 6531 3.4: SMTPUTF8 on MAIL allows a UTF-8 reverse path. */
	utf8 = verb == FOR_MAIL ? out->smtputf8 : utf8_ok;

	if (mlen == 0) {
		/* RFC 5321 4.1.1.2: the null reverse-path, MAIL only. */
		if (verb != FOR_MAIL) {
			rc = SMTP_P_SYNTAX;
			goto fail;
		}
	} else if (verb == FOR_RCPT && word_eq(mbox, mlen, "Postmaster")) {
		/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain. */
	} else if ((rc = smtp_mailbox_valid(mbox, mlen, utf8)) != SMTP_P_OK) {
		goto fail;
	}
	if (mlen >= sizeof(out->addr)) {	/* cannot happen: split_path */
		rc = SMTP_P_TOOLONG;
		goto fail;
	}
	memcpy(out->addr, mbox, mlen);
	out->addr[mlen] = '\0';
	out->utf8 = has_8bit(mbox, mlen);
	return SMTP_P_OK;
fail:
	smtp_path_clear(out);
	return rc;
}

int
smtp_parse_mail(const char *args, int allow_dsn, struct smtp_path *out)
{
	return parse_path_cmd(args, FOR_MAIL, allow_dsn, 0, out);
}

int
smtp_parse_rcpt(const char *args, int allow_dsn, int utf8_ok,
    struct smtp_path *out)
{
	return parse_path_cmd(args, FOR_RCPT, allow_dsn, utf8_ok, out);
}

void
smtp_path_clear(struct smtp_path *p)
{
	if (p == NULL)
		return;
	free(p->envid);
	free(p->orcpt);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------ */
/* EHLO/HELO and BDAT                                                  */

int
smtp_helo_valid(const char *arg)
{
	size_t len, i;
	char tmp[64];
	unsigned char bin[16];

	if (arg == NULL)
		return -1;
	len = strnlen(arg, DOMAIN_MAX + 1);
	/* RFC 5321 4.1.1.1: Domain / address-literal; 4.5.3.1.2: 255 */
	if (len == 0 || len > DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)arg[i] <= 32 || (unsigned char)arg[i] >= 127)
			return -1;
	if (arg[0] == '[')
		return addr_literal_valid(arg, len) == SMTP_P_OK ? 0 : -1;
	/* Not RFC: a bare IP address, as some clients send. */
	if (len < sizeof(tmp) && strchr(arg, ':') != NULL) {
		memcpy(tmp, arg, len + 1);
		return inet_pton(AF_INET6, tmp, bin) == 1 ? 0 : -1;
	}
	/* Not RFC: underscores and a final dot occur in real host names. */
	if (arg[len - 1] == '.')
		len--;
	return domain_name_valid(arg, len, 0, 1) == SMTP_P_OK ? 0 : -1;
}

int
smtp_parse_bdat(const char *args, uint64_t *size, int *last)
{
	size_t n;
	uint64_t v;

	if (args == NULL)
		return -1;
	/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] */
	n = strspn(args, "0123456789");
	if (parse_u64(args, n, &v) != 0)
		return -1;
	if (args[n] == '\0') {
		*last = 0;
	} else if (args[n] == ' ' && strcasecmp(args + n + 1, "LAST") == 0) {
		*last = 1;
	} else {
		return -1;
	}
	*size = v;
	return 0;
}
