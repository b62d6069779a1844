/*
 * log.c - upnp_log(): forwards upnp/'s messages to the application's logger.
 *
 * upnp/ owns sockets and therefore has things worth reporting (bind failures, dropped
 * subscribers); it never prints itself. With no logger configured the message is dropped.
 */
#include "upnp_internal.h"

#include <stdarg.h>
#include <stddef.h>

void upnp_log(const struct upnp_logger *lg, enum upnp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (lg == NULL || lg->log == NULL)
		return;
	va_start(ap, fmt);
	lg->log(lg->arg, level, fmt, ap);
	va_end(ap);
}
