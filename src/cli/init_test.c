/*
 * init_test — runs `outpost init` into a temporary directory and checks
 * what it wrote with OpenSSL and the daemon's own config parser: the CA
 * verifies the server certificate for every name in its SAN, keys match
 * their certificates, modes are restrictive, outpost.conf loads, a second
 * run is refused and a failed run leaves nothing behind.  Also the option
 * defaults, the DKIM TXT records and the helpers in pki.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli/init.c"
#include "cli/pki.c"
#include "tls/tls.h"
#include "util/log.h"

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	char	*dir = malloc(64);

	assert_non_null(dir);
	snprintf(dir, 64, "/tmp/outpost-init-XXXXXX");
	assert_non_null(mkdtemp(dir));
	*state = dir;
	return 0;
}

static int
teardown(void **state)
{
	char	*dir = *state;

	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static void
path_of(char *buf, size_t len, const char *dir, const char *rel)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", dir, rel) < len);
}

static X509 *
read_cert(const char *dir, const char *rel)
{
	char	 path[256];
	FILE	*fp;
	X509	*x;

	path_of(path, sizeof(path), dir, rel);
	fp = fopen(path, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *
read_key(const char *dir, const char *rel)
{
	char		 path[256];
	char		 line[64];
	FILE		*fp;
	EVP_PKEY	*k;

	path_of(path, sizeof(path), dir, rel);
	fp = fopen(path, "r");
	assert_non_null(fp);
	/* PKCS#8, not the legacy "BEGIN EC/RSA PRIVATE KEY" forms. */
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");
	rewind(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	return k;
}

static int
mode_of(const char *dir, const char *rel)
{
	char		 path[256];
	struct stat	 st;

	path_of(path, sizeof(path), dir, rel);
	assert_int_equal(lstat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

static int
run_init(const char *dir, const char *host, const char *domain)
{
	char	*argv[8];
	int	 argc = 0, saved, devnull, rc;

	argv[argc++] = (char *)"init";
	argv[argc++] = (char *)dir;
	if (host != NULL) {
		argv[argc++] = (char *)"--hostname";
		argv[argc++] = (char *)host;
	}
	if (domain != NULL) {
		argv[argc++] = (char *)"--domain";
		argv[argc++] = (char *)domain;
	}
	argv[argc] = NULL;

	/* cli_init prints its report on stdout, which cmocka also uses. */
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	assert_true(saved != -1 && devnull != -1);
	dup2(devnull, STDOUT_FILENO);
	close(devnull);
	rc = cli_init(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return rc;
}

static void
test_init_writes_working_setup(void **state)
{
	char		*dir = *state;
	char		 sub[128], path[256], err[1024];
	X509		*ca, *srv;
	EVP_PKEY	*cakey, *srvkey, *ed, *rsa;
	X509_STORE	*store;
	X509_STORE_CTX	*sctx;
	struct config	 cfg;
	SSL_CTX		*ctx;
	const char	*keys[] = { "tls/ca.key", "tls/server.key",
	    "data/dkim/example.org/mail-ed.ed25519.key",
	    "data/dkim/example.org/mail-rsa.rsa.key" };
	size_t		 i;

	/* A directory that does not exist yet is created. */
	path_of(sub, sizeof(sub), dir, "setup");
	assert_int_equal(run_init(sub, "Mail.Example.ORG", "example.org"),
	    EX_OK);

	ca = read_cert(sub, "tls/ca.crt");
	srv = read_cert(sub, "tls/server.crt");
	cakey = read_key(sub, "tls/ca.key");
	srvkey = read_key(sub, "tls/server.key");

	/* The CA verifies the server certificate, for TLS server use. */
	store = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	assert_non_null(store);
	assert_non_null(sctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(sctx, store, srv, NULL), 1);
	X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_SERVER);
	assert_int_equal(X509_verify_cert(sctx), 1);
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_check_ca(srv), 0);

	/* SAN: the host name (lowercased), localhost, 127.0.0.1, ::1. */
	assert_int_equal(X509_check_host(srv, "mail.example.org", 0, 0, NULL),
	    1);
	assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
	assert_int_equal(X509_check_host(srv, "example.org", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(srv, "10.0.0.1", 0), 0);

	/* Keys match their certificates and are EC P-256. */
	assert_int_equal(X509_check_private_key(ca, cakey), 1);
	assert_int_equal(X509_check_private_key(srv, srvkey), 1);
	assert_int_equal(X509_check_private_key(srv, cakey), 0);
	ERR_clear_error();
	assert_true(EVP_PKEY_is_a(srvkey, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(srvkey), 256);

	/* DKIM keys: ed25519 and RSA 2048. */
	ed = read_key(sub, "data/dkim/example.org/mail-ed.ed25519.key");
	rsa = read_key(sub, "data/dkim/example.org/mail-rsa.rsa.key");
	assert_true(EVP_PKEY_is_a(ed, "ED25519"));
	assert_true(EVP_PKEY_is_a(rsa, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(rsa), 2048);

	/* Modes. */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(mode_of(sub, keys[i]), 0600);
	assert_int_equal(mode_of(sub, "tls/ca.crt"), 0644);
	assert_int_equal(mode_of(sub, "tls/server.crt"), 0644);
	assert_int_equal(mode_of(sub, "tls"), 0755);
	assert_int_equal(mode_of(sub, "data"), 0700);
	assert_int_equal(mode_of(sub, "data/spool"), 0700);
	assert_int_equal(mode_of(sub, "data/dkim/example.org"), 0700);

	/* The configuration loads with the daemon's parser and says what
	 * init meant. */
	path_of(path, sizeof(path), sub, "outpost.conf");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.hostname, "mail.example.org");
	assert_string_equal(cfg.domain, "example.org");
	assert_string_equal(cfg.dkim_selector, "mail");
	assert_int_equal(cfg.nlisteners, 2);
	assert_string_equal(cfg.listeners[0].name, "submission");
	assert_string_equal(cfg.listeners[0].listen, "127.0.0.1:2587");
	assert_int_equal(cfg.listeners[0].tls, LISTENER_TLS_STARTTLS);
	assert_string_equal(cfg.listeners[1].name, "submissions");
	assert_string_equal(cfg.listeners[1].listen, "127.0.0.1:2465");
	assert_int_equal(cfg.listeners[1].tls, LISTENER_TLS_IMPLICIT);
	/* the account page is on in the local setup */
	assert_non_null(cfg.web_listen);
	assert_string_equal(cfg.web_listen, "127.0.0.1:2443");
	/* and so is the local submission socket, inside the setup */
	assert_non_null(cfg.local_socket);
	path_of(path, sizeof(path), sub, "run/outpost.sock");
	assert_string_equal(cfg.local_socket, path);
	assert_null(cfg.local_qualify_domain);
	assert_int_equal(cfg.log_level, LOGL_INFO);
	assert_non_null(strstr(cfg.tls_cert, "/tls/server.crt"));

	/* And the daemon can build its TLS context from it. */
	ctx = tls_server_ctx_new(cfg.tls_cert, cfg.tls_key, cfg.tls_ciphers,
	    cfg.tls_ciphersuites, err, sizeof(err));
	assert_non_null(ctx);
	SSL_CTX_free(ctx);
	config_free(&cfg);

	/* A second init into the same directory is refused and changes
	 * nothing. */
	assert_int_equal(run_init(sub, NULL, "other.example"), EX_CANTCREAT);
	path_of(path, sizeof(path), sub, "data/dkim/other.example");
	assert_int_equal(access(path, F_OK), -1);
	X509_free(srv);
	srv = read_cert(sub, "tls/server.crt");
	assert_int_equal(X509_check_private_key(srv, srvkey), 1);

	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(srvkey);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

/*
 * Every "# key = value" line is a documented default or example: removing
 * the "# " from all of them at once must still give a valid file.
 */
static void
test_init_commented_keys_are_valid(void **state)
{
	char		*dir = *state;
	char		 in[256], out[256], line[1024], err[1024];
	FILE		*fi, *fo;
	struct config	 cfg;
	size_t		 k;
	int		 uncommented = 0;

	assert_int_equal(run_init(dir, "mail.example.org", NULL), EX_OK);
	path_of(in, sizeof(in), dir, "outpost.conf");
	path_of(out, sizeof(out), dir, "all.conf");
	fi = fopen(in, "r");
	fo = fopen(out, "w");
	assert_non_null(fi);
	assert_non_null(fo);
	while (fgets(line, sizeof(line), fi) != NULL) {
		assert_non_null(strchr(line, '\n'));
		k = strspn(line + 2, "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (strncmp(line, "# ", 2) == 0 &&
		    ((k > 0 && strncmp(line + 2 + k, " = ", 3) == 0) ||
		    strcmp(line, "# [oauth2]\n") == 0)) {
			fputs(line + 2, fo);
			uncommented++;
		} else
			fputs(line, fo);
	}
	fclose(fi);
	assert_int_equal(fclose(fo), 0);
	assert_true(uncommented > 30);
	if (config_load(&cfg, out, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.smarthost, "smtp.gmail.com:587");
	assert_int_equal(cfg.idle_timeout, 300);
	assert_int_equal(cfg.max_message_size, 35ULL * 1024 * 1024);
	config_free(&cfg);
}

static void
test_init_failure_rolls_back(void **state)
{
	char	*dir = *state;
	char	 path[256];
	FILE	*fp;

	/* A stray CA key from an earlier run must not be overwritten. */
	path_of(path, sizeof(path), dir, "tls");
	assert_int_equal(mkdir(path, 0755), 0);
	path_of(path, sizeof(path), dir, "tls/ca.key");
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("precious\n", fp);
	fclose(fp);

	assert_int_equal(run_init(dir, "mail.example.org", NULL),
	    EX_CANTCREAT);
	assert_int_equal(access(path, F_OK), 0);
	path_of(path, sizeof(path), dir, "outpost.conf");
	assert_int_equal(access(path, F_OK), -1);
	path_of(path, sizeof(path), dir, "data");
	assert_int_equal(access(path, F_OK), -1);
	path_of(path, sizeof(path), dir, "tls/server.crt");
	assert_int_equal(access(path, F_OK), -1);
	/* The directory that existed before is kept. */
	path_of(path, sizeof(path), dir, "tls");
	assert_int_equal(access(path, F_OK), 0);
}

static void
test_init_defaults(void **state)
{
	struct init_opts o;
	char		*a1[] = { "init", "d", "--hostname", "mail.example.org",
	    NULL };
	char		*a2[] = { "init", "d", "--hostname=box.lan", NULL };
	char		*a3[] = { "init", "d", "--hostname", "localhost",
	    "--submission", "[::1]:587", "--submissions=*:465", NULL };
	char		*bad[][5] = {
		{ "init", NULL },
		{ "init", "d", "e", NULL },
		{ "init", "d", "--hostname", NULL },
		{ "init", "d", "--hostname", "bad name", NULL },
		{ "init", "d", "--hostname", "a..b", NULL },
		{ "init", "d", "--domain", "-x.org", NULL },
		{ "init", "d", "--submission", "127.0.0.1", NULL },
		{ "init", "d", "--submission", "127.0.0.1:0", NULL },
		{ "init", "d", "--submissions", "1.2.3.4:99999", NULL },
		{ "init", "d", "--submission", "a b:25", NULL },
		{ "init", "d", "--submission", "127.0.0.1:2465", NULL },
		{ "init", "d", "--account-page", "x", NULL },
	};
	size_t		 i;
	int		 n;

	(void)state;
	assert_int_equal(init_parse(4, a1, &o), 0);
	assert_string_equal(o.hostname, "mail.example.org");
	assert_string_equal(o.domain, "example.org");
	assert_string_equal(o.submission, "127.0.0.1:2587");
	assert_string_equal(o.submissions, "127.0.0.1:2465");

	/* One label left is not a domain worth signing for. */
	assert_int_equal(init_parse(3, a2, &o), 0);
	assert_string_equal(o.hostname, "box.lan");
	assert_string_equal(o.domain, "example.test");

	assert_int_equal(init_parse(7, a3, &o), 0);
	assert_string_equal(o.domain, "example.test");
	assert_string_equal(o.submission, "[::1]:587");
	assert_string_equal(o.submissions, "*:465");

	/* --domain alone: the host name is this machine's when fully
	 * qualified, else mail.DOMAIN. */
	{
		char	*a4[] = { "init", "d", "--domain", "example.net", NULL };
		char	 host[256];

		assert_int_equal(init_parse(4, a4, &o), 0);
		assert_string_equal(o.domain, "example.net");
		if (gethostname(host, sizeof(host)) == 0 &&
		    strchr(host, '.') == NULL)
			assert_string_equal(o.hostname, "mail.example.net");
	}

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (n = 0; bad[i][n] != NULL; n++)
			;
		assert_int_equal(init_parse(n, bad[i], &o), -1);
	}
}

static void
test_dkim_records(void **state)
{
	EVP_PKEY	*ed, *rsa, *ec;
	char		 val[2048], quoted[2200], err[256];
	unsigned char	 raw[32], dec[64];
	size_t		 rawlen = sizeof(raw);
	const char	*p;

	(void)state;
	ed = pki_key_new(PKI_KEY_ED25519, err, sizeof(err));
	rsa = pki_key_new(PKI_KEY_RSA2048, err, sizeof(err));
	ec = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err));
	assert_non_null(ed);
	assert_non_null(rsa);
	assert_non_null(ec);

	/* ed25519: p= is the raw 32-byte public key (RFC 8463). */
	assert_int_equal(pki_dkim_txt_value(ed, val, sizeof(val), err,
	    sizeof(err)), 0);
	assert_true(strncmp(val, "v=DKIM1; k=ed25519; p=", 22) == 0);
	p = val + 22;
	assert_int_equal(strlen(p), 44);
	assert_int_equal(EVP_DecodeBlock(dec, (const unsigned char *)p, 44),
	    33);	/* 32 bytes plus one from the '=' padding */
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rawlen), 1);
	assert_memory_equal(dec, raw, 32);
	assert_int_equal(pki_txt_quote(val, quoted, sizeof(quoted)), 0);
	assert_int_equal(quoted[0], '"');
	assert_null(strstr(quoted, "\" \""));	/* one string */

	/* RSA: DER SubjectPublicKeyInfo, longer than one 255-byte string. */
	assert_int_equal(pki_dkim_txt_value(rsa, val, sizeof(val), err,
	    sizeof(err)), 0);
	assert_true(strncmp(val, "v=DKIM1; k=rsa; p=MIIB", 22) == 0);
	assert_true(strlen(val) > 255);
	assert_int_equal(pki_txt_quote(val, quoted, sizeof(quoted)), 0);
	assert_non_null(strstr(quoted, "\" \""));

	assert_int_equal(pki_dkim_txt_value(ec, val, sizeof(val), err,
	    sizeof(err)), -1);
	assert_int_equal(pki_dkim_txt_value(rsa, val, 100, err,
	    sizeof(err)), -1);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static void
test_txt_quote(void **state)
{
	char	 in[601], out[700], small[10];

	(void)state;
	memset(in, 'a', 600);
	in[600] = '\0';
	assert_int_equal(pki_txt_quote(in, out, sizeof(out)), 0);
	/* 255 + 255 + 90, each quoted, separated by one space. */
	assert_int_equal(strlen(out), 600 + 6 + 2);
	assert_int_equal(out[0], '"');
	assert_int_equal(out[256], '"');
	assert_int_equal(out[257], ' ');
	assert_int_equal(out[258], '"');
	assert_int_equal(out[514], '"');
	assert_int_equal(out[515], ' ');
	assert_int_equal(out[strlen(out) - 1], '"');

	assert_int_equal(pki_txt_quote("", out, sizeof(out)), 0);
	assert_string_equal(out, "\"\"");
	assert_int_equal(pki_txt_quote("abc", out, sizeof(out)), 0);
	assert_string_equal(out, "\"abc\"");
	assert_int_equal(pki_txt_quote("123456789", small, sizeof(small)), -1);
	assert_int_equal(pki_txt_quote("a\"b", out, sizeof(out)), -1);
}

static void
test_valid_dnsname(void **state)
{
	static const struct {
		const char	*name;
		int		 ok;
	} t[] = {
		{ "localhost", 1 }, { "mail.example.org", 1 },
		{ "a-b.c1.example", 1 }, { "xn--bcher-kva.example", 1 },
		{ "", 0 }, { ".", 0 }, { "a.", 0 }, { ".a", 0 }, { "a..b", 0 },
		{ "-a.b", 0 }, { "a-.b", 0 }, { "a.b-", 0 }, { "a_b.c", 0 },
		{ "a b", 0 }, { "a,DNS:evil", 0 }, { "caf\xc3\xa9.example", 0 },
	};
	char	 label64[80], long254[300];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(pki_valid_dnsname(t[i].name), t[i].ok);
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_int_equal(pki_valid_dnsname(label64), 0);
	label64[63] = '\0';
	assert_int_equal(pki_valid_dnsname(label64), 1);
	for (i = 0; i < 254; i++)
		long254[i] = (i % 2) ? '.' : 'a';
	long254[253] = '\0';	/* 253 bytes, ends in a label */
	assert_int_equal(pki_valid_dnsname(long254), 1);
	long254[253] = '.';
	long254[254] = 'a';
	long254[255] = '\0';
	assert_int_equal(pki_valid_dnsname(long254), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_writes_working_setup,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_init_commented_keys_are_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_failure_rolls_back,
		    setup, teardown),
		cmocka_unit_test(test_init_defaults),
		cmocka_unit_test(test_dkim_records),
		cmocka_unit_test(test_txt_quote),
		cmocka_unit_test(test_valid_dnsname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
