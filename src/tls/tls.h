/*
 * tls — OpenSSL server contexts for the listeners, and helpers to describe
 * a finished handshake.
 *
 * Policy: TLS 1.2 and 1.3 only; Mozilla "intermediate" cipher list for
 * TLS 1.2 with server preference; session resumption (tickets and a
 * server-side cache); SSL_OP_IGNORE_UNEXPECTED_EOF; SSL_MODE_RELEASE_BUFFERS
 * so idle sessions keep little memory; no compression, no renegotiation.
 * OpenSSL 3 EVP APIs only.
 *
 * Reload: tls_server_ctx_new() builds a fresh context; the daemon swaps it
 * in on SIGHUP and existing sessions keep the one they started with
 * (SSL_CTX is reference-counted by OpenSSL).
 */
#ifndef OUTPOST_TLS_H
#define OUTPOST_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Loads cert chain + key and checks they match.  ciphers/suites may be
 * NULL for the defaults.  Returns NULL with a plain-words message
 * (including the OpenSSL reason and the file name) in err. */
SSL_CTX	*tls_server_ctx_new(const char *cert_file, const char *key_file,
	    const char *ciphers, const char *suites, char *err, size_t errlen);

/* Client context for outbound connections and the CLI: verification on
 * against ca_file (or the system store when NULL), TLS 1.2+. */
SSL_CTX	*tls_client_ctx_new(const char *ca_file, int verify, char *err,
	    size_t errlen);

/* For a client SSL before the handshake: sends name as SNI and makes
 * verification check the certificate against it (a host name, or an IPv4/
 * IPv6 literal, which is matched against IP SANs and not sent as SNI).
 * Returns 0 or -1. */
int	tls_client_set_host(SSL *ssl, const char *name);

/* "version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256" as in
 * Gmail's Received header, into buf. */
void	tls_describe(SSL *ssl, char *buf, size_t len);

/* "TLSv1.3" and the cipher name, for log lines. */
const char *tls_version_name(SSL *ssl);

/* Appends the OpenSSL error queue (and clears it) to buf. */
void	tls_errors(char *buf, size_t len);

#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"DHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_SUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

#endif
