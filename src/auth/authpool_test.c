/*
 * authpool_test — the verification pool with a real libevent loop:
 * answers arrive on the loop's thread, exactly once each, with the right
 * result; nothing is answered inline; freeing with requests pending answers
 * them AUTH_TEMPFAIL; a full queue answers AUTH_TEMPFAIL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>

#include "auth/accounts.h"
#include "auth/authpool.h"

static const struct pwhash_params fast = {
	crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN
};

/* Costly enough (a few ms each) that a queue builds up behind one thread. */
static const struct pwhash_params slow = {
	crypto_pwhash_OPSLIMIT_MIN, 16u * 1024 * 1024
};

struct slot {
	int		 calls;
	enum auth_result result;
	char		 canon[256];
	int		 on_loop_thread;
};

struct run {
	struct event_base *base;
	struct slot	*slots;
	int		 want;		/* callbacks expected */
	int		 got;
	pthread_t	 loop_thread;
	int		 timed_out;
};

struct ctx {
	struct run	*run;
	int		 idx;
};

static char dbdir[64], dbpath[128];

static void
on_result(void *arg, enum auth_result result, const char *canon)
{
	struct ctx *c = arg;
	struct run *r = c->run;
	struct slot *s = &r->slots[c->idx];

	s->calls++;
	s->result = result;
	s->on_loop_thread = pthread_equal(pthread_self(), r->loop_thread);
	if (canon != NULL)
		snprintf(s->canon, sizeof(s->canon), "%s", canon);
	if (++r->got == r->want)
		event_base_loopbreak(r->base);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	r->timed_out = 1;
	event_base_loopbreak(r->base);
}

/* Runs the loop until every callback came, or 30 s. */
static void
run_loop(struct run *r)
{
	struct timeval tv = { 30, 0 };
	struct event *guard;

	if (r->got == r->want)
		return;
	guard = evtimer_new(r->base, on_timeout, r);
	assert_non_null(guard);
	evtimer_add(guard, &tv);
	event_base_dispatch(r->base);
	event_free(guard);
	assert_false(r->timed_out);
}

static void
run_init(struct run *r, int n, struct ctx **ctxs)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	assert_non_null(r->base);
	r->slots = calloc((size_t)n, sizeof(*r->slots));
	assert_non_null(r->slots);
	*ctxs = calloc((size_t)n, sizeof(**ctxs));
	assert_non_null(*ctxs);
	for (i = 0; i < n; i++) {
		(*ctxs)[i].run = r;
		(*ctxs)[i].idx = i;
	}
	r->want = n;
	r->loop_thread = pthread_self();
}

static void
run_free(struct run *r, struct ctx *ctxs)
{
	event_base_free(r->base);
	free(r->slots);
	free(ctxs);
}

static int
setup_db(void **state)
{
	struct accounts *a;
	char err[256];

	(void)state;
	snprintf(dbdir, sizeof(dbdir), "/tmp/outpost-pool-XXXXXX");
	if (mkdtemp(dbdir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/accounts.db", dbdir);
	if ((a = accounts_open(dbpath, 1, err, sizeof(err))) == NULL)
		return -1;
	if (accounts_user_add(a, "alice@Example.org", "alicepw", 7, &fast,
	    err, sizeof(err)) != ACCT_OK ||
	    accounts_user_add(a, "bob@example.org", "bobpw", 5, &fast,
	    err, sizeof(err)) != ACCT_OK) {
		accounts_close(a);
		return -1;
	}
	accounts_close(a);
	return 0;
}

static int
teardown_db(void **state)
{
	char p[160];

	(void)state;
	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	rmdir(dbdir);
	return 0;
}

static void
test_verify_many(void **state)
{
	static const struct {
		const char	*user;
		const char	*pw;
		enum auth_result want;
		const char	*canon;
	} cases[] = {
		{ "alice@example.org", "alicepw", AUTH_OK, "alice@example.org" },
		{ "ALICE@EXAMPLE.ORG", "alicepw", AUTH_OK, "alice@example.org" },
		{ "bob@example.org", "bobpw", AUTH_OK, "bob@example.org" },
		{ "bob@example.org", "alicepw", AUTH_DENIED, NULL },
		{ "carol@example.org", "x", AUTH_DENIED, NULL },
		{ "alice", "alicepw", AUTH_DENIED, NULL },
		{ "alice@example.org", "", AUTH_DENIED, NULL },
	};
	const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
	const int n = ncases * 4;
	struct authpool *ap;
	struct ctx *ctxs;
	struct run r;
	char err[256];
	int i;

	(void)state;
	ap = authpool_new(dbpath, 3, &fast, err, sizeof(err));
	assert_non_null(ap);
	run_init(&r, n, &ctxs);
	for (i = 0; i < n; i++) {
		const char *pw = cases[i % ncases].pw;

		authpool_verify(ap, r.base, cases[i % ncases].user, pw,
		    strlen(pw), on_result, &ctxs[i]);
	}
	run_loop(&r);
	for (i = 0; i < n; i++) {
		struct slot *s = &r.slots[i];

		assert_int_equal(s->calls, 1);
		assert_true(s->on_loop_thread);
		if (s->result != cases[i % ncases].want)
			fail_msg("request %d (%s): got %d want %d", i,
			    cases[i % ncases].user, s->result,
			    cases[i % ncases].want);
		if (cases[i % ncases].canon != NULL)
			assert_string_equal(s->canon, cases[i % ncases].canon);
		else
			assert_string_equal(s->canon, "");
	}
	authpool_free(ap);
	run_free(&r, ctxs);
}

static void
test_never_inline(void **state)
{
	char longuser[2000];
	struct authpool *ap;
	struct ctx *ctxs;
	struct run r;
	char err[256];

	(void)state;
	ap = authpool_new(dbpath, 1, &fast, err, sizeof(err));
	assert_non_null(ap);
	run_init(&r, 2, &ctxs);
	memset(longuser, 'a', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	/* Rejected without a worker, yet still answered from the loop. */
	authpool_verify(ap, r.base, longuser, "x", 1, on_result, &ctxs[0]);
	authpool_verify(ap, r.base, "alice@example.org", "alicepw", 7,
	    on_result, &ctxs[1]);
	assert_int_equal(r.slots[0].calls, 0);
	run_loop(&r);
	assert_int_equal(r.slots[0].calls, 1);
	assert_int_equal(r.slots[0].result, AUTH_DENIED);
	assert_true(r.slots[0].on_loop_thread);
	assert_int_equal(r.slots[1].result, AUTH_OK);
	authpool_free(ap);
	run_free(&r, ctxs);
}

static void
test_free_with_pending(void **state)
{
	const int n = 40;
	struct authpool *ap;
	struct ctx *ctxs;
	struct run r;
	char err[256];
	int i, denied = 0, temp = 0;

	(void)state;
	ap = authpool_new(dbpath, 1, &slow, err, sizeof(err));
	assert_non_null(ap);
	run_init(&r, n, &ctxs);
	/* Unknown user: the dummy hash is made at the pool's (slow) cost,
	 * where a stored hash would be checked at its own (fast) cost. */
	for (i = 0; i < n; i++)
		authpool_verify(ap, r.base, "nobody@example.org", "pw", 2,
		    on_result, &ctxs[i]);
	authpool_free(ap);	/* joins: nothing may run after this */
	for (i = 0; i < n; i++)
		assert_int_equal(r.slots[i].calls, 0);
	run_loop(&r);
	for (i = 0; i < n; i++) {
		assert_int_equal(r.slots[i].calls, 1);
		assert_true(r.slots[i].on_loop_thread);
		if (r.slots[i].result == AUTH_DENIED)
			denied++;
		else if (r.slots[i].result == AUTH_TEMPFAIL)
			temp++;
		else
			fail_msg("request %d: result %d", i,
			    r.slots[i].result);
	}
	assert_int_equal(denied + temp, n);
	assert_true(temp > 0);
	run_free(&r, ctxs);
}

static void
test_queue_full(void **state)
{
	const int n = 10000 + 200;
	struct authpool *ap;
	struct ctx *ctxs;
	struct run r;
	char err[256];
	int i, temp = 0;

	(void)state;
	ap = authpool_new(dbpath, 1, &slow, err, sizeof(err));
	assert_non_null(ap);
	run_init(&r, n, &ctxs);
	for (i = 0; i < n; i++)
		authpool_verify(ap, r.base, "nobody@example.org", "wrong", 5,
		    on_result, &ctxs[i]);
	/* The overflow was answered, but not inline. */
	for (i = 0; i < n; i++)
		assert_int_equal(r.slots[i].calls, 0);
	authpool_free(ap);
	run_loop(&r);
	for (i = 0; i < n; i++) {
		assert_int_equal(r.slots[i].calls, 1);
		if (r.slots[i].result == AUTH_TEMPFAIL)
			temp++;
		else
			assert_int_equal(r.slots[i].result, AUTH_DENIED);
	}
	/* The last ones submitted overflowed: one worker cannot keep up. */
	assert_int_equal(r.slots[n - 1].result, AUTH_TEMPFAIL);
	assert_true(temp >= 100);
	run_free(&r, ctxs);
}

static void
test_bad_db(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(authpool_new("/nonexistent-dir/x/accounts.db", 2, &fast,
	    err, sizeof(err)));
	assert_true(err[0] != '\0');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_many),
		cmocka_unit_test(test_never_inline),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_bad_db),
	};

	if (sodium_init() < 0 || evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
