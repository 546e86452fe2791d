/*
 * msgfilter — what a submitted message goes through between the SMTP
 * reader and the spool: header hygiene and DKIM.
 *
 * The session feeds it the content (dot-unstuffed, CRLF) as it arrives.
 * The header section is buffered (at most max_header octets) until the
 * empty line that ends it; from then on the body streams straight to the
 * body sink (the spool) and through the incremental DKIM body hash, so a
 * large body is never held in memory.
 *
 * At the end of the content msgfilter_end() checks the header section
 * (one From with valid addresses, a Sender when From has several, address
 * fields parse, no 8-bit without SMTPUTF8, ...) and prepares the final
 * header block; msgfilter_header() then builds it — the trace field, an
 * added Message-ID and Date when missing, and the original fields minus
 * Bcc, byte for byte — and may run on any thread.
 *
 * DKIM: msgfilter decides whether the message is signed and computes the
 * body hash while the body streams by; the signatures themselves are made
 * at delivery (delivery/dkimpool), from the stored header section and
 * this body hash, so the RSA signature is not on the path to the "250"
 * and a key rotated by a reload applies to mail still queued.
 * Which mail is signed: only when the client authenticated (auth_user is
 * set), a From: address is the login or the envelope sender (which the
 * session's sender rules checked against the login and its aliases), and
 * that address's domain has keys in the key set; otherwise the message
 * goes unsigned and msgfilter_end() logs why, keyed by the queue id.
 */
#ifndef OUTPOST_MESSAGE_MSGFILTER_H
#define OUTPOST_MESSAGE_MSGFILTER_H

#include <stddef.h>

struct dkim_keyset;
struct msgfilter;

#define MSGFILTER_MAX_HEADER	(1024 * 1024)

struct msgfilter_opts {
	const char	*qid;		/* for log lines and Message-ID */
	const char	*hostname;	/* Message-ID right-hand side */
	const char	*auth_user;	/* NULL when not authenticated */
	const char	*mail_from;	/* envelope sender */
	int		 smtputf8;	/* MAIL ... SMTPUTF8 */
	size_t		 max_header;	/* 0: MSGFILTER_MAX_HEADER */
	struct dkim_keyset *keys;	/* reference taken over; may be NULL */
	/*
	 * Sender rule for the From: header (the envelope's is checked at
	 * MAIL): when from_owned is set, every From: address must pass it.
	 * Otherwise the message is refused with 553 5.7.1 or, with
	 * from_rewrite (Gmail's behaviour), the From: field becomes the
	 * login and the original field's value is kept in rewrite_header.
	 */
	int		(*from_owned)(void *ctx, const char *addr);
	void		*from_ctx;
	int		 from_rewrite;
	const char	*rewrite_header;	/* NULL: "X-Original-From" */
	/* where body octets go; returns 0 or -1 */
	int		(*body)(void *ctx, const char *buf, size_t len);
	void		*body_ctx;
};

/* NULL when out of memory (o->keys is then released). */
struct msgfilter *msgfilter_new(const struct msgfilter_opts *o);
void	msgfilter_free(struct msgfilter *f);

/* The trace (Received:) field to put at the top, with its CRLF.  0/-1. */
int	msgfilter_set_trace(struct msgfilter *f, const char *buf, size_t len);

/* Content octets.  Returns 0, or -1 when the body sink failed (sticky). */
int	msgfilter_feed(struct msgfilter *f, const char *buf, size_t len);

/*
 * The content is complete.  Returns 0 when the message is acceptable, or
 * the SMTP reply code to refuse it with (550 bad header, 552 header too
 * large, 451 out of memory), the enhanced code in esc and the text in
 * text.
 */
int	msgfilter_end(struct msgfilter *f, char esc[16], char *text,
	    size_t textlen);

/*
 * After msgfilter_end() returned 0: the final header block (ending with
 * the empty line when the message had one) in *out (malloc'd).  It is
 * not signed: the signatures are made at delivery (msgfilter_dkim()
 * says whether and with which domain).  Returns 0, or -1 with errno
 * ENOMEM.
 */
int	msgfilter_header(struct msgfilter *f, char **out, size_t *outlen);

/* Number of keys the message is to be signed with (after _end). */
int	msgfilter_nsig(const struct msgfilter *f);

/*
 * After msgfilter_end(): 1 when the message is to be DKIM-signed, with
 * the signing domain (lowercase; valid while f lives) in *domain and the
 * body hash (relaxed, SHA-256) in bh; else 0.
 */
int	msgfilter_dkim(const struct msgfilter *f, const char **domain,
	    unsigned char bh[32]);

#endif
