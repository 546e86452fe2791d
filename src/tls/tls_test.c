/*
 * tls_test — server and client contexts against certificates made by the
 * same code as `outpost init` (cli/pki.c), with real handshakes over an
 * in-memory BIO pair: policy (versions, verification, host names),
 * resumption, tls_describe, and the wording of load errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>

#include "cli/pki.c"
#include "tls/tls.h"

struct fx {
	char	 dir[64];
	char	 ca[128], cert[128], key[128], other_key[128], garbage[128];
};

static void
fx_path(char *buf, size_t len, const char *dir, const char *name)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", dir, name) < len);
}

static int
setup(void **state)
{
	struct fx	*fx;
	EVP_PKEY	*cakey, *key, *other;
	X509		*ca, *srv;
	char		 err[512];
	FILE		*fp;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/outpost-tls-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx_path(fx->ca, sizeof(fx->ca), fx->dir, "ca.crt");
	fx_path(fx->cert, sizeof(fx->cert), fx->dir, "server.crt");
	fx_path(fx->key, sizeof(fx->key), fx->dir, "server.key");
	fx_path(fx->other_key, sizeof(fx->other_key), fx->dir, "other.key");
	fx_path(fx->garbage, sizeof(fx->garbage), fx->dir, "garbage.key");

	cakey = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err));
	key = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err));
	other = pki_key_new(PKI_KEY_EC_P256, err, sizeof(err));
	assert_non_null(cakey);
	assert_non_null(key);
	assert_non_null(other);
	ca = pki_ca_new(cakey, "test CA", NULL, 30, err, sizeof(err));
	assert_non_null(ca);
	srv = pki_server_cert_new(key, ca, cakey, "mail.example.org", 30, err,
	    sizeof(err));
	assert_non_null(srv);
	assert_int_equal(pki_write_cert(fx->ca, ca, 0644, err, sizeof(err)), 0);
	assert_int_equal(pki_write_cert(fx->cert, srv, 0644, err, sizeof(err)), 0);
	assert_int_equal(pki_write_key(fx->key, key, 0600, err, sizeof(err)), 0);
	assert_int_equal(pki_write_key(fx->other_key, other, 0600, err,
	    sizeof(err)), 0);
	fp = fopen(fx->garbage, "w");
	assert_non_null(fp);
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
	    "-----END PRIVATE KEY-----\n", fp);
	fclose(fp);
	chmod(fx->garbage, 0600);

	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	*state = fx;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Runs both ends of a handshake over a BIO pair.  Returns 1 when both
 * finished, 0 when either failed. */
static int
handshake(SSL *c, SSL *s)
{
	int	 i, rc_c = 0, rc_s = 0, err;

	for (i = 0; i < 100 && (rc_c != 1 || rc_s != 1); i++) {
		if (rc_c != 1) {
			rc_c = SSL_do_handshake(c);
			if (rc_c != 1) {
				err = SSL_get_error(c, rc_c);
				if (err != SSL_ERROR_WANT_READ &&
				    err != SSL_ERROR_WANT_WRITE)
					return 0;
			}
		}
		if (rc_s != 1) {
			rc_s = SSL_do_handshake(s);
			if (rc_s != 1) {
				err = SSL_get_error(s, rc_s);
				if (err != SSL_ERROR_WANT_READ &&
				    err != SSL_ERROR_WANT_WRITE)
					return 0;
			}
		}
	}
	return rc_c == 1 && rc_s == 1;
}

static void
pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **c, SSL **s)
{
	BIO	*b1, *b2;

	*c = SSL_new(cctx);
	*s = SSL_new(sctx);
	assert_non_null(*c);
	assert_non_null(*s);
	assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
	SSL_set_bio(*c, b1, b1);
	SSL_set_bio(*s, b2, b2);
	SSL_set_connect_state(*c);
	SSL_set_accept_state(*s);
}

/* Server sends a greeting, client reads it: in TLS 1.3 this also carries
 * the session tickets to the client. */
static void
greet(SSL *c, SSL *s)
{
	char	 buf[64];
	int	 n;

	assert_int_equal(SSL_write(s, "220 ok\r\n", 8), 8);
	n = SSL_read(c, buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "220 ok\r\n", 8);
}

static void
test_server_ctx_policy(void **state)
{
	struct fx	*fx = *state;
	SSL_CTX		*ctx;
	char		 err[512];

	ctx = tls_server_ctx_new(fx->cert, fx->key, NULL, NULL, err,
	    sizeof(err));
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
	assert_false(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
	assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
	assert_int_equal(SSL_CTX_get_session_cache_mode(ctx),
	    SSL_SESS_CACHE_SERVER);
	assert_true(SSL_CTX_sess_get_cache_size(ctx) >= 1024);
	assert_int_equal(ERR_peek_error(), 0);
	SSL_CTX_free(ctx);
}

static void
test_handshake_tls13_verified(void **state)
{
	struct fx	*fx = *state;
	SSL_CTX		*sctx, *cctx;
	SSL		*c, *s;
	SSL_SESSION	*sess;
	char		 err[512], desc[128];

	sctx = tls_server_ctx_new(fx->cert, fx->key, NULL, NULL, err,
	    sizeof(err));
	cctx = tls_client_ctx_new(fx->ca, 1, err, sizeof(err));
	assert_non_null(sctx);
	assert_non_null(cctx);
	pair(cctx, sctx, &c, &s);
	assert_int_equal(tls_client_set_host(c, "mail.example.org"), 0);
	assert_int_equal(handshake(c, s), 1);
	assert_int_equal(SSL_get_verify_result(c), X509_V_OK);

	tls_describe(s, desc, sizeof(desc));
	assert_string_equal(desc,
	    "version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128");
	assert_string_equal(tls_version_name(s), "TLSv1.3");
	/* A buffer too small truncates, never overflows. */
	tls_describe(s, desc, 10);
	assert_int_equal(strlen(desc), 9);

	/* TLS 1.3 resumption: the ticket comes with the first server data. */
	greet(c, s);
	sess = SSL_get1_session(c);
	assert_non_null(sess);
	assert_true(SSL_SESSION_is_resumable(sess));
	SSL_shutdown(c);
	SSL_shutdown(s);
	SSL_free(c);
	SSL_free(s);
	pair(cctx, sctx, &c, &s);
	assert_int_equal(tls_client_set_host(c, "mail.example.org"), 0);
	assert_int_equal(SSL_set_session(c, sess), 1);
	assert_int_equal(handshake(c, s), 1);
	assert_int_equal(SSL_session_reused(s), 1);
	SSL_SESSION_free(sess);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_handshake_tls12_and_resumption(void **state)
{
	struct fx	*fx = *state;
	SSL_CTX		*sctx, *cctx;
	SSL		*c, *s;
	SSL_SESSION	*sess;
	char		 err[512], desc[128];

	sctx = tls_server_ctx_new(fx->cert, fx->key, NULL, NULL, err,
	    sizeof(err));
	cctx = tls_client_ctx_new(fx->ca, 1, err, sizeof(err));
	assert_non_null(sctx);
	assert_non_null(cctx);
	SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
	pair(cctx, sctx, &c, &s);
	assert_int_equal(handshake(c, s), 1);
	greet(c, s);
	tls_describe(s, desc, sizeof(desc));
	/* Server preference: the first ECDSA suite of the default list. */
	assert_string_equal(desc, "version=TLS1_2 "
	    "cipher=ECDHE-ECDSA-AES128-GCM-SHA256 bits=128/128");
	assert_string_equal(tls_version_name(c), "TLSv1.2");
	sess = SSL_get1_session(c);
	assert_non_null(sess);
	/* A clean close (QUIT): an unclean one makes OpenSSL drop the
	 * session from the cache, as it should. */
	SSL_shutdown(c);
	SSL_shutdown(s);
	SSL_free(c);
	SSL_free(s);

	pair(cctx, sctx, &c, &s);
	assert_int_equal(SSL_set_session(c, sess), 1);
	assert_int_equal(handshake(c, s), 1);
	assert_int_equal(SSL_session_reused(s), 1);
	SSL_SESSION_free(sess);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_old_versions_refused(void **state)
{
	struct fx	*fx = *state;
	SSL_CTX		*sctx, *cctx;
	SSL		*c, *s;
	char		 err[512];

	sctx = tls_server_ctx_new(fx->cert, fx->key, NULL, NULL, err,
	    sizeof(err));
	assert_non_null(sctx);
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	SSL_CTX_set_security_level(cctx, 0);
	SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
	SSL_CTX_set_cipher_list(cctx, "ALL:@SECLEVEL=0");
	pair(cctx, sctx, &c, &s);
	assert_int_equal(handshake(c, s), 0);
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_client_verifies_name(void **state)
{
	struct fx	*fx = *state;
	SSL_CTX		*sctx, *cctx, *cctx_sys;
	SSL		*c, *s;
	char		 err[512];

	sctx = tls_server_ctx_new(fx->cert, fx->key, NULL, NULL, err,
	    sizeof(err));
	cctx = tls_client_ctx_new(fx->ca, 1, err, sizeof(err));
	assert_non_null(sctx);
	assert_non_null(cctx);

	/* The IP SANs that init puts in work for literal addresses. */
	pair(cctx, sctx, &c, &s);
	assert_int_equal(tls_client_set_host(c, "127.0.0.1"), 0);
	assert_int_equal(handshake(c, s), 1);
	SSL_free(c);
	SSL_free(s);

	pair(cctx, sctx, &c, &s);
	assert_int_equal(tls_client_set_host(c, "::1"), 0);
	assert_int_equal(handshake(c, s), 1);
	SSL_free(c);
	SSL_free(s);

	/* A name not in the certificate fails verification. */
	pair(cctx, sctx, &c, &s);
	assert_int_equal(tls_client_set_host(c, "smtp.example.net"), 0);
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(SSL_get_verify_result(c),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);

	assert_int_equal(tls_client_set_host(NULL, "x"), -1);

	/* Without our CA (system store only) the local CA is unknown; with
	 * verify off the handshake goes on but the result says why. */
	cctx_sys = tls_client_ctx_new(NULL, 0, err, sizeof(err));
	assert_non_null(cctx_sys);
	pair(cctx_sys, sctx, &c, &s);
	assert_int_equal(handshake(c, s), 1);
	assert_int_not_equal(SSL_get_verify_result(c), X509_V_OK);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx_sys);

	cctx_sys = tls_client_ctx_new(NULL, 1, err, sizeof(err));
	assert_non_null(cctx_sys);
	pair(cctx_sys, sctx, &c, &s);
	assert_int_equal(handshake(c, s), 0);
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx_sys);

	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_mismatched_key(void **state)
{
	struct fx	*fx = *state;
	char		 err[512];

	assert_null(tls_server_ctx_new(fx->cert, fx->other_key, NULL, NULL,
	    err, sizeof(err)));
	assert_non_null(strstr(err, fx->other_key));
	assert_non_null(strstr(err, fx->cert));
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_load_errors(void **state)
{
	struct fx	*fx = *state;
	char		 err[512], missing[160];

	fx_path(missing, sizeof(missing), fx->dir, "nope.crt");
	assert_null(tls_server_ctx_new(missing, fx->key, NULL, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, "No such file"));

	/* A key where the chain should be: the certificate file is named. */
	assert_null(tls_server_ctx_new(fx->key, fx->key, NULL, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "certificate chain"));
	assert_non_null(strstr(err, fx->key));

	assert_null(tls_server_ctx_new(fx->cert, fx->garbage, NULL, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, fx->garbage));
	assert_non_null(strstr(err, "cannot load private key"));

	assert_null(tls_server_ctx_new(fx->cert, NULL, NULL, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "private key"));

	assert_null(tls_server_ctx_new(fx->cert, fx->key, "NO-SUCH-CIPHER",
	    NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "NO-SUCH-CIPHER"));
	assert_null(tls_server_ctx_new(fx->cert, fx->key, NULL, "TLS_NOPE",
	    err, sizeof(err)));
	assert_non_null(strstr(err, "TLS_NOPE"));

	assert_null(tls_client_ctx_new(missing, 1, err, sizeof(err)));
	assert_non_null(strstr(err, missing));
	/* A tiny buffer is still NUL-terminated. */
	assert_null(tls_server_ctx_new(missing, fx->key, NULL, NULL, err, 5));
	assert_int_equal(strlen(err), 4);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_errors_append(void **state)
{
	char	 buf[256] = "prefix: ";

	(void)state;
	ERR_clear_error();
	tls_errors(buf, sizeof(buf));
	assert_string_equal(buf, "prefix: no reason given by OpenSSL");

	snprintf(buf, sizeof(buf), "x: ");
	assert_null(BIO_new_file("/nonexistent/outpost", "r"));
	tls_errors(buf, sizeof(buf));
	assert_true(strncmp(buf, "x: ", 3) == 0 && strlen(buf) > 3);
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_ctx_policy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_handshake_tls13_verified,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_handshake_tls12_and_resumption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_versions_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_verifies_name,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mismatched_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup,
		    teardown),
		cmocka_unit_test(test_errors_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
