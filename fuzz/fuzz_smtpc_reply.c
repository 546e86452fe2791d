/*
 * fuzz_smtpc_reply — libFuzzer driver for the SMTP client's parsers in
 * src/smtpc/: the reply parser and EHLO capability lines (reply.c), the
 * body's CRLF normalisation and dot-stuffing (body.c) and its base64.
 *
 * The input is what a hostile server sends: it is cut at CRLF (or LF)
 * into lines and fed to the reply parser, capability lines to the EHLO
 * parser.  Checks: a finished reply has a code 200..599, NUL-terminated
 * text and enhanced code inside their arrays, a bounded line count.  The
 * same input as a message body goes through the dot-stuffer, whose output
 * outpost's own DATA reader (src/smtp/dataread.c) must accept as strict
 * CRLF with the end marker exactly at its end — what a receiving server
 * sees.  Decoded base64 survives a round trip.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_smtpc_reply fuzz/corpus/smtpc_reply
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/dataread.h"
#include "smtpc/smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
sink(void *ctx, const char *b, size_t n)
{
	(void)ctx;
	(void)b;
	(void)n;
	return 0;
}

static void
check_reply(const struct smtpc_reply *r)
{
	if (r->code < 200 || r->code > 599 || r->nlines < 1 ||
	    r->textlen >= sizeof(r->text) ||
	    memchr(r->text, '\0', sizeof(r->text)) == NULL ||
	    memchr(r->enhanced, '\0', sizeof(r->enhanced)) == NULL)
		abort();
}

static void
replies(const char *in, size_t len)
{
	struct smtpc_reply r;
	struct smtpc_caps caps;
	const char *text;
	size_t off = 0, tl;
	int rc, lines = 0;

	smtpc_reply_init(&r);
	memset(&caps, 0, sizeof(caps));
	while (off < len && lines++ < 100000) {
		const char *nl = memchr(in + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (in + off)) : len - off;
		size_t ll = l;

		if (ll > 0 && in[off + ll - 1] == '\r')
			ll--;
		text = NULL;
		tl = 0;
		rc = smtpc_reply_feed(&r, in + off, ll, &text, &tl);
		if (rc == SMTPC_REPLY_BAD) {
			smtpc_reply_init(&r);
		} else {
			if (text != NULL && (text < in + off ||
			    text + tl > in + off + ll))
				abort();
			if (text != NULL && r.code == 250)
				smtpc_caps_parse_line(&caps, text, tl);
			if (rc == SMTPC_REPLY_DONE) {
				check_reply(&r);
				smtpc_reply_init(&r);
			} else if (rc != SMTPC_REPLY_MORE)
				abort();
		}
		if (memchr(caps.auth_list, '\0', sizeof(caps.auth_list)) == NULL ||
		    memchr(caps.domain, '\0', sizeof(caps.domain)) == NULL)
			abort();
		off += l + (nl ? 1 : 0);
	}
}

static void
stuffing(const char *in, size_t len, size_t chunk)
{
	struct smtpc_stuff st;
	struct evbuffer *out;
	struct dataread dr;
	unsigned char *p;
	size_t off, olen, used;
	int done = 0;

	if ((out = evbuffer_new()) == NULL)
		return;
	smtpc_stuff_init(&st);
	for (off = 0; off < len; off += chunk)
		if (smtpc_stuff_add(&st, in + off, len - off < chunk ?
		    len - off : chunk, out) != 0)
			goto done;
	if (smtpc_stuff_end(&st, out) != 0)
		goto done;
	olen = evbuffer_get_length(out);
	if ((p = evbuffer_pullup(out, -1)) == NULL)
		goto done;
	if (olen < 3 || memcmp(p + olen - 3, ".\r\n", 3) != 0)
		abort();
	dataread_init(&dr, 0, UINT64_MAX, sink, NULL);
	used = dataread_feed(&dr, (const char *)p, olen, &done);
	/* the end marker is the end, and no bare CR or LF went out */
	if (!done || used != olen || dr.err == DR_ERR_BARE)
		abort();
done:
	evbuffer_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char bin[8192];
	static char enc[12000];
	const char *in = (const char *)data;
	int n, m;

	if (size > 8192)
		return 0;
	replies(in, size);
	stuffing(in, size, size ? size : 1);
	stuffing(in, size, 7);
	/* The client's decoder is lenient (it takes "2=2=", a server's
	 * challenge is not worth a failure), so only the round trip of what
	 * it decoded is checked: encode, decode again, same bytes. */
	n = smtpc_b64_decode(in, size, bin, sizeof(bin) / 2);
	if (n > 0) {
		m = smtpc_b64_encode(bin, (size_t)n, enc, sizeof(enc));
		if (m < 0 || smtpc_b64_decode(enc, (size_t)m, bin + sizeof(bin) / 2,
		    sizeof(bin) / 2) != n ||
		    memcmp(bin, bin + sizeof(bin) / 2, (size_t)n) != 0)
			abort();
	}
	return 0;
}
