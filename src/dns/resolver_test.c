/*
 * resolver_test — MX sorting (preference order, equal preferences
 * shuffled), address literals, the loopback check, and a live c-ares
 * lookup against a server that is not there (a temporary failure, never
 * a crash, the callback exactly once, from the loop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "dns/resolver.h"

static void
test_sort(void **state)
{
	struct dns_host h[6];
	int seen_first[3] = { 0, 0, 0 };
	int round, i;

	(void)state;
	for (round = 0; round < 200; round++) {
		static const int prefs[6] = { 20, 10, 10, 5, 10, 30 };

		memset(h, 0, sizeof(h));
		for (i = 0; i < 6; i++) {
			h[i].pref = prefs[i];
			snprintf(h[i].name, sizeof(h[i].name), "h%d", i);
		}
		dns_sort_hosts(h, 6);
		for (i = 1; i < 6; i++)
			assert_true(h[i - 1].pref <= h[i].pref);
		assert_string_equal(h[0].name, "h3");
		assert_string_equal(h[5].name, "h5");
		/* h1, h2, h4 (preference 10) in random order */
		if (strcmp(h[1].name, "h1") == 0)
			seen_first[0]++;
		else if (strcmp(h[1].name, "h2") == 0)
			seen_first[1]++;
		else
			seen_first[2]++;
	}
	for (i = 0; i < 3; i++)
		assert_true(seen_first[i] > 10);
}

static void
test_literal(void **state)
{
	struct dns_addr a;
	char buf[64];

	(void)state;
	assert_int_equal(dns_parse_literal("[192.0.2.1]", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(dns_parse_literal("[IPv6:2001:db8::1]", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(dns_parse_literal("[300.1.1.1]", &a), -1);
	assert_int_equal(dns_parse_literal("[2001:db8::1]", &a), -1);
	assert_int_equal(dns_parse_literal("192.0.2.1", &a), -1);
	assert_int_equal(dns_parse_literal("[]", &a), -1);
	assert_int_equal(dns_parse_literal("[IPv6:]", &a), -1);
}

static void
test_self(void **state)
{
	struct dns_addr a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	inet_pton(AF_INET, "127.0.0.53", &a.u.v4);
	assert_true(dns_addr_is_self(&a, 0));
	inet_pton(AF_INET, "0.0.0.0", &a.u.v4);
	assert_true(dns_addr_is_self(&a, 0));
	inet_pton(AF_INET, "192.0.2.1", &a.u.v4);
	assert_false(dns_addr_is_self(&a, 0));
	a.family = AF_INET6;
	inet_pton(AF_INET6, "::1", &a.u.v6);
	assert_true(dns_addr_is_self(&a, 0));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.u.v6);
	assert_true(dns_addr_is_self(&a, 0));
	inet_pton(AF_INET6, "2001:db8::1", &a.u.v6);
	assert_false(dns_addr_is_self(&a, 0));
}

struct result {
	int	calls;
	enum dns_status status;
	size_t	naddrs;
};

static void
on_route(void *arg, const struct dns_route *rt)
{
	struct result *r = arg;

	r->calls++;
	r->status = rt->status;
	r->naddrs = rt->nhosts ? rt->hosts[0].naddrs : 0;
}

static void
test_live_tempfail_and_literal(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_opts o = { "127.0.0.1:9", 300, 1, 0 };
	struct dns_resolver *r;
	struct result a = { 0 }, b = { 0 }, c = { 0 };
	char err[256];

	(void)state;
	assert_non_null(base);
	r = dns_new(base, &o, err, sizeof(err));
	assert_non_null(r);
	assert_non_null(dns_route(r, "example.test", 0, DNS_FAM_ANY, on_route,
	    &a));
	assert_non_null(dns_route(r, "[192.0.2.7]", 0, DNS_FAM_ANY, on_route,
	    &b));
	assert_non_null(dns_route(r, "[127.0.0.1]", 0, DNS_FAM_ANY, on_route,
	    &c));
	/* never answered from inside dns_route() */
	assert_int_equal(a.calls + b.calls + c.calls, 0);
	event_base_dispatch(base);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, DNS_OK);
	assert_int_equal(b.naddrs, 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.status, DNS_LOOP);
	dns_free(r);
	event_base_free(base);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_opts o = { "127.0.0.1:9", 300, 1, 0 };
	struct dns_resolver *r;
	struct dns_lookup *l;
	struct result a = { 0 };
	char err[256];

	(void)state;
	r = dns_new(base, &o, err, sizeof(err));
	assert_non_null(r);
	l = dns_route(r, "example.test", 0, DNS_FAM_ANY, on_route, &a);
	assert_non_null(l);
	dns_cancel(l);
	event_base_dispatch(base);
	assert_int_equal(a.calls, 0);
	/* and freeing with a lookup in flight */
	assert_non_null(dns_route(r, "example.test", 0, DNS_FAM_ANY, on_route,
	    &a));
	dns_free(r);
	assert_int_equal(a.calls, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_live_tempfail_and_literal),
		cmocka_unit_test(test_cancel),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
