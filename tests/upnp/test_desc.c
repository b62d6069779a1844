/* test_desc.c - golden checks of the generated descriptions: well-formed (expat), the
 * device tree and service list of IGD:1 / IGD:2 (with WANIPConnection or WANPPPConnection),
 * URLs, UDNs, escaping, and SCPD action lists equal to the dispatch table. */
#include "content.h"
#include "../testutil.h"
#include "xmltree.h"

#include <stdio.h>
#include <string.h>

#define DEV_NS "urn:schemas-upnp-org:device-1-0 "
#define SVC_NS "urn:schemas-upnp-org:service-1-0 "

static const char *const FRIENDLY = "Box <&> \"quoted\" 'it'";

struct expect_svc {
	const char *type, *id, *path;
};

static void check_service(const struct xnode *svc, const struct expect_svc *e)
{
	char url[128];

	CHECKF(svc != NULL, "service %s", e->type);
	if (svc == NULL)
		return;
	CHECKF(strcmp(xtext(xchild(svc, "serviceType")), e->type) == 0, "%s", e->type);
	CHECK(strcmp(xtext(xchild(svc, "serviceId")), e->id) == 0);
	snprintf(url, sizeof url, "/scpd/%s.xml", e->path);
	CHECK(strcmp(xtext(xchild(svc, "SCPDURL")), url) == 0);
	snprintf(url, sizeof url, "/ctl/%s", e->path);
	CHECK(strcmp(xtext(xchild(svc, "controlURL")), url) == 0);
	snprintf(url, sizeof url, "/evt/%s", e->path);
	CHECK(strcmp(xtext(xchild(svc, "eventSubURL")), url) == 0);
}

static const struct xnode *check_device(const struct xnode *dev, const char *type, int v,
					 const char *uuid, const struct expect_svc *svc)
{
	char want[128];
	const struct xnode *sl, *s;
	int n = 0;

	CHECKF(dev != NULL && strcmp(dev->name, DEV_NS "device") == 0, "device %s", type);
	if (dev == NULL)
		return NULL;
	snprintf(want, sizeof want, "urn:schemas-upnp-org:device:%s:%d", type, v);
	CHECKF(strcmp(xtext(xchild(dev, "deviceType")), want) == 0, "%s", want);
	snprintf(want, sizeof want, "uuid:%s", uuid);
	CHECK(strcmp(xtext(xchild(dev, "UDN")), want) == 0);
	CHECK(xchild(dev, "friendlyName") != NULL && xchild(dev, "manufacturer") != NULL &&
	      xchild(dev, "modelName") != NULL);
	sl = xchild(dev, "serviceList");
	for (s = sl ? sl->child : NULL; s != NULL; s = s->next)
		n++;
	CHECKF(n == 1, "%s has %d services", type, n);
	check_service(xchild(sl, "service"), svc);
	return xchild(xchild(dev, "deviceList"), "device");
}

static void check_scpd(enum upnp_flavour fl)
{
	struct upnp_buf b;
	struct xnode *root;
	size_t i = 0, n_table = 0, n_doc = 0;

	upnp_buf_init(&b);
	upnp_desc_scpd(&b, fl);
	CHECK(!b.failed);
	root = xml_parse(b.p, b.len);
	CHECKF(root != NULL, "SCPD %d not well-formed", fl);
	if (root == NULL) {
		upnp_buf_free(&b);
		return;
	}
	CHECK(strcmp(root->name, SVC_NS "scpd") == 0);
	const struct xnode *sst = xchild(root, "serviceStateTable");
	CHECK(sst != NULL);
	for (const struct xnode *v = sst ? sst->child : NULL; v != NULL; v = v->next) {
		const char *dt = xtext(xchild(v, "dataType"));
		const char *ev = xattr(v, "sendEvents");
		const struct upnp_var_def *def = upnp_var_find(xtext(xchild(v, "name")), fl);
		CHECK(def != NULL);
		CHECK(dt != NULL && (strcmp(dt, "string") == 0 || strcmp(dt, "ui2") == 0 ||
				     strcmp(dt, "ui4") == 0 || strcmp(dt, "boolean") == 0));
		CHECK(ev != NULL && def != NULL && strcmp(ev, def->evented ? "yes" : "no") == 0);
	}
	for (size_t k = 0; k < upnp_n_actions; k++)
		if (upnp_actions[k].flavours & UPNP_FLB(fl))
			n_table++;
	/* actionList equals the table rows of this flavour, in table order */
	for (const struct xnode *a = xchild(xchild(root, "actionList"), "action"); a != NULL;
	     a = a->next, n_doc++) {
		while (i < upnp_n_actions && !(upnp_actions[i].flavours & UPNP_FLB(fl)))
			i++;
		CHECK(i < upnp_n_actions);
		if (i >= upnp_n_actions)
			break;
		const struct upnp_action_def *d = &upnp_actions[i++];
		CHECKF(strcmp(xtext(xchild(a, "name")), d->name) == 0, "%s", d->name);
		const struct xnode *arg = xchild(xchild(a, "argumentList"), "argument");
		for (int dir = 0; dir < 2; dir++) {
			const struct upnp_arg_def *args = dir == 0 ? d->in : d->out;
			for (int k = 0; k < UPNP_MAX_ARGS && args[k].name != NULL; k++) {
				CHECKF(arg != NULL, "%s: argument %s missing", d->name, args[k].name);
				if (arg == NULL)
					break;
				CHECK(strcmp(xtext(xchild(arg, "name")), args[k].name) == 0);
				CHECK(strcmp(xtext(xchild(arg, "direction")), dir ? "out" : "in") == 0);
				const char *rsv = xtext(xchild(arg, "relatedStateVariable"));
				CHECK(strcmp(rsv, args[k].var) == 0);
				/* the related variable is in this SCPD's state table */
				bool found = false;
				for (const struct xnode *v = sst ? sst->child : NULL; v != NULL; v = v->next)
					if (strcmp(xtext(xchild(v, "name")), rsv) == 0)
						found = true;
				CHECKF(found, "%s: %s not in serviceStateTable", d->name, rsv);
				arg = arg->next;
			}
		}
		CHECKF(arg == NULL, "%s: extra arguments", d->name);
	}
	CHECKF(n_doc == n_table, "flavour %d: %zu actions in SCPD, %zu in table", fl, n_doc,
	       n_table);
	xnode_free(root);
	upnp_buf_free(&b);
}

static void check_root(int igd, bool ppp)
{
	struct upnp_desc_config c = {
		.igd_version = igd, .ppp = ppp, .friendly_name = FRIENDLY,
		.uuid_igd = "11111111-2222-3333-4444-555555555555",
		.uuid_wan_device = "11111111-2222-3333-4444-666666666666",
		.uuid_wan_conn_device = "11111111-2222-3333-4444-777777777777",
		.config_id = 1234,
	};
	struct upnp_buf b;
	struct xnode *root;
	const struct xnode *d;
	char ct[96];
	enum upnp_flavour cfl = upnp_desc_conn_flavour(&c);
	struct expect_svc l3f = { "urn:schemas-upnp-org:service:Layer3Forwarding:1",
				  "urn:upnp-org:serviceId:L3Forwarding1", "L3F" };
	struct expect_svc cic = { "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
				  "urn:upnp-org:serviceId:WANCommonIFC1", "WANCommonIFC" };
	struct expect_svc conn = { ct, ppp ? "urn:upnp-org:serviceId:WANPPPConn1"
				   : "urn:upnp-org:serviceId:WANIPConn1",
				   ppp ? "WANPPPConn" : "WANIPConn" };

	snprintf(ct, sizeof ct, "urn:schemas-upnp-org:service:%s:%d",
		 ppp ? "WANPPPConnection" : "WANIPConnection", ppp ? 1 : igd);
	CHECK(cfl == (ppp ? UPNP_FL_PPP1 : igd == 2 ? UPNP_FL_IP2 : UPNP_FL_IP1));
	upnp_buf_init(&b);
	upnp_desc_root(&b, &c);
	CHECK(!b.failed);
	root = xml_parse(b.p, b.len);
	CHECKF(root != NULL, "root description IGD:%d ppp=%d not well-formed", igd, ppp);
	if (root == NULL) {
		upnp_buf_free(&b);
		return;
	}
	CHECK(strcmp(root->name, DEV_NS "root") == 0);
	CHECK(strcmp(xtext(xchild(xchild(root, "specVersion"), "minor")), igd == 2 ? "1" : "0") == 0);
	CHECK(igd == 2 ? (xattr(root, "configId") != NULL && strcmp(xattr(root, "configId"), "1234") == 0)
		       : xattr(root, "configId") == NULL);
	d = xchild(root, "device");
	CHECK(strcmp(xtext(xchild(d, "friendlyName")), FRIENDLY) == 0); /* escaped, round trip */
	d = check_device(d, "InternetGatewayDevice", igd, c.uuid_igd, &l3f);
	d = check_device(d, "WANDevice", igd, c.uuid_wan_device, &cic);
	d = check_device(d, "WANConnectionDevice", igd, c.uuid_wan_conn_device, &conn);
	CHECK(d == NULL); /* no deeper devices */
	CHECK(strstr(b.p, "URLBase") == NULL); /* UDA 1.1: relative URLs against the desc URL */

	char types[3][96];
	CHECK(upnp_desc_device_types(&c, types, 3) == 3);
	snprintf(ct, sizeof ct, "urn:schemas-upnp-org:device:WANConnectionDevice:%d", igd);
	CHECK(strcmp(types[2], ct) == 0);
	for (int fl = 0; fl < UPNP_FL__COUNT; fl++)
		CHECK(upnp_desc_hosts(&c, (enum upnp_flavour)fl) ==
		      (fl == UPNP_FL_L3F1 || fl == UPNP_FL_CIC1 || fl == (int)cfl));
	xnode_free(root);
	upnp_buf_free(&b);
}

int main(void)
{
	check_root(1, false);
	check_root(1, true);
	check_root(2, false);
	check_root(2, true);
	for (int fl = 0; fl < UPNP_FL__COUNT; fl++)
		check_scpd((enum upnp_flavour)fl);

	/* the buffer: escaping, limit, failure is sticky */
	struct upnp_buf b;
	upnp_buf_init(&b);
	upnp_buf_esc(&b, "a&b<c>d\"e'f\x01g\th");
	CHECK(strcmp(b.p, "a&amp;b&lt;c&gt;d&quot;e&apos;f?g\th") == 0);
	upnp_buf_free(&b);
	upnp_buf_init(&b);
	b.limit = 8;
	upnp_buf_add(&b, "12345678");
	CHECK(!b.failed && b.len == 8);
	upnp_buf_add(&b, "9");
	CHECK(b.failed);
	upnp_buf_add(&b, "");
	CHECK(b.failed);
	upnp_buf_free(&b);
	return tu_finish("test_desc");
}
