/*
 * actions.c - the UPnP actions: policy (seed 004 §7), the local table first (§5.7.2
 * Figure 6, §5.9 Figures 9-10), reads from the table only (§5.8), and what a change sends.
 */
#include "core_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which version's error codes a control point gets (seed 004 §4.3 has a column per IGD
 * version): that of the WANIPConnection it addressed - a :1 control point may drive our :2
 * service and knows only :1 codes (606 and 728 are not among them). Other services: the
 * device's version. */
static int cp_version(const struct iwf_core *c, const struct upnp_args *a)
{
	if (a->service == UPNP_SVC_WANIPCONN && a->version >= 1 && a->version < c->cfg.igd_version)
		return a->version;
	return c->cfg.igd_version;
}

static enum upnp_error igd(int version, enum upnp_error v1, enum upnp_error v2)
{
	return version == 2 ? v2 : v1;
}

static bool addr_eq(const struct in6_addr *a, const struct in6_addr *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void from_addr(const struct sockaddr *sa, struct in6_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa && sa->sa_family == AF_INET)
		pcp_addr_from_v4(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	else if (sa && sa->sa_family == AF_INET6)
		*out = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
}

static bool committed(const struct life *l)
{
	return l && (l->phase == LIFE_PENDING || l->phase == LIFE_ACTIVE || l->phase == LIFE_REPLAYING ||
		     l->phase == LIFE_DISABLED);
}

/* May `from` change or see (manage) this mapping? IGD:1 default security (seed 004 §7):
 * only its own, unless the administrator allows third-party mappings. */
static bool may_touch(const struct iwf_core *c, const struct state_mapping *m, const struct in6_addr *from)
{
	return c->cfg.allow_third_party || addr_eq(&m->owner, from) || addr_eq(&m->internal_client, from);
}

/* NewManage (WANIPConnection:2): 0 = only the caller's own mappings, 1 = every mapping it
 * is allowed to manage. One rule for GetListOfPortMappings and DeletePortMappingRange. */
static bool in_scope(const struct iwf_core *c, const struct state_mapping *m, const struct in6_addr *from,
		     bool manage)
{
	return manage ? may_touch(c, m, from) : addr_eq(&m->internal_client, from) || addr_eq(&m->owner, from);
}

static void entry_to_upnp(const struct iwf_core *c, const struct state_mapping *m, struct upnp_pm_entry *e)
{
	memset(e, 0, sizeof(*e));
	addr_text(&m->remote_host, e->remote_host, sizeof(e->remote_host));
	e->external_port = m->external_port;
	e->protocol = (enum upnp_proto)m->protocol;
	e->internal_port = m->internal_port;
	addr_text(&m->internal_client, e->internal_client, sizeof(e->internal_client));
	e->enabled = m->flags & STATE_F_ENABLED;
	memcpy(e->description, m->description, m->desc_len);
	e->description[m->desc_len] = '\0';
	e->lease_duration = lease_left_s(c, m);
}

/* Strip control characters from a description (seed 004 §7). */
static void clean_description(char *out, size_t cap, const char *in)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 1 < cap; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 0x20 && ch != 0x7f)
			out[j++] = (char)ch;
	}
	out[j] = '\0';
}

/* The router's DNAT of a mapping whose internal port changed (cascaded NAT, seed 004 §5.6). */
static void nat_move(struct iwf_core *c, const struct state_mapping *m)
{
	char detail[256], client[INET6_ADDRSTRLEN];
	if (!m->router_port || iwf_nat_remove(c->nat, m->protocol, m->router_port, detail, sizeof(detail)) != 0 ||
	    iwf_nat_add(c->nat, m->protocol, m->router_port, addr_text(&m->internal_client, client, sizeof(client)),
			m->internal_port, detail, sizeof(detail)) != 0)
		if (m->router_port)
			core_log(c, IWF_LOG_ERROR, "router NAT: %s", detail);
}

/* The same internal client adding the mapping it has (WANIPConnection:1 and :2
 * AddPortMapping overwrite InternalPort, description, Enabled and lease; seed 000 §2.2.27):
 * here with the same InternalPort, or a disabled mapping (not on the carrier), or one being
 * disabled. The PCP mapping stays (same nonce). PortMappingEnabled (seed 000 §2.2.20) is a
 * phase: disabled = DISABLED, off the carrier; enabled again = MAP again (PREFER_FAILURE,
 * its nonce), answered when the carrier did. A stored mapping still waiting for the
 * start-up synchronisation is sent now: the owner is asking for it (user-triggered, seed
 * 004 §5.10). */
static void refresh(struct iwf_core *c, struct life *l, struct upnp_call *call, const struct upnp_pm_entry *pm,
		    uint32_t lease, int version, bool admin)
{
	char desc[STATE_DESC_MAX + 1];
	struct state_mapping m = *life_rec(c, l);
	if (admin) { /* the administrator re-adding a mapping makes it static (its own) */
		m.flags |= STATE_F_STATIC;
		memset(&m.owner, 0, sizeof(m.owner));
	}
	bool moved = m.internal_port != pm->internal_port;
	clean_description(desc, sizeof(desc), pm->description);
	m.description = desc;
	m.internal_port = pm->internal_port;
	m.lease_duration = lease;
	m.lease_end_ms = lease ? core_now(c) + (uint64_t)lease * 1000 : 0;
	m.flags = (uint8_t)(pm->enabled ? m.flags | STATE_F_ENABLED : m.flags & ~STATE_F_ENABLED);
	if (!pm->enabled) {
		/* Off the carrier (its flow, if any, is deleted with its nonce); kept and listed. */
		life_to(c, l, LIFE_DISABLED, &m, "disabled (PortMappingEnabled 0)");
		if (moved)
			nat_move(c, life_rec(c, l));
		answer_durable(c, call, 0, life_rec(c, l)->external_port);
		return;
	}
	if (l->phase == LIFE_DISABLED) {
		life_to(c, l, LIFE_REPLAYING, &m, "enabled again");
		if (moved)
			nat_move(c, life_rec(c, l));
		l->call = call;
		l->version = (uint8_t)version;
		if (!life_start_flow(c, l, true, c->cfg.answer_deadline_ms)) {
			l->call = NULL;
			life_to(c, l, LIFE_DISABLED, NULL, "cannot start its PCP request");
			answer_error(c, call, UPNP_E_ACTION_FAILED);
		}
		return; /* answered by pcp_events.c */
	}
	if (rec_update(c, &m))
		lease_arm(c, life_rec(c, l));
	if (l->flow) {
		pcp_flow_set_lifetime(c->pcp, l->flow, life_pcp_lifetime(c, life_rec(c, l)));
		pcp_flow_set_end(c->pcp, l->flow, life_rec(c, l)->lease_end_ms);
	}
	if (l->phase == LIFE_PENDING)
		sync_replay_one(c, l);
	answer_durable(c, call, 0, life_rec(c, l)->external_port);
}

/*
 * The same internal client re-adding its enabled mapping with another InternalPort: an
 * overwrite (WANIPConnection:1 §2.2.27, WANIPConnection:2 AddPortMapping: 718 is only for
 * another client). On the carrier a PCP mapping is its internal endpoint (RFC 6887 §11.1),
 * so the new InternalPort is another PCP mapping, and the external port is held by the old
 * one until it is deleted: the old mapping goes to DELETING (lifetime 0, its nonce; the call
 * waits on it) and the new one is stored as an intent beside it, with the same nonce and
 * no key yet (external port 0). When the carrier confirms the delete, pcp_events.c gives
 * the new one the external port and sends its MAP (PREFER_FAILURE); if the delete fails,
 * the old mapping is kept (the usual §5.9 rule) and the new one is dropped, never sent.
 */
static void overwrite(struct iwf_core *c, struct life *old, struct upnp_call *call, const struct upnp_pm_entry *pm,
		      uint32_t lease, int version, bool admin)
{
	const struct state_mapping *o = life_rec(c, old);
	char desc[STATE_DESC_MAX + 1];
	clean_description(desc, sizeof(desc), pm->description);
	struct state_mapping m = *o;
	m.id = 0;
	m.flags = (uint8_t)(STATE_F_INTENT | STATE_F_ENABLED | (admin ? STATE_F_STATIC : o->flags & STATE_F_STATIC));
	if (admin)
		memset(&m.owner, 0, sizeof(m.owner));
	m.external_port = 0; /* the old mapping holds the key until the carrier deleted it */
	m.internal_port = pm->internal_port;
	m.lease_duration = lease;
	m.lease_end_ms = lease ? core_now(c) + (uint64_t)lease * 1000 : 0;
	m.description = desc;
	memset(&m.external_addr, 0, sizeof(m.external_addr));
	if (o->router_port && !(m.router_port = router_port_pick(c, o->protocol, o->external_port))) {
		answer_error(c, call, igd(version, UPNP_E_ACTION_FAILED, UPNP_E_NO_PORT_MAPS_AVAILABLE));
		return;
	}
	uint32_t id;
	struct life *next;
	if (state_table_add(c->table, &m, &id) != STATE_OK) {
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	if (!(next = life_new(c, id, LIFE_ADDING))) {
		state_table_remove(c->table, id);
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	router_port_mark(c, m.protocol, m.router_port, true);
	c->overwrites++;
	old->call = call;
	old->version = (uint8_t)version;
	life_to(c, old, LIFE_DELETING, NULL, "overwritten with another internal port");
}

struct life *overwrite_of(struct iwf_core *c, const struct life *l)
{
	if (!c->overwrites)
		return NULL;
	const struct state_mapping *o = life_rec(c, l);
	size_t cur = 0;
	for (struct life *n; (n = life_next(c, &cur));) {
		const struct state_mapping *m = n != l && n->phase == LIFE_ADDING && !n->started ? life_rec(c, n) : NULL;
		if (m && !m->external_port && m->protocol == o->protocol &&
		    memcmp(&m->internal_client, &o->internal_client, sizeof(m->internal_client)) == 0 &&
		    memcmp(m->nonce, o->nonce, sizeof(m->nonce)) == 0) {
			c->overwrites--;
			return n;
		}
	}
	return NULL;
}

void core_add(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a, const struct in6_addr *from,
	      bool any, bool admin)
{
	int version = cp_version(c, a);
	const struct upnp_pm_entry *pm = &a->pm;
	uint8_t proto = (uint8_t)pm->protocol;
	char ftext[INET6_ADDRSTRLEN];
	addr_text(from, ftext, sizeof(ftext));
	struct in6_addr ic, rh;
	memset(&rh, 0, sizeof(rh));
	if (!pcp_addr_parse(&ic, pm->internal_client) || (pm->remote_host[0] && !pcp_addr_parse(&rh, pm->remote_host))) {
		answer_error(c, call, UPNP_E_INVALID_ARGS);
		return;
	}
	/* An IPv6 InternalClient only in mode nat64 (IPv6 LAN hosts behind a NAT64, mapped
	 * untranslated), and only an address the carrier can route to: else 402 Invalid Args. */
	if (!client_mappable(c, &ic)) {
		core_log(c, IWF_LOG_INFO, "%s asked a mapping for %s: %s -> 402", ftext, pm->internal_client,
			 pcp_addr_is_v4(&ic) ? "no host address"
			 : core_nat64(c)     ? "an IPv6 address the carrier cannot reach"
					     : "an IPv6 client needs NAT mode nat64");
		answer_error(c, call, UPNP_E_INVALID_ARGS);
		return;
	}
	/* seed 004 §7: IGD:1 default security, no mapping on behalf of a third party. The
	 * caller's address and the client's are compared in full (128 bits): an IPv4 caller
	 * asking for an IPv6 client, or the reverse, is a third party. */
	if (!admin && !c->cfg.allow_third_party && !addr_eq(&ic, from)) {
		core_log(c, IWF_LOG_INFO, "%s asked a mapping for %s: refused (third party)", ftext, pm->internal_client);
		answer_error(c, call, igd(version, UPNP_E_CONFLICT, UPNP_E_NOT_AUTHORIZED));
		return;
	}
	if (!any && !pm->external_port) {
		/* WANIPConnection:1/2 AddPortMapping: no wildcard external port (upnp/ answers
		 * this first; seed 004 §4.1: "not supported") - AddAnyPortMapping is for that. */
		answer_error(c, call, UPNP_E_WILDCARD_EXT_PORT);
		return;
	}
	uint16_t want = pm->external_port;
	if (!admin && !rules_permit(c, want, &ic, pm->internal_port)) {
		if (!any) {
			char in[ADDR_PORT_TEXT_MAX];
			core_log(c, IWF_LOG_INFO, "%s asked %s %u -> %s: refused by the permission rules", ftext,
				 proto_name(proto), want, addr_port_text(&ic, pm->internal_port, in, sizeof(in)));
			answer_error(c, call, igd(version, UPNP_E_CONFLICT, UPNP_E_NOT_AUTHORIZED));
			return;
		}
		want = 0; /* AddAny: let the carrier choose; the rules judge what it grants */
	}
	uint32_t lease = pm->lease_duration;
	if (!admin && c->cfg.igd_version == 2 && (lease == 0 || lease > IGD2_MAX_LEASE))
		lease = IGD2_MAX_LEASE;

	/* A PCP mapping is keyed by its internal endpoint (RFC 6887 §11.1): one external port
	 * per endpoint, unless the router's own NAT gives each mapping its own router port. */
	const struct state_mapping *same = iwf_nat_active(c->nat) ? NULL :
		state_table_find_internal(c->table, proto, &ic, pm->internal_port);
	if (same) {
		struct life *l = life_get(c, same->id);
		if (any && committed(l) && addr_eq(&same->remote_host, &rh) && !(same->flags & STATE_F_STATIC)) {
			refresh(c, l, call, pm, lease, version, false); /* the port it already has is the answer */
			return;
		}
		if (same->external_port != pm->external_port || !addr_eq(&same->remote_host, &rh)) {
			char in[ADDR_PORT_TEXT_MAX];
			core_log(c, IWF_LOG_INFO, "%s asked %s %u -> %s: that endpoint is mapped from port %u -> 718",
				 ftext, proto_name(proto), pm->external_port,
				 addr_port_text(&ic, pm->internal_port, in, sizeof(in)), same->external_port);
			answer_error(c, call, UPNP_E_CONFLICT);
			return;
		}
	}
	/* seed 004 §5.7.2 / Figure 6: the local table first. */
	const struct state_mapping *x = want ? state_table_find(c->table, proto, want, &rh) : NULL;
	if (x && !any) {
		struct life *l = life_get(c, x->id);
		/* The same internal client: an overwrite, not a conflict - but a control point
		 * never overwrites the administrator's static mapping. */
		if (committed(l) && addr_eq(&x->internal_client, &ic) && (admin || !(x->flags & STATE_F_STATIC))) {
			if (x->internal_port == pm->internal_port || l->phase == LIFE_DISABLED || !pm->enabled)
				refresh(c, l, call, pm, lease, version, admin);
			else
				overwrite(c, l, call, pm, lease, version, admin);
			return;
		}
		core_log(c, IWF_LOG_INFO, "%s asked %s %u: taken locally -> 718", ftext, proto_name(proto), want);
		answer_error(c, call, UPNP_E_CONFLICT);
		return;
	}
	if (x)
		want = 0; /* AddAny with a taken port: the server chooses another one */
	if (!pm->enabled && !want) {
		/* A disabled mapping is not sent to the carrier, so nobody chooses a port for it. */
		answer_error(c, call, UPNP_E_NO_PORT_MAPS_AVAILABLE);
		return;
	}
	/* One host cannot take the subscriber's whole carrier quota (docs/robustness.md): past
	 * its share, 728 NoPortMapsAvailable (IGD:1, which lacks that code: 501). */
	if (!admin && c->cfg.max_per_host && host_mappings(c, from) >= c->cfg.max_per_host) {
		core_log(c, IWF_LOG_WARN, "%s asked %s %u: it holds %u mappings, the per-host limit -> refused", ftext,
			 proto_name(proto), pm->external_port, c->cfg.max_per_host);
		answer_error(c, call, igd(version, UPNP_E_ACTION_FAILED, UPNP_E_NO_PORT_MAPS_AVAILABLE));
		return;
	}

	char desc[STATE_DESC_MAX + 1];
	clean_description(desc, sizeof(desc), pm->description);
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.flags = (uint8_t)(STATE_F_INTENT | (pm->enabled ? STATE_F_ENABLED : 0) | (admin ? STATE_F_STATIC : 0));
	m.external_port = want;
	m.internal_port = pm->internal_port;
	m.lease_duration = lease;
	m.lease_end_ms = lease ? core_now(c) + (uint64_t)lease * 1000 : 0;
	m.remote_host = rh;
	m.internal_client = ic;
	m.owner = *from;
	m.description = desc;
	c->env.random(c->env.arg, m.nonce, sizeof(m.nonce)); /* RFC 6887 §11.1, stored with it */
	if (iwf_nat_active(c->nat) && !(m.router_port = router_port_pick(c, proto, pm->external_port))) {
		answer_error(c, call, igd(version, UPNP_E_ACTION_FAILED, UPNP_E_NO_PORT_MAPS_AVAILABLE));
		return;
	}
	uint32_t id;
	struct life *l;
	/* Write-ahead intent: journalled (written, not yet synced) before the MAP leaves, so even
	 * a killed process leaves the next start the nonce to delete it with. */
	if (state_table_add(c->table, &m, &id) != STATE_OK) {
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	if (!(l = life_new(c, id, LIFE_ADDING))) {
		state_table_remove(c->table, id);
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	router_port_mark(c, proto, m.router_port, true);
	if (!pm->enabled) {
		/* PortMappingEnabled 0 (seed 000 §2.2.20): stored, listed and its port held against
		 * other hosts (§5.7.2), but not on the carrier: no MAP. */
		life_to(c, l, LIFE_DISABLED, NULL, "added disabled");
		answer_durable(c, call, 0, want);
		return;
	}
	l->any = any;
	l->call = call;
	l->version = (uint8_t)version;
	/* seed 004 §5.7.2: PREFER_FAILURE for AddPortMapping; §5.7.1: none for AddAny. */
	if (!life_start_flow(c, l, !any, c->cfg.answer_deadline_ms)) {
		l->call = NULL;
		life_to(c, l, LIFE_GONE, NULL, "cannot start its PCP request");
		answer_error(c, call, UPNP_E_ACTION_FAILED);
	}
}

void core_delete(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a, const struct in6_addr *from,
		 bool admin)
{
	struct in6_addr rh;
	memset(&rh, 0, sizeof(rh));
	if (a->pm.remote_host[0] && !pcp_addr_parse(&rh, a->pm.remote_host)) {
		answer_error(c, call, UPNP_E_NO_SUCH_ENTRY);
		return;
	}
	const struct state_mapping *x = state_table_find(c->table, (uint8_t)a->pm.protocol, a->pm.external_port, &rh);
	struct life *l = x ? life_get(c, x->id) : NULL;
	if (!committed(l)) {
		/* seed 004 §5.9 / Figure 9: not in the local table -> 714, no PCP traffic. */
		answer_error(c, call, UPNP_E_NO_SUCH_ENTRY);
		return;
	}
	if (!admin && (!may_touch(c, x, from) || (x->flags & STATE_F_STATIC))) {
		/* the administrator's static mappings are the administrator's to delete */
		answer_error(c, call, UPNP_E_NOT_AUTHORIZED);
		return;
	}
	if (l->phase == LIFE_DISABLED && !l->flow) {
		life_to(c, l, LIFE_GONE, NULL, "DeletePortMapping (disabled: not on the carrier)");
		answer_durable(c, call, 0, 0);
		return;
	}
	l->call = call;
	l->version = (uint8_t)cp_version(c, a);
	life_to(c, l, LIFE_DELETING, NULL, "DeletePortMapping");
}

void range_done(struct iwf_core *c, struct range_op *r, enum upnp_error e)
{
	if (e && !r->error)
		r->error = e;
	if (--r->remaining)
		return;
	if (r->error)
		answer_error(c, r->call, r->error);
	else
		answer_durable(c, r->call, 0, 0);
	free(r);
}

static void act_delete_range(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a,
			     const struct in6_addr *from)
{
	if (a->start_port > a->end_port) {
		answer_error(c, call, UPNP_E_INCONSISTENT_PARAMETERS);
		return;
	}
	uint8_t proto = (uint8_t)a->pm.protocol;
	size_t n = state_table_count(c->table), k = 0;
	uint32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	struct range_op *r = calloc(1, sizeof(*r));
	if (!ids || !r) {
		free(ids);
		free(r);
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	bool refused = false;
	for (size_t i = 0; i < n; i++) {
		const struct state_mapping *m = state_table_at(c->table, i);
		if (m->protocol != proto || m->external_port < a->start_port || m->external_port > a->end_port)
			continue;
		if (!in_scope(c, m, from, a->manage) || (m->flags & STATE_F_STATIC)) {
			refused = true;
			continue;
		}
		ids[k++] = m->id;
	}
	if (!k) {
		free(ids);
		free(r);
		/* seed 004 §5.9 / Figure 10 */
		answer_error(c, call, refused ? UPNP_E_NOT_AUTHORIZED : UPNP_E_PORT_MAPPING_NOT_FOUND);
		return;
	}
	r->call = call;
	r->remaining = 1; /* held until every delete is issued */
	for (size_t i = 0; i < k; i++) {
		struct life *l = life_get(c, ids[i]);
		if (!committed(l))
			continue;
		if (l->phase == LIFE_DISABLED && !l->flow) {
			life_to(c, l, LIFE_GONE, NULL, "DeletePortMappingRange (disabled: not on the carrier)");
			continue;
		}
		r->remaining++;
		l->range = r;
		l->version = (uint8_t)cp_version(c, a);
		life_to(c, l, LIFE_DELETING, NULL, "DeletePortMappingRange");
	}
	free(ids);
	range_done(c, r, 0);
}

static void act_list(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a,
		     const struct in6_addr *from)
{
	if (a->start_port > a->end_port) {
		answer_error(c, call, UPNP_E_INCONSISTENT_PARAMETERS);
		return;
	}
	uint8_t proto = (uint8_t)a->pm.protocol;
	size_t n = state_table_count(c->table), k = 0;
	size_t max = a->number_of_ports ? a->number_of_ports : n;
	struct upnp_pm_entry *list = calloc(n < max ? (n ? n : 1) : (max ? max : 1), sizeof(*list));
	if (!list) {
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	for (size_t i = 0; i < n && k < max; i++) {
		const struct state_mapping *m = state_table_at(c->table, i);
		if (m->protocol != proto || m->external_port < a->start_port || m->external_port > a->end_port ||
		    !in_scope(c, m, from, a->manage))
			continue;
		entry_to_upnp(c, m, &list[k++]);
	}
	if (!k)
		answer_error(c, call, UPNP_E_PORT_MAPPING_NOT_FOUND);
	else
		answer_now(c, call, &(struct upnp_reply){.list = list, .n_list = k});
	free(list);
}

/*
 * Right after start nobody knows yet whether the carrier answers: a control point starting
 * with the router would read "Disconnected" and no external address, and give up ("not
 * connected IGD"). So the first status question asks the PCP server (a user-triggered
 * probe, like an Add) and waits for its answer, at most answer_deadline_ms.
 */
static void status_wait(struct iwf_core *c, struct upnp_call *call, enum upnp_action action)
{
	struct status_wait *s = calloc(1, sizeof(*s));
	if (!s) {
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	s->call = call;
	s->action = action;
	s->next = c->status_waiters;
	c->status_waiters = s;
	if (c->status_deadline == UINT64_MAX) {
		c->status_deadline = core_now(c) + c->cfg.answer_deadline_ms;
		core_wakeup(c);
	}
	sync_probe(c);
}

static void act_read(struct iwf_core *c, struct upnp_call *call, enum upnp_action action,
		     const struct upnp_args *a);

void status_answer_waiting(struct iwf_core *c, bool deadline_passed)
{
	if (!c->status_waiters || (!deadline_passed && !c->reach_known))
		return;
	struct status_wait *s = c->status_waiters;
	c->status_waiters = NULL;
	c->status_deadline = deadline_passed ? 0 : UINT64_MAX; /* 0: no more waiting after a silent deadline */
	struct upnp_args none;
	memset(&none, 0, sizeof(none));
	while (s) {
		struct status_wait *next = s->next;
		act_read(c, s->call, s->action, &none);
		free(s);
		s = next;
	}
	c->status_deadline = UINT64_MAX;
	if (deadline_passed)
		c->reach_known = true;
}

/* Everything else reads iwf's state and never causes PCP traffic (seed 004 §5.8). */
static void act_read(struct iwf_core *c, struct upnp_call *call, enum upnp_action action,
		     const struct upnp_args *a)
{
	struct upnp_reply r;
	char ext[INET6_ADDRSTRLEN];
	memset(&r, 0, sizeof(r));
	switch (action) {
	case UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY: {
		struct in6_addr rh;
		memset(&rh, 0, sizeof(rh));
		const struct state_mapping *m = NULL;
		if (!a->pm.remote_host[0] || pcp_addr_parse(&rh, a->pm.remote_host))
			m = state_table_find(c->table, (uint8_t)a->pm.protocol, a->pm.external_port, &rh);
		if (!m || (m->flags & STATE_F_INTENT)) {
			answer_error(c, call, UPNP_E_NO_SUCH_ENTRY);
			return;
		}
		entry_to_upnp(c, m, &r.pm);
		break;
	}
	case UPNP_ACT_GET_GENERIC_PORT_MAPPING_ENTRY: {
		const struct state_mapping *m = state_table_at(c->table, a->index);
		if (!m) {
			answer_error(c, call, UPNP_E_ARRAY_INDEX_INVALID);
			return;
		}
		entry_to_upnp(c, m, &r.pm);
		break;
	}
	case UPNP_ACT_GET_EXTERNAL_IP_ADDRESS:
	case UPNP_ACT_GET_STATUS_INFO:
		if (!c->reach_known && c->status_deadline != 0) {
			status_wait(c, call, action);
			return;
		}
		if (action == UPNP_ACT_GET_EXTERNAL_IP_ADDRESS) {
			r.external_ip = addr_text(&c->external, ext, sizeof(ext));
			break;
		}
		r.connection_status = c->connected ? "Connected" : "Disconnected";
		r.last_connection_error = "ERROR_NONE";
		r.uptime = c->connected ? (uint32_t)((core_now(c) - c->connected_since) / 1000) : 0;
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
		answer_error(c, call, igd(cp_version(c, a), UPNP_E_ACTION_FAILED, UPNP_E_READ_ONLY)); /* seed 004 §4.2 */
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
		answer_error(c, call, igd(cp_version(c, a), UPNP_E_ACTION_FAILED, UPNP_E_NOT_AUTHORIZED)); /* seed 004 §4.2 */
		return;
	case UPNP_ACT_GET_PASSWORD:
		answer_error(c, call, UPNP_E_NOT_AUTHORIZED);
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
		r.physical_link_status = c->connected ? "Up" : "Down";
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
		answer_error(c, call, UPNP_E_INVALID_ACTION);
		return;
	}
	answer_now(c, call, &r);
}

void iwf_core_action(struct iwf_core *c, struct upnp_call *call, enum upnp_action action,
		     const struct upnp_args *args, const struct sockaddr *from_sa)
{
	struct in6_addr from;
	from_addr(from_sa, &from);
	if ((unsigned)action < UPNP_ACT__COUNT)
		c->stats.actions[action]++;
	if (c->cfg.log_level >= IWF_LOG_DEBUG) {
		char text[INET6_ADDRSTRLEN];
		core_log(c, IWF_LOG_DEBUG, "%s from %s", upnp_action_name(action), addr_text(&from, text, sizeof(text)));
	}
	switch (action) {
	case UPNP_ACT_ADD_PORT_MAPPING:
		core_add(c, call, args, &from, false, false);
		return;
	case UPNP_ACT_ADD_ANY_PORT_MAPPING:
		core_add(c, call, args, &from, true, false);
		return;
	case UPNP_ACT_DELETE_PORT_MAPPING:
		core_delete(c, call, args, &from, false);
		return;
	case UPNP_ACT_DELETE_PORT_MAPPING_RANGE:
		act_delete_range(c, call, args, &from);
		return;
	case UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS:
		act_list(c, call, args, &from);
		return;
	default:
		act_read(c, call, action, args);
		return;
	}
}
