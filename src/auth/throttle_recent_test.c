/*
 * throttle_recent_test — the ring of recent failed logins that the
 * account page shows to each person (throttle_recent_for).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/throttle.h"

static void
test_recent_for(void **state)
{
	struct throttle *t = throttle_new(1000);
	struct throttle_event ev[8];
	size_t n;

	(void)state;
	assert_non_null(t);
	assert_int_equal(throttle_recent_for(t, "a@x.org", ev, 8), 0);
	throttle_fail(t, "a@x.org", "192.0.2.1", 60, 100);
	throttle_fail(t, "b@x.org", "192.0.2.2", 60, 101);
	throttle_fail(t, "A@X.org", "192.0.2.3", 60, 102);
	throttle_fail(t, "", "192.0.2.4", 60, 103);	/* no account: not kept */
	n = throttle_recent_for(t, "a@x.org", ev, 8);
	assert_int_equal(n, 2);
	/* newest first, any case */
	assert_int_equal(ev[0].when, 102);
	assert_string_equal(ev[0].addr, "192.0.2.3");
	assert_int_equal(ev[1].when, 100);
	assert_string_equal(ev[1].addr, "192.0.2.1");
	/* max is respected */
	assert_int_equal(throttle_recent_for(t, "a@x.org", ev, 1), 1);
	assert_int_equal(ev[0].when, 102);
	assert_int_equal(throttle_recent_for(t, "c@x.org", ev, 8), 0);
	throttle_free(t);
}

static void
test_recent_ring_bounded(void **state)
{
	struct throttle *t = throttle_new(100000);
	struct throttle_event ev[THROTTLE_RECENT + 10];
	char addr[32];
	size_t n, i;

	(void)state;
	assert_non_null(t);
	for (i = 0; i < THROTTLE_RECENT + 50; i++) {
		snprintf(addr, sizeof(addr), "10.0.%zu.%zu", i / 250, i % 250);
		throttle_fail(t, "a@x.org", addr, 60, (time_t)(1000 + i));
	}
	n = throttle_recent_for(t, "a@x.org", ev, THROTTLE_RECENT + 10);
	assert_int_equal(n, THROTTLE_RECENT);
	assert_int_equal(ev[0].when, 1000 + THROTTLE_RECENT + 49);
	assert_int_equal(ev[n - 1].when, 1000 + 50);
	/* a long account name or address is cut, never overflowed */
	{
		char longacct[600], longaddr[200];

		memset(longacct, 'x', sizeof(longacct) - 1);
		longacct[sizeof(longacct) - 1] = '\0';
		memset(longaddr, '1', sizeof(longaddr) - 1);
		longaddr[sizeof(longaddr) - 1] = '\0';
		throttle_fail(t, longacct, longaddr, 60, 5000);
		assert_int_equal(throttle_recent_for(t, "a@x.org", ev, 1), 1);
	}
	throttle_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recent_for),
		cmocka_unit_test(test_recent_ring_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
