/* test_soap_corpus.c - replays tests/upnp/corpus-soap/ (and any other directory given):
 * every request must get exactly its X-Expect code from upnp_soap_parse(), and the
 * response/fault must be formatted. With gcc this is also the replay driver of the fuzz
 * corpus (fuzz_soap.c's inputs use the same format). */
#include "soap_case.h"
#include "../testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool prefixes; /* --prefixes: also every prefix of each body */

/* Does body[0..n) contain the end tag of the envelope ("</Envelope>", "</x:Envelope>")? */
static bool has_envelope_end(const char *body, size_t n)
{
	for (size_t i = 0; i + 9 <= n; i++) {
		if (memcmp(body + i, "Envelope>", 9) != 0)
			continue;
		for (size_t k = i; k >= 2 && i - k < 24; k--)
			if (body[k - 2] == '<' && body[k - 1] == '/')
				return true;
	}
	return false;
}

static int run_file(const char *dir, const char *name, bool need_expect)
{
	char path[4096];
	FILE *f;
	long size;
	uint8_t *buf;
	struct soap_case c;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		return 0;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(buf);
		CHECKF(0, "cannot read %s", path);
		return 1;
	}
	fclose(f);
	soap_case_split(buf, (size_t)size, &c);
	int rc = soap_case_run(&c);
	if (need_expect)
		CHECKF(c.expect == rc, "%s: expected %d, got %d", name, c.expect, rc);
	if (prefixes) {
		/* truncated requests: never accepted unless the cut is after the envelope's end */
		size_t full = c.body_len;
		for (size_t n = 0; n < full; n++) {
			struct soap_case t = c;
			t.body_len = n;
			int prc = soap_case_run(&t);
			CHECKF(prc != 0 || has_envelope_end(c.body, n), "%s: prefix %zu accepted",
			       name, n);
		}
	}
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		const char *dir = argv[i];
		bool need_expect = true;
		if (strcmp(dir, "--prefixes") == 0) {
			prefixes = true;
			continue;
		}
		if (strncmp(dir, "--no-expect=", 12) == 0) { /* fuzz crash/seed dirs */
			dir += 12;
			need_expect = false;
		}
		DIR *d = opendir(dir);
		CHECKF(d != NULL, "cannot open %s", dir);
		if (d == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				files += run_file(dir, e->d_name, need_expect);
		closedir(d);
	}
	printf("%d files\n", files);
	CHECK(files >= 200);
	return tu_finish("test_soap_corpus");
}
