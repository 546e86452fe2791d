/*
 * cidr — client network lists ("192.0.2.0/24, 2001:db8::/32, 127.0.0.1")
 * for [listener NAME] trusted_networks.
 *
 * Matching is on 16-byte addresses: IPv4 is held as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so an IPv4 network matches an IPv4 client whether it
 * arrived on an IPv4 socket or as a mapped address on a dual-stack one,
 * and never matches a native IPv6 client.  A bare address is a /32 or
 * /128.  Host bits set below the prefix are an error (a typo check).
 */
#ifndef OUTPOST_CIDR_H
#define OUTPOST_CIDR_H

#include <stddef.h>

#define CIDR_MAX	64	/* networks per list */

struct cidr {
	unsigned char	 addr[16];
	int		 bits;		/* 0..128, over the 16-byte form */
};

/* Parses a comma- or blank-separated list.  Returns the count (0..max),
 * or -1 with a message in err naming the bad item. */
int	cidr_parse_list(const char *s, struct cidr *out, int max, char *err,
	    size_t errlen);
/* 1 when ip (text, v4 / v6 / v4-mapped) is in one of the n networks. */
int	cidr_match(const struct cidr *list, int n, const char *ip);
/* The network of list[i] as text, "192.0.2.0/24". */
void	cidr_format(const struct cidr *c, char *buf, size_t len);

#endif
