/*
 * html — HTML escaping and the urlencoded form decoder (see html.h).
 * Pure functions, no state; the only allocation is the evbuffer append.
 */
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "web/html.h"

size_t
html_escape_buf(char *out, size_t outlen, const char *in)
{
	size_t need = 0, k, i;
	const char *rep;
	char one[2];
	unsigned char c;
	int fits = outlen > 0;

	if (outlen > 0)
		out[0] = '\0';

	for (i = 0; in[i] != '\0'; i++) {
		c = (unsigned char)in[i];
		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			one[0] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			one[1] = '\0';
			rep = one;
			break;
		}
		k = strlen(rep);
		if (fits && need + k < outlen) {
			memcpy(out + need, rep, k);
			out[need + k] = '\0';
		} else
			fits = 0;	/* never a partial entity */
		need += k;
	}
	return need;
}

int
html_escape(struct evbuffer *b, const char *s)
{
	char chunk[512];
	size_t start = 0, i;

	if (s == NULL)		/* nothing to show */
		return 0;
	/* escape in pieces so any length works with a fixed buffer: each
	 * source byte needs at most 6 output bytes */
	while (s[start] != '\0') {
		char piece[80];

		for (i = 0; i < sizeof(piece) - 1 && s[start + i] != '\0'; i++)
			piece[i] = s[start + i];
		piece[i] = '\0';
		html_escape_buf(chunk, sizeof(chunk), piece);
		if (evbuffer_add(b, chunk, strlen(chunk)) != 0)
			return -1;
		start += i;
	}
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..len) into out (cap bytes + NUL).  0 or -1. */
static int
form_decode(const char *s, size_t len, char *out, size_t cap, int is_name)
{
	size_t i, o = 0;
	int hi, lo;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if ((hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		/* no NUL or control bytes (tab allowed in values) */
		if (c == 0 || c == 0x7f || (c < 0x20 && (is_name || c != '\t')))
			return -1;
		if (o >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int
web_form_parse(const char *body, size_t len, struct web_form *f)
{
	size_t pos = 0, end, eq;

	memset(f, 0, sizeof(*f));
	while (pos < len) {
		for (end = pos; end < len && body[end] != '&'; end++)
			;
		if (end > pos) {
			if (f->n >= WEB_FORM_MAX)
				goto bad;
			for (eq = pos; eq < end && body[eq] != '='; eq++)
				;
			if (eq == pos ||
			    form_decode(body + pos, eq - pos, f->name[f->n],
			    WEB_FORM_NAME_MAX, 1) != 0 ||
			    form_decode(body + (eq < end ? eq + 1 : end),
			    eq < end ? end - eq - 1 : 0, f->value[f->n],
			    WEB_FORM_VALUE_MAX, 0) != 0)
				goto bad;
			f->n++;
		}
		pos = end + 1;
	}
	return 0;
bad:
	web_form_wipe(f);
	return -1;
}

const char *
web_form_get(const struct web_form *f, const char *name)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return NULL;
}

void
web_form_wipe(struct web_form *f)
{
	sodium_memzero(f, sizeof(*f));
}
