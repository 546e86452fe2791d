/*
 * outbox — the sender's durable outbox for messages that could not be
 * submitted because of a temporary failure (network down, 4xx, expired
 * token, bad password): `outpost sendmail` never loses a message.
 *
 * Location: $OUTPOST_OUTBOX, else $XDG_STATE_HOME/outpost/outbox, else
 * ~/.local/state/outpost/outbox; mode 0700, files 0600.
 *
 * Layout: ID.eml (the message as read), ID.env (the envelope: "account
 * NAME", "from ADDR", "rcpt ADDR"..., "created T", "attempts N",
 * "error TEXT"), tmp/ (messages being read).  An entry exists once its
 * .env is in place: .eml is written and fsync'd, renamed, then .env is
 * written, fsync'd and renamed, then the directory is fsync'd.  A
 * permanent failure renames ID.env to ID.failed (kept for `list`).
 * Flushes are serialised with flock() on .lock so two cron runs never
 * send one message twice.
 */
#ifndef OUTPOST_CLI_OUTBOX_H
#define OUTPOST_CLI_OUTBOX_H

#include <limits.h>
#include <stddef.h>

struct config;

struct outbox_tmp {
	int	 fd;
	char	 id[40];
	char	 dir[PATH_MAX / 2];
	char	 path[PATH_MAX];
};

int	outbox_dir(char *buf, size_t len);
/* Creates the outbox (0700) and a temporary message file.  Returns 0 or
 * -1 with a message in err. */
int	outbox_tmp_open(struct outbox_tmp *t, char *err, size_t errlen);
/* Makes the message an entry for rcpts (durable on return 0). */
int	outbox_commit(struct outbox_tmp *t, const char *account,
	    const char *from, char *const *rcpts, size_t nrcpts,
	    const char *why, char *err, size_t errlen);
/* Removes the temporary file and closes it. */
void	outbox_tmp_discard(struct outbox_tmp *t);

/* The account name of entries for the local outpostd's [local] socket
 * (sendmail without an accounts file); never a valid account name. */
#define OUTBOX_LOCAL	"@local"

/* Tries every entry once.  accounts_path: the accounts file.  Returns the
 * number of entries still waiting, or -1 on a local error; quiet: print
 * only failures.  OUTBOX_LOCAL entries go to the [local] socket of the
 * configuration conf (NULL: $OUTPOST_CONFIG, else the system one, see
 * cli_local_socket()) and wait while it is missing or refuses. */
int	outbox_flush(const char *accounts_path, int quiet);
int	outbox_flush_conf(const char *accounts_path, const char *conf,
	    int quiet);

/* `outpost outbox list|flush`. */
int	cli_outbox(int argc, char **argv, const struct config *cfg);

#endif
