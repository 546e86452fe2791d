/*
 * cli/oauth2 — OAuth2 for senders (`auth = oauth2` accounts): the
 * refresh-token grant with a 0600 access-token cache (see oauth2.c).
 */
#ifndef OUTPOST_CLI_OAUTH2_H
#define OUTPOST_CLI_OAUTH2_H

#include <stddef.h>
#include <jansson.h>

struct acct;

/* An access token for a into buf (cached, or refreshed).  Returns 1, or
 * -1 with a message in err (what the endpoint said, e.g. invalid_grant). */
int	cli_oauth2_token(const struct acct *a, char *buf, size_t len,
	    char *err, size_t errlen);

/* POSTs an urlencoded form; the JSON object answer into *out (caller
 * decrefs).  Returns the HTTP status, or -1 with err set. */
long	cli_oauth2_post(const char *url, const char *form, json_t **out,
	    char *err, size_t errlen);
/* For outpost doctor: why the server refused token for user, from the
 * server's text (with its decoded JSON error) and the token's own claims
 * (read, not verified): expired, another user, missing scope... */
void	cli_oauth2_diagnose(const char *token, const char *user,
	    const char *server_text, char *out, size_t outlen);
/* Explains an OAuth2 error answer ("invalid_grant: ...") into err. */
void	cli_oauth2_explain(json_t *j, long code, char *err, size_t errlen);

#endif
