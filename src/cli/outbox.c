/*
 * outbox — the durable outbox of `outpost sendmail` and `outpost outbox
 * list|flush` (see outbox.h for the layout and the commit order).
 *
 * Owns the files under the outbox directory.  Every write that makes a
 * message or a state change durable goes through outbox_write_env()
 * (temporary file, fsync, rename, fsync of the directory), so a crash at
 * any point leaves either the old state or the new one.  Envelope files
 * are parsed with bounds (OUTBOX_ENV_MAX octets, MSG_RCPT_MAX
 * recipients) because anyone who can write there could feed us junk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/accounts_file.h"
#include "cli/client.h"
#include "cli/message.h"
#include "cli/outbox.h"

#define OUTBOX_ENV_MAX		(512 * 1024)
#define OUTBOX_LIFETIME		(5 * 86400)	/* then give up, as MTAs do */
#define OUTBOX_ORPHAN_AGE	86400		/* stray .eml / tmp files */

int
outbox_dir(char *buf, size_t len)
{
	const char	*o = getenv("OUTPOST_OUTBOX");
	const char	*x = getenv("XDG_STATE_HOME");
	const char	*h = getenv("HOME");
	int		 n;

	if (o != NULL && *o == '/')
		n = snprintf(buf, len, "%s", o);
	else if (x != NULL && *x == '/')
		n = snprintf(buf, len, "%s/outpost/outbox", x);
	else if (h != NULL && *h != '\0')
		n = snprintf(buf, len, "%s/.local/state/outpost/outbox", h);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* mkdir -p with mode 0700 for the last component (and parents we make). */
static int
mkdirs(const char *path)
{
	char	 tmp[PATH_MAX];
	char	*p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int	 fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
outbox_tmp_open(struct outbox_tmp *t, char *err, size_t errlen)
{
	char		 tmpdir[PATH_MAX / 2 + 8];
	struct stat	 sb;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (outbox_dir(t->dir, sizeof(t->dir)) == -1) {
		snprintf(err, errlen, "no outbox directory (set HOME or "
		    "OUTPOST_OUTBOX)");
		return -1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", t->dir);
	if (mkdirs(tmpdir) == -1) {
		snprintf(err, errlen, "cannot create the outbox %s: %s",
		    t->dir, strerror(errno));
		return -1;
	}
	/* our mail only: an outbox others can read or write is refused */
	if (stat(t->dir, &sb) == -1 || (sb.st_mode & 077) != 0 ||
	    sb.st_uid != geteuid()) {
		snprintf(err, errlen, "the outbox %s must be a directory of "
		    "yours with mode 0700", t->dir);
		return -1;
	}
	snprintf(t->id, sizeof(t->id), "%lld-%08x%08x",
	    (long long)time(NULL), randombytes_random(),
	    randombytes_random());
	snprintf(t->path, sizeof(t->path), "%s/%s.eml", tmpdir, t->id);
	t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (t->fd == -1) {
		snprintf(err, errlen, "cannot create %s: %s", t->path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
outbox_tmp_discard(struct outbox_tmp *t)
{
	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
	if (t->path[0] != '\0')
		unlink(t->path);
	t->path[0] = '\0';
}

/* One-line value: control bytes become '?', so the file stays parsable. */
static void
put_value(FILE *fp, const char *key, const char *v)
{
	fprintf(fp, "%s ", key);
	for (; *v != '\0'; v++)
		fputc((unsigned char)*v < 0x20 || *v == 0x7f ? '?' : *v, fp);
	fputc('\n', fp);
}

/* Writes dir/ID.SUFFIX atomically and durably. */
static int
outbox_write_env(const char *dir, const char *id, const char *suffix,
    const char *account, const char *from, char *const *rcpts, size_t n,
    long long created, int attempts, const char *why)
{
	char	 tmp[PATH_MAX], dst[PATH_MAX];
	FILE	*fp;
	size_t	 i;
	int	 fd, ok;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s.env", dir, id);
	snprintf(dst, sizeof(dst), "%s/%s.%s", dir, id, suffix);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	put_value(fp, "account", account != NULL ? account : "");
	put_value(fp, "from", from);
	for (i = 0; i < n; i++)
		put_value(fp, "rcpt", rcpts[i]);
	fprintf(fp, "created %lld\nattempts %d\n", created, attempts);
	if (why != NULL)
		put_value(fp, "error", why);
	ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok || rename(tmp, dst) == -1) {
		unlink(tmp);
		return -1;
	}
	return fsync_dir(dir);
}

int
outbox_commit(struct outbox_tmp *t, const char *account, const char *from,
    char *const *rcpts, size_t nrcpts, const char *why, char *err,
    size_t errlen)
{
	char	 eml[PATH_MAX];

	snprintf(eml, sizeof(eml), "%s/%s.eml", t->dir, t->id);
	if (fsync(t->fd) == -1 || rename(t->path, eml) == -1) {
		snprintf(err, errlen, "cannot store the message in the outbox: "
		    "%s", strerror(errno));
		return -1;
	}
	t->path[0] = '\0';
	close(t->fd);
	t->fd = -1;
	if (outbox_write_env(t->dir, t->id, "env", account, from, rcpts,
	    nrcpts, (long long)time(NULL), 1, why) == -1) {
		snprintf(err, errlen, "cannot store the envelope in the outbox: "
		    "%s", strerror(errno));
		unlink(eml);
		return -1;
	}
	return 0;
}

struct outbox_env {
	char		*account;
	char		*from;
	struct msg_rcpts rcpts;
	long long	 created;
	int		 attempts;
	char		*error;
};

static void
env_free(struct outbox_env *e)
{
	free(e->account);
	free(e->from);
	free(e->error);
	msg_rcpts_free(&e->rcpts);
	memset(e, 0, sizeof(*e));
}

static int
env_read(const char *path, struct outbox_env *e)
{
	FILE	*fp;
	char	*line = NULL, *v;
	size_t	 cap = 0, total = 0;
	ssize_t	 n;
	int	 rc = -1;

	memset(e, 0, sizeof(*e));
	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	while ((n = getline(&line, &cap, fp)) > 0) {
		total += (size_t)n;
		if (total > OUTBOX_ENV_MAX)
			goto out;
		line[strcspn(line, "\n")] = '\0';
		if ((v = strchr(line, ' ')) == NULL)
			continue;
		*v++ = '\0';
		if (strcmp(line, "account") == 0) {
			free(e->account);
			e->account = strdup(v);
		} else if (strcmp(line, "from") == 0) {
			free(e->from);
			e->from = strdup(v);
		} else if (strcmp(line, "rcpt") == 0) {
			if (msg_rcpt_add(&e->rcpts, v, strlen(v), NULL) == -1)
				goto out;
		} else if (strcmp(line, "created") == 0)
			e->created = strtoll(v, NULL, 10);
		else if (strcmp(line, "attempts") == 0)
			e->attempts = atoi(v);
		else if (strcmp(line, "error") == 0) {
			free(e->error);
			e->error = strdup(v);
		}
	}
	if (e->from != NULL && e->rcpts.n > 0)
		rc = 0;
out:
	free(line);
	fclose(fp);
	if (rc == -1)
		env_free(e);
	return rc;
}

/* Sends one entry.  Returns 1 when it is gone (sent or failed for good),
 * 0 when it waits, -1 on a local error. */
static int
outbox_try(const char *dir, const char *id, const char *accounts_path,
    const char *conf, int quiet)
{
	struct outbox_env	 e;
	struct acct		 a;
	struct cli_submit	 req;
	struct smtpc_status	 st;
	struct smtpc_rcpt	*r = NULL;
	struct msg_rcpts	 left = { NULL, 0 };
	char			 path[PATH_MAX], eml[PATH_MAX], err[512];
	char			 why[SMTPC_TEXT_MAX + 64];
	char			 lsock[256], ldomain[256];
	struct stat		 sb;
	size_t			 i;
	int			 fd = -1, rc = 0, session, lrc, nperm = 0;
	int			 local;

	snprintf(path, sizeof(path), "%s/%s.env", dir, id);
	snprintf(eml, sizeof(eml), "%s/%s.eml", dir, id);
	if (env_read(path, &e) == -1) {
		fprintf(stderr, "outpost: outbox: %s: unreadable envelope, "
		    "kept as %s.failed\n", id, id);
		snprintf(eml, sizeof(eml), "%s/%s.failed", dir, id);
		rename(path, eml);
		return 1;
	}
	acct_init(&a);
	local = e.account != NULL && strcmp(e.account, OUTBOX_LOCAL) == 0;
	if (local) {
		/* for the local outpostd: its socket, when it is there */
		lrc = cli_local_socket(conf, lsock, sizeof(lsock), ldomain,
		    sizeof(ldomain), err, sizeof(err));
		if (lrc == 0)
			snprintf(err, sizeof(err), "no local outpostd socket "
			    "configured ([local] socket)");
		if (lrc != 1 || acct_set(&a.host, lsock) == -1) {
			fprintf(stderr, "outpost: outbox: %s: %s\n", id, err);
			rc = 0;
			goto out;
		}
		a.port = 0;
		a.tls = ACCT_TLS_NONE;
	} else {
		lrc = acct_file_load(accounts_path, e.account != NULL &&
		    *e.account != '\0' ? e.account : NULL, &a, err,
		    sizeof(err));
		if (lrc == 1)
			snprintf(err, sizeof(err), "no accounts file %s",
			    accounts_path);
		if (lrc != 0 || acct_finish(&a, err, sizeof(err)) == -1) {
			fprintf(stderr, "outpost: outbox: %s: %s\n", id, err);
			rc = 0;
			goto out;
		}
	}
	if ((fd = open(eml, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		fprintf(stderr, "outpost: outbox: %s: message file missing\n",
		    id);
		rename(path, (snprintf(eml, sizeof(eml), "%s/%s.failed", dir,
		    id), eml));
		rc = 1;
		goto out;
	}
	if ((r = calloc(e.rcpts.n, sizeof(*r))) == NULL) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < e.rcpts.n; i++)
		r[i].addr = e.rcpts.v[i];
	memset(&req, 0, sizeof(req));
	req.a = &a;
	req.from = e.from;
	req.rcpts = r;
	req.nrcpts = e.rcpts.n;
	req.body.fd = fd;
	req.body.length = -1;
	req.body.size = (uint64_t)sb.st_size;
	req.timeout = 60;
	req.connect_timeout = 15;
	req.local_socket = local ? lsock : NULL;
	cli_submit_run(&req, &st, &session);
	smtpc_status_format(&st, why, sizeof(why));

	if (session || st.result == SMTPC_TEMPFAIL) {
		if (st.result == SMTPC_OK)
			goto done;
		for (i = 0; i < e.rcpts.n; i++) {
			if (!session && r[i].result == SMTPC_OK)
				continue;
			if (!session && r[i].result == SMTPC_PERMFAIL) {
				nperm++;
				fprintf(stderr, "outpost: outbox: %s: <%s> "
				    "refused: %d %s %s\n", id, r[i].addr,
				    r[i].code, r[i].enhanced, r[i].text);
				continue;
			}
			msg_rcpt_add(&left, r[i].addr, strlen(r[i].addr),
			    NULL);
		}
	} else {
		for (i = 0; i < e.rcpts.n; i++) {
			if (r[i].result == SMTPC_TEMPFAIL)
				msg_rcpt_add(&left, r[i].addr,
				    strlen(r[i].addr), NULL);
			else if (r[i].result == SMTPC_PERMFAIL) {
				nperm++;
				fprintf(stderr, "outpost: outbox: %s: <%s> "
				    "refused: %d %s %s\n", id, r[i].addr,
				    r[i].code, r[i].enhanced, r[i].text);
			}
		}
	}
done:
	if (left.n == 0) {
		if (nperm > 0) {
			/* keep the message and why, for `outbox list` */
			outbox_write_env(dir, id, "failed", e.account, e.from,
			    e.rcpts.v, e.rcpts.n, e.created, e.attempts + 1,
			    why);
			unlink(path);
		} else {
			unlink(path);
			unlink(eml);
			if (!quiet)
				printf("%s: sent\n", id);
		}
		fsync_dir(dir);
		rc = 1;
	} else if (time(NULL) - e.created > OUTBOX_LIFETIME) {
		fprintf(stderr, "outpost: outbox: %s: giving up after 5 days: "
		    "%s\n", id, why);
		outbox_write_env(dir, id, "failed", e.account, e.from, left.v,
		    left.n, e.created, e.attempts + 1, why);
		unlink(path);
		fsync_dir(dir);
		rc = 1;
	} else {
		if (outbox_write_env(dir, id, "env", e.account, e.from, left.v,
		    left.n, e.created, e.attempts + 1, why) == -1)
			rc = -1;
		if (!quiet || st.result != SMTPC_OK)
			fprintf(stderr, "outpost: outbox: %s: still waiting: "
			    "%s\n", id, why);
	}
out:
	if (fd != -1)
		close(fd);
	free(r);
	msg_rcpts_free(&left);
	acct_free(&a);
	env_free(&e);
	return rc;
}

/* Calls fn for every "ID.SUFFIX" in dir, in name (= age) order. */
static int
outbox_ids(const char *dir, const char *suffix, char ***ids, size_t *n)
{
	struct dirent	**list = NULL;
	int		 cnt, i;
	size_t		 sl = strlen(suffix), l;

	*ids = NULL;
	*n = 0;
	if ((cnt = scandir(dir, &list, NULL, alphasort)) == -1)
		return errno == ENOENT ? 0 : -1;
	if ((*ids = calloc((size_t)cnt + 1, sizeof(char *))) == NULL)
		cnt = 0;
	for (i = 0; i < cnt; i++) {
		l = strlen(list[i]->d_name);
		if (*ids != NULL && list[i]->d_name[0] != '.' && l > sl + 1 &&
		    strcmp(list[i]->d_name + l - sl, suffix) == 0 &&
		    list[i]->d_name[l - sl - 1] == '.')
			(*ids)[(*n)++] = strndup(list[i]->d_name, l - sl - 1);
		free(list[i]);
	}
	free(list);
	return *ids == NULL ? -1 : 0;
}

static void
ids_free(char **ids, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int
outbox_flush(const char *accounts_path, int quiet)
{
	return outbox_flush_conf(accounts_path, NULL, quiet);
}

int
outbox_flush_conf(const char *accounts_path, const char *conf, int quiet)
{
	char	 dir[PATH_MAX / 2], lock[PATH_MAX], **ids;
	size_t	 n, i;
	int	 fd, waiting = 0, r;

	if (outbox_dir(dir, sizeof(dir)) == -1)
		return -1;
	if (access(dir, F_OK) == -1)
		return 0;
	snprintf(lock, sizeof(lock), "%s/.lock", dir);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		/* another flush runs: it will do the work */
		close(fd);
		return 0;
	}
	if (outbox_ids(dir, "env", &ids, &n) == -1) {
		close(fd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		r = outbox_try(dir, ids[i], accounts_path, conf, quiet);
		if (r == 0)
			waiting++;
		else if (r == -1)
			waiting = waiting >= 0 ? waiting + 1 : waiting;
	}
	ids_free(ids, n);
	close(fd);
	return waiting;
}

static void
outbox_show(const char *dir, const char *id, const char *suffix)
{
	struct outbox_env	 e;
	char			 path[PATH_MAX], when[64];
	struct stat		 sb;
	struct tm		 tm;
	time_t			 t;
	size_t			 i;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, id, suffix);
	if (env_read(path, &e) == -1) {
		printf("%s  (unreadable envelope)\n", id);
		return;
	}
	t = (time_t)e.created;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	snprintf(path, sizeof(path), "%s/%s.eml", dir, id);
	printf("%s  %s  %lld bytes  %s  attempts=%d%s%s\n", id, when,
	    stat(path, &sb) == 0 ? (long long)sb.st_size : -1LL,
	    strcmp(suffix, "failed") == 0 ? "FAILED" : "waiting",
	    e.attempts, e.account != NULL && *e.account ? "  account=" : "",
	    e.account != NULL ? e.account : "");
	printf("    from=<%s>\n", e.from);
	for (i = 0; i < e.rcpts.n; i++)
		printf("    to=<%s>\n", e.rcpts.v[i]);
	if (e.error != NULL)
		printf("    last error: %s\n", e.error);
	env_free(&e);
}

static const char outbox_usage[] =
    "usage: outpost outbox list\n"
    "       outpost outbox flush [-q] [--accounts FILE] [-C OUTPOST.CONF]\n";

int
cli_outbox(int argc, char **argv, const struct config *cfg)
{
	char	 dir[PATH_MAX / 2], apath[PATH_MAX], **ids;
	size_t	 n, i;
	int	 quiet = 0, w;
	const char *accounts = NULL, *conf = NULL;

	(void)cfg;
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fputs(outbox_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	for (i = 2; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "-q") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--accounts") == 0 &&
		    i + 1 < (size_t)argc)
			accounts = argv[++i];
		else if ((strcmp(argv[i], "-C") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < (size_t)argc)
			conf = argv[++i];	/* for the [local] socket */
		else {
			fputs(outbox_usage, stderr);
			return EX_USAGE;
		}
	}
	if (outbox_dir(dir, sizeof(dir)) == -1) {
		fprintf(stderr, "outpost: no outbox directory (set HOME or "
		    "OUTPOST_OUTBOX)\n");
		return EX_CONFIG;
	}
	if (strcmp(argv[1], "list") == 0) {
		if (outbox_ids(dir, "env", &ids, &n) == -1)
			goto ioerr;
		for (i = 0; i < n; i++)
			outbox_show(dir, ids[i], "env");
		w = (int)n;
		ids_free(ids, n);
		if (outbox_ids(dir, "failed", &ids, &n) == -1)
			goto ioerr;
		for (i = 0; i < n; i++)
			outbox_show(dir, ids[i], "failed");
		ids_free(ids, n);
		if (w == 0 && n == 0 && !quiet)
			printf("outbox is empty\n");
		return EX_OK;
	}
	if (strcmp(argv[1], "flush") == 0) {
		if (accounts == NULL) {
			/* without one, only the local socket's entries go */
			if (acct_file_path(apath, sizeof(apath)) == -1)
				apath[0] = '\0';
			accounts = apath;
		}
		w = outbox_flush_conf(accounts, conf, quiet);
		if (w < 0)
			goto ioerr;
		if (!quiet)
			printf("%d message(s) still waiting\n", w);
		return w == 0 ? EX_OK : EX_TEMPFAIL;
	}
	fputs(outbox_usage, stderr);
	return EX_USAGE;
ioerr:
	fprintf(stderr, "outpost: cannot read the outbox %s: %s\n", dir,
	    strerror(errno));
	return EX_IOERR;
}
