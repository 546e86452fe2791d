/*
 * accounts_test — the SQLite account store: address syntax, schema and file
 * mode, user add/del/passwd/get/list, password verification (including the
 * dummy-hash path and rehash on login).  Uses the minimum argon2id cost to
 * stay fast.  Includes accounts.c to look at the dummy hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/accounts.c"

static const struct pwhash_params fast = {
	crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN
};

struct fixture {
	char	 dir[64];
	char	 path[128];
	struct accounts *a;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/outpost-acct-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/accounts.db", f->dir);
	if ((f->a = accounts_open(f->path, 1, err, sizeof(err))) == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	accounts_close(f->a);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
add(struct accounts *a, const char *email, const char *pw)
{
	char err[256];
	int rc;

	rc = accounts_user_add(a, email, pw, strlen(pw), &fast, err,
	    sizeof(err));
	if (rc != ACCT_OK)
		fail_msg("add %s: %d %s", email, rc, err);
}

static int
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---------------------------------------------------------------- */

static void
test_addr_valid(void **state)
{
	static const struct {
		const char	*addr;
		int		 ok;
	} cases[] = {
		{ "me@example.org", 1 },
		{ "Me.Too+tag@Example.ORG", 1 },
		{ "a@localhost", 1 },
		{ "x@b", 1 },
		{ "o'brien@example.ie", 1 },
		{ "user_name-1!#$%&*/=?^`{|}~@ex-ample.co.uk", 1 },
		{ "j\xc3\xbcrgen@example.de", 1 },	/* UTF-8 local part */
		{ "me@123.example", 1 },
		{ "", 0 },
		{ "me", 0 },
		{ "@example.org", 0 },
		{ "me@", 0 },
		{ "me@@example.org", 0 },
		{ "me@ex@ample.org", 0 },
		{ "m e@example.org", 0 },
		{ " me@example.org", 0 },	/* valid only after trimming */
		{ "me@example.org ", 0 },
		{ "<me@example.org>", 0 },
		{ "me@exa mple.org", 0 },
		{ "me\t@example.org", 0 },
		{ "me\r\n@example.org", 0 },
		{ "me\x7f@example.org", 0 },
		{ ".me@example.org", 0 },
		{ "me.@example.org", 0 },
		{ "m..e@example.org", 0 },
		{ "\"quoted\"@example.org", 0 },
		{ "me,you@example.org", 0 },
		{ "me@example..org", 0 },
		{ "me@.example.org", 0 },
		{ "me@example.org.", 0 },
		{ "me@-example.org", 0 },
		{ "me@example-.org", 0 },
		{ "me@exa_mple.org", 0 },
		{ "me@[127.0.0.1]", 0 },
		{ "me@b\xc3\xbc" "cher.de", 0 },		/* U-labels: use xn-- */
		{ "j\xc3@example.de", 0 },		/* truncated UTF-8 */
		{ "j\xc0\xaf@example.de", 0 },		/* overlong */
		{ "j\xed\xa0\x80@example.de", 0 },	/* surrogate */
		{ "j\xff@example.de", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = accounts_addr_valid(cases[i].addr) == 0;

		if (got != cases[i].ok)
			fail_msg("case %zu \"%s\": valid=%d want %d", i,
			    cases[i].addr, got, cases[i].ok);
	}
	assert_int_not_equal(accounts_addr_valid(NULL), 0);
}

static void
test_addr_lengths(void **state)
{
	char buf[400];

	(void)state;
	/* local part: 64 ok, 65 not */
	memset(buf, 'l', 64);
	strcpy(buf + 64, "@example.org");
	assert_int_equal(accounts_addr_valid(buf), 0);
	memset(buf, 'l', 65);
	strcpy(buf + 65, "@example.org");
	assert_int_not_equal(accounts_addr_valid(buf), 0);

	/* label: 63 ok, 64 not */
	strcpy(buf, "me@");
	memset(buf + 3, 'd', 63);
	strcpy(buf + 66, ".org");
	assert_int_equal(accounts_addr_valid(buf), 0);
	memset(buf + 3, 'd', 64);
	strcpy(buf + 67, ".org");
	assert_int_not_equal(accounts_addr_valid(buf), 0);

	/* whole address: 254 ok, 255 not (labels of 9 + dot) */
	{
		size_t n = 3, want = 254;

		strcpy(buf, "me@");
		while (n < want) {
			size_t k = want - n >= 10 ? 9 : want - n;

			memset(buf + n, 'a', k);
			n += k;
			if (n < want)
				buf[n++] = '.';
		}
		buf[n] = '\0';
		assert_int_equal(strlen(buf), 254);
		assert_int_equal(accounts_addr_valid(buf), 0);
		buf[n] = 'a';
		buf[n + 1] = '\0';
		assert_int_not_equal(accounts_addr_valid(buf), 0);
	}
}

static void
test_addr_normalize(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;	/* NULL: invalid */
	} cases[] = {
		{ "me@example.org", "me@example.org" },
		{ "  Me@EXAMPLE.Org\t", "Me@example.org" },
		{ "me@example.org\r\n", "me@example.org" },
		{ "me", NULL },
		{ "  ", NULL },
		{ "me @example.org", NULL },
	};
	char out[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = accounts_addr_normalize(cases[i].in, out, sizeof(out));

		if (cases[i].out == NULL) {
			assert_int_equal(rc, -1);
			assert_string_equal(out, "");
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].out);
		}
	}
	/* Too small an output buffer. */
	assert_int_equal(accounts_addr_normalize("me@example.org", out, 5), -1);
}

static void
test_open_schema_mode(void **state)
{
	struct fixture *f = *state;
	char path[160], err[256];
	struct accounts *a;
	struct stat sb;
	mode_t old;

	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'table' AND name = 'users'"), 1);

	/* 0600 even with a permissive umask. */
	snprintf(path, sizeof(path), "%s/mode.db", f->dir);
	old = umask(0);
	a = accounts_open(path, 1, err, sizeof(err));
	umask(old);
	assert_non_null(a);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	add(a, "me@example.org", "pw");
	accounts_close(a);

	/* Re-open without create: data is there, schema not redone. */
	a = accounts_open(path, 0, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(accounts_user_get(a, "me@example.org", NULL, err,
	    sizeof(err)), ACCT_OK);
	accounts_close(a);
	unlink(path);
	snprintf(err, sizeof(err), "%s-wal", path);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", path);
	unlink(err);

	/* Missing file without create: error, no file made. */
	snprintf(path, sizeof(path), "%s/missing.db", f->dir);
	err[0] = '\0';
	assert_null(accounts_open(path, 0, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_int_equal(stat(path, &sb), -1);

	/* Not a database. */
	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	{
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fputs("this is not an sqlite database, not at all....", fp);
		fclose(fp);
	}
	assert_null(accounts_open(path, 0, err, sizeof(err)));
	unlink(path);

	assert_null(accounts_open(NULL, 1, err, sizeof(err)));
	assert_null(accounts_open("", 1, err, sizeof(err)));
}

static void
test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	accounts_close(f->a);
	f->a = NULL;
	sql_exec(f->path, "PRAGMA user_version = 99");
	assert_null(accounts_open(f->path, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
	sql_exec(f->path, "PRAGMA user_version = 3");
	f->a = accounts_open(f->path, 0, err, sizeof(err));
	assert_non_null(f->a);
}

static int
collect(void *ctx, const struct account_info *ai)
{
	char *buf = ctx;

	strcat(buf, ai->email);
	strcat(buf, ai->enabled ? ";" : "(off);");
	return 0;
}

static int
stop_after_one(void *ctx, const struct account_info *ai)
{
	(void)ai;
	(*(int *)ctx)++;
	return 1;
}

static void
test_user_crud(void **state)
{
	struct fixture *f = *state;
	struct accounts *a = f->a;
	struct account_info ai;
	char err[256], list[1024], big[1100];
	time_t now = time(NULL);
	int calls = 0;

	add(a, "bob@Example.ORG", "pw1");
	add(a, "alice@example.org", "pw2");
	add(a, "carol@example.net", "pw3");

	/* Duplicates, case-insensitively in both parts. */
	assert_int_equal(accounts_user_add(a, "BOB@example.org", "x", 1, &fast,
	    err, sizeof(err)), ACCT_EXISTS);
	assert_int_equal(accounts_user_add(a, " bob@example.org ", "x", 1,
	    &fast, err, sizeof(err)), ACCT_EXISTS);

	/* Bad input. */
	assert_int_equal(accounts_user_add(a, "bob", "x", 1, &fast, err,
	    sizeof(err)), ACCT_BADADDR);
	assert_int_equal(accounts_user_add(a, "dave@example.org", "", 0, &fast,
	    err, sizeof(err)), ACCT_BADPASS);
	memset(big, 'p', sizeof(big));
	assert_int_equal(accounts_user_add(a, "dave@example.org", big, 1025,
	    &fast, err, sizeof(err)), ACCT_BADPASS);
	assert_int_equal(accounts_user_add(a, "dave@example.org", big, 1024,
	    &fast, err, sizeof(err)), ACCT_OK);

	/* Get: stored with the domain lower-cased. */
	assert_int_equal(accounts_user_get(a, "BOB@EXAMPLE.ORG", &ai, err,
	    sizeof(err)), ACCT_OK);
	assert_string_equal(ai.email, "bob@example.org");
	assert_int_equal(ai.enabled, 1);
	assert_true(ai.created >= now - 5 && ai.created <= now + 5);
	assert_int_equal(ai.created, ai.updated);
	assert_int_equal(accounts_user_get(a, "nobody@example.org", &ai, err,
	    sizeof(err)), ACCT_NOUSER);
	assert_int_equal(accounts_user_get(a, "nobody", &ai, err,
	    sizeof(err)), ACCT_BADADDR);

	/* List in address order. */
	list[0] = '\0';
	assert_int_equal(accounts_user_list(a, collect, list, err,
	    sizeof(err)), 4);
	assert_string_equal(list, "alice@example.org;bob@example.org;"
	    "carol@example.net;dave@example.org;");
	assert_int_equal(accounts_user_list(a, stop_after_one, &calls, err,
	    sizeof(err)), 1);
	assert_int_equal(calls, 1);

	/* Passwd. */
	assert_int_equal(accounts_user_passwd(a, "alice@example.org", "new", 3,
	    &fast, err, sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_verify(a, "alice@example.org", "new", 3,
	    &fast, NULL, 0), AUTH_OK);
	assert_int_equal(accounts_verify(a, "alice@example.org", "pw2", 3,
	    &fast, NULL, 0), AUTH_DENIED);
	assert_int_equal(accounts_user_passwd(a, "zed@example.org", "new", 3,
	    &fast, err, sizeof(err)), ACCT_NOUSER);
	assert_int_equal(accounts_user_passwd(a, "alice@example.org", "", 0,
	    &fast, err, sizeof(err)), ACCT_BADPASS);

	/* Del. */
	assert_int_equal(accounts_user_del(a, "Carol@EXAMPLE.net", err,
	    sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_user_del(a, "carol@example.net", err,
	    sizeof(err)), ACCT_NOUSER);
	assert_int_equal(accounts_user_del(a, "carol", err, sizeof(err)),
	    ACCT_BADADDR);
	list[0] = '\0';
	assert_int_equal(accounts_user_list(a, collect, list, err,
	    sizeof(err)), 3);
	assert_string_equal(list, "alice@example.org;bob@example.org;"
	    "dave@example.org;");

	/* A deleted address can be added again. */
	add(a, "carol@example.net", "again");
}

static void
test_verify(void **state)
{
	struct fixture *f = *state;
	struct accounts *a = f->a;
	char canon[256], sql[256];
	static const char pw[] = "correct horse";
	static const char nul_pw[] = "with\0nul";

	add(a, "me@Example.org", pw);
	assert_string_equal(a->dummy, "");

	static const struct {
		const char	*user;
		const char	*pw;
		size_t		 len;
		enum auth_result want;
	} cases[] = {
		{ "me@example.org", pw, sizeof(pw) - 1, AUTH_OK },
		{ "ME@EXAMPLE.ORG", pw, sizeof(pw) - 1, AUTH_OK },
		{ " me@example.org", pw, sizeof(pw) - 1, AUTH_OK },
		{ "me@example.org", "correct horsE", 13, AUTH_DENIED },
		{ "me@example.org", pw, sizeof(pw) - 2, AUTH_DENIED },
		{ "me@example.org", "", 0, AUTH_DENIED },
		{ "me", pw, sizeof(pw) - 1, AUTH_DENIED },
		{ "you@example.org", pw, sizeof(pw) - 1, AUTH_DENIED },
		{ "me@example.org.evil", pw, sizeof(pw) - 1, AUTH_DENIED },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(canon, 'X', sizeof(canon));
		enum auth_result r = accounts_verify(a, cases[i].user,
		    cases[i].pw, cases[i].len, &fast, canon, sizeof(canon));

		if (r != cases[i].want)
			fail_msg("case %zu (%s): got %d want %d", i,
			    cases[i].user, r, cases[i].want);
		if (r == AUTH_OK)
			assert_string_equal(canon, "me@example.org");
		else
			assert_string_equal(canon, "");
	}
	/* Unknown users went through the dummy hash, at the same cost. */
	assert_true(strncmp(a->dummy, "$argon2id$", 10) == 0);
	assert_int_equal(a->dummy_pp.opslimit, fast.opslimit);

	/* Passwords are bytes: an embedded NUL is part of it. */
	assert_int_equal(accounts_user_passwd(a, "me@example.org", nul_pw,
	    sizeof(nul_pw) - 1, &fast, NULL, 0), ACCT_OK);
	assert_int_equal(accounts_verify(a, "me@example.org", nul_pw,
	    sizeof(nul_pw) - 1, &fast, NULL, 0), AUTH_OK);
	assert_int_equal(accounts_verify(a, "me@example.org", "with", 4,
	    &fast, NULL, 0), AUTH_DENIED);

	/* Disabled account: denied even with the right password. */
	snprintf(sql, sizeof(sql), "UPDATE users SET enabled = 0");
	sql_exec(f->path, sql);
	assert_int_equal(accounts_verify(a, "me@example.org", nul_pw,
	    sizeof(nul_pw) - 1, &fast, canon, sizeof(canon)), AUTH_DENIED);
	assert_string_equal(canon, "");
}

static void
test_rehash_on_login(void **state)
{
	struct fixture *f = *state;
	struct pwhash_params stronger = fast;
	char *before, *after;

	add(f->a, "me@example.org", "pw");
	stronger.opslimit = fast.opslimit + 1;
	before = sqlite3_mprintf("%s", "");
	{
		sqlite3 *db;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
		    "SELECT pwhash FROM users", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		sqlite3_free(before);
		before = sqlite3_mprintf("%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);

		/* A wrong password must not trigger a rehash. */
		assert_int_equal(accounts_verify(f->a, "me@example.org", "no",
		    2, &stronger, NULL, 0), AUTH_DENIED);
		assert_int_equal(accounts_verify(f->a, "me@example.org", "pw",
		    2, &stronger, NULL, 0), AUTH_OK);

		assert_int_equal(sqlite3_prepare_v2(db,
		    "SELECT pwhash FROM users", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		after = sqlite3_mprintf("%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	assert_string_not_equal(before, after);
	assert_int_equal(crypto_pwhash_str_needs_rehash(before,
	    stronger.opslimit, stronger.memlimit), 1);
	assert_int_equal(crypto_pwhash_str_needs_rehash(after,
	    stronger.opslimit, stronger.memlimit), 0);
	/* Still the same password. */
	assert_int_equal(accounts_verify(f->a, "me@example.org", "pw", 2,
	    &stronger, NULL, 0), AUTH_OK);
	sqlite3_free(before);
	sqlite3_free(after);
}

static void
test_migration_from_empty(void **state)
{
	struct fixture *f = *state;
	char path[160], err[256];
	struct accounts *a;

	/* An existing, empty SQLite file (version 0) gets the schema. */
	snprintf(path, sizeof(path), "%s/v0.db", f->dir);
	sql_exec(path, "CREATE TABLE other(x)");
	assert_int_equal(sql_int(path, "PRAGMA user_version"), 0);
	a = accounts_open(path, 0, err, sizeof(err));
	assert_non_null(a);
	accounts_close(a);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), SCHEMA_VERSION);
	unlink(path);
	snprintf(err, sizeof(err), "%s-wal", path);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", path);
	unlink(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_valid),
		cmocka_unit_test(test_addr_lengths),
		cmocka_unit_test(test_addr_normalize),
		cmocka_unit_test_setup_teardown(test_open_schema_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_crud, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rehash_on_login, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_empty,
		    setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
