/*
 * harness.c - runs upnp/'s transport half (http.c, ssdp.c, gena.c) with a small test
 * handler so Python scripts can exercise it over real sockets.
 *
 *   upnpt_harness [--port N] [--bind ADDR] [--max-conn N] [--max-header N] [--max-body N]
 *                 [--idle-ms N] [--max-subs N] [--max-timeout S]
 *                 [--ssdp-if IFNAME]... [--ssdp-port N] [--location-host ADDR] [--igd 1|2]
 *                 [--max-age S] [--ipv6 1]
 *   --ipv6 1: also HTTP and SSDP over IPv6 on the --ssdp-if interfaces (UDA 1.1 Annex A)
 *
 * Prints "PORT <n>" on stdout when ready; exits on SIGTERM/SIGINT or stdin EOF.
 * Routes:
 *   GET  /rootDesc.xml      a minimal IGD description (text/xml)
 *   GET  /defer?MS          200 after MS milliseconds (deferred response)
 *   GET  /pending           answered only when a later "GET /release" arrives
 *   GET  /release           answers the parked /pending requests, then itself
 *   POST /echo              200 with the request body
 *   SUBSCRIBE/UNSUBSCRIBE /evt   GENA for service 0
 *   POST /set               body "Name=Value": gena_set_vars(service 0)
 *   GET  /stats             "orphans=N" (pending exchanges answered after the peer left)
 *   anything else           404
 */
#include "upnp_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>

struct deferred {
	struct http_exchange *x;
	struct event *ev;
};

#define MAX_PARKED 64
static struct http_exchange *parked[MAX_PARKED];
static size_t n_parked;
static struct gena *gena;
static struct event_base *base;
static struct http_server *srv;

__attribute__((format(printf, 3, 0)))
static void log_cb(void *arg, int level, const char *fmt, va_list ap)
{
	fprintf(stderr, "harness[%d]: ", (int)level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const char desc_igd1[] =
	"<?xml version=\"1.0\"?>\n"
	"<root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
	"<specVersion><major>1</major><minor>0</minor></specVersion>"
	"<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
	"<friendlyName>upnpt harness</friendlyName><manufacturer>iwfd</manufacturer>"
	"<modelName>harness</modelName><UDN>uuid:11111111-2222-3333-4444-555555555555</UDN>"
	"<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>"
	"<friendlyName>WAN</friendlyName><manufacturer>iwfd</manufacturer><modelName>h</modelName>"
	"<UDN>uuid:11111111-2222-3333-4444-555555555556</UDN>"
	"<serviceList><service>"
	"<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
	"<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>"
	"<SCPDURL>/WANCfg.xml</SCPDURL><controlURL>/ctl/CmnIfCfg</controlURL>"
	"<eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList>"
	"<deviceList><device>"
	"<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>"
	"<friendlyName>WANConn</friendlyName><manufacturer>iwfd</manufacturer><modelName>h</modelName>"
	"<UDN>uuid:11111111-2222-3333-4444-555555555557</UDN>"
	"<serviceList><service>"
	"<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
	"<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>"
	"<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL>"
	"<eventSubURL>/evt</eventSubURL></service></serviceList>"
	"</device></deviceList></device></deviceList>"
	"<presentationURL>/</presentationURL></device></root>\n";

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d = arg;

	http_exchange_respond(d->x, 200, NULL, "text/plain", "deferred\n", 9);
	event_free(d->ev);
	free(d);
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	return *end == '\0' ? v : 0;
}

static void handler(void *arg, struct http_exchange *x, const struct http_request *req)
{
	const char *p = req->path;

	if (strcmp(req->method, "GET") == 0 && strcmp(p, "/rootDesc.xml") == 0) {
		http_exchange_respond(x, 200, NULL, HTTP_CT_XML, desc_igd1, sizeof(desc_igd1) - 1);
	} else if (strcmp(req->method, "GET") == 0 && strncmp(p, "/defer?", 7) == 0) {
		struct deferred *d = calloc(1, sizeof(*d));
		unsigned long ms = num(p + 7);
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

		d->x = x;
		d->ev = evtimer_new(base, defer_cb, d);
		event_add(d->ev, &tv);
	} else if (strcmp(req->method, "GET") == 0 && strcmp(p, "/pending") == 0 &&
		   n_parked < MAX_PARKED) {
		parked[n_parked++] = x;
	} else if (strcmp(req->method, "GET") == 0 && strcmp(p, "/release") == 0) {
		char body[64];
		int n = snprintf(body, sizeof(body), "released=%zu\n", n_parked);

		while (n_parked > 0)
			http_exchange_respond(parked[--n_parked], 200, NULL, "text/plain", "late\n", 5);
		http_exchange_respond(x, 200, NULL, "text/plain", body, (size_t)n);
	} else if (strcmp(req->method, "GET") == 0 && strcmp(p, "/stats") == 0) {
		/* http.c's counters (upnp_server_stats' http_* part), one "name value" a line */
		struct upnp_stats st;
		char body[512];
		int n;

		memset(&st, 0, sizeof(st));
		http_server_stats(srv, &st);
		n = snprintf(body, sizeof(body),
			     "accepted %llu\nrefused_limit %llu\nrefused_per_host %llu\nrefused_not_lan %llu\n"
			     "bad_request %llu\nheader_too_big %llu\nbody_too_big %llu\n"
			     "timeout_request %llu\ntimeout_idle %llu\nthrottled %llu\n",
			     (unsigned long long)st.http_accepted, (unsigned long long)st.http_refused_limit,
			     (unsigned long long)st.http_refused_per_host,
			     (unsigned long long)st.http_refused_not_lan,
			     (unsigned long long)st.http_bad_request, (unsigned long long)st.http_header_too_big,
			     (unsigned long long)st.http_body_too_big,
			     (unsigned long long)st.http_timeout_request,
			     (unsigned long long)st.http_timeout_idle, (unsigned long long)st.http_throttled);
		http_exchange_respond(x, 200, NULL, "text/plain", body, (size_t)n);
	} else if (strcmp(req->method, "POST") == 0 && strcmp(p, "/echo") == 0) {
		http_exchange_respond(x, 200, NULL, "application/octet-stream", req->body,
				      req->body_len);
	} else if (strcmp(p, "/evt") == 0 && strcmp(req->method, "POST") != 0 &&
		   strcmp(req->method, "GET") != 0) {
		gena_handle(gena, x, req, 0);
	} else if (strcmp(req->method, "POST") == 0 && strcmp(p, "/set") == 0) {
		char *b = strdup(req->body), *eq = strchr(b, '=');

		if (eq == NULL) {
			http_exchange_respond(x, 400, NULL, NULL, NULL, 0);
		} else {
			const char *names[2] = { b, NULL }, *values[2] = { eq + 1, NULL };

			*eq = '\0';
			gena_set_vars(gena, 0, names, values);
			http_exchange_respond(x, 200, NULL, NULL, NULL, 0);
		}
		free(b);
	} else {
		http_exchange_respond(x, 404, NULL, NULL, NULL, 0);
	}
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	if (read(fd, buf, sizeof(buf)) <= 0)
		event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
	struct http_server_config hc = { .server_header = "Linux/test UPnP/1.1 iwfd/0.1",
					 .handler = handler };
	struct gena_config gc = { 0 };
	const char *ifs[8];
	size_t n_ifs = 0;
	unsigned ssdp_port = 0;
	const char *loc_host = "127.0.0.1";
	int igd = 1;
	unsigned max_age = 1800;
	struct ssdp *ssdp = NULL;
	struct event *ev_term, *ev_int, *ev_in;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];

		if (!strcmp(o, "--port")) hc.port = (uint16_t)num(v);
		else if (!strcmp(o, "--bind")) hc.bind_addr = v;
		else if (!strcmp(o, "--max-conn")) hc.max_connections = num(v);
		else if (!strcmp(o, "--max-header")) hc.max_header_bytes = num(v);
		else if (!strcmp(o, "--max-body")) hc.max_body_bytes = num(v);
		else if (!strcmp(o, "--idle-ms")) hc.idle_timeout_ms = (uint32_t)num(v);
		else if (!strcmp(o, "--max-subs")) gc.max_subscriptions = num(v);
		else if (!strcmp(o, "--max-timeout")) gc.max_timeout_s = (uint32_t)num(v);
		else if (!strcmp(o, "--ssdp-if") && n_ifs < 8) ifs[n_ifs++] = v;
		else if (!strcmp(o, "--ssdp-port")) ssdp_port = (unsigned)num(v);
		else if (!strcmp(o, "--location-host")) loc_host = v;
		else if (!strcmp(o, "--igd")) igd = (int)num(v);
		else if (!strcmp(o, "--max-age")) max_age = (unsigned)num(v);
		else if (!strcmp(o, "--ipv6")) hc.ipv6 = num(v) != 0;
		else {
			fprintf(stderr, "unknown option %s\n", o);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_DFL); /* http.c must not need SIGPIPE ignored */
	base = event_base_new();
	hc.logger.log = log_cb;
	gc.logger.log = log_cb;
	/* --ipv6: the IPv6 listeners are per LAN interface, so the --ssdp-if ones are named to
	 * http.c too (an IPv4 listener each, bound to the interface, on the --bind address). */
	if (hc.ipv6) {
		hc.lan_ifnames = ifs;
		hc.n_lan_ifnames = n_ifs;
	}
	srv = http_server_new(base, &hc);
	if (srv == NULL) {
		fprintf(stderr, "http_server_new failed\n");
		return 1;
	}
	gena = gena_new(base, &gc);
	if (n_ifs > 0) {
		static char loc[128];
		const char *nts1[] = {
			"upnp:rootdevice",
			"uuid:11111111-2222-3333-4444-555555555555",
			"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
			"uuid:11111111-2222-3333-4444-555555555555::urn:schemas-upnp-org:service:Layer3Forwarding:1",
			"uuid:11111111-2222-3333-4444-555555555556",
			"uuid:11111111-2222-3333-4444-555555555556::urn:schemas-upnp-org:device:WANDevice:1",
			"uuid:11111111-2222-3333-4444-555555555556::urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
			"uuid:11111111-2222-3333-4444-555555555557",
			"uuid:11111111-2222-3333-4444-555555555557::urn:schemas-upnp-org:device:WANConnectionDevice:1",
			"uuid:11111111-2222-3333-4444-555555555557::urn:schemas-upnp-org:service:WANIPConnection:1",
			NULL };
		const char *nts2[] = {
			"upnp:rootdevice",
			"uuid:11111111-2222-3333-4444-555555555555",
			"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
			"uuid:11111111-2222-3333-4444-555555555557",
			"uuid:11111111-2222-3333-4444-555555555557::urn:schemas-upnp-org:device:WANConnectionDevice:2",
			"uuid:11111111-2222-3333-4444-555555555557::urn:schemas-upnp-org:service:WANIPConnection:2",
			NULL };
		struct ssdp_config sc = {
			.ifnames = ifs, .n_ifnames = n_ifs, .location = loc,
			.server_header = "Linux/test UPnP/1.1 iwfd/0.1",
			.usns_nt = igd == 2 ? nts2 : nts1,
			.root_uuid = "uuid:11111111-2222-3333-4444-555555555555",
			.max_age = max_age, .boot_id = 7, .config_id = 3, .igd_version = igd,
			.logger = { .log = log_cb }, .port = (uint16_t)ssdp_port,
			.location_per_iface = hc.bind_addr == NULL, /* HTTP on every address */
			.ipv6 = hc.ipv6,
		};
		enum upnp_err e;

		snprintf(loc, sizeof(loc), "http://%s:%u/rootDesc.xml", loc_host,
			 (unsigned)http_server_port(srv));
		ssdp = ssdp_new(base, &sc, &e);
		if (ssdp == NULL) {
			fprintf(stderr, "ssdp_new failed: %d\n", (int)e);
			return 1;
		}
	}
	ev_term = evsignal_new(base, SIGTERM, stop_cb, NULL);
	ev_int = evsignal_new(base, SIGINT, stop_cb, NULL);
	ev_in = event_new(base, 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_in, NULL);
	printf("PORT %u\n", (unsigned)http_server_port(srv));
	fflush(stdout);
	event_base_dispatch(base);
	while (n_parked > 0)
		http_exchange_respond(parked[--n_parked], 200, NULL, NULL, NULL, 0);
	ssdp_free(ssdp);
	gena_free(gena);
	http_server_free(srv);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_in);
	event_base_free(base);
	return 0;
}
