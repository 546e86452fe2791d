/*
 * delivery/sched — the delivery engine inside outpostd: takes committed
 * messages from the spool and delivers them to the recipients' servers
 * (or a smarthost), with per-destination queues, concurrency caps,
 * retries with jittered exponential back-off, a queue lifetime, delay
 * warnings and bounces (DSNs), and the control socket that `outpost
 * queue` and `outpost status` talk to.
 *
 * Threads: the scheduler runs on its OWN thread and event_base, apart
 * from the SMTP workers, so a slow remote server, DNS or a big bounce
 * never delays a submission; DNS (c-ares), every outbound SMTP session
 * (smtpc), the retry timers and the control socket all live on that one
 * loop, so its data needs no locks.  The spool's commit thread tells it
 * about new messages through spool_set_notify() + loopcall(): a message
 * is picked up the moment it is durable, with no polling.
 *
 * Fails: dlv_sched_start() returns NULL with a plain-words message (DNS
 * server, TLS context, control socket, smarthost password file).
 */
#ifndef OUTPOST_DLV_SCHED_H
#define OUTPOST_DLV_SCHED_H

#include <stddef.h>

struct config;
struct spool;
struct dlv_sched;

/* Loads the queue (recovery: each message's recipient state), sets the
 * spool's notify hook, opens the control socket DATA_DIR/control.sock
 * (0600) and starts the scheduler thread.  cfg and sp must outlive it. */
/* What the scheduler may ask the rest of the daemon (for `outpost
 * status`); any member may be NULL.  Called on the scheduler's thread. */
struct dlv_hooks {
	/* failed SMTP logins in the last secs seconds */
	unsigned long	(*auth_failures)(void *arg, int secs);
	void		*arg;
	/* a recipient of a message that user submitted after AUTH failed
	 * permanently (not for trusted networks' mail, not for DSNs, not
	 * for an expiry in the queue) */
	void		(*hard_bounce)(void *arg, const char *user);
	void		*bounce_arg;
	/* the daemon's DKIM keys (reloaded on SIGHUP): messages whose
	 * envelope asks for a signature are signed with them at delivery;
	 * NULL: nothing is signed */
	struct dkim_store *dkim;
};
struct dlv_sched *dlv_sched_start(const struct config *cfg, struct spool *sp,
	    const struct dlv_hooks *hooks, char *err, size_t errlen);
/* Closes every outbound connection (no QUIT wait), stops the thread and
 * frees.  Undelivered recipients stay queued for the next start. */
void	dlv_sched_stop(struct dlv_sched *s);

/* Path of the control socket for a configuration, into buf. */
int	dlv_ctl_path(const struct config *cfg, char *buf, size_t len);

#endif
