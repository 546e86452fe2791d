/*
 * log — one line per event, Postfix style: "QID: key=value, key=value".
 *
 * Lines go to stderr (always) and to syslog (when enabled).  Thread-safe:
 * each line is formatted into a local buffer and written with one write(2),
 * so lines from several event-loop threads never interleave.  Lines longer
 * than LOG_LINE_MAX are truncated with "...".
 *
 * Never log passwords, AUTH payloads or message bodies; pass untrusted
 * strings (HELO names, addresses, replies) through log_escape() first.
 */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

#include <stddef.h>

enum log_level {
	LOGL_ERR = 0,
	LOGL_WARN = 1,
	LOGL_INFO = 2,
	LOGL_DEBUG = 3,
};

#define LOG_LINE_MAX 2048

/* ident: "outpostd"; level: lines above it are dropped. */
void	log_init(const char *ident, int level, int use_syslog);
void	log_set_level(int level);
int	log_get_level(void);
/* Returns LOGL_* for "err|error|warn|warning|info|debug", or -1. */
int	log_level_parse(const char *s);

void	log_msg(int level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOGL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (log_get_level() >= LOGL_DEBUG) \
	log_msg(LOGL_DEBUG, __VA_ARGS__); } while (0)

/*
 * Copies at most srclen bytes of untrusted src into dst as printable
 * ASCII: control bytes, DEL, backslash and bytes >= 0x80 become \xNN.
 * Always NUL-terminates (dstlen > 0); truncates with "..." when dst is too
 * small.  Returns dst, so it can be used inline in a log_msg() argument.
 * A NUL inside the first srclen bytes is escaped too (\x00); pass
 * srclen = SIZE_MAX for a NUL-terminated src.
 */
char	*log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
