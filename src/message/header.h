/*
 * header — the header section of a submitted message (RFC 5322 2.2, 3.6):
 * split into fields, checked, and the address fields parsed.
 *
 * hdr_parse() takes the header section exactly as received (every line
 * ending in CRLF, without the empty line that ends the section) and
 * records where each field starts and ends; the bytes are not copied or
 * changed, so the message can later be stored byte for byte.  It refuses
 * (with a plain-words reason for the 550 reply): a line that is neither a
 * field ("Name: value") nor a continuation of one, an invalid field name,
 * 8-bit octets when the client did not use SMTPUTF8, invalid UTF-8 when it
 * did, more than HDR_MAX_FIELDS fields.
 *
 * hdr_addresses() parses the value of an address field (From, Sender,
 * Reply-To, To, Cc, Bcc) by RFC 5322 3.4 with the common obsolete forms
 * (comments anywhere, empty list elements, routes in angle addresses,
 * quoted local parts): strict enough to refuse what a receiving server
 * would call broken, lenient where real clients differ.
 *
 * Bounds: fields are counted (HDR_MAX_FIELDS), comments nest at most
 * HDR_MAX_NEST deep, an address is at most HDR_ADDR_MAX octets; the caller
 * bounds the section's size.
 */
#ifndef OUTPOST_MESSAGE_HEADER_H
#define OUTPOST_MESSAGE_HEADER_H

#include <stddef.h>

#define HDR_MAX_FIELDS	4096
#define HDR_MAX_NEST	32
#define HDR_ADDR_MAX	320	/* local (64) @ domain (255), with room */

struct hdr_field {
	size_t	 off;		/* start in the section */
	size_t	 len;		/* octets, with the final CRLF */
	size_t	 namelen;	/* the name, without whitespace before ':' */
	size_t	 valoff;	/* value start (after ':'), from off */
};

struct hdr_section {
	const char	 *buf;	/* not owned */
	size_t		  len;
	struct hdr_field *f;
	size_t		  n;
};

/* 0, or -1 with a reason in err (sentence, no code); ENOMEM also -1 with
 * err "out of memory".  utf8: the client used SMTPUTF8. */
int	hdr_parse(struct hdr_section *hs, const char *buf, size_t len,
	    int utf8, char *err, size_t errlen);
void	hdr_free(struct hdr_section *hs);

/* 1 when field i has this name (case-insensitive). */
int	hdr_is(const struct hdr_section *hs, size_t i, const char *name);
/* Number of fields with this name. */
size_t	hdr_count(const struct hdr_section *hs, const char *name);
/* Index of the first field with this name, or -1. */
long	hdr_find(const struct hdr_section *hs, const char *name);

enum hdr_kind {
	HDR_MAILBOX,		/* exactly one mailbox (Sender) */
	HDR_MAILBOX_LIST,	/* one or more mailboxes (From) */
	HDR_ADDRESS_LIST,	/* one or more addresses, groups allowed */
	HDR_ADDRESS_LIST_OPT,	/* zero or more (Bcc may be empty) */
};

struct hdr_mailbox {
	char	 addr[HDR_ADDR_MAX + 1];	/* local@domain, domain lowercased */
	size_t	 at;				/* index of the '@' */
};

/*
 * Parses an address field's value (the bytes after the colon, folding
 * included).  Stores the first max mailboxes into mb (may be NULL when
 * max is 0) and returns how many mailboxes the value holds (group
 * members included), or -1 with a reason in err.
 */
int	hdr_addresses(const char *val, size_t len, enum hdr_kind kind,
	    struct hdr_mailbox *mb, int max, char *err, size_t errlen);

#endif
