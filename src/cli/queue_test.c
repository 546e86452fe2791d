/*
 * queue_test — `outpost queue list|show`: exit codes for bad usage, the
 * listing and the show output of a spool written by hand, terminal-safe
 * printing of hostile values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/queue.c"

static char tdir[256];
static char spool[300];
static char out[65536];

static int
setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/queue_test.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	snprintf(spool, sizeof(spool), "%s/spool", tdir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs cli_queue with stdout captured into out. */
static int
run(const char *const *args)
{
	struct config cfg;
	char *argv[8];
	char path[300];
	int argc = 0, saved, fd, rc;
	ssize_t n;

	while (args[argc] != NULL) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	memset(&cfg, 0, sizeof(cfg));
	cfg.spool_dir = spool;
	snprintf(path, sizeof(path), "%s/out", tdir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, 1);
	rc = cli_queue(argc, argv, &cfg);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

static void
put_msg(const char *qid, const char *from, const char *rcpt,
    const char *body)
{
	struct envelope_rcpt r = { (char *)rcpt, NULL, ENV_NOTIFY_FAILURE };
	struct envelope env;
	char path[400], *hdr;
	size_t hlen;
	FILE *fp;

	memset(&env, 0, sizeof(env));
	memcpy(env.qid, qid, SPOOL_QID_SIZE);
	env.arrival = 1700000000;
	env.mail_from = (char *)from;
	env.client_addr = (char *)"203.0.113.9";
	env.rcpts = &r;
	env.nrcpts = 1;
	assert_int_equal(envelope_format(&env, &hdr, &hlen), 0);
	mkdir(spool, 0700);
	snprintf(path, sizeof(path), "%s/queue", spool);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/queue/%s", spool, qid);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fwrite(hdr, 1, hlen, fp);
	fputs(body, fp);
	fclose(fp);
	free(hdr);
}

static void
test_usage(void **state)
{
	static const struct {
		const char	*args[5];
		int		 rc;
	} cases[] = {
		{ { "queue", NULL }, EX_USAGE },
		{ { "queue", "bogus", NULL }, EX_USAGE },
		{ { "queue", "list", "extra", NULL }, EX_USAGE },
		{ { "queue", "show", NULL }, EX_USAGE },
		{ { "queue", "show", "a", "b", NULL }, EX_USAGE },
		{ { "queue", "show", "nope", NULL }, EX_DATAERR },
		{ { "queue", "show", "0000000000000000X", NULL }, EX_DATAERR },
		{ { "queue", "show", "../../etc/passwd", NULL }, EX_DATAERR },
		{ { "queue", "show", "0000000000000000", NULL }, EX_NOINPUT },
		/* no daemon, no such message */
		{ { "queue", "delete", "0000000000000000", NULL },
		  EX_NOINPUT },
		{ { "queue", "hold", "nope", NULL }, EX_DATAERR },
		{ { "queue", "hold", NULL }, EX_USAGE },
		{ { "queue", "flush", "x", NULL }, EX_USAGE },
		{ { "queue", "--help", NULL }, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (run(cases[i].args) != cases[i].rc)
			fail_msg("case %zu (%s)", i, cases[i].args[1] ?
			    cases[i].args[1] : "-");
}

static void
test_list(void **state)
{
	const char *list[] = { "queue", "list", NULL };

	(void)state;
	/* no spool at all yet: empty, not an error */
	assert_int_equal(run(list), 0);
	assert_string_equal(out, "queue is empty\n");
	put_msg("1K1BY4GKFYW00C0M", "alice@example.org", "bob@example.net",
	    "Subject: hi\r\n\r\nhello\r\n");
	put_msg("0K1BY4GKFYW00C0M", "", "evil\x1b[2J@example.net", "x");
	assert_int_equal(run(list), 0);
	/* oldest id first; null sender as <>; escape bytes made visible */
	assert_non_null(strstr(out, "0K1BY4GKFYW00C0M"));
	assert_true(strstr(out, "0K1BY4GKFYW00C0M") <
	    strstr(out, "1K1BY4GKFYW00C0M"));
	assert_non_null(strstr(out, "<> -> <evil\\x1B[2J@example.net>"));
	assert_non_null(strstr(out,
	    "<alice@example.org> -> <bob@example.net>\n"));
	assert_non_null(strstr(out, "      22  <alice"));	/* size */
	assert_null(strchr(out, '\x1b'));
	assert_non_null(strstr(out, "\n2 messages\n"));
}

static void
test_show(void **state)
{
	const char *show[] = { "queue", "show", "1k1by4gkfyw00c0m", NULL };

	(void)state;
	put_msg("1K1BY4GKFYW00C0M", "alice@example.org", "bob@example.net",
	    "Subject: hi\r\nX-Evil: \x07\x1b]0;pwned\x07\r\n\r\nSECRET BODY\r\n");
	assert_int_equal(run(show), 0);
	assert_non_null(strstr(out, "id:        1K1BY4GKFYW00C0M\n"));
	assert_non_null(strstr(out, "from:      <alice@example.org>\n"));
	assert_non_null(strstr(out, "client:    203.0.113.9\n"));
	assert_non_null(strstr(out,
	    "rcpt:      <bob@example.net> notify=failure\n"));
	assert_non_null(strstr(out, "size:      "));
	assert_non_null(strstr(out, "\nSubject: hi\n"));
	assert_non_null(strstr(out, "X-Evil: \\x07\\x1B]0;pwned\\x07\n"));
	assert_null(strstr(out, "SECRET BODY"));
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\r'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
