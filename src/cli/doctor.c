/*
 * doctor — `outpost doctor HOST[:PORT]`: walks a connection to an SMTP
 * submission server step by step and says, in plain words, what works,
 * what does not, the likely cause and the fix (DNS, TCP, security type
 * versus port, TLS and certificate, EHLO capabilities, AUTH).  `--json`
 * prints the same for scripts.
 *
 * Verdicts: ok, warn, FAIL, skip.  Exit status: EX_OK when nothing
 * failed, EX_UNAVAILABLE when a step failed, EX_USAGE / EX_CONFIG for bad
 * arguments.  The TCP step uses a plain non-blocking connect with its own
 * short timeout (a SYN that gets no answer looks like a firewall); the
 * later steps use the smtpc client.  Nothing is ever sent: with an
 * account the login is tried and the connection closed with QUIT.
 * Owns only its own memory; secrets are wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/accounts_file.h"
#include "cli/cli.h"
#include "cli/report.h"
#include "cli/client.h"
#include "cli/oauth2.h"
#include "tls/tls.h"

#define DOC_MAX_ADDRS	6
#define DOC_WARN_DAYS	14

struct doctor {
	int		 json;
	int		 failed;
	json_t		*steps;
};

static void
doc_step(struct doctor *d, const char *name, const char *verdict,
    const char *cause, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Records (and, without --json, prints) one step. */
static void
doc_step(struct doctor *d, const char *name, const char *verdict,
    const char *cause, const char *fix, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(verdict, "FAIL") == 0)
		d->failed = 1;
	cli_report_step(d->json, d->steps, name, verdict, msg, cause, "fix:",
	    fix);
}

/* "host", "host:port", "[v6]:port", "v6" into host/port. */
static int
parse_target(const char *t, char *host, size_t hlen, int *port)
{
	const char	*c, *e;
	long		 p;
	char		*end;

	if (t[0] == '[') {
		if ((e = strchr(t, ']')) == NULL || (size_t)(e - t - 1) >= hlen)
			return -1;
		memcpy(host, t + 1, (size_t)(e - t - 1));
		host[e - t - 1] = '\0';
		c = e[1] == ':' ? e + 1 : NULL;
		if (e[1] != '\0' && c == NULL)
			return -1;
	} else {
		c = strrchr(t, ':');
		if (c != NULL && strchr(t, ':') != c)
			c = NULL;	/* a bare IPv6 address */
		if ((c != NULL ? (size_t)(c - t) : strlen(t)) >= hlen)
			return -1;
		snprintf(host, hlen, "%.*s", c != NULL ? (int)(c - t) :
		    (int)strlen(t), t);
	}
	if (c != NULL) {
		p = strtol(c + 1, &end, 10);
		if (*end != '\0' || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return host[0] != '\0' ? 0 : -1;
}

static const char *
addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*a = sa->sa_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/* 0 connected, 1 refused, 2 timed out, 3 other (errno in *err). */
static int
tcp_probe(const struct sockaddr *sa, socklen_t salen, int secs, int *err)
{
	struct pollfd	 pfd;
	socklen_t	 el = sizeof(*err);
	int		 fd, rc;

	*err = 0;
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		*err = errno;
		return 3;
	}
	if (connect(fd, sa, salen) == 0) {
		close(fd);
		return 0;
	}
	if (errno != EINPROGRESS) {
		*err = errno;
		close(fd);
		return *err == ECONNREFUSED ? 1 : 3;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		rc = poll(&pfd, 1, secs * 1000);
	while (rc == -1 && errno == EINTR);
	if (rc == 0) {
		close(fd);
		return 2;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el) == -1)
		*err = errno;
	close(fd);
	if (*err == 0)
		return 0;
	return *err == ECONNREFUSED ? 1 : 3;
}

static const char *
tls_words(int tls)
{
	return tls == ACCT_TLS_IMPLICIT ? "SSL/TLS (implicit TLS)" :
	    tls == ACCT_TLS_STARTTLS ? "STARTTLS" : "none (plaintext)";
}

/* The certificate's DNS/IP names, for "it is for ...". */
static void
cert_names(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*g;
	char		 ip[64];
	int		 i, n;
	size_t		 used = 0;

	buf[0] = '\0';
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	n = sk_GENERAL_NAME_num(gens);
	for (i = 0; i < n && i < 8 && used + 2 < len; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS)
			used += (size_t)snprintf(buf + used, len - used, "%s%.*s",
			    used ? ", " : "", ASN1_STRING_length(g->d.dNSName) >
			    100 ? 100 : ASN1_STRING_length(g->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);

			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6,
				    ASN1_STRING_get0_data(g->d.iPAddress), ip,
				    sizeof(ip));
			else
				snprintf(ip, sizeof(ip), "?");
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
			    used ? ", " : "", ip);
		}
		if (used >= len)
			used = len - 1;
	}
	GENERAL_NAMES_free(gens);
}

static void
doc_tls(struct doctor *d, struct cli_conn *c, const char *name,
    const char *ca_file)
{
	SSL		*ssl = smtpc_ssl(c->s);
	X509		*peer;
	const char	*why = NULL;
	char		 names[512], desc[200], cause[700];
	int		 days = 0, secs = 0, v;
	long		 vr;

	if (ssl == NULL) {
		doc_step(d, "tls", "warn", "the connection is not encrypted",
		    "use STARTTLS on 587 or SSL/TLS on 465",
		    "no TLS: passwords and mail would travel in the clear");
		return;
	}
	tls_describe(ssl, desc, sizeof(desc));
	peer = SSL_get0_peer_certificate(ssl);
	v = smtpc_tls_verified(c->s, &why);
	vr = SSL_get_verify_result(ssl);
	names[0] = '\0';
	if (peer != NULL) {
		cert_names(peer, names, sizeof(names));
		ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(peer));
	}
	if (v == 1) {
		if (days < DOC_WARN_DAYS)
			doc_step(d, "tls", "warn", "the certificate expires "
			    "soon", "the server's operator must renew it",
			    "%s %s; certificate valid for %s, but it expires "
			    "in %d day(s)", tls_version_name(ssl), desc, name,
			    days);
		else
			doc_step(d, "tls", "ok", NULL, NULL, "%s; certificate "
			    "valid for %s, expires in %d days", desc, name,
			    days);
		return;
	}
	if (vr == X509_V_ERR_CERT_HAS_EXPIRED)
		doc_step(d, "tls", "FAIL", "the server's certificate has "
		    "expired", "the server's operator must renew it; until "
		    "then clients refuse to connect", "%s; certificate expired "
		    "%d day(s) ago", desc, -days);
	else if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
	    vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		snprintf(cause, sizeof(cause), "the certificate is not for "
		    "\"%s\" (it is for: %s)", name, names[0] ? names : "?");
		doc_step(d, "tls", "FAIL", cause, "connect by the name on the "
		    "certificate (or give it with --tls-servername)",
		    "%s; certificate name mismatch", desc);
	} else {
		snprintf(cause, sizeof(cause), "the certificate is not signed "
		    "by a certificate authority you trust (%s)", why != NULL ?
		    why : "?");
		doc_step(d, "tls", "FAIL", cause, ca_file != NULL ?
		    "check that --ca-file is the CA that signed the server's "
		    "certificate" : "for a private CA give it with --ca-file; "
		    "otherwise the server needs a certificate from a public "
		    "CA", "%s; certificate not trusted", desc);
	}
}

static void
doc_ehlo(struct doctor *d, struct cli_conn *c)
{
	const struct smtpc_caps	*k = smtpc_caps(c->s);
	char			 buf[800];
	size_t			 n = 0;

	if (!(k->flags & SMTPC_CAP_ESMTP)) {
		doc_step(d, "ehlo", "warn", "the server does not speak ESMTP",
		    NULL, "EHLO refused; HELO accepted");
		return;
	}
#define CAP(f, s) do { if (k->flags & (f)) n += (size_t)snprintf(buf + n, \
	sizeof(buf) - n, "%s%s", n ? ", " : "", s); } while (0)
	buf[0] = '\0';
	if (k->flags & SMTPC_CAP_AUTH)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "AUTH %s",
		    k->auth_list);
	if (k->flags & SMTPC_CAP_SIZE)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sSIZE %llu",
		    n ? ", " : "", (unsigned long long)k->size);
	CAP(SMTPC_CAP_PIPELINING, "PIPELINING");
	CAP(SMTPC_CAP_8BITMIME, "8BITMIME");
	CAP(SMTPC_CAP_SMTPUTF8, "SMTPUTF8");
	CAP(SMTPC_CAP_DSN, "DSN");
	CAP(SMTPC_CAP_CHUNKING, "CHUNKING");
	CAP(SMTPC_CAP_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES");
	CAP(SMTPC_CAP_STARTTLS, "STARTTLS");
#undef CAP
	if (!(k->flags & SMTPC_CAP_AUTH))
		doc_step(d, "ehlo", "warn", "the server does not offer AUTH "
		    "here, so you cannot log in", smtpc_ssl(c->s) == NULL ?
		    "use TLS (servers offer AUTH only after it)" :
		    "this is probably not a submission server (port 25 is for"
		    " servers; clients use 587 or 465)", "%s: %s",
		    k->domain, buf);
	else
		doc_step(d, "ehlo", "ok", NULL, NULL, "%s: %s", k->domain, buf);
}

static void
doc_auth(struct doctor *d, struct cli_conn *c, const struct acct *a)
{
	char	 secret[CLI_SECRET_MAX], err[512], line[SMTPC_TEXT_MAX + 32];
	int	 is_token = 0, have;

	if (a->user == NULL) {
		doc_step(d, "auth", "skip", NULL, NULL, "no account given "
		    "(-a ACCOUNT or --user with --password-file)");
		return;
	}
	have = cli_secret(a, secret, sizeof(secret), &is_token, err,
	    sizeof(err));
	if (have != 1) {
		doc_step(d, "auth", "FAIL", have == 0 ? "no password" : err,
		    "give --password-file, --password-command or set "
		    "OUTPOST_PASSWORD", "cannot try to log in as %s", a->user);
		return;
	}
	cli_conn_auth(c, a->user, secret, is_token);
	smtpc_status_format(&c->st, line, sizeof(line));
	if (is_token && c->st.result != SMTPC_OK && c->st.code == 535) {
		/* OAuth2: the server's JSON and the token's claims say why */
		cli_oauth2_diagnose(secret, a->user, line, err, sizeof(err));
		explicit_bzero(secret, sizeof(secret));
		doc_step(d, "auth", "FAIL", err, "get a valid token for this "
		    "account (outpost oauth2 authorize -a ACCOUNT, or fix "
		    "oauth2_token_command)", "server said: %s", line);
		return;
	}
	explicit_bzero(secret, sizeof(secret));
	if (c->st.result == SMTPC_OK)
		doc_step(d, "auth", "ok", NULL, NULL, "logged in as %s "
		    "(nothing was sent)", a->user);
	else if (c->st.code == 535)
		doc_step(d, "auth", "FAIL", "wrong password -- or your account "
		    "has two-factor authentication and needs an app password",
		    "check the user name (the full address) and the password; "
		    "if 2-step verification is on, make an app password and "
		    "use it", "server said: %s", line);
	else if (c->st.code == 534)
		doc_step(d, "auth", "FAIL", "this account requires an app "
		    "password (two-factor authentication is on)", "make an app "
		    "password on the account page and use it instead of your "
		    "regular password", "server said: %s", line);
	else if (c->st.code == 454)
		doc_step(d, "auth", "FAIL", "too many failed logins from here "
		    "or for this account", "wait a while, then try again with "
		    "the right password", "server said: %s", line);
	else
		doc_step(d, "auth", "FAIL", c->st.err == SMTPC_E_NOAUTH ?
		    "no way to log in on this connection" : NULL, NULL,
		    "%s", line);
}

static const char doctor_usage[] =
"usage: outpost doctor [HOST[:PORT]] [-a ACCOUNT] [--tls starttls|implicit|none]\n"
"           [--user U --password-file F | --password-command CMD]\n"
"           [--ca-file F] [--tls-servername N] [--connect-timeout S]\n"
"           [--timeout S] [--accounts FILE] [--json]\n";

enum { D_TLS = 256, D_USER, D_PWFILE, D_PWCMD, D_TOKCMD, D_CA, D_SNI,
    D_CTO, D_TO, D_JSON, D_ACCOUNTS };

static const struct option doctor_opts[] = {
	{ "account",		required_argument, NULL, 'a' },
	{ "accounts",		required_argument, NULL, D_ACCOUNTS },
	{ "tls",		required_argument, NULL, D_TLS },
	{ "user",		required_argument, NULL, D_USER },
	{ "password-file",	required_argument, NULL, D_PWFILE },
	{ "password-command",	required_argument, NULL, D_PWCMD },
	{ "oauth2-token-command", required_argument, NULL, D_TOKCMD },
	{ "ca-file",		required_argument, NULL, D_CA },
	{ "tls-servername",	required_argument, NULL, D_SNI },
	{ "connect-timeout",	required_argument, NULL, D_CTO },
	{ "timeout",		required_argument, NULL, D_TO },
	{ "json",		no_argument,	   NULL, D_JSON },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
cli_doctor(int argc, char **argv, const struct config *cfg)
{
	struct doctor		 d = { 0, 0, NULL };
	struct acct		 a;
	struct addrinfo		 hints, *res = NULL, *ai, *good = NULL;
	struct cli_conn		 c = { 0 }, c2 = { 0 }, *cur = &c;
	struct cli_conn_opts	 o;
	char			 host[256], portstr[16], list[512], ab[64];
	char			 apath[4096], err[1024], cause[512], fix[512];
	const char		*account = NULL, *accounts = NULL, *name;
	int			 ch, port = 0, tls = ACCT_TLS_UNSET, ctimeout = 5;
	int			 timeout = 10, gai, n, pr, e, rc, other;
	size_t			 used;

	(void)cfg;
	signal(SIGPIPE, SIG_IGN);
	acct_init(&a);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "a:h", doctor_opts, NULL)) != -1) {
		switch (ch) {
		case 'a': account = optarg; break;
		case D_ACCOUNTS: accounts = optarg; break;
		case D_TLS:
			if ((tls = acct_tls_parse(optarg)) == -1) {
				fprintf(stderr, "outpost: --tls must be "
				    "starttls, implicit or none\n");
				rc = EX_USAGE;
				goto out;
			}
			break;
		case D_USER: acct_set(&a.user, optarg); break;
		case D_PWFILE: acct_set(&a.password_file, optarg); break;
		case D_PWCMD: acct_set(&a.password_command, optarg); break;
		case D_TOKCMD: acct_set(&a.oauth2_token_command, optarg); break;
		case D_CA: acct_set(&a.ca_file, optarg); break;
		case D_SNI: acct_set(&a.tls_servername, optarg); break;
		case D_CTO:
		case D_TO:
			n = atoi(optarg);
			if (n < 1 || n > 600) {
				fprintf(stderr, "outpost: timeouts are 1-600 "
				    "seconds\n");
				rc = EX_USAGE;
				goto out;
			}
			*(ch == D_CTO ? &ctimeout : &timeout) = n;
			break;
		case D_JSON: d.json = 1; break;
		case 'h':
			fputs(doctor_usage, stdout);
			rc = EX_OK;
			goto out;
		default:
			fputs(doctor_usage, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (account != NULL) {
		struct acct	 f;

		if (accounts == NULL && acct_file_path(apath, sizeof(apath))
		    == 0)
			accounts = apath;
		acct_init(&f);
		n = accounts != NULL ? acct_file_load(accounts, account, &f,
		    err, sizeof(err)) : 1;
		if (n != 0) {
			fprintf(stderr, "outpost: %s\n", n == 1 ?
			    "no accounts file" : err);
			acct_free(&f);
			rc = EX_CONFIG;
			goto out;
		}
		/* command-line options win over the account's */
#define KEEP(x) do { if (a.x == NULL) { a.x = f.x; f.x = NULL; } } while (0)
		KEEP(user); KEEP(password_file); KEEP(password_command);
		KEEP(oauth2_token_command); KEEP(ca_file); KEEP(tls_servername);
		KEEP(host); KEEP(provider); KEEP(helo);
#undef KEEP
		if (tls == ACCT_TLS_UNSET)
			tls = f.tls;
		port = f.port;
		acct_free(&f);
	}
	if (optind < argc) {
		if (optind + 1 < argc || parse_target(argv[optind], host,
		    sizeof(host), &port) == -1) {
			fputs(doctor_usage, stderr);
			rc = EX_USAGE;
			goto out;
		}
		acct_set(&a.host, host);
		acct_set(&a.provider, NULL);
	}
	a.port = port;
	a.tls = tls;
	a.insecure_plaintext = 1;	/* the doctor sends no mail */
	if (acct_finish(&a, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		fputs(doctor_usage, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (d.json && (d.steps = json_array()) == NULL) {
		rc = EX_SOFTWARE;
		goto out;
	}
	name = a.tls_servername != NULL ? a.tls_servername : a.host;
	if (!d.json)
		printf("Checking %s port %d, security %s\n", a.host, a.port,
		    tls_words(a.tls));

	/* 1. DNS */
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", a.port);
	if ((gai = getaddrinfo(a.host, portstr, &hints, &res)) != 0) {
		doc_step(&d, "dns", "FAIL", "the name does not resolve: a typo "
		    "in the server name, or no network/DNS", "check the "
		    "server name (Gmail's is smtp.gmail.com) and your network",
		    "%s: %s", a.host, gai_strerror(gai));
		goto done;
	}
	list[0] = '\0';
	used = 0;
	for (ai = res, n = 0; ai != NULL && n < DOC_MAX_ADDRS; ai = ai->ai_next,
	    n++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
		    "%s%s", used ? ", " : "", addr_str(ai->ai_addr, ab,
		    sizeof(ab)));
	doc_step(&d, "dns", "ok", NULL, NULL, "%s resolves to %s", a.host,
	    list);

	/* 2. TCP, to each address */
	for (ai = res, n = 0; ai != NULL && n < DOC_MAX_ADDRS; ai = ai->ai_next,
	    n++) {
		pr = tcp_probe(ai->ai_addr, ai->ai_addrlen, ctimeout, &e);
		addr_str(ai->ai_addr, ab, sizeof(ab));
		other = a.port == 465 ? 587 : 465;
		if (pr == 0) {
			doc_step(&d, "tcp", "ok", NULL, NULL, "%s port %d "
			    "accepts connections", ab, a.port);
			if (good == NULL)
				good = ai;
		} else if (pr == 1) {
			snprintf(fix, sizeof(fix), "check the port (submission "
			    "is 587 with STARTTLS or 465 with SSL/TLS) and that "
			    "the server runs");
			doc_step(&d, "tcp", "FAIL", "nothing listens there "
			    "(connection refused)", fix, "%s port %d refused "
			    "the connection", ab, a.port);
		} else if (pr == 2) {
			snprintf(fix, sizeof(fix), "try port %d, or another "
			    "network (a phone hotspot tells you quickly)",
			    other);
			doc_step(&d, "tcp", "FAIL", "the port is probably "
			    "blocked by a firewall on your network or "
			    "provider", fix, "%s port %d: no answer within %d s "
			    "(connection timed out)", ab, a.port, ctimeout);
		} else
			doc_step(&d, "tcp", "FAIL", "no route to the server",
			    "check your network connection", "%s port %d: %s",
			    ab, a.port, strerror(e));
	}
	if (good == NULL)
		goto done;

	/* 3. security type versus port */
	memset(&o, 0, sizeof(o));
	o.tls = a.tls;
	o.verify = SMTPC_VERIFY_OPPORTUNISTIC;
	o.ca_file = a.ca_file;
	o.tls_name = name;
	o.helo = a.helo;
	o.connect_timeout = ctimeout;
	o.timeout = timeout;
	o.allow_plain_auth = 0;
	rc = cli_conn_open(&c, &o, good->ai_addr, good->ai_addrlen);
	if (rc == SMTPC_OK) {
		doc_step(&d, "security", "ok", NULL, NULL, "%s works on port "
		    "%d", tls_words(a.tls), a.port);
	} else if (a.tls != ACCT_TLS_IMPLICIT && (c.st.step ==
	    SMTPC_STEP_GREETING || c.st.err == SMTPC_E_GREETING_TLS)) {
		/* no greeting in plaintext: maybe TLS from the first byte */
		o.tls = ACCT_TLS_IMPLICIT;
		if (cli_conn_open(&c2, &o, good->ai_addr, good->ai_addrlen) ==
		    SMTPC_OK) {
			snprintf(cause, sizeof(cause), "port %d expects SSL/TLS "
			    "from the start (implicit TLS, like 465), but the "
			    "setting is %s", a.port, tls_words(a.tls));
			doc_step(&d, "security", "FAIL", cause, "set the "
			    "security type to SSL/TLS (implicit TLS) for this "
			    "port, or use port 587 with STARTTLS",
			    "no greeting in plaintext; a TLS handshake works");
			cur = &c2;
			a.tls = ACCT_TLS_IMPLICIT;
		} else {
			cli_conn_close(&c2);
			doc_step(&d, "security", "FAIL", "the server accepted "
			    "the connection but never greeted", "the server "
			    "may be overloaded or not an SMTP server; try "
			    "again later", "%s", c.st.text);
			goto done;
		}
	} else if (a.tls == ACCT_TLS_IMPLICIT && c.st.err ==
	    SMTPC_E_TLS_PLAINTEXT) {
		o.tls = ACCT_TLS_STARTTLS;
		if (cli_conn_open(&c2, &o, good->ai_addr, good->ai_addrlen) ==
		    SMTPC_OK) {
			snprintf(cause, sizeof(cause), "port %d uses STARTTLS "
			    "(a plaintext greeting, then TLS), but the setting "
			    "is SSL/TLS", a.port);
			doc_step(&d, "security", "FAIL", cause, "set the "
			    "security type to STARTTLS for this port, or use "
			    "port 465 with SSL/TLS", "the server greets in "
			    "plaintext; STARTTLS works");
			cur = &c2;
			a.tls = ACCT_TLS_STARTTLS;
		} else {
			cli_conn_close(&c2);
			doc_step(&d, "security", "FAIL", "the server speaks "
			    "neither SSL/TLS nor STARTTLS here", NULL, "%s",
			    c.st.text);
			goto done;
		}
	} else if (c.st.err == SMTPC_E_NOSTARTTLS) {
		doc_step(&d, "security", "FAIL", "the server does not offer "
		    "STARTTLS on this port", "use port 465 with SSL/TLS, or "
		    "ask the operator to enable STARTTLS", "%s", c.st.text);
		goto done;
	} else {
		char	 line[SMTPC_TEXT_MAX + 32];

		smtpc_status_format(&c.st, line, sizeof(line));
		doc_step(&d, "security", "FAIL", c.st.err == SMTPC_E_TLS ?
		    "the TLS handshake failed" : NULL, c.st.err ==
		    SMTPC_E_TLS ? "the server's TLS setup is broken, or "
		    "something on the path intercepts TLS" : NULL,
		    "at the %s: %s", smtpc_step_name(c.st.step), line);
		goto done;
	}

	/* 4. TLS, 5. EHLO, 6. AUTH */
	doc_tls(&d, cur, name, a.ca_file);
	doc_ehlo(&d, cur);
	doc_auth(&d, cur, &a);
done:
	cli_conn_close(&c);
	cli_conn_close(&c2);
	if (res != NULL)
		freeaddrinfo(res);
	if (d.json) {
		json_t	*root = json_pack("{s:s, s:i, s:s, s:b, s:O}", "host",
		    a.host, "port", a.port, "security", acct_tls_name(a.tls),
		    "ok", !d.failed, "steps", d.steps);

		if (root != NULL) {
			json_dumpf(root, stdout, JSON_INDENT(2));
			putchar('\n');
			json_decref(root);
		}
	} else
		printf("%s\n", d.failed ? "Result: problems found (see FAIL "
		    "above)" : "Result: everything checked works");
	rc = d.failed ? EX_UNAVAILABLE : EX_OK;
out:
	if (d.steps != NULL)
		json_decref(d.steps);
	acct_free(&a);
	return rc;
}
