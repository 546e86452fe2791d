/*
 * fuzz_webform — libFuzzer driver for the account page's input parsers
 * (src/web): the urlencoded form decoder, the Cookie header reader, the
 * CSRF token comparison and the HTML escaper.  All of them read what a
 * browser (or anyone on the network) sends.
 *
 * Checks what the code promises: a decoded form has at most WEB_FORM_MAX
 * fields, every name and value NUL-terminated within its bound and free
 * of control bytes (tab allowed in values); a cookie value fits its
 * buffer; the escape of any string contains no < > " ' and no control
 * byte, and its reported length is what was written when it fits.
 *
 *   make fuzz              (all harnesses; see the Makefile)
 *   build-fuzz/fuzz/fuzz_webform fuzz/corpus/webform
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/html.h"
#include "web/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct web_form f;
	static char out[8192], cookie[WEB_TOKEN_LEN + 1];
	char *s;
	size_t i, j, need, len;

	if (size > 20000)
		return 0;
	if (web_form_parse((const char *)data, size, &f) == 0) {
		if (f.n < 0 || f.n > WEB_FORM_MAX)
			abort();
		for (i = 0; i < (size_t)f.n; i++) {
			if (memchr(f.name[i], '\0', sizeof(f.name[i])) == NULL ||
			    memchr(f.value[i], '\0', sizeof(f.value[i])) == NULL)
				abort();
			len = strlen(f.value[i]);
			for (j = 0; j < len; j++)
				if ((unsigned char)f.value[i][j] < 0x20 &&
				    f.value[i][j] != '\t')
					abort();
		}
	}
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (web_cookie_get(s, WEB_COOKIE_NAME, cookie, sizeof(cookie)) == 0 &&
	    strlen(cookie) > WEB_TOKEN_LEN)
		abort();
	(void)web_token_eq(s, cookie);
	need = html_escape_buf(out, sizeof(out), s);
	len = strlen(out);
	if (need < sizeof(out) && len != need)
		abort();
	for (i = 0; i < len; i++)
		if (strchr("<>\"'", out[i]) != NULL ||
		    (unsigned char)out[i] < 0x20)
			abort();
	free(s);
	return 0;
}
