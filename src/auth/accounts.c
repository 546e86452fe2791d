/*
 * accounts — the SQLite account store and argon2id password checks.
 *
 * Owns one SQLite connection per struct accounts, its prepared statements
 * and a dummy password hash (computed on first need, at the caller's cost)
 * that unknown or disabled users are verified against so that every
 * denial costs the same time.
 *
 * Schema changes go through migrate(): one SQL script per version step,
 * applied in a BEGIN IMMEDIATE transaction together with the new
 * PRAGMA user_version, so concurrent openers (daemon, CLI) never see a half
 * migrated file.  A database newer than this binary is refused.
 *
 * Failures: store calls return ACCT_* with a plain message in err;
 * accounts_verify() returns AUTH_TEMPFAIL when the database misbehaves.
 * Passwords are never logged and the library copies nothing of them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "auth/accounts.h"
#include "auth/accounts_int.h"
#include "auth/apppass.h"
#include "auth/authcache.h"
#include "util/log.h"

#define ACCT_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define ACCT_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define ACCT_LABEL_MAX	63

/*
 * migrations[i] takes the schema from user_version i to i + 1.  Later
 * issues append: app passwords, TOTP, aliases, counters.
 */
static const char *const migrations[] = {
	/* 0 -> 1: users */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  email TEXT UNIQUE NOT NULL COLLATE NOCASE,"
	"  pwhash TEXT NOT NULL,"
	"  enabled INTEGER NOT NULL DEFAULT 1,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL"
	");",
	/* 1 -> 2: 2FA, hold, app passwords, aliases, usage counters */
	"ALTER TABLE users ADD COLUMN totp_secret BLOB;"
	"ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE users ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE app_passwords ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  label TEXT NOT NULL,"
	"  hash BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  last_used INTEGER NOT NULL DEFAULT 0,"
	"  last_ip TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (user_id, label)"
	");"
	"CREATE INDEX app_passwords_hash ON app_passwords (hash);"
	"CREATE TABLE aliases ("
	"  alias TEXT PRIMARY KEY COLLATE NOCASE,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE INDEX aliases_user ON aliases (user_id);"
	"CREATE TABLE usage ("
	"  name TEXT NOT NULL COLLATE NOCASE,"
	"  day INTEGER NOT NULL,"
	"  messages INTEGER NOT NULL DEFAULT 0,"
	"  recipients INTEGER NOT NULL DEFAULT 0,"
	"  hour INTEGER NOT NULL DEFAULT 0,"
	"  hour_messages INTEGER NOT NULL DEFAULT 0,"
	"  quota_hits INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (name, day)"
	");",
	/* 2 -> 3: administrators of the account page (src/web) */
	"ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const stmt_sql[ST_COUNT] = {
	[ST_ADD] = "INSERT INTO users (email, pwhash, enabled, created, updated)"
	    " VALUES (?1, ?2, 1, ?3, ?3)",
	[ST_DEL] = "DELETE FROM users WHERE email = ?1",
	[ST_PASSWD] = "UPDATE users SET pwhash = ?2, updated = ?3"
	    " WHERE email = ?1",
	[ST_GET] = "SELECT id, email, pwhash, enabled, created, updated,"
	    " totp_enabled, held FROM users WHERE email = ?1",
	[ST_LIST] = "SELECT email, enabled, created, updated FROM users"
	    " ORDER BY email",
	[ST_AP_FIND] = "SELECT id FROM app_passwords WHERE user_id = ?1"
	    " AND hash = ?2",
	/* Only replace the hash that was verified, never a newer one. */
	[ST_REHASH] = "UPDATE users SET pwhash = ?2 WHERE id = ?1 AND pwhash = ?3",
};


void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
dberr(struct accounts *a, char *err, size_t errlen, const char *what)
{
	seterr(err, errlen, "account database: %s: %s", what,
	    sqlite3_errmsg(a->db));
}

/* Zero costs mean "the library default"; out-of-range ones fail later. */
static struct pwhash_params
params_fix(const struct pwhash_params *pp)
{
	struct pwhash_params p;

	p.opslimit = pp != NULL ? pp->opslimit : 0;
	p.memlimit = pp != NULL ? pp->memlimit : 0;
	if (p.opslimit == 0)
		p.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	if (p.memlimit == 0)
		p.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	return p;
}

/* ---------------------------------------------------------------- */
/* Addresses */

static int
is_atext(unsigned char c)
{
	/* RFC 5322 3.2.3 atext */
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Length of a valid UTF-8 sequence starting at s (RFC 6531 local parts), or
 * 0.  Rejects overlongs, surrogates and code points past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* Dot-atom local part (RFC 5322 3.2.3), UTF-8 allowed (RFC 6531). */
static int
local_valid(const unsigned char *s, size_t n)
{
	size_t i, k;

	if (n == 0 || n > ACCT_LOCAL_MAX || s[0] == '.' || s[n - 1] == '.')
		return -1;
	for (i = 0; i < n; ) {
		/* s[0..n) was copied by the caller; clang 14's analyzer loses
		 * track of a memcpy with a variable length */
		if (s[i] == '.') { // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
			if (s[i + 1] == '.')	/* s[n - 1] is not '.': i + 1 < n */
				return -1;
			i++;
		} else if (s[i] < 0x80) {
			if (!is_atext(s[i]))
				return -1;
			i++;
		} else {
			if ((k = utf8_seq(s + i, n - i)) == 0)
				return -1;
			i += k;
		}
	}
	return 0;
}

/* LDH labels separated by single dots; one label ("localhost") is fine.
 * Internationalized domains must come as A-labels. */
static int
domain_valid(const unsigned char *s, size_t n)
{
	size_t i, lab = 0;

	if (n == 0 || n > ACCT_DOMAIN_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return -1;
			lab = 0;
		} else if (isalnum(s[i]) && s[i] < 0x80) {
			lab++;
		} else if (s[i] == '-') {
			if (lab == 0)
				return -1;
			lab++;
		} else
			return -1;
		if (lab > ACCT_LABEL_MAX)
			return -1;
	}
	if (lab == 0 || s[n - 1] == '-')
		return -1;
	return 0;
}

int
accounts_addr_valid(const char *email)
{
	const char *at;
	size_t n;

	if (email == NULL)
		return -1;
	n = strnlen(email, ACCT_ADDR_MAX + 1);
	if (n > ACCT_ADDR_MAX)
		return -1;
	if ((at = strchr(email, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return -1;
	if (local_valid((const unsigned char *)email, (size_t)(at - email)) != 0)
		return -1;
	if (domain_valid((const unsigned char *)at + 1,
	    n - (size_t)(at - email) - 1) != 0)
		return -1;
	return 0;
}

int
accounts_addr_normalize(const char *in, char *out, size_t outlen)
{
	const char *s, *e;
	char *at;
	size_t n;

	if (in == NULL || out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	s = in;
	while (*s == ' ' || *s == '\t')
		s++;
	n = strnlen(s, ACCT_ADDR_MAX + 64);
	e = s + n;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		e--;
	n = (size_t)(e - s);
	if (n > ACCT_ADDR_MAX || n >= outlen)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	if (accounts_addr_valid(out) != 0) {
		out[0] = '\0';
		return -1;
	}
	for (at = strchr(out, '@') + 1; *at != '\0'; at++)
		*at = (char)tolower((unsigned char)*at);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Opening and schema */

int
exec_sql(struct accounts *a, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(a->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		seterr(err, errlen, "account database: %s",
		    msg != NULL ? msg : sqlite3_errmsg(a->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
user_version(struct accounts *a, int *v, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK) {
		dberr(a, err, errlen, "user_version");
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		dberr(a, err, errlen, "user_version");
		return -1;
	}
	return 0;
}

/*
 * Brings the schema to SCHEMA_VERSION.  The version is read inside the
 * write transaction, so two processes opening a fresh file at once do not
 * both run step 0.
 */
static int
migrate(struct accounts *a, char *err, size_t errlen)
{
	char sql[64];
	int v;

	if (user_version(a, &v, err, errlen) != 0)
		return -1;
	if (v == SCHEMA_VERSION)
		return 0;
	if (exec_sql(a, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (user_version(a, &v, err, errlen) != 0)
		goto fail;
	if (v < 0 || v > SCHEMA_VERSION) {
		seterr(err, errlen, "account database: schema version %d is "
		    "newer than this program knows (%d)", v, SCHEMA_VERSION);
		goto fail;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (exec_sql(a, migrations[v], err, errlen) != 0)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(a, sql, err, errlen) != 0)
			goto fail;
	}
	if (exec_sql(a, "COMMIT", err, errlen) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Creates the file with mode 0600 before SQLite does, whatever the umask;
 * SQLite gives the -wal and -shm files the database file's mode. */
static int
create_private(const char *path, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		seterr(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) == -1) {
		seterr(err, errlen, "cannot chmod %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

struct accounts *
accounts_open(const char *path, int create, char *err, size_t errlen)
{
	struct accounts *a;
	int i, flags;

	if (path == NULL || *path == '\0') {
		seterr(err, errlen, "account database: no path configured");
		return NULL;
	}
	if (sodium_init() < 0) {
		seterr(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	if (create && create_private(path, err, errlen) != 0)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &a->db, flags, NULL) != SQLITE_OK) {
		if (a->db == NULL)
			seterr(err, errlen, "account database %s: out of "
			    "memory", path);
		else
			seterr(err, errlen, "account database %s: %s", path,
			    sqlite3_errmsg(a->db));
		goto fail;
	}
	sqlite3_extended_result_codes(a->db, 1);
	if (sqlite3_busy_timeout(a->db, 5000) != SQLITE_OK) {
		dberr(a, err, errlen, "busy_timeout");
		goto fail;
	}
	/* The query fails on a non-database file: report it plainly. */
	if (exec_sql(a, "PRAGMA journal_mode = WAL", err, errlen) != 0)
		goto fail;
	if (exec_sql(a, "PRAGMA foreign_keys = ON", err, errlen) != 0)
		goto fail;
	if (migrate(a, err, errlen) != 0)
		goto fail;
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(a->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &a->st[i], NULL) != SQLITE_OK) {
			dberr(a, err, errlen, "prepare");
			goto fail;
		}
	}
	return a;
fail:
	accounts_close(a);
	return NULL;
}

void
accounts_close(struct accounts *a)
{
	int i;

	if (a == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(a->st[i]);
	if (a->db != NULL)
		sqlite3_close(a->db);
	sodium_memzero(a, sizeof(*a));
	free(a);	/* keys included */
}

/* ---------------------------------------------------------------- */
/* Users */

int
norm_or_err(const char *email, char *out, size_t outlen, char *err,
    size_t errlen)
{
	if (accounts_addr_normalize(email, out, outlen) != 0) {
		seterr(err, errlen, "not a valid full address");
		return -1;
	}
	return 0;
}

int
hash_password(const char *password, size_t passlen,
    const struct pwhash_params *pp, char out[crypto_pwhash_STRBYTES],
    char *err, size_t errlen)
{
	struct pwhash_params p = params_fix(pp);

	if (password == NULL || passlen == 0 || passlen > ACCT_PASS_MAX) {
		seterr(err, errlen, "password must be 1 to %d bytes",
		    ACCT_PASS_MAX);
		return ACCT_BADPASS;
	}
	if (p.memlimit > SIZE_MAX ||
	    crypto_pwhash_str(out, password, passlen,
	    (unsigned long long)p.opslimit, (size_t)p.memlimit) != 0) {
		seterr(err, errlen, "password hashing failed (out of memory "
		    "or argon2 cost out of range)");
		return ACCT_ERR;
	}
	return ACCT_OK;
}

int
accounts_user_add(struct accounts *a, const char *email,
    const char *password, size_t passlen,
    const struct pwhash_params *pp, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], hash[crypto_pwhash_STRBYTES];
	sqlite3_stmt *st = a->st[ST_ADD];
	int rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if ((rc = hash_password(password, passlen, pp, hash, err,
	    errlen)) != ACCT_OK)
		return rc;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
		dberr(a, err, errlen, "bind");
		rc = ACCT_ERR;
		goto done;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		rc = ACCT_OK;
	else if (rc == SQLITE_CONSTRAINT_UNIQUE ||
	    rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		seterr(err, errlen, "user %s already exists", addr);
		rc = ACCT_EXISTS;
	} else {
		dberr(a, err, errlen, "add user");
		rc = ACCT_ERR;
	}
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sodium_memzero(hash, sizeof(hash));
	return rc;
}

/* Runs a one-row write keyed by address; ACCT_NOUSER when no row changed. */
static int
write_by_addr(struct accounts *a, sqlite3_stmt *st, const char *addr,
    const char *hash, char *err, size_t errlen)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    (hash != NULL && (sqlite3_bind_text(st, 2, hash, -1,
	    SQLITE_TRANSIENT) != SQLITE_OK || sqlite3_bind_int64(st, 3,
	    (sqlite3_int64)time(NULL)) != SQLITE_OK))) {
		dberr(a, err, errlen, "bind");
		rc = ACCT_ERR;
		goto done;
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		dberr(a, err, errlen, "update");
		rc = ACCT_ERR;
	} else if (sqlite3_changes(a->db) == 0) {
		seterr(err, errlen, "no such user %s", addr);
		rc = ACCT_NOUSER;
	} else
		rc = ACCT_OK;
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
accounts_user_del(struct accounts *a, const char *email, char *err,
    size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	return write_by_addr(a, a->st[ST_DEL], addr, NULL, err, errlen);
}

int
accounts_user_passwd(struct accounts *a, const char *email,
    const char *password, size_t passlen,
    const struct pwhash_params *pp, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1], hash[crypto_pwhash_STRBYTES];
	struct account_info info;
	int rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	/* Check first: hashing costs tens of milliseconds and memory. */
	if ((rc = accounts_user_get(a, addr, &info, err, errlen)) != ACCT_OK)
		return rc;
	if ((rc = hash_password(password, passlen, pp, hash, err,
	    errlen)) != ACCT_OK)
		return rc;
	/* Gmail's rule: a new password revokes every app password. */
	if (exec_sql(a, "BEGIN IMMEDIATE", err, errlen) != 0) {
		sodium_memzero(hash, sizeof(hash));
		return ACCT_ERR;
	}
	rc = write_by_addr(a, a->st[ST_PASSWD], addr, hash, err, errlen);
	sodium_memzero(hash, sizeof(hash));
	if (rc == ACCT_OK && accounts_apppass_revoke_all(a, addr, err,
	    errlen) < 0)
		rc = ACCT_ERR;
	if (rc != ACCT_OK) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (exec_sql(a, "COMMIT", err, errlen) != 0) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return ACCT_ERR;
	}
	return rc;
}

void
copy_col(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n;

	if (t == NULL) {
		dst[0] = '\0';
		return;
	}
	n = (size_t)sqlite3_column_bytes(st, col);
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, t, n);
	dst[n] = '\0';
}

int
accounts_user_get(struct accounts *a, const char *email,
    struct account_info *out, char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st = a->st[ST_GET];
	int rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	sqlite3_reset(st);
	if (sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		dberr(a, err, errlen, "bind");
		return ACCT_ERR;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out != NULL) {
			memset(out, 0, sizeof(*out));
			copy_col(out->email, sizeof(out->email), st, 1);
			out->enabled = sqlite3_column_int(st, 3);
			out->created = (time_t)sqlite3_column_int64(st, 4);
			out->updated = (time_t)sqlite3_column_int64(st, 5);
			out->totp_enabled = sqlite3_column_int(st, 6);
			out->held = sqlite3_column_int(st, 7);
		}
		rc = ACCT_OK;
	} else if (rc == SQLITE_DONE) {
		seterr(err, errlen, "no such user %s", addr);
		rc = ACCT_NOUSER;
	} else {
		dberr(a, err, errlen, "get user");
		rc = ACCT_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
accounts_user_list(struct accounts *a,
    int (*fn)(void *ctx, const struct account_info *), void *ctx,
    char *err, size_t errlen)
{
	struct account_info info;
	sqlite3_stmt *st = a->st[ST_LIST];
	int rc, count = 0;

	sqlite3_reset(st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&info, 0, sizeof(info));
		copy_col(info.email, sizeof(info.email), st, 0);
		info.enabled = sqlite3_column_int(st, 1);
		info.created = (time_t)sqlite3_column_int64(st, 2);
		info.updated = (time_t)sqlite3_column_int64(st, 3);
		count++;
		/* A non-zero return from fn stops the walk early. */
		if (fn != NULL && fn(ctx, &info) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		dberr(a, err, errlen, "list users");
		count = ACCT_ERR;
	}
	sqlite3_reset(st);
	return count;
}

/* ---------------------------------------------------------------- */
/* Verification */

/*
 * Burns the same argon2id work as a real check.  The dummy hash is made on
 * first use (and again if the cost changes) from a random password, so it
 * never matches.
 */
static void
verify_dummy(struct accounts *a, const char *password, size_t passlen,
    const struct pwhash_params *p)
{
	unsigned char rnd[16];

	if (a->dummy[0] == '\0' || a->dummy_pp.opslimit != p->opslimit ||
	    a->dummy_pp.memlimit != p->memlimit) {
		randombytes_buf(rnd, sizeof(rnd));
		if (p->memlimit > SIZE_MAX || crypto_pwhash_str(a->dummy,
		    (const char *)rnd, sizeof(rnd),
		    (unsigned long long)p->opslimit, (size_t)p->memlimit) != 0) {
			a->dummy[0] = '\0';
			return;
		}
		a->dummy_pp = *p;
	}
	if (password == NULL || passlen == 0) {
		password = "x";
		passlen = 1;
	}
	if (passlen > ACCT_PASS_MAX)
		passlen = ACCT_PASS_MAX;
	/* The answer is known already; only the work matters. */
	if (crypto_pwhash_str_verify(a->dummy, password, passlen) == 0)
		log_err("accounts: dummy hash matched, which cannot happen");
}

/* Best effort: a failure only means the old cost stays until next login. */
static void
rehash(struct accounts *a, sqlite3_int64 id, const char *oldhash,
    const char *password, size_t passlen, const struct pwhash_params *p)
{
	char hash[crypto_pwhash_STRBYTES];
	sqlite3_stmt *st = a->st[ST_REHASH];

	if (hash_password(password, passlen, p, hash, NULL, 0) != ACCT_OK)
		return;
	sqlite3_reset(st);
	if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK &&
	    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	    sqlite3_bind_text(st, 3, oldhash, -1, SQLITE_TRANSIENT) == SQLITE_OK) {
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warn("accounts: rehash failed: %s",
			    sqlite3_errmsg(a->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sodium_memzero(hash, sizeof(hash));
}

void
accounts_set_key(struct accounts *a, const unsigned char key[32])
{
	serverkey_derive(key, SERVERKEY_APPPASS, a->ap_key);
	serverkey_derive(key, SERVERKEY_TOTP, a->totp_key);
	a->has_key = 1;
}

/*
 * App password lookup: keyed hash of the normalised form, then an indexed
 * lookup.  Returns the row id, 0 for no match, -1 on a database error.
 */
static sqlite3_int64
apppass_find(struct accounts *a, sqlite3_int64 uid, const char *norm)
{
	unsigned char h[APPPASS_HASH_LEN];
	sqlite3_stmt *st = a->st[ST_AP_FIND];
	sqlite3_int64 id = 0;
	int rc;

	if (apppass_hash(a->ap_key, norm, h) != 0)
		return -1;
	sqlite3_reset(st);
	if (sqlite3_bind_int64(st, 1, uid) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, h, sizeof(h), SQLITE_TRANSIENT) !=
	    SQLITE_OK) {
		sqlite3_reset(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		id = -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sodium_memzero(h, sizeof(h));
	return id;
}

enum auth_result
accounts_verify_ex(struct accounts *a, const char *user, const char *password,
    size_t passlen, const struct pwhash_params *pp, struct authcache *cache,
    struct verify_out *out)
{
	char addr[ACCT_ADDR_MAX + 1], hash[crypto_pwhash_STRBYTES];
	char email[ACCT_ADDR_MAX + 1], norm[APPPASS_LEN + 1];
	unsigned char ck[AUTHCACHE_KEYLEN];
	struct pwhash_params p = params_fix(pp);
	sqlite3_stmt *st = a->st[ST_GET];
	sqlite3_int64 id = 0, apid;
	int rc, enabled = 0, found = 0, totp = 0, ok = 0;
	time_t now = time(NULL);

	memset(out, 0, sizeof(*out));
	out->result = AUTH_DENIED;
	hash[0] = '\0';
	if (password == NULL || passlen == 0 || passlen > ACCT_PASS_MAX ||
	    accounts_addr_normalize(user, addr, sizeof(addr)) != 0) {
		verify_dummy(a, password, passlen, &p);
		return out->result;
	}

	sqlite3_reset(st);
	if (sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_reset(st);
		return out->result = AUTH_TEMPFAIL;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 2);
		int hn = sqlite3_column_bytes(st, 2);

		id = sqlite3_column_int64(st, 0);
		copy_col(email, sizeof(email), st, 1);
		enabled = sqlite3_column_int(st, 3);
		totp = sqlite3_column_int(st, 6);
		out->held = sqlite3_column_int(st, 7);
		/* A hash that does not fit is corrupt: treat as no user. */
		if (h != NULL && hn > 0 && (size_t)hn < sizeof(hash)) {
			memcpy(hash, h, (size_t)hn);
			hash[hn] = '\0';
			found = 1;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_err("accounts: lookup failed: %s", sqlite3_errmsg(a->db));
		return out->result = AUTH_TEMPFAIL;
	}
	if (!found) {
		verify_dummy(a, password, passlen, &p);
		return out->result;
	}
	out->user_id = id;

	/* 1. App password: cheap, and works with or without 2FA. */
	if (a->has_key && apppass_normalize(password, passlen, norm) == 0) {
		apid = apppass_find(a, id, norm);
		sodium_memzero(norm, sizeof(norm));
		if (apid < 0) {
			log_err("accounts: app password lookup failed: %s",
			    sqlite3_errmsg(a->db));
			sodium_memzero(hash, sizeof(hash));
			return out->result = AUTH_TEMPFAIL;
		}
		if (apid > 0) {
			out->apppass_id = apid;
			out->result = enabled ? AUTH_OK_APPPASS : AUTH_DISABLED;
			snprintf(out->canon, sizeof(out->canon), "%s", email);
			sodium_memzero(hash, sizeof(hash));
			return out->result;
		}
		/* no match: a revoked one costs argon2id like any miss */
	}

	/* 2. Regular password: the cache first, then argon2id. */
	if (cache != NULL) {
		authcache_key(cache, id, hash, password, passlen, ck);
		if (authcache_lookup(cache, ck, now)) {
			ok = 1;
			out->cached = 1;
		}
	}
	if (!ok && crypto_pwhash_str_verify(hash, password, passlen) == 0) {
		ok = 1;
		if (crypto_pwhash_str_needs_rehash(hash,
		    (unsigned long long)p.opslimit, (size_t)p.memlimit) == 1)
			rehash(a, id, hash, password, passlen, &p);
		else if (cache != NULL)
			authcache_insert(cache, ck, now);
	}
	if (ok) {
		if (!enabled)
			out->result = AUTH_DISABLED;
		else if (totp)
			out->result = AUTH_NEED_APPPASS;
		else
			out->result = AUTH_OK;
		snprintf(out->canon, sizeof(out->canon), "%s", email);
	}
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(hash, sizeof(hash));
	return out->result;
}

enum auth_result
accounts_verify(struct accounts *a, const char *user, const char *password,
    size_t passlen, const struct pwhash_params *pp, char *canon,
    size_t canonlen)
{
	struct verify_out out;
	enum auth_result r;

	if (canon != NULL && canonlen > 0)
		canon[0] = '\0';
	r = accounts_verify_ex(a, user, password, passlen, pp, NULL, &out);
	if (r == AUTH_OK_APPPASS)
		r = AUTH_OK;
	else if (r == AUTH_NEED_APPPASS || r == AUTH_DISABLED)
		r = AUTH_DENIED;
	if (r == AUTH_OK && canon != NULL && canonlen > 0)
		snprintf(canon, canonlen, "%s", out.canon);
	sodium_memzero(&out, sizeof(out));
	return r;
}
