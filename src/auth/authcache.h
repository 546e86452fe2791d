/*
 * authcache — a short-lived memory of successful argon2id checks, so a
 * client that reconnects a hundred times does not pay argon2id a hundred
 * times.
 *
 * An entry is only a 32-byte HMAC (BLAKE2b keyed with a random key made
 * per process) of (user id, stored password hash, password): nothing in it
 * can be reversed or reused elsewhere.  Because the stored hash is part of
 * the key, a password change makes every old entry miss at once; disabling
 * an account, turning on 2FA or revoking anything is read from the
 * database on every AUTH, so nothing ever depends on an entry expiring.
 * App passwords never go in (their check is cheap already).
 *
 * Bounded: a fixed table of slots with a TTL; when a probe run is full
 * the entry closest to expiry is replaced.  Thread-safe (one mutex).
 */
#ifndef OUTPOST_AUTHCACHE_H
#define OUTPOST_AUTHCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AUTHCACHE_KEYLEN	32

struct authcache;

/* slots: rounded up to a power of two (at least 16); ttl in seconds (0
 * disables the cache: every lookup misses).  NULL when out of memory. */
struct authcache *authcache_new(size_t slots, int ttl);
void	authcache_free(struct authcache *c);

void	authcache_key(const struct authcache *c, int64_t uid,
	    const char *pwhash, const char *pass, size_t passlen,
	    unsigned char out[AUTHCACHE_KEYLEN]);
/* 1 when k is present and fresh at now, else 0. */
int	authcache_lookup(struct authcache *c,
	    const unsigned char k[AUTHCACHE_KEYLEN], time_t now);
void	authcache_insert(struct authcache *c,
	    const unsigned char k[AUTHCACHE_KEYLEN], time_t now);
/* Entries currently stored and fresh (for tests and stats). */
size_t	authcache_count(struct authcache *c, time_t now);

#endif
