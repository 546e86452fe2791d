/*
 * msgfilter.c — header hygiene and DKIM for one message; see msgfilter.h.
 *
 * States: HEADER (octets go to hbuf, looking for the empty line), BODY
 * (octets go to the sink and the body hash), then END.  Errors are
 * sticky: a header section over the limit stops buffering and the
 * message is refused at the end; a failed sink stops writing (the spool
 * reports its errno at commit).
 *
 * Owns: hbuf (the received header section), the key-set reference, the
 * final field block built at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "message/canon.h"
#include "message/dkim.h"
#include "message/header.h"
#include "message/msgfilter.h"
#include "util/log.h"

#define MF_MAX_SIGS	4
#define MF_MAX_FROM	16	/* From mailboxes looked at for signing */

enum mf_state { MF_HEADER, MF_BODY, MF_END };

struct msgfilter {
	struct msgfilter_opts o;
	char		 qid[40];
	char		 hostname[256];
	char		*auth_user;
	char		*mail_from;
	enum mf_state	 state;
	char		*hbuf;		/* header section as received */
	size_t		 hlen, hcap;
	int		 bol;		/* at the beginning of a header line */
	int		 crbol;		/* CR seen at the beginning of a line */
	int		 separator;	/* the empty line was there */
	int		 toobig;
	int		 oom;		/* header buffering failed: refuse (451) */
	int		 sink_failed;
	struct canon_body body;
	int		 body_ok;
	unsigned char	 bh[32];
	char		*trace;
	size_t		 tracelen;
	char		*fields;	/* final fields (no trace, no sigs) */
	size_t		 flen;
	struct hdr_section fhs;		/* parsed fields, for signing */
	const struct dkim_key *sig[MF_MAX_SIGS];
	int		 nsig;
	time_t		 t;
};

struct msgfilter *
msgfilter_new(const struct msgfilter_opts *o)
{
	struct msgfilter *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		goto fail;
	f->o = *o;
	if (f->o.max_header == 0)
		f->o.max_header = MSGFILTER_MAX_HEADER;
	snprintf(f->qid, sizeof(f->qid), "%s", o->qid ? o->qid : "-");
	snprintf(f->hostname, sizeof(f->hostname), "%s",
	    o->hostname ? o->hostname : "localhost");
	f->o.qid = f->qid;
	f->o.hostname = f->hostname;
	if ((o->auth_user != NULL &&
	    (f->auth_user = strdup(o->auth_user)) == NULL) ||
	    (f->mail_from = strdup(o->mail_from ? o->mail_from : "")) == NULL)
		goto fail;
	f->o.auth_user = f->auth_user;
	f->o.mail_from = f->mail_from;
	f->bol = 1;
	if (canon_body_init(&f->body, CANON_RELAXED) < 0)
		goto fail;
	f->body_ok = 1;
	return f;
fail:
	if (f != NULL) {
		free(f->auth_user);
		free(f->mail_from);
		free(f);
	}
	dkim_keyset_release(o->keys);
	return NULL;
}

void
msgfilter_free(struct msgfilter *f)
{
	if (f == NULL)
		return;
	canon_body_free(&f->body);
	hdr_free(&f->fhs);
	dkim_keyset_release(f->o.keys);
	free(f->hbuf);
	free(f->trace);
	free(f->fields);
	free(f->auth_user);
	free(f->mail_from);
	free(f);
}

int
msgfilter_set_trace(struct msgfilter *f, const char *buf, size_t len)
{
	char *t;

	if ((t = malloc(len + 1)) == NULL)
		return -1;
	memcpy(t, buf, len);
	free(f->trace);
	f->trace = t;
	f->tracelen = len;
	return 0;
}

static int
hbuf_put(struct msgfilter *f, const char *p, size_t n)
{
	if (f->toobig)
		return 0;
	if (n > f->o.max_header - f->hlen) {
		f->toobig = 1;
		free(f->hbuf);
		f->hbuf = NULL;
		f->hlen = f->hcap = 0;
		return 0;
	}
	if (f->hcap - f->hlen < n) {
		size_t ncap = f->hcap ? f->hcap : 4096;
		char *nb;

		while (ncap - f->hlen < n)
			ncap *= 2;
		if (ncap > f->o.max_header)
			ncap = f->o.max_header;
		if ((nb = realloc(f->hbuf, ncap)) == NULL) {
			/* never accept a header with a hole in it */
			f->oom = 1;
			f->toobig = 1;
			return -1;
		}
		f->hbuf = nb;
		f->hcap = ncap;
	}
	memcpy(f->hbuf + f->hlen, p, n);
	f->hlen += n;
	return 0;
}

static int
body_put(struct msgfilter *f, const char *p, size_t n)
{
	if (n == 0 || f->toobig)
		return 0;
	if (f->body_ok && canon_body_feed(&f->body, p, n) < 0)
		f->body_ok = 0;
	if (f->sink_failed)
		return -1;
	if (f->o.body(f->o.body_ctx, p, n) < 0) {
		f->sink_failed = 1;
		return -1;
	}
	return 0;
}

int
msgfilter_feed(struct msgfilter *f, const char *buf, size_t len)
{
	size_t i = 0, start = 0;

	if (f->state == MF_BODY)
		return body_put(f, buf, len);
	if (f->state != MF_HEADER)
		return 0;
	/* Header: find the empty line ("CRLF" at the start of a line). */
	while (i < len) {
		char c = buf[i++];

		if (f->crbol) {
			f->crbol = 0;
			if (c == '\n') {
				/* everything through this LF, then drop the
				 * separator's CR LF (the CR may have come in
				 * an earlier piece) */
				if (hbuf_put(f, buf + start, i - start) < 0)
					return -1;
				if (!f->toobig)
					f->hlen -= 2;
				f->separator = 1;
				f->state = MF_BODY;
				return body_put(f, buf + i, len - i);
			}
		}
		if (f->bol && c == '\r')
			f->crbol = 1;
		f->bol = c == '\n';
	}
	return hbuf_put(f, buf + start, len - start);
}

static int
field_name_is(const struct hdr_section *hs, size_t i, const char *const *names)
{
	for (; *names != NULL; names++)
		if (hdr_is(hs, i, *names))
			return 1;
	return 0;
}

static int
fields_put(struct msgfilter *f, size_t *cap, const char *p, size_t n)
{
	if (*cap - f->flen < n) {
		size_t ncap = *cap ? *cap : 1024;
		char *nb;

		while (ncap - f->flen < n)
			ncap *= 2;
		if ((nb = realloc(f->fields, ncap)) == NULL)
			return -1;
		f->fields = nb;
		*cap = ncap;
	}
	memcpy(f->fields + f->flen, p, n);
	f->flen += n;
	return 0;
}

/* The addresses a header field must hold (RFC 5322 3.6.2, 3.6.3). */
static const struct {
	const char	*name;
	enum hdr_kind	 kind;
} addr_fields[] = {
	{ "From",	HDR_MAILBOX_LIST },
	{ "Sender",	HDR_MAILBOX },
	{ "Reply-To",	HDR_ADDRESS_LIST },
	{ "To",		HDR_ADDRESS_LIST },
	{ "Cc",		HDR_ADDRESS_LIST },
	{ "Bcc",	HDR_ADDRESS_LIST_OPT },
};

#define REFUSE(code, e, ...) do {					\
	snprintf(esc, 16, "%s", e);					\
	snprintf(text, textlen, __VA_ARGS__);				\
	rc = code;							\
	goto out;							\
} while (0)

int
msgfilter_end(struct msgfilter *f, char esc[16], char *text, size_t textlen)
{
	static const char *const bcc[] = { "bcc", NULL };
	static const char *const fromname[] = { "from", NULL };
	int rewrite_from = 0;
	struct hdr_section hs;
	struct hdr_mailbox from[MF_MAX_FROM], sender;
	char err[256], date[64], mid[512];
	size_t i, cap = 0, nfrom, nsender;
	int rc = 0, nfromaddr = 0, j, own = -1;
	const char *domain;

	memset(&hs, 0, sizeof(hs));
	memset(from, 0, sizeof(from));
	memset(&sender, 0, sizeof(sender));
	if (f->state == MF_END)
		REFUSE(451, "4.3.0", "Internal error, try again later");
	f->state = MF_END;
	if (f->oom)
		REFUSE(451, "4.3.0", "Out of memory, try again later");
	if (f->toobig)
		REFUSE(552, "5.3.4", "The message header section is over "
		    "%zu bytes", f->o.max_header);
	if (!f->body_ok || canon_body_final(&f->body, f->bh) < 0)
		REFUSE(451, "4.3.0", "Internal error hashing the body, try "
		    "again later");
	if (hdr_parse(&hs, f->hbuf ? f->hbuf : "", f->hlen, f->o.smtputf8,
	    err, sizeof(err)) < 0) {
		if (strcmp(err, "out of memory") == 0)
			REFUSE(451, "4.3.0", "Out of memory, try again later");
		REFUSE(550, "5.6.0", "%s", err);
	}
	if ((nfrom = hdr_count(&hs, "from")) == 0)
		REFUSE(550, "5.6.0", "The message has no From: header field "
		    "(RFC 5322 3.6.2)");
	if (nfrom > 1)
		REFUSE(550, "5.6.0", "The message has %zu From: header "
		    "fields; only one is allowed", nfrom);
	if ((nsender = hdr_count(&hs, "sender")) > 1)
		REFUSE(550, "5.6.0", "The message has %zu Sender: header "
		    "fields; only one is allowed", nsender);
	for (i = 0; i < hs.n; i++) {
		size_t k;

		for (k = 0; k < sizeof(addr_fields) / sizeof(addr_fields[0]);
		    k++) {
			const struct hdr_field *fl = &hs.f[i];
			struct hdr_mailbox *mb = NULL;
			int n;

			if (!hdr_is(&hs, i, addr_fields[k].name))
				continue;
			if (k == 0)
				mb = from;
			else if (k == 1)
				mb = &sender;
			n = hdr_addresses(hs.buf + fl->off + fl->valoff,
			    fl->len - fl->valoff, addr_fields[k].kind, mb,
			    k == 0 ? MF_MAX_FROM : mb ? 1 : 0, err,
			    sizeof(err));
			if (n < 0)
				REFUSE(550, "5.6.0", "Broken address in the "
				    "%s: header field: %s",
				    addr_fields[k].name, err);
			if (k == 0)
				nfromaddr = n;
		}
	}
	/* Several authors: Sender names the one who sent it (3.6.2), and
	 * it must be the sending account. */
	if (nfromaddr > 1) {
		if (nsender == 0)
			REFUSE(550, "5.6.0", "From: lists %d addresses, so a "
			    "Sender: header field naming the sending account "
			    "is required (RFC 5322 3.6.2)", nfromaddr);
		if (!((f->auth_user != NULL &&
		    strcasecmp(sender.addr, f->auth_user) == 0) ||
		    strcasecmp(sender.addr, f->mail_from) == 0))
			REFUSE(550, "5.6.0", "Sender: <%s> is not the sending "
			    "account (From: lists %d addresses)",
			    sender.addr, nfromaddr);
	}

	/* The From: sender rule: the author must be the login or one of
	 * its aliases, as for MAIL FROM.  With several authors, Sender:
	 * (checked above to be the sending account) is the one responsible
	 * (RFC 5322 3.6.2), and the co-authors may be anyone. */
	if (f->o.from_owned != NULL && nfromaddr == 1) {
		for (j = 0; j < nfromaddr; j++)
			if (!f->o.from_owned(f->o.from_ctx, from[j].addr))
				break;
		if (j < nfromaddr) {
			if (!f->o.from_rewrite || f->auth_user == NULL)
				REFUSE(553, "5.7.1", "From: address <%s> is "
				    "not owned by the sending account; use "
				    "your own address or one of its aliases",
				    from[j].addr);
			rewrite_from = 1;
		}
	}

	/* The final fields: added Message-ID and Date, then the received
	 * ones minus Bcc, byte for byte. */
	f->t = time(NULL);
	if (hdr_count(&hs, "message-id") == 0) {
		unsigned char rnd[8];
		int n;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			REFUSE(451, "4.3.0", "Internal error, try again later");
		n = snprintf(mid, sizeof(mid), "Message-ID: <%s.%02x%02x%02x"
		    "%02x%02x%02x%02x%02x@%s>\r\n", f->qid, rnd[0], rnd[1],
		    rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
		    f->hostname);
		if (n < 0 || (size_t)n >= sizeof(mid) ||
		    fields_put(f, &cap, mid, (size_t)n) < 0)
			REFUSE(451, "4.3.0", "Out of memory, try again later");
	}
	if (hdr_count(&hs, "date") == 0) {
		struct tm tm;
		size_t n;

		gmtime_r(&f->t, &tm);
		n = strftime(date, sizeof(date),
		    "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
		if (n == 0 || fields_put(f, &cap, date, n) < 0)
			REFUSE(451, "4.3.0", "Out of memory, try again later");
	}
	for (i = 0; i < hs.n; i++) {
		if (field_name_is(&hs, i, bcc))
			continue;
		if (rewrite_from && field_name_is(&hs, i, fromname)) {
			const struct hdr_field *fl = &hs.f[i];
			const char *hname = f->o.rewrite_header ?
			    f->o.rewrite_header : "X-Original-From";
			char line[600];
			int n;

			/* the original value, folding and all, under the
			 * operator's header name; then the login as author */
			n = snprintf(line, sizeof(line), "%s:", hname);
			if (n < 0 || (size_t)n >= sizeof(line) ||
			    fields_put(f, &cap, line, (size_t)n) < 0 ||
			    fields_put(f, &cap, hs.buf + fl->off + fl->valoff,
			    fl->len - fl->valoff) < 0)
				REFUSE(451, "4.3.0", "Out of memory, try again later");
			n = snprintf(line, sizeof(line), "From: <%s>\r\n",
			    f->auth_user);
			if (n < 0 || (size_t)n >= sizeof(line) ||
			    fields_put(f, &cap, line, (size_t)n) < 0)
				REFUSE(451, "4.3.0", "Out of memory, try again later");
			log_info("%s: From: rewritten to <%s> (sender rule)",
			    f->qid, f->auth_user);
			continue;
		}
		if (fields_put(f, &cap, hs.buf + hs.f[i].off, hs.f[i].len) < 0)
			REFUSE(451, "4.3.0", "Out of memory, try again later");
	}
	if (hdr_parse(&f->fhs, f->fields ? f->fields : "", f->flen,
	    f->o.smtputf8, err, sizeof(err)) < 0)
		REFUSE(451, "4.3.0", "Internal error, try again later");

	/*
	 * DKIM: only for an authenticated client, and only for a From
	 * address that passed the sender rules — the login itself or the
	 * envelope sender, which MAIL checked against the login and its
	 * aliases.  d= is that address's domain.
	 */
	for (j = 0; j < nfromaddr && j < MF_MAX_FROM && own < 0; j++)
		if ((f->auth_user != NULL &&
		    strcasecmp(from[j].addr, f->auth_user) == 0) ||
		    (f->mail_from[0] != '\0' &&
		    strcasecmp(from[j].addr, f->mail_from) == 0) ||
		    (f->o.from_owned != NULL &&
		    f->o.from_owned(f->o.from_ctx, from[j].addr)))
			own = j;
	domain = own >= 0 ? from[own].addr + from[own].at + 1 : "";
	if (rewrite_from) {
		/* the author is now the login itself */
		const char *at = strrchr(f->auth_user, '@');

		own = 0;
		domain = at != NULL ? at + 1 : "";
	}
	if (f->auth_user == NULL) {
		log_info("%s: dkim: not signed: the client did not "
		    "authenticate", f->qid);
	} else if (own < 0) {
		char esc_a[HDR_ADDR_MAX * 4 + 1];

		log_info("%s: dkim: not signed: From: <%s> is not the sending "
		    "account or its envelope sender", f->qid,
		    log_escape(esc_a, sizeof(esc_a), from[0].addr,
		    strlen(from[0].addr)));
	} else if ((f->nsig = (int)dkim_keyset_find(f->o.keys, domain,
	    f->sig, MF_MAX_SIGS)) == 0) {
		char esc_d[300];

		log_info("%s: dkim: no key for %s, sent unsigned", f->qid,
		    log_escape(esc_d, sizeof(esc_d), domain, strlen(domain)));
	}
out:
	hdr_free(&hs);
	return rc;
}

int
msgfilter_nsig(const struct msgfilter *f)
{
	return f->nsig;
}

int
msgfilter_dkim(const struct msgfilter *f, const char **domain,
    unsigned char bh[32])
{
	if (f->nsig <= 0)
		return 0;
	*domain = f->sig[0]->domain;
	memcpy(bh, f->bh, 32);
	return 1;
}

int
msgfilter_header(struct msgfilter *f, char **out, size_t *outlen)
{
	char *buf;
	size_t total, off = 0;

	total = f->tracelen + f->flen + (f->separator ? 2 : 0);
	if ((buf = malloc(total ? total : 1)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (f->tracelen > 0) {
		memcpy(buf + off, f->trace, f->tracelen);
		off += f->tracelen;
	}
	if (f->flen > 0) {
		memcpy(buf + off, f->fields, f->flen);
		off += f->flen;
	}
	if (f->separator) {
		memcpy(buf + off, "\r\n", 2);
		off += 2;
	}
	*out = buf;
	*outlen = off;
	return 0;
}
