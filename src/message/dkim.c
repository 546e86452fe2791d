/*
 * dkim.c — DKIM key sets and signing; see dkim.h.
 *
 * Owns: every EVP_PKEY of a key set (freed with the last reference).
 * Fails: loading skips unusable files with a warning; signing returns -1
 * with the OpenSSL reason in err and the message is then not queued by
 * the caller (451), never sent with a broken signature.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "message/canon.h"
#include "message/dkim.h"

#define DKIM_MAX_KEYS	4096	/* a bound on the directory walk */

const char *const dkim_signed_headers[] = {
	"from", "sender", "reply-to", "subject", "date", "message-id",
	"to", "cc", "mime-version", "content-type",
	"content-transfer-encoding", "content-id", "content-description",
	"in-reply-to", "references",
	"resent-date", "resent-from", "resent-sender", "resent-to",
	"resent-cc", "resent-message-id",
	"list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
	"list-subscribe", "list-post", "list-owner", "list-archive",
	"autocrypt", "openpgp",
	NULL
};

const char *
dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *
dkim_alg_suffix(enum dkim_alg alg)
{
	return alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa";
}

static int
label_ok(const char *s, size_t n, int underscore)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' ||
		    (underscore && c == '_')))
			return 0;
	}
	return 1;
}

static int
name_ok(const char *s, size_t max, int underscore)
{
	size_t len = strlen(s);
	const char *p = s;

	if (len == 0 || len > max)
		return 0;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (!label_ok(p, n, underscore))
			return 0;
		if (dot == NULL)
			return 1;
		p = dot + 1;
	}
}

int
dkim_valid_selector(const char *s)
{
	return s != NULL && name_ok(s, DKIM_SELECTOR_MAX, 1);
}

int
dkim_valid_domain(const char *s)
{
	return s != NULL && name_ok(s, DKIM_DOMAIN_MAX, 0) &&
	    strchr(s, '.') != NULL;
}

/* --- key sets --- */

static void
ks_warn(void (*warn)(void *, const char *), void *ctx, const char *fmt,
    const char *a, const char *b)
{
	char text[2 * PATH_MAX + 512];

	if (warn == NULL)
		return;
	snprintf(text, sizeof(text), fmt, a, b);
	warn(ctx, text);
}

static int
key_cmp(const void *a, const void *b)
{
	const struct dkim_key *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);

	if (c != 0)
		return c;
	if (x->alg != y->alg)
		return x->alg == DKIM_ED25519_SHA256 ? -1 : 1;
	return strcmp(x->selector, y->selector);
}

static EVP_PKEY *
key_read(const char *path, const char **why)
{
	FILE *fp;
	EVP_PKEY *k;
	struct stat st;

	if ((fp = fopen(path, "re")) == NULL) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 64 * 1024) {
		fclose(fp);
		*why = "not a regular file of at most 64 KiB";
		return NULL;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL) {
		ERR_clear_error();
		*why = "not a PEM private key";
	}
	return k;
}

/* Adds the keys in DIR/DOMAIN to ks. */
static int
ks_load_domain(struct dkim_keyset *ks, size_t *cap, const char *dir,
    const char *domain, void (*warn)(void *, const char *), void *ctx)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, domain);
	if (n < 0 || (size_t)n >= sizeof(path) || (d = opendir(path)) == NULL) {
		ks_warn(warn, ctx, "dkim: cannot read %s/%s, skipped", dir,
		    domain);
		return 0;
	}
	while ((de = readdir(d)) != NULL && ks->n < DKIM_MAX_KEYS) {
		char sel[DKIM_SELECTOR_MAX + 1], file[PATH_MAX];
		const char *name = de->d_name, *why = NULL, *suf;
		enum dkim_alg alg;
		struct dkim_key *k;
		size_t nl = strlen(name), sl;
		EVP_PKEY *pk;

		if (name[0] == '.')
			continue;
		if (nl > 12 && strcmp(name + nl - 12, ".ed25519.key") == 0) {
			alg = DKIM_ED25519_SHA256;
			sl = nl - 12;
		} else if (nl > 8 && strcmp(name + nl - 8, ".rsa.key") == 0) {
			alg = DKIM_RSA_SHA256;
			sl = nl - 8;
		} else {
			ks_warn(warn, ctx, "dkim: %s/%s: not SELECTOR.ed25519.key "
			    "or SELECTOR.rsa.key, skipped", path, name);
			continue;
		}
		if (sl > DKIM_SELECTOR_MAX) {
			ks_warn(warn, ctx, "dkim: %s/%s: selector too long, "
			    "skipped", path, name);
			continue;
		}
		memcpy(sel, name, sl);
		sel[sl] = '\0';
		if (!dkim_valid_selector(sel)) {
			ks_warn(warn, ctx, "dkim: %s/%s: the selector is not a "
			    "DNS label, skipped", path, name);
			continue;
		}
		n = snprintf(file, sizeof(file), "%s/%s", path, name);
		if (n < 0 || (size_t)n >= sizeof(file))
			continue;
		if ((pk = key_read(file, &why)) == NULL) {
			ks_warn(warn, ctx, "dkim: %s: %s, skipped", file, why);
			continue;
		}
		suf = alg == DKIM_ED25519_SHA256 ? "ED25519" : "RSA";
		if (!EVP_PKEY_is_a(pk, suf) ||
		    (alg == DKIM_RSA_SHA256 && EVP_PKEY_get_bits(pk) < 1024)) {
			ks_warn(warn, ctx, "dkim: %s: %s", file,
			    alg == DKIM_ED25519_SHA256 ?
			    "not an Ed25519 key, skipped" :
			    "not an RSA key of 1024 bits or more, skipped");
			EVP_PKEY_free(pk);
			continue;
		}
		if (ks->n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 8;
			struct dkim_key *nk;

			if ((nk = realloc(ks->keys, ncap * sizeof(*nk))) == NULL) {
				EVP_PKEY_free(pk);
				closedir(d);
				return -1;
			}
			ks->keys = nk;
			*cap = ncap;
		}
		k = &ks->keys[ks->n];
		memset(k, 0, sizeof(*k));
		if ((k->path = strdup(file)) == NULL) {
			EVP_PKEY_free(pk);
			closedir(d);
			return -1;
		}
		snprintf(k->domain, sizeof(k->domain), "%s", domain);
		for (char *c = k->domain; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		snprintf(k->selector, sizeof(k->selector), "%s", sel);
		k->alg = alg;
		k->pkey = pk;
		ks->n++;
	}
	closedir(d);
	return 0;
}

struct dkim_keyset *
dkim_keyset_load(const char *dir, void (*warn)(void *, const char *),
    void *ctx, char *err, size_t errlen)
{
	struct dkim_keyset *ks;
	DIR *d;
	struct dirent *de;
	size_t cap = 0;

	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ks->refs = 1;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return ks;
		snprintf(err, errlen, "cannot read %s: %s", dir,
		    strerror(errno));
		free(ks);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (!dkim_valid_domain(de->d_name)) {
			ks_warn(warn, ctx, "dkim: %s/%s: not a domain name, "
			    "skipped", dir, de->d_name);
			continue;
		}
		if (ks_load_domain(ks, &cap, dir, de->d_name, warn, ctx) < 0) {
			closedir(d);
			dkim_keyset_release(ks);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
	}
	closedir(d);
	if (ks->n > 1)
		qsort(ks->keys, ks->n, sizeof(ks->keys[0]), key_cmp);
	return ks;
}

struct dkim_keyset *
dkim_keyset_ref(struct dkim_keyset *ks)
{
	if (ks != NULL)
		__atomic_add_fetch(&ks->refs, 1, __ATOMIC_RELAXED);
	return ks;
}

void
dkim_keyset_release(struct dkim_keyset *ks)
{
	size_t i;

	if (ks == NULL || __atomic_sub_fetch(&ks->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < ks->n; i++) {
		EVP_PKEY_free(ks->keys[i].pkey);
		free(ks->keys[i].path);
	}
	free(ks->keys);
	free(ks);
}

size_t
dkim_keyset_find(const struct dkim_keyset *ks, const char *domain,
    const struct dkim_key **out, size_t max)
{
	size_t i, n = 0;

	if (ks == NULL || domain == NULL)
		return 0;
	for (i = 0; i < ks->n && n < max; i++)
		if (strcasecmp(ks->keys[i].domain, domain) == 0)
			out[n++] = &ks->keys[i];
	return n;
}

struct dkim_store {
	pthread_mutex_t	 mu;
	struct dkim_keyset *cur;
	unsigned long	 gen;		/* sets installed so far */
};

struct dkim_store *
dkim_store_new(void)
{
	struct dkim_store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		return NULL;
	}
	return st;
}

void
dkim_store_free(struct dkim_store *st)
{
	if (st == NULL)
		return;
	dkim_keyset_release(st->cur);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

void
dkim_store_set(struct dkim_store *st, struct dkim_keyset *ks)
{
	struct dkim_keyset *old;

	pthread_mutex_lock(&st->mu);
	old = st->cur;
	st->cur = ks;
	st->gen++;
	pthread_mutex_unlock(&st->mu);
	dkim_keyset_release(old);
}

unsigned long
dkim_store_generation(struct dkim_store *st)
{
	unsigned long g;

	pthread_mutex_lock(&st->mu);
	g = st->gen;
	pthread_mutex_unlock(&st->mu);
	return g;
}

struct dkim_keyset *
dkim_store_get(struct dkim_store *st)
{
	struct dkim_keyset *ks;

	if (st == NULL)
		return NULL;
	pthread_mutex_lock(&st->mu);
	ks = dkim_keyset_ref(st->cur);
	pthread_mutex_unlock(&st->mu);
	return ks;
}

/* --- signing --- */

/*
 * A field is signable by name when the colon follows the name directly:
 * verifiers disagree on "Subject : x" (obsolete syntax), so such a field
 * is left out of h= rather than risk a signature that fails.
 */
static int
sig_is(const struct hdr_section *hs, size_t i, const char *name)
{
	return hdr_is(hs, i, name) &&
	    hs->f[i].valoff == hs->f[i].namelen + 1;
}

static size_t
sig_count(const struct hdr_section *hs, const char *name)
{
	size_t i, c = 0;

	for (i = 0; i < hs->n; i++)
		c += sig_is(hs, i, name);
	return c;
}

struct sbuf {
	char	*p;
	size_t	 len, cap;
	size_t	 col;		/* column of the current line */
	int	 oom;
};

static void
sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len < n + 1) {
		size_t ncap = b->cap ? b->cap : 512;
		char *np;

		while (ncap - b->len < n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	b->col += n;
}

/* Appends a token, folding before it when the line would pass 78. */
static void
sb_tok(struct sbuf *b, const char *sep, const char *tok)
{
	size_t n = strlen(tok), s = strlen(sep);

	if (b->col + s + n > 78) {
		if (sep[0] != ' ')
			sb_put(b, sep, s);	/* h= keeps its ':' */
		sb_put(b, "\r\n\t", 3);
		b->col = 1;
	} else {
		sb_put(b, sep, s);
	}
	sb_put(b, tok, n);
}

static int
b64(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	if (outlen < 4 * ((n + 2) / 3) + 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return 0;
}

static void
ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

int
dkim_sign(const struct dkim_key *key, const struct hdr_section *hs,
    const unsigned char bh[32], time_t t, long expire, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	struct sbuf b = { 0 };
	char *data = NULL, bhb[64], tok[320], *sigb = NULL;
	size_t dlen = 0, dcap = 0, i, siglen = 0;
	size_t used[sizeof(dkim_signed_headers) / sizeof(char *)];
	const char *hnames[HDR_MAX_FIELDS + 2];
	size_t nh = 0, h;
	unsigned char *sig = NULL, md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int rc = -1, first = 1;

	/* h=: every listed field present (once per occurrence), From once
	 * more than it occurs */
	for (i = 0; dkim_signed_headers[i] != NULL; i++) {
		size_t c = sig_count(hs, dkim_signed_headers[i]);

		if (i == 0)
			c++;
		while (c-- > 0 && nh < HDR_MAX_FIELDS + 1)
			hnames[nh++] = dkim_signed_headers[i];
	}

	sb_put(&b, "DKIM-Signature: v=1;", 20);
	snprintf(tok, sizeof(tok), "a=%s;", dkim_alg_name(key->alg));
	sb_tok(&b, " ", tok);
	sb_tok(&b, " ", "c=relaxed/relaxed;");
	snprintf(tok, sizeof(tok), "d=%s;", key->domain);
	sb_tok(&b, " ", tok);
	snprintf(tok, sizeof(tok), "s=%s;", key->selector);
	sb_tok(&b, " ", tok);
	snprintf(tok, sizeof(tok), "t=%lld;", (long long)t);
	sb_tok(&b, " ", tok);
	if (expire > 0) {
		snprintf(tok, sizeof(tok), "x=%lld;", (long long)t + expire);
		sb_tok(&b, " ", tok);
	}
	for (h = 0; h < nh; h++) {
		char name[64];

		snprintf(name, sizeof(name), "%s%s%s", first ? "h=" : "",
		    hnames[h], h + 1 == nh ? ";" : "");
		sb_tok(&b, first ? " " : ":", name);
		first = 0;
	}
	if (b64(bh, 32, bhb, sizeof(bhb)) < 0)
		goto out;
	snprintf(tok, sizeof(tok), "bh=%s;", bhb);
	sb_tok(&b, " ", tok);
	sb_tok(&b, " ", "b=");
	if (b.oom)
		goto oom;

	/* the data: each h= field, instances taken from the bottom up
	 * (RFC 6376 5.4.2), then this header with b= empty, no CRLF */
	memset(used, 0, sizeof(used));
	for (h = 0; h < nh; h++) {
		size_t k, idx = 0, skip;
		long j, found = -1;

		for (k = 0; dkim_signed_headers[k] != NULL; k++)
			if (dkim_signed_headers[k] == hnames[h])
				idx = k;
		skip = used[idx]++;
		for (j = (long)hs->n - 1; j >= 0; j--) {
			if (!sig_is(hs, (size_t)j, hnames[h]))
				continue;
			if (skip-- == 0) {
				found = j;
				break;
			}
		}
		if (found < 0)
			continue;	/* over-signed: contributes nothing */
		if (canon_header(CANON_RELAXED, hs->buf + hs->f[found].off,
		    hs->f[found].len, 1, &data, &dlen, &dcap) < 0)
			goto oom;
	}
	if (canon_header(CANON_RELAXED, b.p, b.len, 0, &data, &dlen,
	    &dcap) < 0)
		goto oom;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto oom;
	if (key->alg == DKIM_ED25519_SHA256) {
		/* RFC 8463 3: PureEdDSA over SHA-256(data) */
		if (EVP_Digest(data, dlen, md, &mdlen, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
		    EVP_DigestSign(ctx, NULL, &siglen, md, mdlen) != 1 ||
		    (sig = malloc(siglen)) == NULL ||
		    EVP_DigestSign(ctx, sig, &siglen, md, mdlen) != 1) {
			ossl_err(err, errlen, "ed25519 signing failed");
			goto out;
		}
	} else {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
		    key->pkey) != 1 ||
		    EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *)data,
		    dlen) != 1 ||
		    (sig = malloc(siglen)) == NULL ||
		    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)data,
		    dlen) != 1) {
			ossl_err(err, errlen, "rsa signing failed");
			goto out;
		}
	}
	if ((sigb = malloc(4 * ((siglen + 2) / 3) + 1)) == NULL ||
	    b64(sig, siglen, sigb, 4 * ((siglen + 2) / 3) + 1) < 0)
		goto oom;
	/* b= value folded in pieces that fit the line */
	{
		size_t off = 0, total = strlen(sigb);

		while (off < total) {
			size_t room = b.col < 77 ? 77 - b.col : 0, n;

			if (room < 8) {
				sb_put(&b, "\r\n\t", 3);
				b.col = 1;
				continue;
			}
			n = total - off < room ? total - off : room;
			sb_put(&b, sigb + off, n);
			off += n;
		}
	}
	sb_put(&b, "\r\n", 2);
	if (b.oom)
		goto oom;
	*out = b.p;
	*outlen = b.len;
	b.p = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(sigb);
	free(data);
	free(b.p);
	return rc;
}

int
dkim_sign_stored(const struct dkim_key *const *keys, size_t nkeys,
    const char *hdr, size_t hlen, int utf8, const unsigned char bh[32],
    time_t t, long expire, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	struct hdr_section hs;
	char *all = NULL, *sig = NULL, *np;
	size_t alen = 0, slen = 0, i;
	int rc = -1;

	memset(&hs, 0, sizeof(hs));
	*out = NULL;
	*outlen = 0;
	if (hdr_parse(&hs, hdr, hlen, utf8, err, errlen) < 0)
		return -1;
	for (i = 0; i < nkeys; i++) {
		if (dkim_sign(keys[i], &hs, bh, t, expire, &sig, &slen, err,
		    errlen) < 0)
			goto out;
		if ((np = realloc(all, alen + slen + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		all = np;
		memcpy(all + alen, sig, slen);
		alen += slen;
		all[alen] = '\0';
		free(sig);
		sig = NULL;
	}
	*out = all;
	*outlen = alen;
	all = NULL;
	rc = 0;
out:
	free(sig);
	free(all);
	hdr_free(&hs);
	return rc;
}
