/*
 * webadmin — `outpost user admin EMAIL on|off`: the administrator flag of
 * the account page (accounts_admin.c).  An administrator sees every
 * account there, disables and enables them and sees the queue summary.
 *
 * Exit codes as the other user commands: EX_USAGE, EX_NOUSER, EX_IOERR.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "util/config.h"
#include "util/log.h"

static const char admin_usage[] =
    "usage: outpost [-c FILE] user admin EMAIL on|off\n"
    "Makes EMAIL an administrator of the account page (on) or not (off):\n"
    "administrators list every account, disable and enable them, and see\n"
    "the queue summary.\n";

int
cli_user_admin(int argc, char **argv, const struct config *cfg)
{
	char err[512], addr[256], esc[128];
	struct accounts *a;
	struct stat sb;
	int on, rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(admin_usage, stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[2], "on") != 0 &&
	    strcmp(argv[2], "off") != 0)) {
		fputs(admin_usage, stderr);
		return EX_USAGE;
	}
	on = strcmp(argv[2], "on") == 0;
	if (accounts_addr_normalize(argv[1], addr, sizeof(addr)) != 0) {
		fprintf(stderr, "outpost: \"%s\" is not a full address "
		    "(user@domain)\n", log_escape(esc, sizeof(esc), argv[1],
		    strnlen(argv[1], 100)));
		return EX_DATAERR;
	}
	if (cfg == NULL || cfg->accounts_db == NULL ||
	    stat(cfg->accounts_db, &sb) == -1) {
		fprintf(stderr, "outpost: no account database (add a user "
		    "first)\n");
		return EX_NOUSER;
	}
	if ((a = accounts_open(cfg->accounts_db, 0, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "outpost: %s\n", err);
		return EX_IOERR;
	}
	rc = accounts_user_set_admin(a, addr, on, err, sizeof(err));
	accounts_close(a);
	if (rc != ACCT_OK) {
		fprintf(stderr, "outpost: %s\n", err);
		return rc == ACCT_NOUSER ? EX_NOUSER : EX_IOERR;
	}
	log_info("account %s: account page administrator %s", addr,
	    on ? "on" : "off");
	printf("user %s: account page administrator %s\n", addr,
	    on ? "on" : "off");
	return 0;
}
