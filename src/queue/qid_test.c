/*
 * qid_test — queue ids: format, strict ordering within a thread, and
 * uniqueness across threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qid.c"

#define NTHREADS	8
#define PER_THREAD	20000

static char ids[NTHREADS][PER_THREAD][SPOOL_QID_SIZE];

static void *
gen_thread(void *arg)
{
	char (*mine)[SPOOL_QID_SIZE] = arg;
	int i;

	for (i = 0; i < PER_THREAD; i++)
		spool_qid_new(mine[i]);
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_qid_threads(void **state)
{
	pthread_t t[NTHREADS];
	char (*all)[SPOOL_QID_SIZE];
	size_t i, n = (size_t)NTHREADS * PER_THREAD;
	int k;

	(void)state;
	for (k = 0; k < NTHREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, gen_thread,
		    ids[k]), 0);
	for (k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	/* Each thread sees strictly increasing, valid ids. */
	for (k = 0; k < NTHREADS; k++)
		for (i = 0; i < PER_THREAD; i++) {
			assert_true(spool_qid_valid(ids[k][i]));
			if (i > 0)
				assert_true(strcmp(ids[k][i - 1],
				    ids[k][i]) < 0);
		}
	/* No duplicates anywhere. */
	all = malloc(n * SPOOL_QID_SIZE);
	assert_non_null(all);
	memcpy(all, ids, n * SPOOL_QID_SIZE);
	qsort(all, n, SPOOL_QID_SIZE, cmp_id);
	for (i = 1; i < n; i++)
		assert_true(strcmp(all[i - 1], all[i]) < 0);
	free(all);
}

static void
test_qid_valid(void **state)
{
	static const struct {
		const char	*s;
		int		 ok;
	} cases[] = {
		{ "0123456789ABCDEF", 1 },
		{ "ZZZZZZZZZZZZZZZZ", 1 },
		{ "0123456789ABCDE", 0 },	/* short */
		{ "0123456789ABCDEFG", 0 },	/* long */
		{ "0123456789abcdef", 0 },	/* lowercase */
		{ "0123456789ABCDEI", 0 },	/* I not in alphabet */
		{ "0123456789ABCDEU", 0 },
		{ "0123456789ABCD/F", 0 },
		{ "../queue/ABCDEFG", 0 },
		{ "", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(spool_qid_valid(cases[i].s), cases[i].ok);
	assert_false(spool_qid_valid(NULL));
}

static void
test_qid_floor(void **state)
{
	char a[SPOOL_QID_SIZE], b[SPOOL_QID_SIZE];

	(void)state;
	/* An id from far in the future lifts the floor: new ids sort after
	 * it (a clock stepped back cannot reuse a queued id). */
	spool_qid_floor("Y000000000000000");
	spool_qid_new(a);
	assert_true(strcmp(a, "Y000000000000000") > 0);
	spool_qid_new(b);
	assert_true(strcmp(a, b) < 0);
	/* Ids end with the pid. */
	assert_int_equal(a[SPOOL_QID_LEN - 1],
	    qid_alphabet[getpid() & 31]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qid_valid),
		cmocka_unit_test(test_qid_threads),
		cmocka_unit_test(test_qid_floor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
