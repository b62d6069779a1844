/*
 * gena.c - GENA eventing (UPnP Device Architecture 1.1 §4): SUBSCRIBE, renewal,
 * UNSUBSCRIBE, and NOTIFY of evented state variables.
 *
 * Security: the CALLBACK URL must name the subscribing host itself by IPv4 literal, or by
 * bracketed IPv6 literal when it subscribed over IPv6 (a link-local one then gets the
 * subscriber's scope; a zone id in the URL is not accepted) (CallStranger, CVE-2020-12695);
 * otherwise 412. Subscriptions are capped (503 when
 * full), expire after their TIMEOUT, and are dropped after GENA_MAX_FAILURES consecutive
 * failed deliveries. At most one NOTIFY per subscriber is in flight; changes that happen
 * meanwhile are collected and sent next, so SEQ order is also delivery order. A
 * subscription removed while its NOTIFY is in flight waits on the `gone` list for the
 * NOTIFY to end; gena_free() cancels every NOTIFY still in flight and frees it all.
 */
#include <syslog.h>
#include "upnp_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#define GENA_MAX_SERVICES 8       /* enum upnp_service values we keep variables for */
#define GENA_MAX_VARS 16          /* evented variables per service */
#define GENA_MAX_FAILURES 3       /* consecutive failed NOTIFYs before dropping */
#define GENA_NOTIFY_TIMEOUT_MS 5000
#define GENA_INITIAL_DELAY_MS 20  /* let the SUBSCRIBE response leave first (UDA 1.1 §4.2.1) */
#define GENA_URL_MAX 256
#define GENA_MIN_TIMEOUT_S 60     /* shorter requests are raised to this */
#define DEF_MAX_SUBS 32
#define DEF_MAX_TIMEOUT_S 1800

struct gena_var {
	char *name, *value;
};

struct gena_sub {
	struct gena_sub *next;
	struct gena *g;
	char sid[48];                 /* "uuid:xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
	int service;
	union {                       /* callback address (== subscriber) */
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} cb;
	char cb_host_path[GENA_URL_MAX]; /* "HOST:PORT/path" */
	uint32_t seq;                 /* SEQ of the next NOTIFY */
	uint64_t expires_ms;
	unsigned failures;
	bool in_flight;               /* a NOTIFY is being delivered (client) */
	struct http_client *client;   /* that NOTIFY, while in_flight */
	bool gone;                    /* removed while in flight: on g->gone, freed when it
					 completes */
	uint32_t dirty;               /* bit i: variable i changed since the last NOTIFY */
	struct event *ev_initial;
};

struct gena {
	struct event_base *base;
	struct gena_config cfg;
	struct gena_var vars[GENA_MAX_SERVICES][GENA_MAX_VARS];
	size_t n_vars[GENA_MAX_SERVICES];
	struct gena_sub *subs;
	size_t n_subs;
	struct gena_sub *gone;        /* removed, NOTIFY still in flight */
	size_t n_gone;
	struct event *ev_expire;
	struct upnp_stats st;         /* the gena_* counters */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------ subscriptions */

static void sub_unlink(struct gena *g, struct gena_sub *sub)
{
	struct gena_sub **pp;

	for (pp = &g->subs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			g->n_subs--;
			break;
		}
	sub->next = NULL;
}

/* Remove a subscription; with a NOTIFY in flight the memory waits for its completion. */
static void sub_drop(struct gena *g, struct gena_sub *sub)
{
	sub_unlink(g, sub);
	if (sub->ev_initial != NULL) {
		event_free(sub->ev_initial);
		sub->ev_initial = NULL;
	}
	if (sub->in_flight) {
		sub->gone = true;
		sub->next = g->gone;
		g->gone = sub;
		g->n_gone++;
		return;
	}
	free(sub);
}

static void gone_unlink(struct gena *g, struct gena_sub *sub)
{
	for (struct gena_sub **pp = &g->gone; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			g->n_gone--;
			break;
		}
	sub->next = NULL;
}

static struct gena_sub *sub_find(struct gena *g, const char *sid)
{
	for (struct gena_sub *s = g->subs; s != NULL; s = s->next)
		if (strcasecmp(s->sid, sid) == 0)
			return s;
	return NULL;
}

static void expire_arm(struct gena *g)
{
	uint64_t now = now_ms(), first = UINT64_MAX;
	struct timeval tv;

	for (struct gena_sub *s = g->subs; s != NULL; s = s->next)
		if (s->expires_ms < first)
			first = s->expires_ms;
	if (first == UINT64_MAX) {
		event_del(g->ev_expire);
		return;
	}
	first = first > now ? first - now : 0;
	tv.tv_sec = (time_t)(first / 1000);
	tv.tv_usec = (suseconds_t)(first % 1000) * 1000;
	event_add(g->ev_expire, &tv);
}

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gena *g = arg;
	uint64_t now = now_ms();
	struct gena_sub *s = g->subs, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->expires_ms <= now) {
			upnp_log(&g->cfg.logger, LOG_DEBUG, "gena: %s expired", s->sid);
			sub_drop(g, s);
		}
	}
	expire_arm(g);
}

/* ------------------------------------------------------------------ NOTIFY */

/* XML character data escaping for property values. */
static int add_escaped(struct evbuffer *b, const char *v)
{
	int rc = 0;

	for (; *v != '\0' && rc == 0; v++) {
		switch (*v) {
		case '&': rc = evbuffer_add(b, "&amp;", 5); break;
		case '<': rc = evbuffer_add(b, "&lt;", 4); break;
		case '>': rc = evbuffer_add(b, "&gt;", 4); break;
		case '"': rc = evbuffer_add(b, "&quot;", 6); break;
		case '\'': rc = evbuffer_add(b, "&apos;", 6); break;
		default: rc = evbuffer_add(b, v, 1); break;
		}
	}
	return rc;
}

static void sub_send(struct gena_sub *sub);

static void notify_done(void *arg, int status)
{
	struct gena_sub *sub = arg;
	struct gena *g = sub->g;

	sub->in_flight = false;
	sub->client = NULL;
	if (sub->gone) {
		gone_unlink(g, sub);
		free(sub);
		return;
	}
	if (status >= 200 && status < 300) {
		sub->failures = 0;
	} else if (++sub->failures >= GENA_MAX_FAILURES) {
		upnp_log(&g->cfg.logger, LOG_INFO,
			 "gena: dropping %s after %u failed deliveries", sub->sid, sub->failures);
		sub_drop(g, sub);
		return;
	}
	if (sub->dirty != 0)
		sub_send(sub);
}

/* UDA 1.1 §4.3.2: NOTIFY with the propertyset of the dirty variables and the next SEQ. */
static void sub_send(struct gena_sub *sub)
{
	struct gena *g = sub->g;
	struct evbuffer *b;
	char seq[16];
	const char *hdrs[] = { "CONTENT-TYPE", HTTP_CT_XML, "NT", "upnp:event",
			       "NTS", "upnp:propchange", "SID", sub->sid, "SEQ", seq, NULL };
	size_t n = g->n_vars[sub->service];
	int rc = 0;

	if (sub->in_flight || sub->dirty == 0)
		return;
	b = evbuffer_new();
	if (b == NULL)
		return;
	rc |= evbuffer_add_printf(b, "<?xml version=\"1.0\"?>\n"
				  "<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">") < 0;
	for (size_t i = 0; i < n; i++) {
		const struct gena_var *v = &g->vars[sub->service][i];

		if (!(sub->dirty & (1u << i)))
			continue;
		rc |= evbuffer_add_printf(b, "<e:property><%s>", v->name) < 0;
		rc |= add_escaped(b, v->value);
		rc |= evbuffer_add_printf(b, "</%s></e:property>", v->name) < 0;
	}
	rc |= evbuffer_add_printf(b, "</e:propertyset>\n") < 0;
	snprintf(seq, sizeof(seq), "%u", (unsigned)sub->seq);
	if (rc == 0)
		sub->client = http_client_send(g->base, &sub->cb.sa,
					       sub->cb.sa.sa_family == AF_INET6 ? sizeof(sub->cb.v6)
										: sizeof(sub->cb.v4),
					       "NOTIFY", sub->cb_host_path,
					       hdrs, (const char *)evbuffer_pullup(b, -1),
					       evbuffer_get_length(b), GENA_NOTIFY_TIMEOUT_MS,
					       notify_done, sub);
	if (sub->client != NULL) {
		sub->in_flight = true;
		sub->dirty = 0;
		/* UDA 1.1 §4.3.2: SEQ wraps from 2^32-1 to 1 (0 is the initial event only). */
		sub->seq = sub->seq == UINT32_MAX ? 1 : sub->seq + 1;
	}
	evbuffer_free(b);
}

static void initial_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gena_sub *sub = arg;

	event_free(sub->ev_initial);
	sub->ev_initial = NULL;
	sub->dirty = (uint32_t)((1ull << sub->g->n_vars[sub->service]) - 1u);
	sub_send(sub);
}

/* ------------------------------------------------------------------ SUBSCRIBE */

/*
 * UDA 1.1 §4.1.2: CALLBACK: <url1><url2>... Takes the first http URL whose host is an IPv4
 * literal or a bracketed IPv6 literal (RFC 3986 §3.2.2; no zone id, UDA 1.1 Annex A).
 * Writes "HOST:PORT/path" and the address (scope id 0). Returns 0 or -1 (no usable URL).
 */
static int parse_callback(const char *cb, struct sockaddr_storage *addr, char *host_path,
			  size_t cap)
{
	const char *p = cb;

	while ((p = strchr(p, '<')) != NULL) {
		const char *end = strchr(p, '>');
		const char *h, *hend, *path, *hs, *he;
		char host[INET6_ADDRSTRLEN];
		unsigned long port = 80;
		struct in_addr a;
		struct in6_addr a6;
		bool v6;
		size_t ulen;

		if (end == NULL)
			return -1;
		h = p + 1;
		p = end + 1;
		ulen = (size_t)(end - h);
		if (ulen < 8 || strncasecmp(h, "http://", 7) != 0)
			continue;
		h += 7;
		path = memchr(h, '/', (size_t)(end - h));
		if (path == NULL)
			path = end;
		v6 = *h == '[';
		if (v6) {
			/* "[v6 literal]" then ":port" or the path */
			hs = h + 1;
			he = memchr(hs, ']', (size_t)(path - hs));
			if (he == NULL)
				continue;
			hend = he + 1;
			if (hend != path && *hend != ':')
				continue;
		} else {
			hend = memchr(h, ':', (size_t)(path - h));
			if (hend == NULL)
				hend = path;
			hs = h;
			he = hend;
		}
		if ((size_t)(he - hs) == 0 || (size_t)(he - hs) >= sizeof(host))
			continue;
		memcpy(host, hs, (size_t)(he - hs));
		host[he - hs] = '\0';
		if (v6 ? inet_pton(AF_INET6, host, &a6) != 1 || IN6_IS_ADDR_V4MAPPED(&a6)
		       : inet_pton(AF_INET, host, &a) != 1)
			continue; /* names would need a resolver: not on this path; zone ids
				     ("%25eth0") are not addresses to inet_pton either */
		if (hend < path) {
			const char *q = hend + 1;

			if (q == path || path - q > 5)
				continue;
			port = 0;
			for (; q < path; q++) {
				if (*q < '0' || *q > '9')
					break;
				port = port * 10 + (unsigned long)(*q - '0');
			}
			if (q != path || port == 0 || port > 65535)
				continue;
		}
		for (const char *c = h; c < end; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f)
				goto next;
		if ((size_t)(end - h) + 2 > cap)
			continue;
		memset(addr, 0, sizeof(*addr));
		if (v6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)addr;

			s6->sin6_family = AF_INET6;
			s6->sin6_addr = a6;
			s6->sin6_port = htons((uint16_t)port);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)addr;

			s4->sin_family = AF_INET;
			s4->sin_addr = a;
			s4->sin_port = htons((uint16_t)port);
		}
		if (path == end)
			snprintf(host_path, cap, "%.*s/", (int)(end - h), h);
		else
			snprintf(host_path, cap, "%.*s", (int)(end - h), h);
		return 0;
next:
		;
	}
	return -1;
}

/* Same host address (any port, any scope)? IPv4 and IPv6 never match each other. */
static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

/* "Second-N" or "Second-infinite" (UDA 1.1 §4.1.2); returns the granted seconds. */
static uint32_t parse_timeout(const char *t, uint32_t cap)
{
	unsigned long v = 0;

	if (t == NULL || strncasecmp(t, "Second-", 7) != 0)
		return cap;
	t += 7;
	if (strcasecmp(t, "infinite") == 0)
		return cap;
	if (*t == '\0')
		return cap;
	for (; *t != '\0'; t++) {
		if (*t < '0' || *t > '9')
			return cap;
		if (v < 100000000ul)
			v = v * 10 + (unsigned long)(*t - '0');
	}
	if (v < GENA_MIN_TIMEOUT_S)
		v = GENA_MIN_TIMEOUT_S;
	return v > cap ? cap : (uint32_t)v;
}

static void make_sid(char *sid, size_t cap)
{
	uint8_t r[16];
	char text[UPNP_UUID_TEXT];

	upnp_uuid_random(r);
	upnp_uuid_format(r, text);
	snprintf(sid, cap, "uuid:%s", text);
}

static void respond_ok(struct http_exchange *x, const char *sid, uint32_t timeout_s)
{
	char to[32];
	const char *hdrs[] = { "SID", sid, "TIMEOUT", to, NULL };

	snprintf(to, sizeof(to), "Second-%u", (unsigned)timeout_s);
	http_exchange_respond(x, 200, hdrs, NULL, NULL, 0);
}

/* 400 / 412: a request that is wrong, counted. */
static void respond_rejected(struct gena *g, struct http_exchange *x, int status)
{
	g->st.gena_rejected++;
	http_exchange_respond(x, status, NULL, NULL, NULL, 0);
}

static void handle_subscribe(struct gena *g, struct http_exchange *x,
			     const struct http_request *req, int service)
{
	const char *sid = http_request_header(req, "SID");
	const char *nt = http_request_header(req, "NT");
	const char *cb = http_request_header(req, "CALLBACK");
	uint32_t timeout_s = parse_timeout(http_request_header(req, "TIMEOUT"),
					   g->cfg.max_timeout_s);
	struct gena_sub *sub;
	struct sockaddr_storage addr;
	char host_path[GENA_URL_MAX];

	if (sid != NULL) {
		/* UDA 1.1 §4.1.3: renewal carries SID only. */
		if (nt != NULL || cb != NULL) {
			respond_rejected(g, x, 400);
			return;
		}
		sub = sub_find(g, sid);
		if (sub == NULL || sub->service != service) {
			respond_rejected(g, x, 412);
			return;
		}
		sub->expires_ms = now_ms() + (uint64_t)timeout_s * 1000u;
		expire_arm(g);
		g->st.gena_renewed++;
		respond_ok(x, sub->sid, timeout_s);
		return;
	}
	/* UDA 1.1 §4.1.2: NT must be upnp:event and CALLBACK must be present, else 412. */
	if (nt == NULL || strcmp(nt, "upnp:event") != 0 || cb == NULL ||
	    parse_callback(cb, &addr, host_path, sizeof(host_path)) != 0) {
		respond_rejected(g, x, 412);
		return;
	}
	/* CVE-2020-12695 (CallStranger): events go only to the host that subscribed. */
	if (!same_addr((const struct sockaddr *)&req->peer, (const struct sockaddr *)&addr)) {
		char ip[INET6_ADDRSTRLEN] = "?";

		if (addr.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)&addr)->sin6_addr,
				  ip, sizeof(ip));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)&addr)->sin_addr,
				  ip, sizeof(ip));
		upnp_log(&g->cfg.logger, LOG_WARNING,
			 "gena: refusing callback to %s: not the subscriber", ip);
		respond_rejected(g, x, 412);
		return;
	}
	if (addr.ss_family == AF_INET6) /* a link-local callback: the subscriber's link */
		((struct sockaddr_in6 *)(void *)&addr)->sin6_scope_id =
			((const struct sockaddr_in6 *)(const void *)&req->peer)->sin6_scope_id;
	/* Subscriptions cancelled while their NOTIFY is in flight still hold memory (up to
	 * GENA_NOTIFY_TIMEOUT_MS): they count, so SUBSCRIBE/UNSUBSCRIBE churn is bounded too. */
	if (g->n_subs + g->n_gone >= g->cfg.max_subscriptions) {
		g->st.gena_refused_limit++;
		http_exchange_respond(x, 503, NULL, NULL, NULL, 0);
		return;
	}
	{
		/* One host may hold at most a quarter of the subscriptions (at least 4), so it
		 * cannot keep every other control point from being told of changes. */
		size_t per_host = g->cfg.max_subscriptions / 4 > 4 ? g->cfg.max_subscriptions / 4 : 4;
		size_t mine = 0;

		for (const struct gena_sub *q = g->subs; q != NULL; q = q->next)
			if (!q->gone && same_addr((const struct sockaddr *)&addr, &q->cb.sa))
				mine++;
		if (mine >= per_host) {
			upnp_log(&g->cfg.logger, LOG_WARNING,
				 "gena: one host holds %zu subscriptions: refused", mine);
			g->st.gena_refused_limit++;
			http_exchange_respond(x, 503, NULL, NULL, NULL, 0);
			return;
		}
	}
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL) {
		http_exchange_respond(x, 500, NULL, NULL, NULL, 0);
		return;
	}
	sub->g = g;
	sub->service = service;
	memcpy(&sub->cb, &addr, sizeof(sub->cb));
	snprintf(sub->cb_host_path, sizeof(sub->cb_host_path), "%s", host_path);
	make_sid(sub->sid, sizeof(sub->sid));
	sub->expires_ms = now_ms() + (uint64_t)timeout_s * 1000u;
	sub->ev_initial = evtimer_new(g->base, initial_cb, sub);
	if (sub->ev_initial == NULL) {
		free(sub);
		http_exchange_respond(x, 500, NULL, NULL, NULL, 0);
		return;
	}
	sub->next = g->subs;
	g->subs = sub;
	g->n_subs++;
	g->st.gena_subscribed++;
	expire_arm(g);
	respond_ok(x, sub->sid, timeout_s);
	{
		struct timeval tv = { 0, GENA_INITIAL_DELAY_MS * 1000 };

		event_add(sub->ev_initial, &tv);
	}
}

static void handle_unsubscribe(struct gena *g, struct http_exchange *x,
			       const struct http_request *req, int service)
{
	const char *sid = http_request_header(req, "SID");
	struct gena_sub *sub;

	/* UDA 1.1 §4.1.4 */
	if (sid != NULL && (http_request_header(req, "NT") != NULL ||
			    http_request_header(req, "CALLBACK") != NULL)) {
		respond_rejected(g, x, 400);
		return;
	}
	sub = sid != NULL ? sub_find(g, sid) : NULL;
	if (sub == NULL || sub->service != service) {
		respond_rejected(g, x, 412);
		return;
	}
	sub_drop(g, sub);
	expire_arm(g);
	g->st.gena_unsubscribed++;
	http_exchange_respond(x, 200, NULL, NULL, NULL, 0);
}

void gena_handle(struct gena *g, struct http_exchange *x, const struct http_request *req,
		 int service)
{
	if (service < 0 || service >= GENA_MAX_SERVICES) {
		http_exchange_respond(x, 404, NULL, NULL, NULL, 0);
		return;
	}
	if (strcmp(req->method, "SUBSCRIBE") == 0)
		handle_subscribe(g, x, req, service);
	else if (strcmp(req->method, "UNSUBSCRIBE") == 0)
		handle_unsubscribe(g, x, req, service);
	else
		http_exchange_respond(x, 405, (const char *const[]){ "Allow",
				      "SUBSCRIBE, UNSUBSCRIBE", NULL }, NULL, NULL, 0);
}

void gena_stats(const struct gena *g, struct upnp_stats *out)
{
	out->gena_subscribed = g->st.gena_subscribed;
	out->gena_renewed = g->st.gena_renewed;
	out->gena_unsubscribed = g->st.gena_unsubscribed;
	out->gena_refused_limit = g->st.gena_refused_limit;
	out->gena_rejected = g->st.gena_rejected;
	out->gena_active = g->n_subs;
}

void gena_set_vars(struct gena *g, int service, const char *const *names,
		   const char *const *values)
{
	uint32_t changed = 0;

	if (g == NULL || service < 0 || service >= GENA_MAX_SERVICES || names == NULL ||
	    values == NULL)
		return;
	for (size_t k = 0; names[k] != NULL && values[k] != NULL; k++) {
		size_t i, n = g->n_vars[service];
		struct gena_var *v = g->vars[service];

		for (i = 0; i < n; i++)
			if (strcmp(v[i].name, names[k]) == 0)
				break;
		if (i == n) {
			if (n >= GENA_MAX_VARS)
				continue;
			v[i].name = strdup(names[k]);
			v[i].value = strdup(values[k]);
			if (v[i].name == NULL || v[i].value == NULL) {
				free(v[i].name);
				free(v[i].value);
				v[i].name = v[i].value = NULL;
				continue;
			}
			g->n_vars[service]++;
			changed |= 1u << i;
		} else if (strcmp(v[i].value, values[k]) != 0) {
			char *nv = strdup(values[k]);

			if (nv == NULL)
				continue;
			free(v[i].value);
			v[i].value = nv;
			changed |= 1u << i;
		}
	}
	if (changed == 0)
		return;
	for (struct gena_sub *s = g->subs; s != NULL; s = s->next) {
		if (s->service != service || s->ev_initial != NULL)
			continue; /* the initial event, still to come, carries everything */
		s->dirty |= changed;
		sub_send(s);
	}
}

struct gena *gena_new(struct event_base *base, const struct gena_config *cfg)
{
	struct gena *g;

	if (base == NULL)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->base = base;
	if (cfg != NULL)
		g->cfg = *cfg;
	if (g->cfg.max_subscriptions == 0)
		g->cfg.max_subscriptions = DEF_MAX_SUBS;
	if (g->cfg.max_timeout_s == 0)
		g->cfg.max_timeout_s = DEF_MAX_TIMEOUT_S;
	g->ev_expire = evtimer_new(base, expire_cb, g);
	if (g->ev_expire == NULL) {
		free(g);
		return NULL;
	}
	return g;
}

void gena_free(struct gena *g)
{
	if (g == NULL)
		return;
	while (g->subs != NULL)
		sub_drop(g, g->subs); /* in-flight ones move to g->gone */
	while (g->gone != NULL) {
		struct gena_sub *sub = g->gone;

		g->gone = sub->next;
		g->n_gone--;
		http_client_cancel(sub->client); /* its done is not called */
		free(sub);
	}
	event_free(g->ev_expire);
	for (size_t s = 0; s < GENA_MAX_SERVICES; s++)
		for (size_t i = 0; i < g->n_vars[s]; i++) {
			free(g->vars[s][i].name);
			free(g->vars[s][i].value);
		}
	free(g);
}
