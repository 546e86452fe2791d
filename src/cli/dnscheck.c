/*
 * dnscheck.c — `outpost dns check DOMAIN [--json]`: is the DNS for a
 * sending domain right?  One line per item, ok / warn / FAIL, and for
 * anything missing or wrong the exact record to publish:
 *
 *   ptr    [delivery] source_address (and source_address6) has a PTR
 *          whose name resolves back to it (forward-confirmed reverse DNS)
 *   spf    DOMAIN's "v=spf1" TXT covers those addresses (ip4:/ip6: with
 *          CIDR, a, mx, include: one level deep, all; macros, exists:,
 *          ptr and deeper includes are reported as "cannot tell")
 *   dkim   SELECTOR._domainkey.DOMAIN's p= equals each key under
 *          DATA_DIR/dkim/DOMAIN/ (expected value from pki_dkim_txt_value)
 *   dmarc  _dmarc.DOMAIN's TXT starts with v=DMARC1
 *
 * Lookups are c-ares on a private channel driven by select(), honouring
 * [delivery] dns (ADDR:PORT), dns_timeout and dns_tries.  Every answer is
 * hostile: TXT records are bounded (DC_TXT_MAX bytes, DC_MAX_TXT records),
 * the wait for one query is bounded by its deadline.
 *
 * Owns the channel and the key set for the command's life.  Exit: 0 when
 * nothing FAILed (warnings allowed), 1 when something did; sysexits codes
 * for bad usage and setup errors.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sysexits.h>
#include <time.h>

#include <ares.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/report.h"
#include "cli/pki.h"
#include "message/dkim.h"
#include "util/config.h"

#define DC_TXT_MAX	4096	/* bytes kept of one TXT record */
#define DC_MAX_TXT	16	/* TXT records kept per name */
#define DC_MAX_ADDRS	16	/* A/AAAA records kept per name */
#define DC_MAX_TERMS	64	/* SPF terms looked at */

struct dc {
	int		 json;
	int		 failed;
	json_t		*steps;
	ares_channel	 chan;
	long		 wait_ms;	/* bound for one query */
};

/* One answer, copied out of the c-ares callback. */
struct dc_ans {
	int		 done;
	int		 status;	/* ARES_SUCCESS, ARES_ENOTFOUND, ... */
	unsigned char	*buf;
	int		 len;
};

static void
dc_step(struct dc *d, const char *name, const char *verdict,
    const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Records (and, without --json, prints) one item, like doctor's steps. */
static void
dc_step(struct dc *d, const char *name, const char *verdict,
    const char *fix, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(verdict, "FAIL") == 0)
		d->failed = 1;
	cli_report_step(d->json, d->steps, name, verdict, msg, NULL,
	    "publish:", fix);
}

static void
dc_on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dc_ans *a = arg;

	(void)timeouts;
	a->done = 1;
	a->status = status;
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0 &&
	    (a->buf = malloc((size_t)alen)) != NULL) {
		memcpy(a->buf, abuf, (size_t)alen);
		a->len = alen;
	} else if (status == ARES_SUCCESS)
		a->status = ARES_ENOMEM;
}

static long
dc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one query to its end (answer, error or deadline). */
static void
dc_query(struct dc *d, const char *name, int type, struct dc_ans *a)
{
	long	 deadline = dc_now_ms() + d->wait_ms;
	int	 i;

	memset(a, 0, sizeof(*a));
	ares_query(d->chan, name, ns_c_in, type, dc_on_answer, a);
	for (i = 0; i < 100000 && !a->done; i++) {
		fd_set		 r, w;
		struct timeval	 tv, *tvp, max;
		long		 left = deadline - dc_now_ms();
		int		 nfds;

		if (left <= 0)
			break;
		FD_ZERO(&r);
		FD_ZERO(&w);
		nfds = ares_fds(d->chan, &r, &w);
		max.tv_sec = left / 1000;
		max.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(d->chan, &max, &tv);
		if (nfds == 0 && a->done)
			break;
		if (select(nfds, &r, &w, NULL, tvp) < 0)
			break;
		ares_process(d->chan, &r, &w);
	}
	if (!a->done) {
		ares_cancel(d->chan);	/* calls back with ARES_ECANCELLED */
		a->done = 1;
		a->status = ARES_ETIMEOUT;
	}
}

static void
dc_ans_free(struct dc_ans *a)
{
	free(a->buf);
	a->buf = NULL;
}

/* Plain words for a failed lookup. */
static const char *
dc_why(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:	return "no such name (NXDOMAIN)";
	case ARES_ENODATA:	return "no record of that type";
	case ARES_ETIMEOUT:	return "DNS timeout";
	default:		return ares_strerror(status);
	}
}

/* The TXT records of name, each concatenated from its strings.  Returns
 * the count (0..DC_MAX_TXT) or -1 with *status set on a lookup error. */
static int
dc_txt(struct dc *d, const char *name, char out[][DC_TXT_MAX], int *status)
{
	struct ares_txt_ext *txt = NULL, *t;
	struct dc_ans a;
	int n = -1, rc;

	dc_query(d, name, ns_t_txt, &a);
	*status = a.status;
	if (a.status == ARES_ENOTFOUND || a.status == ARES_ENODATA) {
		dc_ans_free(&a);
		return 0;
	}
	if (a.status != ARES_SUCCESS) {
		dc_ans_free(&a);
		return -1;
	}
	rc = ares_parse_txt_reply_ext(a.buf, a.len, &txt);
	dc_ans_free(&a);
	if (rc == ARES_ENODATA)
		return 0;
	if (rc != ARES_SUCCESS) {
		*status = rc;
		return -1;
	}
	for (t = txt; t != NULL; t = t->next) {
		size_t have;

		if (t->record_start || n < 0) {
			if (n + 1 >= DC_MAX_TXT)
				break;
			out[++n][0] = '\0';
		}
		have = strlen(out[n]);
		if (have + t->length < DC_TXT_MAX) {
			memcpy(out[n] + have, t->txt, t->length);
			out[n][have + t->length] = '\0';
		}
	}
	ares_free_data(txt);
	return n + 1;
}

/* The A (fam AF_INET) or AAAA records of name, as 16-byte buffers. */
static int
dc_addrs(struct dc *d, const char *name, int fam, unsigned char out[][16],
    int max)
{
	struct dc_ans a;
	int n = 0, i, rc;

	dc_query(d, name, fam == AF_INET ? ns_t_a : ns_t_aaaa, &a);
	if (a.status != ARES_SUCCESS) {
		dc_ans_free(&a);
		return 0;
	}
	if (fam == AF_INET) {
		struct ares_addrttl t[DC_MAX_ADDRS];
		int nt = DC_MAX_ADDRS;

		rc = ares_parse_a_reply(a.buf, a.len, NULL, t, &nt);
		for (i = 0; rc == ARES_SUCCESS && i < nt && n < max; i++)
			memcpy(out[n++], &t[i].ipaddr, 4);
	} else {
		struct ares_addr6ttl t[DC_MAX_ADDRS];
		int nt = DC_MAX_ADDRS;

		rc = ares_parse_aaaa_reply(a.buf, a.len, NULL, t, &nt);
		for (i = 0; rc == ARES_SUCCESS && i < nt && n < max; i++)
			memcpy(out[n++], &t[i].ip6addr, 16);
	}
	dc_ans_free(&a);
	return n;
}

/* A sending address, parsed. */
struct dc_src {
	const char	*text;
	int		 fam;
	unsigned char	 bin[16];
};

/* 1 when the first bits of a and b are equal. */
static int
dc_prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* 1 when one of name's A/AAAA records is within bits of src. */
static int
dc_name_covers(struct dc *d, const char *name, const struct dc_src *s,
    int bits)
{
	unsigned char addrs[DC_MAX_ADDRS][16];
	int n, i;

	n = dc_addrs(d, name, s->fam, addrs, DC_MAX_ADDRS);
	for (i = 0; i < n; i++)
		if (dc_prefix_eq(addrs[i], s->bin, bits))
			return 1;
	return 0;
}

/* 1 when one of name's MX hosts covers src. */
static int
dc_mx_covers(struct dc *d, const char *name, const struct dc_src *s,
    int bits)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct dc_ans a;
	int hit = 0, i = 0;

	dc_query(d, name, ns_t_mx, &a);
	if (a.status == ARES_SUCCESS &&
	    ares_parse_mx_reply(a.buf, a.len, &mx) == ARES_SUCCESS) {
		for (m = mx; m != NULL && !hit && i < 10; m = m->next, i++)
			hit = dc_name_covers(d, m->host, s, bits);
		ares_free_data(mx);
	}
	dc_ans_free(&a);
	return hit;
}

enum spf_res { SPF_NOMATCH, SPF_PASS, SPF_FAIL, SPF_UNKNOWN };

static const char *spf_find(char recs[][DC_TXT_MAX], int n);

/*
 * Evaluates an SPF record for src.  depth 0 may follow include: and
 * redirect= once; deeper ones are "cannot tell".  why gets the reason
 * for SPF_UNKNOWN and SPF_FAIL.
 */
static enum spf_res
spf_eval(struct dc *d, const char *domain, const char *rec,
    const struct dc_src *s, int depth, char *why, size_t wlen)
{
	char	 copy[DC_TXT_MAX], *save = NULL, *tok, redirect[256] = "";
	int	 nterm = 0;

	snprintf(copy, sizeof(copy), "%s", rec);
	tok = strtok_r(copy, " \t", &save);	/* v=spf1 */
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL &&
	    nterm++ < DC_MAX_TERMS) {
		char	 qual = '+', *arg, *slash;
		int	 bits = s->fam == AF_INET ? 32 : 128, hit = 0;
		const char *target = domain;

		if (strchr(tok, '%') != NULL) {
			snprintf(why, wlen, "the record uses macros (%s)", tok);
			return SPF_UNKNOWN;
		}
		if (strncasecmp(tok, "redirect=", 9) == 0) {
			snprintf(redirect, sizeof(redirect), "%s", tok + 9);
			continue;
		}
		if (strchr(tok, '=') != NULL && strchr(tok, ':') == NULL)
			continue;	/* other modifiers (exp=) */
		if (strchr("+-~?", *tok) != NULL)
			qual = *tok++;
		arg = strpbrk(tok, ":/");
		if (strcasecmp(tok, "all") == 0) {
			snprintf(why, wlen, "\"%c%s\" ends the record before "
			    "the address matched", qual, tok);
			return qual == '+' ? SPF_PASS : SPF_FAIL;
		}
		if (strncasecmp(tok, "ip4:", 4) == 0 ||
		    strncasecmp(tok, "ip6:", 4) == 0) {
			int fam = tok[2] == '4' ? AF_INET : AF_INET6;
			unsigned char net[16];
			char ip[64];

			if (fam != s->fam)
				continue;
			snprintf(ip, sizeof(ip), "%s", tok + 4);
			if ((slash = strchr(ip, '/')) != NULL) {
				*slash = '\0';
				bits = atoi(slash + 1);
			}
			if (inet_pton(fam, ip, net) != 1 || bits < 0 ||
			    bits > (fam == AF_INET ? 32 : 128)) {
				snprintf(why, wlen, "bad term %s", tok);
				return SPF_UNKNOWN;
			}
			hit = dc_prefix_eq(net, s->bin, bits);
		} else if (strncasecmp(tok, "a", 1) == 0 &&
		    (tok[1] == '\0' || tok[1] == ':' || tok[1] == '/')) {
			char name[256];

			snprintf(name, sizeof(name), "%s", target);
			if (arg != NULL && *arg == ':') {
				snprintf(name, sizeof(name), "%s", arg + 1);
				if ((slash = strchr(name, '/')) != NULL)
					*slash = '\0';
			}
			if ((slash = strchr(tok, '/')) != NULL)
				bits = atoi(slash + 1);
			hit = dc_name_covers(d, name, s, bits);
		} else if (strncasecmp(tok, "mx", 2) == 0 &&
		    (tok[2] == '\0' || tok[2] == ':' || tok[2] == '/')) {
			char name[256];

			snprintf(name, sizeof(name), "%s", target);
			if (arg != NULL && *arg == ':') {
				snprintf(name, sizeof(name), "%s", arg + 1);
				if ((slash = strchr(name, '/')) != NULL)
					*slash = '\0';
			}
			if ((slash = strchr(tok, '/')) != NULL)
				bits = atoi(slash + 1);
			hit = dc_mx_covers(d, name, s, bits);
		} else if (strncasecmp(tok, "include:", 8) == 0) {
			char recs[DC_MAX_TXT][DC_TXT_MAX];
			const char *inc;
			int n, st;
			enum spf_res r;

			if (depth > 0) {
				snprintf(why, wlen, "nested include:%s",
				    tok + 8);
				return SPF_UNKNOWN;
			}
			n = dc_txt(d, tok + 8, recs, &st);
			if (n < 0 || (inc = spf_find(recs, n)) == NULL) {
				snprintf(why, wlen, "include:%s has no SPF "
				    "record (%s)", tok + 8, n < 0 ?
				    dc_why(st) : "none");
				return SPF_UNKNOWN;
			}
			r = spf_eval(d, tok + 8, inc, s, 1, why, wlen);
			if (r == SPF_UNKNOWN)
				return r;
			hit = r == SPF_PASS;
		} else {
			snprintf(why, wlen, "the record uses %s", tok);
			return SPF_UNKNOWN;
		}
		if (hit) {
			snprintf(why, wlen, "matched %c%s", qual, tok);
			return qual == '+' ? SPF_PASS :
			    qual == '?' ? SPF_NOMATCH : SPF_FAIL;
		}
	}
	if (redirect[0] != '\0') {
		char recs[DC_MAX_TXT][DC_TXT_MAX];
		const char *red;
		int n, st;

		if (depth > 0) {
			snprintf(why, wlen, "nested redirect=%s", redirect);
			return SPF_UNKNOWN;
		}
		n = dc_txt(d, redirect, recs, &st);
		if (n < 0 || (red = spf_find(recs, n)) == NULL) {
			snprintf(why, wlen, "redirect=%s has no SPF record",
			    redirect);
			return SPF_UNKNOWN;
		}
		return spf_eval(d, redirect, red, s, 1, why, wlen);
	}
	snprintf(why, wlen, "no term of the record matches");
	return SPF_NOMATCH;
}

/* The first "v=spf1" record, or NULL. */
static const char *
spf_find(char recs[][DC_TXT_MAX], int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcasecmp(recs[i], "v=spf1") == 0 ||
		    strncasecmp(recs[i], "v=spf1 ", 7) == 0)
			return recs[i];
	return NULL;
}

/* The record operators should publish: "DOMAIN IN TXT "v=spf1 ..."". */
static void
spf_suggest(const struct dc_src *src, int nsrc, const char *domain,
    const char *old, char *buf, size_t len)
{
	char	 terms[DC_TXT_MAX] = "", copy[DC_TXT_MAX], *save = NULL, *t;
	size_t	 off = 0;
	int	 i;

	for (i = 0; i < nsrc; i++)
		off += (size_t)snprintf(terms + off, sizeof(terms) - off,
		    " %s:%s", src[i].fam == AF_INET ? "ip4" : "ip6",
		    src[i].text);
	if (old != NULL) {	/* keep the existing terms, minus all */
		snprintf(copy, sizeof(copy), "%s", old + 6);
		for (t = strtok_r(copy, " ", &save); t != NULL &&
		    off < sizeof(terms); t = strtok_r(NULL, " ", &save)) {
			const char *b = strchr("+-~?", *t) ? t + 1 : t;

			if (strcasecmp(b, "all") == 0)
				continue;
			off += (size_t)snprintf(terms + off,
			    sizeof(terms) - off, " %s", t);
		}
	}
	snprintf(buf, len, "%s IN TXT \"v=spf1%s -all\"", domain, terms);
}

static void
dc_check_ptr(struct dc *d, const struct dc_src *s, const char *hostname)
{
	struct hostent	*he = NULL;
	struct dc_ans	 a;
	char		 rev[128], fix[512], ptrname[256];
	size_t		 off = 0;
	int		 i, rc;

	if (s->fam == AF_INET)
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
		    s->bin[3], s->bin[2], s->bin[1], s->bin[0]);
	else {
		for (i = 15; i >= 0; i--)
			off += (size_t)snprintf(rev + off, sizeof(rev) - off,
			    "%x.%x.", s->bin[i] & 0xf, s->bin[i] >> 4);
		snprintf(rev + off, sizeof(rev) - off, "ip6.arpa");
	}
	dc_query(d, rev, ns_t_ptr, &a);
	if (a.status == ARES_SUCCESS)
		rc = ares_parse_ptr_reply(a.buf, a.len, s->bin,
		    s->fam == AF_INET ? 4 : 16, s->fam, &he);
	else
		rc = a.status;
	dc_ans_free(&a);
	if (rc != ARES_SUCCESS || he == NULL || he->h_name == NULL) {
		snprintf(fix, sizeof(fix), "%s. IN PTR %s. (at the provider "
		    "of %s)", rev, hostname, s->text);
		if (rc == ARES_ETIMEOUT || rc == ARES_ESERVFAIL ||
		    rc == ARES_ECONNREFUSED)
			fix[0] = '\0';
		dc_step(d, "ptr", "FAIL", fix[0] ? fix : NULL,
		    "%s has no reverse DNS (PTR): %s; Gmail refuses mail "
		    "from such addresses", s->text, dc_why(rc));
		if (he != NULL)
			ares_free_hostent(he);
		return;
	}
	snprintf(ptrname, sizeof(ptrname), "%s", he->h_name);
	ares_free_hostent(he);
	if (dc_name_covers(d, ptrname, s, s->fam == AF_INET ? 32 : 128)) {
		dc_step(d, "ptr", "ok", NULL, "%s -> %s -> %s (forward-"
		    "confirmed)", s->text, ptrname, s->text);
		return;
	}
	snprintf(fix, sizeof(fix), "%s. IN %s %s", ptrname,
	    s->fam == AF_INET ? "A" : "AAAA", s->text);
	dc_step(d, "ptr", "FAIL", fix, "%s -> %s, but %s does not resolve "
	    "back to %s", s->text, ptrname, ptrname, s->text);
}

static void
dc_check_spf(struct dc *d, const char *domain, const struct dc_src *src,
    int nsrc)
{
	char	 recs[DC_MAX_TXT][DC_TXT_MAX], why[512], fix[DC_TXT_MAX + 300];
	const char *rec;
	int	 n, st, i, nspf = 0;

	n = dc_txt(d, domain, recs, &st);
	if (n < 0) {
		dc_step(d, "spf", "FAIL", NULL, "cannot look up the TXT "
		    "records of %s: %s", domain, dc_why(st));
		return;
	}
	for (i = 0; i < n; i++)
		if (spf_find(&recs[i], 1) != NULL)
			nspf++;
	rec = spf_find(recs, n);
	if (rec == NULL) {
		if (nsrc == 0)
			snprintf(fix, sizeof(fix), "%s IN TXT \"v=spf1 "
			    "ip4:SERVER-IPV4 -all\"", domain);
		else
			spf_suggest(src, nsrc, domain, NULL, fix,
			    sizeof(fix));
		dc_step(d, "spf", "FAIL", fix, "%s has no SPF record",
		    domain);
		return;
	}
	if (nspf > 1) {
		dc_step(d, "spf", "FAIL", NULL, "%s has %d SPF records; "
		    "receivers treat that as an error: merge them into one",
		    domain, nspf);
		return;
	}
	if (nsrc == 0) {
		dc_step(d, "spf", "warn", NULL, "\"%s\" is published; cannot "
		    "tell whether it covers this server ([delivery] "
		    "source_address is not set)", rec);
		return;
	}
	for (i = 0; i < nsrc; i++) {
		enum spf_res r = spf_eval(d, domain, rec, &src[i], 0, why,
		    sizeof(why));

		if (r == SPF_PASS)
			dc_step(d, "spf", "ok", NULL, "\"%s\" covers %s (%s)",
			    rec, src[i].text, why);
		else if (r == SPF_UNKNOWN)
			dc_step(d, "spf", "warn", NULL, "cannot tell whether "
			    "\"%s\" covers %s: %s", rec, src[i].text, why);
		else {
			spf_suggest(&src[i], 1, domain, rec, fix,
			    sizeof(fix));
			dc_step(d, "spf", "FAIL", fix, "\"%s\" does not cover "
			    "%s: %s", rec, src[i].text, why);
		}
	}
}

/* The p= value of a DKIM record with blanks removed, into out. */
static int
dkim_p(const char *rec, char *out, size_t len)
{
	const char *p = rec;
	size_t n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (*p == '\0')
			return -1;
		if (p[0] == 'p' && (p[1] == '=' || p[1] == ' ' ||
		    p[1] == '\t')) {
			p = strchr(p, '=');
			if (p == NULL)
				return -1;
			for (p++; *p != '\0' && *p != ';'; p++)
				if (!isspace((unsigned char)*p) && n + 1 < len)
					out[n++] = *p;
			out[n] = '\0';
			return 0;
		}
		if ((p = strchr(p, ';')) == NULL)
			return -1;
	}
}

static void
dc_check_dkim(struct dc *d, const struct config *cfg, const char *domain)
{
	struct dkim_keyset *ks;
	const struct dkim_key *keys[16];
	char	 dir[PATH_MAX], err[256];
	size_t	 n, i;
	int	 len;

	len = snprintf(dir, sizeof(dir), "%s/dkim", cfg->data_dir);
	if (len < 0 || (size_t)len >= sizeof(dir) ||
	    (ks = dkim_keyset_load(dir, NULL, NULL, err, sizeof(err))) ==
	    NULL) {
		dc_step(d, "dkim", "FAIL", NULL, "cannot read the DKIM keys "
		    "under %s", cfg->data_dir);
		return;
	}
	n = dkim_keyset_find(ks, domain, keys, 16);
	if (n == 0)
		dc_step(d, "dkim", "FAIL", NULL, "no DKIM key for %s: create "
		    "one with: outpost dkim keygen %s", domain, domain);
	for (i = 0; i < n; i++) {
		char	 want[2048], wp[2048], quoted[2200], fix[2700];
		char	 name[400], recs[DC_MAX_TXT][DC_TXT_MAX], got[2048];
		int	 nr, st, j, found = 0, other = 0;

		snprintf(name, sizeof(name), "%s._domainkey.%s",
		    keys[i]->selector, domain);
		if (pki_dkim_txt_value(keys[i]->pkey, want, sizeof(want), err,
		    sizeof(err)) == -1 || dkim_p(want, wp, sizeof(wp)) ==
		    -1 || pki_txt_quote(want, quoted, sizeof(quoted)) == -1) {
			dc_step(d, "dkim", "FAIL", NULL, "%s: cannot format "
			    "the key: %s", name, err);
			continue;
		}
		snprintf(fix, sizeof(fix), "%s IN TXT %s", name, quoted);
		nr = dc_txt(d, name, recs, &st);
		if (nr < 0) {
			dc_step(d, "dkim", "FAIL", NULL, "cannot look up %s: "
			    "%s", name, dc_why(st));
			continue;
		}
		for (j = 0; j < nr && !found; j++) {
			if (dkim_p(recs[j], got, sizeof(got)) == -1)
				continue;
			if (strcmp(got, wp) == 0)
				found = 1;
			else
				other = 1;
		}
		if (found)
			dc_step(d, "dkim", "ok", NULL, "%s publishes the %s "
			    "key", name, dkim_alg_name(keys[i]->alg));
		else
			dc_step(d, "dkim", "FAIL", fix, other ?
			    "%s publishes a different key than %s" :
			    "%s has no DKIM record (%s key %s)", name,
			    other ? keys[i]->path : dkim_alg_name(keys[i]->alg),
			    other ? "" : keys[i]->path);
	}
	dkim_keyset_release(ks);
}

static void
dc_check_dmarc(struct dc *d, const char *domain)
{
	char	 recs[DC_MAX_TXT][DC_TXT_MAX], name[300], fix[700];
	int	 n, st, i;

	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	n = dc_txt(d, name, recs, &st);
	if (n < 0) {
		dc_step(d, "dmarc", "FAIL", NULL, "cannot look up %s: %s",
		    name, dc_why(st));
		return;
	}
	for (i = 0; i < n; i++)
		if (strcmp(recs[i], "v=DMARC1") == 0 ||
		    strncmp(recs[i], "v=DMARC1;", 9) == 0 ||
		    strncmp(recs[i], "v=DMARC1 ", 9) == 0) {
			dc_step(d, "dmarc", "ok", NULL, "%s: \"%s\"", name,
			    recs[i]);
			return;
		}
	snprintf(fix, sizeof(fix), "%s IN TXT \"v=DMARC1; p=none; "
	    "rua=mailto:postmaster@%s\"", name, domain);
	dc_step(d, "dmarc", "FAIL", fix, "%s has no DMARC record", name);
}

static const char dns_usage[] =
"usage: outpost dns check DOMAIN [--json]\n"
"  check the DNS records of a sending domain: reverse DNS of\n"
"  [delivery] source_address, SPF, DKIM (keys under DATA_DIR/dkim), DMARC\n";

int
cli_dns(int argc, char **argv, const struct config *cfg)
{
	struct ares_options ao;
	struct dc	 d;
	struct dc_src	 src[2];
	const char	*domain = NULL, *host;
	char		 dom[DKIM_DOMAIN_MAX + 1];
	int		 i, nsrc = 0, rc;

	memset(&d, 0, sizeof(d));
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fputs(dns_usage, argc < 2 ? stderr : strcmp(argv[1],
		    "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EX_OK :
		    EX_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			d.json = 1;
		else if (strcmp(argv[i], "--help") == 0) {
			fputs(dns_usage, stdout);
			return EX_OK;
		} else if (argv[i][0] != '-' && domain == NULL)
			domain = argv[i];
		else {
			fputs(dns_usage, stderr);
			return EX_USAGE;
		}
	}
	if (domain == NULL || strlen(domain) >= sizeof(dom) ||
	    !dkim_valid_domain(domain)) {
		fprintf(stderr, "outpost: give a domain name (e.g. "
		    "example.com)\n");
		return EX_USAGE;
	}
	for (i = 0; domain[i]; i++)
		dom[i] = (char)tolower((unsigned char)domain[i]);
	dom[i] = '\0';
	for (i = 0; i < 2; i++) {
		const char *t = i ? cfg->source_address6 : cfg->source_address;

		if (t == NULL)
			continue;
		src[nsrc].text = t;
		src[nsrc].fam = strchr(t, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(src[nsrc].fam, t, src[nsrc].bin) == 1)
			nsrc++;
	}
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		fprintf(stderr, "outpost: c-ares: %s\n", ares_strerror(rc));
		return EX_SOFTWARE;
	}
	memset(&ao, 0, sizeof(ao));
	ao.timeout = (cfg->dns_timeout > 0 ? cfg->dns_timeout : 5) * 1000;
	ao.tries = cfg->dns_tries > 0 ? cfg->dns_tries : 3;
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
	ao.ednspsz = 1232;
	d.wait_ms = (long)ao.timeout * ao.tries * 2 + 1000;
	if ((rc = ares_init_options(&d.chan, &ao, ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ)) !=
	    ARES_SUCCESS) {
		fprintf(stderr, "outpost: c-ares: %s\n", ares_strerror(rc));
		ares_library_cleanup();
		return EX_SOFTWARE;
	}
	if (cfg->dns != NULL && (rc = ares_set_servers_ports_csv(d.chan,
	    cfg->dns)) != ARES_SUCCESS) {
		fprintf(stderr, "outpost: cannot use DNS server %s: %s\n",
		    cfg->dns, ares_strerror(rc));
		rc = EX_CONFIG;
		goto out;
	}
	if (d.json && (d.steps = json_array()) == NULL) {
		fprintf(stderr, "outpost: out of memory\n");
		rc = EX_SOFTWARE;
		goto out;
	}
	host = cfg->helo_name ? cfg->helo_name : cfg->hostname ?
	    cfg->hostname : dom;
	if (nsrc == 0)
		dc_step(&d, "ptr", "warn", NULL, "[delivery] source_address "
		    "is not set: cannot check reverse DNS; set it to this "
		    "server's public address");
	for (i = 0; i < nsrc; i++)
		dc_check_ptr(&d, &src[i], host);
	dc_check_spf(&d, dom, src, nsrc);
	dc_check_dkim(&d, cfg, dom);
	dc_check_dmarc(&d, dom);
	if (d.json) {
		json_t *root = json_pack("{s:s, s:b, s:O}", "domain", dom,
		    "ok", !d.failed, "steps", d.steps);

		if (root != NULL) {
			json_dumpf(root, stdout, JSON_INDENT(2));
			putchar('\n');
			json_decref(root);
		}
	} else
		printf("%s\n", d.failed ? "Result: problems found (see FAIL "
		    "above)" : "Result: the DNS records look right");
	rc = d.failed ? 1 : EX_OK;
out:
	if (d.steps != NULL)
		json_decref(d.steps);
	ares_destroy(d.chan);
	ares_library_cleanup();
	return rc;
}
