/*
 * dkim_test — key set loading (names, wrong key types, unreadable files,
 * reference counting) and signatures: the DKIM-Signature field's form
 * (tags, h= with From over-signed, folding at 78 columns) and that the
 * signature verifies with the public key over the RFC 6376 header hash
 * input (ed25519-sha256: PureEdDSA over its SHA-256, RFC 8463).  The
 * end-to-end check with an independent verifier (dkimpy) is in
 * tests/integration/t_20_dkim.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "message/canon.h"
#include "message/dkim.h"
#include "message/header.h"

static char tdir[256];

static void
write_key(const char *rel, EVP_PKEY *k)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tdir, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	if (k != NULL)
		assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0,
		    NULL, NULL), 1);
	else
		fputs("-----BEGIN PRIVATE KEY-----\ngarbage\n", fp);
	fclose(fp);
}

static int nwarn;

static void
on_warn(void *ctx, const char *text)
{
	(void)ctx;
	(void)text;
	nwarn++;
}

static int
setup(void **state)
{
	char p[512];
	EVP_PKEY *ed, *rsa;

	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/dkim_test.XXXXXX");
	assert_non_null(mkdtemp(tdir));
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(ed);
	assert_non_null(rsa);
	snprintf(p, sizeof(p), "%s/Example.TEST", tdir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/not_a_domain", tdir);
	assert_int_equal(mkdir(p, 0700), 0);
	write_key("Example.TEST/sel-ed.ed25519.key", ed);
	write_key("Example.TEST/sel-rsa.rsa.key", rsa);
	write_key("Example.TEST/wrong.ed25519.key", rsa);	/* type */
	write_key("Example.TEST/junk.rsa.key", NULL);		/* not PEM */
	write_key("Example.TEST/other.pem", ed);		/* name */
	write_key("Example.TEST/-bad.ed25519.key", ed);		/* selector */
	write_key("not_a_domain/x.ed25519.key", ed);		/* domain */
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(dkim_valid_selector("mail-ed"));
	assert_true(dkim_valid_selector("s1.sub"));
	assert_true(dkim_valid_selector("_x"));
	assert_false(dkim_valid_selector("-x"));
	assert_false(dkim_valid_selector(""));
	assert_false(dkim_valid_selector("a..b"));
	assert_false(dkim_valid_selector("a/b"));
	assert_true(dkim_valid_domain("example.test"));
	assert_false(dkim_valid_domain("localhost"));
	assert_false(dkim_valid_domain("a_b.test"));
	assert_false(dkim_valid_domain("../x.test"));
}

static void
test_keyset_load(void **state)
{
	struct dkim_keyset *ks;
	const struct dkim_key *k[4];
	char err[256], p[512];

	(void)state;
	nwarn = 0;
	ks = dkim_keyset_load(tdir, on_warn, NULL, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(ks->n, 2);
	assert_int_equal(nwarn, 5);
	assert_int_equal(dkim_keyset_find(ks, "EXAMPLE.test", k, 4), 2);
	assert_string_equal(k[0]->domain, "example.test");
	assert_int_equal(k[0]->alg, DKIM_ED25519_SHA256);
	assert_string_equal(k[0]->selector, "sel-ed");
	assert_int_equal(k[1]->alg, DKIM_RSA_SHA256);
	assert_string_equal(k[1]->selector, "sel-rsa");
	assert_int_equal(dkim_keyset_find(ks, "other.test", k, 4), 0);
	assert_int_equal(dkim_keyset_find(ks, "example.test", k, 1), 1);
	/* the store hands out references that outlive a swap */
	{
		struct dkim_store *st = dkim_store_new();
		struct dkim_keyset *held;

		assert_null(dkim_store_get(st));
		dkim_store_set(st, ks);
		held = dkim_store_get(st);
		assert_ptr_equal(held, ks);
		dkim_store_set(st, dkim_keyset_load("/nonexistent/dir",
		    NULL, NULL, err, sizeof(err)));
		assert_int_equal(held->n, 2);	/* still valid */
		assert_non_null(held->keys[0].pkey);
		dkim_keyset_release(held);
		held = dkim_store_get(st);
		assert_int_equal(held->n, 0);
		dkim_keyset_release(held);
		dkim_store_free(st);
	}
	/* a path that is not a directory is an error */
	snprintf(p, sizeof(p), "%s/Example.TEST/sel-ed.ed25519.key", tdir);
	assert_null(dkim_keyset_load(p, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read"));
}

/* The header hash input of a signed message, rebuilt by the test. */
static char *
signed_data(const struct hdr_section *hs, const char *sig, size_t *len)
{
	char *out = NULL, *h, *names, *tok, *save = NULL, *b, *sigcopy;
	size_t cap = 0, used[64] = { 0 }, nl;
	const char *hv = strstr(sig, "h=");

	*len = 0;
	assert_non_null(hv);
	nl = strcspn(hv + 2, ";");
	names = strndup(hv + 2, nl);
	/* drop folding whitespace */
	for (h = tok = names; *tok; tok++)
		if (*tok != ' ' && *tok != '\t' && *tok != '\r' && *tok != '\n')
			*h++ = *tok;
	*h = '\0';
	for (tok = strtok_r(names, ":", &save); tok != NULL;
	    tok = strtok_r(NULL, ":", &save)) {
		size_t skip = used[tok[0] % 64]++, j;

		for (j = hs->n; j-- > 0; ) {
			if (!hdr_is(hs, j, tok))
				continue;
			if (skip-- == 0) {
				assert_int_equal(canon_header(CANON_RELAXED,
				    hs->buf + hs->f[j].off, hs->f[j].len, 1,
				    &out, len, &cap), 0);
				break;
			}
		}
	}
	free(names);
	/* the signature field with an empty b= */
	sigcopy = strdup(sig);
	b = strstr(sigcopy, "\tb=");
	if (b == NULL)
		b = strstr(sigcopy, " b=");
	assert_non_null(b);
	b[3] = '\0';
	assert_int_equal(canon_header(CANON_RELAXED, sigcopy, strlen(sigcopy),
	    0, &out, len, &cap), 0);
	free(sigcopy);
	return out;
}

static void
b64dec(const char *in, unsigned char *out, size_t *outlen)
{
	char clean[2048];
	size_t n = 0;
	int r;

	for (; *in && *in != ';' && n < sizeof(clean) - 1; in++)
		if (*in != ' ' && *in != '\t' && *in != '\r' && *in != '\n')
			clean[n++] = *in;
	clean[n] = '\0';
	r = EVP_DecodeBlock(out, (unsigned char *)clean, (int)n);
	assert_true(r > 0);
	*outlen = (size_t)r;
	while (n > 0 && clean[--n] == '=')
		(*outlen)--;
}

static void
test_sign_and_verify(void **state)
{
	static const char hdrs[] =
	    "From: Alice <alice@example.test>\r\n"
	    "To: bob@example.org\r\n"
	    "Subject:  a\r\n\tfolded   subject \r\n"
	    "X-Not-Signed: 1\r\n"
	    "To: carol@example.org\r\n";
	struct dkim_keyset *ks;
	const struct dkim_key *k[2];
	struct hdr_section hs;
	unsigned char bh[32];
	char err[256];
	unsigned int bl;
	int i;

	(void)state;
	ks = dkim_keyset_load(tdir, NULL, NULL, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(dkim_keyset_find(ks, "example.test", k, 2), 2);
	assert_int_equal(hdr_parse(&hs, hdrs, sizeof(hdrs) - 1, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(EVP_Digest("", 0, bh, &bl, EVP_sha256(), NULL), 1);
	for (i = 0; i < 2; i++) {
		char *sig = NULL, *data, *line, *save = NULL, *copy;
		size_t slen, dlen, rawlen;
		unsigned char raw[1024], md[32];
		unsigned int mdlen;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		assert_int_equal(dkim_sign(k[i], &hs, bh, 1700000000, 86400,
		    &sig, &slen, err, sizeof(err)), 0);
		assert_int_equal(strlen(sig), slen);
		{
			const char *want = i == 0 ?
			    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;" :
			    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;";

			assert_true(strncmp(sig, want, strlen(want)) == 0);
		}
		assert_non_null(strstr(sig, "d=example.test;"));
		assert_non_null(strstr(sig, i ? "s=sel-rsa;" : "s=sel-ed;"));
		assert_non_null(strstr(sig, "t=1700000000;"));
		assert_non_null(strstr(sig, "x=1700086400;"));
		assert_non_null(strstr(sig,
		    "h=from:from:subject:to:to;"));
		assert_non_null(strstr(sig,
		    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"));
		assert_string_equal(sig + slen - 2, "\r\n");
		/* folded: no line over 78 octets, continuation lines */
		copy = strdup(sig);
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			assert_true(strlen(line) <= 79);	/* + CR */
		free(copy);
		/* the signature verifies over the rebuilt input */
		data = signed_data(&hs, sig, &dlen);
		{
			const char *bv = strstr(sig, " b=");

			if (bv == NULL)
				bv = strstr(sig, "\tb=");
			assert_non_null(bv);
			b64dec(bv + 3, raw, &rawlen);
		}
		assert_non_null(ctx);
		if (i == 0) {
			assert_int_equal(rawlen, 64);
			assert_int_equal(EVP_Digest(data, dlen, md, &mdlen,
			    EVP_sha256(), NULL), 1);
			assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL,
			    NULL, k[i]->pkey), 1);
			assert_int_equal(EVP_DigestVerify(ctx, raw, rawlen, md,
			    mdlen), 1);
			/* and not over the data itself (that would be
			 * plain Ed25519, not RFC 8463) */
			EVP_MD_CTX_reset(ctx);
			assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL,
			    NULL, k[i]->pkey), 1);
			assert_int_not_equal(EVP_DigestVerify(ctx, raw, rawlen,
			    (unsigned char *)data, dlen), 1);
		} else {
			assert_int_equal(rawlen, 256);
			assert_int_equal(EVP_DigestVerifyInit(ctx, NULL,
			    EVP_sha256(), NULL, k[i]->pkey), 1);
			assert_int_equal(EVP_DigestVerify(ctx, raw, rawlen,
			    (unsigned char *)data, dlen), 1);
			/* a changed field breaks it */
			data[2] ^= 1;
			EVP_MD_CTX_reset(ctx);
			assert_int_equal(EVP_DigestVerifyInit(ctx, NULL,
			    EVP_sha256(), NULL, k[i]->pkey), 1);
			assert_int_not_equal(EVP_DigestVerify(ctx, raw, rawlen,
			    (unsigned char *)data, dlen), 1);
		}
		EVP_MD_CTX_free(ctx);
		free(data);
		free(sig);
	}
	hdr_free(&hs);
	dkim_keyset_release(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_keyset_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_and_verify, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
