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
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"
#include "util/evbase.h"
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
	if (l->conf->local) {
		/* counted per local user, as the session does (session.c) */
		struct ucred cr;
		socklen_t crlen = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
			log_warn("local connection without peer credentials: %s",
			    strerror(errno));
			close(fd);
			return;
		}
		snprintf(ip, sizeof(ip), "uid:%u", (unsigned)cr.uid);
	} else
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

/*
 * The [local] socket: a directory only we (root, or the daemon's user)
 * can write, a stale socket removed, a live one left alone.
 */
static int
local_bind(struct smtp_server *srv, struct smtp_listener *l, char *err,
    size_t errlen)
{
	const char *path = srv->cfg->local_socket;
	struct sockaddr_un sun;
	struct stat sb;
	char dir[sizeof(sun.sun_path)], *slash;
	evutil_socket_t fd;
	int e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path) || path[0] != '/') {
		snprintf(err, errlen, "[local] socket: \"%s\" is not an absolute "
		    "path of at most %zu bytes", path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		srv->local_dir_made = 1;
		/* the umask may have taken bits that clients need */
		if (chmod(dir, 0755) != 0) {
			snprintf(err, errlen, "[local] socket: chmod %s: %s", dir,
			    strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "[local] socket: cannot create the "
		    "directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "[local] socket: %s is not a directory",
		    dir);
		return -1;
	}
	/* others could replace our socket with theirs: the directory is
	 * root's, ours, or our [server] user's (we handed it over before) */
	if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
		struct passwd pw, *res = NULL;
		char pwbuf[4096];

		if (srv->cfg->run_user == NULL || getpwnam_r(srv->cfg->run_user,
		    &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL ||
		    pw.pw_uid != sb.st_uid) {
			snprintf(err, errlen, "[local] socket: the directory %s "
			    "belongs to uid %u, not to root or the daemon's user",
			    dir, (unsigned)sb.st_uid);
			return -1;
		}
	}
	if ((sb.st_mode & 022) != 0) {
		snprintf(err, errlen, "[local] socket: the directory %s is "
		    "writable by group or others; give the socket a directory "
		    "of its own (e.g. /run/outpost)", dir);
		return -1;
	}
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "[local] socket: %s exists and is "
			    "not a socket", path);
			return -1;
		}
		/* a daemon that answers there is alive: do not steal it */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(fd);
			snprintf(err, errlen, "cannot listen on %s ([local]): "
			    "another server is answering there", path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		if (unlink(path) != 0) {
			snprintf(err, errlen, "[local] socket: cannot remove the "
			    "stale %s: %s", path, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	/* anyone may submit: SO_PEERCRED tells who, the sender rule binds */
	if (chmod(path, 0666) != 0 || lstat(path, &sb) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		e = errno;
		close(fd);
		unlink(path);
		errno = e;
		goto fail;
	}
	srv->local_dev = sb.st_dev;
	srv->local_ino = sb.st_ino;
	l->fd = fd;
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s ([local]): %s", path,
	    strerror(errno));
	return -1;
}

int
smtp_server_local_chown(struct smtp_server *srv, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	const char *path = srv->cfg->local_socket;
	char dir[PATH_MAX], *slash;

	if (path == NULL || srv->local_ino == 0)
		return 0;
	if (lchown(path, uid, gid) != 0) {
		snprintf(err, errlen, "[local] socket: chown %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!srv->local_dir_made)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir)
		*slash = '\0';
	if (lchown(dir, uid, gid) != 0) {
		snprintf(err, errlen, "[local] socket: chown %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	return 0;
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
		    listen(fd, SOMAXCONN) != 0) {
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
	if (cfg->local_socket != NULL) {
		struct smtp_listener *l = &srv->listeners[srv->nlisteners];

		memset(&srv->local_conf, 0, sizeof(srv->local_conf));
		srv->local_conf.name = "local";
		srv->local_conf.listen = cfg->local_socket;
		srv->local_conf.tls = LISTENER_TLS_STARTTLS;	/* never offered */
		srv->local_conf.local = 1;
		l->conf = &srv->local_conf;
		l->fd = -1;
		snprintf(l->addr, sizeof(l->addr), "unix:%s", cfg->local_socket);
		if (local_bind(srv, l, err, errlen) != 0)
			return -1;
		srv->nlisteners++;
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
	srv->nlistening = nworkers;
	for (i = 0; i < nworkers; i++) {
		struct smtp_worker *w = &srv->workers[i];

		w->srv = srv;
		w->index = i;
		if ((w->base = evbase_new()) == NULL) {
			snprintf(err, errlen, "cannot create an event loop");
			return -1;
		}
		for (j = 0; j < srv->nlisteners; j++) {
			/* backlog 0: already listening (with a -1 libevent
			 * would call listen() again with 128) */
			w->lev[j] = evconnlistener_new(w->base, server_accept, w,
			    0, 0, srv->listeners[j].fd);
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
	/* The last worker to stop watching the sockets stops the kernel
	 * from accepting on them too (shutdown() on a listening socket):
	 * new clients are refused at once instead of waiting in the backlog
	 * until the drain ends.  The descriptors stay open (no reuse race);
	 * smtp_server_free() closes them. */
	if (__atomic_sub_fetch(&w->srv->nlistening, 1, __ATOMIC_ACQ_REL) == 0)
		for (i = 0; i < w->srv->nlisteners; i++)
			if (w->srv->listeners[i].fd >= 0)
				(void)shutdown(w->srv->listeners[i].fd, SHUT_RDWR);
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
	if (srv->local_ino != 0 && srv->cfg != NULL &&
	    srv->cfg->local_socket != NULL) {
		struct stat sb;

		/* only the socket we made: a successor may have its own there
		 * (after privdrop this needs the directory to be ours) */
		if (lstat(srv->cfg->local_socket, &sb) == 0 &&
		    sb.st_dev == srv->local_dev && sb.st_ino == srv->local_ino &&
		    unlink(srv->cfg->local_socket) != 0)
			log_debug("cannot remove %s: %s", srv->cfg->local_socket,
			    strerror(errno));
		srv->local_ino = 0;
	}
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
