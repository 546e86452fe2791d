/*
 * header.c — header section splitting and address parsing; see header.h.
 *
 * The address parser is a small recursive-descent reader over the raw
 * value.  CFWS (whitespace, folding CRLF, nested comments) is skipped
 * between tokens.  A mailbox is tried first as a bare addr-spec
 * (local@domain); if that does not reach a list separator, it is read
 * again as [display-name] <addr-spec>, or, in an address list, as a group
 * "name: members;".  Everything is bounded by the value's length and the
 * comment nesting limit; nothing allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message/header.h"

/* --- fields --- */

/* Length of one valid UTF-8 sequence at p (shortest form, no surrogates,
 * at most U+10FFFF), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int
hdr_add(struct hdr_section *hs, size_t *cap, size_t off)
{
	if (hs->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct hdr_field *nf;

		if ((nf = realloc(hs->f, ncap * sizeof(*nf))) == NULL)
			return -1;
		hs->f = nf;
		*cap = ncap;
	}
	memset(&hs->f[hs->n], 0, sizeof(hs->f[0]));
	hs->f[hs->n].off = off;
	hs->n++;
	return 0;
}

int
hdr_parse(struct hdr_section *hs, const char *buf, size_t len, int utf8,
    char *err, size_t errlen)
{
	size_t pos = 0, cap = 0;
	unsigned line = 0;

	memset(hs, 0, sizeof(*hs));
	hs->buf = buf;
	hs->len = len;
	while (pos < len) {
		const char *p = buf + pos, *eol;
		size_t llen, i;

		line++;
		eol = memchr(p, '\n', len - pos);
		llen = eol ? (size_t)(eol - p) + 1 : len - pos;
		/* octets: 8-bit only with SMTPUTF8, and then valid UTF-8 */
		for (i = 0; i < llen; ) {
			unsigned char c = (unsigned char)p[i];
			size_t k;

			if (c < 0x80) {
				i++;
				continue;
			}
			if (!utf8) {
				snprintf(err, errlen, "Header line %u contains "
				    "8-bit characters, which need SMTPUTF8 "
				    "(MAIL FROM:<...> SMTPUTF8)", line);
				goto fail;
			}
			if ((k = utf8_seq((const unsigned char *)p + i,
			    llen - i)) == 0) {
				snprintf(err, errlen, "Header line %u is not "
				    "valid UTF-8", line);
				goto fail;
			}
			i += k;
		}
		if (p[0] == ' ' || p[0] == '\t') {
			if (hs->n == 0) {
				snprintf(err, errlen, "The header starts with "
				    "a continuation line (line 1 begins with "
				    "a space)");
				goto fail;
			}
			hs->f[hs->n - 1].len += llen;
			pos += llen;
			continue;
		}
		/* a field: name (printable ASCII except ':'), then ':' */
		for (i = 0; i < llen && p[i] != ':'; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c == ' ' || c == '\t') {
				/* obsolete "Name :" (RFC 5322 4.5.8) */
				size_t j = i;

				while (j < llen && (p[j] == ' ' || p[j] == '\t'))
					j++;
				if (j < llen && p[j] == ':' && i > 0) {
					i = j;
					break;
				}
				goto nocolon;
			}
			if (c < 33 || c > 126)
				goto nocolon;
		}
		if (i >= llen) {
nocolon:
			snprintf(err, errlen, "Header line %u is not a header "
			    "field (no \"Name:\" before the value)", line);
			goto fail;
		}
		if (i == 0 || p[0] == ':') {
			snprintf(err, errlen, "Header line %u has an empty "
			    "field name", line);
			goto fail;
		}
		if (hs->n >= HDR_MAX_FIELDS) {
			snprintf(err, errlen, "Too many header fields (more "
			    "than %d)", HDR_MAX_FIELDS);
			goto fail;
		}
		if (hdr_add(hs, &cap, pos) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		{
			struct hdr_field *f = &hs->f[hs->n - 1];
			size_t nl = 0;

			while (nl < llen && p[nl] != ':' && p[nl] != ' ' &&
			    p[nl] != '\t')
				nl++;
			f->namelen = nl;
			f->valoff = i + 1;
			f->len = llen;
		}
		pos += llen;
	}
	return 0;
fail:
	hdr_free(hs);
	return -1;
}

void
hdr_free(struct hdr_section *hs)
{
	free(hs->f);
	hs->f = NULL;
	hs->n = 0;
}

int
hdr_is(const struct hdr_section *hs, size_t i, const char *name)
{
	size_t n = strlen(name);

	return i < hs->n && hs->f[i].namelen == n &&
	    strncasecmp(hs->buf + hs->f[i].off, name, n) == 0;
}

size_t
hdr_count(const struct hdr_section *hs, const char *name)
{
	size_t i, c = 0;

	for (i = 0; i < hs->n; i++)
		c += hdr_is(hs, i, name);
	return c;
}

long
hdr_find(const struct hdr_section *hs, const char *name)
{
	size_t i;

	for (i = 0; i < hs->n; i++)
		if (hdr_is(hs, i, name))
			return (long)i;
	return -1;
}

/* --- addresses (RFC 5322 3.4) --- */

struct ap {
	const char	*p, *end;
	char		*err;
	size_t		 errlen;
	char		 out[HDR_ADDR_MAX + 1];	/* addr-spec being read */
	size_t		 olen;
	int		 overflow;
};

static int
ap_fail(struct ap *a, const char *what)
{
	if (a->err[0] == '\0')
		snprintf(a->err, a->errlen, "%s", what);
	return -1;
}

static int
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return 1;	/* UTF-8 (RFC 6532); 8-bit was checked already */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static void
ap_out(struct ap *a, char c)
{
	if (a->olen >= HDR_ADDR_MAX) {
		a->overflow = 1;
		return;
	}
	a->out[a->olen++] = c;
}

/* Skips whitespace, folding and (nested) comments. */
static int
ap_cfws(struct ap *a)
{
	while (a->p < a->end) {
		char c = *a->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			a->p++;
			continue;
		}
		if (c != '(')
			return 0;
		{
			int depth = 0;

			do {
				c = *a->p++;
				if (c == '\\') {
					if (a->p >= a->end)
						break;
					a->p++;
				} else if (c == '(') {
					if (++depth > HDR_MAX_NEST)
						return ap_fail(a, "comments "
						    "nested too deeply");
				} else if (c == ')') {
					depth--;
				}
			} while (depth > 0 && a->p < a->end);
			if (depth > 0)
				return ap_fail(a, "a comment is not closed "
				    "with ')'");
		}
	}
	return 0;
}

/* atom: 1*atext; copied to out when copy. */
static int
ap_atom(struct ap *a, int copy)
{
	const char *s = a->p;

	while (a->p < a->end && is_atext((unsigned char)*a->p)) {
		if (copy)
			ap_out(a, *a->p);
		a->p++;
	}
	return a->p > s ? 0 : -1;
}

/* quoted-string, contents (unescaped) copied to out when copy. */
static int
ap_qstring(struct ap *a, int copy)
{
	if (a->p >= a->end || *a->p != '"')
		return -1;
	a->p++;
	while (a->p < a->end && *a->p != '"') {
		char c = *a->p++;

		if (c == '\\') {
			if (a->p >= a->end)
				break;
			c = *a->p++;
		} else if (c == '\r' || c == '\n') {
			continue;	/* folding inside the quotes */
		}
		/* not qtext nor a quoted-pair (RFC 5322 3.2.4), and it would
		 * cut the copied address short */
		if (c == '\0')
			return ap_fail(a, "a quoted string contains a NUL byte");
		if (copy)
			ap_out(a, c);
	}
	if (a->p >= a->end)
		return ap_fail(a, "a quoted string is not closed with '\"'");
	a->p++;
	return 0;
}

/* word = [CFWS] (atom / quoted-string) [CFWS] */
static int
ap_word(struct ap *a, int copy)
{
	if (ap_cfws(a) < 0)
		return -1;
	if (a->p < a->end && *a->p == '"') {
		if (ap_qstring(a, copy) < 0)
			return -1;
	} else if (ap_atom(a, copy) < 0) {
		return -1;
	}
	return ap_cfws(a);
}

/* local-part "@" domain, into out.  Returns 0, or -1 (not an addr-spec
 * here; err set only for hard errors). */
static int
ap_addrspec(struct ap *a)
{
	a->olen = 0;
	a->overflow = 0;
	if (ap_word(a, 1) < 0)
		return -1;
	while (a->p < a->end && *a->p == '.') {
		a->p++;
		ap_out(a, '.');
		if (ap_word(a, 1) < 0)
			return -1;
	}
	if (a->p >= a->end || *a->p != '@')
		return -1;
	a->p++;
	ap_out(a, '@');
	if (ap_cfws(a) < 0)
		return -1;
	if (a->p < a->end && *a->p == '[') {
		/* domain-literal: dtext up to ']' (whitespace dropped) */
		ap_out(a, '[');
		a->p++;
		while (a->p < a->end && *a->p != ']') {
			char c = *a->p;

			if (c == '[' || c == '\\' || c == '\0')
				return ap_fail(a, "a domain literal contains "
				    "'[', '\\' or a NUL byte");
			if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
				a->p++;
				continue;
			}
			ap_out(a, c);
			a->p++;
		}
		if (a->p >= a->end)
			return ap_fail(a, "a domain literal is not closed "
			    "with ']'");
		ap_out(a, ']');
		a->p++;
	} else {
		if (ap_atom(a, 1) < 0)
			return -1;
		if (ap_cfws(a) < 0)
			return -1;
		while (a->p < a->end && *a->p == '.') {
			a->p++;
			ap_out(a, '.');
			if (ap_cfws(a) < 0 || ap_atom(a, 1) < 0)
				return -1;
			if (ap_cfws(a) < 0)
				return -1;
		}
	}
	if (ap_cfws(a) < 0)
		return -1;
	if (a->overflow)
		return ap_fail(a, "an address is too long");
	a->out[a->olen] = '\0';
	return 0;
}

static void
ap_store(struct ap *a, struct hdr_mailbox *mb, int *count, int max)
{
	if (mb != NULL && *count < max) {
		char *at = strrchr(a->out, '@');
		struct hdr_mailbox *m = &mb[*count];
		char *d;

		memcpy(m->addr, a->out, a->olen + 1);
		m->at = at ? (size_t)(at - a->out) : 0;
		for (d = m->addr + m->at; *d; d++)
			if (*d >= 'A' && *d <= 'Z')
				*d = (char)(*d - 'A' + 'a');
	}
	(*count)++;
}

/* True at a list separator or the end. */
static int
ap_at_sep(struct ap *a, int ingroup)
{
	return a->p >= a->end || *a->p == ',' || (ingroup && *a->p == ';');
}

/*
 * One mailbox or (groups_ok) group.  Returns 0 or -1.
 */
static int
ap_address(struct ap *a, int groups_ok, int ingroup, struct hdr_mailbox *mb,
    int *count, int max)
{
	const char *start = a->p;
	int words = 0;

	if (ap_addrspec(a) == 0 && ap_at_sep(a, ingroup)) {
		ap_store(a, mb, count, max);
		return 0;
	}
	if (a->err[0] != '\0')
		return -1;
	/* display name (obs-phrase: words and dots) */
	a->p = start;
	for (;;) {
		if (ap_cfws(a) < 0)
			return -1;
		if (a->p >= a->end)
			break;
		if (*a->p == '.' && words > 0) {
			a->p++;
			continue;
		}
		if (*a->p != '"' && !is_atext((unsigned char)*a->p))
			break;
		if (ap_word(a, 0) < 0)
			return -1;
		words++;
	}
	if (a->p < a->end && *a->p == '<') {
		a->p++;
		if (ap_cfws(a) < 0)
			return -1;
		/* obs-route: "@a.example,@b.example:" is ignored */
		if (a->p < a->end && *a->p == '@') {
			const char *colon = memchr(a->p, ':',
			    (size_t)(a->end - a->p));
			const char *gt = memchr(a->p, '>',
			    (size_t)(a->end - a->p));

			if (colon == NULL || (gt != NULL && gt < colon))
				return ap_fail(a, "a broken route in <...>");
			a->p = colon + 1;
		}
		if (ap_addrspec(a) < 0 || a->p >= a->end || *a->p != '>')
			return ap_fail(a, "the address in <...> is not "
			    "local-part@domain");
		a->p++;
		if (ap_cfws(a) < 0)
			return -1;
		if (!ap_at_sep(a, ingroup))
			return ap_fail(a, "unexpected text after <...>");
		ap_store(a, mb, count, max);
		return 0;
	}
	if (a->p < a->end && *a->p == ':' && groups_ok && !ingroup &&
	    words > 0) {
		/* group: display-name ":" [mailbox-list] ";" */
		a->p++;
		for (;;) {
			if (ap_cfws(a) < 0)
				return -1;
			if (a->p >= a->end)
				return ap_fail(a, "a group is not closed "
				    "with ';'");
			if (*a->p == ';')
				break;
			if (*a->p == ',') {
				a->p++;
				continue;
			}
			if (ap_address(a, 0, 1, mb, count, max) < 0)
				return -1;
		}
		a->p++;
		if (ap_cfws(a) < 0)
			return -1;
		if (!ap_at_sep(a, 0))
			return ap_fail(a, "unexpected text after a group");
		return 0;
	}
	return ap_fail(a, "not an address (expected local-part@domain or "
	    "Name <local-part@domain>)");
}

int
hdr_addresses(const char *val, size_t len, enum hdr_kind kind,
    struct hdr_mailbox *mb, int max, char *err, size_t errlen)
{
	struct ap a;
	int count = 0, groups = kind == HDR_ADDRESS_LIST ||
	    kind == HDR_ADDRESS_LIST_OPT;
	char e[160] = "";

	memset(&a, 0, sizeof(a));
	a.p = val;
	a.end = val + len;
	a.err = e;
	a.errlen = sizeof(e);
	for (;;) {
		if (ap_cfws(&a) < 0)
			goto fail;
		if (a.p >= a.end)
			break;
		if (*a.p == ',') {	/* empty element (obs-addr-list) */
			a.p++;
			continue;
		}
		if (ap_address(&a, groups, 0, mb, &count, max) < 0)
			goto fail;
		if (a.p < a.end && *a.p == ',')
			a.p++;
		if (count > 100000)
			break;
	}
	if (kind == HDR_MAILBOX && count != 1) {
		snprintf(err, errlen, "%s", count == 0 ? "no address" :
		    "more than one address");
		return -1;
	}
	if (kind == HDR_MAILBOX_LIST && count == 0) {
		snprintf(err, errlen, "no address");
		return -1;
	}
	if (kind == HDR_ADDRESS_LIST && count == 0 && a.p == val + len &&
	    memchr(val, ':', len) == NULL) {
		snprintf(err, errlen, "no address");
		return -1;
	}
	return count;
fail:
	snprintf(err, errlen, "%s", e[0] ? e : "not an address");
	return -1;
}
