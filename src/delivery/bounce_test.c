/*
 * bounce_test — DSN text: the multipart/report structure, the fields of
 * RFC 3464, the original headers (or the whole message for RET=FULL),
 * hostile reply text that tries to inject header lines, the NOTIFY
 * rules, message/global-delivery-status for SMTPUTF8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery/bounce.h"

struct buf {
	char	 p[65536];
	size_t	 len;
};

static int
put(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;

	if (b->len + len >= sizeof(b->p))
		return -1;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

static int
msgfile(const char *text)
{
	char path[] = "/tmp/bounce_test.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "ENVELOPE\n", 9), 9);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void
build(struct buf *b, enum env_ret ret, int utf8, const char *diag,
    enum dlv_dsn_kind kind)
{
	struct envelope_rcpt er = { (char *)"bob@example.net",
	    (char *)"rfc822;bob+2Bx@example.net", 0 };
	struct envelope env;
	struct dlv_dsn_rcpt r;
	struct dlv_dsn d;
	int fd = msgfile("Subject: hi\r\nFrom: a@example.org\r\n\r\nSECRET BODY\r\n");

	memset(&env, 0, sizeof(env));
	snprintf(env.qid, sizeof(env.qid), "0K1BY4GKFYW00C0M");
	env.mail_from = (char *)"alice@example.org";
	env.envid = (char *)"ENV+2B1";
	env.ret = ret;
	env.smtputf8 = utf8;
	env.arrival = 1700000000;
	env.rcpts = &er;
	env.nrcpts = 1;
	env.size = 48;
	memset(&r, 0, sizeof(r));
	r.addr = er.addr;
	r.orcpt = er.orcpt;
	r.action = kind == DLV_DSN_FAILURE ? "failed" : "delayed";
	snprintf(r.status, sizeof(r.status), kind == DLV_DSN_FAILURE ?
	    "5.1.1" : "4.4.1");
	r.remote_mta = "mx.example.net";
	r.diag = diag;
	r.last_attempt = 1700000100;
	memset(&d, 0, sizeof(d));
	d.kind = kind;
	d.hostname = "mail.example.org";
	d.env = &env;
	d.msgfd = fd;
	d.body = 9;
	d.retry_until = 1700432000;
	d.rcpts = &r;
	d.nrcpts = 1;
	d.full_max = 1 << 20;
	memset(b, 0, sizeof(*b));
	assert_int_equal(dlv_dsn_build(&d, put, b), 0);
	close(fd);
}

static void
test_failure_headers(void **state)
{
	struct buf b;

	(void)state;
	build(&b, ENV_RET_UNSET, 0, "550 5.1.1 No such user", DLV_DSN_FAILURE);
	assert_non_null(strstr(b.p, "From: Mail Delivery System "
	    "<MAILER-DAEMON@mail.example.org>\r\n"));
	assert_non_null(strstr(b.p, "To: <alice@example.org>\r\n"));
	assert_non_null(strstr(b.p, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(b.p, "Content-Type: multipart/report; "
	    "report-type=delivery-status;"));
	assert_non_null(strstr(b.p, "Content-Type: message/delivery-status"));
	assert_non_null(strstr(b.p, "Reporting-MTA: dns; mail.example.org\r\n"));
	assert_non_null(strstr(b.p, "Original-Envelope-Id: ENV+1\r\n"));
	assert_non_null(strstr(b.p, "Final-Recipient: rfc822; bob@example.net\r\n"));
	assert_non_null(strstr(b.p, "Original-Recipient: rfc822;bob+x@example.net\r\n"));
	assert_non_null(strstr(b.p, "Action: failed\r\nStatus: 5.1.1\r\n"));
	assert_non_null(strstr(b.p, "Remote-MTA: dns; mx.example.net\r\n"));
	assert_non_null(strstr(b.p, "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"));
	assert_non_null(strstr(b.p, "Content-Type: text/rfc822-headers"));
	assert_non_null(strstr(b.p, "Subject: hi\r\n"));
	assert_null(strstr(b.p, "SECRET BODY"));
	/* every line ends with CRLF */
	for (size_t i = 0; i < b.len; i++)
		if (b.p[i] == '\n')
			assert_true(i > 0 && b.p[i - 1] == '\r');
}

static void
test_full_and_injection(void **state)
{
	struct buf b;

	(void)state;
	build(&b, ENV_RET_FULL, 0, "550 evil\r\nX-Injected: yes", DLV_DSN_FAILURE);
	assert_non_null(strstr(b.p, "Content-Type: message/rfc822"));
	assert_non_null(strstr(b.p, "SECRET BODY"));
	assert_null(strstr(b.p, "\r\nX-Injected"));
	assert_non_null(strstr(b.p, "550 evil??X-Injected: yes"));
}

static void
test_delay_and_utf8(void **state)
{
	struct buf b;

	(void)state;
	build(&b, ENV_RET_HDRS, 1, NULL, DLV_DSN_DELAY);
	assert_non_null(strstr(b.p, "Subject: Delayed Mail"));
	assert_non_null(strstr(b.p, "message/global-delivery-status"));
	assert_non_null(strstr(b.p, "message/global-headers"));
	assert_non_null(strstr(b.p, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(b.p, "Will-Retry-Until: "));
}

static void
test_wanted(void **state)
{
	(void)state;
	assert_true(dlv_dsn_wanted(0, DLV_DSN_FAILURE));
	assert_true(dlv_dsn_wanted(0, DLV_DSN_DELAY));
	assert_false(dlv_dsn_wanted(0, DLV_DSN_SUCCESS));
	assert_false(dlv_dsn_wanted(ENV_NOTIFY_NEVER, DLV_DSN_FAILURE));
	assert_true(dlv_dsn_wanted(ENV_NOTIFY_SUCCESS, DLV_DSN_SUCCESS));
	assert_false(dlv_dsn_wanted(ENV_NOTIFY_SUCCESS, DLV_DSN_FAILURE));
	assert_false(dlv_dsn_wanted(ENV_NOTIFY_FAILURE, DLV_DSN_DELAY));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_headers),
		cmocka_unit_test(test_full_and_injection),
		cmocka_unit_test(test_delay_and_utf8),
		cmocka_unit_test(test_wanted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
