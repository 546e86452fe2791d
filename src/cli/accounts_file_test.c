/*
 * accounts_file_test — the sender's accounts file parser: default and
 * single-account selection, provider presets and their overrides, port /
 * tls defaults, FILE:LINE errors (unknown key, duplicate section, stored
 * password, bad port), and tls = none needing insecure_plaintext.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/accounts_file.c"

static char	 path[64];

static void
put(const char *text)
{
	FILE	*fp;

	snprintf(path, sizeof(path), "/tmp/acct-test-%d", (int)getpid());
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int
load(const char *text, const char *name, struct acct *a, char *err)
{
	int	 rc;

	put(text);
	acct_init(a);
	rc = acct_file_load(path, name, a, err, 512);
	unlink(path);
	return rc;
}

static void
test_default_and_preset(void **state)
{
	struct acct	 a;
	char		 err[512];

	(void)state;
	assert_int_equal(load("default = work\nqualify_domain = ex.org\n\n"
	    "[home]\nhost = h.example\n\n[work]\nprovider = gmail\n"
	    "user = a@ex.org\npassword_command = pass x\n", NULL, &a, err), 0);
	assert_string_equal(a.name, "work");
	assert_string_equal(a.qualify_domain, "ex.org");
	assert_int_equal(acct_finish(&a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "smtp.gmail.com");
	assert_int_equal(a.port, 587);
	assert_int_equal(a.tls, ACCT_TLS_STARTTLS);
	acct_free(&a);

	/* explicit keys win over the preset */
	assert_int_equal(load("[y]\nprovider = yahoo\nport = 587\n"
	    "tls = starttls\n", NULL, &a, err), 0);
	assert_int_equal(acct_finish(&a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "smtp.mail.yahoo.com");
	assert_int_equal(a.port, 587);
	assert_int_equal(a.tls, ACCT_TLS_STARTTLS);
	acct_free(&a);

	/* port 465 means implicit TLS, and implicit means 465 */
	assert_int_equal(load("[a]\nhost = h\nport = 465\n", NULL, &a, err),
	    0);
	assert_int_equal(acct_finish(&a, err, sizeof(err)), 0);
	assert_int_equal(a.tls, ACCT_TLS_IMPLICIT);
	acct_free(&a);
	assert_int_equal(load("[a]\nhost = h\ntls = ssl\n", "a", &a, err), 0);
	assert_int_equal(acct_finish(&a, err, sizeof(err)), 0);
	assert_int_equal(a.port, 465);
	acct_free(&a);
	assert_non_null(acct_provider_find("Office365"));
	assert_null(acct_provider_find("nope"));
}

static void
test_errors(void **state)
{
	struct acct	 a;
	char		 err[512];

	(void)state;
	assert_int_equal(load("[a]\nhost = h\nbogus = 1\n", NULL, &a, err),
	    -1);
	assert_non_null(strstr(err, ":3: unknown key \"bogus\""));
	acct_free(&a);
	assert_int_equal(load("[a]\n[a]\n", NULL, &a, err), -1);
	assert_non_null(strstr(err, ":2: account [a] appears twice"));
	acct_free(&a);
	assert_int_equal(load("[a]\npassword = hunter2\n", NULL, &a, err), -1);
	assert_non_null(strstr(err, "not kept in this file"));
	acct_free(&a);
	assert_int_equal(load("[a]\nport = 70000\n", NULL, &a, err), -1);
	assert_non_null(strstr(err, ":2: port"));
	acct_free(&a);
	assert_int_equal(load("host = h\n", NULL, &a, err), -1);
	assert_non_null(strstr(err, "inside an [account]"));
	acct_free(&a);
	assert_int_equal(load("[a]\nprovider = aolx\n", NULL, &a, err), -1);
	acct_free(&a);
	/* two accounts, no default: say how to choose */
	assert_int_equal(load("[a]\nhost = h\n[b]\nhost = i\n", NULL, &a, err),
	    -1);
	assert_non_null(strstr(err, "default = NAME"));
	acct_free(&a);
	assert_int_equal(load("[a]\nhost = h\n", "zz", &a, err), -1);
	assert_non_null(strstr(err, "no account [zz]"));
	acct_free(&a);
	/* tls = none only with insecure_plaintext */
	assert_int_equal(load("[a]\nhost = h\ntls = none\n", NULL, &a, err),
	    0);
	assert_int_equal(acct_finish(&a, err, sizeof(err)), -1);
	a.insecure_plaintext = 1;
	assert_int_equal(acct_finish(&a, err, sizeof(err)), 0);
	assert_int_equal(a.port, 587);
	acct_free(&a);
	/* a missing file is 1, not an error */
	acct_init(&a);
	assert_int_equal(acct_file_load("/nonexistent/accounts", NULL, &a,
	    err, sizeof(err)), 1);
	acct_free(&a);
	/* no host at all */
	assert_int_equal(load("[a]\nuser = u\n", NULL, &a, err), 0);
	assert_int_equal(acct_finish(&a, err, sizeof(err)), -1);
	acct_free(&a);
}

static void
test_tilde(void **state)
{
	struct acct	 a;
	char		 err[512];

	(void)state;
	setenv("HOME", "/home/x", 1);
	assert_int_equal(load("[a]\nhost = h\npassword_file = ~/pw\n", NULL,
	    &a, err), 0);
	assert_string_equal(a.password_file, "/home/x/pw");
	acct_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_and_preset),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tilde),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
