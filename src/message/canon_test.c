/*
 * canon_test — DKIM canonicalisation against RFC 6376 3.4.5's example,
 * the empty-body golden hashes (relaxed: SHA-256 of nothing; simple: of
 * one CRLF), trailing-line and whitespace edge cases, and incremental
 * feeding (any split gives the same hash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "message/canon.h"

static void
b64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Hash of body canonicalised in one piece. */
static void
body_hash(enum canon_alg alg, const char *body, size_t len, char out[64])
{
	struct canon_body c;
	unsigned char h[32];

	assert_int_equal(canon_body_init(&c, alg), 0);
	assert_int_equal(canon_body_feed(&c, body, len), 0);
	assert_int_equal(canon_body_final(&c, h), 0);
	b64(h, 32, out);
}

static void
sha_b64(const char *s, size_t len, char out[64])
{
	unsigned char h[32];
	unsigned int n;

	assert_int_equal(EVP_Digest(s, len, h, &n, EVP_sha256(), NULL), 1);
	b64(h, 32, out);
}

#define CHECK_BODY(alg, in, expect) do {				\
	char got_[64], want_[64];					\
	body_hash(alg, in, sizeof(in) - 1, got_);			\
	sha_b64(expect, sizeof(expect) - 1, want_);			\
	assert_string_equal(got_, want_);				\
} while (0)

static void
test_empty_body_golden(void **state)
{
	char h[64];

	(void)state;
	body_hash(CANON_RELAXED, "", 0, h);
	assert_string_equal(h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	body_hash(CANON_SIMPLE, "", 0, h);
	assert_string_equal(h, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	/* only empty lines: the same as empty */
	body_hash(CANON_RELAXED, "\r\n\r\n\r\n", 6, h);
	assert_string_equal(h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	body_hash(CANON_SIMPLE, "\r\n\r\n", 4, h);
	assert_string_equal(h, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	/* relaxed: whitespace-only lines are empty lines */
	body_hash(CANON_RELAXED, " \r\n\t\r\n", 6, h);
	assert_string_equal(h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

/* RFC 6376 3.4.5 */
static void
test_rfc6376_example_body(void **state)
{
	(void)state;
	CHECK_BODY(CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n",
	    " C\r\nD E\r\n");
	CHECK_BODY(CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n",
	    " C \r\nD \t E\r\n");
}

static void
test_rfc6376_example_headers(void **state)
{
	static const char a[] = "A: X\r\n";
	static const char b[] = "B : Y\t\r\n\tZ  \r\n";
	char *out = NULL;
	size_t len = 0, cap = 0;

	(void)state;
	assert_int_equal(canon_header(CANON_RELAXED, a, sizeof(a) - 1, 1,
	    &out, &len, &cap), 0);
	assert_int_equal(canon_header(CANON_RELAXED, b, sizeof(b) - 1, 1,
	    &out, &len, &cap), 0);
	assert_int_equal(len, strlen("a:X\r\nb:Y Z\r\n"));
	assert_memory_equal(out, "a:X\r\nb:Y Z\r\n", len);
	len = 0;
	assert_int_equal(canon_header(CANON_SIMPLE, a, sizeof(a) - 1, 1,
	    &out, &len, &cap), 0);
	assert_int_equal(canon_header(CANON_SIMPLE, b, sizeof(b) - 1, 1,
	    &out, &len, &cap), 0);
	assert_int_equal(len, sizeof(a) - 1 + sizeof(b) - 1);
	assert_memory_equal(out, "A: X\r\nB : Y\t\r\n\tZ  \r\n", len);
	/* without the CRLF (the DKIM-Signature field itself) */
	len = 0;
	assert_int_equal(canon_header(CANON_RELAXED,
	    "DKIM-Signature: a=1;\r\n\tb=", 25, 0, &out, &len, &cap), 0);
	assert_int_equal(len, strlen("dkim-signature:a=1; b="));
	assert_memory_equal(out, "dkim-signature:a=1; b=", len);
	/* empty value, leading whitespace, UTF-8 kept */
	len = 0;
	assert_int_equal(canon_header(CANON_RELAXED, "Subject:   \r\n", 13, 1,
	    &out, &len, &cap), 0);
	assert_memory_equal(out, "subject:\r\n", len);
	free(out);
}

static void
test_body_edge_cases(void **state)
{
	(void)state;
	/* no final CRLF: one is added */
	CHECK_BODY(CANON_RELAXED, "abc", "abc\r\n");
	CHECK_BODY(CANON_SIMPLE, "abc", "abc\r\n");
	/* trailing whitespace on the last line, then nothing */
	CHECK_BODY(CANON_RELAXED, "abc  \t", "abc\r\n");
	/* whitespace runs, leading whitespace kept as one SP */
	CHECK_BODY(CANON_RELAXED, "\t\ta  b\r\n", " a b\r\n");
	/* empty lines inside stay; trailing ones go */
	CHECK_BODY(CANON_RELAXED, "a\r\n\r\n \r\nb\r\n\r\n \r\n",
	    "a\r\n\r\n\r\nb\r\n");
	CHECK_BODY(CANON_SIMPLE, "a\r\n\r\n \r\nb\r\n\r\n \r\n",
	    "a\r\n\r\n \r\nb\r\n\r\n \r\n");
	CHECK_BODY(CANON_SIMPLE, "a\r\n\r\n\r\n", "a\r\n");
	/* a lone CR or LF is content */
	CHECK_BODY(CANON_RELAXED, "a\rb\r\n", "a\rb\r\n");
	CHECK_BODY(CANON_RELAXED, "a\nb\r\n", "a\nb\r\n");
	CHECK_BODY(CANON_SIMPLE, "a\r", "a\r\r\n");
}

/* Every split point (and byte-by-byte) gives the one-piece hash. */
static void
test_incremental_splits(void **state)
{
	static const char body[] = " x \t y\r\n\r\n\t\r\nz  \r\n \r\n\r\n";
	size_t n = sizeof(body) - 1, cut, i;
	int a;

	(void)state;
	for (a = 0; a < 2; a++) {
		enum canon_alg alg = a ? CANON_SIMPLE : CANON_RELAXED;
		char whole[64], part[64];
		unsigned char h[32];
		struct canon_body c;

		body_hash(alg, body, n, whole);
		for (cut = 0; cut <= n; cut++) {
			assert_int_equal(canon_body_init(&c, alg), 0);
			assert_int_equal(canon_body_feed(&c, body, cut), 0);
			assert_int_equal(canon_body_feed(&c, body + cut,
			    n - cut), 0);
			assert_int_equal(canon_body_final(&c, h), 0);
			b64(h, 32, part);
			assert_string_equal(part, whole);
		}
		assert_int_equal(canon_body_init(&c, alg), 0);
		for (i = 0; i < n; i++)
			assert_int_equal(canon_body_feed(&c, body + i, 1), 0);
		assert_int_equal(canon_body_final(&c, h), 0);
		b64(h, 32, part);
		assert_string_equal(part, whole);
	}
}

/* A body larger than the staging buffer, in odd pieces. */
static void
test_large_body(void **state)
{
	size_t n = 300000, i;
	char *body = malloc(n), *want = malloc(n), h1[64], h2[64];
	size_t wl = 0;

	(void)state;
	assert_non_null(body);
	assert_non_null(want);
	for (i = 0; i < n; i++) {
		body[i] = (i % 50 == 48) ? '\r' : (i % 50 == 49) ? '\n' :
		    (char)('a' + i % 26);
		want[wl++] = body[i];
	}
	body_hash(CANON_RELAXED, body, n, h1);
	sha_b64(want, wl, h2);
	assert_string_equal(h1, h2);
	{
		struct canon_body c;
		unsigned char h[32];
		size_t off = 0, step = 1;

		assert_int_equal(canon_body_init(&c, CANON_RELAXED), 0);
		while (off < n) {
			size_t k = n - off < step ? n - off : step;

			assert_int_equal(canon_body_feed(&c, body + off, k), 0);
			off += k;
			step = step * 3 + 7;
		}
		assert_int_equal(canon_body_final(&c, h), 0);
		b64(h, 32, h2);
		assert_string_equal(h1, h2);
	}
	free(body);
	free(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_body_golden),
		cmocka_unit_test(test_rfc6376_example_body),
		cmocka_unit_test(test_rfc6376_example_headers),
		cmocka_unit_test(test_body_edge_cases),
		cmocka_unit_test(test_incremental_splits),
		cmocka_unit_test(test_large_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
