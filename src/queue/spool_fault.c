/*
 * spool_fault — fault injection for the spool's file-system calls.
 *
 * OUTPOST_SPOOL_FAULTS (read by spool_open() when no fsops are given) is
 * a comma-separated list of OP:ERRNO[:AFTER] entries: OP is one of open,
 * write, fdatasync, fsync, rename, close, unlink, syncfs; ERRNO a name
 * such as EIO or ENOSPC; AFTER (default 0) how many calls of OP succeed
 * before every later call fails.  Example: "write:ENOSPC:3,fsync:EIO".  The
 * parser is strict: an unknown op or errno, a duplicate op, or any stray
 * character fails spool_open() with a message, so a typo in a test never
 * silently turns fault injection off.
 *
 * Owns: one process-wide table of faults and call counters (the fsops
 * functions take no context; the variable is process-wide anyway).
 * Fails: only at parse time.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/spool.h"
#include "util/log.h"

int	spool_faults_from_env(const struct spool_fsops **out, char *err,
	    size_t errlen);

enum { F_OPEN, F_WRITE, F_FDATASYNC, F_FSYNC, F_RENAME, F_CLOSE, F_UNLINK,
	F_SYNCFS, F_NOPS };

static const char *const fault_ops[F_NOPS] = {
	"open", "write", "fdatasync", "fsync", "rename", "close", "unlink",
	"syncfs",
};

static const struct {
	const char	*name;
	int		 value;
} fault_errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
	{ "EROFS", EROFS }, { "EACCES", EACCES }, { "EPERM", EPERM },
	{ "ENOENT", ENOENT }, { "EEXIST", EEXIST }, { "EMFILE", EMFILE },
	{ "ENFILE", ENFILE }, { "EFBIG", EFBIG }, { "ENOMEM", ENOMEM },
	{ "EINTR", EINTR }, { "EAGAIN", EAGAIN }, { "EBADF", EBADF },
	{ "ENAMETOOLONG", ENAMETOOLONG }, { "EXDEV", EXDEV },
};

struct fault {
	int		 active;
	int		 errnum;
	unsigned long	 after;
	atomic_ulong	 calls;
};

static struct fault faults[F_NOPS];

/* 1 when this call of op must fail (errno set). */
static int
fault_hit(int op)
{
	struct fault *f = &faults[op];

	if (!f->active)
		return 0;
	if (atomic_fetch_add(&f->calls, 1) < f->after)
		return 0;
	errno = f->errnum;
	return 1;
}

static int
ft_open(const char *path, int flags, mode_t mode)
{
	return fault_hit(F_OPEN) ? -1 :
	    spool_fsops_default.open(path, flags, mode);
}

static ssize_t
ft_write(int fd, const void *buf, size_t len)
{
	return fault_hit(F_WRITE) ? -1 :
	    spool_fsops_default.write(fd, buf, len);
}

static int
ft_fdatasync(int fd)
{
	return fault_hit(F_FDATASYNC) ? -1 : spool_fsops_default.fdatasync(fd);
}

static int
ft_fsync(int fd)
{
	return fault_hit(F_FSYNC) ? -1 : spool_fsops_default.fsync(fd);
}

static int
ft_rename(const char *from, const char *to)
{
	return fault_hit(F_RENAME) ? -1 : spool_fsops_default.rename(from, to);
}

static int
ft_close(int fd)
{
	/* The descriptor is released even when the call "fails", as
	 * close(2) does on Linux. */
	int fail = fault_hit(F_CLOSE), e = errno;

	spool_fsops_default.close(fd);
	if (fail) {
		errno = e;
		return -1;
	}
	return 0;
}

static int
ft_unlink(const char *path)
{
	return fault_hit(F_UNLINK) ? -1 : spool_fsops_default.unlink(path);
}

static int
ft_syncfs(int fd)
{
	return fault_hit(F_SYNCFS) ? -1 : spool_fsops_default.syncfs(fd);
}

static const struct spool_fsops fault_fsops = {
	.open = ft_open,
	.write = ft_write,
	.fdatasync = ft_fdatasync,
	.fsync = ft_fsync,
	.rename = ft_rename,
	.close = ft_close,
	.unlink = ft_unlink,
	.syncfs = ft_syncfs,
};

static int
parse_entry(const char *s, size_t n, struct fault *tab, char *err,
    size_t errlen)
{
	const char *c1, *c2, *end = s + n;
	size_t k, oplen, elen;
	int op = -1, ev = 0;
	unsigned long after = 0;

	if ((c1 = memchr(s, ':', n)) == NULL)
		goto bad;
	oplen = (size_t)(c1 - s);
	c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	elen = (size_t)((c2 ? c2 : end) - c1 - 1);
	for (k = 0; k < F_NOPS; k++)
		if (strlen(fault_ops[k]) == oplen &&
		    memcmp(fault_ops[k], s, oplen) == 0)
			op = (int)k;
	for (k = 0; k < sizeof(fault_errnos) / sizeof(fault_errnos[0]); k++)
		if (strlen(fault_errnos[k].name) == elen &&
		    memcmp(fault_errnos[k].name, c1 + 1, elen) == 0)
			ev = fault_errnos[k].value;
	if (op < 0 || ev == 0)
		goto bad;
	if (c2 != NULL) {
		const char *p = c2 + 1;

		if (p == end || end - p > 9)
			goto bad;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				goto bad;
			after = after * 10 + (unsigned long)(*p - '0');
		}
	}
	if (tab[op].active) {
		snprintf(err, errlen, "OUTPOST_SPOOL_FAULTS: %s listed twice",
		    fault_ops[op]);
		return -1;
	}
	tab[op].active = 1;
	tab[op].errnum = ev;
	tab[op].after = after;
	return 0;
bad:
	snprintf(err, errlen, "OUTPOST_SPOOL_FAULTS: bad entry \"%.*s\" "
	    "(want OP:ERRNO[:AFTER], e.g. fdatasync:EIO or write:ENOSPC:3)",
	    (int)(n > 64 ? 64 : n), s);
	return -1;
}

/*
 * Parses OUTPOST_SPOOL_FAULTS.  Returns 0 with *out = NULL when unset,
 * 0 with *out = the fault-injecting fsops (counters reset), or -1 with a
 * message in err.
 */
int
spool_faults_from_env(const struct spool_fsops **out, char *err,
    size_t errlen)
{
	struct fault tab[F_NOPS];
	const char *s = getenv("OUTPOST_SPOOL_FAULTS"), *p;
	char esc[256];
	size_t len;
	int k;

	*out = NULL;
	if (s == NULL)
		return 0;
	memset(tab, 0, sizeof(tab));
	len = strlen(s);
	if (len == 0 || len > 1024) {
		snprintf(err, errlen, "OUTPOST_SPOOL_FAULTS: empty or too long");
		return -1;
	}
	for (p = s; ; ) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (parse_entry(p, n, tab, err, errlen) < 0)
			return -1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	for (k = 0; k < F_NOPS; k++) {
		faults[k].active = tab[k].active;
		faults[k].errnum = tab[k].errnum;
		faults[k].after = tab[k].after;
		atomic_store(&faults[k].calls, 0);
	}
	log_warn("spool: fault injection is active: OUTPOST_SPOOL_FAULTS=%s",
	    log_escape(esc, sizeof(esc), s, len));
	*out = &fault_fsops;
	return 0;
}
