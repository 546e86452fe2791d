/*
 * web_int.h — what server.c and pages.c share.  Everything here runs on
 * the account page's loop thread unless said otherwise.
 */
#ifndef OUTPOST_WEB_INT_H
#define OUTPOST_WEB_INT_H

#include <pthread.h>
#include <time.h>

#include "web/html.h"
#include "web/session.h"

struct config;
struct smtp_server;
struct accounts;
struct evbuffer;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;
struct event_base;

#define WEB_MAX_BODY		16384
#define WEB_MAX_HEADERS		8192
#define WEB_TIMEOUT		30	/* seconds of silence on a connection */
#define WEB_MAX_JOBS		8	/* password checks in flight */
#define WEB_FAIL_MSG		"Wrong address, password or code. Try again."

struct web_server {
	struct config		*cfg;
	struct smtp_server	*srv;
	struct event_base	*base;
	struct evhttp		*http;
	struct evhttp_bound_socket *bound;
	pthread_t		 thread;
	int			 started;
	struct accounts		*db;
	struct web_sessions	 sess;
	struct web_pending	*pending;	/* async checks in flight */
	int			 npending;
	int			 stopping;
	char			 listen[80];
};

/* One request being answered. */
struct web_ctx {
	struct web_server	*w;
	struct evhttp_request	*req;
	struct web_session	*s;		/* NULL: none (yet) */
	int			 set_cookie;	/* send s's cookie */
	int			 clear_cookie;	/* send an expiring cookie */
	char			 ip[64];
	time_t			 now;
	struct web_form		*form;		/* POST only */
};

/* server.c */
void	web_reply(struct web_ctx *c, int code, const char *reason,
	    struct evbuffer *body);
void	web_redirect(struct web_ctx *c, const char *to);
/* Starts the password check of a sign-in (authpool). */
void	web_signin_start(struct web_ctx *c, const char *email,
	    const char *password);
/* Starts a password change (job thread). */
void	web_passwd_start(struct web_ctx *c, const char *cur,
	    const char *nw);

/* pages.c: the HTML */
void	page_begin(struct evbuffer *b, const char *title,
	    const struct web_session *s, int admin);
void	page_end(struct evbuffer *b);
void	page_signin(struct web_ctx *c, const char *msg, int code_step);
void	page_security(struct web_ctx *c, const char *msg, int err);
/* pages.c: the routes after sign-in */
void	web_route(struct web_ctx *c, const char *path, int post);

#endif
