/*
 * header_test — header section splitting (fields, folding, bad lines,
 * 8-bit and UTF-8 rules, limits) and RFC 5322 address parsing (valid
 * forms including obsolete ones, and broken ones with their reasons).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "message/header.h"

static int
parse(const char *s, int utf8, struct hdr_section *hs, char *err,
    size_t errlen)
{
	return hdr_parse(hs, s, strlen(s), utf8, err, errlen);
}

static void
test_fields_and_folding(void **state)
{
	static const char h[] =
	    "From: Alice <alice@example.test>\r\n"
	    "Subject: a folded\r\n subject\r\n\tline\r\n"
	    "X-Empty:\r\n"
	    "Old-Style : value\r\n"
	    "to: bob@example.org\r\n";
	struct hdr_section hs;
	char err[256];

	(void)state;
	assert_int_equal(parse(h, 0, &hs, err, sizeof(err)), 0);
	assert_int_equal(hs.n, 5);
	assert_true(hdr_is(&hs, 0, "from"));
	assert_true(hdr_is(&hs, 1, "SUBJECT"));
	assert_int_equal(hs.f[1].len, strlen("Subject: a folded\r\n subject\r\n\tline\r\n"));
	assert_int_equal(hs.f[1].namelen, 7);
	assert_int_equal(hs.f[1].valoff, 8);
	assert_true(hdr_is(&hs, 3, "old-style"));
	assert_int_equal(hs.f[3].namelen, 9);
	assert_int_equal(hs.f[3].valoff, 11);
	assert_int_equal(hdr_count(&hs, "To"), 1);
	assert_int_equal(hdr_find(&hs, "to"), 4);
	assert_int_equal(hdr_find(&hs, "cc"), -1);
	assert_false(hdr_is(&hs, 0, "fro"));
	hdr_free(&hs);
	/* empty section */
	assert_int_equal(hdr_parse(&hs, "", 0, 0, err, sizeof(err)), 0);
	assert_int_equal(hs.n, 0);
	hdr_free(&hs);
}

static void
test_bad_sections(void **state)
{
	static const struct {
		const char *h;
		int utf8;
		const char *why;
	} bad[] = {
		{ "From: a@b.c\r\nnot a header\r\n", 0, "line 2 is not a header field" },
		{ " folded first\r\n", 0, "continuation" },
		{ "From: a@b.c\r\n: x\r\n", 0, "empty field name" },
		{ "Fr\x01om: x\r\n", 0, "line 1 is not a header field" },
		{ "Subject: caf\xc3\xa9\r\n", 0, "SMTPUTF8" },
		{ "Subject: caf\xe9\r\n", 1, "not valid UTF-8" },
		{ "Subject: \xc0\xaf\r\n", 1, "not valid UTF-8" },	/* overlong */
		{ "Subject: \xed\xa0\x80\r\n", 1, "not valid UTF-8" },	/* surrogate */
		{ "Subject: \xf4\x90\x80\x80\r\n", 1, "not valid UTF-8" },
		{ "Subject: \xe2\x82\r\n", 1, "not valid UTF-8" },	/* cut */
		{ "X y: z\r\n", 0, "not a header field" },
	};
	struct hdr_section hs;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i].h, bad[i].utf8, &hs, err,
		    sizeof(err)), -1);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
		assert_null(hs.f);
	}
	/* valid UTF-8 passes with SMTPUTF8 */
	assert_int_equal(parse("Subject: caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\r\n",
	    1, &hs, err, sizeof(err)), 0);
	hdr_free(&hs);
}

static void
test_field_limit(void **state)
{
	size_t n = HDR_MAX_FIELDS + 1, i;
	char *buf = malloc(n * 8 + 1), err[256];
	struct hdr_section hs;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		memcpy(buf + i * 8, "X-A: b\r\n", 8);
	assert_int_equal(hdr_parse(&hs, buf, (n - 1) * 8, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(hs.n, HDR_MAX_FIELDS);
	hdr_free(&hs);
	assert_int_equal(hdr_parse(&hs, buf, n * 8, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Too many header fields"));
	free(buf);
}

static int
addrs(const char *v, enum hdr_kind kind, struct hdr_mailbox *mb, int max,
    char *err)
{
	return hdr_addresses(v, strlen(v), kind, mb, max, err, 256);
}

static void
test_addresses_valid(void **state)
{
	static const struct {
		const char *v;
		enum hdr_kind kind;
		int n;
		const char *first;
	} ok[] = {
		{ " alice@example.test", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " Alice <alice@Example.TEST>", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " \"Smith, Alice\" <alice@example.test>", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " alice@example.test (Alice (the) Smith)", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " (c) <alice@example.test> (c)", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " \"a b\"@example.test", HDR_MAILBOX_LIST, 1, "a b@example.test" },
		{ " a.b.c@sub.example.test", HDR_MAILBOX_LIST, 1, "a.b.c@sub.example.test" },
		{ " a . b @ example . test", HDR_MAILBOX_LIST, 1, "a.b@example.test" },
		{ " <@r1.example,@r2.example:alice@example.test>", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " alice@[192.0.2.1]", HDR_MAILBOX_LIST, 1, "alice@[192.0.2.1]" },
		{ " Alice\r\n <alice@example.test>", HDR_MAILBOX_LIST, 1, "alice@example.test" },
		{ " a@x.test, B <b@y.test>", HDR_MAILBOX_LIST, 2, "a@x.test" },
		{ " Dr. J. Doe <jd@example.test>", HDR_MAILBOX_LIST, 1, "jd@example.test" },
		{ " =?utf-8?q?Al=C3=AEce?= <alice@example.test>", HDR_MAILBOX, 1, "alice@example.test" },
		{ " \xc3\x85lice <\xc3\xa5@example.test>", HDR_MAILBOX, 1, "\xc3\xa5@example.test" },
		{ " a@x.test,, b@y.test,", HDR_ADDRESS_LIST, 2, "a@x.test" },
		{ " undisclosed-recipients:;", HDR_ADDRESS_LIST, 0, NULL },
		{ " Team: a@x.test, b@y.test; , c@z.test", HDR_ADDRESS_LIST, 3, "a@x.test" },
		{ "", HDR_ADDRESS_LIST_OPT, 0, NULL },
		{ "  (nobody)", HDR_ADDRESS_LIST_OPT, 0, NULL },
	};
	struct hdr_mailbox mb[2];
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int n;

		err[0] = '\0';
		n = addrs(ok[i].v, ok[i].kind, mb, 2, err);
		if (n != ok[i].n)
			fail_msg("case %zu '%s': %d (want %d): %s", i, ok[i].v,
			    n, ok[i].n, err);
		if (ok[i].first != NULL) {
			assert_string_equal(mb[0].addr, ok[i].first);
			assert_int_equal(mb[0].addr[mb[0].at], '@');
		}
	}
}

static void
test_addresses_broken(void **state)
{
	static const struct {
		const char *v;
		enum hdr_kind kind;
	} bad[] = {
		{ "", HDR_MAILBOX_LIST },
		{ "  ", HDR_MAILBOX_LIST },
		{ " alice@", HDR_MAILBOX_LIST },
		{ " @example.test", HDR_MAILBOX_LIST },
		{ " alice", HDR_MAILBOX_LIST },
		{ " Alice <alice@example.test", HDR_MAILBOX_LIST },
		{ " Alice <alice>", HDR_MAILBOX_LIST },
		{ " a@x.test b@y.test", HDR_MAILBOX_LIST },
		{ " (unclosed a@x.test", HDR_MAILBOX_LIST },
		{ " \"unclosed a@x.test", HDR_MAILBOX_LIST },
		{ " a@[1.2.3.4", HDR_MAILBOX_LIST },
		{ " a@x..test", HDR_MAILBOX_LIST },
		{ " Team: a@x.test;", HDR_MAILBOX_LIST },	/* no groups in From */
		{ " Team: a@x.test", HDR_ADDRESS_LIST },	/* no ';' */
		{ " a@x.test, b@y.test", HDR_MAILBOX },		/* Sender: one */
		{ " <a@x.test> trailing", HDR_ADDRESS_LIST },
		{ " <<>>", HDR_ADDRESS_LIST_OPT },
		{ "", HDR_ADDRESS_LIST },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (addrs(bad[i].v, bad[i].kind, NULL, 0, err) != -1)
			fail_msg("case %zu '%s' accepted", i, bad[i].v);
		assert_true(err[0] != '\0');
	}
}

/* A NUL byte inside quotes or a domain literal is refused, not copied
 * into an address it would cut short (found by fuzz_message). */
static void
test_address_nul(void **state)
{
	static const char q[] = " bob@x.org, \"Carol\0rol\0\0c\0\0\"@x.org";
	static const char q2[] = " \"a\\\0b\"@x.org";
	static const char d[] = " a@[1.2\0.3.4]";
	struct hdr_mailbox mb[4];
	char err[256];

	(void)state;
	assert_int_equal(hdr_addresses(q, sizeof(q) - 1, HDR_ADDRESS_LIST, mb,
	    4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(hdr_addresses(q2, sizeof(q2) - 1, HDR_MAILBOX_LIST,
	    mb, 4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(hdr_addresses(d, sizeof(d) - 1, HDR_MAILBOX_LIST, mb,
	    4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
}

static void
test_address_bounds(void **state)
{
	char v[2048], err[256];
	size_t i;

	(void)state;
	/* an over-long address is refused, not truncated */
	v[0] = ' ';
	for (i = 1; i < 400; i++)
		v[i] = 'a';
	memcpy(v + 400, "@example.test", 14);
	assert_int_equal(addrs(v, HDR_MAILBOX_LIST, NULL, 0, err), -1);
	assert_non_null(strstr(err, "too long"));
	/* comments nested past the limit */
	for (i = 0; i < 100; i++)
		v[i] = '(';
	for (i = 100; i < 200; i++)
		v[i] = ')';
	memcpy(v + 200, " a@x.test", 10);
	assert_int_equal(addrs(v, HDR_MAILBOX_LIST, NULL, 0, err), -1);
	assert_non_null(strstr(err, "nested"));
}

/* Random and mutated input: every call returns, nothing is read out of
 * bounds (run under ASan by the check-asan gate). */
static void
test_random_input(void **state)
{
	static const char seed[] = "From: \"A, B\" (c) <a@[1.2.3.4]>, g: x@y.z;"
	    "\r\n\tTo: <@r:q@w.e>\r\n";
	static const char alphabet[] = "\"()<>[]@,;:.\\ \t\r\naZ\x80\xc3";
	unsigned r = 12345;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		char buf[64], err[256];
		size_t n, j;
		struct hdr_section hs;
		struct hdr_mailbox mb[2];

		r = r * 1103515245u + 12345u;
		n = (r >> 8) % sizeof(buf);
		memcpy(buf, seed, n < sizeof(seed) ? n : sizeof(seed));
		for (j = 0; j < n; j++) {
			r = r * 1103515245u + 12345u;
			if ((r >> 16) % 4 == 0 || j >= sizeof(seed) - 1)
				buf[j] = alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
		}
		/* exact-size heap copies so ASan sees any overread */
		{
			char *h = malloc(n ? n : 1);

			assert_non_null(h);
			memcpy(h, buf, n);
			(void)hdr_addresses(h, n, (enum hdr_kind)(i % 4), mb, 2,
			    err, sizeof(err));
			if (hdr_parse(&hs, h, n, i & 1, err, sizeof(err)) == 0)
				hdr_free(&hs);
			free(h);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_and_folding),
		cmocka_unit_test(test_bad_sections),
		cmocka_unit_test(test_field_limit),
		cmocka_unit_test(test_addresses_valid),
		cmocka_unit_test(test_addresses_broken),
		cmocka_unit_test(test_address_nul),
		cmocka_unit_test(test_address_bounds),
		cmocka_unit_test(test_random_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
