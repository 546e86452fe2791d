/*
 * oauth2 — SASL bearer-token decoding, JWT validation against a JWKS, and
 * RFC 7662 introspection (see oauth2.h for the contract).
 *
 * Owns: the current key set (reference counted, so a check runs without
 * the mutex while a refresh swaps in a new set), the introspection cache
 * (a fixed table keyed by SHA-256 of the token, entries valid until the
 * token's exp) and copies of the [oauth2] settings.
 *
 * Fails closed: anything malformed, unknown or unverifiable is
 * O2_INVALID; only a provider that cannot be reached (or memory) gives
 * O2_TEMPFAIL.  HTTP calls (libcurl easy interface) run on the calling
 * authpool thread with short timeouts and a size cap, never on a loop.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/bn.h>
#include <sodium.h>

#include "auth/oauth2.h"
#include "auth/sasl.h"
#include "util/config.h"
#include "util/log.h"

#define O2_HDR_MAX	2048	/* decoded JOSE header */
#define O2_BODY_MAX	8192	/* decoded claims */
#define O2_SIG_MAX	1024	/* decoded signature (RSA 8192 bits) */
#define O2_HTTP_TIMEOUT	10L	/* seconds per JWKS fetch / introspection */
#define O2_ICACHE	256	/* introspection cache slots */
#define O2_RESP_MAX	(64 * 1024)

enum o2_kty { KTY_RSA = 1, KTY_EC = 2, KTY_OKP = 3 };

struct o2_key {
	char		 kid[128];
	char		 alg[16];	/* "" when the JWK names none */
	enum o2_kty	 kty;
	EVP_PKEY	*pk;
};

struct oauth2_jwks {
	int		 refs;		/* guarded by the owner's mutex */
	size_t		 n;
	struct o2_key	 k[OAUTH2_KEYS_MAX];
};

struct o2_icache {
	unsigned char	 h[32];
	long long	 exp;
	int		 used;
	int		 scope_ok;
	char		 user[256];
};

struct oauth2 {
	pthread_mutex_t	 mu;
	struct oauth2_conf c;		/* strings owned (strdup) */
	struct oauth2_jwks *keys;	/* guarded by mu */
	time_t		 last_fetch;	/* any attempt; guarded by mu */
	time_t		 last_kid_fetch; /* for an unknown kid; guarded by mu */
	time_t		 loaded_at;	/* current set fetched; guarded by mu */
	int		 fetching;	/* guarded by mu */
	char		 client_id[256];
	char		 client_secret[512];
	struct o2_icache ic[O2_ICACHE];	/* guarded by mu */
	size_t		 ic_next;
};

/* ---------------------------------------------------------------- */
/* base64url */

static int
b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long
oauth2_b64url_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0, v;

	if (inlen % 4 == 1)
		return -1;
	for (i = 0; i < inlen; i++) {
		if ((v = b64url_val((unsigned char)in[i])) < 0)
			return -1;
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* leftover bits must be zero (canonical encoding) */
	if (bits > 0 && (acc & ((1UL << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

long
oauth2_b64url_encode(const unsigned char *in, size_t inlen, char *out,
    size_t outlen)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0;

	for (i = 0; i < inlen; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			if (o + 1 >= outlen)
				return -1;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0) {
		if (o + 1 >= outlen)
			return -1;
		out[o++] = tab[(acc << (6 - bits)) & 63];
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (long)o;
}

/* ---------------------------------------------------------------- */
/* SASL */

/* RFC 6750 b64token plus what JWTs and opaque tokens use. */
static int
token_char(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
	    c == '+' || c == '/' || c == '=';
}

/* "Bearer TOKEN" into out. */
static int
bearer_value(const unsigned char *v, size_t vl, struct oauth2_sasl *out)
{
	size_t i;

	if (vl < 8 || strncasecmp((const char *)v, "Bearer ", 7) != 0)
		return -1;
	v += 7;
	vl -= 7;
	if (vl == 0 || vl > OAUTH2_TOKEN_MAX)
		return -1;
	for (i = 0; i < vl; i++)
		if (!token_char(v[i]))
			return -1;
	memcpy(out->token, v, vl);
	out->token[vl] = '\0';
	out->tokenlen = vl;
	return 0;
}

static int
copy_user(const unsigned char *v, size_t vl, char *dst, int unescape)
{
	size_t i, o = 0;

	for (i = 0; i < vl; i++) {
		unsigned char c = v[i];

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (unescape && c == '=') {	/* RFC 5801 saslname */
			if (i + 2 < vl + 0 && v[i + 1] == '2' && v[i + 2] == 'C')
				c = ',';
			else if (i + 2 < vl && v[i + 1] == '3' &&
			    v[i + 2] == 'D')
				c = '=';
			else
				return -1;
			i += 2;
		} else if (unescape && c == ',') {
			return -1;
		}
		if (o >= OAUTH2_USER_MAX)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* Walks ^A-separated key=value pairs up to the empty one that ends them;
 * takes user= (XOAUTH2 only) and auth=. */
static int
kv_pairs(const unsigned char *p, size_t len, int want_user,
    struct oauth2_sasl *out)
{
	int have_auth = 0, have_user = !want_user, count = 0;

	for (;;) {
		const unsigned char *e = memchr(p, 0x01, len);
		size_t fl;

		if (e == NULL || ++count > 32)
			return -1;
		fl = (size_t)(e - p);
		if (fl == 0) {
			/* the terminating empty pair: nothing may follow */
			if ((size_t)(e - p) + 1 != len)
				return -1;
			break;
		}
		if (fl >= 5 && memcmp(p, "auth=", 5) == 0) {
			if (have_auth || bearer_value(p + 5, fl - 5, out) != 0)
				return -1;
			have_auth = 1;
		} else if (want_user && fl >= 5 && memcmp(p, "user=", 5) == 0) {
			if (have_user || copy_user(p + 5, fl - 5, out->user,
			    0) != 0)
				return -1;
			have_user = 1;
		} else if (memchr(p, '=', fl) == NULL) {
			return -1;
		}
		len -= fl + 1;
		p = e + 1;
	}
	return have_auth && have_user ? 0 : -1;
}

int
oauth2_sasl_decode(enum oauth2_mech mech, const unsigned char *buf,
    size_t len, struct oauth2_sasl *out)
{
	const unsigned char *c1, *c2;

	memset(out, 0, sizeof(*out));
	if (len == 0 || memchr(buf, '\0', len) != NULL)
		return -1;
	if (mech == OAUTH2_XOAUTH2) {
		if (kv_pairs(buf, len, 1, out) != 0 || out->user[0] == '\0')
			goto bad;
		return 0;
	}
	if (mech != OAUTH2_OAUTHBEARER)
		return -1;
	/* gs2-header: cb-flag "," [ "a=" saslname ] "," then ^A */
	if (len < 4 || (buf[0] != 'n' && buf[0] != 'y') || buf[1] != ',')
		goto bad;	/* "p=..." asks for channel binding */
	c1 = buf + 2;
	if ((c2 = memchr(c1, ',', len - 2)) == NULL)
		goto bad;
	if (c2 > c1) {
		if ((size_t)(c2 - c1) < 2 || memcmp(c1, "a=", 2) != 0 ||
		    copy_user(c1 + 2, (size_t)(c2 - c1) - 2, out->user, 1) != 0)
			goto bad;
	}
	c2++;
	if ((size_t)(c2 - buf) >= len || *c2 != 0x01)
		goto bad;
	c2++;
	if (kv_pairs(c2, len - (size_t)(c2 - buf), 0, out) != 0)
		goto bad;
	return 0;
bad:
	sodium_memzero(out, sizeof(*out));
	return -1;
}

int
oauth2_error_challenge(enum oauth2_mech mech, enum oauth2_status st,
    const char *scope, char *out, size_t outlen)
{
	json_t *j;
	char *txt;
	int rc = -1;

	if (mech == OAUTH2_XOAUTH2)
		j = json_pack("{s:s, s:s}", "status", "401", "schemes",
		    "Bearer");
	else
		j = json_pack("{s:s, s:s}", "status", st == O2_SCOPE ?
		    "insufficient_scope" : "invalid_token", "schemes",
		    "Bearer");
	if (j == NULL)
		return -1;
	if (scope != NULL && scope[0] != '\0')
		json_object_set_new(j, "scope", json_string(scope));
	txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (txt == NULL)
		return -1;
	if (sasl_b64_encode((const unsigned char *)txt, strlen(txt), out,
	    outlen) >= 0)
		rc = 0;
	free(txt);
	return rc;
}

/* ---------------------------------------------------------------- */
/* JWKS */

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk = NULL;

	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL)
		return NULL;
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

/* A base64url member of a JWK into buf; its length or -1. */
static long
jwk_bin(json_t *jwk, const char *name, unsigned char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	if (s == NULL)
		return -1;
	return oauth2_b64url_decode(s, strlen(s), buf, len);
}

static EVP_PKEY *
jwk_rsa(json_t *jwk)
{
	unsigned char n[1024], e[16];
	long nl, el;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *pk = NULL;

	if ((nl = jwk_bin(jwk, "n", n, sizeof(n))) <= 0 ||
	    (el = jwk_bin(jwk, "e", e, sizeof(e))) <= 0)
		return NULL;
	if ((bn = BN_bin2bn(n, (int)nl, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)el, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	pk = pkey_fromdata("RSA", params);
	/* weak keys are no keys */
	if (pk != NULL && EVP_PKEY_get_bits(pk) < 2048) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

/* One P-256 coordinate (at most 32 octets) into out[32], left-padded. */
static int
jwk_coord(json_t *jwk, const char *name, unsigned char out[32])
{
	unsigned char tmp[32];
	long n = jwk_bin(jwk, name, tmp, sizeof(tmp));

	if (n < 16)	/* shorter than half is no real coordinate */
		return -1;
	memset(out, 0, 32);
	memcpy(out + (32 - n), tmp, (size_t)n);
	return 0;
}

static EVP_PKEY *
jwk_ec(json_t *jwk)
{
	unsigned char pub[65];
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	char group[] = "prime256v1";
	OSSL_PARAM params[3];
	EVP_PKEY *pk;
	EVP_PKEY_CTX *ctx;

	if (crv == NULL || strcmp(crv, "P-256") != 0)
		return NULL;
	pub[0] = 0x04;
	/* RFC 7518 6.2.1.2 wants the full 32 octets, but some encoders
	 * (PyJWT < 2.8 among them) drop leading zeros: left-pad them */
	if (jwk_coord(jwk, "x", pub + 1) != 0 ||
	    jwk_coord(jwk, "y", pub + 33) != 0)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
	params[2] = OSSL_PARAM_construct_end();
	if ((pk = pkey_fromdata("EC", params)) == NULL)
		return NULL;
	/* the point must be on the curve */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

static EVP_PKEY *
jwk_okp(json_t *jwk)
{
	unsigned char x[32];
	const char *crv = json_string_value(json_object_get(jwk, "crv"));

	if (crv == NULL || strcmp(crv, "Ed25519") != 0 ||
	    jwk_bin(jwk, "x", x, sizeof(x)) != 32)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
}

void
oauth2_jwks_free(struct oauth2_jwks *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++)
		EVP_PKEY_free(k->k[i].pk);
	free(k);
}

size_t
oauth2_jwks_count(const struct oauth2_jwks *k)
{
	return k != NULL ? k->n : 0;
}

struct oauth2_jwks *
oauth2_jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	struct oauth2_jwks *k;
	json_error_t je;
	json_t *root, *arr, *jwk;
	size_t i;

	if (len > OAUTH2_JWKS_MAX) {
		snprintf(err, errlen, "JWKS larger than %d bytes",
		    OAUTH2_JWKS_MAX);
		return NULL;
	}
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		snprintf(err, errlen, "JWKS is not JSON: %s (line %d)",
		    je.text, je.line);
		return NULL;
	}
	arr = json_object_get(root, "keys");
	if (!json_is_array(arr)) {
		json_decref(root);
		snprintf(err, errlen, "JWKS has no \"keys\" array");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		json_decref(root);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_array_foreach(arr, i, jwk) {
		const char *kty, *kid, *alg, *use;
		struct o2_key *key;
		EVP_PKEY *pk = NULL;
		enum o2_kty t;

		if (k->n >= OAUTH2_KEYS_MAX)
			break;
		if (!json_is_object(jwk) ||
		    (kty = json_string_value(json_object_get(jwk, "kty"))) ==
		    NULL)
			continue;
		use = json_string_value(json_object_get(jwk, "use"));
		if (use != NULL && strcmp(use, "sig") != 0)
			continue;	/* encryption keys never verify */
		kid = json_string_value(json_object_get(jwk, "kid"));
		alg = json_string_value(json_object_get(jwk, "alg"));
		if ((kid != NULL && strlen(kid) >= sizeof(key->kid)) ||
		    (alg != NULL && strlen(alg) >= sizeof(key->alg)))
			continue;
		if (strcmp(kty, "RSA") == 0) {
			t = KTY_RSA;
			pk = jwk_rsa(jwk);
		} else if (strcmp(kty, "EC") == 0) {
			t = KTY_EC;
			pk = jwk_ec(jwk);
		} else if (strcmp(kty, "OKP") == 0) {
			t = KTY_OKP;
			pk = jwk_okp(jwk);
		} else {
			continue;	/* "oct" (HMAC) and others: never */
		}
		if (pk == NULL)
			continue;
		key = &k->k[k->n++];
		key->kty = t;
		key->pk = pk;
		snprintf(key->kid, sizeof(key->kid), "%s", kid ? kid : "");
		snprintf(key->alg, sizeof(key->alg), "%s", alg ? alg : "");
	}
	json_decref(root);
	return k;
}

/* ---------------------------------------------------------------- */
/* JWS */

/* Raw R||S (RFC 7518 3.4) to a DER ECDSA-Sig-Value for OpenSSL. */
static size_t
es256_der(const unsigned char *rs, unsigned char *der)
{
	size_t o = 2, part;

	for (part = 0; part < 2; part++) {
		const unsigned char *v = rs + 32 * part;
		size_t n = 32;

		while (n > 1 && *v == 0) {
			v++;
			n--;
		}
		der[o++] = 0x02;
		der[o++] = (unsigned char)(n + (*v & 0x80 ? 1 : 0));
		if (*v & 0x80)
			der[o++] = 0x00;
		memcpy(der + o, v, n);
		o += n;
	}
	der[0] = 0x30;
	der[1] = (unsigned char)(o - 2);
	return o;
}

static int
jws_verify(const struct o2_key *key, enum o2_kty kty, const char *signed_part,
    size_t slen, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md;
	unsigned char der[80];
	const unsigned char *s = sig;
	size_t sl = siglen;
	int ok;

	if (kty == KTY_EC) {
		if (siglen != 64)
			return 0;
		sl = es256_der(sig, der);
		s = der;
	} else if (kty == KTY_OKP && siglen != 64) {
		return 0;
	}
	if ((md = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(md, NULL, kty == KTY_OKP ? NULL :
	    EVP_sha256(), NULL, key->pk) == 1 &&
	    EVP_DigestVerify(md, s, sl, (const unsigned char *)signed_part,
	    slen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* Is word in the blank-separated list? */
static int
in_list(const char *list, const char *word, int nocase)
{
	size_t wl = strlen(word);
	const char *p = list;

	while (*p != '\0') {
		size_t n;

		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, " ,");
		if (n > 0 && n == wl && (nocase ? strncasecmp(p, word, n) :
		    strncmp(p, word, n)) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* Every scope in required present in the claim (string or array)? */
static int
scope_ok(json_t *claim, const char *required)
{
	const char *p = required;

	if (required == NULL || required[0] == '\0')
		return 1;
	while (*p != '\0') {
		char one[256];
		size_t n;
		int found = 0;

		while (*p == ' ')
			p++;
		if ((n = strcspn(p, " ")) == 0)
			break;
		if (n >= sizeof(one))
			return 0;
		memcpy(one, p, n);
		one[n] = '\0';
		p += n;
		if (json_is_string(claim)) {
			found = in_list(json_string_value(claim), one, 0);
		} else if (json_is_array(claim)) {
			size_t i;
			json_t *v;

			json_array_foreach(claim, i, v)
				if (json_is_string(v) &&
				    strcmp(json_string_value(v), one) == 0)
					found = 1;
		}
		if (!found)
			return 0;
	}
	return 1;
}

static enum oauth2_status
fail(struct oauth2_result *res, enum oauth2_status st, const char *why)
{
	res->status = st;
	snprintf(res->reason, sizeof(res->reason), "%s", why);
	return st;
}

/* The claims every token shape shares: user and scope. */
static enum oauth2_status
check_user_scope(const struct oauth2_conf *oc, json_t *claims,
    const char *scope_name, const char *sasl_user, struct oauth2_result *res)
{
	const char *u;

	u = json_string_value(json_object_get(claims, oc->user_claim));
	if (u == NULL || u[0] == '\0' || strlen(u) >= sizeof(res->user))
		return fail(res, O2_INVALID, "no-user-claim");
	if (sasl_user != NULL && sasl_user[0] != '\0' &&
	    strcasecmp(u, sasl_user) != 0)
		return fail(res, O2_INVALID, "wrong-user");
	if (!scope_ok(json_object_get(claims, scope_name), oc->required_scope))
		return fail(res, O2_SCOPE, "missing-scope");
	snprintf(res->user, sizeof(res->user), "%s", u);
	return O2_OK;
}

/* A NumericDate claim: 1 and *v when present and a number, 0 absent,
 * -1 wrong type. */
static int
num_claim(json_t *claims, const char *name, long long *v)
{
	json_t *j = json_object_get(claims, name);

	if (j == NULL)
		return 0;
	if (!json_is_number(j))
		return -1;
	if (json_number_value(j) > 1e15 || json_number_value(j) < -1e15)
		return -1;
	*v = (long long)json_number_value(j);
	return 1;
}

static int
aud_ok(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud) && json_array_size(aud) <= 64)
		json_array_foreach(aud, i, v)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), want) == 0)
				return 1;
	return 0;
}

enum oauth2_status
oauth2_jwt_check(const struct oauth2_jwks *keys, const struct oauth2_conf *oc,
    const char *token, size_t len, const char *sasl_user, time_t now,
    struct oauth2_result *res)
{
	const char *d1, *d2, *alg, *kid, *typ, *iss;
	unsigned char hdr[O2_HDR_MAX + 1], body[O2_BODY_MAX + 1],
	    sig[O2_SIG_MAX];
	long hl, bl, sl;
	json_t *h = NULL, *c = NULL;
	const struct o2_key *key = NULL;
	enum o2_kty want;
	enum oauth2_status st;
	long long exp, nbf, iat;
	int r, skew = oc->clock_skew;
	size_t i, nmatch = 0;

	memset(res, 0, sizeof(*res));
	if (len > OAUTH2_TOKEN_MAX || (d1 = memchr(token, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))) ==
	    NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) !=
	    NULL)
		return fail(res, O2_INVALID, "not-a-jwt");
	if ((hl = oauth2_b64url_decode(token, (size_t)(d1 - token), hdr,
	    O2_HDR_MAX)) <= 0 ||
	    (bl = oauth2_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), body,
	    O2_BODY_MAX)) <= 0 ||
	    (sl = oauth2_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token),
	    sig, sizeof(sig))) < 0)
		return fail(res, O2_INVALID, "bad-encoding");
	if ((h = json_loadb((const char *)hdr, (size_t)hl,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(h)) {
		st = fail(res, O2_INVALID, "bad-header");
		goto out;
	}
	alg = json_string_value(json_object_get(h, "alg"));
	if (alg == NULL) {
		st = fail(res, O2_INVALID, "no-alg");
		goto out;
	}
	/* the algorithm set is fixed: none and HS* never verify */
	if (strcmp(alg, "RS256") == 0)
		want = KTY_RSA;
	else if (strcmp(alg, "ES256") == 0)
		want = KTY_EC;
	else if (strcmp(alg, "EdDSA") == 0)
		want = KTY_OKP;
	else {
		st = fail(res, O2_INVALID, "alg-refused");
		goto out;
	}
	if (json_object_get(h, "crit") != NULL) {
		/* RFC 7515 4.1.11: no extension is understood here */
		st = fail(res, O2_INVALID, "unknown-crit");
		goto out;
	}
	typ = json_string_value(json_object_get(h, "typ"));
	if (oc->accepted_typ != NULL && oc->accepted_typ[0] != '\0' &&
	    strcmp(oc->accepted_typ, "*") != 0 &&
	    (typ == NULL || !in_list(oc->accepted_typ, typ, 1))) {
		st = fail(res, O2_INVALID, "typ-refused");
		goto out;
	}
	kid = json_string_value(json_object_get(h, "kid"));
	if (json_object_get(h, "kid") != NULL && kid == NULL) {
		st = fail(res, O2_INVALID, "bad-kid");
		goto out;
	}
	for (i = 0; keys != NULL && i < keys->n; i++) {
		if (kid != NULL ? strcmp(keys->k[i].kid, kid) == 0 :
		    keys->k[i].kty == want) {
			key = &keys->k[i];
			nmatch++;
		}
	}
	if (key == NULL) {
		res->unknown_kid = kid != NULL;
		st = fail(res, O2_INVALID, kid != NULL ? "unknown-kid" :
		    "no-key");
		goto out;
	}
	if (nmatch != 1) {
		st = fail(res, O2_INVALID, "ambiguous-key");
		goto out;
	}
	if (key->kty != want ||
	    (key->alg[0] != '\0' && strcmp(key->alg, alg) != 0)) {
		st = fail(res, O2_INVALID, "alg-key-mismatch");
		goto out;
	}
	if (!jws_verify(key, want, token, (size_t)(d2 - token), sig,
	    (size_t)sl)) {
		st = fail(res, O2_INVALID, "bad-signature");
		goto out;
	}
	/* signed: now the claims */
	if ((c = json_loadb((const char *)body, (size_t)bl,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(c)) {
		st = fail(res, O2_INVALID, "bad-claims");
		goto out;
	}
	iss = json_string_value(json_object_get(c, "iss"));
	if (iss == NULL || oc->issuer == NULL || strcmp(iss, oc->issuer) != 0) {
		st = fail(res, O2_INVALID, "wrong-issuer");
		goto out;
	}
	if (oc->audience == NULL ||
	    !aud_ok(json_object_get(c, "aud"), oc->audience)) {
		st = fail(res, O2_INVALID, "wrong-audience");
		goto out;
	}
	if (num_claim(c, "exp", &exp) != 1) {
		st = fail(res, O2_INVALID, "no-exp");
		goto out;
	}
	res->exp = exp;
	if ((long long)now >= exp + skew) {
		st = fail(res, O2_INVALID, "expired");
		goto out;
	}
	if ((r = num_claim(c, "nbf", &nbf)) < 0 ||
	    (r == 1 && (long long)now + skew < nbf)) {
		st = fail(res, O2_INVALID, "not-yet-valid");
		goto out;
	}
	if ((r = num_claim(c, "iat", &iat)) < 0 ||
	    (r == 1 && (long long)now + skew < iat)) {
		st = fail(res, O2_INVALID, "issued-in-future");
		goto out;
	}
	st = check_user_scope(oc, c, oc->scope_claim != NULL ?
	    oc->scope_claim : "scope", sasl_user, res);
	if (st == O2_OK)
		res->status = O2_OK;
out:
	json_decref(h);
	json_decref(c);
	sodium_memzero(body, sizeof(body));
	return st;
}

/* ---------------------------------------------------------------- */
/* HTTP (libcurl, blocking, bounded) */

struct o2_buf {
	char	*p;
	size_t	 len, cap;
	int	 over;
};

static size_t
o2_write(char *data, size_t sz, size_t n, void *arg)
{
	struct o2_buf *b = arg;
	size_t add = sz * n;

	if (add > b->cap - b->len) {
		b->over = 1;
		return 0;	/* aborts the transfer */
	}
	memcpy(b->p + b->len, data, add);
	b->len += add;
	return add;
}

/* GET (post == NULL) or POST url; body into b (NUL-terminated).  Returns
 * the HTTP status, or -1 with why set. */
static long
o2_http(const char *url, const char *post, const char *user,
    const char *pass, struct o2_buf *b, char *why, size_t whylen)
{
	CURL *c;
	CURLcode rc;
	long code = -1;

	b->len = 0;
	b->over = 0;
	if ((c = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "curl_easy_init failed");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, O2_HTTP_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, o2_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "outpost/" OUTPOST_VERSION);
	if (post != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	if (user != NULL && user[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		snprintf(why, whylen, "%s", b->over ? "answer too large" :
		    curl_easy_strerror(rc));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
	return rc == CURLE_OK ? code : -1;
}

/* ---------------------------------------------------------------- */
/* the verifier */

static void
keys_put(struct oauth2 *o, struct oauth2_jwks *k)
{
	int last;

	if (k == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (last)
		oauth2_jwks_free(k);
}

static struct oauth2_jwks *
keys_get(struct oauth2 *o)
{
	struct oauth2_jwks *k;

	pthread_mutex_lock(&o->mu);
	if ((k = o->keys) != NULL)
		k->refs++;
	pthread_mutex_unlock(&o->mu);
	return k;
}

static void
keys_install(struct oauth2 *o, struct oauth2_jwks *k)
{
	struct oauth2_jwks *old;

	k->refs = 1;
	pthread_mutex_lock(&o->mu);
	old = o->keys;
	o->keys = k;
	pthread_mutex_unlock(&o->mu);
	keys_put(o, old);
}

enum o2_why { FETCH_NONE, FETCH_KID, FETCH_STALE };

/*
 * Fetches jwks_url when allowed, nobody else fetching: without keys at
 * most every 10 s; for an unknown kid at most once a minute
 * (OAUTH2_REFRESH_MIN); a set older than an hour at most once a minute.
 * Returns 1 when a new set was installed, 0 when not attempted, -1 on
 * failure (the old set stays).
 */
static int
jwks_refresh(struct oauth2 *o, time_t now, enum o2_why why_fetch)
{
	struct o2_buf b;
	struct oauth2_jwks *k;
	char why[256];
	long code;
	int skip;

	pthread_mutex_lock(&o->mu);
	switch (why_fetch) {
	case FETCH_NONE:
		skip = o->last_fetch != 0 && now - o->last_fetch < 10;
		break;
	case FETCH_KID:
		skip = o->last_kid_fetch != 0 &&
		    now - o->last_kid_fetch < OAUTH2_REFRESH_MIN;
		break;
	default:
		skip = now - o->loaded_at < 3600 ||
		    now - o->last_fetch < OAUTH2_REFRESH_MIN;
		break;
	}
	if (o->fetching || skip) {
		pthread_mutex_unlock(&o->mu);
		return 0;
	}
	o->fetching = 1;
	o->last_fetch = now;
	if (why_fetch == FETCH_KID)
		o->last_kid_fetch = now;
	pthread_mutex_unlock(&o->mu);

	b.cap = OAUTH2_JWKS_MAX + 1;
	if ((b.p = malloc(b.cap)) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		code = -1;
	} else {
		code = o2_http(o->c.jwks_url, NULL, NULL, NULL, &b, why,
		    sizeof(why));
	}
	k = NULL;
	if (code == 200)
		k = oauth2_jwks_parse(b.p, b.len, why, sizeof(why));
	else if (code > 0)
		snprintf(why, sizeof(why), "HTTP status %ld", code);
	free(b.p);
	pthread_mutex_lock(&o->mu);
	o->fetching = 0;
	pthread_mutex_unlock(&o->mu);
	if (k == NULL) {
		log_warn("oauth2: JWKS fetch from %s failed: %s", o->c.jwks_url,
		    why);
		return -1;
	}
	log_info("oauth2: JWKS fetched from %s, keys=%zu", o->c.jwks_url,
	    k->n);
	pthread_mutex_lock(&o->mu);
	o->loaded_at = now;
	pthread_mutex_unlock(&o->mu);
	keys_install(o, k);
	return 1;
}

static int
read_small_file(const char *path, char *buf, size_t len, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, len - 1, f);
	if (ferror(f) || (n == len - 1 && fgetc(f) != EOF)) {
		fclose(f);
		snprintf(err, errlen, "%s: unreadable or too large", path);
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

int
oauth2_configured(const struct config *cfg)
{
	return (cfg->oauth2_jwks_file != NULL && cfg->oauth2_jwks_file[0]) ||
	    (cfg->oauth2_jwks_url != NULL && cfg->oauth2_jwks_url[0]) ||
	    (cfg->oauth2_introspection_url != NULL &&
	    cfg->oauth2_introspection_url[0]);
}

void
oauth2_conf_from_config(struct oauth2_conf *oc, const struct config *cfg)
{
	memset(oc, 0, sizeof(*oc));
	oc->issuer = cfg->oauth2_issuer;
	oc->audience = cfg->oauth2_audience;
	oc->jwks_file = cfg->oauth2_jwks_file;
	oc->jwks_url = cfg->oauth2_jwks_url;
	oc->introspection_url = cfg->oauth2_introspection_url;
	oc->introspection_credentials = cfg->oauth2_introspection_credentials;
	oc->required_scope = cfg->oauth2_required_scope;
	oc->user_claim = cfg->oauth2_user_claim;
	oc->scope_claim = cfg->oauth2_scope_claim;
	oc->accepted_typ = cfg->oauth2_accepted_typ;
	oc->clock_skew = cfg->oauth2_clock_skew;
}

static int
dup_opt(const char **dst, const char *src)
{
	if (src == NULL || src[0] == '\0') {
		*dst = NULL;
		return 0;
	}
	return (*dst = strdup(src)) != NULL ? 0 : -1;
}

void
oauth2_free(struct oauth2 *o)
{
	if (o == NULL)
		return;
	oauth2_jwks_free(o->keys);
	free((char *)o->c.issuer);
	free((char *)o->c.audience);
	free((char *)o->c.jwks_file);
	free((char *)o->c.jwks_url);
	free((char *)o->c.introspection_url);
	free((char *)o->c.introspection_credentials);
	free((char *)o->c.required_scope);
	free((char *)o->c.user_claim);
	free((char *)o->c.scope_claim);
	free((char *)o->c.accepted_typ);
	pthread_mutex_destroy(&o->mu);
	sodium_memzero(o->client_secret, sizeof(o->client_secret));
	free(o);
}

struct oauth2 *
oauth2_new(const struct oauth2_conf *oc, char *err, size_t errlen)
{
	struct oauth2 *o;
	char *buf = NULL;
	int n;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&o->mu, NULL);
	if (dup_opt(&o->c.issuer, oc->issuer) || dup_opt(&o->c.audience,
	    oc->audience) || dup_opt(&o->c.jwks_file, oc->jwks_file) ||
	    dup_opt(&o->c.jwks_url, oc->jwks_url) ||
	    dup_opt(&o->c.introspection_url, oc->introspection_url) ||
	    dup_opt(&o->c.introspection_credentials,
	    oc->introspection_credentials) ||
	    dup_opt(&o->c.required_scope, oc->required_scope) ||
	    dup_opt(&o->c.user_claim, oc->user_claim ? oc->user_claim :
	    "email") || dup_opt(&o->c.scope_claim, oc->scope_claim ?
	    oc->scope_claim : "scope") ||
	    dup_opt(&o->c.accepted_typ, oc->accepted_typ)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	o->c.clock_skew = oc->clock_skew;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		goto fail;
	}
	if (o->c.jwks_file != NULL) {
		struct oauth2_jwks *k;
		char why[256];

		if ((buf = malloc(OAUTH2_JWKS_MAX + 2)) == NULL ||
		    (n = read_small_file(o->c.jwks_file, buf,
		    OAUTH2_JWKS_MAX + 2, err, errlen)) < 0)
			goto fail;
		if ((k = oauth2_jwks_parse(buf, (size_t)n, why,
		    sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s: %s", o->c.jwks_file, why);
			goto fail;
		}
		if (k->n == 0) {
			oauth2_jwks_free(k);
			snprintf(err, errlen, "%s: no usable key (RSA >= 2048 "
			    "bits, EC P-256, Ed25519)", o->c.jwks_file);
			goto fail;
		}
		k->refs = 1;
		o->keys = k;
		free(buf);
		buf = NULL;
	}
	/* jwks_url: fetched on first use (on an authpool thread), so a
	 * provider that is down does not hold up start-up */
	if (o->c.introspection_credentials != NULL) {
		char line[1024], *colon, *nl;

		if (read_small_file(o->c.introspection_credentials, line,
		    sizeof(line), err, errlen) < 0)
			goto fail;
		if ((nl = strpbrk(line, "\r\n")) != NULL)
			*nl = '\0';
		if ((colon = strchr(line, ':')) == NULL ||
		    (size_t)(colon - line) >= sizeof(o->client_id) ||
		    strlen(colon + 1) >= sizeof(o->client_secret)) {
			sodium_memzero(line, sizeof(line));
			snprintf(err, errlen, "%s: expected one line "
			    "\"client_id:client_secret\"",
			    o->c.introspection_credentials);
			goto fail;
		}
		*colon = '\0';
		memcpy(o->client_id, line, (size_t)(colon - line) + 1);
		memcpy(o->client_secret, colon + 1, strlen(colon + 1) + 1);
		sodium_memzero(line, sizeof(line));
	}
	return o;
fail:
	free(buf);
	oauth2_free(o);
	return NULL;
}

/* ---- introspection ---- */

static void
token_hash(const char *token, size_t len, unsigned char h[32])
{
	unsigned int hl = 32;

	if (EVP_Digest(token, len, h, &hl, EVP_sha256(), NULL) != 1)
		memset(h, 0, 32);
}

static enum oauth2_status
introspect(struct oauth2 *o, const char *token, size_t len,
    const char *sasl_user, time_t now, struct oauth2_result *res)
{
	unsigned char h[32];
	struct o2_buf b;
	char why[256], *esc = NULL, *post = NULL;
	json_t *j = NULL;
	enum oauth2_status st;
	long code;
	long long exp = 0;
	const char *iss;
	size_t i;
	CURL *c;

	token_hash(token, len, h);
	pthread_mutex_lock(&o->mu);
	for (i = 0; i < O2_ICACHE; i++) {
		struct o2_icache *e = &o->ic[i];

		if (!e->used || sodium_memcmp(e->h, h, 32) != 0)
			continue;
		if ((long long)now >= e->exp) {
			e->used = 0;
			break;
		}
		res->exp = e->exp;
		snprintf(res->user, sizeof(res->user), "%s", e->user);
		st = e->scope_ok ? O2_OK : O2_SCOPE;
		pthread_mutex_unlock(&o->mu);
		if (st != O2_OK)
			return fail(res, st, "missing-scope(cached)");
		if (sasl_user[0] != '\0' && strcasecmp(res->user,
		    sasl_user) != 0)
			return fail(res, O2_INVALID, "wrong-user(cached)");
		res->status = O2_OK;
		snprintf(res->reason, sizeof(res->reason), "cached");
		return O2_OK;
	}
	pthread_mutex_unlock(&o->mu);

	b.cap = O2_RESP_MAX + 1;
	if ((b.p = malloc(b.cap)) == NULL || (c = curl_easy_init()) == NULL) {
		free(b.p);
		return fail(res, O2_TEMPFAIL, "out-of-memory");
	}
	esc = curl_easy_escape(c, token, (int)len);
	curl_easy_cleanup(c);
	if (esc == NULL || asprintf(&post, "token=%s&token_type_hint="
	    "access_token", esc) < 0) {
		post = NULL;
		st = fail(res, O2_TEMPFAIL, "out-of-memory");
		goto out;
	}
	code = o2_http(o->c.introspection_url, post, o->client_id,
	    o->client_secret, &b, why, sizeof(why));
	if (code != 200) {
		if (code > 0)
			snprintf(why, sizeof(why), "HTTP status %ld", code);
		log_warn("oauth2: introspection at %s failed: %s",
		    o->c.introspection_url, why);
		st = fail(res, O2_TEMPFAIL, "introspection-unavailable");
		goto out;
	}
	if ((j = json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL || !json_is_object(j)) {
		st = fail(res, O2_TEMPFAIL, "introspection-bad-answer");
		goto out;
	}
	if (!json_is_true(json_object_get(j, "active"))) {
		st = fail(res, O2_INVALID, "inactive");
		goto out;
	}
	if (num_claim(j, "exp", &exp) == 1) {
		res->exp = exp;
		if ((long long)now >= exp + o->c.clock_skew) {
			st = fail(res, O2_INVALID, "expired");
			goto out;
		}
	}
	iss = json_string_value(json_object_get(j, "iss"));
	if (o->c.issuer != NULL && iss != NULL && strcmp(iss, o->c.issuer) != 0) {
		st = fail(res, O2_INVALID, "wrong-issuer");
		goto out;
	}
	if (o->c.audience != NULL && json_object_get(j, "aud") != NULL &&
	    !aud_ok(json_object_get(j, "aud"), o->c.audience)) {
		st = fail(res, O2_INVALID, "wrong-audience");
		goto out;
	}
	/* RFC 7662 2.2 names these "scope" and "username" */
	if (json_object_get(j, o->c.user_claim) == NULL &&
	    json_is_string(json_object_get(j, "username")))
		json_object_set(j, o->c.user_claim,
		    json_object_get(j, "username"));
	st = check_user_scope(&o->c, j, "scope", "", res);
	/* cache what the endpoint said about the token (not the SASL user),
	 * only while it is valid */
	if ((st == O2_OK || st == O2_SCOPE) && exp > (long long)now) {
		const char *u = json_string_value(json_object_get(j,
		    o->c.user_claim));
		struct o2_icache *e;

		pthread_mutex_lock(&o->mu);
		e = &o->ic[o->ic_next++ % O2_ICACHE];
		memcpy(e->h, h, 32);
		e->exp = exp;
		e->used = 1;
		e->scope_ok = st == O2_OK;
		snprintf(e->user, sizeof(e->user), "%s", u != NULL ? u : "");
		pthread_mutex_unlock(&o->mu);
	}
	if (st == O2_OK && sasl_user[0] != '\0' &&
	    strcasecmp(res->user, sasl_user) != 0)
		st = fail(res, O2_INVALID, "wrong-user");
	if (st == O2_OK)
		res->status = O2_OK;
out:
	json_decref(j);
	if (post != NULL) {
		sodium_memzero(post, strlen(post));
		free(post);
	}
	curl_free(esc);
	free(b.p);
	return st;
}

enum oauth2_status
oauth2_verify(struct oauth2 *o, const char *token, size_t len,
    const char *sasl_user, time_t now, struct oauth2_result *res)
{
	struct oauth2_jwks *k;
	enum oauth2_status st;
	int dots = 0;
	size_t i;

	memset(res, 0, sizeof(*res));
	if (sasl_user == NULL)
		sasl_user = "";
	for (i = 0; i < len; i++)
		dots += token[i] == '.';
	if (dots == 2 && (o->c.jwks_file != NULL || o->c.jwks_url != NULL)) {
		if (o->c.jwks_url != NULL) {
			int have;

			pthread_mutex_lock(&o->mu);
			have = o->keys != NULL;
			pthread_mutex_unlock(&o->mu);
			(void)jwks_refresh(o, now, have ? FETCH_STALE :
			    FETCH_NONE);
		}
		k = keys_get(o);
		if (k == NULL)
			return fail(res, O2_TEMPFAIL, "no-jwks");
		st = oauth2_jwt_check(k, &o->c, token, len, sasl_user, now,
		    res);
		keys_put(o, k);
		/* a new signing key at the provider: refresh once, retry */
		if (st == O2_INVALID && res->unknown_kid &&
		    o->c.jwks_url != NULL &&
		    jwks_refresh(o, now, FETCH_KID) == 1 &&
		    (k = keys_get(o)) != NULL) {
			st = oauth2_jwt_check(k, &o->c, token, len, sasl_user,
			    now, res);
			keys_put(o, k);
		}
		return st;
	}
	if (o->c.introspection_url != NULL)
		return introspect(o, token, len, sasl_user, now, res);
	return fail(res, O2_INVALID, "not-a-jwt");
}
