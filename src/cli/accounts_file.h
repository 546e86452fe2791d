/*
 * accounts_file — the sender's accounts file for `outpost send`,
 * `outpost sendmail` and `outpost doctor -a`:
 * $XDG_CONFIG_HOME/outpost/accounts (default ~/.config/outpost/accounts).
 *
 *   # comment
 *   default = work
 *   qualify_domain = example.org      (optional; for bare recipients)
 *
 *   [work]
 *   provider = gmail                  (fills host, port and tls)
 *   user = alice@example.org
 *   password_command = pass show mail/work
 *   from = alice@example.org
 *
 *   [home]
 *   host = mail.example.net
 *   port = 465
 *   tls = implicit                    (starttls | implicit | none)
 *   user = me@example.net
 *   password_file = ~/.config/outpost/home.pass
 *   ca_file = /etc/ssl/private-ca.pem
 *   tls_servername = mail.example.net
 *
 * Keys per account: host, port, tls, user, password_file,
 * password_command, oauth2_token_command, ca_file, tls_servername, from,
 * provider, helo, qualify_domain, insecure_plaintext (yes/no; needed for
 * tls = none), tls_verify (yes/no, default yes); auth = oauth2 with
 * oauth2_token_command, or oauth2_token_endpoint, oauth2_auth_endpoint,
 * oauth2_scope, client_id, client_secret_file, refresh_token_file (the
 * gmail preset fills the endpoints and scope).  A password itself is
 * never stored in this file.  Unknown keys and sections that repeat are
 * errors with FILE:LINE, like outpost.conf.
 *
 * Presets (provider = NAME): gmail, google (smtp.gmail.com 587 STARTTLS),
 * outlook / hotmail (smtp-mail.outlook.com 587 STARTTLS), office365 /
 * microsoft365 (smtp.office365.com 587 STARTTLS), yahoo
 * (smtp.mail.yahoo.com 465 TLS), icloud (smtp.mail.me.com 587 STARTTLS),
 * fastmail (smtp.fastmail.com 465 TLS), zoho (smtp.zoho.com 465 TLS), gmx
 * (mail.gmx.net 587 STARTTLS), aol (smtp.aol.com 465 TLS).  Explicit keys
 * win over the preset.
 *
 * Ownership: every string in struct acct is heap memory freed by
 * acct_free().  No globals.
 */
#ifndef OUTPOST_CLI_ACCOUNTS_FILE_H
#define OUTPOST_CLI_ACCOUNTS_FILE_H

#include <stddef.h>

enum acct_tls {
	ACCT_TLS_UNSET = -1,
	ACCT_TLS_NONE = 0,
	ACCT_TLS_STARTTLS = 1,
	ACCT_TLS_IMPLICIT = 2,
};

struct acct {
	char	*name;
	char	*host;
	int	 port;			/* 0 = by tls: 465 implicit, else 587 */
	int	 tls;			/* enum acct_tls */
	int	 insecure_plaintext;
	int	 tls_verify;		/* 1 = verify (default) */
	char	*user;
	char	*password_file;
	char	*password_command;
	char	*oauth2_token_command;
	char	*ca_file;
	char	*tls_servername;
	char	*from;
	char	*provider;
	char	*helo;
	char	*qualify_domain;
	/* auth = oauth2: the built-in refresh-token grant (cli/oauth2.c) */
	int	 auth_oauth2;
	char	*oauth2_token_endpoint;
	char	*oauth2_auth_endpoint;
	char	*oauth2_scope;
	char	*client_id;
	char	*client_secret_file;
	char	*refresh_token_file;
};

struct acct_provider {
	const char	*name;
	const char	*host;
	int		 port;
	int		 tls;
};

void	acct_init(struct acct *a);
void	acct_free(struct acct *a);

/* The file's path into buf: $XDG_CONFIG_HOME/outpost/accounts, else
 * $HOME/.config/outpost/accounts.  Returns 0, or -1 when neither is set
 * or buf is too small. */
int	acct_file_path(char *buf, size_t len);

/*
 * Loads account NAME (NULL = the file's "default", else the only
 * account) from path into a (which must be acct_init()ed).  The file's
 * top-level qualify_domain is copied into a->qualify_domain unless the
 * account sets its own.  Returns 0; 1 when the file does not exist (a
 * untouched); -1 with "FILE:LINE: message" (or a plain message) in err.
 */
int	acct_file_load(const char *path, const char *name, struct acct *a,
	    char *err, size_t errlen);

/* Parses "starttls|implicit|ssl|tls|none" into ACCT_TLS_*, or -1. */
int	acct_tls_parse(const char *s);
const char *acct_tls_name(int tls);

/* The preset for name (case-insensitive), or NULL. */
const struct acct_provider *acct_provider_find(const char *name);

/* Fills what is still unset from the provider preset, then the defaults
 * (tls from the port: 465 implicit, else STARTTLS; port from tls).
 * Returns 0, or -1 with a message (unknown provider, no host, tls = none
 * without insecure_plaintext). */
int	acct_finish(struct acct *a, char *err, size_t errlen);

/* Replaces *dst with a copy of v (NULL clears).  Returns 0 or -1. */
int	acct_set(char **dst, const char *v);

#endif
