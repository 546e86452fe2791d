/*
 * session — sign-in sessions, cookies and CSRF tokens (see session.h).
 * Runs on the account page's loop thread only; no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "web/session.h"

void
web_token_new(char out[WEB_TOKEN_LEN + 1])
{
	unsigned char raw[WEB_TOKEN_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, WEB_TOKEN_LEN + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

static int
token_shaped(const char *s)
{
	size_t i;

	for (i = 0; i < WEB_TOKEN_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[WEB_TOKEN_LEN] == '\0';
}

int
web_token_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL || !token_shaped(a) || !token_shaped(b))
		return 0;
	return sodium_memcmp(a, b, WEB_TOKEN_LEN) == 0;
}

int
web_cookie_get(const char *header, const char *name, char *out,
    size_t outlen)
{
	size_t nlen = strlen(name), vlen;
	const char *p = header, *v, *end;

	if (header == NULL || outlen == 0)
		return -1;
	/* bounded by the header length: p only moves forward */
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			v = p + nlen + 1;
			vlen = (size_t)(end - v);
			while (vlen > 0 && (v[vlen - 1] == ' ' ||
			    v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= outlen)
				return -1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}

int
web_cookie_format(char *out, size_t outlen, const char *name,
    const char *value, int max_age)
{
	int n;

	n = snprintf(out, outlen, "%s=%s; Path=/; Max-Age=%d; Secure; "
	    "HttpOnly; SameSite=Strict", name, max_age < 0 ? "" : value,
	    max_age < 0 ? 0 : max_age);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

void
web_sessions_init(struct web_sessions *t, int idle, int lifetime)
{
	memset(t, 0, sizeof(*t));
	t->idle = idle;
	t->lifetime = lifetime;
}

static void
sess_free(struct web_session *s)
{
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void
web_sessions_free(struct web_sessions *t)
{
	struct web_session *s, *nx;

	for (s = t->head; s != NULL; s = nx) {
		nx = s->next;
		sess_free(s);
	}
	t->head = NULL;
	t->n = 0;
}

static int
expired(const struct web_sessions *t, const struct web_session *s,
    time_t now)
{
	return now - s->last >= t->idle || now - s->created >= t->lifetime;
}

/* Unlinks and frees every expired session; bounded by t->n. */
static void
sweep(struct web_sessions *t, time_t now)
{
	struct web_session **pp = &t->head, *s;

	while ((s = *pp) != NULL) {
		if (expired(t, s, now)) {
			*pp = s->next;
			t->n--;
			sess_free(s);
		} else
			pp = &s->next;
	}
}

void
web_session_del(struct web_sessions *t, struct web_session *s)
{
	struct web_session **pp;

	for (pp = &t->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			t->n--;
			sess_free(s);
			return;
		}
}

struct web_session *
web_session_new(struct web_sessions *t, time_t now)
{
	struct web_session *s, *oldest = NULL;

	if (t->n >= WEB_SESSIONS_MAX)
		sweep(t, now);
	if (t->n >= WEB_SESSIONS_MAX) {
		for (s = t->head; s != NULL; s = s->next)
			if (s->state == WS_ANON && !s->busy &&
			    (oldest == NULL || s->last < oldest->last))
				oldest = s;
		if (oldest == NULL)
			return NULL;
		web_session_del(t, oldest);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	web_token_new(s->id);
	web_token_new(s->csrf);
	s->state = WS_ANON;
	s->created = s->last = now;
	s->next = t->head;
	t->head = s;
	t->n++;
	return s;
}

struct web_session *
web_session_find(struct web_sessions *t, const char *id, time_t now)
{
	struct web_session *s, *hit = NULL;

	if (id == NULL || !token_shaped(id))
		return NULL;
	/* every entry is compared, so the time does not depend on where
	 * (or whether) the id matches */
	for (s = t->head; s != NULL; s = s->next)
		if (sodium_memcmp(s->id, id, WEB_TOKEN_LEN) == 0)
			hit = s;
	if (hit == NULL)
		return NULL;
	if (expired(t, hit, now)) {
		web_session_del(t, hit);
		return NULL;
	}
	hit->last = now;
	return hit;
}

void
web_session_rotate(struct web_session *s, time_t now)
{
	web_token_new(s->id);
	web_token_new(s->csrf);
	s->created = now;
	s->last = now;
}

int
web_session_max_age(const struct web_sessions *t,
    const struct web_session *s, time_t now)
{
	long left = (long)t->lifetime - (long)(now - s->created);

	return left < 1 ? 1 : (int)left;
}
