/*
 * log_test — log_escape, log_level_parse and the line format of log_msg.
 * stderr is redirected into a temporary file to read back what was
 * written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <stdlib.h>

#include "util/log.c"

static void
test_level_parse(void **state)
{
	static const struct {
		const char	*in;
		int		 want;
	} cases[] = {
		{ "err", LOGL_ERR }, { "error", LOGL_ERR }, { "ERROR", LOGL_ERR },
		{ "warn", LOGL_WARN }, { "warning", LOGL_WARN },
		{ "info", LOGL_INFO }, { "Info", LOGL_INFO },
		{ "debug", LOGL_DEBUG }, { "", -1 }, { "notice", -1 },
		{ "info ", -1 }, { "2", -1 }, { "debugging", -1 },
	};
	size_t i;

	(void)state;
	assert_int_equal(log_level_parse(NULL), -1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (log_level_parse(cases[i].in) != cases[i].want)
			fail_msg("case \"%s\"", cases[i].in);
}

static void
test_escape(void **state)
{
	static const struct {
		const char	*src;
		size_t		 srclen;
		size_t		 dstlen;
		const char	*want;
	} cases[] = {
		{ "hello", 5, 64, "hello" },
		{ "hello", 3, 64, "hel" },
		{ "a\r\nb", 4, 64, "a\\x0d\\x0ab" },
		{ "back\\slash", 10, 64, "back\\x5cslash" },
		{ "del\x7f", 4, 64, "del\\x7f" },
		{ "\xc3\xa9t\xc3\xa9", 5, 64, "\\xc3\\xa9t\\xc3\\xa9" },
		{ "a\0b", 3, 64, "a\\x00b" },
		{ "tab\there", 8, 64, "tab\\x09here" },
		{ "~ !\"", 4, 64, "~ !\"" },
		{ "", 0, 64, "" },
		{ "nul-terminated", SIZE_MAX, 64, "nul-terminated" },
		/* Exactly fits: 5 chars + NUL. */
		{ "abcde", 5, 6, "abcde" },
		/* One too many: cut with "..." inside the buffer. */
		{ "abcdef", 6, 6, "ab..." },
		{ "abcdefghij", 10, 8, "abcd..." },
		/* An escape is never split. */
		{ "ab\x01xyz", 6, 9, "ab..." },
		{ "a\x01", 2, 6, "a\\x01" },
		{ "a\x01z", 3, 7, "a\\x01z" },
		{ "a\x01z", 3, 6, "a..." },
		/* Tiny buffers still terminate. */
		{ "abc", 3, 1, "" },
		{ "abc", 3, 2, "." },
		{ "abcd", 4, 4, "..." },
		{ "abcd", 4, 5, "abcd" },
	};
	char	dst[128];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(dst, 'Z', sizeof(dst));
		assert_ptr_equal(log_escape(dst, cases[i].dstlen, cases[i].src,
		    cases[i].srclen), dst);
		if (strcmp(dst, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\" want \"%s\"", i, dst,
			    cases[i].want);
		assert_true(strlen(dst) < cases[i].dstlen);
		/* Nothing written past dstlen. */
		assert_int_equal(dst[cases[i].dstlen], 'Z');
	}
	assert_null(log_escape(NULL, 10, "x", 1));
	assert_string_equal(log_escape(dst, sizeof(dst), NULL, 5), "");
}

/* Runs fn with stderr going to a temporary file; returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	char	 path[] = "/tmp/outpost-log-test-XXXXXX";
	int	 fd, saved;
	char	*buf;
	ssize_t	 n;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = pread(fd, buf, 65535, 0);
	assert_true(n >= 0);
	close(fd);
	return buf;
}

static void
emit_levels(void)
{
	log_init("outpostd", LOGL_INFO, 0);
	log_info("c-1: connect from=[%s]:%d", "192.0.2.1", 25);
	log_warn("disk %d%% full", 95);
	log_err("cannot bind");
	log_debug("dropped at info");
	log_msg(LOGL_DEBUG, "also dropped");
	log_set_level(LOGL_DEBUG);
	log_debug("trace %s", "on");
	log_set_level(LOGL_ERR);
	log_warn("dropped at err");
	log_info("dropped at err");
	log_err("still here");
	log_set_level(99);
}

static void
test_format(void **state)
{
	static const char *const want[] = {
		"c-1: connect from=[192.0.2.1]:25",
		"warning: disk 95% full",
		"error: cannot bind",
		"debug: trace on",
		"error: still here",
	};
	char	*out, *line, *save = NULL, pfx[64];
	regex_t	 re;
	size_t	 i = 0;

	(void)state;
	out = capture(emit_levels);
	assert_int_equal(log_get_level(), LOGL_DEBUG);	/* clamped */
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	    "[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z outpostd\\[[0-9]+\\]: ", REG_EXTENDED),
	    0);
	snprintf(pfx, sizeof(pfx), "outpostd[%ld]: ", (long)getpid());
	assert_int_equal(out[strlen(out) - 1], '\n');
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), i++) {
		assert_true(i < sizeof(want) / sizeof(want[0]));
		if (regexec(&re, line, 0, NULL, 0) != 0)
			fail_msg("bad prefix: %s", line);
		assert_non_null(strstr(line, pfx));
		assert_string_equal(strstr(line, pfx) + strlen(pfx), want[i]);
	}
	assert_int_equal(i, sizeof(want) / sizeof(want[0]));
	regfree(&re);
	free(out);
}

static void
emit_long(void)
{
	char *big = malloc(10000);

	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_init("outpostd", LOGL_INFO, 0);
	log_info("%s", big);
	log_info("two\nlines\r");
	free(big);
}

static void
test_long_and_newlines(void **state)
{
	char *out, *nl;

	(void)state;
	out = capture(emit_long);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	/* The first line is cut to LOG_LINE_MAX including its newline. */
	assert_int_equal((size_t)(nl - out) + 1, LOG_LINE_MAX - 1);
	assert_memory_equal(nl - 3, "...", 3);
	/* An embedded newline cannot forge a second log line. */
	assert_non_null(strstr(nl + 1, ": two lines \n"));
	assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_long_and_newlines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
