/*
 * config — outpost.conf: the project's own small INI parser and the loaded
 * configuration.
 *
 * Format: `[section]` or `[section name]` headers, `key = value` lines,
 * `#` or `;` comments on their own line, blank lines.  Values may not span
 * lines; lines may be of any length.  Durations take a unit (30s, 5m, 4h,
 * 5d; a bare number is seconds), sizes take an optional K/M/G suffix
 * (powers of 1024).  Booleans: yes/no, true/false, on/off, 1/0.
 * Relative paths are resolved against the directory of the config file.
 *
 * config_load() fills a struct config with safe defaults first, then
 * applies the file.  On the first error it returns -1 and writes
 * "FILE:LINE: message" into err.  Unknown sections and unknown keys are
 * errors (a typo must not silently fall back to a default).
 *
 * Ownership: every string in struct config is heap-allocated and freed by
 * config_free().
 */
#ifndef OUTPOST_CONFIG_H
#define OUTPOST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTENERS 8

struct cidr;

enum listener_tls {
	LISTENER_TLS_STARTTLS,	/* plaintext greeting, STARTTLS required before AUTH */
	LISTENER_TLS_IMPLICIT,	/* TLS from the first byte (RFC 8314) */
};

struct listener_conf {
	char	*name;		/* from [listener NAME], e.g. "submission" */
	char	*listen;	/* "127.0.0.1:2587", "[::1]:587", "*:587" */
	enum listener_tls tls;
	char	*trusted_networks; /* as written; NULL: none (the default) */
	struct cidr *trusted;	/* parsed, ntrusted entries (heap) */
	int	 ntrusted;
	int	 local;		/* the [local] unix socket (smtp/server.c), not from a
				 * [listener] section: peer uid is the login */
};

struct config {
	char	*path;		/* the file that was loaded (absolute) */
	char	*dir;		/* its directory, for relative paths */

	/* [server] */
	char	*hostname;	/* default: gethostname() */
	char	*domain;	/* default: hostname minus its first label */
	char	*data_dir;	/* default: DIR/data */
	int	 workers;	/* event-loop threads; 0 = one per core */
	char	*help_url;	/* appended to AUTH errors when set */
	int	 received_show_user; /* put the login in Received: (default no) */
	char	*run_user;	/* [server] user: started as root, become it (default outpost) */
	char	*run_group;	/* [server] group: default the user's primary group */
	int	 run_user_set;	/* user was given in the file (missing = error) */

	/* [listener NAME] sections */
	struct listener_conf listeners[CONFIG_MAX_LISTENERS];
	int	 nlisteners;

	/* [tls] */
	char	*tls_cert;	/* PEM chain; required when any listener exists */
	char	*tls_key;
	char	*tls_ca;	/* the local CA of `outpost init`, for clients */
	char	*tls_ciphers;	/* TLS 1.2 list; default Mozilla intermediate */
	char	*tls_ciphersuites; /* TLS 1.3 suites */

	/* [accounts] */
	char	*accounts_db;	/* default: DATA_DIR/accounts.db */
	uint64_t argon2_opslimit; /* default crypto_pwhash_OPSLIMIT_INTERACTIVE */
	uint64_t argon2_memlimit; /* bytes; default crypto_pwhash_MEMLIMIT_INTERACTIVE */
	int	 auth_threads;	/* password hashing threads; 0 = cores */
	char	*sender_rule;	/* "reject" (default) or "rewrite" */
	char	*rewrite_header; /* rewrite keeps the original From: here */
	int	 auth_cache_ttl; /* seconds; argon2id success cache, 0 = off */
	int	 counter_flush;	/* seconds between usage counter writes */

	/* [spool] */
	char	*spool_dir;	/* default: DATA_DIR/spool */
	uint64_t min_free_space; /* bytes; MAIL gets 452 4.3.1 below it (default 100M) */
	char	*spool_flush;	/* "file" (default, NULL) or "filesystem" */

	/* [limits] */
	uint64_t max_message_size;	/* default 35M (Gmail's ~35 MB) */
	int	 max_recipients;	/* default 100 */
	int	 idle_timeout;		/* seconds per command; default 300 */
	int	 data_timeout;		/* seconds per DATA/BDAT read; default 600 */
	int	 max_connections;	/* whole server; default 20000 */
	int	 max_connections_per_ip; /* default 20 */
	int	 max_errors;		/* protocol errors before 421; default 20 */
	int	 max_received;		/* hop limit (RFC 5321 6.3); default 50 */
	uint64_t min_data_rate;		/* bytes/s a DATA upload must keep up; default 1024 */
	int	 daily_messages;	/* per user; default 2000 (next issue) */
	int	 daily_recipients;	/* per user; default 10000 (next issue) */
	int	 auth_failures;		/* default 10 (next issue) */
	int	 auth_failure_window;	/* seconds; default 600 (next issue) */
	int	 auth_failure_delay;	/* seconds before a 535/454; default 1 */
	int	 hourly_messages;	/* per user burst limit; default 500, 0 off */
	int	 hold_after_quota_hits;	/* hold a user after N hits a day; 0 off */
	int	 hold_after_bounces;	/* hold after N hard bounces a window; 0 off */
	int	 bounce_window;		/* seconds; default 3600 */

	/* [delivery] (the delivery issue uses these; parsed and checked now) */
	char	*smarthost;
	char	*smarthost_tls;
	char	*smarthost_user;
	char	*smarthost_password_file;
	char	*dns;
	int	 delivery_port;		/* default 25 */
	char	*delivery_tls;		/* opportunistic | required | verify */
	int	 retry_interval;	/* default 300 */
	int	 max_retry_interval;	/* default 14400 */
	int	 queue_lifetime;	/* default 5d */
	int	 delay_warning;		/* default 4h; 0 = off */
	/* delivery engine (issue 5) */
	char	*helo_name;		/* EHLO name; default hostname */
	char	*source_address;	/* IPv4 to bind outgoing connections to */
	char	*source_address6;	/* IPv6 to bind outgoing connections to */
	char	*delivery_ca_file;	/* CAs for tls = verify and smarthosts; default system */
	char	*ipv4_only;		/* domains reached over IPv4 only ("gmail.com ...") */
	char	*tls_required_domains;	/* domains that get tls = required */
	int	 dns_timeout;		/* seconds per DNS try; default 5 */
	int	 dns_tries;		/* default 3 */
	int	 allow_loopback;	/* MX/A on loopback allowed (tests); default no */
	int	 max_per_destination;	/* connections per destination; default 10 */
	int	 max_addresses;		/* addresses tried per attempt; default 10 */
	int	 connect_timeout;	/* default 30s */
	int	 command_timeout;	/* per reply; default 300s */
	int	 connection_reuse;	/* default yes */
	int	 rcpts_per_transaction;	/* default 100 */

	/* [dkim] */
	char	*dkim_selector;		/* default "mail": keygen's mail-ed / mail-rsa */
	int	 dkim_expire;		/* x= seconds after t=; 0 (default) = none */

	/* [oauth2] (a later issue; keys accepted now) */
	char	*oauth2_issuer;
	char	*oauth2_audience;
	char	*oauth2_jwks_file;
	char	*oauth2_jwks_url;
	char	*oauth2_required_scope;
	char	*oauth2_user_claim;
	char	*oauth2_introspection_url;
	char	*oauth2_introspection_credentials; /* file "client_id:secret" */
	char	*oauth2_accepted_typ;	/* JWT typ values, blank-separated; "" any */
	char	*oauth2_scope_claim;	/* default "scope" (Entra: "scp") */
	int	 oauth2_clock_skew;	/* seconds for exp/nbf; default 60 */

	/* [account_page] (src/web: the HTTPS account page; off unless set) */
	char	*web_listen;		/* "127.0.0.1:2443"; NULL = off */
	int	 web_session_idle;	/* seconds without a request; default 15m */
	int	 web_session_lifetime;	/* seconds after sign-in; default 8h */

	/* [local]: submission over a unix socket for local users (cron,
	 * PHP as www-data); the peer's uid is its identity (SO_PEERCRED) */
	char	*local_socket;		/* path; NULL = off (the default) */
	char	*local_qualify_domain;	/* LOGIN@this; NULL = [server] domain */

	/* [log] */
	int	 log_level;		/* LOGL_* from log.h; default info */
	int	 log_syslog;		/* also log to syslog; default no */
};

/* Loads PATH into cfg (defaults first).  Returns 0, or -1 with
 * "FILE:LINE: message" in err. On failure cfg is left freed-and-zeroed. */
int	config_load(struct config *cfg, const char *path, char *err, size_t errlen);
void	config_free(struct config *cfg);

/* Parsing helpers, exposed for unit tests and for other INI files (the
 * client accounts file).  Each returns 0 or -1. */
int	config_parse_duration(const char *s, int *seconds);
int	config_parse_size(const char *s, uint64_t *bytes);
int	config_parse_bool(const char *s, int *out);
/* "host:port", "1.2.3.4:25", "[::1]:587", "*:587" -> host (without the
 * brackets) and port 1..65535.  Does not check what the host is; values
 * loaded by config_load() (listen, smarthost, dns) were checked already. */
int	config_split_hostport(const char *s, char *host, size_t hostlen,
	    int *port);

/*
 * The generic INI reader.  For each `key = value` it calls fn with the
 * current section ("" before the first header; "listener submission" for
 * `[listener submission]`, inner whitespace collapsed to one space), the
 * key and the value (both trimmed).  fn returns 0, or -1 after writing a
 * message (without file:line) into err; the reader then prefixes
 * "FILE:LINE: " and stops.  A section header alone also calls fn with
 * key == NULL so that empty sections can be validated.
 */
typedef int (*ini_handler)(void *ctx, const char *section, const char *key,
    const char *value, char *err, size_t errlen);
int	ini_parse_file(const char *path, ini_handler fn, void *ctx,
    char *err, size_t errlen);
int	ini_parse_string(const char *name, const char *text, ini_handler fn,
    void *ctx, char *err, size_t errlen);

#endif
