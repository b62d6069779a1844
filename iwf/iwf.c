/*
 * iwf.c - the UPnP IGD-PCP Interworking Function core (seed 004).
 *
 * Every mapping the IWF knows has a struct iwf_map: its PCP flow, its phase, and (while
 * a UPnP call waits on it) the call. The committed mappings are also in the state/ table,
 * which answers every UPnP read (seed 004 §5.8) and is saved after every change (§5.4).
 */
#include "iwf.h"
#include "nat.h"

#include "pcp.h"
#include "pcp_event.h"
#include "state.h"
#include "upnp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define IGD2_MAX_LEASE 604800u /* WANIPConnection:2: 0 and larger values become a week */
#define DELETE_DEADLINE_MS 4000u

enum map_phase {
	PHASE_ADDING,    /* AddPortMapping / AddAnyPortMapping waits for the first answer */
	PHASE_ACTIVE,    /* committed to the table; pcp/ renews it */
	PHASE_REPLAYING, /* restored from storage or server lost state: MAP re-sent */
	PHASE_DELETING,  /* DeletePortMapping(Range) or lease expiry: lifetime-0 MAP sent */
	PHASE_DISCARD,   /* not in the table any more; waiting for pcp/ to finish a delete */
	PHASE_PROBE,     /* short-lived MAP to learn the external address (§4.1) */
};
static const char *const phase_names[] = {"adding", "active", "replaying", "deleting",
					  "discard", "probe"};

struct range_op; /* DeletePortMappingRange in progress */

struct iwf_map {
	struct iwf_map *next, *prev;
	enum map_phase phase;
	struct pcp_flow *flow;
	struct upnp_call *call;    /* waiting UPnP call, or NULL */
	struct range_op *range;    /* DeletePortMappingRange this delete belongs to */
	bool any;                  /* AddAnyPortMapping: any external port will do */
	bool filtered;             /* RemoteHost sent as FILTER */
	struct state_mapping m;    /* the mapping as requested / committed */
};

struct range_op {
	struct upnp_call *call;
	unsigned remaining;
	unsigned failed;
};

struct iwf {
	struct event_base *base;
	struct iwf_config cfg;
	const struct iwf_logger *log;
	struct upnp_server *upnp;
	struct pcp_client *pcp;
	struct pcp_io *io;
	struct state_table *table;
	struct state_meta meta;
	struct iwf_nat *nat;  /* cascaded NAT (seed 004 §5.6); "none" backend otherwise */
	struct iwf_map *maps; /* every live iwf_map */
	struct event *lease_timer, *start_timer, *replay_timer;
	bool started;         /* PCP_SERVICE_WAIT over */
	bool connected;
	uint64_t connected_since_ms;
	char external_ip[INET6_ADDRSTRLEN];
	struct iwf_map *probe;
	char root_url[128];
};

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ms(void)
{
	return pcp_io_now(); /* the same monotonic clock pcp/'s adapter gives the engine */
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static const char *proto_name(uint8_t p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : "?";
}

static void kick(struct iwf *w)
{
	if (w->io)
		pcp_io_kick(w->io);
}

static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)cap);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)cap);
	}
}

/* Copy a string, cutting it to fit (never overflowing, always terminated). */
static void copy_text(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* getrandom cannot fail on Linux >= 3.17 with these flags; fall back. */
			for (size_t i = 0; i < len; i++)
				p[i] = (uint8_t)rand();
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void uuid_generate_text(char *out, size_t cap)
{
	uint8_t b[16];
	random_bytes(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, cap,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}

/* ------------------------------------------------------------------ maps */

static struct iwf_map *map_new(struct iwf *w, enum map_phase phase, const struct state_mapping *m)
{
	struct iwf_map *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->phase = phase;
	x->m = *m;
	x->next = w->maps;
	if (w->maps)
		w->maps->prev = x;
	w->maps = x;
	return x;
}

static void map_free(struct iwf *w, struct iwf_map *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		w->maps = x->next;
	if (x->next)
		x->next->prev = x->prev;
	if (w->probe == x)
		w->probe = NULL;
	free(x);
}

static void map_set_phase(struct iwf *w, struct iwf_map *x, enum map_phase phase)
{
	iwf_log(w->log, IWF_LOG_DEBUG, "mapping %s %u: %s -> %s", proto_name(x->m.protocol),
		x->m.external_port, phase_names[x->phase], phase_names[phase]);
	x->phase = phase;
}

/* The live map for a key, in any phase that holds the port (not DISCARD / PROBE). */
static struct iwf_map *map_find(struct iwf *w, uint8_t proto, uint16_t ext_port, const char *rh)
{
	for (struct iwf_map *x = w->maps; x; x = x->next) {
		if (x->phase == PHASE_DISCARD || x->phase == PHASE_PROBE)
			continue;
		if (x->m.protocol == proto && x->m.external_port == ext_port &&
		    strcmp(x->m.remote_host, rh ? rh : "") == 0)
			return x;
	}
	return NULL;
}

/* Seconds of lease left (0 = infinite lease; 1 at least for a finite one). */
static uint32_t lease_left(const struct state_mapping *m, int64_t now)
{
	if (m->lease_end == 0)
		return 0;
	int64_t left = m->lease_end - now;
	return left > 0 ? (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left) : 1;
}

/* PCP lifetime to request: never more than the remaining lease (issue 5 §4). */
static uint32_t pcp_lifetime_for(const struct iwf *w, const struct state_mapping *m)
{
	uint32_t life = w->cfg.pcp_lifetime;
	uint32_t left = lease_left(m, wall_now());
	if (m->lease_end && left < life)
		life = left;
	return life ? life : 1;
}

static bool start_flow(struct iwf *w, struct iwf_map *x, bool prefer_failure, bool reuse_nonce,
		       uint32_t deadline_ms)
{
	struct pcp_map_params p;
	memset(&p, 0, sizeof(p));
	p.protocol = x->m.protocol;
	if (x->m.router_port) {
		/* seed 004 §5.6: the PCP request carries the router's own address (the source of
		 * our requests, no THIRD_PARTY) and the port the router's NAT gave. */
		p.internal_port = x->m.router_port;
		p.third_party = false;
	} else {
		if (!pcp_addr_parse(&p.internal_addr, x->m.internal_client))
			return false;
		p.internal_port = x->m.internal_port;
		/* seed 004 §5.5, no NAT in the CP router: the internal address is the LAN
		 * host's, not the one our requests leave with -> THIRD_PARTY (RFC 6887 §13.1). */
		p.third_party = true;
	}
	p.suggested_port = x->any && x->m.external_port == 0 ? 0 : x->m.external_port;
	if (x->m.external_addr[0])
		pcp_addr_parse(&p.suggested_addr, x->m.external_addr);
	p.lifetime = pcp_lifetime_for(w, &x->m);
	p.prefer_failure = prefer_failure;
	if (x->m.remote_host[0]) {
		/* RemoteHost -> FILTER (RFC 6887 §13.3), one remote address, all its ports. */
		struct in6_addr ra;
		if (!pcp_addr_parse(&ra, x->m.remote_host))
			return false;
		p.n_filters = 1;
		p.filters[0].addr = ra;
		p.filters[0].prefix_len = 128;
		p.filters[0].port = 0;
		x->filtered = true;
	}
	p.nonce = reuse_nonce ? x->m.nonce : NULL;
	p.answer_deadline_ms = deadline_ms;
	x->flow = pcp_flow_map(w->pcp, &p, x, now_ms());
	if (!x->flow)
		return false;
	memcpy(x->m.nonce, pcp_flow_nonce(x->flow), STATE_NONCE_LEN);
	kick(w);
	return true;
}

static bool start_flow(struct iwf *w, struct iwf_map *x, bool prefer_failure, bool reuse_nonce,
		       uint32_t deadline_ms);

static void delete_flow(struct iwf *w, struct iwf_map *x, enum map_phase phase)
{
	map_set_phase(w, x, phase);
	/* A restored mapping not replayed yet has no flow: make one with its stored nonce so
	 * the lifetime-0 MAP carries it (RFC 6887 §15). */
	if (!x->flow && x->m.internal_client[0])
		start_flow(w, x, false, true, 0);
	if (x->flow) {
		/* A control point's DeletePortMapping waits at most DELETE_DEADLINE_MS (the answer
		 * is then 501 and the mapping kept); a delete iwfd decides itself (lease end,
		 * undoing a failed or refused add, a crashed run's intent) is retransmitted
		 * (RFC 6887 §8.1.1 back-off) until the server confirms it: giving up would leave
		 * an orphan on the carrier for its whole lifetime. */
		pcp_flow_delete(w->pcp, x->flow,
				phase == PHASE_DELETING ? DELETE_DEADLINE_MS : PCP_DELETE_NO_DEADLINE,
				now_ms());
		kick(w);
	} else if (phase == PHASE_DISCARD) {
		map_free(w, x);
	}
}

/* ------------------------------------------------------------------ state push / save */

static void push_state(struct iwf *w)
{
	struct upnp_state st = {
		.connection_status = w->connected ? "Connected" : "Disconnected",
		.external_ip = w->external_ip,
		.port_mapping_number_of_entries = (uint32_t)state_table_count(w->table),
		.system_update_id = w->meta.system_update_id,
		.possible_connection_types = "IP_Routed",
	};
	if (w->upnp)
		upnp_server_set_state(w->upnp, &st);
}

static void save(struct iwf *w)
{
	if (!w->cfg.state_file[0])
		return;
	char detail[512];
	enum state_err e = state_save(w->table, &w->meta, w->cfg.state_file, detail, sizeof(detail));
	if (e != STATE_OK)
		iwf_log(w->log, IWF_LOG_ERROR, "state not saved (%s): %s; still serving",
			state_err_name(e), detail);
}

static void arm_lease_timer(struct iwf *w);

/* Forget the write-ahead intent of x, if any; true when the file needs saving. */
static bool drop_intent(struct iwf *w, const struct iwf_map *x)
{
	return state_table_intent_remove(w->table, x->m.nonce) == STATE_OK;
}

/* The table changed: SystemUpdateID, storage, events, lease timer. */
static void table_changed(struct iwf *w)
{
	w->meta.system_update_id++;
	save(w);
	push_state(w);
	arm_lease_timer(w);
}

static void set_connected(struct iwf *w, bool up)
{
	if (up == w->connected)
		return;
	w->connected = up;
	if (up)
		w->connected_since_ms = now_ms();
	iwf_log(w->log, up ? IWF_LOG_INFO : IWF_LOG_WARN, "PCP server %s",
		up ? "reachable: ConnectionStatus Connected" : "not answering: ConnectionStatus Disconnected");
	push_state(w);
}

static void learn_external(struct iwf *w, const struct in6_addr *a)
{
	char text[INET6_ADDRSTRLEN];
	static const struct in6_addr zero;
	if (memcmp(a, &zero, sizeof(zero)) == 0)
		return;
	pcp_addr_format(a, text, sizeof(text));
	if (strcmp(text, "0.0.0.0") == 0 || strcmp(text, w->external_ip) == 0)
		return;
	iwf_log(w->log, IWF_LOG_INFO, "external address %s", text);
	snprintf(w->external_ip, sizeof(w->external_ip), "%s", text);
	push_state(w);
}

static void remove_entry(struct iwf *w, const struct state_mapping *m, const char *why)
{
	long i = state_table_find(w->table, m->protocol, m->external_port, m->remote_host);
	if (i < 0)
		return;
	iwf_log(w->log, IWF_LOG_INFO, "mapping %s %u -> %s:%u removed: %s", proto_name(m->protocol),
		m->external_port, m->internal_client, m->internal_port, why);
	if (m->router_port) {
		char detail[256];
		if (iwf_nat_remove(w->nat, m->protocol, m->router_port, detail, sizeof(detail)) != 0)
			iwf_log(w->log, IWF_LOG_WARN, "router NAT: %s", detail);
	}
	state_table_remove(w->table, (size_t)i);
	table_changed(w);
}

/* ------------------------------------------------------------------ leases */

static void lease_cb(evutil_socket_t fd, short what, void *arg)
{
	struct iwf *w = arg;
	int64_t now = wall_now();
	for (struct iwf_map *x = w->maps, *next; x; x = next) {
		next = x->next;
		if ((x->phase == PHASE_ACTIVE || x->phase == PHASE_REPLAYING) && x->m.lease_end &&
		    x->m.lease_end <= now) {
			struct state_mapping m = x->m;
			delete_flow(w, x, PHASE_DISCARD);
			remove_entry(w, &m, "lease expired");
		}
	}
	arm_lease_timer(w);
}

static void arm_lease_timer(struct iwf *w)
{
	int64_t soonest = 0;
	for (struct iwf_map *x = w->maps; x; x = x->next)
		if ((x->phase == PHASE_ACTIVE || x->phase == PHASE_REPLAYING) && x->m.lease_end &&
		    (!soonest || x->m.lease_end < soonest))
			soonest = x->m.lease_end;
	if (!soonest) {
		evtimer_del(w->lease_timer);
		return;
	}
	int64_t delay = soonest - wall_now();
	struct timeval tv = {.tv_sec = delay > 0 ? (time_t)delay : 0, .tv_usec = 0};
	evtimer_add(w->lease_timer, &tv);
}

/* ------------------------------------------------------------------ PCP events */

static void answer_range(struct iwf *w, struct range_op *r, bool ok)
{
	if (!ok)
		r->failed++;
	if (--r->remaining)
		return;
	if (r->failed)
		upnp_call_error(r->call, iwf_error_map(IWF_PCP_NO_ANSWER, w->cfg.igd_version));
	else
		upnp_call_reply(r->call, &(struct upnp_reply){0});
	free(r);
}

static void on_mapped(struct iwf *w, struct iwf_map *x, const struct pcp_event *ev)
{
	learn_external(w, &ev->external_addr);
	switch (x->phase) {
	case PHASE_PROBE:
		/* We learnt the external address; the probe's mapping is not wanted. */
		delete_flow(w, x, PHASE_DISCARD);
		break;
	case PHASE_ADDING:
		if (!x->any && ev->external_port != x->m.external_port) {
			/* RFC 6887 §13.2: PREFER_FAILURE forbids another port; some servers (Debian's
			 * miniupnpd) still assign one. Undo it and report the conflict. */
			iwf_log(w->log, IWF_LOG_WARN,
				"PCP server gave port %u instead of %u despite PREFER_FAILURE: deleting it, answering 718",
				ev->external_port, x->m.external_port);
			upnp_call_error(x->call, 718);
			x->call = NULL;
			delete_flow(w, x, PHASE_DISCARD);
			break;
		}
		x->m.external_port = ev->external_port;
		pcp_addr_format(&ev->external_addr, x->m.external_addr, sizeof(x->m.external_addr));
		drop_intent(w, x); /* saved below with the new entry */
		if (x->m.router_port) {
			/* seed 004 §5.6: the first NAT follows the result of the PCP request. */
			char detail[256];
			if (iwf_nat_add(w->nat, x->m.protocol, x->m.router_port, x->m.internal_client,
					x->m.internal_port, detail, sizeof(detail)) != 0) {
				iwf_log(w->log, IWF_LOG_ERROR, "router NAT: %s", detail);
				upnp_call_error(x->call, 501);
				x->call = NULL;
				delete_flow(w, x, PHASE_DISCARD);
				save(w);
				break;
			}
		}
		if (state_table_add(w->table, &x->m) != STATE_OK) {
			/* Only an allocation failure can get here: the key was reserved by x. */
			iwf_log(w->log, IWF_LOG_ERROR, "cannot store mapping %s %u", proto_name(x->m.protocol),
				x->m.external_port);
			upnp_call_error(x->call, 501);
			x->call = NULL;
			delete_flow(w, x, PHASE_DISCARD);
			break;
		}
		map_set_phase(w, x, PHASE_ACTIVE);
		iwf_log(w->log, IWF_LOG_INFO, "mapping %s %s:%u -> %s:%u added for %s (lifetime %" PRIu32 " s)",
			proto_name(x->m.protocol), x->m.external_addr, x->m.external_port,
			x->m.internal_client, x->m.internal_port, x->m.owner, ev->lifetime);
		table_changed(w);
		{
			struct upnp_reply r = {.reserved_port = x->m.external_port};
			upnp_call_reply(x->call, &r);
			x->call = NULL;
		}
		break;
	case PHASE_REPLAYING:
		if (ev->external_port != x->m.external_port) {
			struct state_mapping m = x->m;
			delete_flow(w, x, PHASE_DISCARD);
			remove_entry(w, &m, "the PCP server gave another external port on replay");
			break;
		}
		map_set_phase(w, x, PHASE_ACTIVE);
		__attribute__((fallthrough));
	case PHASE_ACTIVE: {
		char addr[STATE_ADDR_MAX];
		pcp_addr_format(&ev->external_addr, addr, sizeof(addr));
		long i = state_table_find(w->table, x->m.protocol, x->m.external_port, x->m.remote_host);
		if (i >= 0 && strcmp(addr, x->m.external_addr) != 0) {
			snprintf(x->m.external_addr, sizeof(x->m.external_addr), "%s", addr);
			snprintf(state_table_get_mut(w->table, (size_t)i)->external_addr,
				 STATE_ADDR_MAX, "%s", addr);
			save(w);
		}
		pcp_flow_set_lifetime(w->pcp, x->flow, pcp_lifetime_for(w, &x->m));
		break;
	}
	case PHASE_DELETING:
	case PHASE_DISCARD:
		break; /* a late answer to the MAP; the delete is on its way */
	}
}

static void on_failed(struct iwf *w, struct iwf_map *x, const struct pcp_event *ev)
{
	unsigned code = ev->timeout ? IWF_PCP_NO_ANSWER : ev->result;
	switch (x->phase) {
	case PHASE_ADDING: {
		int err = iwf_error_map(code, w->cfg.igd_version);
		if (!ev->timeout && ev->result == PCP_RESULT_UNSUPP_OPTION && x->filtered)
			err = w->cfg.igd_version == 2 ? 501 : 726; /* FILTER refused: no wider mapping */
		iwf_log(w->log, IWF_LOG_INFO, "AddPortMapping %s %u for %s: PCP %s -> UPnP %d",
			proto_name(x->m.protocol), x->m.external_port, x->m.internal_client,
			ev->timeout ? "no answer" : pcp_result_name(ev->result), err);
		upnp_call_error(x->call, err);
		x->call = NULL;
		if (ev->timeout) {
			/* The server may have created it without us hearing: delete with the nonce. */
			delete_flow(w, x, PHASE_DISCARD);
		} else {
			pcp_flow_abandon(w->pcp, x->flow);
			if (drop_intent(w, x))
				save(w);
			map_free(w, x);
		}
		break;
	}
	case PHASE_REPLAYING:
		if (!ev->timeout) {
			struct state_mapping m = x->m;
			pcp_flow_abandon(w->pcp, x->flow);
			map_free(w, x);
			remove_entry(w, &m, "the PCP server refused the replay");
		}
		break; /* no answer: pcp/ keeps retransmitting */
	case PHASE_PROBE:
		break; /* keeps retransmitting; Disconnected via REACHABILITY */
	default:
		break;
	}
}

static void on_renew_failed(struct iwf *w, struct iwf_map *x, const struct pcp_event *ev)
{
	if (x->phase != PHASE_ACTIVE && x->phase != PHASE_REPLAYING)
		return;
	struct state_mapping m = x->m;
	iwf_log(w->log, IWF_LOG_WARN, "renewal of %s %u refused (%s)", proto_name(m.protocol),
		m.external_port, ev->result ? pcp_result_name(ev->result) : "other port");
	delete_flow(w, x, PHASE_DISCARD);
	remove_entry(w, &m, "the PCP server refused to renew it");
}

static void on_deleted(struct iwf *w, struct iwf_map *x, const struct pcp_event *ev)
{
	x->flow = NULL; /* freed by pcp/ after this event */
	if (x->phase == PHASE_DELETING) {
		if (ev->timeout) {
			/* No answer: the mapping may still be on the server, so keep it here too
			 * and keep renewing it (the table must equal the carrier's). */
			iwf_log(w->log, IWF_LOG_WARN, "delete of %s %u got no answer; mapping kept",
				proto_name(x->m.protocol), x->m.external_port);
			map_set_phase(w, x, PHASE_ACTIVE);
			if (x->range)
				answer_range(w, x->range, false);
			else if (x->call)
				upnp_call_error(x->call, iwf_error_map(IWF_PCP_NO_ANSWER, w->cfg.igd_version));
			x->call = NULL;
			x->range = NULL;
			if (!start_flow(w, x, true, true, 0)) {
				remove_entry(w, &x->m, "cannot restart its PCP flow");
				map_free(w, x);
			}
			return;
		}
		struct state_mapping m = x->m;
		struct range_op *range = x->range;
		struct upnp_call *call = x->call;
		map_free(w, x);
		/* Saved before the control point hears "done": a crash right after the answer
		 * must not bring the mapping back at the next start. */
		remove_entry(w, &m, "deleted");
		if (range)
			answer_range(w, range, true);
		else if (call)
			upnp_call_reply(call, &(struct upnp_reply){0});
		return;
	}
	if (!ev->timeout && drop_intent(w, x))
		save(w); /* an unconfirmed intent stays for the next start */
	map_free(w, x);
}

static void pcp_event_cb_fn(void *arg, const struct pcp_event *ev)
{
	struct iwf *w = arg;
	struct iwf_map *x = ev->user;
	switch (ev->type) {
	case PCP_EVENT_REACHABILITY:
		set_connected(w, ev->reachable);
		return;
	case PCP_EVENT_SERVER_LOST_STATE:
		iwf_log(w->log, IWF_LOG_WARN, "PCP server lost its state: re-creating %zu mappings",
			state_table_count(w->table));
		for (struct iwf_map *y = w->maps; y; y = y->next)
			if (y->phase == PHASE_ACTIVE)
				map_set_phase(w, y, PHASE_REPLAYING);
		return;
	default:
		break;
	}
	if (!x)
		return;
	switch (ev->type) {
	case PCP_EVENT_MAPPED:
		set_connected(w, true);
		on_mapped(w, x, ev);
		break;
	case PCP_EVENT_FAILED:
		if (!ev->timeout && ev->result != PCP_RESULT_NETWORK_FAILURE)
			set_connected(w, true);
		else if (ev->result == PCP_RESULT_NETWORK_FAILURE)
			set_connected(w, false);
		on_failed(w, x, ev);
		break;
	case PCP_EVENT_RENEW_FAILED:
		on_renew_failed(w, x, ev);
		break;
	case PCP_EVENT_DELETED:
		on_deleted(w, x, ev);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ UPnP actions */

static int igd(const struct iwf *w, int v1, int v2)
{
	return w->cfg.igd_version == 2 ? v2 : v1;
}

static void entry_to_upnp(const struct state_mapping *m, struct upnp_pm_entry *e, int64_t now)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->remote_host, sizeof(e->remote_host), "%s", m->remote_host);
	e->external_port = m->external_port;
	e->protocol = m->protocol == 6 ? UPNP_PROTO_TCP : UPNP_PROTO_UDP;
	e->internal_port = m->internal_port;
	snprintf(e->internal_client, sizeof(e->internal_client), "%s", m->internal_client);
	e->enabled = m->enabled;
	snprintf(e->description, sizeof(e->description), "%s", m->description);
	e->lease_duration = lease_left(m, now);
}

/* Strip control characters from a description (seed 004 §7, issue 5 §7). */
static void clean_description(char *out, size_t cap, const char *in)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c == 0x7f)
			continue;
		out[j++] = (char)c;
	}
	out[j] = '\0';
}

static uint32_t client_v4(const char *text)
{
	struct in_addr a;
	return inet_pton(AF_INET, text, &a) == 1 ? ntohl(a.s_addr) : 0;
}

/* The live map (any phase holding a key) for an internal endpoint, or NULL. */
static struct iwf_map *map_find_internal(struct iwf *w, uint8_t proto, const char *client,
					 uint16_t port)
{
	for (struct iwf_map *x = w->maps; x; x = x->next) {
		if (x->phase == PHASE_DISCARD || x->phase == PHASE_PROBE)
			continue;
		if (x->m.protocol == proto && x->m.internal_port == port &&
		    strcmp(x->m.internal_client, client) == 0)
			return x;
	}
	return NULL;
}

/* A control point re-adding the mapping it has: new lease, description and enabled flag;
 * the PCP mapping stays (same nonce); not a change of the table (no SystemUpdateID). */
static void refresh(struct iwf *w, struct iwf_map *x, const struct upnp_pm_entry *pm, uint32_t lease,
		    int64_t now)
{
	long i = state_table_find(w->table, x->m.protocol, x->m.external_port, x->m.remote_host);
	x->m.lease_duration = lease;
	x->m.lease_end = lease ? now + lease : 0;
	x->m.enabled = pm->enabled;
	clean_description(x->m.description, sizeof(x->m.description), pm->description);
	if (i >= 0)
		*state_table_get_mut(w->table, (size_t)i) = x->m;
	if (x->flow)
		pcp_flow_set_lifetime(w->pcp, x->flow, pcp_lifetime_for(w, &x->m));
	save(w);
	arm_lease_timer(w);
}

/* Cascaded NAT: a router-side port for a new mapping, the wanted one when free. 0 = none. */
static uint16_t pick_router_port(struct iwf *w, uint8_t proto, uint16_t wanted)
{
	uint32_t lo = w->cfg.nat_port_min, hi = w->cfg.nat_port_max, span = hi - lo + 1;
	uint32_t start = wanted >= lo && wanted <= hi ? wanted : lo;
	for (uint32_t k = 0; k < span; k++) {
		uint16_t port = (uint16_t)(lo + (start - lo + k) % span);
		bool used = false;
		for (struct iwf_map *x = w->maps; x && !used; x = x->next)
			used = x->m.protocol == proto && x->m.router_port == port;
		if (!used)
			return port;
	}
	return 0;
}

static void act_add(struct iwf *w, struct upnp_call *call, const struct upnp_args *a,
		    const char *from, bool any)
{
	const struct upnp_pm_entry *pm = &a->pm;
	uint8_t proto = pm->protocol == UPNP_PROTO_TCP ? 6 : 17;
	struct in_addr ic;
	if (inet_pton(AF_INET, pm->internal_client, &ic) != 1) {
		upnp_call_error(call, 402);
		return;
	}
	/* seed 004 §7: IGD:1 default security, no mapping on behalf of a third party. */
	if (!w->cfg.allow_third_party && strcmp(pm->internal_client, from) != 0) {
		iwf_log(w->log, IWF_LOG_INFO, "%s asked a mapping for %s: refused (third party)", from,
			pm->internal_client);
		upnp_call_error(call, igd(w, 718, 606));
		return;
	}
	if (!iwf_rules_permit(w->cfg.rules, w->cfg.n_rules, pm->external_port, client_v4(pm->internal_client),
			      pm->internal_port)) {
		iwf_log(w->log, IWF_LOG_INFO, "%s asked %s %u -> %s:%u: refused by the permission rules",
			from, proto_name(proto), pm->external_port, pm->internal_client, pm->internal_port);
		upnp_call_error(call, igd(w, 718, 606));
		return;
	}
	int64_t now = wall_now();
	uint32_t lease = pm->lease_duration;
	if (w->cfg.igd_version == 2 && (lease == 0 || lease > IGD2_MAX_LEASE))
		lease = IGD2_MAX_LEASE;

	/* A PCP mapping is keyed by its internal endpoint (RFC 6887 §11.1: protocol, internal
	 * address and port; one nonce each). UPnP could ask for a second external port for the
	 * same endpoint, which PCP cannot represent. */
	struct iwf_map *same = iwf_nat_active(w->nat) ? NULL :
		map_find_internal(w, proto, pm->internal_client, pm->internal_port);
	if (same && any && same->phase == PHASE_ACTIVE && strcmp(same->m.remote_host, pm->remote_host) == 0) {
		/* AddAnyPortMapping again for an endpoint that has its mapping: a refresh; the
		 * port it already has is the answer (what a user of any IGD would expect). */
		refresh(w, same, pm, lease, now);
		upnp_call_reply(call, &(struct upnp_reply){.reserved_port = same->m.external_port});
		return;
	}
	if (same && (same->m.external_port != pm->external_port ||
		     strcmp(same->m.remote_host, pm->remote_host) != 0)) {
		iwf_log(w->log, IWF_LOG_INFO,
			"%s asked %s %u -> %s:%u: that endpoint is already mapped from port %u -> 718",
			from, proto_name(proto), pm->external_port, pm->internal_client, pm->internal_port,
			same->m.external_port);
		upnp_call_error(call, 718);
		return;
	}

	/* seed 004 §5.7.2 / Figure 6: the local table first. */
	struct iwf_map *x = map_find(w, proto, pm->external_port, pm->remote_host);
	if (x && !any) {
		if (x->phase == PHASE_ACTIVE && strcmp(x->m.internal_client, pm->internal_client) == 0 &&
		    x->m.internal_port == pm->internal_port) {
			/* The same client re-adding its own mapping: a refresh (new lease, same PCP
			 * mapping), not a change of the table. */
			refresh(w, x, pm, lease, now);
			upnp_call_reply(call, &(struct upnp_reply){.reserved_port = pm->external_port});
			return;
		}
		iwf_log(w->log, IWF_LOG_INFO, "%s asked %s %u: taken locally -> 718", from,
			proto_name(proto), pm->external_port);
		upnp_call_error(call, 718);
		return;
	}
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.external_port = pm->external_port;
	snprintf(m.remote_host, sizeof(m.remote_host), "%s", pm->remote_host);
	copy_text(m.internal_client, sizeof(m.internal_client), pm->internal_client);
	m.internal_port = pm->internal_port;
	clean_description(m.description, sizeof(m.description), pm->description);
	snprintf(m.owner, sizeof(m.owner), "%s", from);
	m.enabled = pm->enabled;
	m.lease_duration = lease;
	m.lease_end = lease ? now + lease : 0;
	if (any && x) {
		/* AddAnyPortMapping with a taken port: let the server choose another one. */
		m.external_port = 0;
	}
	if (iwf_nat_active(w->nat) && !(m.router_port = pick_router_port(w, proto, pm->external_port))) {
		upnp_call_error(call, igd(w, 501, 728));
		return;
	}
	x = map_new(w, PHASE_ADDING, &m);
	if (!x) {
		upnp_call_error(call, 501);
		return;
	}
	x->any = any;
	x->call = call;
	/* seed 004 §5.7.2: PREFER_FAILURE for AddPortMapping; §5.7.1: none for AddAny. */
	if (!start_flow(w, x, !any, false, w->cfg.answer_deadline_ms)) {
		map_free(w, x);
		upnp_call_error(call, 501);
		return;
	}
	/* Write-ahead: the MAP leaves only when we are back in the loop, after this save, so a
	 * crash can never leave a mapping on the carrier that the file does not know of. */
	if (state_table_intent_add(w->table, &x->m) == STATE_OK)
		save(w);
}

static bool may_touch(const struct iwf *w, const struct state_mapping *m, const char *from)
{
	return w->cfg.allow_third_party || strcmp(m->owner, from) == 0 ||
	       strcmp(m->internal_client, from) == 0;
}

static void act_delete(struct iwf *w, struct upnp_call *call, const struct upnp_args *a,
		       const char *from)
{
	uint8_t proto = a->pm.protocol == UPNP_PROTO_TCP ? 6 : 17;
	struct iwf_map *x = map_find(w, proto, a->pm.external_port, a->pm.remote_host);
	if (!x || (x->phase != PHASE_ACTIVE && x->phase != PHASE_REPLAYING)) {
		/* seed 004 §5.9 / Figure 9: not in the local table -> 714, no PCP traffic. */
		upnp_call_error(call, 714);
		return;
	}
	if (!may_touch(w, &x->m, from)) {
		upnp_call_error(call, 606);
		return;
	}
	x->call = call;
	delete_flow(w, x, PHASE_DELETING);
}

static void act_delete_range(struct iwf *w, struct upnp_call *call, const struct upnp_args *a,
			     const char *from)
{
	uint8_t proto = a->pm.protocol == UPNP_PROTO_TCP ? 6 : 17;
	if (a->start_port > a->end_port) {
		upnp_call_error(call, 733); /* InconsistentParameters */
		return;
	}
	struct range_op *r = calloc(1, sizeof(*r));
	if (!r) {
		upnp_call_error(call, 501);
		return;
	}
	r->call = call;
	r->remaining = 1; /* held until every delete is issued */
	bool refused = false;
	for (struct iwf_map *x = w->maps, *next; x; x = next) {
		next = x->next;
		if ((x->phase != PHASE_ACTIVE && x->phase != PHASE_REPLAYING) || x->m.protocol != proto ||
		    x->m.external_port < a->start_port || x->m.external_port > a->end_port)
			continue;
		if (!may_touch(w, &x->m, from)) {
			refused = true;
			continue;
		}
		r->remaining++;
		x->range = r;
		delete_flow(w, x, PHASE_DELETING);
	}
	if (r->remaining == 1) {
		free(r);
		/* seed 004 §5.9 / Figure 10 */
		upnp_call_error(call, refused ? 606 : 730);
		return;
	}
	answer_range(w, r, true);
}

static void act_list(struct iwf *w, struct upnp_call *call, const struct upnp_args *a, const char *from)
{
	uint8_t proto = a->pm.protocol == UPNP_PROTO_TCP ? 6 : 17;
	size_t n = state_table_count(w->table), k = 0;
	size_t max = a->number_of_ports ? a->number_of_ports : n;
	struct upnp_pm_entry *list = calloc(n ? n : 1, sizeof(*list));
	if (!list) {
		upnp_call_error(call, 501);
		return;
	}
	if (a->start_port > a->end_port) {
		free(list);
		upnp_call_error(call, 733);
		return;
	}
	int64_t now = wall_now();
	for (size_t i = 0; i < n && k < max; i++) {
		const struct state_mapping *m = state_table_get(w->table, i);
		if (m->protocol != proto || m->external_port < a->start_port || m->external_port > a->end_port)
			continue;
		if (!a->manage && !may_touch(w, m, from))
			continue;
		entry_to_upnp(m, &list[k++], now);
	}
	if (!k)
		upnp_call_error(call, 730);
	else
		upnp_call_reply(call, &(struct upnp_reply){.list = list, .n_list = k});
	free(list);
}

static void upnp_action_cb(void *arg, struct upnp_call *call, enum upnp_action action,
			   const struct upnp_args *a, const struct sockaddr *from_sa)
{
	struct iwf *w = arg;
	char from[INET6_ADDRSTRLEN];
	sockaddr_text(from_sa, from, sizeof(from));
	iwf_log(w->log, IWF_LOG_DEBUG, "%s from %s", upnp_action_name(action), from);
	struct upnp_reply r;
	memset(&r, 0, sizeof(r));
	int64_t now = wall_now();
	switch (action) {
	case UPNP_ACT_ADD_PORT_MAPPING:
		act_add(w, call, a, from, false);
		return;
	case UPNP_ACT_ADD_ANY_PORT_MAPPING:
		act_add(w, call, a, from, true);
		return;
	case UPNP_ACT_DELETE_PORT_MAPPING:
		act_delete(w, call, a, from);
		return;
	case UPNP_ACT_DELETE_PORT_MAPPING_RANGE:
		act_delete_range(w, call, a, from);
		return;
	case UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS:
		act_list(w, call, a, from);
		return;
	case UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY: {
		uint8_t proto = a->pm.protocol == UPNP_PROTO_TCP ? 6 : 17;
		long i = state_table_find(w->table, proto, a->pm.external_port, a->pm.remote_host);
		if (i < 0) {
			upnp_call_error(call, 714);
			return;
		}
		entry_to_upnp(state_table_get(w->table, (size_t)i), &r.pm, now);
		break;
	}
	case UPNP_ACT_GET_GENERIC_PORT_MAPPING_ENTRY: {
		const struct state_mapping *m = state_table_get(w->table, a->index);
		if (!m) {
			upnp_call_error(call, 713); /* SpecifiedArrayIndexInvalid */
			return;
		}
		entry_to_upnp(m, &r.pm, now);
		break;
	}
	case UPNP_ACT_GET_EXTERNAL_IP_ADDRESS:
		r.external_ip = w->external_ip;
		break;
	case UPNP_ACT_GET_STATUS_INFO:
		r.connection_status = w->connected ? "Connected" : "Disconnected";
		r.last_connection_error = "ERROR_NONE";
		r.uptime = w->connected ? (uint32_t)((now_ms() - w->connected_since_ms) / 1000) : 0;
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
		upnp_call_error(call, igd(w, 501, 731)); /* seed 004 §4.2 */
		return;
	case UPNP_ACT_REQUEST_CONNECTION:
	case UPNP_ACT_REQUEST_TERMINATION:
	case UPNP_ACT_FORCE_TERMINATION:
	case UPNP_ACT_SET_AUTO_DISCONNECT_TIME:
	case UPNP_ACT_SET_IDLE_DISCONNECT_TIME:
	case UPNP_ACT_SET_WARN_DISCONNECT_DELAY:
	case UPNP_ACT_CONFIGURE_CONNECTION:
	case UPNP_ACT_SET_ENABLED_FOR_INTERNET:
	case UPNP_ACT_SET_DEFAULT_CONNECTION_SERVICE:
		upnp_call_error(call, igd(w, 501, 606)); /* seed 004 §4.2 */
		return;
	case UPNP_ACT_GET_PASSWORD:
		upnp_call_error(call, 606);
		return;
	case UPNP_ACT_GET_AUTO_DISCONNECT_TIME:
	case UPNP_ACT_GET_IDLE_DISCONNECT_TIME:
	case UPNP_ACT_GET_WARN_DISCONNECT_DELAY:
	case UPNP_ACT_GET_TOTAL_BYTES_SENT:
	case UPNP_ACT_GET_TOTAL_BYTES_RECEIVED:
	case UPNP_ACT_GET_TOTAL_PACKETS_SENT:
	case UPNP_ACT_GET_TOTAL_PACKETS_RECEIVED:
		r.number = 0;
		break;
	case UPNP_ACT_GET_MAXIMUM_ACTIVE_CONNECTIONS:
		r.number = 1;
		break;
	case UPNP_ACT_GET_LINK_LAYER_MAX_BIT_RATES:
	case UPNP_ACT_GET_COMMON_LINK_PROPERTIES:
		r.wan_access_type = "Ethernet";
		r.physical_link_status = w->connected ? "Up" : "Down";
		r.up_max_bitrate = 1000000000u;
		r.down_max_bitrate = 1000000000u;
		break;
	case UPNP_ACT_GET_PPP_ENCRYPTION_PROTOCOL:
	case UPNP_ACT_GET_PPP_COMPRESSION_PROTOCOL:
	case UPNP_ACT_GET_PPP_AUTHENTICATION_PROTOCOL:
	case UPNP_ACT_GET_USER_NAME:
		r.text = "";
		break;
	case UPNP_ACT_GET_ENABLED_FOR_INTERNET:
		r.flag = true;
		break;
	case UPNP_ACT_GET_ACTIVE_CONNECTION:
	case UPNP_ACT_GET_DEFAULT_CONNECTION_SERVICE:
		break; /* upnp/ fills the device container and service IDs it publishes */
	default:
		upnp_call_error(call, 401);
		return;
	}
	upnp_call_reply(call, &r);
}

static const struct upnp_ops iwf_upnp_ops = {.action = upnp_action_cb};

/* ------------------------------------------------------------------ start-up, replay */

static void replay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct iwf *w = arg;
	/* seed 004 §5.10: paced re-MAP of every stored mapping with its stored nonce; the ones
	 * whose lease ended while we were down are deleted (lifetime 0, stored nonce). */
	uint32_t batch = w->cfg.replay_rate ? (w->cfg.replay_rate + 9) / 10 : UINT32_MAX;
	int64_t now = wall_now();
	bool more = false;
	for (struct iwf_map *x = w->maps, *next; x; x = next) {
		next = x->next;
		if ((x->phase != PHASE_REPLAYING && x->phase != PHASE_DISCARD) || x->flow)
			continue;
		if (!batch) {
			more = true;
			break;
		}
		batch--;
		if (x->phase == PHASE_DISCARD) {
			delete_flow(w, x, PHASE_DISCARD);
			continue;
		}
		if (x->m.lease_end && x->m.lease_end <= now) {
			struct state_mapping m = x->m;
			delete_flow(w, x, PHASE_DISCARD);
			remove_entry(w, &m, "its lease ended while iwfd was down");
			continue;
		}
		if (!start_flow(w, x, true, true, 0)) {
			struct state_mapping m = x->m;
			map_free(w, x);
			remove_entry(w, &m, "cannot replay it");
		}
	}
	if (more) {
		struct timeval tv = {0, 100000};
		evtimer_add(w->replay_timer, &tv);
	}
}

static void send_probe(struct iwf *w)
{
	/* seed 004 §4.1: learn ExternalIPAddress before anyone asks; a short-lived MAP for
	 * the router itself (no THIRD_PARTY) that is deleted as soon as it is answered. */
	struct pcp_map_params p;
	memset(&p, 0, sizeof(p));
	p.protocol = 17;
	p.internal_port = 9; /* discard */
	p.lifetime = 60;
	p.answer_deadline_ms = w->cfg.answer_deadline_ms;
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = 17;
	m.internal_port = 9;
	struct iwf_map *x = map_new(w, PHASE_PROBE, &m);
	if (!x)
		return;
	x->flow = pcp_flow_map(w->pcp, &p, x, now_ms());
	if (!x->flow) {
		map_free(w, x);
		return;
	}
	w->probe = x;
	kick(w);
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct iwf *w = arg;
	w->started = true;
	iwf_log(w->log, IWF_LOG_INFO, "synchronising %zu stored mappings with the PCP server",
		state_table_count(w->table));
	if (state_table_count(w->table) == 0)
		send_probe(w);
	replay_cb(-1, 0, w);
}

static void load_state(struct iwf *w)
{
	if (!w->cfg.state_file[0])
		return;
	char detail[512];
	enum state_err e = state_load(w->table, &w->meta, w->cfg.state_file, detail, sizeof(detail));
	if (e == STATE_OK) {
		iwf_log(w->log, IWF_LOG_INFO, "loaded %zu mappings from %s", state_table_count(w->table),
			w->cfg.state_file);
		/* Each stored mapping holds its key from now on; pcp/ flows start at replay. */
		for (size_t i = 0; i < state_table_count(w->table); i++)
			if (!map_new(w, PHASE_REPLAYING, state_table_get(w->table, i)))
				iwf_log(w->log, IWF_LOG_ERROR, "out of memory restoring mappings");
		/* Requests that were in flight when we stopped: the server may have made them;
		 * they are deleted with their nonce at synchronisation. */
		for (size_t i = 0; i < state_table_intent_count(w->table); i++)
			if (!map_new(w, PHASE_DISCARD, state_table_intent_get(w->table, i)))
				iwf_log(w->log, IWF_LOG_ERROR, "out of memory restoring mappings");
		if (state_table_intent_count(w->table))
			iwf_log(w->log, IWF_LOG_INFO, "%zu requests were in flight at the last stop: deleting them",
				state_table_intent_count(w->table));
		return;
	}
	if (e == STATE_ERR_IO && errno == ENOENT)
		return;
	char moved[600] = "";
	state_table_clear(w->table);
	memset(&w->meta, 0, sizeof(w->meta));
	if (e != STATE_ERR_IO && state_quarantine(w->cfg.state_file, wall_now(), moved, sizeof(moved)) == STATE_OK)
		iwf_log(w->log, IWF_LOG_ERROR, "state file unusable (%s); kept as %s; starting clean",
			detail, moved);
	else
		iwf_log(w->log, IWF_LOG_ERROR, "state file unusable (%s); starting clean", detail);
}

static void upnp_log_cb(void *arg, enum upnp_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void upnp_log_cb(void *arg, enum upnp_log_level level, const char *fmt, va_list ap)
{
	struct iwf *w = arg;
	iwf_vlog(w->log, (enum iwf_log_level)level, fmt, ap);
}

static void pcp_log_cb(void *arg, int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void pcp_log_cb(void *arg, int level, const char *fmt, va_list ap)
{
	struct iwf *w = arg;
	iwf_vlog(w->log, (enum iwf_log_level)level, fmt, ap);
}

static void pcp_server_cb(void *arg, const struct pcp_server *server, enum pcp_io_server_reason why)
{
	struct iwf *w = arg;
	char text[INET6_ADDRSTRLEN];
	pcp_addr_format(&server->addr, text, sizeof(text));
	iwf_log(w->log, IWF_LOG_INFO, "PCP server %s port %u (%s)", text, server->port,
		pcp_io_server_reason_name(why));
}

const char *iwf_err_name(enum iwf_err err)
{
	static const char *const names[] = {"ok", "invalid configuration", "cannot read configuration",
					    "LAN side failed", "PCP side failed", "out of memory"};
	return (size_t)err < sizeof(names) / sizeof(names[0]) ? names[err] : "unknown error";
}

struct iwf *iwf_new(struct event_base *base, const struct iwf_config *cfg,
		    const struct iwf_logger *logger, enum iwf_err *err, char *detail, size_t cap)
{
	struct iwf *w = calloc(1, sizeof(*w));
	*err = IWF_ERR_NOMEM;
	if (!w)
		return NULL;
	w->base = base;
	w->cfg = *cfg;
	w->log = logger;
	w->table = state_table_new();
	w->lease_timer = evtimer_new(base, lease_cb, w);
	w->start_timer = evtimer_new(base, start_cb, w);
	w->replay_timer = evtimer_new(base, replay_cb, w);
	if (!w->table || !w->lease_timer || !w->start_timer || !w->replay_timer)
		goto fail;

	w->nat = iwf_nat_new(cfg->nat_mode, cfg->wan_if, detail, cap);
	if (!w->nat) {
		*err = IWF_ERR_INVAL;
		goto fail;
	}
	load_state(w);
	for (size_t i = 0; i < state_table_count(w->table); i++) {
		const struct state_mapping *m = state_table_get(w->table, i);
		char d[256];
		if (m->router_port && iwf_nat_add(w->nat, m->protocol, m->router_port, m->internal_client,
						  m->internal_port, d, sizeof(d)) != 0)
			iwf_log(w->log, IWF_LOG_ERROR, "router NAT for a stored mapping: %s", d);
	}
	if (!w->meta.uuid_igd[0]) {
		uuid_generate_text(w->meta.uuid_igd, sizeof(w->meta.uuid_igd));
		uuid_generate_text(w->meta.uuid_wan_device, sizeof(w->meta.uuid_wan_device));
		uuid_generate_text(w->meta.uuid_wan_conn_device, sizeof(w->meta.uuid_wan_conn_device));
	}
	w->meta.boot_id++;
	save(w);

	struct pcp_client_config pc = {
		.on_event = pcp_event_cb_fn,
		.event_arg = w,
	};
	w->pcp = pcp_client_new(&pc);
	if (!w->pcp)
		goto fail;
	const char *servers[IWF_MAX_PCP_SERVERS];
	for (size_t i = 0; i < cfg->n_pcp_servers; i++)
		servers[i] = cfg->pcp_servers[i];
	struct pcp_io_config ioc = {
		.servers = servers,
		.n_servers = cfg->n_pcp_servers,
		.listen_announce = cfg->listen_announce,
		.log = pcp_log_cb,
		.log_arg = w,
		.on_server = pcp_server_cb,
		.server_arg = w,
	};
	int ioerr = 0;
	w->io = pcp_io_new(base, w->pcp, &ioc, &ioerr);
	if (!w->io) {
		*err = IWF_ERR_PCP;
		if (detail)
			snprintf(detail, cap, "PCP client could not start (server %s): %s",
				 cfg->n_pcp_servers ? cfg->pcp_servers[0] : "default router", strerror(ioerr));
		goto fail;
	}
	if (cfg->pcp_servers_file[0]) {
		/* RFC 7291 hand-over by the router's DHCP clients (docs/pcp.md: file format). */
		int werr = pcp_io_watch_servers_file(w->io, cfg->pcp_servers_file, 0);
		if (werr) {
			*err = IWF_ERR_PCP;
			if (detail)
				snprintf(detail, cap, "cannot watch %s: %s", cfg->pcp_servers_file, strerror(werr));
			goto fail;
		}
	}

	const char *ifs[IWF_MAX_LAN_IFS];
	for (size_t i = 0; i < cfg->n_lan_ifs; i++)
		ifs[i] = cfg->lan_ifs[i];
	struct upnp_config uc = {
		.igd_version = cfg->igd_version,
		.ppp = cfg->ppp,
		.lan_ifnames = ifs,
		.n_lan_ifnames = cfg->n_lan_ifs,
		.lan_addr = cfg->lan_addr[0] ? cfg->lan_addr : NULL,
		.http_port = cfg->http_port,
		.uuid_igd = w->meta.uuid_igd,
		.uuid_wan_device = w->meta.uuid_wan_device,
		.uuid_wan_conn_device = w->meta.uuid_wan_conn_device,
		.friendly_name = cfg->friendly_name,
		.boot_id = w->meta.boot_id,
		.config_id = 1,
		.ops = &iwf_upnp_ops,
		.ops_arg = w,
		.log = upnp_log_cb,
		.log_arg = w,
	};
	enum upnp_err uerr = UPNP_OK;
	w->upnp = upnp_server_new(base, &uc, &uerr);
	if (!w->upnp) {
		*err = IWF_ERR_UPNP;
		if (detail)
			snprintf(detail, cap, "UPnP server could not start on %s: %s", cfg->lan_ifs[0],
				 upnp_err_name(uerr));
		goto fail;
	}
	snprintf(w->root_url, sizeof(w->root_url), "%s", upnp_server_root_url(w->upnp));
	push_state(w);

	/* seed 004 §5.10: wait RAND(0, PCP_SERVICE_WAIT) before the first PCP message. */
	uint32_t wait_ms = 0;
	if (cfg->pcp_service_wait_s) {
		uint32_t r;
		random_bytes(&r, sizeof(r));
		wait_ms = r % (cfg->pcp_service_wait_s * 1000u + 1);
	}
	struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
	evtimer_add(w->start_timer, &tv);
	*err = IWF_OK;
	return w;
fail:
	iwf_free(w);
	return NULL;
}

void iwf_free(struct iwf *w)
{
	if (!w)
		return;
	if (w->table)
		save(w);
	/* UPnP calls still waiting get an answer before the LAN side goes. */
	for (struct iwf_map *x = w->maps; x; x = x->next) {
		if (x->call) {
			upnp_call_error(x->call, 501);
			x->call = NULL;
		}
		if (x->range) {
			struct range_op *r = x->range;
			for (struct iwf_map *y = x; y; y = y->next)
				if (y->range == r)
					y->range = NULL;
			upnp_call_error(r->call, 501);
			free(r);
		}
	}
	upnp_server_free(w->upnp);
	pcp_io_free(w->io);
	pcp_client_free(w->pcp);
	while (w->maps)
		map_free(w, w->maps);
	if (w->lease_timer)
		event_free(w->lease_timer);
	if (w->start_timer)
		event_free(w->start_timer);
	if (w->replay_timer)
		event_free(w->replay_timer);
	state_table_free(w->table);
	iwf_nat_free(w->nat);
	free(w);
}

const char *iwf_root_url(const struct iwf *w)
{
	return w->root_url;
}

void iwf_set_rules(struct iwf *w, const struct iwf_rule *rules, size_t n)
{
	if (n > IWF_MAX_RULES)
		n = IWF_MAX_RULES;
	memcpy(w->cfg.rules, rules, n * sizeof(*rules));
	w->cfg.n_rules = n;
}
