/*
 * delivery/ctl — the control socket: DATA_DIR/control.sock, a Unix
 * socket with permissions 0600 (only the daemon's user may use it), on
 * the scheduler's loop.
 *
 * Protocol: the client sends one line (at most CTL_LINE_MAX octets, LF
 * or CRLF): "list", "show QID", "flush", "delete QID", "hold QID",
 * "release QID" or "status"; the daemon answers with one JSON object and
 * closes.  Every answer has "ok" (true/false) and, when false, "error"
 * (plain words).  A client that sends nothing is closed after
 * CTL_TIMEOUT seconds; at most CTL_CLIENTS at once.
 *
 * Owns: the listener and each client's bufferevent.
 * Fails: dlv_ctl_open() reports a socket it cannot create (path too long
 * for sun_path, permissions) with plain words.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "delivery/dlv.h"
#include "delivery/qjson.h"
#include "delivery/sched.h"
#include "util/log.h"

#define CTL_LINE_MAX	256
#define CTL_TIMEOUT	10
#define CTL_CLIENTS	16

static int ctl_nclients;

int
dlv_ctl_path(const struct config *cfg, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/control.sock", cfg->data_dir);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static json_t *
ctl_error(const char *fmt, const char *arg)
{
	char buf[256];
	json_t *o = json_object();

	snprintf(buf, sizeof(buf), fmt, arg);
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error", json_string(buf));
	return o;
}

static json_t *
ctl_ok(void)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_true());
	return o;
}

static json_t *
ctl_list(struct dlv_sched *s, const char *qid)
{
	json_t *o = ctl_ok(), *arr = json_array();
	size_t b;

	if (qid != NULL) {
		struct dlv_msg *m = dlv_msg_find(s, qid);

		json_decref(arr);
		if (m == NULL) {
			json_decref(o);
			return ctl_error("no message %s in the queue", qid);
		}
		json_object_set_new(o, "message", dlv_msg_json(&m->env, &m->st,
		    m->jobs > 0, 1));
		return o;
	}
	for (b = 0; b < DLV_HASH_SIZE; b++)
		for (struct dlv_msg *m = s->htab[b]; m != NULL; m = m->hnext)
			if (!m->deleted)
				json_array_append_new(arr, dlv_msg_json(&m->env,
				    &m->st, m->jobs > 0, 0));
	json_object_set_new(o, "messages", arr);
	return o;
}

static json_t *
ctl_status(struct dlv_sched *s)
{
	json_t *o = ctl_ok(), *counts = json_object(), *dests = json_array();
	unsigned long active = 0, held = 0, deferred = 0, queued = 0;
	time_t oldest = 0, now = time(NULL);
	size_t b;

	for (b = 0; b < DLV_HASH_SIZE; b++)
		for (struct dlv_msg *m = s->htab[b]; m != NULL; m = m->hnext) {
			const char *st = dlv_msg_state(&m->st, m->jobs > 0);

			if (strcmp(st, "active") == 0)
				active++;
			else if (strcmp(st, "held") == 0)
				held++;
			else if (strcmp(st, "deferred") == 0)
				deferred++;
			else
				queued++;
			if (oldest == 0 || m->env.arrival < oldest)
				oldest = m->env.arrival;
		}
	json_object_set_new(counts, "active", json_integer((json_int_t)active));
	json_object_set_new(counts, "queued", json_integer((json_int_t)queued));
	json_object_set_new(counts, "deferred",
	    json_integer((json_int_t)deferred));
	json_object_set_new(counts, "held", json_integer((json_int_t)held));
	json_object_set_new(o, "messages", json_integer((json_int_t)s->nmsgs));
	json_object_set_new(o, "counts", counts);
	json_object_set_new(o, "oldest_age", json_integer(oldest ?
	    (json_int_t)(now - oldest) : 0));
	json_object_set_new(o, "uptime", json_integer((json_int_t)(now -
	    s->started)));
	json_object_set_new(o, "sent", json_integer((json_int_t)s->n_sent));
	json_object_set_new(o, "bounced", json_integer((json_int_t)s->n_bounced));
	json_object_set_new(o, "deferrals",
	    json_integer((json_int_t)s->n_deferred));
	json_object_set_new(o, "notifications", json_integer((json_int_t)s->n_dsn));
	if (s->hooks.auth_failures != NULL)
		json_object_set_new(o, "auth_failures_1h", json_integer(
		    (json_int_t)s->hooks.auth_failures(s->hooks.arg, 3600)));
	for (struct dlv_dest *d = s->dests; d != NULL; d = d->next) {
		json_t *j;

		if (d->deferrals == 0 && d->nqueued == 0 && d->nconns == 0)
			continue;
		j = json_object();
		json_object_set_new(j, "destination", json_string(d->name));
		json_object_set_new(j, "deferrals",
		    json_integer((json_int_t)d->deferrals));
		json_object_set_new(j, "sent", json_integer((json_int_t)d->sent));
		json_object_set_new(j, "queued", json_integer((json_int_t)d->nqueued));
		json_object_set_new(j, "connections", json_integer(d->nconns));
		json_object_set_new(j, "slowed_until",
		    json_integer((json_int_t)d->backoff_until));
		json_object_set_new(j, "last_error", json_string(d->last_error));
		json_array_append_new(dests, j);
	}
	json_object_set_new(o, "destinations", dests);
	return o;
}

static json_t *
ctl_run(struct dlv_sched *s, char *line)
{
	char *arg = strchr(line, ' ');
	struct dlv_msg *m;

	if (arg != NULL) {
		*arg++ = '\0';
		if (!spool_qid_valid(arg))
			return ctl_error("\"%.40s\" is not a queue id", arg);
	}
	if (strcmp(line, "list") == 0 && arg == NULL)
		return ctl_list(s, NULL);
	if (strcmp(line, "status") == 0 && arg == NULL)
		return ctl_status(s);
	if (strcmp(line, "flush") == 0 && arg == NULL) {
		dlv_flush(s);
		return ctl_ok();
	}
	if (arg == NULL)
		return ctl_error("unknown or incomplete command \"%s\"",
		    strlen(line) < 32 ? line : "?");
	if (strcmp(line, "show") == 0)
		return ctl_list(s, arg);
	if ((m = dlv_msg_find(s, arg)) == NULL || m->deleted)
		return ctl_error("no message %s in the queue", arg);
	if (strcmp(line, "delete") == 0)
		return dlv_msg_delete(s, m) == 0 ? ctl_ok() :
		    ctl_error("cannot remove the message: %s", strerror(errno));
	if (strcmp(line, "hold") == 0 || strcmp(line, "release") == 0)
		return dlv_msg_hold(s, m, line[0] == 'h') == 0 ? ctl_ok() :
		    ctl_error("cannot write the state: %s", strerror(errno));
	return ctl_error("unknown command \"%s\"", strlen(line) < 32 ? line : "?");
}

static void
ctl_close(struct bufferevent *bev)
{
	bufferevent_free(bev);
	ctl_nclients--;
}

static void
ctl_on_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_close(bev);
}

static void
ctl_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	ctl_close(bev);
}

static void
ctl_on_read(struct bufferevent *bev, void *arg)
{
	struct dlv_sched *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line, *text;
	json_t *res;

	line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			ctl_close(bev);
		return;
	}
	if (len > CTL_LINE_MAX)
		res = ctl_error("%s", "request too long");
	else
		res = ctl_run(s, line);
	free(line);
	text = res ? json_dumps(res, JSON_COMPACT) : NULL;
	json_decref(res);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, ctl_on_write, ctl_on_event, s);
	if (text == NULL || bufferevent_write(bev, text, strlen(text)) != 0 ||
	    bufferevent_write(bev, "\n", 1) != 0) {
		free(text);
		ctl_close(bev);
		return;
	}
	free(text);
}

static void
ctl_on_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct dlv_sched *s = arg;
	struct bufferevent *bev;
	struct timeval tv = { CTL_TIMEOUT, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	if (ctl_nclients >= CTL_CLIENTS ||
	    (bev = bufferevent_socket_new(s->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return;
	}
	ctl_nclients++;
	bufferevent_setcb(bev, ctl_on_read, NULL, ctl_on_event, s);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

int
dlv_ctl_open(struct dlv_sched *s, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;

	if (dlv_ctl_path(s->cfg, s->ctl_path, sizeof(s->ctl_path)) < 0 ||
	    strlen(s->ctl_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path %s/control.sock is "
		    "too long (at most %zu bytes): use a shorter data_dir",
		    s->cfg->data_dir, sizeof(sun.sun_path) - 1);
		s->ctl_path[0] = '\0';
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, s->ctl_path, strlen(s->ctl_path) + 1);
	/* We hold the spool lock: a socket left here is a dead daemon's. */
	if (lstat(s->ctl_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(s->ctl_path);
	old = umask(0177);
	s->ctl = evconnlistener_new_bind(s->base, ctl_on_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (s->ctl == NULL) {
		snprintf(err, errlen, "cannot create the control socket %s: %s",
		    s->ctl_path, strerror(errno));
		s->ctl_path[0] = '\0';
		return -1;
	}
	if (chmod(s->ctl_path, 0600) < 0)
		log_warn("chmod %s: %s", s->ctl_path, strerror(errno));
	return 0;
}

void
dlv_ctl_close(struct dlv_sched *s)
{
	if (s->ctl != NULL)
		evconnlistener_free(s->ctl);
	s->ctl = NULL;
	if (s->ctl_path[0])
		unlink(s->ctl_path);
	s->ctl_path[0] = '\0';
}
