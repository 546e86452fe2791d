/*
 * accounts — the account store (SQLite) and password checks.
 *
 * Schema (versioned with PRAGMA user_version):
 *   users(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL COLLATE NOCASE,
 *         pwhash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
 *         created INTEGER NOT NULL, updated INTEGER NOT NULL)
 * The next issues add app passwords, TOTP, aliases and counters as new
 * tables with a schema migration.
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
	AUTH_OK = 0,
	AUTH_DENIED = 1,	/* unknown user, wrong password, disabled */
	AUTH_TEMPFAIL = 2,	/* store unavailable: 454 4.7.0 */
};

struct account_info {
	char	 email[256];
	int	 enabled;
	time_t	 created;
	time_t	 updated;
};

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

/* Syntax check for a login / mailbox address: local@domain, at most 64
 * octets of local part and 255 of domain, no spaces or controls.
 * Returns 0 if valid. */
int	accounts_addr_valid(const char *email);
/* Trims surrounding blanks, checks with accounts_addr_valid() and
 * lower-cases the domain into out (outlen >= 255 for any valid address).
 * Returns 0, or -1 (out is then "") when invalid or too long. */
int	accounts_addr_normalize(const char *in, char *out, size_t outlen);

#endif
