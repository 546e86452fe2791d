/*
 * cidr_test — network list parsing and matching: IPv4, IPv6, IPv4-mapped
 * clients, bad input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "util/cidr.h"

static void
test_parse_match(void **state)
{
	struct cidr l[CIDR_MAX];
	char err[160], buf[64];
	int n;

	(void)state;
	n = cidr_parse_list("192.0.2.0/24, 127.0.0.1/32 2001:db8::/32,::1",
	    l, CIDR_MAX, err, sizeof(err));
	assert_int_equal(n, 4);
	assert_true(cidr_match(l, n, "192.0.2.77"));
	assert_true(cidr_match(l, n, "::ffff:192.0.2.77"));	/* mapped */
	assert_false(cidr_match(l, n, "192.0.3.1"));
	assert_true(cidr_match(l, n, "127.0.0.1"));
	assert_false(cidr_match(l, n, "127.0.0.2"));
	assert_true(cidr_match(l, n, "2001:db8:1::5"));
	assert_true(cidr_match(l, n, "::1"));
	assert_false(cidr_match(l, n, "::2"));
	assert_false(cidr_match(l, n, "not an ip"));
	assert_false(cidr_match(l, n, NULL));
	cidr_format(&l[0], buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.0/24");
	cidr_format(&l[2], buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::/32");
	/* an IPv4 network never matches native IPv6, and /0 is IPv4 only */
	n = cidr_parse_list("0.0.0.0/0", l, CIDR_MAX, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_true(cidr_match(l, n, "203.0.113.9"));
	assert_false(cidr_match(l, n, "2001:db8::1"));
	/* a mapped network written in IPv6 notation */
	n = cidr_parse_list("::ffff:10.0.0.0/104", l, CIDR_MAX, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_true(cidr_match(l, n, "10.9.8.7"));
	assert_int_equal(cidr_parse_list("", l, CIDR_MAX, err, sizeof(err)), 0);
}

static void
test_bad(void **state)
{
	struct cidr l[4];
	char err[160];

	(void)state;
	assert_int_equal(cidr_parse_list("192.0.2.1/24", l, 4, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "host bits"));
	assert_int_equal(cidr_parse_list("192.0.2.0/33", l, 4, err,
	    sizeof(err)), -1);
	assert_int_equal(cidr_parse_list("::/129", l, 4, err, sizeof(err)), -1);
	assert_int_equal(cidr_parse_list("192.0.2.0/", l, 4, err, sizeof(err)),
	    -1);
	assert_int_equal(cidr_parse_list("example.org", l, 4, err,
	    sizeof(err)), -1);
	assert_int_equal(cidr_parse_list("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 "
	    "5.5.5.5", l, 4, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_match),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
