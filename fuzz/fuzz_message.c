/*
 * fuzz_message — libFuzzer driver for src/message/: the header section
 * parser (header.c), the address-field parser, and DKIM canonicalisation
 * of header fields and of the body (canon.c).
 *
 * The first input octet holds switches (bit 0: SMTPUTF8; bits 1-2: the
 * address kind; bits 4-7: a chunk size); the rest is a header section as
 * the session hands it over, and also a body.  Checks: every parsed field
 * lies inside the input, in order, with its name and value inside it;
 * a parsed mailbox is NUL-terminated with its '@' where it says; relaxed
 * header canonicalisation is idempotent, lowercases the name and leaves
 * no folding, no run of blanks and no blank at the end; the body hash is
 * the same whether the body arrives whole or in small pieces, for both
 * algorithms.  Memory errors and leaks are for the sanitizers.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_message fuzz/corpus/message
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message/canon.h"
#include "message/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_relaxed(const char *field, size_t len)
{
	char *a = NULL, *b = NULL;
	size_t alen = 0, acap = 0, blen = 0, bcap = 0, i, colon;

	if (canon_header(CANON_RELAXED, field, len, 1, &a, &alen, &acap) != 0)
		goto out;	/* ENOMEM only */
	if (alen < 2 || a[alen - 2] != '\r' || a[alen - 1] != '\n')
		abort();
	colon = alen;
	for (i = 0; i + 2 < alen; i++) {
		if (a[i] == '\r' || a[i] == '\n')
			abort();	/* unfolded */
		if (a[i] == ':' && colon == alen)
			colon = i;
		if (colon == alen && a[i] >= 'A' && a[i] <= 'Z')
			abort();	/* the name is lowercased */
		if ((a[i] == ' ' || a[i] == '\t') &&
		    (a[i + 1] == ' ' || a[i + 1] == '\t' || i + 3 == alen))
			abort();	/* blanks compressed, none at the end */
		if (a[i] == '\t')
			abort();
	}
	if (canon_header(CANON_RELAXED, a, alen, 1, &b, &blen, &bcap) != 0)
		goto out;
	if (blen != alen || memcmp(a, b, alen) != 0)
		abort();	/* idempotent */
out:
	free(a);
	free(b);
}

static void
body_hash(enum canon_alg alg, const char *p, size_t len, size_t chunk,
    unsigned char out[32])
{
	struct canon_body c;
	size_t off;

	memset(out, 0, 32);
	if (canon_body_init(&c, alg) != 0)
		abort();
	for (off = 0; off < len; off += chunk)
		if (canon_body_feed(&c, p + off, len - off < chunk ?
		    len - off : chunk) != 0)
			abort();
	if (canon_body_final(&c, out) != 0)
		abort();
	canon_body_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum hdr_kind kinds[] = { HDR_MAILBOX, HDR_MAILBOX_LIST,
	    HDR_ADDRESS_LIST, HDR_ADDRESS_LIST_OPT };
	struct hdr_section hs;
	struct hdr_mailbox mb[4];
	unsigned char h1[32], h2[32];
	const char *buf;
	char err[256];
	size_t i, prev = 0, chunk;
	int utf8, n, k, j;
	enum hdr_kind kind;
	enum canon_alg alg;

	if (size < 1 || size > 65536)
		return 0;
	utf8 = data[0] & 1;
	kind = kinds[(data[0] >> 1) & 3];
	chunk = (size_t)(data[0] >> 4) + 1;
	buf = (const char *)data + 1;
	size--;

	memset(&hs, 0, sizeof(hs));
	if (hdr_parse(&hs, buf, size, utf8, err, sizeof(err)) == 0) {
		if (hs.n > HDR_MAX_FIELDS)
			abort();
		for (i = 0; i < hs.n; i++) {
			const struct hdr_field *f = &hs.f[i];

			if (f->off != prev || f->len == 0 ||
			    f->off + f->len > size || f->namelen == 0 ||
			    f->namelen > f->len || f->valoff > f->len ||
			    f->valoff <= f->namelen)
				abort();
			prev = f->off + f->len;
			n = hdr_addresses(buf + f->off + f->valoff,
			    f->len - f->valoff, kind, mb, 4, err, sizeof(err));
			if (n < -1)
				abort();
			for (j = 0; n > 0 && j < n && j < 4; j++) {
				size_t al = strnlen(mb[j].addr, sizeof(mb[j].addr));

				if (al >= sizeof(mb[j].addr) || mb[j].at >= al ||
				    mb[j].addr[mb[j].at] != '@')
					abort();
			}
			check_relaxed(buf + f->off, f->len);
		}
		hdr_free(&hs);
	}
	for (k = 0; k < 2; k++) {
		alg = k ? CANON_RELAXED : CANON_SIMPLE;
		body_hash(alg, buf, size, size ? size : 1, h1);
		body_hash(alg, buf, size, chunk, h2);
		if (memcmp(h1, h2, 32) != 0)
			abort();
	}
	return 0;
}
