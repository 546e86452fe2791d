/*
 * fuzz_sasl — libFuzzer driver for src/auth/sasl.c (SASL PLAIN and LOGIN
 * responses and the strict base64 they travel in).
 *
 * The input is one client response line, as the session hands it over
 * (at most SMTP_AUTH_LINE_MAX octets, no CRLF).  It goes through the
 * PLAIN decoder, the LOGIN decoder (with a roomy and a tight buffer) and
 * the bare base64 decoder.  Checks: decoded fields are NUL-terminated
 * inside their arrays, hold no NUL, and a LOGIN result fits the buffer;
 * a successful base64 decode re-encodes to exactly the input (the
 * decoder accepts canonical encodings only).  Memory errors are for the
 * sanitizers.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_sasl fuzz/corpus/sasl
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_FUZZ	12288	/* SMTP_AUTH_LINE_MAX */

static void
check_field(const char *f, size_t cap)
{
	if (memchr(f, '\0', cap) == NULL)
		abort();	/* not terminated inside its array */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sasl_plain plain;
	static unsigned char bin[LINE_MAX_FUZZ];
	static char enc[LINE_MAX_FUZZ + 8];
	char login[SASL_FIELD_MAX + 1], tiny[4];
	const char *in = (const char *)data;
	long n, m;
	int rc;

	if (size > LINE_MAX_FUZZ)
		return 0;

	memset(&plain, 0x5a, sizeof(plain));
	rc = sasl_plain_decode(in, size, &plain);
	if (rc != SASL_OK && rc != SASL_MALFORMED && rc != SASL_AUTHZ_MISMATCH)
		abort();
	if (rc == SASL_OK) {
		check_field(plain.authzid, sizeof(plain.authzid));
		check_field(plain.authcid, sizeof(plain.authcid));
		check_field(plain.passwd, sizeof(plain.passwd));
		if (plain.passwdlen > SASL_FIELD_MAX ||
		    plain.passwdlen != strlen(plain.passwd))
			abort();
		/* an authzid, when given, is the authcid (else MISMATCH) */
		if (plain.authzid[0] != '\0' &&
		    strcasecmp(plain.authzid, plain.authcid) != 0)
			abort();
	} else if (plain.passwd[0] != '\0' || plain.passwdlen != 0)
		abort();	/* a refused response leaves no secret behind */

	n = sasl_login_decode(in, size, login, sizeof(login));
	if (n < -1 || n > (long)SASL_FIELD_MAX)
		abort();
	if (n >= 0 && (login[n] != '\0' || strlen(login) != (size_t)n))
		abort();
	n = sasl_login_decode(in, size, tiny, sizeof(tiny));
	if (n < -1 || n >= (long)sizeof(tiny))
		abort();

	n = sasl_b64_decode(in, size, bin, sizeof(bin));
	if (n < -1 || n > (long)sizeof(bin))
		abort();
	if (n > 0) {
		/* canonical only: the encoding of the result is the input */
		m = sasl_b64_encode(bin, (size_t)n, enc, sizeof(enc));
		if (m < 0 || (size_t)m != size || memcmp(enc, in, size) != 0)
			abort();
	}
	return 0;
}
