/*
 * envelope_test — envelope_format/envelope_parse: round trips with
 * hostile values, golden text, and a table of malformed headers the
 * strict parser must refuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.c"

static char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
env_build(struct envelope *env, const char *from, const char *auth,
    const char *client, const char *helo, const char *envid,
    const char *const *rcpts, const char *const *orcpts,
    const unsigned *notify, size_t n)
{
	size_t i;

	memset(env, 0, sizeof(*env));
	memcpy(env->qid, "0J8Z3K4M5N6P7Q8R", SPOOL_QID_SIZE);
	env->arrival = 1700000000;
	env->mail_from = xstrdup(from);
	env->auth_user = xstrdup(auth);
	env->client_addr = xstrdup(client);
	env->helo = xstrdup(helo);
	env->envid = xstrdup(envid);
	env->rcpts = calloc(n, sizeof(*env->rcpts));
	assert_non_null(env->rcpts);
	env->nrcpts = n;
	for (i = 0; i < n; i++) {
		env->rcpts[i].addr = xstrdup(rcpts[i]);
		env->rcpts[i].orcpt = orcpts ? xstrdup(orcpts[i]) : NULL;
		env->rcpts[i].notify = notify ? notify[i] : 0;
	}
}

static void
assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_env_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	assert_string_equal(a->qid, b->qid);
	assert_int_equal(a->arrival, b->arrival);
	assert_str_or_null(a->mail_from, b->mail_from);
	assert_str_or_null(a->auth_user, b->auth_user);
	assert_str_or_null(a->client_addr, b->client_addr);
	assert_str_or_null(a->helo, b->helo);
	assert_str_or_null(a->envid, b->envid);
	assert_int_equal(a->ret, b->ret);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->nrcpts, b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_str_or_null(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
	}
}

/* format -> parse -> format gives the same text and the same envelope. */
static void
roundtrip(struct envelope *env)
{
	struct envelope back;
	char *t1, *t2, *withbody;
	size_t l1, l2;
	ssize_t used;

	assert_int_equal(envelope_format(env, &t1, &l1), 0);
	assert_int_equal(strlen(t1), l1);
	/* The parser stops at the "." line: message bytes follow. */
	withbody = malloc(l1 + 32);
	assert_non_null(withbody);
	memcpy(withbody, t1, l1);
	memcpy(withbody + l1, "Subject: x\r\n\r\nbody\r\n", 20);
	used = envelope_parse(withbody, l1 + 20, &back);
	assert_int_equal(used, (ssize_t)l1);
	assert_env_equal(env, &back);
	assert_int_equal(envelope_format(&back, &t2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(t1, t2, l1);
	/* No byte outside printable ASCII and LF reaches the file. */
	for (size_t i = 0; i < l1; i++)
		assert_true(t1[i] == '\n' ||
		    ((unsigned char)t1[i] >= 0x20 && (unsigned char)t1[i] < 0x7f));
	envelope_clear(&back);
	free(withbody);
	free(t1);
	free(t2);
}

static void
test_roundtrip_table(void **state)
{
	static const struct {
		const char	*from, *auth, *client, *helo, *envid;
		const char	*rcpt, *orcpt;
		unsigned	 notify;
		int		 body, ret, utf8;
	} cases[] = {
		{ "alice@example.org", "alice@example.org", "203.0.113.9",
		  "mail.example.org", NULL, "bob@example.net", NULL, 0,
		  ENV_BODY_7BIT, ENV_RET_UNSET, 0 },
		/* null sender, every optional field absent */
		{ "", NULL, NULL, NULL, NULL, "postmaster@example.net", NULL,
		  0, ENV_BODY_8BITMIME, ENV_RET_UNSET, 0 },
		/* spaces, newlines, CR, controls, the escape characters */
		{ "\"a b\"@x", "u\r\nrcpt evil@x", "::1", "helo\nqid 0000",
		  "id%41<>", "\"c\td\"@y", "rfc822;c+2Bd@y", 
		  ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY,
		  ENV_BODY_BINARYMIME, ENV_RET_FULL, 1 },
		/* a value that looks like the terminator or the empty mark */
		{ ".", "<>", "%", ".\n.", "\x7f\x01", "<>", "<>",
		  ENV_NOTIFY_NEVER, ENV_BODY_8BITMIME, ENV_RET_HDRS, 0 },
		/* UTF-8 (SMTPUTF8) */
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", NULL, "2001:db8::1",
		  "h", NULL, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b.cn", NULL,
		  ENV_NOTIFY_FAILURE, ENV_BODY_8BITMIME, ENV_RET_UNSET, 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct envelope env;
		const char *r[1] = { cases[i].rcpt }, *o[1] = { cases[i].orcpt };
		unsigned nt[1] = { cases[i].notify };

		env_build(&env, cases[i].from, cases[i].auth, cases[i].client,
		    cases[i].helo, cases[i].envid, r, o, nt, 1);
		env.body = cases[i].body;
		env.ret = cases[i].ret;
		env.smtputf8 = cases[i].utf8;
		roundtrip(&env);
		envelope_clear(&env);
	}
}

static void
test_roundtrip_many_rcpts(void **state)
{
	struct envelope env;
	const char *r[300];
	char bufs[300][32];
	size_t i;

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "user%zu@example.net", i);
		r[i] = bufs[i];
	}
	env_build(&env, "a@b", NULL, NULL, NULL, NULL, r, NULL, NULL, 300);
	roundtrip(&env);
	envelope_clear(&env);
}

static void
test_golden(void **state)
{
	static const char want[] =
	    "outpost-envelope 1\n"
	    "qid 0J8Z3K4M5N6P7Q8R\n"
	    "arrival 1700000000\n"
	    "from <>\n"
	    "auth-user alice@example.org\n"
	    "client 203.0.113.9\n"
	    "helo my%20host\n"
	    "body 8bitmime\n"
	    "smtputf8 1\n"
	    "envid x%25y\n"
	    "ret hdrs\n"
	    "rcpt bob@example.net notify=success,delay orcpt=rfc822;bob@example.net\n"
	    "rcpt %3Ccarol%3E@example.com\n"
	    ".\n";
	const char *r[2] = { "bob@example.net", "<carol>@example.com" };
	const char *o[2] = { "rfc822;bob@example.net", NULL };
	unsigned nt[2] = { ENV_NOTIFY_DELAY | ENV_NOTIFY_SUCCESS, 0 };
	struct envelope env;
	char *t;
	size_t l;

	(void)state;
	env_build(&env, "", "alice@example.org", "203.0.113.9", "my host",
	    "x%y", r, o, nt, 2);
	env.body = ENV_BODY_8BITMIME;
	env.smtputf8 = 1;
	env.ret = ENV_RET_HDRS;
	assert_int_equal(envelope_format(&env, &t, &l), 0);
	assert_string_equal(t, want);
	free(t);
	envelope_clear(&env);
}

/* Version 2 only when the message is to be signed; the domain is an
 * encoded value, the body hash 64 uppercase hex digits. */
static void
test_dkim_roundtrip(void **state)
{
	static const char want[] =
	    "outpost-envelope 2\n"
	    "qid 0J8Z3K4M5N6P7Q8R\n"
	    "arrival 1700000000\n"
	    "from alice@example.org\n"
	    "body 7bit\n"
	    "dkim example.org 000102030405060708090A0B0C0D0E0F"
	    "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF\n"
	    "rcpt bob@example.net\n"
	    ".\n";
	const char *r[1] = { "bob@example.net" };
	struct envelope env, back;
	char *t;
	size_t l, i;

	(void)state;
	env_build(&env, "alice@example.org", NULL, NULL, NULL, NULL, r, NULL,
	    NULL, 1);
	env.dkim_domain = strdup("example.org");
	for (i = 0; i < 16; i++) {
		env.dkim_bh[i] = (unsigned char)i;
		env.dkim_bh[16 + i] = (unsigned char)(0xf0 + i);
	}
	assert_int_equal(envelope_format(&env, &t, &l), 0);
	assert_string_equal(t, want);
	assert_int_equal(envelope_parse(t, l, &back), (ssize_t)l);
	assert_string_equal(back.dkim_domain, "example.org");
	assert_memory_equal(back.dkim_bh, env.dkim_bh, 32);
	envelope_clear(&back);
	free(t);
	/* an empty signing domain is refused, not written */
	free(env.dkim_domain);
	env.dkim_domain = strdup("");
	assert_int_equal(envelope_format(&env, &t, &l), -1);
	envelope_clear(&env);
}

static void
test_format_refuses(void **state)
{
	struct envelope env;
	const char *r[1] = { "" };
	char *t, *big;
	size_t l;

	(void)state;
	/* empty recipient */
	env_build(&env, "a@b", NULL, NULL, NULL, NULL, r, NULL, NULL, 1);
	assert_int_equal(envelope_format(&env, &t, &l), -1);
	assert_int_equal(errno, EINVAL);
	/* NEVER with another flag */
	free(env.rcpts[0].addr);
	env.rcpts[0].addr = strdup("x@y");
	env.rcpts[0].notify = ENV_NOTIFY_NEVER | ENV_NOTIFY_DELAY;
	assert_int_equal(envelope_format(&env, &t, &l), -1);
	env.rcpts[0].notify = 0;
	/* a value longer than the parser accepts */
	big = malloc(ENV_VALUE_MAX + 2);
	memset(big, 'a', ENV_VALUE_MAX + 1);
	big[ENV_VALUE_MAX + 1] = '\0';
	env.helo = big;
	assert_int_equal(envelope_format(&env, &t, &l), -1);
	big[ENV_VALUE_MAX] = '\0';	/* exactly the limit is fine */
	roundtrip(&env);
	/* bad queue id */
	env.qid[0] = 'u';
	assert_int_equal(envelope_format(&env, &t, &l), -1);
	envelope_clear(&env);
}

static void
test_parse_rejects(void **state)
{
#define H "outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\narrival 1\n"
#define H2 "outpost-envelope 2\nqid 0J8Z3K4M5N6P7Q8R\narrival 1\n"
#define BH64 "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
#define BH64U "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"
	static const char *const bad[] = {
		"",
		"outpost-envelope 3\nqid 0J8Z3K4M5N6P7Q8R\narrival 1\nfrom a\nrcpt b\n.\n",
		/* dkim only in version 2, and exactly "DOMAIN HEX64" */
		H "from a\ndkim example.org " BH64 "\nrcpt b\n.\n",
		H2 "from a\ndkim example.org\nrcpt b\n.\n",
		H2 "from a\ndkim <> " BH64 "\nrcpt b\n.\n",
		H2 "from a\ndkim example.org " BH64 "0\nrcpt b\n.\n",
		H2 "from a\ndkim example.org  " BH64 "\nrcpt b\n.\n",
		H2 "from a\ndkim example.org " BH64U "\nrcpt b\n.\n",
		H2 "from a\ndkim a " BH64 "\ndkim a " BH64 "\nrcpt b\n.\n",
		H "from a\nrcpt b\n",			/* no terminator */
		H "from a\nrcpt b\n.",			/* terminator w/o LF */
		H "from a\n.\n",			/* no recipient */
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\nfrom a\nrcpt b\n.\n",
		H "rcpt b\n.\n",			/* no from */
		H "from a\nfrom a\nrcpt b\n.\n",	/* duplicate */
		H "from a\nrcpt b\nbogus x\n.\n",	/* unknown key */
		H "from a\r\nrcpt b\n.\n",		/* CR */
		H "from a b\nrcpt c\n.\n",		/* space in value */
		H "from \nrcpt b\n.\n",			/* empty value */
		H "from a\nrcpt \n.\n",
		H "from a\nrcpt <>\n.\n",		/* empty recipient */
		H "from %61\nrcpt b\n.\n",		/* non-canonical %XX */
		H "from %2a\nrcpt b\n.\n",		/* lowercase hex */
		H "from %2\nrcpt b\n.\n",		/* short escape */
		H "from %00\nrcpt b\n.\n",		/* NUL */
		H "from a<b\nrcpt c\n.\n",		/* raw '<' */
		H "from a\tb\nrcpt c\n.\n",		/* tab */
		H "from a\xc3\xa9\nrcpt c\n.\n",	/* raw 8-bit */
		H "from a\nrcpt b notify=\n.\n",
		H "from a\nrcpt b notify=never,delay\n.\n",
		H "from a\nrcpt b notify=delay,delay\n.\n",
		H "from a\nrcpt b notify=delay,\n.\n",
		H "from a\nrcpt b notify=sometimes\n.\n",
		H "from a\nrcpt b notify=delay notify=delay\n.\n",
		H "from a\nrcpt b orcpt=x orcpt=y\n.\n",
		H "from a\nrcpt b  orcpt=x\n.\n",	/* double space */
		H "from a\nrcpt b orcpt=x \n.\n",	/* trailing space */
		H "from a\nrcpt b color=red\n.\n",
		H "from a\nbody 9bit\nrcpt b\n.\n",
		H "from a\nsmtputf8 2\nrcpt b\n.\n",
		H "from a\nsmtputf8 01\nrcpt b\n.\n",
		H "from a\nret some\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8\narrival 1\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8RR\narrival 1\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8r\narrival 1\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\narrival -1\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\narrival 01\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\narrival 99999999999999999999\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\nqid 0J8Z3K4M5N6P7Q8R\narrival 1x\nfrom a\nrcpt b\n.\n",
		"outpost-envelope 1\n\nqid 0J8Z3K4M5N6P7Q8R\narrival 1\nfrom a\nrcpt b\n.\n",
	};
	static const char good[] = H "from a\nrcpt b\n.\nbody";
	struct envelope env;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (envelope_parse(bad[i], strlen(bad[i]), &env) != -1)
			fail_msg("case %zu parsed: %s", i, bad[i]);
		assert_int_equal(errno, EBADMSG);
		assert_null(env.mail_from);
		assert_null(env.rcpts);
	}
	/* Every prefix of a good header is refused (truncation). */
	for (i = 0; i < sizeof(good) - 5; i++)
		assert_int_equal(envelope_parse(good, i, &env), -1);
	assert_int_equal(envelope_parse(good, sizeof(good) - 1, &env),
	    (ssize_t)(sizeof(good) - 5));
	assert_string_equal(env.mail_from, "a");
	envelope_clear(&env);
#undef H
}

/* Cheap fuzz: random mutations of a good header never crash and either
 * fail or parse into something that formats and re-parses identically. */
static void
test_parse_mutations(void **state)
{
	struct envelope env, env2;
	char *text, *buf, *t2;
	size_t len, l2;
	const char *r[2] = { "bob@example.net", "c d@x" };
	const char *o[2] = { "rfc822;bob@example.net", NULL };
	unsigned nt[2] = { ENV_NOTIFY_FAILURE, 0 };
	unsigned seed = 12345;
	int iter;

	(void)state;
	env_build(&env, "a%b@c", "u", "1.2.3.4", "h", "e", r, o, nt, 2);
	assert_int_equal(envelope_format(&env, &text, &len), 0);
	envelope_clear(&env);
	buf = malloc(len);
	for (iter = 0; iter < 200000; iter++) {
		int k, nmut = 1 + (int)(rand_r(&seed) % 3);
		size_t blen = len;

		memcpy(buf, text, len);
		for (k = 0; k < nmut; k++) {
			size_t at = (size_t)rand_r(&seed) % blen;

			switch (rand_r(&seed) % 3) {
			case 0:
				buf[at] = (char)(rand_r(&seed) & 0xff);
				break;
			case 1:
				buf[at] = "%<> \n.=,:"[rand_r(&seed) % 9];
				break;
			default:
				blen = at;	/* truncate */
				break;
			}
			if (blen == 0)
				break;
		}
		if (envelope_parse(buf, blen, &env) < 0)
			continue;
		assert_int_equal(envelope_format(&env, &t2, &l2), 0);
		assert_true(envelope_parse(t2, l2, &env2) == (ssize_t)l2);
		assert_env_equal(&env, &env2);
		free(t2);
		envelope_clear(&env);
		envelope_clear(&env2);
	}
	free(buf);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_dkim_roundtrip),
		cmocka_unit_test(test_roundtrip_table),
		cmocka_unit_test(test_roundtrip_many_rcpts),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
