/*
 * qstate_test — the recipient state file: format/parse round trip,
 * hostile text (spaces, newlines, '%', "-"), strict parsing of broken
 * files, the history ring, write/read/remove/gc on disk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/qstate.h"
#include "queue/spool.h"

static void
test_roundtrip(void **state)
{
	struct qstate a, b, c;
	char *text;
	size_t len, i;

	(void)state;
	assert_int_equal(qstate_init(&a, 3), 0);
	a.attempts = 4;
	a.next = 1700000300;
	a.held = 1;
	a.warned = 1;
	a.rcpts[0].status = QS_SENT;
	a.rcpts[0].code = 250;
	snprintf(a.rcpts[0].enhanced, sizeof(a.rcpts[0].enhanced), "2.0.0");
	snprintf(a.rcpts[0].text, sizeof(a.rcpts[0].text), "OK id=1 %%41");
	a.rcpts[0].notified = 1;
	a.rcpts[1].status = QS_DEFERRED;
	snprintf(a.rcpts[1].text, sizeof(a.rcpts[1].text), "line\nbreak\r\x01");
	a.rcpts[2].status = QS_FAILED;
	snprintf(a.rcpts[2].text, sizeof(a.rcpts[2].text), "-");
	for (i = 0; i < QSTATE_HIST_MAX + 5; i++)
		qstate_hist_add(&a, (time_t)i, i % 3, QS_DEFERRED,
		    "mx[192.0.2.1]:25", "451 try later");
	assert_int_equal(a.nhist, QSTATE_HIST_MAX);
	assert_int_equal(a.hist[0].when, 5);	/* oldest dropped */
	assert_int_equal(qstate_format(&a, &text, &len), 0);
	assert_null(memchr(text, '\r', len));
	assert_int_equal(qstate_parse(text, len, 3, &b), 0);
	assert_int_equal(b.attempts, 4);
	assert_int_equal(b.next, 1700000300);
	assert_true(b.held && b.warned);
	assert_int_equal(b.rcpts[0].status, QS_SENT);
	assert_int_equal(b.rcpts[0].code, 250);
	assert_string_equal(b.rcpts[0].enhanced, "2.0.0");
	assert_string_equal(b.rcpts[0].text, "OK id=1 %41");
	assert_int_equal(b.rcpts[0].notified, 1);
	assert_string_equal(b.rcpts[1].text, "line\nbreak\r\x01");
	assert_string_equal(b.rcpts[2].text, "-");
	assert_int_equal(b.rcpts[2].status, QS_FAILED);
	assert_int_equal(b.nhist, QSTATE_HIST_MAX);
	assert_string_equal(b.hist[3].relay, "mx[192.0.2.1]:25");
	/* one recipient fewer than the file names: refused */
	assert_int_equal(qstate_parse(text, len, 2, &c), -1);
	free(text);
	qstate_clear(&a);
	qstate_clear(&b);
}

static void
test_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"outpost-state 2\n.\n",
		"outpost-state 1\n",				/* no end */
		"outpost-state 1\nattempts x\n.\n",
		"outpost-state 1\nheld 2\n.\n",
		"outpost-state 1\nrcpt 5 sent 0 250 0 - -\n.\n",	/* index */
		"outpost-state 1\nrcpt 0 nope 0 250 0 - -\n.\n",
		"outpost-state 1\nrcpt 0 sent 0 250 0 %4 -\n.\n",
		"outpost-state 1\nrcpt 0 sent 0 250 0 - - extra\n.\n",
		"outpost-state 1\nbogus 1\n.\n",
		"outpost-state 1\n.\nattempts 1\n",		/* after the end */
	};
	struct qstate st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (qstate_parse(bad[i], strlen(bad[i]), 1, &st) != -1)
			fail_msg("case %zu parsed", i);
		assert_int_equal(errno, EBADMSG);
	}
}

static void
test_disk(void **state)
{
	char dir[] = "/tmp/qstate_test.XXXXXX", path[256];
	const char *qid = "0K1BY4GKFYW00C0M";
	struct qstate a, b;
	int found;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* no state yet: fresh, found = 0 */
	assert_int_equal(qstate_read(dir, qid, 2, &b, &found), 0);
	assert_int_equal(found, 0);
	assert_int_equal(b.rcpts[1].status, QS_PENDING);
	qstate_clear(&b);
	assert_int_equal(qstate_init(&a, 2), 0);
	a.rcpts[1].status = QS_SENT;
	assert_int_equal(qstate_write(dir, qid, &a), 0);
	assert_int_equal(qstate_read(dir, qid, 2, &b, &found), 0);
	assert_int_equal(found, 1);
	assert_int_equal(b.rcpts[1].status, QS_SENT);
	qstate_clear(&b);
	/* path traversal is not a queue id */
	assert_int_equal(qstate_write(dir, "../../x", &a), -1);
	/* remove: no queue file -> ENOENT; then with one */
	assert_int_equal(spool_msg_remove(dir, qid), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(path, sizeof(path), "%s/queue", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/queue/%s", dir, qid);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(spool_msg_remove(dir, qid), 0);
	snprintf(path, sizeof(path), "%s/state/%s", dir, qid);
	assert_int_equal(access(path, F_OK), -1);
	/* gc removes a state file without its message */
	assert_int_equal(qstate_write(dir, qid, &a), 0);
	assert_int_equal(qstate_gc(dir), 1);
	assert_int_equal(access(path, F_OK), -1);
	qstate_clear(&a);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_disk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
