/*
 * mappings.c - the registry of mappings and their ONE transition function (life_to), which
 * also journals the record, notifies UPnP/GENA (SystemUpdateID, PortMappingNumberOfEntries)
 * and arms the lease timer; the group commit of UPnP answers; the core's entry points.
 */
#include "core_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[LIFE_PHASE_COUNT] = {
	[LIFE_PENDING] = "pending",   [LIFE_ADDING] = "adding",   [LIFE_ACTIVE] = "active",
	[LIFE_REPLAYING] = "replaying", [LIFE_DELETING] = "deleting", [LIFE_DISCARD] = "discard",
	[LIFE_DISABLED] = "disabled", [LIFE_GONE] = "gone",
};

const char *life_phase_name(enum life_phase p)
{
	return (unsigned)p < LIFE_PHASE_COUNT ? phase_names[p] : "?";
}

/* ------------------------------------------------------------------ small helpers */

void core_log(struct iwf_core *c, enum iwf_log_level level, const char *fmt, ...)
{
	if (!c->env.log || level > c->cfg.log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	c->env.log(c->env.arg, level, fmt, ap);
	va_end(ap);
}

uint64_t core_now(const struct iwf_core *c)
{
	return c->env.mono_ms(c->env.arg);
}

const char *proto_name(uint8_t p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : "?";
}

bool addr_is_any(const struct in6_addr *a)
{
	static const struct in6_addr zero;
	return memcmp(a, &zero, sizeof(zero)) == 0 ||
	       (IN6_IS_ADDR_V4MAPPED(a) && memcmp(&a->s6_addr[12], "\0\0\0\0", 4) == 0);
}

bool rules_permit(const struct iwf_core *c, uint16_t ext_port, const struct in6_addr *client, uint16_t int_port)
{
	if (!pcp_addr_is_v4(client)) {
		/* An IPv6 client (mode nat64) is in no IPv4 prefix but the whole space: only the
		 * rules for every client apply (its low 32 bits are no IPv4 address). */
		struct iwf_rule any[IWF_MAX_RULES];
		size_t n = 0;
		for (size_t i = 0; i < c->cfg.n_rules && n < IWF_MAX_RULES; i++)
			if (c->cfg.rules[i].prefix == 0)
				any[n++] = c->cfg.rules[i];
		return iwf_rules_permit(any, n, ext_port, 0, int_port);
	}
	const uint8_t *b = &client->s6_addr[12];
	uint32_t v4 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return iwf_rules_permit(c->cfg.rules, c->cfg.n_rules, ext_port, v4, int_port);
}

const char *addr_port_text(const struct in6_addr *a, uint16_t port, char *buf, size_t cap)
{
	char t[INET6_ADDRSTRLEN];
	addr_text(a, t, sizeof(t));
	bool v6 = !pcp_addr_is_v4(a);
	snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", t, v6 ? "]" : "", port);
	return buf;
}

bool core_nat64(const struct iwf_core *c)
{
	return strcmp(c->cfg.nat_mode, "nat64") == 0;
}

bool client_mappable(const struct iwf_core *c, const struct in6_addr *ic)
{
	if (pcp_addr_is_v4(ic))
		return !addr_is_any(ic);
	const uint8_t *b = ic->s6_addr;
	return core_nat64(c) && b[0] != 0 && b[0] != 0xff && !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

const char *addr_text(const struct in6_addr *a, char *buf, size_t cap)
{
	if (addr_is_any(a)) {
		buf[0] = '\0';
		return buf;
	}
	return pcp_addr_format(a, buf, cap);
}

void core_wakeup(struct iwf_core *c)
{
	if (!c->woken) {
		c->woken = true;
		c->env.wakeup(c->env.arg);
	}
}

/* ------------------------------------------------------------------ id -> life */

static size_t slot_of(uint32_t id, size_t cap)
{
	return (size_t)(id * 2654435761u) & (cap - 1);
}

#define TOMBSTONE ((struct life *)(uintptr_t)1)

/*
 * Lives come from blocks of LIFE_BLOCK and are recycled through a free list: malloc would
 * add 16 bytes to each 32-byte life (docs/performance.md). Under AddressSanitizer each is
 * its own allocation, so that a use after free is still caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LIFE_SLAB 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIFE_SLAB 0
#endif
#endif
#ifndef LIFE_SLAB
#define LIFE_SLAB 1
#endif
#define LIFE_BLOCK 128

struct life_block {
	struct life_block *next;
	struct life lives[LIFE_BLOCK];
};

static struct life *life_alloc(struct iwf_core *c)
{
	if (!LIFE_SLAB)
		return calloc(1, sizeof(struct life));
	if (!c->spare_lives) {
		struct life_block *b = malloc(sizeof(*b));
		if (!b)
			return NULL;
		b->next = c->life_blocks;
		c->life_blocks = b;
		for (size_t i = LIFE_BLOCK; i-- > 0;) {
			b->lives[i].next_spare = c->spare_lives;
			c->spare_lives = &b->lives[i];
		}
	}
	struct life *l = c->spare_lives;
	c->spare_lives = l->next_spare;
	memset(l, 0, sizeof(*l));
	return l;
}

static void life_free(struct iwf_core *c, struct life *l)
{
	if (!LIFE_SLAB) {
		free(l);
		return;
	}
	l->next_spare = c->spare_lives;
	c->spare_lives = l;
}

static bool lives_grow(struct iwf_core *c)
{
	size_t ncap = c->lives_cap ? c->lives_cap * 2 : 64;
	if (c->lives_n * 2 < c->lives_cap)
		ncap = c->lives_cap; /* only tombstones: rehash in place size */
	struct life **nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return false;
	for (size_t i = 0; i < c->lives_cap; i++) {
		struct life *l = c->lives[i];
		if (!l || l == TOMBSTONE)
			continue;
		size_t s = slot_of(l->id, ncap);
		while (nv[s])
			s = (s + 1) & (ncap - 1);
		nv[s] = l;
	}
	free(c->lives);
	c->lives = nv;
	c->lives_cap = ncap;
	c->lives_used = c->lives_n;
	return true;
}

struct life *life_get(struct iwf_core *c, uint32_t id)
{
	if (!c->lives_cap)
		return NULL;
	for (size_t s = slot_of(id, c->lives_cap);; s = (s + 1) & (c->lives_cap - 1)) {
		struct life *l = c->lives[s];
		if (!l)
			return NULL;
		if (l != TOMBSTONE && l->id == id)
			return l;
	}
}

/* ------------------------------------------------------------------ per-host counts */

static size_t host_slot(const struct in6_addr *a, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < 16; i++)
		h = (h ^ a->s6_addr[i]) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 29) & (cap - 1);
}

static struct host_count *host_find(const struct iwf_core *c, const struct in6_addr *a)
{
	if (!c->hosts_cap)
		return NULL;
	for (size_t s = host_slot(a, c->hosts_cap);; s = (s + 1) & (c->hosts_cap - 1)) {
		struct host_count *h = &c->hosts[s];
		if (h->n == UINT32_MAX) /* never used */
			return NULL;
		if (memcmp(&h->addr, a, sizeof(*a)) == 0)
			return h;
	}
}

uint32_t host_mappings(const struct iwf_core *c, const struct in6_addr *owner)
{
	const struct host_count *h = host_find(c, owner);
	return h ? h->n : 0;
}

/* Count one more (+1) or one less (-1) mapping for owner (:: - static - is not counted). */
static void host_adjust(struct iwf_core *c, const struct in6_addr *owner, int d)
{
	if (addr_is_any(owner))
		return;
	struct host_count *h = host_find(c, owner);
	if (!h && d > 0) {
		if ((c->hosts_n + 1) * 4 > c->hosts_cap * 3) {
			size_t ncap = c->hosts_cap ? c->hosts_cap * 2 : 16;
			struct host_count *nv = malloc(ncap * sizeof(*nv));
			if (!nv)
				return; /* not counted: the limit is a little lenient under memory pressure */
			for (size_t i = 0; i < ncap; i++)
				nv[i].n = UINT32_MAX;
			for (size_t i = 0; i < c->hosts_cap; i++) {
				if (c->hosts[i].n == UINT32_MAX)
					continue;
				size_t s = host_slot(&c->hosts[i].addr, ncap);
				while (nv[s].n != UINT32_MAX)
					s = (s + 1) & (ncap - 1);
				nv[s] = c->hosts[i];
			}
			free(c->hosts);
			c->hosts = nv;
			c->hosts_cap = ncap;
		}
		size_t s = host_slot(owner, c->hosts_cap);
		while (c->hosts[s].n != UINT32_MAX)
			s = (s + 1) & (c->hosts_cap - 1);
		h = &c->hosts[s];
		h->addr = *owner;
		h->n = 0;
		c->hosts_n++;
	}
	if (!h)
		return;
	if (d > 0)
		h->n++;
	else if (h->n > 0)
		h->n--;
}

struct life *life_new(struct iwf_core *c, uint32_t id, enum life_phase phase)
{
	if ((c->lives_used + 1) * 4 >= c->lives_cap * 3 && !lives_grow(c))
		return NULL;
	struct life *l = life_alloc(c);
	if (!l)
		return NULL;
	l->id = id;
	l->phase = (uint8_t)phase;
	size_t s = slot_of(id, c->lives_cap);
	while (c->lives[s] && c->lives[s] != TOMBSTONE)
		s = (s + 1) & (c->lives_cap - 1);
	if (!c->lives[s])
		c->lives_used++;
	c->lives[s] = l;
	c->lives_n++;
	const struct state_mapping *m = state_table_get(c->table, id);
	if (m)
		host_adjust(c, &m->owner, +1);
	return l;
}

static void life_unregister(struct iwf_core *c, struct life *l)
{
	for (size_t s = slot_of(l->id, c->lives_cap);; s = (s + 1) & (c->lives_cap - 1)) {
		if (c->lives[s] == l) {
			c->lives[s] = TOMBSTONE;
			c->lives_n--;
			return;
		}
	}
}

struct life *life_next(struct iwf_core *c, size_t *cursor)
{
	while (*cursor < c->lives_cap) {
		struct life *l = c->lives[(*cursor)++];
		if (l && l != TOMBSTONE)
			return l;
	}
	return NULL;
}

const struct state_mapping *life_rec(const struct iwf_core *c, const struct life *l)
{
	return state_table_get(c->table, l->id);
}

/* ------------------------------------------------------------------ leases */

uint32_t lease_left_s(const struct iwf_core *c, const struct state_mapping *m)
{
	if (!m->lease_end_ms)
		return 0;
	uint64_t now = core_now(c);
	if (m->lease_end_ms <= now)
		return 1;
	uint64_t left = (m->lease_end_ms - now + 999) / 1000;
	return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

uint32_t life_pcp_lifetime(const struct iwf_core *c, const struct state_mapping *m)
{
	uint32_t life = c->cfg.pcp_lifetime;
	uint32_t left = lease_left_s(c, m);
	if (m->lease_end_ms && left < life)
		life = left;
	return life ? life : 1;
}

/* ------------------------------------------------------------------ what UPnP sees */

void iwf_core_state(const struct iwf_core *c, struct upnp_state *out, char *ext, size_t cap)
{
	memset(out, 0, sizeof(*out));
	out->connection_status = c->connected ? "Connected" : "Disconnected";
	out->external_ip = addr_text(&c->external, ext, cap);
	out->port_mapping_number_of_entries = (uint32_t)state_table_count(c->table);
	out->system_update_id = c->system_update_id;
	out->possible_connection_types = "IP_Routed";
}

void push_state(struct iwf_core *c)
{
	char ext[INET6_ADDRSTRLEN];
	struct upnp_state st;
	iwf_core_state(c, &st, ext, sizeof(ext));
	c->env.set_state(c->env.arg, &st);
}

void table_changed(struct iwf_core *c)
{
	c->system_update_id++;
	struct state_meta meta = *state_table_meta(c->table);
	meta.system_update_id = c->system_update_id;
	state_table_set_meta(c->table, &meta);
	push_state(c);
}

void set_connected(struct iwf_core *c, bool up)
{
	if (up == c->connected)
		return;
	c->connected = up;
	if (up)
		c->connected_since = core_now(c);
	core_log(c, up ? IWF_LOG_INFO : IWF_LOG_WARN, "PCP server %s",
		 up ? "answers: UPnP ConnectionStatus is Connected"
		    : "does not answer: UPnP ConnectionStatus is Disconnected, new mappings get 501");
	push_state(c);
}

void learn_external(struct iwf_core *c, const struct in6_addr *a)
{
	if (addr_is_any(a) || memcmp(a, &c->external, sizeof(*a)) == 0)
		return;
	char text[INET6_ADDRSTRLEN];
	c->external = *a;
	core_log(c, IWF_LOG_INFO, "external address (from the PCP server): %s", addr_text(a, text, sizeof(text)));
	push_state(c);
}

/* ------------------------------------------------------------------ answers */

void answer_now(struct iwf_core *c, struct upnp_call *call, const struct upnp_reply *r)
{
	if (call && !admin_answer(c, call, 0, r->reserved_port))
		c->env.reply(c->env.arg, call, r);
}

static void count_error(struct iwf_core *c, enum upnp_error e)
{
	c->stats.errors_total++;
	size_t i = 0;
	while (i + 1 < IWF_STATS_ERROR_CODES && c->stats.errors[i].code && c->stats.errors[i].code != e)
		i++;
	if (!c->stats.errors[i].code)
		c->stats.errors[i].code = (uint16_t)e;
	c->stats.errors[i].n++;
}

void answer_error(struct iwf_core *c, struct upnp_call *call, enum upnp_error e)
{
	if (!call || admin_answer(c, call, e, 0))
		return;
	count_error(c, e);
	c->env.error(c->env.arg, call, e);
}

void answer_durable(struct iwf_core *c, struct upnp_call *call, enum upnp_error e, uint16_t reserved_port)
{
	if (!call)
		return;
	struct deferred *d = calloc(1, sizeof(*d));
	if (!d) {
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	d->call = call;
	d->error = e;
	d->reserved_port = reserved_port;
	*c->deferred_tail = d;
	c->deferred_tail = &d->next;
	core_wakeup(c);
}

/* Group commit: one sync for everything journalled since the last run, then the answers
 * that waited for it (a crash can no longer undo what a control point was told). */
static void flush(struct iwf_core *c)
{
	char detail[256];
	enum state_err e = state_table_sync(c->table, detail, sizeof(detail));
	if (e != STATE_OK)
		core_log(c, IWF_LOG_ERROR, "state not saved (%s): %s; still serving", state_err_name(e), detail);
	struct deferred *d = c->deferred_head;
	c->deferred_head = NULL;
	c->deferred_tail = &c->deferred_head;
	while (d) {
		struct deferred *next = d->next;
		if (d->error)
			answer_error(c, d->call, d->error);
		else
			answer_now(c, d->call, &(struct upnp_reply){.reserved_port = d->reserved_port});
		free(d);
		d = next;
	}
}

/* ------------------------------------------------------------------ cascaded NAT ports */

static uint8_t *port_bits(struct iwf_core *c, uint8_t proto)
{
	int k = proto == 6 ? 0 : 1;
	if (!c->router_ports[k])
		c->router_ports[k] = calloc(65536 / 8, 1);
	return c->router_ports[k];
}

void router_port_mark(struct iwf_core *c, uint8_t proto, uint16_t port, bool used)
{
	uint8_t *b = port ? port_bits(c, proto) : NULL;
	if (!b)
		return;
	if (used)
		b[port / 8] = (uint8_t)(b[port / 8] | (1u << (port % 8)));
	else
		b[port / 8] = (uint8_t)(b[port / 8] & ~(1u << (port % 8)));
}

uint16_t router_port_pick(struct iwf_core *c, uint8_t proto, uint16_t wanted)
{
	uint8_t *b = port_bits(c, proto);
	if (!b)
		return 0;
	uint32_t lo = c->cfg.nat_port_min, hi = c->cfg.nat_port_max, span = hi - lo + 1;
	uint32_t start = wanted >= lo && wanted <= hi ? wanted : lo;
	for (uint32_t k = 0; k < span; k++) {
		uint16_t port = (uint16_t)(lo + (start - lo + k) % span);
		if (b[port / 8] & (1u << (port % 8)))
			continue;
		/* one of the router's own services (e.g. TR-069's 7547) is never handed out */
		if (iwf_nat_active(c->nat) && iwf_nat_port_local(proto, port))
			continue;
		return port;
	}
	return 0;
}

static void nat_apply(struct iwf_core *c, const struct state_mapping *m, bool add)
{
	if (!m->router_port)
		return;
	char detail[256], client[INET6_ADDRSTRLEN];
	int rc = add ? iwf_nat_add(c->nat, m->protocol, m->router_port,
				  addr_text(&m->internal_client, client, sizeof(client)), m->internal_port,
				  detail, sizeof(detail))
		     : iwf_nat_remove(c->nat, m->protocol, m->router_port, detail, sizeof(detail));
	if (rc != 0)
		core_log(c, IWF_LOG_ERROR, "router NAT (nftables DNAT): %s", detail);
}

/* ------------------------------------------------------------------ records */

bool rec_update(struct iwf_core *c, const struct state_mapping *m)
{
	const struct state_mapping *old = state_table_get(c->table, m->id);
	struct in6_addr was = old ? old->owner : in6addr_any;
	enum state_err e = state_table_update(c->table, m);
	if (e == STATE_OK && old && memcmp(&was, &m->owner, sizeof(was)) != 0) {
		host_adjust(c, &was, -1);
		host_adjust(c, &m->owner, +1);
	}
	if (e != STATE_OK) {
		core_log(c, IWF_LOG_ERROR, "mapping %s external port %u: not written to the state journal (%s)", proto_name(m->protocol),
			 m->external_port, state_err_name(e));
		return false;
	}
	return true;
}

bool life_start_flow(struct iwf_core *c, struct life *l, bool prefer_failure, uint32_t deadline_ms)
{
	const struct state_mapping *m = life_rec(c, l);
	struct pcp_map_params p;
	memset(&p, 0, sizeof(p));
	p.protocol = m->protocol;
	if (m->router_port) {
		/* seed 004 §5.6: the router's own address (the source of our requests, no
		 * THIRD_PARTY) and the port its NAT gave. */
		p.internal_port = m->router_port;
	} else {
		/* seed 004 §5.5, no NAT in the CP router: the internal address is the LAN host's,
		 * not the one our requests leave with -> THIRD_PARTY (RFC 6887 §13.1). An IPv6 host
		 * (mode nat64) is its own address on the carrier too: the router routes IPv6 and the
		 * NAT64 maps it onto an IPv4 port (RFC 6146), so the same rule holds. */
		p.internal_addr = m->internal_client;
		if (c->cfg.clat_prefix_len && pcp_addr_is_v4(&m->internal_client))
			/* 464XLAT CPE (RFC 6877 §6.3): an IPv4 host as its stateless CLAT shows it
			 * to the PLAT; the port is kept */
			iwf_nat_clat_addr(&c->cfg.clat_prefix, c->cfg.clat_prefix_len, &m->internal_client,
					  &p.internal_addr);
		p.internal_port = m->internal_port;
		p.third_party = true;
	}
	p.suggested_port = m->external_port;
	p.suggested_addr = m->external_addr;
	if ((c->cfg.clat_prefix_len || core_nat64(c)) && addr_is_any(&p.suggested_addr))
		/* NAT64: an IPv4 external address for an IPv6 internal one, "no preference" in the
		 * IPv4 family (RFC 6887 §11.1 and §5: ::ffff:0.0.0.0) */
		p.suggested_addr.s6_addr[10] = p.suggested_addr.s6_addr[11] = 0xff;
	p.lifetime = life_pcp_lifetime(c, m);
	p.prefer_failure = prefer_failure;
	if (!addr_is_any(&m->remote_host)) {
		/* RemoteHost -> FILTER (RFC 6887 §13.3): that remote address, all its ports. */
		p.n_filters = 1;
		p.filters[0].addr = m->remote_host;
		p.filters[0].prefix_len = 128;
	}
	p.nonce = m->nonce; /* made and stored by us (state/), RFC 6887 §11.1 */
	p.answer_deadline_ms = deadline_ms;
	if (l->flow)
		pcp_flow_abandon(c->pcp, l->flow);
	l->flow = pcp_flow_map(c->pcp, &p, l, core_now(c));
	if (l->flow)
		pcp_flow_set_end(c->pcp, l->flow, m->lease_end_ms); /* renewals never outlast the lease */
	l->started = l->flow != NULL;
	return l->flow != NULL;
}

/* ------------------------------------------------------------------ THE transition */

static bool phase_committed(enum life_phase p)
{
	return p == LIFE_PENDING || p == LIFE_ACTIVE || p == LIFE_REPLAYING || p == LIFE_DISABLED;
}

/*
 * Move l to phase `to`. upd (may be NULL) carries new record contents to journal with it
 * (the flags are set here). Side effects by target:
 *  - PENDING / ACTIVE / REPLAYING: the record is committed (journalled; the router's DNAT
 *    installed; SystemUpdateID and evented state) and its lease armed;
 *  - DISABLED: committed like ACTIVE (listed with PortMappingEnabled 0, its key held) but
 *    not on the carrier: a flow it had is deleted (lifetime 0, its nonce, retransmitted
 *    until confirmed); from ADDING or DISABLED nothing is sent (nothing is on the carrier);
 *  - DELETING / DISCARD: the record is withdrawn (still stored, as an intent, so a crash
 *    before the carrier confirms still deletes it at the next start; the DNAT removed;
 *    evented) and a lifetime-0 MAP with its nonce is sent - once the start-up wait is over;
 *  - GONE: the record is removed from the table and the journal, the life freed.
 */
void life_to(struct iwf_core *c, struct life *l, enum life_phase to, const struct state_mapping *upd,
	     const char *why)
{
	const struct state_mapping *cur = life_rec(c, l);
	if (!cur)
		return;
	struct state_mapping m = upd ? *upd : *cur;
	enum life_phase from = (enum life_phase)l->phase;
	bool was_committed = !(cur->flags & STATE_F_INTENT);
	uint64_t old_end = cur->lease_end_ms;
	char ic[ADDR_PORT_TEXT_MAX];
	addr_port_text(&m.internal_client, m.internal_port, ic, sizeof(ic));
	core_log(c, IWF_LOG_DEBUG, "mapping %s external port %u -> %s: %s -> %s (%s)", proto_name(m.protocol),
		 m.external_port, ic, life_phase_name(from), life_phase_name(to), why);
	l->phase = (uint8_t)to;
	switch (to) {
	case LIFE_PENDING:
	case LIFE_ACTIVE:
	case LIFE_REPLAYING:
		m.flags &= (uint8_t)~STATE_F_INTENT;
		if (upd || !was_committed)
			rec_update(c, &m);
		if (!was_committed) {
			nat_apply(c, &m, true);
			table_changed(c);
		}
		/* a committed record's lease is armed already unless its end moved (re-arming
		 * every transition made a restore of 10,000 quadratic: bench, docs/performance.md) */
		if (!was_committed || m.lease_end_ms != old_end)
			lease_arm(c, life_rec(c, l));
		return;
	case LIFE_DISABLED:
		m.flags &= (uint8_t)~(STATE_F_INTENT | STATE_F_ENABLED);
		if (upd || !was_committed || m.flags != cur->flags)
			rec_update(c, &m);
		if (!was_committed) {
			nat_apply(c, &m, true);
			table_changed(c);
		}
		lease_arm(c, life_rec(c, l));
		if (from == LIFE_ADDING || from == LIFE_DISABLED)
			return;
		if (!l->flow && !life_start_flow(c, l, false, 0))
			return; /* nothing to delete it with; the carrier's mapping ends with its lifetime */
		pcp_flow_delete(c->pcp, l->flow, PCP_DELETE_NO_DEADLINE, core_now(c));
		return;
	case LIFE_DELETING:
	case LIFE_DISCARD:
		m.flags |= STATE_F_INTENT;
		if (upd || was_committed)
			rec_update(c, &m);
		if (was_committed) {
			nat_apply(c, &m, false);
			table_changed(c);
		}
		if (to == LIFE_DISCARD && !c->synced && !l->flow)
			return; /* PCP_SERVICE_WAIT: sync.c sends it when the wait is over */
		if (!l->flow && !life_start_flow(c, l, false, 0)) {
			life_to(c, l, LIFE_GONE, NULL, "cannot start its PCP delete");
			return;
		}
		/* A control point's Delete waits at most USER_DELETE_DEADLINE_MS (then 501 and the
		 * mapping is kept); a delete iwfd decides itself is retransmitted until the server
		 * confirms it: giving up would leave an orphan on the carrier. */
		pcp_flow_delete(c->pcp, l->flow, to == LIFE_DELETING ? USER_DELETE_DEADLINE_MS : PCP_DELETE_NO_DEADLINE,
				core_now(c));
		return;
	case LIFE_GONE:
		if (l->flow)
			pcp_flow_abandon(c->pcp, l->flow);
		l->flow = NULL;
		if (was_committed)
			nat_apply(c, cur, false);
		router_port_mark(c, cur->protocol, cur->router_port, false);
		if (phase_committed(from) || was_committed)
			core_log(c, IWF_LOG_INFO, "mapping %s external port %u -> %s removed (%s)", proto_name(m.protocol),
				 m.external_port, ic, why);
		host_adjust(c, &cur->owner, -1);
		state_table_remove(c->table, l->id);
		if (was_committed)
			table_changed(c);
		life_unregister(c, l);
		life_free(c, l);
		return;
	case LIFE_ADDING:
	case LIFE_PHASE_COUNT:
		return; /* ADDING is only entered at creation (actions.c) */
	}
}

/* ------------------------------------------------------------------ entry points */

static void pcp_random(void *arg, void *buf, size_t len)
{
	struct iwf_core *c = arg;
	c->env.random(c->env.arg, buf, len);
}

struct iwf_core *iwf_core_new(const struct iwf_config *cfg, const struct iwf_env *env,
			      struct state_table *table, struct iwf_nat *nat)
{
	struct iwf_core *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->env = *env;
	c->table = table;
	c->nat = nat;
	c->deferred_tail = &c->deferred_head;
	c->start_at = UINT64_MAX;
	c->replay_next = UINT64_MAX;
	c->replay_last = UINT64_MAX;
	c->replay_credit = 1000; /* the first one at once */
	c->status_deadline = UINT64_MAX;
	struct pcp_client_config pc = {
		.announce_spread_ms = cfg->announce_spread_s * 1000,
		.random = pcp_random,
		.random_arg = c,
		.on_event = pcp_event_fn,
		.event_arg = c,
	};
	c->pcp = pcp_client_new(&pc);
	if (!c->pcp) {
		free(c);
		return NULL;
	}
	c->system_update_id = state_table_meta(table)->system_update_id;
	sync_load(c);
	return c;
}

void iwf_core_free(struct iwf_core *c)
{
	if (!c)
		return;
	size_t cur = 0;
	for (struct life *l; (l = life_next(c, &cur));) {
		answer_error(c, l->call, UPNP_E_ACTION_FAILED);
		l->call = NULL;
		if (l->range)
			range_done(c, l->range, UPNP_E_ACTION_FAILED);
		l->range = NULL;
	}
	status_answer_waiting(c, true);
	flush(c);
	admin_free_all(c);
	pcp_client_free(c->pcp); /* flows and their user pointers go with it */
	cur = 0;
	for (struct life *l; (l = life_next(c, &cur));)
		life_free(c, l);
	while (c->life_blocks) {
		struct life_block *b = c->life_blocks;
		c->life_blocks = b->next;
		free(b);
	}
	state_table_sync(c->table, NULL, 0);
	free(c->lives);
	free(c->hosts);
	free(c->leases);
	free(c->replay_q);
	free(c->router_ports[0]);
	free(c->router_ports[1]);
	free(c);
}

struct pcp_client *iwf_core_pcp(struct iwf_core *c)
{
	return c->pcp;
}

void iwf_core_run(struct iwf_core *c)
{
	c->woken = false;
	uint64_t now = core_now(c);
	sync_run(c, now);
	leases_run(c, now);
	flush(c);
}

uint64_t iwf_core_next_deadline(const struct iwf_core *c)
{
	uint64_t next = leases_next((struct iwf_core *)c);
	uint64_t s = sync_next_deadline(c);
	return s < next ? s : next;
}

void iwf_core_counters(const struct iwf_core *c, struct iwf_core_counters *out)
{
	*out = (struct iwf_core_counters){
		.mappings = c->lives_n,
		.lease_slots = c->leases_n,
		.lease_compactions = c->lease_compactions,
	};
}

void iwf_core_set_rules(struct iwf_core *c, const struct iwf_rule *rules, size_t n)
{
	if (n > IWF_MAX_RULES)
		n = IWF_MAX_RULES;
	memcpy(c->cfg.rules, rules, n * sizeof(*rules));
	c->cfg.n_rules = n;
}
