/*
 * fuzz_envelope — libFuzzer driver for src/queue/envelope.c, the parser
 * of the spool file's envelope header.
 *
 * Spool files are written by outpostd itself, but the parser is what
 * start-up recovery, `outpost queue` and the delivery engine run over
 * whatever is on disk (a truncated write, a disk error, an operator's
 * edit), so it is treated as hostile input.  Checks: a parse either
 * fails with the envelope cleared or consumes a prefix ending in ".\n";
 * a parsed envelope formats (the parser accepts nothing the formatter
 * refuses), and formatting then parsing again gives the same envelope
 * and the same text (one envelope, one text).  Leaks are for LSan.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_envelope fuzz/corpus/envelope
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "queue/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
env_eq(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (strcmp(a->qid, b->qid) != 0 || a->arrival != b->arrival ||
	    !str_eq(a->mail_from, b->mail_from) ||
	    !str_eq(a->auth_user, b->auth_user) ||
	    !str_eq(a->client_addr, b->client_addr) ||
	    !str_eq(a->helo, b->helo) || !str_eq(a->envid, b->envid) ||
	    a->ret != b->ret || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || a->nrcpts != b->nrcpts ||
	    !str_eq(a->dkim_domain, b->dkim_domain) ||
	    memcmp(a->dkim_bh, b->dkim_bh, sizeof(a->dkim_bh)) != 0)
		return 0;
	for (i = 0; i < a->nrcpts; i++)
		if (!str_eq(a->rcpts[i].addr, b->rcpts[i].addr) ||
		    !str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt) ||
		    a->rcpts[i].notify != b->rcpts[i].notify)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct envelope zero;
	struct envelope a, b;
	char *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;
	ssize_t n;

	if (size > (1u << 20))
		return 0;
	n = envelope_parse((const char *)data, size, &a);
	if (n < 0) {
		if (errno != EBADMSG || !env_eq(&a, &zero) ||
		    a.rcpts != NULL)
			abort();
		return 0;
	}
	if ((size_t)n > size || n < 2 || data[n - 1] != '\n' ||
	    data[n - 2] != '.')
		abort();
	if (envelope_format(&a, &t1, &l1) != 0)
		abort();	/* parsed, so it must be writable */
	if (envelope_parse(t1, l1, &b) != (ssize_t)l1)
		abort();
	if (!env_eq(&a, &b))
		abort();
	if (envelope_format(&b, &t2, &l2) != 0 || l1 != l2 ||
	    memcmp(t1, t2, l1) != 0)
		abort();
	free(t1);
	free(t2);
	envelope_clear(&a);
	envelope_clear(&b);
	return 0;
}
