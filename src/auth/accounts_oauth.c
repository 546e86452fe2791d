/*
 * accounts_oauth — the account check behind an OAuth2 login.
 *
 * The identity provider vouched for the token (and did any second factor
 * itself, as with Gmail), so no password is involved: the named account
 * only has to exist and be enabled.  2FA accounts are accepted.
 *
 * Fails closed: a database error is AUTH_TEMPFAIL, anything unknown
 * AUTH_DENIED.  Cheap (one indexed SELECT); still runs on an authpool
 * thread because every struct accounts belongs to one thread.
 */
#include <string.h>

#include <sqlite3.h>

#include "auth/accounts_int.h"
#include "auth/accounts.h"

enum auth_result
accounts_lookup_login(struct accounts *a, const char *email,
    struct verify_out *out)
{
	char addr[ACCT_ADDR_MAX + 1];
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->result = AUTH_DENIED;
	if (accounts_addr_normalize(email, addr, sizeof(addr)) != 0)
		return AUTH_DENIED;
	if (sqlite3_prepare_v2(a->db, "SELECT id, email, enabled, held FROM "
	    "users WHERE email = ?1", -1, &st, NULL) != SQLITE_OK) {
		out->result = AUTH_TEMPFAIL;
		return AUTH_TEMPFAIL;
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->user_id = sqlite3_column_int64(st, 0);
		copy_col(out->canon, sizeof(out->canon), st, 1);
		out->held = sqlite3_column_int(st, 3) != 0;
		out->result = sqlite3_column_int(st, 2) != 0 ? AUTH_OK :
		    AUTH_DISABLED;
	} else if (rc != SQLITE_DONE) {
		out->result = AUTH_TEMPFAIL;
	}
	sqlite3_finalize(st);
	return out->result;
}
