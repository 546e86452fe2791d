/*
 * dataread — the message-content reader for DATA and BDAT, a byte-level
 * state machine.
 *
 * It is fed raw bytes from the connection and emits the message content
 * to store (dot-unstuffed for DATA), while enforcing the rules that keep
 * outpost from becoming an SMTP smuggling vector (CVE-2023-51764 family):
 *   - the only end of DATA is CR LF "." CR LF (the initial CR LF being
 *     the one that ended the previous line, or the DATA command itself);
 *     "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\r", "\r\n.\n" are not ends;
 *   - a bare CR or a bare LF anywhere makes the message invalid (sticky
 *     error DR_ERR_BARE), and the reader keeps scanning, without storing,
 *     to the real end, so the remaining bytes can never run as commands;
 *   - a line over 998 octets (RFC 5322 2.1.1) is DR_ERR_LINE;
 *   - content over max_size is DR_ERR_SIZE: emitting stops at once.
 * The first error sticks; later ones are ignored.  The reader counts
 * "Received:" header fields in the header section for the hop limit.
 *
 * BDAT mode (RFC 3030): no dot handling and no end marker; the caller
 * feeds exactly each chunk's bytes and calls dataread_finish() after the
 * LAST chunk.  The same CR/LF and line-length rules apply, because the
 * message is later relayed with DATA.
 */
#ifndef OUTPOST_SMTP_DATAREAD_H
#define OUTPOST_SMTP_DATAREAD_H

#include <stddef.h>
#include <stdint.h>

enum dataread_err {
	DR_OK = 0,
	DR_ERR_BARE,		/* bare CR or LF: 550 5.6.0 (smuggling defence) */
	DR_ERR_LINE,		/* line over 998 octets: 550 5.6.0 Line too long */
	DR_ERR_SIZE,		/* over max_size: 552 5.2.3 */
	DR_ERR_NUL,		/* NUL octet in a 7bit/8bitmime message: 550 5.6.0 */
};

/* Receives content to store.  Returns 0, or -1 when the store failed: the
 * reader then sets emit_failed, stops calling emit and keeps scanning to
 * the end (the caller reports its own error). */
typedef int (*dataread_emit)(void *ctx, const char *buf, size_t len);

struct dataread {
	int		 bdat;		/* BDAT mode */
	int		 state;		/* private */
	uint64_t	 max_size;	/* content octets allowed */
	uint64_t	 size;		/* content octets seen (emitted or not) */
	size_t		 linelen;	/* private: octets in the current line */
	int		 in_header;	/* private: still in the header section */
	char		 hdrbuf[10];	/* private: start of the current header line */
	size_t		 hdrlen;	/* private */
	int		 received;	/* "Received:" fields counted */
	enum dataread_err err;		/* first error, sticky */
	int		 emit_failed;	/* emit returned -1 once */
	dataread_emit	 emit;
	void		*ctx;
};

void	dataread_init(struct dataread *dr, int bdat, uint64_t max_size,
	    dataread_emit emit, void *ctx);

/*
 * Feeds len bytes.  Returns the number of bytes consumed: for DATA, when
 * the end marker is found, consumption stops right after its final LF and
 * *done is set to 1 (the rest of the input is the next command).  In BDAT
 * mode everything is consumed and *done stays 0.
 */
size_t	dataread_feed(struct dataread *dr, const char *buf, size_t len,
	    int *done);

/* BDAT LAST: ends the content (adds a final CRLF if the last line lacked
 * one; a pending lone CR is DR_ERR_BARE).  Returns dr->err. */
enum dataread_err dataread_finish(struct dataread *dr);

#endif
