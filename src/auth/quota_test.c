/*
 * quota_test — the hard-bounce counter of the quota module: its window
 * (fixed, starting at the first bounce), the hold at the threshold, "off",
 * trusted networks, a clock that goes back, the release clearing the
 * count, and counting from several threads at once (the delivery thread
 * and, in the tests, others).  The message/recipient windows are tested
 * in security_test.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth/accounts.h"
#include "auth/quota.h"

#define T0	((time_t)20000 * 86400 + 3600 * 5)

static void
test_bounce_window(void **state)
{
	char err[128];
	struct quota *q = quota_open(NULL, 5, 100, err, sizeof(err));
	struct quota_bounce_limits bl = { 3, 100 };
	struct quota_limits lim = { 0, 0, 0, 0 };

	(void)state;
	assert_non_null(q);
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0), 0);
	assert_int_equal(quota_bounce(q, "b@x.org", &bl, T0), 0);
	assert_int_equal(quota_bounce(q, "B@X.org", &bl, T0 + 50), 0);
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0 + 99), 2);
	/* the window started at T0: at T0 + 100 it is over */
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0 + 100), 0);
	assert_int_equal(quota_bounce(q, "b@x.org", &bl, T0 + 100), 0);
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0 + 100), 1);
	assert_int_equal(quota_check_mail(q, "b@x.org", &lim, T0 + 100),
	    QUOTA_OK);
	assert_int_equal(quota_bounce(q, "b@x.org", &bl, T0 + 150), 0);
	/* the third in the window (T0 + 100 .. T0 + 199) holds */
	assert_int_equal(quota_bounce(q, "b@x.org", &bl, T0 + 199), 1);
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0 + 199), 3);
	assert_int_equal(quota_check_mail(q, "b@x.org", &lim, T0 + 199),
	    QUOTA_HELD);
	assert_int_equal(quota_check_rcpt(q, "b@x.org", &lim, 1, T0 + 199),
	    QUOTA_HELD);
	/* already held: more bounces do not hold (or log) again */
	assert_int_equal(quota_bounce(q, "b@x.org", &bl, T0 + 199), 0);
	assert_int_equal(quota_bounces(q, "b@x.org", &bl, T0 + 199), 4);
	/* others are not affected */
	assert_int_equal(quota_check_mail(q, "c@x.org", &lim, T0 + 199),
	    QUOTA_OK);
	quota_close(q);
}

static void
test_bounce_spread_out_never_holds(void **state)
{
	char err[128];
	struct quota *q = quota_open(NULL, 5, 100, err, sizeof(err));
	struct quota_bounce_limits bl = { 3, 60 };
	struct quota_limits lim = { 0, 0, 0, 0 };
	int i;

	(void)state;
	assert_non_null(q);
	/* two per window, for a day: never three in one window */
	for (i = 0; i < 1440; i++) {
		assert_int_equal(quota_bounce(q, "s@x.org", &bl,
		    T0 + i * 60), 0);
		assert_int_equal(quota_bounce(q, "s@x.org", &bl,
		    T0 + i * 60 + 59), 0);
	}
	assert_int_equal(quota_check_mail(q, "s@x.org", &lim, T0 + 86400),
	    QUOTA_OK);
	quota_close(q);
}

static void
test_bounce_off_nets_and_clock(void **state)
{
	char err[128];
	struct quota *q = quota_open(NULL, 5, 100, err, sizeof(err));
	struct quota_bounce_limits off = { 0, 100 }, one = { 1, 100 };
	struct quota_bounce_limits two = { 2, 100 };
	struct quota_limits lim = { 0, 0, 0, 0 };
	int i;

	(void)state;
	assert_non_null(q);
	/* 0 = off: nothing is counted, nobody is held */
	for (i = 0; i < 1000; i++)
		assert_int_equal(quota_bounce(q, "o@x.org", &off, T0), 0);
	assert_int_equal(quota_bounces(q, "o@x.org", &off, T0), 0);
	assert_int_equal(quota_check_mail(q, "o@x.org", &lim, T0), QUOTA_OK);
	/* a trusted network is never held */
	assert_int_equal(quota_bounce(q, "net:10.0.0.0/8", &one, T0), 0);
	assert_int_equal(quota_check_mail(q, "net:10.0.0.0/8", &lim, T0),
	    QUOTA_OK);
	/* the clock went back: the window starts again */
	assert_int_equal(quota_bounce(q, "k@x.org", &two, T0 + 500), 0);
	assert_int_equal(quota_bounce(q, "k@x.org", &two, T0), 0);
	assert_int_equal(quota_bounces(q, "k@x.org", &two, T0), 1);
	assert_int_equal(quota_bounce(q, "k@x.org", &two, T0 + 1), 1);
	/* an over-long name is not counted (and nothing breaks) */
	{
		char big[400];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(quota_bounce(q, big, &one, T0), 0);
	}
	quota_close(q);
}

/* The release path: the hold is written, the operator clears users.held,
 * the next AUTH passes held = 0: the bounce count starts from zero. */
static void
test_bounce_release(void **state)
{
	char dir[] = "/tmp/outpost-quota-XXXXXX", path[128], err[256];
	struct quota_bounce_limits bl = { 2, 3600 };
	struct quota_limits lim = { 0, 0, 0, 0 };
	struct accounts *a;
	struct quota *q;
	time_t now = time(NULL);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/accounts.db", dir);
	a = accounts_open(path, 1, err, sizeof(err));
	assert_non_null(a);
	accounts_close(a);
	q = quota_open(path, 3600, 100, err, sizeof(err));
	assert_non_null(q);
	assert_int_equal(quota_bounce(q, "r@x.org", &bl, now), 0);
	assert_int_equal(quota_bounce(q, "r@x.org", &bl, now), 1);
	assert_int_equal(quota_check_mail(q, "r@x.org", &lim, now), QUOTA_HELD);
	/* not written yet: a stale "not held" from an AUTH does not undo it */
	quota_set_held(q, "r@x.org", 0);
	assert_int_equal(quota_check_mail(q, "r@x.org", &lim, now), QUOTA_HELD);
	/* written (the user does not exist in this store: logged, not fatal) */
	assert_int_equal(quota_flush(q), 0);
	quota_set_held(q, "r@x.org", 0);	/* released */
	assert_int_equal(quota_check_mail(q, "r@x.org", &lim, now), QUOTA_OK);
	assert_int_equal(quota_bounces(q, "r@x.org", &bl, now), 0);
	/* one more bounce does not hold again at once */
	assert_int_equal(quota_bounce(q, "r@x.org", &bl, now), 0);
	assert_int_equal(quota_check_mail(q, "r@x.org", &lim, now), QUOTA_OK);
	quota_close(q);
	unlink(path);
	snprintf(path, sizeof(path), "%s/accounts.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/accounts.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

#define NTHREADS	4
#define PER_THREAD	2000

struct bounce_arg {
	struct quota	*q;
	int		 held;
};

static void *
bounce_thread(void *p)
{
	struct bounce_arg *ba = p;
	struct quota_bounce_limits bl = { NTHREADS * PER_THREAD, 3600 };
	int i;

	for (i = 0; i < PER_THREAD; i++)
		ba->held += quota_bounce(ba->q, "t@x.org", &bl, T0);
	return NULL;
}

static void
test_bounce_threads(void **state)
{
	char err[128];
	struct quota *q = quota_open(NULL, 5, 100, err, sizeof(err));
	struct quota_bounce_limits bl = { NTHREADS * PER_THREAD, 3600 };
	struct bounce_arg ba[NTHREADS];
	pthread_t tid[NTHREADS];
	int i, held = 0;

	(void)state;
	assert_non_null(q);
	for (i = 0; i < NTHREADS; i++) {
		ba[i].q = q;
		ba[i].held = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, bounce_thread,
		    &ba[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(tid[i], NULL);
		held += ba[i].held;
	}
	/* every bounce counted; exactly one of them made the hold */
	assert_int_equal(quota_bounces(q, "t@x.org", &bl, T0),
	    NTHREADS * PER_THREAD);
	assert_int_equal(held, 1);
	quota_close(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounce_window),
		cmocka_unit_test(test_bounce_spread_out_never_holds),
		cmocka_unit_test(test_bounce_off_nets_and_clock),
		cmocka_unit_test(test_bounce_release),
		cmocka_unit_test(test_bounce_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
