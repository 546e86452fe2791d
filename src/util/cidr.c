/*
 * cidr — parsing and matching of network lists (see cidr.h).
 * Owns nothing; every function is pure.  Failures: -1 and a message.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"

/* Text address to 16 bytes; *v4 says whether it was IPv4 (or mapped). */
static int
to16(const char *s, unsigned char out[16], int *v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		static const unsigned char pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
		    0, 0, 0xff, 0xff };
		*v4 = memcmp(out, pre, 12) == 0;
		return 0;
	}
	return -1;
}

static int
host_bits_clear(const unsigned char a[16], int bits)
{
	int i;

	for (i = bits; i < 128; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

static int
parse_one(const char *item, struct cidr *c, char *err, size_t errlen)
{
	char buf[80], *slash, *end;
	long bits;
	int v4;

	if (strlen(item) >= sizeof(buf)) {
		snprintf(err, errlen, "network too long: \"%.40s...\"", item);
		return -1;
	}
	memcpy(buf, item, strlen(item) + 1);	/* length checked above */
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (to16(buf, c->addr, &v4) != 0) {
		snprintf(err, errlen, "not an IP address: \"%s\"", item);
		return -1;
	}
	/* a literal ::ffff:a.b.c.d network counts as IPv6 notation */
	if (v4 && strchr(buf, ':') != NULL)
		v4 = 0;
	if (slash == NULL)
		bits = v4 ? 32 : 128;
	else {
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits < 0 ||
		    bits > (v4 ? 32 : 128)) {
			snprintf(err, errlen, "bad prefix length in \"%s\"",
			    item);
			return -1;
		}
	}
	c->bits = (int)bits + (v4 ? 96 : 0);
	if (!host_bits_clear(c->addr, c->bits)) {
		snprintf(err, errlen, "\"%s\" has host bits set (did you mean "
		    "the network address?)", item);
		return -1;
	}
	return 0;
}

int
cidr_parse_list(const char *s, struct cidr *out, int max, char *err,
    size_t errlen)
{
	char item[128];
	size_t n;
	int count = 0;

	if (s == NULL)
		return 0;
	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		n = strcspn(s, " \t,");
		if (n >= sizeof(item)) {
			snprintf(err, errlen, "network too long");
			return -1;
		}
		memcpy(item, s, n);
		item[n] = '\0';
		s += n;
		if (count >= max) {
			snprintf(err, errlen, "more than %d networks", max);
			return -1;
		}
		if (parse_one(item, &out[count], err, errlen) != 0)
			return -1;
		count++;
	}
	return count;
}

int
cidr_match(const struct cidr *list, int n, const char *ip)
{
	unsigned char a[16];
	int i, full, rest, v4;

	if (ip == NULL || to16(ip, a, &v4) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		full = list[i].bits / 8;
		rest = list[i].bits % 8;
		if (memcmp(a, list[i].addr, (size_t)full) != 0)
			continue;
		if (rest != 0 && ((a[full] ^ list[i].addr[full]) &
		    (0xff << (8 - rest)) & 0xff) != 0)
			continue;
		return 1;
	}
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char t[INET6_ADDRSTRLEN];
	static const unsigned char pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (c->bits >= 96 && memcmp(c->addr, pre, 12) == 0) {
		inet_ntop(AF_INET, c->addr + 12, t, sizeof(t));
		snprintf(buf, len, "%s/%d", t, c->bits - 96);
	} else {
		inet_ntop(AF_INET6, c->addr, t, sizeof(t));
		snprintf(buf, len, "%s/%d", t, c->bits);
	}
}
