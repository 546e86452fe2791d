/*
 * envelope — the on-disk envelope header of a spooled message.
 *
 * Format (version 1, or 2 when the message is to be DKIM-signed), one
 * field per line, LF line ends, ASCII only:
 *
 *	outpost-envelope 1
 *	qid 0J8Z3K4M5N6P7Q8R
 *	arrival 1700000000
 *	from alice@example.org		("<>" for the null sender)
 *	auth-user alice@example.org	(optional)
 *	client 203.0.113.9		(optional)
 *	helo mail.example.org		(optional)
 *	body 8bitmime			(7bit | 8bitmime | binarymime)
 *	smtputf8 1			(optional; 0 or 1)
 *	envid ABC%2B1			(optional)
 *	ret full			(optional; full | hdrs)
 *	dkim example.org 3a7bd3e2...	(version 2 only: signing domain and
 *					 the body hash, 64 uppercase hex digits)
 *	rcpt bob@example.net notify=success,failure orcpt=rfc822;bob@example.net
 *	.
 *
 * Values come from the network, so each is encoded: every byte outside
 * 0x21..0x7E and every '%', '<', '>' becomes %XX (uppercase hex), and the
 * empty string is written "<>".  An encoded value thus never holds a
 * space or a newline, and the encoding is canonical: the parser rejects
 * %XX for a byte that did not need escaping, so one envelope has exactly
 * one text.  The parser is strict and bounded (line, value, recipient and
 * header limits below); unknown keys are errors — a new key needs a new
 * version number.
 *
 * Owns: nothing global.  envelope_parse() allocates the strings of the
 * envelope it fills; envelope_clear() frees them.
 * Fails: envelope_format() returns -1 with errno (EINVAL for a value that
 * the parser would refuse, ENOMEM); envelope_parse() returns -1 with
 * errno EBADMSG and leaves env cleared.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "queue/spool.h"

#define ENV_MAGIC	"outpost-envelope 1"
#define ENV_MAGIC2	"outpost-envelope 2"	/* adds "dkim" */
#define ENV_VALUE_MAX	4096		/* decoded bytes per value */
#define ENV_LINE_MAX	(3 * ENV_VALUE_MAX * 2 + 64)	/* rcpt has two values */
#define ENV_RCPTS_MAX	100000
#define ENV_HEADER_MAX	(8u << 20)

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 err;		/* sticky errno */
};

static void
sb_reserve(struct sbuf *sb, size_t more)
{
	size_t ncap;
	char *np;

	if (sb->err)
		return;
	if (more > ENV_HEADER_MAX || sb->len + more > ENV_HEADER_MAX) {
		sb->err = EINVAL;
		return;
	}
	if (sb->len + more + 1 <= sb->cap)
		return;
	ncap = sb->cap ? sb->cap : 512;
	while (ncap < sb->len + more + 1)
		ncap *= 2;
	if ((np = realloc(sb->p, ncap)) == NULL) {
		sb->err = ENOMEM;
		return;
	}
	sb->p = np;
	sb->cap = ncap;
}

static void
sb_add(struct sbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	if (sb->err)
		return;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void
sb_str(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

static void
sb_u64(struct sbuf *sb, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	sb_add(sb, tmp + i, sizeof(tmp) - i);
}

static int
needs_escape(unsigned char c)
{
	return c < 0x21 || c > 0x7e || c == '%' || c == '<' || c == '>';
}

/* Appends the encoded form of s; EINVAL when s is longer than the parser
 * accepts. */
static void
sb_value(struct sbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i;
	char e[3];

	if (n > ENV_VALUE_MAX) {
		sb->err = sb->err ? sb->err : EINVAL;
		return;
	}
	if (n == 0) {
		sb_str(sb, "<>");
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!needs_escape(c)) {
			sb_add(sb, (const char *)&c, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		sb_add(sb, e, 3);
	}
}

static void
sb_field(struct sbuf *sb, const char *key, const char *value)
{
	if (value == NULL)
		return;
	sb_str(sb, key);
	sb_str(sb, " ");
	sb_value(sb, value);
	sb_str(sb, "\n");
}

void
envelope_clear(struct envelope *env)
{
	size_t i;

	if (env == NULL)
		return;
	free(env->mail_from);
	free(env->auth_user);
	free(env->client_addr);
	free(env->helo);
	free(env->envid);
	free(env->dkim_domain);
	for (i = 0; i < env->nrcpts && env->rcpts != NULL; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

static const char *
body_name(enum env_body b)
{
	switch (b) {
	case ENV_BODY_7BIT:		return "7bit";
	case ENV_BODY_8BITMIME:		return "8bitmime";
	case ENV_BODY_BINARYMIME:	return "binarymime";
	}
	return NULL;
}

static const struct {
	const char	*name;
	unsigned	 flag;
} notify_names[] = {
	{ "never",	ENV_NOTIFY_NEVER },
	{ "success",	ENV_NOTIFY_SUCCESS },
	{ "failure",	ENV_NOTIFY_FAILURE },
	{ "delay",	ENV_NOTIFY_DELAY },
};

static int
notify_valid(unsigned n)
{
	if (n & ~(unsigned)(ENV_NOTIFY_NEVER | ENV_NOTIFY_SUCCESS |
	    ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY))
		return 0;
	/* RFC 3461 4.1: NEVER excludes the others. */
	if ((n & ENV_NOTIFY_NEVER) && n != ENV_NOTIFY_NEVER)
		return 0;
	return 1;
}

/*
 * Serialises env into a new NUL-terminated buffer *out (caller frees),
 * *outlen bytes without the NUL.  Returns 0, or -1 with errno.
 */
int
envelope_format(const struct envelope *env, char **out, size_t *outlen)
{
	struct sbuf sb = { 0 };
	const char *bn;
	size_t i;

	*out = NULL;
	*outlen = 0;
	if (env->mail_from == NULL || env->nrcpts == 0 ||
	    env->nrcpts > ENV_RCPTS_MAX || env->rcpts == NULL ||
	    !spool_qid_valid(env->qid) || env->arrival < 0 ||
	    (bn = body_name(env->body)) == NULL ||
	    (env->ret != ENV_RET_UNSET && env->ret != ENV_RET_FULL &&
	    env->ret != ENV_RET_HDRS)) {
		errno = EINVAL;
		return -1;
	}
	if (env->dkim_domain != NULL && env->dkim_domain[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	/* version 1 while nothing needs 2: older readers keep working */
	sb_str(&sb, env->dkim_domain != NULL ? ENV_MAGIC2 "\nqid " :
	    ENV_MAGIC "\nqid ");
	sb_str(&sb, env->qid);
	sb_str(&sb, "\narrival ");
	sb_u64(&sb, (uint64_t)env->arrival);
	sb_str(&sb, "\n");
	sb_field(&sb, "from", env->mail_from);
	sb_field(&sb, "auth-user", env->auth_user);
	sb_field(&sb, "client", env->client_addr);
	sb_field(&sb, "helo", env->helo);
	sb_str(&sb, "body ");
	sb_str(&sb, bn);
	sb_str(&sb, "\n");
	if (env->smtputf8)
		sb_str(&sb, "smtputf8 1\n");
	sb_field(&sb, "envid", env->envid);
	if (env->ret == ENV_RET_FULL)
		sb_str(&sb, "ret full\n");
	else if (env->ret == ENV_RET_HDRS)
		sb_str(&sb, "ret hdrs\n");
	if (env->dkim_domain != NULL) {
		static const char hex[] = "0123456789ABCDEF";
		char bh[2 * sizeof(env->dkim_bh) + 2];

		sb_str(&sb, "dkim ");
		sb_value(&sb, env->dkim_domain);
		bh[0] = ' ';
		for (i = 0; i < sizeof(env->dkim_bh); i++) {
			bh[1 + 2 * i] = hex[env->dkim_bh[i] >> 4];
			bh[2 + 2 * i] = hex[env->dkim_bh[i] & 15];
		}
		bh[sizeof(bh) - 1] = '\0';
		sb_str(&sb, bh);
		sb_str(&sb, "\n");
	}
	for (i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];

		if (r->addr == NULL || r->addr[0] == '\0' ||
		    !notify_valid(r->notify)) {
			sb.err = sb.err ? sb.err : EINVAL;
			break;
		}
		sb_str(&sb, "rcpt ");
		sb_value(&sb, r->addr);
		if (r->notify != 0) {
			const char *sep = " notify=";
			size_t k;

			for (k = 0; k < sizeof(notify_names) /
			    sizeof(notify_names[0]); k++) {
				if (!(r->notify & notify_names[k].flag))
					continue;
				sb_str(&sb, sep);
				sb_str(&sb, notify_names[k].name);
				sep = ",";
			}
		}
		if (r->orcpt != NULL) {
			sb_str(&sb, " orcpt=");
			sb_value(&sb, r->orcpt);
		}
		sb_str(&sb, "\n");
	}
	sb_str(&sb, ".\n");
	if (sb.err) {
		free(sb.p);
		errno = sb.err;
		return -1;
	}
	*out = sb.p;
	*outlen = sb.len;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;		/* lowercase is not canonical */
}

/* Decodes the n-byte encoded value s into a new string; NULL when it is
 * not a canonical encoding (or out of memory). */
static char *
value_decode(const char *s, size_t n)
{
	char *out, *o;
	size_t i;

	if (n == 2 && s[0] == '<' && s[1] == '>')
		return strdup("");
	if (n == 0 || n > 3 * ENV_VALUE_MAX)
		return NULL;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0)
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			if (c == '\0' || !needs_escape(c))
				goto bad;
			i += 2;
		} else if (needs_escape(c))
			goto bad;
		*o++ = (char)c;
	}
	*o = '\0';
	if ((size_t)(o - out) > ENV_VALUE_MAX)
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* Strict decimal: digits only, no sign, no leading zero, <= max. */
static int
parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > max / 10 || (v == max / 10 && d > max % 10))
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
tok_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int
parse_notify(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	size_t i = 0;

	while (i <= n) {
		size_t j = i, k;
		int found = 0;

		while (j < n && s[j] != ',')
			j++;
		for (k = 0; k < sizeof(notify_names) /
		    sizeof(notify_names[0]); k++) {
			if (!tok_is(s + i, j - i, notify_names[k].name))
				continue;
			if (v & notify_names[k].flag)
				return -1;	/* listed twice */
			v |= notify_names[k].flag;
			found = 1;
		}
		if (!found)
			return -1;
		i = j + 1;
	}
	if (v == 0 || !notify_valid(v))
		return -1;
	*out = v;
	return 0;
}

static int
add_rcpt(struct envelope *env, const char *v, size_t n, size_t *cap)
{
	struct envelope_rcpt *r;
	const char *sp;
	int seen_notify = 0;

	if (env->nrcpts >= ENV_RCPTS_MAX)
		return -1;
	if (env->nrcpts == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct envelope_rcpt *nr;

		if (ncap > ENV_RCPTS_MAX)
			ncap = ENV_RCPTS_MAX;
		if ((nr = realloc(env->rcpts, ncap * sizeof(*nr))) == NULL)
			return -1;
		env->rcpts = nr;
		*cap = ncap;
	}
	r = &env->rcpts[env->nrcpts];
	memset(r, 0, sizeof(*r));
	/* Counted now so that envelope_clear() frees a half-built rcpt. */
	env->nrcpts++;

	sp = memchr(v, ' ', n);
	if ((r->addr = value_decode(v, sp ? (size_t)(sp - v) : n)) == NULL ||
	    r->addr[0] == '\0')
		return -1;
	while (sp != NULL) {
		const char *opt = sp + 1, *end;
		size_t olen;

		end = memchr(opt, ' ', n - (size_t)(opt - v));
		olen = end ? (size_t)(end - opt) : n - (size_t)(opt - v);
		if (olen > 7 && memcmp(opt, "notify=", 7) == 0) {
			if (seen_notify ||
			    parse_notify(opt + 7, olen - 7, &r->notify) < 0)
				return -1;
			seen_notify = 1;
		} else if (olen > 6 && memcmp(opt, "orcpt=", 6) == 0) {
			if (r->orcpt != NULL ||
			    (r->orcpt = value_decode(opt + 6, olen - 6)) == NULL)
				return -1;
		} else
			return -1;
		sp = end;
	}
	return 0;
}

static int
set_once(char **field, const char *v, size_t n)
{
	if (*field != NULL)
		return -1;
	return (*field = value_decode(v, n)) == NULL ? -1 : 0;
}

/* "DOMAIN HEX64" */
static int
parse_dkim(struct envelope *env, const char *v, size_t n)
{
	const size_t hl = 2 * sizeof(env->dkim_bh);
	size_t i, dl;

	if (n < hl + 2 || v[n - hl - 1] != ' ')
		return -1;
	dl = n - hl - 1;
	if (memchr(v, ' ', dl) != NULL || set_once(&env->dkim_domain, v,
	    dl) < 0 || env->dkim_domain[0] == '\0')
		return -1;
	for (i = 0; i < sizeof(env->dkim_bh); i++) {
		int hi = hexval(v[dl + 1 + 2 * i]), lo = hexval(v[dl + 2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return -1;
		env->dkim_bh[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * Parses the envelope at the start of buf.  env is overwritten (not freed:
 * clear it first if it held anything).  Returns the bytes consumed
 * through the final ".\n" line, or -1 with errno EBADMSG (env cleared).
 */
ssize_t
envelope_parse(const char *buf, size_t len, struct envelope *env)
{
	size_t pos = 0, cap = 0;
	int have_qid = 0, have_arrival = 0, have_body = 0, have_utf8 = 0;
	int have_ret = 0, line = 0, version = 1;

	memset(env, 0, sizeof(*env));
	if (len > ENV_HEADER_MAX)
		len = ENV_HEADER_MAX;
	for (;;) {
		const char *l = buf + pos, *nl, *sp, *v;
		size_t llen, klen, vlen, i;
		uint64_t u;

		if (pos >= len)
			goto bad;	/* no "." line */
		if ((nl = memchr(l, '\n', len - pos)) == NULL)
			goto bad;
		llen = (size_t)(nl - l);
		if (llen > ENV_LINE_MAX)
			goto bad;
		for (i = 0; i < llen; i++)
			if ((unsigned char)l[i] < 0x20 ||
			    (unsigned char)l[i] > 0x7e)
				goto bad;
		pos += llen + 1;
		if (line++ == 0) {
			if (tok_is(l, llen, ENV_MAGIC2))
				version = 2;
			else if (!tok_is(l, llen, ENV_MAGIC))
				goto bad;
			continue;
		}
		if (tok_is(l, llen, "."))
			break;
		if ((sp = memchr(l, ' ', llen)) == NULL)
			goto bad;
		klen = (size_t)(sp - l);
		v = sp + 1;
		vlen = llen - klen - 1;
		if (vlen == 0)
			goto bad;

		if (tok_is(l, klen, "qid")) {
			if (have_qid++ || vlen != SPOOL_QID_LEN)
				goto bad;
			memcpy(env->qid, v, SPOOL_QID_LEN);
			env->qid[SPOOL_QID_LEN] = '\0';
			if (!spool_qid_valid(env->qid))
				goto bad;
		} else if (tok_is(l, klen, "arrival")) {
			if (have_arrival++ ||
			    parse_u64(v, vlen, INT64_MAX, &u) < 0)
				goto bad;
			env->arrival = (time_t)u;
		} else if (tok_is(l, klen, "from")) {
			if (memchr(v, ' ', vlen) ||
			    set_once(&env->mail_from, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "auth-user")) {
			if (memchr(v, ' ', vlen) ||
			    set_once(&env->auth_user, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "client")) {
			if (memchr(v, ' ', vlen) ||
			    set_once(&env->client_addr, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "helo")) {
			if (memchr(v, ' ', vlen) ||
			    set_once(&env->helo, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "envid")) {
			if (memchr(v, ' ', vlen) ||
			    set_once(&env->envid, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "body")) {
			if (have_body++)
				goto bad;
			if (tok_is(v, vlen, "7bit"))
				env->body = ENV_BODY_7BIT;
			else if (tok_is(v, vlen, "8bitmime"))
				env->body = ENV_BODY_8BITMIME;
			else if (tok_is(v, vlen, "binarymime"))
				env->body = ENV_BODY_BINARYMIME;
			else
				goto bad;
		} else if (tok_is(l, klen, "smtputf8")) {
			if (have_utf8++ || parse_u64(v, vlen, 1, &u) < 0)
				goto bad;
			env->smtputf8 = (int)u;
		} else if (tok_is(l, klen, "ret")) {
			if (have_ret++)
				goto bad;
			if (tok_is(v, vlen, "full"))
				env->ret = ENV_RET_FULL;
			else if (tok_is(v, vlen, "hdrs"))
				env->ret = ENV_RET_HDRS;
			else
				goto bad;
		} else if (tok_is(l, klen, "dkim") && version >= 2) {
			if (parse_dkim(env, v, vlen) < 0)
				goto bad;
		} else if (tok_is(l, klen, "rcpt")) {
			/* Options are separated by exactly one space. */
			if (v[vlen - 1] == ' ' || memmem(v, vlen, "  ", 2))
				goto bad;
			if (add_rcpt(env, v, vlen, &cap) < 0)
				goto bad;
		} else
			goto bad;
	}
	if (!have_qid || !have_arrival || env->mail_from == NULL ||
	    env->nrcpts == 0)
		goto bad;
	if (pos > (size_t)SSIZE_MAX)
		goto bad;
	return (ssize_t)pos;
bad:
	envelope_clear(env);
	errno = EBADMSG;
	return -1;
}
