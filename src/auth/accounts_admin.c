/*
 * accounts_admin — the administrator flag of the account page
 * (users.admin, schema version 3).  An administrator sees every account,
 * can disable and enable one, and sees the queue summary (src/web).
 *
 * Set by the operator only (`outpost user admin EMAIL on|off`); nothing on
 * the page can grant it.  Errors: ACCT_* with a message in err.
 */
#include <sqlite3.h>

#include "auth/accounts.h"
#include "auth/accounts_int.h"

int
accounts_user_set_admin(struct accounts *a, const char *email, int admin,
    char *err, size_t errlen)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if (norm_or_err(email, addr, sizeof(addr), err, errlen) != 0)
		return ACCT_BADADDR;
	if (sqlite3_prepare_v2(a->db, "UPDATE users SET admin = ?2, "
	    "updated = strftime('%s','now') WHERE email = ?1", -1, &st,
	    NULL) != SQLITE_OK) {
		dberr(a, err, errlen, "prepare");
		return ACCT_ERR;
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, admin ? 1 : 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		dberr(a, err, errlen, "update");
		return ACCT_ERR;
	}
	if (sqlite3_changes(a->db) == 0) {
		seterr(err, errlen, "no such user %s", addr);
		return ACCT_NOUSER;
	}
	return ACCT_OK;
}

int
accounts_user_admin(struct accounts *a, const char *email)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st;
	int rc, v = -1;

	if (accounts_addr_normalize(email, addr, sizeof(addr)) != 0)
		return -1;
	if (sqlite3_prepare_v2(a->db, "SELECT admin FROM users WHERE "
	    "email = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return v;
}
