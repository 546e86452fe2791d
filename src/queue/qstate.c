/*
 * queue/qstate — the per-recipient state file of a queued message
 * (SPOOL/state/QID) and message removal.  See qstate.h for the format
 * and the durability window.
 *
 * Owns: nothing global; qstate_* allocate st->rcpts, qstate_clear frees.
 * Fails: -1 with errno; a state file that does not parse is EBADMSG (the
 * scheduler then starts the message over from "pending": a possible
 * duplicate, never a loss).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/qstate.h"
#include "queue/spool.h"

#define QS_FILE_MAX	(4u << 20)

static const char *const status_names[] = {
	"pending", "deferred", "sent", "failed",
};

const char *
qstate_status_name(enum qstate_rcpt_status s)
{
	return (unsigned)s < 4 ? status_names[s] : "?";
}

static int
status_parse(const char *s, enum qstate_rcpt_status *out)
{
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum qstate_rcpt_status)i;
			return 0;
		}
	return -1;
}

int
qstate_init(struct qstate *st, size_t nrcpts)
{
	memset(st, 0, sizeof(*st));
	if (nrcpts == 0 || nrcpts > QSTATE_RCPTS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((st->rcpts = calloc(nrcpts, sizeof(*st->rcpts))) == NULL)
		return -1;
	st->nrcpts = nrcpts;
	return 0;
}

void
qstate_clear(struct qstate *st)
{
	if (st == NULL)
		return;
	free(st->rcpts);
	free(st->hist);
	memset(st, 0, sizeof(*st));
}

static void
copy_text(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

void
qstate_hist_add(struct qstate *st, time_t when, size_t rcpt,
    enum qstate_rcpt_status status, const char *relay, const char *text)
{
	struct qstate_hist *h;

	if (st->nhist == st->histcap && st->histcap < QSTATE_HIST_MAX) {
		size_t ncap = st->histcap ? st->histcap * 2 : 2;

		if (ncap > QSTATE_HIST_MAX)
			ncap = QSTATE_HIST_MAX;
		if ((h = realloc(st->hist, ncap * sizeof(*h))) == NULL)
			return;
		st->hist = h;
		st->histcap = ncap;
	}
	if (st->nhist == QSTATE_HIST_MAX) {
		memmove(&st->hist[0], &st->hist[1],
		    (QSTATE_HIST_MAX - 1) * sizeof(st->hist[0]));
		st->nhist--;
	}
	h = &st->hist[st->nhist++];
	h->when = when;
	h->rcpt = rcpt;
	h->status = status;
	copy_text(h->relay, sizeof(h->relay), relay);
	copy_text(h->text, sizeof(h->text), text);
}

/* ---- encoding ---- */

struct qbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};

static void
qb_add(struct qbuf *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 1024;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > QS_FILE_MAX || (np = realloc(b->p, ncap)) == NULL) {
			b->err = ncap > QS_FILE_MAX ? EINVAL : ENOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
qb_printf(struct qbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
qb_printf(struct qbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = EINVAL;
		return;
	}
	qb_add(b, tmp, (size_t)n);
}

static void
qb_value(struct qbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *start = s;
	char e[3];

	if (s == NULL || *s == '\0') {
		qb_add(b, "-", 1);
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c > 0x20 && c < 0x7f && c != '%' && !(c == '-' &&
		    s == start && s[1] == '\0')) {	/* "-" alone means empty */
			qb_add(b, (const char *)&c, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		qb_add(b, e, 3);
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s into dst (truncating to len-1 bytes).  Returns 0 or -1. */
static int
value_decode(const char *s, char *dst, size_t len)
{
	size_t o = 0;

	if (strcmp(s, "-") == 0) {
		dst[0] = '\0';
		return 0;
	}
	for (; *s; s++) {
		int c = (unsigned char)*s;

		if (c == '%') {
			int h = hexval(s[1]), l = h < 0 ? -1 : hexval(s[2]);

			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			s += 2;
			if (c == 0)
				c = '?';
		}
		if (o + 1 < len)
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

int
qstate_format(const struct qstate *st, char **out, size_t *len)
{
	struct qbuf b = { 0 };
	size_t i;

	qb_printf(&b, "outpost-state 1\nattempts %d\nnext %lld\nheld %d\n"
	    "warned %d\n", st->attempts, (long long)st->next, st->held ? 1 : 0,
	    st->warned ? 1 : 0);
	for (i = 0; i < st->nrcpts; i++) {
		const struct qstate_rcpt *r = &st->rcpts[i];

		qb_printf(&b, "rcpt %zu %s %lld %d %d ", i,
		    qstate_status_name(r->status), (long long)r->when, r->code,
		    r->notified ? 1 : 0);
		qb_value(&b, r->enhanced);
		qb_add(&b, " ", 1);
		qb_value(&b, r->text);
		qb_add(&b, "\n", 1);
	}
	for (i = 0; i < st->nhist; i++) {
		const struct qstate_hist *h = &st->hist[i];

		qb_printf(&b, "hist %lld %zu %s ", (long long)h->when, h->rcpt,
		    qstate_status_name(h->status));
		qb_value(&b, h->relay);
		qb_add(&b, " ", 1);
		qb_value(&b, h->text);
		qb_add(&b, "\n", 1);
	}
	qb_add(&b, ".\n", 2);
	if (b.err) {
		free(b.p);
		errno = b.err;
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* Splits line into at most max space-separated fields. */
static int
split(char *line, char **f, int max)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(line, " ", &save); t != NULL && n < max;
	    t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	return t == NULL ? n : -1;
}

static int
num_parse(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
qstate_parse(const char *buf, size_t len, size_t nrcpts, struct qstate *st)
{
	char *copy, *line, *save = NULL, *f[8];
	long long v, w, c, nt;
	int n, first = 1, ended = 0;

	if (qstate_init(st, nrcpts) < 0)
		return -1;
	if (len > QS_FILE_MAX || (copy = malloc(len + 1)) == NULL) {
		qstate_clear(st);
		errno = len > QS_FILE_MAX ? EBADMSG : ENOMEM;
		return -1;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (ended)
			goto bad;
		if (first) {
			if (strcmp(line, "outpost-state 1") != 0)
				goto bad;
			first = 0;
			continue;
		}
		if (strcmp(line, ".") == 0) {
			ended = 1;
			continue;
		}
		if ((n = split(line, f, 8)) < 2)
			goto bad;
		if (strcmp(f[0], "attempts") == 0 && n == 2 &&
		    num_parse(f[1], 0, 1000000, &v) == 0)
			st->attempts = (int)v;
		else if (strcmp(f[0], "next") == 0 && n == 2 &&
		    num_parse(f[1], 0, (long long)1 << 40, &v) == 0)
			st->next = (time_t)v;
		else if (strcmp(f[0], "held") == 0 && n == 2 &&
		    num_parse(f[1], 0, 1, &v) == 0)
			st->held = (int)v;
		else if (strcmp(f[0], "warned") == 0 && n == 2 &&
		    num_parse(f[1], 0, 1, &v) == 0)
			st->warned = (int)v;
		else if (strcmp(f[0], "rcpt") == 0 && n == 8 &&
		    num_parse(f[1], 0, (long long)nrcpts - 1, &v) == 0 &&
		    num_parse(f[3], 0, (long long)1 << 40, &w) == 0 &&
		    num_parse(f[4], 0, 999, &c) == 0 &&
		    num_parse(f[5], 0, 1, &nt) == 0) {
			struct qstate_rcpt *r = &st->rcpts[v];

			if (status_parse(f[2], &r->status) < 0 ||
			    value_decode(f[6], r->enhanced,
			    sizeof(r->enhanced)) < 0 ||
			    value_decode(f[7], r->text, sizeof(r->text)) < 0)
				goto bad;
			r->when = (time_t)w;
			r->code = (int)c;
			r->notified = (int)nt;
		} else if (strcmp(f[0], "hist") == 0 && n == 6 &&
		    num_parse(f[1], 0, (long long)1 << 40, &w) == 0 &&
		    num_parse(f[2], 0, (long long)nrcpts - 1, &v) == 0) {
			enum qstate_rcpt_status hs;
			char relay[128], text[256];

			if (status_parse(f[3], &hs) < 0 ||
			    value_decode(f[4], relay, sizeof(relay)) < 0 ||
			    value_decode(f[5], text, sizeof(text)) < 0)
				goto bad;
			qstate_hist_add(st, (time_t)w, (size_t)v, hs, relay, text);
		} else
			goto bad;
	}
	if (!ended)
		goto bad;
	free(copy);
	return 0;
bad:
	free(copy);
	qstate_clear(st);
	errno = EBADMSG;
	return -1;
}

static int
state_path(char *buf, size_t len, const char *spool, const char *qid,
    const char *suffix)
{
	int n;

	if (!spool_qid_valid(qid)) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(buf, len, "%s/state/%s%s", spool, qid, suffix);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
qstate_read(const char *spool, const char *qid, size_t nrcpts,
    struct qstate *st, int *found)
{
	char path[PATH_MAX], *buf;
	struct stat sb;
	ssize_t n;
	size_t got = 0;
	int fd, e;

	*found = 0;
	if (state_path(path, sizeof(path), spool, qid, "") < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return qstate_init(st, nrcpts);
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > (off_t)QS_FILE_MAX) {
		e = errno ? errno : EBADMSG;
		close(fd);
		errno = e;
		return -1;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)sb.st_size) {
		n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (qstate_parse(buf, got, nrcpts, st) < 0) {
		e = errno;
		free(buf);
		errno = e;
		return -1;
	}
	free(buf);
	*found = 1;
	return 0;
}

int
qstate_write(const char *spool, const char *qid, const struct qstate *st)
{
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX], *text;
	size_t len, off = 0;
	ssize_t n;
	int fd, e;

	if (state_path(path, sizeof(path), spool, qid, "") < 0 ||
	    state_path(tmp, sizeof(tmp), spool, qid, ".tmp") < 0)
		return -1;
	if (qstate_format(st, &text, &len) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 && errno == ENOENT) {
		snprintf(dir, sizeof(dir), "%s/state", spool);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			free(text);
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	}
	if (fd < 0) {
		free(text);
		return -1;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			free(text);
			errno = e;
			return -1;
		}
		off += (size_t)n;
	}
	free(text);
	/* No fsync: see the durability window in qstate.h. */
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

void
qstate_remove(const char *spool, const char *qid)
{
	char path[PATH_MAX];

	if (state_path(path, sizeof(path), spool, qid, "") == 0)
		(void)unlink(path);	/* may not exist; qstate_gc catches leftovers */
}

int
spool_msg_remove(const char *spool, const char *qid)
{
	char path[PATH_MAX];

	if (spool_msg_path(spool, qid, path, sizeof(path)) < 0)
		return -1;
	if (unlink(path) < 0)
		return -1;
	qstate_remove(spool, qid);
	return 0;
}

int
qstate_gc(const char *spool)
{
	char dir[PATH_MAX], path[PATH_MAX], qid[SPOOL_QID_SIZE];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int removed = 0, n;

	n = snprintf(dir, sizeof(dir), "%s/state", spool);
	if (n < 0 || (size_t)n >= sizeof(dir) || (d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (len < SPOOL_QID_LEN)
			continue;
		memcpy(qid, de->d_name, SPOOL_QID_LEN);
		qid[SPOOL_QID_LEN] = '\0';
		if (!spool_qid_valid(qid))
			continue;
		if (len == SPOOL_QID_LEN && spool_msg_path(spool, qid, path,
		    sizeof(path)) == 0 && stat(path, &sb) == 0)
			continue;	/* the message is still queued */
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
		    (int)sizeof(path) && unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
