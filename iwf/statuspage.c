/*
 * statuspage.c - /status and /status.json (statuspage.h). The page is generated at build
 * time from iwf/status_page.html (gen_status_page.py): its Content-Security-Policy names the
 * SHA-256 of its one inline style and one inline script, so nothing else can run in it, and
 * the script may fetch only from the page's own origin. Everything that came from the LAN
 * (descriptions, addresses) reaches the page only as JSON strings that the script puts into
 * the DOM with textContent, never as markup.
 */
#include "statuspage.h"
#include "status_page.h"

#include <stdlib.h>
#include <string.h>

json_t *iwf_status_json(struct iwf_core *core, const struct iwf_control_info *info,
			const struct iwf_status_device *dev)
{
	struct iwf_admin_status st;
	iwf_core_admin_status(core, &st);
	json_t *device = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I}", "friendly_name",
				   dev->friendly_name ? dev->friendly_name : "", "udn", dev->udn ? dev->udn : "",
				   "igd_version", st.igd_version, "version", info->version ? info->version : "",
				   "connection_status", st.connected ? "Connected" : "Disconnected", "uptime",
				   (json_int_t)((info->now_ms - info->started_ms) / 1000));
	json_t *pcp = json_pack("{s:o, s:o, s:s, s:o, s:s}", "server",
				info->have_server ? json_string(info->server) : json_null(), "origin",
				info->have_server && info->server_origin ? json_string(info->server_origin) : json_null(),
				"reachability", !st.reach_known ? "unknown" : st.connected ? "reachable" : "unreachable",
				"epoch", st.have_epoch ? json_integer(st.epoch) : json_null(), "external_address",
				st.external);
	json_t *arr = json_array();
	size_t n = iwf_core_admin_list(core, NULL, 0);
	struct iwf_admin_entry *v = calloc(n ? n : 1, sizeof(*v));
	if (v && arr) {
		n = iwf_core_admin_list(core, v, n);
		for (size_t i = 0; i < n; i++) {
			const struct iwf_admin_entry *e = &v[i];
			json_array_append_new(
				arr, json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:b, s:I, s:o, s:s}", "protocol",
					       e->pm.protocol == UPNP_PROTO_TCP ? "TCP" : "UDP", "external_port",
					       e->pm.external_port, "internal_client", e->pm.internal_client,
					       "internal_port", e->pm.internal_port, "remote_host", e->pm.remote_host,
					       "description", e->pm.description, "enabled", e->pm.enabled, "lease_left",
					       (json_int_t)e->pm.lease_duration, "pcp_lifetime_left",
					       e->has_pcp ? json_integer(e->pcp_left_s) : json_null(), "origin",
					       e->is_static ? "static" : "upnp"));
		}
	}
	free(v);
	if (!v || !device || !pcp || !arr) {
		json_decref(device);
		json_decref(pcp);
		json_decref(arr);
		return NULL;
	}
	return json_pack("{s:o, s:o, s:o}", "device", device, "pcp", pcp, "mappings", arr);
}

char *iwf_status_json_text(const json_t *doc, size_t *len)
{
	/* jansson has escaped every control character and quote; '<', '>' and '&' can only
	 * stand inside strings in JSON text, where \u003c is the same character. */
	char *text = json_dumps(doc, JSON_COMPACT);
	if (!text)
		return NULL;
	size_t n = 0, extra = 0;
	for (const char *p = text; *p; p++, n++)
		if (*p == '<' || *p == '>' || *p == '&')
			extra += 5;
	char *out = malloc(n + extra + 1), *o = out;
	if (!out) {
		free(text);
		return NULL;
	}
	for (const char *p = text; *p; p++) {
		if (*p == '<' || *p == '>' || *p == '&') {
			static const char hex[] = "0123456789abcdef";
			unsigned char ch = (unsigned char)*p;
			memcpy(o, "\\u00", 4);
			o[4] = hex[ch >> 4];
			o[5] = hex[ch & 15];
			o += 6;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	free(text);
	if (len)
		*len = (size_t)(o - out);
	return out;
}

/* Both answers: never cached (the values change), never sniffed as another type. */
static const char *const json_headers[] = {
	"Cache-Control", "no-store",
	"X-Content-Type-Options", "nosniff",
	"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy", "no-referrer",
	NULL};
static const char *const page_headers[] = {
	"Cache-Control", "no-store",
	"X-Content-Type-Options", "nosniff",
	"Content-Security-Policy", STATUS_PAGE_CSP,
	"Referrer-Policy", "no-referrer",
	"X-Frame-Options", "DENY",
	NULL};

bool iwf_status_page(struct iwf_core *core, const struct iwf_control_info *info,
		     const struct iwf_status_device *dev, const char *path, struct upnp_page *out)
{
	if (strcmp(path, "/status") == 0) {
		out->body = malloc(status_page_html_len);
		if (!out->body) {
			out->status = 503;
			return true;
		}
		memcpy(out->body, status_page_html, status_page_html_len);
		out->body_len = status_page_html_len;
		out->status = 200;
		out->content_type = "text/html; charset=utf-8";
		out->headers = page_headers;
		return true;
	}
	if (strcmp(path, "/status.json") == 0) {
		json_t *doc = iwf_status_json(core, info, dev);
		out->body = doc ? iwf_status_json_text(doc, &out->body_len) : NULL;
		json_decref(doc);
		if (!out->body) {
			out->status = 503;
			return true;
		}
		out->status = 200;
		out->content_type = "application/json";
		out->headers = json_headers;
		return true;
	}
	return false;
}
