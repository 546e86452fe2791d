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

#include "auth/authpool.h"
#include "queue/spool.h"
#include "smtp/server.h"
#include "tls/tls.h"
#include "util/config.h"
#include "util/log.h"

#define DRAIN_GRACE_SECS 30

struct daemon_ctx {
	struct smtp_server	 srv;
	struct config		 cfg;
	struct event_base	*base;
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
	RELOAD(received_show_user);
	RELOAD(log_level);
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
		log_err("reload failed, keeping the running certificate: %s", err);
		config_free(&ncfg);
		return;
	}
	smtp_server_set_tls_ctx(&d->srv, ctx);
	reload_limits(&d->cfg, &ncfg);
	log_set_level(ncfg.log_level);
	log_info("reloaded %s: certificate, limits and log level updated "
	    "(listener, path and host name changes take effect at restart)",
	    d->cfg.path);
	config_free(&ncfg);
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
	char err[1024];
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
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return EX_OSERR;
	log_init("outpostd", LOGL_INFO, 0);

	if (config_load(&d->cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_CONFIG;
	}
	log_init("outpostd", debug ? LOGL_DEBUG : d->cfg.log_level,
	    d->cfg.log_syslog);
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

	memset(&sopts, 0, sizeof(sopts));
	sopts.min_free_space = d->cfg.min_free_space;
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
	if (smtp_server_bind(&d->srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		authpool_free(d->srv.auth);
		spool_close(d->srv.spool);
		return EX_UNAVAILABLE;
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
	if (smtp_server_start(&d->srv, nworkers, err, sizeof(err)) != 0) {
		fprintf(stderr, "outpostd: %s\n", err);
		return EX_OSERR;
	}
	for (i = 0; i < d->srv.nlisteners; i++)
		log_info("listening on %s (%s, %s)", d->srv.listeners[i].addr,
		    d->srv.listeners[i].conf->name,
		    d->srv.listeners[i].conf->tls == LISTENER_TLS_IMPLICIT ?
		    "implicit TLS" : "STARTTLS");
	log_info("outpostd %s started: hostname=%s, workers=%d, spool=%s",
	    OUTPOST_VERSION, d->cfg.hostname, nworkers, d->cfg.spool_dir);

	event_base_dispatch(d->base);

	smtp_server_stop(&d->srv, DRAIN_GRACE_SECS);
	/* Both answer what is still pending through the workers' loops;
	 * run those once more so every callback is delivered (and freed)
	 * before the sessions go. */
	authpool_free(d->srv.auth);
	spool_close(d->srv.spool);
	smtp_server_run_pending(&d->srv);
	smtp_server_free(&d->srv);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(d->base);
	log_info("outpostd stopped");
	config_free(&d->cfg);
	free(d);
	return 0;
}
