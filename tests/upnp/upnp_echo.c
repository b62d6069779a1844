/*
 * upnp_echo.c - a tiny IGD for the end-to-end tests of upnp/: upnp_server_new() with a fake
 * struct upnp_ops keeping an in-memory port mapping table (no PCP). Real UPnP clients
 * (upnpc, python3-miniupnpc) drive it over real HTTP.
 *
 *   upnp_echo [--igd 1|2] [--ppp] [--addr A] [--port N] [--lan-if IF] [--ipv6]
 *
 * --ipv6: UPnP over IPv6 too (upnp_config.ipv6); each action from an IPv6 peer is written
 * to stderr as "action NAME from ADDR" (the `from` upnp/ hands over).
 *
 * Prints "URL <root description URL>" on stdout when ready; exits on SIGTERM/SIGINT or when
 * stdin reaches EOF. AddPortMapping and AddAnyPortMapping are completed asynchronously (from
 * a timer, 5 ms later) so the deferred completion path of struct upnp_call is exercised;
 * everything else is completed inside ops->action. A mapping whose description is
 * "hold-forever" is held until exit: completed only after upnp_server_free(), which must be
 * safe (lifecycle tests).
 */
#include <syslog.h>
#include "upnp.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_PM 128
#define LEASE_MAX_V2 604800

struct echo {
	struct event_base *base;
	struct upnp_server *srv;
	int igd;
	struct upnp_pm_entry pm[MAX_PM];
	size_t n;
	uint32_t system_update_id;
	bool enabled_for_internet;
	char default_service[256];
	struct upnp_call *held[16];
	size_t n_held;
};

struct pending {
	struct echo *e;
	struct upnp_call *call;
	enum upnp_action action;
	struct upnp_args args;
};

static void push_state(struct echo *e)
{
	struct upnp_state st = {
		.connection_status = "Connected",
		.external_ip = "203.0.113.7",
		.port_mapping_number_of_entries = (uint32_t)e->n,
		.system_update_id = e->system_update_id,
		.possible_connection_types = "IP_Routed",
	};
	upnp_server_set_state(e->srv, &st);
}

static struct upnp_pm_entry *find(struct echo *e, const char *rh, uint16_t port,
				  enum upnp_proto proto)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->pm[i].external_port == port && e->pm[i].protocol == proto &&
		    strcmp(e->pm[i].remote_host, rh) == 0)
			return &e->pm[i];
	return NULL;
}

static void remove_at(struct echo *e, size_t i)
{
	memmove(&e->pm[i], &e->pm[i + 1], (e->n - i - 1) * sizeof e->pm[0]);
	e->n--;
	e->system_update_id++;
}

static int add(struct echo *e, const struct upnp_args *a, bool any, uint16_t *granted)
{
	struct upnp_pm_entry pm = a->pm;
	struct upnp_pm_entry *old;

	if (e->igd == 2 && (pm.lease_duration == 0 || pm.lease_duration > LEASE_MAX_V2))
		pm.lease_duration = LEASE_MAX_V2;
	if (any) {
		uint16_t p = pm.external_port ? pm.external_port : 1024;
		while (find(e, pm.remote_host, p, pm.protocol) != NULL && p < 65535)
			p++;
		pm.external_port = p;
	}
	old = find(e, pm.remote_host, pm.external_port, pm.protocol);
	if (old != NULL) {
		if (strcmp(old->internal_client, pm.internal_client) != 0)
			return 718;
		*old = pm; /* same client: refresh */
		*granted = pm.external_port;
		return 0;
	}
	if (e->n == MAX_PM)
		return e->igd == 2 ? 728 : 501;
	e->pm[e->n++] = pm;
	e->system_update_id++;
	*granted = pm.external_port;
	return 0;
}

static void complete(struct echo *e, struct upnp_call *call, enum upnp_action action,
		     const struct upnp_args *a)
{
	struct upnp_reply r;
	struct upnp_pm_entry *pm;
	int v2 = e->igd == 2;

	memset(&r, 0, sizeof r);
	switch (action) {
	case UPNP_ACT_ADD_PORT_MAPPING:
	case UPNP_ACT_ADD_ANY_PORT_MAPPING: {
		uint16_t granted = 0;
		int rc = add(e, a, action == UPNP_ACT_ADD_ANY_PORT_MAPPING, &granted);
		if (rc != 0) {
			upnp_call_error(call, rc);
			return;
		}
		r.reserved_port = granted;
		push_state(e);
		break;
	}
	case UPNP_ACT_DELETE_PORT_MAPPING:
		pm = find(e, a->pm.remote_host, a->pm.external_port, a->pm.protocol);
		if (pm == NULL) {
			upnp_call_error(call, 714);
			return;
		}
		remove_at(e, (size_t)(pm - e->pm));
		push_state(e);
		break;
	case UPNP_ACT_DELETE_PORT_MAPPING_RANGE: {
		size_t removed = 0;
		for (size_t i = 0; i < e->n;) {
			if (e->pm[i].protocol == a->pm.protocol &&
			    e->pm[i].external_port >= a->start_port &&
			    e->pm[i].external_port <= a->end_port) {
				remove_at(e, i);
				removed++;
			} else {
				i++;
			}
		}
		if (removed == 0) {
			upnp_call_error(call, 730);
			return;
		}
		push_state(e);
		break;
	}
	case UPNP_ACT_GET_GENERIC_PORT_MAPPING_ENTRY:
		if (a->index >= e->n) {
			upnp_call_error(call, v2 ? 713 : 714);
			return;
		}
		r.pm = e->pm[a->index];
		break;
	case UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY:
		pm = find(e, a->pm.remote_host, a->pm.external_port, a->pm.protocol);
		if (pm == NULL) {
			upnp_call_error(call, 714);
			return;
		}
		r.pm = *pm;
		break;
	case UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS: {
		static struct upnp_pm_entry list[MAX_PM];
		size_t n = 0;
		for (size_t i = 0; i < e->n; i++) {
			if (e->pm[i].protocol != a->pm.protocol ||
			    e->pm[i].external_port < a->start_port ||
			    e->pm[i].external_port > a->end_port)
				continue;
			if (a->number_of_ports != 0 && n == a->number_of_ports)
				break;
			list[n++] = e->pm[i];
		}
		if (n == 0) {
			upnp_call_error(call, 730);
			return;
		}
		r.list = list;
		r.n_list = n;
		break;
	}
	case UPNP_ACT_GET_EXTERNAL_IP_ADDRESS:
		r.external_ip = "203.0.113.7";
		break;
	case UPNP_ACT_GET_STATUS_INFO:
		r.connection_status = "Connected";
		r.last_connection_error = "ERROR_NONE";
		r.uptime = 42;
		break;
	case UPNP_ACT_GET_CONNECTION_TYPE_INFO:
		r.connection_type = "IP_Routed";
		r.possible_connection_types = "IP_Routed";
		break;
	case UPNP_ACT_GET_NAT_RSIP_STATUS:
		r.rsip_available = false;
		r.nat_enabled = true;
		break;
	case UPNP_ACT_SET_CONNECTION_TYPE:
		upnp_call_error(call, v2 ? 731 : 501); /* seed 004 §4.2 */
		return;
	case UPNP_ACT_REQUEST_CONNECTION:
	case UPNP_ACT_REQUEST_TERMINATION:
	case UPNP_ACT_FORCE_TERMINATION:
		upnp_call_error(call, v2 ? 606 : 501);
		return;
	case UPNP_ACT_GET_COMMON_LINK_PROPERTIES:
		r.wan_access_type = "Ethernet";
		r.up_max_bitrate = 100000000;
		r.down_max_bitrate = 200000000;
		r.physical_link_status = "Up";
		break;
	case UPNP_ACT_GET_TOTAL_BYTES_SENT: r.number = 1001; break;
	case UPNP_ACT_GET_TOTAL_BYTES_RECEIVED: r.number = 2002; break;
	case UPNP_ACT_GET_TOTAL_PACKETS_SENT: r.number = 11; break;
	case UPNP_ACT_GET_TOTAL_PACKETS_RECEIVED: r.number = 22; break;
	case UPNP_ACT_GET_MAXIMUM_ACTIVE_CONNECTIONS: r.number = 1; break;
	case UPNP_ACT_GET_ENABLED_FOR_INTERNET: r.flag = e->enabled_for_internet; break;
	case UPNP_ACT_SET_ENABLED_FOR_INTERNET: e->enabled_for_internet = a->flag; break;
	case UPNP_ACT_GET_ACTIVE_CONNECTION:
		if (a->number != 0) {
			upnp_call_error(call, 713);
			return;
		}
		break; /* upnp/ fills in its own device container and service id */
	case UPNP_ACT_GET_DEFAULT_CONNECTION_SERVICE:
		r.text = e->default_service[0] ? e->default_service : NULL;
		break;
	case UPNP_ACT_SET_DEFAULT_CONNECTION_SERVICE:
		snprintf(e->default_service, sizeof e->default_service, "%s", a->text);
		break;
	case UPNP_ACT_GET_LINK_LAYER_MAX_BIT_RATES:
		r.up_max_bitrate = 1000000;
		r.down_max_bitrate = 16000000;
		break;
	case UPNP_ACT_GET_PPP_ENCRYPTION_PROTOCOL:
	case UPNP_ACT_GET_PPP_COMPRESSION_PROTOCOL:
	case UPNP_ACT_GET_PPP_AUTHENTICATION_PROTOCOL:
		r.text = "";
		break;
	case UPNP_ACT_GET_USER_NAME:
		r.text = "user&<name>";
		break;
	case UPNP_ACT_GET_PASSWORD:
		upnp_call_error(call, 606);
		return;
	case UPNP_ACT_CONFIGURE_CONNECTION:
		upnp_call_error(call, 606);
		return;
	case UPNP_ACT_GET_AUTO_DISCONNECT_TIME:
	case UPNP_ACT_GET_IDLE_DISCONNECT_TIME:
	case UPNP_ACT_GET_WARN_DISCONNECT_DELAY:
		r.number = 0;
		break;
	case UPNP_ACT_SET_AUTO_DISCONNECT_TIME:
	case UPNP_ACT_SET_IDLE_DISCONNECT_TIME:
	case UPNP_ACT_SET_WARN_DISCONNECT_DELAY:
		upnp_call_error(call, 501);
		return;
	case UPNP_ACT__COUNT:
		upnp_call_error(call, 401);
		return;
	}
	upnp_call_reply(call, &r);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd; (void)what;
	complete(p->e, p->call, p->action, &p->args);
	free(p);
}

static void on_action(void *arg, struct upnp_call *call, enum upnp_action action,
		      const struct upnp_args *args, const struct sockaddr *from)
{
	struct echo *e = arg;
	struct timeval tv = { 0, 5000 };
	struct pending *p;

	if (from != NULL && from->sa_family == AF_INET6) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)from)->sin6_addr,
			  a, sizeof a);
		fprintf(stderr, "action %s from %s\n", upnp_action_name(action), a);
	}
	if ((action == UPNP_ACT_ADD_PORT_MAPPING || action == UPNP_ACT_ADD_ANY_PORT_MAPPING) &&
	    strcmp(args->pm.description, "hold-forever") == 0) {
		if (e->n_held == sizeof e->held / sizeof e->held[0])
			upnp_call_error(call, 501);
		else
			e->held[e->n_held++] = call; /* completed after upnp_server_free() */
		return;
	}
	if (action != UPNP_ACT_ADD_PORT_MAPPING && action != UPNP_ACT_ADD_ANY_PORT_MAPPING) {
		complete(e, call, action, args);
		return;
	}
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		upnp_call_error(call, 501);
		return;
	}
	p->e = e;
	p->call = call;
	p->action = action;
	p->args = *args;
	if (event_base_once(e->base, -1, EV_TIMEOUT, deferred_cb, p, &tv) != 0) {
		free(p);
		upnp_call_error(call, 501);
	}
}

__attribute__((format(printf, 3, 0)))
static void on_log(void *arg, int level, const char *fmt, va_list ap)
{
	(void)arg;
	if (level > LOG_INFO && getenv("UPNP_ECHO_DEBUG") == NULL)
		return;
	fprintf(stderr, "upnp_echo: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	event_base_loopbreak(arg);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	(void)what;
	if (read(fd, buf, sizeof buf) <= 0)
		event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	static const struct upnp_ops ops = { .action = on_action };
	struct echo e;
	struct upnp_config cfg;
	const char *ifs[4];
	enum upnp_err err;

	memset(&e, 0, sizeof e);
	memset(&cfg, 0, sizeof cfg);
	e.igd = 1;
	e.enabled_for_internet = true;
	cfg.lan_addr = "127.0.0.1";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--igd") == 0 && i + 1 < argc)
			e.igd = atoi(argv[++i]) == 2 ? 2 : 1; /* test program: trusted input */
		else if (strcmp(argv[i], "--ppp") == 0)
			cfg.ppp = true;
		else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
			cfg.lan_addr = argv[++i];
		else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			cfg.http_port = (uint16_t)atoi(argv[++i]);
		else if (strcmp(argv[i], "--lan-if") == 0 && i + 1 < argc && cfg.n_lan_ifnames < 4)
			ifs[cfg.n_lan_ifnames++] = argv[++i];
		else if (strcmp(argv[i], "--ipv6") == 0)
			cfg.ipv6 = true;
		else {
			fprintf(stderr, "usage: upnp_echo [--igd 1|2] [--ppp] [--addr A] [--port N] "
				"[--lan-if IF] [--ipv6]\n");
			return 2;
		}
	}
	cfg.lan_ifnames = ifs;
	cfg.igd_version = e.igd;
	cfg.uuid_igd = "4d696e69-5550-6e50-4947-440000000001";
	cfg.uuid_wan_device = "4d696e69-5550-6e50-4947-440000000002";
	cfg.uuid_wan_conn_device = "4d696e69-5550-6e50-4947-440000000003";
	cfg.friendly_name = "iwfd echo <test> & \"friends\"";
	cfg.ops = &ops;
	cfg.ops_arg = &e;
	cfg.log = on_log;

	e.base = event_base_new();
	if (e.base == NULL)
		return 1;
	e.srv = upnp_server_new(e.base, &cfg, &err);
	if (e.srv == NULL) {
		fprintf(stderr, "upnp_echo: %s\n", upnp_err_name(err));
		return 1;
	}
	push_state(&e);
	struct event *sigterm = evsignal_new(e.base, SIGTERM, on_signal, e.base);
	struct event *sigint = evsignal_new(e.base, SIGINT, on_signal, e.base);
	struct event *in = event_new(e.base, 0, EV_READ | EV_PERSIST, on_stdin, e.base);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_add(in, NULL);
	printf("URL %s\n", upnp_server_root_url(e.srv));
	fflush(stdout);
	event_base_dispatch(e.base);
	upnp_server_free(e.srv);
	for (size_t i = 0; i < e.n_held; i++) /* server gone: must only free the calls */
		upnp_call_error(e.held[i], 501);
	event_free(sigterm);
	event_free(sigint);
	event_free(in);
	event_base_free(e.base);
	return 0;
}
