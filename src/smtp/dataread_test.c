/*
 * dataread_test — unit tests for the DATA/BDAT content reader.
 *
 * Every case is fed whole, byte by byte, in fixed-size chunks, and split
 * at every position (and at every pair of positions for short inputs):
 * err, size, the "Received" count, where DATA ends and, for accepted
 * messages, the stored content must be the same for every split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/dataread.h"

#define BIG	UINT64_MAX

struct sink {
	char	*buf;
	size_t	 len, cap;
	int	 calls;
	int	 fail_at;	/* fail the n-th call (1-based), 0 never */
};

static int
sink_emit(void *ctx, const char *b, size_t n)
{
	struct sink *s = ctx;

	s->calls++;
	assert_true(n > 0);
	if (s->fail_at != 0 && s->calls >= s->fail_at)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, b, n);
	s->len += n;
	return 0;
}

struct dr_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;		/* 0: strlen(in) */
	int		 bdat;
	uint64_t	 max;
	enum dataread_err err;
	long		 done_at;	/* DATA: offset after the end marker; -1 none */
	const char	*out;		/* content when err == DR_OK */
	size_t		 outlen;	/* 0: strlen(out) */
	int		 received;
};

struct dr_result {
	enum dataread_err err;
	long		 done_at;
	uint64_t	 size;
	int		 received;
	struct sink	 sink;
};

/* Feeds c->in cut at cuts[0..ncuts) (ascending offsets). */
static void
run_cuts(const struct dr_case *c, size_t inlen, const size_t *cuts,
    size_t ncuts, struct dr_result *r)
{
	struct dataread dr;
	size_t seg, off = 0;

	memset(r, 0, sizeof(*r));
	r->done_at = -1;
	dataread_init(&dr, c->bdat, c->max, sink_emit, &r->sink);
	for (seg = 0; seg <= ncuts; seg++) {
		size_t end = seg < ncuts ? cuts[seg] : inlen;
		size_t n;
		int done = 0;

		n = dataread_feed(&dr, c->in + off, end - off, &done);
		if (done) {
			assert_false(c->bdat);
			r->done_at = (long)(off + n);
			break;
		}
		assert_int_equal(n, end - off);
		off = end;
	}
	if (c->bdat)
		dataread_finish(&dr);
	r->err = dr.err;
	r->size = dr.size;
	r->received = dr.received;
}

static void
check(const struct dr_case *c, struct dr_result *r, const char *how)
{
	size_t outlen;

	if (r->err != c->err || r->done_at != c->done_at ||
	    r->received != c->received)
		fail_msg("%s (%s): err %d want %d, done_at %ld want %ld, "
		    "received %d want %d", c->name, how, r->err, c->err,
		    r->done_at, c->done_at, r->received, c->received);
	if (c->err == DR_OK) {
		outlen = c->outlen ? c->outlen : strlen(c->out);
		if (r->sink.len != outlen || (outlen > 0 &&
		    memcmp(r->sink.buf, c->out, outlen) != 0))
			fail_msg("%s (%s): content differs (%zu vs %zu octets)",
			    c->name, how, r->sink.len, outlen);
		if (r->size != outlen)
			fail_msg("%s (%s): size %llu want %zu", c->name, how,
			    (unsigned long long)r->size, outlen);
	}
	free(r->sink.buf);
	r->sink.buf = NULL;
}

static void
run_case_all_splits(const struct dr_case *c)
{
	size_t inlen = c->inlen ? c->inlen : strlen(c->in);
	size_t *cuts = calloc(inlen + 1, sizeof(*cuts));
	struct dr_result r;
	size_t i, j, k, chunk;
	char how[64];

	assert_non_null(cuts);
	run_cuts(c, inlen, NULL, 0, &r);
	check(c, &r, "whole");
	/* byte by byte, and fixed chunks */
	for (chunk = 1; chunk <= 17; chunk++) {
		for (k = 0, i = chunk; i < inlen; i += chunk)
			cuts[k++] = i;
		run_cuts(c, inlen, cuts, k, &r);
		snprintf(how, sizeof(how), "chunks of %zu", chunk);
		check(c, &r, how);
	}
	/* every single split point */
	for (i = 1; i < inlen; i++) {
		cuts[0] = i;
		run_cuts(c, inlen, cuts, 1, &r);
		snprintf(how, sizeof(how), "split at %zu", i);
		check(c, &r, how);
	}
	/* every pair of split points, for short inputs */
	if (inlen <= 160)
		for (i = 1; i < inlen; i++)
			for (j = i + 1; j < inlen; j++) {
				cuts[0] = i;
				cuts[1] = j;
				run_cuts(c, inlen, cuts, 2, &r);
				snprintf(how, sizeof(how), "split at %zu,%zu",
				    i, j);
				check(c, &r, how);
			}
	free(cuts);
}

#define TAIL	"MAIL FROM:<x>\r\nRCPT TO:<y>\r\nDATA\r\nbody\r\n.\r\n"
#define TAILLEN	((long)sizeof(TAIL) - 1)
#define L(s)	((long)sizeof(s) - 1)

static const struct dr_case data_cases[] = {
	{ "normal", "Subject: hi\r\n\r\nhello\r\nworld\r\n.\r\n", 0, 0, BIG,
	  DR_OK, L("Subject: hi\r\n\r\nhello\r\nworld\r\n.\r\n"),
	  "Subject: hi\r\n\r\nhello\r\nworld\r\n", 0, 0 },
	{ "next command after the end", "a\r\n.\r\nQUIT\r\n", 0, 0, BIG,
	  DR_OK, 6, "a\r\n", 0, 0 },
	{ "pipelined end then data", "a\r\n.\r\n.\r\n", 0, 0, BIG,
	  DR_OK, 6, "a\r\n", 0, 0 },
	{ "empty message", ".\r\n", 0, 0, BIG, DR_OK, 3, "", 0, 0 },
	{ "one empty line", "\r\n.\r\n", 0, 0, BIG, DR_OK, 5, "\r\n", 0, 0 },
	{ "dot-stuffing", "..foo\r\n.bar\r\n...\r\nx.y\r\n..\r\n.\r\n", 0, 0,
	  BIG, DR_OK, L("..foo\r\n.bar\r\n...\r\nx.y\r\n..\r\n.\r\n"),
	  ".foo\r\nbar\r\n..\r\nx.y\r\n.\r\n", 0, 0 },
	{ "no end yet", "abc\r\n.\r", 0, 0, BIG, DR_OK, -1, "abc\r\n", 0, 0 },
	{ "dot not at line start", "a.\r\n.\r\n", 0, 0, BIG, DR_OK, 7,
	  "a.\r\n", 0, 0 },

	/* SMTP smuggling: none of these ends the data. */
	{ "smuggle LF.LF", "hello\n.\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("hello\n.\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle CR.CR", "hello\r.\r" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("hello\r.\r") + TAILLEN, NULL, 0, 0 },
	{ "smuggle LF.CRLF", "hello\n.\r\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("hello\n.\r\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle CRLF.CR", "hello\r\n.\r" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("hello\r\n.\r") + TAILLEN, NULL, 0, 0 },
	{ "smuggle CRLF.LF", "hello\r\n.\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("hello\r\n.\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle LF.LF at start", "\n.\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("\n.\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle CR.CR at start", "\r.\r" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("\r.\r") + TAILLEN, NULL, 0, 0 },
	{ "smuggle LF.CRLF at start", "\n.\r\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L("\n.\r\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle .CR at start", ".\r" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L(".\r") + TAILLEN, NULL, 0, 0 },
	{ "smuggle .LF at start", ".\n" TAIL, 0, 0, BIG, DR_ERR_BARE,
	  L(".\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle after a line, LF.LF", "hello\r\n\n.\n" TAIL, 0, 0, BIG,
	  DR_ERR_BARE, L("hello\r\n\n.\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle after a line, LF.CRLF", "hello\r\n\n.\r\n" TAIL, 0, 0, BIG,
	  DR_ERR_BARE, L("hello\r\n\n.\r\n") + TAILLEN, NULL, 0, 0 },
	{ "smuggle after a line, CR.CR", "hello\r\n\r.\r" TAIL, 0, 0, BIG,
	  DR_ERR_BARE, L("hello\r\n\r.\r") + TAILLEN, NULL, 0, 0 },
	{ "bare CR then real end", "a\r\n.\r\r\n.\r\n", 0, 0, BIG,
	  DR_ERR_BARE, L("a\r\n.\r\r\n.\r\n"), NULL, 0, 0 },
	{ "CR CR LF", "a\r\r\n.\r\n", 0, 0, BIG, DR_ERR_BARE, 7, NULL, 0, 0 },
	{ "bare LF in body", "a\nb\r\n.\r\n", 0, 0, BIG, DR_ERR_BARE, 8,
	  NULL, 0, 0 },

	{ "NUL", "a\0b\r\n.\r\n", 8, 0, BIG, DR_ERR_NUL, 8, NULL, 0, 0 },
	{ "NUL in header", "Sub\0ject: x\r\n\r\n.\r\n", 18, 0, BIG,
	  DR_ERR_NUL, 18, NULL, 0, 0 },
	{ "NUL then bare LF: first error sticks", "a\0b\nc\r\n.\r\n", 10, 0,
	  BIG, DR_ERR_NUL, 10, NULL, 0, 0 },
	{ "bare LF then NUL", "a\nb\0c\r\n.\r\n", 10, 0, BIG, DR_ERR_BARE,
	  10, NULL, 0, 0 },

	/* size: content octets, dot-unstuffed, CRLF included */
	{ "size exactly max", "abc\r\n.\r\n", 0, 0, 5, DR_OK, 8,
	  "abc\r\n", 0, 0 },
	{ "size max+1", "abc\r\n.\r\n", 0, 0, 4, DR_ERR_SIZE, 8, NULL, 0, 0 },
	{ "size with stuffed dot exact", "..\r\n.\r\n", 0, 0, 3, DR_OK, 7,
	  ".\r\n", 0, 0 },
	{ "size zero max", "a\r\n.\r\n", 0, 0, 0, DR_ERR_SIZE, 6, NULL, 0, 0 },
	{ "empty with zero max", ".\r\n", 0, 0, 0, DR_OK, 3, "", 0, 0 },
	{ "size before NUL", "abc\0\r\n.\r\n", 9, 0, 2, DR_ERR_SIZE, 9,
	  NULL, 0, 0 },
	{ "NUL before size", "a\0cdef\r\n.\r\n", 11, 0, 3, DR_ERR_NUL, 11,
	  NULL, 0, 0 },

	/* Received: counting, header section only */
	{ "received", "Received: from a\r\n\tby b; Received: no\r\n"
	  "received :x\r\nRECEIVED   :y\r\nX-Received: no\r\n"
	  "Received-SPF: pass\r\nReceivedx: no\r\n Received: cont\r\n"
	  "Subject: Received: no\r\n\r\nReceived: body\r\n.\r\n", 0, 0, BIG,
	  DR_OK, -2, NULL, 0, 3 },
	{ "received stuffed", ".Received: x\r\n..Received: y\r\n\r\n.\r\n",
	  0, 0, BIG, DR_OK, L(".Received: x\r\n..Received: y\r\n\r\n.\r\n"),
	  "Received: x\r\n.Received: y\r\n\r\n", 0, 1 },
	{ "no header section", "\r\nReceived: x\r\n.\r\n", 0, 0, BIG, DR_OK,
	  L("\r\nReceived: x\r\n.\r\n"), "\r\nReceived: x\r\n", 0, 0 },
};

static const struct dr_case bdat_cases[] = {
	{ "bdat normal", "Subject: x\r\n\r\nbody\r\n", 0, 1, BIG, DR_OK, -1,
	  "Subject: x\r\n\r\nbody\r\n", 0, 0 },
	{ "bdat no final CRLF", "Subject: x\r\n\r\nbody", 0, 1, BIG, DR_OK, -1,
	  "Subject: x\r\n\r\nbody\r\n", 0, 0 },
	{ "bdat lone CR at end", "Subject: x\r\n\r\nbody\r", 0, 1, BIG,
	  DR_ERR_BARE, -1, NULL, 0, 0 },
	{ "bdat dots are content", ".\r\n..x\r\n.\r\nmore", 0, 1, BIG, DR_OK,
	  -1, ".\r\n..x\r\n.\r\nmore\r\n", 0, 0 },
	{ "bdat bare LF", "a\nb\r\n", 0, 1, BIG, DR_ERR_BARE, -1, NULL, 0, 0 },
	{ "bdat bare CR", "a\rb\r\n", 0, 1, BIG, DR_ERR_BARE, -1, NULL, 0, 0 },
	{ "bdat empty", "", 0, 1, BIG, DR_OK, -1, "", 0, 0 },
	{ "bdat NUL", "a\0", 2, 1, BIG, DR_ERR_NUL, -1, NULL, 0, 0 },
	{ "bdat received", "Received: a\r\nReceived: b\r\n\r\nReceived: c\r\n",
	  0, 1, BIG, DR_OK, -1, "Received: a\r\nReceived: b\r\n\r\n"
	  "Received: c\r\n", 0, 2 },
	{ "bdat received last line", "Received: a", 0, 1, BIG, DR_OK, -1,
	  "Received: a\r\n", 0, 1 },
	{ "bdat size exact incl. added CRLF", "abc", 0, 1, 5, DR_OK, -1,
	  "abc\r\n", 0, 0 },
	{ "bdat size over by added CRLF", "abc", 0, 1, 4, DR_ERR_SIZE, -1,
	  NULL, 0, 0 },
};

static void
test_data_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		struct dr_case c = data_cases[i];
		size_t n = c.inlen ? c.inlen : strlen(c.in);

		if (c.done_at == -2)	/* ends at the end of the input */
			c.done_at = (long)n;
		if (c.out == NULL && c.err == DR_OK) {
			/* same as input minus the final ".\r\n" */
			c.out = c.in;
			c.outlen = n - 3;
		}
		run_case_all_splits(&c);
	}
}

static void
test_bdat_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++)
		run_case_all_splits(&bdat_cases[i]);
}

/* Builds: a line of n octets (first octet first) then CRLF, then tail. */
static char *
long_line(size_t n, char first, const char *tail)
{
	size_t tl = strlen(tail);
	char *s = malloc(n + 2 + tl + 1);

	assert_non_null(s);
	memset(s, 'x', n);
	if (n > 0)
		s[0] = first;
	memcpy(s + n, "\r\n", 2);
	memcpy(s + n + 2, tail, tl + 1);
	return s;
}

static void
test_line_length(void **state)
{
	struct dr_case c;
	char *in, *out;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.max = BIG;

	/* DATA: 998 octets accepted */
	in = long_line(998, 'x', ".\r\n");
	out = long_line(998, 'x', "");
	c.name = "998";
	c.in = in;
	c.out = out;
	c.err = DR_OK;
	c.done_at = 998 + 5;
	run_case_all_splits(&c);
	free(in);
	free(out);

	/* DATA: 999 refused, and the reader still ends at the real end */
	in = long_line(999, 'x', "next\r\n.\r\n");
	c.name = "999";
	c.in = in;
	c.out = NULL;
	c.err = DR_ERR_LINE;
	c.done_at = (long)strlen(in);
	run_case_all_splits(&c);
	free(in);

	/* DATA: a stuffed dot does not count: "." + 998 octets is fine */
	in = long_line(999, '.', ".\r\n");
	out = long_line(998, 'x', "");
	c.name = "stuffed 998";
	c.in = in;
	c.out = out;
	c.err = DR_OK;
	c.done_at = (long)strlen(in);
	run_case_all_splits(&c);
	free(in);
	free(out);

	/* BDAT: same limit, including the last line without CRLF */
	c.bdat = 1;
	c.done_at = -1;
	in = long_line(998, 'x', "");
	c.name = "bdat 998";
	c.in = in;
	c.out = in;
	c.err = DR_OK;
	run_case_all_splits(&c);
	free(in);
	in = long_line(999, 'x', "");
	c.name = "bdat 999";
	c.in = in;
	c.out = NULL;
	c.err = DR_ERR_LINE;
	run_case_all_splits(&c);
	in[999] = '\0';			/* no CRLF at the end */
	c.name = "bdat 999 unterminated";
	run_case_all_splits(&c);
	free(in);

	/* a header line longer than hdrbuf still counts and is bounded */
	in = long_line(997, 'x', "\r\n.\r\n");
	memcpy(in, "Received: ", 10);
	c.bdat = 0;
	c.name = "long received";
	c.in = in;
	c.out = NULL;
	c.outlen = 0;
	c.err = DR_OK;
	c.received = 1;
	c.done_at = (long)strlen(in);
	out = strndup(in, strlen(in) - 3);
	c.out = out;
	run_case_all_splits(&c);
	free(in);
	free(out);
}

/* Size limit inside a long run: SIZE vs LINE, whichever octet is first. */
static void
test_size_vs_line(void **state)
{
	struct dr_case c;
	char *in;

	(void)state;
	memset(&c, 0, sizeof(c));
	in = long_line(1200, 'x', ".\r\n");
	c.in = in;
	c.done_at = (long)strlen(in);
	c.name = "size first";
	c.max = 998;			/* octet 999 breaks both: size wins */
	c.err = DR_ERR_SIZE;
	run_case_all_splits(&c);
	c.name = "line first";
	c.max = 999;
	c.err = DR_ERR_LINE;
	run_case_all_splits(&c);
	c.name = "size far";
	c.max = 1000000;
	c.err = DR_ERR_LINE;
	run_case_all_splits(&c);
	free(in);
}

/* Content goes out in runs, not octet by octet. */
static void
test_runs(void **state)
{
	static const char msg[] = "Subject: a\r\n\r\nline one\r\nline two\r\n"
	    "..stuffed\r\nlast\r\n.\r\n";
	struct sink s = { 0 };
	struct dataread dr;
	int done = 0;
	size_t n;

	(void)state;
	dataread_init(&dr, 0, BIG, sink_emit, &s);
	n = dataread_feed(&dr, msg, sizeof(msg) - 1, &done);
	assert_int_equal(n, sizeof(msg) - 1);
	assert_int_equal(done, 1);
	assert_int_equal(dr.err, DR_OK);
	/* one run before the stuffed dot, one after it */
	assert_int_equal(s.calls, 2);
	/* feeding after the end consumes nothing */
	done = 0;
	assert_int_equal(dataread_feed(&dr, "x", 1, &done), 0);
	assert_int_equal(done, 1);
	free(s.buf);
}

/* A failing store stops emit calls; the reader still finds the end. */
static void
test_emit_failure(void **state)
{
	struct sink s = { 0 };
	struct dataread dr;
	int done = 0;
	size_t n;

	(void)state;
	s.fail_at = 1;
	dataread_init(&dr, 0, BIG, sink_emit, &s);
	n = dataread_feed(&dr, "abc\r\n", 5, &done);
	assert_int_equal(n, 5);
	assert_int_equal(dr.emit_failed, 1);
	n = dataread_feed(&dr, "..x\r\nmore\r\n.\r\nQUIT\r\n", 20, &done);
	assert_int_equal(done, 1);
	assert_int_equal(n, 14);
	assert_int_equal(s.calls, 1);
	assert_int_equal(dr.err, DR_OK);
	assert_int_equal(dr.size, 5 + 4 + 6);
	free(s.buf);
}

/* Errors stop emitting at once. */
static void
test_error_stops_emit(void **state)
{
	struct sink s = { 0 };
	struct dataread dr;
	int done = 0;

	(void)state;
	dataread_init(&dr, 0, 4, sink_emit, &s);
	dataread_feed(&dr, "ab\r\n", 4, &done);
	assert_int_equal(s.len, 4);
	dataread_feed(&dr, "c", 1, &done);
	dataread_feed(&dr, "d\r\n.\r\n", 6, &done);
	assert_int_equal(done, 1);
	assert_int_equal(dr.err, DR_ERR_SIZE);
	assert_int_equal(s.len, 4);
	assert_int_equal(dr.size, 4 + 1 + 3);
	free(s.buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_cases),
		cmocka_unit_test(test_bdat_cases),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_size_vs_line),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_emit_failure),
		cmocka_unit_test(test_error_stops_emit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
