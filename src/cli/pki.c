/*
 * pki — keys, a local CA, a server certificate and DKIM TXT records for
 * `outpost init`.  See pki.h.
 *
 * Owns no global state.  Key material lives only in EVP_PKEY objects and
 * in memory BIOs that OpenSSL clears on free; files are created with
 * O_EXCL|O_NOFOLLOW so an existing file or a planted symlink is never
 * overwritten.  Every failure returns -1/NULL with a message naming the
 * step (and the file) and OpenSSL's reason.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/pki.h"
#include "tls/tls.h"

/* Backdate notBefore so a client whose clock is a little behind does not
 * reject a certificate made a minute ago. */
#define PKI_BACKDATE_SECS	3600

static void
pki_fail(char *err, size_t errlen, const char *what)
{
	if (err == NULL || errlen == 0) {
		ERR_clear_error();
		return;
	}
	snprintf(err, errlen, "%s: ", what);
	tls_errors(err, errlen);
}

EVP_PKEY *
pki_key_new(enum pki_key_type type, char *err, size_t errlen)
{
	EVP_PKEY	*key = NULL;

	switch (type) {
	case PKI_KEY_EC_P256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case PKI_KEY_ED25519:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case PKI_KEY_RSA2048:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	}
	if (key == NULL)
		pki_fail(err, errlen, "cannot generate a key");
	return key;
}

int
pki_valid_dnsname(const char *s)
{
	size_t	 total = 0, label = 0;
	const char *p;

	if (s == NULL || *s == '\0')
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (++total > 253)
			return 0;
		if (*p == '.') {
			/* Empty labels and labels ending in '-' are invalid. */
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isascii((unsigned char)*p) ||
		    !(isalnum((unsigned char)*p) || *p == '-'))
			return 0;
		if (label == 0 && *p == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && p[-1] != '-';
}

/* Adds one extension built from its OpenSSL config-string form. */
static int
pki_add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value,
    char *err, size_t errlen)
{
	X509_EXTENSION	*ext;
	char		 what[128];

	ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1) {
		snprintf(what, sizeof(what), "cannot add the %s extension",
		    OBJ_nid2sn(nid));
		pki_fail(err, errlen, what);
		X509_EXTENSION_free(ext);
		return -1;
	}
	X509_EXTENSION_free(ext);
	return 0;
}

/* 128 random bits: RFC 5280 4.1.2.2 allows up to 20 octets, and CA/B
 * rules want at least 64 bits of entropy. */
static int
pki_random_serial(X509 *cert)
{
	BIGNUM		*bn;
	ASN1_INTEGER	*ai;
	int		 rc = -1;

	if ((bn = BN_new()) == NULL)
		return -1;
	if (BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
		goto out;
	if (BN_is_zero(bn) && BN_set_word(bn, 1) != 1)
		goto out;
	if ((ai = X509_get_serialNumber(cert)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, ai) == NULL)
		goto out;
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

/* The parts common to both certificates: version, serial, validity, key. */
static X509 *
pki_cert_skeleton(EVP_PKEY *key, int days, char *err, size_t errlen)
{
	X509	*cert;

	if (days <= 0 || days > 36500) {
		snprintf(err, errlen, "certificate lifetime out of range");
		return NULL;
	}
	if ((cert = X509_new()) == NULL) {
		pki_fail(err, errlen, "out of memory");
		return NULL;
	}
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    pki_random_serial(cert) == -1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert),
	    -PKI_BACKDATE_SECS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL ||
	    X509_set_pubkey(cert, key) != 1) {
		pki_fail(err, errlen, "cannot fill in the certificate");
		X509_free(cert);
		return NULL;
	}
	return cert;
}

static int
pki_name_add(X509_NAME *name, const char *field, const char *value)
{
	return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
	    (const unsigned char *)value, -1, -1, 0) == 1 ? 0 : -1;
}

X509 *
pki_ca_new(EVP_PKEY *key, const char *cn, const char *org, int days,
    char *err, size_t errlen)
{
	X509		*cert;
	X509_NAME	*name;
	X509V3_CTX	 v3;

	if (key == NULL || cn == NULL || strlen(cn) > 64 ||
	    (org != NULL && strlen(org) > 64)) {
		snprintf(err, errlen, "invalid CA name");
		return NULL;
	}
	if ((cert = pki_cert_skeleton(key, days, err, errlen)) == NULL)
		return NULL;
	name = X509_get_subject_name(cert);
	if ((org != NULL && pki_name_add(name, "O", org) == -1) ||
	    pki_name_add(name, "CN", cn) == -1 ||
	    X509_set_issuer_name(cert, name) != 1) {
		pki_fail(err, errlen, "cannot set the CA name");
		goto fail;
	}

	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	/* The subject key id must exist before the authority key id, which
	 * copies it for a self-signed certificate. */
	if (pki_add_ext(cert, &v3, NID_basic_constraints, "critical,CA:TRUE",
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_key_usage,
	    "critical,keyCertSign,cRLSign", err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_subject_key_identifier, "hash",
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_authority_key_identifier,
	    "keyid:always", err, errlen) == -1)
		goto fail;

	if (X509_sign(cert, key, EVP_sha256()) <= 0) {
		pki_fail(err, errlen, "cannot sign the CA certificate");
		goto fail;
	}
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

X509 *
pki_server_cert_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
    const char *hostname, int days, char *err, size_t errlen)
{
	X509		*cert;
	X509_NAME	*name;
	X509V3_CTX	 v3;
	char		 san[300];
	int		 n;

	if (key == NULL || ca == NULL || ca_key == NULL ||
	    !pki_valid_dnsname(hostname) || strlen(hostname) > 64) {
		/* CN is limited to 64 bytes (RFC 5280 upper bound). */
		snprintf(err, errlen, "invalid host name for the certificate");
		return NULL;
	}
	if (X509_check_private_key(ca, ca_key) != 1) {
		pki_fail(err, errlen, "the CA key does not match the CA");
		return NULL;
	}
	/* Safe to build as a config string: hostname was checked to hold
	 * only letters, digits, hyphens and dots. */
	if (strcasecmp(hostname, "localhost") == 0)
		n = snprintf(san, sizeof(san),
		    "DNS:localhost,IP:127.0.0.1,IP:::1");
	else
		n = snprintf(san, sizeof(san),
		    "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
	if (n < 0 || (size_t)n >= sizeof(san)) {
		snprintf(err, errlen, "host name too long");
		return NULL;
	}

	if ((cert = pki_cert_skeleton(key, days, err, errlen)) == NULL)
		return NULL;
	name = X509_get_subject_name(cert);
	if (pki_name_add(name, "CN", hostname) == -1 ||
	    X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1) {
		pki_fail(err, errlen, "cannot set the certificate name");
		goto fail;
	}

	X509V3_set_ctx(&v3, ca, cert, NULL, NULL, 0);
	if (pki_add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE",
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_key_usage,
	    "critical,digitalSignature", err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_ext_key_usage, "serverAuth",
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_subject_alt_name, san,
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_subject_key_identifier, "hash",
	    err, errlen) == -1 ||
	    pki_add_ext(cert, &v3, NID_authority_key_identifier,
	    "keyid:always", err, errlen) == -1)
		goto fail;

	if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
		pki_fail(err, errlen, "cannot sign the server certificate");
		goto fail;
	}
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

/* Writes the contents of a memory BIO to a new file with exactly mode. */
static int
pki_write_bio(const char *path, BIO *bio, int mode, char *err, size_t errlen)
{
	char	*data;
	long	 len;
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd;

	len = BIO_get_mem_data(bio, &data);
	if (len <= 0) {
		snprintf(err, errlen, "nothing to write to %s", path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1) {
		if (errno == EEXIST)
			snprintf(err, errlen, "%s already exists (left from an "
			    "earlier run?); remove it or pick another "
			    "directory", path);
		else
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
		return -1;
	}
	/* The umask may have taken bits away from a certificate's 0644. */
	if (fchmod(fd, (mode_t)mode) == -1)
		goto fail;
	while (off < (size_t)len) {
		n = write(fd, data + off, (size_t)len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(path);
	return -1;
}

int
pki_write_key(const char *path, EVP_PKEY *key, int mode, char *err,
    size_t errlen)
{
	BIO	*bio;
	int	 rc;

	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		pki_fail(err, errlen, "out of memory");
		return -1;
	}
	/* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"). */
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) != 1) {
		pki_fail(err, errlen, "cannot encode the private key");
		BIO_free(bio);
		return -1;
	}
	rc = pki_write_bio(path, bio, mode, err, errlen);
	BIO_free(bio);	/* BUF_MEM_free clears the buffer. */
	return rc;
}

int
pki_write_cert(const char *path, X509 *cert, int mode, char *err,
    size_t errlen)
{
	BIO	*bio;
	int	 rc;

	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		pki_fail(err, errlen, "out of memory");
		return -1;
	}
	if (PEM_write_bio_X509(bio, cert) != 1) {
		pki_fail(err, errlen, "cannot encode the certificate");
		BIO_free(bio);
		return -1;
	}
	rc = pki_write_bio(path, bio, mode, err, errlen);
	BIO_free(bio);
	return rc;
}

int
pki_dkim_txt_value(EVP_PKEY *key, char *buf, size_t len, char *err,
    size_t errlen)
{
	unsigned char	*der = NULL, *p;
	unsigned char	 raw[64];
	unsigned char	*b64 = NULL;
	size_t		 rawlen = sizeof(raw);
	const char	*k;
	int		 derlen, n, rc = -1;

	if (key == NULL || buf == NULL || len == 0) {
		snprintf(err, errlen, "no key");
		return -1;
	}
	if (EVP_PKEY_is_a(key, "ED25519")) {
		/* RFC 8463 4.2: p= is the bare 32-byte public key. */
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1 ||
		    rawlen != 32) {
			pki_fail(err, errlen, "cannot read the ed25519 key");
			return -1;
		}
		k = "ed25519";
		p = raw;
		derlen = (int)rawlen;
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		/* RFC 6376 3.6.1: p= is the DER SubjectPublicKeyInfo. */
		derlen = i2d_PUBKEY(key, &der);
		if (derlen <= 0 || derlen > 4096) {
			pki_fail(err, errlen, "cannot encode the RSA key");
			goto out;
		}
		k = "rsa";
		p = der;
	} else {
		snprintf(err, errlen, "DKIM needs an ed25519 or RSA key");
		return -1;
	}

	if ((b64 = malloc(4 * ((size_t)derlen / 3 + 1) + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	EVP_EncodeBlock(b64, p, derlen);
	n = snprintf(buf, len, "v=DKIM1; k=%s; p=%s", k, (char *)b64);
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "DKIM record too long for its buffer");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	free(b64);
	return rc;
}

int
pki_txt_quote(const char *value, char *buf, size_t len)
{
	size_t	 vlen, off = 0, chunk, need, i;

	if (value == NULL || buf == NULL || len == 0)
		return -1;
	vlen = strlen(value);
	for (i = 0; i < vlen; i++)
		if (value[i] == '"' || value[i] == '\\' ||
		    (unsigned char)value[i] < 0x20)
			return -1;	/* never produced by DKIM records */
	buf[0] = '\0';
	i = 0;
	do {
		chunk = vlen - i > 255 ? 255 : vlen - i;
		need = (off ? 1 : 0) + 2 + chunk;
		if (off + need + 1 > len)
			return -1;
		if (off)
			buf[off++] = ' ';
		buf[off++] = '"';
		memcpy(buf + off, value + i, chunk);
		off += chunk;
		buf[off++] = '"';
		buf[off] = '\0';
		i += chunk;
	} while (i < vlen);
	return 0;
}
