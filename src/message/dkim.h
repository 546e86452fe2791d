/*
 * dkim — DKIM signing keys and signatures (RFC 6376; RFC 8463 for
 * ed25519-sha256).
 *
 * Keys live in files, one per signing domain and selector, found by name:
 *	DATA_DIR/dkim/DOMAIN/SELECTOR.ed25519.key	Ed25519, PKCS#8 PEM
 *	DATA_DIR/dkim/DOMAIN/SELECTOR.rsa.key		RSA, PKCS#8 PEM
 * (written by `outpost dkim keygen` and `outpost init`).  outpostd loads
 * the whole directory at start and again on SIGHUP into an immutable,
 * reference-counted key set; a message being signed holds a reference to
 * the set it started with, so a reload never frees a key in use.  A file
 * that cannot be read, has a bad name or holds the wrong kind of key is
 * skipped with a log line; the rest still load.
 *
 * Signing: c=relaxed/relaxed, SHA-256.  rsa-sha256 signs the canonical
 * header data with RSASSA-PKCS1-v1_5; ed25519-sha256 signs the SHA-256 of
 * the same data with PureEdDSA (RFC 8463 3).  Both through
 * EVP_DigestSign, and both are safe on any thread (a key is only read).
 */
#ifndef OUTPOST_MESSAGE_DKIM_H
#define OUTPOST_MESSAGE_DKIM_H

#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>

#include "message/header.h"

enum dkim_alg { DKIM_ED25519_SHA256, DKIM_RSA_SHA256 };

#define DKIM_DOMAIN_MAX		253
#define DKIM_SELECTOR_MAX	63

struct dkim_key {
	char		 domain[DKIM_DOMAIN_MAX + 1];	/* lowercase */
	char		 selector[DKIM_SELECTOR_MAX + 1];
	enum dkim_alg	 alg;
	EVP_PKEY	*pkey;
	char		*path;
};

struct dkim_keyset {
	int		 refs;		/* atomic */
	struct dkim_key	*keys;		/* sorted by domain, ed25519 first */
	size_t		 n;
};

/* "ed25519-sha256" / "rsa-sha256", and the file suffixes "ed25519"/"rsa". */
const char *dkim_alg_name(enum dkim_alg alg);
const char *dkim_alg_suffix(enum dkim_alg alg);

/* 1 when s is a DNS label usable as a selector (letters, digits, '-',
 * '_', 1..63, no leading '-') — dots are allowed between labels. */
int	dkim_valid_selector(const char *s);
/* 1 when s is a plain domain name (labels of letters/digits/'-'). */
int	dkim_valid_domain(const char *s);

/*
 * Reads every key under dir into a new set (refs 1).  A missing dir gives
 * an empty set.  Keys that cannot be used are skipped, each with a line
 * through warn(ctx, text) (may be NULL).  Returns NULL only when out of
 * memory or dir cannot be read (err set).
 */
struct dkim_keyset *dkim_keyset_load(const char *dir,
	    void (*warn)(void *ctx, const char *text), void *ctx,
	    char *err, size_t errlen);
struct dkim_keyset *dkim_keyset_ref(struct dkim_keyset *ks);
void	dkim_keyset_release(struct dkim_keyset *ks);
/* The keys of domain (case-insensitive), at most max, ed25519 first.
 * Returns how many were stored into out. */
size_t	dkim_keyset_find(const struct dkim_keyset *ks, const char *domain,
	    const struct dkim_key **out, size_t max);

/* The daemon's current set, swapped on reload. */
struct dkim_store;
struct dkim_store *dkim_store_new(void);
void	dkim_store_free(struct dkim_store *st);
/* Installs ks (takes the reference); the old set is released. */
void	dkim_store_set(struct dkim_store *st, struct dkim_keyset *ks);
/* The current set with a reference taken (release it), or NULL. */
struct dkim_keyset *dkim_store_get(struct dkim_store *st);
/* Changes with every dkim_store_set() (a reload): what was signed with
 * an older generation may have used keys that are gone. */
unsigned long dkim_store_generation(struct dkim_store *st);

/*
 * Header fields signed when present, in this order; "from" is signed
 * once more than it occurs (over-signing: no From can be added later).
 */
extern const char *const dkim_signed_headers[];

/*
 * Signs: hs holds the header fields the message will carry (trace fields
 * may be left out), bh the SHA-256 of the relaxed-canonical body.
 * t is the signature time (t=), expire seconds after it becomes x= (0:
 * none).  *out gets a malloc'd "DKIM-Signature: ...\r\n", folded at 78
 * columns.  Returns 0, or -1 with err set.
 */
int	dkim_sign(const struct dkim_key *key, const struct hdr_section *hs,
	    const unsigned char bh[32], time_t t, long expire, char **out,
	    size_t *outlen, char *err, size_t errlen);

/*
 * Signs a queued message at delivery time with each of keys[0..nkeys):
 * hdr is its header section as stored (trace fields included, without
 * the empty line), bh its body hash taken when it arrived.  *out gets the
 * DKIM-Signature fields, in keys' order, to put on top (malloc'd; NULL
 * with *outlen 0 when nkeys is 0).  Returns 0, or -1 with err set ("out
 * of memory", or why the header section does not parse).
 */
int	dkim_sign_stored(const struct dkim_key *const *keys, size_t nkeys,
	    const char *hdr, size_t hlen, int utf8, const unsigned char bh[32],
	    time_t t, long expire, char **out, size_t *outlen, char *err,
	    size_t errlen);

#endif
