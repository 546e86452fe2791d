/*
 * server.c — listeners, worker threads, connection limits, TLS context
 * swaps.  See server.h.
 *
 * The listening sockets are bound once by the main thread and shared by
 * every worker's evconnlistener, so the kernel hands each new connection
 * to whichever loop is free.  A connection over the per-address or
 * server-wide limit gets its 421 straight from the accept callback
 * (one non-blocking send) and is closed: it never costs a session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"
#include "util/loopcall.h"

#define CONN_BUCKETS 4096

struct conn_count {
	struct conn_count *next;
	unsigned	 n;
	char		 ip[64];
};

static unsigned
conn_hash(const char *ip)
{
	unsigned h = 2166136261u;	/* FNV-1a */

	while (*ip)
		h = (h ^ (unsigned char)*ip++) * 16777619u;
	return h % CONN_BUCKETS;
}

int
smtp_conn_acquire(struct smtp_server *srv, const char *ip)
{
	const struct config *cfg = srv->cfg;
	struct conn_count *c;
	unsigned h = conn_hash(ip);
	int r = 0;

	pthread_mutex_lock(&srv->conn_lock);
	if (srv->conn_total >= (unsigned)cfg->max_connections) {
		r = 2;
		goto out;
	}
	for (c = srv->conn_table[h]; c != NULL; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			break;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			r = 2;
			goto out;
		}
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
		c->next = srv->conn_table[h];
		srv->conn_table[h] = c;
	}
	if (c->n >= (unsigned)cfg->max_connections_per_ip) {
		r = 1;
		goto out;
	}
	c->n++;
	srv->conn_total++;
out:
	pthread_mutex_unlock(&srv->conn_lock);
	return r;
}

void
smtp_conn_release(struct smtp_server *srv, const char *ip)
{
	struct conn_count *c, **pp;
	unsigned h = conn_hash(ip);

	pthread_mutex_lock(&srv->conn_lock);
	for (pp = &srv->conn_table[h]; (c = *pp) != NULL; pp = &c->next)
		if (strcmp(c->ip, ip) == 0)
			break;
	if (c != NULL && c->n > 0) {
		c->n--;
		srv->conn_total--;
		if (c->n == 0) {
			*pp = c->next;
			free(c);
		}
	}
	pthread_mutex_unlock(&srv->conn_lock);
}

SSL_CTX *
smtp_server_tls_ctx(struct smtp_server *srv)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&srv->ctx_lock);
	ctx = srv->tls_ctx;
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&srv->ctx_lock);
	return ctx;
}

void
smtp_server_set_tls_ctx(struct smtp_server *srv, SSL_CTX *ctx)
{
	SSL_CTX *old;

	pthread_mutex_lock(&srv->ctx_lock);
	old = srv->tls_ctx;
	srv->tls_ctx = ctx;
	pthread_mutex_unlock(&srv->ctx_lock);
	if (old != NULL)
		SSL_CTX_free(old);
}

static void
ip_of(const struct sockaddr *sa, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, buf, len);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			evutil_inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12],
			    buf, len);
		else
			evutil_inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
	}
}

static void
server_refuse(evutil_socket_t fd, const char *line)
{
	/* best effort: a full socket buffer just loses the courtesy line */
	if (send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* nothing more to do for a refused client */
	}
	close(fd);
}

static void
server_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_worker *w = arg;
	const struct smtp_listener *l = NULL;
	char ip[64];
	int i, r;

	for (i = 0; i < w->srv->nlisteners; i++)
		if (w->lev[i] == lev)
			l = &w->srv->listeners[i];
	if (l == NULL || w->stopping) {
		close(fd);
		return;
	}
	ip_of(sa, ip, sizeof(ip));
	r = smtp_conn_acquire(w->srv, ip);
	if (r == 1) {
		log_info("connect from [%s] refused: too many connections from this address",
		    ip);
		/* implicit TLS clients cannot read a plaintext reply: just close */
		if (l->conf->tls == LISTENER_TLS_IMPLICIT)
			close(fd);
		else
			server_refuse(fd, "421 4.7.0 Too many connections from "
			    "your address, try again later\r\n");
		return;
	}
	if (r == 2) {
		log_warn("connect from [%s] refused: server connection limit reached",
		    ip);
		if (l->conf->tls == LISTENER_TLS_IMPLICIT)
			close(fd);
		else
			server_refuse(fd, "421 4.3.2 Too many connections, try "
			    "again later\r\n");
		return;
	}
	smtp_session_start(w, l, fd, sa, salen);
}

static void
server_accept_error(struct evconnlistener *lev, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	/* EMFILE/ENFILE: out of descriptors; libevent retries on the next
	 * readiness, which is what we want. */
	log_warn("accept failed: %s", evutil_socket_error_to_string(e));
}

/*
 * "127.0.0.1:2587", "[::1]:587", "*:587" (all addresses, dual stack).
 */
static int
listen_addr_parse(const char *s, struct sockaddr_storage *ss, int *sslen)
{
	char buf[128];

	if (strncmp(s, "*:", 2) == 0) {
		if (snprintf(buf, sizeof(buf), "[::]:%s", s + 2) >= (int)sizeof(buf))
			return -1;
		s = buf;
	}
	return evutil_parse_sockaddr_port(s, (struct sockaddr *)ss, sslen);
}

int
smtp_server_bind(struct smtp_server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	int i, one = 1, zero = 0;

	for (i = 0; i < cfg->nlisteners; i++) {
		struct smtp_listener *l = &srv->listeners[i];
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		evutil_socket_t fd;

		l->conf = &cfg->listeners[i];
		l->fd = -1;
		snprintf(l->addr, sizeof(l->addr), "%s", l->conf->listen);
		memset(&ss, 0, sizeof(ss));
		if (listen_addr_parse(l->conf->listen, &ss, &sslen) != 0) {
			snprintf(err, errlen, "[listener %s] listen: cannot parse \"%s\"",
			    l->conf->name, l->conf->listen);
			return -1;
		}
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6 && strncmp(l->conf->listen, "*:", 2) == 0)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 ||
		    listen(fd, 1024) != 0) {
			int e = errno;
			close(fd);
			errno = e;
			goto fail;
		}
		l->fd = fd;
		srv->nlisteners = i + 1;
		continue;
fail:
		snprintf(err, errlen, "cannot listen on %s ([listener %s]): %s",
		    l->conf->listen, l->conf->name, strerror(errno));
		return -1;
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	struct smtp_worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

int
smtp_server_start(struct smtp_server *srv, int nworkers, char *err,
    size_t errlen)
{
	int i, j;

	if ((srv->workers = calloc((size_t)nworkers, sizeof(*srv->workers))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->nworkers = nworkers;
	for (i = 0; i < nworkers; i++) {
		struct smtp_worker *w = &srv->workers[i];

		w->srv = srv;
		w->index = i;
		if ((w->base = event_base_new()) == NULL) {
			snprintf(err, errlen, "cannot create an event loop");
			return -1;
		}
		for (j = 0; j < srv->nlisteners; j++) {
			w->lev[j] = evconnlistener_new(w->base, server_accept, w,
			    0, -1, srv->listeners[j].fd);
			if (w->lev[j] == NULL) {
				snprintf(err, errlen, "cannot watch %s",
				    srv->listeners[j].addr);
				return -1;
			}
			evconnlistener_set_error_cb(w->lev[j], server_accept_error);
		}
	}
	for (i = 0; i < nworkers; i++)
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main,
		    &srv->workers[i]) != 0) {
			snprintf(err, errlen, "cannot start worker threads");
			return -1;
		}
	return 0;
}

static void
worker_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_worker *w = arg;

	(void)fd;
	(void)what;
	while (w->sessions != NULL)
		smtp_session_free(w->sessions);
	event_base_loopexit(w->base, NULL);
}

struct worker_stop_req {
	struct smtp_worker *w;
	int		 grace;
};

/* Runs on the worker's thread. */
static void
worker_stop(void *arg)
{
	struct worker_stop_req *req = arg;
	struct smtp_worker *w = req->w;
	struct smtp_session *s, *next;
	struct timeval tv = { req->grace, 0 };
	int i;

	free(req);
	w->stopping = 1;
	for (i = 0; i < w->srv->nlisteners; i++)
		if (w->lev[i] != NULL) {
			evconnlistener_free(w->lev[i]);
			w->lev[i] = NULL;
		}
	for (s = w->sessions; s != NULL; s = next) {
		next = s->next;
		smtp_session_drain(s);
	}
	if (w->nsessions == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	w->grace_ev = evtimer_new(w->base, worker_grace_over, w);
	if (w->grace_ev != NULL)
		evtimer_add(w->grace_ev, &tv);
}

void
smtp_server_stop(struct smtp_server *srv, int grace_secs)
{
	int i;

	for (i = 0; i < srv->nworkers; i++) {
		struct worker_stop_req *req = malloc(sizeof(*req));

		if (req == NULL || (req->w = &srv->workers[i], req->grace =
		    grace_secs, loopcall(srv->workers[i].base, worker_stop,
		    req)) != 0) {
			free(req);
			event_base_loopbreak(srv->workers[i].base);
		}
	}
	for (i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i].thread, NULL);
}

void
smtp_server_run_pending(struct smtp_server *srv)
{
	int i;

	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].base != NULL)
			event_base_loop(srv->workers[i].base, EVLOOP_NONBLOCK);
}

void
smtp_server_free(struct smtp_server *srv)
{
	int i;
	unsigned b;

	for (i = 0; i < srv->nworkers; i++) {
		struct smtp_worker *w = &srv->workers[i];
		int j;

		while (w->sessions != NULL)
			smtp_session_free(w->sessions);
		for (j = 0; j < srv->nlisteners; j++)
			if (w->lev[j] != NULL)
				evconnlistener_free(w->lev[j]);
		if (w->grace_ev != NULL)
			event_free(w->grace_ev);
		if (w->base != NULL)
			event_base_free(w->base);
	}
	free(srv->workers);
	srv->workers = NULL;
	for (i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			close(srv->listeners[i].fd);
	if (srv->conn_table != NULL) {
		for (b = 0; b < CONN_BUCKETS; b++)
			while (srv->conn_table[b] != NULL) {
				struct conn_count *c = srv->conn_table[b];
				srv->conn_table[b] = c->next;
				free(c);
			}
		free(srv->conn_table);
		srv->conn_table = NULL;
	}
	if (srv->tls_ctx != NULL)
		SSL_CTX_free(srv->tls_ctx);
	srv->tls_ctx = NULL;
}

/* Allocates the connection table; called by outpostd before bind. */
int
smtp_server_init(struct smtp_server *srv, struct config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	pthread_mutex_init(&srv->ctx_lock, NULL);
	pthread_mutex_init(&srv->conn_lock, NULL);
	srv->conn_table = calloc(CONN_BUCKETS, sizeof(*srv->conn_table));
	return srv->conn_table ? 0 : -1;
}
