/*
 * fdreap_test — the descriptor ring (order, full, wrap-around) and the
 * closer thread: every descriptor handed over is closed by fdreap_free(),
 * also past a full ring (inline close) and without a thread (NULL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "delivery/fdreap.h"

static void
test_ring_order_and_full(void **state)
{
	struct fdreap_ring r;
	int out[FDREAP_MAX + 1];
	size_t i;

	(void)state;
	fdreap_ring_init(&r);
	assert_int_equal(fdreap_ring_take(&r, out, FDREAP_MAX), 0);
	for (i = 0; i < FDREAP_MAX; i++)
		assert_int_equal(fdreap_ring_push(&r, (int)i + 100), 0);
	assert_int_equal(fdreap_ring_push(&r, 7), -1);	/* full */
	assert_int_equal(fdreap_ring_take(&r, out, 3), 3);
	assert_int_equal(out[0], 100);
	assert_int_equal(out[2], 102);
	assert_int_equal(r.n, FDREAP_MAX - 3);
}

static void
test_ring_wraps(void **state)
{
	struct fdreap_ring r;
	int out[FDREAP_MAX];
	size_t i, n;
	int next = 0, want = 0;

	(void)state;
	fdreap_ring_init(&r);
	/* push 5, take 3, many times: head goes round the ring */
	for (i = 0; i < 3 * FDREAP_MAX; i++) {
		while (r.n < 5)
			assert_int_equal(fdreap_ring_push(&r, next++), 0);
		n = fdreap_ring_take(&r, out, 3);
		assert_int_equal(n, 3);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(out[k], want++);
	}
	n = fdreap_ring_take(&r, out, FDREAP_MAX);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], want);
	assert_int_equal(out[1], want + 1);
	assert_int_equal(r.n, 0);
}

static int
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
test_thread_closes_everything(void **state)
{
	enum { N = FDREAP_MAX * 2 + 10 };	/* some past a full ring */
	static int fds[N];
	struct fdreap *r;
	size_t i;

	(void)state;
	r = fdreap_new();
	assert_non_null(r);
	for (i = 0; i < N; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	for (i = 0; i < N; i++)
		fdreap_close(r, fds[i]);
	fdreap_close(r, -1);		/* no-op */
	fdreap_free(r);
	for (i = 0; i < N; i++)
		assert_false(is_open(fds[i]));

	/* no thread: closes at once */
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fds[0] >= 0);
	fdreap_close(NULL, fds[0]);
	assert_false(is_open(fds[0]));
	fdreap_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_order_and_full),
		cmocka_unit_test(test_ring_wraps),
		cmocka_unit_test(test_thread_closes_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
