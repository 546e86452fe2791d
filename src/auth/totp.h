/*
 * totp — RFC 6238 time-based one-time passwords (HMAC-SHA-1, 30 s steps,
 * 6 digits: what authenticator apps accept) and RFC 4648 base32.
 *
 * Pure functions: no state, no I/O.  The caller keeps the secret
 * (encrypted at rest, see accounts.h) and the last step that was used, so
 * a code is never accepted twice (RFC 6238 5.2).
 */
#ifndef OUTPOST_TOTP_H
#define OUTPOST_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TOTP_SECRET_LEN	20	/* 160 bits, RFC 4226 4 R6 recommendation */
#define TOTP_STEP	30
#define TOTP_DIGITS	6
#define TOTP_B32_MAX	64	/* base32 text of a secret, with NUL */

/* HOTP (RFC 4226) value of counter, digits 6..8.  Returns the code
 * (0 .. 10^digits - 1) or -1 when HMAC fails. */
long	totp_hotp(const unsigned char *key, size_t keylen, uint64_t counter,
	    int digits);

/*
 * Checks a code typed by a person: code is digits only (spaces allowed
 * and ignored), the steps now-1, now, now+1 are tried (clock drift), and a
 * step <= last_step is refused (replay).  Returns the matching step
 * (> last_step) or -1.
 */
int64_t	totp_check(const unsigned char *key, size_t keylen, const char *code,
	    time_t now, int64_t last_step);

/* Base32 without padding (RFC 4648 6, upper case).  Returns the text
 * length, or -1 when out is too small. */
int	totp_b32_encode(const unsigned char *in, size_t len, char *out,
	    size_t outlen);
/* Decodes base32 (case-insensitive, spaces and '=' ignored).  Returns the
 * byte count or -1 (bad character, too long). */
int	totp_b32_decode(const char *in, unsigned char *out, size_t outlen);

#endif
