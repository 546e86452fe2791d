/*
 * oauth2 — bearer tokens for SMTP AUTH: SASL XOAUTH2 and OAUTHBEARER
 * (RFC 7628) decoding, JWT access token validation (RFC 7519 / RFC 9068)
 * against a JWKS (file or URL), and RFC 7662 token introspection.
 *
 * struct oauth2 is the verifier: shared by every authpool thread (one
 * mutex guards the key set and the introspection cache).  oauth2_verify()
 * is blocking (signature checks cost CPU; a JWKS refresh or an
 * introspection is an HTTP call with a bounded timeout): call it on an
 * authpool thread, never on an event loop.
 *
 * Everything that comes from a client or a provider is hostile: every
 * length and count is bounded; algorithms are picked by the key, never by
 * the token alone (alg=none, HMAC and alg/kty mismatches are refused);
 * unknown crit headers are refused.
 */
#ifndef OUTPOST_OAUTH2_H
#define OUTPOST_OAUTH2_H

#include <stddef.h>
#include <time.h>

struct config;
struct oauth2;

#define OAUTH2_TOKEN_MAX	9216	/* decoded AUTH line (12288 * 3/4) */
#define OAUTH2_USER_MAX		1024
#define OAUTH2_JWKS_MAX		(256 * 1024)	/* JWKS document, bytes */
#define OAUTH2_KEYS_MAX		64		/* keys kept from one JWKS */
#define OAUTH2_REFRESH_MIN	60		/* seconds between JWKS refreshes */

/* SASL mechanisms */
enum oauth2_mech {
	OAUTH2_XOAUTH2 = 1,
	OAUTH2_OAUTHBEARER = 2,
};

struct oauth2_sasl {
	char	 user[OAUTH2_USER_MAX + 1];	/* "" when not given */
	char	 token[OAUTH2_TOKEN_MAX + 1];
	size_t	 tokenlen;
};

/*
 * Decodes the (already base64-decoded) client response.  XOAUTH2:
 * "user=U^Aauth=Bearer T^A^A".  OAUTHBEARER: GS2 header "n,a=U," (or
 * "n,,"/"y,,"; "p=" channel binding is refused), then ^A-separated
 * key=value pairs with auth=Bearer T, then ^A.  Returns 0 or -1.
 */
int	oauth2_sasl_decode(enum oauth2_mech mech, const unsigned char *buf,
	    size_t len, struct oauth2_sasl *out);

/* Outcome of a token check. */
enum oauth2_status {
	O2_OK = 0,
	O2_INVALID = 1,		/* invalid_token: signature, exp, iss, ... */
	O2_SCOPE = 2,		/* insufficient_scope */
	O2_TEMPFAIL = 3,	/* provider unreachable, out of memory */
};

struct oauth2_result {
	enum oauth2_status status;
	char	 user[256];	/* the user claim's value on O2_OK */
	char	 reason[128];	/* for the log: "expired", "bad-signature" */
	int	 unknown_kid;	/* JWT with a kid not in the key set */
	long long exp;		/* token expiry (0 unknown) */
};

/* The settings oauth2_new() copies from struct config. */
struct oauth2_conf {
	const char *issuer, *audience;
	const char *jwks_file, *jwks_url;
	const char *introspection_url, *introspection_credentials;
	const char *required_scope, *user_claim, *scope_claim, *accepted_typ;
	int	 clock_skew;
};

/* 1 when cfg turns OAuth2 on (a key set or an introspection endpoint). */
int	oauth2_configured(const struct config *cfg);
void	oauth2_conf_from_config(struct oauth2_conf *oc, const struct config *cfg);

/* Loads the JWKS file (or fetches the URL once; a failing URL is retried
 * later), reads the introspection credentials.  NULL with err set. */
struct oauth2 *oauth2_new(const struct oauth2_conf *oc, char *err,
	    size_t errlen);
void	oauth2_free(struct oauth2 *o);

/*
 * Checks token for the SASL user (may be "" for OAUTHBEARER without
 * a=).  Blocking; thread-safe.  On O2_OK res->user is the user claim,
 * equal (case-insensitively) to sasl_user when that was given.
 */
enum oauth2_status oauth2_verify(struct oauth2 *o, const char *token,
	    size_t len, const char *sasl_user, time_t now,
	    struct oauth2_result *res);

/*
 * The JSON of the failure challenge, base64 into out: OAUTHBEARER
 * {"status":"invalid_token","scope":S,"schemes":"Bearer"} (RFC 7628
 * 3.2.2), XOAUTH2 Gmail's {"status":"401","schemes":"Bearer","scope":S}.
 * Returns 0 or -1.
 */
int	oauth2_error_challenge(enum oauth2_mech mech, enum oauth2_status st,
	    const char *scope, char *out, size_t outlen);

/* ---- lower layers, exposed for the unit tests and the client ---- */

/* base64url without padding (RFC 7515 2); -1 on any other byte. */
long	oauth2_b64url_decode(const char *in, size_t inlen,
	    unsigned char *out, size_t outlen);
long	oauth2_b64url_encode(const unsigned char *in, size_t inlen,
	    char *out, size_t outlen);

struct oauth2_jwks;
/* Parses a JWKS document; keys it cannot use are skipped.  NULL on a
 * malformed document (reason in err). */
struct oauth2_jwks *oauth2_jwks_parse(const char *json, size_t len,
	    char *err, size_t errlen);
void	oauth2_jwks_free(struct oauth2_jwks *k);
size_t	oauth2_jwks_count(const struct oauth2_jwks *k);

/* Checks a JWT against keys and oc (no account, no refresh). */
enum oauth2_status oauth2_jwt_check(const struct oauth2_jwks *keys,
	    const struct oauth2_conf *oc, const char *token, size_t len,
	    const char *sasl_user, time_t now, struct oauth2_result *res);

#endif
