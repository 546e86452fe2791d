/*
 * web server — the HTTPS account page (libevent evhttp over TLS).
 *
 * Off unless [account_page] listen is set.  One thread with its own
 * event loop serves it; the TLS context is the mail listeners' (the same
 * policy, and a SIGHUP reload reaches it too).  The thread owns its own
 * account-store connection for the quick SQLite reads and writes; the
 * argon2id checks go to the daemon's authpool (sign-in) or to a short
 * job thread (password change), never to the page's loop.
 *
 * Start-up: web_server_new() binds (before root is given up), then
 * web_server_start() runs the thread.  web_server_stop() closes the
 * listener and every connection, waits (bounded) for checks in flight
 * and joins the thread; call it before authpool_free().
 */
#ifndef OUTPOST_WEB_SERVER_H
#define OUTPOST_WEB_SERVER_H

#include <stddef.h>

struct config;
struct smtp_server;
struct web_server;

/* NULL with a message in err ("cannot listen on 127.0.0.1:2443: ...").
 * srv must have its authpool, throttle and quota set up. */
struct web_server *web_server_new(struct config *cfg, struct smtp_server *srv,
	    char *err, size_t errlen);
int	web_server_start(struct web_server *w, char *err, size_t errlen);
void	web_server_stop(struct web_server *w);

#endif
