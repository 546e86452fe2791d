/*
 * delivery/sched — the scheduler: the table of queued messages, one
 * queue per destination (recipient domain, or the smarthost), retry
 * timers with jittered exponential back-off, the queue lifetime, delay
 * warnings and bounces.  See sched.h for the threading model.
 *
 * A message's life: it arrives (spool notify, or the queue scan at
 * start-up) -> each pending recipient is put into a job for its
 * destination -> deliver.c runs the jobs over at most
 * max_per_destination connections per destination -> every recipient
 * gets sent / deferred / failed, and the state file is rewritten after
 * each job -> when the message's last job is over: failures are bounced,
 * a delay warning is sent once after delay_warning, and the message is
 * either removed (no recipient left) or timed for its next try.
 *
 * Owns: every struct dlv_msg / dlv_job / dlv_dest, the resolver, the
 * client TLS context, the scheduler thread.
 * Fails: a message whose file cannot be read is logged and left for the
 * operator; a state file that cannot be written is logged (delivery goes
 * on: the window is a possible duplicate after a restart).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "delivery/bounce.h"
#include "delivery/dlv.h"
#include "delivery/sched.h"
#include "smtpc/smtpc.h"
#include "tls/tls.h"
#include "util/evbase.h"
#include "util/log.h"
#include "util/loopcall.h"

static void	msg_activate(struct dlv_sched *s, struct dlv_msg *m);

/* Removes a message's file (recycled by the spool when it can) and then
 * its state file, if it may have one: queue/QID going is the commit
 * point of the removal. */
static int
msg_file_remove(struct dlv_sched *s, struct dlv_msg *m)
{
	if (spool_retire(s->sp, m->qid, (uint64_t)m->body + m->env.size) < 0)
		return -1;
	if (m->has_state)
		qstate_remove(s->spool_dir, m->qid);
	return 0;
}

/* ---- message table ---- */

static size_t
qid_hash(const char *qid)
{
	uint32_t h = 2166136261u;

	for (; *qid; qid++)
		h = (h ^ (unsigned char)*qid) * 16777619u;
	return h % DLV_HASH_SIZE;
}

struct dlv_msg *
dlv_msg_find(struct dlv_sched *s, const char *qid)
{
	struct dlv_msg *m;

	for (m = s->htab[qid_hash(qid)]; m != NULL; m = m->hnext)
		if (strcmp(m->qid, qid) == 0)
			return m;
	return NULL;
}

static void
msg_unlink(struct dlv_sched *s, struct dlv_msg *m)
{
	struct dlv_msg **pp;

	for (pp = &s->htab[qid_hash(m->qid)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			s->nmsgs--;
			break;
		}
}

static void
msg_free(struct dlv_msg *m)
{
	if (m->signreq != NULL)
		m->signreq->arg = NULL;	/* its callback frees it */
	free(m->dkim_sig);
	if (m->timer != NULL)
		event_free(m->timer);
	envelope_clear(&m->env);
	qstate_clear(&m->st);
	free(m->hop_dsn);
	free(m->logq);
	free(m);
}

/* The timer callback needs the scheduler: a tiny closure. */
struct msg_timer_ctx {
	struct dlv_sched *s;
	char qid[SPOOL_QID_SIZE];
};

static void
msg_timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct msg_timer_ctx *c = arg;
	struct dlv_msg *m;

	(void)fd;
	(void)what;
	if ((m = dlv_msg_find(c->s, c->qid)) != NULL)
		msg_activate(c->s, m);
}

static int
msg_schedule(struct dlv_sched *s, struct dlv_msg *m, time_t when)
{
	struct timeval tv;
	time_t now = time(NULL);

	if (m->timer == NULL) {
		struct msg_timer_ctx *c;

		/* c is freed with the timer, in msg_destroy() */
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		c->s = s;
		memcpy(c->qid, m->qid, SPOOL_QID_SIZE);
		if ((m->timer = evtimer_new(s->base, msg_timer_fire, c)) == NULL) {
			free(c);
			return -1;
		}
	}
	tv.tv_sec = when > now ? when - now : 0;
	tv.tv_usec = 0;
	return evtimer_add(m->timer, &tv);
}

/*
 * Result lines ("status=sent") are logged only once the recipient's state
 * is recorded (state file written, or the message removed): a log line
 * must never claim a delivery that a kill -9 right after it would repeat.
 */
static void
msg_log_queue(struct dlv_msg *m, const char *line)
{
	size_t len = strlen(line);
	char *nq;

	if ((nq = realloc(m->logq, m->logqlen + len + 1)) == NULL) {
		log_info("%s", line);	/* better early than never */
		return;
	}
	m->logq = nq;
	memcpy(m->logq + m->logqlen, line, len + 1);
	m->logqlen += len + 1;
}

static void
msg_log_flush(struct dlv_msg *m)
{
	size_t off = 0;

	while (off < m->logqlen) {
		log_info("%s", m->logq + off);
		off += strlen(m->logq + off) + 1;
	}
	free(m->logq);
	m->logq = NULL;
	m->logqlen = 0;
}

static void
msg_destroy(struct dlv_sched *s, struct dlv_msg *m)
{
	msg_log_flush(m);
	msg_unlink(s, m);
	if (m->timer != NULL) {
		free(event_get_callback_arg(m->timer));
		event_free(m->timer);
		m->timer = NULL;
	}
	msg_free(m);
}

/* Loads a committed message into the table (no-op when known). */
static struct dlv_msg *
msg_load(struct dlv_sched *s, const char *qid, int fresh)
{
	struct dlv_msg *m;
	int found = 1;
	size_t h;

	if ((m = dlv_msg_find(s, qid)) != NULL)
		return NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	memcpy(m->qid, qid, SPOOL_QID_SIZE);
	if (spool_read_envelope(s->spool_dir, qid, &m->env, &m->body) < 0) {
		log_err("%s: cannot read the queued message: %s", qid,
		    strerror(errno));
		free(m);
		return NULL;
	}
	/* A message just committed has no state file yet: no need to look
	 * for one (an open that fails, and an unlink at the end). */
	if (m->env.nrcpts == 0 ||
	    (m->hop_dsn = calloc(m->env.nrcpts, 1)) == NULL ||
	    (fresh ? qstate_init(&m->st, m->env.nrcpts) :
	    qstate_read(s->spool_dir, qid, m->env.nrcpts, &m->st, &found)) < 0) {
		if (errno == EBADMSG) {
			/* Start over: a duplicate at worst, never a loss. */
			log_warn("%s: unreadable delivery state, every recipient "
			    "is tried again", qid);
			if (qstate_init(&m->st, m->env.nrcpts) == 0)
				goto ok;
		}
		log_err("%s: cannot load the message: %s", qid, strerror(errno));
		msg_free(m);
		return NULL;
	}
ok:
	m->has_state = !fresh && found;
	h = qid_hash(qid);
	m->hnext = s->htab[h];
	s->htab[h] = m;
	s->nmsgs++;
	return m;
}

/* ---- destinations ---- */

static int
domain_in_list(const char *list, const char *domain)
{
	const char *p = list;
	size_t n = strlen(domain);

	while (p != NULL && *p) {
		size_t len;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		len = strcspn(p, " ,\t");
		if (len == n && strncasecmp(p, domain, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

static struct dlv_dest *
dest_get(struct dlv_sched *s, const char *name)
{
	struct dlv_dest *d;

	for (d = s->dests; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	TAILQ_INIT(&d->queue);
	d->cap = s->cfg->max_per_destination;
	d->tls_required = s->cfg->tls_required_domains != NULL &&
	    domain_in_list(s->cfg->tls_required_domains, name);
	d->ipv4_only = s->cfg->ipv4_only != NULL &&
	    domain_in_list(s->cfg->ipv4_only, name);
	d->next = s->dests;
	s->dests = d;
	return d;
}

struct dest_wake_ctx {
	struct dlv_sched *s;
	struct dlv_dest *d;
};

static void
dest_wake_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dest_wake_ctx *c = arg;

	(void)fd;
	(void)what;
	dlv_dest_kick(c->s, c->d);
}

void
dlv_dest_kick(struct dlv_sched *s, struct dlv_dest *d)
{
	time_t now = time(NULL);

	if (s->stopping)
		return;
	if (d->backoff_until > now) {
		struct timeval tv = { d->backoff_until - now, 0 };

		if (d->wake == NULL) {
			struct dest_wake_ctx *c = calloc(1, sizeof(*c));

			if (c == NULL)
				return;
			c->s = s;
			c->d = d;
			if ((d->wake = evtimer_new(s->base, dest_wake_fire,
			    c)) == NULL) {
				free(c);
				return;
			}
		}
		evtimer_add(d->wake, &tv);
		return;
	}
	dlv_dest_resume_idle(d);
	while (d->nconns < d->cap && d->nqueued > 0)
		if (dlv_conn_start(s, d) < 0)
			break;
}

void
dlv_dest_backoff(struct dlv_sched *s, struct dlv_dest *d, const char *why)
{
	int secs = s->cfg->retry_interval;

	if (d->cap != 1 || d->backoff_until < time(NULL))
		log_info("%s: slowing down deliveries (one connection, pause "
		    "%d s): %s", d->name, secs, why);
	d->cap = 1;
	d->backoff_until = time(NULL) + secs;
}

void
dlv_dest_success(struct dlv_dest *d)
{
	d->cap = d->cap < 1 ? 1 : d->cap;
}

/* ---- recipients and jobs ---- */

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && at[1] ? at + 1 : "";
}

void
dlv_rcpt_result(struct dlv_sched *s, struct dlv_msg *m, size_t i,
    enum qstate_rcpt_status status, int code, const char *enhanced,
    const char *text, const char *relay, const char *tls, int hop_dsn)
{
	struct qstate_rcpt *r = &m->st.rcpts[i];
	char esc_to[300], esc_text[600], reply[700], line[LOG_LINE_MAX];
	struct timespec now;
	double delay;

	clock_gettime(CLOCK_REALTIME, &now);
	r->status = status;
	r->when = now.tv_sec;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced ? enhanced : "");
	if (code > 0)
		snprintf(reply, sizeof(reply), "%d %s%s%s", code,
		    enhanced && *enhanced ? enhanced : "",
		    enhanced && *enhanced ? " " : "", text ? text : "");
	else
		snprintf(reply, sizeof(reply), "%s", text ? text : "");
	snprintf(r->text, sizeof(r->text), "%.*s", (int)sizeof(r->text) - 1,
	    reply);
	m->hop_dsn[i] = hop_dsn ? 1 : 0;
	qstate_hist_add(&m->st, r->when, i, status, relay, reply);
	if (status == QS_SENT)
		s->n_sent++;
	else if (status == QS_FAILED)
		s->n_bounced++;
	else
		s->n_deferred++;
	/* A hard bounce of a user's mail counts towards holding the user
	 * (quota.h).  Not: a DSN (null sender) failing, mail of trusted
	 * networks (no login), nor a message that merely expired in the
	 * queue (4.4.7: our own or the network's trouble, not a refusal). */
	if (status == QS_FAILED && s->hooks.hard_bounce != NULL &&
	    m->env.auth_user != NULL && m->env.auth_user[0] != '\0' &&
	    m->env.mail_from != NULL && m->env.mail_from[0] != '\0' &&
	    (code >= 500 || (enhanced != NULL && enhanced[0] == '5')))
		s->hooks.hard_bounce(s->hooks.bounce_arg, m->env.auth_user);
	delay = (double)(now.tv_sec - m->env.arrival) +
	    (double)now.tv_nsec / 1e9;
	if (delay < 0)
		delay = 0;
	snprintf(line, sizeof(line), "%s: to=<%s>, relay=%s, delay=%.1f, tls=%s, dsn=%s, "
	    "status=%s (%s)", m->qid,
	    log_escape(esc_to, sizeof(esc_to), m->env.rcpts[i].addr, SIZE_MAX),
	    relay && *relay ? relay : "none", delay, tls && *tls ? tls : "none",
	    enhanced && *enhanced ? enhanced :
	    status == QS_SENT ? "2.0.0" : status == QS_FAILED ? "5.0.0" : "4.0.0",
	    status == QS_SENT ? "sent" : status == QS_FAILED ? "bounced" :
	    "deferred", log_escape(esc_text, sizeof(esc_text), reply, SIZE_MAX));
	msg_log_queue(m, line);
}

static void	msg_attempt_done(struct dlv_sched *s, struct dlv_msg *m);

void
dlv_job_done(struct dlv_sched *s, struct dlv_job *j)
{
	struct dlv_msg *m = j->m;

	if (j->queued) {
		TAILQ_REMOVE(&j->d->queue, j, q);
		j->d->nqueued--;
	}
	free(j->idx);
	free(j);
	/* A mark per job: a restart then re-sends only what was not done.
	 * After the last job, msg_attempt_done() writes it (or removes the
	 * message) at once. */
	if (!m->deleted && m->jobs > 1) {
		m->has_state = 1;	/* even a failed write may leave it */
		if (qstate_write(s->spool_dir, m->qid, &m->st) < 0)
			log_err("%s: cannot write the delivery state: %s",
			    m->qid, strerror(errno));
		msg_log_flush(m);
	}
	if (--m->jobs == 0)
		msg_attempt_done(s, m);
}

/* ---- DKIM signing before an attempt (dkimpool.h) ---- */

/* Without [dkim] expire, a signature older than this is made again
 * before an attempt; with it, one older than half of it. */
#define DLV_SIG_MAX_AGE	86400

struct sign_ctx {
	struct dkimpool_req r;		/* first: the pool hands back &r */
	struct dlv_sched *s;
};

static void
msg_sig_drop(struct dlv_msg *m)
{
	free(m->dkim_sig);
	m->dkim_sig = NULL;
	m->dkim_siglen = 0;
	m->sign_done = 0;
}

/* 1 when m must be signed before its next attempt starts. */
static int
msg_needs_signing(struct dlv_sched *s, struct dlv_msg *m)
{
	long expire = __atomic_load_n(&s->cfg->dkim_expire, __ATOMIC_RELAXED);
	size_t i;

	if (m->env.dkim_domain == NULL || s->signer == NULL)
		return 0;
	/* retries reuse the signature (or the decision to send unsigned)
	 * while the keys are the same and it is not getting old */
	if (m->sign_done && m->sign_gen ==
	    dkim_store_generation(s->hooks.dkim) &&
	    time(NULL) - m->sign_time <= (expire > 0 ? expire / 2 :
	    DLV_SIG_MAX_AGE))
		return 0;
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->st.rcpts[i].status != QS_SENT &&
		    m->st.rcpts[i].status != QS_FAILED)
			break;
	if (i == m->env.nrcpts)
		return 0;	/* nothing left to send */
	msg_sig_drop(m);
	return 1;
}

static void
msg_signed(struct dkimpool_req *r)
{
	struct sign_ctx *c = (struct sign_ctx *)r;
	struct dlv_sched *s = c->s;
	struct dlv_msg *m = r->arg;

	if (m == NULL || r->err == ECANCELED || s->stopping) {
		if (m != NULL)
			m->signreq = NULL;
		free(r->sig);
		free(c);
		return;
	}
	m->signreq = NULL;
	switch (r->err) {
	case 0:
		m->dkim_sig = r->sig;
		m->dkim_siglen = r->siglen;
		r->sig = NULL;
		break;
	case ENOKEY:
	case EBADMSG:
		/* it cannot get better by waiting: the mail still goes */
		log_warn("%s: dkim: not signed: %s; sent unsigned", m->qid,
		    r->text);
		break;
	default:
		log_err("%s: dkim: signing failed: %s; trying again in %d s",
		    m->qid, r->text, s->cfg->retry_interval);
		free(r->sig);
		free(c);
		if (msg_schedule(s, m, time(NULL) + s->cfg->retry_interval) < 0)
			log_err("%s: out of memory: the message waits for "
			    "`outpost queue flush` or a restart", m->qid);
		return;
	}
	free(r->sig);
	m->sign_done = 1;
	m->sign_time = time(NULL);
	m->sign_gen = r->gen;
	free(c);
	msg_activate(s, m);
}

static void
msg_sign(struct dlv_sched *s, struct dlv_msg *m)
{
	struct sign_ctx *c;
	struct dkimpool_req *r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->s = s;
	r = &c->r;
	memcpy(r->qid, m->qid, SPOOL_QID_SIZE);
	if (spool_msg_path(s->spool_dir, m->qid, r->path, sizeof(r->path)) < 0 ||
	    strlen(m->env.dkim_domain) >= sizeof(r->domain)) {
		/* cannot happen for what submission wrote; go unsigned */
		free(c);
		log_warn("%s: dkim: not signed: bad signing domain or path; "
		    "sent unsigned", m->qid);
		m->sign_done = 1;
		m->sign_time = time(NULL);
		m->sign_gen = dkim_store_generation(s->hooks.dkim);
		msg_activate(s, m);
		return;
	}
	r->offset = m->body;
	r->size = m->env.size;
	snprintf(r->domain, sizeof(r->domain), "%s", m->env.dkim_domain);
	memcpy(r->bh, m->env.dkim_bh, sizeof(r->bh));
	r->utf8 = m->env.smtputf8;
	r->expire = __atomic_load_n(&s->cfg->dkim_expire, __ATOMIC_RELAXED);
	r->cb = msg_signed;
	r->arg = m;
	if (dkimpool_submit(s->signer, r) < 0) {
		free(c);
		return;		/* stopping: the next start signs it */
	}
	m->signreq = r;
	return;
fail:
	log_err("%s: out of memory signing, retrying in %d s", m->qid,
	    s->cfg->retry_interval);
	(void)msg_schedule(s, m, time(NULL) + s->cfg->retry_interval);
}

/* Puts every pending/deferred recipient of m into jobs, one per
 * destination and at most rcpts_per_transaction recipients each. */
static void
msg_activate(struct dlv_sched *s, struct dlv_msg *m)
{
	size_t i, k, n = m->env.nrcpts;
	unsigned char *taken;
	struct dlv_dest *touched[64];
	size_t ntouched = 0;

	if (m->jobs > 0 || m->st.held || m->deleted)
		return;
	if (msg_needs_signing(s, m)) {
		if (m->signreq == NULL)
			msg_sign(s, m);
		return;
	}
	if (m->timer != NULL)
		evtimer_del(m->timer);
	if ((taken = calloc(n, 1)) == NULL)
		goto oom;
	m->attempt_start = time(NULL);
	m->st.attempts++;
	for (i = 0; i < n; i++) {
		const char *dom;
		char name[256];
		struct dlv_dest *d;
		struct dlv_job *j;

		if (taken[i] || m->st.rcpts[i].status == QS_SENT ||
		    m->st.rcpts[i].status == QS_FAILED)
			continue;
		dom = s->smarthost ? s->sh_host : rcpt_domain(m->env.rcpts[i].addr);
		for (k = 0; dom[k] && k + 1 < sizeof(name); k++)
			name[k] = (char)tolower((unsigned char)dom[k]);
		name[k] = '\0';
		if ((d = dest_get(s, name)) == NULL ||
		    (j = calloc(1, sizeof(*j))) == NULL)
			goto oom;
		if ((j->idx = calloc((size_t)s->cfg->rcpts_per_transaction,
		    sizeof(*j->idx))) == NULL) {
			free(j);
			goto oom;
		}
		j->m = m;
		j->d = d;
		for (k = i; k < n && j->n < (size_t)s->cfg->rcpts_per_transaction;
		    k++) {
			const char *dk;
			size_t a;

			if (taken[k] || m->st.rcpts[k].status == QS_SENT ||
			    m->st.rcpts[k].status == QS_FAILED)
				continue;
			dk = s->smarthost ? s->sh_host :
			    rcpt_domain(m->env.rcpts[k].addr);
			for (a = 0; dk[a] && name[a] &&
			    tolower((unsigned char)dk[a]) == name[a]; a++)
				;
			if (dk[a] != '\0' || name[a] != '\0')
				continue;
			taken[k] = 1;
			j->idx[j->n++] = k;
		}
		TAILQ_INSERT_TAIL(&d->queue, j, q);
		j->queued = 1;
		d->nqueued++;
		m->jobs++;
		if (ntouched < sizeof(touched) / sizeof(touched[0]))
			touched[ntouched++] = d;
		i--;	/* more recipients of this domain than one job holds */
	}
	free(taken);
	if (m->jobs == 0) {
		/* nothing left to do (e.g. loaded with every rcpt final) */
		m->st.attempts--;
		msg_attempt_done(s, m);
		return;
	}
	for (k = 0; k < ntouched; k++)
		dlv_dest_kick(s, touched[k]);
	if (ntouched == sizeof(touched) / sizeof(touched[0]))
		for (struct dlv_dest *d = s->dests; d != NULL; d = d->next)
			dlv_dest_kick(s, d);
	return;
oom:
	free(taken);
	log_err("%s: out of memory scheduling, retrying in %d s", m->qid,
	    s->cfg->retry_interval);
	if (m->jobs == 0)
		msg_schedule(s, m, time(NULL) + s->cfg->retry_interval);
}

/* ---- DSNs ---- */

struct dsn_put {
	struct spool_msg *sm;
};

static int
dsn_put(void *arg, const void *data, size_t len)
{
	struct dsn_put *p = arg;

	return spool_msg_write(p->sm, data, len);
}

static void
dsn_committed(void *arg, int result, const char *qid)
{
	char *orig = arg;

	if (result == 0)
		log_info("%s: sender notification: %s", orig, qid);
	else
		log_err("%s: cannot queue the sender notification: %s", orig,
		    strerror(result));
	free(orig);
}

/* Sends a DSN of kind for the recipients whose bit is set in which. */
static void
msg_send_dsn(struct dlv_sched *s, struct dlv_msg *m, enum dlv_dsn_kind kind,
    const unsigned char *which)
{
	struct dlv_dsn_rcpt *rv;
	struct envelope denv;
	struct envelope_rcpt drcpt;
	struct dlv_dsn d;
	struct dsn_put p;
	char path[PATH_MAX], *orig, relays[64][128];
	size_t i, n = 0;
	int fd = -1;

	if (m->env.mail_from[0] == '\0') {
		log_info("%s: undeliverable, and a notification for a message "
		    "with a null sender is never sent", m->qid);
		return;
	}
	if ((rv = calloc(m->env.nrcpts, sizeof(*rv))) == NULL)
		goto fail;
	for (i = 0; i < m->env.nrcpts; i++) {
		struct qstate_rcpt *r = &m->st.rcpts[i];
		const char *relay = NULL, *e;
		size_t h;

		if (!which[i])
			continue;
		rv[n].addr = m->env.rcpts[i].addr;
		rv[n].orcpt = m->env.rcpts[i].orcpt;
		rv[n].action = kind == DLV_DSN_FAILURE ? "failed" :
		    kind == DLV_DSN_DELAY ? "delayed" : "relayed";
		e = r->enhanced[0] ? r->enhanced :
		    kind == DLV_DSN_FAILURE ? "5.0.0" :
		    kind == DLV_DSN_DELAY ? "4.0.0" : "2.0.0";
		snprintf(rv[n].status, sizeof(rv[n].status), "%s", e);
		for (h = m->st.nhist; h-- > 0;)
			if (m->st.hist[h].rcpt == i && m->st.hist[h].relay[0]) {
				relay = m->st.hist[h].relay;
				break;
			}
		if (relay != NULL && n < 64) {
			/* "mx.example.net[192.0.2.1]:25" -> the host name */
			snprintf(relays[n], sizeof(relays[n]), "%.*s",
			    (int)strcspn(relay, "["), relay);
			rv[n].remote_mta = relays[n];
		}
		rv[n].diag = r->text[0] ? r->text : NULL;
		rv[n].last_attempt = r->when;
		n++;
	}
	if (n == 0) {
		free(rv);
		return;
	}
	if (spool_msg_path(s->spool_dir, m->qid, path, sizeof(path)) == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	memset(&d, 0, sizeof(d));
	d.kind = kind;
	d.hostname = s->cfg->hostname;
	d.env = &m->env;
	d.msgfd = fd;
	d.body = m->body;
	d.retry_until = m->env.arrival + s->cfg->queue_lifetime;
	d.rcpts = rv;
	d.nrcpts = n;
	d.full_max = s->cfg->max_message_size;

	memset(&denv, 0, sizeof(denv));
	memset(&drcpt, 0, sizeof(drcpt));
	drcpt.addr = m->env.mail_from;
	drcpt.notify = ENV_NOTIFY_NEVER;
	denv.mail_from = (char *)"";
	denv.rcpts = &drcpt;
	denv.nrcpts = 1;
	/* The report may carry UTF-8 (8-bit body); the envelope needs
	 * SMTPUTF8 only when the sender's own address is not ASCII, so a
	 * bounce about a missing SMTPUTF8 can still reach an ASCII sender. */
	denv.body = m->env.smtputf8 ? ENV_BODY_8BITMIME : ENV_BODY_7BIT;
	for (i = 0; m->env.mail_from[i]; i++)
		if ((unsigned char)m->env.mail_from[i] >= 0x80)
			denv.smtputf8 = 1;
	if ((p.sm = spool_msg_begin(s->sp, &denv)) == NULL) {
		if (fd >= 0)
			close(fd);
		free(rv);
		goto fail;
	}
	if (dlv_dsn_build(&d, dsn_put, &p) < 0) {
		spool_msg_abort(p.sm);
		if (fd >= 0)
			close(fd);
		free(rv);
		goto fail;
	}
	if (fd >= 0)
		close(fd);
	free(rv);
	if ((orig = strdup(m->qid)) == NULL) {
		spool_msg_abort(p.sm);
		goto fail;
	}
	s->n_dsn++;
	/* base NULL: answered on the commit thread, which survives our
	 * own shutdown; the new message reaches us via the notify hook. */
	spool_msg_commit(p.sm, NULL, dsn_committed, orig);
	return;
fail:
	log_err("%s: cannot build the %s notification: %s", m->qid,
	    kind == DLV_DSN_FAILURE ? "non-delivery" :
	    kind == DLV_DSN_DELAY ? "delay" : "success", strerror(errno));
}

/* ---- end of an attempt ---- */

static time_t
retry_delay(const struct config *cfg, int attempts)
{
	double d = cfg->retry_interval;
	int i;

	for (i = 1; i < attempts && d < cfg->max_retry_interval; i++)
		d *= 2;
	if (d > cfg->max_retry_interval)
		d = cfg->max_retry_interval;
	/* +-10% jitter, so messages deferred together spread out */
	d *= 0.9 + (double)randombytes_uniform(2001) / 10000.0;
	return d < 1 ? 1 : (time_t)lround(d);
}

static void
msg_attempt_done(struct dlv_sched *s, struct dlv_msg *m)
{
	size_t i, n = m->env.nrcpts, left = 0;
	unsigned char *fail, *succ, *delay;
	time_t now = time(NULL), next;
	int nfail = 0, nsucc = 0, ndelay = 0, expired;

	if (m->deleted) {
		if (msg_file_remove(s, m) < 0 && errno != ENOENT)
			log_err("%s: cannot remove: %s", m->qid, strerror(errno));
		log_info("%s: removed", m->qid);
		msg_destroy(s, m);
		return;
	}
	fail = calloc(n, 1);
	succ = calloc(n, 1);
	delay = calloc(n, 1);
	if (fail == NULL || succ == NULL || delay == NULL) {
		free(fail);
		free(succ);
		free(delay);
		log_err("%s: out of memory ending an attempt", m->qid);
		msg_schedule(s, m, now + s->cfg->retry_interval);
		return;
	}
	expired = now - m->env.arrival >= s->cfg->queue_lifetime;
	for (i = 0; i < n; i++) {
		struct qstate_rcpt *r = &m->st.rcpts[i];
		unsigned notify = m->env.rcpts[i].notify;

		if ((r->status == QS_DEFERRED || r->status == QS_PENDING) &&
		    expired) {
			char why[QSTATE_TEXT_MAX];

			snprintf(why, sizeof(why), "message expired after %d s "
			    "in the queue; last error: %.400s",
			    s->cfg->queue_lifetime, r->text[0] ? r->text : "none");
			dlv_rcpt_result(s, m, i, QS_FAILED, 0, "4.4.7", why,
			    NULL, NULL, 0);
		}
		if (r->status == QS_FAILED && !r->notified) {
			r->notified = 1;
			/* a null sender gets here too, for the log line */
			if (dlv_dsn_wanted(notify, DLV_DSN_FAILURE) ||
			    m->env.mail_from[0] == '\0') {
				fail[i] = 1;
				nfail++;
			}
		} else if (r->status == QS_SENT && !r->notified) {
			r->notified = 1;
			/* RFC 3461 6.2.1: a hop that took NOTIFY reports;
			 * otherwise we say "relayed". */
			if (!m->hop_dsn[i] &&
			    dlv_dsn_wanted(notify, DLV_DSN_SUCCESS)) {
				succ[i] = 1;
				nsucc++;
			}
		} else if (r->status == QS_DEFERRED || r->status == QS_PENDING) {
			left++;
			if (dlv_dsn_wanted(notify, DLV_DSN_DELAY)) {
				delay[i] = 1;
				ndelay++;
			}
		}
	}
	if (nfail > 0)
		msg_send_dsn(s, m, DLV_DSN_FAILURE, fail);
	if (nsucc > 0)
		msg_send_dsn(s, m, DLV_DSN_SUCCESS, succ);
	if (left > 0 && ndelay > 0 && !m->st.warned &&
	    s->cfg->delay_warning > 0 &&
	    now - m->env.arrival >= s->cfg->delay_warning) {
		m->st.warned = 1;
		msg_send_dsn(s, m, DLV_DSN_DELAY, delay);
	}
	free(fail);
	free(succ);
	free(delay);
	if (left == 0) {
		int rr = msg_file_remove(s, m);
		int rerr = errno;

		msg_log_flush(m);
		if (rr < 0 && rerr != ENOENT)
			log_err("%s: cannot remove the delivered message: %s",
			    m->qid, strerror(rerr));
		else
			log_info("%s: removed", m->qid);
		msg_destroy(s, m);
		return;
	}
	next = now + retry_delay(s->cfg, m->st.attempts);
	/* Expiry and the delay warning get their own try, on time. */
	if (next > m->env.arrival + s->cfg->queue_lifetime)
		next = m->env.arrival + s->cfg->queue_lifetime;
	if (!m->st.warned && s->cfg->delay_warning > 0 && ndelay > 0 &&
	    next > m->env.arrival + s->cfg->delay_warning &&
	    m->env.arrival + s->cfg->delay_warning > now)
		next = m->env.arrival + s->cfg->delay_warning;
	m->st.next = next;
	m->has_state = 1;	/* even a failed write may leave it */
	if (qstate_write(s->spool_dir, m->qid, &m->st) < 0)
		log_err("%s: cannot write the delivery state: %s", m->qid,
		    strerror(errno));
	msg_log_flush(m);
	if (!m->st.held)
		msg_schedule(s, m, next);
}

/* ---- queue control ---- */

/* Takes m's queued (not running) jobs off their destinations. */
static void
msg_unqueue(struct dlv_msg *m, struct dlv_sched *s)
{
	struct dlv_dest *d;
	struct dlv_job *j, *jn;
	int removed = 0;

	for (d = s->dests; d != NULL; d = d->next)
		for (j = TAILQ_FIRST(&d->queue); j != NULL; j = jn) {
			jn = TAILQ_NEXT(j, q);
			if (j->m != m)
				continue;
			TAILQ_REMOVE(&d->queue, j, q);
			d->nqueued--;
			free(j->idx);
			free(j);
			m->jobs--;
			removed++;
		}
	/* The attempt never ran (no job of it had started). */
	if (removed > 0 && m->jobs == 0 && m->st.attempts > 0)
		m->st.attempts--;
}

int
dlv_msg_hold(struct dlv_sched *s, struct dlv_msg *m, int hold)
{
	if (hold) {
		m->st.held = 1;
		msg_unqueue(m, s);
		if (m->timer != NULL)
			evtimer_del(m->timer);
		log_info("%s: held by the operator", m->qid);
	} else {
		m->st.held = 0;
		log_info("%s: released by the operator", m->qid);
	}
	m->has_state = 1;	/* even a failed write may leave it */
	if (qstate_write(s->spool_dir, m->qid, &m->st) < 0)
		return -1;
	if (!hold && m->jobs == 0)
		msg_activate(s, m);
	return 0;
}

int
dlv_msg_delete(struct dlv_sched *s, struct dlv_msg *m)
{
	msg_unqueue(m, s);
	m->deleted = 1;
	log_info("%s: deleted by the operator", m->qid);
	if (m->jobs == 0) {
		if (msg_file_remove(s, m) < 0 && errno != ENOENT)
			return -1;
		log_info("%s: removed", m->qid);
		msg_destroy(s, m);
	}
	/* else: removed when the running attempt ends */
	return 0;
}

static int
scan_one(void *ctx, const struct envelope *env)
{
	struct dlv_sched *s = ctx;
	struct dlv_msg *m;

	if ((m = msg_load(s, env->qid, 0)) != NULL) {
		if (m->st.held)
			return 0;
		msg_schedule(s, m, m->st.next);
	}
	return 0;
}

void
dlv_flush(struct dlv_sched *s)
{
	struct dlv_dest *d;
	char err[256];
	size_t b;

	/* A rescan first: picks up anything the notify hook missed. */
	if (spool_list(s->spool_dir, scan_one, s, err, sizeof(err)) < 0)
		log_err("queue flush: %s", err);
	for (d = s->dests; d != NULL; d = d->next) {
		d->backoff_until = 0;
		d->cap = s->cfg->max_per_destination;
	}
	for (b = 0; b < DLV_HASH_SIZE; b++)
		for (struct dlv_msg *m = s->htab[b]; m != NULL; m = m->hnext)
			if (!m->st.held && m->jobs == 0 && !m->deleted)
				msg_schedule(s, m, 0);
	log_info("queue flush: every message is tried now");
}

/* ---- new messages from the spool ---- */

struct notify_batch {
	struct dlv_sched *s;
	size_t n;
	char (*ids)[SPOOL_QID_SIZE];
};

static void
on_committed(void *arg)
{
	struct notify_batch *b = arg;
	struct dlv_msg *m;
	size_t i;

	/* at shutdown: they are on disk, the next start finds them */
	for (i = 0; i < b->n && !b->s->stopping; i++)
		if ((m = msg_load(b->s, b->ids[i], 1)) != NULL)
			msg_activate(b->s, m);
	free(b->ids);
	free(b);
}

/* Runs on the spool's commit thread: hand the ids to our loop. */
static void
spool_notified(void *arg, const char (*qids)[SPOOL_QID_SIZE], size_t n)
{
	struct dlv_sched *s = arg;
	struct notify_batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->ids = malloc(n * sizeof(*b->ids))) == NULL) {
		free(b);
		log_err("delivery: out of memory: %zu new messages wait for "
		    "`outpost queue flush` or a restart", n);
		return;
	}
	b->s = s;
	b->n = n;
	memcpy(b->ids, qids, n * sizeof(*b->ids));
	if (loopcall(s->base, on_committed, b) != 0) {
		free(b->ids);
		free(b);
		log_err("delivery: out of memory: %zu new messages wait for "
		    "`outpost queue flush` or a restart", n);
	}
}

/* ---- start and stop ---- */

static void *
sched_main(void *arg)
{
	struct dlv_sched *s = arg;

	event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
sched_break(void *arg)
{
	struct dlv_sched *s = arg;

	event_base_loopbreak(s->base);
}

static int
read_secret(const char *path, char **out, char *err, size_t errlen)
{
	char buf[1024];
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "cannot read smarthost_password_file %s: "
		    "%s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		snprintf(err, errlen, "smarthost_password_file %s is empty", path);
		return -1;
	}
	*out = strdup(buf);
	sodium_memzero(buf, sizeof(buf));
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

struct dlv_sched *
dlv_sched_start(const struct config *cfg, struct spool *sp,
    const struct dlv_hooks *hooks, char *err, size_t errlen)
{
	struct dns_opts dopts;
	struct dlv_sched *s;
	char tlserr[512];
	sigset_t all, old;
	int rc, n;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->htab = calloc(DLV_HASH_SIZE, sizeof(*s->htab))) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = cfg;
	s->sp = sp;
	if (hooks != NULL)
		s->hooks = *hooks;
	s->spool_dir = cfg->spool_dir;
	s->started = time(NULL);
	if ((s->base = evbase_new()) == NULL) {
		snprintf(err, errlen, "cannot create the delivery event loop");
		goto fail;
	}
	memset(&dopts, 0, sizeof(dopts));
	dopts.servers = cfg->dns;
	dopts.timeout_ms = cfg->dns_timeout * 1000;
	dopts.tries = cfg->dns_tries;
	dopts.allow_loopback = cfg->allow_loopback;
	if ((s->dns = dns_new(s->base, &dopts, err, errlen)) == NULL)
		goto fail;
	if (s->hooks.dkim != NULL) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		if ((s->signer = dkimpool_new(s->base, s->hooks.dkim,
		    ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu, err,
		    errlen)) == NULL)
			goto fail;
	}
	/* smtpc applies the verify policy itself: verify = 0 here. */
	if ((s->ssl_ctx = tls_client_ctx_new(cfg->delivery_ca_file, 0, tlserr,
	    sizeof(tlserr))) == NULL) {
		snprintf(err, errlen, "delivery TLS: %s", tlserr);
		goto fail;
	}
	if (cfg->smarthost != NULL) {
		s->smarthost = 1;
		if (config_split_hostport(cfg->smarthost, s->sh_host,
		    sizeof(s->sh_host), &s->sh_port) < 0) {
			snprintf(err, errlen, "bad smarthost %s", cfg->smarthost);
			goto fail;
		}
		s->sh_tls = strcmp(cfg->smarthost_tls, "implicit") == 0 ?
		    SMTPC_TLS_IMPLICIT : strcmp(cfg->smarthost_tls, "none") == 0 ?
		    SMTPC_TLS_NONE : SMTPC_TLS_STARTTLS;
		if (cfg->smarthost_password_file != NULL &&
		    read_secret(cfg->smarthost_password_file, &s->sh_pass, err,
		    errlen) < 0)
			goto fail;
		if (s->sh_pass != NULL && s->sh_tls == SMTPC_TLS_NONE) {
			snprintf(err, errlen, "[delivery] smarthost_user needs "
			    "smarthost_tls = starttls or implicit: credentials "
			    "are only sent over verified TLS");
			goto fail;
		}
	}
	if ((n = qstate_gc(s->spool_dir)) > 0)
		log_info("delivery: removed %d stale state files", n);
	/* The hook first, then the scan: a message committed in between
	 * is seen twice and loaded once (msg_load ignores known ids). */
	spool_set_notify(sp, spool_notified, s);
	if (spool_list(s->spool_dir, scan_one, s, err, errlen) < 0)
		goto fail;
	if (dlv_ctl_open(s, err, errlen) < 0)
		goto fail;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, sched_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		spool_set_notify(sp, NULL, NULL);
		snprintf(err, errlen, "cannot start the delivery thread: %s",
		    strerror(rc));
		goto fail;
	}
	s->thread_started = 1;
	log_info("delivery: %zu messages queued, %s%s%s, dns=%s", s->nmsgs,
	    s->smarthost ? "smarthost " : "direct to MX",
	    s->smarthost ? cfg->smarthost : "", "",
	    cfg->dns ? cfg->dns : "system");
	return s;
fail:
	dlv_sched_stop(s);
	return NULL;
}

void
dlv_sched_stop(struct dlv_sched *s)
{
	struct dlv_dest *d, *dn;
	size_t b;

	if (s == NULL)
		return;
	if (s->sp != NULL)
		spool_set_notify(s->sp, NULL, NULL);
	if (s->thread_started) {
		while (loopcall(s->base, sched_break, s) != 0)
			usleep(10000);
		pthread_join(s->thread, NULL);
	}
	s->stopping = 1;
	/* every signing request answered (cancelled) while the messages
	 * it points at still exist */
	dkimpool_free(s->signer);
	s->signer = NULL;
	dlv_ctl_close(s);
	dlv_conn_shutdown_all();
	if (s->base != NULL)	/* answers the loopcalls still queued */
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	for (d = s->dests; d != NULL; d = dn) {
		struct dlv_job *j;

		dn = d->next;
		while ((j = TAILQ_FIRST(&d->queue)) != NULL) {
			TAILQ_REMOVE(&d->queue, j, q);
			free(j->idx);
			free(j);
		}
		if (d->wake != NULL) {
			free(event_get_callback_arg(d->wake));
			event_free(d->wake);
		}
		free(d);
	}
	for (b = 0; s->htab != NULL && b < DLV_HASH_SIZE; b++)
		while (s->htab[b] != NULL)	/* msg_destroy() unlinks it */
			msg_destroy(s, s->htab[b]); // NOLINT(clang-analyzer-unix.Malloc)
	free(s->htab);
	dns_free(s->dns);
	if (s->ssl_ctx != NULL)
		SSL_CTX_free(s->ssl_ctx);
	if (s->sh_pass != NULL) {
		sodium_memzero(s->sh_pass, strlen(s->sh_pass));
		free(s->sh_pass);
	}
	if (s->base != NULL)
		event_base_free(s->base);
	free(s);
}
