/* test_soap.c - SOAP requests in the forms real clients send (miniupnpc's upnpc and
 * python3-miniupnpc, libupnp/pupnp, Windows NATUPnP, .NET-style default namespaces),
 * argument typing, the syntax-level UPnP errors, and the formatting of responses, faults
 * and the PortListing document (escaping of & < > " '). */
#include "content.h"
#include "../testutil.h"
#include "xmltree.h"

#include <stdio.h>
#include <string.h>

#define ENV_NS "http://schemas.xmlsoap.org/soap/envelope/"
#define IP1_NS "urn:schemas-upnp-org:service:WANIPConnection:1"
#define IP2_NS "urn:schemas-upnp-org:service:WANIPConnection:2"

/* miniupnpc 2.2.4 (upnpc, python3-miniupnpc), byte for byte as captured */
static const char miniupnpc_add[] =
	"<?xml version=\"1.0\"?>\r\n"
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	"s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>"
	"<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">"
	"<NewRemoteHost></NewRemoteHost><NewExternalPort>40001</NewExternalPort>"
	"<NewProtocol>UDP</NewProtocol><NewInternalPort>40002</NewInternalPort>"
	"<NewInternalClient>192.168.1.20</NewInternalClient><NewEnabled>1</NewEnabled>"
	"<NewPortMappingDescription>a&b<c></NewPortMappingDescription>"
	"<NewLeaseDuration>3600</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>\r\n";

/* libupnp (pupnp) UpnpSendAction: pretty-printed, arguments unqualified */
static const char libupnp_add[] =
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	"s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\n"
	"<s:Body>\n<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">\n"
	"<NewRemoteHost></NewRemoteHost>\n<NewExternalPort>5000</NewExternalPort>\n"
	"<NewProtocol>TCP</NewProtocol>\n<NewInternalPort>5000</NewInternalPort>\n"
	"<NewInternalClient>10.0.0.2</NewInternalClient>\n<NewEnabled>true</NewEnabled>\n"
	"<NewPortMappingDescription>libupnp &amp; co</NewPortMappingDescription>\n"
	"<NewLeaseDuration>0</NewLeaseDuration>\n</u:AddPortMapping>\n</s:Body>\n</s:Envelope>\n";

/* Windows NATUPnP (ICS client): SOAP-ENV prefix, dt:dt typing attributes, CRLFs */
static const char windows_add[] =
	"<?xml version=\"1.0\"?>\r\n"
	"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	"SOAP-ENV:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\r\n"
	"<SOAP-ENV:Body>\r\n"
	"<m:AddPortMapping xmlns:m=\"urn:schemas-upnp-org:service:WANIPConnection:1\">\r\n"
	"<NewRemoteHost xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"string\"></NewRemoteHost>\r\n"
	"<NewExternalPort xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"ui2\">3074</NewExternalPort>\r\n"
	"<NewProtocol xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"string\">UDP</NewProtocol>\r\n"
	"<NewInternalPort xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"ui2\">3074</NewInternalPort>\r\n"
	"<NewInternalClient xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"string\">192.168.0.7</NewInternalClient>\r\n"
	"<NewEnabled xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"boolean\">1</NewEnabled>\r\n"
	"<NewPortMappingDescription xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"string\">Xbox (3074)</NewPortMappingDescription>\r\n"
	"<NewLeaseDuration xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"ui4\">0</NewLeaseDuration>\r\n"
	"</m:AddPortMapping>\r\n</SOAP-ENV:Body>\r\n</SOAP-ENV:Envelope>\r\n\r\n";

/* default namespace on the action: the arguments inherit the service namespace;
 * an (ignored) SOAP Header; white space around numbers; "yes"; lower-case protocol */
static const char defaultns_add[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
	"<soap:Header><x:Trace xmlns:x=\"urn:example\">1</x:Trace></soap:Header>"
	"<soap:Body><AddPortMapping xmlns=\"urn:schemas-upnp-org:service:WANIPConnection:2\">"
	"<NewRemoteHost> </NewRemoteHost><NewExternalPort> 6881 </NewExternalPort>"
	"<NewProtocol>tcp</NewProtocol><NewInternalPort>\n6881\n</NewInternalPort>"
	"<NewInternalClient> 192.168.1.9 </NewInternalClient><NewEnabled>yes</NewEnabled>"
	"<NewPortMappingDescription>  torrent  </NewPortMappingDescription>"
	"<NewLeaseDuration>86400</NewLeaseDuration></AddPortMapping></soap:Body></soap:Envelope>";

static char body_buf[8192];

/* Build an envelope with action `act` in ns and the given inner argument XML. */
static const char *env(const char *ns, const char *act, const char *args)
{
	snprintf(body_buf, sizeof body_buf,
		 "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"" ENV_NS "\"><s:Body>"
		 "<u:%s xmlns:u=\"%s\">%s</u:%s></s:Body></s:Envelope>", act, ns, args, act);
	return body_buf;
}

static int parse(const char *body, const char *sa, enum upnp_flavour fl, struct upnp_soap_req *r)
{
	return upnp_soap_parse(body, strlen(body), sa, fl, r);
}

#define PM_ARGS(ext, proto, iport, client) \
	"<NewRemoteHost></NewRemoteHost><NewExternalPort>" ext "</NewExternalPort>" \
	"<NewProtocol>" proto "</NewProtocol><NewInternalPort>" iport "</NewInternalPort>" \
	"<NewInternalClient>" client "</NewInternalClient><NewEnabled>1</NewEnabled>" \
	"<NewPortMappingDescription>d</NewPortMappingDescription>" \
	"<NewLeaseDuration>0</NewLeaseDuration>"

static void test_clients(void)
{
	struct upnp_soap_req r;

	CHECK(parse(miniupnpc_add, "\"" IP1_NS "#AddPortMapping\"", UPNP_FL_IP1, &r) == 0);
	CHECK(r.def != NULL && r.def->action == UPNP_ACT_ADD_PORT_MAPPING);
	CHECK(strcmp(r.ns, IP1_NS) == 0);
	CHECK(r.args.service == UPNP_SVC_WANIPCONN);
	CHECK(r.args.pm.remote_host[0] == '\0');
	CHECK(r.args.pm.external_port == 40001 && r.args.pm.internal_port == 40002);
	CHECK(r.args.pm.protocol == UPNP_PROTO_UDP && r.args.pm.enabled);
	CHECK(strcmp(r.args.pm.internal_client, "192.168.1.20") == 0);
	CHECK(strcmp(r.args.pm.description, "a&b<c>") == 0); /* raw text repaired */
	CHECK(r.args.pm.lease_duration == 3600);

	CHECK(parse(libupnp_add, IP1_NS "#AddPortMapping", UPNP_FL_IP1, &r) == 0);
	CHECK(strcmp(r.args.pm.description, "libupnp & co") == 0);
	CHECK(r.args.pm.protocol == UPNP_PROTO_TCP && r.args.pm.enabled);

	CHECK(parse(windows_add, "\"" IP1_NS "#AddPortMapping\"", UPNP_FL_IP1, &r) == 0);
	CHECK(r.args.pm.external_port == 3074 && strcmp(r.args.pm.description, "Xbox (3074)") == 0);

	/* IGD:2 service, v2 namespace; also a v1 control point on the v2 service */
	CHECK(parse(defaultns_add, " \"" IP2_NS "#AddPortMapping\" ", UPNP_FL_IP2, &r) == 0);
	CHECK(r.args.pm.external_port == 6881 && r.args.pm.internal_port == 6881);
	CHECK(r.args.pm.protocol == UPNP_PROTO_TCP && r.args.pm.enabled);
	CHECK(strcmp(r.args.pm.internal_client, "192.168.1.9") == 0);
	CHECK(strcmp(r.args.pm.description, "  torrent  ") == 0); /* descriptions kept as sent */
	CHECK(parse(miniupnpc_add, IP1_NS "#AddPortMapping", UPNP_FL_IP2, &r) == 0);
	CHECK(strcmp(r.ns, IP1_NS) == 0); /* answered in the namespace it used */
	/* ... but a v1 namespace does not reach v2-only actions */
	CHECK(parse(env(IP1_NS, "AddAnyPortMapping", PM_ARGS("0", "TCP", "1", "10.0.0.1")), NULL,
		    UPNP_FL_IP2, &r) == 401);
	CHECK(parse(env(IP2_NS, "AddAnyPortMapping", PM_ARGS("0", "TCP", "1", "10.0.0.1")), NULL,
		    UPNP_FL_IP2, &r) == 0);
	CHECK(r.def->action == UPNP_ACT_ADD_ANY_PORT_MAPPING);
	/* v2 namespace on a v1 service */
	CHECK(parse(env(IP2_NS, "GetExternalIPAddress", ""), NULL, UPNP_FL_IP1, &r) == 401);

	/* SOAPACTION forms: absent, quoted, unquoted, empty string */
	const char *get_ip = env(IP1_NS, "GetExternalIPAddress", "");
	char copy[8192];
	snprintf(copy, sizeof copy, "%s", get_ip);
	CHECK(parse(copy, NULL, UPNP_FL_IP1, &r) == 0);
	CHECK(parse(copy, "\"\"", UPNP_FL_IP1, &r) == 0);
	CHECK(parse(copy, IP1_NS "#GetExternalIPAddress", UPNP_FL_IP1, &r) == 0);
	CHECK(parse(copy, IP1_NS "#AddPortMapping", UPNP_FL_IP1, &r) == 401);
	CHECK(parse(copy, IP2_NS "#GetExternalIPAddress", UPNP_FL_IP1, &r) == 401);
	CHECK(parse(copy, "GetExternalIPAddress", UPNP_FL_IP1, &r) == 401);
	CHECK(parse(copy, NULL, UPNP_FL_PPP1, &r) == 401); /* wrong service for this URL */
}

static void test_types(void)
{
	struct upnp_soap_req r;
	uint32_t u;
	bool b;

	CHECK(upnp_parse_uint("65535", 5, 65535, &u) && u == 65535);
	CHECK(!upnp_parse_uint("65536", 5, 65535, &u));
	CHECK(upnp_parse_uint(" \t\r\n0012 \n", 10, 65535, &u) && u == 12);
	CHECK(upnp_parse_uint("4294967295", 10, UINT32_MAX, &u) && u == UINT32_MAX);
	CHECK(!upnp_parse_uint("4294967296", 10, UINT32_MAX, &u));
	CHECK(!upnp_parse_uint("99999999999999999999", 20, UINT32_MAX, &u));
	CHECK(!upnp_parse_uint("", 0, 65535, &u));
	CHECK(!upnp_parse_uint("  ", 2, 65535, &u));
	CHECK(!upnp_parse_uint("+1", 2, 65535, &u));
	CHECK(!upnp_parse_uint("-1", 2, 65535, &u));
	CHECK(!upnp_parse_uint("0x10", 4, 65535, &u));
	CHECK(!upnp_parse_uint("1 2", 3, 65535, &u));
	CHECK(!upnp_parse_uint("1.0", 3, 65535, &u));
	CHECK(!upnp_parse_uint("1e3", 3, 65535, &u));
	const char *t[] = { "1", "true", "TRUE", "yes", "Yes", " 1 " };
	const char *f[] = { "0", "false", "False", "no", "NO", "\n0\n" };
	for (size_t i = 0; i < 6; i++) {
		CHECK(upnp_parse_bool(t[i], strlen(t[i]), &b) && b);
		CHECK(upnp_parse_bool(f[i], strlen(f[i]), &b) && !b);
	}
	const char *bad[] = { "", "2", "on", "off", "tru", "truee", "-1", "01" };
	for (size_t i = 0; i < 8; i++)
		CHECK(!upnp_parse_bool(bad[i], strlen(bad[i]), &b));

	/* per-field checks */
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("1", "udp", "1", "1.2.3.4")), NULL,
		    UPNP_FL_IP1, &r) == 0);
	CHECK(r.args.pm.protocol == UPNP_PROTO_UDP);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("1", "ICMP", "1", "1.2.3.4")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("1", "TCP", "1", "host.lan")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("1", "TCP", "1", "1.2.3.256")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("1", "TCP", "1", "")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("65536", "TCP", "1", "1.2.3.4")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	/* wildcards (issue 4 item 5; WANIPConnection:2 §2.5.16) */
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("0", "TCP", "1", "1.2.3.4")), NULL,
		    UPNP_FL_IP1, &r) == 716);
	CHECK(parse(env(IP2_NS, "AddPortMapping", PM_ARGS("0", "TCP", "1", "1.2.3.4")), NULL,
		    UPNP_FL_IP2, &r) == 716);
	CHECK(parse(env(IP2_NS, "AddPortMapping", PM_ARGS("5", "TCP", "0", "1.2.3.4")), NULL,
		    UPNP_FL_IP2, &r) == 732);
	CHECK(parse(env(IP1_NS, "AddPortMapping", PM_ARGS("5", "TCP", "0", "1.2.3.4")), NULL,
		    UPNP_FL_IP1, &r) == 402);
	CHECK(parse(env(IP2_NS, "AddAnyPortMapping", PM_ARGS("5", "TCP", "0", "1.2.3.4")), NULL,
		    UPNP_FL_IP2, &r) == 732);
	CHECK(parse(env(IP2_NS, "GetListOfPortMappings",
			"<NewStartPort>10</NewStartPort><NewEndPort>9</NewEndPort>"
			"<NewProtocol>TCP</NewProtocol><NewManage>0</NewManage>"
			"<NewNumberOfPorts>0</NewNumberOfPorts>"), NULL, UPNP_FL_IP2, &r) == 733);
	CHECK(parse(env(IP2_NS, "DeletePortMappingRange",
			"<NewStartPort>1</NewStartPort><NewEndPort>65535</NewEndPort>"
			"<NewProtocol>UDP</NewProtocol><NewManage>true</NewManage>"), NULL,
		    UPNP_FL_IP2, &r) == 0);
	CHECK(r.args.start_port == 1 && r.args.end_port == 65535 && r.args.manage);
	/* RemoteHost: wildcard or IPv4 */
	CHECK(parse(env(IP1_NS, "DeletePortMapping", "<NewRemoteHost>198.51.100.1</NewRemoteHost>"
			"<NewExternalPort>80</NewExternalPort><NewProtocol>TCP</NewProtocol>"), NULL,
		    UPNP_FL_IP1, &r) == 0);
	CHECK(strcmp(r.args.pm.remote_host, "198.51.100.1") == 0);
	CHECK(parse(env(IP1_NS, "DeletePortMapping", "<NewRemoteHost>example.com</NewRemoteHost>"
			"<NewExternalPort>80</NewExternalPort><NewProtocol>TCP</NewProtocol>"), NULL,
		    UPNP_FL_IP1, &r) == 402);
	/* IPv6 literals (issue 15, UDA 1.1 Annex A): InternalClient and RemoteHost, passed on
	 * in RFC 5952 form; zone ids, brackets, v4-mapped and non-host addresses refused. */
	{
		static const struct { const char *in, *out; } v6[] = {
			{ "2001:db8:0:1::20", "2001:db8:0:1::20" },
			{ " 2001:DB8:0000:0001:0000:0000:0000:0020 ", "2001:db8:0:1::20" },
			{ "fd00:77::2", "fd00:77::2" },
			{ "fe80::1", "fe80::1" },
			{ "fe80::1%eth0", NULL },
			{ "fe80::1%25eth0", NULL },
			{ "fe80::1%2", NULL },
			{ "[2001:db8::1]", NULL },
			{ "::ffff:192.168.1.2", NULL },
			{ "::", NULL },
			{ "::1", NULL },
			{ "ff02::1", NULL },
			{ "2001:db8::1::2", NULL },
			{ "2001:db8::g", NULL },
			{ "2001:db8:0:0:0:0:0:0:1", NULL },
			{ ":", NULL },
		};
		for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
			char body[8192 + 64], rh[300];
			int rc;

			snprintf(body, sizeof body, "%s", env(IP1_NS, "AddPortMapping",
				 "<NewRemoteHost></NewRemoteHost><NewExternalPort>40001</NewExternalPort>"
				 "<NewProtocol>TCP</NewProtocol><NewInternalPort>40001</NewInternalPort>"
				 "<NewInternalClient>@</NewInternalClient><NewEnabled>1</NewEnabled>"
				 "<NewPortMappingDescription>d</NewPortMappingDescription>"
				 "<NewLeaseDuration>0</NewLeaseDuration>"));
			char *at = strchr(body, '@');
			snprintf(rh, sizeof rh, "%s%s", v6[i].in, at + 1);
			memcpy(at, rh, strlen(rh) + 1);
			rc = parse(body, NULL, UPNP_FL_IP1, &r);
			if (v6[i].out != NULL)
				CHECK(rc == 0 && strcmp(r.args.pm.internal_client, v6[i].out) == 0);
			else
				CHECK(rc == 402);
			if ((v6[i].out != NULL) != (rc == 0))
				fprintf(stderr, "  InternalClient '%s': %d\n", v6[i].in, rc);
			snprintf(body, sizeof body, "%s", env(IP1_NS, "DeletePortMapping",
				 "<NewRemoteHost>@</NewRemoteHost><NewExternalPort>80</NewExternalPort>"
				 "<NewProtocol>TCP</NewProtocol>"));
			at = strchr(body, '@');
			snprintf(rh, sizeof rh, "%s%s", v6[i].in, at + 1);
			memcpy(at, rh, strlen(rh) + 1);
			rc = parse(body, NULL, UPNP_FL_IP1, &r);
			if (v6[i].out != NULL)
				CHECK(rc == 0 && strcmp(r.args.pm.remote_host, v6[i].out) == 0);
			else
				CHECK(rc == 402);
		}
	}
	/* long description: truncated at 255 bytes on a UTF-8 boundary */
	char args[4096], desc[600];
	size_t k = 0;
	desc[k++] = 'x';
	while (k + 2 < 400) { /* "é" = C3 A9, starting at odd offset 1 */
		desc[k++] = '\xC3';
		desc[k++] = '\xA9';
	}
	desc[k] = '\0';
	snprintf(args, sizeof args, "<NewRemoteHost/><NewExternalPort>1</NewExternalPort>"
		 "<NewProtocol>TCP</NewProtocol><NewInternalPort>1</NewInternalPort>"
		 "<NewInternalClient>1.2.3.4</NewInternalClient><NewEnabled>0</NewEnabled>"
		 "<NewPortMappingDescription>%s</NewPortMappingDescription>"
		 "<NewLeaseDuration>0</NewLeaseDuration>", desc);
	CHECK(parse(env(IP1_NS, "AddPortMapping", args), NULL, UPNP_FL_IP1, &r) == 0);
	CHECK(strlen(r.args.pm.description) == 255 && !r.args.pm.enabled);
	/* other strings over 255 bytes: 402 */
	char name[400];
	memset(name, 'u', 300);
	name[300] = '\0';
	snprintf(args, sizeof args, "<NewUserName>%s</NewUserName><NewPassword>p</NewPassword>", name);
	CHECK(parse(env("urn:schemas-upnp-org:service:WANPPPConnection:1", "ConfigureConnection",
			args), NULL, UPNP_FL_PPP1, &r) == 402);
	CHECK(parse(env("urn:schemas-upnp-org:service:WANPPPConnection:1", "ConfigureConnection",
			"<NewPassword>s&amp;cret</NewPassword><NewUserName>me</NewUserName>"), NULL,
		    UPNP_FL_PPP1, &r) == 0); /* any order */
	CHECK(strcmp(r.args.text, "me") == 0 && strcmp(r.args.text2, "s&cret") == 0);
	CHECK(r.args.service == UPNP_SVC_WANPPPCONN);
	CHECK(parse(env("urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
			"SetEnabledForInternet", "<NewEnabledForInternet>false</NewEnabledForInternet>"),
		    NULL, UPNP_FL_CIC1, &r) == 0);
	CHECK(r.def->action == UPNP_ACT_SET_ENABLED_FOR_INTERNET && !r.args.flag);
	CHECK(parse(env("urn:schemas-upnp-org:service:Layer3Forwarding:1",
			"SetDefaultConnectionService", "<NewDefaultConnectionService>uuid:x:"
			"WANConnectionDevice:1,urn:upnp-org:serviceId:WANIPConn1"
			"</NewDefaultConnectionService>"), NULL, UPNP_FL_L3F1, &r) == 0);
	CHECK(strstr(r.args.text, "WANIPConn1") != NULL && r.args.service == UPNP_SVC_L3FWD);
	CHECK(parse(env(IP1_NS, "GetGenericPortMappingEntry",
			"<NewPortMappingIndex>7</NewPortMappingIndex>"), NULL, UPNP_FL_IP1, &r) == 0);
	CHECK(r.args.index == 7);
	CHECK(parse(env(IP1_NS, "SetAutoDisconnectTime",
			"<NewAutoDisconnectTime>4294967295</NewAutoDisconnectTime>"), NULL,
		    UPNP_FL_IP1, &r) == 0);
	CHECK(r.args.number == UINT32_MAX);
}

static struct xnode *parse_response(const struct upnp_buf *b, const char *action)
{
	struct xnode *root = xml_parse(b->p, b->len);
	char want[128];

	CHECK(root != NULL);
	if (root == NULL)
		return NULL;
	CHECK(strcmp(root->name, ENV_NS " Envelope") == 0);
	snprintf(want, sizeof want, "%sResponse", action);
	struct xnode *resp = xchild(xchild(root, "Body"), want);
	CHECKF(resp != NULL, "%s", want);
	return root;
}

static void test_output(void)
{
	struct upnp_buf b;
	struct upnp_reply r;
	struct xnode *root;
	const char *nasty = "A&B <x> \"q\" 'a'";

	/* GetSpecificPortMappingEntry: out args in SCPD order, escaped */
	memset(&r, 0, sizeof r);
	r.pm.internal_port = 8080;
	snprintf(r.pm.internal_client, sizeof r.pm.internal_client, "192.168.1.2");
	r.pm.enabled = true;
	snprintf(r.pm.description, sizeof r.pm.description, "%s", nasty);
	r.pm.lease_duration = 77;
	upnp_buf_init(&b);
	upnp_soap_response(&b, upnp_action_get(UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY), IP1_NS, &r);
	root = parse_response(&b, "GetSpecificPortMappingEntry");
	if (root != NULL) {
		struct xnode *resp = xchild(root, "Body")->child;
		CHECK(strcmp(resp->name, IP1_NS " GetSpecificPortMappingEntryResponse") == 0);
		const char *order[] = { "NewInternalPort", "NewInternalClient", "NewEnabled",
			"NewPortMappingDescription", "NewLeaseDuration" };
		const char *vals[] = { "8080", "192.168.1.2", "1", nasty, "77" };
		struct xnode *a = resp->child;
		for (size_t i = 0; i < 5; i++, a = a ? a->next : NULL) {
			CHECK(a != NULL && strcmp(a->name, order[i]) == 0);
			CHECK(a != NULL && strcmp(a->text, vals[i]) == 0);
		}
		CHECK(a == NULL);
		xnode_free(root);
	}
	CHECK(strstr(b.p, "&amp;B &lt;x&gt; &quot;q&quot; &apos;a&apos;") != NULL);
	upnp_buf_free(&b);

	/* NULL strings are sent empty; a NULL reply is all zero */
	upnp_buf_init(&b);
	upnp_soap_response(&b, upnp_action_get(UPNP_ACT_GET_STATUS_INFO), IP1_NS, NULL);
	root = parse_response(&b, "GetStatusInfo");
	if (root != NULL) {
		struct xnode *resp = xchild(root, "Body")->child;
		CHECK(strcmp(xtext(xchild(resp, "NewConnectionStatus")), "") == 0);
		CHECK(strcmp(xtext(xchild(resp, "NewUptime")), "0") == 0);
		xnode_free(root);
	}
	upnp_buf_free(&b);

	/* fault: UDA 1.1 §3.2.2 */
	int codes[] = { 401, 402, 501, 606, 713, 714, 716, 718, 725, 728, 730, 732, 733, 899 };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		char num[16];
		upnp_buf_init(&b);
		upnp_soap_fault(&b, codes[i]);
		root = xml_parse(b.p, b.len);
		CHECK(root != NULL);
		struct xnode *fault = xchild(xchild(root, "Body"), "Fault");
		CHECK(fault != NULL && strcmp(fault->name, ENV_NS " Fault") == 0);
		CHECK(strcmp(xtext(xchild(fault, "faultcode")), "s:Client") == 0);
		CHECK(strcmp(xtext(xchild(fault, "faultstring")), "UPnPError") == 0);
		struct xnode *ue = xchild(xchild(fault, "detail"), "UPnPError");
		CHECK(ue != NULL && strcmp(ue->name, "urn:schemas-upnp-org:control-1-0 UPnPError") == 0);
		snprintf(num, sizeof num, "%d", codes[i]);
		CHECK(strcmp(xtext(xchild(ue, "errorCode")), num) == 0);
		CHECK(strcmp(xtext(xchild(ue, "errorDescription")),
			     upnp_error_description_or(codes[i])) == 0);
		xnode_free(root);
		upnp_buf_free(&b);
	}

	/* GetListOfPortMappings: NewPortListing carries the escaped PortListing document */
	struct upnp_pm_entry list[2];
	memset(list, 0, sizeof list);
	snprintf(list[0].remote_host, sizeof list[0].remote_host, "%s", "");
	list[0].external_port = 2345;
	list[0].protocol = UPNP_PROTO_TCP;
	list[0].internal_port = 2346;
	snprintf(list[0].internal_client, sizeof list[0].internal_client, "192.168.1.137");
	list[0].enabled = true;
	snprintf(list[0].description, sizeof list[0].description, "%s", nasty);
	list[0].lease_duration = 345;
	list[1] = list[0];
	list[1].protocol = UPNP_PROTO_UDP;
	snprintf(list[1].remote_host, sizeof list[1].remote_host, "203.0.113.9");
	memset(&r, 0, sizeof r);
	r.list = list;
	r.n_list = 2;
	upnp_buf_init(&b);
	upnp_soap_response(&b, upnp_action_get(UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS), IP2_NS, &r);
	root = parse_response(&b, "GetListOfPortMappings");
	if (root != NULL) {
		const char *listing = xtext(xchild(xchild(xchild(root, "Body"),
							  "GetListOfPortMappingsResponse"),
						   "NewPortListing"));
		CHECK(listing != NULL);
		struct xnode *pl = listing ? xml_parse(listing, strlen(listing)) : NULL;
		CHECK(pl != NULL && strcmp(pl->name, "urn:schemas-upnp-org:gw:WANIPConnection "
					   "PortMappingList") == 0);
		int n = 0;
		for (struct xnode *e = pl ? pl->child : NULL; e != NULL; e = e->next, n++) {
			CHECK(strcmp(e->name, "urn:schemas-upnp-org:gw:WANIPConnection PortMappingEntry") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewExternalPort")), "2345") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewProtocol")), n ? "UDP" : "TCP") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewRemoteHost")), n ? "203.0.113.9" : "") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewInternalPort")), "2346") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewInternalClient")), "192.168.1.137") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewEnabled")), "1") == 0);
			CHECK(strcmp(xtext(xchild(e, "NewDescription")), nasty) == 0);
			CHECK(strcmp(xtext(xchild(e, "NewLeaseTime")), "345") == 0);
		}
		CHECK(n == 2);
		xnode_free(pl);
		xnode_free(root);
	}
	upnp_buf_free(&b);

	/* AddAnyPortMapping: NewReservedPort */
	memset(&r, 0, sizeof r);
	r.reserved_port = 40123;
	upnp_buf_init(&b);
	upnp_soap_response(&b, upnp_action_get(UPNP_ACT_ADD_ANY_PORT_MAPPING), IP2_NS, &r);
	CHECK(strstr(b.p, "<NewReservedPort>40123</NewReservedPort>") != NULL);
	upnp_buf_free(&b);
}

/* The repair pass for unescaped values must stay linear: 64 KiB of unclosed "<NewA>"
 * tags (each would otherwise scan the rest of the body). No timing assertion: the answer
 * must be 402, and a quadratic scan would show as a slow test (seconds, not microseconds). */
static void test_repair_bound(void)
{
	static char big[65536 + 1];
	struct upnp_soap_req r;
	size_t n = 0;
	const char *head = "<s:Envelope xmlns:s=\"" ENV_NS "\"><s:Body><u:AddPortMapping xmlns:u=\""
			   IP1_NS "\">";

	n = (size_t)snprintf(big, sizeof big, "%s", head);
	while (n + 7 < sizeof big - 1) {
		memcpy(big + n, "<NewA>&", 7);
		n += 7;
	}
	big[n] = '\0';
	int rc = upnp_soap_parse(big, n, NULL, UPNP_FL_IP1, &r);
	CHECK(rc == 402);
}

int main(void)
{
	test_repair_bound();
	test_clients();
	test_types();
	test_output();
	return tu_finish("test_soap");
}
