/*
 * apppass — app password generation, normalisation and keyed hashing, and
 * the server secret file (see apppass.h).
 *
 * Owns no state.  Failures: -1 with a message (serverkey_load) or -1
 * alone; secrets are wiped from the stack with sodium_memzero().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/apppass.h"

int
apppass_normalize(const char *in, size_t len, char out[APPPASS_LEN + 1])
{
	size_t i, n = 0;
	unsigned char c;

	out[0] = '\0';
	if (in == NULL || len > 64)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == ' ' || c == '\t')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c < 'a' || c > 'z' || n >= APPPASS_LEN) {
			sodium_memzero(out, APPPASS_LEN + 1);
			return -1;
		}
		out[n++] = (char)c;
	}
	if (n != APPPASS_LEN) {
		sodium_memzero(out, APPPASS_LEN + 1);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

void
apppass_generate(char out[APPPASS_LEN + 1], char shown[APPPASS_SHOWN_LEN + 1])
{
	size_t i, o = 0;

	for (i = 0; i < APPPASS_LEN; i++) {
		/* randombytes_uniform has no modulo bias */
		out[i] = (char)('a' + randombytes_uniform(26));
		if (i > 0 && i % 4 == 0)
			shown[o++] = ' ';
		shown[o++] = out[i];
	}
	out[APPPASS_LEN] = '\0';
	shown[o] = '\0';
}

int
apppass_hash(const unsigned char key[SERVERKEY_LEN],
    const char norm[APPPASS_LEN], unsigned char out[APPPASS_HASH_LEN])
{
	return crypto_generichash(out, APPPASS_HASH_LEN,
	    (const unsigned char *)norm, APPPASS_LEN, key, SERVERKEY_LEN) == 0 ?
	    0 : -1;
}

static int
read_key(const char *path, unsigned char key[SERVERKEY_LEN], char *err,
    size_t errlen)
{
	struct stat sb;
	ssize_t r;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return errno == ENOENT ? 1 : (snprintf(err, errlen,
		    "cannot open %s: %s", path, strerror(errno)), -1);
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size != SERVERKEY_LEN) {
		snprintf(err, errlen, "%s: not a %d-byte key file", path,
		    SERVERKEY_LEN);
		close(fd);
		return -1;
	}
	while (got < SERVERKEY_LEN) {
		r = read(fd, key + got, SERVERKEY_LEN - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "cannot read %s", path);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

int
serverkey_load(const char *path, unsigned char key[SERVERKEY_LEN], char *err,
    size_t errlen)
{
	char tmp[4096];
	unsigned char nk[SERVERKEY_LEN];
	int fd, rc, tries;
	ssize_t w;

	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no server key path");
		return -1;
	}
	for (tries = 0; tries < 3; tries++) {
		if ((rc = read_key(path, key, err, errlen)) <= 0)
			return rc;
		/* Missing: make one in a private temp file, link it in. */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
		    (long)getpid()) >= sizeof(tmp)) {
			snprintf(err, errlen, "server key path too long");
			return -1;
		}
		randombytes_buf(nk, sizeof(nk));
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd == -1) {
			snprintf(err, errlen, "cannot create %s: %s", tmp,
			    strerror(errno));
			return -1;
		}
		w = write(fd, nk, sizeof(nk));
		sodium_memzero(nk, sizeof(nk));
		if (w != (ssize_t)sizeof(nk) || fchmod(fd, 0600) == -1 ||
		    fsync(fd) == -1) {
			snprintf(err, errlen, "cannot write %s: %s", tmp,
			    strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		close(fd);
		/* link() fails if another process won: then read theirs. */
		if (link(tmp, path) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
			unlink(tmp);
			return -1;
		}
		unlink(tmp);
	}
	snprintf(err, errlen, "cannot create %s", path);
	return -1;
}

void
serverkey_derive(const unsigned char key[SERVERKEY_LEN],
    enum serverkey_purpose purpose, unsigned char out[SERVERKEY_LEN])
{
	crypto_kdf_derive_from_key(out, SERVERKEY_LEN, (uint64_t)purpose,
	    "outpost_", key);
}
