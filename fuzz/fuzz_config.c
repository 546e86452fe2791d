/*
 * fuzz_config — libFuzzer driver for src/util/config.c: the INI reader
 * and outpost.conf's key table, defaults and whole-file checks.
 *
 * outpost.conf is written by the operator, not by the network, but it is
 * read by root before the privilege drop and by `outpost` run by anyone
 * on a file they name; a crash on a bad file is still a bug.  The input
 * is the file's text.  It is fed to ini_parse_string() with a handler
 * that checks what the reader promises (sections and keys trimmed, no
 * LF inside, inner whitespace collapsed), then written to a file in a
 * private directory and loaded with config_load(), which must either
 * succeed or say "FILE:LINE: ..." / "FILE: ..." — and leave a zeroed
 * struct on failure.  Memory errors and leaks are for the sanitizers.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_config fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[64];
static char path[96];

static void
cleanup(void)
{
	(void)unlink(path);
	(void)rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/outpost.conf", dir);
	if (atexit(cleanup) != 0)
		abort();
	return 0;
}

static int
bad_edge(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (strchr(s, '\n') != NULL)
		return 1;	/* (a lone CR mid-line is data; the keys refuse it) */
	return n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
	    s[n - 1] == '\t');
}

static int
check_handler(void *ctx, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	unsigned *calls = ctx;

	(void)err;
	(void)errlen;
	if (section == NULL || bad_edge(section) || strstr(section, "  ") ||
	    bad_edge(key) || bad_edge(value) || (key != NULL && value == NULL))
		abort();
	/* refuse now and then so the error path is covered too */
	if (++*calls % 7 == 0) {
		snprintf(err, errlen, "stop");
		return -1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[512], *text;
	unsigned calls = 0;
	FILE *fp;
	size_t i;

	if (size > 65536)
		return 0;
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (ini_parse_string("fuzz.conf", text, check_handler, &calls, err,
	    sizeof(err)) != 0 && strncmp(err, "fuzz.conf", 9) != 0)
		abort();
	free(text);

	if ((fp = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, fp) != size)
		abort();
	if (fclose(fp) != 0)
		abort();
	if (config_load(&cfg, path, err, sizeof(err)) == 0) {
		if (cfg.hostname == NULL || cfg.spool_dir == NULL ||
		    cfg.nlisteners < 0 || cfg.nlisteners > CONFIG_MAX_LISTENERS)
			abort();
		for (i = 0; i < (size_t)cfg.nlisteners; i++)
			if (cfg.listeners[i].name == NULL ||
			    cfg.listeners[i].listen == NULL)
				abort();
		config_free(&cfg);
	} else {
		/* freed-and-zeroed: no string left to leak or reuse */
		if (strncmp(err, path, strlen(path)) != 0 ||
		    cfg.path != NULL || cfg.hostname != NULL ||
		    cfg.tls_cert != NULL || cfg.nlisteners != 0)
			abort();
	}
	return 0;
}
