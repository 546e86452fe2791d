/*
 * cli/queue — `outpost queue`: look at the spool.
 *
 *   outpost queue list        one line per message, oldest first
 *   outpost queue show ID     the envelope, then the message headers
 *
 * Reads SPOOL/queue/ directly (spool_list, spool_read_envelope) without
 * the daemon's lock: committed files are immutable, so reading while
 * outpostd runs is safe.  Everything printed comes from the network, so
 * it goes through queue_put() (control bytes, DEL, 8-bit bytes and '\'
 * become \xNN): a hostile address cannot drive the operator's terminal.
 *
 * flush, delete, hold and release need the daemon's scheduler and are
 * reported as not available yet.
 * Fails: EX_USAGE for bad arguments, EX_DATAERR for a malformed queue id,
 * EX_NOINPUT for an unknown one, EX_IOERR when the spool cannot be read.
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

#include "cli/cli.h"
#include "queue/spool.h"
#include "util/config.h"

#define QUEUE_HDR_MAX	(64 * 1024)	/* header block shown by show */

static void
queue_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: outpost [-c FILE] queue list\n"
	    "       outpost [-c FILE] queue show ID\n");
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

static int
queue_list_one(void *ctx, const struct envelope *env)
{
	char when[64];
	size_t i;

	(void)ctx;
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
	return 0;
}

static int
queue_list(const char *spool)
{
	char err[512];
	int n;

	if ((n = spool_list(spool, queue_list_one, NULL, err,
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

	/* Crockford base32 is case-insensitive for people. */
	for (i = 0; i < SPOOL_QID_LEN && arg[i] != '\0'; i++)
		qid[i] = (char)(arg[i] >= 'a' && arg[i] <= 'z' ?
		    arg[i] - 'a' + 'A' : arg[i]);
	qid[i] = '\0';
	if (arg[i] != '\0' || !spool_qid_valid(qid)) {
		fputs("outpost: not a queue id: ", stderr);
		queue_put(stderr, arg, strnlen(arg, 64));
		fputc('\n', stderr);
		return EX_DATAERR;
	}
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
	printf("\n");
	rc = queue_show_headers(spool, qid, body);
	envelope_clear(&env);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "outpost: cannot write: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return rc;
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
	if (strcmp(verb, "flush") == 0 || strcmp(verb, "delete") == 0 ||
	    strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0) {
		fprintf(stderr, "outpost: queue %s is not available yet (it "
		    "needs the delivery scheduler)\n", verb);
		return EX_UNAVAILABLE;
	}
	fputs("outpost: unknown queue command: ", stderr);
	queue_put(stderr, verb, strnlen(verb, 64));
	fputs(" (want list or show ID)\n", stderr);
	return EX_USAGE;
}
