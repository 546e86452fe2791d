/*
 * smtpc/reply — the bounded SMTP reply parser and EHLO keyword parser of
 * the client (RFC 5321 4.2, 4.2.1; RFC 3463 enhanced codes).
 *
 * Owns nothing: the caller's struct smtpc_reply holds the state of one
 * reply.  Every line is untrusted server output: the code must be three
 * digits 2xx-5xx, the same on every line, followed by '-', ' ' or the
 * end; a line may not exceed SMTPC_LINE_MAX and a reply SMTPC_LINES_MAX
 * lines.  Anything else is SMTPC_REPLY_BAD, which the session turns into
 * SMTPC_E_PROTOCOL (the connection is then dropped, never resynchronised).
 * Text is kept escaped (log_escape) and truncated at SMTPC_TEXT_MAX.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc/smtpc.h"
#include "util/log.h"

void
smtpc_reply_init(struct smtpc_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* "5.7.8" at the start of text: class 2/4/5, subject 1-3 digits, detail
 * 1-3 digits (RFC 3463 2).  Returns its length, 0 when there is none. */
static size_t
reply_enhanced_len(const char *t, size_t len)
{
	size_t	 i = 0, n;
	int	 part;

	if (len < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') ||
	    t[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && n < 3 && isdigit((unsigned char)t[i]);
		    n++)
			i++;
		if (n == 0)
			return 0;
		if (part == 0) {
			if (i >= len || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && t[i] != ' ')
		return 0;
	return i;
}

/* Appends sep + escaped text to r->text, truncating with "...". */
static void
reply_append(struct smtpc_reply *r, const char *t, size_t len)
{
	char	 esc[SMTPC_TEXT_MAX];
	size_t	 room, n;

	if (r->textlen + 4 >= sizeof(r->text))
		return;
	if (r->textlen > 0)
		r->text[r->textlen++] = ' ';
	r->text[r->textlen] = '\0';
	room = sizeof(r->text) - r->textlen;
	log_escape(esc, room < sizeof(esc) ? room : sizeof(esc), t, len);
	n = strlen(esc);
	memcpy(r->text + r->textlen, esc, n + 1);
	r->textlen += n;
}

int
smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len,
    const char **textp, size_t *textlenp)
{
	const char	*t;
	size_t		 tl, el;
	int		 code, last;

	if (textp != NULL)
		*textp = NULL;
	if (textlenp != NULL)
		*textlenp = 0;
	if (line == NULL || len < 3 || len > SMTPC_LINE_MAX - 2)
		return SMTPC_REPLY_BAD;
	if (r->nlines >= SMTPC_LINES_MAX)
		return SMTPC_REPLY_BAD;
	if (line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1])
	    || !isdigit((unsigned char)line[2]))
		return SMTPC_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3)
		last = 1;
	else if (line[3] == ' ')
		last = 1;
	else if (line[3] == '-')
		last = 0;
	else
		return SMTPC_REPLY_BAD;
	if (r->nlines > 0 && code != r->code)
		return SMTPC_REPLY_BAD;
	r->code = code;
	r->nlines++;

	t = len > 4 ? line + 4 : line + len;
	tl = len > 4 ? len - 4 : 0;
	if (textp != NULL)
		*textp = t;
	if (textlenp != NULL)
		*textlenp = tl;

	/* The enhanced code is taken from the first line and dropped from
	 * the kept text of every line (RFC 2034 3: each line carries it). */
	if ((el = reply_enhanced_len(t, tl)) > 0 &&
	    el < sizeof(r->enhanced) && t[0] == line[0]) {
		if (r->nlines == 1) {
			memcpy(r->enhanced, t, el);
			r->enhanced[el] = '\0';
		}
		t += el;
		tl -= el;
		while (tl > 0 && *t == ' ') {
			t++;
			tl--;
		}
	}
	if (tl > 0)
		reply_append(r, t, tl);
	return last ? SMTPC_REPLY_DONE : SMTPC_REPLY_MORE;
}

static int
word_eq(const char *w, size_t wl, const char *kw)
{
	return strlen(kw) == wl && strncasecmp(w, kw, wl) == 0;
}

/* SASL mechanism names are [A-Z0-9-_], at most 20 (RFC 4422 3.1). */
static int
mech_name_ok(const char *w, size_t wl)
{
	size_t	 i;

	if (wl == 0 || wl > 20)
		return 0;
	for (i = 0; i < wl; i++)
		if (!isalnum((unsigned char)w[i]) && w[i] != '-' &&
		    w[i] != '_')
			return 0;
	return 1;
}

void
smtpc_caps_parse_line(struct smtpc_caps *caps, const char *text, size_t len)
{
	const char	*w, *end = text + len, *p;
	size_t		 wl, n;
	uint64_t	 v;
	unsigned	 bit;
	int		 digits;

	/* keyword */
	for (p = text; p < end && *p != ' ' && *p != '='; p++)
		;
	w = text;
	wl = (size_t)(p - text);
	/* Old servers (and Gmail once) wrote "AUTH=LOGIN PLAIN". */
	if (p < end)
		p++;
	if (word_eq(w, wl, "SIZE")) {
		caps->flags |= SMTPC_CAP_SIZE;
		v = 0;
		digits = 0;
		for (; p < end && isdigit((unsigned char)*p) && digits < 19;
		    p++, digits++)
			v = v * 10 + (uint64_t)(*p - '0');
		caps->size = v;
	} else if (word_eq(w, wl, "PIPELINING"))
		caps->flags |= SMTPC_CAP_PIPELINING;
	else if (word_eq(w, wl, "STARTTLS"))
		caps->flags |= SMTPC_CAP_STARTTLS;
	else if (word_eq(w, wl, "8BITMIME"))
		caps->flags |= SMTPC_CAP_8BITMIME;
	else if (word_eq(w, wl, "SMTPUTF8"))
		caps->flags |= SMTPC_CAP_SMTPUTF8;
	else if (word_eq(w, wl, "DSN"))
		caps->flags |= SMTPC_CAP_DSN;
	else if (word_eq(w, wl, "CHUNKING"))
		caps->flags |= SMTPC_CAP_CHUNKING;
	else if (word_eq(w, wl, "ENHANCEDSTATUSCODES"))
		caps->flags |= SMTPC_CAP_ENHANCEDSTATUSCODES;
	else if (word_eq(w, wl, "AUTH")) {
		caps->flags |= SMTPC_CAP_AUTH;
		while (p < end) {
			while (p < end && *p == ' ')
				p++;
			w = p;
			while (p < end && *p != ' ')
				p++;
			wl = (size_t)(p - w);
			if (wl == 0)
				break;
			if (word_eq(w, wl, "PLAIN"))
				bit = SMTPC_AUTH_PLAIN;
			else if (word_eq(w, wl, "LOGIN"))
				bit = SMTPC_AUTH_LOGIN;
			else if (word_eq(w, wl, "XOAUTH2"))
				bit = SMTPC_AUTH_XOAUTH2;
			else if (word_eq(w, wl, "OAUTHBEARER"))
				bit = SMTPC_AUTH_OAUTHBEARER;
			else if (word_eq(w, wl, "CRAM-MD5"))
				bit = SMTPC_AUTH_CRAM_MD5;
			else
				bit = 0;
			/* keep a readable, bounded list for the doctor, each
			 * mechanism once ("AUTH=" lines repeat them) */
			if ((caps->auth & bit) != 0 ||
			    (bit == 0 && !mech_name_ok(w, wl)))
				continue;
			caps->auth |= bit;
			n = strlen(caps->auth_list);
			if (n + wl + 2 < sizeof(caps->auth_list)) {
				if (n > 0)
					caps->auth_list[n++] = ' ';
				memcpy(caps->auth_list + n, w, wl);
				caps->auth_list[n + wl] = '\0';
			}
		}
	}
}
