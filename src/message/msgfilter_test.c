/*
 * msgfilter_test — the message filter as the session drives it: content
 * in arbitrary pieces, the header section split from the body at the
 * empty line (also when the CR LF straddles pieces), the body streamed to
 * the sink untouched, the verdicts for broken header sections, the final
 * header block (trace, added Message-ID/Date, Bcc removed, original bytes
 * kept) and the signing decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "message/dkim.h"
#include "message/msgfilter.h"

struct sink {
	char	buf[65536];
	size_t	len;
	int	fail;
};

static int
sink_fn(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	if (s->fail)
		return -1;
	assert_true(s->len + n <= sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static struct msgfilter *
new_filter(struct sink *s, struct dkim_keyset *ks, int utf8,
    size_t max_header)
{
	struct msgfilter_opts o;
	struct msgfilter *f;

	memset(&o, 0, sizeof(o));
	o.qid = "QID0000000000000";
	o.hostname = "mx.example.test";
	o.auth_user = "alice@example.test";
	o.mail_from = "alice@example.test";
	o.smtputf8 = utf8;
	o.max_header = max_header;
	o.keys = ks;
	o.body = sink_fn;
	o.body_ctx = s;
	f = msgfilter_new(&o);
	assert_non_null(f);
	assert_int_equal(msgfilter_set_trace(f, "Received: x\r\n", 13), 0);
	return f;
}

/* Feeds msg in pieces of step octets; returns msgfilter_end's code. */
static int
run(struct msgfilter *f, const char *msg, size_t step, char *text)
{
	size_t off = 0, n = strlen(msg);
	char esc[16];

	while (off < n) {
		size_t k = n - off < step ? n - off : step;

		msgfilter_feed(f, msg + off, k);
		off += k;
	}
	return msgfilter_end(f, esc, text, 400);
}

static void
test_split_and_compose(void **state)
{
	static const char msg[] =
	    "From: Alice <alice@example.test>\r\n"
	    "Bcc: hidden@example.net\r\n"
	    "Subject: hi\r\n\tthere\r\n"
	    "\r\n"
	    "body  line\r\n\r\n";
	size_t step;

	(void)state;
	for (step = 1; step <= sizeof(msg); step++) {
		struct sink s = { .len = 0 };
		struct msgfilter *f = new_filter(&s, NULL, 0, 0);
		char text[400], *out = NULL;
		size_t olen;

		assert_int_equal(run(f, msg, step, text), 0);
		assert_int_equal(s.len, strlen("body  line\r\n\r\n"));
		assert_memory_equal(s.buf, "body  line\r\n\r\n", s.len);
		assert_int_equal(msgfilter_nsig(f), 0);
		assert_int_equal(msgfilter_header(f, &out, &olen), 0);
		out = realloc(out, olen + 1);
		out[olen] = '\0';
		assert_true(strncmp(out, "Received: x\r\nMessage-ID: <QID0000000000000.", 43) == 0);
		assert_non_null(strstr(out, "@mx.example.test>\r\nDate: "));
		assert_null(strstr(out, "Bcc"));
		assert_null(strstr(out, "hidden"));
		assert_non_null(strstr(out, " +0000\r\nFrom: Alice <alice@example.test>\r\n"
		    "Subject: hi\r\n\tthere\r\n\r\n"));
		assert_string_equal(out + olen - 4, "\r\n\r\n");
		free(out);
		msgfilter_free(f);
	}
}

static void
test_no_separator_and_existing_ids(void **state)
{
	static const char msg[] = "From: a@example.test\r\n"
	    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "Message-ID: <x@y>\r\n";
	struct sink s = { .len = 0 };
	struct msgfilter *f = new_filter(&s, NULL, 0, 0);
	char text[400], *out = NULL;
	size_t olen;

	(void)state;
	assert_int_equal(run(f, msg, 7, text), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(msgfilter_header(f, &out, &olen), 0);
	assert_int_equal(olen, 13 + strlen(msg));
	assert_memory_equal(out, "Received: x\r\n", 13);
	assert_memory_equal(out + 13, msg, strlen(msg));
	free(out);
	msgfilter_free(f);
}

static void
test_verdicts(void **state)
{
	static const struct {
		const char *msg;
		int utf8;
		int code;
		const char *words;
	} cases[] = {
		{ "", 0, 550, "no From:" },
		{ "\r\nbody\r\n", 0, 550, "no From:" },
		{ "To: b@x.test\r\n\r\nb\r\n", 0, 550, "no From:" },
		{ "From: a@x.test\r\nFrom: a@x.test\r\n\r\n", 0, 550, "2 From:" },
		{ "From: a@x.test, b@y.test\r\n\r\n", 0, 550, "Sender:" },
		{ "From: a@x.test, b@y.test\r\nSender: b@y.test\r\n\r\n", 0, 550,
		    "not the sending account" },
		{ "From: a@x.test, b@y.test\r\nSender: alice@example.test\r\n\r\n",
		    0, 0, NULL },
		{ "From: a@\r\n\r\n", 0, 550, "From: header" },
		{ "From: a@x.test\r\nCc: (x\r\n\r\n", 0, 550, "Cc: header" },
		{ "From: a@x.test\r\nno colon\r\n\r\n", 0, 550, "not a header" },
		{ "From: a@x.test\r\nSubject: \xc3\xa9\r\n\r\n", 0, 550, "SMTPUTF8" },
		{ "From: a@x.test\r\nSubject: \xc3\xa9\r\n\r\n", 1, 0, NULL },
		{ "From: a@x.test\r\nSubject: \xe9\r\n\r\n", 1, 550, "UTF-8" },
		/* 8-bit in the body is the body's business (8BITMIME) */
		{ "From: a@x.test\r\n\r\n\xe9\r\n", 0, 0, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink s = { .len = 0 };
		struct msgfilter *f = new_filter(&s, NULL, cases[i].utf8, 0);
		char text[400] = "";
		int code = run(f, cases[i].msg, 3, text);

		if (code != cases[i].code)
			fail_msg("case %zu: %d (%s), want %d", i, code, text,
			    cases[i].code);
		if (cases[i].words != NULL && strstr(text, cases[i].words) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, text,
			    cases[i].words);
		msgfilter_free(f);
	}
}

static void
test_header_limit(void **state)
{
	struct sink s = { .len = 0 };
	struct msgfilter *f = new_filter(&s, NULL, 0, 100);
	char text[400], big[300];
	int code;

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, "From: a@x.test\r\nX: ", 19);
	memcpy(big + sizeof(big) - 7, "\r\n\r\nb\r\n", 7);
	msgfilter_feed(f, big, sizeof(big));
	{
		char esc[16];

		code = msgfilter_end(f, esc, text, sizeof(text));
		assert_string_equal(esc, "5.3.4");
	}
	assert_int_equal(code, 552);
	assert_non_null(strstr(text, "header section"));
	assert_int_equal(s.len, 0);	/* nothing was streamed */
	msgfilter_free(f);
}

static void
test_signing_decision(void **state)
{
	char dir[] = "/tmp/msgfilter_test.XXXXXX", p[256], err[256], text[400];
	struct dkim_keyset *ks;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *fp;
	struct sink s = { .len = 0 };
	struct msgfilter *f;
	char *out;
	size_t olen;
	const char *dom = NULL;
	unsigned char bh[32], want[32];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/example.test", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/example.test/s1.ed25519.key", dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	PEM_write_PrivateKey(fp, ed, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	EVP_PKEY_free(ed);
	ks = dkim_keyset_load(dir, NULL, NULL, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(ks->n, 1);

	/* From domain with a key: to be signed at delivery with that
	 * domain and the body hash taken on the way; the header block
	 * itself carries no signature, and signing it as stored gives one
	 * over the same body hash */
	f = new_filter(&s, dkim_keyset_ref(ks), 0, 0);
	assert_int_equal(run(f, "From: Alice <alice@EXAMPLE.test>\r\n\r\nb  \r\n\r\n", 5, text), 0);
	assert_int_equal(msgfilter_nsig(f), 1);
	assert_int_equal(msgfilter_dkim(f, &dom, bh), 1);
	assert_string_equal(dom, "example.test");
	/* relaxed: trailing blanks and empty lines at the end go */
	assert_int_equal(EVP_Digest("b\r\n", 3, want, NULL, EVP_sha256(),
	    NULL), 1);
	assert_memory_equal(bh, want, 32);
	assert_int_equal(msgfilter_header(f, &out, &olen), 0);
	assert_true(strncmp(out, "Received: x\r\n", 13) == 0);
	assert_null(memmem(out, olen, "DKIM-Signature", 14));
	{
		const struct dkim_key *k[1] = { &ks->keys[0] };
		char *sig;
		size_t slen;

		/* as stored: without the empty line */
		assert_int_equal(dkim_sign_stored(k, 1, out, olen - 2, 0, bh,
		    1700000000, 0, &sig, &slen, err, sizeof(err)), 0);
		assert_true(strncmp(sig, "DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0);
		assert_non_null(strstr(sig, "d=example.test;"));
		assert_non_null(strstr(sig, "bh=Z54nP3j8j4uhFNsjwtzoDMd8kQg5OYJcqDAVLy8IDQg=;"));
		assert_memory_equal(sig + slen - 2, "\r\n", 2);
		free(sig);
		/* no keys: nothing */
		assert_int_equal(dkim_sign_stored(k, 0, out, olen - 2, 0, bh,
		    1700000000, 0, &sig, &slen, err, sizeof(err)), 0);
		assert_null(sig);
		assert_int_equal(slen, 0);
		/* a header that does not parse: an error, said why */
		assert_int_equal(dkim_sign_stored(k, 1, "From x\r\n", 8, 0,
		    bh, 1700000000, 0, &sig, &slen, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	free(out);
	msgfilter_free(f);
	/* a From that is not the account (nor the envelope sender): the
	 * domain has a key, but the address did not pass the sender rules */
	s.len = 0;
	f = new_filter(&s, dkim_keyset_ref(ks), 0, 0);
	assert_int_equal(run(f, "From: ceo@example.test\r\n\r\nb\r\n", 5, text), 0);
	assert_int_equal(msgfilter_nsig(f), 0);
	assert_int_equal(msgfilter_dkim(f, &dom, bh), 0);
	msgfilter_free(f);
	/* several authors: the account's own address picks the key */
	s.len = 0;
	f = new_filter(&s, dkim_keyset_ref(ks), 0, 0);
	assert_int_equal(run(f, "From: dave@other.test, alice@example.test\r\n"
	    "Sender: alice@example.test\r\n\r\nb\r\n", 5, text), 0);
	assert_int_equal(msgfilter_nsig(f), 1);
	msgfilter_free(f);
	/* another domain without a key: unsigned */
	s.len = 0;
	f = new_filter(&s, dkim_keyset_ref(ks), 0, 0);
	assert_int_equal(run(f, "From: alice@example.test.other\r\n\r\nb\r\n", 5, text), 0);
	assert_int_equal(msgfilter_nsig(f), 0);
	msgfilter_free(f);
	dkim_keyset_release(ks);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_and_compose),
		cmocka_unit_test(test_no_separator_and_existing_ids),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_signing_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
