/*
 * outpostd — the submission daemon.
 *
 *   outpostd -c FILE [--check-config] [-d]
 *
 * Start-up order matters: configuration (fail with file:line), TLS
 * context (fail naming the file), spool (lock + recovery), password pool,
 * listeners (fail naming the address), then the worker threads.  Any
 * failure before serving exits with EX_CONFIG / EX_UNAVAILABLE and one
 * plain line on stderr.  The main thread then only handles signals:
 * TERM/INT drain and stop, HUP reloads the certificate and log level.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "auth/apppass.h"
#include "auth/authpool.h"
#include "auth/oauth2.h"
#include "delivery/sched.h"
#include "auth/quota.h"
#include "auth/throttle.h"
#include "message/dkim.h"
#include "queue/spool.h"
#include "smtp/server.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/log.h"
#include "util/privdrop.h"
#include "web/server.h"

#define DRAIN_GRACE_SECS 30

struct daemon_ctx {
	struct smtp_server	 srv;
	struct config		 cfg;
	struct event_base	*base;
	struct dlv_sched	*dlv;	/* delivery: its own thread and loop */
	int			 dropped; /* root given up for [server] user */
	struct privdrop		 pd;	/* whom to become (checked at start) */
	struct web_server	*web;	/* account page, or NULL ([account_page]) */
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: outpostd -c FILE [--check-config] [-d]\n"
	    "  -c FILE          configuration file (outpost.conf(5))\n"
	    "  --check-config   check FILE (and the certificate) and exit\n"
	    "  -d               debug logging (protocol traces; no secrets)\n"
	    "  -V, --version    print the version\n");
}

static SSL_CTX *
load_tls(const struct config *cfg, char *err, size_t errlen)
{
	return tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_ciphers,
	    cfg->tls_ciphersuites, err, errlen);
}

static void
dkim_warn(void *ctx, const char *text)
{
	(void)ctx;
	log_warn("%s", text);
}

/*
 * (Re)loads the DKIM keys from DATA_DIR/dkim into srv's store; the old
 * set stays with the messages being signed with it.  Returns 0 or -1.
 */
static int
load_dkim(struct smtp_server *srv, const struct config *cfg)
{
	struct dkim_keyset *ks;
	char dir[4096], err[512];
	size_t i;
	int n;

	n = snprintf(dir, sizeof(dir), "%s/dkim", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		log_err("dkim: key directory path too long");
		return -1;
	}
	if ((ks = dkim_keyset_load(dir, dkim_warn, NULL, err,
	    sizeof(err))) == NULL) {
		log_err("dkim: %s", err);
		return -1;
	}
	for (i = 0; i < ks->n; i++)
		log_info("dkim: key d=%s s=%s (%s) from %s", ks->keys[i].domain,
		    ks->keys[i].selector, dkim_alg_name(ks->keys[i].alg),
		    ks->keys[i].path);
	if (ks->n == 0)
		log_info("dkim: no keys in %s: mail goes out unsigned", dir);
	dkim_store_set(srv->dkim, ks);
	return 0;
}

/* For `outpost status` (asked on the delivery thread; throttle locks). */
static unsigned long
auth_failures_recent(void *arg, int secs)
{
	return arg ? throttle_recent_failures(arg, secs, time(NULL)) : 0;
}

/* A hard bounce of user's mail (on the delivery thread; quota locks):
 * past [limits] hold_after_bounces in bounce_window, user is held. */
static void
hard_bounce(void *arg, const char *user)
{
	struct daemon_ctx *d = arg;
	struct quota_bounce_limits bl;

	if (d->srv.quota == NULL)
		return;
	bl.hold_after = __atomic_load_n(&d->cfg.hold_after_bounces,
	    __ATOMIC_RELAXED);
	bl.window = __atomic_load_n(&d->cfg.bounce_window, __ATOMIC_RELAXED);
	quota_bounce(d->srv.quota, user, &bl, time(NULL));
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_ctx *d = arg;

	(void)what;
	log_info("received %s, draining connections (at most %d s)",
	    sig == SIGINT ? "SIGINT" : "SIGTERM", DRAIN_GRACE_SECS);
	event_base_loopbreak(d->base);
}

/*
 * The numeric limits are read by the workers without a lock; each is one
 * aligned word, stored atomically, so a session sees the old or the new
 * value of each, never a torn one.  Strings (host name, paths) are not
 * swapped: they would need a reference count for sessions in flight.
 */
#define RELOAD(f) __atomic_store_n(&cur->f, nw->f, __ATOMIC_RELAXED)
static void
reload_limits(struct config *cur, const struct config *nw)
{
	RELOAD(max_message_size);
	RELOAD(max_recipients);
	RELOAD(idle_timeout);
	RELOAD(data_timeout);
	RELOAD(max_connections);
	RELOAD(max_connections_per_ip);
	RELOAD(max_errors);
	RELOAD(max_received);
	RELOAD(min_data_rate);
	RELOAD(daily_messages);
	RELOAD(daily_recipients);
	RELOAD(auth_failures);
	RELOAD(auth_failure_window);
	RELOAD(auth_failure_delay);
	RELOAD(hourly_messages);
	RELOAD(hold_after_quota_hits);
	RELOAD(hold_after_bounces);
	RELOAD(bounce_window);
	RELOAD(received_show_user);
	RELOAD(log_level);
	RELOAD(dkim_expire);
}
#undef RELOAD

/*
 * SIGHUP: re-read the file; take the new certificate, limits and log
 * level.  A broken new config is reported and the running one kept.
 * Listener, path and host name changes need a restart (said in the log).
 */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_ctx *d = arg;
	struct config ncfg;
	char err[512];
	SSL_CTX *ctx;

	(void)sig;
	(void)what;
	memset(&ncfg, 0, sizeof(ncfg));
	if (config_load(&ncfg, d->cfg.path, err, sizeof(err)) != 0) {
		log_err("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if ((ctx = load_tls(&ncfg, err, sizeof(err))) == NULL) {
		log_err("reload failed, keeping the running certificate: %s%s",
		    err, d->dropped ? " (outpostd runs as the [server] user "
		    "since start-up: make the certificate and key readable by "
		    "its group, or restart to load them as root)" : "");
		config_free(&ncfg);
		return;
	}
	smtp_server_set_tls_ctx(&d->srv, ctx);
	if (load_dkim(&d->srv, &ncfg) != 0)
		log_err("reload: keeping the running DKIM keys");
	reload_limits(&d->cfg, &ncfg);
	log_set_level(ncfg.log_level);
	log_info("reloaded %s: certificate, DKIM keys, limits and log level updated "
	    "(listener, path and host name changes take effect at restart)",
	    d->cfg.path);
	config_free(&ncfg);
}

/*
 * Account security: the server secret (DATA_DIR/secret.key, made on
 * first use) for app passwords and TOTP, the argon2id success cache, the
 * failed-login throttle and the batched sending counters.  0 or -1.
 */
static int
security_open(struct daemon_ctx *d, char *err, size_t errlen)
{
	unsigned char key[SERVERKEY_LEN];
	char path[4096], why[512];

	if ((size_t)snprintf(path, sizeof(path), "%s/secret.key",
	    d->cfg.data_dir) >= sizeof(path)) {
		snprintf(err, errlen, "data_dir path too long");
		return -1;
	}
	if (serverkey_load(path, key, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "server key: %s", why);
		return -1;
	}
	if (authpool_configure(d->srv.auth, key, d->cfg.auth_cache_ttl,
	    4096) != 0) {
		sodium_memzero(key, sizeof(key));
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sodium_memzero(key, sizeof(key));
	if ((d->srv.throttle = throttle_new(100000)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* [oauth2]: XOAUTH2 / OAUTHBEARER; a bad JWKS file stops start-up */
	if (oauth2_configured(&d->cfg)) {
		struct oauth2_conf oc;

		oauth2_conf_from_config(&oc, &d->cfg);
		if ((d->srv.oauth2 = oauth2_new(&oc, why, sizeof(why))) ==
		    NULL) {
			snprintf(err, errlen, "oauth2: %s", why);
			return -1;
		}
		authpool_set_oauth2(d->srv.auth, d->srv.oauth2);
	}
	if ((d->srv.quota = quota_open(d->cfg.accounts_db,
	    d->cfg.counter_flush, 100000, why, sizeof(why))) == NULL) {
		throttle_free(d->srv.throttle);
		d->srv.throttle = NULL;
		snprintf(err, errlen, "usage counters: %s", why);
		return -1;
	}
	return 0;
}

/*
 * Started as root: hand what the daemon writes to the [server] user and
 * become that user for good (util/privdrop.h).  Called once everything
 * that needs root is open: listeners bound, certificate, keys, spool,
 * account database.  The data directory and the spool are chowned (only
 * entries with another owner); an account database outside data_dir gets
 * only the file and its journals, never its directory's other files.
 */
static int
drop_privileges(struct daemon_ctx *d, char *err, size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	const struct privdrop *pd = &d->pd;
	char path[4200];
	size_t i, n;

	if (!pd->active)
		return 0;
	if (strcmp(d->cfg.data_dir, "/") == 0 ||
	    strcmp(d->cfg.spool_dir, "/") == 0) {
		snprintf(err, errlen, "data_dir or spool dir is /: refusing to "
		    "hand it to %s", pd->user);
		return -1;
	}
	if (privdrop_chown_tree(d->cfg.data_dir, pd->uid, pd->gid, err,
	    errlen) != 0 ||
	    privdrop_chown_tree(d->cfg.spool_dir, pd->uid, pd->gid, err,
	    errlen) != 0)
		return -1;
	n = strlen(d->cfg.data_dir);
	if (strncmp(d->cfg.accounts_db, d->cfg.data_dir, n) != 0 ||
	    d->cfg.accounts_db[n] != '/') {
		for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
			snprintf(path, sizeof(path), "%s%s", d->cfg.accounts_db,
			    suffix[i]);
			if (lchown(path, pd->uid, pd->gid) != 0 && errno != ENOENT) {
				snprintf(err, errlen, "cannot hand %.900s to %s: %s",
				    path, pd->user, strerror(errno));
				return -1;
			}
		}
		log_warn("accounts database %s is outside data_dir: its "
		    "directory must be writable by %s", d->cfg.accounts_db,
		    pd->user);
	}
	if (smtp_server_local_chown(&d->srv, pd->uid, pd->gid, err,
	    errlen) != 0)
		return -1;
	if (privdrop_apply(pd, err, errlen) != 0)
		return -1;
	d->dropped = 1;
	log_info("dropped root: running as user %s (uid %u), group %s "
	    "(gid %u)", pd->user, (unsigned)pd->uid, pd->group, (unsigned)pd->gid);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'C' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_ctx *d;
	struct spool_opts sopts;
	struct pwhash_params pp;
	const char *path = NULL;
	struct event *ev_term, *ev_int, *ev_hup;
	sigset_t startsigs;
	struct dlv_hooks dhooks;
	char err[1024], warn[256];
	int ch, check = 0, debug = 0, nworkers, i;
	SSL_CTX *ctx;

	while ((ch = getopt_long(argc, argv, "c:dhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'd': debug = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("outpostd %s\n", OUTPOST_VERSION); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "outpostd: libsodium failed to initialise\n");
		return EX_SOFTWARE;
	}
	/* before any event_base: workers hand results across threads */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "outpostd: libevent has no thread support\n");
		return EX_SOFTWARE;
	}
	signal(SIGPIPE, SIG_IGN);
	/* From the moment the listeners accept (backlog), clients and
	 * scripts may think we are up and signal us: hold TERM/INT/HUP
	 * until their handlers are installed (the delivery start takes a
	 * while), so a SIGHUP never kills us.  Threads started meanwhile
	 * inherit the mask and leave these signals to the main thread. */
	sigemptyset(&startsigs);
	sigaddset(&startsigs, SIGTERM);
	sigaddset(&startsigs, SIGINT);
	sigaddset(&startsigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &startsigs, NULL);
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return EX_OSERR;
	log_init("outpostd", LOGL_INFO, 0);

	if (config_load(&d->cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_CONFIG;
	}
	log_init("outpostd", debug ? LOGL_DEBUG : d->cfg.log_level,
	    d->cfg.log_syslog);
	/* the [server] user is checked before anything is opened */
	if (privdrop_prepare(&d->cfg, &d->pd, warn, sizeof(warn), err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s: %s\n", d->cfg.path, err);
		config_free(&d->cfg);
		free(d);
		return EX_CONFIG;
	}
	if (warn[0] != '\0' && !check)
		log_warn("%s", warn);
	if ((ctx = load_tls(&d->cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "outpostd: %s: %s\n", d->cfg.path, err);
		return EX_CONFIG;
	}
	if (check) {
		SSL_CTX_free(ctx);
		printf("%s: configuration OK (%d listeners)\n", d->cfg.path,
		    d->cfg.nlisteners);
		config_free(&d->cfg);
		free(d);
		return 0;
	}
	if (d->cfg.nlisteners == 0) {
		fprintf(stderr, "outpostd: %s: no [listener NAME] section: "
		    "nothing to serve\n", d->cfg.path);
		return EX_CONFIG;
	}
	if (smtp_server_init(&d->srv, &d->cfg) != 0)
		return EX_OSERR;
	smtp_server_set_tls_ctx(&d->srv, ctx);
	if ((d->srv.dkim = dkim_store_new()) == NULL)
		return EX_OSERR;
	if (load_dkim(&d->srv, &d->cfg) != 0) {
		fprintf(stderr, "outpostd: cannot load the DKIM keys (see the "
		    "log)\n");
		return EX_CONFIG;
	}

	memset(&sopts, 0, sizeof(sopts));
	sopts.min_free_space = d->cfg.min_free_space;
	sopts.flush = d->cfg.spool_flush != NULL &&
	    strcmp(d->cfg.spool_flush, "filesystem") == 0 ?
	    SPOOL_FLUSH_FILESYSTEM : SPOOL_FLUSH_FILE;
	if (spool_open(&d->srv.spool, d->cfg.spool_dir, &sopts, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_UNAVAILABLE;
	}
	pp.opslimit = d->cfg.argon2_opslimit;
	pp.memlimit = d->cfg.argon2_memlimit;
	nworkers = d->cfg.workers > 0 ? d->cfg.workers :
	    (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nworkers < 1)
		nworkers = 1;
	d->srv.auth = authpool_new(d->cfg.accounts_db,
	    d->cfg.auth_threads > 0 ? d->cfg.auth_threads : nworkers, &pp,
	    err, sizeof(err));
	if (d->srv.auth == NULL) {
		fprintf(stderr, "outpostd: accounts: %s\n", err);
		spool_close(d->srv.spool);
		return EX_UNAVAILABLE;
	}
	if (security_open(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		authpool_free(d->srv.auth);
	oauth2_free(d->srv.oauth2);
		spool_close(d->srv.spool);
		return EX_UNAVAILABLE;
	}
	if (smtp_server_bind(&d->srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		quota_close(d->srv.quota);
		throttle_free(d->srv.throttle);
		authpool_free(d->srv.auth);
	oauth2_free(d->srv.oauth2);
		spool_close(d->srv.spool);
		/* a port or socket taken is an ordinary failure: leave clean */
		dkim_store_free(d->srv.dkim);
		smtp_server_free(&d->srv);
		config_free(&d->cfg);
		free(d);
		return EX_UNAVAILABLE;
	}
	/* The account page (src/web): bound now, served from its own
	 * thread once everything else runs. */
	if (d->cfg.web_listen != NULL && (d->web = web_server_new(&d->cfg,
	    &d->srv, err, sizeof(err))) == NULL) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_UNAVAILABLE;
	}
	/* Everything that needs root is open: give root up now, before
	 * the delivery engine and the workers start serving. */
	if (drop_privileges(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		quota_close(d->srv.quota);
		throttle_free(d->srv.throttle);
		authpool_free(d->srv.auth);
	oauth2_free(d->srv.oauth2);
		spool_close(d->srv.spool);
		return EX_CONFIG;
	}
	if ((d->base = event_base_new()) == NULL)
		return EX_OSERR;
	ev_term = evsignal_new(d->base, SIGTERM, on_term, d);
	ev_int = evsignal_new(d->base, SIGINT, on_term, d);
	ev_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL ||
	    evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL) ||
	    evsignal_add(ev_hup, NULL))
		return EX_OSERR;
	pthread_sigmask(SIG_UNBLOCK, &startsigs, NULL);	/* pending ones run now */
	if (smtp_server_start(&d->srv, nworkers, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_OSERR;
	}
	/* Delivery: its own thread and event loop (delivery/sched.h).  It
	 * hooks the spool's commit notification first and then scans the
	 * queue, so a message committed meanwhile is found either way. */
	memset(&dhooks, 0, sizeof(dhooks));
	dhooks.auth_failures = auth_failures_recent;
	dhooks.arg = d->srv.throttle;
	dhooks.hard_bounce = hard_bounce;
	dhooks.bounce_arg = d;
	dhooks.dkim = d->srv.dkim;
	if ((d->dlv = dlv_sched_start(&d->cfg, d->srv.spool, &dhooks, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "outpostd: delivery: %s\n", err);
		return EX_UNAVAILABLE;
	}
	for (i = 0; i < d->srv.nlisteners; i++)
		log_info("listening on %s (%s, %s)", d->srv.listeners[i].addr,
		    d->srv.listeners[i].conf->name,
		    d->srv.listeners[i].conf->local ? "peer uid, no TLS" :
		    d->srv.listeners[i].conf->tls == LISTENER_TLS_IMPLICIT ?
		    "implicit TLS" : "STARTTLS");
	if (d->web != NULL && web_server_start(d->web, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_OSERR;
	}
	log_info("outpostd %s started: hostname=%s, workers=%d, spool=%s",
	    OUTPOST_VERSION, d->cfg.hostname, nworkers, d->cfg.spool_dir);

	event_base_dispatch(d->base);

	web_server_stop(d->web);	/* before authpool_free: it uses it */
	smtp_server_stop(&d->srv, DRAIN_GRACE_SECS);
	/* Both answer what is still pending through the workers' loops;
	 * run those once more so every callback is delivered (and freed)
	 * before the sessions go. */
	authpool_free(d->srv.auth);
	oauth2_free(d->srv.oauth2);
	dlv_sched_stop(d->dlv);		/* before the spool: DSNs use it */
	spool_close(d->srv.spool);
	smtp_server_run_pending(&d->srv);
	dkim_store_free(d->srv.dkim);
	d->srv.dkim = NULL;
	{
		/* sessions and their callbacks are gone now; last flush */
		struct quota *q = d->srv.quota;
		struct throttle *t = d->srv.throttle;

		smtp_server_free(&d->srv);
		quota_close(q);
		throttle_free(t);
	}
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(d->base);
	log_info("outpostd stopped");
	config_free(&d->cfg);
	free(d);
	return 0;
}
