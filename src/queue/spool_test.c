/*
 * spool_test — the durable spool end to end, in a temporary directory
 * with a real event_base: commit, faults (fsops seam and
 * OUTPOST_SPOOL_FAULTS), the order of fdatasync / rename / directory
 * fsync / callback, recovery, the lock, reading and listing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "queue/spool.c"

/* --- helpers --- */

static char tdir[256];

static void
rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fail_msg("rm -rf %s", path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/spool_test.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	strcat(tdir, "/spool");	/* spool_open must create it */
	unsetenv("OUTPOST_SPOOL_FAULTS");
	return 0;
}

static int
teardown(void **state)
{
	char *slash;

	(void)state;
	unsetenv("OUTPOST_SPOOL_FAULTS");
	if ((slash = strrchr(tdir, '/')) != NULL)
		*slash = '\0';
	rm_rf(tdir);
	return 0;
}

static int
count_dir(const char *sub)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", tdir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
make_env(struct envelope *env, const char *from, int nrcpt)
{
	int i;

	memset(env, 0, sizeof(*env));
	env->mail_from = strdup(from);
	env->client_addr = strdup("203.0.113.9");
	env->helo = strdup("client.example");
	env->auth_user = strdup("alice@example.org");
	env->body = ENV_BODY_8BITMIME;
	env->rcpts = calloc((size_t)nrcpt, sizeof(*env->rcpts));
	env->nrcpts = (size_t)nrcpt;
	for (i = 0; i < nrcpt; i++) {
		char a[64];

		snprintf(a, sizeof(a), "rcpt%d@example.net", i);
		env->rcpts[i].addr = strdup(a);
	}
}

struct result {
	int	 called;
	int	 result;
	char	 qid[SPOOL_QID_SIZE];
	struct event_base *base;
	int	*pending;	/* loop breaks when it reaches 0 */
};

static void
on_commit(void *arg, int result, const char *qid)
{
	struct result *r = arg;

	r->called++;
	r->result = result;
	snprintf(r->qid, sizeof(r->qid), "%s", qid);
	if (--*r->pending == 0)
		event_base_loopbreak(r->base);
}

static struct event_base *
new_base(void)
{
	static int once;
	struct event_base *base;

	if (!once++)
		assert_int_equal(evthread_use_pthreads(), 0);
	base = event_base_new();
	assert_non_null(base);
	return base;
}

static void
run_until(struct event_base *base, int *pending)
{
	if (*pending > 0)
		event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	assert_int_equal(*pending, 0);
}

static char *
make_body(size_t len, unsigned seed)
{
	char *b = malloc(len);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (char)(seed >> 16);
	}
	return b;
}

/* The committed file's message bytes equal body. */
static void
assert_queued(const char *qid, const char *body, size_t len)
{
	struct envelope env;
	char path[PATH_MAX], *got;
	off_t off;
	int fd;

	assert_int_equal(spool_read_envelope(tdir, qid, &env, &off), 0);
	assert_string_equal(env.qid, qid);
	assert_int_equal(env.size, len);
	envelope_clear(&env);
	assert_int_equal(spool_msg_path(tdir, qid, path, sizeof(path)), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	got = malloc(len + 1);
	assert_int_equal(pread(fd, got, len + 1, off), (ssize_t)len);
	assert_memory_equal(got, body, len);
	free(got);
	close(fd);
}

/* Begins a message, writes body in uneven pieces; returns m. */
static struct spool_msg *
start_msg(struct spool *sp, const char *body, size_t len, char qid[])
{
	struct envelope env;
	struct spool_msg *m;
	size_t off = 0, step = 1;

	make_env(&env, "alice@example.org", 2);
	m = spool_msg_begin(sp, &env);
	assert_non_null(m);
	assert_true(spool_qid_valid(env.qid));
	assert_true(env.arrival > 0);
	if (qid != NULL)
		memcpy(qid, env.qid, SPOOL_QID_SIZE);
	envelope_clear(&env);
	while (off < len) {
		size_t n = len - off < step ? len - off : step;

		if (spool_msg_write(m, body + off, n) < 0)
			break;
		off += n;
		step = step * 3 + 1;
	}
	return m;
}

/* --- end to end --- */

static void
test_commit_end_to_end(void **state)
{
	static const size_t sizes[] = { 0, 1, 4096, 65535, 65536, 200001,
	    3 * 1024 * 1024 + 17 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct event_base *base = new_base();
	struct result res[N];
	char *bodies[N], err[256];
	struct spool *sp;
	int pending = N;
	size_t i;

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	for (i = 0; i < N; i++) {
		struct spool_msg *m;

		memset(&res[i], 0, sizeof(res[i]));
		res[i].base = base;
		res[i].pending = &pending;
		res[i].result = -1;
		bodies[i] = make_body(sizes[i], (unsigned)i);
		m = start_msg(sp, bodies[i], sizes[i], NULL);
		assert_int_equal(spool_msg_size(m), sizes[i]);
		spool_msg_commit(m, base, on_commit, &res[i]);
	}
	run_until(base, &pending);
	for (i = 0; i < N; i++) {
		assert_int_equal(res[i].called, 1);
		assert_int_equal(res[i].result, 0);
		assert_queued(res[i].qid, bodies[i], sizes[i]);
		free(bodies[i]);
	}
	assert_int_equal(count_dir("queue"), N);
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
	event_base_free(base);
}

/* Many messages, several event loops, committed from several threads. */
struct producer {
	struct spool	*sp;
	struct event_base *base;
	struct result	 res[50];
	int		 pending;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	char body[4096];
	int i;

	memset(body, 'x', sizeof(body));
	for (i = 0; i < 50; i++) {
		struct spool_msg *m = start_msg(p->sp, body, sizeof(body), NULL);

		p->res[i].base = p->base;
		p->res[i].pending = &p->pending;
		spool_msg_commit(m, p->base, on_commit, &p->res[i]);
	}
	run_until(p->base, &p->pending);
	return NULL;
}

static void
test_commit_many_loops(void **state)
{
	struct producer prod[4];
	pthread_t t[4];
	char err[256];
	struct spool *sp;
	int i, j;

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	memset(prod, 0, sizeof(prod));
	for (i = 0; i < 4; i++) {
		prod[i].sp = sp;
		prod[i].base = new_base();
		prod[i].pending = 50;
		assert_int_equal(pthread_create(&t[i], NULL, producer_main,
		    &prod[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		for (j = 0; j < 50; j++) {
			assert_int_equal(prod[i].res[j].called, 1);
			assert_int_equal(prod[i].res[j].result, 0);
		}
		event_base_free(prod[i].base);
	}
	assert_int_equal(count_dir("queue"), 200);
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
}

/* spool_close() answers what is still pending. */
static void
test_close_answers_pending(void **state)
{
	struct event_base *base = new_base();
	struct result res[20];
	char err[256], body[100];
	struct spool *sp;
	int pending = 20, i;

	(void)state;
	memset(body, 'y', sizeof(body));
	memset(res, 0, sizeof(res));
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	for (i = 0; i < 20; i++) {
		res[i].base = base;
		res[i].pending = &pending;
		spool_msg_commit(start_msg(sp, body, sizeof(body), NULL), base,
		    on_commit, &res[i]);
	}
	spool_close(sp);
	run_until(base, &pending);
	for (i = 0; i < 20; i++)
		assert_int_equal(res[i].result, 0);
	assert_int_equal(count_dir("queue"), 20);
	event_base_free(base);
}

static void
test_abort(void **state)
{
	char err[256], qid[SPOOL_QID_SIZE];
	struct spool *sp;
	struct spool_msg *m;

	char *big = make_body(200000, 1);

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	/* small: still in memory, no file at all */
	m = start_msg(sp, "hello\r\n", 7, qid);
	assert_int_equal(count_dir("tmp"), 0);
	spool_msg_abort(m);
	/* large: chunks went to tmp/QID; abort removes it */
	m = start_msg(sp, big, 200000, qid);
	assert_int_equal(count_dir("tmp"), 1);
	spool_msg_abort(m);
	assert_int_equal(count_dir("tmp"), 0);
	assert_int_equal(count_dir("queue"), 0);
	spool_close(sp);
	free(big);
}

/* base NULL: the callback runs on the commit thread. */
static pthread_t cb_thread;
static volatile int cb_null_done;

static void
on_commit_null(void *arg, int result, const char *qid)
{
	(void)qid;
	*(int *)arg = result;
	cb_thread = pthread_self();
	__atomic_store_n(&cb_null_done, 1, __ATOMIC_RELEASE);
}

static void
test_commit_no_loop(void **state)
{
	char err[256], qid[SPOOL_QID_SIZE];
	struct spool *sp;
	int result = -1, i;

	(void)state;
	cb_null_done = 0;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	spool_msg_commit(start_msg(sp, "abc\r\n", 5, qid), NULL,
	    on_commit_null, &result);
	for (i = 0; i < 5000 && !__atomic_load_n(&cb_null_done,
	    __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_int_equal(cb_null_done, 1);
	assert_int_equal(result, 0);
	assert_false(pthread_equal(cb_thread, pthread_self()));
	assert_queued(qid, "abc\r\n", 5);
	spool_close(sp);
}

/* --- faults through the fsops seam --- */

static struct {
	int	 op;		/* 0 none, else F_* + 1 of spool_fault.c order */
	int	 err;
	int	 after;		/* calls that succeed first */
	int	 calls;
	pthread_mutex_t mu;
} tf = { .mu = PTHREAD_MUTEX_INITIALIZER };

enum { OP_OPEN = 1, OP_WRITE, OP_FDATASYNC, OP_FSYNC, OP_RENAME, OP_CLOSE,
	OP_SYNCFS };

static int
tf_hit(int op)
{
	int hit = 0;

	pthread_mutex_lock(&tf.mu);
	if (tf.op == op && tf.calls++ >= tf.after)
		hit = 1;
	pthread_mutex_unlock(&tf.mu);
	if (hit)
		errno = tf.err;
	return hit;
}

static int
tf_open(const char *p, int f, mode_t m)
{
	return tf_hit(OP_OPEN) ? -1 : open(p, f, m);
}

static ssize_t
tf_write(int fd, const void *b, size_t l)
{
	return tf_hit(OP_WRITE) ? -1 : write(fd, b, l);
}

static int
tf_fdatasync(int fd)
{
	return tf_hit(OP_FDATASYNC) ? -1 : fdatasync(fd);
}

static int
tf_fsync(int fd)
{
	return tf_hit(OP_FSYNC) ? -1 : fsync(fd);
}

static int
tf_rename(const char *a, const char *b)
{
	return tf_hit(OP_RENAME) ? -1 : rename(a, b);
}

static int
tf_close(int fd)
{
	int hit = tf_hit(OP_CLOSE), e = errno;

	close(fd);
	errno = e;
	return hit ? -1 : 0;
}

static int
tf_syncfs(int fd)
{
	return tf_hit(OP_SYNCFS) ? -1 : syncfs(fd);
}

/* without syncfs: the spool flushes each file (SPOOL_FLUSH_FILE) */
static const struct spool_fsops tf_ops = {
	tf_open, tf_write, tf_fdatasync, tf_fsync, tf_rename, tf_close, unlink,
	NULL,
};

static const struct spool_fsops tf_fs_ops = {
	tf_open, tf_write, tf_fdatasync, tf_fsync, tf_rename, tf_close, unlink,
	tf_syncfs,
};

static void
test_faults_table(void **state)
{
	static const struct {
		int	 op, err;
		size_t	 size;
		int	 write_fails;	/* spool_msg_write itself reports it */
		enum spool_flush flush;
	} cases[] = {
		{ OP_WRITE, ENOSPC, 4096, 0, SPOOL_FLUSH_FILE }, /* commit flush */
		{ OP_WRITE, ENOSPC, 300000, 1, SPOOL_FLUSH_FILE }, /* a chunk */
		{ OP_FDATASYNC, EIO, 4096, 0, SPOOL_FLUSH_FILE },
		{ OP_FSYNC, EIO, 4096, 0, SPOOL_FLUSH_FILE }, /* directory */
		{ OP_RENAME, EIO, 4096, 0, SPOOL_FLUSH_FILE },
		{ OP_CLOSE, EIO, 4096, 0, SPOOL_FLUSH_FILE },
		{ OP_WRITE, ENOSPC, 4096, 0, SPOOL_FLUSH_FILESYSTEM },
		{ OP_WRITE, ENOSPC, 300000, 1, SPOOL_FLUSH_FILESYSTEM },
		{ OP_SYNCFS, EIO, 4096, 0, SPOOL_FLUSH_FILESYSTEM },
		{ OP_SYNCFS, EIO, 300000, 0, SPOOL_FLUSH_FILESYSTEM },
		{ OP_RENAME, EIO, 4096, 0, SPOOL_FLUSH_FILESYSTEM },
		{ OP_CLOSE, EIO, 4096, 0, SPOOL_FLUSH_FILESYSTEM },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_opts opts = { 0, &tf_fs_ops, cases[i].flush };
		struct event_base *base = new_base();
		struct result res[3];
		struct spool *sp;
		char err[256], *body;
		int pending = 3, k;

		tf.op = cases[i].op;
		tf.err = cases[i].err;
		tf.after = 0;
		tf.calls = 0;
		memset(res, 0, sizeof(res));
		assert_int_equal(spool_open(&sp, tdir, &opts, err,
		    sizeof(err)), 0);
		body = make_body(cases[i].size, 7);
		for (k = 0; k < 3; k++) {
			struct spool_msg *m;

			m = start_msg(sp, body, cases[i].size, NULL);
			if (cases[i].write_fails) {
				/* sticky: later writes fail too */
				assert_int_equal(spool_msg_write(m, "x", 1),
				    -1);
				assert_int_equal(errno, cases[i].err);
			}
			res[k].base = base;
			res[k].pending = &pending;
			spool_msg_commit(m, base, on_commit, &res[k]);
		}
		run_until(base, &pending);
		for (k = 0; k < 3; k++) {
			assert_int_equal(res[k].called, 1);
			if (res[k].result != cases[i].err)
				fail_msg("case %zu: result %d", i,
				    res[k].result);
		}
		assert_int_equal(count_dir("queue"), 0);
		assert_int_equal(count_dir("tmp"), 0);
		spool_close(sp);
		event_base_free(base);
		free(body);
	}
	tf.op = 0;
}

/* One bad message does not spoil its batch. */
static void
test_fault_one_of_batch(void **state)
{
	struct spool_opts opts = { 0, &tf_ops, SPOOL_FLUSH_FILE };
	struct event_base *base = new_base();
	struct result res[10];
	struct spool *sp;
	char err[256], body[512];
	int pending = 10, k, failed = 0;

	(void)state;
	memset(body, 'z', sizeof(body));
	memset(res, 0, sizeof(res));
	tf.op = OP_FDATASYNC;
	tf.err = EIO;
	tf.after = 9;
	tf.calls = 0;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	/* Queue all ten before a sync thread can take one: hold the
	 * queue's lock while committing. */
	pthread_mutex_lock(&sp->mu);
	for (k = 0; k < 10; k++) {
		struct spool_msg *m = start_msg(sp, body, sizeof(body), NULL);

		res[k].base = base;
		res[k].pending = &pending;
		m->base = base;
		m->cb = on_commit;
		m->arg = &res[k];
		*sp->tailp = m;
		sp->tailp = &m->next;
	}
	pthread_cond_broadcast(&sp->wcv);
	pthread_mutex_unlock(&sp->mu);
	run_until(base, &pending);
	for (k = 0; k < 10; k++) {
		if (res[k].result == EIO)
			failed++;
		else
			assert_int_equal(res[k].result, 0);
	}
	assert_int_equal(failed, 1);
	assert_int_equal(count_dir("queue"), 9);
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
	event_base_free(base);
	tf.op = 0;
}

static void
test_fault_open(void **state)
{
	struct spool_opts opts = { 0, &tf_ops, SPOOL_FLUSH_FILE };
	struct event_base *base = new_base();
	struct result r;
	struct spool *sp;
	char err[256], *big = make_body(100000, 3);
	int pending = 1;

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	tf.op = OP_OPEN;
	tf.err = EMFILE;
	tf.after = 0;
	tf.calls = 0;
	/* A small message creates its file at commit: the callback says. */
	memset(&r, 0, sizeof(r));
	r.base = base;
	r.pending = &pending;
	spool_msg_commit(start_msg(sp, "abc", 3, NULL), base, on_commit, &r);
	run_until(base, &pending);
	assert_int_equal(r.result, EMFILE);
	/* A large one creates it at the first chunk: the write says, and
	 * the error sticks to the commit. */
	{
		struct envelope env;
		struct spool_msg *m;

		make_env(&env, "a@b", 1);
		m = spool_msg_begin(sp, &env);
		envelope_clear(&env);
		assert_non_null(m);
		assert_int_equal(spool_msg_write(m, big, 100000), -1);
		assert_int_equal(errno, EMFILE);
		pending = 1;
		spool_msg_commit(m, base, on_commit, &r);
		run_until(base, &pending);
		assert_int_equal(r.result, EMFILE);
	}
	tf.op = 0;
	spool_close(sp);
	assert_int_equal(count_dir("tmp"), 0);
	assert_int_equal(count_dir("queue"), 0);
	event_base_free(base);
	free(big);
}

/* --- the order of durable steps --- */

#define REC_MAX 4096
static struct {
	pthread_mutex_t	 mu;
	char		 ev[REC_MAX][512];
	int		 n;
	char		 fdpath[1024][64];	/* by fd */
} rec = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
rec_add(const char *fmt, const char *a, const char *b)
{
	pthread_mutex_lock(&rec.mu);
	if (rec.n < REC_MAX)
		snprintf(rec.ev[rec.n++], sizeof(rec.ev[0]), fmt, a, b);
	pthread_mutex_unlock(&rec.mu);
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int
rec_open(const char *p, int f, mode_t m)
{
	int fd = open(p, f, m);

	if (fd >= 0 && fd < 1024) {
		pthread_mutex_lock(&rec.mu);
		snprintf(rec.fdpath[fd], sizeof(rec.fdpath[fd]), "%s", base_name(p));
		pthread_mutex_unlock(&rec.mu);
	}
	rec_add("open %s%s", base_name(p), "");
	return fd;
}

static int
rec_fdatasync(int fd)
{
	char name[64];

	pthread_mutex_lock(&rec.mu);
	snprintf(name, sizeof(name), "%s", rec.fdpath[fd]);
	pthread_mutex_unlock(&rec.mu);
	rec_add("fdatasync %s%s", name, "");
	return fdatasync(fd);
}

static int
rec_fsync(int fd)
{
	rec_add("fsync %s%s", "queue/", "");
	return fsync(fd);
}

static int
rec_rename(const char *a, const char *b)
{
	rec_add("rename %s %s", base_name(a), b);
	return rename(a, b);
}

static int
rec_syncfs(int fd)
{
	rec_add("syncfs %s%s", "", "");
	return syncfs(fd);
}

static const struct spool_fsops rec_ops = {
	rec_open, write, rec_fdatasync, rec_fsync, rec_rename, close, unlink,
	NULL,
};

static const struct spool_fsops rec_fs_ops = {
	rec_open, write, rec_fdatasync, rec_fsync, rec_rename, close, unlink,
	rec_syncfs,
};

static void
on_commit_rec(void *arg, int result, const char *qid)
{
	rec_add("cb %s%s", qid, "");
	on_commit(arg, result, qid);
}

static int
rec_find(const char *prefix, const char *qid, int from)
{
	int i;

	for (i = from; i < rec.n; i++)
		if (strncmp(rec.ev[i], prefix, strlen(prefix)) == 0 &&
		    (qid == NULL || strstr(rec.ev[i], qid) != NULL))
			return i;
	return -1;
}

/*
 * Commits 8 messages and checks, for each, that the 250's callback comes
 * only after one of the two durable paths: fdatasync of its file before
 * its rename and an fsync of queue/ after it (FILE), or its rename and
 * then a syncfs (FILESYSTEM).  want: the path every message must take.
 */
static void
check_order(const struct spool_fsops *ops, enum spool_flush flush,
    enum spool_flush want)
{
	struct spool_opts opts = { 0, ops, flush };
	struct event_base *base = new_base();
	struct result res[8];
	char err[256], qids[8][SPOOL_QID_SIZE], body[3000];
	struct spool *sp;
	int pending = 8, k, i, nflush = 0;

	memset(body, 'o', sizeof(body));
	memset(res, 0, sizeof(res));
	rec.n = 0;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	for (k = 0; k < 8; k++) {
		res[k].base = base;
		res[k].pending = &pending;
		spool_msg_commit(start_msg(sp, body, sizeof(body), qids[k]),
		    base, on_commit_rec, &res[k]);
	}
	run_until(base, &pending);
	spool_close(sp);
	for (k = 0; k < 8; k++) {
		int o, s, r, f, c;
		char want_rename[PATH_MAX + 64];

		assert_int_equal(res[k].result, 0);
		o = rec_find("open ", qids[k], 0);
		s = rec_find("fdatasync ", qids[k], 0);
		r = rec_find("rename ", qids[k], 0);
		c = rec_find("cb ", qids[k], 0);
		assert_true(o >= 0 && r >= 0 && c >= 0);
		/* rename goes to queue/QID */
		snprintf(want_rename, sizeof(want_rename), "rename %s %s/queue/%s",
		    qids[k], tdir, qids[k]);
		assert_string_equal(rec.ev[r], want_rename);
		assert_true(o < r);
		if (s >= 0) {
			/* open < fdatasync < rename < directory fsync <
			 * callback */
			assert_true(want == SPOOL_FLUSH_FILE);
			assert_true(o < s && s < r);
			f = rec_find("fsync queue/", NULL, r);
		} else {
			/* open < rename < syncfs < callback */
			assert_true(want == SPOOL_FLUSH_FILESYSTEM);
			f = rec_find("syncfs ", NULL, r);
		}
		assert_true(f > r);
		assert_true(f < c);
	}
	/* fewer flushes than messages when batched; at least one */
	for (i = 0; i < rec.n; i++)
		nflush += strncmp(rec.ev[i], "fsync ", 6) == 0 ||
		    strncmp(rec.ev[i], "syncfs ", 7) == 0;
	assert_true(nflush >= 1 && nflush <= 8);
	if (want == SPOOL_FLUSH_FILE)
		assert_int_equal(rec_find("syncfs ", NULL, 0), -1);
	if (want == SPOOL_FLUSH_FILESYSTEM)
		assert_int_equal(rec_find("fdatasync ", NULL, 0), -1);
	event_base_free(base);
}

static void
test_order(void **state)
{
	(void)state;
	/* fsops without syncfs: FILE whatever was asked */
	check_order(&rec_ops, SPOOL_FLUSH_FILESYSTEM, SPOOL_FLUSH_FILE);
	check_order(&rec_fs_ops, SPOOL_FLUSH_FILE, SPOOL_FLUSH_FILE);
	check_order(&rec_ops, SPOOL_FLUSH_FILE, SPOOL_FLUSH_FILE);
	check_order(&rec_fs_ops, SPOOL_FLUSH_FILESYSTEM,
	    SPOOL_FLUSH_FILESYSTEM);
}

/* --- recovery, lock, reading --- */

static void
write_file(const char *sub, const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", tdir, sub, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void
commit_one(struct spool *sp, const char *body, char qid[])
{
	struct event_base *base = new_base();
	struct result r;
	int pending = 1;

	memset(&r, 0, sizeof(r));
	r.base = base;
	r.pending = &pending;
	spool_msg_commit(start_msg(sp, body, strlen(body), qid), base,
	    on_commit, &r);
	run_until(base, &pending);
	assert_int_equal(r.result, 0);
	event_base_free(base);
}

static void
test_recovery(void **state)
{
	char err[256], good[2][SPOOL_QID_SIZE], path[PATH_MAX];
	static const char trunc[] =
	    "outpost-envelope 1\nqid 0000000000000001\narrival 1\nfrom a\n";
	struct stat st;
	struct spool *sp;

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	commit_one(sp, "Subject: one\r\n\r\nbody\r\n", good[0]);
	commit_one(sp, "Subject: two\r\n\r\nbody\r\n", good[1]);
	/* an unfinished message in tmp/ (the crash case) */
	{
		/* as if the daemon died in the middle of DATA */
		char *big = make_body(100000, 5);
		struct spool_msg *m = start_msg(sp, big, 100000, NULL);

		close(m->fd);
		msg_free(m);
		free(big);
	}
	spool_close(sp);
	assert_int_equal(count_dir("tmp"), 1);
	write_file("tmp", "0000000000000009", "x", 1);
	/* a truncated envelope, a wrong-qid envelope, garbage, a bad name */
	write_file("queue", "0000000000000001", trunc, sizeof(trunc) - 1);
	write_file("queue", "0000000000000002",
	    "outpost-envelope 1\nqid 0000000000000003\narrival 1\nfrom a\n"
	    "rcpt b\n.\nbody", 70);
	write_file("queue", "0000000000000004", "\0\0\0\0", 4);
	write_file("queue", "0000000000000005", "", 0);
	write_file("queue", "notes.txt", "hello", 5);

	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	assert_int_equal(count_dir("tmp"), 0);
	assert_int_equal(count_dir("queue"), 2);
	assert_int_equal(count_dir("corrupt"), 5);
	snprintf(path, sizeof(path), "%s/corrupt/0000000000000001", tdir);
	assert_int_equal(stat(path, &st), 0);
	assert_queued(good[0], "Subject: one\r\n\r\nbody\r\n", 22);
	assert_queued(good[1], "Subject: two\r\n\r\nbody\r\n", 22);
	/* New ids sort after the recovered ones. */
	{
		char q[SPOOL_QID_SIZE];

		spool_qid_new(q);
		assert_true(strcmp(q, good[1]) > 0);
	}
	spool_close(sp);
}

/* A retired message's file is reused by a later message, only after a
 * directory fsync made its removal from queue/ durable; recovery
 * empties free/. */
static void
test_recycle(void **state)
{
	char err[256], a[SPOOL_QID_SIZE], b[SPOOL_QID_SIZE], c[SPOOL_QID_SIZE];
	char path[PATH_MAX];
	struct stat st;
	ino_t ino_a;
	struct spool *sp;

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	commit_one(sp, "Subject: a\r\n\r\nbody a\r\n", a);
	snprintf(path, sizeof(path), "%s/queue/%s", tdir, a);
	assert_int_equal(stat(path, &st), 0);
	ino_a = st.st_ino;
	assert_int_equal(spool_retire(sp, a, 100), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(count_dir("free"), 1);
	/* pending: b's commit fsyncs queue/, so b gets a new file */
	commit_one(sp, "Subject: b\r\n\r\nbody b\r\n", b);
	snprintf(path, sizeof(path), "%s/queue/%s", tdir, b);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_ino != ino_a);
	assert_int_equal(count_dir("free"), 1);
	/* now ready: c reuses a's inode, with c's bytes only */
	commit_one(sp, "Subject: c\r\n\r\nc\r\n", c);
	snprintf(path, sizeof(path), "%s/queue/%s", tdir, c);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_ino, ino_a);
	assert_int_equal(count_dir("free"), 0);
	assert_int_equal(count_dir("tmp"), 0);
	assert_queued(c, "Subject: c\r\n\r\nc\r\n", 17);
	assert_queued(b, "Subject: b\r\n\r\nbody b\r\n", 22);
	/* an unknown id is ENOENT and changes nothing */
	errno = 0;
	assert_int_equal(spool_retire(sp, "0000000000000077", 100), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_retire(sp, b, 100), 0);
	assert_int_equal(count_dir("free"), 1);
	/* a large file is not kept */
	{
		char d[SPOOL_QID_SIZE];

		commit_one(sp, "Subject: d\r\n\r\nd\r\n", d);
		assert_int_equal(spool_retire(sp, d, 1u << 20), 0);
		assert_int_equal(count_dir("free"), 1);
		snprintf(path, sizeof(path), "%s/queue/%s", tdir, d);
		assert_int_equal(stat(path, &st), -1);
	}
	spool_close(sp);
	/* a restart never reuses what a crash may have left aliased */
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	assert_int_equal(count_dir("free"), 0);
	assert_int_equal(count_dir("queue"), 1);
	assert_queued(c, "Subject: c\r\n\r\nc\r\n", 17);
	spool_close(sp);
}

static void
test_lock(void **state)
{
	struct spool *a, *b;
	char err[256], want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(spool_open(&a, tdir, NULL, err, sizeof(err)), 0);
	assert_int_equal(spool_open(&b, tdir, NULL, err, sizeof(err)), -1);
	assert_null(b);
	snprintf(want, sizeof(want),
	    "another outpostd is using the spool %s (lock held)", tdir);
	assert_string_equal(err, want);
	spool_close(a);
	assert_int_equal(spool_open(&b, tdir, NULL, err, sizeof(err)), 0);
	spool_close(b);
}

struct listctx {
	char	 qids[16][SPOOL_QID_SIZE];
	uint64_t sizes[16];
	int	 n;
	int	 stop_after;
};

static int
list_fn(void *ctx, const struct envelope *env)
{
	struct listctx *lc = ctx;

	memcpy(lc->qids[lc->n], env->qid, SPOOL_QID_SIZE);
	lc->sizes[lc->n] = env->size;
	assert_string_equal(env->mail_from, "alice@example.org");
	assert_int_equal(env->nrcpts, 2);
	return ++lc->n == lc->stop_after;
}

static void
test_list_and_read(void **state)
{
	char err[256], q[5][SPOOL_QID_SIZE];
	struct listctx lc;
	struct envelope env;
	struct spool *sp;
	off_t off;
	int i;

	(void)state;
	memset(&lc, 0, sizeof(lc));
	/* no spool yet: empty */
	assert_int_equal(spool_list(tdir, list_fn, &lc, err, sizeof(err)), 0);
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	for (i = 0; i < 5; i++)
		commit_one(sp, i % 2 ? "a\r\n" : "bb\r\n", q[i]);
	assert_int_equal(spool_list(tdir, list_fn, &lc, err, sizeof(err)), 5);
	for (i = 0; i < 5; i++) {
		assert_string_equal(lc.qids[i], q[i]);	/* id order */
		assert_int_equal(lc.sizes[i], i % 2 ? 3 : 4);
	}
	memset(&lc, 0, sizeof(lc));
	lc.stop_after = 2;
	assert_int_equal(spool_list(tdir, list_fn, &lc, err, sizeof(err)), 2);

	assert_int_equal(spool_read_envelope(tdir, q[0], &env, &off), 0);
	assert_string_equal(env.auth_user, "alice@example.org");
	assert_string_equal(env.helo, "client.example");
	assert_int_equal(env.body, ENV_BODY_8BITMIME);
	envelope_clear(&env);
	assert_int_equal(spool_read_envelope(tdir, "0000000000000000", &env,
	    &off), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_read_envelope(tdir, "../lock", &env, &off), -1);
	assert_int_equal(errno, EINVAL);
	spool_close(sp);
}

static void
test_space(void **state)
{
	struct spool_opts opts = { 0, NULL, SPOOL_FLUSH_FILE };
	struct spool *sp;
	char err[256];

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	assert_int_equal(spool_space_ok(sp), 0);
	spool_close(sp);
	opts.min_free_space = 1;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	assert_int_equal(spool_space_ok(sp), 0);
	assert_int_equal(spool_space_ok(sp), 0);	/* cached */
	spool_close(sp);
	opts.min_free_space = UINT64_MAX;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	assert_int_equal(spool_space_ok(sp), -1);
	spool_close(sp);
}

/* --- OUTPOST_SPOOL_FAULTS --- */

static void
test_env_faults(void **state)
{
	static const struct {
		const char	*spec;
		int		 want;	/* errno of the Nth.. commits, 0 ok */
		int		 ok_first;	/* commits that succeed first */
		enum spool_flush flush;
	} cases[] = {
		{ "fdatasync:EIO", EIO, 0, SPOOL_FLUSH_FILE },
		{ "write:ENOSPC", ENOSPC, 0, SPOOL_FLUSH_FILE },
		{ "fsync:EIO", EIO, 0, SPOOL_FLUSH_FILE },
		{ "rename:EROFS:2", EROFS, 2, SPOOL_FLUSH_FILESYSTEM },
		{ "close:EIO:1,unlink:EIO", EIO, 1, SPOOL_FLUSH_FILE },
		{ "syncfs:EIO:1", EIO, 1, SPOOL_FLUSH_FILESYSTEM },
		/* FILE never calls syncfs */
		{ "syncfs:EIO", 0, 3, SPOOL_FLUSH_FILE },
	};
	static const char *const bad[] = {
		"", "fdatasync", "fdatasync:", "fdatasync:EIOX", "fsink:EIO",
		"write:ENOSPC:", "write:ENOSPC:x", "write:ENOSPC:1:2",
		"write:ENOSPC,", ",write:ENOSPC", "write:ENOSPC,write:EIO",
		"write:ENOSPC:-1", "write:eio", " write:EIO",
		"write:EIO:1234567890",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_opts opts = { 0, NULL, cases[i].flush };
		struct spool *sp;
		char err[256];
		int k;

		setenv("OUTPOST_SPOOL_FAULTS", cases[i].spec, 1);
		assert_int_equal(spool_open(&sp, tdir, &opts, err,
		    sizeof(err)), 0);
		for (k = 0; k < cases[i].ok_first + 2; k++) {
			struct event_base *base = new_base();
			struct result r;
			int pending = 1;

			memset(&r, 0, sizeof(r));
			r.base = base;
			r.pending = &pending;
			spool_msg_commit(start_msg(sp, "abc", 3, NULL), base,
			    on_commit, &r);
			run_until(base, &pending);
			if (r.result != (k < cases[i].ok_first ? 0 :
			    cases[i].want))
				fail_msg("%s: commit %d: result %d",
				    cases[i].spec, k, r.result);
			event_base_free(base);
		}
		spool_close(sp);
		unsetenv("OUTPOST_SPOOL_FAULTS");
		rm_rf(tdir);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct spool *sp = NULL;
		char err[256];

		setenv("OUTPOST_SPOOL_FAULTS", bad[i], 1);
		if (spool_open(&sp, tdir, NULL, err, sizeof(err)) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err, "OUTPOST_SPOOL_FAULTS"));
	}
	unsetenv("OUTPOST_SPOOL_FAULTS");
}

/* --- header block set at the end (spool_msg_set_header*) --- */

static int hdr_fn_calls, hdr_dtor_calls, hdr_fn_fail;
static pthread_t hdr_fn_thread;

static int
hdr_fn(void *arg, char **buf, size_t *len)
{
	const char *h = arg;

	__atomic_add_fetch(&hdr_fn_calls, 1, __ATOMIC_SEQ_CST);
	hdr_fn_thread = pthread_self();
	if (hdr_fn_fail) {
		errno = EIO;
		return -1;
	}
	*len = strlen(h);
	*buf = malloc(*len + 1);
	if (*buf == NULL)
		return -1;
	memcpy(*buf, h, *len);
	return 0;
}

static void
hdr_dtor(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&hdr_dtor_calls, 1, __ATOMIC_SEQ_CST);
}

/* Small (in memory) and spilled (on disk) messages, header copied or
 * built by a function on a spool thread: the file is envelope, header,
 * body. */
static void
test_header_small_and_spilled(void **state)
{
	static const size_t sizes[] = { 0, 5, 60000, 65536, 70000,
	    1024 * 1024 + 3 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	static const char hdr[] = "DKIM-Signature: v=1; x\r\n"
	    "Received: from x\r\nFrom: a@example.org\r\n\r\n";
	struct event_base *base = new_base();
	struct result res[2 * N];
	char *bodies[N], err[256];
	struct spool *sp;
	int pending = 2 * N;
	size_t i, hl = strlen(hdr);

	(void)state;
	hdr_fn_calls = hdr_dtor_calls = hdr_fn_fail = 0;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	for (i = 0; i < 2 * N; i++) {
		struct spool_msg *m;
		size_t k = i % N;

		if (i < N)
			bodies[k] = make_body(sizes[k], (unsigned)k);
		memset(&res[i], 0, sizeof(res[i]));
		res[i].base = base;
		res[i].pending = &pending;
		res[i].result = -1;
		m = start_msg(sp, bodies[k], sizes[k], NULL);
		if (i < N)
			assert_int_equal(spool_msg_set_header(m, hdr, hl), 0);
		else
			spool_msg_set_header_fn(m, hdr_fn, hdr_dtor,
			    (void *)hdr);
		assert_int_equal(spool_msg_size(m), sizes[k]);
		spool_msg_commit(m, base, on_commit, &res[i]);
	}
	run_until(base, &pending);
	assert_int_equal(hdr_fn_calls, N);
	assert_int_equal(hdr_dtor_calls, N);
	assert_false(pthread_equal(hdr_fn_thread, pthread_self()));
	for (i = 0; i < 2 * N; i++) {
		size_t k = i % N;
		char *want = malloc(hl + sizes[k] + 1);

		assert_int_equal(res[i].result, 0);
		memcpy(want, hdr, hl);
		memcpy(want + hl, bodies[k], sizes[k]);
		assert_queued(res[i].qid, want, hl + sizes[k]);
		free(want);
	}
	for (i = 0; i < N; i++)
		free(bodies[i]);
	assert_int_equal(count_dir("queue"), 2 * N);
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
	event_base_free(base);
}

/* The envelope replaced at the end of data (the DKIM signing domain and
 * body hash), for a message in memory and for ones that spilled to disk
 * (the body is then copied from after the old, shorter envelope). */
static void
test_set_envelope(void **state)
{
	static const size_t sizes[] = { 5, 70000, 1024 * 1024 + 3 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	static const char hdr[] = "Received: from x\r\nFrom: a@example.org\r\n\r\n";
	struct event_base *base = new_base();
	struct result res[N];
	char *bodies[N], err[256];
	struct spool *sp;
	int pending = N;
	size_t i, k, hl = strlen(hdr);

	(void)state;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	for (i = 0; i < N; i++) {
		struct spool_msg *m;
		struct envelope env;
		char qid[SPOOL_QID_SIZE];

		bodies[i] = make_body(sizes[i], (unsigned)i);
		memset(&res[i], 0, sizeof(res[i]));
		res[i].base = base;
		res[i].pending = &pending;
		res[i].result = -1;
		m = start_msg(sp, bodies[i], sizes[i], qid);
		make_env(&env, "alice@example.org", 2);
		/* another message's id is refused, the message unharmed */
		memcpy(env.qid, "0J8Z3K4M5N6P7Q8R", SPOOL_QID_SIZE);
		assert_int_equal(spool_msg_set_envelope(m, &env), -1);
		assert_int_equal(errno, EINVAL);
		memcpy(env.qid, qid, SPOOL_QID_SIZE);
		env.arrival = 1700000000;
		env.dkim_domain = strdup("example.org");
		for (k = 0; k < 32; k++)
			env.dkim_bh[k] = (unsigned char)(k * 7 + i);
		assert_int_equal(spool_msg_set_envelope(m, &env), 0);
		envelope_clear(&env);
		assert_int_equal(spool_msg_set_header(m, hdr, hl), 0);
		spool_msg_commit(m, base, on_commit, &res[i]);
	}
	run_until(base, &pending);
	for (i = 0; i < N; i++) {
		struct envelope env;
		char *want = malloc(hl + sizes[i] + 1);
		off_t off;

		assert_int_equal(res[i].result, 0);
		assert_int_equal(spool_read_envelope(tdir, res[i].qid, &env,
		    &off), 0);
		assert_string_equal(env.dkim_domain, "example.org");
		for (k = 0; k < 32; k++)
			assert_int_equal(env.dkim_bh[k], (k * 7 + i) & 0xff);
		assert_int_equal(env.arrival, 1700000000);
		envelope_clear(&env);
		memcpy(want, hdr, hl);
		memcpy(want + hl, bodies[i], sizes[i]);
		assert_queued(res[i].qid, want, hl + sizes[i]);
		free(want);
		free(bodies[i]);
	}
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
	event_base_free(base);
}

/* A failing header function fails the commit with its errno and leaves
 * nothing behind; abort runs the destructor too. */
static void
test_header_fn_fails(void **state)
{
	struct event_base *base = new_base();
	struct result res[2];
	char err[256], *big = make_body(200000, 7);
	struct spool *sp;
	struct spool_msg *m;
	int pending = 2;

	(void)state;
	hdr_fn_calls = hdr_dtor_calls = 0;
	hdr_fn_fail = 1;
	assert_int_equal(spool_open(&sp, tdir, NULL, err, sizeof(err)), 0);
	memset(res, 0, sizeof(res));
	for (int i = 0; i < 2; i++) {
		res[i].base = base;
		res[i].pending = &pending;
		m = start_msg(sp, i ? big : "small\r\n", i ? 200000 : 7, NULL);
		spool_msg_set_header_fn(m, hdr_fn, hdr_dtor, "X: y\r\n");
		spool_msg_commit(m, base, on_commit, &res[i]);
	}
	run_until(base, &pending);
	assert_int_equal(res[0].result, EIO);
	assert_int_equal(res[1].result, EIO);
	assert_int_equal(hdr_dtor_calls, 2);
	assert_int_equal(count_dir("queue"), 0);
	assert_int_equal(count_dir("tmp"), 0);
	/* abort before commit: destructor, no file */
	hdr_fn_fail = 0;
	m = start_msg(sp, big, 200000, NULL);
	spool_msg_set_header_fn(m, hdr_fn, hdr_dtor, "X: y\r\n");
	spool_msg_abort(m);
	assert_int_equal(hdr_dtor_calls, 3);
	assert_int_equal(hdr_fn_calls, 2);
	assert_int_equal(count_dir("tmp"), 0);
	spool_close(sp);
	free(big);
	event_base_free(base);
}

/* Spilled message with a header: the rewritten file (QID.h) is
 * fdatasync'd before its rename into queue/, the directory fsync comes
 * before the callback, and the first tmp file is gone. */
static void
test_header_spilled_order(void **state)
{
	struct spool_opts opts = { 0, &rec_ops, SPOOL_FLUSH_FILE };
	struct event_base *base = new_base();
	struct result r;
	char err[256], qid[SPOOL_QID_SIZE], alt[SPOOL_QID_SIZE + 8],
	    want[PATH_MAX + 64], *body = make_body(300000, 3);
	struct spool *sp;
	struct spool_msg *m;
	int pending = 1, o, s, rn, f, c;

	(void)state;
	rec.n = 0;
	memset(&r, 0, sizeof(r));
	r.base = base;
	r.pending = &pending;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	m = start_msg(sp, body, 300000, qid);
	assert_int_equal(spool_msg_set_header(m, "H: 1\r\n\r\n", 8), 0);
	spool_msg_commit(m, base, on_commit_rec, &r);
	run_until(base, &pending);
	spool_close(sp);
	assert_int_equal(r.result, 0);
	snprintf(alt, sizeof(alt), "%s.h", qid);
	o = rec_find("open ", alt, 0);
	s = rec_find("fdatasync ", alt, 0);
	rn = rec_find("rename ", alt, 0);
	c = rec_find("cb ", qid, 0);
	assert_true(o >= 0 && s > o && rn > s && c > rn);
	snprintf(want, sizeof(want), "rename %s %s/queue/%s", alt, tdir, qid);
	assert_string_equal(rec.ev[rn], want);
	f = rec_find("fsync queue/", NULL, rn);
	assert_true(f > rn && f < c);
	assert_int_equal(count_dir("tmp"), 0);
	{
		char *w = malloc(300008);

		memcpy(w, "H: 1\r\n\r\n", 8);
		memcpy(w + 8, body, 300000);
		assert_queued(qid, w, 300008);
		free(w);
	}
	free(body);
	event_base_free(base);
}

/* ENOSPC while writing the rewritten file: the commit fails with it and
 * both tmp files are gone. */
static void
test_header_spilled_fault(void **state)
{
	struct spool_opts opts = { 0, &tf_ops, SPOOL_FLUSH_FILE };
	struct event_base *base = new_base();
	struct result r;
	char err[256], *body = make_body(150000, 5);
	struct spool *sp;
	struct spool_msg *m;
	int pending = 1;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.base = base;
	r.pending = &pending;
	assert_int_equal(spool_open(&sp, tdir, &opts, err, sizeof(err)), 0);
	m = start_msg(sp, body, 150000, NULL);	/* two 64 KiB write-outs */
	assert_int_equal(spool_msg_set_header(m, "H: 1\r\n\r\n", 8), 0);
	pthread_mutex_lock(&tf.mu);
	tf.op = OP_WRITE;
	tf.err = ENOSPC;
	tf.after = 1;	/* the rest of the body, then the envelope copy fails */
	tf.calls = 0;
	pthread_mutex_unlock(&tf.mu);
	spool_msg_commit(m, base, on_commit, &r);
	run_until(base, &pending);
	pthread_mutex_lock(&tf.mu);
	tf.op = 0;
	pthread_mutex_unlock(&tf.mu);
	spool_close(sp);
	assert_int_equal(r.result, ENOSPC);
	assert_int_equal(count_dir("queue"), 0);
	assert_int_equal(count_dir("tmp"), 0);
	free(body);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_end_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_many_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_answers_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_no_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_one_of_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_envelope, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_header_small_and_spilled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_fn_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_spilled_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_spilled_fault, setup, teardown),
	};

	log_init("spool_test", LOGL_ERR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
