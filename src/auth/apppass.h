/*
 * apppass — app passwords and the server secret they are hashed with.
 *
 * An app password is 16 lowercase letters from the CSPRNG (26^16, about
 * 75 bits), shown as "abcd efgh ijkl mnop".  At AUTH, spaces and case are
 * ignored.  Its entropy makes a keyed fast hash enough (no argon2 on this
 * path): BLAKE2b-256 keyed with a subkey of the server secret, so a stolen
 * database alone does not allow an offline search.
 *
 * The server secret is 32 random bytes in DATA_DIR/secret.key (mode 0600,
 * created on first use, atomically: written to a temporary file and
 * linked into place, so concurrent first users agree on one key).  Other
 * keys are derived from it (crypto_kdf), one per purpose.
 */
#ifndef OUTPOST_APPPASS_H
#define OUTPOST_APPPASS_H

#include <stddef.h>

#define APPPASS_LEN		16
#define APPPASS_SHOWN_LEN	19	/* four groups of four, three spaces */
#define APPPASS_HASH_LEN	32
#define SERVERKEY_LEN		32

enum serverkey_purpose {
	SERVERKEY_APPPASS = 1,	/* app password hashing */
	SERVERKEY_TOTP = 2,	/* TOTP secret encryption (secretbox) */
};

/* Strips blanks, lower-cases; out gets 16 letters and a NUL.  Returns 0
 * when the result is app-password shaped, -1 otherwise (out is then ""). */
int	apppass_normalize(const char *in, size_t len,
	    char out[APPPASS_LEN + 1]);
/* A new one: out (raw, 16 letters) and shown ("abcd efgh ijkl mnop"). */
void	apppass_generate(char out[APPPASS_LEN + 1],
	    char shown[APPPASS_SHOWN_LEN + 1]);
/* Keyed hash of a normalised app password (key: SERVERKEY_APPPASS). */
int	apppass_hash(const unsigned char key[SERVERKEY_LEN],
	    const char norm[APPPASS_LEN], unsigned char out[APPPASS_HASH_LEN]);

/* Loads path, creating it (0600) when missing.  Returns 0, or -1 with a
 * message in err (unreadable, wrong size, cannot create). */
int	serverkey_load(const char *path, unsigned char key[SERVERKEY_LEN],
	    char *err, size_t errlen);
/* The subkey for one purpose. */
void	serverkey_derive(const unsigned char key[SERVERKEY_LEN],
	    enum serverkey_purpose purpose, unsigned char out[SERVERKEY_LEN]);

#endif
