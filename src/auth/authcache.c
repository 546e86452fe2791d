/*
 * authcache — bounded, TTL'd set of HMACs of successful password checks
 * (see authcache.h).
 *
 * Owns the slot table and the per-process key (in sodium_malloc'd memory,
 * wiped on free).  Failures: authcache_new() returns NULL; nothing else
 * fails — a full table replaces the entry closest to expiry.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/authcache.h"

#define AC_PROBE	8

struct ac_slot {
	unsigned char	 k[AUTHCACHE_KEYLEN];
	time_t		 expires;	/* 0: empty */
};

struct authcache {
	pthread_mutex_t	 mu;
	struct ac_slot	*slots;
	size_t		 mask;
	int		 ttl;
	unsigned char	*key;		/* crypto_generichash_KEYBYTES */
};

struct authcache *
authcache_new(size_t slots, int ttl)
{
	struct authcache *c;
	size_t n = 16;

	if (slots > (1u << 24))
		slots = 1u << 24;
	while (n < slots)
		n <<= 1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->slots = calloc(n, sizeof(*c->slots))) == NULL ||
	    (c->key = sodium_malloc(crypto_generichash_KEYBYTES)) == NULL ||
	    pthread_mutex_init(&c->mu, NULL) != 0) {
		if (c->key != NULL)
			sodium_free(c->key);
		free(c->slots);
		free(c);
		return NULL;
	}
	randombytes_buf(c->key, crypto_generichash_KEYBYTES);
	c->mask = n - 1;
	c->ttl = ttl < 0 ? 0 : ttl;
	return c;
}

void
authcache_free(struct authcache *c)
{
	if (c == NULL)
		return;
	sodium_memzero(c->slots, (c->mask + 1) * sizeof(*c->slots));
	free(c->slots);
	sodium_free(c->key);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
authcache_key(const struct authcache *c, int64_t uid, const char *pwhash,
    const char *pass, size_t passlen, unsigned char out[AUTHCACHE_KEYLEN])
{
	crypto_generichash_state st;
	unsigned char u[8];
	uint64_t hl = strlen(pwhash);
	int i;

	for (i = 0; i < 8; i++)
		u[i] = (unsigned char)((uint64_t)uid >> (8 * i));
	crypto_generichash_init(&st, c->key, crypto_generichash_KEYBYTES,
	    AUTHCACHE_KEYLEN);
	crypto_generichash_update(&st, u, sizeof(u));
	/* length-prefix the hash so the fields cannot run into each other */
	for (i = 0; i < 8; i++)
		u[i] = (unsigned char)(hl >> (8 * i));
	crypto_generichash_update(&st, u, sizeof(u));
	crypto_generichash_update(&st, (const unsigned char *)pwhash, hl);
	crypto_generichash_update(&st, (const unsigned char *)pass, passlen);
	crypto_generichash_final(&st, out, AUTHCACHE_KEYLEN);
	sodium_memzero(&st, sizeof(st));
}

static size_t
ac_index(const struct authcache *c, const unsigned char *k)
{
	uint64_t v;

	memcpy(&v, k, sizeof(v));
	return (size_t)v & c->mask;
}

int
authcache_lookup(struct authcache *c, const unsigned char k[AUTHCACHE_KEYLEN],
    time_t now)
{
	size_t i, idx;
	int hit = 0;

	if (c == NULL || c->ttl == 0)
		return 0;
	pthread_mutex_lock(&c->mu);
	idx = ac_index(c, k);
	for (i = 0; i < AC_PROBE; i++) {
		struct ac_slot *s = &c->slots[(idx + i) & c->mask];

		if (s->expires > now &&
		    sodium_memcmp(s->k, k, AUTHCACHE_KEYLEN) == 0) {
			hit = 1;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void
authcache_insert(struct authcache *c, const unsigned char k[AUTHCACHE_KEYLEN],
    time_t now)
{
	struct ac_slot *best = NULL;
	size_t i, idx;

	if (c == NULL || c->ttl == 0)
		return;
	pthread_mutex_lock(&c->mu);
	idx = ac_index(c, k);
	for (i = 0; i < AC_PROBE; i++) {
		struct ac_slot *s = &c->slots[(idx + i) & c->mask];

		if (s->expires > now &&
		    sodium_memcmp(s->k, k, AUTHCACHE_KEYLEN) == 0) {
			best = s;	/* refresh in place */
			break;
		}
		if (best == NULL || s->expires < best->expires)
			best = s;
	}
	memcpy(best->k, k, AUTHCACHE_KEYLEN);
	best->expires = now + c->ttl;
	pthread_mutex_unlock(&c->mu);
}

size_t
authcache_count(struct authcache *c, time_t now)
{
	size_t i, n = 0;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i <= c->mask; i++)
		if (c->slots[i].expires > now)
			n++;
	pthread_mutex_unlock(&c->mu);
	return n;
}
