/*
 * server — the listeners, the event-loop worker threads and what they
 * share: configuration, TLS context, spool, password-verification pool and
 * the per-client-address connection counts.
 *
 * One worker thread per core, each with its own event_base.  Every worker
 * accepts on the same listening sockets (created once by the main thread,
 * so a second daemon on the same port fails to bind instead of silently
 * sharing it), and a session lives and dies on the worker that accepted it.
 *
 * The main thread owns signals: SIGTERM/SIGINT drain (stop accepting, let
 * transactions in progress finish, 421 to everyone else) and stop; SIGHUP
 * reloads the certificate and key (new sessions use the new context,
 * existing ones keep theirs) and the log level.
 */
#ifndef OUTPOST_SMTP_SERVER_H
#define OUTPOST_SMTP_SERVER_H

#include <pthread.h>
#include <time.h>
#include <sys/types.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <event2/util.h>

#include "util/config.h"

struct event_base;
struct evconnlistener;
struct spool;
struct authpool;
struct oauth2;
struct throttle;
struct quota;
struct dkim_store;
struct smtp_session;

/* The [listener] sections plus the [local] unix socket. */
#define SMTP_MAX_LISTENERS	(CONFIG_MAX_LISTENERS + 1)

struct smtp_listener {
	const struct listener_conf *conf;
	evutil_socket_t	 fd;		/* bound and listening, shared by workers */
	char		 addr[80];	/* as configured, for logs */
};

struct smtp_worker {
	struct smtp_server	*srv;
	int			 index;
	pthread_t		 thread;
	struct event_base	*base;
	struct evconnlistener	*lev[SMTP_MAX_LISTENERS];
	struct event		*grace_ev;	/* forced close at the end of a drain */
	struct smtp_session	*sessions;	/* doubly-linked list */
	unsigned		 nsessions;
	uint64_t		 next_id;	/* connection ids */
	int			 stopping;
	time_t			 last_trim;	/* last malloc_trim() */
};

struct smtp_server {
	struct config		*cfg;
	struct spool		*spool;
	struct authpool		*auth;
	struct throttle		*throttle;	/* failed logins (auth/throttle.h) */
	struct oauth2		*oauth2;	/* token checks; NULL: no XOAUTH2/OAUTHBEARER */
	struct quota		*quota;		/* sending counters (auth/quota.h) */
	struct dkim_store	*dkim;		/* signing keys, swapped on SIGHUP */
	struct smtp_listener	 listeners[SMTP_MAX_LISTENERS];
	int			 nlisteners;
	/* [local] socket (cfg->local_socket): its listener_conf, and what
	 * outpostd hands to the unprivileged user and removes at exit */
	struct listener_conf	 local_conf;
	int			 local_dir_made;	/* we created its directory */
	dev_t			 local_dev;		/* the socket file we bound */
	ino_t			 local_ino;
	struct smtp_worker	*workers;
	int			 nworkers;
	int			 nlistening;	/* workers still accepting (drain) */

	pthread_mutex_t		 ctx_lock;	/* guards tls_ctx swaps */
	SSL_CTX			*tls_ctx;

	pthread_mutex_t		 conn_lock;	/* guards the table and total */
	struct conn_count	**conn_table;
	unsigned		 conn_total;
};

/* Zeroes srv, sets its config, allocates the connection table. 0/-1. */
int	smtp_server_init(struct smtp_server *srv, struct config *cfg);
/* Binds every listener of cfg, and the [local] unix socket when
 * cfg->local_socket is set: its directory is made (0755) when missing and
 * must not be writable by others; a stale socket is replaced, a live one
 * (another daemon answering) is an error; the socket is mode 0666 —
 * anyone may connect, SO_PEERCRED says who they are.  Returns 0, or -1
 * with a message in err ("cannot listen on 127.0.0.1:2587: Address
 * already in use"). */
int	smtp_server_bind(struct smtp_server *srv, char *err, size_t errlen);
/* Hands the [local] socket (and its directory, when bind made it) to the
 * daemon's unprivileged user, so it can remove the socket at exit.  0/-1. */
int	smtp_server_local_chown(struct smtp_server *srv, uid_t uid, gid_t gid,
	    char *err, size_t errlen);
/* Starts nworkers threads (accepting at once). Returns 0 or -1. */
int	smtp_server_start(struct smtp_server *srv, int nworkers, char *err,
	    size_t errlen);
/* Asks every worker to drain within grace_secs; joins them. */
void	smtp_server_stop(struct smtp_server *srv, int grace_secs);
/* After stop: runs each worker's loop without blocking, so callbacks
 * queued to it (by authpool_free/spool_close) are delivered. */
void	smtp_server_run_pending(struct smtp_server *srv);
void	smtp_server_free(struct smtp_server *srv);

/* The current TLS context with a reference taken (SSL_CTX_free it). */
SSL_CTX	*smtp_server_tls_ctx(struct smtp_server *srv);
/* Installs a new context (takes ownership); the old one is released. */
void	smtp_server_set_tls_ctx(struct smtp_server *srv, SSL_CTX *ctx);

/* Per-client-address connection counting across workers.  acquire
 * returns 0 (counted), 1 (over the per-address limit) or 2 (over the
 * server-wide limit). */
int	smtp_conn_acquire(struct smtp_server *srv, const char *ip);
void	smtp_conn_release(struct smtp_server *srv, const char *ip);

#endif
