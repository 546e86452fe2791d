/*
 * html — escaping for the account page and the form decoder.
 *
 * Every string that did not come from a literal in pages.c goes through
 * html_escape() (text and attribute values alike: & < > " ' are
 * replaced, control characters become '?').  Form bodies
 * (application/x-www-form-urlencoded) are decoded by web_form_parse():
 * '+' is a space and %XX a byte, as browsers send them; a malformed body
 * is refused as a whole.  Bounded: WEB_FORM_MAX fields, each name and
 * value cut to a fixed size (a longer value is an error, never a silent
 * truncation of a password).
 */
#ifndef OUTPOST_WEB_HTML_H
#define OUTPOST_WEB_HTML_H

#include <stddef.h>

struct evbuffer;

#define WEB_FORM_MAX		12
#define WEB_FORM_NAME_MAX	32
#define WEB_FORM_VALUE_MAX	1024

struct web_form {
	int	 n;
	char	 name[WEB_FORM_MAX][WEB_FORM_NAME_MAX + 1];
	char	 value[WEB_FORM_MAX][WEB_FORM_VALUE_MAX + 1];
};

/* Escapes in into out (always NUL-terminated when outlen > 0).  Returns
 * the length the full escape needs (without the NUL); the output is
 * complete only when that is < outlen. */
size_t	html_escape_buf(char *out, size_t outlen, const char *in);
/* Appends the escape of s (NULL: nothing) to b.  0, or -1 when out of
 * memory. */
int	html_escape(struct evbuffer *b, const char *s);

/* Decodes body (len bytes).  0, or -1 when malformed (bad %XX, a NUL or
 * control byte in a value, too many fields, a field too long). */
int	web_form_parse(const char *body, size_t len, struct web_form *f);
/* The value of name, or NULL. */
const char *web_form_get(const struct web_form *f, const char *name);
/* Wipes the values (passwords) with sodium_memzero. */
void	web_form_wipe(struct web_form *f);

#endif
