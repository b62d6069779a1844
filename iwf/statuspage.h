/*
 * statuspage.h - the status page for people (status_page / --status-page): /status, one
 * self-contained HTML page (iwf/status_page.html), and /status.json, the data it fetches every
 * few seconds. Served on the LAN HTTP port through upnp_ops.page, so only to LAN hosts and
 * within upnp/'s limits (docs/configuration.md "The status page").
 */
#ifndef IWFD_STATUSPAGE_H
#define IWFD_STATUSPAGE_H

#include "control.h"

#include <jansson.h>
#include <stdbool.h>

struct iwf_status_device {
	const char *friendly_name;
	const char *udn;           /* "uuid:..." of the root device */
};

/* The document of /status.json: device, PCP server and mappings (a new reference, NULL when
 * out of memory). core, info and dev are borrowed. */
json_t *iwf_status_json(struct iwf_core *core, const struct iwf_control_info *info,
			const struct iwf_status_device *dev);

/* JSON text of doc in which '<', '>' and '&' are \u escapes, so that it stays inert even
 * where a browser might take it for HTML. Caller frees; NULL when out of memory. */
char *iwf_status_json_text(const json_t *doc, size_t *len);

/* The upnp_ops.page answer for path: true with *out filled (out->body malloc'd, upnp/ frees
 * it) for "/status" and "/status.json", false for any other path (upnp/ answers 404). */
bool iwf_status_page(struct iwf_core *core, const struct iwf_control_info *info,
		     const struct iwf_status_device *dev, const char *path, struct upnp_page *out);

#endif
