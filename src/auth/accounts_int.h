/*
 * accounts_int.h — what accounts.c and accounts_ext.c share: the struct
 * behind struct accounts, its prepared statements and small helpers.
 * Not for use outside src/auth/accounts*.c.
 */
#ifndef OUTPOST_ACCOUNTS_INT_H
#define OUTPOST_ACCOUNTS_INT_H

#include <stddef.h>
#include <sodium.h>
#include <sqlite3.h>

#include "auth/accounts.h"

#define ACCT_PASS_MAX	1024
#define ACCT_ADDR_MAX	254	/* RFC 5321 4.5.3.1.3: path 256 incl. <> */

enum {
	ST_ADD,
	ST_DEL,
	ST_PASSWD,
	ST_GET,
	ST_LIST,
	ST_REHASH,
	ST_AP_FIND,
	ST_COUNT
};

struct accounts {
	sqlite3		*db;
	sqlite3_stmt	*st[ST_COUNT];
	char		 dummy[crypto_pwhash_STRBYTES]; /* "" until computed */
	struct pwhash_params dummy_pp;	/* the cost dummy was made with */
	int		 has_key;
	unsigned char	 ap_key[32];	/* app password hashing subkey */
	unsigned char	 totp_key[32];	/* TOTP secretbox subkey */
};

void	seterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	dberr(struct accounts *a, char *err, size_t errlen, const char *what);
int	exec_sql(struct accounts *a, const char *sql, char *err, size_t errlen);
int	norm_or_err(const char *email, char *out, size_t outlen, char *err,
	    size_t errlen);
void	copy_col(char *dst, size_t dstlen, sqlite3_stmt *st, int col);
int	hash_password(const char *password, size_t passlen,
	    const struct pwhash_params *pp, char out[crypto_pwhash_STRBYTES],
	    char *err, size_t errlen);

#endif
