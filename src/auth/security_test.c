/*
 * security_test — TOTP (RFC 6238 appendix B vectors, RFC 4226 appendix D),
 * base32, app password normalisation and hashing, the argon2id success
 * cache, the failed-login throttle, the quota windows, and the account
 * store's app password / 2FA / alias / verify paths on a temporary
 * database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>

#include "auth/accounts.h"
#include "auth/apppass.h"
#include "auth/authcache.h"
#include "auth/quota.h"
#include "auth/throttle.h"
#include "auth/totp.h"

static void
test_hotp_rfc4226(void **state)
{
	static const long want[10] = { 755224, 287082, 359152, 969429,
	    338314, 254676, 287922, 162583, 399871, 520489 };
	const unsigned char *k = (const unsigned char *)"12345678901234567890";
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		assert_int_equal(totp_hotp(k, 20, (uint64_t)i, 6), want[i]);
}

static void
test_totp_rfc6238(void **state)
{
	/* Appendix B, SHA-1 column, 8 digits */
	static const struct { int64_t t; long code; } v[] = {
		{ 59, 94287082 }, { 1111111109, 7081804 },
		{ 1111111111, 14050471 }, { 1234567890, 89005924 },
		{ 2000000000, 69279037 }, { 20000000000LL, 65353130 },
	};
	const unsigned char *k = (const unsigned char *)"12345678901234567890";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(totp_hotp(k, 20, (uint64_t)(v[i].t / 30), 8),
		    v[i].code);
	assert_int_equal(totp_hotp(k, 20, 1, 5), -1);
	assert_int_equal(totp_hotp(NULL, 0, 1, 6), -1);
}

static void
test_totp_check_window_replay(void **state)
{
	const unsigned char *k = (const unsigned char *)"12345678901234567890";
	char code[16];
	time_t now = 1111111111;
	int64_t step = now / 30, got;

	(void)state;
	/* current, previous and next steps match; two back does not */
	snprintf(code, sizeof(code), "%06ld", totp_hotp(k, 20, (uint64_t)step, 6));
	assert_int_equal(totp_check(k, 20, code, now, 0), step);
	snprintf(code, sizeof(code), "%06ld", totp_hotp(k, 20,
	    (uint64_t)step - 1, 6));
	assert_int_equal(totp_check(k, 20, code, now, 0), step - 1);
	snprintf(code, sizeof(code), "%06ld", totp_hotp(k, 20,
	    (uint64_t)step + 1, 6));
	assert_int_equal(totp_check(k, 20, code, now, 0), step + 1);
	snprintf(code, sizeof(code), "%06ld", totp_hotp(k, 20,
	    (uint64_t)step - 2, 6));
	got = totp_check(k, 20, code, now, 0);
	assert_true(got == -1 || got != step - 2);
	/* replay: a step at or before the last used one is refused */
	snprintf(code, sizeof(code), "%06ld", totp_hotp(k, 20, (uint64_t)step, 6));
	assert_int_equal(totp_check(k, 20, code, now, step), -1);
	/* syntax */
	assert_int_equal(totp_check(k, 20, "12345", now, 0), -1);
	assert_int_equal(totp_check(k, 20, "1234567", now, 0), -1);
	assert_int_equal(totp_check(k, 20, "12a456", now, 0), -1);
	assert_int_equal(totp_check(k, 20, NULL, now, 0), -1);
}

static void
test_base32(void **state)
{
	unsigned char out[64];
	char txt[64];

	(void)state;
	/* RFC 4648 10 (without padding) */
	assert_int_equal(totp_b32_encode((const unsigned char *)"foobar", 6,
	    txt, sizeof(txt)), 10);
	assert_string_equal(txt, "MZXW6YTBOI");
	assert_int_equal(totp_b32_encode((const unsigned char *)"f", 1, txt,
	    sizeof(txt)), 2);
	assert_string_equal(txt, "MY");
	assert_int_equal(totp_b32_decode("mzxw6ytboi", out, sizeof(out)), 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(totp_b32_decode("MZXW 6YTB OI======", out,
	    sizeof(out)), 6);
	assert_int_equal(totp_b32_decode("MZ1W", out, sizeof(out)), -1);
	assert_int_equal(totp_b32_encode((const unsigned char *)"foobar", 6,
	    txt, 5), -1);
	assert_int_equal(totp_b32_decode("MZXW6YTBOI", out, 3), -1);
}

static void
test_apppass_normalize(void **state)
{
	char out[APPPASS_LEN + 1], raw[APPPASS_LEN + 1];
	char shown[APPPASS_SHOWN_LEN + 1];
	int i;

	(void)state;
	assert_int_equal(apppass_normalize("abcd efgh ijkl mnop", 19, out), 0);
	assert_string_equal(out, "abcdefghijklmnop");
	assert_int_equal(apppass_normalize("ABCDEFGHIJKLMNOP", 16, out), 0);
	assert_string_equal(out, "abcdefghijklmnop");
	assert_int_equal(apppass_normalize(" abcd\tefghijkl mnop ", 20, out), 0);
	assert_int_equal(apppass_normalize("abcdefghijklmno", 15, out), -1);
	assert_string_equal(out, "");
	assert_int_equal(apppass_normalize("abcdefghijklmnopq", 17, out), -1);
	assert_int_equal(apppass_normalize("abcdefghijklmno1", 16, out), -1);
	assert_int_equal(apppass_normalize("abcdefgh\0jklmnop", 16, out), -1);
	assert_int_equal(apppass_normalize("correct horse", 13, out), -1);
	for (i = 0; i < 20; i++) {
		apppass_generate(raw, shown);
		assert_int_equal(strlen(raw), 16);
		assert_int_equal(strlen(shown), 19);
		assert_true(shown[4] == ' ' && shown[9] == ' ' && shown[14] == ' ');
		assert_int_equal(apppass_normalize(shown, strlen(shown), out), 0);
		assert_string_equal(out, raw);
	}
}

static void
test_apppass_hash(void **state)
{
	unsigned char k1[32], k2[32], sub[32], h1[32], h2[32], h3[32];

	(void)state;
	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	assert_int_equal(apppass_hash(k1, "abcdefghijklmnop", h1), 0);
	assert_int_equal(apppass_hash(k1, "abcdefghijklmnop", h2), 0);
	assert_memory_equal(h1, h2, 32);
	assert_int_equal(apppass_hash(k2, "abcdefghijklmnop", h3), 0);
	assert_memory_not_equal(h1, h3, 32);
	assert_int_equal(apppass_hash(k1, "abcdefghijklmnoq", h3), 0);
	assert_memory_not_equal(h1, h3, 32);
	serverkey_derive(k1, SERVERKEY_APPPASS, sub);
	serverkey_derive(k1, SERVERKEY_TOTP, h3);
	assert_memory_not_equal(sub, h3, 32);
}

static void
test_serverkey_file(void **state)
{
	char dir[] = "/tmp/outpost-sk-XXXXXX", path[128], err[256];
	unsigned char a[32], b[32];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret.key", dir);
	assert_int_equal(serverkey_load(path, a, err, sizeof(err)), 0);
	assert_int_equal(serverkey_load(path, b, err, sizeof(err)), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(access(path, R_OK), 0);
	unlink(path);
	/* a wrong-size file is refused */
	{
		FILE *fp = fopen(path, "w");
		fputs("short", fp);
		fclose(fp);
	}
	assert_int_equal(serverkey_load(path, a, err, sizeof(err)), -1);
	unlink(path);
	rmdir(dir);
}

static void
test_authcache(void **state)
{
	struct authcache *c = authcache_new(16, 60);
	unsigned char k1[32], k2[32], k3[32];
	int i;

	(void)state;
	assert_non_null(c);
	authcache_key(c, 1, "$argon2id$h1", "pw", 2, k1);
	authcache_key(c, 1, "$argon2id$h2", "pw", 2, k2);	/* new hash */
	authcache_key(c, 2, "$argon2id$h1", "pw", 2, k3);	/* other user */
	assert_memory_not_equal(k1, k2, 32);
	assert_memory_not_equal(k1, k3, 32);
	assert_int_equal(authcache_lookup(c, k1, 1000), 0);
	authcache_insert(c, k1, 1000);
	assert_int_equal(authcache_lookup(c, k1, 1000), 1);
	assert_int_equal(authcache_lookup(c, k2, 1000), 0);
	assert_int_equal(authcache_lookup(c, k1, 1060), 0);	/* TTL */
	/* bounded: many inserts never exceed the slots */
	for (i = 0; i < 1000; i++) {
		authcache_key(c, i, "h", "pw", 2, k3);
		authcache_insert(c, k3, 2000);
	}
	assert_true(authcache_count(c, 2000) <= 16);
	authcache_free(c);
	c = authcache_new(16, 0);	/* off */
	authcache_insert(c, k1, 1000);
	assert_int_equal(authcache_lookup(c, k1, 1000), 0);
	authcache_free(c);
}

static void
test_throttle(void **state)
{
	struct throttle *t = throttle_new(1000);
	int retry;

	(void)state;
	assert_non_null(t);
	/* per address */
	assert_int_equal(throttle_check(t, "a@x.org", "192.0.2.1", 3, 60, 100,
	    &retry), THR_OK);
	throttle_fail(t, "a@x.org", "192.0.2.1", 60, 100);
	throttle_fail(t, "b@x.org", "192.0.2.1", 60, 101);
	assert_int_equal(throttle_fail(t, "c@x.org", "192.0.2.1", 60, 102), 3);
	assert_int_equal(throttle_check(t, "d@x.org", "192.0.2.1", 3, 60, 103,
	    &retry), THR_ADDR);
	assert_int_equal(retry, 57);
	/* the window ends */
	assert_int_equal(throttle_check(t, "d@x.org", "192.0.2.1", 3, 60, 160,
	    &retry), THR_OK);

	/* per account from unknown addresses; known ones pass */
	throttle_success(t, "Real@X.org", "198.51.100.7", 200);
	throttle_fail(t, "real@x.org", "203.0.113.1", 60, 201);
	throttle_fail(t, "real@x.org", "203.0.113.2", 60, 201);
	throttle_fail(t, "real@x.org", "203.0.113.3", 60, 201);
	assert_int_equal(throttle_check(t, "real@x.org", "203.0.113.4", 3, 60,
	    202, NULL), THR_ACCOUNT);
	assert_int_equal(throttle_check(t, "REAL@x.org", "198.51.100.7", 3, 60,
	    202, NULL), THR_OK);
	assert_int_equal(throttle_check(t, "other@x.org", "203.0.113.4", 3, 60,
	    202, NULL), THR_OK);
	/* per (account, address), cleared by a success */
	throttle_fail(t, "p@x.org", "198.51.100.9", 60, 300);
	throttle_fail(t, "p@x.org", "198.51.100.9", 60, 300);
	throttle_success(t, "p@x.org", "198.51.100.9", 301);
	throttle_fail(t, "p@x.org", "198.51.100.9", 60, 302);
	assert_int_equal(throttle_check(t, "p@x.org", "198.51.100.9", 3, 60,
	    303, NULL), THR_ADDR);	/* address count is 3 still */
	throttle_free(t);

	/* bounded */
	t = throttle_new(16);
	for (retry = 0; retry < 500; retry++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.%d.%d", retry / 256, retry % 256);
		throttle_fail(t, "", ip, 60, 100);
	}
	assert_true(throttle_size(t) <= 16);
	throttle_free(t);
}

static void
test_quota_windows(void **state)
{
	char err[128];
	struct quota *q = quota_open(NULL, 5, 100, err, sizeof(err));
	struct quota_limits lim = { 2, 3, 1, 3 };
	struct usage_row u;
	time_t day0 = 20000 * 86400 + 3600 * 5;

	(void)state;
	assert_non_null(q);
	assert_int_equal(quota_check_mail(q, "a@x.org", &lim, day0), QUOTA_OK);
	assert_int_equal(quota_check_rcpt(q, "a@x.org", &lim, 3, day0),
	    QUOTA_OK);
	assert_int_equal(quota_check_rcpt(q, "a@x.org", &lim, 4, day0),
	    QUOTA_DAILY);
	quota_count(q, "a@x.org", 1, day0);
	/* hourly: 1 per hour */
	assert_int_equal(quota_check_mail(q, "a@x.org", &lim, day0 + 10),
	    QUOTA_HOURLY);
	assert_int_equal(quota_check_mail(q, "a@x.org", &lim, day0 + 3600),
	    QUOTA_OK);
	quota_count(q, "a@x.org", 1, day0 + 3600);
	/* daily: 2 */
	assert_int_equal(quota_check_mail(q, "A@x.org", &lim, day0 + 7200),
	    QUOTA_DAILY);
	quota_usage(q, "a@x.org", day0 + 7200, &u);
	assert_int_equal(u.messages, 2);
	assert_int_equal(u.recipients, 2);
	assert_int_equal(u.quota_hits, 3);	/* rcpt, hourly, daily */
	/* three hits: held */
	assert_int_equal(quota_check_mail(q, "a@x.org", &lim, day0 + 7200),
	    QUOTA_HELD);
	/* release through the store's flag */
	quota_set_held(q, "a@x.org", 0);	/* pending write: kept */
	assert_int_equal(quota_check_mail(q, "a@x.org", &lim, day0 + 7200),
	    QUOTA_HELD);
	/* next day: fresh counters (the hold stays until released) */
	quota_usage(q, "a@x.org", day0 + 86400, &u);
	assert_int_equal(u.messages, 0);
	/* networks are never held */
	assert_int_equal(quota_check_mail(q, "net:10.0.0.0/8", &lim, day0),
	    QUOTA_OK);
	quota_close(q);
}

static void
test_store_security(void **state)
{
	char dir[] = "/tmp/outpost-acct-XXXXXX", path[128], err[256];
	char shown[32], norm[APPPASS_LEN + 1], code[16];
	unsigned char key[32], sec[20];
	struct pwhash_params fast = { 1, 8192 };
	struct verify_out vo;
	struct accounts *a;
	struct authcache *c = authcache_new(64, 60);
	char *blob;
	int64_t step;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.db", dir);
	assert_non_null(a = accounts_open(path, 1, err, sizeof(err)));
	memset(key, 7, sizeof(key));
	accounts_set_key(a, key);
	assert_int_equal(accounts_user_add(a, "me@x.org", "pw", 2, &fast, err,
	    sizeof(err)), ACCT_OK);

	/* app password */
	assert_int_equal(accounts_apppass_add(a, "me@x.org", "phone", shown,
	    sizeof(shown), err, sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_apppass_add(a, "me@x.org", "phone", shown,
	    sizeof(shown), err, sizeof(err)), ACCT_EXISTS);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", shown, strlen(shown),
	    &fast, c, &vo), AUTH_OK_APPPASS);
	assert_true(vo.apppass_id > 0);
	assert_int_equal(apppass_normalize(shown, strlen(shown), norm), 0);
	assert_int_equal(accounts_verify_ex(a, "ME@x.org", norm, 16, &fast, c,
	    &vo), AUTH_OK_APPPASS);
	/* regular password, then from the cache */
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "pw", 2, &fast, c,
	    &vo), AUTH_OK);
	assert_int_equal(vo.cached, 0);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "pw", 2, &fast, c,
	    &vo), AUTH_OK);
	assert_int_equal(vo.cached, 1);
	/* a password change: the cache misses, app passwords are gone */
	assert_int_equal(accounts_user_passwd(a, "me@x.org", "pw2", 3, &fast,
	    err, sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "pw", 2, &fast, c,
	    &vo), AUTH_DENIED);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", shown,
	    strlen(shown), &fast, c, &vo), AUTH_DENIED);
	/* 2FA: the right password is AUTH_NEED_APPPASS */
	assert_int_equal(accounts_totp_enrol(a, "me@x.org", sec, err,
	    sizeof(err)), ACCT_OK);
	step = time(NULL) / 30;
	snprintf(code, sizeof(code), "%06ld", totp_hotp(sec, 20,
	    (uint64_t)step, 6));
	assert_int_equal(accounts_totp_confirm(a, "me@x.org", code, time(NULL),
	    err, sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_totp_verify(a, "me@x.org", code, time(NULL),
	    err, sizeof(err)), ACCT_BADCODE);	/* replay */
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "pw2", 3, &fast, c,
	    &vo), AUTH_NEED_APPPASS);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "bad", 3, &fast, c,
	    &vo), AUTH_DENIED);
	/* disabled */
	assert_int_equal(accounts_user_set_enabled(a, "me@x.org", 0, err,
	    sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_verify_ex(a, "me@x.org", "pw2", 3, &fast, c,
	    &vo), AUTH_DISABLED);
	assert_int_equal(accounts_verify(a, "me@x.org", "pw2", 3, &fast, NULL,
	    0), AUTH_DENIED);
	/* aliases */
	assert_int_equal(accounts_alias_add(a, "me@x.org", "sales@x.org", err,
	    sizeof(err)), ACCT_OK);
	assert_int_equal(accounts_alias_add(a, "me@x.org", "me@x.org", err,
	    sizeof(err)), ACCT_EXISTS);
	assert_non_null(blob = accounts_alias_blob(a, vo.user_id));
	assert_string_equal(blob, "sales@x.org");
	free(blob);
	/* unknown user */
	assert_int_equal(accounts_verify_ex(a, "no@x.org", "pw2", 3, &fast, c,
	    &vo), AUTH_DENIED);
	accounts_close(a);
	authcache_free(c);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	assert_int_equal(system(err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hotp_rfc4226),
		cmocka_unit_test(test_totp_rfc6238),
		cmocka_unit_test(test_totp_check_window_replay),
		cmocka_unit_test(test_base32),
		cmocka_unit_test(test_apppass_normalize),
		cmocka_unit_test(test_apppass_hash),
		cmocka_unit_test(test_serverkey_file),
		cmocka_unit_test(test_authcache),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_quota_windows),
		cmocka_unit_test(test_store_security),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
