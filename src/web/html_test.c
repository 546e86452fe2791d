/*
 * html_test — HTML escaping and the urlencoded form decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "web/html.h"

static void
test_escape_buf(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(html_escape_buf(out, sizeof(out), "plain"), 5);
	assert_string_equal(out, "plain");
	html_escape_buf(out, sizeof(out), "<script>alert('x')&\"</script>");
	assert_string_equal(out, "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;"
	    "&lt;/script&gt;");
	/* too small: never a partial entity, always terminated */
	assert_int_equal(html_escape_buf(out, 4, "a<b"), 6);
	assert_string_equal(out, "a");
	assert_int_equal(html_escape_buf(out, sizeof(out), ""), 0);
	assert_string_equal(out, "");
	/* control characters do not pass */
	html_escape_buf(out, sizeof(out), "a\x01\x1b[31mb\x7f");
	assert_string_equal(out, "a??[31mb?");
	/* UTF-8 passes unchanged */
	html_escape_buf(out, sizeof(out), "caf\xc3\xa9");
	assert_string_equal(out, "caf\xc3\xa9");
}

static void
test_escape_evbuffer_long(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char in[1000], *got;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(in) - 1; i++)
		in[i] = i % 2 ? '<' : 'x';
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(html_escape(b, in), 0);
	len = evbuffer_get_length(b);
	assert_int_equal(len, 500 * 1 + 499 * 4);
	got = (char *)evbuffer_pullup(b, -1);
	assert_memory_equal(got, "x&lt;x&lt;", 10);
	assert_null(memchr(got, '<', len));
	evbuffer_free(b);
}

static void
test_form_parse(void **state)
{
	struct web_form f;
	const char *body = "email=alice%40example.test&password=correct+horse"
	    "&csrf=ab&empty=&label=%3Cb%3E%20x";

	(void)state;
	assert_int_equal(web_form_parse(body, strlen(body), &f), 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(web_form_get(&f, "email"), "alice@example.test");
	assert_string_equal(web_form_get(&f, "password"), "correct horse");
	assert_string_equal(web_form_get(&f, "empty"), "");
	assert_string_equal(web_form_get(&f, "label"), "<b> x");
	assert_null(web_form_get(&f, "missing"));
	web_form_wipe(&f);
	assert_int_equal(f.n, 0);
	/* empty body, stray separators */
	assert_int_equal(web_form_parse("", 0, &f), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(web_form_parse("&&a=1&&", 7, &f), 0);
	assert_int_equal(f.n, 1);
	/* a field without '=' has an empty value */
	assert_int_equal(web_form_parse("flag", 4, &f), 0);
	assert_string_equal(web_form_get(&f, "flag"), "");
}

static void
test_form_bad(void **state)
{
	struct web_form f;
	char big[2100];
	size_t i;

	(void)state;
	assert_int_equal(web_form_parse("a=%zz", 5, &f), -1);
	assert_int_equal(web_form_parse("a=%4", 4, &f), -1);
	assert_int_equal(web_form_parse("a=%", 3, &f), -1);
	assert_int_equal(web_form_parse("a=%00", 5, &f), -1);	/* NUL */
	assert_int_equal(web_form_parse("a=x%0Ay", 7, &f), -1);	/* LF */
	assert_int_equal(web_form_parse("=x", 2, &f), -1);	/* no name */
	/* length is what counts, not a NUL in the middle */
	assert_int_equal(web_form_parse("a=b\0c", 5, &f), -1);
	/* too many fields */
	{
		const char *many = "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&"
		    "k=11&l=12&m=13";

		assert_int_equal(web_form_parse(many, strlen(many), &f), -1);
		/* twelve are fine */
		assert_int_equal(web_form_parse(many, strlen(many) - 5, &f),
		    0);
		assert_int_equal(f.n, WEB_FORM_MAX);
	}
	/* a value too long is an error, never cut */
	memcpy(big, "v=", 2);
	for (i = 2; i < sizeof(big); i++)
		big[i] = 'x';
	assert_int_equal(web_form_parse(big, sizeof(big), &f), -1);
	assert_int_equal(web_form_parse(big, WEB_FORM_VALUE_MAX + 2, &f), 0);
	assert_int_equal(strlen(web_form_get(&f, "v")), WEB_FORM_VALUE_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_buf),
		cmocka_unit_test(test_escape_evbuffer_long),
		cmocka_unit_test(test_form_parse),
		cmocka_unit_test(test_form_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
