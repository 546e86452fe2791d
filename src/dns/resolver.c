/*
 * dns/resolver — c-ares on a libevent loop: MX lookup, sorting, fallback
 * to A/AAAA, null MX, loop protection.  See resolver.h for the contract.
 *
 * Owns: the c-ares channel, one libevent event per socket c-ares asked
 * us to watch (at most RES_MAX_SOCKS), one timer, every dns_lookup in
 * flight.  A lookup is freed when its last query has answered; a
 * cancelled lookup stays allocated (with cb cleared) until then, so a
 * c-ares callback never touches freed memory.
 * Fails: c-ares errors become DNS_TEMPFAIL except NXDOMAIN (permanent);
 * out of memory during a lookup is a temporary failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <sodium.h>

#include "dns/resolver.h"
#include "util/log.h"

#define RES_MAX_SOCKS	64
#define RES_MAX_LOCAL	64		/* interface addresses remembered */

struct res_sock {
	ares_socket_t	 fd;
	struct event	*ev;
	short		 what;
};

struct dns_resolver {
	struct event_base *base;
	ares_channel	 chan;
	int		 chan_ok;
	struct event	*timer;
	struct res_sock	 socks[RES_MAX_SOCKS];
	int		 allow_loopback;
	struct dns_addr	 local[RES_MAX_LOCAL];
	size_t		 nlocal;
	struct dns_lookup *lookups;	/* all in flight */
	int		 processing;	/* inside ares_process_fd */
};

struct dns_lookup {
	struct dns_resolver *r;
	struct dns_lookup *next;
	dns_route_cb	 cb;		/* NULL once cancelled */
	void		*arg;
	int		 flags;
	enum dns_family	 fam;
	char		 name[256];
	int		 pending;	/* c-ares queries outstanding */
	int		 done;		/* MX stage finished */
	struct dns_route route;
	int		 tempfail;	/* an address query failed temporarily */
	int		 dropped;	/* addresses dropped by the loop check */
	int		 in_start;	/* inside dns_route(): answer later */
	char		 tmpwhy[400];
	struct event	*immediate;	/* literal answers and early failures */
};

struct addr_query {
	struct dns_lookup *l;
	size_t		 host;
	int		 family;
};

static void	res_timer_update(struct dns_resolver *r);
static void	lookup_order(struct dns_lookup *l);

/* ---- small helpers ---- */

const char *
dns_addr_str(const struct dns_addr *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, a->family == AF_INET ? (const void *)&a->u.v4 :
	    (const void *)&a->u.v6, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

static int
addr_eq(const struct dns_addr *a, const struct dns_addr *b)
{
	if (a->family != b->family)
		return 0;
	return a->family == AF_INET ? a->u.v4.s_addr == b->u.v4.s_addr :
	    memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

static int
addr_is_loop(const struct dns_addr *a)
{
	if (a->family == AF_INET) {
		uint32_t v = ntohl(a->u.v4.s_addr);

		return (v >> 24) == 127 || v == 0;
	}
	if (IN6_IS_ADDR_LOOPBACK(&a->u.v6) || IN6_IS_ADDR_UNSPECIFIED(&a->u.v6))
		return 1;
	if (IN6_IS_ADDR_V4MAPPED(&a->u.v6)) {
		struct dns_addr m = { .family = AF_INET };

		memcpy(&m.u.v4, &a->u.v6.s6_addr[12], 4);
		return addr_is_loop(&m);
	}
	return 0;
}

static void
local_addrs_load(struct dns_resolver *r)
{
	struct ifaddrs *ifa, *p;

	if (getifaddrs(&ifa) != 0)
		return;
	for (p = ifa; p != NULL && r->nlocal < RES_MAX_LOCAL; p = p->ifa_next) {
		struct dns_addr *a = &r->local[r->nlocal];

		if (p->ifa_addr == NULL)
			continue;
		if (p->ifa_addr->sa_family == AF_INET) {
			a->family = AF_INET;
			a->u.v4 = ((struct sockaddr_in *)(void *)p->ifa_addr)->sin_addr;
		} else if (p->ifa_addr->sa_family == AF_INET6) {
			a->family = AF_INET6;
			a->u.v6 = ((struct sockaddr_in6 *)(void *)p->ifa_addr)->sin6_addr;
		} else
			continue;
		if (!addr_is_loop(a))
			r->nlocal++;
	}
	freeifaddrs(ifa);
}

int
dns_addr_is_self(const struct dns_addr *a, int check_local)
{
	(void)check_local;
	return addr_is_loop(a);
}

static int
res_addr_is_self(const struct dns_resolver *r, const struct dns_addr *a)
{
	size_t i;

	if (addr_is_loop(a))
		return 1;
	for (i = 0; i < r->nlocal; i++)
		if (addr_eq(a, &r->local[i]))
			return 1;
	return 0;
}

static int
host_cmp(const void *a, const void *b)
{
	const struct dns_host *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

void
dns_sort_hosts(struct dns_host *hosts, size_t n)
{
	size_t i, j, k;

	qsort(hosts, n, sizeof(*hosts), host_cmp);
	/* RFC 5321 5.1: spread load over MX hosts of equal preference. */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && hosts[j].pref == hosts[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t s = i + randombytes_uniform((uint32_t)(k - i + 1));
			struct dns_host t;

			if (s == k)
				continue;
			t = hosts[k];
			hosts[k] = hosts[s];
			hosts[s] = t;
		}
	}
}

int
dns_parse_literal(const char *s, struct dns_addr *out)
{
	char buf[64];
	size_t n = strlen(s);

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(buf))
		return -1;
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	memset(out, 0, sizeof(*out));
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		out->family = AF_INET6;
		return inet_pton(AF_INET6, buf + 5, &out->u.v6) == 1 ? 0 : -1;
	}
	out->family = AF_INET;
	return inet_pton(AF_INET, buf, &out->u.v4) == 1 ? 0 : -1;
}

/* ---- c-ares <-> libevent ---- */

static void
res_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	r->processing++;
	ares_process_fd(r->chan, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	r->processing--;
	res_timer_update(r);
}

static void
res_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	(void)fd;
	(void)what;
	r->processing++;
	ares_process_fd(r->chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	r->processing--;
	res_timer_update(r);
}

static void
res_timer_update(struct dns_resolver *r)
{
	struct timeval tv, *tvp;

	if (!r->chan_ok || r->timer == NULL)
		return;
	tvp = ares_timeout(r->chan, NULL, &tv);
	if (tvp == NULL)
		evtimer_del(r->timer);
	else
		evtimer_add(r->timer, tvp);
}

static void
res_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct res_sock *s = NULL, *fr = NULL;
	short what = (short)((readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0));
	int i;

	for (i = 0; i < RES_MAX_SOCKS; i++) {
		if (r->socks[i].ev != NULL && r->socks[i].fd == fd) {
			s = &r->socks[i];
			break;
		}
		if (r->socks[i].ev == NULL && fr == NULL)
			fr = &r->socks[i];
	}
	if (what == 0) {
		if (s != NULL) {
			event_free(s->ev);
			s->ev = NULL;
		}
		return;
	}
	if (s == NULL) {
		if (fr == NULL) {
			/* c-ares then times the query out: a temporary failure. */
			log_err("dns: more than %d resolver sockets", RES_MAX_SOCKS);
			return;
		}
		s = fr;
		s->fd = fd;
	} else if (s->what == what)
		return;
	else {
		event_free(s->ev);
		s->ev = NULL;
	}
	s->what = what;
	if ((s->ev = event_new(r->base, fd, what | EV_PERSIST, res_on_sock,
	    r)) == NULL || event_add(s->ev, NULL) != 0) {
		log_err("dns: cannot watch a resolver socket");
		if (s->ev != NULL)
			event_free(s->ev);
		s->ev = NULL;
	}
}

struct dns_resolver *
dns_new(struct event_base *base, const struct dns_opts *o, char *err,
    size_t errlen)
{
	struct ares_options ao;
	struct dns_resolver *r;
	int rc, mask;
	static int lib_ok;

	if (!lib_ok) {
		if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
			return NULL;
		}
		lib_ok = 1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->base = base;
	r->allow_loopback = o->allow_loopback;
	memset(&ao, 0, sizeof(ao));
	ao.sock_state_cb = res_sock_state;
	ao.sock_state_cb_data = r;
	ao.timeout = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	ao.tries = o->tries > 0 ? o->tries : 3;
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
	ao.ednspsz = 1232;
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ;
	if ((rc = ares_init_options(&r->chan, &ao, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	r->chan_ok = 1;
	if (o->servers != NULL &&
	    (rc = ares_set_servers_ports_csv(r->chan, o->servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: cannot use DNS server %s: %s",
		    o->servers, ares_strerror(rc));
		dns_free(r);
		return NULL;
	}
	if ((r->timer = evtimer_new(base, res_on_timer, r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		dns_free(r);
		return NULL;
	}
	local_addrs_load(r);
	return r;
}

static void lookup_free(struct dns_lookup *l);

void
dns_free(struct dns_resolver *r)
{
	int i;

	if (r == NULL)
		return;
	/* Every lookup's callback is cleared first: ares_destroy() answers
	 * the queries with ARES_EDESTRUCTION. */
	for (struct dns_lookup *l = r->lookups; l != NULL; l = l->next)
		l->cb = NULL;
	if (r->chan_ok)
		ares_destroy(r->chan);
	r->chan_ok = 0;
	while (r->lookups != NULL)
		lookup_free(r->lookups);
	for (i = 0; i < RES_MAX_SOCKS; i++)
		if (r->socks[i].ev != NULL)
			event_free(r->socks[i].ev);
	if (r->timer != NULL)
		event_free(r->timer);
	free(r);
}

/* ---- lookups ---- */

static void
lookup_free(struct dns_lookup *l)
{
	struct dns_lookup **pp;
	size_t i;

	for (pp = &l->r->lookups; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	for (i = 0; i < l->route.nhosts; i++)
		free(l->route.hosts[i].addrs);
	free(l->route.hosts);
	if (l->immediate != NULL)
		event_free(l->immediate);
	free(l);
}

/* Answers and frees l; from the loop when still inside dns_route(). */
static void
lookup_finish(struct dns_lookup *l)
{
	if (l->in_start) {
		event_active(l->immediate, 0, 0);
		return;
	}
	if (l->cb != NULL)
		l->cb(l->arg, &l->route);
	lookup_free(l);
}

static void
lookup_fail(struct dns_lookup *l, enum dns_status st, const char *fmt,
    const char *s)
{
	l->route.status = st;
	snprintf(l->route.why, sizeof(l->route.why), fmt, s);
}

/* All address queries are back: decide the status. */
static void
lookup_addrs_done(struct dns_lookup *l)
{
	struct dns_route *rt = &l->route;
	size_t i, total = 0;

	lookup_order(l);
	for (i = 0; i < rt->nhosts; i++)
		total += rt->hosts[i].naddrs;
	if (total > 0)
		rt->status = DNS_OK;
	else if (l->tempfail)
		lookup_fail(l, DNS_TEMPFAIL, "%s", l->tmpwhy[0] ? l->tmpwhy :
		    "temporary DNS failure");
	else if (l->dropped)
		lookup_fail(l, DNS_LOOP, "mail for %s loops back to myself",
		    l->name);
	else if (l->flags & DNS_F_HOST)
		lookup_fail(l, DNS_NOADDR, "Host %s has no address record",
		    l->name);
	else if (rt->implicit)
		lookup_fail(l, DNS_NOADDR, "Domain %s has no MX or address "
		    "record", l->name);
	else
		lookup_fail(l, DNS_NOADDR, "No MX host of %s has an address "
		    "(MX points nowhere)", l->name);
	lookup_finish(l);
}

static void
query_addr_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct addr_query *q = arg;
	struct dns_lookup *l = q->l;
	struct dns_host *h;
	int i, n = DNS_MAX_ADDRS_PER_FAM;

	(void)timeouts;
	h = &l->route.hosts[q->host];
	if (status == ARES_SUCCESS && q->family == AF_INET) {
		struct ares_addrttl at[DNS_MAX_ADDRS_PER_FAM];

		if (ares_parse_a_reply(abuf, alen, NULL, at, &n) != ARES_SUCCESS)
			n = 0;
		for (i = 0; i < n; i++) {
			struct dns_addr a = { .family = AF_INET };

			a.u.v4 = at[i].ipaddr;
			if (!(l->flags & DNS_F_HOST) && !l->r->allow_loopback &&
			    res_addr_is_self(l->r, &a)) {
				l->dropped++;
				continue;
			}
			h->addrs[h->naddrs++] = a;
		}
	} else if (status == ARES_SUCCESS) {
		struct ares_addr6ttl at[DNS_MAX_ADDRS_PER_FAM];

		if (ares_parse_aaaa_reply(abuf, alen, NULL, at, &n) != ARES_SUCCESS)
			n = 0;
		for (i = 0; i < n; i++) {
			struct dns_addr a = { .family = AF_INET6 };

			memcpy(&a.u.v6, &at[i].ip6addr, sizeof(a.u.v6));
			if (!(l->flags & DNS_F_HOST) && !l->r->allow_loopback &&
			    res_addr_is_self(l->r, &a)) {
				l->dropped++;
				continue;
			}
			h->addrs[h->naddrs++] = a;
		}
	} else if (status != ARES_ENOTFOUND && status != ARES_ENODATA &&
	    status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
		l->tempfail = 1;
		snprintf(l->tmpwhy, sizeof(l->tmpwhy), "DNS lookup of %s "
		    "(%s) failed: %s", h->name, q->family == AF_INET ? "A" :
		    "AAAA", ares_strerror(status));
	}
	free(q);
	if (--l->pending == 0) {
		if (status == ARES_EDESTRUCTION)
			l->cb = NULL;
		lookup_addrs_done(l);
	}
}

/* Sorts each host's addresses by family preference. */
static void
host_order_addrs(struct dns_host *h, enum dns_family fam)
{
	struct dns_addr tmp[2 * DNS_MAX_ADDRS_PER_FAM];
	size_t i, n = 0;
	int first = fam == DNS_FAM_PREFER6 ? AF_INET6 : AF_INET;

	for (i = 0; i < h->naddrs; i++)
		if (h->addrs[i].family == first)
			tmp[n++] = h->addrs[i];
	for (i = 0; i < h->naddrs; i++)
		if (h->addrs[i].family != first)
			tmp[n++] = h->addrs[i];
	memcpy(h->addrs, tmp, n * sizeof(*tmp));
}

static int
start_addr_query(struct dns_lookup *l, size_t host, int family)
{
	struct addr_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->l = l;
	q->host = host;
	q->family = family;
	l->pending++;
	ares_query(l->r->chan, l->route.hosts[host].name, ns_c_in,
	    family == AF_INET ? ns_t_a : ns_t_aaaa, query_addr_cb, q);
	return 0;
}

/* Second stage: A and AAAA for every host, in parallel.  The answers may
 * come back while we are still issuing queries (c-ares can fail a query
 * inline), so a guard reference keeps l alive until the loop ends. */
static void
lookup_addrs_start(struct dns_lookup *l)
{
	struct dns_resolver *r = l->r;
	size_t i;

	l->pending++;		/* guard */
	for (i = 0; i < l->route.nhosts; i++) {
		if (l->fam != DNS_FAM_IPV6 && start_addr_query(l, i, AF_INET) < 0)
			l->tempfail = 1;
		if (l->fam != DNS_FAM_IPV4 && start_addr_query(l, i, AF_INET6) < 0)
			l->tempfail = 1;
	}
	if (--l->pending == 0)
		lookup_addrs_done(l);	/* may free l (lookup_finish) */
	res_timer_update(r);
}

static int
lookup_add_host(struct dns_lookup *l, const char *name, int pref)
{
	struct dns_host *h;

	h = &l->route.hosts[l->route.nhosts];
	memset(h, 0, sizeof(*h));
	if (snprintf(h->name, sizeof(h->name), "%s", name) >=
	    (int)sizeof(h->name))
		return -1;
	h->pref = pref;
	if ((h->addrs = calloc(2 * DNS_MAX_ADDRS_PER_FAM,
	    sizeof(*h->addrs))) == NULL)
		return -1;
	l->route.nhosts++;
	return 0;
}

/* After the address stage each host's addresses are put in order. */
static void
lookup_order(struct dns_lookup *l)
{
	size_t i;

	for (i = 0; i < l->route.nhosts; i++)
		host_order_addrs(&l->route.hosts[i], l->fam);
}

static void
query_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_lookup *l = arg;
	struct ares_mx_reply *mx = NULL, *p;
	size_t n = 0;

	(void)timeouts;
	l->pending--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		l->cb = NULL;
		lookup_finish(l);
		return;
	}
	if (status == ARES_ENOTFOUND) {
		lookup_fail(l, DNS_NXDOMAIN, "Host or domain name not found "
		    "(%s: NXDOMAIN)", l->name);
		lookup_finish(l);
		return;
	}
	if (status == ARES_SUCCESS &&
	    (status = ares_parse_mx_reply(abuf, alen, &mx)) == ARES_SUCCESS) {
		for (p = mx; p != NULL; p = p->next)
			n++;
	}
	if (status != ARES_SUCCESS && status != ARES_ENODATA) {
		if (mx != NULL)
			ares_free_data(mx);
		snprintf(l->tmpwhy, sizeof(l->tmpwhy), "%s", ares_strerror(status));
		lookup_fail(l, DNS_TEMPFAIL, "MX lookup failed: %s", l->tmpwhy);
		lookup_finish(l);
		return;
	}
	if ((l->route.hosts = calloc(n > 0 ? (n < DNS_MAX_HOSTS ? n :
	    DNS_MAX_HOSTS) : 1, sizeof(*l->route.hosts))) == NULL)
		goto oom;
	if (n == 0) {
		/* RFC 5321 5.1: no MX, the domain is its own implicit MX. */
		l->route.implicit = 1;
		if (lookup_add_host(l, l->name, 0) < 0)
			goto oom;
	} else if (n == 1 && mx->priority == 0 &&
	    (mx->host[0] == '\0' || strcmp(mx->host, ".") == 0)) {
		ares_free_data(mx);
		lookup_fail(l, DNS_NULLMX, "Domain %s does not accept mail "
		    "(null MX)", l->name);
		lookup_finish(l);
		return;
	} else {
		for (p = mx; p != NULL && l->route.nhosts < DNS_MAX_HOSTS;
		    p = p->next) {
			if (p->host[0] == '\0' || strcmp(p->host, ".") == 0)
				continue;	/* a null MX among real ones */
			if (lookup_add_host(l, p->host, p->priority) < 0)
				goto oom;
		}
		dns_sort_hosts(l->route.hosts, l->route.nhosts);
	}
	if (mx != NULL)
		ares_free_data(mx);
	mx = NULL;
	l->done = 1;
	lookup_addrs_start(l);
	return;
oom:
	if (mx != NULL)
		ares_free_data(mx);
	lookup_fail(l, DNS_TEMPFAIL, "%s", "out of memory resolving");
	lookup_finish(l);
}

static void
lookup_on_immediate(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *l = arg;

	(void)fd;
	(void)what;
	l->in_start = 0;
	lookup_finish(l);
}

struct dns_lookup *
dns_route(struct dns_resolver *r, const char *name, int flags,
    enum dns_family fam, dns_route_cb cb, void *arg)
{
	struct dns_lookup *l;
	struct dns_addr lit;
	size_t len = strlen(name);

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->r = r;
	l->cb = cb;
	l->arg = arg;
	l->flags = flags;
	l->fam = fam;
	l->next = r->lookups;
	r->lookups = l;
	l->in_start = 1;	/* every answer goes through the loop */
	if ((l->immediate = event_new(r->base, -1, 0, lookup_on_immediate,
	    l)) == NULL) {
		l->cb = NULL;
		lookup_free(l);
		return NULL;
	}
	/* Trailing dot: "example.com." is "example.com". */
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(l->name)) {
		lookup_fail(l, DNS_NXDOMAIN, "Bad domain name \"%s\"", "");
		event_active(l->immediate, 0, 0);
		return l;
	}
	memcpy(l->name, name, len);
	l->name[len] = '\0';
	if (name[0] == '[') {
		/* A domain literal needs no DNS (RFC 5321 4.1.3). */
		if (dns_parse_literal(l->name, &lit) != 0) {
			lookup_fail(l, DNS_NXDOMAIN, "Bad address literal %s",
			    l->name);
		} else if ((l->route.hosts = calloc(1,
		    sizeof(*l->route.hosts))) == NULL ||
		    lookup_add_host(l, l->name, 0) < 0) {
			lookup_fail(l, DNS_TEMPFAIL, "%s", "out of memory");
		} else if (!r->allow_loopback && res_addr_is_self(r, &lit)) {
			lookup_fail(l, DNS_LOOP, "mail for %s loops back to "
			    "myself", l->name);
		} else {
			l->route.hosts[0].addrs[0] = lit;
			l->route.hosts[0].naddrs = 1;
			l->route.status = DNS_OK;
		}
		event_active(l->immediate, 0, 0);
		return l;
	}
	/* A host given as an address (smarthost = 192.0.2.1:25). */
	if (flags & DNS_F_HOST) {
		memset(&lit, 0, sizeof(lit));
		if (inet_pton(AF_INET, l->name, &lit.u.v4) == 1)
			lit.family = AF_INET;
		else if (inet_pton(AF_INET6, l->name, &lit.u.v6) == 1)
			lit.family = AF_INET6;
		if (lit.family != 0) {
			if ((l->route.hosts = calloc(1,
			    sizeof(*l->route.hosts))) == NULL ||
			    lookup_add_host(l, l->name, 0) < 0)
				lookup_fail(l, DNS_TEMPFAIL, "%s", "out of memory");
			else {
				/* an explicit relay address is the
				 * operator's choice: no loop check */
				l->route.hosts[0].addrs[0] = lit;
				l->route.hosts[0].naddrs = 1;
				l->route.status = DNS_OK;
			}
			event_active(l->immediate, 0, 0);
			return l;
		}
		if ((l->route.hosts = calloc(1, sizeof(*l->route.hosts))) == NULL ||
		    lookup_add_host(l, l->name, 0) < 0) {
			lookup_fail(l, DNS_TEMPFAIL, "%s", "out of memory");
			event_active(l->immediate, 0, 0);
			return l;
		}
		l->done = 1;
		lookup_addrs_start(l);
		/* in_start kept l alive (lookup_finish defers); the analyzer
		 * forgets it across the c-ares calls */
		if (l->pending > 0) // NOLINT(clang-analyzer-unix.Malloc)
			l->in_start = 0;
		return l;
	}
	l->pending++;
	ares_query(r->chan, l->name, ns_c_in, ns_t_mx, query_mx_cb, l);
	res_timer_update(r);
	if (l->pending > 0)
		l->in_start = 0;
	return l;
}

void
dns_cancel(struct dns_lookup *l)
{
	if (l != NULL)
		l->cb = NULL;
}
