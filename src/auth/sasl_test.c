/*
 * sasl_test — strict base64, PLAIN and LOGIN decoding against tables of
 * good and hostile inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "auth/sasl.h"

struct b64_case {
	const char	*in;
	long		 want;		/* decoded length or -1 */
	const char	*out;		/* expected bytes when want >= 0 */
};

static void
test_b64_decode_table(void **state)
{
	static const struct b64_case cases[] = {
		{ "", 0, "" },
		{ "=", 0, "" },			/* RFC 4954 empty response */
		{ "==", -1, NULL },
		{ "====", -1, NULL },
		{ "QQ==", 1, "A" },
		{ "QUI=", 2, "AB" },
		{ "QUJD", 3, "ABC" },
		{ "QUJDRA==", 4, "ABCD" },
		{ "QQ", -1, NULL },		/* padding required */
		{ "QQ=", -1, NULL },		/* short padding */
		{ "QQ===", -1, NULL },		/* extra padding */
		{ "QUI", -1, NULL },
		{ "QR==", -1, NULL },		/* non-zero trailing bits */
		{ "QUJ=", -1, NULL },		/* non-zero trailing bits */
		{ "QU I=", -1, NULL },		/* inner space */
		{ " QUI=", -1, NULL },
		{ "QUI= ", -1, NULL },
		{ "QUI=\r\n", -1, NULL },
		{ "QUI=QUI=", -1, NULL },	/* data after padding */
		{ "Q=I=", -1, NULL },
		{ "QUI*", -1, NULL },
		{ "QU-_", -1, NULL },		/* URL-safe alphabet */
		{ "AAAA", 3, "\0\0\0" },
		{ "/w==", 1, "\xff" },
		{ "//==", -1, NULL },		/* non-zero trailing bits */
	};
	unsigned char out[64];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = sasl_b64_decode(cases[i].in, strlen(cases[i].in), out,
		    sizeof(out));
		if (n != cases[i].want)
			fail_msg("case %zu \"%s\": got %ld want %ld", i,
			    cases[i].in, n, cases[i].want);
		if (n > 0)
			assert_memory_equal(out, cases[i].out, (size_t)n);
	}
}

static void
test_b64_decode_bounds(void **state)
{
	unsigned char out[8];
	const char nul_in[] = "QU\0=";

	(void)state;
	/* Output buffer exactly big enough, then one too small. */
	assert_int_equal(sasl_b64_decode("QUJD", 4, out, 3), 3);
	assert_int_equal(sasl_b64_decode("QUJD", 4, out, 2), -1);
	assert_int_equal(sasl_b64_decode("QUJDRA==", 8, out, 3), -1);
	assert_int_equal(sasl_b64_decode("QUJDRA==", 8, out, 4), 4);
	/* Length is honoured: a NUL inside the counted bytes is an error. */
	assert_int_equal(sasl_b64_decode(nul_in, 4, out, sizeof(out)), -1);
	/* Not NUL-terminated input is fine when inlen is right. */
	assert_int_equal(sasl_b64_decode("QUJDxxxx", 4, out, sizeof(out)), 3);
	assert_int_equal(sasl_b64_decode(NULL, 0, out, sizeof(out)), -1);
}

static void
test_b64_roundtrip(void **state)
{
	unsigned char in[300], back[300];
	char enc[512];
	size_t len;
	long n;

	(void)state;
	for (len = 0; len < sizeof(in); len += 7) {
		randombytes_buf(in, len);
		n = sasl_b64_encode(in, len, enc, sizeof(enc));
		assert_true(n >= 0);
		assert_int_equal((size_t)n, strlen(enc));
		assert_int_equal(n % 4, 0);
		assert_int_equal(sasl_b64_decode(enc, (size_t)n, back,
		    sizeof(back)), (long)len);
		assert_memory_equal(in, back, len);
	}
	/* Too small an output buffer (needs 4 + NUL). */
	assert_int_equal(sasl_b64_encode((const unsigned char *)"A", 1, enc,
	    4), -1);
	assert_int_equal(sasl_b64_encode((const unsigned char *)"A", 1, enc,
	    5), 4);
	assert_string_equal(enc, "QQ==");
}

/* Encodes raw (with embedded NULs) and runs the PLAIN decoder on it. */
static int
plain(const char *raw, size_t rawlen, struct sasl_plain *out)
{
	char *enc;
	size_t cap = rawlen / 3 * 4 + 8;
	long n;
	int rc;

	enc = malloc(cap);
	assert_non_null(enc);
	n = sasl_b64_encode((const unsigned char *)raw, rawlen, enc, cap);
	assert_true(n >= 0);
	rc = sasl_plain_decode(enc, (size_t)n, out);
	free(enc);
	return rc;
}

struct plain_case {
	const char	*raw;
	size_t		 len;
	int		 want;
	const char	*authzid, *authcid, *passwd;
};
#define P(s) s, sizeof(s) - 1

static void
test_plain_table(void **state)
{
	static const struct plain_case cases[] = {
		{ P("\0me@example.org\0secret"), SASL_OK,
		    "", "me@example.org", "secret" },
		{ P("me@example.org\0me@example.org\0pw"), SASL_OK,
		    "me@example.org", "me@example.org", "pw" },
		{ P("ME@Example.ORG\0me@example.org\0pw"), SASL_OK,
		    "ME@Example.ORG", "me@example.org", "pw" },
		{ P("boss@example.org\0me@example.org\0pw"),
		    SASL_AUTHZ_MISMATCH, NULL, NULL, NULL },
		{ P("\0me@example.org\0pass word with spaces!"), SASL_OK,
		    "", "me@example.org", "pass word with spaces!" },
		{ P("me@example.org\0secret"), SASL_MALFORMED, NULL, NULL, NULL },  /* one NUL */
		{ P("me@example.org"), SASL_MALFORMED, NULL, NULL, NULL },          /* no NUL */
		{ P("\0me@example.org\0sec\0ret"), SASL_MALFORMED, NULL, NULL, NULL },/* three */
		{ P("\0\0secret"), SASL_MALFORMED, NULL, NULL, NULL },         /* empty authcid */
		{ P("\0me@example.org\0"), SASL_MALFORMED, NULL, NULL, NULL }, /* empty passwd */
		{ P("\0\0"), SASL_MALFORMED, NULL, NULL, NULL },
		{ P(""), SASL_MALFORMED, NULL, NULL, NULL },
	};
	struct sasl_plain sp;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&sp, 'X', sizeof(sp));
		rc = plain(cases[i].raw, cases[i].len, &sp);
		if (rc != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, rc,
			    cases[i].want);
		if (rc == SASL_OK) {
			assert_string_equal(sp.authzid, cases[i].authzid);
			assert_string_equal(sp.authcid, cases[i].authcid);
			assert_string_equal(sp.passwd, cases[i].passwd);
			assert_int_equal(sp.passwdlen,
			    strlen(cases[i].passwd));
		} else {
			/* Nothing of the secret may be left behind. */
			assert_int_equal(sp.passwd[0], '\0');
			assert_int_equal(sp.passwdlen, 0);
		}
	}
}

static void
test_plain_lengths(void **state)
{
	char raw[3 * SASL_FIELD_MAX + 10];
	struct sasl_plain sp;
	size_t n;

	(void)state;
	/* Each field exactly SASL_FIELD_MAX: accepted. */
	memset(raw, 'a', SASL_FIELD_MAX);
	raw[SASL_FIELD_MAX] = '\0';
	memset(raw + SASL_FIELD_MAX + 1, 'a', SASL_FIELD_MAX);
	raw[2 * SASL_FIELD_MAX + 1] = '\0';
	memset(raw + 2 * SASL_FIELD_MAX + 2, 'p', SASL_FIELD_MAX);
	n = 3 * SASL_FIELD_MAX + 2;
	assert_int_equal(plain(raw, n, &sp), SASL_OK);
	assert_int_equal(strlen(sp.authcid), SASL_FIELD_MAX);
	assert_int_equal(sp.passwdlen, SASL_FIELD_MAX);

	/* Password one byte over: refused. */
	raw[n] = 'p';
	assert_int_equal(plain(raw, n + 1, &sp), SASL_MALFORMED);

	/* authcid one over (password shorter so total stays in range). */
	memset(raw, 0, sizeof(raw));
	memset(raw + 1, 'a', SASL_FIELD_MAX + 1);
	raw[SASL_FIELD_MAX + 3] = 'p';
	assert_int_equal(plain(raw, SASL_FIELD_MAX + 4, &sp), SASL_MALFORMED);

	/* authzid one over. */
	memset(raw, 'z', SASL_FIELD_MAX + 1);
	raw[SASL_FIELD_MAX + 1] = '\0';
	raw[SASL_FIELD_MAX + 2] = 'u';
	raw[SASL_FIELD_MAX + 3] = '\0';
	raw[SASL_FIELD_MAX + 4] = 'p';
	assert_int_equal(plain(raw, SASL_FIELD_MAX + 5, &sp), SASL_MALFORMED);
}

static void
test_plain_bad_b64(void **state)
{
	struct sasl_plain sp;

	(void)state;
	assert_int_equal(sasl_plain_decode("AG1lAHB3", 8, &sp), SASL_OK);
	assert_string_equal(sp.authcid, "me");
	assert_string_equal(sp.passwd, "pw");
	assert_int_equal(sasl_plain_decode("AG1lAHB3 ", 9, &sp),
	    SASL_MALFORMED);
	assert_int_equal(sasl_plain_decode("AG1lAHB", 7, &sp), SASL_MALFORMED);
	assert_int_equal(sasl_plain_decode("=", 1, &sp), SASL_MALFORMED);
	assert_int_equal(sasl_plain_decode("*", 1, &sp), SASL_MALFORMED);
	assert_int_equal(sasl_plain_decode(NULL, 0, &sp), SASL_MALFORMED);
}

static void
test_login(void **state)
{
	static const struct {
		const char	*in;
		size_t		 outlen;
		long		 want;
		const char	*out;
	} cases[] = {
		{ "bWVAZXhhbXBsZS5vcmc=", 64, 14, "me@example.org" },
		{ "c2VjcmV0", 64, 6, "secret" },
		{ "c2VjcmV0", 7, 6, "secret" },		/* exact fit */
		{ "c2VjcmV0", 6, -1, NULL },		/* no room for NUL */
		{ "=", 64, 0, "" },
		{ "", 64, 0, "" },
		{ "AGE=", 64, -1, NULL },		/* "\0a": NUL inside */
		{ "YQA=", 64, -1, NULL },		/* "a\0" */
		{ "c2VjcmV0\r\n", 64, -1, NULL },
		{ "c2Vj cmV0", 64, -1, NULL },
		{ "*", 64, -1, NULL },
	};
	char out[64];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = sasl_login_decode(cases[i].in, strlen(cases[i].in), out,
		    cases[i].outlen);
		if (n != cases[i].want)
			fail_msg("case %zu \"%s\": got %ld want %ld", i,
			    cases[i].in, n, cases[i].want);
		if (n >= 0)
			assert_string_equal(out, cases[i].out);
	}
}

/*
 * Reproducer from fuzz/fuzz_sasl.c: libsodium 1.0.18 decodes octets
 * >= 0x80 as '/', so "QUF\xec" came out as "AA\xbf" instead of failing.
 * Every octet outside the alphabet must be refused, in every position.
 */
static void
test_b64_high_octets(void **state)
{
	struct sasl_plain p;
	unsigned char out[16];
	char in[] = "QUFBQUFB", login[64];
	int c;
	size_t pos;

	(void)state;
	for (c = 0x80; c <= 0xff; c++)
		for (pos = 0; pos < 8; pos++) {
			in[pos] = (char)c;
			assert_int_equal(sasl_b64_decode(in, 8, out, sizeof(out)), -1);
			assert_int_equal(sasl_login_decode(in, 8, login,
			    sizeof(login)), -1);
			memcpy(in, "QUFBQUFB", 8);
		}
	/* the PLAIN response the fuzzer found, high octet in the middle */
	assert_int_equal(sasl_plain_decode(
	    "YWxpY2VAZXhhbXBsZS50ZXN0AGFsaWNlQGV4YWbwGU1u\354GVzdABwdw==", 56,
	    &p), SASL_MALFORMED);
	assert_int_equal(p.passwdlen, 0);
}

static void
test_login_overlong(void **state)
{
	unsigned char raw[SASL_FIELD_MAX + 1];
	char enc[2 * SASL_FIELD_MAX], out[2 * SASL_FIELD_MAX];
	long n;

	(void)state;
	memset(raw, 'a', sizeof(raw));
	n = sasl_b64_encode(raw, SASL_FIELD_MAX, enc, sizeof(enc));
	assert_int_equal(sasl_login_decode(enc, (size_t)n, out, sizeof(out)),
	    SASL_FIELD_MAX);
	n = sasl_b64_encode(raw, SASL_FIELD_MAX + 1, enc, sizeof(enc));
	assert_int_equal(sasl_login_decode(enc, (size_t)n, out, sizeof(out)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_decode_table),
		cmocka_unit_test(test_b64_decode_bounds),
		cmocka_unit_test(test_b64_roundtrip),
		cmocka_unit_test(test_plain_table),
		cmocka_unit_test(test_plain_lengths),
		cmocka_unit_test(test_plain_bad_b64),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_overlong),
		cmocka_unit_test(test_b64_high_octets),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
