/* test_statuspage.c - /status.json stays inert as HTML (iwf/statuspage.c), and the built-in
 * page carries no external asset and the CSP that matches it (gen_status_page.py). */
#include "statuspage.h"
#include "status_page.h"
#include "../testutil.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
	/* A description from the LAN with markup, quotes, a backslash and a control character. */
	const char *desc = "<script>alert(1)</script></td>&amp;\"'\\\x01 ok";
	json_t *doc = json_pack("{s:[{s:s, s:i}]}", "mappings", "description", desc, "external_port", 41234);
	size_t len = 0;
	char *text = iwf_status_json_text(doc, &len);
	CHECK(text != NULL);
	CHECK_EQ_INT(len, strlen(text));
	CHECK(strchr(text, '<') == NULL && strchr(text, '>') == NULL && strchr(text, '&') == NULL);
	CHECK(strstr(text, "\\u003cscript\\u003e") != NULL);
	CHECK(strstr(text, "\\u0026amp;") != NULL);
	/* ... and it is the same JSON: the string comes back unchanged. */
	json_error_t jerr;
	json_t *back = json_loads(text, 0, &jerr);
	CHECK(back != NULL);
	CHECK(json_equal(back, doc));
	const char *got = json_string_value(json_object_get(json_array_get(json_object_get(back, "mappings"), 0),
							      "description"));
	CHECK(got != NULL && strcmp(got, desc) == 0);
	json_decref(back);
	json_decref(doc);
	free(text);

	/* The page: self-contained (no src= or href= to anything), and the CSP allows scripts
	 * and styles only by hash and fetches only from the page's own origin. */
	char *page = malloc(status_page_html_len + 1);
	CHECK(page != NULL);
	memcpy(page, status_page_html, status_page_html_len);
	page[status_page_html_len] = '\0';
	CHECK(strstr(page, "src=") == NULL && strstr(page, "href=") == NULL);
	CHECK(strstr(page, "innerHTML") == NULL && strstr(page, "document.write") == NULL);
	CHECK(strstr(page, "textContent") != NULL);
	CHECK(strstr(page, "fetch(\"status.json\"") != NULL);
	free(page);
	CHECK(strncmp(STATUS_PAGE_CSP, "default-src 'none'; script-src 'sha256-", 39) == 0);
	CHECK(strstr(STATUS_PAGE_CSP, "connect-src 'self'") != NULL);
	CHECK(strstr(STATUS_PAGE_CSP, "unsafe") == NULL);
	return tu_finish("test_statuspage");
}
