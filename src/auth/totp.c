/*
 * totp — HOTP/TOTP (RFC 4226, RFC 6238) with OpenSSL's EVP_MAC HMAC-SHA-1
 * (libsodium has no SHA-1), and base32 (RFC 4648) for otpauth:// URIs.
 *
 * Owns nothing.  Failures: -1 from every function; a code that does not
 * parse simply does not match.
 */
#include <ctype.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth/totp.h"

static const char b32_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

long
totp_hotp(const unsigned char *key, size_t keylen, uint64_t counter,
    int digits)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	unsigned int off;
	unsigned long bin;
	long mod = 1, r = -1;
	int i;

	if (key == NULL || keylen == 0 || digits < 6 || digits > 8)
		return -1;
	for (i = 0; i < digits; i++)
		mod *= 10;
	for (i = 7; i >= 0; i--) {
		msg[i] = (unsigned char)(counter & 0xff);
		counter >>= 8;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA1", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(m)) == NULL ||
	    EVP_MAC_init(ctx, key, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, msg, sizeof(msg)) != 1 ||
	    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 ||
	    maclen != 20)
		goto done;
	/* RFC 4226 5.3: dynamic truncation */
	off = mac[19] & 0x0f;
	bin = ((unsigned long)(mac[off] & 0x7f) << 24) |
	    ((unsigned long)mac[off + 1] << 16) |
	    ((unsigned long)mac[off + 2] << 8) | (unsigned long)mac[off + 3];
	r = (long)(bin % (unsigned long)mod);
done:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return r;
}

int64_t
totp_check(const unsigned char *key, size_t keylen, const char *code,
    time_t now, int64_t last_step)
{
	long want = 0, got;
	int64_t step, s;
	int n = 0, d;
	const char *p;

	if (code == NULL || now < 0)
		return -1;
	for (p = code; *p != '\0'; p++) {
		if (*p == ' ')
			continue;
		if (!isdigit((unsigned char)*p) || ++n > TOTP_DIGITS)
			return -1;
		want = want * 10 + (*p - '0');
	}
	if (n != TOTP_DIGITS)
		return -1;
	step = (int64_t)now / TOTP_STEP;
	/* Try every window step, not stopping at a match: the work is the
	 * same whether and where it matches. */
	s = -1;
	for (d = -1; d <= 1; d++) {
		if (step + d < 0)
			continue;
		got = totp_hotp(key, keylen, (uint64_t)(step + d), TOTP_DIGITS);
		if (got >= 0 && got == want && step + d > last_step && s < 0)
			s = step + d;
	}
	return s;
}

int
totp_b32_encode(const unsigned char *in, size_t len, char *out,
    size_t outlen)
{
	size_t i, o = 0;
	unsigned int buf = 0;
	int bits = 0;

	if (out == NULL || outlen == 0 || (len * 8 + 4) / 5 + 1 > outlen)
		return -1;
	for (i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32_alpha[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32_alpha[(buf << (5 - bits)) & 31];
	out[o] = '\0';
	return (int)o;
}

int
totp_b32_decode(const char *in, unsigned char *out, size_t outlen)
{
	unsigned int buf = 0;
	size_t o = 0;
	int bits = 0, v;
	const char *p, *q;

	if (in == NULL || out == NULL)
		return -1;
	for (p = in; *p != '\0'; p++) {
		if (*p == ' ' || *p == '=')
			continue;
		if ((q = strchr(b32_alpha, toupper((unsigned char)*p))) ==
		    NULL || *p == '\0')
			return -1;
		v = (int)(q - b32_alpha);
		buf = ((buf << 5) | (unsigned int)v) & 0xffff;
		bits += 5;
		if (bits >= 8) {
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)((buf >> (bits - 8)) & 0xff);
			bits -= 8;
		}
	}
	return (int)o;
}
