/*
 * message — reading a message for `outpost send` and `outpost sendmail`
 * from standard input into a file, sendmail(8)-style: the header is
 * parsed (bounded: MSG_HEADER_MAX octets, MSG_RCPT_MAX recipients), To /
 * Cc / Bcc addresses are collected for -t, Bcc is removed, From / Date /
 * Message-ID are added when missing, and without -i a line holding a
 * single "." ends the input.  LF line ends become CRLF on the way out
 * (smtpc), so the file keeps the caller's bytes otherwise.
 */
#ifndef OUTPOST_CLI_MESSAGE_H
#define OUTPOST_CLI_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MSG_HEADER_MAX	(1024 * 1024)
#define MSG_RCPT_MAX	1000
#define MSG_ADDR_MAX	256

struct msg_rcpts {
	char	**v;
	size_t	 n;
};

struct msg_opts {
	int		 dot_ends;	/* no -i: "." alone ends the input */
	int		 collect;	/* -t: take To, Cc, Bcc */
	const char	*from_header;	/* "Name <addr>" to add when missing */
	const char	*msgid_domain;	/* for Message-ID when missing */
	/* extra headers to put first (built messages), or NULL */
	const char	*prepend;
	/* set: a From/To/Cc/Reply-To/Sender field holding one bare name
	 * ("root", "alice (Cron Daemon)") becomes NAME@qualify, as a
	 * sendmail does; other fields are left alone */
	const char	*qualify;
};

/* Copies in to out with the header changes above.  Collected addresses
 * are appended to rcpts (bare, without qualification).  *size gets the
 * octets written.  Returns 0, or -1 with a message in err (header too
 * long, too many recipients, I/O error). */
int	msg_copy(FILE *in, int outfd, const struct msg_opts *o,
	    struct msg_rcpts *rcpts, uint64_t *size, char *err, size_t errlen);

/* Parses an RFC 5322 address list ("A <a@x>, b@y (c), g: c@z;") and
 * appends each address to rcpts.  Returns 0 or -1 (too many / too long /
 * out of memory). */
int	msg_addr_list(const char *s, size_t len, struct msg_rcpts *rcpts);

/* Appends a copy of addr; with qualify != NULL, an address without '@'
 * gets "@qualify".  Returns 0 or -1. */
int	msg_rcpt_add(struct msg_rcpts *r, const char *addr, size_t len,
	    const char *qualify);
void	msg_rcpts_free(struct msg_rcpts *r);

#endif
