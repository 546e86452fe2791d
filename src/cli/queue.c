/*
 * cli/queue — `outpost queue` and `outpost status`: look at the queue and
 * control delivery.
 *
 *   outpost queue list          one block per message, oldest first: id,
 *                               arrival, age, size, sender, recipients
 *                               with their state and last error
 *   outpost queue show ID       the envelope, each recipient's state and
 *                               history, then the message headers
 *   outpost queue flush         retry everything now
 *   outpost queue delete ID     remove a message (no bounce)
 *   outpost queue hold ID       keep it queued, do not try it
 *   outpost queue release ID    undo hold; tried at once
 *   outpost status              counts by state, the oldest message's age,
 *                               deferrals per destination
 *
 * list and show read SPOOL/queue/ and SPOOL/state/ directly without the
 * daemon's lock: committed files are immutable and state files are
 * replaced atomically, so reading while outpostd runs is safe.  flush,
 * delete, hold, release and status talk to the running daemon over its
 * control socket (DATA_DIR/control.sock, 0600); when no daemon answers
 * they take the spool lock (so no daemon can start meanwhile) and work
 * on the files.  Everything printed comes from the network, so it goes
 * through queue_put() (control bytes, DEL, 8-bit bytes and '\' become
 * \xNN): a hostile address cannot drive the operator's terminal.
 *
 * Fails: EX_USAGE for bad arguments, EX_DATAERR for a malformed queue id,
 * EX_NOINPUT for an unknown one, EX_IOERR when the spool cannot be read,
 * EX_UNAVAILABLE when the daemon holds the spool but does not answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

#include "cli/cli.h"
#include "delivery/qjson.h"
#include "delivery/sched.h"
#include "queue/qstate.h"
#include "queue/spool.h"
#include "util/config.h"

#define CTL_REPLY_MAX	(256u << 20)	/* JSON from the daemon */
#define CTL_WAIT_SECS	30

#define QUEUE_HDR_MAX	(64 * 1024)	/* header block shown by show */

static void
queue_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: outpost [-c FILE] queue list\n"
	    "       outpost [-c FILE] queue show ID\n"
	    "       outpost [-c FILE] queue flush\n"
	    "       outpost [-c FILE] queue delete|hold|release ID\n"
	    "       outpost [-c FILE] status\n");
}

/* Writes n bytes of untrusted s, terminal-safe. */
static void
queue_put(FILE *fp, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			putc(c, fp);
		else
			fprintf(fp, "\\x%02X", c);
	}
}

static void
queue_puts(FILE *fp, const char *s)
{
	queue_put(fp, s, strlen(s));
}

static void
queue_addr(FILE *fp, const char *a)
{
	putc('<', fp);
	queue_puts(fp, a);
	putc('>', fp);
}

static void
queue_time(char *buf, size_t len, time_t t, int with_zone)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, with_zone ? "%Y-%m-%d %H:%M:%S %z" :
	    "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static void
queue_age(char *buf, size_t len, time_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", (long long)secs / 60);
	else if (secs < 2 * 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)secs / 3600,
		    (long long)(secs % 3600) / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)secs / 86400,
		    (long long)(secs % 86400) / 3600);
}

/* The recipients' state, under the message line. */
static void
queue_list_state(const char *spool, const struct envelope *env)
{
	struct qstate st;
	char age[32], next[64];
	size_t i;
	int found;

	if (spool == NULL || qstate_read(spool, env->qid, env->nrcpts, &st,
	    &found) < 0)
		return;
	queue_age(age, sizeof(age), time(NULL) - env->arrival);
	printf("    state: %s, age %s, attempts %d", dlv_msg_state(&st, 0), age,
	    st.attempts);
	if (st.next > 0 && !st.held) {
		queue_time(next, sizeof(next), st.next, 0);
		printf(", next try %s", next);
	}
	putchar('\n');
	for (i = 0; i < env->nrcpts; i++) {
		const struct qstate_rcpt *r = &st.rcpts[i];

		printf("    ");
		queue_addr(stdout, env->rcpts[i].addr);
		printf(" %s", qstate_status_name(r->status));
		if (r->text[0]) {
			fputs(" (", stdout);
			queue_puts(stdout, r->text);
			putchar(')');
		}
		putchar('\n');
	}
	qstate_clear(&st);
}

static int
queue_list_one(void *ctx, const struct envelope *env)
{
	const char *spool = ctx;
	char when[64];
	size_t i;

	queue_time(when, sizeof(when), env->arrival, 0);
	printf("%s  %s  %8llu  ", env->qid, when,
	    (unsigned long long)env->size);
	queue_addr(stdout, env->mail_from);
	fputs(" ->", stdout);
	for (i = 0; i < env->nrcpts; i++) {
		fputs(i ? ", " : " ", stdout);
		queue_addr(stdout, env->rcpts[i].addr);
	}
	putchar('\n');
	queue_list_state(spool, env);
	return 0;
}

static int
queue_list(const char *spool)
{
	char err[512];
	int n;

	if ((n = spool_list(spool, queue_list_one, (void *)spool, err,
	    sizeof(err))) < 0) {
		fprintf(stderr, "outpost: %s\n", err);
		return EX_IOERR;
	}
	if (n == 0)
		printf("queue is empty\n");
	else
		printf("%d message%s\n", n, n == 1 ? "" : "s");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "outpost: cannot write the listing: %s\n",
		    strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

static void
queue_field(const char *name, const char *value)
{
	if (value == NULL)
		return;
	printf("%-11s", name);
	queue_puts(stdout, value);
	putchar('\n');
}

/* Prints the header block of the message at offset body: lines up to
 * the first empty one, CRLF shown as a newline. */
static int
queue_show_headers(const char *spool, const char *qid, off_t body)
{
	char path[PATH_MAX], *buf;
	size_t len = 0, i, start = 0;
	ssize_t n;
	int fd, truncated = 0;

	if (spool_msg_path(spool, qid, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		fprintf(stderr, "outpost: cannot open %s: %s\n", path,
		    strerror(errno));
		return EX_IOERR;
	}
	if ((buf = malloc(QUEUE_HDR_MAX)) == NULL) {
		close(fd);
		fprintf(stderr, "outpost: out of memory\n");
		return EX_OSERR;
	}
	while (len < QUEUE_HDR_MAX) {
		n = pread(fd, buf + len, QUEUE_HDR_MAX - len, body + (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "outpost: cannot read %s: %s\n", path,
			    strerror(errno));
			free(buf);
			close(fd);
			return EX_IOERR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	truncated = len == QUEUE_HDR_MAX;
	for (i = 0; i < len; i++) {
		size_t end;

		if (buf[i] != '\n')
			continue;
		end = i > start && buf[i - 1] == '\r' ? i - 1 : i;
		if (end == start) {	/* the empty line: end of headers */
			truncated = 0;
			start = len;
			break;
		}
		queue_put(stdout, buf + start, end - start);
		putchar('\n');
		start = i + 1;
	}
	if (start < len && !truncated) {
		/* a message without a body separator or final newline */
		queue_put(stdout, buf + start, len - start);
		putchar('\n');
	}
	if (truncated)
		printf("[headers longer than %d bytes not shown]\n",
		    QUEUE_HDR_MAX);
	free(buf);
	return 0;
}

static void
queue_notify(unsigned notify)
{
	static const struct {
		unsigned	 flag;
		const char	*name;
	} names[] = {
		{ ENV_NOTIFY_NEVER, "never" },
		{ ENV_NOTIFY_SUCCESS, "success" },
		{ ENV_NOTIFY_FAILURE, "failure" },
		{ ENV_NOTIFY_DELAY, "delay" },
	};
	const char *sep = " notify=";
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(notify & names[i].flag))
			continue;
		printf("%s%s", sep, names[i].name);
		sep = ",";
	}
}

static void
queue_show_state(const char *spool, const struct envelope *env)
{
	struct qstate st;
	char when[64];
	size_t i;
	int found;

	if (qstate_read(spool, env->qid, env->nrcpts, &st, &found) < 0) {
		printf("%-11s(unreadable: %s)\n", "state:", strerror(errno));
		return;
	}
	printf("%-11s%s%s, attempts %d\n", "state:", dlv_msg_state(&st, 0),
	    st.warned ? ", delay warning sent" : "", st.attempts);
	if (st.next > 0 && !st.held) {
		queue_time(when, sizeof(when), st.next, 1);
		printf("%-11s%s\n", "next try:", when);
	}
	for (i = 0; i < env->nrcpts; i++) {
		printf("%-11s", "status:");
		queue_addr(stdout, env->rcpts[i].addr);
		printf(" %s", qstate_status_name(st.rcpts[i].status));
		if (st.rcpts[i].text[0]) {
			fputs(" (", stdout);
			queue_puts(stdout, st.rcpts[i].text);
			putchar(')');
		}
		putchar('\n');
	}
	for (i = 0; i < st.nhist; i++) {
		const struct qstate_hist *h = &st.hist[i];

		queue_time(when, sizeof(when), h->when, 0);
		printf("%-11s%s ", "history:", when);
		if (h->rcpt < env->nrcpts)
			queue_addr(stdout, env->rcpts[h->rcpt].addr);
		printf(" %s", qstate_status_name(h->status));
		if (h->relay[0]) {
			fputs(" via ", stdout);
			queue_puts(stdout, h->relay);
		}
		if (h->text[0]) {
			fputs(": ", stdout);
			queue_puts(stdout, h->text);
		}
		putchar('\n');
	}
	qstate_clear(&st);
}

/* Upper-cases arg into qid (Crockford base32 is case-insensitive for
 * people); 0 when it is a queue id, else -1 with a message. */
static int
queue_qid_arg(const char *arg, char qid[SPOOL_QID_SIZE])
{
	size_t i;

	for (i = 0; i < SPOOL_QID_LEN && arg[i] != '\0'; i++)
		qid[i] = (char)(arg[i] >= 'a' && arg[i] <= 'z' ?
		    arg[i] - 'a' + 'A' : arg[i]);
	qid[i] = '\0';
	if (arg[i] != '\0' || !spool_qid_valid(qid)) {
		fputs("outpost: not a queue id: ", stderr);
		queue_put(stderr, arg, strnlen(arg, 64));
		fputc('\n', stderr);
		return -1;
	}
	return 0;
}

static int
queue_show(const char *spool, const char *arg)
{
	static const char *const bodies[] = { "7bit", "8bitmime",
	    "binarymime" };
	char qid[SPOOL_QID_SIZE], when[64];
	struct envelope env;
	off_t body;
	size_t i;
	int rc;

	if (queue_qid_arg(arg, qid) < 0)
		return EX_DATAERR;
	if (spool_read_envelope(spool, qid, &env, &body) < 0) {
		if (errno == ENOENT) {
			fprintf(stderr, "outpost: no message %s in the queue\n",
			    qid);
			return EX_NOINPUT;
		}
		fprintf(stderr, "outpost: cannot read message %s: %s\n", qid,
		    errno == EBADMSG ? "corrupt envelope" : strerror(errno));
		return EX_IOERR;
	}
	queue_time(when, sizeof(when), env.arrival, 1);
	printf("%-11s%s\n", "id:", env.qid);
	printf("%-11s%s (%lld)\n", "arrival:", when, (long long)env.arrival);
	printf("%-11s%llu bytes\n", "size:", (unsigned long long)env.size);
	printf("%-11s", "from:");
	queue_addr(stdout, env.mail_from);
	putchar('\n');
	queue_field("auth-user:", env.auth_user);
	queue_field("client:", env.client_addr);
	queue_field("helo:", env.helo);
	if ((unsigned)env.body < sizeof(bodies) / sizeof(bodies[0]))
		printf("%-11s%s\n", "body:", bodies[env.body]);
	printf("%-11s%s\n", "smtputf8:", env.smtputf8 ? "yes" : "no");
	/* signed when delivered, for this domain */
	queue_field("dkim:", env.dkim_domain);
	queue_field("envid:", env.envid);
	if (env.ret != ENV_RET_UNSET)
		printf("%-11s%s\n", "ret:",
		    env.ret == ENV_RET_FULL ? "full" : "hdrs");
	for (i = 0; i < env.nrcpts; i++) {
		const struct envelope_rcpt *r = &env.rcpts[i];

		printf("%-11s", "rcpt:");
		queue_addr(stdout, r->addr);
		queue_notify(r->notify);
		if (r->orcpt != NULL) {
			fputs(" orcpt=", stdout);
			queue_puts(stdout, r->orcpt);
		}
		putchar('\n');
	}
	queue_show_state(spool, &env);
	printf("\n");
	rc = queue_show_headers(spool, qid, body);
	envelope_clear(&env);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "outpost: cannot write: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return rc;
}

/* ---- talking to the daemon ---- */

enum ctl_rc { CTL_DONE, CTL_NO_DAEMON, CTL_FAILED };

/*
 * Sends "cmd[ arg]" over the control socket; *out gets the parsed JSON
 * answer.  CTL_NO_DAEMON when nothing listens (no socket, or refused).
 */
static enum ctl_rc
ctl_call(const struct config *cfg, const char *cmd, const char *arg,
    json_t **out)
{
	struct sockaddr_un sun;
	struct timeval tv = { CTL_WAIT_SECS, 0 };
	char path[PATH_MAX], req[128], *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	json_error_t jerr;
	ssize_t n;
	int fd;

	*out = NULL;
	if (cfg->data_dir == NULL || dlv_ctl_path(cfg, path, sizeof(path)) < 0 ||
	    strlen(path) >= sizeof(sun.sun_path))
		return CTL_NO_DAEMON;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return CTL_NO_DAEMON;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return CTL_NO_DAEMON;
		fprintf(stderr, "outpost: cannot reach outpostd at %s: %s\n",
		    path, strerror(e));
		return CTL_FAILED;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "%s%s%s\n", cmd, arg ? " " : "",
	    arg ? arg : "");
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto io;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CTL_REPLY_MAX)
				goto io;
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL)
				goto io;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto io;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL || (*out = json_loadb(buf, len, 0, &jerr)) == NULL ||
	    !json_is_object(*out)) {
		fprintf(stderr, "outpost: outpostd sent an answer that is not "
		    "JSON\n");
		json_decref(*out);
		*out = NULL;
		free(buf);
		return CTL_FAILED;
	}
	free(buf);
	return CTL_DONE;
io:
	fprintf(stderr, "outpost: no answer from outpostd at %s: %s\n", path,
	    strerror(errno ? errno : EIO));
	free(buf);
	close(fd);
	return CTL_FAILED;
}

/* 0 when the answer says ok, else prints its error and returns the exit
 * code (EX_NOINPUT for an unknown message). */
static int
ctl_check(json_t *res)
{
	const char *e;

	if (json_is_true(json_object_get(res, "ok")))
		return 0;
	e = json_string_value(json_object_get(res, "error"));
	fputs("outpost: ", stderr);
	queue_puts(stderr, e ? e : "the daemon refused");
	fputc('\n', stderr);
	return e && strncmp(e, "no message", 10) == 0 ? EX_NOINPUT :
	    EX_SOFTWARE;
}

/* With no daemon: the spool lock keeps one from starting meanwhile. */
static int
queue_lock(const char *spool)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", spool);
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return -2;	/* no spool yet: no message either */
		fprintf(stderr, "outpost: cannot open %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "outpost: outpostd holds the spool %s but its "
		    "control socket does not answer; try again, or stop it\n",
		    spool);
		close(fd);
		return -1;
	}
	return fd;
}

static int
queue_offline(const char *spool, const char *verb, const char *qid)
{
	struct envelope env;
	struct qstate st;
	int lk, found, rc = 0;

	if ((lk = queue_lock(spool)) == -1)
		return EX_UNAVAILABLE;
	if (spool_read_envelope(spool, qid, &env, NULL) < 0) {
		if (lk >= 0)
			close(lk);
		if (errno == ENOENT) {
			fprintf(stderr, "outpost: no message %s in the queue\n",
			    qid);
			return EX_NOINPUT;
		}
		fprintf(stderr, "outpost: cannot read message %s: %s\n", qid,
		    strerror(errno));
		return EX_IOERR;
	}
	if (strcmp(verb, "delete") == 0) {
		if (spool_msg_remove(spool, qid) < 0) {
			fprintf(stderr, "outpost: cannot remove %s: %s\n", qid,
			    strerror(errno));
			rc = EX_IOERR;
		} else
			printf("%s: deleted\n", qid);
	} else if (qstate_read(spool, qid, env.nrcpts, &st, &found) < 0 &&
	    qstate_init(&st, env.nrcpts) < 0) {
		fprintf(stderr, "outpost: cannot read the state of %s: %s\n",
		    qid, strerror(errno));
		rc = EX_IOERR;
	} else {
		st.held = strcmp(verb, "hold") == 0;
		if (!st.held)
			st.next = 0;
		if (qstate_write(spool, qid, &st) < 0) {
			fprintf(stderr, "outpost: cannot write the state of %s: "
			    "%s\n", qid, strerror(errno));
			rc = EX_IOERR;
		} else
			printf("%s: %s (outpostd is not running; this takes "
			    "effect when it starts)\n", qid,
			    st.held ? "held" : "released");
		qstate_clear(&st);
	}
	envelope_clear(&env);
	if (lk >= 0)
		close(lk);
	return rc;
}

static int
queue_control(const struct config *cfg, const char *verb, const char *arg)
{
	char qid[SPOOL_QID_SIZE];
	json_t *res;
	int rc;

	if (arg != NULL && queue_qid_arg(arg, qid) < 0)
		return EX_DATAERR;
	switch (ctl_call(cfg, verb, arg ? qid : NULL, &res)) {
	case CTL_DONE:
		rc = ctl_check(res);
		json_decref(res);
		if (rc == 0)
			printf(arg ? "%s: %s\n" : "%s%s: every message is "
			    "tried now\n", arg ? qid : "", arg ?
			    (strcmp(verb, "delete") == 0 ? "deleted" :
			    strcmp(verb, "hold") == 0 ? "held" : "released") :
			    "queue flush");
		return rc;
	case CTL_FAILED:
		return EX_UNAVAILABLE;
	case CTL_NO_DAEMON:
		break;
	}
	if (arg == NULL) {
		printf("outpostd is not running: every queued message is tried "
		    "when it starts\n");
		return 0;
	}
	return queue_offline(cfg->spool_dir, verb, qid);
}

/* ---- status ---- */

struct status_acc {
	const char *spool;
	unsigned long counts[4];	/* [1] queued, [2] deferred, [3] held */
	unsigned long n;
	time_t oldest;
	json_t *dests;			/* domain -> deferred recipients */
};

static int
status_one(void *ctx, const struct envelope *env)
{
	struct status_acc *a = ctx;
	struct qstate st;
	const char *state;
	size_t i;
	int found;

	a->n++;
	if (a->oldest == 0 || env->arrival < a->oldest)
		a->oldest = env->arrival;
	if (qstate_read(a->spool, env->qid, env->nrcpts, &st, &found) < 0)
		return 0;
	state = dlv_msg_state(&st, 0);
	a->counts[strcmp(state, "held") == 0 ? 3 :
	    strcmp(state, "deferred") == 0 ? 2 : 1]++;
	for (i = 0; i < env->nrcpts; i++) {
		const char *at;
		json_t *v;

		if (st.rcpts[i].status != QS_DEFERRED)
			continue;
		at = strrchr(env->rcpts[i].addr, '@');
		at = at ? at + 1 : "";
		v = json_object_get(a->dests, at);
		json_object_set_new(a->dests, at,
		    json_integer(v ? json_integer_value(v) + 1 : 1));
	}
	qstate_clear(&st);
	return 0;
}

static json_int_t
jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

int
cli_status(int argc, char **argv, const struct config *cfg)
{
	struct status_acc a;
	char age[32], err[512];
	json_t *res, *c, *d;
	const char *key;
	json_t *val;
	size_t i;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0) {
			printf("usage: outpost [-c FILE] status\n");
			return 0;
		}
		fprintf(stderr, "outpost: status takes no arguments\n");
		return EX_USAGE;
	}
	if (cfg == NULL || cfg->spool_dir == NULL) {
		fprintf(stderr, "outpost: no spool directory configured\n");
		return EX_CONFIG;
	}
	switch (ctl_call(cfg, "status", NULL, &res)) {
	case CTL_FAILED:
		return EX_UNAVAILABLE;
	case CTL_DONE:
		if (ctl_check(res) != 0) {
			json_decref(res);
			return EX_SOFTWARE;
		}
		c = json_object_get(res, "counts");
		queue_age(age, sizeof(age), (time_t)jint(res, "uptime"));
		printf("outpostd:   running (up %s)\n", age);
		printf("messages:   %lld (active %lld, queued %lld, deferred "
		    "%lld, held %lld)\n", (long long)jint(res, "messages"),
		    (long long)jint(c, "active"), (long long)jint(c, "queued"),
		    (long long)jint(c, "deferred"), (long long)jint(c, "held"));
		queue_age(age, sizeof(age), (time_t)jint(res, "oldest_age"));
		printf("oldest:     %s\n", jint(res, "messages") ? age : "-");
		printf("since start: %lld sent, %lld bounced, %lld deferrals, "
		    "%lld notifications\n", (long long)jint(res, "sent"),
		    (long long)jint(res, "bounced"),
		    (long long)jint(res, "deferrals"),
		    (long long)jint(res, "notifications"));
		if (json_object_get(res, "auth_failures_1h") != NULL)
			printf("auth failures: %lld in the last hour\n",
			    (long long)jint(res, "auth_failures_1h"));
		d = json_object_get(res, "destinations");
		if (json_array_size(d) > 0)
			printf("destinations:\n");
		for (i = 0; i < json_array_size(d); i++) {
			json_t *e = json_array_get(d, i);
			const char *s;

			printf("  ");
			s = json_string_value(json_object_get(e, "destination"));
			queue_puts(stdout, s ? s : "?");
			printf(": %lld deferred, %lld sent, %lld queued, %lld "
			    "connections", (long long)jint(e, "deferrals"),
			    (long long)jint(e, "sent"), (long long)jint(e, "queued"),
			    (long long)jint(e, "connections"));
			if (jint(e, "slowed_until") > (json_int_t)time(NULL))
				printf(", slowed down");
			s = json_string_value(json_object_get(e, "last_error"));
			if (s != NULL && *s) {
				printf("; last error: ");
				queue_puts(stdout, s);
			}
			putchar('\n');
		}
		json_decref(res);
		return 0;
	case CTL_NO_DAEMON:
		break;
	}
	memset(&a, 0, sizeof(a));
	a.spool = cfg->spool_dir;
	if ((a.dests = json_object()) == NULL)
		return EX_OSERR;
	if (spool_list(cfg->spool_dir, status_one, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "outpost: %s\n", err);
		json_decref(a.dests);
		return EX_IOERR;
	}
	printf("outpostd:   not running\n");
	printf("messages:   %lu (queued %lu, deferred %lu, held %lu)\n", a.n,
	    a.counts[1], a.counts[2], a.counts[3]);
	queue_age(age, sizeof(age), time(NULL) - a.oldest);
	printf("oldest:     %s\n", a.n ? age : "-");
	if (json_object_size(a.dests) > 0)
		printf("destinations:\n");
	json_object_foreach(a.dests, key, val) {
		printf("  ");
		queue_puts(stdout, key);
		printf(": %lld deferred\n", (long long)json_integer_value(val));
	}
	json_decref(a.dests);
	return 0;
}

int
cli_queue(int argc, char **argv, const struct config *cfg)
{
	const char *verb;

	if (argc < 2) {
		fprintf(stderr, "outpost: queue needs a command: list or "
		    "show ID\n");
		return EX_USAGE;
	}
	verb = argv[1];
	if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 ||
	    strcmp(verb, "help") == 0) {
		queue_usage(stdout);
		return 0;
	}
	if (cfg == NULL || cfg->spool_dir == NULL) {
		fprintf(stderr, "outpost: no spool directory configured\n");
		return EX_CONFIG;
	}
	if (strcmp(verb, "list") == 0) {
		if (argc != 2) {
			fprintf(stderr, "outpost: queue list takes no "
			    "arguments\n");
			return EX_USAGE;
		}
		return queue_list(cfg->spool_dir);
	}
	if (strcmp(verb, "show") == 0) {
		if (argc != 3) {
			fprintf(stderr, "outpost: usage: outpost queue show "
			    "ID\n");
			return EX_USAGE;
		}
		return queue_show(cfg->spool_dir, argv[2]);
	}
	if (strcmp(verb, "flush") == 0) {
		if (argc != 2) {
			fprintf(stderr, "outpost: queue flush takes no "
			    "arguments\n");
			return EX_USAGE;
		}
		return queue_control(cfg, verb, NULL);
	}
	if (strcmp(verb, "delete") == 0 || strcmp(verb, "hold") == 0 ||
	    strcmp(verb, "release") == 0) {
		if (argc != 3) {
			fprintf(stderr, "outpost: usage: outpost queue %s ID\n",
			    verb);
			return EX_USAGE;
		}
		return queue_control(cfg, verb, argv[2]);
	}
	fputs("outpost: unknown queue command: ", stderr);
	queue_put(stderr, verb, strnlen(verb, 64));
	fputs(" (want list, show, flush, delete, hold or release)\n", stderr);
	return EX_USAGE;
}
