/*
 * dataread — the DATA/BDAT content reader (see dataread.h): a byte-level
 * state machine that finds the end of DATA, undoes dot-stuffing, and
 * enforces the CR/LF, NUL, line-length and size rules.
 *
 * Owns nothing but the struct dataread the caller provides; no I/O, no
 * allocation.  Content goes out through the emit callback in runs: each
 * call gets a contiguous slice of the caller's input, so a message costs
 * one call per feed, plus one per dot-stuffed line.  The first error is
 * sticky: emitting stops at once and the reader keeps scanning (DATA) to
 * the real CR LF "." CR LF, so no byte of a refused message can ever be
 * read as a command (the SMTP smuggling defence).
 *
 * The result (err, size, received, where DATA ends) depends only on the
 * bytes, never on how the input is split into feeds.
 */
#include <string.h>
#include <strings.h>

#include "smtp/dataread.h"

#define LINE_MAX_OCTETS	998	/* RFC 5322 2.1.1, excluding CRLF */

enum dr_state {
	DR_S_BOL = 0,	/* at the start of a line */
	DR_S_DOT,	/* DATA: after a dot at the start of a line */
	DR_S_DOTCR,	/* DATA: after "." CR at the start of a line */
	DR_S_LINE,	/* inside a line */
	DR_S_CR,	/* after a CR inside a line (CRLF or a bare CR) */
	DR_S_DONE,	/* DATA: the end marker was consumed */
};

/* Octets that leave the fast path of DR_S_LINE. */
static const unsigned char dr_special[256] = {
	['\0'] = 1, ['\r'] = 1, ['\n'] = 1,
};

void
dataread_init(struct dataread *dr, int bdat, uint64_t max_size,
    dataread_emit emit, void *ctx)
{
	memset(dr, 0, sizeof(*dr));
	dr->bdat = bdat;
	/* DATA starts at a line start: the command's CRLF ended a line. */
	dr->state = DR_S_BOL;
	dr->max_size = max_size;
	dr->in_header = 1;
	dr->err = DR_OK;
	dr->emit = emit;
	dr->ctx = ctx;
}

static void
dr_set_err(struct dataread *dr, enum dataread_err e)
{
	if (dr->err == DR_OK)
		dr->err = e;
}

/* Passes buf[0..len) to emit unless an error or a failed store stopped
 * emitting. */
static void
dr_flush(struct dataread *dr, const char *buf, size_t len)
{
	if (len == 0 || dr->err != DR_OK || dr->emit_failed ||
	    dr->emit == NULL)
		return;
	if (dr->emit(dr->ctx, buf, len) != 0)
		dr->emit_failed = 1;
}

/*
 * Accounts n content octets that belong to the current line (n_line
 * octets of line length, n_size octets of size).  When both limits are
 * crossed inside the same n octets, the error is the one whose first
 * offending octet comes first (size wins a tie), as if counted octet by
 * octet, so the result never depends on how the input was split.
 */
static void
dr_account(struct dataread *dr, size_t n_size, size_t n_line)
{
	if (dr->err == DR_OK) {
		uint64_t sroom = dr->size >= dr->max_size ?
		    0 : dr->max_size - dr->size;
		uint64_t lroom = dr->linelen >= LINE_MAX_OCTETS ?
		    0 : LINE_MAX_OCTETS - dr->linelen;
		int sover = n_size > sroom, lover = n_line > lroom;

		if (sover && (!lover || sroom <= lroom))
			dr_set_err(dr, DR_ERR_SIZE);	/* RFC 1870 */
		else if (lover)
			dr_set_err(dr, DR_ERR_LINE);	/* RFC 5322 2.1.1 */
	}
	dr->size += n_size;
	/* Saturate: once over the limit the exact length does not matter. */
	if (n_line > LINE_MAX_OCTETS + 1 - dr->linelen)
		dr->linelen = LINE_MAX_OCTETS + 1;
	else
		dr->linelen += n_line;
}

/* Keeps the start of a header line, with runs of blanks squeezed to one,
 * so that "Received   :" still fits hdrbuf. */
static void
dr_header_byte(struct dataread *dr, unsigned char c)
{
	int blank = c == ' ' || c == '\t';

	if (dr->hdrlen >= sizeof(dr->hdrbuf))
		return;
	if (blank && dr->hdrlen > 0 &&
	    (dr->hdrbuf[dr->hdrlen - 1] == ' ' ||
	    dr->hdrbuf[dr->hdrlen - 1] == '\t'))
		return;
	dr->hdrbuf[dr->hdrlen++] = (char)c;
}

/* Called at each CRLF while in the header section. */
static void
dr_header_line_end(struct dataread *dr)
{
	const char *h = dr->hdrbuf;

	if (dr->linelen == 0) {
		/* RFC 5322 2.1: the header section ends at the first empty
		 * line. */
		dr->in_header = 0;
		return;
	}
	/* RFC 5322 2.2.3: a line starting with WSP continues a field.
	 * RFC 5322 3.6.7 / 4.5.3 obs-optional: "Received" WSP* ":". */
	if (dr->hdrlen >= 9 && strncasecmp(h, "received", 8) == 0 &&
	    (h[8] == ':' || ((h[8] == ' ' || h[8] == '\t') &&
	    dr->hdrlen >= 10 && h[9] == ':')))
		dr->received++;
}

static void
dr_line_start(struct dataread *dr)
{
	dr->state = DR_S_BOL;
	dr->linelen = 0;
	dr->hdrlen = 0;
}

/*
 * Feeds buf[0..len).  Content is emitted in runs: run is the start of the
 * not yet emitted content in buf; it is flushed before every octet that
 * is not content (the dot of a stuffed line, the end marker) and at the
 * end of the call.  A CR at the end of a feed is emitted with its run:
 * it is content whether a LF follows (CRLF is kept) or not (bare CR, an
 * error, after which nothing more is emitted).
 */
size_t
dataread_feed(struct dataread *dr, const char *buf, size_t len, int *done)
{
	size_t i = 0, run = 0;

	*done = 0;
	if (dr->state == DR_S_DONE) {
		*done = 1;
		return 0;
	}
	while (i < len) {
		unsigned char c = (unsigned char)buf[i];

		switch (dr->state) {
		case DR_S_BOL:
			if (c == '.' && !dr->bdat) {
				/* RFC 5321 4.5.2: drop the first dot of a
				 * line; "." CRLF alone ends the data. */
				dr_flush(dr, buf + run, i - run);
				run = ++i;
				dr->state = DR_S_DOT;
				break;
			}
			dr->state = DR_S_LINE;
			break;		/* the octet is handled as DR_S_LINE */

		case DR_S_DOT:
			if (c == '\r') {
				run = ++i;	/* not content unless bare */
				dr->state = DR_S_DOTCR;
				break;
			}
			/* A stuffed line (or ".\n": a bare LF, an error). */
			dr->state = DR_S_LINE;
			break;

		case DR_S_DOTCR:
			if (c == '\n') {
				/* RFC 5321 4.1.1.4: CRLF "." CRLF, the only end
				 * of the mail data. */
				i++;
				dr->state = DR_S_DONE;
				*done = 1;
				return i;
			}
			/* ".\r" + other: the CR was bare; the octet is then
			 * an ordinary octet of the line. */
			dr_set_err(dr, DR_ERR_BARE);
			dr->state = DR_S_LINE;
			dr_account(dr, 0, 2);
			break;

		case DR_S_CR:
			if (c == '\n') {
				/* CRLF: end of a line, kept in the content. */
				i++;
				dr_account(dr, 1, 0);
				if (dr->in_header)
					dr_header_line_end(dr);
				dr_line_start(dr);
				break;
			}
			/* A bare CR (RFC 5321 2.3.8): it does not end the
			 * line; the octet after it is handled in the line. */
			dr_set_err(dr, DR_ERR_BARE);
			dr_account(dr, 0, 1);
			dr->state = DR_S_LINE;
			break;

		case DR_S_LINE:
			if (!dr_special[c] && (!dr->in_header ||
			    dr->hdrlen >= sizeof(dr->hdrbuf))) {
				/* Fast path, up to the next CR, LF or NUL:
				 * the body, or the rest of a header line
				 * whose start is already kept. */
				size_t j = i + 1;

				while (j < len &&
				    !dr_special[(unsigned char)buf[j]])
					j++;
				dr_account(dr, j - i, j - i);
				i = j;
				break;
			}
			i++;
			if (c == '\r') {
				/* The CR counts as content now; its line
				 * length only if it proves bare. */
				dr_account(dr, 1, 0);
				dr->state = DR_S_CR;
				break;
			}
			if (c == '\n')
				/* RFC 5321 2.3.8: a bare LF is not a line end. */
				dr_set_err(dr, DR_ERR_BARE);
			else if (c == '\0')
				dr_set_err(dr, DR_ERR_NUL);
			if (dr->in_header)
				dr_header_byte(dr, c);
			dr_account(dr, 1, 1);
			break;

		default:
			/* Not reached: DR_S_DONE returned above. */
			return i;
		}
	}
	dr_flush(dr, buf + run, len - run);
	return len;
}

enum dataread_err
dataread_finish(struct dataread *dr)
{
	if (!dr->bdat)
		return dr->err;
	switch (dr->state) {
	case DR_S_CR:
		/* A lone CR at the end of the last chunk is bare. */
		dr_set_err(dr, DR_ERR_BARE);
		break;
	case DR_S_LINE:
		/* The last line lacks its CRLF: add it, as a relay will
		 * have to (RFC 5321 4.1.1.4: the data ends with CRLF). */
		if (dr->in_header)
			dr_header_line_end(dr);
		dr_account(dr, 2, 0);
		dr_flush(dr, "\r\n", 2);
		dr_line_start(dr);
		break;
	default:
		break;
	}
	return dr->err;
}
