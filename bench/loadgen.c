/*
 * loadgen — SMTP submission load generator for the outpost benchmark.
 *
 * Loopback only: the target and every source address must be in
 * 127.0.0.0/8 (or ::1); anything else is refused.  Every run is bounded by
 * a message count and a wall-clock limit.
 *
 *   loadgen -p PORT [-H 127.0.0.1] -m starttls|implicit|plain
 *           -c CONNS -n MSGS -k MSGS_PER_CONN -s SIZE
 *           [-u USER] (password: $LOADGEN_PASSWORD or -P FILE)
 *           [-r] (TLS session resumption) [-t SECONDS] [-T THREADS]
 *           [-S 127.1.0.1+250] (source addresses, round robin)
 *           [-I] idle mode: open CONNS sessions (EHLO, TLS), print
 *                "READY ..." and hold them -t seconds, then QUIT.
 *           [-L RATE] open loop: message i is not started (MAIL) before
 *                i/RATE seconds into the run, so every server gets the
 *                same offered load; a connection waits, idle, for its
 *                message's time.  Without -L each connection starts its
 *                next message at once (closed loop: as fast as the
 *                server answers).
 *
 * One summary line on stdout:
 *   msgs/s=... ok=... errors=... conns=... p50=..ms p90=..ms p99=..ms
 *   (latency = final "." written -> the "250" reported by epoll; replies
 *   to a final dot are read before anything else of the same epoll
 *   batch, so the client's own TLS work does not inflate them)
 *   errs="first distinct replies"
 *
 * Design: THREADS event loops (epoll, level-triggered), each owning
 * CONNS/THREADS connections; nonblocking sockets and OpenSSL directly on
 * the fd.  MAIL/RCPT/DATA go in one write when PIPELINING is offered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define INBUF	16384
#define MAXERRS	8

enum mode { M_PLAIN, M_STARTTLS, M_IMPLICIT };

enum state {
	S_CONNECT, S_TLS_HS, S_GREET, S_EHLO, S_STARTTLS, S_AUTH,
	S_MAIL, S_RCPT, S_DATA, S_DOT, S_QUIT, S_IDLE, S_PACED, S_DEAD
};

struct opts {
	const char	*host;
	int		 port;
	enum mode	 mode;
	int		 conns;
	long		 msgs;
	int		 per_conn;
	size_t		 size;
	const char	*user;
	char		 pass[256];
	int		 resume;
	double		 timeout;
	int		 threads;
	int		 idle;
	const char	*rcpt;
	struct sockaddr_storage	 dst;
	socklen_t	 dstlen;
	struct sockaddr_storage	*src;
	int		 nsrc;
	int		 verbose;
	double		 rate;		/* -L: offered messages/s, 0 = closed loop */
};

static struct opts O;
static SSL_CTX *g_ctx;
static char *g_body;		/* message incl. terminating ".\r\n" */
static size_t g_bodylen;
static char g_authcmd[1024];
static char g_mailcmd[1024];	/* MAIL+RCPT+DATA */
static size_t g_mailcmdlen;
static double g_t0;
static volatile double g_deadline;
static atomic_long g_claimed;	/* messages handed to connections */
static atomic_long g_ok, g_msgerr, g_connerr, g_conns, g_resumed;
static atomic_long g_idle_ready, g_idle_lost, g_unfinished;
static atomic_int g_src_rr;
static volatile sig_atomic_t g_stop;
static pthread_mutex_t g_errlock = PTHREAD_MUTEX_INITIALIZER;
static char g_errs[MAXERRS][160];
static int g_nerrs;

struct thr;

struct conn {
	struct thr	*t;
	int		 fd;
	SSL		*ssl;
	enum state	 st;
	int		 tls;
	int		 pipelining;
	int		 want_out;	/* EPOLLOUT registered */
	int		 hs_wants_write;
	int		 sent;		/* messages done on this conn */
	int		 have_msg;	/* a claimed message in flight */
	char		 in[INBUF];
	size_t		 inlen;
	const char	*out;		/* pending output (static buffers) */
	size_t		 outlen, outoff;
	char		 obuf[1100];	/* owned output for small commands */
	int		 body_pending;	/* out is the body: stamp t_dot after */
	double		 t_dot;
	double		 t_ready;	/* epoll reported input (S_DOT) */
	int		 expect_after;	/* pipelined replies still to come */
	uint32_t	 idx, gen;	/* epoll key: stale events are ignored */
	int		 setting_up;	/* idle mode: counted in t->pending */
	double		 due;		/* S_PACED: when its message may start */
};

struct thr {
	int		 id;
	pthread_t	 tid;
	int		 ep;
	int		 nconn;
	struct conn	*c;
	int		 live;
	double		*lat;
	size_t		 nlat, caplat;
	SSL_SESSION	*sess;
	long		 reconnects;
	int		 next;		/* idle mode: next conn to start */
	int		 pending;	/* idle mode: sessions being set up */
	int		 nparked;	/* conns in S_PACED */
};

/* Idle mode opens at most this many sessions at a time per thread, as a
 * population of clients would: a storm of 10,000 SYNs overflows a
 * 128-entry accept queue, and with SYN cookies a client of a
 * server-speaks-first protocol can then wait forever for the greeting. */
#define IDLE_RAMP 64

static __thread struct thr *cur_thr;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, const char *a)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\n");
	exit(2);
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		return IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
	}
	return 0;
}

static void
record_err(const char *what, const char *line)
{
	char e[160];
	int i;

	snprintf(e, sizeof(e), "%s: %.*s", what, 120, line);
	for (char *p = e; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '"')
			*p = ' ';
	pthread_mutex_lock(&g_errlock);
	for (i = 0; i < g_nerrs; i++)
		if (strcmp(g_errs[i], e) == 0)
			break;
	if (i == g_nerrs && g_nerrs < MAXERRS)
		strcpy(g_errs[g_nerrs++], e);
	pthread_mutex_unlock(&g_errlock);
	if (O.verbose)
		fprintf(stderr, "loadgen: %s\n", e);
}

static void
b64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- connection management ---- */

static void conn_start(struct conn *c);
static void idle_setup_over(struct conn *c);
static void conn_event(struct conn *c, uint32_t ev);

static void
set_out_interest(struct conn *c, int want)
{
	struct epoll_event ev;

	if (c->want_out == want)
		return;
	c->want_out = want;
	ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)c->gen << 32 | c->idx;
	epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_close(struct conn *c)
{
	if (c->st == S_PACED)
		c->t->nparked--;
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->st = S_DEAD;
}

static void
idle_setup_over(struct conn *c)
{
	struct thr *t = c->t;

	if (!c->setting_up)
		return;
	c->setting_up = 0;
	t->pending--;
	while (t->next < t->nconn && t->pending < IDLE_RAMP && !g_stop) {
		struct conn *n = &t->c[t->next++];
		n->setting_up = 1;
		t->pending++;
		conn_start(n);
	}
}

/* Connection over; start another if messages remain. */
static void
conn_done(struct conn *c)
{
	int more;

	conn_close(c);
	if (c->have_msg) {
		c->have_msg = 0;
		atomic_fetch_add(&g_msgerr, 1);
	}
	if (O.idle)
		idle_setup_over(c);
	more = !O.idle && !g_stop && now() < g_deadline &&
	    atomic_load(&g_claimed) < O.msgs &&
	    atomic_load(&g_connerr) < 1000 + O.msgs;
	if (more) {
		c->t->reconnects++;
		conn_start(c);
	} else {
		c->t->live--;
	}
}

static void
conn_fail(struct conn *c, const char *what, const char *line)
{
	record_err(what, line);
	atomic_fetch_add(&g_connerr, 1);
	conn_done(c);
}

static void
queue_out(struct conn *c, const char *data, size_t len)
{
	c->out = data;
	c->outlen = len;
	c->outoff = 0;
}

static void
queue_cmd(struct conn *c, const char *fmt, const char *arg)
{
	int n = snprintf(c->obuf, sizeof(c->obuf), fmt, arg);

	queue_out(c, c->obuf, (size_t)n);
}

/* Returns 1 when all output is written, 0 when blocked, -1 on error. */
static int
flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n;
		size_t left = c->outlen - c->outoff;

		if (c->body_pending)	/* the write that sends the final dot */
			c->t_dot = now();
		if (c->tls) {
			int r = SSL_write(c->ssl, c->out + c->outoff,
			    left > INT32_MAX ? INT32_MAX : (int)left);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->out + c->outoff, left, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				return -1;
			}
		}
		c->outoff += (size_t)n;
	}
	c->body_pending = 0;
	c->outlen = c->outoff = 0;
	return 1;
}

static void
conn_start(struct conn *c)
{
	struct epoll_event ev;
	int fd, one = 1;

	c->st = S_CONNECT;
	c->tls = 0;
	c->pipelining = 0;
	c->sent = 0;
	c->have_msg = 0;
	c->inlen = 0;
	c->outlen = c->outoff = 0;
	c->body_pending = 0;
	c->expect_after = 0;
	c->want_out = 1;
	c->ssl = NULL;
	c->gen++;
	fd = socket(O.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->fd = -1;
		record_err("socket", strerror(errno));
		atomic_fetch_add(&g_connerr, 1);
		c->st = S_DEAD;
		c->t->live--;
		if (O.idle)
			idle_setup_over(c);
		return;
	}
	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.nsrc > 0) {
		int i = atomic_fetch_add(&g_src_rr, 1) % O.nsrc;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		if (bind(fd, (struct sockaddr *)&O.src[i],
		    O.src[i].ss_family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6)) < 0) {
			conn_fail(c, "bind", strerror(errno));
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&O.dst, O.dstlen) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(c, "connect", strerror(errno));
		return;
	}
	atomic_fetch_add(&g_conns, 1);
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.u64 = (uint64_t)c->gen << 32 | c->idx;
	if (epoll_ctl(c->t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_fail(c, "epoll_ctl", strerror(errno));
		return;
	}
}

static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct thr *t = cur_thr;

	(void)ssl;
	if (t == NULL)
		return 0;
	if (t->sess)
		SSL_SESSION_free(t->sess);
	t->sess = sess;
	return 1;		/* we keep the reference */
}

static int
tls_begin(struct conn *c)
{
	c->ssl = SSL_new(g_ctx);
	if (c->ssl == NULL)
		return -1;
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	if (O.resume && c->t->sess)
		SSL_set_session(c->ssl, c->t->sess);
	c->st = S_TLS_HS;
	return 0;
}

static void send_ehlo(struct conn *c);

/* Returns 0 to continue, -1 if the conn was closed. */
static int
tls_step(struct conn *c)
{
	int r = SSL_connect(c->ssl);

	if (r == 1) {
		c->tls = 1;
		if (SSL_session_reused(c->ssl))
			atomic_fetch_add(&g_resumed, 1);
		set_out_interest(c, 0);
		if (O.mode == M_IMPLICIT && c->sent == 0 &&
		    c->st == S_TLS_HS && c->inlen == 0) {
			c->st = S_GREET;
		} else {
			send_ehlo(c);
		}
		return 0;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		set_out_interest(c, 0);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		set_out_interest(c, 1);
		return 0;
	default: {
		char buf[128];
		unsigned long e = ERR_get_error();
		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		conn_fail(c, "tls handshake", e ? buf : "connection closed");
		return -1;
	}
	}
}

static void
send_ehlo(struct conn *c)
{
	c->st = S_EHLO;
	c->pipelining = 0;
	queue_cmd(c, "EHLO %s\r\n", "loadgen.localhost");
}

static void send_mail(struct conn *c);

static void
next_message(struct conn *c)
{
	long n;

	if (O.idle) {
		c->st = S_IDLE;
		atomic_fetch_add(&g_idle_ready, 1);
		idle_setup_over(c);
		return;
	}
	if (c->sent >= O.per_conn || g_stop || now() >= g_deadline ||
	    (n = atomic_fetch_add(&g_claimed, 1)) >= O.msgs) {
		c->st = S_QUIT;
		queue_cmd(c, "%s", "QUIT\r\n");
		return;
	}
	if (O.rate > 0 && g_t0 + (double)n / O.rate > now()) {
		/* open loop: wait for this message's time (thr_main) */
		c->st = S_PACED;
		c->due = g_t0 + (double)n / O.rate;
		c->t->nparked++;
		return;
	}
	send_mail(c);
}

/* Starts the claimed message: MAIL (+ RCPT + DATA when pipelining). */
static void
send_mail(struct conn *c)
{
	c->have_msg = 1;
	c->st = S_MAIL;
	if (c->pipelining) {
		queue_out(c, g_mailcmd, g_mailcmdlen);
		c->expect_after = 2;	/* RCPT, DATA replies follow */
	} else {
		size_t l = strcspn(g_mailcmd, "\n") + 1;
		queue_out(c, g_mailcmd, l);
		c->expect_after = 0;
	}
}

static int
has_word(const char *reply, const char *word)
{
	size_t wl = strlen(word);
	const char *p = reply;

	while (p && *p) {
		if (strncasecmp(p + 4, word, wl) == 0 &&
		    (p[4 + wl] == '\r' || p[4 + wl] == ' ' || p[4 + wl] == '\n'))
			return 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

/* One complete reply; returns -1 if the conn was closed/restarted. */
static int
on_reply(struct conn *c, int code, const char *text)
{
	switch (c->st) {
	case S_GREET:
		if (code != 220) {
			conn_fail(c, "greeting", text);
			return -1;
		}
		send_ehlo(c);
		return 0;
	case S_EHLO:
		if (code != 250) {
			conn_fail(c, "EHLO", text);
			return -1;
		}
		c->pipelining = has_word(text, "PIPELINING");
		if (O.mode == M_STARTTLS && !c->tls) {
			c->st = S_STARTTLS;
			queue_cmd(c, "%s", "STARTTLS\r\n");
		} else if (O.user && !O.idle) {
			c->st = S_AUTH;
			queue_out(c, g_authcmd, strlen(g_authcmd));
		} else {
			next_message(c);
		}
		return 0;
	case S_STARTTLS:
		if (code != 220) {
			conn_fail(c, "STARTTLS", text);
			return -1;
		}
		c->inlen = 0;	/* nothing may follow 220 in plaintext */
		if (tls_begin(c) < 0) {
			conn_fail(c, "tls", "SSL_new");
			return -1;
		}
		return tls_step(c);
	case S_AUTH:
		if (code != 235) {
			conn_fail(c, "AUTH", text);
			return -1;
		}
		next_message(c);
		return 0;
	case S_MAIL:
		if (code != 250) {
			record_err("MAIL", text);
			goto msgfail;
		}
		c->st = S_RCPT;
		if (!c->pipelining) {
			const char *r = strchr(g_mailcmd, '\n') + 1;
			queue_out(c, r, strcspn(r, "\n") + 1);
		}
		return 0;
	case S_RCPT:
		if (code != 250 && code != 251) {
			record_err("RCPT", text);
			goto msgfail;
		}
		c->st = S_DATA;
		if (!c->pipelining) {
			const char *r = strchr(g_mailcmd, '\n') + 1;
			r = strchr(r, '\n') + 1;
			queue_out(c, r, strcspn(r, "\n") + 1);
		}
		return 0;
	case S_DATA:
		if (code != 354) {
			record_err("DATA", text);
			goto msgfail;
		}
		c->st = S_DOT;
		queue_out(c, g_body, g_bodylen);
		c->body_pending = 1;
		return 0;
	case S_DOT: {
		double lat = (c->t_ready > c->t_dot ? c->t_ready : now()) -
		    c->t_dot;
		struct thr *t = c->t;

		c->have_msg = 0;
		c->sent++;
		if (code != 250) {
			record_err("end of data", text);
			atomic_fetch_add(&g_msgerr, 1);
		} else {
			atomic_fetch_add(&g_ok, 1);
			if (t->nlat == t->caplat) {
				t->caplat = t->caplat ? t->caplat * 2 : 4096;
				t->lat = realloc(t->lat, t->caplat * sizeof(double));
				if (t->lat == NULL)
					die("%s", "out of memory");
			}
			t->lat[t->nlat++] = lat;
		}
		next_message(c);
		return 0;
	}
	case S_QUIT:
		conn_done(c);
		return -1;
	case S_IDLE:
		/* a server-initiated reply (timeout 421) */
		record_err("idle", text);
		atomic_fetch_add(&g_idle_lost, 1);
		atomic_fetch_sub(&g_idle_ready, 1);
		conn_close(c);
		c->t->live--;
		return -1;
	default:
		conn_fail(c, "unexpected reply", text);
		return -1;
	}
msgfail:
	/* The message failed: count it, drop the rest of the pipeline by
	 * closing the session politely and opening a new one. */
	c->have_msg = 0;
	atomic_fetch_add(&g_msgerr, 1);
	c->expect_after = 0;
	/* the rest of the pipeline is unknown: drop the session, open another */
	conn_done(c);
	return -1;
}

/* Parse complete replies out of c->in. */
static int
parse_replies(struct conn *c)
{
	size_t start = 0;

	for (;;) {
		size_t pos = start;
		int complete = 0;

		while (pos < c->inlen) {
			char *nl = memchr(c->in + pos, '\n', c->inlen - pos);
			size_t linelen;

			if (nl == NULL)
				break;
			linelen = (size_t)(nl - (c->in + pos)) + 1;
			if (linelen < 4 || c->in[pos + 3] != '-') {
				pos += linelen;
				complete = 1;
				break;
			}
			pos += linelen;
		}
		if (!complete)
			break;
		{
			char save = c->in[pos - 1];
			int code = atoi(c->in + start);
			int r;
			char text[INBUF + 1];
			size_t len = pos - start;

			memcpy(text, c->in + start, len);
			text[len] = '\0';
			(void)save;
			int was_starttls = (c->st == S_STARTTLS);

			start = pos;
			r = on_reply(c, code, text);
			if (r < 0)
				return -1;
			if (was_starttls) {
				/* on_reply dropped the plaintext left in c->in
				 * (injection defence); the handshake may even
				 * have completed already. */
				start = 0;
				break;
			}
		}
	}
	if (start > 0) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	if (c->inlen == sizeof(c->in)) {
		conn_fail(c, "reply", "too long");
		return -1;
	}
	return 0;
}

static void
conn_event(struct conn *c, uint32_t ev)
{
	if (c->st == S_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			conn_fail(c, "connect", strerror(err));
			return;
		}
		set_out_interest(c, 0);
		if (O.mode == M_IMPLICIT) {
			if (tls_begin(c) < 0) {
				conn_fail(c, "tls", "SSL_new");
				return;
			}
		} else {
			c->st = S_GREET;
			return;
		}
	}
	if (c->st == S_TLS_HS) {
		if (tls_step(c) < 0)
			return;
		if (c->st == S_TLS_HS)
			return;
	}
	for (int rounds = 0; rounds < 64; rounds++) {
		int progressed = 0;

		if (c->outlen > c->outoff || c->body_pending) {
			int r = flush_out(c);
			if (r < 0) {
				conn_fail(c, "write", strerror(errno));
				return;
			}
			set_out_interest(c, r == 0);
			if (r == 0)
				return;
		}
		/* read what is there */
		for (;;) {
			ssize_t n;

			if (c->inlen >= sizeof(c->in))
				break;
			if (c->tls) {
				int r = SSL_read(c->ssl, c->in + c->inlen,
				    (int)(sizeof(c->in) - c->inlen));
				if (r <= 0) {
					int e = SSL_get_error(c->ssl, r);
					if (e == SSL_ERROR_WANT_READ ||
					    e == SSL_ERROR_WANT_WRITE)
						break;
					ERR_clear_error();
					goto closed;
				}
				n = r;
			} else {
				n = recv(c->fd, c->in + c->inlen,
				    sizeof(c->in) - c->inlen, 0);
				if (n == 0)
					goto closed;
				if (n < 0) {
					if (errno == EAGAIN || errno == EINTR)
						break;
					goto closed;
				}
			}
			c->inlen += (size_t)n;
			progressed = 1;
		}
		if (progressed) {
			enum state before = c->st;
			if (parse_replies(c) < 0)
				return;
			if (c->st == S_TLS_HS) {
				if (before != S_TLS_HS)
					return;
			}
		}
		if (!(c->outlen > c->outoff))
			break;
	}
	(void)ev;
	/* output left after the round limit: wait for writability */
	set_out_interest(c, c->outlen > c->outoff || c->body_pending);
	return;
closed:
	if (c->st == S_QUIT) {
		conn_done(c);
		return;
	}
	if (c->st == S_IDLE) {
		record_err("idle", "connection closed by server");
		atomic_fetch_add(&g_idle_lost, 1);
		atomic_fetch_sub(&g_idle_ready, 1);
		conn_close(c);
		c->t->live--;
		return;
	}
	conn_fail(c, "read", c->inlen ? c->in : "connection closed");
}

/* epoll timeout in ms: up to 100, less when a paced message is due. */
static int
paced_timeout(struct thr *t, double tnow)
{
	double first = tnow + 0.1;
	int ms;

	if (t->nparked == 0)
		return 100;
	for (int i = 0; i < t->nconn; i++)
		if (t->c[i].st == S_PACED && t->c[i].due < first)
			first = t->c[i].due;
	ms = (int)((first - tnow) * 1000.0 + 0.999);
	return ms < 0 ? 0 : ms > 100 ? 100 : ms;
}

/* Starts every paced message whose time has come; at the end of the run
 * a waiting connection says QUIT instead. */
static void
paced_resume(struct thr *t, double tnow)
{
	for (int i = 0; i < t->nconn && t->nparked > 0; i++) {
		struct conn *c = &t->c[i];

		if (c->st != S_PACED)
			continue;
		if (c->due > tnow && !g_stop && tnow < g_deadline)
			continue;
		t->nparked--;
		if (g_stop || tnow >= g_deadline) {
			c->st = S_QUIT;
			queue_cmd(c, "%s", "QUIT\r\n");
		} else
			send_mail(c);
		conn_event(c, EPOLLOUT);
	}
}

static void *
thr_main(void *arg)
{
	struct thr *t = arg;
	struct epoll_event evs[256];
	double tev;
	int quitting = 0;
	double idle_end = 0;

	cur_thr = t;
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->live = t->nconn;
	for (int i = 0; i < t->nconn; i++) {
		t->c[i].t = t;
		t->c[i].fd = -1;
		t->c[i].idx = (uint32_t)i;
		t->c[i].st = S_DEAD;
	}
	t->next = 0;
	while (t->next < t->nconn && (!O.idle || t->pending < IDLE_RAMP)) {
		struct conn *c = &t->c[t->next++];
		if (O.idle) {
			c->setting_up = 1;
			t->pending++;
		}
		conn_start(c);
	}
	while (t->live > 0) {
		double tnow = now();
		int n;

		if (tnow > g_deadline + (O.idle ? 30 : 5)) {
			/* hard stop: abandon what is left */
			for (int i = 0; i < t->nconn; i++)
				if (t->c[i].st != S_DEAD) {
					if (t->c[i].have_msg)
						atomic_fetch_add(&g_msgerr, 1);
					if (!O.idle || t->c[i].st != S_IDLE)
						atomic_fetch_add(&g_unfinished, 1);
					if (!O.idle || t->c[i].st != S_IDLE) {
						char st[64];
						snprintf(st, sizeof(st), "state %d in=%zu out=%zu/%zu",
						    t->c[i].st, t->c[i].inlen, t->c[i].outoff, t->c[i].outlen);
						record_err("timeout: run time limit reached", st);
					}
					t->c[i].have_msg = 0;
					conn_close(&t->c[i]);
				}
			break;
		}
		if (O.idle && !quitting && (g_stop || tnow >= g_deadline)) {
			/* hold time over: QUIT everything still open */
			quitting = 1;
			idle_end = tnow;
			if (t->next < t->nconn) {
				record_err("idle", "not started by end");
				atomic_fetch_add(&g_connerr, t->nconn - t->next);
				t->live -= t->nconn - t->next;
				t->next = t->nconn;
			}
			for (int i = 0; i < t->nconn; i++) {
				struct conn *c = &t->c[i];
				if (c->st == S_DEAD)
					continue;
				if (c->st != S_IDLE) {
					char st[64];
					snprintf(st, sizeof(st), "not established by end (state %d)", c->st);
					record_err("idle", st);
					atomic_fetch_add(&g_connerr, 1);
					conn_close(c);
					t->live--;
					continue;
				}
				c->st = S_QUIT;
				queue_cmd(c, "%s", "QUIT\r\n");
				conn_event(c, EPOLLOUT);
			}
			continue;
		}
		(void)idle_end;
		n = epoll_wait(t->ep, evs, 256, paced_timeout(t, tnow));
		/* The latency is the server's: a reply to the final dot is
		 * stamped when epoll reports it, and those connections are
		 * served first, not after handshakes that became ready in
		 * the same batch (each ~0.5 ms of this thread's CPU). */
		tev = now();
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < n; i++) {
				struct conn *c = &t->c[(uint32_t)evs[i].data.u64];
				if (evs[i].events == 0 || c->st == S_DEAD ||
				    c->fd < 0 ||
				    c->gen != (uint32_t)(evs[i].data.u64 >> 32))
					continue;
				if (pass == 0 && (c->st != S_DOT ||
				    c->body_pending))
					continue;
				c->t_ready = tev;
				conn_event(c, evs[i].events);
				evs[i].events = 0;
			}
		}
		if (t->nparked > 0)
			paced_resume(t, now());
	}
	close(t->ep);
	return NULL;
}

static int
dblcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
parse_addr(const char *s, int port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else
		return -1;
	return is_loopback(ss) ? 0 : -1;
}

/* "127.1.0.1+250": 250 consecutive IPv4 addresses; or a comma list. */
static void
parse_sources(const char *spec)
{
	char *dup = strdup(spec), *save = NULL, *tok;
	int cap = 0;

	for (tok = strtok_r(dup, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		char *plus = strchr(tok, '+');
		long count = 1;
		struct in_addr a;

		if (plus) {
			*plus = '\0';
			count = strtol(plus + 1, NULL, 10);
			if (count < 1 || count > 65536)
				die("bad source count in %s", spec);
		}
		if (inet_pton(AF_INET, tok, &a) != 1)
			die("bad source address %s", tok);
		for (long i = 0; i < count; i++) {
			struct sockaddr_in *s4;
			uint32_t h = ntohl(a.s_addr) + (uint32_t)i;

			if (O.nsrc == cap) {
				cap = cap ? cap * 2 : 64;
				O.src = realloc(O.src, (size_t)cap * sizeof(*O.src));
			}
			memset(&O.src[O.nsrc], 0, sizeof(O.src[0]));
			s4 = (struct sockaddr_in *)&O.src[O.nsrc];
			s4->sin_family = AF_INET;
			s4->sin_addr.s_addr = htonl(h);
			if (!is_loopback(&O.src[O.nsrc]))
				die("source %s leaves 127.0.0.0/8", tok);
			O.nsrc++;
		}
	}
	free(dup);
}

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen -p PORT [-H 127.0.0.1] [-m plain|starttls|implicit]\n"
	    "  [-c CONNS] [-n MSGS] [-k PER_CONN] [-s SIZE] [-u USER]\n"
	    "  [-P PASSFILE | env LOADGEN_PASSWORD] [-r] [-t SECONDS]\n"
	    "  [-T THREADS] [-S 127.1.0.1+N] [-R RCPT] [-I] [-L RATE] [-v]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int ch;
	const char *passfile = NULL, *srcspec = NULL;
	struct thr *thr;
	struct rlimit rl;

	O.host = "127.0.0.1";
	O.mode = M_STARTTLS;
	O.conns = 20;
	O.msgs = 1000;
	O.per_conn = 1;
	O.size = 4096;
	O.timeout = 60;
	O.threads = 1;
	O.rcpt = "sink@discard.test";
	while ((ch = getopt(argc, argv, "H:p:m:c:n:k:s:u:P:rt:T:S:R:IL:v")) != -1) {
		switch (ch) {
		case 'H': O.host = optarg; break;
		case 'p': O.port = atoi(optarg); break;
		case 'm':
			if (!strcmp(optarg, "plain")) O.mode = M_PLAIN;
			else if (!strcmp(optarg, "starttls")) O.mode = M_STARTTLS;
			else if (!strcmp(optarg, "implicit")) O.mode = M_IMPLICIT;
			else usage();
			break;
		case 'c': O.conns = atoi(optarg); break;
		case 'n': O.msgs = atol(optarg); break;
		case 'k': O.per_conn = atoi(optarg); break;
		case 's': O.size = (size_t)atol(optarg); break;
		case 'u': O.user = optarg; break;
		case 'P': passfile = optarg; break;
		case 'r': O.resume = 1; break;
		case 't': O.timeout = atof(optarg); break;
		case 'T': O.threads = atoi(optarg); break;
		case 'S': srcspec = optarg; break;
		case 'R': O.rcpt = optarg; break;
		case 'I': O.idle = 1; break;
		case 'L': O.rate = atof(optarg); break;
		case 'v': O.verbose = 1; break;
		default: usage();
		}
	}
	if (O.port <= 0 || O.port > 65535 || O.conns < 1 || O.conns > 100000 ||
	    O.msgs < 0 || O.msgs > 10000000 || O.per_conn < 1 ||
	    O.threads < 1 || O.threads > 64 || O.timeout <= 0 ||
	    O.timeout > 3600 || O.size > 64 * 1024 * 1024 || O.rate < 0 ||
	    O.rate > 1e6)
		usage();
	if (parse_addr(O.host, O.port, &O.dst, &O.dstlen) < 0)
		die("target %s is not a loopback address", O.host);
	if (srcspec)
		parse_sources(srcspec);
	if (O.user) {
		const char *env = getenv("LOADGEN_PASSWORD");
		unsigned char raw[600];
		size_t ul = strlen(O.user), pl;

		if (passfile) {
			FILE *f = fopen(passfile, "r");
			if (f == NULL || fgets(O.pass, sizeof(O.pass), f) == NULL)
				die("cannot read password file %s", passfile);
			fclose(f);
			O.pass[strcspn(O.pass, "\r\n")] = '\0';
		} else if (env) {
			snprintf(O.pass, sizeof(O.pass), "%s", env);
		} else
			die("%s", "-u needs -P FILE or LOADGEN_PASSWORD");
		pl = strlen(O.pass);
		if (ul + pl + 2 > sizeof(raw))
			die("%s", "credentials too long");
		raw[0] = '\0';
		memcpy(raw + 1, O.user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, O.pass, pl);
		memcpy(g_authcmd, "AUTH PLAIN ", 11);
		b64(raw, ul + pl + 2, g_authcmd + 11);
		strcat(g_authcmd, "\r\n");
	}
	g_mailcmdlen = (size_t)snprintf(g_mailcmd, sizeof(g_mailcmd),
	    "MAIL FROM:<%s> SIZE=%zu\r\nRCPT TO:<%s>\r\nDATA\r\n",
	    O.user ? O.user : "loadgen@localhost", O.size + 256, O.rcpt);
	/* the message: headers + body lines of 76 chars, exact size S */
	{
		const char *from = O.user ? O.user : "loadgen@localhost";
		size_t cap = O.size + 1024, len;
		char *b = malloc(cap);

		len = (size_t)snprintf(b, cap,
		    "From: <%s>\r\nTo: <%s>\r\nSubject: outpost benchmark\r\n"
		    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
		    "Message-ID: <bench@loadgen.localhost>\r\n\r\n",
		    from, O.rcpt);
		while (len + 80 < O.size) {
			for (int i = 0; i < 76; i++)
				b[len + i] = (char)('a' + (len + i) % 26);
			b[len + 76] = '\r';
			b[len + 77] = '\n';
			len += 78;
		}
		memcpy(b + len, ".\r\n", 3);
		g_body = b;
		g_bodylen = len + 3;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	g_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(g_ctx, new_session_cb);

	if (O.threads > O.conns)
		O.threads = O.conns;
	thr = calloc((size_t)O.threads, sizeof(*thr));
	g_t0 = now();
	g_deadline = g_t0 + O.timeout;
	for (int i = 0; i < O.threads; i++) {
		thr[i].id = i;
		thr[i].nconn = O.conns / O.threads + (i < O.conns % O.threads);
		thr[i].c = calloc((size_t)thr[i].nconn, sizeof(struct conn));
		if (thr[i].c == NULL)
			die("%s", "out of memory");
	}
	if (O.idle) {
		/* in idle mode the hold time starts once all are up */
		g_deadline = g_t0 + 3600;
	}
	for (int i = 0; i < O.threads; i++)
		pthread_create(&thr[i].tid, NULL, thr_main, &thr[i]);
	if (O.idle) {
		double t_up = now() + 120;	/* at most 2 min to establish */
		long ready = 0, lost = 0, cerr = 0;

		while (now() < t_up && !g_stop) {
			ready = atomic_load(&g_idle_ready);
			lost = atomic_load(&g_idle_lost);
			cerr = atomic_load(&g_connerr);
			if (ready + lost + cerr >= O.conns)
				break;
			usleep(20000);
		}
		printf("READY conns=%ld errors=%ld setup_s=%.2f\n",
		    atomic_load(&g_idle_ready),
		    atomic_load(&g_connerr) + atomic_load(&g_idle_lost),
		    now() - g_t0);
		fflush(stdout);
		g_deadline = now() + O.timeout;
	}
	for (int i = 0; i < O.threads; i++)
		pthread_join(thr[i].tid, NULL);
	{
		double el = now() - g_t0;
		size_t total = 0, k = 0;
		double *all, p50 = 0, p90 = 0, p99 = 0, mx = 0;
		long ok = atomic_load(&g_ok);
		long errs = atomic_load(&g_msgerr) + atomic_load(&g_connerr) +
		    atomic_load(&g_idle_lost);

		for (int i = 0; i < O.threads; i++)
			total += thr[i].nlat;
		all = malloc((total + 1) * sizeof(double));
		for (int i = 0; i < O.threads; i++) {
			memcpy(all + k, thr[i].lat, thr[i].nlat * sizeof(double));
			k += thr[i].nlat;
		}
		qsort(all, total, sizeof(double), dblcmp);
		if (total) {
			p50 = all[(size_t)(0.50 * (double)(total - 1))];
			p90 = all[(size_t)(0.90 * (double)(total - 1))];
			p99 = all[(size_t)(0.99 * (double)(total - 1))];
			mx = all[total - 1];
		}
		if (O.idle)
			printf("idle held=%ld lost=%ld errors=%ld conns=%ld "
			    "elapsed=%.2f",
			    atomic_load(&g_idle_ready), atomic_load(&g_idle_lost),
			    errs, atomic_load(&g_conns), el);
		else
			printf("msgs/s=%.1f ok=%ld errors=%ld conns=%ld "
			    "resumed=%ld unfinished=%ld elapsed=%.2f p50=%.2fms "
			    "p90=%.2fms p99=%.2fms max=%.2fms",
			    el > 0 ? (double)ok / el : 0, ok, errs,
			    atomic_load(&g_conns), atomic_load(&g_resumed),
			    atomic_load(&g_unfinished), el,
			    p50 * 1e3, p90 * 1e3, p99 * 1e3, mx * 1e3);
		if (O.rate > 0)
			printf(" offered=%.1f", O.rate);
		printf(" errs=\"");
		for (int i = 0; i < g_nerrs; i++)
			printf("%s%s", i ? " | " : "", g_errs[i]);
		printf("\"\n");
		return errs ? 1 : 0;
	}
}
