/*
 * dkim.c — `outpost dkim keygen|list|show`: DKIM keys and the DNS records
 * an operator publishes (DKIM, SPF, DMARC).
 *
 *   outpost dkim keygen DOMAIN [--selector S] [--algo ed25519|rsa]
 *                             [--bits 2048|3072|4096]
 *   outpost dkim list
 *   outpost dkim show DOMAIN
 *
 * Keys are written where outpostd finds them by name (dkim.h):
 * DATA_DIR/dkim/DOMAIN/SELECTOR.ed25519.key or SELECTOR.rsa.key, 0600, in
 * 0700 directories; the operator's config file is never rewritten.
 * Without --algo, keygen makes both keys (double signature) with the
 * selectors BASE-ed and BASE-rsa, BASE being --selector or [dkim]
 * selector ("mail").  A selector already used for either algorithm is
 * refused: two keys under one DNS name break verification.
 *
 * Fails: one "outpost: ..." line and a sysexits code; nothing half
 * written (the key file is created O_EXCL and fsync'd by pki_write_key).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/pki.h"
#include "message/dkim.h"
#include "util/config.h"

static void
dkim_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: outpost dkim keygen DOMAIN [--selector S] "
	    "[--algo ed25519|rsa] [--bits 2048]\n"
	    "       outpost dkim list\n"
	    "       outpost dkim show DOMAIN\n"
	    "  keygen  write a signing key under DATA_DIR/dkim/DOMAIN/ and "
	    "print its DNS record\n"
	    "          (without --algo: an Ed25519 and an RSA key, selectors "
	    "S-ed and S-rsa)\n"
	    "  list    the keys outpostd signs with\n"
	    "  show    the DNS records to publish for DOMAIN: DKIM, SPF and "
	    "DMARC\n");
}

static int
dkim_dir(const struct config *cfg, char *buf, size_t len, const char *domain)
{
	int n;

	if (domain)
		n = snprintf(buf, len, "%s/dkim/%s", cfg->data_dir, domain);
	else
		n = snprintf(buf, len, "%s/dkim", cfg->data_dir);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "outpost: path too long under %s\n",
		    cfg->data_dir);
		return -1;
	}
	return 0;
}

/* Lowercased copy of a domain argument, checked. */
static int
dkim_domain_arg(const char *arg, char *out, size_t len)
{
	size_t i;

	if (strlen(arg) >= len || !dkim_valid_domain(arg)) {
		fprintf(stderr, "outpost: '%s' is not a domain name (e.g. "
		    "example.com)\n", arg);
		return -1;
	}
	for (i = 0; arg[i]; i++)
		out[i] = (arg[i] >= 'A' && arg[i] <= 'Z') ?
		    (char)(arg[i] - 'A' + 'a') : arg[i];
	out[i] = '\0';
	return 0;
}

/* Prints "SEL._domainkey.DOMAIN IN TXT \"...\"" for key. */
static int
dkim_print_record(const char *domain, const char *selector, EVP_PKEY *key)
{
	char value[2048], quoted[2200], err[256];

	if (pki_dkim_txt_value(key, value, sizeof(value), err,
	    sizeof(err)) == -1 ||
	    pki_txt_quote(value, quoted, sizeof(quoted)) == -1) {
		fprintf(stderr, "outpost: cannot format the DNS record: %s\n",
		    err);
		return -1;
	}
	printf("%s._domainkey.%s IN TXT %s\n", selector, domain, quoted);
	return 0;
}

/*
 * Files made by root go to the owner of DATA_DIR: outpostd drops root
 * for that user and must still read the key on SIGHUP.
 */
static void
give_to_data_owner(const struct config *cfg, const char *path)
{
	struct stat st;

	if (geteuid() != 0 || stat(cfg->data_dir, &st) != 0 || st.st_uid == 0)
		return;
	if (lchown(path, st.st_uid, st.st_gid) != 0)
		fprintf(stderr, "outpost: warning: cannot give %s to uid %u: "
		    "%s\n", path, (unsigned)st.st_uid, strerror(errno));
}

static int
mkdir_0700(const struct config *cfg, const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0) {
		give_to_data_owner(cfg, path);
		return 0;
	}
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fprintf(stderr, "outpost: cannot create %s: %s\n", path,
	    errno == EEXIST ? "exists and is not a directory" :
	    strerror(errno));
	return -1;
}

static int
key_exists(const char *dir, const char *selector)
{
	static const char *const suf[] = { "ed25519", "rsa" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < 2; i++) {
		int n = snprintf(path, sizeof(path), "%s/%s.%s.key", dir,
		    selector, suf[i]);

		if (n > 0 && (size_t)n < sizeof(path) && lstat(path, &st) == 0) {
			fprintf(stderr, "outpost: %s exists: selector '%s' is "
			    "taken for %s (one key per selector; pick another "
			    "with --selector)\n", path, selector, suf[i]);
			return 1;
		}
	}
	return 0;
}

static int
dkim_keygen_one(const struct config *cfg, const char *domain,
    const char *selector, enum dkim_alg alg, int bits)
{
	char dir[PATH_MAX], path[PATH_MAX], err[256];
	EVP_PKEY *key;
	int n;

	if (dkim_dir(cfg, dir, sizeof(dir), NULL) == -1 ||
	    mkdir_0700(cfg, dir) == -1 ||
	    dkim_dir(cfg, dir, sizeof(dir), domain) == -1 ||
	    mkdir_0700(cfg, dir) == -1)
		return EX_CANTCREAT;
	if (key_exists(dir, selector))
		return EX_CANTCREAT;
	n = snprintf(path, sizeof(path), "%s/%s.%s.key", dir, selector,
	    dkim_alg_suffix(alg));
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "outpost: path too long: %s\n", dir);
		return EX_USAGE;
	}
	if (alg == DKIM_ED25519_SHA256)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (key == NULL) {
		ERR_clear_error();
		fprintf(stderr, "outpost: key generation failed\n");
		return EX_SOFTWARE;
	}
	if (pki_write_key(path, key, 0600, err, sizeof(err)) == -1) {
		fprintf(stderr, "outpost: %s\n", err);
		EVP_PKEY_free(key);
		return EX_CANTCREAT;
	}
	give_to_data_owner(cfg, path);
	printf("wrote %s (%s", path, dkim_alg_name(alg));
	if (alg == DKIM_RSA_SHA256)
		printf(", %d bits", bits);
	printf(")\npublish:\n");
	n = dkim_print_record(domain, selector, key);
	EVP_PKEY_free(key);
	return n == -1 ? EX_SOFTWARE : EX_OK;
}

static int
dkim_keygen(int argc, char **argv, const struct config *cfg)
{
	const char *sel = NULL, *algo = NULL;
	char domain[DKIM_DOMAIN_MAX + 1], s1[DKIM_SELECTOR_MAX + 8];
	int bits = 2048, i, rc;

	if (argc < 2) {
		dkim_usage(stderr);
		return EX_USAGE;
	}
	if (dkim_domain_arg(argv[1], domain, sizeof(domain)) == -1)
		return EX_USAGE;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc) {
			fprintf(stderr, "outpost: %s needs a value\n", a);
			return EX_USAGE;
		}
		if (strcmp(a, "--selector") == 0) {
			sel = argv[++i];
		} else if (strcmp(a, "--algo") == 0) {
			algo = argv[++i];
		} else if (strcmp(a, "--bits") == 0) {
			char *end;
			long v;

			errno = 0;
			v = strtol(argv[++i], &end, 10);
			if (errno || *end || (v != 2048 && v != 3072 &&
			    v != 4096)) {
				fprintf(stderr, "outpost: --bits takes 2048, "
				    "3072 or 4096\n");
				return EX_USAGE;
			}
			bits = (int)v;
		} else {
			fprintf(stderr, "outpost: unknown option %s\n", a);
			dkim_usage(stderr);
			return EX_USAGE;
		}
	}
	if (algo != NULL && strcmp(algo, "ed25519") != 0 &&
	    strcmp(algo, "rsa") != 0) {
		fprintf(stderr, "outpost: --algo takes ed25519 or rsa\n");
		return EX_USAGE;
	}
	if (sel == NULL) {
		sel = cfg->dkim_selector ? cfg->dkim_selector : "mail";
	} else if (algo != NULL) {
		/* both given: exactly this name */
		if (!dkim_valid_selector(sel)) {
			fprintf(stderr, "outpost: '%s' is not a selector "
			    "(letters, digits and '-')\n", sel);
			return EX_USAGE;
		}
		rc = dkim_keygen_one(cfg, domain, sel, strcmp(algo, "rsa") == 0 ?
		    DKIM_RSA_SHA256 : DKIM_ED25519_SHA256, bits);
		if (rc == EX_OK)
			printf("outpostd loads new keys at start and on "
			    "SIGHUP.\n");
		return rc;
	}
	/* a base name: BASE-ed and/or BASE-rsa */
	if (strlen(sel) > DKIM_SELECTOR_MAX - 4 || !dkim_valid_selector(sel)) {
		fprintf(stderr, "outpost: '%s' is not a selector (letters, "
		    "digits and '-', at most %d)\n", sel,
		    DKIM_SELECTOR_MAX - 4);
		return EX_USAGE;
	}
	if (algo == NULL || strcmp(algo, "ed25519") == 0) {
		snprintf(s1, sizeof(s1), "%s-ed", sel);
		if ((rc = dkim_keygen_one(cfg, domain, s1,
		    DKIM_ED25519_SHA256, bits)) != EX_OK)
			return rc;
	}
	if (algo == NULL || strcmp(algo, "rsa") == 0) {
		snprintf(s1, sizeof(s1), "%s-rsa", sel);
		if ((rc = dkim_keygen_one(cfg, domain, s1, DKIM_RSA_SHA256,
		    bits)) != EX_OK)
			return rc;
	}
	printf("outpostd loads new keys at start and on SIGHUP.\n");
	return EX_OK;
}

static void
dkim_cli_warn(void *ctx, const char *text)
{
	(void)ctx;
	fprintf(stderr, "outpost: %s\n", text);
}

static struct dkim_keyset *
dkim_load(const struct config *cfg)
{
	char dir[PATH_MAX], err[512];
	struct dkim_keyset *ks;

	if (dkim_dir(cfg, dir, sizeof(dir), NULL) == -1)
		return NULL;
	if ((ks = dkim_keyset_load(dir, dkim_cli_warn, NULL, err,
	    sizeof(err))) == NULL)
		fprintf(stderr, "outpost: %s\n", err);
	return ks;
}

static int
dkim_list(const struct config *cfg)
{
	struct dkim_keyset *ks;
	size_t i;

	if ((ks = dkim_load(cfg)) == NULL)
		return EX_IOERR;
	if (ks->n == 0)
		printf("no DKIM keys (create them with: outpost dkim keygen "
		    "DOMAIN); mail goes out unsigned\n");
	for (i = 0; i < ks->n; i++) {
		const struct dkim_key *k = &ks->keys[i];

		printf("%-30s %-16s %-15s %5d  %s\n", k->domain, k->selector,
		    dkim_alg_name(k->alg), EVP_PKEY_get_bits(k->pkey),
		    k->path);
	}
	dkim_keyset_release(ks);
	return EX_OK;
}

static int
dkim_show(int argc, char **argv, const struct config *cfg)
{
	struct dkim_keyset *ks;
	const struct dkim_key *keys[16];
	char domain[DKIM_DOMAIN_MAX + 1];
	size_t n, i;
	int rc = EX_OK;

	if (argc != 2) {
		dkim_usage(stderr);
		return EX_USAGE;
	}
	if (dkim_domain_arg(argv[1], domain, sizeof(domain)) == -1)
		return EX_USAGE;
	if ((ks = dkim_load(cfg)) == NULL)
		return EX_IOERR;
	n = dkim_keyset_find(ks, domain, keys, 16);
	if (n == 0) {
		fprintf(stderr, "outpost: no DKIM key for %s; create one with: "
		    "outpost dkim keygen %s\n", domain, domain);
		dkim_keyset_release(ks);
		return EX_DATAERR;
	}
	printf("; DNS records for %s: publish all of them.\n", domain);
	printf(";\n; DKIM: one TXT record per selector (mail from %s is "
	    "signed with %s).\n", domain, n > 1 ? "each key" : "this key");
	for (i = 0; i < n && rc == EX_OK; i++)
		if (dkim_print_record(domain, keys[i]->selector,
		    keys[i]->pkey) == -1)
			rc = EX_SOFTWARE;
	printf(";\n; SPF: the addresses allowed to send mail for %s.\n",
	    domain);
	if (cfg->smarthost != NULL) {
		printf("; Mail leaves through the smarthost %s: use that "
		    "provider's SPF include\n; (e.g. include:_spf.google.com "
		    "for Gmail) in place of the ip4: term.\n",
		    cfg->smarthost);
	}
	if (cfg->source_address != NULL || cfg->source_address6 != NULL) {
		printf("%s IN TXT \"v=spf1", domain);
		if (cfg->source_address != NULL)
			printf(" %s:%s", strchr(cfg->source_address, ':') ?
			    "ip6" : "ip4", cfg->source_address);
		if (cfg->source_address6 != NULL)
			printf(" ip6:%s", cfg->source_address6);
		printf(" -all\"\n");
	} else {
		printf("; Replace SERVER-IPV4 with this server's public "
		    "address (and add ip6:... if it\n; sends over IPv6).\n");
		printf("%s IN TXT \"v=spf1 ip4:SERVER-IPV4 -all\"\n", domain);
	}
	printf(";\n; DMARC: start with p=none and read the reports; move to "
	    "p=quarantine, then\n; p=reject, once every source of mail for "
	    "%s passes.\n", domain);
	printf("_dmarc.%s IN TXT \"v=DMARC1; p=none; "
	    "rua=mailto:postmaster@%s\"\n", domain, domain);
	dkim_keyset_release(ks);
	return rc;
}

int
cli_dkim(int argc, char **argv, const struct config *cfg)
{
	if (argc < 2) {
		dkim_usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "keygen") == 0)
		return dkim_keygen(argc - 1, argv + 1, cfg);
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2) {
			dkim_usage(stderr);
			return EX_USAGE;
		}
		return dkim_list(cfg);
	}
	if (strcmp(argv[1], "show") == 0)
		return dkim_show(argc - 1, argv + 1, cfg);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		dkim_usage(stdout);
		return EX_OK;
	}
	fprintf(stderr, "outpost: unknown dkim command '%s'\n", argv[1]);
	dkim_usage(stderr);
	return EX_USAGE;
}
