/*
 * pcp_client.c - sans-I/O PCP client engine (RFC 6887).
 *
 * The caller owns sockets and the clock: pcp_client_input(packet, now),
 * pcp_client_output(buf, now), pcp_client_next_deadline(). One struct pcp_flow per
 * mapping, each with its own nonce and one state machine (enum flow_state, names table,
 * flow_transition() arms its timers).
 *
 * Re-entrancy: events are delivered synchronously. Every public entry point brackets
 * its work with client_enter()/client_leave(); flows deleted or abandoned meanwhile are
 * only marked dead and are freed by the sweep in the outermost client_leave(). Code
 * that emits an event finishes all state changes first and touches the flow afterwards
 * only after re-checking f->dead.
 */
#include "pcp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

enum flow_state {
	FLOW_REQUESTING, /* first request, §8.1.1 retransmission, optional answer deadline */
	FLOW_MAPPED,     /* granted; renewal schedule §11.2.1 until expiry */
	FLOW_REMAPPING,  /* re-creating (lost state, refresh, new server, expiry): §8.1.1 */
	FLOW_FAILED,     /* idle after an error or give-up; maybe a retry time (short error) */
	FLOW_DELETING,   /* lifetime-0 MAP, §8.1.1 retransmission until the delete deadline */
	FLOW_STATE_COUNT
};

static const char *const flow_state_names[FLOW_STATE_COUNT] = {
	[FLOW_REQUESTING] = "requesting",
	[FLOW_MAPPED] = "mapped",
	[FLOW_REMAPPING] = "remapping",
	[FLOW_FAILED] = "failed",
	[FLOW_DELETING] = "deleting",
};

#define NEVER UINT64_MAX
#define RENEW_MIN_GAP_MS 4000     /* RFC 6887 §11.2.1: renewals at least 4 s apart */
#define ANNOUNCE_SPREAD_MS 5000   /* RFC 6887 §14.1.3: re-send within 0..5 s */

struct pcp_flow {
	struct pcp_flow *next;
	enum flow_state state;
	bool dead;
	void *user;
	uint8_t nonce[PCP_NONCE_LEN];

	/* what we ask for */
	uint8_t protocol;
	struct in6_addr internal_addr;
	uint16_t internal_port;
	uint16_t suggested_port;
	struct in6_addr suggested_addr;
	uint32_t req_lifetime;
	bool prefer_failure, third_party;
	uint8_t n_filters;
	struct pcp_filter filters[PCP_MAX_FILTERS];
	bool has_description;
	char description[PCP_DESCRIPTION_MAX + 1];
	uint32_t answer_deadline_ms;

	/* timers (absolute monotonic ms, NEVER = unarmed) */
	uint64_t next_send;
	uint64_t deadline;  /* REQUESTING: first-answer deadline; DELETING: delete deadline */
	uint64_t giveup_at; /* MRC / MRD exhausted */

	/* §8.1.1 retransmission sequence */
	uint64_t first_send;
	uint64_t rt_ms;
	uint32_t tx_count;
	bool awaiting;      /* a request is outstanding */
	bool reported;      /* the timeout of this sequence was already reported */
	uint64_t last_send;

	/* the grant */
	bool ever_mapped;
	uint64_t granted_at, expire_at;
	uint32_t lifetime;
	uint16_t ext_port;
	struct in6_addr ext_addr;
	unsigned renew_k;
};

enum reach { REACH_UNKNOWN, REACH_YES, REACH_NO };

struct pcp_client {
	struct pcp_client_config cfg;
	struct pcp_flow *flows;
	unsigned depth;
	bool need_sweep;

	bool has_server;
	struct in6_addr server;
	uint16_t server_port;
	struct in6_addr source;
	enum reach reach;
	/* RFC 7488 failover input for the caller: the first request sent since the last
	 * accepted response of this server (NEVER: none outstanding), and that response. */
	uint64_t unanswered_since;
	uint64_t last_response_at;
	uint64_t foreign_announce_at; /* last link-local ANNOUNCE acted upon (NEVER: none) */

	/* §8.5 Epoch tracking for the current server */
	bool have_epoch;
	uint32_t prev_server_time;
	uint64_t prev_client_ms;

	struct pcp_client_stats stats;
};

/* ---------------------------------------------------------------- randomness */

static void random_default(void *arg, void *buf, size_t len)
{
	uint8_t *p = buf;
	(void)arg;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Nonces must be unpredictable (RFC 6887 §11.1); no silent fallback. */
			int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				abort();
			while (len > 0) {
				ssize_t k = read(fd, p, len);
				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0)
					abort();
				p += k;
				len -= (size_t)k;
			}
			close(fd);
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void rand_bytes(struct pcp_client *c, void *buf, size_t len)
{
	c->cfg.random(c->cfg.random_arg, buf, len);
}

static uint32_t rand_u32(struct pcp_client *c)
{
	uint8_t b[4];
	rand_bytes(c, b, sizeof b);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Uniform in [0, span]: floor((span + 1) * r / 2^32), split so that nothing overflows
 * (span can be a lifetime of up to 2^32 s in ms). */
static uint64_t rand_upto(struct pcp_client *c, uint64_t span)
{
	if (span == UINT64_MAX)
		span--;
	uint64_t s = span + 1, r = rand_u32(c);
	return (s >> 32) * r + (((s & 0xffffffffu) * r) >> 32);
}

/* v * (1 + RAND), RAND uniform in [-0.1, +0.1] (RFC 6887 §8.1.1). */
static uint64_t jitter(struct pcp_client *c, uint64_t v)
{
	return v - v / 10 + rand_upto(c, v / 5);
}

/* ---------------------------------------------------------------- events */

static void client_enter(struct pcp_client *c)
{
	c->depth++;
}

static void sweep(struct pcp_client *c)
{
	struct pcp_flow **pp = &c->flows;
	while (*pp) {
		struct pcp_flow *f = *pp;
		if (f->dead) {
			*pp = f->next;
			free(f);
		} else {
			pp = &f->next;
		}
	}
	c->need_sweep = false;
}

static void client_leave(struct pcp_client *c)
{
	if (--c->depth == 0 && c->need_sweep)
		sweep(c);
}

static void emit(struct pcp_client *c, struct pcp_event *ev)
{
	if (c->cfg.on_event)
		c->cfg.on_event(c->cfg.event_arg, ev);
}

static void emit_flow(struct pcp_client *c, struct pcp_flow *f, enum pcp_event_type type, uint8_t result,
		      bool timeout, uint32_t lifetime, bool renewal)
{
	struct pcp_event ev = {
		.type = type,
		.flow = f,
		.user = f->user,
		.result = result,
		.timeout = timeout,
		.lifetime = lifetime,
		.external_port = f->ext_port,
		.external_addr = f->ext_addr,
		.renewal = renewal,
	};
	emit(c, &ev);
}

static void reach_set(struct pcp_client *c, bool yes)
{
	enum reach r = yes ? REACH_YES : REACH_NO;
	if (c->reach == r)
		return;
	c->reach = r;
	struct pcp_event ev = { .type = PCP_EVENT_REACHABILITY, .reachable = yes };
	emit(c, &ev);
}

static void flow_kill(struct pcp_client *c, struct pcp_flow *f)
{
	if (!f->dead) {
		f->dead = true;
		c->need_sweep = true;
		c->stats.live_flows--;
	}
}

/* ---------------------------------------------------------------- state machine */

/* RFC 6887 §11.2.1: renewal attempt k (1, 2, ...) at (1 - 2^-k) of the lifetime plus a
 * uniform jitter of 2^-(k+2) of it (1/2..5/8, 3/4..3/4+1/16, 7/8..7/8+1/32 ...), never
 * closer than 4 s to the previous request. NEVER once that reaches the expiry. */
static uint64_t renew_time(struct pcp_client *c, struct pcp_flow *f, unsigned k)
{
	if (k > 40)
		return NEVER;
	uint64_t l = (uint64_t)f->lifetime * 1000;
	uint64_t t = f->granted_at + (l - (l >> k)) + rand_upto(c, l >> (k + 2));
	if (t < f->last_send + RENEW_MIN_GAP_MS)
		t = f->last_send + RENEW_MIN_GAP_MS;
	return t >= f->expire_at ? NEVER : t;
}

/* Start a §8.1.1 retransmission sequence whose first packet goes out at `at`. */
static void rtx_start(struct pcp_flow *f, uint64_t at)
{
	f->next_send = at;
	f->rt_ms = 0;
	f->tx_count = 0;
	f->giveup_at = NEVER;
	f->reported = false;
}

/*
 * The one transition function: sets the state and arms the flow's timers.
 * at: REQUESTING/REMAPPING/DELETING - when the first packet of the new sequence goes
 * out; FAILED - retry time (NEVER = stay idle); MAPPED - unused (the grant decides).
 */
static void flow_transition(struct pcp_client *c, struct pcp_flow *f, enum flow_state to, uint64_t at)
{
	f->state = to;
	switch (to) {
	case FLOW_REQUESTING:
	case FLOW_REMAPPING:
	case FLOW_DELETING:
		rtx_start(f, at);
		break;
	case FLOW_MAPPED:
		f->giveup_at = NEVER;
		f->deadline = NEVER;
		f->renew_k = 1;
		f->next_send = renew_time(c, f, 1);
		break;
	case FLOW_FAILED:
		f->giveup_at = NEVER;
		f->deadline = NEVER;
		f->next_send = at;
		break;
	case FLOW_STATE_COUNT:
		abort();
	}
}

/* Schedule after a packet of a §8.1.1 sequence went out at `now`. */
static void rtx_sent(struct pcp_client *c, struct pcp_flow *f, uint64_t now)
{
	if (f->tx_count == 0) {
		f->first_send = now;
		f->rt_ms = jitter(c, c->cfg.irt_ms); /* RT = (1 + RAND) * IRT */
	} else {
		/* RT = 2 * RTprev + RAND * RTprev; capped: RT = (1 + RAND) * MRT */
		uint64_t prev = f->rt_ms;
		f->rt_ms = 2 * prev - prev / 10 + rand_upto(c, prev / 5);
		if (f->rt_ms > c->cfg.mrt_ms)
			f->rt_ms = jitter(c, c->cfg.mrt_ms);
	}
	f->tx_count++;
	f->next_send = now + f->rt_ms;
	if (c->cfg.mrc && f->tx_count >= c->cfg.mrc) {
		f->giveup_at = f->next_send; /* MRC: no more transmissions, fail after RT */
		f->next_send = NEVER;
	}
	if (c->cfg.mrd_ms) {
		uint64_t end = f->first_send + c->cfg.mrd_ms; /* MRD from the first transmission */
		if (f->giveup_at > end)
			f->giveup_at = end;
		if (f->next_send >= end)
			f->next_send = NEVER;
	}
}

/* Schedule after a renewal went out (state MAPPED). */
static void renew_sent(struct pcp_client *c, struct pcp_flow *f)
{
	f->renew_k++;
	f->next_send = renew_time(c, f, f->renew_k);
}

/* ---------------------------------------------------------------- building requests */

static bool addr_is_zero(const struct in6_addr *a)
{
	static const struct in6_addr zero;
	return memcmp(a, &zero, sizeof zero) == 0;
}

static bool addr_no_preference(const struct in6_addr *a)
{
	static const uint8_t v4any[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0 };
	return addr_is_zero(a) || memcmp(a->s6_addr, v4any, 16) == 0;
}

static void flow_request(const struct pcp_client *c, const struct pcp_flow *f, struct pcp_msg *m)
{
	memset(m, 0, sizeof *m);
	m->version = PCP_VERSION;
	m->opcode = PCP_OPCODE_MAP;
	bool del = f->state == FLOW_DELETING;
	m->lifetime = del ? 0 : f->req_lifetime; /* §15: delete = lifetime 0, same nonce */
	m->client_addr = c->source;              /* §7.1, §8.1: the source we send from */
	memcpy(m->nonce, f->nonce, PCP_NONCE_LEN);
	m->protocol = f->protocol;
	m->internal_port = f->internal_port;
	/* §15 (erratum 3621): a delete carries no suggestion: port 0, "no preference". */
	m->external_port = del ? 0 : f->suggested_port;
	/* §11.1: "no preference" is ::ffff:0.0.0.0 for IPv4 mappings, :: for IPv6. */
	if (del || addr_no_preference(&f->suggested_addr)) {
		const struct in6_addr *fam = addr_is_zero(&f->internal_addr) ? &c->source : &f->internal_addr;
		memset(&m->external_addr, 0, sizeof m->external_addr);
		if (pcp_addr_is_v4(fam)) {
			m->external_addr.s6_addr[10] = 0xff;
			m->external_addr.s6_addr[11] = 0xff;
		}
	} else {
		m->external_addr = f->suggested_addr;
	}
	if (f->third_party) { /* §13.1 */
		m->has_third_party = true;
		m->third_party = f->internal_addr;
	}
	if (!del) {
		m->prefer_failure = f->prefer_failure; /* §13.2 */
		m->n_filters = f->n_filters;           /* §13.3 */
		memcpy(m->filters, f->filters, sizeof m->filters);
		if (f->has_description) { /* RFC 7220 */
			m->has_description = true;
			memcpy(m->description, f->description, sizeof m->description);
		}
	}
}

/* ---------------------------------------------------------------- client */

struct pcp_client *pcp_client_new(const struct pcp_client_config *cfg)
{
	struct pcp_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (cfg)
		c->cfg = *cfg;
	if (!c->cfg.irt_ms)
		c->cfg.irt_ms = PCP_IRT_MS;
	if (!c->cfg.mrt_ms)
		c->cfg.mrt_ms = PCP_MRT_MS;
	if (!c->cfg.random) {
		c->cfg.random = random_default;
		c->cfg.random_arg = NULL;
	}
	c->reach = REACH_UNKNOWN;
	c->unanswered_since = NEVER;
	c->last_response_at = NEVER;
	c->foreign_announce_at = NEVER;
	return c;
}

void pcp_client_free(struct pcp_client *c)
{
	if (!c)
		return;
	struct pcp_flow *f = c->flows;
	while (f) {
		struct pcp_flow *next = f->next;
		free(f);
		f = next;
	}
	free(c);
}

void pcp_client_set_source(struct pcp_client *c, const struct in6_addr *addr)
{
	if (c && addr)
		c->source = *addr;
}

void pcp_client_set_server(struct pcp_client *c, const struct in6_addr *addr, uint16_t port, uint64_t now)
{
	if (!c || !addr)
		return;
	if (c->has_server && memcmp(&c->server, addr, sizeof *addr) == 0 && c->server_port == port)
		return;
	client_enter(c);
	c->has_server = true;
	c->server = *addr;
	c->server_port = port;
	c->have_epoch = false; /* §8.5: the first response of a new server is valid */
	c->reach = REACH_UNKNOWN;
	c->unanswered_since = NEVER; /* judge the new server on its own answers */
	c->last_response_at = NEVER;
	for (struct pcp_flow *f = c->flows; f; f = f->next) {
		if (f->dead)
			continue;
		if (f->ever_mapped) /* another CGN: its addresses differ; keep asking for the port */
			memset(&f->suggested_addr, 0, sizeof f->suggested_addr);
		switch (f->state) {
		case FLOW_REQUESTING:
		case FLOW_DELETING: {
			uint64_t dl = f->deadline;
			flow_transition(c, f, f->state, now);
			f->deadline = dl;
			break;
		}
		case FLOW_MAPPED:
		case FLOW_REMAPPING:
			flow_transition(c, f, FLOW_REMAPPING, now);
			break;
		case FLOW_FAILED:
			flow_transition(c, f, f->ever_mapped ? FLOW_REMAPPING : FLOW_REQUESTING, now);
			f->reported = true; /* its failure was reported already */
			break;
		case FLOW_STATE_COUNT:
			abort();
		}
	}
	client_leave(c);
}

/* ---------------------------------------------------------------- flows */

struct pcp_flow *pcp_flow_map(struct pcp_client *c, const struct pcp_map_params *p, void *user, uint64_t now)
{
	if (!c || !p || p->lifetime == 0 || p->n_filters > PCP_MAX_FILTERS)
		return NULL;
	if (p->protocol == 0 && p->internal_port != 0) /* §11.1: all protocols => port 0 */
		return NULL;
	if (p->description && strlen(p->description) > PCP_DESCRIPTION_MAX)
		return NULL;
	for (unsigned i = 0; i < p->n_filters; i++)
		if (p->filters[i].prefix_len > 128)
			return NULL;

	struct pcp_flow *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->user = user;
	if (p->nonce)
		memcpy(f->nonce, p->nonce, PCP_NONCE_LEN);
	else
		rand_bytes(c, f->nonce, PCP_NONCE_LEN); /* §11.1: random nonce per mapping */
	f->protocol = p->protocol;
	f->internal_addr = p->internal_addr;
	f->internal_port = p->internal_port;
	f->suggested_port = p->suggested_port;
	f->suggested_addr = p->suggested_addr;
	f->req_lifetime = p->lifetime;
	f->prefer_failure = p->prefer_failure;
	f->third_party = p->third_party;
	f->n_filters = p->n_filters;
	memcpy(f->filters, p->filters, sizeof f->filters);
	if (p->description) {
		f->has_description = true;
		memcpy(f->description, p->description, strlen(p->description) + 1);
	}
	f->answer_deadline_ms = p->answer_deadline_ms;
	f->expire_at = NEVER;

	client_enter(c);
	f->next = c->flows;
	c->flows = f;
	c->stats.live_flows++;
	flow_transition(c, f, FLOW_REQUESTING, now);
	f->deadline = p->answer_deadline_ms ? now + p->answer_deadline_ms : NEVER;
	client_leave(c);
	return f;
}

void pcp_flow_set_lifetime(struct pcp_client *c, struct pcp_flow *f, uint32_t lifetime)
{
	(void)c;
	if (f && !f->dead && lifetime)
		f->req_lifetime = lifetime;
}

void pcp_flow_refresh(struct pcp_client *c, struct pcp_flow *f, uint64_t now)
{
	if (!c || !f || f->dead || f->state == FLOW_DELETING)
		return;
	client_enter(c);
	if (f->state == FLOW_REQUESTING) {
		uint64_t dl = f->deadline;
		flow_transition(c, f, FLOW_REQUESTING, now);
		f->deadline = dl;
	} else {
		flow_transition(c, f, f->ever_mapped ? FLOW_REMAPPING : FLOW_REQUESTING, now);
	}
	client_leave(c);
}

void pcp_client_refresh_all(struct pcp_client *c, uint64_t now)
{
	if (!c)
		return;
	client_enter(c);
	for (struct pcp_flow *f = c->flows; f; f = f->next)
		pcp_flow_refresh(c, f, now);
	client_leave(c);
}

void pcp_flow_delete(struct pcp_client *c, struct pcp_flow *f, uint32_t deadline_ms, uint64_t now)
{
	if (!c || !f || f->dead || f->state == FLOW_DELETING)
		return;
	client_enter(c);
	flow_transition(c, f, FLOW_DELETING, now);
	f->awaiting = false; /* answers to earlier requests no longer count */
	f->deadline = deadline_ms == PCP_DELETE_NO_DEADLINE ? NEVER
		      : now + (deadline_ms ? deadline_ms : PCP_DELETE_DEADLINE_MS);
	client_leave(c);
}

void pcp_flow_abandon(struct pcp_client *c, struct pcp_flow *f)
{
	if (!c || !f)
		return;
	client_enter(c);
	flow_kill(c, f);
	client_leave(c);
}

const uint8_t *pcp_flow_nonce(const struct pcp_flow *f)
{
	return f->nonce;
}

const char *pcp_flow_state_name(const struct pcp_flow *f)
{
	return (unsigned)f->state < FLOW_STATE_COUNT ? flow_state_names[f->state] : "?";
}

void *pcp_flow_user(const struct pcp_flow *f)
{
	return f->user;
}

void pcp_flow_set_user(struct pcp_flow *f, void *user)
{
	f->user = user;
}

/* ---------------------------------------------------------------- timers */

/* Run the flow's due deadlines (not sends). Emits at most one event per call and
 * returns true if it did something, so the caller loops while the flow is alive. */
static bool flow_timers(struct pcp_client *c, struct pcp_flow *f, uint64_t now)
{
	if (f->state == FLOW_DELETING && (f->deadline <= now || f->giveup_at <= now)) {
		flow_kill(c, f);
		emit_flow(c, f, PCP_EVENT_DELETED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	if (f->state == FLOW_REQUESTING && f->deadline <= now) {
		/* caller's first-answer deadline: report, keep retransmitting */
		f->deadline = NEVER;
		f->reported = true;
		emit_flow(c, f, PCP_EVENT_FAILED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	if ((f->state == FLOW_REQUESTING || f->state == FLOW_REMAPPING) && f->giveup_at <= now) {
		/* MRC / MRD exhausted (§8.1.1): the exchange failed */
		bool was_requesting = f->state == FLOW_REQUESTING, report = !f->reported;
		flow_transition(c, f, FLOW_FAILED, NEVER);
		if (report)
			emit_flow(c, f, was_requesting ? PCP_EVENT_FAILED : PCP_EVENT_RENEW_FAILED, 0, true, 0,
				  false);
		reach_set(c, false);
		return true;
	}
	if (f->state == FLOW_REMAPPING && !f->reported && f->expire_at <= now) {
		/* the old grant ran out while re-creating it: report once, keep re-sending */
		f->reported = true;
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	if (f->state == FLOW_MAPPED && f->expire_at <= now) {
		/* the grant ran out with no renewal answered: re-create per §8.1.1 */
		flow_transition(c, f, FLOW_REMAPPING, now);
		f->reported = true;
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	return false;
}

static uint64_t flow_next_deadline(const struct pcp_flow *f)
{
	uint64_t t = f->next_send;
	if (f->deadline < t)
		t = f->deadline;
	if (f->giveup_at < t)
		t = f->giveup_at;
	if ((f->state == FLOW_MAPPED || (f->state == FLOW_REMAPPING && !f->reported)) && f->expire_at < t)
		t = f->expire_at;
	return t;
}

uint64_t pcp_client_next_deadline(const struct pcp_client *c)
{
	uint64_t t = NEVER;
	if (!c)
		return t;
	for (const struct pcp_flow *f = c->flows; f; f = f->next) {
		if (f->dead)
			continue;
		uint64_t ft = flow_next_deadline(f);
		if (ft < t)
			t = ft;
	}
	return t;
}

/* The flow's packet is due: build it (when a server is set) and advance its schedule.
 * Returns the packet length, 0 when nothing was written. */
static size_t flow_send(struct pcp_client *c, struct pcp_flow *f, uint8_t *buf, size_t cap, uint64_t now)
{
	size_t len = 0;
	if (f->state == FLOW_FAILED) {
		/* retry after a short-lived error's Lifetime (§7.4) */
		flow_transition(c, f, f->ever_mapped ? FLOW_REMAPPING : FLOW_REQUESTING, now);
		f->reported = true;
	}
	if (c->has_server) {
		struct pcp_msg m;
		flow_request(c, f, &m);
		if (pcp_msg_encode(&m, buf, cap, &len) != PCP_OK)
			len = 0;
	}
	if (len) {
		if (c->unanswered_since == NEVER)
			c->unanswered_since = now;
		c->stats.sent++;
		if (f->awaiting)
			c->stats.retransmitted++;
		f->awaiting = true;
	}
	f->last_send = now;
	if (f->state == FLOW_MAPPED)
		renew_sent(c, f);
	else
		rtx_sent(c, f, now);
	return len;
}

size_t pcp_client_output(struct pcp_client *c, uint8_t *buf, size_t cap, uint64_t now)
{
	if (!c || !buf || cap < PCP_MAX_PACKET)
		return 0;
	client_enter(c);
	for (struct pcp_flow *f = c->flows; f; f = f->next)
		while (!f->dead && flow_timers(c, f, now))
			;
	size_t len = 0;
	for (struct pcp_flow *f = c->flows; f && !len; f = f->next)
		if (!f->dead && f->next_send <= now)
			len = flow_send(c, f, buf, cap, now);
	client_leave(c);
	return len;
}

/* ---------------------------------------------------------------- input */

/* RFC 6887 §8.5: validate the server's Epoch time; always records the new values. */
static bool epoch_valid(struct pcp_client *c, uint32_t server_time, uint64_t now)
{
	bool valid = true;
	if (c->have_epoch) {
		if ((uint64_t)server_time + 1 < c->prev_server_time) {
			valid = false; /* went backwards by more than one second */
		} else {
			/* client_delta + 2 < server_delta - server_delta / 16, or the other way
			 * round, in seconds; computed here in milliseconds. */
			int64_t cd = (int64_t)(now - c->prev_client_ms);
			int64_t sd = ((int64_t)server_time - (int64_t)c->prev_server_time) * 1000;
			if (cd + 2000 < sd - sd / 16 || sd + 2000 < cd - cd / 16)
				valid = false;
		}
	}
	c->have_epoch = true;
	c->prev_client_ms = now;
	c->prev_server_time = server_time;
	return valid;
}

/* The server lost state: re-create every mapped flow with its own nonce (§8.5, §14.1). */
static void lost_state(struct pcp_client *c, const struct pcp_flow *except, uint64_t spread_ms, uint64_t now)
{
	for (struct pcp_flow *f = c->flows; f; f = f->next) {
		if (f->dead || f == except)
			continue;
		if (f->state == FLOW_MAPPED || f->state == FLOW_REMAPPING)
			flow_transition(c, f, FLOW_REMAPPING, now + (spread_ms ? rand_upto(c, spread_ms) : 0));
	}
	c->stats.lost_state_events++;
	struct pcp_event ev = { .type = PCP_EVENT_SERVER_LOST_STATE };
	emit(c, &ev);
}

static struct pcp_flow *flow_match(struct pcp_client *c, const struct pcp_msg *m)
{
	for (struct pcp_flow *f = c->flows; f; f = f->next) {
		if (f->dead || !f->awaiting || memcmp(f->nonce, m->nonce, PCP_NONCE_LEN) != 0 ||
		    f->protocol != m->protocol || f->internal_port != m->internal_port)
			continue;
		if (m->has_third_party &&
		    (!f->third_party || memcmp(&m->third_party, &f->internal_addr, sizeof m->third_party) != 0))
			continue;
		if (f->state == FLOW_DELETING && m->result == PCP_RESULT_SUCCESS && m->lifetime != 0)
			continue; /* a late answer to the MAP before the delete */
		return f;
	}
	return NULL;
}

/* RFC 6887 §11.4: a MAP response that answers flow f. */
static void flow_answer(struct pcp_client *c, struct pcp_flow *f, const struct pcp_msg *m, uint64_t now)
{
	f->awaiting = false;
	if (f->state == FLOW_DELETING) {
		flow_kill(c, f);
		emit_flow(c, f, PCP_EVENT_DELETED, m->result, false, m->lifetime, false);
		return;
	}
	if (m->result == PCP_RESULT_SUCCESS) {
		bool renewal = f->ever_mapped;
		bool moved = renewal && (f->ext_port != m->external_port ||
					 memcmp(&f->ext_addr, &m->external_addr, sizeof f->ext_addr) != 0);
		f->ever_mapped = true;
		f->lifetime = m->lifetime;
		f->granted_at = now;
		f->expire_at = now + (uint64_t)m->lifetime * 1000;
		f->ext_port = m->external_port;
		f->ext_addr = m->external_addr;
		/* §11.2.1: renewals suggest what was assigned */
		f->suggested_port = m->external_port;
		f->suggested_addr = m->external_addr;
		f->last_send = now;
		if (m->lifetime)
			flow_transition(c, f, FLOW_MAPPED, now);
		else
			flow_transition(c, f, FLOW_FAILED, NEVER); /* granted nothing: idle */
		emit_flow(c, f, moved ? PCP_EVENT_RENEW_FAILED : PCP_EVENT_MAPPED, 0, false, m->lifetime, renewal);
		return;
	}

	/* §7.4: an error's Lifetime says how long the same request keeps failing. */
	bool short_lived = pcp_result_is_short_lived(m->result);
	uint64_t wait = (uint64_t)m->lifetime * 1000;
	if (wait < c->cfg.irt_ms)
		wait = c->cfg.irt_ms;
	switch (f->state) {
	case FLOW_MAPPED:
		if (short_lived) {
			/* keep the grant; next renewal no earlier than the error lifetime */
			uint64_t t = now + wait;
			if (t < f->next_send)
				t = f->next_send;
			f->next_send = t >= f->expire_at ? NEVER : t;
			return;
		}
		flow_transition(c, f, FLOW_FAILED, NEVER);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, m->result, false, m->lifetime, false);
		return;
	case FLOW_REMAPPING:
		if (short_lived) {
			flow_transition(c, f, FLOW_REMAPPING, now + wait);
			return;
		}
		flow_transition(c, f, FLOW_FAILED, NEVER);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, m->result, false, m->lifetime, false);
		return;
	default:
		flow_transition(c, f, FLOW_FAILED, short_lived ? now + wait : NEVER);
		emit_flow(c, f, PCP_EVENT_FAILED, m->result, false, m->lifetime, false);
		return;
	}
}

static enum pcp_err drop(struct pcp_client *c, enum pcp_err why)
{
	c->stats.dropped++;
	c->stats.dropped_by_reason[why]++;
	return why;
}

enum pcp_err pcp_client_input(struct pcp_client *c, const uint8_t *pkt, size_t len, const struct in6_addr *from,
			      uint16_t from_port, uint64_t now)
{
	if (!c)
		return PCP_ERR_INVAL;
	c->stats.received++;
	if (!pkt || !from)
		return drop(c, PCP_ERR_INVAL);
	struct pcp_msg m;
	enum pcp_err err = pcp_msg_decode(pkt, len, &m);
	if (err != PCP_OK)
		return drop(c, err);
	if (!m.response)
		return drop(c, PCP_ERR_RBIT);
	/* §8.3: only the server we asked may answer */
	if (!c->has_server || memcmp(from, &c->server, sizeof *from) != 0 || from_port != c->server_port) {
		/* §14.1.3: a restarted server multicasts ANNOUNCE to ff02::1, and IPv6 gives
		 * such a datagram the server's link-local source, not the address we use. Such
		 * an ANNOUNCE only brings the re-send of every mapping forward (within 0..5 s,
		 * at most once per 5 s); it changes no Epoch or reachability state, and the
		 * server's answers to the re-sends go through every check as usual. */
		if (m.opcode == PCP_OPCODE_ANNOUNCE && c->has_server && !pcp_addr_is_v4(&c->server) &&
		    IN6_IS_ADDR_LINKLOCAL(from) && from_port == c->server_port &&
		    (c->foreign_announce_at == NEVER || now >= c->foreign_announce_at + ANNOUNCE_SPREAD_MS)) {
			c->foreign_announce_at = now;
			client_enter(c);
			lost_state(c, NULL, ANNOUNCE_SPREAD_MS, now);
			client_leave(c);
			return PCP_OK;
		}
		return drop(c, PCP_ERR_WRONG_SOURCE);
	}

	struct pcp_flow *f = NULL;
	if (m.opcode == PCP_OPCODE_PEER)
		return drop(c, PCP_ERR_UNSOLICITED); /* we never send PEER */
	if (m.opcode == PCP_OPCODE_MAP) {
		f = flow_match(c, &m);
		if (!f)
			return drop(c, PCP_ERR_UNSOLICITED);
	}

	client_enter(c);
	c->unanswered_since = NEVER; /* the server is alive (RFC 7488 failover) */
	c->last_response_at = now;
	bool valid = epoch_valid(c, m.epoch, now); /* §8.5, on every response */
	reach_set(c, true);
	if (!valid)
		lost_state(c, f, m.opcode == PCP_OPCODE_ANNOUNCE ? ANNOUNCE_SPREAD_MS : 0, now);
	/* a callback above may have deleted, abandoned or refreshed f */
	if (f && !f->dead && f->awaiting)
		flow_answer(c, f, &m, now);
	client_leave(c);
	return PCP_OK;
}

uint64_t pcp_client_unanswered_since(const struct pcp_client *c)
{
	return c ? c->unanswered_since : NEVER;
}

uint64_t pcp_client_last_response(const struct pcp_client *c)
{
	return c ? c->last_response_at : NEVER;
}

void pcp_client_get_stats(const struct pcp_client *c, struct pcp_client_stats *out)
{
	if (c && out)
		*out = c->stats;
}
