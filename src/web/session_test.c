/*
 * session_test — session table, cookies and CSRF tokens of the account
 * page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "web/session.h"

static int
setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void
test_tokens(void **state)
{
	char a[WEB_TOKEN_LEN + 1], b[WEB_TOKEN_LEN + 1];

	(void)state;
	web_token_new(a);
	web_token_new(b);
	assert_int_equal(strlen(a), WEB_TOKEN_LEN);
	assert_string_not_equal(a, b);
	assert_true(web_token_eq(a, a));
	assert_false(web_token_eq(a, b));
	assert_false(web_token_eq(a, NULL));
	assert_false(web_token_eq(NULL, NULL));
	assert_false(web_token_eq("", ""));
	/* a prefix, an uppercase copy, a longer string: all refused */
	memcpy(b, a, 10);
	b[10] = '\0';
	assert_false(web_token_eq(a, b));
	memcpy(b, a, sizeof(b));
	b[0] = b[0] >= 'a' ? (char)(b[0] - 32) : b[0];
	if (b[0] != a[0])
		assert_false(web_token_eq(b, b));
}

static void
test_cookie_get(void **state)
{
	char v[80];

	(void)state;
	assert_int_equal(web_cookie_get("outpost_session=abc", "outpost_session",
	    v, sizeof(v)), 0);
	assert_string_equal(v, "abc");
	assert_int_equal(web_cookie_get("a=1; outpost_session=xyz ; b=2",
	    "outpost_session", v, sizeof(v)), 0);
	assert_string_equal(v, "xyz");
	/* a name that only ends like ours does not match */
	assert_int_equal(web_cookie_get("fake_outpost_session=1",
	    "outpost_session", v, sizeof(v)), -1);
	assert_int_equal(web_cookie_get("outpost_sessionX=1", "outpost_session",
	    v, sizeof(v)), -1);
	assert_int_equal(web_cookie_get("", "outpost_session", v, sizeof(v)),
	    -1);
	assert_int_equal(web_cookie_get(NULL, "outpost_session", v, sizeof(v)),
	    -1);
	/* too long for the buffer: refused, not cut */
	assert_int_equal(web_cookie_get("s=0123456789", "s", v, 5), -1);
}

static void
test_cookie_format(void **state)
{
	char c[300];

	(void)state;
	assert_int_equal(web_cookie_format(c, sizeof(c), "outpost_session",
	    "abc", 600), 0);
	assert_string_equal(c, "outpost_session=abc; Path=/; Max-Age=600; "
	    "Secure; HttpOnly; SameSite=Strict");
	assert_int_equal(web_cookie_format(c, sizeof(c), "outpost_session",
	    "abc", -1), 0);
	assert_string_equal(c, "outpost_session=; Path=/; Max-Age=0; "
	    "Secure; HttpOnly; SameSite=Strict");
	assert_int_equal(web_cookie_format(c, 10, "outpost_session", "abc",
	    1), -1);
}

static void
test_sessions(void **state)
{
	struct web_sessions t;
	struct web_session *s, *s2;
	char old[WEB_TOKEN_LEN + 1], oldcsrf[WEB_TOKEN_LEN + 1];

	(void)state;
	web_sessions_init(&t, 60, 300);
	s = web_session_new(&t, 1000);
	assert_non_null(s);
	assert_int_equal(s->state, WS_ANON);
	assert_ptr_equal(web_session_find(&t, s->id, 1010), s);
	assert_null(web_session_find(&t, "nope", 1010));
	/* rotation: the old id is gone, the CSRF token changes */
	memcpy(old, s->id, sizeof(old));
	memcpy(oldcsrf, s->csrf, sizeof(oldcsrf));
	web_session_rotate(s, 1020);
	assert_string_not_equal(old, s->id);
	assert_string_not_equal(oldcsrf, s->csrf);
	assert_null(web_session_find(&t, old, 1020));
	assert_ptr_equal(web_session_find(&t, s->id, 1020), s);
	assert_int_equal(web_session_max_age(&t, s, 1020), 300);
	/* idle expiry */
	memcpy(old, s->id, sizeof(old));
	assert_null(web_session_find(&t, old, 1020 + 60));
	assert_int_equal(t.n, 0);
	/* fixed lifetime, even when used all the time */
	s = web_session_new(&t, 2000);
	memcpy(old, s->id, sizeof(old));
	assert_non_null(web_session_find(&t, old, 2050));
	assert_non_null(web_session_find(&t, old, 2100));
	assert_non_null(web_session_find(&t, old, 2150));
	assert_non_null(web_session_find(&t, old, 2200));
	assert_non_null(web_session_find(&t, old, 2250));
	assert_null(web_session_find(&t, old, 2300));
	/* delete */
	s = web_session_new(&t, 3000);
	s2 = web_session_new(&t, 3000);
	web_session_del(&t, s);
	assert_int_equal(t.n, 1);
	assert_ptr_equal(web_session_find(&t, s2->id, 3001), s2);
	web_sessions_free(&t);
	assert_int_equal(t.n, 0);
}

static void
test_sessions_bounded(void **state)
{
	struct web_sessions t;
	struct web_session *s, *first;
	char firstid[WEB_TOKEN_LEN + 1];
	size_t i;

	(void)state;
	web_sessions_init(&t, 600, 3600);
	first = web_session_new(&t, 100);
	memcpy(firstid, first->id, sizeof(firstid));
	for (i = 1; i < WEB_SESSIONS_MAX; i++) {
		s = web_session_new(&t, 100 + (time_t)i % 50);
		assert_non_null(s);
		s->state = WS_AUTHED;
	}
	assert_int_equal(t.n, WEB_SESSIONS_MAX);
	/* full: the anonymous one goes, signed-in ones stay */
	assert_non_null(web_session_new(&t, 200));
	assert_int_equal(t.n, WEB_SESSIONS_MAX);
	assert_null(web_session_find(&t, firstid, 200));
	/* full of signed-in sessions only: a new one is refused */
	for (s = t.head; s != NULL; s = s->next)
		s->state = WS_AUTHED;
	assert_null(web_session_new(&t, 201));
	/* once they expire there is room again */
	assert_non_null(web_session_new(&t, 100 + 3600));
	assert_int_equal(t.n, 1);
	web_sessions_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_cookie_get),
		cmocka_unit_test(test_cookie_format),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_sessions_bounded),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
