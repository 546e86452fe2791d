/*
 * privdrop — see privdrop.h.
 *
 * The order follows Postfix's set_ugid() and the usual advice (CERT
 * POS36-C): supplementary groups first, then the group, then the user,
 * because once the user is gone there is no right left to change groups.
 * glibc applies each of these calls to every thread of the process (the
 * spool commit thread and the password threads already run), so no
 * thread keeps root.  Afterwards every way back is tried and must fail.
 *
 * Fails: -1 with a message in err; the caller exits (a half-dropped
 * daemon must not serve).
 */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/config.h"
#include "util/privdrop.h"

#define NAME_BUF	1024	/* getpwnam_r/getgrnam_r scratch */

int
privdrop_prepare(const struct config *cfg, struct privdrop *pd,
    char *warn, size_t warnlen, char *err, size_t errlen)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char buf[NAME_BUF], gbuf[NAME_BUF];
	const char *user = cfg->run_user != NULL ? cfg->run_user : "outpost";
	int rc;

	memset(pd, 0, sizeof(*pd));
	if (warn != NULL && warnlen > 0)
		warn[0] = '\0';
	if (geteuid() != 0)
		return 0;
	if (strcmp(user, "root") == 0 || strcmp(user, "0") == 0) {
		snprintf(err, errlen, "[server] user = %s: outpostd does not "
		    "serve as root; name an unprivileged user (useradd --system "
		    "outpost)", user);
		return -1;
	}
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL) {
		if (rc == 0 && !cfg->run_user_set) {
			snprintf(warn, warnlen, "running as root: there is no "
			    "user \"outpost\" to switch to; create it with "
			    "`useradd --system outpost` (or set [server] user)");
			return 0;
		}
		snprintf(err, errlen, "[server] user = %s: %s", user,
		    rc != 0 ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "[server] user = %s has uid 0; name an "
		    "unprivileged user", user);
		return -1;
	}
	pd->uid = pw.pw_uid;
	pd->gid = pw.pw_gid;
	snprintf(pd->user, sizeof(pd->user), "%s", user);
	if (cfg->run_group != NULL) {
		rc = getgrnam_r(cfg->run_group, &gr, gbuf, sizeof(gbuf), &grp);
		if (grp == NULL) {
			snprintf(err, errlen, "[server] group = %s: %s",
			    cfg->run_group, rc != 0 ? strerror(rc) :
			    "no such group");
			return -1;
		}
		if (gr.gr_gid == 0) {
			snprintf(err, errlen, "[server] group = %s has gid 0; "
			    "name an unprivileged group", cfg->run_group);
			return -1;
		}
		pd->gid = gr.gr_gid;
		snprintf(pd->group, sizeof(pd->group), "%s", cfg->run_group);
	} else if (pd->gid == 0) {
		snprintf(err, errlen, "[server] user = %s has group 0 as its "
		    "primary group; set [server] group", user);
		return -1;
	} else
		snprintf(pd->group, sizeof(pd->group), "%u",
		    (unsigned)pd->gid);
	pd->active = 1;
	return 0;
}

/* nftw() has no context argument; start-up is single-use, main thread. */
static uid_t	tree_uid;
static gid_t	tree_gid;
static long	tree_count;
static int	tree_errno;
static char	tree_path[512];

static int
tree_visit(const char *fpath, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)ftw;
	if (++tree_count > PRIVDROP_TREE_MAX) {
		tree_errno = E2BIG;
		snprintf(tree_path, sizeof(tree_path), "%s", fpath);
		return 1;
	}
	if (type == FTW_NS || type == FTW_DNR) {
		tree_errno = EACCES;
		snprintf(tree_path, sizeof(tree_path), "%s", fpath);
		return 1;
	}
	if (sb->st_uid == tree_uid && sb->st_gid == tree_gid)
		return 0;
	if (lchown(fpath, tree_uid, tree_gid) != 0) {
		tree_errno = errno;
		snprintf(tree_path, sizeof(tree_path), "%s", fpath);
		return 1;
	}
	return 0;
}

int
privdrop_chown_tree(const char *path, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	tree_uid = uid;
	tree_gid = gid;
	tree_count = 0;
	tree_errno = 0;
	tree_path[0] = '\0';
	if (nftw(path, tree_visit, 32, FTW_PHYS | FTW_MOUNT) != 0) {
		snprintf(err, errlen, "cannot hand %s to uid %u: %s: %s", path,
		    (unsigned)uid, tree_path[0] ? tree_path : path,
		    strerror(tree_errno ? tree_errno : errno));
		return -1;
	}
	return 0;
}

int
privdrop_apply(const struct privdrop *pd, char *err, size_t errlen)
{
	gid_t groups[4];
	int n;

	if (!pd->active)
		return 0;
	if (setgroups(1, &pd->gid) != 0) {
		snprintf(err, errlen, "setgroups(%u): %s", (unsigned)pd->gid,
		    strerror(errno));
		return -1;
	}
	if (setresgid(pd->gid, pd->gid, pd->gid) != 0) {
		snprintf(err, errlen, "setresgid(%u): %s", (unsigned)pd->gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(pd->uid, pd->uid, pd->uid) != 0) {
		snprintf(err, errlen, "setresuid(%u): %s", (unsigned)pd->uid,
		    strerror(errno));
		return -1;
	}
	/* No way back: each of these must now fail. */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 ||
	    setegid(0) == 0 || getuid() != pd->uid || geteuid() != pd->uid ||
	    getgid() != pd->gid || getegid() != pd->gid) {
		snprintf(err, errlen, "privileges could be regained after "
		    "switching to uid %u; refusing to run", (unsigned)pd->uid);
		return -1;
	}
	n = getgroups(4, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != pd->gid)) {
		snprintf(err, errlen, "supplementary groups left after the "
		    "switch; refusing to run");
		return -1;
	}
	/* and no set-uid program run later may raise them again */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}
