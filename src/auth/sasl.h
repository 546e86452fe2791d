/*
 * sasl — decoding of SASL PLAIN and LOGIN exchanges (RFC 4616, RFC 4954).
 *
 * Pure functions over untrusted input: every length is bounded, NUL bytes
 * inside fields are refused, and decoded secrets are wiped by the caller
 * with sodium_memzero() when done.
 */
#ifndef OUTPOST_SASL_H
#define OUTPOST_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX 1024	/* authzid, authcid, password: each at most */

/* Strict base64 (RFC 4648, padding required, no whitespace).  Returns the
 * decoded length, or -1 on malformed input or when it would not fit. "="
 * alone decodes to the empty string (RFC 4954 empty initial response). */
long	sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
	    size_t outlen);
/* Encodes into out (NUL-terminated); returns length or -1 if too small. */
long	sasl_b64_encode(const unsigned char *in, size_t inlen, char *out,
	    size_t outlen);

struct sasl_plain {
	char	authzid[SASL_FIELD_MAX + 1];
	char	authcid[SASL_FIELD_MAX + 1];
	char	passwd[SASL_FIELD_MAX + 1];
	size_t	passwdlen;
};

enum sasl_status {
	SASL_OK = 0,
	SASL_MALFORMED = -1,	/* bad base64 or structure: 501 5.5.2 */
	SASL_AUTHZ_MISMATCH = -2, /* authzid given and != authcid: 535 */
};

/* Decodes a base64 PLAIN response: [authzid] NUL authcid NUL passwd. */
int	sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out);

/* Decodes one base64 LOGIN response (username or password) into out,
 * NUL-terminated; returns its length or -1. */
long	sasl_login_decode(const char *b64, size_t len, char *out,
	    size_t outlen);

#endif
