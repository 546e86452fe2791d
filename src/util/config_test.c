/*
 * config_test — the INI reader, the value parsers and config_load().
 * Includes config.c to reach the static helpers.  Config files are written
 * into a fresh mkdtemp() directory per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/config.c"

/* ---------------------------------------------------------------- */
/* Helpers                                                          */
/* ---------------------------------------------------------------- */

struct rec {
	char	*buf;
	size_t	 len;
	const char *fail_key;	/* the handler rejects this key */
};

/* Records "section|key|value;" for every callback ("section|-;" for a
 * header) so a whole parse can be compared as one string. */
static int
rec_handler(void *ctx, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	struct rec	*r = ctx;
	char		*add;
	size_t		 n;

	if (key != NULL && r->fail_key != NULL && strcmp(key, r->fail_key) == 0) {
		snprintf(err, errlen, "rejected %s", key);
		return -1;
	}
	if (key == NULL) {
		if (asprintf(&add, "%s|-;", section) < 0)
			return -1;
	} else if (asprintf(&add, "%s|%s|%s;", section, key, value) < 0)
		return -1;
	n = strlen(add);
	r->buf = realloc(r->buf, r->len + n + 1);
	assert_non_null(r->buf);
	memcpy(r->buf + r->len, add, n + 1);
	r->len += n;
	free(add);
	return 0;
}

static char tmpdir[256];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/outpost-config-test-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
	char *cmd;

	(void)state;
	if (asprintf(&cmd, "rm -rf '%s'", tmpdir) < 0)
		return -1;
	if (system(cmd) != 0) {
		free(cmd);
		return -1;
	}
	free(cmd);
	return 0;
}

/* Writes len bytes into tmpdir/name; returns the heap path. */
static char *
write_file(const char *name, const char *data, size_t len)
{
	char	*path;
	FILE	*fp;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return path;
}

static char *
write_conf(const char *text)
{
	return write_file("outpost.conf", text, strlen(text));
}

/* ---------------------------------------------------------------- */
/* INI reader                                                       */
/* ---------------------------------------------------------------- */

static void
test_ini_table(void **state)
{
	static const struct {
		const char	*in;
		const char	*want;		/* records, or NULL on error */
		const char	*err;		/* exact error */
	} cases[] = {
		{ "", "", NULL },
		{ "\n\n   \n\t\n", "", NULL },
		{ "# comment\n; another\n   # indented\n", "", NULL },
		{ "a = b\n", "|a|b;", NULL },
		{ "[s]\nk=v\n", "s|-;s|k|v;", NULL },
		{ "[s]\n  key   =   spaced value  \n", "s|-;s|key|spaced value;", NULL },
		{ "[s]\nk = a=b=c\n", "s|-;s|k|a=b=c;", NULL },
		{ "[s]\nk = v # not a comment\n", "s|-;s|k|v # not a comment;", NULL },
		{ "[s]\nk = ; kept\n", "s|-;s|k|; kept;", NULL },
		{ "[s]\nk =\n", "s|-;s|k|;", NULL },
		{ "[s]\r\nk = v\r\n", "s|-;s|k|v;", NULL },
		{ "[s]\nk = v", "s|-;s|k|v;", NULL },
		{ "[listener   submission]\n", "listener submission|-;", NULL },
		{ "[ listener \t x ]\nlisten = 1\n",
		    "listener x|-;listener x|listen|1;", NULL },
		{ "[a]\n[b]\nk=1\n", "a|-;b|-;b|k|1;", NULL },
		{ "\xef\xbb\xbf[s]\n", "s|-;", NULL },
		{ "[s]\nnovalue\n", NULL,
		    "t:2: expected \"key = value\" or a [section] header" },
		{ "\n\n\n[s\n", NULL, "t:4: section header without closing ']'" },
		{ "[]\n", NULL, "t:1: empty section name" },
		{ "[  ]\n", NULL, "t:1: empty section name" },
		{ "[s] # c\n", NULL,
		    "t:1: unexpected text after ']' (comments must be on their own line)" },
		{ "[a[b]\n", NULL, "t:1: '[' or ']' inside a section name" },
		{ "[s]\n = v\n", NULL, "t:2: missing key before '='" },
		{ "[s]\na=1\r\n\r\nbad=1\nc=1\n", NULL, "t:4: rejected bad" },
	};
	size_t	i;
	char	err[256];
	struct rec r;
	int	rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.fail_key = "bad";
		rc = ini_parse_string("t", cases[i].in, rec_handler, &r, err,
		    sizeof(err));
		if (cases[i].want != NULL) {
			if (rc != 0)
				fail_msg("case %zu: unexpected error %s", i, err);
			assert_string_equal(r.buf != NULL ? r.buf : "",
			    cases[i].want);
		} else {
			if (rc != -1)
				fail_msg("case %zu: no error", i);
			assert_string_equal(err, cases[i].err);
		}
		free(r.buf);
	}
}

static void
test_ini_long_lines(void **state)
{
	size_t	 n = 100000, i;
	char	*text, *path, *want, err[256];
	struct rec r;

	(void)state;
	text = malloc(n + 64);
	want = malloc(n + 64);
	assert_non_null(text);
	assert_non_null(want);
	/* A 100000-character value on line 3, then an error on line 4. */
	strcpy(text, "# x\n[s]\nk = ");
	for (i = strlen(text); i < n; i++)
		text[i] = (char)('a' + i % 26);
	text[n] = '\0';
	snprintf(want, n + 64, "s|-;s|k|%s;", text + strlen("# x\n[s]\nk = "));
	strcat(text, "\nbroken\n");

	memset(&r, 0, sizeof(r));
	path = write_file("long.ini", text, strlen(text));
	assert_int_equal(ini_parse_file(path, rec_handler, &r, err, sizeof(err)), -1);
	assert_non_null(r.buf);
	assert_string_equal(r.buf, want);
	assert_non_null(strstr(err, "long.ini:4: expected"));
	free(r.buf);

	memset(&r, 0, sizeof(r));
	assert_int_equal(ini_parse_string("s", text, rec_handler, &r, err,
	    sizeof(err)), -1);
	assert_string_equal(r.buf, want);
	assert_non_null(strstr(err, "s:4: expected"));
	free(r.buf);
	free(path);
	free(text);
	free(want);
}

static void
test_ini_file_errors(void **state)
{
	static const char nul[] = "[s]\nk = v\nk2 = a\0b\n";
	char	*path, err[256], want[512];
	struct rec r;

	(void)state;
	memset(&r, 0, sizeof(r));
	path = write_file("nul.ini", nul, sizeof(nul) - 1);
	assert_int_equal(ini_parse_file(path, rec_handler, &r, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: NUL byte in line", path);
	assert_string_equal(err, want);
	assert_string_equal(r.buf, "s|-;s|k|v;");
	free(r.buf);
	free(path);

	assert_int_equal(ini_parse_file("/nonexistent/x.conf", rec_handler, &r,
	    err, sizeof(err)), -1);
	assert_string_equal(err,
	    "/nonexistent/x.conf: cannot open: No such file or directory");

	assert_int_equal(ini_parse_file(tmpdir, rec_handler, &r, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open: Is a directory"));

	/* CRLF in a file, and a message truncated to a tiny err. */
	memset(&r, 0, sizeof(r));
	path = write_file("crlf.ini", "[s]\r\nk = v\r\n", 12);
	assert_int_equal(ini_parse_file(path, rec_handler, &r, err, 4), 0);
	assert_string_equal(r.buf, "s|-;s|k|v;");
	free(r.buf);
	free(path);
}

/* ---------------------------------------------------------------- */
/* Value parsers                                                    */
/* ---------------------------------------------------------------- */

static void
test_duration(void **state)
{
	static const struct {
		const char	*in;
		int		 rc, want;
	} cases[] = {
		{ "0", 0, 0 }, { "30", 0, 30 }, { "30s", 0, 30 },
		{ "5m", 0, 300 }, { "4h", 0, 14400 }, { "5d", 0, 432000 },
		{ "1w", 0, 604800 }, { "2147483647", 0, INT_MAX },
		{ "2147483648", -1, 0 }, { "24856d", -1, 0 },
		{ "99999999999999999999999", -1, 0 },
		{ "", -1, 0 }, { "s", -1, 0 }, { "-5", -1, 0 }, { "+5", -1, 0 },
		{ " 5", -1, 0 }, { "5 ", -1, 0 }, { "5 s", -1, 0 }, { "5ss", -1, 0 },
		{ "5ms", -1, 0 }, { "5x", -1, 0 }, { "0x10", -1, 0 }, { "1.5h", -1, 0 },
		{ "5S", -1, 0 },
	};
	size_t	i;
	int	v;

	(void)state;
	assert_int_equal(config_parse_duration(NULL, &v), -1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -7;
		if (config_parse_duration(cases[i].in, &v) != cases[i].rc)
			fail_msg("case \"%s\": rc", cases[i].in);
		if (cases[i].rc == 0 && v != cases[i].want)
			fail_msg("case \"%s\": got %d", cases[i].in, v);
	}
}

static void
test_size(void **state)
{
	static const struct {
		const char	*in;
		int		 rc;
		uint64_t	 want;
	} cases[] = {
		{ "0", 0, 0 }, { "1234", 0, 1234 }, { "1234B", 0, 1234 },
		{ "1K", 0, 1024 }, { "1k", 0, 1024 }, { "1KB", 0, 1024 },
		{ "1KiB", 0, 1024 }, { "35M", 0, 35ULL << 20 },
		{ "35MB", 0, 35ULL << 20 }, { "35MiB", 0, 35ULL << 20 },
		{ "2G", 0, 2ULL << 30 }, { "3T", 0, 3ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 }, { "16777216T", -1, 0 },
		{ "16777215T", 0, 16777215ULL << 40 },
		{ "", -1, 0 }, { "M", -1, 0 }, { "-1", -1, 0 }, { "1 M", -1, 0 },
		{ "1MBB", -1, 0 }, { "1iB", -1, 0 }, { "1X", -1, 0 }, { "1.5M", -1, 0 },
		{ " 1", -1, 0 },
	};
	size_t		i;
	uint64_t	v;

	(void)state;
	assert_int_equal(config_parse_size(NULL, &v), -1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 7;
		if (config_parse_size(cases[i].in, &v) != cases[i].rc)
			fail_msg("case \"%s\": rc", cases[i].in);
		if (cases[i].rc == 0 && v != cases[i].want)
			fail_msg("case \"%s\": got %llu", cases[i].in,
			    (unsigned long long)v);
	}
}

static void
test_bool(void **state)
{
	static const struct {
		const char	*in;
		int		 rc, want;
	} cases[] = {
		{ "yes", 0, 1 }, { "YES", 0, 1 }, { "true", 0, 1 }, { "on", 0, 1 },
		{ "1", 0, 1 }, { "no", 0, 0 }, { "False", 0, 0 }, { "off", 0, 0 },
		{ "0", 0, 0 }, { "", -1, 0 }, { "y", -1, 0 }, { "2", -1, 0 },
		{ "yes ", -1, 0 }, { "enabled", -1, 0 },
	};
	size_t	i;
	int	v;

	(void)state;
	assert_int_equal(config_parse_bool(NULL, &v), -1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 7;
		if (config_parse_bool(cases[i].in, &v) != cases[i].rc)
			fail_msg("case \"%s\": rc", cases[i].in);
		if (cases[i].rc == 0 && v != cases[i].want)
			fail_msg("case \"%s\": got %d", cases[i].in, v);
	}
}

static void
test_hostport(void **state)
{
	static const struct {
		const char	*in;
		int		 rc;
		const char	*host;
		int		 port;
		int		 listen, addr, hostok;	/* check_hostport verdicts */
	} cases[] = {
		{ "127.0.0.1:587", 0, "127.0.0.1", 587, 1, 1, 1 },
		{ "[::1]:465", 0, "::1", 465, 1, 1, 1 },
		{ "*:25", 0, "*", 25, 1, 0, 0 },
		{ "smtp.gmail.com:587", 0, "smtp.gmail.com", 587, 0, 0, 1 },
		{ "host:65535", 0, "host", 65535, 0, 0, 1 },
		{ "host:65536", -1, NULL, 0, 0, 0, 0 },
		{ "host:0", -1, NULL, 0, 0, 0, 0 },
		{ "host:", -1, NULL, 0, 0, 0, 0 },
		{ "host:25x", -1, NULL, 0, 0, 0, 0 },
		{ "host", -1, NULL, 0, 0, 0, 0 },
		{ ":25", -1, NULL, 0, 0, 0, 0 },
		{ "::1:25", -1, NULL, 0, 0, 0, 0 },
		{ "[::1]25", -1, NULL, 0, 0, 0, 0 },
		{ "[::1:25", -1, NULL, 0, 0, 0, 0 },
		{ "[]:25", -1, NULL, 0, 0, 0, 0 },
		{ "[127.0.0.1]:25", 0, "127.0.0.1", 25, 0, 0, 0 },
		{ "bad_host:25", 0, "bad_host", 25, 0, 0, 0 },
		{ "-a.b:25", 0, "-a.b", 25, 0, 0, 0 },
		{ "999.1.1.1:25", 0, "999.1.1.1", 25, 0, 0, 1 },
	};
	size_t	i;
	char	host[HOST_MAX];
	int	port;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		port = 0;
		if (config_split_hostport(cases[i].in, host, sizeof(host), &port) !=
		    cases[i].rc)
			fail_msg("case \"%s\": rc", cases[i].in);
		if (cases[i].rc == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
		if ((check_hostport(cases[i].in, HP_LISTEN, &port) == 0) !=
		    cases[i].listen)
			fail_msg("case \"%s\": listen verdict", cases[i].in);
		if ((check_hostport(cases[i].in, HP_ADDR, &port) == 0) !=
		    cases[i].addr)
			fail_msg("case \"%s\": addr verdict", cases[i].in);
		if ((check_hostport(cases[i].in, HP_HOST, &port) == 0) !=
		    cases[i].hostok)
			fail_msg("case \"%s\": host verdict", cases[i].in);
	}
	/* The host must fit the caller's buffer. */
	assert_int_equal(config_split_hostport("abcdef:25", host, 6, &port), -1);
	assert_int_equal(config_split_hostport("abcde:25", host, 6, &port), 0);
}

static void
test_hostname(void **state)
{
	static const struct {
		const char	*in;
		bool		 ok;
	} cases[] = {
		{ "mail.example.org", true }, { "localhost", true },
		{ "a-b.c", true }, { "x1", true }, { "", false }, { ".a", false },
		{ "a.", false }, { "a..b", false }, { "-a", false }, { "a-", false },
		{ "a-.b", false }, { "a_b", false }, { "a b", false },
		{ "a.b\x80", false },
	};
	char	long_label[80], long_name[300];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (valid_hostname(cases[i].in) != cases[i].ok)
			fail_msg("case \"%s\"", cases[i].in);
	memset(long_label, 'a', 63);
	long_label[63] = '\0';
	assert_true(valid_hostname(long_label));
	long_label[63] = 'a';
	long_label[64] = '\0';
	assert_false(valid_hostname(long_label));
	for (i = 0; i < 254; i++)
		long_name[i] = i % 2 ? '.' : 'a';
	long_name[253] = '\0';	/* "a.a.....a": 253 characters */
	assert_true(valid_hostname(long_name));
	long_name[253] = '.';
	long_name[254] = 'a';
	long_name[255] = '\0';
	assert_false(valid_hostname(long_name));
}

/* ---------------------------------------------------------------- */
/* config_load                                                      */
/* ---------------------------------------------------------------- */

static void
test_load_defaults(void **state)
{
	struct config	cfg;
	char		*path, err[512], want[512], host[HOST_MAX];

	(void)state;
	path = write_conf("# nothing here\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.path, path);
	assert_string_equal(cfg.dir, tmpdir);

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	if (valid_hostname(host)) {
		assert_string_equal(cfg.hostname, host);
		assert_string_equal(cfg.domain, strchr(host, '.') != NULL ?
		    strchr(host, '.') + 1 : host);
	}
	snprintf(want, sizeof(want), "%s/data", tmpdir);
	assert_string_equal(cfg.data_dir, want);
	snprintf(want, sizeof(want), "%s/data/accounts.db", tmpdir);
	assert_string_equal(cfg.accounts_db, want);
	snprintf(want, sizeof(want), "%s/data/spool", tmpdir);
	assert_string_equal(cfg.spool_dir, want);

	assert_int_equal(cfg.workers, 0);
	assert_null(cfg.help_url);
	assert_int_equal(cfg.received_show_user, 0);
	assert_int_equal(cfg.nlisteners, 0);
	assert_null(cfg.tls_cert);
	assert_null(cfg.tls_key);
	assert_non_null(strstr(cfg.tls_ciphers, "ECDHE-RSA-AES128-GCM-SHA256"));
	assert_non_null(strstr(cfg.tls_ciphersuites, "TLS_AES_128_GCM_SHA256"));
	assert_int_equal(cfg.argon2_opslimit, crypto_pwhash_OPSLIMIT_INTERACTIVE);
	assert_int_equal(cfg.argon2_memlimit, crypto_pwhash_MEMLIMIT_INTERACTIVE);
	assert_int_equal(cfg.auth_threads, 0);
	assert_int_equal(cfg.min_free_space, 100ULL << 20);
	assert_null(cfg.spool_flush);	/* file */
	assert_int_equal(cfg.max_message_size, 35ULL << 20);
	assert_int_equal(cfg.max_recipients, 100);
	assert_int_equal(cfg.idle_timeout, 300);
	assert_int_equal(cfg.data_timeout, 600);
	assert_int_equal(cfg.max_connections, 20000);
	assert_int_equal(cfg.max_connections_per_ip, 20);
	assert_int_equal(cfg.max_errors, 20);
	assert_int_equal(cfg.max_received, 50);
	assert_int_equal(cfg.min_data_rate, 1024);
	assert_int_equal(cfg.daily_messages, 2000);
	assert_int_equal(cfg.daily_recipients, 10000);
	assert_int_equal(cfg.auth_failures, 10);
	assert_int_equal(cfg.auth_failure_window, 600);
	assert_null(cfg.smarthost);
	assert_null(cfg.smarthost_tls);
	assert_null(cfg.dns);
	assert_int_equal(cfg.delivery_port, 25);
	assert_string_equal(cfg.delivery_tls, "opportunistic");
	assert_int_equal(cfg.retry_interval, 300);
	assert_int_equal(cfg.max_retry_interval, 14400);
	assert_int_equal(cfg.queue_lifetime, 5 * 86400);
	assert_int_equal(cfg.delay_warning, 4 * 3600);
	assert_string_equal(cfg.dkim_selector, "mail");
	assert_null(cfg.oauth2_issuer);
	assert_string_equal(cfg.oauth2_user_claim, "email");
	assert_int_equal(cfg.log_level, LOGL_INFO);
	assert_int_equal(cfg.log_syslog, 0);
	config_free(&cfg);
	assert_null(cfg.path);
	config_free(&cfg);	/* twice is harmless */
	free(path);
}

static void
test_load_full(void **state)
{
	struct config	cfg;
	char		*path, err[512], want[512];

	(void)state;
	path = write_conf(
	    "[server]\n"
	    "hostname = smtp.mail.example.org\n"
	    "data_dir = var\n"
	    "workers = 4\n"
	    "help_url = https://example.org/help?q=smtp#535\n"
	    "received_show_user = yes\n"
	    "[listener submission]\n"
	    "listen = 127.0.0.1:2587\n"
	    "[listener submissions]\n"
	    "listen = [::1]:465\n"
	    "[listener all]\n"
	    "listen = *:2465\n"
	    "tls = implicit\n"
	    "[tls]\n"
	    "cert = tls/cert.pem\n"
	    "key = ./tls/key.pem\n"
	    "ca = /etc/ssl/ca.pem\n"
	    "[accounts]\n"
	    "argon2_opslimit = 1\n"
	    "argon2_memlimit = 8K\n"
	    "auth_threads = 2\n"
	    "[spool]\n"
	    "dir = /var/spool/outpost\n"
	    "min_free_space = 1G\n"
	    "flush = file\n"
	    "[limits]\n"
	    "max_message_size = 10M\n"
	    "max_recipients = 100000\n"
	    "idle_timeout = 5m\n"
	    "data_timeout = 2\n"
	    "max_connections = 10\n"
	    "max_connections_per_ip = 3\n"
	    "max_errors = 5\n"
	    "max_received = 30\n"
	    "min_data_rate = 0\n"
	    "daily_messages = 7\n"
	    "daily_recipients = 8\n"
	    "auth_failures = 9\n"
	    "auth_failure_window = 1h\n"
	    "[delivery]\n"
	    "smarthost = smtp.gmail.com:465\n"
	    "smarthost_user = me@example.org\n"
	    "smarthost_password_file = secret\n"
	    "dns = 127.0.0.1:5353\n"
	    "port = 2525\n"
	    "tls = required\n"
	    "retry_interval = 1m\n"
	    "max_retry_interval = 1h\n"
	    "queue_lifetime = 1d\n"
	    "delay_warning = 0\n"
	    "[dkim]\n"
	    "selector = s2026\n"
	    "[oauth2]\n"
	    "issuer = https://accounts.example.org\n"
	    "audience = outpost\n"
	    "jwks_file = jwks.json\n"
	    "required_scope = smtp\n"
	    "user_claim = sub\n"
	    "introspection_url = http://127.0.0.1:9/introspect\n"
	    "[log]\n"
	    "level = debug\n"
	    "syslog = on\n"
	    "[limits]\n"
	    "max_recipients = 50\n");
	if (config_load(&cfg, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.hostname, "smtp.mail.example.org");
	assert_string_equal(cfg.domain, "mail.example.org");
	snprintf(want, sizeof(want), "%s/var", tmpdir);
	assert_string_equal(cfg.data_dir, want);
	snprintf(want, sizeof(want), "%s/var/accounts.db", tmpdir);
	assert_string_equal(cfg.accounts_db, want);
	assert_string_equal(cfg.spool_dir, "/var/spool/outpost");
	assert_int_equal(cfg.workers, 4);
	assert_string_equal(cfg.help_url, "https://example.org/help?q=smtp#535");
	assert_int_equal(cfg.received_show_user, 1);

	assert_int_equal(cfg.nlisteners, 3);
	assert_string_equal(cfg.listeners[0].name, "submission");
	assert_string_equal(cfg.listeners[0].listen, "127.0.0.1:2587");
	assert_int_equal(cfg.listeners[0].tls, LISTENER_TLS_STARTTLS);
	assert_string_equal(cfg.listeners[1].name, "submissions");
	assert_int_equal(cfg.listeners[1].tls, LISTENER_TLS_IMPLICIT); /* 465 */
	assert_string_equal(cfg.listeners[2].listen, "*:2465");
	assert_int_equal(cfg.listeners[2].tls, LISTENER_TLS_IMPLICIT);

	snprintf(want, sizeof(want), "%s/tls/cert.pem", tmpdir);
	assert_string_equal(cfg.tls_cert, want);
	snprintf(want, sizeof(want), "%s/tls/key.pem", tmpdir);
	assert_string_equal(cfg.tls_key, want);
	assert_string_equal(cfg.tls_ca, "/etc/ssl/ca.pem");
	assert_int_equal(cfg.argon2_opslimit, 1);
	assert_int_equal(cfg.argon2_memlimit, 8192);
	assert_int_equal(cfg.auth_threads, 2);
	assert_int_equal(cfg.min_free_space, 1ULL << 30);
	assert_string_equal(cfg.spool_flush, "file");
	assert_int_equal(cfg.max_message_size, 10ULL << 20);
	assert_int_equal(cfg.max_recipients, 50);	/* last one wins */
	assert_int_equal(cfg.idle_timeout, 300);
	assert_int_equal(cfg.data_timeout, 2);
	assert_int_equal(cfg.max_connections, 10);
	assert_int_equal(cfg.max_connections_per_ip, 3);
	assert_int_equal(cfg.max_errors, 5);
	assert_int_equal(cfg.max_received, 30);
	assert_int_equal(cfg.min_data_rate, 0);
	assert_int_equal(cfg.daily_messages, 7);
	assert_int_equal(cfg.daily_recipients, 8);
	assert_int_equal(cfg.auth_failures, 9);
	assert_int_equal(cfg.auth_failure_window, 3600);
	assert_string_equal(cfg.smarthost, "smtp.gmail.com:465");
	assert_string_equal(cfg.smarthost_tls, "implicit");	/* from 465 */
	assert_string_equal(cfg.smarthost_user, "me@example.org");
	snprintf(want, sizeof(want), "%s/secret", tmpdir);
	assert_string_equal(cfg.smarthost_password_file, want);
	assert_string_equal(cfg.dns, "127.0.0.1:5353");
	assert_int_equal(cfg.delivery_port, 2525);
	assert_string_equal(cfg.delivery_tls, "required");
	assert_int_equal(cfg.retry_interval, 60);
	assert_int_equal(cfg.max_retry_interval, 3600);
	assert_int_equal(cfg.queue_lifetime, 86400);
	assert_int_equal(cfg.delay_warning, 0);
	assert_string_equal(cfg.dkim_selector, "s2026");
	assert_string_equal(cfg.oauth2_issuer, "https://accounts.example.org");
	assert_string_equal(cfg.oauth2_audience, "outpost");
	snprintf(want, sizeof(want), "%s/jwks.json", tmpdir);
	assert_string_equal(cfg.oauth2_jwks_file, want);
	assert_string_equal(cfg.oauth2_required_scope, "smtp");
	assert_string_equal(cfg.oauth2_user_claim, "sub");
	assert_string_equal(cfg.oauth2_introspection_url,
	    "http://127.0.0.1:9/introspect");
	assert_int_equal(cfg.log_level, LOGL_DEBUG);
	assert_int_equal(cfg.log_syslog, 1);
	config_free(&cfg);
	free(path);
}

static void
test_load_small_things(void **state)
{
	struct config	cfg;
	char		*path, err[512], *cwd;

	(void)state;
	/* Single-label host name: the domain is the host name. */
	path = write_conf("[server]\nhostname = box\n[delivery]\n"
	    "smarthost = [::1]:587\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.domain, "box");
	assert_string_equal(cfg.smarthost_tls, "starttls");
	config_free(&cfg);
	free(path);

	/* An empty value restores the default. */
	path = write_conf("[dkim]\nselector =\n[tls]\nciphers =\n"
	    "[server]\nhostname = a.b\nhostname =\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_non_null(cfg.hostname);
	assert_string_not_equal(cfg.hostname, "a.b");
	assert_string_equal(cfg.dkim_selector, "mail");
	assert_string_equal(cfg.tls_ciphers, DEFAULT_CIPHERS);
	config_free(&cfg);
	free(path);

	/* [local]: off by default; a relative socket is under the file's
	 * directory; qualify_domain stays unset (users fall back to
	 * [server] domain) */
	path = write_conf("[server]\ndomain = example.org\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_null(cfg.local_socket);
	assert_null(cfg.local_qualify_domain);
	config_free(&cfg);
	free(path);
	path = write_conf("[local]\nsocket = run/o.sock\n"
	    "qualify_domain = users.example.org\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_non_null(strstr(cfg.local_socket, "/run/o.sock"));
	assert_int_equal(cfg.local_socket[0], '/');
	assert_string_equal(cfg.local_qualify_domain, "users.example.org");
	config_free(&cfg);
	free(path);

	/* A relative config path is made absolute. */
	path = write_conf("[server]\ndomain = example.org\n");
	cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(config_load(&cfg, "outpost.conf", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg.path, path);
	assert_string_equal(cfg.dir, tmpdir);
	assert_string_equal(cfg.domain, "example.org");
	config_free(&cfg);
	free(cwd);
	free(path);
}

/* Each case: a file and the error expected after "PATH". */
static void
test_load_errors(void **state)
{
	static const struct {
		const char	*text;
		const char	*err;
	} cases[] = {
		{ "[limits]\nmax_recipients = abc\n",
		    ":2: [limits] max_recipients: expected a number from 1 to "
		    "100000, got \"abc\"" },
		{ "[limits]\n\n\nmax_recipients = 0\n",
		    ":4: [limits] max_recipients: expected a number from 1 to "
		    "100000, got \"0\"" },
		{ "[limits]\nmax_recipients = 100001\n",
		    ":2: [limits] max_recipients: expected a number from 1 to "
		    "100000, got \"100001\"" },
		{ "[limits]\nmax_recipients =\n",
		    ":2: [limits] max_recipients: expected a number from 1 to "
		    "100000, got \"\"" },
		{ "[limits]\nidle_timeout = 5 minutes\n",
		    ":2: [limits] idle_timeout: expected a duration like 30s, 5m, "
		    "4h or 5d, from 1s to 1d, got \"5 minutes\"" },
		{ "[limits]\nidle_timeout = 0\n",
		    ":2: [limits] idle_timeout: expected a duration like 30s, 5m, "
		    "4h or 5d, from 1s to 1d, got \"0\"" },
		{ "[limits]\nmax_message_size = 10Q\n",
		    ":2: [limits] max_message_size: expected a size in bytes (K, M, "
		    "G suffixes allowed), from 1K to 1T, got \"10Q\"" },
		{ "[accounts]\nargon2_opslimit = 0\n",
		    ":2: [accounts] argon2_opslimit: expected a number from 1 to "
		    "4294967295, got \"0\"" },
		{ "[accounts]\nargon2_memlimit = 4K\n",
		    ":2: [accounts] argon2_memlimit: expected a size in bytes" },
		{ "[log]\nsyslog = maybe\n",
		    ":2: [log] syslog: expected yes or no, got \"maybe\"" },
		{ "[log]\nlevel = loud\n",
		    ":2: [log] level: expected error, warning, info or debug, got "
		    "\"loud\"" },
		{ "[delivery]\nsmarthost = gmail.com:587\nsmarthost_tls = ssl\n",
		    ":3: [delivery] smarthost_tls: expected none, starttls or "
		    "implicit, got \"ssl\"" },
		{ "[spool]\nflush = always\n",
		    ":2: [spool] flush: expected file or filesystem, got "
		    "\"always\"" },
		{ "[delivery]\ntls = maybe\n",
		    ":2: [delivery] tls: expected opportunistic, required or verify, "
		    "got \"maybe\"" },
		{ "[delivery]\nport = 0\n",
		    ":2: [delivery] port: expected a number from 1 to 65535" },
		{ "[delivery]\nport = 65536\n",
		    ":2: [delivery] port: expected a number from 1 to 65535" },
		{ "[delivery]\nsmarthost = smtp.gmail.com\n",
		    ":2: [delivery] smarthost: expected HOST:PORT like "
		    "smtp.example.org:587, got \"smtp.gmail.com\"" },
		{ "[delivery]\ndns = localhost:53\n",
		    ":2: [delivery] dns: expected ADDR:PORT like 127.0.0.1:53 or "
		    "[::1]:53, got \"localhost:53\"" },
		{ "[server]\nhostname = bad_name\n",
		    ":2: [server] hostname: expected a host name like "
		    "mail.example.org, got \"bad_name\"" },
		{ "[server]\nhelp_url = ftp://x\n",
		    ":2: [server] help_url: expected an http:// or https:// URL" },
		{ "[server]\nhelp_url = https://x/a b\n",
		    ":2: [server] help_url: expected an http:// or https:// URL" },
		{ "[server]\nhelp_url = https://x/\x01\n",
		    ":2: [server] help_url: contains a control character" },
		{ "[server]\nworkers = -1\n",
		    ":2: [server] workers: expected a number from 0 to 256" },
		{ "[dkim]\nselector = a b\n",
		    ":2: [dkim] selector: expected a DNS label" },
		{ "[server]\nhostnme = x\n", ":2: [server] hostnme: unknown key" },
		{ "[limits]\nmax_message_size = 1M\n[serverr]\n",
		    ":3: unknown section [serverr]" },
		{ "hostname = x\n",
		    ":1: \"hostname\" outside of any section; put it under a header "
		    "like [server]" },
		{ "[listener]\n", ":1: a listener needs a name: [listener submission]" },
		{ "[listener a/b]\n", ":1: [listener a/b]: a listener name is 1 to 64" },
		{ "[listener a]\nlisten = 1.2.3.4:1\n[listener a]\n",
		    ":3: duplicate listener \"a\"" },
		{ "[listener a]\nlisten = localhost:587\n",
		    ":2: [listener a] listen: expected ADDR:PORT like 127.0.0.1:587, "
		    "[::1]:587 or *:587, got \"localhost:587\"" },
		{ "[listener a]\nlisten = ::1:587\n",
		    ":2: [listener a] listen: expected ADDR:PORT" },
		{ "[listener a]\nlisten = 127.0.0.1:99999\n",
		    ":2: [listener a] listen: expected ADDR:PORT" },
		{ "[listener a]\ntls = ssl\n",
		    ":2: [listener a] tls: expected starttls or implicit, got \"ssl\"" },
		{ "[listener a]\nport = 1\n",
		    ":2: [listener a] port: unknown key (known: listen, tls, trusted_networks)" },
		{ "[listener a]\nlisten = 127.0.0.1:1\n[listener b]\nlisten = *:2\n"
		  "[listener c]\nlisten = *:3\n[listener d]\nlisten = *:4\n"
		  "[listener e]\nlisten = *:5\n[listener f]\nlisten = *:6\n"
		  "[listener g]\nlisten = *:7\n[listener h]\nlisten = *:8\n"
		  "[listener i]\n",
		    ":17: too many listeners (at most 8)" },
		{ "[server]\nnovalue\n",
		    ":2: expected \"key = value\" or a [section] header" },
		/* Whole-file checks: no line number. */
		{ "[listener a]\nlisten = 127.0.0.1:587\n",
		    ": [tls] cert and key are required for the listeners" },
		{ "[listener a]\nlisten = 127.0.0.1:587\n[tls]\ncert = c.pem\n",
		    ": [tls] cert and key are required for the listeners" },
		{ "[listener a]\ntls = implicit\n",
		    ": [listener a] listen is required (e.g. listen = 127.0.0.1:587)" },
		{ "[tls]\ncert = a\nkey = b\n[listener a]\nlisten = *:1\n"
		  "[listener b]\nlisten = *:1\n",
		    ": [listener a] and [listener b] both listen on *:1" },
		{ "[tls]\nkey = k.pem\n",
		    ": [tls] cert and key go together: set both" },
		{ "[delivery]\nsmarthost_user = u\nsmarthost_password_file = p\n",
		    ": [delivery] smarthost_tls, smarthost_user and "
		    "smarthost_password_file need smarthost = HOST:PORT" },
		{ "[delivery]\nsmarthost = a.b:25\nsmarthost_user = u\n",
		    ": [delivery] smarthost_user and smarthost_password_file go "
		    "together: set both" },
		{ "[delivery]\nretry_interval = 1h\nmax_retry_interval = 5m\n",
		    ": [delivery] max_retry_interval must not be less than "
		    "retry_interval" },
		{ "[oauth2]\njwks_file = j\njwks_url = https://x/jwks\n",
		    ": [oauth2] set jwks_file or jwks_url, not both" },
		{ "[local]\nsocket = /run/outpost/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaa.sock\n",
		    ": [local] socket: the path is longer than the 107 bytes a "
		    "unix socket allows" },
		{ "[local]\nqualify_domain = not a domain\n",
		    ":2: [local] qualify_domain: expected a host name" },
		{ "[local]\nport = 1\n", ":2: [local] port: unknown key" },
	};
	struct config	cfg;
	char		*path, err[512], want[1024];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = write_conf(cases[i].text);
		memset(&cfg, 0x5a, sizeof(cfg));
		if (config_load(&cfg, path, err, sizeof(err)) != -1)
			fail_msg("case %zu: loaded", i);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].err);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, want);
		/* Failure leaves a zeroed struct: config_free is a no-op. */
		assert_null(cfg.path);
		assert_int_equal(cfg.nlisteners, 0);
		config_free(&cfg);
		free(path);
	}
}

static void
test_load_missing(void **state)
{
	struct config	cfg;
	char		err[512], want[512];

	(void)state;
	snprintf(want, sizeof(want), "%s/none.conf", tmpdir);
	assert_int_equal(config_load(&cfg, want, err, sizeof(err)), -1);
	strncat(want, ": cannot open: No such file or directory",
	    sizeof(want) - strlen(want) - 1);
	assert_string_equal(err, want);
	assert_null(cfg.path);

	assert_int_equal(config_load(&cfg, "", err, sizeof(err)), -1);
	/* A NULL err must not crash. */
	assert_int_equal(config_load(&cfg, "/nonexistent", NULL, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini_table),
		cmocka_unit_test(test_ini_long_lines),
		cmocka_unit_test(test_ini_file_errors),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_load_defaults),
		cmocka_unit_test(test_load_full),
		cmocka_unit_test(test_load_small_things),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_missing),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
