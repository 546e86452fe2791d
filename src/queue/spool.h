/*
 * spool — the durable queue on disk.
 *
 * Contract: spool_msg_commit() calls back with 0 only once the message,
 * its envelope and its directory entry are on stable storage (file
 * written, renamed into place, then flushed: see enum spool_flush).  "250" after DATA is
 * sent from that callback and from nowhere else.
 *
 * One file per message: a small, versioned, human-readable envelope header
 * followed by the message bytes exactly as they will be relayed (CRLF line
 * ends, dot-unstuffed).  The file is built in SPOOL/tmp/ and renamed into
 * SPOOL/queue/ when it is durable; anything left in tmp/ at start-up was
 * never acknowledged and is removed by recovery.
 *
 * Group commit: sync threads write (and in FILE mode fdatasync) each
 * message whose session has finished its DATA; one of them at a time
 * renames every message written so far into queue/, makes the whole batch
 * durable with one flush (fsync of queue/, or syncfs) and only then
 * answers each session, on that session's own event loop.
 *
 * Faults: every file-system call goes through struct spool_fsops so that
 * tests can inject ENOSPC/EIO on any write or fsync.  A failed message is
 * never renamed into queue/ and its callback gets the errno.
 *
 * Locking: spool_open() takes an exclusive flock() on SPOOL/lock; a second
 * daemon on the same spool fails to start with a clear message.  CLI
 * readers (queue list/show) do not take the lock.
 */
#ifndef OUTPOST_SPOOL_H
#define OUTPOST_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct event_base;

/* Sortable, unique queue id: fixed width, uppercase base32-ish. */
#define SPOOL_QID_LEN	16
#define SPOOL_QID_SIZE	(SPOOL_QID_LEN + 1)

enum env_body { ENV_BODY_7BIT, ENV_BODY_8BITMIME, ENV_BODY_BINARYMIME };

/* DSN NOTIFY flags (RFC 3461); 0 means "not given". */
#define ENV_NOTIFY_NEVER	0x01
#define ENV_NOTIFY_SUCCESS	0x02
#define ENV_NOTIFY_FAILURE	0x04
#define ENV_NOTIFY_DELAY	0x08

enum env_ret { ENV_RET_UNSET, ENV_RET_FULL, ENV_RET_HDRS };

struct envelope_rcpt {
	char	*addr;		/* without <>; never empty */
	char	*orcpt;		/* DSN ORCPT= as given (xtext), or NULL */
	unsigned notify;	/* ENV_NOTIFY_* */
};

struct envelope {
	char	 qid[SPOOL_QID_SIZE];
	char	*mail_from;	/* without <>; "" for the null sender */
	char	*auth_user;	/* authenticated login, or NULL */
	char	*client_addr;	/* "203.0.113.9" / "2001:db8::1" */
	char	*helo;		/* HELO/EHLO argument */
	char	*envid;		/* DSN ENVID= or NULL */
	enum env_ret ret;
	enum env_body body;
	int	 smtputf8;
	time_t	 arrival;	/* set by spool_msg_begin() */
	/* DKIM signing, decided at submission, done at delivery: the
	 * signing domain (NULL = do not sign) and the body hash (relaxed
	 * canonicalisation, SHA-256) computed while the body arrived. */
	char	*dkim_domain;
	unsigned char dkim_bh[32];
	struct envelope_rcpt *rcpts;
	size_t	 nrcpts;
	uint64_t size;		/* message bytes; filled in by the reader */
};

/* Frees the strings and the rcpts array, not env itself. */
void	envelope_clear(struct envelope *env);

/* Seam over file-system calls (fault injection in tests). */
struct spool_fsops {
	int	(*open)(const char *path, int flags, mode_t mode);
	ssize_t	(*write)(int fd, const void *buf, size_t len);
	int	(*fdatasync)(int fd);
	int	(*fsync)(int fd);
	int	(*rename)(const char *from, const char *to);
	int	(*close)(int fd);
	int	(*unlink)(const char *path);
	/* NULL: the spool flushes every file itself (SPOOL_FLUSH_FILE) */
	int	(*syncfs)(int fd);
};
/* The real calls. */
extern const struct spool_fsops spool_fsops_default;

/*
 * How a commit makes its batch durable.  FILE (the default): fdatasync
 * of every message file, then one fsync of queue/ for the batch (at
 * least one device flush per message).  FILESYSTEM: the files are only
 * written, then one syncfs() of the spool's file system covers every file
 * and rename of the batch (one flush for all of it), but it also writes
 * out everything else unwritten on that file system, short-lived files
 * included (the delivery side's state files, other programs' temporary
 * files) that would otherwise be deleted before ever reaching the disk.
 */
enum spool_flush {
	SPOOL_FLUSH_FILE = 0,
	SPOOL_FLUSH_FILESYSTEM
};

struct spool_opts {
	uint64_t min_free_space;	/* bytes; 0 = no check */
	const struct spool_fsops *fsops; /* NULL = spool_fsops_default */
	enum spool_flush flush;		/* FILE when fsops has no syncfs */
};

struct spool;
struct spool_msg;

/*
 * Opens (creating if needed) the spool at dir: takes the lock, recovers
 * (removes tmp/ leftovers, drops unreadable or truncated queue files into
 * SPOOL/corrupt/ with a log line), starts the sync threads.
 * Returns 0, or -1 with a plain-words message in err ("another outpostd
 * holds the spool lock at …").
 *
 * The environment variable OUTPOST_SPOOL_FAULTS, when set, installs a
 * fault-injecting fsops for integration tests: a comma-separated list of
 * OP:ERRNO[:AFTER] entries, e.g. "fdatasync:EIO" or "write:ENOSPC:3"
 * (fail every call to OP after the first AFTER successful ones).
 */
int	spool_open(struct spool **out, const char *dir,
	    const struct spool_opts *opts, char *err, size_t errlen);
/* Stops the sync threads after they have answered every pending commit. */
void	spool_close(struct spool *sp);

/* 0 when at least min_free_space is free on the spool's file system,
 * -1 otherwise (MAIL then gets 452 4.3.1). Cheap enough to call per MAIL
 * (statvfs is cached for one second). */
int	spool_space_ok(struct spool *sp);

/*
 * Starts a message: allocates the queue id (copied into env->qid) and
 * sets env->arrival, and buffers the envelope header.  SPOOL/tmp/QID is
 * created at the first 64 KiB write-out, or by a sync thread for a
 * message that fits in the buffer, so the event loop does not wait on
 * the file system for small messages; an error creating it is reported
 * by spool_msg_write() or by the commit callback.
 * env must hold mail_from and every recipient already.  Returns NULL with
 * errno set on failure (EINVAL for an envelope that cannot be stored,
 * ENOMEM).  The caller then writes the message bytes and either commits
 * or aborts; it never frees the msg otherwise.
 */
struct spool_msg *spool_msg_begin(struct spool *sp, struct envelope *env);

/* Appends message bytes (buffered; written in large chunks).  Returns 0,
 * or -1 and the error sticks: later writes are no-ops and the commit
 * reports that errno. */
int	spool_msg_write(struct spool_msg *m, const void *buf, size_t len);

/*
 * The message's header block, known only at the end of data: stored
 * between the envelope and the bytes given to spool_msg_write(), so the
 * file stays "envelope, then the full message".  Call before
 * spool_msg_commit().  A small message is assembled in memory; one that
 * has spilled to tmp/ is rewritten at commit (envelope + header, the body
 * copied with copy_file_range) before its fdatasync.  set_header copies
 * buf; returns 0 or -1 (ENOMEM, sticky).
 */
int	spool_msg_set_header(struct spool_msg *m, const void *buf, size_t len);

/*
 * Replaces the envelope written by spool_msg_begin() (same queue id) with
 * env's, for what is only known at the end of data (the DKIM signing
 * domain and body hash).  Call before spool_msg_commit().  Returns 0, or
 * -1 with errno (EINVAL, ENOMEM; the message itself is unharmed).  On a
 * message whose writing already failed it does nothing and returns 0:
 * the commit reports that error.
 */
int	spool_msg_set_envelope(struct spool_msg *m, const struct envelope *env);

/*
 * The same, with the block built at commit time ON A SPOOL SYNC THREAD by
 * fn(arg, &buf, &len) (*buf malloc'd, freed by the spool; fn returns 0,
 * or -1 with errno, which fails the commit with that errno).  This keeps
 * expensive work (DKIM signing) off the event loops.  dtor(arg) runs
 * exactly once when the message is done with (after fn, or at abort).
 */
typedef int (*spool_header_fn)(void *arg, char **buf, size_t *len);
void	spool_msg_set_header_fn(struct spool_msg *m, spool_header_fn fn,
	    void (*dtor)(void *), void *arg);

/* Bytes written so far (for size limits). */
uint64_t spool_msg_size(const struct spool_msg *m);

/*
 * Hands m to the sync threads (m is owned by the spool from here on).
 * cb(arg, result, qid) runs later on base's event-loop thread: result 0
 * means durable; otherwise an errno (ENOSPC, EIO, …) and nothing was
 * queued.  cb is always called exactly once, even during spool_close().
 * With base NULL (a caller without an event loop), cb runs on the
 * spool sync thread instead and must not block.
 */
typedef void (*spool_commit_cb)(void *arg, int result, const char *qid);
void	spool_msg_commit(struct spool_msg *m, struct event_base *base,
	    spool_commit_cb cb, void *arg);

/*
 * "New message committed" notification for the delivery scheduler (no
 * polling): after each group commit is durable, fn runs ON THE SPOOL
 * SYNC THREAD that committed it, with the ids of the messages that were committed (n > 0).  It
 * must not block: copy the ids and hand them to an event loop
 * (loopcall).  Set it once, before any commit (outpostd does so before
 * the listeners start); NULL turns it off.
 */
typedef void (*spool_notify_fn)(void *arg, const char (*qids)[SPOOL_QID_SIZE],
	    size_t n);
/* Returns only when no call of the previous fn is in flight. */
void	spool_set_notify(struct spool *sp, spool_notify_fn fn, void *arg);

/*
 * Removes the committed message qid from queue/ for good (delivered,
 * bounced or deleted) while the daemon holds the spool.  size is the
 * file's size in bytes (envelope included; an estimate will do).  The
 * file is kept in SPOOL/free/ for reuse by a later message when there is
 * room (at most 1,024 files of at most 128 KiB), else unlinked: reusing
 * an inode is far cheaper than allocating one and deleting another.  A recycled
 * file is overwritten only after the next fsync of queue/ has made its
 * removal from queue/ durable.  Returns 0, or -1 with errno (ENOENT:
 * no such message).  The state file is not touched (qstate_remove()).
 */
int	spool_retire(struct spool *sp, const char *qid, uint64_t size);

/* Throws the message away (tmp file removed). */
void	spool_msg_abort(struct spool_msg *m);

/*
 * Reading the queue (CLI, recovery, later the scheduler).  spool_list()
 * calls fn for each committed message in queue-id order with its parsed
 * envelope (valid only during the call); fn returns 0 to go on.  Returns
 * the number of messages, or -1 with err set.  Works without the lock.
 */
typedef int (*spool_list_fn)(void *ctx, const struct envelope *env);
int	spool_list(const char *dir, spool_list_fn fn, void *ctx,
	    char *err, size_t errlen);

/* Reads one message: envelope into env (caller clears it) and, when body
 * is non-NULL, the file offset where the message bytes start.  Returns 0,
 * or -1 with errno (ENOENT for an unknown id). */
int	spool_read_envelope(const char *dir, const char *qid,
	    struct envelope *env, off_t *body);

/* Path of the committed message file, into buf. */
int	spool_msg_path(const char *dir, const char *qid, char *buf, size_t len);

/* Envelope (de)serialisation, exposed for unit tests. The text ends with
 * a line "." ; envelope_parse returns the bytes consumed, or -1. */
int	envelope_format(const struct envelope *env, char **out, size_t *outlen);
ssize_t	envelope_parse(const char *buf, size_t len, struct envelope *env);

/* Queue id generator, thread-safe, strictly increasing within a process. */
void	spool_qid_new(char out[SPOOL_QID_SIZE]);
/* 1 when s is exactly SPOOL_QID_LEN characters of the queue-id alphabet
 * (uppercase Crockford base32), else 0. */
int	spool_qid_valid(const char *s);

#endif
