/*
 * desc.c - the device description and the SCPDs, generated from the tables of actions.c
 * and the device tree below (no string templates), and the XML output buffer used by
 * desc.c and soap.c.
 *
 * UDA 1.1 §2.3 (device description), §2.5 (service description). IGD:1 keeps specVersion
 * 1.0 (what IGD:1 control points were certified against); IGD:2 announces 1.1 with configId.
 */
#include "content.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ buffer */

#define BUF_DEFAULT_LIMIT (1u << 20)

void upnp_buf_init(struct upnp_buf *b)
{
	memset(b, 0, sizeof *b);
}

void upnp_buf_free(struct upnp_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static bool buf_reserve(struct upnp_buf *b, size_t n)
{
	size_t limit = b->limit ? b->limit : BUF_DEFAULT_LIMIT;

	if (b->failed)
		return false;
	if (n > limit || b->len > limit - n) {
		b->failed = true;
		return false;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return false;
		}
		b->p = p;
		b->cap = cap;
	}
	return true;
}

void upnp_buf_addn(struct upnp_buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void upnp_buf_add(struct upnp_buf *b, const char *s)
{
	if (s != NULL)
		upnp_buf_addn(b, s, strlen(s));
}

void upnp_buf_printf(struct upnp_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) { /* only short formats are used */
		b->failed = true;
		return;
	}
	upnp_buf_addn(b, tmp, (size_t)n);
}

void upnp_buf_esc(struct upnp_buf *b, const char *s)
{
	const char *run = s;

	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		const char *rep;
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default:
			/* XML 1.0 §2.2: C0 controls other than TAB, LF, CR are not characters */
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				rep = "?";
			else
				continue;
		}
		upnp_buf_addn(b, run, (size_t)(s - run));
		upnp_buf_add(b, rep);
		run = s + 1;
	}
	upnp_buf_addn(b, run, (size_t)(s - run));
}

void upnp_buf_elem(struct upnp_buf *b, const char *name, const char *text)
{
	upnp_buf_printf(b, "<%s>", name);
	upnp_buf_esc(b, text);
	upnp_buf_printf(b, "</%s>", name);
}

/* ------------------------------------------------------------------ device tree */

enum dev_kind { DEV_IGD, DEV_WAN, DEV_WANCONN, DEV__COUNT };

struct dev_def {
	const char *type;          /* device type name */
	const char *friendly;      /* NULL = configured friendly name */
	const char *model_description;
	int parent;                /* -1 for the root */
};

/* IGD:1 and IGD:2 share the tree; only the versions of the device types change. */
static const struct dev_def devices[DEV__COUNT] = {
	[DEV_IGD] = { "InternetGatewayDevice", NULL, "UPnP IGD to PCP interworking function", -1 },
	[DEV_WAN] = { "WANDevice", "WANDevice", "WAN device", DEV_IGD },
	[DEV_WANCONN] = { "WANConnectionDevice", "WANConnectionDevice", "WAN connection device",
			  DEV_WAN },
};

static const char *dev_uuid(const struct upnp_desc_config *c, int d)
{
	switch (d) {
	case DEV_IGD: return c->uuid_igd;
	case DEV_WAN: return c->uuid_wan_device;
	default: return c->uuid_wan_conn_device;
	}
}

/* The services of device d in this configuration. */
static size_t dev_services(const struct upnp_desc_config *c, int d, enum upnp_flavour out[2])
{
	switch (d) {
	case DEV_IGD: out[0] = UPNP_FL_L3F1; return 1;
	case DEV_WAN: out[0] = UPNP_FL_CIC1; return 1;
	default: out[0] = upnp_desc_conn_flavour(c); return 1;
	}
}

enum upnp_flavour upnp_desc_conn_flavour(const struct upnp_desc_config *c)
{
	if (c->ppp)
		return UPNP_FL_PPP1;
	return c->igd_version == 2 ? UPNP_FL_IP2 : UPNP_FL_IP1;
}

bool upnp_desc_hosts(const struct upnp_desc_config *c, enum upnp_flavour fl)
{
	return fl == UPNP_FL_L3F1 || fl == UPNP_FL_CIC1 || fl == upnp_desc_conn_flavour(c);
}

void upnp_desc_service_type(enum upnp_flavour fl, char *out, size_t cap)
{
	const struct upnp_flavour_def *f = upnp_flavour_get(fl);

	snprintf(out, cap, "urn:schemas-upnp-org:service:%s:%d", f ? f->type : "?",
		 f ? f->version : 0);
}

static int dev_version(const struct upnp_desc_config *c)
{
	return c->igd_version == 2 ? 2 : 1;
}

size_t upnp_desc_device_types(const struct upnp_desc_config *c, char out[][96], size_t cap)
{
	size_t n = 0;

	for (int d = 0; d < DEV__COUNT && n < cap; d++, n++)
		snprintf(out[n], 96, "urn:schemas-upnp-org:device:%s:%d", devices[d].type,
			 dev_version(c));
	return n;
}

static void desc_device(struct upnp_buf *b, const struct upnp_desc_config *c, int d)
{
	enum upnp_flavour svcs[2];
	size_t n = dev_services(c, d, svcs);
	char tmp[128];

	upnp_buf_add(b, "<device>");
	snprintf(tmp, sizeof tmp, "urn:schemas-upnp-org:device:%s:%d", devices[d].type,
		 dev_version(c));
	upnp_buf_elem(b, "deviceType", tmp);
	upnp_buf_elem(b, "friendlyName", devices[d].friendly ? devices[d].friendly
			 : c->friendly_name ? c->friendly_name : "iwfd Internet Gateway");
	upnp_buf_elem(b, "manufacturer", "iwfd");
	upnp_buf_elem(b, "manufacturerURL", "https://example.invalid/iwfd");
	upnp_buf_elem(b, "modelDescription", devices[d].model_description);
	upnp_buf_elem(b, "modelName", "iwfd");
	upnp_buf_elem(b, "modelNumber", "0.1");
	upnp_buf_elem(b, "modelURL", "https://example.invalid/iwfd");
	upnp_buf_elem(b, "serialNumber", "00000000");
	snprintf(tmp, sizeof tmp, "uuid:%s", dev_uuid(c, d) ? dev_uuid(c, d) : "");
	upnp_buf_elem(b, "UDN", tmp);
	upnp_buf_add(b, "<serviceList>");
	for (size_t i = 0; i < n; i++) {
		const struct upnp_flavour_def *f = upnp_flavour_get(svcs[i]);
		upnp_buf_add(b, "<service>");
		upnp_desc_service_type(svcs[i], tmp, sizeof tmp);
		upnp_buf_elem(b, "serviceType", tmp);
		upnp_buf_elem(b, "serviceId", f->service_id);
		snprintf(tmp, sizeof tmp, "/scpd/%s.xml", f->path);
		upnp_buf_elem(b, "SCPDURL", tmp);
		snprintf(tmp, sizeof tmp, "/ctl/%s", f->path);
		upnp_buf_elem(b, "controlURL", tmp);
		snprintf(tmp, sizeof tmp, "/evt/%s", f->path);
		upnp_buf_elem(b, "eventSubURL", tmp);
		upnp_buf_add(b, "</service>");
	}
	upnp_buf_add(b, "</serviceList>");
	bool open = false;
	for (int k = 0; k < DEV__COUNT; k++) {
		if (devices[k].parent != d)
			continue;
		if (!open)
			upnp_buf_add(b, "<deviceList>");
		open = true;
		desc_device(b, c, k);
	}
	if (open)
		upnp_buf_add(b, "</deviceList>");
	upnp_buf_add(b, "</device>");
}

void upnp_desc_root(struct upnp_buf *b, const struct upnp_desc_config *c)
{
	upnp_buf_add(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n");
	if (c->igd_version == 2) {
		/* UDA 1.1 §2.3: configId attribute on root */
		upnp_buf_printf(b, "<root xmlns=\"urn:schemas-upnp-org:device-1-0\" configId=\"%u\">",
				(unsigned)c->config_id);
		upnp_buf_add(b, "<specVersion><major>1</major><minor>1</minor></specVersion>");
	} else {
		upnp_buf_add(b, "<root xmlns=\"urn:schemas-upnp-org:device-1-0\">");
		upnp_buf_add(b, "<specVersion><major>1</major><minor>0</minor></specVersion>");
	}
	desc_device(b, c, DEV_IGD);
	upnp_buf_add(b, "</root>\r\n");
}

/* ------------------------------------------------------------------ SCPD */

static void scpd_args(struct upnp_buf *b, const struct upnp_arg_def *args, const char *dir)
{
	for (size_t i = 0; i < UPNP_MAX_ARGS && args[i].name != NULL; i++) {
		upnp_buf_add(b, "<argument>");
		upnp_buf_elem(b, "name", args[i].name);
		upnp_buf_elem(b, "direction", dir);
		upnp_buf_elem(b, "relatedStateVariable", args[i].var);
		upnp_buf_add(b, "</argument>");
	}
}

void upnp_desc_scpd(struct upnp_buf *b, enum upnp_flavour fl)
{
	const struct upnp_flavour_def *f = upnp_flavour_get(fl);

	upnp_buf_add(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n");
	upnp_buf_add(b, "<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">");
	upnp_buf_printf(b, "<specVersion><major>1</major><minor>%d</minor></specVersion>",
			f != NULL && f->version == 2 ? 1 : 0);
	upnp_buf_add(b, "<actionList>");
	for (size_t i = 0; i < upnp_n_actions; i++) {
		const struct upnp_action_def *d = &upnp_actions[i];
		if (!(d->flavours & UPNP_FLB(fl)))
			continue;
		upnp_buf_add(b, "<action>");
		upnp_buf_elem(b, "name", d->name);
		if (d->in[0].name != NULL || d->out[0].name != NULL) {
			upnp_buf_add(b, "<argumentList>");
			scpd_args(b, d->in, "in");
			scpd_args(b, d->out, "out");
			upnp_buf_add(b, "</argumentList>");
		}
		upnp_buf_add(b, "</action>");
	}
	upnp_buf_add(b, "</actionList>");
	upnp_buf_add(b, "<serviceStateTable>");
	for (size_t i = 0; i < upnp_n_vars; i++) {
		const struct upnp_var_def *v = &upnp_vars[i];
		if (!(v->flavours & UPNP_FLB(fl)))
			continue;
		upnp_buf_printf(b, "<stateVariable sendEvents=\"%s\">", v->evented ? "yes" : "no");
		upnp_buf_elem(b, "name", v->name);
		upnp_buf_elem(b, "dataType", upnp_dtype_name(v->type));
		if (v->default_value != NULL)
			upnp_buf_elem(b, "defaultValue", v->default_value);
		if (v->allowed != NULL) {
			upnp_buf_add(b, "<allowedValueList>");
			for (size_t k = 0; v->allowed[k] != NULL; k++)
				upnp_buf_elem(b, "allowedValue", v->allowed[k]);
			upnp_buf_add(b, "</allowedValueList>");
		}
		if (v->has_range) {
			upnp_buf_printf(b, "<allowedValueRange><minimum>%u</minimum><maximum>%u</maximum>"
					"<step>1</step></allowedValueRange>", (unsigned)v->min,
					(unsigned)v->max);
		}
		upnp_buf_add(b, "</stateVariable>");
	}
	upnp_buf_add(b, "</serviceStateTable>");
	upnp_buf_add(b, "</scpd>\r\n");
}
