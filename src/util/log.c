/*
 * log — the process-wide logger (see log.h).
 *
 * Owns three globals set by log_init(): the ident, the level and whether
 * syslog is on.  Each line is formatted into a stack buffer of
 * LOG_LINE_MAX bytes and written to stderr with a single write(2), so
 * lines from several threads never interleave (LOG_LINE_MAX is below
 * PIPE_BUF, so this holds even when stderr is a pipe to a supervisor).
 *
 * Failure: logging never fails the caller.  A short or failed write is
 * retried once for EINTR and otherwise dropped; over-long lines are cut
 * and end in "...".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_IDENT_MAX 64

static char		log_ident[LOG_IDENT_MAX] = "outpost";
static atomic_int	log_level = LOGL_INFO;
static atomic_int	log_use_syslog = 0;
static long		log_pid;	/* cached: getpid() per line is a syscall */

void
log_init(const char *ident, int level, int use_syslog)
{
	log_pid = (long)getpid();
	if (ident != NULL && *ident != '\0')
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_set_level(level);
	if (use_syslog && !atomic_load(&log_use_syslog))
		/* openlog keeps the pointer: log_ident is static storage. */
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && atomic_load(&log_use_syslog))
		closelog();
	atomic_store(&log_use_syslog, use_syslog ? 1 : 0);
}

void
log_set_level(int level)
{
	if (level < LOGL_ERR)
		level = LOGL_ERR;
	if (level > LOGL_DEBUG)
		level = LOGL_DEBUG;
	atomic_store(&log_level, level);
}

int
log_get_level(void)
{
	return atomic_load(&log_level);
}

int
log_level_parse(const char *s)
{
	static const struct {
		const char	*name;
		int		 level;
	} names[] = {
		{ "err", LOGL_ERR }, { "error", LOGL_ERR },
		{ "warn", LOGL_WARN }, { "warning", LOGL_WARN },
		{ "info", LOGL_INFO }, { "debug", LOGL_DEBUG },
	};
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].level;
	return -1;
}

/* Postfix style: info lines carry no level word. */
static const char *
log_prefix(int level)
{
	switch (level) {
	case LOGL_ERR:
		return "error: ";
	case LOGL_WARN:
		return "warning: ";
	case LOGL_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

static int
log_syslog_prio(int level)
{
	switch (level) {
	case LOGL_ERR:
		return LOG_ERR;
	case LOGL_WARN:
		return LOG_WARNING;
	case LOGL_DEBUG:
		return LOG_DEBUG;
	default:
		return LOG_INFO;
	}
}

static void
log_write_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void
log_msg(int level, const char *fmt, ...)
{
	char		 line[LOG_LINE_MAX];
	struct timespec	 ts;
	struct tm	 tm;
	va_list		 ap;
	size_t		 hdr, len, i;
	int		 n, saved_errno = errno;

	if (level > atomic_load(&log_level))
		return;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL) {
		memset(&tm, 0, sizeof(tm));
		ts.tv_nsec = 0;
	}
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, log_ident,
	    log_pid != 0 ? log_pid : (long)getpid(), log_prefix(level));
	if (n < 0)
		return;
	hdr = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

	/* Leave room for the newline that ends every line. */
	va_start(ap, fmt);
	n = vsnprintf(line + hdr, sizeof(line) - hdr - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len = hdr + (size_t)n;
	if (len > sizeof(line) - 2) {
		len = sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	/* One event, one line: an embedded newline would forge a second. */
	for (i = hdr; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len] = '\n';
	log_write_all(line, len + 1);

	if (atomic_load(&log_use_syslog)) {
		line[len] = '\0';
		/* syslog adds its own time stamp and ident. */
		syslog(log_syslog_prio(level), "%s%s", log_prefix(level),
		    line + hdr);
	}
	errno = saved_errno;
}

/*
 * Escapes one byte into out (at least 5 bytes).  Returns its length.
 */
static size_t
log_escape_byte(char *out, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	if (c >= 0x20 && c < 0x7f && c != '\\') {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 0xf];
	return 4;
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *)src;
	char	 unit[4];
	size_t	 i, j, pos = 0, ulen, rest;

	if (dst == NULL || dstlen == 0)
		return dst;
	if (src == NULL)
		srclen = 0;
	else if (srclen == SIZE_MAX)
		srclen = strlen(src);

	for (i = 0; i < srclen; i++) {
		ulen = log_escape_byte(unit, s[i]);
		if (pos + ulen > dstlen - 1)
			goto truncate;
		memcpy(dst + pos, unit, ulen);
		pos += ulen;
	}
	dst[pos] = '\0';
	return dst;

truncate:
	/*
	 * Back off whole escape units until "..." fits, so that the output
	 * never ends in half an escape like "\x0".
	 */
	pos = 0;
	for (j = 0; j < i; j++) {
		ulen = log_escape_byte(unit, s[j]);
		if (pos + ulen + 3 > dstlen - 1)
			break;
		memcpy(dst + pos, unit, ulen);
		pos += ulen;
	}
	rest = dstlen - 1 - pos;
	if (rest > 3)
		rest = 3;
	memcpy(dst + pos, "...", rest);
	dst[pos + rest] = '\0';
	return dst;
}
