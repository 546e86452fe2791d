/*
 * fuzz_dataread — libFuzzer driver for src/smtp/dataread.c.
 *
 * The first input octet picks the mode (bit 0: BDAT), a size limit and a
 * chunk size; the rest is fed twice: whole, and in chunks.  The two runs
 * must agree on the error, the size, the "Received" count, where DATA
 * ended, and (for accepted messages) the stored content.  In DATA mode
 * the end must be a real CR LF "." CR LF.  Memory errors are for the
 * sanitizers.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *       fuzz/fuzz_dataread.c src/smtp/dataread.c -o fuzz_dataread
 *   ./fuzz_dataread fuzz/corpus/dataread
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/dataread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

static int
emit(void *ctx, const char *b, size_t n)
{
	struct out *o = ctx;

	if (n == 0 || o->len + n > o->cap)
		abort();	/* never empty, never more than was fed */
	memcpy(o->buf + o->len, b, n);
	o->len += n;
	return 0;
}

struct run {
	struct dataread	 dr;
	struct out	 out;
	size_t		 end;	/* offset after the end marker, or 0 */
};

static void
run(struct run *r, int bdat, uint64_t max, const char *in, size_t len,
    size_t chunk)
{
	size_t off = 0;

	r->out.cap = len + 2;
	r->out.len = 0;
	r->out.buf = malloc(r->out.cap);
	if (r->out.buf == NULL)
		abort();
	r->end = 0;
	dataread_init(&r->dr, bdat, max, emit, &r->out);
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk, used;
		int done = 0;

		used = dataread_feed(&r->dr, in + off, n, &done);
		if (used > n)
			abort();
		if (done) {
			r->end = off + used;
			break;
		}
		if (used != n)
			abort();
		off += n;
	}
	if (bdat)
		dataread_finish(&r->dr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[] = { UINT64_MAX, 0, 5, 100, 1000 };
	struct run a, b;
	int bdat;
	uint64_t max;
	size_t chunk;

	if (size < 1)
		return 0;
	bdat = data[0] & 1;
	max = limits[(data[0] >> 1) % 5];
	chunk = (size_t)(data[0] >> 4) + 1;
	data++;
	size--;

	run(&a, bdat, max, (const char *)data, size, size ? size : 1);
	run(&b, bdat, max, (const char *)data, size, chunk);

	if (a.dr.err != b.dr.err || a.dr.size != b.dr.size ||
	    a.dr.received != b.dr.received || a.end != b.end)
		abort();
	if (a.dr.err == DR_OK &&
	    (a.out.len != b.out.len ||
	    memcmp(a.out.buf, b.out.buf, a.out.len) != 0))
		abort();
	if (a.dr.err == DR_OK && a.dr.size != a.out.len)
		abort();
	if (a.dr.err != DR_OK && a.dr.size > 0 && a.out.len > a.dr.size)
		abort();
	/* DATA ends only after CR LF "." CR LF (or "." CR LF at the start). */
	if (a.end != 0) {
		if (a.end < 3 || memcmp(data + a.end - 3, ".\r\n", 3) != 0)
			abort();
		if (a.end > 3 && (a.end < 5 ||
		    memcmp(data + a.end - 5, "\r\n", 2) != 0))
			abort();
	}
	free(a.out.buf);
	free(b.out.buf);
	return 0;
}
