/*
 * delivery/bounce — builds delivery status notifications: a
 * multipart/report (RFC 6522) with a human part, a message/delivery-status
 * part (RFC 3464; message/global-delivery-status for SMTPUTF8 mail, RFC
 * 6533) and the original headers (text/rfc822-headers) or, for RET=FULL,
 * the whole message (message/rfc822; message/global for SMTPUTF8).
 *
 * Everything that came from the network (addresses, reply texts, the
 * ENVID) is put in the report only after control bytes are replaced, so
 * a hostile reply text cannot inject header fields or MIME parts.
 *
 * Owns: nothing past the call.
 * Fails: -1 when put() fails or the original cannot be read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery/bounce.h"

#define DSN_HDR_MAX	(256 * 1024)	/* original headers returned */
#define DSN_LINE	1024

struct out {
	int	(*put)(void *, const void *, size_t);
	void	*arg;
	int	 err;
};

static void
out_raw(struct out *o, const char *s, size_t n)
{
	if (!o->err && o->put(o->arg, s, n) != 0)
		o->err = -1;
}

static void
out_printf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		o->err = -1;
	else
		out_raw(o, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

/* Copies untrusted s into dst without control bytes (they become '?');
 * keeps UTF-8 only when utf8 is set (else non-ASCII becomes '?'). */
static const char *
clean(char *dst, size_t len, const char *s, int utf8)
{
	size_t i = 0;

	for (; s != NULL && *s && i + 1 < len; s++) {
		unsigned char c = (unsigned char)*s;

		dst[i++] = (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) ?
		    '?' : (char)c;
	}
	dst[i] = '\0';
	return dst;
}

static void
date_str(char *buf, size_t len, time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
}

int
dlv_dsn_wanted(unsigned notify, enum dlv_dsn_kind kind)
{
	if (notify & ENV_NOTIFY_NEVER)
		return 0;
	switch (kind) {
	case DLV_DSN_FAILURE:
		return notify == 0 || (notify & ENV_NOTIFY_FAILURE);
	case DLV_DSN_DELAY:
		return notify == 0 || (notify & ENV_NOTIFY_DELAY);
	case DLV_DSN_SUCCESS:
		return (notify & ENV_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

/* Decodes xtext (RFC 3461 4): "+2B" is '+'.  Bad sequences are kept. */
static void
xtext_decode(char *dst, size_t len, const char *s)
{
	size_t i = 0;

	for (; s != NULL && *s && i + 1 < len; s++) {
		if (s[0] == '+' && s[1] && s[2]) {
			char hex[3] = { s[1], s[2], 0 }, *end;
			long v = strtol(hex, &end, 16);

			if (*end == '\0' && v > 0x20 && v < 0x7f) {
				dst[i++] = (char)v;
				s += 2;
				continue;
			}
		}
		dst[i++] = *s;
	}
	dst[i] = '\0';
}

/* Copies the original's header block (or all of it) from fd. */
static void
out_original(struct out *o, int fd, off_t body, int full, uint64_t full_max)
{
	char buf[16384];
	uint64_t total = 0, limit = full ? full_max : DSN_HDR_MAX;
	off_t off = body;
	int last4 = 0;		/* state of the CRLFCRLF matcher */
	ssize_t n, i;

	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			o->err = -1;
			return;
		}
		if (n == 0)
			break;
		if (!full) {
			/* Stop after the blank line that ends the header. */
			for (i = 0; i < n; i++) {
				static const char pat[] = "\r\n\r\n";

				last4 = buf[i] == pat[last4] ? last4 + 1 :
				    (buf[i] == '\r' ? 1 : 0);
				if (last4 == 4) {
					out_raw(o, buf, (size_t)i + 1);
					return;
				}
			}
		}
		if (total + (uint64_t)n > limit) {
			out_raw(o, buf, (size_t)(limit - total));
			out_raw(o, "\r\n", 2);
			return;
		}
		out_raw(o, buf, (size_t)n);
		total += (uint64_t)n;
		off += n;
	}
	out_raw(o, "\r\n", 2);
}

int
dlv_dsn_build(const struct dlv_dsn *d,
    int (*put)(void *arg, const void *data, size_t len), void *arg)
{
	const struct envelope *env = d->env;
	struct out o = { put, arg, 0 };
	char date[64], boundary[128], a[DSN_LINE], b[DSN_LINE];
	const char *subject, *intro;
	int utf8 = env->smtputf8, full;
	size_t i;
	time_t now = time(NULL);

	full = env->ret == ENV_RET_FULL && d->msgfd >= 0;
	switch (d->kind) {
	case DLV_DSN_FAILURE:
		subject = "Undelivered Mail Returned to Sender";
		intro = "I'm sorry to have to inform you that your message "
		    "could not\r\nbe delivered to one or more recipients. "
		    "The details are below.";
		break;
	case DLV_DSN_DELAY:
		subject = "Delayed Mail (still being retried)";
		intro = "This is a warning only: your message could not yet "
		    "be delivered\r\nto the recipients below.  Delivery will "
		    "be retried; you do not\r\nneed to send it again.";
		break;
	default:
		subject = "Successful Mail Delivery Report";
		intro = "Your message was successfully delivered to the "
		    "destination(s)\r\nlisted below.";
		break;
	}
	date_str(date, sizeof(date), now);
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", env->qid,
	    (long long)now, d->hostname);

	out_printf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    d->hostname);
	out_printf(&o, "To: <%s>\r\n", clean(a, sizeof(a), env->mail_from,
	    utf8));
	out_printf(&o, "Subject: %s\r\n", subject);
	out_printf(&o, "Date: %s\r\n", date);
	out_printf(&o, "Message-ID: <%s.%lld.dsn@%s>\r\n", env->qid,
	    (long long)now, d->hostname);
	out_printf(&o, "Auto-Submitted: auto-replied\r\n");
	out_printf(&o, "MIME-Version: 1.0\r\n");
	out_printf(&o, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	out_printf(&o, "Content-Transfer-Encoding: %s\r\n\r\n",
	    utf8 ? "8bit" : "7bit");
	out_printf(&o, "This is a MIME-encapsulated message.\r\n\r\n");

	/* 1: for people */
	out_printf(&o, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
	out_printf(&o, "This is the mail system at host %s.\r\n\r\n%s\r\n\r\n",
	    d->hostname, intro);
	for (i = 0; i < d->nrcpts; i++) {
		const struct dlv_dsn_rcpt *r = &d->rcpts[i];

		out_printf(&o, "<%s>: %s\r\n", clean(a, sizeof(a), r->addr, utf8),
		    r->diag ? clean(b, sizeof(b), r->diag, utf8) : r->action);
	}
	if (d->kind == DLV_DSN_DELAY && d->retry_until > 0) {
		date_str(date, sizeof(date), d->retry_until);
		out_printf(&o, "\r\nDelivery will be tried until %s.\r\n", date);
	}
	out_printf(&o, "\r\n");

	/* 2: for programs */
	out_printf(&o, "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/%sdelivery-status\r\n\r\n", boundary,
	    utf8 ? "global-" : "");
	out_printf(&o, "Reporting-MTA: dns; %s\r\n", d->hostname);
	out_printf(&o, "X-Outpost-Queue-ID: %s\r\n", env->qid);
	if (env->envid != NULL) {
		xtext_decode(b, sizeof(b), env->envid);
		out_printf(&o, "Original-Envelope-Id: %s\r\n",
		    clean(a, sizeof(a), b, 0));
	}
	date_str(date, sizeof(date), env->arrival);
	out_printf(&o, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < d->nrcpts; i++) {
		const struct dlv_dsn_rcpt *r = &d->rcpts[i];
		int nonascii = 0;
		const char *p;

		for (p = r->addr; *p; p++)
			nonascii |= (unsigned char)*p >= 0x80;
		out_printf(&o, "\r\nFinal-Recipient: %s; %s\r\n",
		    nonascii && utf8 ? "utf-8" : "rfc822",
		    clean(a, sizeof(a), r->addr, utf8));
		if (r->orcpt != NULL) {
			xtext_decode(b, sizeof(b), r->orcpt);
			out_printf(&o, "Original-Recipient: %s\r\n",
			    clean(a, sizeof(a), b, utf8));
		}
		out_printf(&o, "Action: %s\r\n", r->action);
		out_printf(&o, "Status: %s\r\n", r->status);
		if (r->remote_mta != NULL && *r->remote_mta)
			out_printf(&o, "Remote-MTA: dns; %s\r\n",
			    clean(a, sizeof(a), r->remote_mta, 0));
		if (r->diag != NULL && *r->diag)
			out_printf(&o, "Diagnostic-Code: smtp; %s\r\n",
			    clean(a, sizeof(a), r->diag, utf8));
		if (r->last_attempt > 0) {
			date_str(date, sizeof(date), r->last_attempt);
			out_printf(&o, "Last-Attempt-Date: %s\r\n", date);
		}
		if (d->kind == DLV_DSN_DELAY && d->retry_until > 0) {
			date_str(date, sizeof(date), d->retry_until);
			out_printf(&o, "Will-Retry-Until: %s\r\n", date);
		}
	}
	out_printf(&o, "\r\n");

	/* 3: the original */
	if (d->msgfd >= 0) {
		if (full && env->size <= d->full_max)
			out_printf(&o, "--%s\r\nContent-Description: Undelivered "
			    "Message\r\nContent-Type: message/%s\r\n\r\n",
			    boundary, utf8 ? "global" : "rfc822");
		else {
			full = 0;
			out_printf(&o, "--%s\r\nContent-Description: Undelivered "
			    "Message Headers\r\nContent-Type: %s\r\n\r\n",
			    boundary, utf8 ? "message/global-headers" :
			    "text/rfc822-headers");
		}
		out_original(&o, d->msgfd, d->body, full, d->full_max);
	}
	out_printf(&o, "--%s--\r\n", boundary);
	return o.err ? -1 : 0;
}
