/*
 * log.c - upnp_log(): forwards upnp/'s messages to the application's logger; the UUID helper.
 *
 * upnp/ owns sockets and therefore has things worth reporting (bind failures, dropped
 * subscribers); it never prints itself. With no logger configured the message is dropped.
 */
#include "upnp_internal.h"

#include <stdarg.h>
#include <stddef.h>

#include <event2/util.h>

void upnp_log(const struct upnp_logger *lg, int level, const char *fmt, ...)
{
	va_list ap;

	if (lg == NULL || lg->log == NULL)
		return;
	va_start(ap, fmt);
	lg->log(lg->arg, level, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ UUIDs */

void upnp_uuid_random(uint8_t b[16])
{
	evutil_secure_rng_get_bytes(b, 16);
	b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* RFC 4122 §4.4 version 4 */
	b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* variant 10 */
}

void upnp_uuid_format(const uint8_t b[16], char out[UPNP_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[b[i] >> 4];
		out[k++] = hex[b[i] & 15];
	}
	out[k] = '\0';
}
