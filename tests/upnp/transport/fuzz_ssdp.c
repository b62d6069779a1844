/*
 * fuzz_ssdp.c - libFuzzer target for the SSDP M-SEARCH parser (ssdp_parse_msearch).
 * Checks the output contract as well: ST is NUL-terminated within the given capacity.
 */
#include "upnp_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char st[64];
	unsigned mx = 0;

	memset(st, 'X', sizeof(st));
	if (ssdp_parse_msearch((const char *)data, size, st, sizeof(st), &mx) == 0) {
		if (memchr(st, '\0', sizeof(st)) == NULL || st[0] == '\0')
			abort();
	}
	return 0;
}
