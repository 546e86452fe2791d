/*
 * canon — DKIM canonicalisation (RFC 6376 3.4): "simple" and "relaxed"
 * for header fields and for the body, the body incrementally.
 *
 * The body canonicaliser is fed the message body in pieces of any size
 * (it keeps a few bytes of state across calls: pending whitespace, a CR
 * waiting for its LF, empty lines that may turn out to be trailing) and
 * feeds the canonical form into a SHA-256 context, so a 30 MB body is
 * hashed as it streams and never held.  Trailing empty lines are held
 * back as a count, not as bytes, so memory stays constant.
 *
 * Input is expected to use CRLF line ends (outpost's reader refuses bare
 * CR and LF); a lone CR or LF is treated as an ordinary octet, which is
 * what a verifier that reads the same bytes does.
 *
 * Fails: only when OpenSSL's digest calls fail (returns -1).
 */
#ifndef OUTPOST_MESSAGE_CANON_H
#define OUTPOST_MESSAGE_CANON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

enum canon_alg { CANON_SIMPLE, CANON_RELAXED };

struct canon_body {
	enum canon_alg	 alg;
	EVP_MD_CTX	*md;		/* SHA-256 of the canonical body */
	uint64_t	 empty_lines;	/* held back: maybe trailing */
	int		 wsp;		/* relaxed: whitespace pending in the line */
	int		 cr;		/* a CR waiting for LF */
	int		 line;		/* the current line has content */
	uint64_t	 out;		/* canonical octets hashed so far */
	unsigned char	 buf[4096];	/* output staged for the digest */
	size_t		 blen;
};

/* 0 or -1 (digest setup failed). */
int	canon_body_init(struct canon_body *c, enum canon_alg alg);
int	canon_body_feed(struct canon_body *c, const char *buf, size_t len);
/* Ends the body and writes the SHA-256 (32 bytes) into hash.  0/-1. */
int	canon_body_final(struct canon_body *c, unsigned char hash[32]);
void	canon_body_free(struct canon_body *c);

/*
 * One header field (name, colon, value with its folding, final CRLF
 * optional in the input) in canonical form appended to out/outlen/cap
 * (grown with realloc).  crlf: append the CRLF (every field except the
 * DKIM-Signature being computed).  Returns 0 or -1 (ENOMEM).
 */
int	canon_header(enum canon_alg alg, const char *field, size_t len,
	    int crlf, char **out, size_t *outlen, size_t *cap);

#endif
