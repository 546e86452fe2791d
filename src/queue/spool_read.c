/*
 * spool_read — reading committed messages: one envelope, or the whole
 * queue in queue-id order.  Used by recovery, the `outpost queue` CLI and
 * later the scheduler.  Takes no lock: a committed file is immutable
 * (written in tmp/, renamed into place), so a reader sees either the
 * whole file or no file.
 *
 * Owns: nothing beyond each call.
 * Fails: -1 with errno — ENOENT (no such message), EINVAL (not a queue
 * id), EBADMSG (unreadable envelope, or one naming another queue id),
 * or the errno of the failed system call.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/spool.h"

#define READ_FIRST	(16 * 1024)
#define READ_MAX	(8u << 20)	/* envelope.c's ENV_HEADER_MAX */

int
spool_read_envelope(const char *dir, const char *qid, struct envelope *env,
    off_t *body)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, scan = 0;
	ssize_t n, used = -1;
	int fd, e;

	memset(env, 0, sizeof(*env));
	if (spool_msg_path(dir, qid, path, sizeof(path)) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EBADMSG;
		goto fail;
	}
	for (;;) {
		char *end;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : READ_FIRST;

			if (cap >= READ_MAX) {
				errno = EBADMSG;	/* no end in sight */
				goto fail;
			}
			if ((nb = realloc(buf, ncap)) == NULL)
				goto fail;
			buf = nb;
			cap = ncap;
		}
		if ((n = read(fd, buf + len, cap - len)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0) {
			errno = EBADMSG;	/* truncated header */
			goto fail;
		}
		len += (size_t)n;
		/* The header ends with the line "." after a newline. */
		if ((end = memmem(buf + scan, len - scan, "\n.\n", 3)) != NULL)
			break;
		scan = len > 2 ? len - 2 : 0;
	}
	if ((used = envelope_parse(buf, len, env)) < 0)
		goto fail;
	if (strcmp(env->qid, qid) != 0 || (off_t)used > st.st_size) {
		envelope_clear(env);
		errno = EBADMSG;
		goto fail;
	}
	env->size = (uint64_t)(st.st_size - (off_t)used);
	if (body != NULL)
		*body = (off_t)used;
	free(buf);
	close(fd);
	return 0;
fail:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return -1;
}

static int
qid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Calls fn for every readable message of dir/queue in queue-id order; a
 * spool that does not exist yet is an empty queue.  Messages that vanish
 * while listing (delivered) are skipped, unreadable ones too (recovery
 * moves them away).  Returns the number of messages passed to fn.
 */
int
spool_list(const char *dir, spool_list_fn fn, void *ctx, char *err,
    size_t errlen)
{
	char path[PATH_MAX];
	struct envelope env;
	struct dirent *de;
	char **names = NULL, **nn;
	size_t nnames = 0, cap = 0, i;
	int count = 0, n;
	DIR *d;

	if (errlen > 0)
		err[0] = '\0';
	n = snprintf(path, sizeof(path), "%s/queue", dir ? dir : "");
	if (dir == NULL || n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "bad spool directory name");
		errno = EINVAL;
		return -1;
	}
	if ((d = opendir(path)) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!spool_qid_valid(de->d_name))
			continue;
		if (nnames == cap) {
			cap = cap ? cap * 2 : 64;
			if (cap > SIZE_MAX / sizeof(*names) ||
			    (nn = realloc(names, cap * sizeof(*names))) == NULL)
				goto oom;
			names = nn;
		}
		if ((names[nnames] = strdup(de->d_name)) == NULL)
			goto oom;
		nnames++;
	}
	if (errno != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		count = -1;
		goto done;
	}
	if (nnames > 1)	/* qsort(NULL, 0) is undefined */
		qsort(names, nnames, sizeof(*names), qid_cmp);
	for (i = 0; i < nnames; i++) {
		if (spool_read_envelope(dir, names[i], &env, NULL) < 0)
			continue;
		count++;
		n = fn(ctx, &env);
		envelope_clear(&env);
		if (n != 0)
			break;
	}
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
	count = -1;
	errno = ENOMEM;
done:
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return count;
}
