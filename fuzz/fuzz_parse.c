/*
 * fuzz_parse — libFuzzer driver for src/smtp/parse.c.
 *
 * The input is one command line (without CRLF; cut at the first NUL as
 * the session does after its NUL check).  It goes through the verb
 * splitter and then through every argument parser, with and without the
 * DSN and SMTPUTF8 switches.  Checks the invariants callers rely on:
 * *args points inside the line, a parsed address fits and is bounded,
 * errors leave the struct cleared.  Memory errors are for the sanitizers.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *       fuzz/fuzz_parse.c src/smtp/parse.c -o fuzz_parse
 *   ./fuzz_parse fuzz/corpus/parse
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(int rc, const struct smtp_path *p)
{
	size_t n = strnlen(p->addr, sizeof(p->addr));

	if (n >= sizeof(p->addr))
		abort();
	if (rc != SMTP_P_OK && (n != 0 || p->envid != NULL ||
	    p->orcpt != NULL))
		abort();
	if (rc == SMTP_P_OK && n > 256)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_path p;
	const char *args = NULL;
	char *line;
	uint64_t bsize;
	int last, rc, dsn, utf8;
	size_t len;

	if (size > 4096)	/* the session caps lines at 1000 (12288 AUTH) */
		return 0;
	line = malloc(size + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	len = strlen(line);

	(void)smtp_parse_verb(line, &args);
	if (args != NULL && (args < line || args > line + len))
		abort();

	for (dsn = 0; dsn <= 1; dsn++) {
		rc = smtp_parse_mail(line, dsn, &p);
		check_path(rc, &p);
		smtp_path_clear(&p);
		for (utf8 = 0; utf8 <= 1; utf8++) {
			rc = smtp_parse_rcpt(line, dsn, utf8, &p);
			check_path(rc, &p);
			smtp_path_clear(&p);
		}
	}
	if (args != NULL) {
		rc = smtp_parse_mail(args, 1, &p);
		check_path(rc, &p);
		smtp_path_clear(&p);
	}
	(void)smtp_mailbox_valid(line, len, 0);
	(void)smtp_mailbox_valid(line, len, 1);
	(void)smtp_helo_valid(line);
	if (smtp_parse_bdat(line, &bsize, &last) == 0 && last != 0 &&
	    last != 1)
		abort();
	free(line);
	return 0;
}
