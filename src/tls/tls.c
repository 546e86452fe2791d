/*
 * tls — OpenSSL contexts for the listeners (server) and for outbound
 * connections and the CLI (client), and the words that describe a finished
 * handshake in logs and in the Received: header.
 *
 * Owns nothing global: each call returns a fresh SSL_CTX that the caller
 * frees with SSL_CTX_free() (OpenSSL reference-counts it, so sessions that
 * started on an old context keep it alive across a SIGHUP reload).
 *
 * Failure: constructors return NULL and write one line in plain words into
 * err, naming the file involved and OpenSSL's reason; the OpenSSL error
 * queue is left empty so later callers do not see stale errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "util/log.h"

/* Big enough for a busy submission server's returning clients; OpenSSL
 * evicts the oldest entries past it. */
#define TLS_SESS_CACHE_SIZE	20480
/* Mail clients reconnect every few minutes to an hour; let them resume. */
#define TLS_SESS_TIMEOUT	3600
#define TLS_SID_CTX		"outpost"

/* snprintf that appends at the end of buf and never overflows. */
static void
tls_appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t	 used;
	va_list	 ap;

	if (buf == NULL || len == 0)
		return;
	used = strnlen(buf, len);
	if (used >= len - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

void
tls_errors(char *buf, size_t len)
{
	unsigned long	 e;
	const char	*data, *reason;
	int		 flags, n = 0;
	char		 tmp[256];

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		reason = ERR_reason_error_string(e);
		if (reason == NULL) {
			ERR_error_string_n(e, tmp, sizeof(tmp));
			reason = tmp;
		}
		tls_appendf(buf, len, "%s%s", n++ ? "; " : "", reason);
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
			tls_appendf(buf, len, " (%s)", data);
	}
	if (n == 0)
		tls_appendf(buf, len, "no reason given by OpenSSL");
}

/* Writes "what FILE: reason" into err, with the OpenSSL queue as reason. */
static void
tls_fail(char *err, size_t errlen, const char *what, const char *file)
{
	if (err == NULL || errlen == 0) {
		ERR_clear_error();
		return;
	}
	snprintf(err, errlen, "%s %s: ", what, file);
	tls_errors(err, errlen);
}

/*
 * OpenSSL's own message for a missing file is "system lib"; check that the
 * file can be opened first so the operator reads "No such file or
 * directory" or "Permission denied".
 */
static int
tls_check_readable(const char *what, const char *file, char *err,
    size_t errlen)
{
	FILE	*fp;

	if (file == NULL || *file == '\0') {
		snprintf(err, errlen, "no %s file configured", what);
		return -1;
	}
	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "cannot read %s file %s: %s", what, file,
		    strerror(errno));
		return -1;
	}
	fclose(fp);
	return 0;
}

/* Never prompt for a passphrase: a daemon has no terminal.  Returning 0
 * makes an encrypted key fail to load with a clear reason. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/*
 * Reads the private key and checks it against the certificate already in
 * ctx.  Done by hand rather than with SSL_CTX_use_PrivateKey_file() alone:
 * on a mismatch OpenSSL silently drops the certificate and the later check
 * only says "no certificate assigned", which sends the operator looking at
 * the wrong file.
 */
static int
tls_load_key(SSL_CTX *ctx, const char *cert_file, const char *key_file,
    char *err, size_t errlen)
{
	struct stat	 st;
	EVP_PKEY	*pkey = NULL;
	X509		*cert;
	BIO		*bio;
	char		 why[512];

	if (tls_check_readable("private key", key_file, err, errlen) == -1)
		return -1;
	if (stat(key_file, &st) == 0 && (st.st_mode & S_IROTH))
		log_warn("tls: private key %s is readable by every user; "
		    "run chmod 600 on it", key_file);

	if ((bio = BIO_new_file(key_file, "r")) == NULL) {
		tls_fail(err, errlen, "cannot open private key file", key_file);
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		why[0] = '\0';
		tls_errors(why, sizeof(why));
		snprintf(err, errlen, "cannot load private key from %s "
		    "(expected an unencrypted PEM key): %s", key_file, why);
		return -1;
	}

	cert = SSL_CTX_get0_certificate(ctx);
	if (cert != NULL && X509_check_private_key(cert, pkey) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "private key %s does not match the "
		    "certificate in %s (key values mismatch)", key_file,
		    cert_file);
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		tls_fail(err, errlen, "cannot use private key", key_file);
		EVP_PKEY_free(pkey);
		return -1;
	}
	EVP_PKEY_free(pkey);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "private key %s does not match the "
		    "certificate in %s: ", key_file, cert_file);
		tls_errors(err, errlen);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    const char *ciphers, const char *suites, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 dummy[8];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	ERR_clear_error();

	if (tls_check_readable("certificate", cert_file, err, errlen) == -1)
		return NULL;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: ");
		tls_errors(err, errlen);
		return NULL;
	}
	/* RFC 8996 deprecates TLS 1.0/1.1; RFC 8314 4.1 asks for 1.2+. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set the minimum TLS version: ");
		tls_errors(err, errlen);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle SMTP sessions would otherwise hold ~34 KB of buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	if (ciphers == NULL || *ciphers == '\0')
		ciphers = TLS_DEFAULT_CIPHERS;
	if (suites == NULL || *suites == '\0')
		suites = TLS_DEFAULT_SUITES;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		snprintf(err, errlen, "no usable TLS 1.2 cipher in \"%s\": ",
		    ciphers);
		tls_errors(err, errlen);
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		snprintf(err, errlen, "no usable TLS 1.3 cipher suite in "
		    "\"%s\": ", suites);
		tls_errors(err, errlen);
		goto fail;
	}
	/* The DHE-RSA suites need parameters; let OpenSSL pick by key size. */
	SSL_CTX_set_dh_auto(ctx, 1);

	/* Resumption: a server-side cache for TLS 1.2 session ids, and
	 * tickets (on by default; cleared here in case a distro default
	 * turned them off). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)TLS_SID_CTX, sizeof(TLS_SID_CTX) - 1) != 1) {
		snprintf(err, errlen, "cannot set the session id context: ");
		tls_errors(err, errlen);
		goto fail;
	}
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESS_CACHE_SIZE);
	SSL_CTX_set_timeout(ctx, TLS_SESS_TIMEOUT);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	/* One TLS 1.3 ticket per handshake, not OpenSSL's two: a mail
	 * client resumes with one, and each ticket costs a session copy,
	 * its encryption and a record on every full handshake. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1) {
		snprintf(err, errlen, "cannot set the number of tickets: ");
		tls_errors(err, errlen);
		goto fail;
	}

	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, errlen, "cannot load the certificate chain from "
		    "%s (expected PEM, server certificate first): ", cert_file);
		tls_errors(err, errlen);
		goto fail;
	}
	if (tls_load_key(ctx, cert_file, key_file, err, errlen) == -1)
		goto fail;

	ERR_clear_error();
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, int verify, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 dummy[8];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	ERR_clear_error();

	if (ca_file != NULL && *ca_file != '\0' &&
	    tls_check_readable("CA", ca_file, err, errlen) == -1)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: ");
		tls_errors(err, errlen);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set the minimum TLS version: ");
		tls_errors(err, errlen);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	/* Trust anchors are loaded even when verify is off, so that
	 * opportunistic TLS can still log whether the peer verified
	 * (SSL_get_verify_result). */
	if (ca_file != NULL && *ca_file != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA certificates "
			    "from %s: ", ca_file);
			tls_errors(err, errlen);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system CA store: ");
		tls_errors(err, errlen);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);
	ERR_clear_error();
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_client_set_host(SSL *ssl, const char *name)
{
	X509_VERIFY_PARAM	*param;
	unsigned char		 addr[16];
	int			 is_ip;

	if (ssl == NULL || name == NULL || *name == '\0' ||
	    strlen(name) > 253)
		return -1;
	is_ip = inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1;
	param = SSL_get0_param(ssl);
	if (is_ip) {
		/* RFC 6066 3: literal addresses are not sent as SNI. */
		if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
			goto fail;
		return 0;
	}
	if (SSL_set_tlsext_host_name(ssl, name) != 1)
		goto fail;
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_host(param, name, 0) != 1)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	return -1;
}

/* "TLS1_3" rather than "TLSv1.3": the spelling Gmail uses in Received. */
static const char *
tls_version_token(SSL *ssl)
{
	switch (SSL_version(ssl)) {
	case TLS1_3_VERSION:
		return "TLS1_3";
	case TLS1_2_VERSION:
		return "TLS1_2";
	case TLS1_1_VERSION:
		return "TLS1_1";
	case TLS1_VERSION:
		return "TLS1";
	default:
		return "unknown";
	}
}

void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	const SSL_CIPHER	*c;
	int			 bits, alg_bits = 0;

	if (buf == NULL || len == 0)
		return;
	buf[0] = '\0';
	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL)
		return;
	bits = SSL_CIPHER_get_bits(c, &alg_bits);
	snprintf(buf, len, "version=%s cipher=%s bits=%d/%d",
	    tls_version_token(ssl), SSL_CIPHER_get_name(c), bits, alg_bits);
}

const char *
tls_version_name(SSL *ssl)
{
	if (ssl == NULL)
		return "none";
	return SSL_get_version(ssl);
}
