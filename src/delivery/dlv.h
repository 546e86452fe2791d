/*
 * delivery/dlv — internals shared by sched.c (messages, destinations,
 * retries, DSNs), deliver.c (one outbound connection) and ctl.c (the
 * control socket).  Everything here is used on the scheduler's thread
 * only.
 */
#ifndef OUTPOST_DLV_H
#define OUTPOST_DLV_H

#include <limits.h>
#include <pthread.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "delivery/dkimpool.h"
#include "delivery/sched.h"
#include "dns/resolver.h"
#include "queue/qstate.h"
#include "queue/spool.h"
#include "util/config.h"

#define DLV_HASH_SIZE	65536		/* message table buckets */
#define DLV_MSGS_PER_CONN 1000		/* messages sent over one connection */
#define DLV_IDLE_SECS	2		/* an idle connection waits this long */
#define DLV_CONN_ADDRS_MAX 100

struct dlv_dest;

struct dlv_msg {
	struct dlv_msg	*hnext;
	char		 qid[SPOOL_QID_SIZE];
	struct envelope	 env;
	off_t		 body;		/* offset of the message bytes */
	struct qstate	 st;
	struct event	*timer;		/* next try */
	int		 jobs;		/* queued or running */
	int		 deleted;	/* removed while a job was running */
	int		 has_state;	/* state/QID may exist (read or written) */
	time_t		 attempt_start;
	unsigned char	*hop_dsn;	/* per rcpt: next hop took NOTIFY */
	char		*logq;		/* result lines waiting for the state mark */
	size_t		 logqlen;
	/* DKIM (env.dkim_domain set): signed by the dkimpool before the
	 * first attempt, again when the keys were reloaded or the signature
	 * got old; the fields go on top of the message when it is sent */
	struct dkimpool_req *signreq;	/* signing now (req->arg is m) */
	int		 sign_done;	/* dkim_sig (or NULL: unsigned) holds */
	time_t		 sign_time;
	unsigned long	 sign_gen;	/* key store generation used */
	char		*dkim_sig;	/* NULL: sent unsigned */
	size_t		 dkim_siglen;
};

struct dlv_job {
	TAILQ_ENTRY(dlv_job) q;
	struct dlv_msg	*m;
	struct dlv_dest	*d;
	size_t		*idx;		/* recipient indexes */
	size_t		 n;
	int		 queued;	/* on d->queue */
};
TAILQ_HEAD(dlv_jobq, dlv_job);

struct dlv_dest {
	struct dlv_dest	*next;
	char		 name[256];	/* domain, lowercase; or the smarthost */
	struct dlv_jobq	 queue;
	size_t		 nqueued;
	int		 nconns;
	int		 cap;		/* 1 after a 421/4.7.x until a success */
	time_t		 backoff_until;
	struct event	*wake;
	unsigned long	 deferrals;	/* recipients deferred, for status */
	unsigned long	 sent;
	char		 last_error[256];
	int		 tls_required;
	int		 ipv4_only;
};

struct dlv_sched {
	const struct config *cfg;
	struct spool	*sp;
	const char	*spool_dir;
	struct event_base *base;
	pthread_t	 thread;
	int		 thread_started;
	struct dns_resolver *dns;
	SSL_CTX		*ssl_ctx;
	struct dlv_msg	**htab;
	size_t		 nmsgs;
	struct dlv_dest	*dests;
	/* smarthost mode */
	int		 smarthost;
	char		 sh_host[256];
	int		 sh_port;
	int		 sh_tls;	/* enum smtpc_tls_mode */
	char		*sh_pass;	/* from smarthost_password_file */
	/* control socket */
	struct evconnlistener *ctl;
	char		 ctl_path[PATH_MAX];
	/* counters for `outpost status` */
	unsigned long	 n_sent, n_bounced, n_deferred, n_dsn;
	time_t		 started;
	int		 stopping;	/* shutting down: start nothing new */
	struct dlv_hooks hooks;
	struct dkimpool	*signer;	/* NULL when hooks.dkim is */
};

/* sched.c */
struct dlv_msg *dlv_msg_find(struct dlv_sched *s, const char *qid);
void	dlv_dest_kick(struct dlv_sched *s, struct dlv_dest *d);
/* Records one recipient's outcome (and logs it, Postfix style). */
void	dlv_rcpt_result(struct dlv_sched *s, struct dlv_msg *m, size_t i,
	    enum qstate_rcpt_status status, int code, const char *enhanced,
	    const char *text, const char *relay, const char *tls, int hop_dsn);
/* A job is over (every recipient has a result): frees it. */
void	dlv_job_done(struct dlv_sched *s, struct dlv_job *j);
/* Slows a destination down after 421 / 4.7.x. */
void	dlv_dest_backoff(struct dlv_sched *s, struct dlv_dest *d,
	    const char *why);
void	dlv_dest_success(struct dlv_dest *d);
/* Queue control (ctl.c). */
int	dlv_msg_hold(struct dlv_sched *s, struct dlv_msg *m, int hold);
int	dlv_msg_delete(struct dlv_sched *s, struct dlv_msg *m);
void	dlv_flush(struct dlv_sched *s);

/* deliver.c: starts one connection for d, taking its first queued job. */
int	dlv_conn_start(struct dlv_sched *s, struct dlv_dest *d);
/* Gives queued jobs of d to its parked (idle) connections first;
 * returns how many were woken. */
int	dlv_dest_resume_idle(struct dlv_dest *d);
/* Closes every connection at shutdown. */
void	dlv_conn_shutdown_all(void);

/* ctl.c */
int	dlv_ctl_open(struct dlv_sched *s, char *err, size_t errlen);
void	dlv_ctl_close(struct dlv_sched *s);

#endif
