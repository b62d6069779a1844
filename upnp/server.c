/*
 * server.c - the glue: upnp_server_new/free, routing of HTTP requests (descriptions,
 * control, eventing), the lifecycle of struct upnp_call, and state -> GENA.
 *
 * Call lifecycle: a struct upnp_call is allocated for each valid SOAP request and handed to
 * ops->action. It stays allocated until the application completes it with
 * upnp_call_reply() / upnp_call_error(), which answer the HTTP exchange (http.c drops the
 * answer if the client went away) and free the call. upnp_server_free() answers every
 * pending call's HTTP exchange with 501 Action Failed and detaches the calls from the
 * server (call->srv = NULL, call->x = NULL) without freeing them: the application's later
 * upnp_call_reply()/upnp_call_error() on them only frees them.
 */
#include <syslog.h>
#include "content.h"
#include "upnp_internal.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/util.h>
#include <sys/utsname.h>

#define UUID_LEN 36
#define N_NT 11
#define NT_LEN 160

struct upnp_call {
	struct upnp_server *srv;  /* NULL once the server is gone */
	struct http_exchange *x;  /* NULL once answered */
	const struct upnp_action_def *def;
	char ns[UPNP_SOAP_NS_MAX];
	struct upnp_call *prev, *next;
};

struct upnp_server {
	struct event_base *base;
	struct upnp_logger logger;
	const struct upnp_ops *ops;
	void *ops_arg;
	int igd_version;
	struct upnp_desc_config dc;
	char *friendly_name;
	char uuid[3][UUID_LEN + 1]; /* igd, wan device, wan connection device */
	char lan_addr[INET_ADDRSTRLEN];
	char root_url[64];
	char server_header[96];
	struct upnp_buf root_desc;
	struct upnp_buf scpd[UPNP_FL__COUNT];
	char default_conn_service[160]; /* Layer3Forwarding DefaultConnectionService */
	char conn_container[64];        /* uuid:<wanconndev>:WANConnectionDevice:<v> */
	struct http_server *http;
	struct ssdp *ssdp;
	struct gena *gena;
	struct upnp_call *calls;        /* pending calls */
	/* last state pushed (QueryStateVariable, GetPortMappingNumberOfEntries) */
	char st_status[32], st_external_ip[64], st_possible[64];
	uint32_t st_entries, st_system_update_id;
	char nt_store[N_NT][NT_LEN];
	const char *nts[N_NT + 1];
	bool stopped; /* upnp_server_set_enabled(false): SSDP silent, SOAP answered 503 */
	struct upnp_stats st; /* the soap_* counters and pages (the rest: http.c, ssdp.c, gena.c) */
};

/* ------------------------------------------------------------------ calls */

static void call_unlink(struct upnp_call *c)
{
	if (c->srv == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->srv->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static const char *const soap_headers[] = { "EXT", "", NULL };
#define SOAP_CT HTTP_CT_XML /* UDA 1.1 §3.2.1 */

static void respond_fault(struct http_exchange *x, int code)
{
	struct upnp_buf b;

	upnp_buf_init(&b);
	upnp_soap_fault(&b, code);
	if (b.failed)
		http_exchange_respond(x, 500, NULL, NULL, NULL, 0);
	else
		http_exchange_respond(x, 500, soap_headers, SOAP_CT, b.p, b.len); /* UDA §3.2.2 */
	upnp_buf_free(&b);
}

void upnp_call_reply(struct upnp_call *call, const struct upnp_reply *reply)
{
	static const struct upnp_reply empty;

	if (call == NULL)
		return;
	if (call->x != NULL && call->srv != NULL) {
		struct upnp_server *s = call->srv;
		struct upnp_reply r = reply != NULL ? *reply : empty;
		struct upnp_buf b;

		/* values only upnp/ knows, when the application leaves them out */
		if (call->def->action == UPNP_ACT_GET_DEFAULT_CONNECTION_SERVICE && r.text == NULL)
			r.text = s->default_conn_service;
		if (call->def->action == UPNP_ACT_GET_ACTIVE_CONNECTION) {
			if (r.text == NULL)
				r.text = s->conn_container;
			if (r.text2 == NULL)
				r.text2 = upnp_flavour_get(upnp_desc_conn_flavour(&s->dc))->service_id;
		}
		upnp_buf_init(&b);
		upnp_soap_response(&b, call->def, call->ns, &r);
		if (b.failed) {
			upnp_log(&s->logger, LOG_ERR, "upnp: cannot format %s response",
				 call->def->name);
			respond_fault(call->x, 501);
		} else {
			http_exchange_respond(call->x, 200, soap_headers, SOAP_CT, b.p, b.len);
		}
		upnp_buf_free(&b);
	}
	call_unlink(call);
	free(call);
}

void upnp_call_error(struct upnp_call *call, enum upnp_error code)
{
	int upnp_error_code = (int)code;

	if (call == NULL)
		return;
	if (call->x != NULL && call->srv != NULL) {
		upnp_log(&call->srv->logger, LOG_DEBUG, "upnp: %s -> error %d",
			 call->def->name, upnp_error_code);
		respond_fault(call->x, upnp_error_code);
	}
	call_unlink(call);
	free(call);
}

/* ------------------------------------------------------------------ routing */

enum route_kind { ROUTE_NONE, ROUTE_ROOT, ROUTE_SCPD, ROUTE_CTL, ROUTE_EVT };

/* Path of the request target: absolute-form reduced to its path, query dropped. */
static size_t target_path(const char *t, const char **path)
{
	if (strncasecmp(t, "http://", 7) == 0) {
		const char *slash = strchr(t + 7, '/');
		t = slash != NULL ? slash : "/";
	}
	*path = t;
	return strcspn(t, "?#");
}

static bool path_is(const char *p, size_t len, const char *prefix, const char *name,
		    const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(name), c = strlen(suffix);

	return len == a + b + c && memcmp(p, prefix, a) == 0 && memcmp(p + a, name, b) == 0 &&
	       memcmp(p + a + b, suffix, c) == 0;
}

static enum route_kind route(const struct upnp_server *s, const char *target,
			     enum upnp_flavour *fl)
{
	const char *p;
	size_t len = target_path(target, &p);

	if (path_is(p, len, "/rootDesc.xml", "", ""))
		return ROUTE_ROOT;
	for (int f = 0; f < UPNP_FL__COUNT; f++) {
		const struct upnp_flavour_def *d = upnp_flavour_get((enum upnp_flavour)f);
		if (!upnp_desc_hosts(&s->dc, (enum upnp_flavour)f))
			continue;
		*fl = (enum upnp_flavour)f;
		if (path_is(p, len, "/scpd/", d->path, ".xml"))
			return ROUTE_SCPD;
		if (path_is(p, len, "/ctl/", d->path, ""))
			return ROUTE_CTL;
		if (path_is(p, len, "/evt/", d->path, ""))
			return ROUTE_EVT;
	}
	return ROUTE_NONE;
}

static void respond_405(struct http_exchange *x, const char *allow)
{
	const char *const h[] = { "Allow", allow, NULL };

	http_exchange_respond(x, 405, h, NULL, NULL, 0);
}

/* The compatibility requests of content.h, answered from the last pushed state. */
static void answer_compat(struct upnp_server *s, struct http_exchange *x, enum upnp_flavour fl,
			  const struct upnp_soap_req *sr)
{
	struct upnp_reply r;
	struct upnp_buf b;
	char num[16];
	enum upnp_service svc = upnp_flavour_get(fl)->service;
	bool conn = svc == UPNP_SVC_WANIPCONN || svc == UPNP_SVC_WANPPPCONN;

	memset(&r, 0, sizeof r);
	r.number = s->st_entries;
	if (sr->def == &upnp_compat_query_state_variable) {
		/* the evented variables of the service at this control URL */
		const char *n = sr->args.text;
		if (conn && strcmp(n, "ConnectionStatus") == 0)
			r.text = s->st_status;
		else if (conn && strcmp(n, "ExternalIPAddress") == 0)
			r.text = s->st_external_ip;
		else if (conn && strcmp(n, "PossibleConnectionTypes") == 0)
			r.text = s->st_possible;
		else if (conn && strcmp(n, "PortMappingNumberOfEntries") == 0) {
			snprintf(num, sizeof num, "%u", (unsigned)s->st_entries);
			r.text = num;
		} else if (fl == UPNP_FL_IP2 && strcmp(n, "SystemUpdateID") == 0) {
			snprintf(num, sizeof num, "%u", (unsigned)s->st_system_update_id);
			r.text = num;
		} else if (svc == UPNP_SVC_L3FWD && strcmp(n, "DefaultConnectionService") == 0)
			r.text = s->default_conn_service;
		else {
			respond_fault(x, 404); /* UDA 1.0: Invalid Var */
			return;
		}
	}
	upnp_buf_init(&b);
	upnp_soap_response(&b, sr->def, sr->ns, &r);
	if (b.failed)
		respond_fault(x, 501);
	else
		http_exchange_respond(x, 200, soap_headers, SOAP_CT, b.p, b.len);
	upnp_buf_free(&b);
}

static void handle_soap(struct upnp_server *s, struct http_exchange *x,
			const struct http_request *req, enum upnp_flavour fl)
{
	struct upnp_soap_req sr;
	struct upnp_call *c;
	int rc;

	s->st.soap_requests++;
	if (s->stopped) {
		s->st.soap_refused_stopped++;
		http_exchange_respond(x, 503, NULL, NULL, NULL, 0);
		return;
	}
	/* Content-Type is not checked: clients send text/xml, application/xml or nothing. */
	rc = upnp_soap_parse(req->body != NULL ? req->body : "", req->body_len,
			     http_request_header(req, "SOAPACTION"), fl, &sr);
	if (rc != 0) {
		upnp_log(&s->logger, LOG_DEBUG, "upnp: rejected %s on %s: %d",
			 sr.def ? sr.def->name : "request", req->path, rc);
		if (rc == UPNP_E_INVALID_ACTION)
			s->st.soap_invalid_action++;
		else if (rc == UPNP_E_INVALID_ARGS)
			s->st.soap_invalid_args++;
		else
			s->st.soap_other_faults++;
		respond_fault(x, rc);
		return;
	}
	s->st.soap_actions++;
	if (sr.def->action == UPNP_ACT__COUNT) {
		answer_compat(s, x, fl, &sr);
		return;
	}
	if (s->ops == NULL || s->ops->action == NULL) {
		s->st.soap_other_faults++;
		respond_fault(x, 501);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		s->st.soap_other_faults++;
		respond_fault(x, 501);
		return;
	}
	c->srv = s;
	c->x = x;
	c->def = sr.def;
	memcpy(c->ns, sr.ns, sizeof c->ns);
	c->next = s->calls;
	if (s->calls != NULL)
		s->calls->prev = c;
	s->calls = c;
	s->ops->action(s->ops_arg, c, sr.def->action, &sr.args,
		       (const struct sockaddr *)&req->peer);
	/* c may be freed here */
}

/* A GET for a path of none of our documents: the application's page, if it has one. */
static void answer_page(struct upnp_server *s, struct http_exchange *x,
			const struct http_request *req)
{
	char path[256];
	const char *p;
	size_t len = target_path(req->path, &p);
	struct upnp_page pg;

	memset(&pg, 0, sizeof pg);
	if (s->ops == NULL || s->ops->page == NULL || len >= sizeof path) {
		http_exchange_respond(x, 404, NULL, NULL, NULL, 0);
		return;
	}
	memcpy(path, p, len);
	path[len] = '\0';
	if (!s->ops->page(s->ops_arg, path, (const struct sockaddr *)&req->peer, &pg)) {
		free(pg.body);
		http_exchange_respond(x, 404, NULL, NULL, NULL, 0);
		return;
	}
	s->st.pages++;
	http_exchange_respond(x, pg.status > 0 ? pg.status : 200, pg.headers, pg.content_type,
			      pg.body, pg.body != NULL ? pg.body_len : 0);
	free(pg.body);
}

static void on_request(void *arg, struct http_exchange *x, const struct http_request *req)
{
	struct upnp_server *s = arg;
	enum upnp_flavour fl = UPNP_FL_IP1;
	const char *m = req->method;

	switch (route(s, req->path, &fl)) {
	case ROUTE_ROOT:
		if (strcmp(m, "GET") != 0)
			break;
		http_exchange_respond(x, 200, NULL, SOAP_CT, s->root_desc.p, s->root_desc.len);
		return;
	case ROUTE_SCPD:
		if (strcmp(m, "GET") != 0)
			break;
		http_exchange_respond(x, 200, NULL, SOAP_CT, s->scpd[fl].p, s->scpd[fl].len);
		return;
	case ROUTE_CTL:
		if (strcmp(m, "POST") != 0) {
			respond_405(x, "POST");
			return;
		}
		handle_soap(s, x, req, fl);
		return;
	case ROUTE_EVT:
		if (strcmp(m, "SUBSCRIBE") != 0 && strcmp(m, "UNSUBSCRIBE") != 0) {
			respond_405(x, "SUBSCRIBE, UNSUBSCRIBE");
			return;
		}
		gena_handle(s->gena, x, req, (int)upnp_flavour_get(fl)->service);
		return;
	case ROUTE_NONE:
		if (strcmp(m, "GET") == 0) /* HEAD arrives as GET (http.c sends no body) */
			answer_page(s, x, req);
		else
			http_exchange_respond(x, 404, NULL, NULL, NULL, 0);
		return;
	}
	respond_405(x, "GET");
}

/* ------------------------------------------------------------------ state */

static void set_vars(struct upnp_server *s, enum upnp_service svc, const char *const *names,
		     const char *const *values)
{
	if (s->gena != NULL)
		gena_set_vars(s->gena, (int)svc, names, values);
}

void upnp_server_set_enabled(struct upnp_server *s, bool on)
{
	if (s == NULL || s->stopped == !on)
		return;
	s->stopped = !on;
	ssdp_set_enabled(s->ssdp, on);
	upnp_log(&s->logger, LOG_INFO, "upnp: IGD %s on the LAN", on ? "started again" : "stopped");
}

bool upnp_server_enabled(const struct upnp_server *s)
{
	return s != NULL && !s->stopped;
}

void upnp_server_set_state(struct upnp_server *s, const struct upnp_state *st)
{
	char entries[16], sysupd[16];
	enum upnp_flavour cfl;

	if (s == NULL || st == NULL)
		return;
	cfl = upnp_desc_conn_flavour(&s->dc);
	snprintf(entries, sizeof entries, "%u", (unsigned)st->port_mapping_number_of_entries);
	snprintf(sysupd, sizeof sysupd, "%u", (unsigned)st->system_update_id);
	/* Evented variables of WANIPConnection / WANPPPConnection (sendEvents="yes") */
	const char *const names[] = { "PossibleConnectionTypes", "ConnectionStatus",
		"ExternalIPAddress", "PortMappingNumberOfEntries",
		cfl == UPNP_FL_IP2 ? "SystemUpdateID" : NULL, NULL };
	const char *const values[] = {
		st->possible_connection_types ? st->possible_connection_types : "IP_Routed",
		st->connection_status ? st->connection_status : "Disconnected",
		st->external_ip ? st->external_ip : "", entries, sysupd, NULL };
	set_vars(s, upnp_flavour_get(cfl)->service, names, values);
	snprintf(s->st_possible, sizeof s->st_possible, "%s", values[0]);
	snprintf(s->st_status, sizeof s->st_status, "%s", values[1]);
	snprintf(s->st_external_ip, sizeof s->st_external_ip, "%s", values[2]);
	s->st_entries = st->port_mapping_number_of_entries;
	s->st_system_update_id = st->system_update_id;
}

static void initial_vars(struct upnp_server *s)
{
	static const struct upnp_state st0 = { "Disconnected", "", 0, 0, "IP_Routed" };
	static const char *const cic_names[] = { "PhysicalLinkStatus", "EnabledForInternet", NULL };
	static const char *const cic_values[] = { "Up", "1", NULL };
	static const char *const l3f_names[] = { "DefaultConnectionService", NULL };
	const char *const l3f_values[] = { s->default_conn_service, NULL };

	upnp_server_set_state(s, &st0);
	set_vars(s, UPNP_SVC_WANCOMMONIFC, cic_names, cic_values);
	set_vars(s, UPNP_SVC_L3FWD, l3f_names, l3f_values);
}

/* ------------------------------------------------------------------ setup */

static bool make_uuid(char out[UUID_LEN + 1])
{
	uint8_t r[16];
	char text[UPNP_UUID_TEXT];

	upnp_uuid_random(r);
	upnp_uuid_format(r, text);
	snprintf(out, UUID_LEN + 1, "%s", text);
	return true;
}

static bool set_uuid(char out[UUID_LEN + 1], const char *in)
{
	if (in == NULL || in[0] == '\0')
		return make_uuid(out);
	if (strncmp(in, "uuid:", 5) == 0)
		in += 5;
	if (strlen(in) > UUID_LEN)
		return false;
	for (const char *p = in; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		      (*p >= 'A' && *p <= 'F') || *p == '-'))
			return false;
	memcpy(out, in, strlen(in) + 1);
	return true;
}

/* First IPv4 address of interface ifname. */
static enum upnp_err if_addr(const char *ifname, char out[INET_ADDRSTRLEN])
{
	struct ifaddrs *ifa, *i;
	enum upnp_err err = UPNP_ERR_IFACE;

	if (getifaddrs(&ifa) != 0)
		return UPNP_ERR_IFACE;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)i->ifa_addr;
		if (inet_ntop(AF_INET, &sin->sin_addr, out, INET_ADDRSTRLEN) != NULL)
			err = UPNP_OK;
		break;
	}
	freeifaddrs(ifa);
	return err;
}

static enum upnp_err build_docs(struct upnp_server *s)
{
	char types[3][96];
	size_t n = 0, k;
	enum upnp_flavour cfl = upnp_desc_conn_flavour(&s->dc);
	const struct upnp_flavour_def *cf = upnp_flavour_get(cfl);

	upnp_desc_root(&s->root_desc, &s->dc);
	if (s->root_desc.failed)
		return UPNP_ERR_NOMEM;
	for (int f = 0; f < UPNP_FL__COUNT; f++) {
		if (!upnp_desc_hosts(&s->dc, (enum upnp_flavour)f))
			continue;
		upnp_desc_scpd(&s->scpd[f], (enum upnp_flavour)f);
		if (s->scpd[f].failed)
			return UPNP_ERR_NOMEM;
	}
	snprintf(s->conn_container, sizeof s->conn_container, "uuid:%s:WANConnectionDevice:%d",
		 s->uuid[2], s->igd_version);
	snprintf(s->default_conn_service, sizeof s->default_conn_service, "%s,%s",
		 s->conn_container, cf->service_id);

	/* SSDP targets (UDA 1.1 §1.1.2): root, every UDN, every device and service type.
	 * Types of embedded devices and their services carry their own UDN in the USN
	 * ("uuid:X::type", see ssdp_config in upnp_internal.h). */
	snprintf(s->nt_store[n++], NT_LEN, "upnp:rootdevice");
	for (k = 0; k < 3; k++)
		snprintf(s->nt_store[n++], NT_LEN, "uuid:%s", s->uuid[k]);
	k = upnp_desc_device_types(&s->dc, types, 3);
	for (size_t i = 0; i < k; i++) {
		char u[UUID_LEN + 1];
		memcpy(u, s->uuid[i], sizeof u);
		if (i == 0)
			memcpy(s->nt_store[n++], types[i], sizeof types[i]);
		else
			snprintf(s->nt_store[n++], NT_LEN, "uuid:%s::%.96s", u, types[i]);
	}
	for (int f = 0; f < UPNP_FL__COUNT && n < N_NT; f++) {
		char st[96];
		if (!upnp_desc_hosts(&s->dc, (enum upnp_flavour)f))
			continue;
		upnp_desc_service_type((enum upnp_flavour)f, st, sizeof st);
		int dev = f == UPNP_FL_L3F1 ? 0 : f == UPNP_FL_CIC1 ? 1 : 2;
		char u[UUID_LEN + 1];
		memcpy(u, s->uuid[dev], sizeof u);
		if (dev == 0)
			memcpy(s->nt_store[n++], st, sizeof st);
		else
			snprintf(s->nt_store[n++], NT_LEN, "uuid:%s::%.96s", u, st);
	}
	for (k = 0; k < n; k++)
		s->nts[k] = s->nt_store[k];
	s->nts[n] = NULL;
	return UPNP_OK;
}

struct upnp_server *upnp_server_new(struct event_base *base, const struct upnp_config *cfg,
				    enum upnp_err *err)
{
	struct upnp_server *s;
	enum upnp_err e = UPNP_ERR_INVAL;
	struct utsname un;

	if (base == NULL || cfg == NULL || (cfg->igd_version != 0 && cfg->igd_version != 1 &&
					    cfg->igd_version != 2))
		goto fail_early;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		e = UPNP_ERR_NOMEM;
		goto fail_early;
	}
	s->base = base;
	s->logger.log = cfg->log;
	s->logger.arg = cfg->log_arg;
	s->ops = cfg->ops;
	s->ops_arg = cfg->ops_arg;
	s->igd_version = cfg->igd_version == 2 ? 2 : 1;
	for (size_t i = 0; i < UPNP_FL__COUNT; i++)
		upnp_buf_init(&s->scpd[i]);
	upnp_buf_init(&s->root_desc);

	if (!set_uuid(s->uuid[0], cfg->uuid_igd) || !set_uuid(s->uuid[1], cfg->uuid_wan_device) ||
	    !set_uuid(s->uuid[2], cfg->uuid_wan_conn_device))
		goto fail;
	s->friendly_name = strdup(cfg->friendly_name ? cfg->friendly_name : "iwfd Internet Gateway");
	if (s->friendly_name == NULL) {
		e = UPNP_ERR_NOMEM;
		goto fail;
	}
	s->dc.igd_version = s->igd_version;
	s->dc.ppp = cfg->ppp;
	s->dc.friendly_name = s->friendly_name;
	s->dc.uuid_igd = s->uuid[0];
	s->dc.uuid_wan_device = s->uuid[1];
	s->dc.uuid_wan_conn_device = s->uuid[2];
	s->dc.config_id = cfg->config_id;

	if (cfg->lan_addr != NULL) {
		struct in_addr a;
		if (inet_pton(AF_INET, cfg->lan_addr, &a) != 1)
			goto fail;
		snprintf(s->lan_addr, sizeof s->lan_addr, "%s", cfg->lan_addr);
	} else {
		if (cfg->n_lan_ifnames == 0 || cfg->lan_ifnames == NULL)
			goto fail;
		e = if_addr(cfg->lan_ifnames[0], s->lan_addr);
		if (e != UPNP_OK)
			goto fail;
		e = UPNP_ERR_INVAL;
	}
	e = build_docs(s);
	if (e != UPNP_OK)
		goto fail;

	if (uname(&un) == 0)
		snprintf(s->server_header, sizeof s->server_header, "%.20s/%.24s UPnP/%s iwfd/0.1",
			 un.sysname, un.release, s->igd_version == 2 ? "1.1" : "1.0");
	else
		snprintf(s->server_header, sizeof s->server_header, "Linux UPnP/%s iwfd/0.1",
			 s->igd_version == 2 ? "1.1" : "1.0");

	struct gena_config gc = {
		.max_subscriptions = cfg->max_subscriptions,
		.max_timeout_s = 0,
		.logger = s->logger,
	};
	e = UPNP_ERR_NOMEM;
	s->gena = gena_new(base, &gc);
	if (s->gena == NULL)
		goto fail;
	initial_vars(s);

	struct http_server_config hc = {
		.bind_addr = s->lan_addr,
		.port = cfg->http_port,
		/* LAN only: a listener per LAN interface, peers on its subnets (http.c) */
		.lan_ifnames = cfg->lan_ifnames,
		.n_lan_ifnames = cfg->lan_ifnames != NULL ? cfg->n_lan_ifnames : 0,
		.max_connections = cfg->max_connections,
		.max_header_bytes = cfg->max_header_bytes,
		.max_body_bytes = cfg->max_body_bytes,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.ipv6 = cfg->ipv6,
		.server_header = s->server_header,
		.handler = on_request,
		.handler_arg = s,
		.logger = s->logger,
	};
	e = UPNP_ERR_SOCKET;
	s->http = http_server_new(base, &hc);
	if (s->http == NULL)
		goto fail;
	snprintf(s->root_url, sizeof s->root_url, "http://%s:%u/rootDesc.xml", s->lan_addr,
		 (unsigned)http_server_port(s->http));

	/* No LAN interface named: HTTP only (tests on loopback); SSDP needs interfaces. */
	if (cfg->n_lan_ifnames > 0 && cfg->lan_ifnames != NULL) {
		char root_uuid[UUID_LEN + 6];
		snprintf(root_uuid, sizeof root_uuid, "uuid:%s", s->uuid[0]);
		struct ssdp_config sc = {
			.ifnames = cfg->lan_ifnames,
			.n_ifnames = cfg->n_lan_ifnames,
			.location = s->root_url,
			.server_header = s->server_header,
			.usns_nt = s->nts,
			.root_uuid = root_uuid,
			.max_age = cfg->ssdp_max_age ? cfg->ssdp_max_age : 1800,
			.boot_id = cfg->boot_id,
			.config_id = cfg->config_id,
			.igd_version = s->igd_version,
			.logger = s->logger,
			.ipv6 = cfg->ipv6,
			.start_off = cfg->start_stopped,
		};
		s->ssdp = ssdp_new(base, &sc, &e);
		if (s->ssdp == NULL) {
			if (e == UPNP_OK)
				e = UPNP_ERR_SOCKET;
			goto fail;
		}
	}
	s->stopped = cfg->start_stopped;
	upnp_log(&s->logger, LOG_INFO, "upnp: IGD:%d%s at %s%s%s", s->igd_version,
		 cfg->ppp ? " (WANPPPConnection)" : "", s->root_url,
		 cfg->ipv6 && cfg->n_lan_ifnames > 0 ? ", and over IPv6 on the LAN interfaces" : "",
		 s->stopped ? " (stopped)" : "");
	if (err != NULL)
		*err = UPNP_OK;
	return s;

fail:
	upnp_server_free(s);
fail_early:
	if (err != NULL)
		*err = e;
	return NULL;
}

void upnp_server_free(struct upnp_server *s)
{
	if (s == NULL)
		return;
	/* Pending calls: answer their HTTP side now, keep them for the application. */
	while (s->calls != NULL) {
		struct upnp_call *c = s->calls;
		s->calls = c->next;
		if (c->x != NULL)
			respond_fault(c->x, 501);
		c->x = NULL;
		c->srv = NULL;
		c->prev = c->next = NULL;
	}
	ssdp_free(s->ssdp);      /* byebye */
	gena_free(s->gena);
	http_server_free(s->http);
	upnp_buf_free(&s->root_desc);
	for (size_t i = 0; i < UPNP_FL__COUNT; i++)
		upnp_buf_free(&s->scpd[i]);
	free(s->friendly_name);
	free(s);
}

void upnp_server_stats(const struct upnp_server *s, struct upnp_stats *out)
{
	memset(out, 0, sizeof *out);
	if (s == NULL)
		return;
	*out = s->st;
	if (s->http != NULL)
		http_server_stats(s->http, out);
	ssdp_stats(s->ssdp, out);
	if (s->gena != NULL)
		gena_stats(s->gena, out);
}

const char *upnp_server_root_url(const struct upnp_server *s)
{
	return s != NULL ? s->root_url : "";
}

uint16_t upnp_server_http_port(const struct upnp_server *s)
{
	return s != NULL && s->http != NULL ? http_server_port(s->http) : 0;
}
