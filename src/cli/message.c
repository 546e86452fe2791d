/*
 * message — reading a message from stdin for send/sendmail (see
 * message.h).  Owns the recipient list it builds (msg_rcpts_free()).
 *
 * The header is held in memory (at most MSG_HEADER_MAX) because -t must
 * see all of it before the first byte is written; the body is streamed.
 * Header fields are unfolded only for parsing; what is written is the
 * caller's bytes, minus Bcc fields (with their continuation lines).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/message.h"

void
msg_rcpts_free(struct msg_rcpts *r)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int
msg_rcpt_add(struct msg_rcpts *r, const char *addr, size_t len,
    const char *qualify)
{
	char	**nv, *a;
	size_t	 i, ql;

	while (len > 0 && isspace((unsigned char)*addr)) {
		addr++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)addr[len - 1]))
		len--;
	if (len == 0)
		return 0;
	if (len > MSG_ADDR_MAX || r->n >= MSG_RCPT_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)addr[i] <= ' ' || addr[i] == '<' ||
		    addr[i] == '>' || addr[i] == 0x7f)
			return -1;
	ql = qualify != NULL && memchr(addr, '@', len) == NULL ?
	    strlen(qualify) + 1 : 0;
	if ((a = malloc(len + ql + 1)) == NULL)
		return -1;
	memcpy(a, addr, len);
	if (ql > 0) {
		a[len] = '@';
		memcpy(a + len + 1, qualify, ql - 1);
	}
	a[len + ql] = '\0';
	/* the same address twice is one recipient */
	for (i = 0; i < r->n; i++)
		if (strcasecmp(r->v[i], a) == 0) {
			free(a);
			return 0;
		}
	if ((nv = realloc(r->v, (r->n + 1) * sizeof(*nv))) == NULL) {
		free(a);
		return -1;
	}
	r->v = nv;
	r->v[r->n++] = a;
	return 0;
}

int
msg_addr_list(const char *s, size_t len, struct msg_rcpts *rcpts)
{
	char	 cur[MSG_ADDR_MAX + 1], ang[MSG_ADDR_MAX + 1];
	size_t	 i, cl = 0, al = 0;
	int	 inq = 0, depth = 0, inang = 0, hadang = 0, over = 0;

	for (i = 0; i <= len; i++) {
		char	 c = i < len ? s[i] : ',';

		if (inq) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				inq = 0;
			continue;	/* quoted display names are dropped */
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (inang) {
			if (c == '>')
				inang = 0;
			else if (al < MSG_ADDR_MAX)
				ang[al++] = c;
			else
				over = 1;
			continue;
		}
		switch (c) {
		case '"':
			if (cl == 0 || !hadang)
				inq = 1;
			/* "local part"@domain is rare in headers; treated as
			 * a display name */
			cl = 0;
			continue;
		case '(':
			depth = 1;
			continue;
		case '<':
			inang = 1;
			hadang = 1;
			al = 0;
			continue;
		case ':':
			/* group: "name:" starts it */
			cl = 0;
			continue;
		case ',':
		case ';':
			if (over)
				return -1;
			if (hadang) {
				if (msg_rcpt_add(rcpts, ang, al, NULL) == -1)
					return -1;
			} else if (msg_rcpt_add(rcpts, cur, cl, NULL) == -1)
				return -1;
			cl = al = 0;
			hadang = over = 0;
			continue;
		default:
			if (cl < MSG_ADDR_MAX)
				cur[cl++] = c;
			else if (!hadang)
				over = 1;
		}
	}
	return 0;
}

/* Field name of a header line, case-insensitive compare. */
static int
field_is(const char *line, size_t len, const char *name)
{
	size_t	 n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/*
 * "To: root" or "From: alice (Cron Daemon)" (unfolded field, flen
 * octets): writes "To: root@QUALIFY" (comment kept) into out and returns
 * its length; 0 when the field is not an address field holding one bare
 * name (lists, groups, quoted or bracketed forms are left alone).
 */
static size_t
qualify_field(const char *field, size_t flen, const char *qualify, char *out,
    size_t outlen)
{
	static const char *const names[] = { "From", "To", "Cc", "Reply-To",
	    "Sender" };
	const char	*c, *w, *we, *rest;
	size_t		 i;
	int		 n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (field_is(field, flen, names[i]))
			break;
	if (i == sizeof(names) / sizeof(names[0]))
		return 0;
	c = strchr(field, ':') + 1;
	for (w = c; *w == ' ' || *w == '\t'; w++)
		;
	for (we = w; *we != '\0' && strchr(" \t(@<>,;:\"\\[]", *we) == NULL;
	    we++)
		;
	if (we == w || we - w > MSG_ADDR_MAX)
		return 0;
	for (rest = we; *rest == ' ' || *rest == '\t'; rest++)
		;
	/* only a comment may follow, closed at the very end */
	if (*rest != '\0' && (*rest != '(' || field[flen - 1] != ')' ||
	    memchr(rest, '@', flen - (size_t)(rest - field)) != NULL))
		return 0;
	n = snprintf(out, outlen, "%.*s %.*s@%s%s%s\n", (int)(c - field),
	    field, (int)(we - w), w, qualify, *rest != '\0' ? " " : "", rest);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one line (with its LF) into a growing buffer.  Returns its length
 * (0 at EOF) or -1. */
static ssize_t
read_line(FILE *in, char **buf, size_t *cap)
{
	return getline(buf, cap, in);
}

static int
is_dot_line(const char *l, size_t n)
{
	return (n == 2 && l[0] == '.' && l[1] == '\n') ||
	    (n == 3 && l[0] == '.' && l[1] == '\r' && l[2] == '\n') ||
	    (n == 1 && l[0] == '.');
}

int
msg_copy(FILE *in, int outfd, const struct msg_opts *o,
    struct msg_rcpts *rcpts, uint64_t *size, char *err, size_t errlen)
{
	char		*line = NULL, *hdr = NULL, *field = NULL, extra[1024];
	size_t		 cap = 0, hlen = 0, hcap = 0, flen = 0, i, start;
	ssize_t		 n;
	int		 rc = -1, ended = 0, has_from = 0, has_date = 0;
	int		 has_msgid = 0, bcc = 0, in_header = 1;
	uint64_t	 total = 0;
	time_t		 now;
	struct tm	 tm;
	char		 date[64], qbuf[2048];
	size_t		 ql;

	*size = 0;
	/* 1. the header, into memory */
	while (in_header && (n = read_line(in, &line, &cap)) > 0) {
		if (o->dot_ends && is_dot_line(line, (size_t)n)) {
			ended = 1;
			break;
		}
		if (hlen + (size_t)n > MSG_HEADER_MAX) {
			snprintf(err, errlen, "the message header is longer "
			    "than %d octets", MSG_HEADER_MAX);
			goto out;
		}
		if (hlen + (size_t)n + 1 > hcap) {
			char	*nh;

			hcap = (hlen + (size_t)n + 1) * 2;
			if ((nh = realloc(hdr, hcap)) == NULL)
				goto nomem;
			hdr = nh;
		}
		memcpy(hdr + hlen, line, (size_t)n);
		hlen += (size_t)n;
		if (line[0] == '\n' || (line[0] == '\r' && n >= 2 &&
		    line[1] == '\n'))
			in_header = 0;
		/* a line that cannot be a header field: the header is over
		 * (a body with no blank line before it) */
		else if (line[0] != ' ' && line[0] != '\t' &&
		    memchr(line, ':', (size_t)n) == NULL) {
			in_header = 0;
		}
	}
	if (hdr == NULL && (hdr = malloc(1)) == NULL)
		goto nomem;

	/* 2. walk the header fields: collect, find, strip Bcc */
	if ((field = malloc(hlen + 1)) == NULL)
		goto nomem;
	start = 0;
	if (o->prepend != NULL && write_all(outfd, o->prepend,
	    strlen(o->prepend)) == -1)
		goto ioerr;
	total += o->prepend != NULL ? strlen(o->prepend) : 0;
	{
		/* the end of the header section (blank line or body) */
		size_t	 hend = 0, ll;
		int	 blank = 0;

		while (hend < hlen) {
			const char	*l = hdr + hend;
			const char	*nl = memchr(l, '\n', hlen - hend);

			ll = nl != NULL ? (size_t)(nl - l) + 1 : hlen - hend;
			if ((ll >= 1 && l[0] == '\n') || (ll >= 2 && l[0] == '\r'
			    && l[1] == '\n')) {
				blank = 1;
				break;
			}
			if (l[0] != ' ' && l[0] != '\t' &&
			    memchr(l, ':', ll) == NULL)
				break;
			hend += ll;
		}
		(void)blank;
		i = 0;
		while (i < hend) {
			size_t	 fs = i, fe;

			/* one field: its line and continuation lines */
			do {
				const char *nl = memchr(hdr + i, '\n',
				    hend - i);

				i = nl != NULL ? (size_t)(nl - hdr) + 1 : hend;
			} while (i < hend && (hdr[i] == ' ' || hdr[i] == '\t'));
			fe = i;
			/* unfolded copy for parsing */
			flen = 0;
			for (size_t j = fs; j < fe; j++)
				if (hdr[j] != '\r' && hdr[j] != '\n')
					field[flen++] = hdr[j];
			field[flen] = '\0';
			bcc = field_is(field, flen, "Bcc");
			if (field_is(field, flen, "From"))
				has_from = 1;
			else if (field_is(field, flen, "Date"))
				has_date = 1;
			else if (field_is(field, flen, "Message-ID"))
				has_msgid = 1;
			if (o->collect && (field_is(field, flen, "To") ||
			    field_is(field, flen, "Cc") || bcc)) {
				const char *c = strchr(field, ':') + 1;

				if (msg_addr_list(c, flen - (size_t)(c - field),
				    rcpts) == -1) {
					snprintf(err, errlen, "bad or too many "
					    "addresses in the header");
					goto out;
				}
			}
			if (bcc)
				continue;	/* never sent */
			if (o->qualify != NULL && (ql = qualify_field(field,
			    flen, o->qualify, qbuf, sizeof(qbuf))) > 0) {
				if (write_all(outfd, qbuf, ql) == -1)
					goto ioerr;
				total += ql;
				continue;
			}
			if (write_all(outfd, hdr + fs, fe - fs) == -1)
				goto ioerr;
			total += fe - fs;
		}
		start = hend;
	}
	/* 3. fields a sendmail adds when missing */
	extra[0] = '\0';
	if (!has_from && o->from_header != NULL)
		snprintf(extra, sizeof(extra), "From: %s\n", o->from_header);
	if (!has_date) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    "Date: %s\n", date);
	}
	if (!has_msgid && o->msgid_domain != NULL)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    "Message-ID: <%lld.%08x%08x@%s>\n", (long long)time(NULL),
		    randombytes_random(), randombytes_random(),
		    o->msgid_domain);
	if (extra[0] != '\0') {
		if (write_all(outfd, extra, strlen(extra)) == -1)
			goto ioerr;
		total += strlen(extra);
	}
	/* no header at all before the body: keep a blank line between */
	if (start == 0 && hlen > 0 && hdr[0] != '\n' && hdr[0] != '\r') {
		if (write_all(outfd, "\n", 1) == -1)
			goto ioerr;
		total++;
	}
	if (hlen > start) {
		if (write_all(outfd, hdr + start, hlen - start) == -1)
			goto ioerr;
		total += hlen - start;
	}
	/* 4. the body, streamed */
	while (!ended && (n = read_line(in, &line, &cap)) > 0) {
		if (o->dot_ends && is_dot_line(line, (size_t)n))
			break;
		if (write_all(outfd, line, (size_t)n) == -1)
			goto ioerr;
		total += (uint64_t)n;
	}
	if (ferror(in)) {
		snprintf(err, errlen, "cannot read the message: %s",
		    strerror(errno));
		goto out;
	}
	*size = total;
	rc = 0;
	goto out;
ioerr:
	snprintf(err, errlen, "cannot write the message: %s",
	    strerror(errno));
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	free(line);
	free(hdr);
	free(field);
	return rc;
}
