/*
 * dns/resolver — asynchronous MX and address resolution for delivery,
 * c-ares 1.18 driven by a libevent loop.
 *
 * One resolver belongs to one event loop and is used from that loop's
 * thread only.  c-ares tells us which sockets to watch through
 * ARES_OPT_SOCK_STATE_CB; each gets a libevent event that calls
 * ares_process_fd(), and one timer follows ares_timeout() so retries and
 * timeouts fire without polling.
 *
 * dns_route() answers "where do I connect to deliver mail for DOMAIN":
 * MX records sorted by preference (equal preferences shuffled, RFC 5321
 * 5.1), each host with its IPv4 and IPv6 addresses; no MX at all means
 * the domain itself is the implicit MX (A/AAAA fallback); a null MX
 * (RFC 7505: one MX of preference 0 with host ".") means the domain takes
 * no mail.  With DNS_F_HOST the name is looked up as a host (smarthost),
 * never as a mail domain.  A domain literal "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]" needs no DNS.
 *
 * Loop protection: addresses that are loopback, unspecified, or one of
 * this machine's interface addresses are dropped (mail to them would come
 * back to us) unless the resolver was created with allow_loopback (tests
 * run every server on 127.0.0.1).  If every address was dropped the
 * status is DNS_LOOP.
 *
 * Fails: every lookup ends with exactly one callback, on the loop, never
 * from inside dns_route() itself; its status says whether the failure is
 * permanent (bounce) or temporary (retry later), and why is a short,
 * plain-words text.
 */
#ifndef OUTPOST_DNS_RESOLVER_H
#define OUTPOST_DNS_RESOLVER_H

#include <netinet/in.h>
#include <stddef.h>

struct event_base;
struct dns_resolver;
struct dns_lookup;

#define DNS_MAX_HOSTS		20	/* MX hosts kept per domain */
#define DNS_MAX_ADDRS_PER_FAM	16	/* A or AAAA records kept per host */

enum dns_status {
	DNS_OK = 0,		/* at least one usable address */
	DNS_TEMPFAIL,		/* timeout, SERVFAIL, refused: try later */
	DNS_NXDOMAIN,		/* the domain does not exist: permanent */
	DNS_NULLMX,		/* RFC 7505: the domain accepts no mail */
	DNS_NOADDR,		/* MX hosts (or the host) have no address: permanent */
	DNS_LOOP,		/* every address is our own or loopback: permanent */
};

enum dns_family {
	DNS_FAM_ANY = 0,	/* IPv4 first, then IPv6 */
	DNS_FAM_IPV4,		/* IPv4 only */
	DNS_FAM_IPV6,		/* IPv6 only */
	DNS_FAM_PREFER6,	/* IPv6 first, then IPv4 */
};

struct dns_addr {
	int		 family;	/* AF_INET or AF_INET6 */
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	} u;
};

struct dns_host {
	char		 name[256];	/* MX host name (or the literal) */
	int		 pref;		/* MX preference; 0 for implicit */
	struct dns_addr	*addrs;
	size_t		 naddrs;
};

struct dns_route {
	enum dns_status	 status;
	char		 why[640];	/* for logs and DSNs when status != OK */
	int		 implicit;	/* no MX: the domain's own A/AAAA */
	struct dns_host	*hosts;		/* in the order to try */
	size_t		 nhosts;
};

struct dns_opts {
	const char	*servers;	/* "ADDR:PORT[,...]" or NULL: resolv.conf */
	int		 timeout_ms;	/* per try */
	int		 tries;
	int		 allow_loopback;
};

#define DNS_F_HOST	0x01		/* name is a host, not a mail domain */

/* The route and everything in it belong to the resolver and are valid
 * only during the callback. */
typedef void (*dns_route_cb)(void *arg, const struct dns_route *route);

/* Returns NULL with a message in err. */
struct dns_resolver *dns_new(struct event_base *base,
	    const struct dns_opts *opts, char *err, size_t errlen);
/* Cancels outstanding lookups without calling their callbacks. */
void	dns_free(struct dns_resolver *r);

/* Starts a lookup.  Returns a handle for dns_cancel(), or NULL when out
 * of memory (cb is then not called). */
struct dns_lookup *dns_route(struct dns_resolver *r, const char *name,
	    int flags, enum dns_family fam, dns_route_cb cb, void *arg);
/* The callback will not be called. */
void	dns_cancel(struct dns_lookup *l);

/* Formats an address ("192.0.2.1", "2001:db8::1") into buf. */
const char *dns_addr_str(const struct dns_addr *a, char *buf, size_t len);

/* Exposed for unit tests: 1 when a is loopback, unspecified or (with
 * check_local) an address of a local interface. */
int	dns_addr_is_self(const struct dns_addr *a, int check_local);
/* Sorts hosts by preference and shuffles runs of equal preference. */
void	dns_sort_hosts(struct dns_host *hosts, size_t n);
/* Parses "[1.2.3.4]" / "[IPv6:...]"; 0 on success. */
int	dns_parse_literal(const char *s, struct dns_addr *out);

#endif
