/*
 * cli — the `outpost` command's subcommands.
 *
 * Each entry point gets the arguments after its own name (argv[0] is the
 * subcommand, e.g. "user") and the loaded configuration when the command
 * needs one (`-c FILE`, default ./outpost.conf, then
 * /etc/outpost/outpost.conf).  Exit codes follow sysexits.h: EX_USAGE for
 * bad arguments, EX_DATAERR for bad input (address), EX_NOUSER for an
 * unknown user, EX_CONFIG for a bad config, EX_SOFTWARE/EX_IOERR for
 * failures.  Errors are one line on stderr, "outpost: ..." in plain words.
 * Secrets are read from standard input, never from argv.
 */
#ifndef OUTPOST_CLI_H
#define OUTPOST_CLI_H

#include <stddef.h>

struct config;

int	cli_init(int argc, char **argv);		/* no config */
int	cli_user(int argc, char **argv, const struct config *cfg);
int	cli_queue(int argc, char **argv, const struct config *cfg);
int	cli_status(int argc, char **argv, const struct config *cfg);
/* Sender side (no config needed): send.c, sendmail.c, doctor.c, outbox.c */
int	cli_send(int argc, char **argv, const struct config *cfg);
int	cli_outbox(int argc, char **argv, const struct config *cfg);
int	cli_sendmail(int argc, char **argv, const struct config *cfg);
int	cli_doctor(int argc, char **argv, const struct config *cfg);
/* oauth2.c: outpost oauth2 authorize -a ACCOUNT */
int	cli_oauth2(int argc, char **argv, const struct config *cfg);
/* security.c */
int	cli_apppass(int argc, char **argv, const struct config *cfg);
int	cli_user_2fa(int argc, char **argv, const struct config *cfg);
int	cli_user_alias(int argc, char **argv, const struct config *cfg);
/* webadmin.c: user admin EMAIL on|off */
int	cli_user_admin(int argc, char **argv, const struct config *cfg);
/* what: "disable", "enable" or "release"; addr normalised */
int	cli_user_status(const struct config *cfg, const char *addr,
	    const char *what);
int	cli_dkim(int argc, char **argv, const struct config *cfg);
/* dnscheck.c: outpost dns check DOMAIN [--json] */
int	cli_dns(int argc, char **argv, const struct config *cfg);

/* Reads a password from stdin: one line (without its newline); when stdin
 * is a terminal, prompts twice without echo (confirm != 0).  Returns the
 * length, or -1 with a message on stderr.  buf is NUL-terminated. */
int	cli_read_password(const char *prompt, int confirm, char *buf,
	    size_t len);

#endif
