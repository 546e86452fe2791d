/*
 * canon.c — DKIM canonicalisation (RFC 6376 3.4); see canon.h.
 *
 * The body state machine, per octet:
 *   CR            remembered (it ends the line only if LF follows)
 *   CR LF         ends the line: a line with content is written with its
 *                 CRLF at once; an empty line (relaxed: whitespace only)
 *                 is only counted, because empty lines at the end of the
 *                 body are dropped (3.4.3, 3.4.4)
 *   SP / HTAB     relaxed: remembered as one pending SP, written only if
 *                 content follows on the same line (3.4.4 a, b)
 *   anything else the counted empty lines, then the pending SP, then it.
 * At the end: a last line without CRLF gets one; relaxed hashes an empty
 * body as nothing, simple as one CRLF (3.4.3, errata 3133).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "message/canon.h"

static int
cb_flush(struct canon_body *c)
{
	if (c->blen > 0 && EVP_DigestUpdate(c->md, c->buf, c->blen) != 1)
		return -1;
	c->blen = 0;
	return 0;
}

static int
cb_put(struct canon_body *c, const char *p, size_t n)
{
	c->out += n;
	while (n > 0) {
		size_t room = sizeof(c->buf) - c->blen, k = n < room ? n : room;

		memcpy(c->buf + c->blen, p, k);
		c->blen += k;
		p += k;
		n -= k;
		if (c->blen == sizeof(c->buf) && cb_flush(c) < 0)
			return -1;
	}
	return 0;
}

int
canon_body_init(struct canon_body *c, enum canon_alg alg)
{
	memset(c, 0, sizeof(*c));
	c->alg = alg;
	if ((c->md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->md);
		c->md = NULL;
		return -1;
	}
	return 0;
}

/* Content is coming on this line: write what was held back first. */
static int
cb_content(struct canon_body *c)
{
	for (; c->empty_lines > 0; c->empty_lines--)
		if (cb_put(c, "\r\n", 2) < 0)
			return -1;
	if (c->wsp) {
		c->wsp = 0;
		if (cb_put(c, " ", 1) < 0)
			return -1;
	}
	c->line = 1;
	return 0;
}

int
canon_body_feed(struct canon_body *c, const char *buf, size_t len)
{
	size_t i = 0;

	if (c->md == NULL)
		return -1;
	while (i < len) {
		unsigned char ch = (unsigned char)buf[i];

		if (c->cr) {
			c->cr = 0;
			if (ch == '\n') {
				i++;
				c->wsp = 0;	/* trailing whitespace goes */
				if (c->line) {
					if (cb_put(c, "\r\n", 2) < 0)
						return -1;
					c->line = 0;
				} else {
					c->empty_lines++;
				}
				continue;
			}
			/* a lone CR is content */
			if (cb_content(c) < 0 || cb_put(c, "\r", 1) < 0)
				return -1;
			continue;	/* look at ch again */
		}
		if (ch == '\r') {
			c->cr = 1;
			i++;
			continue;
		}
		if (c->alg == CANON_RELAXED && (ch == ' ' || ch == '\t')) {
			c->wsp = 1;
			i++;
			continue;
		}
		if (cb_content(c) < 0)
			return -1;
		/* copy the run of plain octets in one go */
		{
			size_t j = i;

			while (j < len && buf[j] != '\r' &&
			    !(c->alg == CANON_RELAXED &&
			    (buf[j] == ' ' || buf[j] == '\t')))
				j++;
			if (cb_put(c, buf + i, j - i) < 0)
				return -1;
			i = j;
		}
	}
	return 0;
}

int
canon_body_final(struct canon_body *c, unsigned char hash[32])
{
	unsigned int n = 0;

	if (c->md == NULL)
		return -1;
	if (c->cr) {
		c->cr = 0;
		if (cb_content(c) < 0 || cb_put(c, "\r", 1) < 0)
			return -1;
	}
	if (c->wsp && c->alg == CANON_RELAXED)
		c->wsp = 0;	/* trailing whitespace of the last line */
	if (c->line) {
		if (cb_put(c, "\r\n", 2) < 0)
			return -1;
		c->line = 0;
	} else if (c->alg == CANON_SIMPLE && c->out == 0) {
		if (cb_put(c, "\r\n", 2) < 0)
			return -1;
	}
	if (cb_flush(c) < 0 || EVP_DigestFinal_ex(c->md, hash, &n) != 1 ||
	    n != 32)
		return -1;
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
	return 0;
}

void
canon_body_free(struct canon_body *c)
{
	if (c->md != NULL)
		EVP_MD_CTX_free(c->md);
	c->md = NULL;
}

static int
out_put(char **out, size_t *outlen, size_t *cap, const char *p, size_t n)
{
	if (*cap - *outlen < n) {
		size_t ncap = *cap ? *cap : 256;
		char *nb;

		while (ncap - *outlen < n) {
			if (ncap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			ncap *= 2;
		}
		if ((nb = realloc(*out, ncap)) == NULL)
			return -1;
		*out = nb;
		*cap = ncap;
	}
	memcpy(*out + *outlen, p, n);
	*outlen += n;
	return 0;
}

int
canon_header(enum canon_alg alg, const char *field, size_t len, int crlf,
    char **out, size_t *outlen, size_t *cap)
{
	const char *colon;
	size_t i, nlen;
	int sp = 0, any = 0;

	/* the field's own final CRLF is not part of it here */
	if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
		len -= 2;
	if (alg == CANON_SIMPLE) {
		if (out_put(out, outlen, cap, field, len) < 0)
			return -1;
		return crlf ? out_put(out, outlen, cap, "\r\n", 2) : 0;
	}
	if ((colon = memchr(field, ':', len)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	nlen = (size_t)(colon - field);
	while (nlen > 0 && (field[nlen - 1] == ' ' || field[nlen - 1] == '\t'))
		nlen--;
	for (i = 0; i < nlen; i++) {
		char ch = field[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (out_put(out, outlen, cap, &ch, 1) < 0)
			return -1;
	}
	if (out_put(out, outlen, cap, ":", 1) < 0)
		return -1;
	for (i = (size_t)(colon - field) + 1; i < len; i++) {
		char ch = field[i];

		if (ch == '\r' || ch == '\n')
			continue;	/* unfold */
		if (ch == ' ' || ch == '\t') {
			sp = 1;
			continue;
		}
		if (sp && any && out_put(out, outlen, cap, " ", 1) < 0)
			return -1;
		sp = 0;
		any = 1;
		if (out_put(out, outlen, cap, &ch, 1) < 0)
			return -1;
	}
	return crlf ? out_put(out, outlen, cap, "\r\n", 2) : 0;
}
