/*
 * session_data.c — a transaction's message content: DATA and BDAT input,
 * the Received: header, the hop limit, and the durable commit.
 *
 * The content goes through the message filter (src/message/msgfilter.h)
 * as it arrives: the header section is buffered (bounded) and checked at
 * the end, the body streams into the spool and the DKIM body hash, so a
 * large message never sits whole in memory.  The final header block
 * (DKIM-Signature, Received, added Message-ID/Date, the fields minus Bcc)
 * is built and signed on a spool sync thread at commit, not here.  After the end
 * of data the message goes to the spool's commit thread; the session
 * waits (SMTP_ST_WAIT, input not read) and answers "250 2.0.0 OK QID" only
 * from the commit callback, i.e. once the message is on stable storage.
 * Any error before that aborts the spool file: nothing half-received is
 * ever queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "message/dkim.h"
#include "message/msgfilter.h"
#include "auth/quota.h"
#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"

void
session_tx_free(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx == NULL)
		return;
	if (tx->msg != NULL)
		spool_msg_abort(tx->msg);
	msgfilter_free(tx->mf);
	envelope_clear(&tx->env);
	free(tx);
	s->tx = NULL;
}

static int
data_emit(void *ctx, const char *buf, size_t len)
{
	struct smtp_tx *tx = ctx;

	return msgfilter_feed(tx->mf, buf, len);
}

/* The filter's body sink. */
static int
data_body(void *ctx, const char *buf, size_t len)
{
	struct smtp_tx *tx = ctx;

	return spool_msg_write(tx->msg, buf, len);
}

/* Spool hooks: the header block is built (and signed) on a sync thread. */
static int
data_header_fn(void *arg, char **buf, size_t *len)
{
	return msgfilter_header(arg, buf, len);
}

static void
data_header_free(void *arg)
{
	msgfilter_free(arg);
}

/*
 * The trace header, in Gmail's form (RFC 5321 4.4, RFC 3848 "with"
 * keywords).  The login is only shown when the operator asks for it:
 * otherwise every recipient would learn it.
 */
static int
session_received(struct smtp_session *s, char *buf, size_t len)
{
	const struct config *cfg = s->w->srv->cfg;
	struct smtp_tx *tx = s->tx;
	const char *with;
	char date[64], forr[300] = "", user[300] = "", tlsc[160] = "";
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (s->flags & SMTP_F_AUTH)
		with = (s->flags & SMTP_F_TLS) ? "ESMTPSA" : "ESMTPA";
	else
		with = (s->flags & SMTP_F_TLS) ? "ESMTPS" : "ESMTP";
	if (!(s->flags & SMTP_F_EHLO))
		with = "SMTP";
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* one recipient: say whom for, as Gmail does; several: say nothing */
	if (tx->env.nrcpts == 1)
		snprintf(forr, sizeof(forr), "\r\n\tfor <%s>", tx->env.rcpts[0].addr);
	if (cfg->received_show_user && (s->flags & SMTP_F_AUTH))
		snprintf(user, sizeof(user), "\r\n\t(Authenticated sender: %s)",
		    s->user);
	if (s->flags & SMTP_F_TLS)
		snprintf(tlsc, sizeof(tlsc), "\r\n\t(%s)", s->tlsinfo);
	if (s->flags & SMTP_F_LOCAL)	/* no address: the local uid, as Postfix */
		n = snprintf(buf, len,
		    "Received: from %s (uid %ld)\r\n\tby %s with %s id %s%s%s%s;"
		    "\r\n\t%s\r\n", s->helo, s->local_uid, cfg->hostname, with,
		    tx->env.qid, forr, user, tlsc, date);
	else
		n = snprintf(buf, len,
		    "Received: from %s ([%s])\r\n\tby %s with %s id %s%s%s%s;"
		    "\r\n\t%s\r\n", s->helo, s->ip, cfg->hostname, with,
		    tx->env.qid, forr, user, tlsc, date);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

/* Opens the spool file and writes the trace header.  On failure the reply
 * has been sent.  Returns 0 or -1. */
static int
session_from_owned(void *ctx, const char *addr)
{
	return session_sender_owned(ctx, addr);
}

int
session_data_start(struct smtp_session *s, int bdat)
{
	const struct config *cfg = s->w->srv->cfg;
	struct smtp_tx *tx = s->tx;
	struct msgfilter_opts mo;
	char rcvd[1024];
	int n;

	if ((tx->msg = spool_msg_begin(s->w->srv->spool, &tx->env)) == NULL) {
		log_err("%s: cannot create a spool file: %s", s->id,
		    strerror(errno));
		if (errno == ENOSPC || errno == EDQUOT)
			session_reply(s, 452, "4.3.1",
			    "Insufficient system storage, try again later");
		else
			session_reply(s, 451, "4.3.0",
			    "Could not store the message, try again later");
		return -1;
	}
	memset(&mo, 0, sizeof(mo));
	mo.qid = tx->env.qid;
	mo.hostname = cfg->hostname;
	mo.auth_user = (s->flags & SMTP_F_AUTH) ? s->user : NULL;
	mo.mail_from = tx->env.mail_from;
	mo.smtputf8 = tx->env.smtputf8;
	mo.keys = dkim_store_get(s->w->srv->dkim);
	if (s->flags & SMTP_F_AUTH) {
		/* issue 4's sender rule, for the From: header too */
		mo.from_owned = session_from_owned;
		mo.from_ctx = s;
		mo.from_rewrite = cfg->sender_rule != NULL &&
		    strcmp(cfg->sender_rule, "rewrite") == 0;
		mo.rewrite_header = cfg->rewrite_header;
	}
	mo.body = data_body;
	mo.body_ctx = tx;
	if ((tx->mf = msgfilter_new(&mo)) == NULL) {
		spool_msg_abort(tx->msg);
		tx->msg = NULL;
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return -1;
	}
	tx->bdat = bdat;
	dataread_init(&tx->dr, bdat, cfg->max_message_size, data_emit, tx);
	if ((n = session_received(s, rcvd, sizeof(rcvd))) > 0 &&
	    msgfilter_set_trace(tx->mf, rcvd, (size_t)n) < 0) {
		spool_msg_abort(tx->msg);
		tx->msg = NULL;
		msgfilter_free(tx->mf);
		tx->mf = NULL;
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return -1;
	}
	log_info("%s: client=%s, conn=%s%s%s", tx->env.qid, s->peer, s->id,
	    s->user[0] ? ", user=" : "", s->user);
	return 0;
}

static void
commit_done(void *arg, int result, const char *qid)
{
	struct smtp_pending *p = arg;
	struct smtp_session *s = p->s;

	/* queued: now (not at DATA/BDAT) it counts against the quota */
	if (result == 0 && p->quota != NULL)
		quota_count(p->quota, p->qname, (int)p->nrcpts, time(NULL));
	session_pending_done(p);
	if (s == NULL) {
		/* the client left while we synced: the message is queued (or
		 * not) but nobody was told; a duplicate is the safe side */
		if (result == 0)
			log_info("%s: queued, but the client disconnected before the reply",
			    qid);
		return;
	}
	session_enter(s, SMTP_ST_READY);
	/* a session waiting for its commit always holds its transaction */
	s->verb = s->tx->bdat ? "BDAT" : "DATA";
	if (result == 0) {
		log_info("%s: from=<%s>, size=%llu, nrcpt=%zu, status=queued",
		    qid, s->tx->env.mail_from,
		    (unsigned long long)s->tx->dr.size, s->tx->env.nrcpts);
		session_reply(s, 250, "2.0.0", "OK %s", qid);
	} else if (result == ENOSPC || result == EDQUOT) {
		log_err("%s: not queued: %s", qid, strerror(result));
		session_reply(s, 452, "4.3.1",
		    "Insufficient system storage, try again later");
	} else {
		log_err("%s: not queued: %s", qid, strerror(result));
		session_reply(s, 451, "4.3.0",
		    "Could not store the message, try again later");
	}
	session_tx_free(s);
	session_resume(s);
}

/*
 * The content is complete: refuse it with the first error, or commit it.
 * Either way the transaction ends.
 */
static void
session_data_end(struct smtp_session *s)
{
	const struct config *cfg = s->w->srv->cfg;
	struct smtp_tx *tx = s->tx;
	struct smtp_pending *p;
	struct spool_msg *m;
	char esc[16], text[400];
	int code;

	s->verb = tx->bdat ? "BDAT" : "DATA";
	session_enter(s, SMTP_ST_READY);
	switch (tx->dr.err) {
	case DR_OK:
		break;
	case DR_ERR_SIZE:
		session_reply(s, 552, "5.2.3",
		    "Message exceeds the size limit of %llu bytes",
		    (unsigned long long)cfg->max_message_size);
		goto refused;
	case DR_ERR_BARE:
		session_reply(s, 550, "5.6.0",
		    "Message contains a bare CR or LF; lines must end with CRLF");
		goto refused;
	case DR_ERR_LINE:
		session_reply(s, 550, "5.6.0",
		    "Line too long (RFC 5322 allows 998 octets)");
		goto refused;
	case DR_ERR_NUL:
		session_reply(s, 550, "5.6.0", "Message contains NUL octets");
		goto refused;
	}
	/* RFC 5321 6.3: a loop shows as an ever-growing trace. */
	if (tx->dr.received > cfg->max_received) {
		session_reply(s, 554, "5.4.6",
		    "Too many Received headers: mail loop detected");
		goto refused;
	}
	if (tx->dr.emit_failed) {
		/* the write error sticks in the spool msg; the commit reports
		 * its errno through the normal path */
	}
	/* Header hygiene: a broken header section is refused here. */
	if ((code = msgfilter_end(tx->mf, esc, text, sizeof(text))) != 0) {
		session_reply(s, code, esc, "%s", text);
		goto refused;
	}
	m = tx->msg;
	tx->msg = NULL;
	{
		const char *dom;

		/* signed at delivery: the envelope carries the domain and the
		 * body hash taken as the body went by */
		if (msgfilter_dkim(tx->mf, &dom, tx->env.dkim_bh) &&
		    ((tx->env.dkim_domain = strdup(dom)) == NULL ||
		    spool_msg_set_envelope(m, &tx->env) < 0)) {
			log_err("%s: cannot record the DKIM signing: %s",
			    tx->env.qid, strerror(errno));
			spool_msg_abort(m);
			session_reply(s, 451, "4.3.0",
			    "Could not store the message, try again later");
			session_tx_free(s);
			return;
		}
	}
	spool_msg_set_header_fn(m, data_header_fn, data_header_free, tx->mf);
	tx->mf = NULL;
	if ((p = session_pending_new(s)) == NULL) {
		spool_msg_abort(m);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		session_tx_free(s);
		return;
	}
	if (s->w->srv->quota != NULL && session_quota_name(s) != NULL) {
		p->quota = s->w->srv->quota;
		snprintf(p->qname, sizeof(p->qname), "%s", session_quota_name(s));
		p->nrcpts = tx->env.nrcpts;
	}
	/* reading stays on (session_process ignores input while waiting):
	 * a disconnect during the commit is noticed, and no epoll_ctl */
	spool_msg_commit(m, s->w->base, commit_done, p);
	return;
refused:
	log_info("%s: refused, from=<%s>, size=%llu, nrcpt=%zu", tx->env.qid,
	    tx->env.mail_from, (unsigned long long)tx->dr.size, tx->env.nrcpts);
	session_tx_free(s);
}

/*
 * Minimum data rate, as Postfix's smtpd_min_data_rate: the content may
 * take data_timeout plus one second per min_data_rate octets received so
 * far.  A fast or steady client never meets it, however big the message
 * (35 MB at 1 KB/s more than fits); a client that trickles a byte just
 * before each read timeout does.  The clock starts with the first content
 * octets of the transaction.  Returns 0, or -1 after "421 4.4.2" has been
 * sent and the session closed (the transaction is dropped with it).
 */
static int
session_data_rate(struct smtp_session *s, size_t nbytes)
{
	const struct config *cfg = s->w->srv->cfg;
	uint64_t rate = __atomic_load_n(&cfg->min_data_rate, __ATOMIC_RELAXED);
	uint64_t allowed_ms;
	struct smtp_tx *tx = s->tx;
	struct timespec ts;
	int64_t now;
	char buf[300];

	if (tx == NULL || clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (tx->rate_start_ms == 0)
		tx->rate_start_ms = now > 0 ? now : 1;
	tx->rate_bytes += nbytes;
	if (rate == 0)
		return 0;
	allowed_ms = (uint64_t)__atomic_load_n(&cfg->data_timeout,
	    __ATOMIC_RELAXED) * 1000 + tx->rate_bytes / rate * 1000 +
	    tx->rate_bytes % rate * 1000 / rate;
	if ((uint64_t)(now - tx->rate_start_ms) <= allowed_ms)
		return 0;
	log_info("%s: data rate too low: %llu octets in %lld ms (min_data_rate "
	    "%llu/s), client=%s", s->id, (unsigned long long)tx->rate_bytes,
	    (long long)(now - tx->rate_start_ms), (unsigned long long)rate,
	    s->peer);
	snprintf(buf, sizeof(buf),
	    "421 4.4.2 %s Data rate too low, closing connection", cfg->hostname);
	smtp_session_close(s, buf);
	return -1;
}

/* DATA content: feed what is buffered to the reader, up to the end. */
void
session_data_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	int n, i, done = 0;
	size_t total = 0;

	while (!done && evbuffer_get_length(in) > 0) {
		size_t used = 0;

		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n > 8)
			n = 8;
		for (i = 0; i < n && !done; i++)
			used += dataread_feed(&s->tx->dr, v[i].iov_base,
			    v[i].iov_len, &done);
		evbuffer_drain(in, used);
		total += used;
	}
	if (done)
		session_data_end(s);
	else
		(void)session_data_rate(s, total);
}

/* BDAT chunk: exactly bdat_left bytes belong to it. */
void
session_bdat_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	int n, i, done;
	size_t total = 0;

	while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		size_t used = 0;

		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n > 8)
			n = 8;
		for (i = 0; i < n && s->bdat_left > 0; i++) {
			size_t take = v[i].iov_len;

			if (take > s->bdat_left)
				take = (size_t)s->bdat_left;
			if (!s->bdat_discard)
				dataread_feed(&s->tx->dr, v[i].iov_base, take,
				    &done);
			s->bdat_left -= take;
			used += take;
		}
		evbuffer_drain(in, used);
		total += used;
	}
	if (s->bdat_left > 0) {
		if (!s->bdat_discard)
			(void)session_data_rate(s, total);
		return;
	}

	s->verb = "BDAT";
	session_enter(s, s->tx ? (s->tx->env.nrcpts ? SMTP_ST_RCPT :
	    SMTP_ST_MAIL) : (s->flags & SMTP_F_HELO ? SMTP_ST_READY :
	    SMTP_ST_INIT));
	if (s->bdat_discard) {
		if (s->bdat_reply > 0) {
			session_reply(s, s->bdat_reply, NULL, "%s",
			    s->bdat_text);
			session_error(s);
		}
		if (s->bdat_last && s->tx != NULL && s->tx->bdat_err) {
			session_tx_free(s);
			session_enter(s, SMTP_ST_READY);
		}
		return;
	}
	if (s->bdat_last) {
		dataread_finish(&s->tx->dr);
		session_data_end(s);
		return;
	}
	/* An error inside a chunk fails the transaction now (RFC 3030 4);
	 * later chunks are swallowed with the same reply until LAST. */
	if (s->tx->dr.err != DR_OK) {
		const char *t = s->tx->dr.err == DR_ERR_SIZE ?
		    "5.2.3 Message exceeds the size limit" :
		    s->tx->dr.err == DR_ERR_LINE ?
		    "5.6.0 Line too long (RFC 5322 allows 998 octets)" :
		    s->tx->dr.err == DR_ERR_NUL ?
		    "5.6.0 Message contains NUL octets" :
		    "5.6.0 Message contains a bare CR or LF; lines must end with CRLF";
		s->tx->bdat_err = s->tx->dr.err == DR_ERR_SIZE ? 552 : 550;
		snprintf(s->tx->bdat_errtext, sizeof(s->tx->bdat_errtext), "%s", t);
		if (s->tx->msg != NULL) {
			spool_msg_abort(s->tx->msg);
			s->tx->msg = NULL;
		}
		session_reply(s, s->tx->bdat_err, NULL, "%s", t);
		return;
	}
	session_reply(s, 250, "2.0.0", "%llu octets received",
	    (unsigned long long)s->bdat_size);
}
