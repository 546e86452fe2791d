/*
 * outpost — the command for operators and senders: global options, the
 * subcommand table and dispatch.
 *
 *   outpost [-c FILE] COMMAND [ARGS...]
 *
 * Owns only the loaded configuration, which it frees after the subcommand
 * returns.  Subcommands that need a configuration get it loaded from -c
 * FILE, else ./outpost.conf when present, else /etc/outpost/outpost.conf;
 * a file that does not load ends the command with its "FILE:LINE: ..."
 * message and EX_CONFIG.  Exit codes are sysexits(3) values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/config.h"
#include "util/log.h"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "0.0.0"
#endif

#define DEFAULT_LOCAL_CONF	"./outpost.conf"
#define DEFAULT_SYSTEM_CONF	"/etc/outpost/outpost.conf"

static int	cmd_init(int, char **, const struct config *);

/* To add a subcommand: one line here, with a one-line summary for help. */
static const struct outpost_cmd {
	const char	*name;
	int		 needs_config;
	int		(*run)(int argc, char **argv, const struct config *cfg);
	const char	*summary;
} commands[] = {
	{ "init", 0, cmd_init,
	    "write a working setup (config, TLS, DKIM keys) into DIR" },
	{ "user", 1, cli_user,
	    "manage accounts: add|del|passwd|list|show|disable|enable|release|2fa|alias" },
	{ "apppass", 1, cli_apppass,
	    "app passwords: add EMAIL LABEL | list EMAIL | revoke EMAIL LABEL" },
	{ "queue", 1, cli_queue,
	    "inspect the queue: list|show|flush|delete|hold|release" },
	{ "status", 1, cli_status,
	    "delivery status: queue counts, oldest message, deferrals" },
	{ "send", 0, cli_send,
	    "submit a message (stdin) to an SMTP server or account" },
	{ "outbox", 0, cli_outbox,
	    "messages waiting to be sent again: list|flush" },
	{ "sendmail", 0, cli_sendmail,
	    "sendmail(8)-compatible submission: [-t] [-i] [-f FROM] [RCPT...]" },
	{ "doctor", 0, cli_doctor,
	    "diagnose a server step by step: HOST[:PORT]" },
	{ "oauth2", 0, cli_oauth2,
	    "OAuth2 for an account: authorize -a ACCOUNT (PKCE, loopback redirect)" },
	{ "dkim", 1, cli_dkim,
	    "DKIM keys and DNS records: keygen DOMAIN|list|show DOMAIN" },
	{ "dns", 1, cli_dns,
	    "check a domain's DNS: check DOMAIN (PTR, SPF, DKIM, DMARC)" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int
cmd_init(int argc, char **argv, const struct config *cfg)
{
	(void)cfg;
	return cli_init(argc, argv);
}

static void
usage(FILE *fp)
{
	size_t	 i;

	fprintf(fp,
	    "usage: outpost [-c FILE] COMMAND [ARGS...]\n"
	    "\n"
	    "Options:\n"
	    "  -c FILE      configuration (default: " DEFAULT_LOCAL_CONF
	    " if present,\n"
	    "               else " DEFAULT_SYSTEM_CONF ")\n"
	    "  --version    print the version\n"
	    "  --help       this text\n"
	    "\n"
	    "Commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-8s %s\n", commands[i].name,
		    commands[i].summary);
	fprintf(fp, "  %-8s %s\n", "help", "this text");
	fprintf(fp, "\nRun 'outpost COMMAND --help' for a command's options.\n");
}

static const struct outpost_cmd *
find_command(const char *name)
{
	size_t	 i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct outpost_cmd *cmd;
	const char	*conf = NULL, *arg;
	struct config	 cfg;
	char		 err[1024];
	int		 i, rc;

	/* Library code logs through log.h; the CLI wants only problems,
	 * on stderr, never syslog. */
	log_init("outpost", LOGL_WARN, 0);

	/* Installed as (or linked to) "sendmail": cron, PHP's mail() and
	 * mailx call it with sendmail's options. */
	if (argc > 0 && argv[0] != NULL) {
		const char	*base = strrchr(argv[0], '/');

		base = base != NULL ? base + 1 : argv[0];
		if (strcmp(base, "sendmail") == 0)
			return cli_sendmail(argc, argv, NULL);
	}

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (arg[0] != '-')
			break;
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "outpost: %s needs a file name\n",
				    arg);
				return EX_USAGE;
			}
			conf = argv[++i];
		} else if (strncmp(arg, "-c", 2) == 0)
			conf = arg + 2;
		else if (strncmp(arg, "--config=", 9) == 0)
			conf = arg + 9;
		else if (strcmp(arg, "--version") == 0 ||
		    strcmp(arg, "-V") == 0) {
			printf("outpost %s\n", OUTPOST_VERSION);
			return EX_OK;
		} else if (strcmp(arg, "--help") == 0 ||
		    strcmp(arg, "-h") == 0) {
			usage(stdout);
			return EX_OK;
		} else {
			fprintf(stderr, "outpost: unknown option \"%s\"; run "
			    "'outpost help' for the list\n", arg);
			return EX_USAGE;
		}
	}
	if (conf != NULL && *conf == '\0') {
		fprintf(stderr, "outpost: -c needs a file name\n");
		return EX_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return EX_OK;
	}
	if ((cmd = find_command(argv[i])) == NULL) {
		fprintf(stderr, "outpost: unknown command \"%.64s\"; run "
		    "'outpost help' for the list\n", argv[i]);
		return EX_USAGE;
	}

	if (!cmd->needs_config)
		return cmd->run(argc - i, argv + i, NULL);

	if (conf == NULL)
		conf = access(DEFAULT_LOCAL_CONF, F_OK) == 0 ?
		    DEFAULT_LOCAL_CONF : DEFAULT_SYSTEM_CONF;
	if (config_load(&cfg, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		if (access(conf, F_OK) != 0)
			fprintf(stderr, "outpost: no configuration at %s; "
			    "pass -c FILE, or create one with "
			    "'outpost init DIR'\n", conf);
		return EX_CONFIG;
	}
	rc = cmd->run(argc - i, argv + i, &cfg);
	config_free(&cfg);
	return rc;
}
