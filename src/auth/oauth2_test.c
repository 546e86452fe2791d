/*
 * oauth2_test — SASL XOAUTH2/OAUTHBEARER decoding, base64url, JWKS
 * parsing and JWT checks against tables of good and hostile inputs.
 * Tokens are signed here with OpenSSL (Ed25519, and ES256 whose DER
 * signature is turned into JWS's raw R||S, the reverse of what the
 * verifier does), so every claim can be varied.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "auth/oauth2.h"

#define NOW	1700000000LL

static EVP_PKEY *ed, *ecp;
static char jwks[2048];

static void
b64u(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	assert_true(oauth2_b64url_encode(in, len, out, outlen) >= 0);
}

/* DER ECDSA-Sig-Value -> 64-byte R||S */
static void
der_to_rs(const unsigned char *der, size_t len, unsigned char rs[64])
{
	size_t o = 2, part;

	assert_true(len > 8 && der[0] == 0x30);
	memset(rs, 0, 64);
	for (part = 0; part < 2; part++) {
		size_t n = der[o + 1];
		const unsigned char *v = der + o + 2;

		while (n > 32) {
			v++;
			n--;
		}
		memcpy(rs + 32 * part + (32 - n), v, n);
		o += 2 + der[o + 1];
	}
}

/* header and claims JSON -> compact JWS signed with key (ed or ecp). */
static char *
sign(EVP_PKEY *key, const char *hdr, const char *claims)
{
	static char tok[4096];
	char h[1024], c[2048];
	unsigned char sig[128], rs[64];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n;

	b64u((const unsigned char *)hdr, strlen(hdr), h, sizeof(h));
	b64u((const unsigned char *)claims, strlen(claims), c, sizeof(c));
	snprintf(tok, sizeof(tok), "%s.%s", h, c);
	assert_int_equal(EVP_DigestSignInit(md, NULL, key == ed ? NULL :
	    EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sl,
	    (unsigned char *)tok, strlen(tok)), 1);
	EVP_MD_CTX_free(md);
	n = strlen(tok);
	tok[n++] = '.';
	if (key == ecp) {
		der_to_rs(sig, sl, rs);
		b64u(rs, 64, tok + n, sizeof(tok) - n);
	} else {
		b64u(sig, sl, tok + n, sizeof(tok) - n);
	}
	return tok;
}

static int
setup(void **state)
{
	unsigned char raw[32], pub[65];
	char x[64], ex[64], ey[64];
	size_t rl = sizeof(raw), pl = sizeof(pub);

	(void)state;
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ecp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ed);
	assert_non_null(ecp);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rl), 1);
	assert_int_equal(EVP_PKEY_get_octet_string_param(ecp,
	    OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &pl), 1);
	assert_int_equal(pl, 65);
	b64u(raw, 32, x, sizeof(x));
	b64u(pub + 1, 32, ex, sizeof(ex));
	b64u(pub + 33, 32, ey, sizeof(ey));
	snprintf(jwks, sizeof(jwks), "{\"keys\":["
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"%s\"},"
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\",\"alg\":\"ES256\","
	    "\"x\":\"%s\",\"y\":\"%s\"},"
	    "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"c2VjcmV0\"}]}", x, ex, ey);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ecp);
	return 0;
}

static void
test_b64url(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(oauth2_b64url_decode("QUJD", 4, out, sizeof(out)), 3);
	assert_int_equal(oauth2_b64url_decode("QUI", 3, out, sizeof(out)), 2);
	assert_int_equal(oauth2_b64url_decode("-_8", 3, out, sizeof(out)), 2);
	assert_int_equal(oauth2_b64url_decode("QUI=", 4, out, sizeof(out)), -1);
	assert_int_equal(oauth2_b64url_decode("Q+I", 3, out, sizeof(out)), -1);
	assert_int_equal(oauth2_b64url_decode("Q", 1, out, sizeof(out)), -1);
	assert_int_equal(oauth2_b64url_decode("QR", 2, out, sizeof(out)), -1);
	assert_int_equal(oauth2_b64url_decode("QUJDRA", 6, out, 3), -1);
}

struct sasl_case {
	enum oauth2_mech mech;
	const char	*in;
	int		 ok;
	const char	*user;
	const char	*token;
};

static void
test_sasl_table(void **state)
{
	static const struct sasl_case cases[] = {
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Bearer t.k-n\1\1", 1,
		    "a@b.c", "t.k-n" },
		{ OAUTH2_XOAUTH2, "auth=Bearer tok\1user=a@b.c\1\1", 1,
		    "a@b.c", "tok" },
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Bearer tok\1", 0, 0, 0 },
		{ OAUTH2_XOAUTH2, "auth=Bearer tok\1\1", 0, 0, 0 },
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Basic tok\1\1", 0, 0, 0 },
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Bearer \1\1", 0, 0, 0 },
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Bearer a b\1\1", 0, 0, 0 },
		{ OAUTH2_XOAUTH2, "user=a@b.c\1auth=Bearer t\1\1junk", 0, 0,
		    0 },
		{ OAUTH2_XOAUTH2, "user=a\1user=b\1auth=Bearer t\1\1", 0, 0,
		    0 },
		{ OAUTH2_OAUTHBEARER, "n,a=a@b.c,\1host=h\1port=587\1"
		    "auth=Bearer tok\1\1", 1, "a@b.c", "tok" },
		{ OAUTH2_OAUTHBEARER, "n,,\1auth=Bearer tok\1\1", 1, "",
		    "tok" },
		{ OAUTH2_OAUTHBEARER, "y,,\1auth=Bearer tok\1\1", 1, "",
		    "tok" },
		{ OAUTH2_OAUTHBEARER, "n,a=x=2Cy=3Dz,\1auth=Bearer t\1\1", 1,
		    "x,y=z", "t" },
		{ OAUTH2_OAUTHBEARER, "n,a=x=41,\1auth=Bearer t\1\1", 0, 0, 0 },
		{ OAUTH2_OAUTHBEARER, "p=tls-unique,,\1auth=Bearer t\1\1", 0,
		    0, 0 },
		{ OAUTH2_OAUTHBEARER, "n,,auth=Bearer t\1\1", 0, 0, 0 },
		{ OAUTH2_OAUTHBEARER, "n,,\1host=h\1\1", 0, 0, 0 },
		{ OAUTH2_OAUTHBEARER, "n,b=x,\1auth=Bearer t\1\1", 0, 0, 0 },
		{ OAUTH2_OAUTHBEARER, "\1", 0, 0, 0 },
		{ OAUTH2_OAUTHBEARER, "", 0, 0, 0 },
	};
	struct oauth2_sasl *o = malloc(sizeof(*o));
	size_t i;

	(void)state;
	assert_non_null(o);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = oauth2_sasl_decode(cases[i].mech,
		    (const unsigned char *)cases[i].in, strlen(cases[i].in), o);

		if (r != (cases[i].ok ? 0 : -1))
			fail_msg("case %zu (%s): got %d", i, cases[i].in, r);
		if (cases[i].ok) {
			assert_string_equal(o->user, cases[i].user);
			assert_string_equal(o->token, cases[i].token);
			assert_int_equal(o->tokenlen, strlen(cases[i].token));
		}
	}
	/* a NUL inside */
	assert_int_equal(oauth2_sasl_decode(OAUTH2_XOAUTH2,
	    (const unsigned char *)"user=a\0b\1auth=Bearer t\1\1", 23, o), -1);
	free(o);
}

static void
test_jwks_parse(void **state)
{
	struct oauth2_jwks *k;
	char err[256];

	(void)state;
	k = oauth2_jwks_parse(jwks, strlen(jwks), err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(oauth2_jwks_count(k), 2);	/* "oct" skipped */
	oauth2_jwks_free(k);
	assert_null(oauth2_jwks_parse("{", 1, err, sizeof(err)));
	assert_null(oauth2_jwks_parse("[]", 2, err, sizeof(err)));
	static const char weak[] = "{\"keys\":[{\"kty\":\"RSA\","
	    "\"n\":\"AQAB\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":"
	    "\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},{\"kty\":\"OKP\","
	    "\"crv\":\"X25519\",\"x\":\"AA\"},1,\"x\"]}";

	k = oauth2_jwks_parse(weak, strlen(weak), err, sizeof(err));
	if (k != NULL) {	/* weak RSA, bad point, wrong curve: no keys */
		assert_int_equal(oauth2_jwks_count(k), 0);
		oauth2_jwks_free(k);
	}
}

struct jwt_case {
	const char	*name;
	int		 ec;		/* sign with the EC key, else Ed25519 */
	const char	*hdr;
	const char	*claims;
	enum oauth2_status want;
	const char	*reason;
};

#define GOOD_C	"{\"iss\":\"https://idp\",\"aud\":\"smtp\",\"exp\":1700000600," \
		"\"email\":\"a@b.c\",\"scope\":\"openid mail.send\"}"

static void
test_jwt_table(void **state)
{
	static const struct jwt_case cases[] = {
		{ "ed ok", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", GOOD_C, O2_OK, "" },
		{ "es ok", 1, "{\"alg\":\"ES256\",\"kid\":\"ec\",\"typ\":"
		    "\"at+jwt\"}", GOOD_C, O2_OK, "" },
		{ "no kid, one key of the type", 1, "{\"alg\":\"ES256\","
		    "\"typ\":\"at+jwt\"}", GOOD_C, O2_OK, "" },
		{ "aud array", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":[\"x\","
		    "\"smtp\"],\"exp\":1700000600,\"email\":\"A@B.C\","
		    "\"scope\":\"mail.send\"}", O2_OK, "" },
		{ "expired", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":1699999000,\"email\":\"a@b.c\",\"scope\":"
		    "\"mail.send\"}", O2_INVALID, "expired" },
		{ "within skew", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":1699999990,\"email\":\"a@b.c\",\"scope\":"
		    "\"mail.send\"}", O2_OK, "" },
		{ "nbf", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":1700009000,\"nbf\":1700001000,\"email\":\"a@b.c\","
		    "\"scope\":\"mail.send\"}", O2_INVALID, "not-yet-valid" },
		{ "iss", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://evil\",\"aud\":\"smtp\","
		    "\"exp\":1700000600,\"email\":\"a@b.c\",\"scope\":"
		    "\"mail.send\"}", O2_INVALID, "wrong-issuer" },
		{ "aud", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"other\","
		    "\"exp\":1700000600,\"email\":\"a@b.c\",\"scope\":"
		    "\"mail.send\"}", O2_INVALID, "wrong-audience" },
		{ "scope", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":1700000600,\"email\":\"a@b.c\",\"scope\":"
		    "\"mail.sendx\"}", O2_SCOPE, "missing-scope" },
		{ "user", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":1700000600,\"email\":\"z@b.c\",\"scope\":"
		    "\"mail.send\"}", O2_INVALID, "wrong-user" },
		{ "exp string", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\"}", "{\"iss\":\"https://idp\",\"aud\":\"smtp\","
		    "\"exp\":\"1700000600\",\"email\":\"a@b.c\"}", O2_INVALID,
		    "no-exp" },
		{ "typ", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":\"JWT\"}",
		    GOOD_C, O2_INVALID, "typ-refused" },
		{ "crit", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":"
		    "\"at+jwt\",\"crit\":[\"b64\"],\"b64\":true}", GOOD_C,
		    O2_INVALID, "unknown-crit" },
		{ "alg/kty", 0, "{\"alg\":\"EdDSA\",\"kid\":\"ec\",\"typ\":"
		    "\"at+jwt\"}", GOOD_C, O2_INVALID, "alg-key-mismatch" },
		{ "alg vs jwk alg", 1, "{\"alg\":\"RS256\",\"kid\":\"ec\","
		    "\"typ\":\"at+jwt\"}", GOOD_C, O2_INVALID,
		    "alg-key-mismatch" },
		{ "HS256 on oct", 0, "{\"alg\":\"HS256\",\"kid\":\"hs\","
		    "\"typ\":\"at+jwt\"}", GOOD_C, O2_INVALID, "alg-refused" },
		{ "none", 0, "{\"alg\":\"none\",\"typ\":\"at+jwt\"}", GOOD_C,
		    O2_INVALID, "alg-refused" },
		{ "kid", 0, "{\"alg\":\"EdDSA\",\"kid\":\"new\",\"typ\":"
		    "\"at+jwt\"}", GOOD_C, O2_INVALID, "unknown-kid" },
		{ "dup member", 0, "{\"alg\":\"EdDSA\",\"alg\":\"none\","
		    "\"kid\":\"ed\",\"typ\":\"at+jwt\"}", GOOD_C, O2_INVALID,
		    "bad-header" },
		{ "wrong key signed", 1, "{\"alg\":\"EdDSA\",\"kid\":\"ed\","
		    "\"typ\":\"at+jwt\"}", GOOD_C, O2_INVALID, "bad-signature" },
	};
	struct oauth2_conf oc = { .issuer = "https://idp", .audience = "smtp",
	    .required_scope = "mail.send", .user_claim = "email",
	    .scope_claim = "scope", .accepted_typ = "at+jwt", .clock_skew = 30 };
	struct oauth2_result res;
	struct oauth2_jwks *k;
	char err[256], *tok;
	size_t i;

	(void)state;
	k = oauth2_jwks_parse(jwks, strlen(jwks), err, sizeof(err));
	assert_non_null(k);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum oauth2_status st;

		tok = sign(cases[i].ec ? ecp : ed, cases[i].hdr,
		    cases[i].claims);
		st = oauth2_jwt_check(k, &oc, tok, strlen(tok), "a@b.c",
		    (time_t)NOW, &res);
		if (st != cases[i].want || strcmp(res.reason,
		    cases[i].reason) != 0)
			fail_msg("%s: got %d %s", cases[i].name, st, res.reason);
		if (st == O2_OK)
			assert_string_equal(res.user, i == 3 ? "A@B.C" :
			    "a@b.c");
	}
	/* tampering: one flipped signature bit, a swapped payload */
	tok = sign(ed, "{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":\"at+jwt\"}",
	    GOOD_C);
	tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(oauth2_jwt_check(k, &oc, tok, strlen(tok), "",
	    (time_t)NOW, &res), O2_INVALID);
	/* structure */
	assert_int_equal(oauth2_jwt_check(k, &oc, "a.b", 3, "", (time_t)NOW,
	    &res), O2_INVALID);
	assert_int_equal(oauth2_jwt_check(k, &oc, "a.b.c.d", 7, "",
	    (time_t)NOW, &res), O2_INVALID);
	assert_int_equal(oauth2_jwt_check(k, &oc, "..", 2, "", (time_t)NOW,
	    &res), O2_INVALID);
	oauth2_jwks_free(k);
}

static void
test_error_challenge(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(oauth2_error_challenge(OAUTH2_OAUTHBEARER, O2_SCOPE,
	    "mail.send", out, sizeof(out)), 0);
	/* {"status":"insufficient_scope","schemes":"Bearer","scope":"mail.send"} */
	assert_string_equal(out, "eyJzdGF0dXMiOiJpbnN1ZmZpY2llbnRfc2NvcGUiLC"
	    "JzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJtYWlsLnNlbmQifQ==");
	assert_int_equal(oauth2_error_challenge(OAUTH2_XOAUTH2, O2_INVALID,
	    NULL, out, sizeof(out)), 0);
	assert_string_equal(out,
	    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=");
	assert_int_equal(oauth2_error_challenge(OAUTH2_XOAUTH2, O2_INVALID,
	    NULL, out, 10), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_sasl_table),
		cmocka_unit_test(test_jwks_parse),
		cmocka_unit_test(test_jwt_table),
		cmocka_unit_test(test_error_challenge),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
