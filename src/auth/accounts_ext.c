/*
 * accounts_ext.c — the account store beyond passwords: account status
 * (disabled, held), app passwords, aliases, TOTP enrolment and checks, and
 * the usage counters that quota.c writes in batches.
 *
 * Shares struct accounts with accounts.c (accounts_int.h).  These calls
 * are for the CLI, the account page and background threads: each prepares
 * its statement, so none of them belongs on a hot path except
 * accounts_usage_put() and accounts_apppass_touch(), which quota.c calls
 * inside one transaction per flush.
 *
 * Failures: ACCT_* codes with a plain message in err.  Secrets (TOTP
 * secret, new app password) are wiped from local buffers after use; the
 * TOTP secret is stored only as nonce || secretbox(secret) under the
 * server's TOTP subkey.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <sqlite3.h>

#include "auth/accounts.h"
#include "auth/accounts_int.h"
#include "auth/apppass.h"
#include "auth/totp.h"
#include "util/log.h"

#define TOTP_BOX_LEN	(crypto_secretbox_NONCEBYTES + \
			 crypto_secretbox_MACBYTES + TOTP_SECRET_LEN)

static int
prep(struct accounts *a, const char *sql, sqlite3_stmt **st, char *err,
    size_t errlen)
{
	if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK) {
		dberr(a, err, errlen, "prepare");
		*st = NULL;
		return -1;
	}
	return 0;
}

/* The id of a user by normalised address; ACCT_NOUSER / ACCT_ERR. */
static sqlite3_int64
user_id(struct accounts *a, const char *addr, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	sqlite3_int64 id;
	int rc;

	if (prep(a, "SELECT id FROM users WHERE email = ?1", &st, err,
	    errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE) {
		seterr(err, errlen, "no such user %s", addr);
		id = ACCT_NOUSER;
	} else {
		dberr(a, err, errlen, "lookup");
		id = ACCT_ERR;
	}
	sqlite3_finalize(st);
	return id;
}

/* Runs sql with ?1 = id (and ?2 = text2 when given): ACCT_OK, or ACCT_ERR;
 * *changes gets sqlite3_changes(). */
static int
run_id(struct accounts *a, const char *sql, sqlite3_int64 id,
    const char *text2, int *changes, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (prep(a, sql, &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	if (text2 != NULL)
		sqlite3_bind_text(st, 2, text2, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		dberr(a, err, errlen, "update");
		return ACCT_ERR;
	}
	if (changes != NULL)
		*changes = sqlite3_changes(a->db);
	return ACCT_OK;
}

static int64_t
today(void)
{
	return (int64_t)time(NULL) / 86400;
}

/* ---------------------------------------------------------------- */
/* Status */

int
accounts_user_set_enabled(struct accounts *a, const char *email, int enabled,
    char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_int64 id;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	return run_id(a, enabled ? "UPDATE users SET enabled = 1 WHERE id = ?1" :
	    "UPDATE users SET enabled = 0 WHERE id = ?1", id, NULL, NULL, err,
	    errlen);
}

int
accounts_user_set_held(struct accounts *a, const char *email, int held,
    char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], sql[160];
	sqlite3_int64 id;
	int rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	rc = run_id(a, held ? "UPDATE users SET held = 1 WHERE id = ?1" :
	    "UPDATE users SET held = 0 WHERE id = ?1", id, NULL, NULL, err,
	    errlen);
	if (rc == ACCT_OK && !held) {
		snprintf(sql, sizeof(sql), "UPDATE usage SET quota_hits = 0 "
		    "WHERE name = ?2 AND day = %lld AND ?1 = ?1",
		    (long long)today());
		rc = run_id(a, sql, id, addr, NULL, err, errlen);
	}
	return rc;
}

int
accounts_user_held(struct accounts *a, const char *email)
{
	sqlite3_stmt *st;
	int rc, held = -1;

	if (prep(a, "SELECT held FROM users WHERE email = ?1", &st, NULL,
	    0) != 0)
		return -1;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		held = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return held;
}

/* ---------------------------------------------------------------- */
/* App passwords */

int
accounts_apppass_revoke_all(struct accounts *a, const char *email, char *err,
    size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_int64 id;
	int n = 0, rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	rc = run_id(a, "DELETE FROM app_passwords WHERE user_id = ?1", id,
	    NULL, &n, err, errlen);
	return rc == ACCT_OK ? n : rc;
}

/* Labels: 1..64 bytes of printable ASCII or UTF-8, no controls. */
static int
label_valid(const char *label)
{
	size_t i, n;

	if (label == NULL || (n = strlen(label)) == 0 || n > ACCT_LABEL_LEN)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x20 ||
		    (unsigned char)label[i] == 0x7f)
			return -1;
	return 0;
}

int
accounts_apppass_add(struct accounts *a, const char *email, const char *label,
    char *shown, size_t shownlen, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], raw[APPPASS_LEN + 1];
	char disp[APPPASS_SHOWN_LEN + 1];
	unsigned char h[APPPASS_HASH_LEN];
	sqlite3_stmt *st = NULL;
	sqlite3_int64 id;
	int rc, count;

	if (!a->has_key) {
		seterr(err, errlen, "no server key");
		return ACCT_NOKEY;
	}
	if (shown == NULL || shownlen < sizeof(disp)) {
		seterr(err, errlen, "internal: buffer too small");
		return ACCT_ERR;
	}
	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if (label_valid(label) != 0) {
		seterr(err, errlen, "a label is 1 to %d printable bytes",
		    ACCT_LABEL_LEN);
		return ACCT_BADPASS;
	}
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	if (prep(a, "SELECT count(*) FROM app_passwords WHERE user_id = ?1",
	    &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (count >= ACCT_APPPASS_MAX) {
		seterr(err, errlen, "%s has %d app passwords already (the "
		    "limit); revoke one first", addr, count);
		return ACCT_LIMIT;
	}
	apppass_generate(raw, disp);
	if (apppass_hash(a->ap_key, raw, h) != 0) {
		seterr(err, errlen, "hashing failed");
		rc = ACCT_ERR;
		goto done;
	}
	if (prep(a, "INSERT INTO app_passwords (user_id, label, hash, created)"
	    " VALUES (?1, ?2, ?3, ?4)", &st, err, errlen) != 0) {
		rc = ACCT_ERR;
		goto done;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, label, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, h, sizeof(h), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		snprintf(shown, shownlen, "%s", disp);
		rc = ACCT_OK;
	} else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		seterr(err, errlen, "%s already has an app password labelled "
		    "\"%s\"", addr, label);
		rc = ACCT_EXISTS;
	} else {
		dberr(a, err, errlen, "add app password");
		rc = ACCT_ERR;
	}
	sqlite3_finalize(st);
done:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(disp, sizeof(disp));
	sodium_memzero(h, sizeof(h));
	return rc;
}

int
accounts_apppass_list(struct accounts *a, const char *email,
    int (*fn)(void *ctx, const struct apppass_info *), void *ctx, char *err,
    size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	struct apppass_info ai;
	sqlite3_stmt *st;
	sqlite3_int64 id;
	int rc, n = 0;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	if (prep(a, "SELECT label, created, last_used, last_ip FROM "
	    "app_passwords WHERE user_id = ?1 ORDER BY created, id", &st, err,
	    errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&ai, 0, sizeof(ai));
		copy_col(ai.label, sizeof(ai.label), st, 0);
		ai.created = (time_t)sqlite3_column_int64(st, 1);
		ai.last_used = (time_t)sqlite3_column_int64(st, 2);
		copy_col(ai.last_ip, sizeof(ai.last_ip), st, 3);
		n++;
		if (fn != NULL && fn(ctx, &ai) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		dberr(a, err, errlen, "list app passwords");
		n = ACCT_ERR;
	}
	sqlite3_finalize(st);
	return n;
}

int
accounts_apppass_revoke(struct accounts *a, const char *email,
    const char *label, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_int64 id;
	int rc, n = 0;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	rc = run_id(a, "DELETE FROM app_passwords WHERE user_id = ?1 AND "
	    "label = ?2", id, label, &n, err, errlen);
	if (rc == ACCT_OK && n == 0) {
		seterr(err, errlen, "%s has no app password labelled \"%s\"",
		    addr, label);
		rc = ACCT_NOTFOUND;
	}
	return rc;
}

int
accounts_apppass_touch(struct accounts *a, int64_t id, time_t when,
    const char *ip)
{
	sqlite3_stmt *st;
	int rc;

	if (prep(a, "UPDATE app_passwords SET last_used = ?2, last_ip = ?3 "
	    "WHERE id = ?1 AND last_used <= ?2", &st, NULL, 0) != 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)when);
	sqlite3_bind_text(st, 3, ip != NULL ? ip : "", -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---------------------------------------------------------------- */
/* Aliases */

int
accounts_alias_add(struct accounts *a, const char *email, const char *alias,
    char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], al[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st;
	sqlite3_int64 id, other;
	int rc, count;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if (accounts_addr_normalize(alias, al, sizeof(al)) != 0) {
		seterr(err, errlen, "not a valid full address");
		return ACCT_BADADDR;
	}
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	if ((other = user_id(a, al, NULL, 0)) != ACCT_NOUSER) {
		if (other >= 0)
			seterr(err, errlen, "%s is an account of its own", al);
		else
			dberr(a, err, errlen, "lookup");
		return other >= 0 ? ACCT_EXISTS : ACCT_ERR;
	}
	if (prep(a, "SELECT count(*) FROM aliases WHERE user_id = ?1", &st,
	    err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (count >= ACCT_ALIASES_MAX) {
		seterr(err, errlen, "%s has %d aliases already (the limit)",
		    addr, count);
		return ACCT_LIMIT;
	}
	if (prep(a, "INSERT INTO aliases (alias, user_id, created) VALUES "
	    "(?2, ?1, ?3)", &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, al, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return ACCT_OK;
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
		seterr(err, errlen, "%s is already an alias", al);
		return ACCT_EXISTS;
	}
	dberr(a, err, errlen, "add alias");
	return ACCT_ERR;
}

int
accounts_alias_del(struct accounts *a, const char *email, const char *alias,
    char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], al[ACCT_ADDR_MAX + 1];
	sqlite3_int64 id;
	int rc, n = 0;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if (accounts_addr_normalize(alias, al, sizeof(al)) != 0) {
		seterr(err, errlen, "not a valid full address");
		return ACCT_BADADDR;
	}
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	rc = run_id(a, "DELETE FROM aliases WHERE user_id = ?1 AND alias = ?2",
	    id, al, &n, err, errlen);
	if (rc == ACCT_OK && n == 0) {
		seterr(err, errlen, "%s is not an alias of %s", al, addr);
		rc = ACCT_NOTFOUND;
	}
	return rc;
}

int
accounts_alias_list(struct accounts *a, const char *email,
    int (*fn)(void *ctx, const char *alias), void *ctx, char *err,
    size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], al[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st;
	sqlite3_int64 id;
	int rc, n = 0;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	if (prep(a, "SELECT alias FROM aliases WHERE user_id = ?1 ORDER BY "
	    "alias", &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		copy_col(al, sizeof(al), st, 0);
		n++;
		if (fn != NULL && fn(ctx, al) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		dberr(a, err, errlen, "list aliases");
		n = ACCT_ERR;
	}
	sqlite3_finalize(st);
	return n;
}

char *
accounts_alias_blob(struct accounts *a, int64_t uid)
{
	sqlite3_stmt *st;
	char *buf = NULL, *nb;
	size_t len = 0, n;
	int rc, count = 0;

	if (prep(a, "SELECT alias FROM aliases WHERE user_id = ?1", &st, NULL,
	    0) != 0)
		return NULL;
	sqlite3_bind_int64(st, 1, uid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    count++ < ACCT_ALIASES_MAX) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		if (t == NULL)
			continue;
		n = strnlen((const char *)t, ACCT_ADDR_MAX + 1);
		if (n > ACCT_ADDR_MAX)
			continue;
		if ((nb = realloc(buf, len + n + 2)) == NULL) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		memcpy(buf + len, t, n);
		buf[len + n] = '\0';
		len += n + 1;
		buf[len] = '\0';
	}
	sqlite3_finalize(st);
	return buf;
}

/* ---------------------------------------------------------------- */
/* TOTP */

/* Loads and decrypts the stored secret.  Returns ACCT_OK, ACCT_NOTOTP
 * (none stored), or ACCT_ERR. *enabled and *last get the flags. */
static int
totp_load(struct accounts *a, sqlite3_int64 id, unsigned char sec[TOTP_SECRET_LEN],
    int *enabled, int64_t *last, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	const unsigned char *b;
	int rc, n, ret = ACCT_NOTOTP;

	if (prep(a, "SELECT totp_secret, totp_enabled, totp_last_step FROM "
	    "users WHERE id = ?1", &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		b = sqlite3_column_blob(st, 0);
		n = sqlite3_column_bytes(st, 0);
		*enabled = sqlite3_column_int(st, 1);
		*last = sqlite3_column_int64(st, 2);
		if (b != NULL && n == TOTP_BOX_LEN) {
			if (crypto_secretbox_open_easy(sec,
			    b + crypto_secretbox_NONCEBYTES,
			    (unsigned long long)n - crypto_secretbox_NONCEBYTES,
			    b, a->totp_key) == 0)
				ret = ACCT_OK;
			else {
				seterr(err, errlen, "the stored 2FA secret "
				    "does not decrypt (server key changed?)");
				ret = ACCT_ERR;
			}
		} else
			seterr(err, errlen, "2FA is not set up");
	} else {
		dberr(a, err, errlen, "lookup");
		ret = ACCT_ERR;
	}
	sqlite3_finalize(st);
	return ret;
}

int
accounts_totp_enrol(struct accounts *a, const char *email,
    unsigned char secret[TOTP_SECRET_LEN], char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	unsigned char box[TOTP_BOX_LEN];
	sqlite3_stmt *st;
	sqlite3_int64 id;
	int rc;

	if (!a->has_key) {
		seterr(err, errlen, "no server key");
		return ACCT_NOKEY;
	}
	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	randombytes_buf(secret, TOTP_SECRET_LEN);
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, secret,
	    TOTP_SECRET_LEN, box, a->totp_key);
	/* A new secret replaces any old one; 2FA stays as it was until the
	 * new one is confirmed only when it was off (re-enrolling while on
	 * keeps it on with the new secret after confirm). */
	if (prep(a, "UPDATE users SET totp_secret = ?2, totp_enabled = 0, "
	    "totp_last_step = 0 WHERE id = ?1", &st, err, errlen) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, box, sizeof(box), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	sodium_memzero(box, sizeof(box));
	if (rc != SQLITE_DONE) {
		sodium_memzero(secret, TOTP_SECRET_LEN);
		dberr(a, err, errlen, "store 2FA secret");
		return ACCT_ERR;
	}
	return ACCT_OK;
}

static int
totp_check_store(struct accounts *a, const char *email, const char *code,
    time_t now, int confirm, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], sql[128];
	unsigned char sec[TOTP_SECRET_LEN];
	sqlite3_int64 id;
	int64_t last = 0, step;
	int enabled = 0, rc, n = 0;

	if (!a->has_key) {
		seterr(err, errlen, "no server key");
		return ACCT_NOKEY;
	}
	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	if ((rc = totp_load(a, id, sec, &enabled, &last, err, errlen)) !=
	    ACCT_OK)
		return rc;
	if (!confirm && !enabled) {
		sodium_memzero(sec, sizeof(sec));
		seterr(err, errlen, "2FA is not on for %s", addr);
		return ACCT_NOTOTP;
	}
	step = totp_check(sec, sizeof(sec), code, now, last);
	sodium_memzero(sec, sizeof(sec));
	if (step < 0) {
		seterr(err, errlen, "wrong or already used code");
		return ACCT_BADCODE;
	}
	/* The step guard is in the WHERE too: two concurrent checks of the
	 * same code cannot both succeed. */
	snprintf(sql, sizeof(sql), "UPDATE users SET totp_last_step = %lld%s "
	    "WHERE id = ?1 AND totp_last_step < %lld", (long long)step,
	    confirm ? ", totp_enabled = 1" : "", (long long)step);
	rc = run_id(a, sql, id, NULL, &n, err, errlen);
	if (rc == ACCT_OK && n == 0) {
		seterr(err, errlen, "wrong or already used code");
		rc = ACCT_BADCODE;
	}
	return rc;
}

int
accounts_totp_confirm(struct accounts *a, const char *email, const char *code,
    time_t now, char *err, size_t errlen)
{
	return totp_check_store(a, email, code, now, 1, err, errlen);
}

int
accounts_totp_verify(struct accounts *a, const char *email, const char *code,
    time_t now, char *err, size_t errlen)
{
	return totp_check_store(a, email, code, now, 0, err, errlen);
}

int
accounts_totp_off(struct accounts *a, const char *email, char *err,
    size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_int64 id;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((id = user_id(a, addr, err, errlen)) < 0)
		return (int)id;
	return run_id(a, "UPDATE users SET totp_secret = NULL, totp_enabled = 0,"
	    " totp_last_step = 0 WHERE id = ?1", id, NULL, NULL, err, errlen);
}

/* ---------------------------------------------------------------- */
/* Usage counters */

static void
usage_row_read(sqlite3_stmt *st, struct usage_row *r)
{
	memset(r, 0, sizeof(*r));
	copy_col(r->name, sizeof(r->name), st, 0);
	r->day = sqlite3_column_int64(st, 1);
	r->messages = sqlite3_column_int64(st, 2);
	r->recipients = sqlite3_column_int64(st, 3);
	r->hour = sqlite3_column_int64(st, 4);
	r->hour_messages = sqlite3_column_int64(st, 5);
	r->quota_hits = sqlite3_column_int64(st, 6);
}

#define USAGE_COLS "name, day, messages, recipients, hour, hour_messages, " \
		   "quota_hits"

int
accounts_usage_get(struct accounts *a, const char *name, int64_t day,
    struct usage_row *out)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->day = day;
	if (prep(a, "SELECT " USAGE_COLS " FROM usage WHERE name = ?1 AND "
	    "day = ?2", &st, NULL, 0) != 0)
		return ACCT_ERR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, day);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		usage_row_read(st, out);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ACCT_OK : ACCT_ERR;
}

int
accounts_usage_each(struct accounts *a, int64_t day,
    int (*fn)(void *ctx, const struct usage_row *), void *ctx)
{
	struct usage_row r;
	sqlite3_stmt *st;
	int rc, n = 0;

	if (prep(a, "SELECT " USAGE_COLS " FROM usage WHERE day = ?1", &st,
	    NULL, 0) != 0)
		return ACCT_ERR;
	sqlite3_bind_int64(st, 1, day);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		usage_row_read(st, &r);
		n++;
		if (fn(ctx, &r) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : ACCT_ERR;
}

int
accounts_usage_put(struct accounts *a, const struct usage_row *r)
{
	sqlite3_stmt *st;
	int rc;

	if (prep(a, "INSERT OR REPLACE INTO usage (" USAGE_COLS ") VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, NULL, 0) != 0)
		return -1;
	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, r->day);
	sqlite3_bind_int64(st, 3, r->messages);
	sqlite3_bind_int64(st, 4, r->recipients);
	sqlite3_bind_int64(st, 5, r->hour);
	sqlite3_bind_int64(st, 6, r->hour_messages);
	sqlite3_bind_int64(st, 7, r->quota_hits);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
accounts_begin(struct accounts *a)
{
	return exec_sql(a, "BEGIN IMMEDIATE", NULL, 0);
}

int
accounts_commit(struct accounts *a)
{
	if (exec_sql(a, "COMMIT", NULL, 0) != 0) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
