/*
 * parse_test — unit tests for the SMTP command and argument parser:
 * verbs, MAIL/RCPT paths and parameters, length limits, UTF-8, EHLO
 * names and BDAT arguments.  Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/spool.h"
#include "smtp/parse.h"

/* The case tables give only the fields that matter; the rest are 0. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */

static const struct {
	const char	*line;
	enum smtp_verb	 verb;
	const char	*args;		/* NULL: *args must be NULL */
} verb_cases[] = {
	{ "EHLO example.com",	SMTP_V_EHLO,	"example.com" },
	{ "ehlo x",		SMTP_V_EHLO,	"x" },
	{ "EhLo x y",		SMTP_V_EHLO,	"x y" },
	{ "EHLO",		SMTP_V_EHLO,	"" },
	{ "EHLOX",		SMTP_V_UNKNOWN,	NULL },
	{ "EHLO\tx",		SMTP_V_UNKNOWN,	NULL },
	{ "EHL",		SMTP_V_UNKNOWN,	NULL },
	{ " EHLO x",		SMTP_V_UNKNOWN,	NULL },
	{ "",			SMTP_V_UNKNOWN,	NULL },
	{ "HELO a.b",		SMTP_V_HELO,	"a.b" },
	{ "STARTTLS",		SMTP_V_STARTTLS, "" },
	{ "starttls",		SMTP_V_STARTTLS, "" },
	{ "AUTH PLAIN AGFAAGI=",	SMTP_V_AUTH,	"PLAIN AGFAAGI=" },
	{ "MAIL FROM:<a@b>",	SMTP_V_MAIL,	"<a@b>" },
	{ "mail from:<a@b> SIZE=1", SMTP_V_MAIL, "<a@b> SIZE=1" },
	{ "Mail From: <a@b>",	SMTP_V_MAIL,	"<a@b>" },
	{ "MAIL FROM:<>",	SMTP_V_MAIL,	"<>" },
	{ "MAIL FROM:",		SMTP_V_MAIL,	"" },
	{ "MAIL",		SMTP_V_MAIL,	NULL },
	{ "MAIL TO:<a@b>",	SMTP_V_MAIL,	NULL },
	{ "MAIL FROM <a@b>",	SMTP_V_MAIL,	NULL },
	{ "MAIL  FROM:<a@b>",	SMTP_V_MAIL,	NULL },
	{ "MAILFROM:<a@b>",	SMTP_V_UNKNOWN,	NULL },
	{ "RCPT TO:<a@b>",	SMTP_V_RCPT,	"<a@b>" },
	{ "rcpt to: <a@b>",	SMTP_V_RCPT,	"<a@b>" },
	{ "RCPT FROM:<a@b>",	SMTP_V_RCPT,	NULL },
	{ "RCPT",		SMTP_V_RCPT,	NULL },
	{ "DATA",		SMTP_V_DATA,	"" },
	{ "BDAT 10 LAST",	SMTP_V_BDAT,	"10 LAST" },
	{ "RSET",		SMTP_V_RSET,	"" },
	{ "NOOP hello",		SMTP_V_NOOP,	"hello" },
	{ "QUIT",		SMTP_V_QUIT,	"" },
	{ "VRFY bob",		SMTP_V_VRFY,	"bob" },
	{ "EXPN list",		SMTP_V_EXPN,	"list" },
	{ "HELP",		SMTP_V_HELP,	"" },
	{ "GET / HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "POST /submit HTTP/1.1", SMTP_V_HTTP,	NULL },
	{ "HEAD / HTTP/1.0",	SMTP_V_HTTP,	NULL },
	{ "PUT /x HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "DELETE /x HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "CONNECT a:443 HTTP/1.1", SMTP_V_HTTP, NULL },
	{ "OPTIONS * HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "PATCH /x HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "TRACE / HTTP/1.1",	SMTP_V_HTTP,	NULL },
	{ "GET",		SMTP_V_UNKNOWN,	NULL },
	{ "GETX /",		SMTP_V_UNKNOWN,	NULL },
	{ "FOO bar",		SMTP_V_UNKNOWN,	NULL },
	{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", SMTP_V_UNKNOWN, NULL },
};

static void
test_verbs(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(verb_cases); i++) {
		const char *args = (const char *)1;
		enum smtp_verb v = smtp_parse_verb(verb_cases[i].line, &args);

		if (v != verb_cases[i].verb)
			fail_msg("verb \"%s\": got %d want %d",
			    verb_cases[i].line, v, verb_cases[i].verb);
		if (verb_cases[i].args == NULL) {
			if (args != NULL)
				fail_msg("verb \"%s\": args \"%s\", want NULL",
				    verb_cases[i].line, args);
		} else if (args == NULL ||
		    strcmp(args, verb_cases[i].args) != 0) {
			fail_msg("verb \"%s\": args \"%s\", want \"%s\"",
			    verb_cases[i].line, args ? args : "(null)",
			    verb_cases[i].args);
		}
	}
}

/* ------------------------------------------------------------------ */

struct path_case {
	const char	*args;
	int		 allow_dsn;
	int		 utf8_ok;	/* RCPT only */
	int		 rc;
	const char	*addr;		/* when rc == OK */
	int		 has_size;
	uint64_t	 size;
	int		 body, smtputf8, auth, ret;
	const char	*envid;
	unsigned	 notify;
	const char	*orcpt;
	int		 utf8;
};

#define OK	SMTP_P_OK
#define SYN	SMTP_P_SYNTAX
#define LONG	SMTP_P_TOOLONG
#define PRM	SMTP_P_PARAM
#define U8	SMTP_P_UTF8

static const struct path_case mail_cases[] = {
	{ "<>", 1, 0, OK, "" },
	{ "<a@example.com>", 1, 0, OK, "a@example.com" },
	{ " <a@example.com>", 1, 0, OK, "a@example.com" },
	{ "<a@example.com>   ", 1, 0, OK, "a@example.com" },
	{ "<A.B+tag@Example.COM>", 1, 0, OK, "A.B+tag@Example.COM" },
	{ "<!#$%&'*+-/=?^_`{|}~@example.com>", 1, 0, OK,
	  "!#$%&'*+-/=?^_`{|}~@example.com" },
	{ "<a@localhost>", 1, 0, OK, "a@localhost" },
	{ "<a@e-x.com>", 1, 0, OK, "a@e-x.com" },
	{ "<a@123.example>", 1, 0, OK, "a@123.example" },
	/* quoted local parts */
	{ "<\"a b\"@example.com>", 1, 0, OK, "\"a b\"@example.com" },
	{ "<\"a\\\"b\"@example.com>", 1, 0, OK, "\"a\\\"b\"@example.com" },
	{ "<\"a>b\"@example.com>", 1, 0, OK, "\"a>b\"@example.com" },
	{ "<\"a@b\"@example.com>", 1, 0, OK, "\"a@b\"@example.com" },
	{ "<\"\"@example.com>", 1, 0, OK, "\"\"@example.com" },
	{ "<\"a\\\\\"@example.com>", 1, 0, OK, "\"a\\\\\"@example.com" },
	{ "<\"a\"b@example.com>", 1, 0, SYN },
	{ "<\"a@example.com>", 1, 0, SYN },
	{ "<\"a\\\"@example.com>", 1, 0, SYN },
	{ "<a\"b\"@example.com>", 1, 0, SYN },
	/* address literals */
	{ "<a@[192.0.2.1]>", 1, 0, OK, "a@[192.0.2.1]" },
	{ "<a@[IPv6:2001:db8::1]>", 1, 0, OK, "a@[IPv6:2001:db8::1]" },
	{ "<a@[ipv6:::1]>", 1, 0, OK, "a@[ipv6:::1]" },
	{ "<a@[300.1.1.1]>", 1, 0, SYN },
	{ "<a@[1.2.3]>", 1, 0, SYN },
	{ "<a@[2001:db8::1]>", 1, 0, SYN },
	{ "<a@[IPv6:1.2.3.4]>", 1, 0, SYN },
	{ "<a@[IPv6:zz]>", 1, 0, SYN },
	{ "<a@[x-tag:foo]>", 1, 0, SYN },
	{ "<a@[]>", 1, 0, SYN },
	{ "<a@[192.0.2.1>", 1, 0, SYN },
	/* brackets and general syntax */
	{ "a@example.com", 1, 0, SYN },
	{ "<a@example.com", 1, 0, SYN },
	{ "a@example.com>", 1, 0, SYN },
	{ "<a@example.com>x", 1, 0, SYN },
	{ "<<a@example.com>>", 1, 0, SYN },
	{ "<a b@example.com>", 1, 0, SYN },
	{ "", 1, 0, SYN },
	{ "<a@example.com> <b@example.com>", 1, 0, PRM },
	{ "<a..b@example.com>", 1, 0, SYN },
	{ "<.a@example.com>", 1, 0, SYN },
	{ "<a.@example.com>", 1, 0, SYN },
	{ "<a(b)@example.com>", 1, 0, SYN },
	{ "<a,b@example.com>", 1, 0, SYN },
	{ "<a@b@example.com>", 1, 0, SYN },
	{ "<a>", 1, 0, SYN },
	{ "<a@>", 1, 0, SYN },
	{ "<@example.com>", 1, 0, SYN },
	{ "<a@-ex.com>", 1, 0, SYN },
	{ "<a@ex-.com>", 1, 0, SYN },
	{ "<a@ex..com>", 1, 0, SYN },
	{ "<a@.ex.com>", 1, 0, SYN },
	{ "<a@ex.com.>", 1, 0, SYN },
	{ "<a@b_c.com>", 1, 0, SYN },
	{ "<a@b\x01.com>", 1, 0, SYN },
	{ "<Postmaster>", 1, 0, SYN },		/* RCPT only */
	/* source routes: accepted, route dropped */
	{ "<@r1.example,@r2.example:a@example.com>", 1, 0, OK,
	  "a@example.com" },
	{ "<@r1.example:a@example.com>", 1, 0, OK, "a@example.com" },
	{ "<@r1.example:>", 1, 0, SYN },
	{ "<@:a@example.com>", 1, 0, SYN },
	{ "<@r1.example,:a@example.com>", 1, 0, SYN },
	{ "<@-bad:a@example.com>", 1, 0, SYN },
	/* SIZE (RFC 1870) */
	{ "<a@b.c> SIZE=1000", 1, 0, OK, "a@b.c", 1, 1000 },
	{ "<a@b.c> size=0", 1, 0, OK, "a@b.c", 1, 0 },
	{ "<a@b.c> SIZE=18446744073709551615", 1, 0, OK, "a@b.c", 1,
	  UINT64_MAX },
	{ "<a@b.c> SIZE=18446744073709551616", 1, 0, PRM },
	{ "<a@b.c> SIZE=99999999999999999999", 1, 0, PRM },
	{ "<a@b.c> SIZE=000000000000000000001", 1, 0, PRM },
	{ "<a@b.c> SIZE=", 1, 0, PRM },
	{ "<a@b.c> SIZE", 1, 0, PRM },
	{ "<a@b.c> SIZE=12a", 1, 0, PRM },
	{ "<a@b.c> SIZE=-1", 1, 0, PRM },
	{ "<a@b.c> SIZE=1 SIZE=2", 1, 0, PRM },
	{ "<a@b.c> SIZE=1 size=1", 1, 0, PRM },
	{ "<a@b.c> SIZE=1=2", 1, 0, PRM },
	/* BODY */
	{ "<a@b.c> BODY=7BIT", 1, 0, OK, "a@b.c", 0, 0, 1 },
	{ "<a@b.c> body=8bitmime", 1, 0, OK, "a@b.c", 0, 0, 2 },
	{ "<a@b.c> BODY=BINARYMIME", 1, 0, OK, "a@b.c", 0, 0, 3 },
	{ "<a@b.c> BODY=9BIT", 1, 0, PRM },
	{ "<a@b.c> BODY", 1, 0, PRM },
	/* SMTPUTF8 */
	{ "<a@b.c> SMTPUTF8", 1, 0, OK, "a@b.c", 0, 0, 0, 1 },
	{ "<a@b.c> smtputf8", 1, 0, OK, "a@b.c", 0, 0, 0, 1 },
	{ "<a@b.c> SMTPUTF8=yes", 1, 0, PRM },
	{ "<a@b.c> SMTPUTF8 SMTPUTF8", 1, 0, PRM },
	/* AUTH (RFC 4954 5) */
	{ "<a@b.c> AUTH=<>", 1, 0, OK, "a@b.c", 0, 0, 0, 0, 1 },
	{ "<a@b.c> AUTH=alice+40example.com", 0, 0, OK, "a@b.c", 0, 0, 0, 0,
	  1 },
	{ "<a@b.c> AUTH=a+4", 1, 0, PRM },
	{ "<a@b.c> AUTH=a+4a", 1, 0, PRM },
	{ "<a@b.c> AUTH=", 1, 0, PRM },
	/* ENVID, RET (RFC 3461) */
	{ "<a@b.c> ENVID=QQ314159", 1, 0, OK, "a@b.c", 0, 0, 0, 0, 0, 0,
	  "QQ314159" },
	{ "<a@b.c> ENVID=a+2Bb", 1, 0, OK, "a@b.c", 0, 0, 0, 0, 0, 0,
	  "a+2Bb" },
	{ "<a@b.c> ENVID=a+zz", 1, 0, PRM },
	{ "<a@b.c> ENVID=QQ314159", 0, 0, PRM },
	{ "<a@b.c> RET=FULL", 1, 0, OK, "a@b.c", 0, 0, 0, 0, 0, ENV_RET_FULL },
	{ "<a@b.c> ret=hdrs", 1, 0, OK, "a@b.c", 0, 0, 0, 0, 0, ENV_RET_HDRS },
	{ "<a@b.c> RET=BODY", 1, 0, PRM },
	{ "<a@b.c> RET=FULL", 0, 0, PRM },
	{ "<a@b.c> RET=FULL RET=HDRS", 1, 0, PRM },
	/* RCPT-only, unknown and malformed parameters */
	{ "<a@b.c> NOTIFY=NEVER", 1, 0, PRM },
	{ "<a@b.c> ORCPT=rfc822;a@b.c", 1, 0, PRM },
	{ "<a@b.c> FOO=bar", 1, 0, PRM },
	{ "<a@b.c> X-FOO", 1, 0, PRM },
	{ "<a@b.c> =x", 1, 0, PRM },
	{ "<a@b.c> -X=1", 1, 0, PRM },
	{ "<a@b.c> SIZE=10\tBODY=8BITMIME", 1, 0, PRM },
	{ "<a@b.c> SIZE=\x7f", 1, 0, PRM },
	/* everything at once */
	{ "<a@b.c>  SIZE=10   BODY=8BITMIME SMTPUTF8 AUTH=<> ENVID=x RET=HDRS",
	  1, 0, OK, "a@b.c", 1, 10, 2, 1, 1, ENV_RET_HDRS, "x" },
	/* UTF-8 (RFC 6531) */
	{ "<j\xc3\xbcrgen@example.com>", 1, 0, U8 },
	{ "<j\xc3\xbcrgen@example.com> SMTPUTF8", 1, 0, OK,
	  "j\xc3\xbcrgen@example.com", 0, 0, 0, 1, .utf8 = 1 },
	{ "<a@b\xc3\xbc" "cher.example>", 1, 0, U8 },
	{ "<a@b\xc3\xbc" "cher.example> SMTPUTF8", 1, 0, OK,
	  "a@b\xc3\xbc" "cher.example", 0, 0, 0, 1, .utf8 = 1 },
	{ "<\"j\xc3\xbc\"@x.com> SMTPUTF8", 1, 0, OK, "\"j\xc3\xbc\"@x.com",
	  0, 0, 0, 1, .utf8 = 1 },
	{ "<\xf0\x9f\x98\x80@x.com> SMTPUTF8", 1, 0, OK,
	  "\xf0\x9f\x98\x80@x.com", 0, 0, 0, 1, .utf8 = 1 },
	{ "<\xc3\x28@x.com> SMTPUTF8", 1, 0, SYN },		/* bad continuation */
	{ "<\xc0\xaf@x.com> SMTPUTF8", 1, 0, SYN },		/* overlong */
	{ "<\xe0\x80\xaf@x.com> SMTPUTF8", 1, 0, SYN },	/* overlong */
	{ "<\xed\xa0\x80@x.com> SMTPUTF8", 1, 0, SYN },	/* surrogate */
	{ "<\xf4\x90\x80\x80@x.com> SMTPUTF8", 1, 0, SYN },	/* > U+10FFFF */
	{ "<\xe2\x82@x.com> SMTPUTF8", 1, 0, SYN },		/* truncated */
	{ "<\x80@x.com> SMTPUTF8", 1, 0, SYN },		/* lone continuation */
	{ "<\xff@x.com> SMTPUTF8", 1, 0, SYN },
	{ "<a@b.c> ENVID=\xc3\xbc", 1, 0, PRM },
};

static const struct path_case rcpt_cases[] = {
	{ "<b@example.com>", 1, 0, OK, "b@example.com" },
	{ " <b@example.com>", 1, 0, OK, "b@example.com" },
	{ "<>", 1, 0, SYN },
	{ "<Postmaster>", 1, 0, OK, "Postmaster" },
	{ "<postMASTER>", 1, 0, OK, "postMASTER" },
	{ "<postmaster@example.com>", 1, 0, OK, "postmaster@example.com" },
	{ "<bob>", 1, 0, SYN },
	{ "<Postmaster2>", 1, 0, SYN },
	{ "b@example.com", 1, 0, SYN },
	{ "<@r.example:b@example.com>", 1, 0, OK, "b@example.com" },
	/* NOTIFY (RFC 3461 4.1) */
	{ "<b@x.com> NOTIFY=SUCCESS,FAILURE", 1, 0, OK, "b@x.com",
	  .notify = ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE },
	{ "<b@x.com> NOTIFY=NEVER", 1, 0, OK, "b@x.com",
	  .notify = ENV_NOTIFY_NEVER },
	{ "<b@x.com> notify=delay", 1, 0, OK, "b@x.com",
	  .notify = ENV_NOTIFY_DELAY },
	{ "<b@x.com> NOTIFY=DELAY,SUCCESS,FAILURE", 1, 0, OK, "b@x.com",
	  .notify = ENV_NOTIFY_DELAY | ENV_NOTIFY_SUCCESS |
	  ENV_NOTIFY_FAILURE },
	{ "<b@x.com> NOTIFY=NEVER,SUCCESS", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=SUCCESS,NEVER", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=", 1, 0, PRM },
	{ "<b@x.com> NOTIFY", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=SUCCESS,", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=,SUCCESS", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=SUCCESS,,DELAY", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=BOGUS", 1, 0, PRM },
	{ "<b@x.com> NOTIFY=SUCCESS", 0, 0, PRM },
	{ "<b@x.com> NOTIFY=NEVER NOTIFY=NEVER", 1, 0, PRM },
	/* ORCPT (RFC 3461 4.2) */
	{ "<b@x.com> ORCPT=rfc822;b@x.com", 1, 0, OK, "b@x.com",
	  .orcpt = "rfc822;b@x.com" },
	{ "<b@x.com> ORCPT=RFC822;b+40x.com", 1, 0, OK, "b@x.com",
	  .orcpt = "RFC822;b+40x.com" },
	{ "<b@x.com> ORCPT=rfc822;b@x.com NOTIFY=FAILURE", 1, 0, OK,
	  "b@x.com", .notify = ENV_NOTIFY_FAILURE, .orcpt = "rfc822;b@x.com" },
	{ "<b@x.com> ORCPT=b@x.com", 1, 0, PRM },
	{ "<b@x.com> ORCPT=x400;b", 1, 0, PRM },
	{ "<b@x.com> ORCPT=rfc822;", 1, 0, PRM },
	{ "<b@x.com> ORCPT=rfc822;b+4", 1, 0, PRM },
	{ "<b@x.com> ORCPT=rfc822;b@x.com", 0, 0, PRM },
	{ "<b@x.com> ORCPT=rfc822;a ORCPT=rfc822;b", 1, 0, PRM },
	/* MAIL-only and unknown parameters */
	{ "<b@x.com> SIZE=10", 1, 0, PRM },
	{ "<b@x.com> BODY=8BITMIME", 1, 0, PRM },
	{ "<b@x.com> SMTPUTF8", 1, 1, PRM },
	{ "<b@x.com> RET=FULL", 1, 0, PRM },
	{ "<b@x.com> XFOO=1", 1, 0, PRM },
	/* UTF-8: allowed when the transaction declared SMTPUTF8 */
	{ "<j\xc3\xbc@x.com>", 1, 0, U8 },
	{ "<j\xc3\xbc@x.com>", 1, 1, OK, "j\xc3\xbc@x.com", .utf8 = 1 },
	{ "<b@\xc3\xbc.example>", 1, 1, OK, "b@\xc3\xbc.example", .utf8 = 1 },
	{ "<j\xc3@x.com>", 1, 1, SYN },
};

static void
check_path(const char *what, const struct path_case *c, int rc,
    const struct smtp_path *p)
{
	if (rc != c->rc)
		fail_msg("%s \"%s\": rc %d want %d", what, c->args, rc, c->rc);
	if (rc != SMTP_P_OK) {
		/* On error the struct is left cleared. */
		if (p->addr[0] != '\0' || p->envid != NULL || p->orcpt != NULL)
			fail_msg("%s \"%s\": not cleared on error", what,
			    c->args);
		return;
	}
	if (strcmp(p->addr, c->addr) != 0)
		fail_msg("%s \"%s\": addr \"%s\" want \"%s\"", what, c->args,
		    p->addr, c->addr);
	if (p->has_size != c->has_size || p->size != c->size ||
	    p->body != c->body || p->smtputf8 != c->smtputf8 ||
	    p->auth_given != c->auth || p->ret != c->ret ||
	    p->notify != c->notify || p->utf8 != c->utf8)
		fail_msg("%s \"%s\": parameters differ (size %d/%llu body %d "
		    "utf8 %d/%d auth %d ret %d notify %u)", what, c->args,
		    p->has_size, (unsigned long long)p->size, p->body,
		    p->smtputf8, p->utf8, p->auth_given, p->ret, p->notify);
	if ((c->envid == NULL) != (p->envid == NULL) ||
	    (c->envid != NULL && strcmp(c->envid, p->envid) != 0))
		fail_msg("%s \"%s\": envid \"%s\"", what, c->args,
		    p->envid ? p->envid : "(null)");
	if ((c->orcpt == NULL) != (p->orcpt == NULL) ||
	    (c->orcpt != NULL && strcmp(c->orcpt, p->orcpt) != 0))
		fail_msg("%s \"%s\": orcpt \"%s\"", what, c->args,
		    p->orcpt ? p->orcpt : "(null)");
}

static void
test_mail(void **state)
{
	struct smtp_path p;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(mail_cases); i++) {
		int rc = smtp_parse_mail(mail_cases[i].args,
		    mail_cases[i].allow_dsn, &p);

		check_path("MAIL", &mail_cases[i], rc, &p);
		smtp_path_clear(&p);
	}
	assert_int_equal(smtp_parse_mail(NULL, 1, &p), SMTP_P_SYNTAX);
}

static void
test_rcpt(void **state)
{
	struct smtp_path p;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(rcpt_cases); i++) {
		int rc = smtp_parse_rcpt(rcpt_cases[i].args,
		    rcpt_cases[i].allow_dsn, rcpt_cases[i].utf8_ok, &p);

		check_path("RCPT", &rcpt_cases[i], rc, &p);
		smtp_path_clear(&p);
	}
}

/* ------------------------------------------------------------------ */
/* Length limits, built at run time. */

static char *
rep(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A valid domain name of exactly n octets (labels of at most 63). */
static char *
domain_of(size_t n)
{
	char *s = malloc(n + 1);
	size_t off = 0;

	assert_non_null(s);
	while (off < n) {
		size_t left = n - off, lab = left <= 63 ? left : 63;

		if (left > 63 && left - 63 < 2)
			lab = 61;	/* keep the next label non-empty */
		memset(s + off, 'd', lab);
		off += lab;
		if (off < n)
			s[off++] = '.';
	}
	s[n] = '\0';
	assert_int_equal(strlen(s), n);
	return s;
}

static int
mail_of(const char *local, const char *domain)
{
	struct smtp_path p;
	char buf[1024];
	int rc;

	snprintf(buf, sizeof(buf), "<%s@%s>", local, domain);
	rc = smtp_parse_mail(buf, 0, &p);
	if (rc == SMTP_P_OK) {
		snprintf(buf, sizeof(buf), "%s@%s", local, domain);
		assert_string_equal(p.addr, buf);
	}
	smtp_path_clear(&p);
	return rc;
}

static void
test_lengths(void **state)
{
	char *l64 = rep('l', 64), *l65 = rep('l', 65);
	char *lab63 = rep('d', 63), *lab64 = rep('d', 64);
	char *d255 = domain_of(255), *d256 = domain_of(256);
	char *d189 = domain_of(189), *d190 = domain_of(190);
	char buf[600];
	size_t i;

	(void)state;
	/* RFC 5321 4.5.3.1.1: local part 64 */
	assert_int_equal(mail_of(l64, "example.com"), SMTP_P_OK);
	assert_int_equal(mail_of(l65, "example.com"), SMTP_P_TOOLONG);
	/* quoted local part: the quotes count */
	snprintf(buf, sizeof(buf), "\"%.62s\"@x", l64);
	assert_int_equal(smtp_mailbox_valid(buf, strlen(buf), 0), SMTP_P_OK);
	snprintf(buf, sizeof(buf), "\"%.63s\"@x", l64);
	assert_int_equal(smtp_mailbox_valid(buf, strlen(buf), 0),
	    SMTP_P_TOOLONG);
	/* RFC 1035: label 63 */
	assert_int_equal(mail_of("a", lab63), SMTP_P_OK);
	assert_int_equal(mail_of("a", lab64), SMTP_P_SYNTAX);
	/* RFC 5321 4.5.3.1.2: domain 255 (checked on the mailbox) */
	snprintf(buf, sizeof(buf), "a@%s", d255);
	assert_int_equal(smtp_mailbox_valid(buf, strlen(buf), 0), SMTP_P_OK);
	snprintf(buf, sizeof(buf), "a@%s", d256);
	assert_int_equal(smtp_mailbox_valid(buf, strlen(buf), 0),
	    SMTP_P_TOOLONG);
	/* RFC 5321 4.5.3.1.3: path 256 with the brackets:
	 * "<" 64 "@" 189 ">" = 256 */
	assert_int_equal(mail_of(l64, d189), SMTP_P_OK);
	assert_int_equal(mail_of(l64, d190), SMTP_P_TOOLONG);
	/* a huge argument is bounded */
	memset(buf, 'a', sizeof(buf) - 1);
	buf[0] = '<';
	buf[sizeof(buf) - 1] = '\0';
	{
		struct smtp_path p;

		assert_int_equal(smtp_parse_mail(buf, 1, &p), SMTP_P_TOOLONG);
		buf[300] = '>';
		buf[301] = '\0';
		assert_int_equal(smtp_parse_rcpt(buf, 1, 0, &p),
		    SMTP_P_TOOLONG);
	}
	/* ENVID: 100 characters */
	for (i = 99; i <= 101; i++) {
		struct smtp_path p;
		char *v = rep('e', i);
		int rc;

		snprintf(buf, sizeof(buf), "<a@b.c> ENVID=%s", v);
		rc = smtp_parse_mail(buf, 1, &p);
		assert_int_equal(rc, i <= 100 ? SMTP_P_OK : SMTP_P_PARAM);
		if (rc == SMTP_P_OK)
			assert_string_equal(p.envid, v);
		smtp_path_clear(&p);
		free(v);
	}
	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
	free(d255);
	free(d256);
	free(d189);
	free(d190);
}

static void
test_mailbox_valid(void **state)
{
	static const struct {
		const char	*addr;
		int		 utf8;
		int		 rc;
	} cases[] = {
		{ "a@b", 0, OK },
		{ "a@b.example", 0, OK },
		{ "\"x y\"@b", 0, OK },
		{ "a@[10.0.0.1]", 0, OK },
		{ "a@[IPv6:fe80::1]", 0, OK },
		{ "a", 0, SYN },
		{ "@b", 0, SYN },
		{ "a@", 0, SYN },
		{ "", 0, SYN },
		{ "a@b c", 0, SYN },
		{ "\xc3\xbc@b", 0, U8 },
		{ "\xc3\xbc@b", 1, OK },
		{ "\xc3@b", 1, SYN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		int rc = smtp_mailbox_valid(cases[i].addr,
		    strlen(cases[i].addr), cases[i].utf8);

		if (rc != cases[i].rc)
			fail_msg("mailbox \"%s\": rc %d want %d",
			    cases[i].addr, rc, cases[i].rc);
	}
	/* len bounds the read: no NUL needed */
	assert_int_equal(smtp_mailbox_valid("a@bXXX", 3, 0), SMTP_P_OK);
}

/* ------------------------------------------------------------------ */

static void
test_helo(void **state)
{
	static const struct {
		const char	*arg;
		int		 rc;
	} cases[] = {
		{ "example.com", 0 },
		{ "localhost", 0 },
		{ "My-Host", 0 },
		{ "my_host.local", 0 },
		{ "mail.example.com.", 0 },
		{ "[192.0.2.1]", 0 },
		{ "[IPv6:::1]", 0 },
		{ "[IPv6:2001:db8::25]", 0 },
		{ "192.0.2.1", 0 },
		{ "2001:db8::1", 0 },
		{ "::1", 0 },
		{ "", -1 },
		{ "a b", -1 },
		{ "a\tb", -1 },
		{ "exa\x01mple", -1 },
		{ "b\xc3\xbc" "cher.de", -1 },
		{ "[1.2.3]", -1 },
		{ "[2001:db8::1]", -1 },
		{ "-foo", -1 },
		{ "foo-", -1 },
		{ "a..b", -1 },
		{ ".", -1 },
		{ ".a", -1 },
		{ "foo:bar", -1 },
		{ "a/b", -1 },
	};
	char *s;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (smtp_helo_valid(cases[i].arg) != cases[i].rc)
			fail_msg("helo \"%s\": want %d", cases[i].arg,
			    cases[i].rc);
	assert_int_equal(smtp_helo_valid(NULL), -1);
	s = domain_of(255);
	assert_int_equal(smtp_helo_valid(s), 0);
	free(s);
	s = domain_of(256);
	assert_int_equal(smtp_helo_valid(s), -1);
	free(s);
	s = rep('h', 64);
	assert_int_equal(smtp_helo_valid(s), -1);	/* label > 63 */
	free(s);
}

static void
test_bdat(void **state)
{
	static const struct {
		const char	*arg;
		int		 rc;
		uint64_t	 size;
		int		 last;
	} cases[] = {
		{ "123", 0, 123, 0 },
		{ "123 LAST", 0, 123, 1 },
		{ "0 last", 0, 0, 1 },
		{ "0", 0, 0, 0 },
		{ "007 LaSt", 0, 7, 1 },
		{ "18446744073709551615", 0, UINT64_MAX, 0 },
		{ "18446744073709551616", -1, 0, 0 },
		{ "000000000000000000001", -1, 0, 0 },
		{ "", -1, 0, 0 },
		{ "abc", -1, 0, 0 },
		{ "123 ", -1, 0, 0 },
		{ "123 LASTX", -1, 0, 0 },
		{ "123 LAS", -1, 0, 0 },
		{ "123  LAST", -1, 0, 0 },
		{ "123 LAST ", -1, 0, 0 },
		{ "123\tLAST", -1, 0, 0 },
		{ " 123", -1, 0, 0 },
		{ "-1", -1, 0, 0 },
		{ "+1", -1, 0, 0 },
		{ "12 3", -1, 0, 0 },
		{ "0x10", -1, 0, 0 },
		{ "LAST", -1, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		uint64_t size = 42;
		int last = 42, rc;

		rc = smtp_parse_bdat(cases[i].arg, &size, &last);
		if (rc != cases[i].rc)
			fail_msg("bdat \"%s\": rc %d want %d", cases[i].arg,
			    rc, cases[i].rc);
		if (rc == 0 && (size != cases[i].size ||
		    last != cases[i].last))
			fail_msg("bdat \"%s\": size %llu last %d",
			    cases[i].arg, (unsigned long long)size, last);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_mailbox_valid),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_bdat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
