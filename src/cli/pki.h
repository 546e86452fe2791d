/*
 * pki — key and certificate generation for `outpost init` (and later
 * `outpost dkim keygen`): a local CA, a server certificate signed by it,
 * DKIM keys and the DNS TXT records that publish them.
 *
 * Everything goes through the OpenSSL 3 EVP and X509 APIs; nothing shells
 * out.  Functions return 0 / a new object on success and -1 / NULL on
 * failure with a plain-words message in err.
 */
#ifndef OUTPOST_CLI_PKI_H
#define OUTPOST_CLI_PKI_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum pki_key_type {
	PKI_KEY_EC_P256,
	PKI_KEY_ED25519,
	PKI_KEY_RSA2048,
};

/* A new private key; the caller frees it with EVP_PKEY_free(). */
EVP_PKEY *pki_key_new(enum pki_key_type type, char *err, size_t errlen);

/* Self-signed CA certificate valid for days: basicConstraints CA:TRUE
 * critical, keyUsage keyCertSign+cRLSign, SKI/AKI.  cn becomes the
 * subject CN, org (may be NULL) the O. */
X509	*pki_ca_new(EVP_PKEY *key, const char *cn, const char *org, int days,
	    char *err, size_t errlen);

/* Server certificate for hostname signed by ca/ca_key, valid for days,
 * random 128-bit serial, SAN DNS:hostname, DNS:localhost, IP:127.0.0.1,
 * IP:::1; EKU serverAuth.  hostname must be a plain DNS name (checked). */
X509	*pki_server_cert_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
	    const char *hostname, int days, char *err, size_t errlen);

/* Writes a PEM file that must not exist yet (O_EXCL, no symlinks) with
 * exactly mode, fsync'd.  Keys are written as unencrypted PKCS#8. */
int	pki_write_key(const char *path, EVP_PKEY *key, int mode, char *err,
	    size_t errlen);
int	pki_write_cert(const char *path, X509 *cert, int mode, char *err,
	    size_t errlen);

/* The DKIM TXT value for a public key (RFC 6376 3.6.1, RFC 8463 for
 * ed25519): "v=DKIM1; k=ed25519; p=BASE64".  ed25519 publishes the raw
 * 32-byte key, RSA the DER SubjectPublicKeyInfo. */
int	pki_dkim_txt_value(EVP_PKEY *key, char *buf, size_t len, char *err,
	    size_t errlen);

/* Quotes value for a zone file, split into strings of at most 255 bytes
 * (RFC 1035 3.3.14 character-strings): "\"part1\" \"part2\"". */
int	pki_txt_quote(const char *value, char *buf, size_t len);

/* Non-zero when s is a DNS name made of 1..63-byte labels of letters,
 * digits and hyphens, 253 bytes at most, no leading/trailing dot. */
int	pki_valid_dnsname(const char *s);

#endif
