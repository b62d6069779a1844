/*
 * sync.c - synchronisation with the PCP server (seed 004 §5.10): the stored table at start,
 * PCP_SERVICE_WAIT, the paced replay of stored mappings with their stored nonces, the
 * deletion of stored intents, and the external-address probe (§4.1).
 */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#define REPLAY_TICK_MS 100

/* Every record of the table (loaded from the journal) becomes a mapping of the core: a
 * committed one holds its key at once (UPnP reads work immediately) and waits for the
 * replay; an intent (a MAP that was in flight at the last stop) waits for its delete. */
void sync_load(struct iwf_core *c)
{
	size_t cur = 0, committed = 0, intents = 0;
	for (const struct state_mapping *m; (m = state_table_next(c->table, &cur));) {
		bool intent = m->flags & STATE_F_INTENT;
		/* A disabled mapping is not on the carrier: never replayed. */
		enum life_phase ph = intent ? LIFE_DISCARD : m->flags & STATE_F_ENABLED ? LIFE_PENDING : LIFE_DISABLED;
		if (!life_new(c, m->id, ph)) {
			core_log(c, IWF_LOG_ERROR, "out of memory restoring mappings");
			break;
		}
		router_port_mark(c, m->protocol, m->router_port, true);
		if (intent) {
			intents++;
			continue;
		}
		committed++;
		if (m->router_port) {
			char client[INET6_ADDRSTRLEN], detail[256];
			if (iwf_nat_add(c->nat, m->protocol, m->router_port,
					addr_text(&m->internal_client, client, sizeof(client)), m->internal_port, detail,
					sizeof(detail)) != 0)
				core_log(c, IWF_LOG_ERROR, "router NAT for a stored mapping: %s", detail);
		}
	}
	/* Leases after the loop: arming reads the table, which life_new does not change. */
	cur = 0;
	for (const struct state_mapping *m; (m = state_table_next(c->table, &cur));)
		if (!(m->flags & STATE_F_INTENT))
			lease_arm(c, m);
	if (committed)
		core_log(c, IWF_LOG_INFO, "restored %zu mappings; re-created after PCP_SERVICE_WAIT", committed);
	if (intents)
		core_log(c, IWF_LOG_INFO, "%zu requests were in flight at the last stop: deleting them with their nonces",
			 intents);
}

void iwf_core_start(struct iwf_core *c)
{
	if (c->started)
		return;
	c->started = true;
	/* seed 004 §5.10: RAND(0, PCP_SERVICE_WAIT) before the first PCP message. */
	uint32_t wait_ms = 0;
	if (c->cfg.pcp_service_wait_s) {
		uint32_t r;
		c->env.random(c->env.arg, &r, sizeof(r));
		wait_ms = r % (c->cfg.pcp_service_wait_s * 1000u + 1);
	}
	c->start_at = core_now(c) + wait_ms;
	push_state(c);
	core_wakeup(c);
}

static void queue_push(struct iwf_core *c, uint32_t id)
{
	if (c->replay_n == c->replay_cap) {
		if (c->replay_head) {
			memmove(c->replay_q, c->replay_q + c->replay_head, (c->replay_n - c->replay_head) * sizeof(uint32_t));
			c->replay_n -= c->replay_head;
			c->replay_head = 0;
		}
		if (c->replay_n == c->replay_cap) {
			size_t ncap = c->replay_cap ? c->replay_cap * 2 : 64;
			uint32_t *nq = realloc(c->replay_q, ncap * sizeof(*nq));
			if (!nq)
				return;
			c->replay_q = nq;
			c->replay_cap = ncap;
		}
	}
	c->replay_q[c->replay_n++] = id;
}

/* Send one stored mapping now: its MAP with the stored nonce, or - its lease ended while
 * iwfd was down, or it is a stored intent - its delete. */
void sync_replay_one(struct iwf_core *c, struct life *l)
{
	if (l->flow)
		return;
	if (l->phase == LIFE_DISCARD) {
		life_to(c, l, LIFE_DISCARD, NULL, "stored request deleted");
		return;
	}
	if (l->phase != LIFE_PENDING)
		return;
	const struct state_mapping *m = life_rec(c, l);
	if (m->lease_end_ms && m->lease_end_ms <= core_now(c)) {
		life_to(c, l, LIFE_DISCARD, NULL, "its lease ended while iwfd was down");
		return;
	}
	if (!client_mappable(c, &m->internal_client)) {
		/* e.g. an IPv6 host's mapping stored in mode nat64, iwfd restarted in another mode:
		 * not re-created, deleted with its nonce (a MAP cannot carry it here). */
		char ic[ADDR_PORT_TEXT_MAX];
		core_log(c, IWF_LOG_WARN, "stored mapping %s %u -> %s: not mappable in NAT mode %s: deleted",
			 proto_name(m->protocol), m->external_port,
			 addr_port_text(&m->internal_client, m->internal_port, ic, sizeof(ic)), c->cfg.nat_mode);
		life_to(c, l, LIFE_DISCARD, NULL, "its internal client cannot be mapped in this NAT mode");
		return;
	}
	life_to(c, l, LIFE_REPLAYING, NULL, "replay");
	if (!life_start_flow(c, l, true, 0))
		life_to(c, l, LIFE_GONE, NULL, "cannot replay it");
}

void sync_probe(struct iwf_core *c)
{
	if (c->probe)
		return;
	/* seed 004 §4.1: learn ExternalIPAddress before anyone asks: a short-lived MAP for the
	 * router itself (no THIRD_PARTY), deleted as soon as it is answered. */
	struct pcp_map_params p;
	memset(&p, 0, sizeof(p));
	p.protocol = 17;
	p.internal_port = PROBE_PORT;
	p.lifetime = PROBE_LIFETIME;
	if (c->cfg.clat_prefix_len || core_nat64(c))
		/* a NAT64 (reached over IPv6): the external address wanted is IPv4, RFC 6887 §11.1
		 * "no preference" in that family (§5: ::ffff:0.0.0.0), not the family of our source */
		p.suggested_addr.s6_addr[10] = p.suggested_addr.s6_addr[11] = 0xff;
	p.answer_deadline_ms = c->cfg.answer_deadline_ms;
	c->probe = pcp_flow_map(c->pcp, &p, &c->probe, core_now(c));
}

/* Paced at cfg.replay_rate per second (0 = all at once): credit accrues with the time since
 * the last tick (in thousandths of a request), one request is due at once, and ticks come
 * every REPLAY_TICK_MS - or every 1/rate s for rates under 10/s - so no 1 s window holds
 * more than replay_rate requests. */
static void replay_tick(struct iwf_core *c, uint64_t now)
{
	uint32_t rate = c->cfg.replay_rate;
	size_t budget = SIZE_MAX;
	if (rate) {
		if (c->replay_last != UINT64_MAX)
			c->replay_credit += (uint64_t)rate * (now - c->replay_last);
		c->replay_last = now;
		uint64_t cap = (uint64_t)rate * REPLAY_TICK_MS + 1000;
		if (c->replay_credit > cap)
			c->replay_credit = cap;
		budget = (size_t)(c->replay_credit / 1000);
	}
	size_t sent = 0;
	while (c->replay_head < c->replay_n && sent < budget) {
		struct life *l = life_get(c, c->replay_q[c->replay_head++]);
		if (!l || l->flow || (l->phase != LIFE_PENDING && l->phase != LIFE_DISCARD))
			continue;
		sent++;
		sync_replay_one(c, l);
	}
	if (rate)
		c->replay_credit -= (uint64_t)sent * 1000;
	if (c->replay_head < c->replay_n) {
		uint64_t tick = rate >= 1000 / REPLAY_TICK_MS ? REPLAY_TICK_MS : 1000 / rate;
		c->replay_next = now + tick;
		core_wakeup(c);
	} else {
		c->replay_head = c->replay_n = 0;
		c->replay_next = UINT64_MAX;
		c->replay_last = UINT64_MAX;
		c->replay_credit = 1000;
	}
}

void sync_run(struct iwf_core *c, uint64_t now)
{
	if (c->started && !c->synced && now >= c->start_at) {
		c->synced = true;
		c->start_at = UINT64_MAX;
		core_log(c, IWF_LOG_INFO, "synchronising %zu stored mappings with the PCP server",
			 state_table_count(c->table));
		size_t cur = 0;
		for (struct life *l; (l = life_next(c, &cur));)
			if (!l->flow && (l->phase == LIFE_PENDING || l->phase == LIFE_DISCARD))
				queue_push(c, l->id);
		if (state_table_count(c->table) == 0 && !c->connected)
			sync_probe(c);
		c->replay_next = now;
	}
	if (c->synced && c->replay_next <= now)
		replay_tick(c, now);
	if (c->status_deadline <= now)
		status_answer_waiting(c, true);
}

uint64_t sync_next_deadline(const struct iwf_core *c)
{
	uint64_t next = c->status_deadline;
	if (c->started && !c->synced && c->start_at < next)
		next = c->start_at;
	if (c->replay_head < c->replay_n && c->replay_next < next)
		next = c->replay_next;
	return next;
}

/* ------------------------------------------------------------------ leases (monotonic clock) */

static void heap_swap(struct lease_slot *h, size_t a, size_t b)
{
	struct lease_slot t = h[a];
	h[a] = h[b];
	h[b] = t;
}

static void heap_up(struct lease_slot *h, size_t i)
{
	while (i > 0 && h[(i - 1) / 2].at > h[i].at) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct lease_slot *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].at < h[m].at)
			m = l;
		if (r < n && h[r].at < h[m].at)
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static bool lease_slot_live(struct iwf_core *c, const struct lease_slot *s)
{
	const struct state_mapping *m = state_table_get(c->table, s->id);
	return m && m->lease_end_ms == s->at;
}

/* Drop stale slots when they outnumber the live ones (lazy deletion keeps pushes O(log n)). */
static void leases_compact(struct iwf_core *c)
{
	size_t k = 0;
	for (size_t i = 0; i < c->leases_n; i++)
		if (lease_slot_live(c, &c->leases[i]))
			c->leases[k++] = c->leases[i];
	c->leases_n = k;
	c->lease_compactions++;
	/* next compaction when the heap has doubled again: the slots kept may still outnumber
	 * the lives (a record armed twice with the same end), and compacting at every push
	 * would be quadratic */
	c->leases_compact_at = 2 * (k > c->lives_n ? k : c->lives_n) + 64;
	for (size_t i = k / 2 + 1; i-- > 0;)
		heap_down(c->leases, c->leases_n, i);
}

void lease_arm(struct iwf_core *c, const struct state_mapping *m)
{
	if (!m->lease_end_ms)
		return;
	if (c->leases_n > c->leases_compact_at)
		leases_compact(c);
	if (c->leases_n == c->leases_cap) {
		size_t ncap = c->leases_cap ? c->leases_cap * 2 : 64;
		struct lease_slot *nv = realloc(c->leases, ncap * sizeof(*nv));
		if (!nv) {
			core_log(c, IWF_LOG_ERROR, "out of memory arming a lease");
			return;
		}
		c->leases = nv;
		c->leases_cap = ncap;
	}
	c->leases[c->leases_n] = (struct lease_slot){.at = m->lease_end_ms, .id = m->id};
	heap_up(c->leases, c->leases_n++);
	core_wakeup(c);
}

void leases_run(struct iwf_core *c, uint64_t now)
{
	while (c->leases_n && c->leases[0].at <= now) {
		struct lease_slot s = c->leases[0];
		c->leases[0] = c->leases[--c->leases_n];
		heap_down(c->leases, c->leases_n, 0);
		if (!lease_slot_live(c, &s))
			continue;
		struct life *l = life_get(c, s.id);
		if (l && (l->phase == LIFE_ACTIVE || l->phase == LIFE_REPLAYING || l->phase == LIFE_PENDING))
			life_to(c, l, LIFE_DISCARD, NULL, "lease expired");
		else if (l && l->phase == LIFE_DISABLED) /* not on the carrier (or being taken off) */
			life_to(c, l, l->flow ? LIFE_DISCARD : LIFE_GONE, NULL, "lease expired");
	}
}

uint64_t leases_next(struct iwf_core *c)
{
	while (c->leases_n && !lease_slot_live(c, &c->leases[0])) {
		c->leases[0] = c->leases[--c->leases_n];
		heap_down(c->leases, c->leases_n, 0);
	}
	return c->leases_n ? c->leases[0].at : UINT64_MAX;
}

