/*
 * accounts_file — parser for the sender's accounts file and the provider
 * presets (see accounts_file.h for the format).
 *
 * The file is read line by line with getline() (no length limit, like
 * outpost.conf), each line bounded at ACCT_LINE_MAX to keep a corrupt
 * file from eating memory; values are trimmed; "~/" at the start of a
 * path is expanded with $HOME.  Errors name the file and line.  Owns only
 * the struct acct strings it fills.  Self-contained so that its unit test
 * can include it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/accounts_file.h"

#define ACCT_LINE_MAX	8192
#define ACCT_MAX	64		/* sections in one file */

static const struct acct_provider acct_providers[] = {
	{ "gmail",	  "smtp.gmail.com",	    587, ACCT_TLS_STARTTLS },
	{ "google",	  "smtp.gmail.com",	    587, ACCT_TLS_STARTTLS },
	{ "outlook",	  "smtp-mail.outlook.com",  587, ACCT_TLS_STARTTLS },
	{ "hotmail",	  "smtp-mail.outlook.com",  587, ACCT_TLS_STARTTLS },
	{ "office365",	  "smtp.office365.com",	    587, ACCT_TLS_STARTTLS },
	{ "microsoft365", "smtp.office365.com",	    587, ACCT_TLS_STARTTLS },
	{ "yahoo",	  "smtp.mail.yahoo.com",    465, ACCT_TLS_IMPLICIT },
	{ "icloud",	  "smtp.mail.me.com",	    587, ACCT_TLS_STARTTLS },
	{ "fastmail",	  "smtp.fastmail.com",	    465, ACCT_TLS_IMPLICIT },
	{ "zoho",	  "smtp.zoho.com",	    465, ACCT_TLS_IMPLICIT },
	{ "gmx",	  "mail.gmx.net",	    587, ACCT_TLS_STARTTLS },
	{ "aol",	  "smtp.aol.com",	    465, ACCT_TLS_IMPLICIT },
};

void
acct_init(struct acct *a)
{
	memset(a, 0, sizeof(*a));
	a->tls = ACCT_TLS_UNSET;
	a->tls_verify = 1;
}

void
acct_free(struct acct *a)
{
	char	**strs[] = { &a->name, &a->host, &a->user, &a->password_file,
		    &a->password_command, &a->oauth2_token_command,
		    &a->ca_file, &a->tls_servername, &a->from, &a->provider,
		    &a->helo, &a->qualify_domain, &a->oauth2_token_endpoint,
		    &a->oauth2_auth_endpoint, &a->oauth2_scope, &a->client_id,
		    &a->client_secret_file, &a->refresh_token_file };
	size_t	 i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	acct_init(a);
}

int
acct_set(char **dst, const char *v)
{
	char	*c = NULL;

	if (v != NULL && (c = strdup(v)) == NULL)
		return -1;
	free(*dst);
	*dst = c;
	return 0;
}

int
acct_file_path(char *buf, size_t len)
{
	const char	*x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int		 n;

	if (x != NULL && *x == '/')
		n = snprintf(buf, len, "%s/outpost/accounts", x);
	else if (h != NULL && *h != '\0')
		n = snprintf(buf, len, "%s/.config/outpost/accounts", h);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
acct_tls_parse(const char *s)
{
	if (strcasecmp(s, "starttls") == 0)
		return ACCT_TLS_STARTTLS;
	if (strcasecmp(s, "implicit") == 0 || strcasecmp(s, "tls") == 0 ||
	    strcasecmp(s, "ssl") == 0 || strcasecmp(s, "ssl/tls") == 0)
		return ACCT_TLS_IMPLICIT;
	if (strcasecmp(s, "none") == 0 || strcasecmp(s, "plain") == 0)
		return ACCT_TLS_NONE;
	return -1;
}

const char *
acct_tls_name(int tls)
{
	switch (tls) {
	case ACCT_TLS_NONE:	return "none";
	case ACCT_TLS_STARTTLS:	return "starttls";
	case ACCT_TLS_IMPLICIT:	return "implicit";
	}
	return "unset";
}

const struct acct_provider *
acct_provider_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(acct_providers) / sizeof(acct_providers[0]);
	    i++)
		if (strcasecmp(acct_providers[i].name, name) == 0)
			return &acct_providers[i];
	return NULL;
}

int
acct_finish(struct acct *a, char *err, size_t errlen)
{
	const struct acct_provider	*p;

	if (a->provider != NULL) {
		if ((p = acct_provider_find(a->provider)) == NULL) {
			snprintf(err, errlen, "unknown provider \"%.64s\" (known: "
			    "gmail, outlook, office365, yahoo, icloud, fastmail,"
			    " zoho, gmx, aol)", a->provider);
			return -1;
		}
		if (a->host == NULL && acct_set(&a->host, p->host) == -1)
			goto nomem;
		if (a->port == 0)
			a->port = p->port;
		if (a->tls == ACCT_TLS_UNSET)
			a->tls = p->tls;
		/* Google's OAuth2 endpoints and the SMTP scope */
		if (a->auth_oauth2 && strcasecmp(p->host, "smtp.gmail.com") ==
		    0 && ((a->oauth2_token_endpoint == NULL && acct_set(
		    &a->oauth2_token_endpoint,
		    "https://oauth2.googleapis.com/token") == -1) ||
		    (a->oauth2_auth_endpoint == NULL && acct_set(
		    &a->oauth2_auth_endpoint,
		    "https://accounts.google.com/o/oauth2/v2/auth") == -1) ||
		    (a->oauth2_scope == NULL && acct_set(&a->oauth2_scope,
		    "https://mail.google.com/") == -1)))
			goto nomem;
	}
	if (a->host == NULL || *a->host == '\0') {
		snprintf(err, errlen, "no server: give --host (or host = / "
		    "provider = in the accounts file)");
		return -1;
	}
	/* RFC 8314: 465 is TLS from the first byte; everything else
	 * (587, 25, test ports) speaks STARTTLS */
	if (a->tls == ACCT_TLS_UNSET)
		a->tls = a->port == 465 ? ACCT_TLS_IMPLICIT : ACCT_TLS_STARTTLS;
	if (a->port == 0)
		a->port = a->tls == ACCT_TLS_IMPLICIT ? 465 : 587;
	if (a->tls == ACCT_TLS_NONE && !a->insecure_plaintext) {
		snprintf(err, errlen, "tls = none sends your password and mail "
		    "in the clear; add --insecure-plaintext (or "
		    "insecure_plaintext = yes) if you really mean it");
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int
parse_bool(const char *v)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0)
		return 1;
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0)
		return 0;
	return -1;
}

/* "~/x" -> "$HOME/x" for path keys. */
static int
set_path(char **dst, const char *v)
{
	const char	*h = getenv("HOME");
	char		*p;
	size_t		 n;

	if (strncmp(v, "~/", 2) != 0 || h == NULL)
		return acct_set(dst, v);
	n = strlen(h) + strlen(v);
	if ((p = malloc(n)) == NULL)
		return -1;
	snprintf(p, n, "%s%s", h, v + 1);
	free(*dst);
	*dst = p;
	return 0;
}

/* Applies key = v to a.  Returns 0, -1 (bad value, message in err), -2
 * (unknown key). */
static int
acct_apply(struct acct *a, const char *k, const char *v, char *err,
    size_t errlen)
{
	char	*end;
	long	 n;
	int	 b, rc = 0;

	if (strcmp(k, "host") == 0)
		rc = acct_set(&a->host, v);
	else if (strcmp(k, "port") == 0) {
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || n < 1 || n > 65535) {
			snprintf(err, errlen, "port must be 1-65535");
			return -1;
		}
		a->port = (int)n;
	} else if (strcmp(k, "tls") == 0) {
		if ((a->tls = acct_tls_parse(v)) == -1) {
			a->tls = ACCT_TLS_UNSET;
			snprintf(err, errlen, "tls must be starttls, implicit "
			    "or none");
			return -1;
		}
	} else if (strcmp(k, "insecure_plaintext") == 0 ||
	    strcmp(k, "tls_verify") == 0) {
		if ((b = parse_bool(v)) == -1) {
			snprintf(err, errlen, "%s must be yes or no", k);
			return -1;
		}
		if (k[0] == 'i')
			a->insecure_plaintext = b;
		else
			a->tls_verify = b;
	} else if (strcmp(k, "user") == 0)
		rc = acct_set(&a->user, v);
	else if (strcmp(k, "password_file") == 0)
		rc = set_path(&a->password_file, v);
	else if (strcmp(k, "password_command") == 0 ||
	    strcmp(k, "passwordeval") == 0)
		rc = acct_set(&a->password_command, v);
	else if (strcmp(k, "oauth2_token_command") == 0)
		rc = acct_set(&a->oauth2_token_command, v);
	else if (strcmp(k, "auth") == 0) {
		if (strcasecmp(v, "oauth2") == 0)
			a->auth_oauth2 = 1;
		else if (strcasecmp(v, "password") == 0)
			a->auth_oauth2 = 0;
		else {
			snprintf(err, errlen, "auth must be password or oauth2");
			return -1;
		}
	} else if (strcmp(k, "oauth2_token_endpoint") == 0)
		rc = acct_set(&a->oauth2_token_endpoint, v);
	else if (strcmp(k, "oauth2_auth_endpoint") == 0)
		rc = acct_set(&a->oauth2_auth_endpoint, v);
	else if (strcmp(k, "oauth2_scope") == 0)
		rc = acct_set(&a->oauth2_scope, v);
	else if (strcmp(k, "client_id") == 0)
		rc = acct_set(&a->client_id, v);
	else if (strcmp(k, "client_secret_file") == 0)
		rc = set_path(&a->client_secret_file, v);
	else if (strcmp(k, "refresh_token_file") == 0)
		rc = set_path(&a->refresh_token_file, v);
	else if (strcmp(k, "ca_file") == 0)
		rc = set_path(&a->ca_file, v);
	else if (strcmp(k, "tls_servername") == 0)
		rc = acct_set(&a->tls_servername, v);
	else if (strcmp(k, "from") == 0)
		rc = acct_set(&a->from, v);
	else if (strcmp(k, "provider") == 0) {
		if (acct_provider_find(v) == NULL) {
			snprintf(err, errlen, "unknown provider \"%.64s\"", v);
			return -1;
		}
		rc = acct_set(&a->provider, v);
	} else if (strcmp(k, "helo") == 0)
		rc = acct_set(&a->helo, v);
	else if (strcmp(k, "qualify_domain") == 0)
		rc = acct_set(&a->qualify_domain, v);
	else if (strcmp(k, "password") == 0) {
		snprintf(err, errlen, "passwords are not kept in this file: "
		    "use password_file or password_command");
		return -1;
	} else
		return -2;
	if (rc == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
name_ok(const char *s)
{
	size_t	 i;

	if (*s == '\0' || strlen(s) > 64)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.@", s[i]) ==
		    NULL)
			return 0;
	return 1;
}

int
acct_file_load(const char *path, const char *want, struct acct *a,
    char *err, size_t errlen)
{
	FILE		*fp;
	char		*line = NULL, *l, *eq, *k, *v, *top_qualify = NULL;
	char		*dflt = NULL, *first = NULL;
	char		*seen[ACCT_MAX];
	char		 why[256];
	size_t		 cap = 0, nseen = 0, i;
	ssize_t		 len;
	int		 lineno = 0, rc = -1, in_want = 0, found = 0, nsect = 0;
	int		 r;

	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Pass 1 finds "default" and the first section, so that a file with
	 * one account needs no default line. */
	while ((len = getline(&line, &cap, fp)) != -1) {
		if (len > ACCT_LINE_MAX)
			continue;
		l = trim(line);
		if (*l == '[' && first == NULL) {
			l++;
			if ((eq = strchr(l, ']')) != NULL) {
				*eq = '\0';
				first = strdup(trim(l));
			}
			nsect++;
		} else if (*l == '[')
			nsect++;
		else if (nsect == 0 && (eq = strchr(l, '=')) != NULL) {
			*eq = '\0';
			if (strcmp(trim(l), "default") == 0) {
				free(dflt);
				dflt = strdup(trim(eq + 1));
			}
		}
	}
	if (want == NULL)
		want = dflt != NULL ? dflt : (nsect == 1 ? first : NULL);
	rewind(fp);

	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (len > ACCT_LINE_MAX) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			    lineno);
			goto out;
		}
		l = trim(line);
		if (*l == '\0' || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			if ((eq = strchr(l, ']')) == NULL || eq[1] != '\0') {
				snprintf(err, errlen, "%s:%d: a section is "
				    "written [NAME]", path, lineno);
				goto out;
			}
			*eq = '\0';
			k = trim(l + 1);
			if (!name_ok(k)) {
				snprintf(err, errlen, "%s:%d: bad account name "
				    "(letters, digits, - _ . @)", path, lineno);
				goto out;
			}
			for (i = 0; i < nseen; i++)
				if (strcmp(seen[i], k) == 0) {
					snprintf(err, errlen, "%s:%d: account "
					    "[%s] appears twice", path, lineno,
					    k);
					goto out;
				}
			if (nseen >= ACCT_MAX) {
				snprintf(err, errlen, "%s:%d: more than %d "
				    "accounts", path, lineno, ACCT_MAX);
				goto out;
			}
			if ((seen[nseen] = strdup(k)) == NULL)
				goto nomem;
			nseen++;
			in_want = want != NULL && strcmp(k, want) == 0;
			if (in_want) {
				found = 1;
				if (acct_set(&a->name, k) == -1)
					goto nomem;
			}
			continue;
		}
		if ((eq = strchr(l, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value",
			    path, lineno);
			goto out;
		}
		*eq = '\0';
		k = trim(l);
		v = trim(eq + 1);
		if (nseen == 0) {
			if (strcmp(k, "default") == 0)
				continue;
			if (strcmp(k, "qualify_domain") == 0) {
				free(top_qualify);
				if ((top_qualify = strdup(v)) == NULL)
					goto nomem;
				continue;
			}
			snprintf(err, errlen, "%s:%d: \"%.64s\" must be inside "
			    "an [account] section", path, lineno, k);
			goto out;
		}
		/* every section is checked, not only the one in use */
		{
			struct acct	 scratch;

			acct_init(&scratch);
			r = acct_apply(in_want ? a : &scratch, k, v, why,
			    sizeof(why));
			acct_free(&scratch);
		}
		if (r == -2) {
			snprintf(err, errlen, "%s:%d: unknown key \"%.64s\"",
			    path, lineno, k);
			goto out;
		}
		if (r == -1) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (!found) {
		if (want == NULL)
			snprintf(err, errlen, "%s: no account chosen: add "
			    "\"default = NAME\" at the top or pass -a NAME",
			    path);
		else
			snprintf(err, errlen, "%s: no account [%s]", path,
			    want);
		goto out;
	}
	if (a->qualify_domain == NULL && top_qualify != NULL &&
	    acct_set(&a->qualify_domain, top_qualify) == -1)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	free(line);
	free(dflt);
	free(first);
	free(top_qualify);
	fclose(fp);
	return rc;
}
