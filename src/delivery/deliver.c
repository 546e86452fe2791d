/*
 * delivery/deliver — one outbound connection of a destination: resolve
 * (MX, then A/AAAA), try the addresses in order, run the destination's
 * queued jobs over the connection (reuse), QUIT.
 *
 * Decisions (RFC 5321 and the issue):
 *   - a refused or timed-out connection, a 4xx or 5xx to the greeting,
 *     EHLO or STARTTLS: try the next address (next MX);
 *   - opportunistic TLS whose handshake fails: the same address again
 *     without TLS (logged); tls = required (global or per domain): defer;
 *     tls = verify: an untrusted certificate defers too;
 *   - 421 anywhere, or a 4.7.x: the destination slows down (one
 *     connection, a pause of retry_interval) for every message;
 *   - a RCPT answered 452 (too many recipients) while others were
 *     accepted: the rest go in a new transaction at once (4.5.3.1.10);
 *   - 8-bit message, next hop without 8BITMIME: bounced (5.6.3), never
 *     converted (the message may be DKIM-signed; RFC 6152).
 *
 * Owns: the smtpc session, the spool file descriptor of the job being
 * sent (closed by the fdreap thread, so that freeing a removed message's
 * inode never blocks this loop: fdreap.h), the DNS lookup in flight.
 * Every connection is on conns (a list) so shutdown can close them all.
 * Fails: every failure ends as a per-recipient result (deferred or
 * failed) through dlv_rcpt_result(); nothing is lost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "delivery/dlv.h"
#include "delivery/fdreap.h"
#include "smtpc/smtpc.h"
#include "util/log.h"

struct conn_addr {
	char		 host[256];
	struct dns_addr	 a;
};

struct dlv_conn {
	LIST_ENTRY(dlv_conn) link;
	struct dlv_sched *s;
	struct dlv_dest	*d;
	struct dlv_job	*job;
	struct dns_lookup *lk;
	struct conn_addr *addrs;
	int		 naddrs, ai;
	struct smtpc	*c;
	enum smtpc_tls_mode tls;
	int		 plain_retry;	/* opportunistic TLS failed: plaintext now */
	int		 usable;	/* connected, may take another job */
	int		 nsent;		/* messages over this connection */
	struct event	*idle_ev;	/* parked: QUIT when it fires */
	int		 idle;		/* parked, waiting for a job */
	char		 relay[320];
	char		 tlsinfo[64];
	/* the message being sent */
	struct smtpc_msg msg;
	struct smtpc_rcpt *rcpts;
	size_t		*ridx;		/* rcpts[k] is env rcpt ridx[k] */
	char		**rparams;
	char		 mparams[1200];
	int		 fd;
	/* the last failure, for the job when every address failed */
	struct smtpc_status last;
	int		 last_set;
};

static LIST_HEAD(, dlv_conn) conns = LIST_HEAD_INITIALIZER(conns);
/* Closes message files off the scheduler's loop (fdreap.h); started at
 * the first close, stopped with the connections. */
static struct fdreap *reap;
static int reap_tried;

static void
msg_fd_close(int fd)
{
	if (reap == NULL && !reap_tried) {
		reap_tried = 1;
		reap = fdreap_new();
	}
	fdreap_close(reap, fd);
}

static void	conn_try_next(struct dlv_conn *c);
static void	conn_next_job(struct dlv_conn *c);

static void
msg_parts_free(struct dlv_conn *c)
{
	size_t i;

	if (c->rparams != NULL)
		for (i = 0; i < c->msg.nrcpts; i++)
			free(c->rparams[i]);
	free(c->rparams);
	free(c->rcpts);
	free(c->ridx);
	c->rparams = NULL;
	c->rcpts = NULL;
	c->ridx = NULL;
	memset(&c->msg, 0, sizeof(c->msg));
	msg_fd_close(c->fd);
	c->fd = -1;
}

static void
conn_free(struct dlv_conn *c)
{
	LIST_REMOVE(c, link);
	if (c->idle_ev != NULL)
		event_free(c->idle_ev);
	if (c->lk != NULL)
		dns_cancel(c->lk);
	if (c->c != NULL)
		smtpc_free(c->c);
	msg_parts_free(c);
	free(c->addrs);
	free(c);
}

/* The connection is over: let the destination start others. */
static void
conn_end(struct dlv_conn *c)
{
	struct dlv_sched *s = c->s;
	struct dlv_dest *d = c->d;

	d->nconns--;
	conn_free(c);
	dlv_dest_kick(s, d);
}

/* Gives every recipient of j the same outcome. */
static void
job_fail_all(struct dlv_sched *s, struct dlv_job *j,
    enum qstate_rcpt_status st, int code, const char *enh, const char *text,
    const char *relay)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		dlv_rcpt_result(s, j->m, j->idx[i], st, code, enh, text, relay,
		    NULL, 0);
	if (st == QS_DEFERRED) {
		j->d->deferrals += j->n;
		snprintf(j->d->last_error, sizeof(j->d->last_error), "%s",
		    text);
	}
	dlv_job_done(s, j);
}

static struct dlv_job *
dest_pop(struct dlv_dest *d)
{
	struct dlv_job *j = TAILQ_FIRST(&d->queue);

	if (j != NULL) {
		TAILQ_REMOVE(&d->queue, j, q);
		j->queued = 0;
		d->nqueued--;
	}
	return j;
}

/* ---- DNS ---- */

static void
conn_on_route(void *arg, const struct dns_route *rt)
{
	struct dlv_conn *c = arg;
	struct dlv_sched *s = c->s;
	struct dlv_job *j;
	size_t h, k;
	int max = s->cfg->max_addresses;

	c->lk = NULL;
	if (rt->status != DNS_OK) {
		enum qstate_rcpt_status st = rt->status == DNS_TEMPFAIL ?
		    QS_DEFERRED : QS_FAILED;
		const char *enh = rt->status == DNS_TEMPFAIL ? "4.4.3" :
		    rt->status == DNS_NXDOMAIN ? "5.1.2" :
		    rt->status == DNS_NULLMX ? "5.1.10" :
		    rt->status == DNS_LOOP ? "5.4.6" : "5.4.4";

		if (s->smarthost && st == QS_FAILED) {
			/* our own relay not resolving is our problem */
			st = QS_DEFERRED;
			enh = "4.4.3";
		}
		/* Every job queued for this destination shares the answer. */
		job_fail_all(s, c->job, st, 0, enh, rt->why, NULL);
		c->job = NULL;
		while ((j = dest_pop(c->d)) != NULL)
			job_fail_all(s, j, st, 0, enh, rt->why, NULL);
		conn_end(c);
		return;
	}
	if ((c->addrs = calloc((size_t)max, sizeof(*c->addrs))) == NULL) {
		job_fail_all(s, c->job, QS_DEFERRED, 0, "4.3.0",
		    "out of memory", NULL);
		c->job = NULL;
		conn_end(c);
		return;
	}
	for (h = 0; h < rt->nhosts && c->naddrs < max; h++)
		for (k = 0; k < rt->hosts[h].naddrs && c->naddrs < max; k++) {
			snprintf(c->addrs[c->naddrs].host,
			    sizeof(c->addrs[c->naddrs].host), "%s",
			    rt->hosts[h].name);
			c->addrs[c->naddrs].a = rt->hosts[h].addrs[k];
			c->naddrs++;
		}
	c->ai = 0;
	conn_try_next(c);
}

/* ---- connecting ---- */

static void conn_cb(struct smtpc *sc, enum smtpc_op op,
    const struct smtpc_status *st, void *arg);

static void
conn_remember(struct dlv_conn *c, const struct smtpc_status *st)
{
	c->last = *st;
	c->last_set = 1;
}

static void
conn_try_next(struct dlv_conn *c)
{
	struct dlv_sched *s = c->s;
	const struct config *cfg = s->cfg;
	struct smtpc_params p;
	struct sockaddr_storage ss, src;
	socklen_t sl, srcl = 0;
	struct conn_addr *ca;
	char ip[INET6_ADDRSTRLEN];
	int port = s->smarthost ? s->sh_port : cfg->delivery_port;

	if (c->c != NULL) {
		smtpc_free(c->c);
		c->c = NULL;
	}
	if (c->ai >= c->naddrs) {
		char text[SMTPC_TEXT_MAX + 64];
		enum qstate_rcpt_status st = QS_DEFERRED;
		const char *enh = "4.4.1";
		int code = 0;

		if (c->last_set) {
			code = c->last.code;
			if (c->last.err == SMTPC_E_REPLY &&
			    c->last.result == SMTPC_PERMFAIL && !s->smarthost)
				st = QS_FAILED;	/* the last MX said 5xx */
			if (c->last.enhanced[0])
				enh = c->last.enhanced;
			else if (st == QS_FAILED)
				enh = "5.0.0";
			else if (c->last.err == SMTPC_E_TLS ||
			    c->last.err == SMTPC_E_VERIFY ||
			    c->last.err == SMTPC_E_NOSTARTTLS)
				enh = "4.7.5";
			snprintf(text, sizeof(text), "%s%s%s",
			    c->last.err == SMTPC_E_REPLY ? "" :
			    smtpc_step_name(c->last.step),
			    c->last.err == SMTPC_E_REPLY ? "" : ": ",
			    c->last.text);
		} else
			snprintf(text, sizeof(text), "no address to try");
		job_fail_all(s, c->job, st, code, enh, text, c->relay);
		c->job = NULL;
		conn_end(c);
		return;
	}
	ca = &c->addrs[c->ai];
	memset(&ss, 0, sizeof(ss));
	memset(&src, 0, sizeof(src));
	if (ca->a.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr = ca->a.u.v4;
		sl = sizeof(*sin);
		if (cfg->source_address != NULL) {
			struct sockaddr_in *b = (struct sockaddr_in *)&src;

			b->sin_family = AF_INET;
			inet_pton(AF_INET, cfg->source_address, &b->sin_addr);
			srcl = sizeof(*b);
		}
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = ca->a.u.v6;
		sl = sizeof(*sin6);
		if (cfg->source_address6 != NULL) {
			struct sockaddr_in6 *b = (struct sockaddr_in6 *)&src;

			b->sin6_family = AF_INET6;
			inet_pton(AF_INET6, cfg->source_address6, &b->sin6_addr);
			srcl = sizeof(*b);
		}
	}
	snprintf(c->relay, sizeof(c->relay), "%s[%s]:%d", ca->host,
	    dns_addr_str(&ca->a, ip, sizeof(ip)), port);

	memset(&p, 0, sizeof(p));
	p.helo = cfg->helo_name;
	p.ssl_ctx = s->ssl_ctx;
	p.tls_name = ca->host;
	if (s->smarthost) {
		p.tls = (enum smtpc_tls_mode)s->sh_tls;
		/* credentials only over a verified connection */
		p.verify = s->sh_pass != NULL ? SMTPC_VERIFY_REQUIRED :
		    SMTPC_VERIFY_OPPORTUNISTIC;
	} else if (c->plain_retry) {
		p.tls = SMTPC_TLS_NONE;
	} else if (strcmp(cfg->delivery_tls, "verify") == 0) {
		p.tls = SMTPC_TLS_STARTTLS;
		p.verify = SMTPC_VERIFY_REQUIRED;
	} else if (strcmp(cfg->delivery_tls, "required") == 0 ||
	    c->d->tls_required) {
		p.tls = SMTPC_TLS_STARTTLS;
		p.verify = SMTPC_VERIFY_OPPORTUNISTIC;
	} else {
		p.tls = SMTPC_TLS_OPPORTUNISTIC;
		p.verify = SMTPC_VERIFY_OPPORTUNISTIC;
	}
	c->tls = p.tls;
	if (srcl > 0) {
		p.source = (struct sockaddr *)&src;
		p.source_len = srcl;
	}
	p.timeout_connect = cfg->connect_timeout;
	p.timeout_greeting = cfg->command_timeout;
	p.timeout_tls = cfg->command_timeout;
	p.timeout_cmd = cfg->command_timeout;
	p.timeout_data = cfg->command_timeout;
	p.timeout_block = cfg->command_timeout;
	p.timeout_dot = cfg->command_timeout;
	p.log_id = c->job->m->qid;
	if ((c->c = smtpc_new(s->base, &p, conn_cb, c)) == NULL ||
	    smtpc_connect(c->c, (struct sockaddr *)&ss, sl) < 0) {
		struct smtpc_status st;

		memset(&st, 0, sizeof(st));
		st.result = SMTPC_TEMPFAIL;
		st.err = SMTPC_E_LOCAL;
		snprintf(st.text, sizeof(st.text), "cannot start a connection");
		conn_remember(c, &st);
		c->ai++;
		conn_try_next(c);	/* bounded: ai only grows */
	}
}

/* ---- sending ---- */

static void
add_param(char *buf, size_t len, const char *fmt, const char *v)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, fmt, n ? " " : "", v);
}

/*
 * Many clients declare BODY=8BITMIME for every message; before refusing a
 * hop without 8BITMIME, look whether the message really has a byte
 * >= 0x80.  Only in that rare case, and bounded by the message size.
 * An unreadable file counts as 8-bit (the safe answer).
 */
static int
msg_has_8bit(struct dlv_sched *s, const struct dlv_msg *m)
{
	char path[PATH_MAX], buf[65536];
	off_t off = m->body;
	ssize_t n, i;
	int fd, found = 0;

	if (spool_msg_path(s->spool_dir, m->qid, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 1;
	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			found = 1;
			break;
		}
		if (n == 0)
			break;
		for (i = 0; i < n && !found; i++)
			found = (unsigned char)buf[i] >= 0x80;
		if (found)
			break;
		off += n;
	}
	close(fd);
	return found;
}

/* Starts the current job's transaction over the connection.  Only the
 * recipients of the job still QS_PENDING/DEFERRED in ridx are sent. */
static void
conn_send(struct dlv_conn *c, const size_t *idx, size_t n)
{
	struct dlv_sched *s = c->s;
	struct dlv_job *j = c->job;
	struct dlv_msg *m = j->m;
	const struct smtpc_caps *caps = smtpc_caps(c->c);
	int dsn = (caps->flags & SMTPC_CAP_DSN) != 0;
	char path[PATH_MAX];
	size_t k;
	int eightbit;

	msg_parts_free(c);
	eightbit = m->env.body != ENV_BODY_7BIT;
	if (eightbit && !(caps->flags & SMTPC_CAP_8BITMIME) &&
	    !msg_has_8bit(s, m))
		eightbit = 0;	/* declared 8BITMIME, but all 7-bit: fine */
	if (eightbit && !(caps->flags & SMTPC_CAP_8BITMIME)) {
		/* RFC 6152: never downgrade (the message may be signed). */
		for (k = 0; k < n; k++)
			dlv_rcpt_result(s, m, idx[k], QS_FAILED, 0, "5.6.3",
			    "the next hop does not support 8BITMIME and the "
			    "message has 8-bit content; it is not converted",
			    c->relay, c->tlsinfo, 0);
		c->job = NULL;
		dlv_job_done(s, j);
		conn_next_job(c);
		return;
	}
	if (m->env.smtputf8 && !(caps->flags & SMTPC_CAP_SMTPUTF8)) {
		/* RFC 6531 3.4: no downgrade; the sender hears why. */
		for (k = 0; k < n; k++)
			dlv_rcpt_result(s, m, idx[k], QS_FAILED, 0, "5.6.7",
			    "the message needs SMTPUTF8 and the next hop does "
			    "not support it", c->relay, c->tlsinfo, 0);
		c->job = NULL;
		dlv_job_done(s, j);
		conn_next_job(c);
		return;
	}
	if ((c->rcpts = calloc(n, sizeof(*c->rcpts))) == NULL ||
	    (c->ridx = calloc(n, sizeof(*c->ridx))) == NULL ||
	    (c->rparams = calloc(n, sizeof(*c->rparams))) == NULL)
		goto oom;
	for (k = 0; k < n; k++) {
		const struct envelope_rcpt *er = &m->env.rcpts[idx[k]];
		char pb[1200] = "";

		c->ridx[k] = idx[k];
		c->rcpts[k].addr = er->addr;
		if (dsn) {
			/* RFC 3461 5.2: pass NOTIFY and ORCPT on */
			if (er->notify != 0) {
				char nb[64] = "";

				if (er->notify & ENV_NOTIFY_NEVER)
					snprintf(nb, sizeof(nb), "NEVER");
				else
					snprintf(nb, sizeof(nb), "%s%s%s%s%s",
					    er->notify & ENV_NOTIFY_SUCCESS ?
					    "SUCCESS" : "",
					    (er->notify & ENV_NOTIFY_SUCCESS) &&
					    (er->notify & (ENV_NOTIFY_FAILURE |
					    ENV_NOTIFY_DELAY)) ? "," : "",
					    er->notify & ENV_NOTIFY_FAILURE ?
					    "FAILURE" : "",
					    (er->notify & ENV_NOTIFY_FAILURE) &&
					    (er->notify & ENV_NOTIFY_DELAY) ?
					    "," : "",
					    er->notify & ENV_NOTIFY_DELAY ?
					    "DELAY" : "");
				add_param(pb, sizeof(pb), "%sNOTIFY=%s", nb);
			}
			if (er->orcpt != NULL)
				add_param(pb, sizeof(pb), "%sORCPT=%s", er->orcpt);
			if (pb[0] && (c->rparams[k] = strdup(pb)) == NULL)
				goto oom;
			c->rcpts[k].params = c->rparams[k];
		}
	}
	c->mparams[0] = '\0';
	if (dsn) {
		if (m->env.ret != ENV_RET_UNSET)
			add_param(c->mparams, sizeof(c->mparams), "%sRET=%s",
			    m->env.ret == ENV_RET_FULL ? "FULL" : "HDRS");
		if (m->env.envid != NULL)
			add_param(c->mparams, sizeof(c->mparams), "%sENVID=%s",
			    m->env.envid);
	}
	if (spool_msg_path(s->spool_dir, m->qid, path, sizeof(path)) < 0 ||
	    (c->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto oom;
	c->msg.from = m->env.mail_from;
	c->msg.mail_params = c->mparams[0] ? c->mparams : NULL;
	c->msg.body_8bit = eightbit;
	c->msg.smtputf8 = m->env.smtputf8;
	c->msg.rcpts = c->rcpts;
	c->msg.nrcpts = n;
	c->msg.body.fd = c->fd;
	c->msg.body.offset = m->body;
	/* env.size is the exact length of the message bytes (the file size
	 * at load; a committed file does not change while it is queued):
	 * smtpc stops there instead of reading again to find the end. */
	c->msg.body.length = (off_t)m->env.size;
	/* the DKIM-Signature fields made for this attempt go on top */
	c->msg.body.prefix = m->dkim_sig;
	c->msg.body.prefixlen = m->dkim_siglen;
	c->msg.body.size = m->env.size + m->dkim_siglen;
	if (smtpc_send(c->c, &c->msg) < 0)
		goto oom;
	c->nsent++;
	return;
oom:
	for (k = 0; k < n; k++)
		dlv_rcpt_result(s, m, idx[k], QS_DEFERRED, 0, "4.3.0",
		    "local error preparing the message", c->relay, NULL, 0);
	c->job = NULL;
	dlv_job_done(s, j);
	c->usable = 0;
	conn_next_job(c);
}

/* The parked connection was not needed within DLV_IDLE_SECS: QUIT. */
static void
conn_idle_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dlv_conn *c = arg;

	(void)fd;
	(void)what;
	c->idle = 0;
	if (smtpc_idle_ok(c->c) && smtpc_quit(c->c) == 0)
		return;		/* conn_end at the QUIT callback */
	conn_end(c);
}

/*
 * Parks a connection whose destination has no job left, for the next
 * message that comes within DLV_IDLE_SECS (as Postfix's connection
 * cache does): at a steady trickle of mail, every message would
 * otherwise pay a TCP connection, a greeting, EHLO, maybe a TLS
 * handshake, and QUIT.  Returns 0 when parked.
 */
static int
conn_park(struct dlv_conn *c)
{
	struct timeval tv = { DLV_IDLE_SECS, 0 };

	if (c->idle_ev == NULL && (c->idle_ev = evtimer_new(c->s->base,
	    conn_idle_fire, c)) == NULL)
		return -1;
	if (evtimer_add(c->idle_ev, &tv) < 0)
		return -1;
	c->idle = 1;
	return 0;
}

int
dlv_dest_resume_idle(struct dlv_dest *d)
{
	struct dlv_conn *c, *next;
	int n = 0;

	for (c = LIST_FIRST(&conns); c != NULL && d->nqueued > 0; c = next) {
		next = LIST_NEXT(c, link);
		if (!c->idle || c->d != d)
			continue;
		c->idle = 0;
		evtimer_del(c->idle_ev);
		if (!smtpc_idle_ok(c->c)) {
			/* the server closed it meanwhile: a new one instead */
			c->usable = 0;
			d->nconns--;
			conn_free(c);
			continue;
		}
		conn_next_job(c);
		n++;
	}
	return n;
}

/* Takes the next queued job of the destination, parks the connection
 * for a while when there is none, or QUITs. */
static void
conn_next_job(struct dlv_conn *c)
{
	struct dlv_sched *s = c->s;
	time_t now = time(NULL);

	msg_parts_free(c);
	if (c->usable && s->cfg->connection_reuse &&
	    c->nsent < DLV_MSGS_PER_CONN && c->d->backoff_until <= now &&
	    (c->job = dest_pop(c->d)) != NULL) {
		snprintf(c->tlsinfo, sizeof(c->tlsinfo), "%s",
		    smtpc_ssl(c->c) ? SSL_get_version(smtpc_ssl(c->c)) : "none");
		conn_send(c, c->job->idx, c->job->n);
		return;
	}
	if (c->usable && s->cfg->connection_reuse && !s->stopping &&
	    c->nsent < DLV_MSGS_PER_CONN && c->d->backoff_until <= now &&
	    c->d->nqueued == 0 && smtpc_idle_ok(c->c) && conn_park(c) == 0)
		return;
	if (c->usable && c->c != NULL && smtpc_quit(c->c) == 0)
		return;		/* conn_end at the QUIT callback */
	conn_end(c);
}

static int
is_too_many(const struct smtpc_rcpt *r)
{
	/* 452 (or an old server's 552) for too many recipients */
	return r->result != SMTPC_OK && (r->code == 452 ||
	    (r->code == 552 && strcmp(r->enhanced, "5.5.3") == 0));
}

static void
conn_sent(struct dlv_conn *c, const struct smtpc_status *st)
{
	struct dlv_sched *s = c->s;
	struct dlv_job *j = c->job;
	struct dlv_msg *m = j->m;
	const struct smtpc_caps *caps = smtpc_caps(c->c);
	int dsn = (caps->flags & SMTPC_CAP_DSN) != 0;
	size_t k, n = c->msg.nrcpts, nretry = 0, nok = 0;
	size_t *retry = NULL;
	int slow = 0;

	/* The message failed as a whole (DATA refused, connection lost
	 * mid-DATA, 5xx to the dot): no recipient counts as delivered,
	 * whatever its RCPT reply was. */
	if (st->result != SMTPC_OK)
		for (k = 0; k < n; k++) {
			struct smtpc_rcpt *r = &c->rcpts[k];

			if (r->result != SMTPC_OK)
				continue;
			r->result = st->result;
			r->code = st->code;
			snprintf(r->enhanced, sizeof(r->enhanced), "%s",
			    st->enhanced);
			snprintf(r->text, sizeof(r->text), "%s%s%.*s",
			    st->err == SMTPC_E_REPLY ? "" :
			    smtpc_step_name(st->step),
			    st->err == SMTPC_E_REPLY ? "" : ": ",
			    (int)sizeof(r->text) - 40, st->text);
		}
	for (k = 0; k < n; k++)
		if (c->rcpts[k].result == SMTPC_OK)
			nok++;
	if (nok > 0 && (retry = calloc(n, sizeof(*retry))) == NULL)
		nok = 0;
	for (k = 0; k < n; k++) {
		const struct smtpc_rcpt *r = &c->rcpts[k];
		enum qstate_rcpt_status rs = r->result == SMTPC_OK ? QS_SENT :
		    r->result == SMTPC_PERMFAIL ? QS_FAILED : QS_DEFERRED;

		if (nok > 0 && is_too_many(r)) {
			retry[nretry++] = c->ridx[k];
			continue;
		}
		if (r->code == 421 || strncmp(r->enhanced, "4.7.", 4) == 0)
			slow = 1;
		if (rs == QS_DEFERRED) {
			c->d->deferrals++;
			snprintf(c->d->last_error, sizeof(c->d->last_error),
			    "%d %.200s", r->code, r->text);
		} else if (rs == QS_SENT)
			c->d->sent++;
		dlv_rcpt_result(s, m, c->ridx[k], rs, r->code, r->enhanced,
		    r->text[0] ? r->text : st->text, c->relay, c->tlsinfo,
		    rs == QS_SENT && dsn);
	}
	if (st->err != SMTPC_E_NONE && st->err != SMTPC_E_REPLY)
		c->usable = 0;
	if (st->code == 421)
		c->usable = 0;
	if (st->code == 421 || strncmp(st->enhanced, "4.7.", 4) == 0)
		slow = 1;
	if (slow)
		dlv_dest_backoff(s, c->d, st->text[0] ? st->text : "421");
	else if (nok > 0)
		dlv_dest_success(c->d);
	if (nretry > 0 && c->usable) {
		/* RFC 5321 4.5.3.1.10: the rest in a new transaction. */
		log_info("%s: %zu recipients refused as too many, sending them "
		    "in a new transaction", m->qid, nretry);
		conn_send(c, retry, nretry);
		free(retry);
		return;
	}
	for (k = 0; k < nretry; k++)
		dlv_rcpt_result(s, m, retry[k], QS_DEFERRED, 452, "4.5.3",
		    "too many recipients", c->relay, c->tlsinfo, 0);
	free(retry);
	c->job = NULL;
	dlv_job_done(s, j);
	conn_next_job(c);
}

static void
conn_cb(struct smtpc *sc, enum smtpc_op op, const struct smtpc_status *st,
    void *arg)
{
	struct dlv_conn *c = arg;
	struct dlv_sched *s = c->s;
	char buf[SMTPC_TEXT_MAX + 64];
	const char *why = NULL;
	SSL *ssl;

	(void)sc;
	switch (op) {
	case SMTPC_OP_CONNECT:
		if (st->result != SMTPC_OK) {
			conn_remember(c, st);
			log_info("%s: connect to %s: %s (%s)", c->job->m->qid,
			    c->relay, smtpc_step_name(st->step),
			    smtpc_status_format(st, buf, sizeof(buf)));
			if (st->err == SMTPC_E_TLS &&
			    c->tls == SMTPC_TLS_OPPORTUNISTIC && !c->plain_retry) {
				/* Opportunistic: the same host without TLS. */
				log_info("%s: TLS handshake with %s failed; "
				    "trying again without TLS", c->job->m->qid,
				    c->relay);
				c->plain_retry = 1;
				conn_try_next(c);
				return;
			}
			c->plain_retry = 0;
			c->ai++;
			conn_try_next(c);
			return;
		}
		if (st->code == 421)
			dlv_dest_backoff(s, c->d, st->text);
		ssl = smtpc_ssl(c->c);
		snprintf(c->tlsinfo, sizeof(c->tlsinfo), "%s",
		    ssl ? SSL_get_version(ssl) : "none");
		if (ssl != NULL && smtpc_tls_verified(c->c, &why) == 0) {
			size_t l = strlen(c->tlsinfo);

			snprintf(c->tlsinfo + l, sizeof(c->tlsinfo) - l,
			    " (untrusted)");
			log_info("%s: %s: TLS certificate not verified: %s",
			    c->job->m->qid, c->relay, why ? why : "unknown");
		}
		c->usable = 1;
		if (s->smarthost && s->sh_pass != NULL) {
			if (smtpc_auth(c->c, SMTPC_AUTH_AUTO,
			    s->cfg->smarthost_user, s->sh_pass, 0) == 0)
				return;
			c->usable = 0;
			job_fail_all(s, c->job, QS_DEFERRED, 0, "4.7.0",
			    "cannot start AUTH with the smarthost", c->relay);
			c->job = NULL;
			conn_end(c);
			return;
		}
		conn_send(c, c->job->idx, c->job->n);
		return;
	case SMTPC_OP_AUTH:
		if (st->result != SMTPC_OK) {
			/* An operator problem: never bounce for it. */
			snprintf(buf, sizeof(buf), "smarthost refused our "
			    "login: %s", st->text);
			log_err("%s: %s: %s", c->job->m->qid, c->relay, buf);
			job_fail_all(s, c->job, QS_DEFERRED, st->code,
			    "4.7.0", buf, c->relay);
			c->job = NULL;
			c->usable = 0;
			conn_end(c);
			return;
		}
		conn_send(c, c->job->idx, c->job->n);
		return;
	case SMTPC_OP_SEND:
		conn_sent(c, st);
		return;
	case SMTPC_OP_RSET:
	case SMTPC_OP_QUIT:
		conn_end(c);
		return;
	}
}

int
dlv_conn_start(struct dlv_sched *s, struct dlv_dest *d)
{
	struct dlv_conn *c;
	enum dns_family fam = d->ipv4_only ? DNS_FAM_IPV4 : DNS_FAM_ANY;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->s = s;
	c->d = d;
	c->fd = -1;
	if ((c->job = dest_pop(d)) == NULL) {
		free(c);
		return -1;
	}
	LIST_INSERT_HEAD(&conns, c, link);
	d->nconns++;
	c->lk = dns_route(s->dns, s->smarthost ? s->sh_host : d->name,
	    s->smarthost ? DNS_F_HOST : 0, fam, conn_on_route, c);
	if (c->lk == NULL) {
		job_fail_all(s, c->job, QS_DEFERRED, 0, "4.3.0",
		    "out of memory resolving", NULL);
		c->job = NULL;
		d->nconns--;
		conn_free(c);
		return -1;
	}
	return 0;
}

void
dlv_conn_shutdown_all(void)
{
	struct dlv_conn *c;

	/* The jobs are not finished: their recipients stay as they were
	 * on disk and are tried at the next start. */
	/* conn_free() unlinks c; clang 14's analyzer does not follow
	 * LIST_REMOVE through le_prev and reports a use after free */
	while ((c = LIST_FIRST(&conns)) != NULL) {
		if (c->job != NULL) { // NOLINT(clang-analyzer-unix.Malloc)
			free(c->job->idx);
			free(c->job);
			c->job = NULL;
		}
		conn_free(c);
	}
	/* closes what is still waiting; any later close is inline
	 * (reap_tried stays set) */
	fdreap_free(reap);
	reap = NULL;
}
