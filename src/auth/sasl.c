/*
 * sasl — decoding of SASL PLAIN (RFC 4616) and LOGIN responses, and the
 * strict base64 they travel in (RFC 4648 via libsodium, RFC 4954 framing).
 *
 * Owns nothing: pure functions over untrusted bytes.  Every intermediate
 * buffer that held a decoded secret is wiped before returning.  Failures
 * are reported as -1 / SASL_MALFORMED; the caller turns those into
 * "501 5.5.2" without echoing the input.
 */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/sasl.h"

/* The three PLAIN fields plus their two separators. */
#define PLAIN_RAW_MAX	(3 * SASL_FIELD_MAX + 2)

/* RFC 4648 4: A-Z a-z 0-9 + / and the '=' pad. */
static int
b64_alphabet(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

long
sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	size_t binlen = 0, i;

	if (in == NULL || (out == NULL && outlen > 0))
		return -1;
	/* RFC 4954 4: a zero-length initial response is sent as "=". */
	if (inlen == 1 && in[0] == '=')
		return 0;
	if (inlen == 0)
		return 0;
	/* Padding is mandatory, so a well-formed input is a multiple of 4. */
	if (inlen % 4 != 0 || inlen / 4 * 3 - 2 > outlen)
		return -1;
	/* libsodium 1.0.18 decodes any octet >= 0x80 as '/' (found by
	 * fuzz/fuzz_sasl.c), so the alphabet is checked here first. */
	for (i = 0; i < inlen; i++)
		if (!b64_alphabet((unsigned char)in[i]))
			return -1;
	/*
	 * No ignore set and no b64_end pointer: libsodium then insists that
	 * every byte was consumed (so whitespace, NULs and trailing junk
	 * fail), that the padding is exact and that the unused low bits of
	 * the last quantum are zero (canonical encoding only).
	 */
	if (sodium_base642bin(out, outlen, in, inlen, NULL, &binlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	if (binlen > (size_t)0x7fffffff)
		return -1;
	return (long)binlen;
}

long
sasl_b64_encode(const unsigned char *in, size_t inlen, char *out,
    size_t outlen)
{
	size_t need;

	if (out == NULL || (in == NULL && inlen > 0))
		return -1;
	if (inlen > ((size_t)0x7fffffff / 4) * 3 - 3)
		return -1;
	need = sodium_base64_ENCODED_LEN(inlen, sodium_base64_VARIANT_ORIGINAL);
	if (outlen < need)
		return -1;
	sodium_bin2base64(out, outlen, in, inlen,
	    sodium_base64_VARIANT_ORIGINAL);
	return (long)(need - 1);
}

/*
 * RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd.
 * Exactly two NULs; authcid and passwd are 1*SAFE (non-empty); each field
 * is bounded by SASL_FIELD_MAX.  out is wiped on any failure.
 */
int
sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out)
{
	unsigned char raw[PLAIN_RAW_MAX];
	const unsigned char *p1, *p2, *end;
	size_t zlen, clen, plen;
	long n;
	int rc = SASL_MALFORMED;

	if (out == NULL)
		return SASL_MALFORMED;
	memset(out, 0, sizeof(*out));
	if (b64 == NULL)
		return SASL_MALFORMED;
	if ((n = sasl_b64_decode(b64, len, raw, sizeof(raw))) < 0)
		goto done;
	end = raw + n;
	if ((p1 = memchr(raw, '\0', (size_t)n)) == NULL)
		goto done;
	if ((p2 = memchr(p1 + 1, '\0', (size_t)(end - (p1 + 1)))) == NULL)
		goto done;
	/* A third NUL would sit inside the password. */
	if (memchr(p2 + 1, '\0', (size_t)(end - (p2 + 1))) != NULL)
		goto done;
	zlen = (size_t)(p1 - raw);
	clen = (size_t)(p2 - (p1 + 1));
	plen = (size_t)(end - (p2 + 1));
	if (zlen > SASL_FIELD_MAX || clen == 0 || clen > SASL_FIELD_MAX ||
	    plen == 0 || plen > SASL_FIELD_MAX)
		goto done;

	memcpy(out->authzid, raw, zlen);
	out->authzid[zlen] = '\0';
	memcpy(out->authcid, p1 + 1, clen);
	out->authcid[clen] = '\0';
	memcpy(out->passwd, p2 + 1, plen);
	out->passwd[plen] = '\0';
	out->passwdlen = plen;

	/*
	 * Acting on behalf of someone else is not offered; an authzid equal
	 * to the login itself is harmless (some clients always send it).
	 */
	if (zlen > 0 && strcasecmp(out->authzid, out->authcid) != 0)
		rc = SASL_AUTHZ_MISMATCH;
	else
		rc = SASL_OK;
done:
	sodium_memzero(raw, sizeof(raw));
	if (rc == SASL_MALFORMED)
		sodium_memzero(out, sizeof(*out));
	else if (rc == SASL_AUTHZ_MISMATCH) {
		/* The caller only needs the names, for the log line. */
		sodium_memzero(out->passwd, sizeof(out->passwd));
		out->passwdlen = 0;
	}
	return rc;
}

long
sasl_login_decode(const char *b64, size_t len, char *out, size_t outlen)
{
	unsigned char raw[SASL_FIELD_MAX];
	long n;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (b64 == NULL)
		return -1;
	if ((n = sasl_b64_decode(b64, len, raw, sizeof(raw))) < 0)
		goto fail;
	/* Leave room for the terminator; NULs would truncate the field. */
	if ((size_t)n >= outlen || memchr(raw, '\0', (size_t)n) != NULL)
		goto fail;
	memcpy(out, raw, (size_t)n);
	out[n] = '\0';
	sodium_memzero(raw, sizeof(raw));
	return n;
fail:
	sodium_memzero(raw, sizeof(raw));
	return -1;
}
