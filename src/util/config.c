/*
 * config — the INI reader and outpost.conf (see config.h).
 *
 * The reader (ini_parse_file/ini_parse_string) knows nothing about
 * outpost: it splits lines into sections and key = value pairs and hands
 * them to a callback, adding "FILE:LINE: " to any error.  config_load()
 * is one such callback driven by a table of known keys (keys[] below):
 * each entry says where the value goes, its type and its allowed range,
 * so validation and the error messages live in one place.
 *
 * Ownership: struct config owns every string in it (see config_free()).
 * Failure: the first error stops the load; the caller gets -1, a message
 * naming the file, the line and the key, and a zeroed struct config.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/cidr.h"
#include "util/config.h"
#include "util/log.h"

/* A config file is written by people; anything bigger is a mistake. */
#define INI_FILE_MAX	(16UL * 1024 * 1024)
#define INI_MSG_MAX	1024
#define HOST_MAX	256

#define DAY		86400

/* ---------------------------------------------------------------- */
/* The INI reader                                                   */
/* ---------------------------------------------------------------- */

struct ini_state {
	const char	*name;		/* file name for messages */
	ini_handler	 fn;
	void		*ctx;
	char		*section;	/* current section, heap */
	unsigned long	 lineno;
	char		*err;
	size_t		 errlen;
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
ini_error(struct ini_state *st, const char *msg)
{
	seterr(st->err, st->errlen, "%s:%lu: %s", st->name, st->lineno, msg);
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trims spaces and tabs on both ends, in place.  Returns the new start. */
static char *
trim(char *s)
{
	size_t len;

	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

static int
ini_call(struct ini_state *st, const char *key, const char *value)
{
	char msg[INI_MSG_MAX];

	msg[0] = '\0';
	if (st->fn(st->ctx, st->section, key, value, msg, sizeof(msg)) == 0)
		return 0;
	ini_error(st, msg[0] != '\0' ? msg : "invalid setting");
	return -1;
}

/*
 * "[ listener   submission ]" -> section "listener submission".
 */
static int
ini_header(struct ini_state *st, char *line)
{
	char	*end, *name, *out, *p;

	end = line + strlen(line) - 1;
	if (*end != ']') {
		ini_error(st, strchr(line, ']') != NULL ?
		    "unexpected text after ']' (comments must be on their own line)" :
		    "section header without closing ']'");
		return -1;
	}
	*end = '\0';
	name = trim(line + 1);
	if (*name == '\0') {
		ini_error(st, "empty section name");
		return -1;
	}
	if (strpbrk(name, "[]") != NULL) {
		ini_error(st, "'[' or ']' inside a section name");
		return -1;
	}
	/* Collapse runs of blanks into one space. */
	for (p = out = name; *p != '\0'; p++) {
		if (is_blank(*p)) {
			if (out > name && out[-1] == ' ')
				continue;
			*out++ = ' ';
		} else
			*out++ = *p;
	}
	*out = '\0';

	free(st->section);
	if ((st->section = strdup(name)) == NULL) {
		ini_error(st, "out of memory");
		return -1;
	}
	return ini_call(st, NULL, NULL);
}

/*
 * One line, without its newline.  len counts every byte read, so that a
 * NUL inside the line is caught.
 */
static int
ini_line(struct ini_state *st, char *line, size_t len)
{
	char	*s, *eq, *key, *value;

	if (memchr(line, '\0', len) != NULL) {
		ini_error(st, "NUL byte in line");
		return -1;
	}
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	/* A UTF-8 byte order mark from some Windows editors. */
	if (st->lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3;

	s = trim(line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return ini_header(st, s);

	if ((eq = strchr(s, '=')) == NULL) {
		ini_error(st, "expected \"key = value\" or a [section] header");
		return -1;
	}
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (*key == '\0') {
		ini_error(st, "missing key before '='");
		return -1;
	}
	return ini_call(st, key, value);
}

static void
ini_init(struct ini_state *st, const char *name, ini_handler fn, void *ctx,
    char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	st->name = name != NULL ? name : "-";
	st->fn = fn;
	st->ctx = ctx;
	st->err = err;
	st->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

int
ini_parse_file(const char *path, ini_handler fn, void *ctx, char *err,
    size_t errlen)
{
	struct ini_state st;
	struct stat	 sb;
	FILE		*fp;
	char		*line = NULL;
	size_t		 cap = 0, total = 0;
	ssize_t		 n;
	int		 rc = 0;

	ini_init(&st, path, fn, ctx, err, errlen);
	if ((fp = fopen(path, "re")) == NULL) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(EISDIR));
		fclose(fp);
		return -1;
	}
	if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uintmax_t)sb.st_size > INI_FILE_MAX) {
		seterr(err, errlen, "%s: file too large (over %lu bytes)",
		    path, INI_FILE_MAX);
		fclose(fp);
		return -1;
	}
	if ((st.section = strdup("")) == NULL) {
		seterr(err, errlen, "%s: out of memory", path);
		fclose(fp);
		return -1;
	}

	errno = 0;
	while ((n = getline(&line, &cap, fp)) >= 0) {
		st.lineno++;
		total += (size_t)n;
		if (total > INI_FILE_MAX) {
			ini_error(&st, "file too large");
			rc = -1;
			break;
		}
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (ini_line(&st, line, (size_t)n) != 0) {
			rc = -1;
			break;
		}
		errno = 0;
	}
	if (rc == 0 && ferror(fp)) {
		seterr(err, errlen, "%s: read error: %s", path,
		    strerror(errno != 0 ? errno : EIO));
		rc = -1;
	}
	free(line);
	free(st.section);
	fclose(fp);
	return rc;
}

int
ini_parse_string(const char *name, const char *text, ini_handler fn,
    void *ctx, char *err, size_t errlen)
{
	struct ini_state st;
	char	*copy, *p, *nl;
	int	 rc = 0;

	ini_init(&st, name, fn, ctx, err, errlen);
	if (text == NULL)
		text = "";
	if ((copy = strdup(text)) == NULL ||
	    (st.section = strdup("")) == NULL) {
		free(copy);
		seterr(err, errlen, "%s: out of memory", st.name);
		return -1;
	}
	for (p = copy; *p != '\0'; p = nl + 1) {
		st.lineno++;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl = '\0';
		if (ini_line(&st, p, strlen(p)) != 0) {
			rc = -1;
			break;
		}
		if (nl == NULL)
			break;
	}
	free(copy);
	free(st.section);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Value parsers                                                    */
/* ---------------------------------------------------------------- */

/* Digits only: no sign, no blanks, no base prefix. */
static int
parse_u64_prefix(const char **sp, uint64_t *out)
{
	const char	*s = *sp;
	uint64_t	 v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*sp = s;
	*out = v;
	return 0;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v;

	if (s == NULL || parse_u64_prefix(&s, &v) != 0 || *s != '\0')
		return -1;
	*out = v;
	return 0;
}

int
config_parse_duration(const char *s, int *seconds)
{
	uint64_t v, mult;

	if (s == NULL || parse_u64_prefix(&s, &v) != 0)
		return -1;
	switch (*s) {
	case '\0':
		mult = 1;
		break;
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = DAY;
		break;
	case 'w':
		mult = 7 * DAY;
		break;
	default:
		return -1;
	}
	if (*s != '\0' && s[1] != '\0')
		return -1;
	if (v > (uint64_t)INT_MAX / mult)
		return -1;
	*seconds = (int)(v * mult);
	return 0;
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v, mult = 1;

	if (s == NULL || parse_u64_prefix(&s, &v) != 0)
		return -1;
	switch (*s) {
	case 'k': case 'K':
		mult = 1ULL << 10;
		s++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		s++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		s++;
		break;
	case 't': case 'T':
		mult = 1ULL << 40;
		s++;
		break;
	}
	/* "35M", "35MB", "35MiB"; a plain number may say "B" too. */
	if (mult > 1 && (strcmp(s, "iB") == 0 || strcmp(s, "ib") == 0))
		s += 2;
	else if (*s == 'B' || *s == 'b')
		s++;
	if (*s != '\0')
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*bytes = v * mult;
	return 0;
}

int
config_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int
config_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char	*colon, *h;
	size_t		 n;
	uint64_t	 p;

	if (s == NULL || host == NULL || hostlen == 0)
		return -1;
	if (*s == '[') {
		h = s + 1;
		if ((colon = strchr(h, ']')) == NULL)
			return -1;
		n = (size_t)(colon - h);
		colon++;
		if (*colon != ':')
			return -1;
	} else {
		h = s;
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		n = (size_t)(colon - h);
		/* An IPv6 address must be in brackets to carry a port. */
		if (memchr(h, ':', n) != NULL)
			return -1;
	}
	if (n == 0 || n >= hostlen)
		return -1;
	if (parse_u64(colon + 1, &p) != 0 || p < 1 || p > 65535)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

/* RFC 1123 host name: labels of letters, digits and inner hyphens. */
static bool
valid_hostname(const char *s)
{
	size_t	label = 0, total = 0;
	char	prev = '.';

	for (; *s != '\0'; s++, total++) {
		if (*s == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || (*s == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else
			return false;
		prev = *s;
	}
	return total > 0 && total <= 253 && label > 0 && prev != '-';
}

static bool
valid_ip(const char *s, int af)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(af, s, buf) == 1;
}

enum hp_kind {
	HP_LISTEN,	/* ADDR:PORT or *:PORT */
	HP_ADDR,	/* ADDR:PORT (an IP address) */
	HP_HOST,	/* HOST:PORT (a name or an IP address) */
};

static int
check_hostport(const char *s, enum hp_kind kind, int *port)
{
	char host[HOST_MAX];

	if (config_split_hostport(s, host, sizeof(host), port) != 0)
		return -1;
	if (*s == '[')
		return valid_ip(host, AF_INET6) ? 0 : -1;
	if (valid_ip(host, AF_INET))
		return 0;
	if (kind == HP_LISTEN)
		return strcmp(host, "*") == 0 ? 0 : -1;
	if (kind == HP_HOST)
		return valid_hostname(host) ? 0 : -1;
	return -1;
}

static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Goes into SMTP replies and HTTP redirects: no blanks, no controls. */
static bool
valid_url(const char *s)
{
	const char *p;

	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return strlen(s) > 8 && strlen(s) <= 2048;
}

/* Renders seconds as the largest exact unit, for messages. */
static void
fmt_duration(char *buf, size_t len, uint64_t s)
{
	if (s != 0 && s % DAY == 0)
		snprintf(buf, len, "%llud", (unsigned long long)(s / DAY));
	else if (s != 0 && s % 3600 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
	else if (s != 0 && s % 60 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
}

static void
fmt_size(char *buf, size_t len, uint64_t b)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 4; i > 0; i--) {
		uint64_t m = 1ULL << (10 * i);

		if (b != 0 && b % m == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(b / m),
			    units[i - 1]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)b);
}

/* ---------------------------------------------------------------- */
/* The key table                                                    */
/* ---------------------------------------------------------------- */

enum ktype {
	K_STR,		/* free text (no control characters); "" = default */
	K_PATH,		/* resolved against the config directory */
	K_INT,		/* int in [min, max] */
	K_U64,		/* uint64_t in [min, max], no suffix */
	K_DUR,		/* int seconds in [min, max] */
	K_SIZE,		/* uint64_t bytes in [min, max] */
	K_BOOL,		/* int 0/1 */
	K_CHOICE,	/* char *, one of choices[] */
	K_HOST,		/* char *, a DNS host name */
	K_HOSTPORT,	/* char *, HOST:PORT */
	K_ADDRPORT,	/* char *, ADDR:PORT */
	K_URL,		/* char *, http(s) URL */
	K_LOGLEVEL,	/* int LOGL_* */
	K_LABEL,	/* char *, a DNS label (DKIM selector) */
};

struct keydef {
	const char		*section;
	const char		*key;
	enum ktype		 type;
	size_t			 off;
	uint64_t		 min, max;
	const char *const	*choices;
};

static const char *const smarthost_tls_choices[] = {
	"none", "starttls", "implicit", NULL
};
static const char *const delivery_tls_choices[] = {
	"opportunistic", "required", "verify", NULL
};
static const char *const sender_rule_choices[] = {
	"reject", "rewrite", NULL
};
static const char *const spool_flush_choices[] = {
	"file", "filesystem", NULL
};
static const char *const listener_tls_choices[] = {
	"starttls", "implicit", NULL
};

#define F(field)	offsetof(struct config, field)

static const struct keydef keys[] = {
	{ "server", "hostname", K_HOST, F(hostname), 0, 0, NULL },
	{ "server", "domain", K_HOST, F(domain), 0, 0, NULL },
	{ "server", "data_dir", K_PATH, F(data_dir), 0, 0, NULL },
	{ "server", "workers", K_INT, F(workers), 0, 256, NULL },
	{ "server", "help_url", K_URL, F(help_url), 0, 0, NULL },
	{ "server", "received_show_user", K_BOOL, F(received_show_user), 0, 0, NULL },
	{ "server", "user", K_STR, F(run_user), 0, 0, NULL },
	{ "server", "group", K_STR, F(run_group), 0, 0, NULL },

	{ "tls", "cert", K_PATH, F(tls_cert), 0, 0, NULL },
	{ "tls", "key", K_PATH, F(tls_key), 0, 0, NULL },
	{ "tls", "ca", K_PATH, F(tls_ca), 0, 0, NULL },
	{ "tls", "ciphers", K_STR, F(tls_ciphers), 0, 0, NULL },
	{ "tls", "ciphersuites", K_STR, F(tls_ciphersuites), 0, 0, NULL },

	{ "accounts", "database", K_PATH, F(accounts_db), 0, 0, NULL },
	{ "accounts", "argon2_opslimit", K_U64, F(argon2_opslimit),
	    crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_OPSLIMIT_MAX, NULL },
	{ "accounts", "argon2_memlimit", K_SIZE, F(argon2_memlimit),
	    crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_MEMLIMIT_MAX, NULL },
	{ "accounts", "auth_threads", K_INT, F(auth_threads), 0, 256, NULL },
	{ "accounts", "sender_rule", K_CHOICE, F(sender_rule), 0, 0,
	    sender_rule_choices },
	{ "accounts", "rewrite_header", K_STR, F(rewrite_header), 0, 0, NULL },
	{ "accounts", "auth_cache_ttl", K_DUR, F(auth_cache_ttl), 0, DAY, NULL },
	{ "accounts", "counter_flush", K_DUR, F(counter_flush), 1, 3600, NULL },

	{ "spool", "dir", K_PATH, F(spool_dir), 0, 0, NULL },
	{ "spool", "min_free_space", K_SIZE, F(min_free_space), 0, 1ULL << 50, NULL },
	{ "spool", "flush", K_CHOICE, F(spool_flush), 0, 0, spool_flush_choices },

	{ "limits", "max_message_size", K_SIZE, F(max_message_size),
	    1024, 1ULL << 40, NULL },
	{ "limits", "max_recipients", K_INT, F(max_recipients), 1, 100000, NULL },
	{ "limits", "idle_timeout", K_DUR, F(idle_timeout), 1, DAY, NULL },
	{ "limits", "data_timeout", K_DUR, F(data_timeout), 1, DAY, NULL },
	{ "limits", "max_connections", K_INT, F(max_connections), 1, 1000000, NULL },
	{ "limits", "max_connections_per_ip", K_INT, F(max_connections_per_ip),
	    1, 1000000, NULL },
	{ "limits", "max_errors", K_INT, F(max_errors), 1, 10000, NULL },
	{ "limits", "max_received", K_INT, F(max_received), 1, 1000, NULL },
	{ "limits", "min_data_rate", K_SIZE, F(min_data_rate), 0, 1ULL << 40, NULL },
	{ "limits", "daily_messages", K_INT, F(daily_messages), 1, 1000000000, NULL },
	{ "limits", "daily_recipients", K_INT, F(daily_recipients),
	    1, 1000000000, NULL },
	{ "limits", "auth_failures", K_INT, F(auth_failures), 1, 100000, NULL },
	{ "limits", "auth_failure_window", K_DUR, F(auth_failure_window),
	    1, 7 * DAY, NULL },
	{ "limits", "auth_failure_delay", K_DUR, F(auth_failure_delay),
	    0, 60, NULL },
	{ "limits", "hourly_messages", K_INT, F(hourly_messages),
	    0, 1000000000, NULL },
	{ "limits", "hold_after_quota_hits", K_INT, F(hold_after_quota_hits),
	    0, 1000000, NULL },
	{ "limits", "hold_after_bounces", K_INT, F(hold_after_bounces),
	    0, 1000000, NULL },
	{ "limits", "bounce_window", K_DUR, F(bounce_window), 1, 7 * DAY, NULL },

	{ "delivery", "smarthost", K_HOSTPORT, F(smarthost), 0, 0, NULL },
	{ "delivery", "smarthost_tls", K_CHOICE, F(smarthost_tls), 0, 0,
	    smarthost_tls_choices },
	{ "delivery", "smarthost_user", K_STR, F(smarthost_user), 0, 0, NULL },
	{ "delivery", "smarthost_password_file", K_PATH,
	    F(smarthost_password_file), 0, 0, NULL },
	{ "delivery", "dns", K_ADDRPORT, F(dns), 0, 0, NULL },
	{ "delivery", "port", K_INT, F(delivery_port), 1, 65535, NULL },
	{ "delivery", "tls", K_CHOICE, F(delivery_tls), 0, 0, delivery_tls_choices },
	{ "delivery", "retry_interval", K_DUR, F(retry_interval), 1, DAY, NULL },
	{ "delivery", "max_retry_interval", K_DUR, F(max_retry_interval),
	    1, 7 * DAY, NULL },
	{ "delivery", "queue_lifetime", K_DUR, F(queue_lifetime), 1, 90 * DAY, NULL },
	{ "delivery", "delay_warning", K_DUR, F(delay_warning), 0, 90 * DAY, NULL },
	{ "delivery", "helo_name", K_HOST, F(helo_name), 0, 0, NULL },
	{ "delivery", "source_address", K_STR, F(source_address), 0, 0, NULL },
	{ "delivery", "source_address6", K_STR, F(source_address6), 0, 0, NULL },
	{ "delivery", "ca_file", K_PATH, F(delivery_ca_file), 0, 0, NULL },
	{ "delivery", "ipv4_only", K_STR, F(ipv4_only), 0, 0, NULL },
	{ "delivery", "tls_required_domains", K_STR, F(tls_required_domains),
	    0, 0, NULL },
	{ "delivery", "dns_timeout", K_DUR, F(dns_timeout), 1, 300, NULL },
	{ "delivery", "dns_tries", K_INT, F(dns_tries), 1, 10, NULL },
	{ "delivery", "allow_loopback", K_BOOL, F(allow_loopback), 0, 0, NULL },
	{ "delivery", "max_per_destination", K_INT, F(max_per_destination),
	    1, 1000, NULL },
	{ "delivery", "max_addresses", K_INT, F(max_addresses), 1, 100, NULL },
	{ "delivery", "connect_timeout", K_DUR, F(connect_timeout), 1, 3600, NULL },
	{ "delivery", "command_timeout", K_DUR, F(command_timeout), 1, 3600, NULL },
	{ "delivery", "connection_reuse", K_BOOL, F(connection_reuse), 0, 0, NULL },
	{ "delivery", "rcpts_per_transaction", K_INT, F(rcpts_per_transaction),
	    1, 1000, NULL },

	{ "dkim", "selector", K_LABEL, F(dkim_selector), 0, 0, NULL },
	{ "dkim", "expire", K_DUR, F(dkim_expire), 0, 366 * DAY, NULL },

	{ "oauth2", "issuer", K_STR, F(oauth2_issuer), 0, 0, NULL },
	{ "oauth2", "audience", K_STR, F(oauth2_audience), 0, 0, NULL },
	{ "oauth2", "jwks_file", K_PATH, F(oauth2_jwks_file), 0, 0, NULL },
	{ "oauth2", "jwks_url", K_URL, F(oauth2_jwks_url), 0, 0, NULL },
	{ "oauth2", "required_scope", K_STR, F(oauth2_required_scope), 0, 0, NULL },
	{ "oauth2", "user_claim", K_STR, F(oauth2_user_claim), 0, 0, NULL },
	{ "oauth2", "introspection_url", K_URL, F(oauth2_introspection_url),
	    0, 0, NULL },
	{ "oauth2", "introspection_credentials", K_PATH,
	    F(oauth2_introspection_credentials), 0, 0, NULL },
	{ "oauth2", "accepted_typ", K_STR, F(oauth2_accepted_typ), 0, 0, NULL },
	{ "oauth2", "scope_claim", K_STR, F(oauth2_scope_claim), 0, 0, NULL },
	{ "oauth2", "clock_skew", K_DUR, F(oauth2_clock_skew), 0, 3600, NULL },

	{ "account_page", "listen", K_ADDRPORT, F(web_listen), 0, 0, NULL },
	{ "account_page", "session_idle", K_DUR, F(web_session_idle),
	    10, DAY, NULL },
	{ "account_page", "session_lifetime", K_DUR, F(web_session_lifetime),
	    10, 7 * DAY, NULL },

	{ "local", "socket", K_PATH, F(local_socket), 0, 0, NULL },
	{ "local", "qualify_domain", K_HOST, F(local_qualify_domain), 0, 0, NULL },

	{ "log", "level", K_LOGLEVEL, F(log_level), 0, 0, NULL },
	{ "log", "syslog", K_BOOL, F(log_syslog), 0, 0, NULL },
};

/* Every char * in struct config outside the listeners, for config_free(). */
static const size_t str_fields[] = {
	F(path), F(dir), F(hostname), F(domain), F(data_dir), F(help_url),
	F(run_user), F(run_group),
	F(tls_cert), F(tls_key), F(tls_ca), F(tls_ciphers), F(tls_ciphersuites),
	F(accounts_db), F(spool_dir), F(spool_flush), F(sender_rule),
	F(rewrite_header),
	F(smarthost), F(smarthost_tls), F(smarthost_user),
	F(smarthost_password_file), F(dns), F(delivery_tls),
	F(helo_name), F(source_address), F(source_address6),
	F(delivery_ca_file), F(ipv4_only), F(tls_required_domains),
	F(dkim_selector),
	F(oauth2_issuer), F(oauth2_audience), F(oauth2_jwks_file),
	F(oauth2_jwks_url), F(oauth2_required_scope), F(oauth2_user_claim),
	F(oauth2_introspection_url), F(oauth2_introspection_credentials),
	F(oauth2_accepted_typ), F(oauth2_scope_claim), F(web_listen),
	F(local_socket), F(local_qualify_domain),
};

static const char *const sections[] = {
	"server", "tls", "accounts", "spool", "limits", "delivery", "dkim",
	"oauth2", "log", "account_page", "local",
};

/* Mozilla "intermediate" (v5.7) for TLS 1.2; TLS 1.3 suites as OpenSSL. */
#define DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"DHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_CIPHERSUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
	"TLS_CHACHA20_POLY1305_SHA256"

struct load_ctx {
	struct config	*cfg;
	int		 cur;		/* listener being filled, or -1 */
	bool		 tls_set[CONFIG_MAX_LISTENERS];
};

#define PTR(cfg, off, type)	((type *)(void *)((char *)(cfg) + (off)))

/* The value as shown in messages: escaped and cut short. */
static const char *
shown(char *buf, size_t len, const char *v)
{
	return log_escape(buf, len, v, SIZE_MAX);
}

static int
set_str(char **slot, const char *v, char *err, size_t errlen)
{
	char *dup;

	if ((dup = strdup(v)) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = dup;
	return 0;
}

/* Joins dir and a relative path; absolute paths are kept.  Heap. */
static char *
resolve_path(const char *dir, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (asprintf(&out, "%s%s%s", dir,
	    dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/", p) < 0)
		return NULL;
	return out;
}

static int
choice_list(char *buf, size_t len, const char *const *c)
{
	size_t	pos = 0;
	int	n;

	buf[0] = '\0';
	for (; *c != NULL && pos < len; c++) {
		n = snprintf(buf + pos, len - pos, "%s%s",
		    pos == 0 ? "" : (c[1] == NULL ? " or " : ", "), *c);
		if (n < 0)
			return -1;
		pos += (size_t)n;
	}
	return 0;
}

static int
apply_key(struct config *cfg, const struct keydef *k, const char *v,
    char *err, size_t errlen)
{
	char		 show[80], lo[32], hi[32], list[128];
	uint64_t	 u;
	int		 i, port, lvl;
	char		*path;
	const char *const *c;

	/* Text-valued keys: an empty value restores the default. */
	switch (k->type) {
	case K_STR: case K_PATH: case K_CHOICE: case K_HOST: case K_HOSTPORT:
	case K_ADDRPORT: case K_URL: case K_LABEL:
		if (has_ctl(v)) {
			seterr(err, errlen, "[%s] %s: contains a control character",
			    k->section, k->key);
			return -1;
		}
		if (*v == '\0') {
			free(*PTR(cfg, k->off, char *));
			*PTR(cfg, k->off, char *) = NULL;
			return 0;
		}
		break;
	default:
		break;
	}

	switch (k->type) {
	case K_STR:
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	case K_PATH:
		if ((path = resolve_path(cfg->dir, v)) == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		free(*PTR(cfg, k->off, char *));
		*PTR(cfg, k->off, char *) = path;
		return 0;
	case K_INT:
		if (parse_u64(v, &u) != 0 || u < k->min || u > k->max)
			goto bad_number;
		*PTR(cfg, k->off, int) = (int)u;
		return 0;
	case K_U64:
		if (parse_u64(v, &u) != 0 || u < k->min || u > k->max)
			goto bad_number;
		*PTR(cfg, k->off, uint64_t) = u;
		return 0;
	case K_DUR:
		if (config_parse_duration(v, &i) != 0 ||
		    (uint64_t)i < k->min || (uint64_t)i > k->max) {
			fmt_duration(lo, sizeof(lo), k->min);
			fmt_duration(hi, sizeof(hi), k->max);
			seterr(err, errlen, "[%s] %s: expected a duration like 30s, "
			    "5m, 4h or 5d, from %s to %s, got \"%s\"", k->section,
			    k->key, lo, hi, shown(show, sizeof(show), v));
			return -1;
		}
		*PTR(cfg, k->off, int) = i;
		return 0;
	case K_SIZE:
		if (config_parse_size(v, &u) != 0 || u < k->min || u > k->max) {
			fmt_size(lo, sizeof(lo), k->min);
			fmt_size(hi, sizeof(hi), k->max);
			seterr(err, errlen, "[%s] %s: expected a size in bytes "
			    "(K, M, G suffixes allowed), from %s to %s, got \"%s\"",
			    k->section, k->key, lo, hi, shown(show, sizeof(show), v));
			return -1;
		}
		*PTR(cfg, k->off, uint64_t) = u;
		return 0;
	case K_BOOL:
		if (config_parse_bool(v, &i) != 0) {
			seterr(err, errlen, "[%s] %s: expected yes or no, got \"%s\"",
			    k->section, k->key, shown(show, sizeof(show), v));
			return -1;
		}
		*PTR(cfg, k->off, int) = i;
		return 0;
	case K_CHOICE:
		for (c = k->choices; *c != NULL; c++)
			if (strcmp(v, *c) == 0)
				return set_str(PTR(cfg, k->off, char *), v, err,
				    errlen);
		choice_list(list, sizeof(list), k->choices);
		seterr(err, errlen, "[%s] %s: expected %s, got \"%s\"", k->section,
		    k->key, list, shown(show, sizeof(show), v));
		return -1;
	case K_HOST:
		if (!valid_hostname(v)) {
			seterr(err, errlen, "[%s] %s: expected a host name like "
			    "mail.example.org, got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	case K_HOSTPORT:
		if (check_hostport(v, HP_HOST, &port) != 0) {
			seterr(err, errlen, "[%s] %s: expected HOST:PORT like "
			    "smtp.example.org:587, got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	case K_ADDRPORT:
		if (check_hostport(v, HP_ADDR, &port) != 0) {
			seterr(err, errlen, "[%s] %s: expected ADDR:PORT like "
			    "127.0.0.1:53 or [::1]:53, got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	case K_URL:
		if (!valid_url(v)) {
			seterr(err, errlen, "[%s] %s: expected an http:// or https:// "
			    "URL without spaces, got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	case K_LOGLEVEL:
		if ((lvl = log_level_parse(v)) < 0) {
			seterr(err, errlen, "[%s] %s: expected error, warning, info "
			    "or debug, got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		*PTR(cfg, k->off, int) = lvl;
		return 0;
	case K_LABEL:
		if (!valid_hostname(v)) {
			seterr(err, errlen, "[%s] %s: expected a DNS label like "
			    "\"mail\", got \"%s\"", k->section, k->key,
			    shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(PTR(cfg, k->off, char *), v, err, errlen);
	}
	seterr(err, errlen, "[%s] %s: internal error", k->section, k->key);
	return -1;

bad_number:
	seterr(err, errlen, "[%s] %s: expected a number from %llu to %llu, "
	    "got \"%s\"", k->section, k->key, (unsigned long long)k->min,
	    (unsigned long long)k->max, shown(show, sizeof(show), v));
	return -1;
}

static bool
valid_listener_name(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.'))
			return false;
	return n > 0 && n <= 64;
}

static int
listener_header(struct load_ctx *lc, const char *name, char *err,
    size_t errlen)
{
	struct config	*cfg = lc->cfg;
	char		 show[80];
	int		 i;

	if (!valid_listener_name(name)) {
		seterr(err, errlen, "[listener %s]: a listener name is 1 to 64 "
		    "letters, digits, '-', '_' or '.'",
		    shown(show, sizeof(show), name));
		return -1;
	}
	for (i = 0; i < cfg->nlisteners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0) {
			seterr(err, errlen, "duplicate listener \"%s\"", name);
			return -1;
		}
	if (cfg->nlisteners >= CONFIG_MAX_LISTENERS) {
		seterr(err, errlen, "too many listeners (at most %d)",
		    CONFIG_MAX_LISTENERS);
		return -1;
	}
	i = cfg->nlisteners;
	if ((cfg->listeners[i].name = strdup(name)) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	cfg->listeners[i].tls = LISTENER_TLS_STARTTLS;
	cfg->nlisteners++;
	lc->cur = i;
	return 0;
}

static int
listener_key(struct load_ctx *lc, const char *key, const char *v, char *err,
    size_t errlen)
{
	struct listener_conf	*l = &lc->cfg->listeners[lc->cur];
	char			 show[80], list[64];
	int			 port;

	if (strcmp(key, "listen") == 0) {
		if (has_ctl(v) || check_hostport(v, HP_LISTEN, &port) != 0) {
			seterr(err, errlen, "[listener %s] listen: expected ADDR:PORT "
			    "like 127.0.0.1:587, [::1]:587 or *:587, got \"%s\"",
			    l->name, shown(show, sizeof(show), v));
			return -1;
		}
		return set_str(&l->listen, v, err, errlen);
	}
	if (strcmp(key, "tls") == 0) {
		if (strcmp(v, "starttls") == 0)
			l->tls = LISTENER_TLS_STARTTLS;
		else if (strcmp(v, "implicit") == 0)
			l->tls = LISTENER_TLS_IMPLICIT;
		else {
			choice_list(list, sizeof(list), listener_tls_choices);
			seterr(err, errlen, "[listener %s] tls: expected %s, got \"%s\"",
			    l->name, list, shown(show, sizeof(show), v));
			return -1;
		}
		lc->tls_set[lc->cur] = true;
		return 0;
	}
	if (strcmp(key, "trusted_networks") == 0) {
		struct cidr tmp[CIDR_MAX];
		char why[160];
		int n;

		if (has_ctl(v) || (n = cidr_parse_list(v, tmp, CIDR_MAX, why,
		    sizeof(why))) < 0) {
			seterr(err, errlen, "[listener %s] trusted_networks: %s",
			    l->name, has_ctl(v) ? "control character" : why);
			return -1;
		}
		free(l->trusted);
		l->trusted = NULL;
		l->ntrusted = 0;
		if (n > 0 && (l->trusted = calloc((size_t)n,
		    sizeof(*l->trusted))) == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		if (n > 0)
			memcpy(l->trusted, tmp, (size_t)n * sizeof(*tmp));
		l->ntrusted = n;
		return set_str(&l->trusted_networks, v, err, errlen);
	}
	seterr(err, errlen, "[listener %s] %s: unknown key (known: listen, tls, "
	    "trusted_networks)",
	    l->name, shown(show, sizeof(show), key));
	return -1;
}

static int
config_handler(void *ctx, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	struct load_ctx	*lc = ctx;
	char		 show[80];
	size_t		 i;

	if (strncmp(section, "listener", 8) == 0 &&
	    (section[8] == '\0' || section[8] == ' ')) {
		if (section[8] == '\0') {
			seterr(err, errlen, "a listener needs a name: "
			    "[listener submission]");
			return -1;
		}
		if (key == NULL)
			return listener_header(lc, section + 9, err, errlen);
		return listener_key(lc, key, value, err, errlen);
	}

	if (section[0] == '\0') {
		seterr(err, errlen, "\"%s\" outside of any section; put it under "
		    "a header like [server]", shown(show, sizeof(show), key));
		return -1;
	}
	if (key == NULL) {
		lc->cur = -1;
		for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			if (strcmp(section, sections[i]) == 0)
				return 0;
		seterr(err, errlen, "unknown section [%s]",
		    shown(show, sizeof(show), section));
		return -1;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].key, key) == 0)
			return apply_key(lc->cfg, &keys[i], value, err, errlen);
	seterr(err, errlen, "[%s] %s: unknown key", section,
	    shown(show, sizeof(show), key));
	return -1;
}

/* ---------------------------------------------------------------- */
/* Loading                                                          */
/* ---------------------------------------------------------------- */

static void
set_defaults(struct config *cfg)
{
	cfg->workers = 0;
	cfg->received_show_user = 0;
	cfg->argon2_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	cfg->argon2_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	cfg->auth_threads = 0;
	cfg->min_free_space = 100ULL << 20;
	cfg->max_message_size = 35ULL << 20;
	cfg->max_recipients = 100;
	cfg->idle_timeout = 300;
	cfg->data_timeout = 600;
	cfg->max_connections = 20000;
	cfg->max_connections_per_ip = 20;
	cfg->max_errors = 20;
	cfg->max_received = 50;
	cfg->min_data_rate = 1024;
	cfg->daily_messages = 2000;
	cfg->daily_recipients = 10000;
	cfg->auth_failures = 10;
	cfg->auth_failure_window = 600;
	cfg->auth_failure_delay = 1;
	cfg->oauth2_clock_skew = 60;
	cfg->hourly_messages = 500;
	cfg->hold_after_quota_hits = 10;
	cfg->hold_after_bounces = 50;
	cfg->bounce_window = 3600;
	cfg->auth_cache_ttl = 300;
	cfg->counter_flush = 5;
	cfg->delivery_port = 25;
	cfg->retry_interval = 300;
	cfg->max_retry_interval = 4 * 3600;
	cfg->queue_lifetime = 5 * DAY;
	cfg->delay_warning = 4 * 3600;
	cfg->dns_timeout = 5;
	cfg->dns_tries = 3;
	cfg->max_per_destination = 10;
	cfg->max_addresses = 10;
	cfg->connect_timeout = 30;
	cfg->command_timeout = 300;
	cfg->connection_reuse = 1;
	cfg->rcpts_per_transaction = 100;
	cfg->log_level = LOGL_INFO;
	cfg->log_syslog = 0;
	cfg->web_session_idle = 15 * 60;
	cfg->web_session_lifetime = 8 * 3600;
}

/* cfg->path (absolute) and cfg->dir from the path as given. */
static int
set_path(struct config *cfg, const char *path)
{
	char	*cwd, *slash;

	if (path[0] == '/') {
		if ((cfg->path = strdup(path)) == NULL)
			return -1;
	} else {
		if ((cwd = getcwd(NULL, 0)) == NULL)
			return -1;
		cfg->path = resolve_path(cwd, path);
		free(cwd);
		if (cfg->path == NULL)
			return -1;
	}
	if ((cfg->dir = strdup(cfg->path)) == NULL)
		return -1;
	slash = strrchr(cfg->dir, '/');
	if (slash == cfg->dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

static int
default_str(char **slot, const char *v)
{
	if (*slot != NULL)
		return 0;
	return (*slot = strdup(v)) == NULL ? -1 : 0;
}

static int
default_join(char **slot, const char *dir, const char *name)
{
	if (*slot != NULL)
		return 0;
	return (*slot = resolve_path(dir, name)) == NULL ? -1 : 0;
}

static int
fill_defaults(struct config *cfg)
{
	char	 host[HOST_MAX];
	char	*dot;

	if (cfg->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0' ||
		    memchr(host, '\0', sizeof(host)) == NULL || !valid_hostname(host))
			snprintf(host, sizeof(host), "localhost");
		if ((cfg->hostname = strdup(host)) == NULL)
			return -1;
	}
	if (cfg->domain == NULL) {
		dot = strchr(cfg->hostname, '.');
		if (default_str(&cfg->domain,
		    dot != NULL ? dot + 1 : cfg->hostname) != 0)
			return -1;
	}
	/* an unprivileged user named in the file must exist; the default
	 * "outpost" only when it does (see outpostd.c, privdrop) */
	cfg->run_user_set = cfg->run_user != NULL;
	if (default_join(&cfg->data_dir, cfg->dir, "data") != 0 ||
	    default_join(&cfg->accounts_db, cfg->data_dir, "accounts.db") != 0 ||
	    default_join(&cfg->spool_dir, cfg->data_dir, "spool") != 0 ||
	    default_str(&cfg->tls_ciphers, DEFAULT_CIPHERS) != 0 ||
	    default_str(&cfg->tls_ciphersuites, DEFAULT_CIPHERSUITES) != 0 ||
	    default_str(&cfg->delivery_tls, "opportunistic") != 0 ||
	    default_str(&cfg->dkim_selector, "mail") != 0 ||
	    default_str(&cfg->run_user, "outpost") != 0 ||
	    default_str(&cfg->oauth2_user_claim, "email") != 0 ||
	    default_str(&cfg->oauth2_scope_claim, "scope") != 0 ||
	    default_str(&cfg->oauth2_accepted_typ,
	    "at+jwt application/at+jwt") != 0)
		return -1;
	return 0;
}

/*
 * Checks that need the whole file.  Messages carry no line number except
 * where one key is plainly at fault.
 */
static int
check_config(struct config *cfg, struct load_ctx *lc, const char *name,
    char *err, size_t errlen)
{
	char	 host[HOST_MAX];
	int	 i, j, port;

	for (i = 0; i < cfg->nlisteners; i++) {
		struct listener_conf *l = &cfg->listeners[i];

		if (l->listen == NULL) {
			seterr(err, errlen, "%s: [listener %s] listen is required "
			    "(e.g. listen = 127.0.0.1:587)", name, l->name);
			return -1;
		}
		/* RFC 8314: 465 is the implicit-TLS submission port. */
		if (!lc->tls_set[i] &&
		    config_split_hostport(l->listen, host, sizeof(host), &port) == 0 &&
		    port == 465)
			l->tls = LISTENER_TLS_IMPLICIT;
		for (j = 0; j < i; j++)
			if (strcmp(cfg->listeners[j].listen, l->listen) == 0) {
				seterr(err, errlen, "%s: [listener %s] and [listener %s] "
				    "both listen on %s", name, cfg->listeners[j].name,
				    l->name, l->listen);
				return -1;
			}
	}
	if (cfg->nlisteners > 0 && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
		seterr(err, errlen, "%s: [tls] cert and key are required for the "
		    "listeners", name);
		return -1;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		seterr(err, errlen, "%s: [tls] cert and key go together: set both",
		    name);
		return -1;
	}
	/* sockaddr_un's sun_path is 108 bytes on Linux, NUL included */
	if (cfg->local_socket != NULL && strlen(cfg->local_socket) > 107) {
		seterr(err, errlen, "%s: [local] socket: the path is longer than "
		    "the 107 bytes a unix socket allows", name);
		return -1;
	}
	if (cfg->smarthost == NULL &&
	    (cfg->smarthost_user != NULL || cfg->smarthost_password_file != NULL ||
	    cfg->smarthost_tls != NULL)) {
		seterr(err, errlen, "%s: [delivery] smarthost_tls, smarthost_user "
		    "and smarthost_password_file need smarthost = HOST:PORT", name);
		return -1;
	}
	if ((cfg->smarthost_user == NULL) != (cfg->smarthost_password_file == NULL)) {
		seterr(err, errlen, "%s: [delivery] smarthost_user and "
		    "smarthost_password_file go together: set both", name);
		return -1;
	}
	if (cfg->smarthost != NULL && cfg->smarthost_tls == NULL) {
		/* Port 465 speaks TLS from the first byte (RFC 8314). */
		if (config_split_hostport(cfg->smarthost, host, sizeof(host),
		    &port) != 0)
			port = 0;
		if (default_str(&cfg->smarthost_tls,
		    port == 465 ? "implicit" : "starttls") != 0)
			goto oom;
	}
	for (i = 0; i < 2; i++) {
		const char *a = i ? cfg->source_address6 : cfg->source_address;
		unsigned char bin[16];

		if (a != NULL && inet_pton(i ? AF_INET6 : AF_INET, a, bin) != 1) {
			seterr(err, errlen, "%s: [delivery] %s must be an IPv%d "
			    "address, not \"%.64s\"", name,
			    i ? "source_address6" : "source_address",
			    i ? 6 : 4, a);
			return -1;
		}
	}
	if (cfg->helo_name == NULL &&
	    default_str(&cfg->helo_name, cfg->hostname) != 0)
		goto oom;
	if (cfg->smarthost_user != NULL && cfg->smarthost_tls != NULL &&
	    strcmp(cfg->smarthost_tls, "none") == 0) {
		seterr(err, errlen, "%s: [delivery] smarthost_user needs "
		    "smarthost_tls = starttls or implicit: credentials are only "
		    "sent over verified TLS", name);
		return -1;
	}
	if (cfg->max_retry_interval < cfg->retry_interval) {
		seterr(err, errlen, "%s: [delivery] max_retry_interval must not be "
		    "less than retry_interval", name);
		return -1;
	}
	if (cfg->oauth2_jwks_file != NULL && cfg->oauth2_jwks_url != NULL) {
		seterr(err, errlen, "%s: [oauth2] set jwks_file or jwks_url, "
		    "not both", name);
		return -1;
	}
	if ((cfg->oauth2_jwks_file != NULL || cfg->oauth2_jwks_url != NULL) &&
	    (cfg->oauth2_issuer == NULL || cfg->oauth2_issuer[0] == '\0' ||
	    cfg->oauth2_audience == NULL || cfg->oauth2_audience[0] == '\0')) {
		seterr(err, errlen, "%s: [oauth2] JWT validation needs issuer "
		    "and audience", name);
		return -1;
	}
	return 0;
oom:
	seterr(err, errlen, "%s: out of memory", name);
	return -1;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct load_ctx lc;

	memset(cfg, 0, sizeof(*cfg));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || *path == '\0') {
		seterr(err, errlen, "no configuration file given");
		return -1;
	}
	set_defaults(cfg);
	if (set_path(cfg, path) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	memset(&lc, 0, sizeof(lc));
	lc.cfg = cfg;
	lc.cur = -1;
	if (ini_parse_file(path, config_handler, &lc, err, errlen) != 0)
		goto fail;
	if (fill_defaults(cfg) != 0) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (check_config(cfg, &lc, path, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	config_free(cfg);
	return -1;
}

void
config_free(struct config *cfg)
{
	size_t	i;
	int	j;

	if (cfg == NULL)
		return;
	for (i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++)
		free(*PTR(cfg, str_fields[i], char *));
	for (j = 0; j < cfg->nlisteners && j < CONFIG_MAX_LISTENERS; j++) {
		free(cfg->listeners[j].name);
		free(cfg->listeners[j].listen);
		free(cfg->listeners[j].trusted_networks);
		free(cfg->listeners[j].trusted);
	}
	memset(cfg, 0, sizeof(*cfg));
}
