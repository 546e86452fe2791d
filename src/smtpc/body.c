/*
 * smtpc/body — what the client does to message bytes on their way out:
 * CRLF normalisation and dot-stuffing (RFC 5321 4.5.2) on the fly, and
 * base64 for SASL.
 *
 * The stuffer is a two-flag state machine so that a body can arrive in
 * any chunking (a CRLF or a leading dot split across reads) and still be
 * sent byte-exact.  LF alone and CR alone both become CRLF: bare line
 * ends are exactly what SMTP smuggling abuses, and strict receivers
 * (outpostd among them) refuse them.  Owns nothing; fails only when the
 * evbuffer cannot grow (out of memory).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "smtpc/smtpc.h"

void
smtpc_stuff_init(struct smtpc_stuff *st)
{
	st->bol = 1;
	st->cr = 0;
}

int
smtpc_stuff_add(struct smtpc_stuff *st, const char *in, size_t len,
    struct evbuffer *out)
{
	size_t	 i, run;

	i = 0;
	while (i < len) {
		if (st->cr) {
			/* the pending CR ends a line, whatever follows */
			st->cr = 0;
			if (evbuffer_add(out, "\r\n", 2) == -1)
				return -1;
			st->bol = 1;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		if (in[i] == '\r') {
			st->cr = 1;
			i++;
			continue;
		}
		if (in[i] == '\n') {
			if (evbuffer_add(out, "\r\n", 2) == -1)
				return -1;
			st->bol = 1;
			i++;
			continue;
		}
		/* RFC 5321 4.5.2: a line starting with "." gets one more */
		if (st->bol && in[i] == '.' && evbuffer_add(out, ".", 1) == -1)
			return -1;
		/* copy the run up to the next CR or LF in one call */
		for (run = i; run < len && in[run] != '\r' && in[run] != '\n';
		    run++)
			;
		if (evbuffer_add(out, in + i, run - i) == -1)
			return -1;
		st->bol = 0;
		i = run;
	}
	return 0;
}

int
smtpc_stuff_end(struct smtpc_stuff *st, struct evbuffer *out)
{
	if (st->cr) {
		st->cr = 0;
		if (evbuffer_add(out, "\r\n", 2) == -1)
			return -1;
		st->bol = 1;
	}
	if (!st->bol && evbuffer_add(out, "\r\n", 2) == -1)
		return -1;
	st->bol = 1;
	return evbuffer_add(out, ".\r\n", 3);
}

int
smtpc_b64_encode(const unsigned char *in, size_t len, char *out,
    size_t outlen)
{
	size_t	 need;

	if (len > (SIZE_MAX - 3) / 4 * 3 - 3)
		return -1;
	need = (len + 2) / 3 * 4 + 1;
	if (need > outlen || len > (size_t)INT_MAX)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int
smtpc_b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen)
{
	int	 n, pad = 0;

	if (len % 4 != 0 || len > (size_t)INT_MAX)
		return -1;
	if (len == 0) {
		if (outlen < 1)
			return -1;
		out[0] = '\0';
		return 0;
	}
	if (len / 4 * 3 + 1 > outlen)
		return -1;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	n -= pad;
	out[n] = '\0';
	return n;
}
