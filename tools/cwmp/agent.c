/* agent.c - the CWMP session (seed 003 §3.7), Inform and its events, the session retry
 * wait, periodic inform, value-change notification, the connection-request listener
 * (§3.2.2) and the agent's state file. One libevent loop; HTTP by libevent's evhttp. */
#include "agent.h"
#include "cwmp.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <signal.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#ifdef IWF_CWMP_TLS
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define ACS_MAX_BODY (256 * 1024)   /* what one ACS response may make us hold */
#define ACS_MAX_HEADERS (16 * 1024)
#define SESSION_TIMEOUT_S 30       /* seed 003 §3.7.1.4: not less than 30 s */
#define CR_MAX_PER_MINUTE 30       /* seed 003 §3.2.2: restrict connection requests */
#define MAX_ATTRS 1024

const char *const cwmp_event_codes[EV_COUNT] = {
	[EV_BOOTSTRAP] = "0 BOOTSTRAP", [EV_BOOT] = "1 BOOT", [EV_PERIODIC] = "2 PERIODIC",
	[EV_VALUE_CHANGE] = "4 VALUE CHANGE", [EV_CONNECTION_REQUEST] = "6 CONNECTION REQUEST",
	[EV_M_REBOOT] = "M Reboot",
};

/* The session: one enum, one transition function that arms the timers. */
enum sess { S_IDLE, S_WAIT_RETRY, S_INFORM, S_RUNNING };
static const char *const sess_names[] = { "idle", "wait-retry", "inform", "running" };

struct agent {
	struct cwmp_config *cfg;
	char **argv;
	struct event_base *base;
	struct evdns_base *dns;
	struct dm_backend *dm, *mgmt, *data; /* mgmt and data are borrowed from the mux dm */

	unsigned events;       /* bits of enum cwmp_event waiting to be reported */
	unsigned sent_events;  /* those in the Inform of the current session */
	char command_key[33];  /* of the Reboot being reported */
	bool bootstrapped;     /* the ACS URL of the state file has had its BOOTSTRAP */

	enum sess sess;
	struct evhttp_connection *conn;
	struct evhttp_uri *uri;
	char cookie[2048];
	char ns[40];           /* the cwmp namespace of the session */
	struct evbuffer *last_post;
	bool auth_tried;
	unsigned nc;
	char challenge[512];
	unsigned retry_count;
	bool again;            /* something happened during the session: another one after it */
	bool retry_now;        /* the ACS asked for an immediate retry (8005) */
	int after;             /* 1 reboot, 2 factory reset after the session */
	char after_key[33];
	unsigned acs_max_envelopes;

	struct attr attrs[MAX_ATTRS];
	size_t nattrs;

	struct event *retry_ev, *periodic_ev, *poll_ev, *sigterm_ev, *sigint_ev;
	struct evhttp *cr;
	struct auth_server cr_auth;
	char cr_path[40];
	uint64_t cr_window_start;
	unsigned cr_count;
#ifdef IWF_CWMP_TLS
	SSL_CTX *ssl_ctx;
#endif
};

static void start_session(struct agent *a);
static void post(struct agent *a, struct evbuffer *body);
static void session_end(struct agent *a, bool ok);
static void state_save(struct agent *a);

void cwmp_log(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (isatty(2) || getenv("IWF_CWMP_STDERR")) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof v, 0) != sizeof v)
		v = (uint32_t)now_ms() * 2654435761u;
	return v;
}

static void arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	event_add(ev, &tv);
}

/* ---- the state file ---------------------------------------------------------------------- */

static void state_load(struct agent *a)
{
	/* its directory, when missing (one level: /var/lib/iwf-cwmp) */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", a->cfg->state_file);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			cwmp_log(LOG_WARNING, "state directory %s: %s", dir, strerror(errno));
	}
	json_t *j = json_load_file(a->cfg->state_file, 0, NULL);
	const char *url = j ? json_string_value(json_object_get(j, "acs_url")) : NULL;
	a->bootstrapped = url && !strcmp(url, a->cfg->acs_url) && json_is_true(json_object_get(j, "bootstrapped"));
	a->events = 1u << EV_BOOT;
	if (!a->bootstrapped) {
		a->events |= 1u << EV_BOOTSTRAP;
	} else {
		/* seed 003 Table 35: BOOTSTRAP forgets what the previous ACS had set */
		const char *pk = json_string_value(json_object_get(j, "parameter_key"));
		if (pk)
			dm_mem_force(a->mgmt, "Device.ManagementServer.ParameterKey", pk);
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(j, "attributes"), key, v)
			if (json_is_integer(v))
				agent_attr_set(a, key, (int)json_integer_value(v));
		if (json_is_true(json_object_get(j, "reboot_pending"))) {
			a->events |= 1u << EV_M_REBOOT;
			const char *ck = json_string_value(json_object_get(j, "command_key"));
			snprintf(a->command_key, sizeof a->command_key, "%s", ck ? ck : "");
		}
	}
	const char *crp = j ? json_string_value(json_object_get(j, "cr_path")) : NULL;
	if (crp && strlen(crp) < sizeof a->cr_path)
		snprintf(a->cr_path, sizeof a->cr_path, "%s", crp);
	else
		snprintf(a->cr_path, sizeof a->cr_path, "/cr-%08x%08x", rnd32(), rnd32());
	json_decref(j);
	agent_attrs_resnapshot(a);
}

/* Write to a temporary file, fsync, rename: never a torn state file. */
static void state_save(struct agent *a)
{
	json_t *j = json_object(), *at = json_object();
	json_object_set_new(j, "acs_url", json_string(a->cfg->acs_url));
	json_object_set_new(j, "bootstrapped", json_boolean(a->bootstrapped));
	json_object_set_new(j, "cr_path", json_string(a->cr_path));
	struct dm_list pk = { 0 };
	const char *pkn = "Device.ManagementServer.ParameterKey";
	if (a->mgmt->ops->get_values(a->mgmt, &pkn, 1, &pk) == DM_OK && pk.n)
		json_object_set_new(j, "parameter_key", json_string(pk.v[0].value));
	dm_list_clear(&pk);
	for (size_t i = 0; i < a->nattrs; i++)
		if (a->attrs[i].notification)
			json_object_set_new(at, a->attrs[i].name, json_integer(a->attrs[i].notification));
	json_object_set_new(j, "attributes", at);
	if (a->events & (1u << EV_M_REBOOT) || a->after == 1) {
		json_object_set_new(j, "reboot_pending", json_true());
		json_object_set_new(j, "command_key", json_string(a->after == 1 ? a->after_key : a->command_key));
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", a->cfg->state_file);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || json_dumpfd(j, fd, JSON_INDENT(1)) || fsync(fd) || close(fd) || rename(tmp, a->cfg->state_file)) {
		cwmp_log(LOG_ERR, "state file %s: %s", a->cfg->state_file, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	json_decref(j);
}

/* ---- what rpc.c asks of the agent ---------------------------------------------------------- */

struct dm_backend *agent_dm(struct agent *a)
{
	return a->dm;
}

void agent_parameter_key(struct agent *a, const char *key)
{
	dm_mem_force(a->mgmt, "Device.ManagementServer.ParameterKey", key);
	state_save(a);
}

void agent_after_session(struct agent *a, int what, const char *command_key)
{
	a->after = what;
	snprintf(a->after_key, sizeof a->after_key, "%s", command_key);
}

struct attr *agent_attrs(struct agent *a, size_t *n)
{
	*n = a->nattrs;
	return a->attrs;
}

int agent_attr_set(struct agent *a, const char *name, int notification)
{
	for (size_t i = 0; i < a->nattrs; i++)
		if (!strcmp(a->attrs[i].name, name)) {
			a->attrs[i].notification = notification;
			return DM_OK;
		}
	if (!notification)
		return DM_OK;
	if (a->nattrs == MAX_ATTRS)
		return DM_RESOURCES_EXCEEDED;
	struct attr *t = &a->attrs[a->nattrs];
	if (!(t->name = strdup(name)))
		return DM_INTERNAL;
	t->notification = notification;
	t->last = NULL;
	t->changed = false;
	a->nattrs++;
	return DM_OK;
}

/* The current values of the notified parameters, in cur[i] for attrs[i] (NULL: not read).
 * One backend call for all of them; when that fails, one call each, and a parameter that no
 * longer exists (9005: its instance was deleted) loses its attribute. */
static void watched_values(struct agent *a, char **cur)
{
	const char **names = calloc(a->nattrs ? a->nattrs : 1, sizeof *names);
	size_t k = 0;
	struct dm_list v = { 0 };
	if (!names)
		return;
	for (size_t i = 0; i < a->nattrs; i++)
		if (a->attrs[i].notification)
			names[k++] = a->attrs[i].name;
	bool batch = k && a->dm->ops->get_values(a->dm, names, k, &v) == DM_OK && v.n == k;
	free(names);
	for (size_t i = 0, j = 0; i < a->nattrs; i++) {
		struct attr *t = &a->attrs[i];
		if (!t->notification)
			continue;
		if (batch && !strcmp(v.v[j].name, t->name)) {
			cur[i] = strdup(v.v[j++].value);
			continue;
		}
		batch = false;
		struct dm_list one = { 0 };
		const char *n = t->name;
		int rc = a->dm->ops->get_values(a->dm, &n, 1, &one);
		if (rc == DM_OK && one.n == 1)
			cur[i] = strdup(one.v[0].value);
		else if (rc == DM_INVALID_NAME)
			t->notification = 0;
		dm_list_clear(&one);
	}
	dm_list_clear(&v);
	/* drop the attributes of parameters that are gone */
	size_t w = 0;
	for (size_t i = 0; i < a->nattrs; i++) {
		if (!a->attrs[i].notification) {
			free(a->attrs[i].name);
			free(a->attrs[i].last);
			free(cur[i]);
			continue;
		}
		cur[w] = cur[i];
		a->attrs[w++] = a->attrs[i];
	}
	for (size_t i = w; i < a->nattrs; i++)
		cur[i] = NULL;
	a->nattrs = w;
}

/* Takes the current value of every notified parameter as the reference. */
void agent_attrs_resnapshot(struct agent *a)
{
	char *cur[MAX_ATTRS] = { 0 };
	watched_values(a, cur);
	for (size_t i = 0; i < a->nattrs; i++) {
		free(a->attrs[i].last);
		a->attrs[i].last = cur[i];
	}
}

/* ---- value change (seed 003 §3.2.1, Table 33) --------------------------------------------- */

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	if (a->data && a->cfg->static_hook && dm_mem_apply_file(a->data, a->cfg->static_hook) > 0)
		cwmp_log(LOG_INFO, "static backend: external change applied");
	char *cur[MAX_ATTRS] = { 0 };
	bool active = false;
	watched_values(a, cur);
	for (size_t i = 0; i < a->nattrs; i++) {
		struct attr *t = &a->attrs[i];
		if (cur[i] && (!t->last || strcmp(t->last, cur[i]))) {
			free(t->last);
			t->last = cur[i];
			cur[i] = NULL;
			t->changed = true;
			a->events |= 1u << EV_VALUE_CHANGE;
			if (t->notification == 2)
				active = true;
		}
		free(cur[i]);
	}
	if (active) {
		cwmp_log(LOG_INFO, "active notification: value change");
		start_session(a);
	}
	arm(a->poll_ev, a->cfg->notify_poll_ms);
}

/* ---- the session ------------------------------------------------------------------------- */

static void sess_to(struct agent *a, enum sess s)
{
	cwmp_log(LOG_DEBUG, "session %s -> %s", sess_names[a->sess], sess_names[s]);
	a->sess = s;
	if (s == S_WAIT_RETRY) {
		/* TR-069 Amendment 1+ §3.2.1.1: a random wait within a window that grows with the
		 * retry count, m * (k/1000)^(n-1) .. m * (k/1000)^n seconds, n capped at 10 (seed 003
		 * A.5.3 only asks for "exponential back-off"). */
		unsigned n = a->retry_count < 10 ? a->retry_count : 10;
		double lo = a->cfg->retry_min_wait, k = a->cfg->retry_multiplier / 1000.0;
		for (unsigned i = 1; i < n; i++)
			lo *= k;
		double hi = lo * k;
		uint64_t ms = (uint64_t)(lo * 1000 + (hi - lo) * 1000 * (rnd32() / 4294967296.0));
		if (a->retry_now)
			ms = 0;
		a->retry_now = false;
		cwmp_log(LOG_INFO, "session failed (retry %u): next attempt in %llu ms", a->retry_count,
		         (unsigned long long)ms);
		arm(a->retry_ev, ms);
	}
}

static void periodic_arm(struct agent *a)
{
	struct dm_list v = { 0 };
	const char *names[] = { "Device.ManagementServer.PeriodicInformEnable",
		"Device.ManagementServer.PeriodicInformInterval" };
	event_del(a->periodic_ev);
	if (a->mgmt->ops->get_values(a->mgmt, names, 2, &v) == DM_OK && v.n == 2 && !strcmp(v.v[0].value, "1")) {
		unsigned long s = strtoul(v.v[1].value, NULL, 10);
		if (s > 0)
			arm(a->periodic_ev, (uint64_t)s * 1000);
	}
	dm_list_clear(&v);
}

static void on_periodic(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	a->events |= 1u << EV_PERIODIC;
	start_session(a);
	periodic_arm(a);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	a->sess = S_IDLE;
	start_session(a);
}

static void envelope_open(struct agent *a, struct evbuffer *b, const char *id)
{
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                       "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	                       "xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" "
	                       "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
	                       "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"%s\">"
	                       "<soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">", a->ns);
	xml_esc(b, id);
	evbuffer_add_printf(b, "</cwmp:ID></soap-env:Header><soap-env:Body>");
}

static void envelope_close(struct evbuffer *b)
{
	evbuffer_add_printf(b, "</soap-env:Body></soap-env:Envelope>\n");
}

static void add_value(struct evbuffer *b, const struct dm_item *it)
{
	evbuffer_add_printf(b, "<ParameterValueStruct><Name>");
	xml_esc(b, it->name);
	evbuffer_add_printf(b, "</Name><Value xsi:type=\"%s\">", dm_type_name(it->type));
	xml_esc(b, it->value ? it->value : "");
	evbuffer_add_printf(b, "</Value></ParameterValueStruct>");
}

/* seed 003 A.3.3.1 Inform, with the TR-181 names of Table 33's parameters. */
static struct evbuffer *build_inform(struct agent *a)
{
	static const char *const id_names[] = { "Device.DeviceInfo.Manufacturer", "Device.DeviceInfo.OUI",
		"Device.DeviceInfo.ProductClass", "Device.DeviceInfo.SerialNumber" };
	static const char *const id_tags[] = { "Manufacturer", "OUI", "ProductClass", "SerialNumber" };
	static const char *const inform_params[] = { "Device.DeviceInfo.HardwareVersion",
		"Device.DeviceInfo.SoftwareVersion", "Device.DeviceInfo.ProvisioningCode",
		"Device.ManagementServer.ConnectionRequestURL", "Device.ManagementServer.ParameterKey" };
	struct evbuffer *b = evbuffer_new();
	char id[16];
	snprintf(id, sizeof id, "%u", rnd32());
	envelope_open(a, b, id);
	evbuffer_add_printf(b, "<cwmp:Inform><DeviceId>");
	for (size_t i = 0; i < 4; i++) {
		struct dm_list v = { 0 };
		a->dm->ops->get_values(a->dm, &id_names[i], 1, &v);
		evbuffer_add_printf(b, "<%s>", id_tags[i]);
		xml_esc(b, v.n ? v.v[0].value : "");
		evbuffer_add_printf(b, "</%s>", id_tags[i]);
		dm_list_clear(&v);
	}
	unsigned nev = 0;
	for (int e = 0; e < EV_COUNT; e++)
		nev += (a->events >> e) & 1;
	evbuffer_add_printf(b, "</DeviceId><Event soap-enc:arrayType=\"cwmp:EventStruct[%u]\">", nev);
	for (int e = 0; e < EV_COUNT; e++) {
		if (!(a->events & (1u << e)))
			continue;
		evbuffer_add_printf(b, "<EventStruct><EventCode>%s</EventCode><CommandKey>", cwmp_event_codes[e]);
		if (e == EV_M_REBOOT)
			xml_esc(b, a->command_key);
		evbuffer_add_printf(b, "</CommandKey></EventStruct>");
	}
	a->sent_events = a->events;
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	evbuffer_add_printf(b, "</Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>%s</CurrentTime>"
	                       "<RetryCount>%u</RetryCount>", now, a->retry_count);
	struct dm_list params = { 0 };
	for (size_t i = 0; i < sizeof inform_params / sizeof inform_params[0]; i++)
		a->dm->ops->get_values(a->dm, &inform_params[i], 1, &params);
	for (size_t i = 0; i < a->nattrs; i++)
		if (a->attrs[i].changed && a->attrs[i].notification) {
			bool dup = false;
			for (size_t k = 0; k < params.n; k++)
				dup |= !strcmp(params.v[k].name, a->attrs[i].name);
			if (!dup)
				a->dm->ops->get_values(a->dm, (const char *const *)&a->attrs[i].name, 1, &params);
		}
	evbuffer_add_printf(b, "<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[%zu]\">", params.n);
	for (size_t i = 0; i < params.n; i++)
		add_value(b, &params.v[i]);
	dm_list_clear(&params);
	evbuffer_add_printf(b, "</ParameterList></cwmp:Inform>");
	envelope_close(b);
	return b;
}

static void set_cr_url(struct agent *a)
{
	if (!a->cfg->cr_port)
		return;
	char host[64] = "";
	const char *bind = a->cfg->cr_bind;
	if (strcmp(bind, "0.0.0.0") && strcmp(bind, "::")) {
		snprintf(host, sizeof host, "%s", bind);
	} else if (a->conn) {
		/* the address we reach the ACS from: the one it can reach us on */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(a->conn);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (bev && bufferevent_getfd(bev) >= 0 &&
		    getsockname(bufferevent_getfd(bev), (struct sockaddr *)&ss, &sl) == 0)
			evutil_inet_ntop(ss.ss_family,
			                 ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
			                                         : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
			                 host, sizeof host);
	}
	if (!*host)
		return;
	char url[160];
	snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%u%s" : "http://%s:%u%s", host, a->cfg->cr_port,
	         a->cr_path);
	dm_mem_force(a->mgmt, "Device.ManagementServer.ConnectionRequestURL", url);
}

#ifdef IWF_CWMP_TLS
static struct bufferevent *tls_bev(struct agent *a, const char *host)
{
	if (!a->ssl_ctx) {
		a->ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (!a->ssl_ctx)
			return NULL;
		SSL_CTX_set_min_proto_version(a->ssl_ctx, TLS1_2_VERSION);
		SSL_CTX_set_verify(a->ssl_ctx, SSL_VERIFY_PEER, NULL); /* seed 003 §3.3: authenticate the ACS */
		if (a->cfg->ca_file ? !SSL_CTX_load_verify_locations(a->ssl_ctx, a->cfg->ca_file, NULL)
		                    : !SSL_CTX_set_default_verify_paths(a->ssl_ctx))
			cwmp_log(LOG_WARNING, "TLS: cannot load CA certificates");
	}
	SSL *ssl = SSL_new(a->ssl_ctx);
	if (!ssl)
		return NULL;
	SSL_set_tlsext_host_name(ssl, host);
	SSL_set1_host(ssl, host);
	return bufferevent_openssl_socket_new(a->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}
#endif

static bool connect_acs(struct agent *a)
{
	const char *scheme = evhttp_uri_get_scheme(a->uri), *host = evhttp_uri_get_host(a->uri);
	bool tls = scheme && !strcmp(scheme, "https");
	int port = evhttp_uri_get_port(a->uri);
	if (port < 0)
		port = tls ? 443 : 80;
	struct bufferevent *bev = NULL;
	if (tls) {
#ifdef IWF_CWMP_TLS
		if (!(bev = tls_bev(a, host)))
			return false;
#else
		cwmp_log(LOG_ERR, "https ACS URL but iwf-cwmp was built without TLS");
		return false;
#endif
	}
	a->conn = evhttp_connection_base_bufferevent_new(a->base, a->dns, bev, host, (unsigned short)port);
	if (!a->conn)
		return false;
	evhttp_connection_set_timeout(a->conn, SESSION_TIMEOUT_S);
	evhttp_connection_set_max_body_size(a->conn, ACS_MAX_BODY);
	evhttp_connection_set_max_headers_size(a->conn, ACS_MAX_HEADERS);
	evhttp_connection_set_retries(a->conn, 0);
	return true;
}

static void start_session(struct agent *a)
{
	if (a->sess == S_INFORM || a->sess == S_RUNNING) {
		a->again = true; /* seed 003 §3.2.1: after the current session */
		return;
	}
	if (a->sess == S_WAIT_RETRY)
		return; /* the events wait with the retry */
	if (!a->events)
		return;
	if (!connect_acs(a)) {
		a->retry_count++;
		sess_to(a, S_WAIT_RETRY);
		return;
	}
	a->cookie[0] = '\0';
	a->challenge[0] = '\0';
	a->nc = 0;
	snprintf(a->ns, sizeof a->ns, "urn:dslforum-org:cwmp-1-%u", a->cfg->cwmp_minor);
	sess_to(a, S_INFORM);
	set_cr_url(a);
	post(a, build_inform(a));
}

static void on_response(struct evhttp_request *req, void *arg);

/* Sends body (taken; NULL = the empty POST), keeping a copy for an authentication retry. */
static void post(struct agent *a, struct evbuffer *body)
{
	if (body != a->last_post) {
		if (a->last_post)
			evbuffer_free(a->last_post);
		a->last_post = body;
		a->auth_tried = false;
	}
	struct evhttp_request *req = evhttp_request_new(on_response, a);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host[300];
	int port = evhttp_uri_get_port(a->uri);
	const char *hn = evhttp_uri_get_host(a->uri);
	snprintf(host, sizeof host, port >= 0 ? (strchr(hn, ':') ? "[%s]:%d" : "%s:%d") : "%s", hn, port);
	evhttp_add_header(h, "Host", host);
	if (body && evbuffer_get_length(body)) {
		evhttp_add_header(h, "Content-Type", "text/xml; charset=\"utf-8\"");
		evhttp_add_header(h, "SOAPAction", "");
		evbuffer_add_buffer_reference(evhttp_request_get_output_buffer(req), body);
	}
	if (*a->cookie)
		evhttp_add_header(h, "Cookie", a->cookie);
	const char *path = evhttp_uri_get_path(a->uri);
	const char *query = evhttp_uri_get_query(a->uri);
	char target[2048];
	snprintf(target, sizeof target, "%s%s%s", path && *path ? path : "/", query ? "?" : "", query ? query : "");
	if (*a->challenge && a->cfg->acs_user) {
		char auth[2048], cnonce[20];
		snprintf(cnonce, sizeof cnonce, "%08x%08x", rnd32(), rnd32());
		if (auth_client_answer(a->challenge, a->cfg->acs_user, a->cfg->acs_pass, "POST", target, ++a->nc, cnonce,
		                       auth, sizeof auth))
			evhttp_add_header(h, "Authorization", auth);
	}
	if (evhttp_make_request(a->conn, req, EVHTTP_REQ_POST, target) != 0)
		session_end(a, false);
}

/* Keeps the ACS's session cookies (seed 003 §3.4.2: the CPE returns them). */
static void take_cookies(struct agent *a, struct evkeyvalq *h)
{
	for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Set-Cookie"))
			continue;
		size_t n = strcspn(kv->value, ";");
		char name[256];
		size_t eq = strcspn(kv->value, "=");
		if (eq >= n || eq >= sizeof name)
			continue;
		memcpy(name, kv->value, eq);
		name[eq] = '\0';
		/* replace a cookie of the same name, else append */
		char merged[2048] = "";
		size_t off = 0;
		char *save = NULL, *copy = strdup(a->cookie);
		for (char *c = copy ? strtok_r(copy, ";", &save) : NULL; c; c = strtok_r(NULL, ";", &save)) {
			while (*c == ' ')
				c++;
			if (!strncmp(c, name, eq) && c[eq] == '=')
				continue;
			off += (size_t)snprintf(merged + off, sizeof merged - off, "%s%s", off ? "; " : "", c);
			if (off >= sizeof merged)
				break;
		}
		free(copy);
		if (off + n + 3 < sizeof merged) {
			snprintf(merged + off, sizeof merged - off, "%s%.*s", off ? "; " : "", (int)n, kv->value);
			snprintf(a->cookie, sizeof a->cookie, "%s", merged);
		}
	}
}

static void fault_body(struct evbuffer *b, const struct rpc_reply *r)
{
	bool client = r->fault == DM_INVALID_ARGUMENTS || (r->fault >= DM_INVALID_NAME && r->fault <= 9009);
	evbuffer_add_printf(b, "<soap-env:Fault><faultcode>%s</faultcode><faultstring>CWMP fault</faultstring>"
	                       "<detail><cwmp:Fault><FaultCode>%d</FaultCode><FaultString>",
	                    client ? "Client" : "Server", r->fault);
	xml_esc(b, r->fault_text ? r->fault_text : dm_fault_string(r->fault));
	evbuffer_add_printf(b, "</FaultString>");
	for (size_t i = 0; i < r->param_faults.n; i++) {
		evbuffer_add_printf(b, "<SetParameterValuesFault><ParameterName>");
		xml_esc(b, r->param_faults.v[i].name);
		evbuffer_add_printf(b, "</ParameterName><FaultCode>%d</FaultCode><FaultString>%s</FaultString>"
		                       "</SetParameterValuesFault>",
		                    r->param_faults.v[i].fault, dm_fault_string(r->param_faults.v[i].fault));
	}
	evbuffer_add_printf(b, "</cwmp:Fault></detail></soap-env:Fault>");
}

/* One ACS request in, one response (or fault) out. */
static struct evbuffer *answer(struct agent *a, const struct xnode *env)
{
	const struct xnode *hdr = xnode_child(env, "Header"), *body = xnode_child(env, "Body");
	const struct xnode *idn = xnode_child(hdr, "ID");
	const struct xnode *req = body ? body->child : NULL;
	struct rpc_reply r = { evbuffer_new(), 0, NULL, { 0 } };
	if (!req) {
		r.fault = DM_INVALID_ARGUMENTS;
	} else {
		if (req->ns && !strncmp(req->ns, "urn:dslforum-org:cwmp-1-", 24) && strlen(req->ns) < sizeof a->ns)
			snprintf(a->ns, sizeof a->ns, "%s", req->ns);
		size_t i;
		for (i = 0; i < rpc_method_count; i++)
			if (!strcmp(rpc_methods[i].name, req->name))
				break;
		if (i == rpc_method_count)
			r.fault = DM_METHOD_NOT_SUPPORTED;
		else
			rpc_methods[i].handle(a, req, &r);
		cwmp_log(LOG_INFO, "ACS %s -> %d", req->name, r.fault);
	}
	struct evbuffer *out = evbuffer_new();
	envelope_open(a, out, idn ? idn->text : "");
	if (r.fault)
		fault_body(out, &r);
	else
		evbuffer_add_buffer(out, r.body);
	envelope_close(out);
	evbuffer_free(r.body);
	dm_list_clear(&r.param_faults);
	return out;
}

/* A Fault 8005 "Retry request" to our Inform: retry at once (seed 003 A.5.3). */
static bool retry_request(struct evbuffer *in, size_t len)
{
	struct xnode *env = len ? xml_parse((const char *)evbuffer_pullup(in, -1), len) : NULL;
	const struct xnode *f = xnode_child(xnode_child(env, "Body"), "Fault");
	const struct xnode *code = xnode_child(xnode_child(xnode_child(f, "detail"), "Fault"), "FaultCode");
	bool yes = code && !strcmp(code->text, "8005");
	xnode_free(env);
	return yes;
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct agent *a = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	if (!req || code == 0) {
		cwmp_log(LOG_WARNING, "ACS: no response");
		session_end(a, false);
		return;
	}
	take_cookies(a, evhttp_request_get_input_headers(req));
	if (code == 401) {
		const char *ch = evhttp_find_header(evhttp_request_get_input_headers(req), "WWW-Authenticate");
		if (a->auth_tried || !ch || !a->cfg->acs_user || strlen(ch) >= sizeof a->challenge) {
			cwmp_log(LOG_WARNING, "ACS: authentication failed");
			session_end(a, false);
			return;
		}
		snprintf(a->challenge, sizeof a->challenge, "%s", ch);
		a->nc = 0;
		a->auth_tried = true;
		post(a, a->last_post);
		return;
	}
	a->auth_tried = false;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (code == 204 || (code == 200 && len == 0)) {
		if (a->sess == S_INFORM) {
			cwmp_log(LOG_WARNING, "ACS: empty answer to the Inform");
			session_end(a, false);
			return;
		}
		session_end(a, true); /* seed 003 §3.7.1.4 1a: no more ACS requests */
		return;
	}
	if (code != 200) {
		cwmp_log(LOG_WARNING, "ACS: HTTP %d", code);
		if (a->sess == S_INFORM && retry_request(in, len))
			a->retry_now = true;
		session_end(a, false);
		return;
	}
	struct xnode *env = xml_parse((const char *)evbuffer_pullup(in, -1), len);
	const struct xnode *body = xnode_child(env, "Body");
	const struct xnode *msg = body ? body->child : NULL;
	if (!env || strcmp(env->name, "Envelope") || !msg) {
		cwmp_log(LOG_WARNING, "ACS: not a SOAP envelope");
		xnode_free(env);
		session_end(a, false);
		return;
	}
	if (a->sess == S_INFORM) {
		if (strcmp(msg->name, "InformResponse")) {
			cwmp_log(LOG_WARNING, "ACS: %s instead of InformResponse", msg->name);
			xnode_free(env);
			session_end(a, false);
			return;
		}
		if (msg->ns && strlen(msg->ns) < sizeof a->ns)
			snprintf(a->ns, sizeof a->ns, "%s", msg->ns); /* the version the ACS chose */
		a->retry_count = 0;
		if (a->sent_events & (1u << EV_BOOTSTRAP))
			a->bootstrapped = true;
		a->events &= ~a->sent_events;
		for (size_t i = 0; i < a->nattrs; i++)
			a->attrs[i].changed = false;
		state_save(a);
		cwmp_log(LOG_INFO, "Inform accepted (%s)", a->ns);
		sess_to(a, S_RUNNING);
		xnode_free(env);
		post(a, NULL); /* no CPE requests of ours: the empty POST */
		return;
	}
	/* HoldRequests does not matter to us: we make no requests after the Inform. */
	struct evbuffer *out = answer(a, env);
	xnode_free(env);
	post(a, out);
}

static void run_after(struct agent *a);

static void free_conn(evutil_socket_t fd, short what, void *arg)
{
	evhttp_connection_free(arg);
}

static void session_end(struct agent *a, bool ok)
{
	if (a->conn) {
		/* not from inside its own callback: on the next loop turn */
		if (event_base_once(a->base, -1, EV_TIMEOUT, free_conn, a->conn, &(struct timeval){ 0, 0 }) != 0)
			evhttp_connection_free(a->conn);
		a->conn = NULL;
	}
	if (a->last_post) {
		evbuffer_free(a->last_post);
		a->last_post = NULL;
	}
	if (!ok) {
		/* RetryCount counts failed Informs (A.3.3.1); a session that breaks off after its
		 * InformResponse delivered its events and is started again only for new ones. */
		bool informed = a->sess == S_RUNNING;
		if (!informed)
			a->retry_count++;
		a->again = false;
		if (informed && !a->events) {
			cwmp_log(LOG_WARNING, "session broke off after the Inform");
			sess_to(a, S_IDLE);
			periodic_arm(a);
			return;
		}
		sess_to(a, S_WAIT_RETRY);
		return;
	}
	cwmp_log(LOG_INFO, "session ended");
	sess_to(a, S_IDLE);
	if (a->after) {
		run_after(a);
		return;
	}
	/* a new ACS URL set by the ACS: BOOTSTRAP to it (seed 003 Table 35) */
	struct dm_list v = { 0 };
	const char *un = "Device.ManagementServer.URL";
	if (a->mgmt->ops->get_values(a->mgmt, &un, 1, &v) == DM_OK && v.n && *v.v[0].value &&
	    strcmp(v.v[0].value, a->cfg->acs_url)) {
		struct evhttp_uri *u = evhttp_uri_parse(v.v[0].value);
		if (u && evhttp_uri_get_host(u)) {
			free(a->cfg->acs_url);
			a->cfg->acs_url = strdup(v.v[0].value);
			evhttp_uri_free(a->uri);
			a->uri = u;
			a->bootstrapped = false;
			a->events |= 1u << EV_BOOTSTRAP;
			state_save(a);
			a->again = true;
		} else if (u) {
			evhttp_uri_free(u);
		}
	}
	dm_list_clear(&v);
	periodic_arm(a);
	if (a->again || a->events & ~(1u << EV_VALUE_CHANGE)) {
		a->again = false;
		start_session(a);
	}
}

/* Reboot and FactoryReset (after the session, seed 003 §3.7.1.4): the backend does the
 * device's part; the agent then starts again as a fresh process (a real device would be
 * rebooting under it). */
static void run_after(struct agent *a)
{
	int what = a->after;
	a->events |= 0;
	if (what == 1) {
		state_save(a); /* reboot_pending + command key */
		if (a->dm->ops->reboot)
			a->dm->ops->reboot(a->dm);
		cwmp_log(LOG_NOTICE, "Reboot: restarting");
	} else {
		if (a->dm->ops->factory_reset)
			a->dm->ops->factory_reset(a->dm);
		unlink(a->cfg->state_file);
		cwmp_log(LOG_NOTICE, "FactoryReset: restarting with no state");
	}
	event_base_loopbreak(a->base);
	a->after = -what; /* main() re-executes */
}

/* ---- the connection-request listener (seed 003 §3.2.2) --------------------------------- */

static void on_cr(struct evhttp_request *req, void *arg)
{
	struct agent *a = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (!path || strcmp(path, a->cr_path) || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	uint64_t now = now_ms();
	if (now - a->cr_window_start > 60000) {
		a->cr_window_start = now;
		a->cr_count = 0;
	}
	if (++a->cr_count > CR_MAX_PER_MINUTE) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	/* the credentials of now: the ACS may have changed them */
	struct dm_list v = { 0 };
	const char *names[] = { "Device.ManagementServer.ConnectionRequestUsername",
		"Device.ManagementServer.ConnectionRequestPassword" };
	if (a->mgmt->ops->get_values(a->mgmt, names, 2, &v) == DM_OK && v.n == 2) {
		snprintf(a->cr_auth.user, sizeof a->cr_auth.user, "%s", v.v[0].value);
		snprintf(a->cr_auth.pass, sizeof a->cr_auth.pass, "%s", v.v[1].value);
	}
	dm_list_clear(&v);
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h || !*a->cr_auth.user || !auth_server_check(&a->cr_auth, h, "GET", now)) {
		uint8_t r[16];
		for (int i = 0; i < 4; i++) {
			uint32_t x = rnd32();
			memcpy(r + 4 * i, &x, 4);
		}
		char ch[256];
		auth_server_challenge(&a->cr_auth, now, r, ch, sizeof ch);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", ch);
		evhttp_send_reply(req, 401, "Unauthorized", NULL);
		if (h)
			cwmp_log(LOG_WARNING, "connection request: bad credentials");
		return;
	}
	evhttp_send_reply(req, 200, "OK", NULL);
	cwmp_log(LOG_INFO, "connection request accepted");
	a->events |= 1u << EV_CONNECTION_REQUEST;
	start_session(a);
}

static bool cr_start(struct agent *a)
{
	a->cr = evhttp_new(a->base);
	if (!a->cr)
		return false;
	evhttp_set_max_headers_size(a->cr, 4096);
	evhttp_set_max_body_size(a->cr, 1024);
	evhttp_set_timeout(a->cr, 10);
	evhttp_set_allowed_methods(a->cr, EVHTTP_REQ_GET);
	evhttp_set_gencb(a->cr, on_cr, a);
	snprintf(a->cr_auth.realm, sizeof a->cr_auth.realm, "iwf-cwmp");
	if (!a->cfg->cr_interface) {
		if (!strcmp(a->cfg->cr_bind, "0.0.0.0") || !strcmp(a->cfg->cr_bind, "::"))
			cwmp_log(LOG_WARNING, "connection request: listening on every address, LAN included; give "
			                      "cr-interface (the WAN interface) or filter port %u (docs/tr069.md)",
			         a->cfg->cr_port);
		if (!evhttp_bind_socket_with_handle(a->cr, a->cfg->cr_bind, (ev_uint16_t)a->cfg->cr_port)) {
			cwmp_log(LOG_ERR, "connection request: cannot listen on %s:%u", a->cfg->cr_bind, a->cfg->cr_port);
			return false;
		}
		return true;
	}
	/* Bound to the WAN device: the kernel delivers only connections that arrived over it, so
	 * a LAN host cannot reach the port even through the router's WAN address. */
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char port[8];
	snprintf(port, sizeof port, "%u", a->cfg->cr_port);
	if (getaddrinfo(a->cfg->cr_bind, port, &hints, &ai) != 0) {
		cwmp_log(LOG_ERR, "connection request: cr-bind must be a numeric address");
		return false;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
	          setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, a->cfg->cr_interface,
	                     (socklen_t)strlen(a->cfg->cr_interface)) == 0 &&
	          bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0 &&
	          evhttp_accept_socket_with_handle(a->cr, fd) != NULL;
	freeaddrinfo(ai);
	if (!ok) {
		cwmp_log(LOG_ERR, "connection request: cannot listen on %s:%u over %s: %s", a->cfg->cr_bind,
		         a->cfg->cr_port, a->cfg->cr_interface, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	return true;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	cwmp_log(LOG_NOTICE, "signal %d: stopping", (int)sig);
	event_base_loopbreak(a->base);
}

/* ---- entry ---------------------------------------------------------------------------- */

static const struct dm_mem_row mgmt_rows[] = {
	{ "Device.ManagementServer.", DM_OBJECT, NULL, false },
	{ "Device.ManagementServer.URL", DM_STRING, "", true },
	{ "Device.ManagementServer.Username", DM_STRING, "", true },
	{ "Device.ManagementServer.Password", DM_STRING, "", true },
	{ "Device.ManagementServer.PeriodicInformEnable", DM_BOOL, "0", true },
	{ "Device.ManagementServer.PeriodicInformInterval", DM_UINT, "0", true },
	{ "Device.ManagementServer.ParameterKey", DM_STRING, "", false },
	{ "Device.ManagementServer.ConnectionRequestURL", DM_STRING, "", false },
	{ "Device.ManagementServer.ConnectionRequestUsername", DM_STRING, "", true },
	{ "Device.ManagementServer.ConnectionRequestPassword", DM_STRING, "", true },
};

int cwmp_agent_run(struct cwmp_config *cfg, char **argv)
{
	struct agent *a = calloc(1, sizeof *a);
	int rc = 1;
	if (!a)
		return 1;
	a->cfg = cfg;
	a->argv = argv;
	a->uri = evhttp_uri_parse(cfg->acs_url);
	if (!a->uri || !evhttp_uri_get_host(a->uri)) {
		cwmp_log(LOG_ERR, "bad ACS URL %s", cfg->acs_url);
		free(a);
		return 1;
	}
	a->mgmt = dm_mem_new(mgmt_rows, sizeof mgmt_rows / sizeof mgmt_rows[0]);
	a->data = cfg->static_backend ? dm_static_new() : NULL;
	struct dm_backend *data = a->data ? a->data : dm_sock_new(cfg->control_socket, 2000);
	a->dm = dm_mux_new("Device.ManagementServer.", a->mgmt, data);
	if (!a->dm)
		goto out;
	dm_mem_force(a->mgmt, "Device.ManagementServer.URL", cfg->acs_url);
	dm_mem_force(a->mgmt, "Device.ManagementServer.Username", cfg->acs_user ? cfg->acs_user : "");
	dm_mem_force(a->mgmt, "Device.ManagementServer.Password", cfg->acs_pass ? cfg->acs_pass : "");
	dm_mem_force(a->mgmt, "Device.ManagementServer.ConnectionRequestUsername", cfg->cr_user ? cfg->cr_user : "");
	dm_mem_force(a->mgmt, "Device.ManagementServer.ConnectionRequestPassword", cfg->cr_pass ? cfg->cr_pass : "");
	char buf[16];
	snprintf(buf, sizeof buf, "%u", cfg->periodic_inform);
	dm_mem_force(a->mgmt, "Device.ManagementServer.PeriodicInformEnable", cfg->periodic_inform ? "1" : "0");
	dm_mem_force(a->mgmt, "Device.ManagementServer.PeriodicInformInterval", buf);

	a->base = event_base_new();
	a->dns = a->base ? evdns_base_new(a->base, EVDNS_BASE_INITIALIZE_NAMESERVERS) : NULL;
	if (!a->dns)
		goto out;
	a->retry_ev = evtimer_new(a->base, on_retry, a);
	a->periodic_ev = evtimer_new(a->base, on_periodic, a);
	a->poll_ev = evtimer_new(a->base, on_poll, a);
	a->sigterm_ev = evsignal_new(a->base, SIGTERM, on_signal, a);
	a->sigint_ev = evsignal_new(a->base, SIGINT, on_signal, a);
	if (!a->retry_ev || !a->periodic_ev || !a->poll_ev || !a->sigterm_ev || !a->sigint_ev)
		goto out;
	event_add(a->sigterm_ev, NULL);
	event_add(a->sigint_ev, NULL);
	state_load(a);
	if (cfg->cr_port && !cr_start(a))
		goto out;
	periodic_arm(a);
	arm(a->poll_ev, cfg->notify_poll_ms);
	if (cfg->cr_port)
		cwmp_log(LOG_NOTICE, "iwf-cwmp: ACS %s, connection requests on %s:%u%s", cfg->acs_url, cfg->cr_bind,
		         cfg->cr_port, a->cr_path);
	else
		cwmp_log(LOG_NOTICE, "iwf-cwmp: ACS %s, no connection requests", cfg->acs_url);
	start_session(a);
	event_base_dispatch(a->base);
	rc = a->after < 0 ? 100 + (-a->after) : 0; /* main(): re-execute */
out:
	if (a->conn)
		evhttp_connection_free(a->conn);
	if (a->cr)
		evhttp_free(a->cr);
	if (a->retry_ev)
		event_free(a->retry_ev);
	if (a->periodic_ev)
		event_free(a->periodic_ev);
	if (a->poll_ev)
		event_free(a->poll_ev);
	if (a->sigterm_ev)
		event_free(a->sigterm_ev);
	if (a->sigint_ev)
		event_free(a->sigint_ev);
	if (a->last_post)
		evbuffer_free(a->last_post);
	if (a->dns)
		evdns_base_free(a->dns, 0);
	if (a->base)
		event_base_free(a->base);
	for (size_t i = 0; i < a->nattrs; i++) {
		free(a->attrs[i].name);
		free(a->attrs[i].last);
	}
	evhttp_uri_free(a->uri);
	dm_free(a->dm);
#ifdef IWF_CWMP_TLS
	if (a->ssl_ctx)
		SSL_CTX_free(a->ssl_ctx);
#endif
	free(a);
	return rc;
}
