/*
 * dkimpool_test — signing at delivery: the stored header section is
 * found (with a body, without one, the empty line straddling reads, too
 * large, a file cut short), and the pool answers every request on the
 * given loop: a signature for a domain with a key, ENOKEY for one without,
 * an error for a missing file, ECANCELED for what is queued at free.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "delivery/dkimpool.h"
#include "message/dkim.h"

static char tdir[] = "/tmp/dkimpool_test.XXXXXX";

static int
write_file(const char *name, const char *data, size_t len, char *path,
    size_t plen)
{
	int fd;

	snprintf(path, plen, "%s/%s", tdir, name);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void
test_read_header(void **state)
{
	static const char env[] = "outpost-envelope 1\n.\n";
	static const char msg[] = "Received: x\r\nFrom: a@example.test\r\n"
	    "\r\nbody\r\n\r\n";
	char path[512], buf[4096], *h;
	size_t hl, el = strlen(env);
	int fd;

	(void)state;
	snprintf(buf, sizeof(buf), "%s%s", env, msg);
	fd = write_file("m1", buf, strlen(buf), path, sizeof(path));
	/* the fields through their last CRLF, not the empty line */
	assert_int_equal(dkimpool_read_header(fd, (off_t)el, strlen(msg),
	    1 << 20, &h, &hl), 0);
	assert_int_equal(hl, strlen("Received: x\r\nFrom: a@example.test\r\n"));
	assert_memory_equal(h, msg, hl);
	free(h);
	/* no body at all: everything is header */
	assert_int_equal(dkimpool_read_header(fd, (off_t)el, 13, 1 << 20, &h,
	    &hl), 0);
	assert_int_equal(hl, 13);
	free(h);
	/* over the limit before the empty line */
	assert_int_equal(dkimpool_read_header(fd, (off_t)el, strlen(msg), 20,
	    &h, &hl), -1);
	assert_int_equal(errno, EBADMSG);
	/* the file is shorter than the envelope said */
	assert_int_equal(dkimpool_read_header(fd, (off_t)el, 100000, 1 << 20,
	    &h, &hl), 0);	/* the empty line comes first: fine */
	free(h);
	assert_int_equal(dkimpool_read_header(fd, (off_t)el + 44, 100000,
	    1 << 20, &h, &hl), -1);
	assert_int_equal(errno, EIO);
	close(fd);
}

/* A header section of ~40 KiB: the empty line lands across reads. */
static void
test_read_header_long(void **state)
{
	size_t n = 0, i, hl;
	char *m = malloc(64 * 1024), path[512], *h;
	int fd;

	(void)state;
	for (i = 0; n < 40000; i++)
		n += (size_t)sprintf(m + n, "X-Filler-%zu: %0*d\r\n", i, 60, 0);
	memcpy(m + n, "\r\nbody\r\n", 8);
	fd = write_file("m2", m, n + 8, path, sizeof(path));
	assert_int_equal(dkimpool_read_header(fd, 0, n + 8, 1 << 20, &h, &hl),
	    0);
	assert_int_equal(hl, n);
	assert_memory_equal(h, m, n);
	free(h);
	close(fd);
	free(m);
}

struct answer {
	int	 called;
	int	 err;
	char	*sig;
	char	 text[400];
	struct event_base *base;
	int	*left;
};

static void
on_signed(struct dkimpool_req *r)
{
	struct answer *a = r->arg;

	a->called++;
	a->err = r->err;
	a->sig = r->sig;
	snprintf(a->text, sizeof(a->text), "%s", r->text);
	free(r);
	if (--*a->left == 0 && a->base != NULL)
		event_base_loopbreak(a->base);
}

static struct dkimpool_req *
new_req(const char *path, off_t off, uint64_t size, const char *domain,
    struct answer *a)
{
	struct dkimpool_req *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	snprintf(r->qid, sizeof(r->qid), "QID0000000000000");
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->offset = off;
	r->size = size;
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	memset(r->bh, 0x5a, sizeof(r->bh));
	r->expire = 3600;
	r->cb = on_signed;
	r->arg = a;
	return r;
}

static void
test_pool(void **state)
{
	static const char msg[] = "Received: x\r\nFrom: a@example.test\r\n"
	    "Subject: s\r\n\r\nbody\r\n";
	char kd[600], p[700], path[512], err[256];
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct dkim_store *st = dkim_store_new();
	struct dkim_keyset *ks;
	struct event_base *base;
	struct dkimpool *pool;
	struct answer a[3], c[2];
	int left = 3, cleft = 2, fd, i;
	FILE *fp;

	(void)state;
	assert_int_equal(evthread_use_pthreads(), 0);
	base = event_base_new();
	assert_non_null(base);
	snprintf(kd, sizeof(kd), "%s/keys", tdir);
	assert_int_equal(mkdir(kd, 0700), 0);
	snprintf(p, sizeof(p), "%s/example.test", kd);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/example.test/s1.ed25519.key", kd);
	fp = fopen(p, "w");
	assert_non_null(fp);
	PEM_write_PrivateKey(fp, ed, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	EVP_PKEY_free(ed);
	ks = dkim_keyset_load(kd, NULL, NULL, err, sizeof(err));
	assert_non_null(ks);
	dkim_store_set(st, ks);
	fd = write_file("m3", msg, strlen(msg), path, sizeof(path));
	close(fd);

	memset(a, 0, sizeof(a));
	for (i = 0; i < 3; i++) {
		a[i].base = base;
		a[i].left = &left;
	}
	pool = dkimpool_new(base, st, 2, err, sizeof(err));
	assert_non_null(pool);
	assert_int_equal(dkimpool_submit(pool, new_req(path, 0, strlen(msg),
	    "EXAMPLE.test", &a[0])), 0);
	assert_int_equal(dkimpool_submit(pool, new_req(path, 0, strlen(msg),
	    "other.test", &a[1])), 0);
	assert_int_equal(dkimpool_submit(pool, new_req("/nonexistent/x", 0,
	    10, "example.test", &a[2])), 0);
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (i = 0; i < 3; i++)
		assert_int_equal(a[i].called, 1);
	assert_int_equal(a[0].err, 0);
	assert_non_null(a[0].sig);
	assert_true(strncmp(a[0].sig, "DKIM-Signature: v=1; a=ed25519-sha256;",
	    38) == 0);
	assert_non_null(strstr(a[0].sig, "d=example.test;"));
	assert_non_null(strstr(a[0].sig, "x="));
	free(a[0].sig);
	assert_int_equal(a[1].err, ENOKEY);
	assert_null(a[1].sig);
	assert_non_null(strstr(a[1].text, "no key for other.test"));
	assert_int_equal(a[2].err, ENOENT);	/* the file's errno */
	assert_non_null(strstr(a[2].text, "cannot open"));
	dkimpool_free(pool);

	/* freed with requests queued and no loop running: each is called
	 * back once, here (cancelled, or answered if a worker was quick) */
	pool = dkimpool_new(base, st, 1, err, sizeof(err));
	assert_non_null(pool);
	memset(c, 0, sizeof(c));
	for (i = 0; i < 2; i++) {
		c[i].left = &cleft;
		assert_int_equal(dkimpool_submit(pool, new_req(path, 0,
		    strlen(msg), "example.test", &c[i])), 0);
	}
	dkimpool_free(pool);
	for (i = 0; i < 2; i++) {
		assert_int_equal(c[i].called, 1);
		assert_true(c[i].err == 0 || c[i].err == ECANCELED);
		free(c[i].sig);
	}
	dkim_store_free(st);
	event_base_free(base);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_header),
		cmocka_unit_test(test_read_header_long),
		cmocka_unit_test(test_pool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
