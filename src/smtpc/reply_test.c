/*
 * reply_test — unit tests for the SMTP client's building blocks: the
 * bounded reply parser, EHLO capability parsing, on-the-fly CRLF
 * normalisation + dot-stuffing (every chunk split), and SASL base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "smtpc/smtpc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
feed(struct smtpc_reply *r, const char *line)
{
	return smtpc_reply_feed(r, line, strlen(line), NULL, NULL);
}

static void
test_reply_single(void **state)
{
	struct smtpc_reply	 r;

	(void)state;
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "250 2.1.0 Ok"), SMTPC_REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_string_equal(r.text, "Ok");

	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "535 5.7.8 Username and Password not "
	    "accepted"), SMTPC_REPLY_DONE);
	assert_string_equal(r.enhanced, "5.7.8");
	assert_string_equal(r.text, "Username and Password not accepted");

	/* "250" alone is a complete reply (RFC 5321 4.2: text optional) */
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "250"), SMTPC_REPLY_DONE);
	assert_string_equal(r.text, "");

	/* an enhanced code whose class does not match the reply's is text */
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "250 5.1.1 odd"), SMTPC_REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(r.text, "5.1.1 odd");

	/* no enhanced code: text kept whole */
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "220 mx.example.org ESMTP"),
	    SMTPC_REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(r.text, "mx.example.org ESMTP");
}

static void
test_reply_multi(void **state)
{
	struct smtpc_reply	 r;
	const char		*t;
	size_t			 tl;

	(void)state;
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "250-mx.example.org"), SMTPC_REPLY_MORE);
	assert_int_equal(smtpc_reply_feed(&r, "250-SIZE 100", 12, &t, &tl),
	    SMTPC_REPLY_MORE);
	assert_int_equal(tl, 8);
	assert_memory_equal(t, "SIZE 100", 8);
	assert_int_equal(feed(&r, "250 PIPELINING"), SMTPC_REPLY_DONE);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.text, "mx.example.org SIZE 100 PIPELINING");

	/* control bytes in text are escaped */
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "550 5.1.1 bad\x1b[31m"), SMTPC_REPLY_DONE);
	assert_null(strchr(r.text, '\x1b'));
}

static void
test_reply_bad(void **state)
{
	static const char *bad[] = {
		"", "25", "2500 x", "abc", "150 x", "650 x", "250x",
		"25a ok", " 250 ok", "250\tok",
	};
	struct smtpc_reply	 r;
	char			*big;
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		smtpc_reply_init(&r);
		if (feed(&r, bad[i]) != SMTPC_REPLY_BAD)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* the code changes between lines */
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, "250-a"), SMTPC_REPLY_MORE);
	assert_int_equal(feed(&r, "251 b"), SMTPC_REPLY_BAD);

	/* too many lines */
	smtpc_reply_init(&r);
	for (i = 0; i < SMTPC_LINES_MAX; i++)
		assert_int_equal(feed(&r, "250-x"), SMTPC_REPLY_MORE);
	assert_int_equal(feed(&r, "250 x"), SMTPC_REPLY_BAD);

	/* a 300 KB line is an error, not a bigger buffer */
	big = malloc(300 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'a', 300 * 1024);
	memcpy(big, "250 ", 4);
	big[300 * 1024] = '\0';
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, big), SMTPC_REPLY_BAD);
	/* the longest allowed line is fine, and its text is truncated */
	big[SMTPC_LINE_MAX - 2] = '\0';
	smtpc_reply_init(&r);
	assert_int_equal(feed(&r, big), SMTPC_REPLY_DONE);
	assert_true(strlen(r.text) < SMTPC_TEXT_MAX);
	free(big);

	/* the kept text is bounded however many lines come */
	smtpc_reply_init(&r);
	for (i = 0; i < SMTPC_LINES_MAX - 1; i++)
		assert_int_equal(feed(&r, "250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
		    SMTPC_REPLY_MORE);
	assert_int_equal(feed(&r, "250 end"), SMTPC_REPLY_DONE);
	assert_true(strlen(r.text) < SMTPC_TEXT_MAX);
}

static void
caps_line(struct smtpc_caps *c, const char *l)
{
	smtpc_caps_parse_line(c, l, strlen(l));
}

static void
test_caps(void **state)
{
	struct smtpc_caps	 c;

	(void)state;
	memset(&c, 0, sizeof(c));
	caps_line(&c, "SIZE 36700160");
	caps_line(&c, "8BITMIME");
	caps_line(&c, "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER "
	    "XOAUTH");
	caps_line(&c, "AUTH=LOGIN PLAIN");
	caps_line(&c, "enhancedstatuscodes");
	caps_line(&c, "PIPELINING");
	caps_line(&c, "CHUNKING");
	caps_line(&c, "SMTPUTF8");
	caps_line(&c, "DSN");
	caps_line(&c, "STARTTLS");
	caps_line(&c, "X-UNKNOWN foo");
	assert_int_equal(c.size, 36700160);
	assert_true(c.flags & SMTPC_CAP_SIZE);
	assert_true(c.flags & SMTPC_CAP_8BITMIME);
	assert_true(c.flags & SMTPC_CAP_PIPELINING);
	assert_true(c.flags & SMTPC_CAP_CHUNKING);
	assert_true(c.flags & SMTPC_CAP_SMTPUTF8);
	assert_true(c.flags & SMTPC_CAP_DSN);
	assert_true(c.flags & SMTPC_CAP_STARTTLS);
	assert_true(c.flags & SMTPC_CAP_ENHANCEDSTATUSCODES);
	assert_int_equal(c.auth, SMTPC_AUTH_LOGIN | SMTPC_AUTH_PLAIN |
	    SMTPC_AUTH_XOAUTH2 | SMTPC_AUTH_OAUTHBEARER);
	assert_string_equal(c.auth_list, "LOGIN PLAIN XOAUTH2 "
	    "PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH");

	/* SIZE without a number, and a huge number, stay bounded */
	memset(&c, 0, sizeof(c));
	caps_line(&c, "SIZE");
	assert_true(c.flags & SMTPC_CAP_SIZE);
	assert_int_equal(c.size, 0);
	caps_line(&c, "SIZE 99999999999999999999999999999");
	assert_true(c.size > 0);
	/* hostile AUTH list: control bytes dropped, list bounded */
	memset(&c, 0, sizeof(c));
	caps_line(&c, "AUTH \x1b[2J PLAIN");
	assert_string_equal(c.auth_list, "PLAIN");
}

/* Runs the stuffer over in, split at every position, and checks each
 * result equals want. */
static void
stuff_check(const char *in, const char *want)
{
	size_t	 len = strlen(in), split, n;
	char	*got;

	for (split = 0; split <= len; split++) {
		struct smtpc_stuff	 st;
		struct evbuffer		*out = evbuffer_new();

		assert_non_null(out);
		smtpc_stuff_init(&st);
		assert_int_equal(smtpc_stuff_add(&st, in, split, out), 0);
		assert_int_equal(smtpc_stuff_add(&st, in + split, len - split,
		    out), 0);
		assert_int_equal(smtpc_stuff_end(&st, out), 0);
		n = evbuffer_get_length(out);
		got = calloc(1, n + 1);
		assert_non_null(got);
		evbuffer_remove(out, got, n);
		if (strcmp(got, want) != 0)
			fail_msg("split %zu of \"%s\": got \"%s\"", split, in,
			    got);
		free(got);
		evbuffer_free(out);
	}
}

static void
test_stuff(void **state)
{
	(void)state;
	stuff_check("", ".\r\n");
	stuff_check("a", "a\r\n.\r\n");
	stuff_check("a\r\n", "a\r\n.\r\n");
	stuff_check("a\n", "a\r\n.\r\n");
	stuff_check("a\nb\n", "a\r\nb\r\n.\r\n");
	stuff_check("a\rb", "a\r\nb\r\n.\r\n");
	stuff_check("a\r", "a\r\n.\r\n");
	stuff_check("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n");
	stuff_check(".", "..\r\n.\r\n");
	stuff_check(".\r\n", "..\r\n.\r\n");
	stuff_check("a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
	stuff_check("a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n");
	stuff_check("..x\n", "...x\r\n.\r\n");
	stuff_check("a.b\n", "a.b\r\n.\r\n");
	/* the smuggling sequence "\n.\r\n" can only come out stuffed */
	stuff_check("x\n.\r\nMAIL FROM:<a>\r\n",
	    "x\r\n..\r\nMAIL FROM:<a>\r\n.\r\n");
	stuff_check("x\r.\r\n", "x\r\n..\r\n.\r\n");
}

static void
test_b64(void **state)
{
	unsigned char	 dec[64];
	char		 enc[64];

	(void)state;
	assert_int_equal(smtpc_b64_encode((const unsigned char *)"\0u\0p", 4,
	    enc, sizeof(enc)), 8);
	assert_string_equal(enc, "AHUAcA==");
	assert_int_equal(smtpc_b64_decode(enc, 8, dec, sizeof(dec)), 4);
	assert_memory_equal(dec, "\0u\0p", 4);
	assert_int_equal(smtpc_b64_decode("VXNlcm5hbWU6", 12, dec,
	    sizeof(dec)), 9);
	assert_string_equal((char *)dec, "Username:");
	assert_int_equal(smtpc_b64_decode("abc", 3, dec, sizeof(dec)), -1);
	assert_int_equal(smtpc_b64_decode("a*c=", 4, dec, sizeof(dec)), -1);
	assert_int_equal(smtpc_b64_encode((const unsigned char *)"abcdef", 6,
	    enc, 8), -1);
}

static void
test_status_format(void **state)
{
	struct smtpc_status	 st;
	char			 buf[128];

	(void)state;
	memset(&st, 0, sizeof(st));
	st.code = 535;
	strcpy(st.enhanced, "5.7.8");
	strcpy(st.text, "Username and Password not accepted");
	assert_string_equal(smtpc_status_format(&st, buf, sizeof(buf)),
	    "535 5.7.8 Username and Password not accepted");
	st.code = 0;
	st.enhanced[0] = '\0';
	strcpy(st.text, "connection refused");
	assert_string_equal(smtpc_status_format(&st, buf, sizeof(buf)),
	    "connection refused");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_single),
		cmocka_unit_test(test_reply_multi),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_status_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
