/*
 * accounts — the account store (SQLite) and password checks.
 *
 * Schema (versioned with PRAGMA user_version):
 *   users(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL COLLATE NOCASE,
 *         pwhash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
 *         created INTEGER NOT NULL, updated INTEGER NOT NULL)
 * Version 2 adds: users.totp_secret (secretbox of the TOTP secret under
 * the server key), users.totp_enabled, users.totp_last_step (replay
 * guard), users.held (outgoing mail held); app_passwords(user_id, label,
 * hash = keyed BLAKE2b, created, last_used, last_ip); aliases(alias,
 * user_id); usage(name, day, messages, recipients, hour, hour_messages,
 * quota_hits) — the daily counters, written in batches by quota.c.
 * The functions for those live in accounts_ext.c.
 *
 * Passwords are hashed with libsodium's argon2id (crypto_pwhash_str) at
 * the configured cost.  accounts_verify() of an unknown user verifies the
 * password against a dummy hash of the same cost, so unknown user and
 * wrong password take the same time and give the same answer.
 *
 * Addresses are stored lower-cased in the domain part; the local part is
 * compared case-insensitively as well (as every large provider does).
 *
 * A struct accounts is one SQLite connection: use one per thread.
 */
#ifndef OUTPOST_ACCOUNTS_H
#define OUTPOST_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct accounts;

struct pwhash_params {
	uint64_t opslimit;
	uint64_t memlimit;
};

/* Result codes of the store calls. */
enum acct_status {
	ACCT_OK = 0,
	ACCT_ERR = -1,		/* database or system error; message in err */
	ACCT_EXISTS = -2,	/* user add: already there */
	ACCT_NOUSER = -3,	/* no such user */
	ACCT_BADADDR = -4,	/* not a valid full address (local@domain) */
	ACCT_BADPASS = -5,	/* empty or over 1024 bytes */
};

/* What AUTH learns.  Same reply for DENIED whatever the reason. */
enum auth_result {
	AUTH_OK = 0,		/* regular password (argon2id or its cache) */
	AUTH_DENIED = 1,	/* unknown user, wrong password, revoked... */
	AUTH_TEMPFAIL = 2,	/* store unavailable: 454 4.7.0 */
	AUTH_OK_APPPASS = 3,	/* an app password matched */
	AUTH_NEED_APPPASS = 4,	/* right regular password, 2FA on: 534 5.7.9 */
	AUTH_DISABLED = 5,	/* right credentials, account disabled: 535 */
};

#define ACCT_ALIASES_MAX	100	/* per account */
#define ACCT_APPPASS_MAX	50	/* per account */
#define ACCT_LABEL_LEN		64	/* app password label, bytes */

enum acct_status_ext {
	ACCT_LIMIT = -6,	/* too many aliases / app passwords */
	ACCT_NOTFOUND = -7,	/* no such label / alias */
	ACCT_NOKEY = -8,	/* no server key set (accounts_set_key) */
	ACCT_BADCODE = -9,	/* TOTP code wrong or already used */
	ACCT_NOTOTP = -10,	/* 2FA not enrolled */
};

struct account_info {
	char	 email[256];
	int	 enabled;
	time_t	 created;
	time_t	 updated;
	int	 totp_enabled;	/* 2FA on */
	int	 held;		/* outgoing mail held (quota hits) */
};

/* The whole answer of accounts_verify_ex(). */
struct verify_out {
	enum auth_result result;
	int64_t	 user_id;	/* > 0 when the account exists */
	int64_t	 apppass_id;	/* on AUTH_OK_APPPASS */
	int	 held;		/* users.held at the time of the check */
	int	 cached;	/* AUTH_OK came from the authcache */
	char	 canon[256];	/* stored address on any OK result */
};

struct authcache;

/* Opens (create != 0: creates file and schema, mode 0600) the database.
 * Returns NULL with a message in err. WAL mode, busy timeout 5 s. */
struct accounts *accounts_open(const char *path, int create,
	    char *err, size_t errlen);
void	accounts_close(struct accounts *a);

int	accounts_user_add(struct accounts *a, const char *email,
	    const char *password, size_t passlen,
	    const struct pwhash_params *pp, char *err, size_t errlen);
int	accounts_user_del(struct accounts *a, const char *email,
	    char *err, size_t errlen);
int	accounts_user_passwd(struct accounts *a, const char *email,
	    const char *password, size_t passlen,
	    const struct pwhash_params *pp, char *err, size_t errlen);
int	accounts_user_get(struct accounts *a, const char *email,
	    struct account_info *out, char *err, size_t errlen);
/* Calls fn for each user in address order; returns count or ACCT_ERR. */
int	accounts_user_list(struct accounts *a,
	    int (*fn)(void *ctx, const struct account_info *), void *ctx,
	    char *err, size_t errlen);

/* Blocking (argon2id): run it on an auth thread, never an event loop.
 * On AUTH_OK, canon (if non-NULL, size >= 256) gets the stored address. */
enum auth_result accounts_verify(struct accounts *a, const char *user,
	    const char *password, size_t passlen, const struct pwhash_params *pp,
	    char *canon, size_t canonlen);

/*
 * The full check (blocking: argon2id on a miss).  One call tries, in
 * order: an app password (when the password is app-password shaped and a
 * key is set: keyed hash lookup, no argon2id), then the regular password
 * (authcache, else argon2id).  Unknown users, and every miss, cost one
 * argon2id like a wrong password, so timing does not tell them apart.
 * cache may be NULL.  Returns out->result.
 */
enum auth_result accounts_verify_ex(struct accounts *a, const char *user,
	    const char *password, size_t passlen, const struct pwhash_params *pp,
	    struct authcache *cache, struct verify_out *out);

/* OAuth2 logins (accounts_oauth.c): is email a known account?  AUTH_OK
 * (enabled), AUTH_DISABLED, AUTH_DENIED (unknown) or AUTH_TEMPFAIL; out
 * gets user_id, held and canon.  No password: the token was checked. */
enum auth_result accounts_lookup_login(struct accounts *a, const char *email,
	    struct verify_out *out);

/* Sets the server secret (apppass.h) used for app passwords and TOTP. */
void	accounts_set_key(struct accounts *a, const unsigned char key[32]);

/* Syntax check for a login / mailbox address: local@domain, at most 64
 * octets of local part and 255 of domain, no spaces or controls.
 * Returns 0 if valid. */
int	accounts_addr_valid(const char *email);
/* Trims surrounding blanks, checks with accounts_addr_valid() and
 * lower-cases the domain into out (outlen >= 255 for any valid address).
 * Returns 0, or -1 (out is then "") when invalid or too long. */
int	accounts_addr_normalize(const char *in, char *out, size_t outlen);

/* ---- accounts_ext.c: 2FA, app passwords, aliases, status, usage ---- */

int	accounts_user_set_enabled(struct accounts *a, const char *email,
	    int enabled, char *err, size_t errlen);
/* held = 0 releases (and zeroes today's quota hits); 1 holds. */
int	accounts_user_set_held(struct accounts *a, const char *email,
	    int held, char *err, size_t errlen);
/* Revokes every app password of the user; returns the count or ACCT_*. */
int	accounts_apppass_revoke_all(struct accounts *a, const char *email,
	    char *err, size_t errlen);

/* Adds label; shown (>= 20 bytes) receives "abcd efgh ijkl mnop". */
int	accounts_apppass_add(struct accounts *a, const char *email,
	    const char *label, char *shown, size_t shownlen,
	    char *err, size_t errlen);
struct apppass_info {
	char	 label[ACCT_LABEL_LEN + 1];
	time_t	 created;
	time_t	 last_used;	/* 0: never */
	char	 last_ip[64];
};
int	accounts_apppass_list(struct accounts *a, const char *email,
	    int (*fn)(void *ctx, const struct apppass_info *), void *ctx,
	    char *err, size_t errlen);
int	accounts_apppass_revoke(struct accounts *a, const char *email,
	    const char *label, char *err, size_t errlen);
/* Batched "last used" update (quota.c's flush). */
int	accounts_apppass_touch(struct accounts *a, int64_t id, time_t when,
	    const char *ip);

/* aliases: an alias is a full address, unique over all accounts and
 * never another account's login. */
int	accounts_alias_add(struct accounts *a, const char *email,
	    const char *alias, char *err, size_t errlen);
int	accounts_alias_del(struct accounts *a, const char *email,
	    const char *alias, char *err, size_t errlen);
int	accounts_alias_list(struct accounts *a, const char *email,
	    int (*fn)(void *ctx, const char *alias), void *ctx,
	    char *err, size_t errlen);
/* All aliases of user_id as "a\0b\0\0" (malloc'd, caller frees) or NULL
 * when there are none or on error. */
char	*accounts_alias_blob(struct accounts *a, int64_t user_id);

/*
 * TOTP.  enrol: makes a new 160-bit secret, stores it encrypted (not yet
 * active), copies it to secret (20 bytes).  confirm: checks code against
 * the pending secret and turns 2FA on.  verify: checks a code for an
 * enrolled account (a used step is refused).  off: turns 2FA off and
 * forgets the secret.
 */
int	accounts_totp_enrol(struct accounts *a, const char *email,
	    unsigned char secret[20], char *err, size_t errlen);
int	accounts_totp_confirm(struct accounts *a, const char *email,
	    const char *code, time_t now, char *err, size_t errlen);
int	accounts_totp_verify(struct accounts *a, const char *email,
	    const char *code, time_t now, char *err, size_t errlen);
int	accounts_totp_off(struct accounts *a, const char *email,
	    char *err, size_t errlen);

/* usage: one row per name ("user@dom" or "net:CIDR") per day
 * (days since the epoch, UTC). */
struct usage_row {
	char	 name[300];
	int64_t	 day;
	int64_t	 messages, recipients;
	int64_t	 hour;		/* hours since the epoch of hour_messages */
	int64_t	 hour_messages;
	int64_t	 quota_hits;
};
int	accounts_usage_get(struct accounts *a, const char *name, int64_t day,
	    struct usage_row *out);
/* Calls fn for every row of day. Returns the count or ACCT_ERR. */
int	accounts_usage_each(struct accounts *a, int64_t day,
	    int (*fn)(void *ctx, const struct usage_row *), void *ctx);
int	accounts_usage_put(struct accounts *a, const struct usage_row *r);
/* BEGIN/COMMIT around a batch of puts. 0/-1. */
int	accounts_begin(struct accounts *a);
int	accounts_commit(struct accounts *a);
/* users.held of email: 0, 1, or -1 (no such user, error). */
int	accounts_user_held(struct accounts *a, const char *email);

/* ---- accounts_admin.c: the account page's administrators ---- */
/* Sets users.admin (schema version 3).  ACCT_OK or ACCT_*. */
int	accounts_user_set_admin(struct accounts *a, const char *email,
	    int admin, char *err, size_t errlen);
/* 1 admin, 0 not, -1 no such user or error. */
int	accounts_user_admin(struct accounts *a, const char *email);

#endif
