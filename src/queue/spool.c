/*
 * spool — the durable queue on disk: write path, group commit, recovery.
 *
 * Layout under the spool directory:
 *	lock		flock()ed by the one daemon that owns the spool
 *	tmp/QID		a message being received (never acknowledged)
 *	queue/QID	a committed message: envelope header + message bytes
 *	free/NAME	files of delivered messages, kept for reuse
 *	corrupt/QID	files recovery could not read, kept for the operator
 *
 * Write path: spool_msg_begin() formats the envelope into the message
 * buffer; spool_msg_write() buffers and writes only full 64 KiB chunks,
 * creating the file at the first one.  A message that fits in the buffer
 * never touches the disk on the event loop: a sync thread opens, writes
 * and closes it (and fdatasyncs it first in FILE mode, see enum
 * spool_flush), then rename.  spool_msg_commit() queues the message; one
 * of several sync threads takes it and puts it on the synced list;
 * whichever sync thread is free to commit takes everything synced at
 * once (group commit): rename each into queue/, ONE flush for all of
 * them (an fsync of queue/, or in FILESYSTEM mode a syncfs of the file
 * system), and only then the callbacks, handed to
 * each session's event loop (one loopcall per event loop per batch).
 * syncfs instead of one fdatasync per file (FILESYSTEM): measured here,
 * 4.5 KiB messages cost 0.25 ms per batch of 1 against 0.65 ms, 0.67 ms
 * per batch of 16 against 3.5 ms; but a delivery after an outage ran 30 %
 * to 2x slower, because the syncfs also wrote out the delivery side's
 * short-lived state files (freed again, with discards, when deleted), so
 * FILE stays the default.  The two stages overlap: while the
 * committing thread waits for its flush, the others go on with the next
 * messages.  OUTPOST_SPOOL_SYNC_THREADS (1..16)
 * overrides the number of sync threads for tuning.
 *
 * Recycling (spool_retire): the file of a message that is done is
 * renamed into free/ instead of being unlinked, and a later message is
 * written over it in place instead of creating a file.  Creating and
 * deleting a file per message made ext4 scan thousands of recently
 * freed inodes on every create, under the directory lock (perf: 35 % of
 * the daemon's samples at 200 sessions).  A recycled file is reused only
 * after the next fsync of queue/ made its removal from queue/ durable,
 * so a crash can never show a reused file under its old queue id; at
 * start-up free/ is emptied, since after a crash a name there may share
 * its inode with a queue file.

 * Header block (spool_msg_set_header*): the message's header is only
 * known at the end of data, after the body was written.  A sync thread
 * builds it (DKIM signing runs there, off the event loops) and inserts it
 * after the envelope: in memory for a message still in its buffer; for
 * one that spilled to tmp/QID, by writing tmp/QID.h = envelope + header +
 * body (copy_file_range from tmp/QID, which is then unlinked) before the
 * usual fdatasync and rename into queue/QID.
 *
 * Owns: the lock fd, the queue/ directory fd, the commit and sync
 * threads, every struct spool_msg from begin to its callback/abort.
 * Fails: a message whose write, fdatasync, close or rename failed gets
 * that errno and its tmp file is unlinked; if the directory fsync fails,
 * the whole batch gets the errno and the renamed files are unlinked again
 * (never report success without durability).  Errors are logged once per
 * message, keyed by the queue id.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/log.h"
#include "util/loopcall.h"

/* Private to src/queue/ (qid.c, spool_fault.c). */
void	spool_qid_floor(const char *qid);
int	spool_faults_from_env(const struct spool_fsops **out, char *err,
	    size_t errlen);

#define SPOOL_CHUNK	(64 * 1024)	/* write unit of the message buffer */
#define SPOOL_BATCH_MAX	1024		/* messages per directory fsync */
#define SPOOL_SYNC_MAX	16		/* sync threads */
/* Measured here, 4 KiB messages, 20 producers: 1 thread 3.8k msg/s,
 * 2: 5.6k, 4: 6.5k, 8: 8.0k, 12: 8.0k, 16: 7.3k. */
#define SPOOL_SYNC_DEFAULT 8
#define SPOOL_POOL_MAX	1024		/* recycled files kept in free/ */
/* Larger files are unlinked, not kept: free/ holds at most
 * SPOOL_POOL_MAX * SPOOL_POOL_FILE_MAX = 128 MiB of disk. */
#define SPOOL_POOL_FILE_MAX (128 * 1024)

struct spool_msg {
	struct spool	*sp;
	struct spool_msg *next;		/* commit queue / callback group */
	int		 fd;		/* tmp/QID, -1 once closed */
	int		 err;		/* sticky errno; 0 = fine so far */
	int		 created;	/* tmp/QID exists (ours to unlink) */
	int		 renamed;	/* now in queue/ */
	int		 pooled;	/* the file is free/pname, recycled */
	char		 pname[SPOOL_QID_SIZE];
	off_t		 oldsize;	/* its size before, to cut what is left */
	uint64_t	 written;	/* bytes written to fd so far */
	char		 qid[SPOOL_QID_SIZE];
	char		*buf;		/* not yet written bytes */
	size_t		 len;
	size_t		 cap;
	uint64_t	 size;		/* message bytes, header excluded */
	/* Header block set at the end of data (spool_msg_set_header*):
	 * stored between the envelope and the bytes written so far. */
	char		*envtxt;	/* copy of the envelope text */
	size_t		 envlen;
	size_t		 fileenvlen;	/* envelope length in tmp/QID when it
					 * was replaced after the spill; 0:
					 * envlen */
	int		 hmode;		/* a header block is to be inserted */
	char		*hdr;		/* spool_msg_set_header() copy */
	size_t		 hdrlen;
	spool_header_fn	 hfn;		/* or built at commit by hfn */
	void		(*hfree)(void *);
	void		*harg;
	int		 alt;		/* the file is now tmp/QID.h */
	struct event_base *base;
	spool_commit_cb	 cb;
	void		*arg;
};

struct spool {
	char		*dir;
	int		 lockfd;
	int		 queuefd;	/* queue/, fsync'd once per batch */
	const struct spool_fsops *fs;
	uint64_t	 min_free;
	enum spool_flush flush;		/* FILE or FILESYSTEM */

	/* mu guards the incoming queue (head), the synced list and the
	 * flags.  Sync threads take messages from head one at a time and
	 * put them on the synced list when durable in their file; one of
	 * them at a time (committing) renames whatever is synced and
	 * fsyncs queue/ once for all of it, while the others go on with
	 * the next messages. */
	pthread_mutex_t	 mu;
	pthread_cond_t	 wcv;		/* sync threads: head / stopping */
	struct spool_msg *head;
	struct spool_msg **tailp;
	struct spool_msg *synced;
	struct spool_msg **syncedtailp;
	int		 committing;	/* a sync thread is in batch_commit */
	int		 stopping;
	pthread_t	 workers[SPOOL_SYNC_MAX];
	int		 nworkers;
	struct spool_msg **batch;	/* SPOOL_BATCH_MAX, the committer's */

	/* Recycled message files in free/ (see spool_retire()): pending
	 * ones wait for the next fsync of queue/ to make their removal
	 * from queue/ durable; ready ones may be reused. */
	pthread_mutex_t	 pmu;
	char		 pending[SPOOL_POOL_MAX][SPOOL_QID_SIZE];
	size_t		 npending;
	char		 ready[SPOOL_POOL_MAX][SPOOL_QID_SIZE];
	size_t		 nready;
	size_t		 nreserved;	/* renames into free/ under way */

	spool_notify_fn	 notify;	/* set before commits; read by the committer */
	void		*notify_arg;

	pthread_mutex_t	 smu;		/* space cache */
	struct timespec	 space_at;
	int		 space_valid;
	int		 space_result;
};

/* Default file-system calls. */

static int
fs_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static ssize_t
fs_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

/*
 * rename() that refuses to replace an existing queue file: a queue-id
 * collision must fail loudly, not overwrite an acknowledged message.
 */
static int
fs_rename(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return rename(from, to);
}

const struct spool_fsops spool_fsops_default = {
	.open = fs_open,
	.write = fs_write,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.rename = fs_rename,
	.close = close,
	.unlink = unlink,
	.syncfs = syncfs,
};

static int
spool_path(char *buf, size_t len, const char *dir, const char *sub,
    const char *name)
{
	int n;

	n = snprintf(buf, len, "%s/%s%s%s", dir, sub, name ? "/" : "",
	    name ? name : "");
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
spool_msg_path(const char *dir, const char *qid, char *buf, size_t len)
{
	if (dir == NULL || !spool_qid_valid(qid)) {
		errno = EINVAL;
		return -1;
	}
	return spool_path(buf, len, dir, "queue", qid);
}

/* --- write path (session's event-loop thread) --- */

static int	pool_take(struct spool *sp, char name[SPOOL_QID_SIZE]);
static size_t	pool_pending(struct spool *sp);
static void	pool_promote(struct spool *sp, size_t k);

/*
 * Opens the message's file: a recycled one from free/ when there is one
 * (no inode to allocate: on ext4, allocating inodes next to thousands
 * of recently deleted ones scans them all under the directory lock),
 * else a new tmp/QID.  Done at the first write-out, not at begin: a
 * small message is then created, written and synced by a sync thread,
 * and the event loop never waits on the file system.
 */
static int
msg_create(struct spool_msg *m)
{
	char path[PATH_MAX];

	while (pool_take(m->sp, m->pname)) {
		if (spool_path(path, sizeof(path), m->sp->dir, "free",
		    m->pname) < 0)
			break;
		/* overwritten in place, not truncated: blocks that stay
		 * allocated and a size that stays the same leave fdatasync
		 * only data to write (ext4 without a journal writes each
		 * changed bitmap and inode block synchronously) */
		m->fd = m->sp->fs->open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW,
		    0600);
		if (m->fd >= 0) {
			struct stat st;

			if (fstat(m->fd, &st) == 0 && S_ISREG(st.st_mode)) {
				m->oldsize = st.st_size;
				m->pooled = 1;
				m->created = 1;
				return 0;
			}
			m->sp->fs->close(m->fd);
			m->fd = -1;
			errno = EINVAL;
		}
		if (errno != ENOENT)	/* not usable: drop it, try another */
			m->sp->fs->unlink(path);
	}
	if (spool_path(path, sizeof(path), m->sp->dir, "tmp", m->qid) < 0) {
		m->err = errno;
		return -1;
	}
	/* read-write: a header set at the end copies the body out of it */
	m->fd = m->sp->fs->open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
	    0600);
	if (m->fd < 0) {
		m->err = errno ? errno : EIO;
		return -1;
	}
	m->created = 1;
	return 0;
}

/* Writes out the whole buffer; the error sticks. */
static int
msg_flush(struct spool_msg *m)
{
	size_t off = 0;

	if (m->err)
		return -1;
	if (m->fd < 0 && msg_create(m) < 0)
		return -1;
	while (off < m->len) {
		ssize_t n = m->sp->fs->write(m->fd, m->buf + off, m->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			m->err = n < 0 ? errno : EIO;
			return -1;
		}
		off += (size_t)n;
	}
	m->written += m->len;
	m->len = 0;
	return 0;
}

static void
msg_free(struct spool_msg *m)
{
	if (m->hfree != NULL)
		m->hfree(m->harg);
	free(m->hdr);
	free(m->envtxt);
	free(m->buf);
	free(m);
}

/* The message's file before the rename into queue/: tmp/QID, free/NAME
 * for a recycled file, or tmp/QID.h once a header block was inserted
 * into a message that had spilled to disk. */
static int
msg_tmp_path(const struct spool_msg *m, char *buf, size_t len)
{
	char name[SPOOL_QID_SIZE + 2];

	if (m->pooled && !m->alt)
		return spool_path(buf, len, m->sp->dir, "free", m->pname);
	snprintf(name, sizeof(name), "%s%s", m->qid, m->alt ? ".h" : "");
	return spool_path(buf, len, m->sp->dir, "tmp", name);
}

struct spool_msg *
spool_msg_begin(struct spool *sp, struct envelope *env)
{
	struct spool_msg *m;
	char *hdr = NULL;
	size_t hlen = 0;
	int e;

	if (sp == NULL || env == NULL || env->mail_from == NULL ||
	    env->nrcpts == 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->sp = sp;
	m->fd = -1;
	env->arrival = time(NULL);
	spool_qid_new(env->qid);
	if (envelope_format(env, &hdr, &hlen) < 0)
		goto fail;
	memcpy(m->qid, env->qid, SPOOL_QID_SIZE);
	if ((m->envtxt = malloc(hlen)) == NULL)
		goto fail;
	memcpy(m->envtxt, hdr, hlen);
	m->envlen = hlen;
	/* The header becomes the start of the buffer; grow it to hold a
	 * small message whole. */
	m->cap = hlen + 16 * 1024;
	if (m->cap < hlen) {
		errno = EOVERFLOW;
		goto fail;
	}
	if ((m->buf = realloc(hdr, m->cap)) == NULL)
		goto fail;
	hdr = NULL;
	m->len = hlen;
	return m;
fail:
	e = errno;
	free(hdr);
	msg_free(m);
	errno = e;
	return NULL;
}

int
spool_msg_write(struct spool_msg *m, const void *buf, size_t len)
{
	const char *p = buf;

	if (m->err) {
		errno = m->err;
		return -1;
	}
	if (len > UINT64_MAX - m->size) {
		m->err = EFBIG;
		errno = EFBIG;
		return -1;
	}
	m->size += len;
	while (len > 0) {
		size_t room = m->cap - m->len, n;

		if (room == 0) {
			if (m->cap < SPOOL_CHUNK) {
				size_t ncap = m->cap * 2;
				char *nb;

				if (ncap > SPOOL_CHUNK)
					ncap = SPOOL_CHUNK;
				if ((nb = realloc(m->buf, ncap)) == NULL) {
					m->err = ENOMEM;
					errno = ENOMEM;
					return -1;
				}
				m->buf = nb;
				m->cap = ncap;
			} else if (msg_flush(m) < 0) {
				errno = m->err;
				return -1;
			}
			continue;
		}
		n = len < room ? len : room;
		memcpy(m->buf + m->len, p, n);
		m->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
spool_msg_set_header(struct spool_msg *m, const void *buf, size_t len)
{
	char *h = NULL;

	if (len > 0 && (h = malloc(len)) == NULL) {
		if (!m->err)
			m->err = ENOMEM;
		return -1;
	}
	if (len > 0)
		memcpy(h, buf, len);
	free(m->hdr);
	m->hdr = h;
	m->hdrlen = len;
	m->hfn = NULL;
	m->hmode = 1;
	return 0;
}

int
spool_msg_set_envelope(struct spool_msg *m, const struct envelope *env)
{
	char *t = NULL;
	size_t tl = 0;

	if (m->err)
		return 0;	/* the commit reports the sticky error */
	if (strcmp(env->qid, m->qid) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (envelope_format(env, &t, &tl) < 0)
		return -1;
	if (m->fd < 0 && !m->created) {
		/* still all in memory: swap the text at the front */
		size_t need = m->len - m->envlen;

		if (tl > SIZE_MAX - need) {
			free(t);
			errno = ENOMEM;
			return -1;
		}
		need += tl;
		if (need > m->cap) {
			char *nb = realloc(m->buf, need);

			if (nb == NULL) {
				free(t);
				errno = ENOMEM;
				return -1;
			}
			m->buf = nb;
			m->cap = need;
		}
		memmove(m->buf + tl, m->buf + m->envlen, m->len - m->envlen);
		memcpy(m->buf, t, tl);
		m->len = m->len - m->envlen + tl;
	} else {
		/* spilled: the file is rewritten at commit from envtxt (the
		 * header-block path), so make sure that happens; the body
		 * is copied from after the envelope the file has */
		if (m->fileenvlen == 0)
			m->fileenvlen = m->envlen;
		m->hmode = 1;
	}
	free(m->envtxt);
	m->envtxt = t;
	m->envlen = tl;
	return 0;
}

void
spool_msg_set_header_fn(struct spool_msg *m, spool_header_fn fn,
    void (*dtor)(void *), void *arg)
{
	if (m->hfree != NULL)
		m->hfree(m->harg);
	free(m->hdr);
	m->hdr = NULL;
	m->hdrlen = 0;
	m->hfn = fn;
	m->hfree = dtor;
	m->harg = arg;
	m->hmode = 1;
}

uint64_t
spool_msg_size(const struct spool_msg *m)
{
	return m->size;
}

void
spool_msg_abort(struct spool_msg *m)
{
	char path[PATH_MAX];

	if (m == NULL)
		return;
	if (m->fd >= 0)
		m->sp->fs->close(m->fd);
	/* created and alt never hold together (msg_respill) */
	if ((m->created || m->alt) && msg_tmp_path(m, path, sizeof(path)) == 0)
		m->sp->fs->unlink(path);
	msg_free(m);
}

void
spool_msg_commit(struct spool_msg *m, struct event_base *base,
    spool_commit_cb cb, void *arg)
{
	struct spool *sp = m->sp;

	m->base = base;
	m->cb = cb;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&sp->mu);
	*sp->tailp = m;
	sp->tailp = &m->next;
	pthread_cond_signal(&sp->wcv);
	pthread_mutex_unlock(&sp->mu);
}

/* --- sync threads and the group commit --- */

static int
write_all(const struct spool_fsops *fs, int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = fs->write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The message had spilled to tmp/QID (envelope + body so far): write
 * tmp/QID.h = envelope + header + body, the body copied in the kernel
 * (copy_file_range; read/write where that is not supported), and drop
 * tmp/QID.  The caller fdatasyncs the new file.
 */
static void
msg_respill(struct spool_msg *m, const char *h, size_t hl)
{
	const struct spool_fsops *fs = m->sp->fs;
	char path[PATH_MAX], old[PATH_MAX];
	loff_t off = (loff_t)(m->fileenvlen ? m->fileenvlen : m->envlen);
	uint64_t left = m->size;
	int nfd;

	if (m->len > 0 && msg_flush(m) < 0)
		return;
	if (msg_tmp_path(m, old, sizeof(old)) < 0) {
		m->err = errno;
		return;
	}
	m->alt = 1;
	if (msg_tmp_path(m, path, sizeof(path)) < 0) {
		m->alt = 0;
		m->err = errno;
		return;
	}
	nfd = fs->open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (nfd < 0) {
		m->alt = 0;
		m->err = errno ? errno : EIO;
		return;
	}
	if (write_all(fs, nfd, m->envtxt, m->envlen) < 0 ||
	    write_all(fs, nfd, h, hl) < 0) {
		m->err = errno ? errno : EIO;
		goto done;
	}
	while (left > 0) {
		size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t n = copy_file_range(m->fd, &off, nfd, NULL, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
		    errno == EINVAL || errno == EOPNOTSUPP)) {
			char buf[65536];
			ssize_t r;

			r = pread(m->fd, buf, want < sizeof(buf) ? want :
			    sizeof(buf), off);
			if (r > 0 && write_all(fs, nfd, buf, (size_t)r) < 0)
				r = -1;
			n = r;
			if (r > 0)
				off += r;
		}
		if (n <= 0) {
			m->err = n < 0 && errno ? errno : EIO;
			goto done;
		}
		left -= (uint64_t)n;
	}
done:
	/* the old file goes either way: on success its bytes are in the
	 * new one, on failure both are unlinked (QID.h by the caller) */
	fs->close(m->fd);
	fs->unlink(old);
	m->created = 0;
	m->fd = nfd;
}

/* Inserts the header block after the envelope (sync thread). */
static void
msg_header(struct spool_msg *m)
{
	char *h = NULL;
	size_t hl = 0;

	m->hmode = 0;
	if (m->hfn != NULL) {
		errno = 0;
		if (m->hfn(m->harg, &h, &hl) < 0) {
			m->err = errno ? errno : EIO;
			return;
		}
	} else {
		h = m->hdr;
		hl = m->hdrlen;
		m->hdr = NULL;
	}
	if (m->fd < 0 && !m->created) {
		/* still all in memory: envelope | header | body */
		char *nb;

		if (hl > SIZE_MAX - m->len ||
		    (nb = realloc(m->buf, m->len + hl)) == NULL) {
			m->err = ENOMEM;
			free(h);
			return;
		}
		m->buf = nb;
		memmove(nb + m->envlen + hl, nb + m->envlen,
		    m->len - m->envlen);
		if (hl > 0)
			memcpy(nb + m->envlen, h, hl);
		m->len += hl;
		m->cap = m->len;
	} else {
		msg_respill(m, h, hl);
	}
	free(h);
}

/* write-out (+ fdatasync unless left to syncfs) + close of one message
 * (any sync thread). */
static void
msg_sync(struct spool_msg *m)
{
	const struct spool_fsops *fs = m->sp->fs;

	if (m->hmode && !m->err)
		msg_header(m);

	if (!m->err && (m->len > 0 || m->fd < 0))
		msg_flush(m);
	/* a recycled file longer than this message: cut the old tail */
	if (!m->err && m->pooled && !m->alt &&
	    (uint64_t)m->oldsize > m->written &&
	    ftruncate(m->fd, (off_t)m->written) < 0)
		m->err = errno ? errno : EIO;
	if (!m->err && m->sp->flush == SPOOL_FLUSH_FILE &&
	    fs->fdatasync(m->fd) < 0)
		m->err = errno ? errno : EIO;
	if (m->fd >= 0 && fs->close(m->fd) < 0 && !m->err)
		m->err = errno ? errno : EIO;
	m->fd = -1;
	free(m->buf);
	m->buf = NULL;
	m->len = m->cap = 0;
}

static void	batch_commit(struct spool *sp, struct spool_msg **v, size_t n);

/*
 * Sync thread: takes messages one at a time and makes each durable in
 * its file.  Then, unless another sync thread is committing already
 * (it will take this one too before it stops), it becomes the
 * committer: renames everything synced so far into queue/, fsyncs
 * queue/ once and answers, as long as there is something synced.  No
 * commit thread to wake: one thread switch less per batch.  Drains the
 * queue before it stops, so every committed message gets its callback.
 */
static void *
sync_main(void *arg)
{
	struct spool *sp = arg;
	struct spool_msg *m;
	size_t n;

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (sp->head == NULL && !sp->stopping)
			pthread_cond_wait(&sp->wcv, &sp->mu);
		if (sp->head == NULL)
			break;		/* stopping, nothing left */
		m = sp->head;
		if ((sp->head = m->next) == NULL)
			sp->tailp = &sp->head;
		m->next = NULL;
		pthread_mutex_unlock(&sp->mu);

		msg_sync(m);

		pthread_mutex_lock(&sp->mu);
		*sp->syncedtailp = m;
		sp->syncedtailp = &m->next;
		while (!sp->committing && sp->synced != NULL) {
			sp->committing = 1;
			for (n = 0; sp->synced != NULL && n < SPOOL_BATCH_MAX;
			    n++) {
				m = sp->synced;
				sp->synced = m->next;
				m->next = NULL;
				sp->batch[n] = m;
			}
			if (sp->synced == NULL)
				sp->syncedtailp = &sp->synced;
			pthread_mutex_unlock(&sp->mu);
			batch_commit(sp, sp->batch, n);
			pthread_mutex_lock(&sp->mu);
			sp->committing = 0;
		}
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

struct cb_group {
	struct spool_msg *list;
};

/* Calls back and frees every message of list. */
static void
cb_list_run(struct spool_msg *list)
{
	struct spool_msg *m, *next;

	for (m = list; m != NULL; m = next) {
		next = m->next;
		/* The callback may free its session; m is still ours. */
		m->cb(m->arg, m->err, m->qid);
		msg_free(m);
	}
}

static void
cb_group_run(void *arg)
{
	struct cb_group *g = arg;

	cb_list_run(g->list);
	free(g);
}

/* Hands list (all for one base) to that base's loop.  Never gives up:
 * every callback must run exactly once. */
static void
cb_group_post(struct event_base *base, struct spool_msg *list)
{
	struct cb_group *g;
	int warned = 0;

	if (base == NULL) {
		/* No event loop: the caller asked to be called from here. */
		cb_list_run(list);
		return;
	}
	for (;;) {
		if ((g = malloc(sizeof(*g))) != NULL) {
			g->list = list;
			if (loopcall(base, cb_group_run, g) == 0)
				return;
			free(g);
		}
		if (!warned++)
			log_err("spool: out of memory answering commits, "
			    "retrying");
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

static void
batch_answer(struct spool_msg **v, size_t n)
{
	size_t i, j;

	/* Group by event loop: one wakeup per loop per batch. */
	for (i = 0; i < n; i++) {
		struct spool_msg *head = NULL, **tail = &head;

		if (v[i] == NULL)
			continue;
		for (j = i; j < n; j++) {
			if (v[j] == NULL || v[j]->base != v[i]->base)
				continue;
			*tail = v[j];
			tail = &v[j]->next;
			*tail = NULL;
			if (j != i)
				v[j] = NULL;
		}
		v[i] = NULL;
		cb_group_post(head->base, head);
	}
}

void
spool_set_notify(struct spool *sp, spool_notify_fn fn, void *arg)
{
	pthread_mutex_lock(&sp->mu);
	sp->notify = fn;
	sp->notify_arg = arg;
	pthread_mutex_unlock(&sp->mu);
}

/* Tells the scheduler which messages of the batch are now durable. */
static void
batch_notify(struct spool *sp, struct spool_msg **v, size_t n)
{
	char (*ids)[SPOOL_QID_SIZE];
	spool_notify_fn fn;
	void *arg;
	size_t i, k = 0;

	if ((ids = malloc(n * sizeof(*ids))) == NULL) {
		/* The messages are safe on disk; the scheduler finds them
		 * at the next `outpost queue flush` (a rescan) or restart. */
		log_err("spool: out of memory notifying the scheduler");
		return;
	}
	for (i = 0; i < n; i++)
		if (v[i]->renamed)
			memcpy(ids[k++], v[i]->qid, SPOOL_QID_SIZE);
	/* Called under mu, so that spool_set_notify(NULL) returns only
	 * once no call is in flight (fn only hands the ids to a loop). */
	pthread_mutex_lock(&sp->mu);
	fn = sp->notify;
	arg = sp->notify_arg;
	if (fn != NULL && k > 0)
		fn(arg, (const char (*)[SPOOL_QID_SIZE])ids, k);
	pthread_mutex_unlock(&sp->mu);
	free(ids);
}

static void
batch_commit(struct spool *sp, struct spool_msg **v, size_t n)
{
	char from[PATH_MAX], to[PATH_MAX];
	size_t i, nrenamed = 0, pooled;
	int e, r = 0;
	/* FILESYSTEM: the files were only written; syncfs covers them too */
	int whole_fs = sp->flush == SPOOL_FLUSH_FILESYSTEM;

	for (i = 0; i < n; i++) {
		struct spool_msg *m = v[i];

		if (msg_tmp_path(m, from, sizeof(from)) < 0 ||
		    spool_path(to, sizeof(to), sp->dir, "queue", m->qid) < 0) {
			m->err = m->err ? m->err : errno;
			continue;
		}
		if (!m->err && sp->fs->rename(from, to) < 0)
			m->err = errno ? errno : EIO;
		if (m->err) {
			if (m->created || m->alt)
				sp->fs->unlink(from);
			log_err("%s: spool commit failed: %s", m->qid,
			    strerror(m->err));
			continue;
		}
		m->renamed = 1;
		nrenamed++;
	}
	/* Files retired into free/ before this fsync leave queue/ durably
	 * with it; only then may they be overwritten. */
	pooled = pool_pending(sp);
	/* one flush for the batch */
	if (nrenamed > 0)
		r = whole_fs ? sp->fs->syncfs(sp->queuefd) :
		    sp->fs->fsync(sp->queuefd);
	if (r < 0) {
		e = errno ? errno : EIO;
		log_err("spool: %s of %s/queue failed: %s; failing %zu "
		    "messages", whole_fs ? "syncfs" : "fsync", sp->dir,
		    strerror(e), nrenamed);
		for (i = 0; i < n; i++) {
			if (!v[i]->renamed)
				continue;
			if (spool_path(to, sizeof(to), sp->dir, "queue",
			    v[i]->qid) == 0)
				sp->fs->unlink(to);
			v[i]->renamed = 0;
			v[i]->err = e;
		}
	} else if (nrenamed > 0)
		pool_promote(sp, pooled);
	batch_notify(sp, v, n);
	batch_answer(v, n);
}

/* --- recycled files (free/) --- */

/* Takes a ready file name; 0 when there is none. */
static int
pool_take(struct spool *sp, char name[SPOOL_QID_SIZE])
{
	int got = 0;

	pthread_mutex_lock(&sp->pmu);
	if (sp->nready > 0) {
		memcpy(name, sp->ready[--sp->nready], SPOOL_QID_SIZE);
		got = 1;
	}
	pthread_mutex_unlock(&sp->pmu);
	return got;
}

/* How many pending files the next fsync of queue/ covers. */
static size_t
pool_pending(struct spool *sp)
{
	size_t k;

	pthread_mutex_lock(&sp->pmu);
	k = sp->npending;
	pthread_mutex_unlock(&sp->pmu);
	return k;
}

/* The first k pending files are out of queue/ for good: ready. */
static void
pool_promote(struct spool *sp, size_t k)
{
	if (k == 0)
		return;
	pthread_mutex_lock(&sp->pmu);
	if (k > sp->npending)
		k = sp->npending;
	/* ready + pending + reserved never exceed SPOOL_POOL_MAX */
	memcpy(sp->ready[sp->nready], sp->pending[0], k * SPOOL_QID_SIZE);
	sp->nready += k;
	memmove(sp->pending[0], sp->pending[k],
	    (sp->npending - k) * SPOOL_QID_SIZE);
	sp->npending -= k;
	pthread_mutex_unlock(&sp->pmu);
}

int
spool_retire(struct spool *sp, const char *qid, uint64_t size)
{
	char path[PATH_MAX], to[PATH_MAX];
	int room;

	if (spool_msg_path(sp->dir, qid, path, sizeof(path)) < 0)
		return -1;
	pthread_mutex_lock(&sp->pmu);
	room = size <= SPOOL_POOL_FILE_MAX &&
	    sp->nready + sp->npending + sp->nreserved < SPOOL_POOL_MAX;
	if (room)
		sp->nreserved++;
	pthread_mutex_unlock(&sp->pmu);
	if (room) {
		int rc = -1, e = 0;

		if (spool_path(to, sizeof(to), sp->dir, "free", qid) == 0) {
			rc = sp->fs->rename(path, to);
			e = errno;
		}
		pthread_mutex_lock(&sp->pmu);
		sp->nreserved--;
		if (rc == 0)
			memcpy(sp->pending[sp->npending++], qid,
			    SPOOL_QID_SIZE);
		pthread_mutex_unlock(&sp->pmu);
		if (rc == 0)
			return 0;
		if (e == ENOENT) {
			errno = ENOENT;
			return -1;
		}
		/* could not recycle it: remove it as usual */
	}
	return sp->fs->unlink(path);
}

/* --- open, recovery, close --- */

static int
mkdir_p(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(err, errlen, "spool directory name too long");
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", buf,
			    strerror(errno));
			return -1;
		}
		buf[i] = i == n ? '\0' : '/';
	}
	return 0;
}

static int
open_dir(const char *dir, const char *sub, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (spool_path(path, sizeof(path), dir, sub, NULL) < 0) {
		snprintf(err, errlen, "spool directory name too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
	return fd;
}

/*
 * Empties tmp/ (none of its files was acknowledged) or free/ (recycled
 * files from the last run: after a crash a name there may still share
 * its inode with a queue file, so none is reused; the pool refills as
 * messages are delivered).
 */
static int
recover_dir(struct spool *sp, const char *sub, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, removed = 0;

	if ((fd = open_dir(sp->dir, sub, err, errlen)) < 0)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "cannot read %s/%s: %s", sp->dir, sub,
		    strerror(errno));
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) < 0) {
			char esc[128];

			log_warn("spool: cannot remove %s/%s/%s: %s", sp->dir, sub,
			    log_escape(esc, sizeof(esc), de->d_name,
			    strlen(de->d_name)), strerror(errno));
			continue;
		}
		removed++;
	}
	if (removed > 0 && strcmp(sub, "tmp") == 0)
		log_info("spool: removed %d unfinished messages from %s/tmp",
		    removed, sp->dir);
	closedir(d);
	return 0;
}

/* Checks every queue/ file; moves the unreadable ones to corrupt/.
 * Returns the number of good messages, or -1. */
static int
recover_queue(struct spool *sp, char *err, size_t errlen)
{
	struct envelope env;
	struct dirent *de;
	DIR *d;
	int qfd, cfd, moved = 0, good = 0;

	if ((cfd = open_dir(sp->dir, "corrupt", err, errlen)) < 0)
		return -1;
	if ((qfd = open_dir(sp->dir, "queue", err, errlen)) < 0) {
		close(cfd);
		return -1;
	}
	if ((d = fdopendir(qfd)) == NULL) {
		snprintf(err, errlen, "cannot read %s/queue: %s", sp->dir,
		    strerror(errno));
		close(qfd);
		close(cfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		const char *why;
		char esc[128];

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (!spool_qid_valid(de->d_name))
			why = "not a queue id";
		else if (spool_read_envelope(sp->dir, de->d_name, &env,
		    NULL) == 0) {
			envelope_clear(&env);
			spool_qid_floor(de->d_name);
			good++;
			continue;
		} else if (errno == ENOENT)
			continue;
		else
			why = errno == EBADMSG ? "bad or truncated envelope" :
			    strerror(errno);
		log_escape(esc, sizeof(esc), de->d_name, strlen(de->d_name));
		if (renameat(qfd, de->d_name, cfd, de->d_name) < 0) {
			log_err("spool: %s: %s, and cannot move it to "
			    "corrupt/: %s", esc, why, strerror(errno));
			continue;
		}
		log_warn("%s: spool: %s, moved to %s/corrupt/", esc, why,
		    sp->dir);
		moved++;
	}
	if (moved > 0 && (fsync(cfd) < 0 || fsync(qfd) < 0))
		log_warn("spool: fsync after recovery: %s", strerror(errno));
	closedir(d);
	close(cfd);
	return good;
}

static void
spool_free(struct spool *sp)
{
	if (sp->queuefd >= 0)
		close(sp->queuefd);
	if (sp->lockfd >= 0)
		close(sp->lockfd);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->wcv);
	pthread_mutex_destroy(&sp->pmu);
	pthread_mutex_destroy(&sp->smu);
	free(sp->batch);
	free(sp->dir);
	free(sp);
}

static void
spool_stop_workers(struct spool *sp)
{
	int i;

	pthread_mutex_lock(&sp->mu);
	sp->stopping = 1;
	pthread_cond_broadcast(&sp->wcv);
	pthread_mutex_unlock(&sp->mu);
	for (i = 0; i < sp->nworkers; i++)
		pthread_join(sp->workers[i], NULL);
	sp->nworkers = 0;
}

/* Number of sync threads: OUTPOST_SPOOL_SYNC_THREADS (1..16) or the
 * default; more threads let ext4 merge more fdatasyncs into one journal
 * commit, at no CPU cost (they sleep in the kernel). */
static int
sync_threads(void)
{
	const char *s = getenv("OUTPOST_SPOOL_SYNC_THREADS");
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return SPOOL_SYNC_DEFAULT;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 1 || v > SPOOL_SYNC_MAX) {
		log_warn("spool: ignoring OUTPOST_SPOOL_SYNC_THREADS=%.16s "
		    "(want 1..%d)", s, SPOOL_SYNC_MAX);
		return SPOOL_SYNC_DEFAULT;
	}
	return (int)v;
}

int
spool_open(struct spool **out, const char *dir,
    const struct spool_opts *opts, char *err, size_t errlen)
{
	char path[PATH_MAX];
	const struct spool_fsops *faults = NULL;
	sigset_t all, old;
	struct spool *sp;
	int i, n, rc, nthreads;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (dir == NULL || dir[0] == '\0' || strlen(dir) > PATH_MAX - 64) {
		snprintf(err, errlen, "bad spool directory name");
		return -1;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL ||
	    (sp->dir = strdup(dir)) == NULL ||
	    (sp->batch = calloc(SPOOL_BATCH_MAX, sizeof(*sp->batch))) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (sp != NULL) {
			free(sp->dir);
			free(sp);
		}
		return -1;
	}
	sp->lockfd = sp->queuefd = -1;
	sp->tailp = &sp->head;
	sp->syncedtailp = &sp->synced;
	sp->min_free = opts ? opts->min_free_space : 0;
	sp->fs = opts && opts->fsops ? opts->fsops : &spool_fsops_default;
	sp->flush = opts ? opts->flush : SPOOL_FLUSH_FILE;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->wcv, NULL);
	pthread_mutex_init(&sp->pmu, NULL);
	pthread_mutex_init(&sp->smu, NULL);

	if (opts == NULL || opts->fsops == NULL) {
		if (spool_faults_from_env(&faults, err, errlen) < 0)
			goto fail;
		if (faults != NULL)
			sp->fs = faults;
	}
	if (sp->fs->syncfs == NULL)
		sp->flush = SPOOL_FLUSH_FILE;
	if (mkdir_p(dir, err, errlen) < 0)
		goto fail;
	if (chmod(dir, 0700) < 0 && errno != EPERM)
		log_warn("spool: chmod %s: %s", dir, strerror(errno));
	for (i = 0; i < 4; i++) {
		static const char *const subs[] = { "tmp", "queue", "corrupt",
		    "free" };

		if (spool_path(path, sizeof(path), dir, subs[i], NULL) < 0 ||
		    (mkdir(path, 0700) < 0 && errno != EEXIST)) {
			snprintf(err, errlen, "cannot create %s/%s: %s", dir,
			    subs[i], strerror(errno));
			goto fail;
		}
	}
	if (spool_path(path, sizeof(path), dir, "lock", NULL) < 0 ||
	    (sp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		snprintf(err, errlen, "cannot open %s/lock: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another outpostd is using the "
			    "spool %s (lock held)", dir);
		else
			snprintf(err, errlen, "cannot lock %s/lock: %s", dir,
			    strerror(errno));
		goto fail;
	}
	if (recover_dir(sp, "tmp", err, errlen) < 0 ||
	    recover_dir(sp, "free", err, errlen) < 0 ||
	    (n = recover_queue(sp, err, errlen)) < 0)
		goto fail;
	if ((sp->queuefd = open_dir(dir, "queue", err, errlen)) < 0)
		goto fail;

	/* Our threads take no signals: the daemon handles them on its
	 * main loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	nthreads = sync_threads();
	for (i = 0; i < nthreads; i++) {
		if ((rc = pthread_create(&sp->workers[i], NULL, sync_main,
		    sp)) != 0)
			break;
		sp->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (sp->nworkers == 0) {
		snprintf(err, errlen, "cannot start the spool's sync threads: "
		    "%s", strerror(rc));
		goto fail;
	}
	log_info("spool: recovered %d messages", n);
	*out = sp;
	return 0;
fail:
	spool_free(sp);
	return -1;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	/* the sync threads drain the queue and commit it before they end */
	spool_stop_workers(sp);
	spool_free(sp);
}

int
spool_space_ok(struct spool *sp)
{
	struct statvfs st;
	struct timespec now;
	int ok;

	if (sp->min_free == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&sp->smu);
	if (sp->space_valid && (now.tv_sec - sp->space_at.tv_sec) * 1000000000L +
	    (now.tv_nsec - sp->space_at.tv_nsec) < 1000000000L) {
		ok = sp->space_result;
		pthread_mutex_unlock(&sp->smu);
		return ok;
	}
	if (statvfs(sp->dir, &st) < 0) {
		log_err("spool: statvfs %s: %s", sp->dir, strerror(errno));
		ok = -1;
	} else {
		unsigned long long avail = (unsigned long long)st.f_bavail *
		    st.f_frsize;

		ok = avail >= sp->min_free ? 0 : -1;
		if (ok < 0 && (!sp->space_valid || sp->space_result == 0))
			log_warn("spool: only %llu bytes free on %s, below "
			    "min_free_space %llu", avail, sp->dir,
			    (unsigned long long)sp->min_free);
	}
	sp->space_at = now;
	sp->space_valid = 1;
	sp->space_result = ok;
	pthread_mutex_unlock(&sp->smu);
	return ok;
}
