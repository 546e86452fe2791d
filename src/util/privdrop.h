/*
 * privdrop — giving up root for good after start-up (outpostd).
 *
 * outpostd started as root binds its ports, reads its certificate, keys
 * and configuration, opens the spool and the account database, and then
 * becomes the unprivileged [server] user (default "outpost") and group:
 * setgroups() to that one group, setgid(), setuid(), and a check that
 * neither the user nor the group can be taken back.  The data it writes
 * (spool, account database, anything under data_dir) is handed to that
 * user first, so the daemon can keep writing it afterwards.
 *
 * Started as another user, nothing happens: it runs as itself.
 *
 * Owns nothing.  Every function returns 0 or -1 with a plain-words
 * message in err; a failed drop must stop the daemon (the caller exits).
 */
#ifndef OUTPOST_PRIVDROP_H
#define OUTPOST_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct config;

struct privdrop {
	int	 active;	/* 1: root now, switch to uid/gid */
	uid_t	 uid;
	gid_t	 gid;
	char	 user[64];
	char	 group[64];
};

/*
 * Decides whether and to whom to drop.  Not root: active = 0, returns 0.
 * Root: the [server] user must exist when it was named in the file (and
 * must not be root); the default "outpost" missing only gives a warning
 * in warn (non-empty) and active = 0 — a root daemon on a machine where
 * the operator has not created the user yet, said loudly in the log.
 */
int	privdrop_prepare(const struct config *cfg, struct privdrop *pd,
	    char *warn, size_t warnlen, char *err, size_t errlen);

/*
 * Makes path and everything below it (not following symbolic links, not
 * crossing into other file systems, at most PRIVDROP_TREE_MAX entries)
 * owned by uid:gid.  Only entries with another owner are changed.  A
 * missing path is not an error.
 */
#define PRIVDROP_TREE_MAX	2000000
int	privdrop_chown_tree(const char *path, uid_t uid, gid_t gid,
	    char *err, size_t errlen);

/* The switch itself; irreversible.  No-op when pd->active is 0. */
int	privdrop_apply(const struct privdrop *pd, char *err, size_t errlen);

#endif
