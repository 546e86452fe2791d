/*
 * sink — a discard SMTP server for the benchmark: the load generator's
 * ceiling (no disk, accepts any AUTH) and the outbound destination of the
 * private Postfix so nothing leaves the machine.
 *
 *   sink -l 127.0.0.1:PORT [-m plain|starttls|implicit] [-C CERT -K KEY]
 *        [-T THREADS] [-t SECONDS]
 *
 * Listens on loopback only; exits after -t seconds (default 900) or on
 * SIGTERM/SIGINT.  Prints "sink: messages=N connections=N" at exit, and
 * the same line (counts so far) on SIGUSR1: bench/run reads it before and
 * after each scenario-5 run to check what arrived and over how many
 * connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { M_PLAIN, M_STARTTLS, M_IMPLICIT };

struct sconn {
	int	 fd;
	SSL	*ssl;
	int	 tls;
	int	 hs;		/* TLS handshake in progress */
	int	 data;		/* in DATA: terminator match state 0..5 */
	int	 indata;
	int	 quit;
	char	 in[8192];
	size_t	 inlen;
	char	 out[4096];
	size_t	 outlen;
};

static enum mode g_mode = M_PLAIN;
static SSL_CTX *g_ctx;
static struct sockaddr_in g_addr;
static volatile sig_atomic_t g_stop, g_report;
static atomic_long g_msgs, g_conns;
static const char *g_name = "sink.localhost";

static void
on_report(int s)
{
	(void)s;
	g_report = 1;
}

static void
on_signal(int s)
{
	(void)s;
	g_stop = 1;
}

static void
reply(struct sconn *c, const char *s)
{
	size_t l = strlen(s);

	if (c->outlen + l <= sizeof(c->out)) {
		memcpy(c->out + c->outlen, s, l);
		c->outlen += l;
	}
}

static int
flush(struct sconn *c)
{
	size_t off = 0;

	while (off < c->outlen) {
		ssize_t n;
		if (c->tls) {
			int r = SSL_write(c->ssl, c->out + off, (int)(c->outlen - off));
			if (r <= 0)
				return -1;	/* replies are tiny: treat as fatal */
			n = r;
		} else {
			n = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
		}
		off += (size_t)n;
	}
	c->outlen = 0;
	return 0;
}

/* Consume data bytes; returns bytes used, sets c->indata = 0 at the end. */
static size_t
eat_data(struct sconn *c, const char *p, size_t n)
{
	int m = c->data;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '\r')
			m = (m == 3) ? 4 : 1;
		else if (ch == '\n')
			m = (m == 1) ? 2 : (m == 4) ? 5 : 0;
		else if (ch == '.')
			m = (m == 2) ? 3 : 0;
		else
			m = 0;
		if (m == 5) {
			c->indata = 0;
			c->data = 0;
			atomic_fetch_add(&g_msgs, 1);
			reply(c, "250 2.0.0 OK discarded\r\n");
			return i + 1;
		}
	}
	c->data = m;
	return n;
}

/* Returns -1 to close, 1 to start TLS now. */
static int
command(struct sconn *c, char *line)
{
	if (!strncasecmp(line, "EHLO", 4)) {
		char buf[512];
		snprintf(buf, sizeof(buf), "250-%s\r\n250-PIPELINING\r\n"
		    "250-SIZE 104857600\r\n250-8BITMIME\r\n%s%s"
		    "250 ENHANCEDSTATUSCODES\r\n", g_name,
		    (g_mode == M_STARTTLS && !c->tls) ? "250-STARTTLS\r\n" : "",
		    "250-AUTH PLAIN LOGIN\r\n");
		reply(c, buf);
	} else if (!strncasecmp(line, "HELO", 4))
		reply(c, "250 sink\r\n");
	else if (!strncasecmp(line, "STARTTLS", 8) && g_mode == M_STARTTLS &&
	    !c->tls) {
		reply(c, "220 2.0.0 go ahead\r\n");
		return 1;
	} else if (!strncasecmp(line, "AUTH", 4))
		reply(c, "235 2.7.0 Accepted\r\n");
	else if (!strncasecmp(line, "MAIL", 4) || !strncasecmp(line, "RCPT", 4) ||
	    !strncasecmp(line, "RSET", 4) || !strncasecmp(line, "NOOP", 4))
		reply(c, "250 2.1.0 OK\r\n");
	else if (!strncasecmp(line, "DATA", 4)) {
		reply(c, "354 go ahead\r\n");
		c->indata = 1;
		c->data = 2;
	} else if (!strncasecmp(line, "QUIT", 4)) {
		reply(c, "221 2.0.0 bye\r\n");
		c->quit = 1;
		return -1;
	} else
		reply(c, "502 5.5.2 not implemented\r\n");
	return 0;
}

static int
process(struct sconn *c)
{
	size_t pos = 0;

	while (pos < c->inlen) {
		if (c->indata) {
			pos += eat_data(c, c->in + pos, c->inlen - pos);
			continue;
		}
		char *nl = memchr(c->in + pos, '\n', c->inlen - pos);
		if (nl == NULL)
			break;
		*nl = '\0';
		int r = command(c, c->in + pos);
		pos = (size_t)(nl - c->in) + 1;
		if (r < 0) {
			flush(c);
			return -1;
		}
		if (r == 1) {
			if (flush(c) < 0)
				return -1;
			c->inlen = 0;	/* discard pipelined plaintext */
			c->ssl = SSL_new(g_ctx);
			SSL_set_fd(c->ssl, c->fd);
			c->hs = 1;
			return 0;
		}
	}
	memmove(c->in, c->in + pos, c->inlen - pos);
	c->inlen -= pos;
	if (c->inlen == sizeof(c->in))
		return -1;
	return flush(c);
}

static void
sclose(int ep, struct sconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

static void
handle(int ep, struct sconn *c)
{
	if (c->hs) {
		int r = SSL_accept(c->ssl);
		if (r == 1) {
			c->hs = 0;
			c->tls = 1;
			if (g_mode == M_IMPLICIT) {
				reply(c, "220 sink ESMTP\r\n");
				if (flush(c) < 0)
					goto bye;
			}
		} else {
			int e = SSL_get_error(c->ssl, r);
			struct epoll_event ev = { .data.ptr = c };
			if (e == SSL_ERROR_WANT_READ)
				ev.events = EPOLLIN;
			else if (e == SSL_ERROR_WANT_WRITE)
				ev.events = EPOLLIN | EPOLLOUT;
			else
				goto bye;
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		{
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	for (;;) {
		ssize_t n;
		if (c->tls) {
			int r = SSL_read(c->ssl, c->in + c->inlen,
			    (int)(sizeof(c->in) - c->inlen));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				goto bye;
			}
			n = r;
		} else {
			n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
			if (n == 0)
				goto bye;
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				goto bye;
			}
		}
		c->inlen += (size_t)n;
		if (process(c) < 0)
			goto bye;
		if (c->hs) {
			handle(ep, c);
			return;
		}
	}
bye:
	ERR_clear_error();
	sclose(ep, c);
}

static void *
worker(void *arg)
{
	int ls, ep, one = 1;
	struct epoll_event ev, evs[128];
	static struct sconn lmark;

	(void)arg;
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&g_addr, sizeof(g_addr)) < 0 ||
	    listen(ls, 4096) < 0) {
		perror("sink: bind/listen");
		exit(1);
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = &lmark;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	while (!g_stop) {
		int n = epoll_wait(ep, evs, 128, 200);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &lmark) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					    sizeof(one));
					struct sconn *c = calloc(1, sizeof(*c));
					c->fd = fd;
					atomic_fetch_add(&g_conns, 1);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
					if (g_mode == M_IMPLICIT) {
						c->ssl = SSL_new(g_ctx);
						SSL_set_fd(c->ssl, fd);
						c->hs = 1;
					} else {
						reply(c, "220 sink ESMTP\r\n");
						if (flush(c) < 0)
							sclose(ep, c);
					}
				}
				continue;
			}
			handle(ep, evs[i].data.ptr);
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *listen_at = NULL, *cert = NULL, *key = NULL;
	int ch, nthr = 2;
	double limit = 900;
	pthread_t tid[64];
	struct rlimit rl;

	while ((ch = getopt(argc, argv, "l:m:C:K:T:t:")) != -1) {
		switch (ch) {
		case 'l': listen_at = optarg; break;
		case 'm':
			g_mode = !strcmp(optarg, "starttls") ? M_STARTTLS :
			    !strcmp(optarg, "implicit") ? M_IMPLICIT : M_PLAIN;
			break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'T': nthr = atoi(optarg); break;
		case 't': limit = atof(optarg); break;
		default:
			fprintf(stderr, "usage: sink -l 127.0.0.1:PORT [-m plain|"
			    "starttls|implicit] [-C cert -K key] [-T n] [-t s]\n");
			return 2;
		}
	}
	if (listen_at == NULL || nthr < 1 || nthr > 64)
		return 2;
	{
		char host[64];
		const char *colon = strrchr(listen_at, ':');
		if (colon == NULL || (size_t)(colon - listen_at) >= sizeof(host))
			return 2;
		memcpy(host, listen_at, (size_t)(colon - listen_at));
		host[colon - listen_at] = '\0';
		g_addr.sin_family = AF_INET;
		g_addr.sin_port = htons((unsigned short)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1 ||
		    (ntohl(g_addr.sin_addr.s_addr) >> 24) != 127) {
			fprintf(stderr, "sink: listen address must be 127.x\n");
			return 2;
		}
	}
	if (g_mode != M_PLAIN) {
		g_ctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
		SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
		if (cert == NULL || key == NULL ||
		    SSL_CTX_use_certificate_chain_file(g_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(g_ctx, key, SSL_FILETYPE_PEM) != 1) {
			fprintf(stderr, "sink: TLS needs -C cert -K key\n");
			return 2;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGALRM, on_signal);
	alarm((unsigned)limit);
	signal(SIGUSR1, on_report);
	for (int i = 0; i < nthr; i++)
		pthread_create(&tid[i], NULL, worker, NULL);
	/* the workers stop on g_stop (alarm or signal); meanwhile answer
	 * SIGUSR1 with the counts so far (one line, flushed) */
	while (!g_stop) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (g_report) {
			g_report = 0;
			fprintf(stderr, "sink: messages=%ld connections=%ld\n",
			    atomic_load(&g_msgs), atomic_load(&g_conns));
			fflush(stderr);
		}
	}
	for (int i = 0; i < nthr; i++)
		pthread_join(tid[i], NULL);
	fprintf(stderr, "sink: messages=%ld connections=%ld\n",
	    atomic_load(&g_msgs), atomic_load(&g_conns));
	return 0;
}
