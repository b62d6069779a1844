/*
 * pcp_client.c - sans-I/O PCP client engine (RFC 6887).
 *
 * The caller owns sockets and the clock: pcp_client_input(packet, now),
 * pcp_client_output(buf, now), pcp_client_next_deadline(). One struct pcp_flow per
 * mapping, each with its own nonce and one state machine (enum flow_state, names table,
 * flow_transition() arms its timers).
 *
 * Scale (docs/pcp.md "Engine at scale"): every live flow sits in a binary min-heap keyed
 * by its next deadline (flow_due; the flow keeps its heap index, and flow_rearm() is the
 * one place that moves it after a timer change), so pcp_client_next_deadline() is O(1)
 * and pcp_client_output() visits only due flows; and in a hash of nonces, so that
 * pcp_client_input() finds the flow in O(1) before the full §8.3 match checks.
 *
 * Re-entrancy: events are delivered synchronously. Every public entry point brackets
 * its work with client_enter()/client_leave(); a flow deleted or abandoned meanwhile
 * leaves the heap and the hash at once (no timer, no match) but stays allocated on the
 * dead list until the outermost client_leave(), which also tells the caller (on_wakeup)
 * when the next deadline moved earlier. Code that emits an event finishes all state
 * changes first and touches the flow afterwards only after re-checking f->dead.
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
#define HASH_MIN_BUCKETS 16

/* Field order: 8-byte, then 16-byte addresses, then 4-, 2- and 1-byte fields, so that
 * nothing is padded (docs/pcp.md: 160 bytes on LP64, was 624). */
struct pcp_flow {
	/* timers (absolute monotonic ms, NEVER = unarmed) */
	uint64_t due;       /* heap key: the earliest timer that matters in this state (flow_due) */
	uint64_t next_send;
	uint64_t deadline;  /* REQUESTING: first-answer deadline; DELETING: delete deadline */
	uint64_t giveup_at; /* MRC / MRD exhausted */
	uint64_t first_send, last_send;         /* §8.1.1 retransmission sequence */
	uint64_t granted_at;    /* the grant (its end: flow_expire) */
	uint64_t end_ms;        /* not wanted past this (pcp_flow_set_end); 0 = no end */
	void *user;
	struct pcp_flow *hnext; /* nonce hash chain; the list of dead flows once dead */

	/* what we ask for */
	struct in6_addr internal_addr;
	/* The external address and port: suggested by the caller until the first grant, then
	 * the grant, which every later request suggests (§11.2.1); no_addr_pref: suggest no
	 * address (another server, or one that lost its state: its addresses may differ). */
	struct in6_addr ext_addr;
	struct pcp_filter *filter; /* the FILTER option (§13.3), allocated; NULL = none */

	uint32_t heap_idx;     /* position in c->heap (live flows only) */
	uint32_t req_lifetime;
	uint32_t lifetime;     /* granted */
	uint32_t tx_count;
	uint32_t rt_ms;        /* current RT (§8.1.1), at most UINT32_MAX */
	uint16_t internal_port;
	uint16_t ext_port;
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol;
	uint8_t state;         /* enum flow_state */
	uint8_t renew_k;       /* §11.2.1 attempt, 1..41 */
	bool dead : 1;
	bool prefer_failure : 1, third_party : 1, no_addr_pref : 1;
	bool awaiting : 1;     /* a request is outstanding */
	bool reported : 1;     /* the timeout of this sequence was already reported */
	bool ever_mapped : 1;
	bool unsupp : 1;       /* an UNSUPP_VERSION answer is to be delivered (input_unsupp) */
};
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct pcp_flow) == 160, "a flow is 160 bytes on LP64 (docs/pcp.md)");
#endif

enum reach { REACH_UNKNOWN, REACH_YES, REACH_NO };

/*
 * Flows come from blocks of FLOW_BLOCK and are recycled through a free list: malloc would
 * add 16 bytes to each 160-byte flow, a tenth of what a mapping costs (docs/performance.md).
 * Under AddressSanitizer each flow is its own allocation, so that a use after free is
 * still caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FLOW_SLAB 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLOW_SLAB 0
#endif
#endif
#ifndef FLOW_SLAB
#define FLOW_SLAB 1
#endif
#define FLOW_BLOCK 64

struct flow_block {
	struct flow_block *next;
	struct pcp_flow flows[FLOW_BLOCK];
};

struct pcp_client {
	struct pcp_client_config cfg;
	unsigned depth;
	unsigned bulk;             /* > 0: flow_rearm defers heap order to bulk_end */
	struct pcp_flow *dead;     /* killed flows, freed when the outermost call returns */
	struct pcp_flow *spare;    /* freed flows for reuse, chained by hnext (FLOW_SLAB) */
	struct flow_block *blocks; /* where flows come from (FLOW_SLAB) */
	uint64_t told;             /* wakeup armed against this deadline (0: disarmed) */

	/* every live flow, a binary min-heap on flow->due */
	struct pcp_flow **heap;
	size_t heap_n, heap_cap;
	/* every live flow, chained by nonce */
	struct pcp_flow **buckets;
	size_t n_buckets;          /* a power of two */
	size_t n_unsupp;           /* flows with unsupp set */

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

/* ---------------------------------------------------------------- timer heap */

/* When the last grant ends (NEVER before the first). */
static uint64_t flow_expire(const struct pcp_flow *f)
{
	return f->ever_mapped ? f->granted_at + (uint64_t)f->lifetime * 1000 : NEVER;
}

/* When the flow needs pcp_client_output next: its next send and the timers flow_timers()
 * acts on in its state (the others are unarmed or irrelevant there). */

static uint64_t flow_due(const struct pcp_flow *f)
{
	uint64_t t = f->next_send;
	switch (f->state) {
	case FLOW_REQUESTING:
	case FLOW_DELETING:
		if (f->deadline < t)
			t = f->deadline;
		if (f->giveup_at < t)
			t = f->giveup_at;
		break;
	case FLOW_REMAPPING:
		if (f->giveup_at < t)
			t = f->giveup_at;
		if (!f->reported && flow_expire(f) < t)
			t = flow_expire(f);
		break;
	case FLOW_MAPPED:
		if (flow_expire(f) < t)
			t = flow_expire(f);
		break;
	default:
		break;
	}
	return t;
}

static void heap_set(struct pcp_client *c, size_t i, struct pcp_flow *f)
{
	c->heap[i] = f;
	f->heap_idx = (uint32_t)i;
}

static void sift_up(struct pcp_client *c, size_t i)
{
	struct pcp_flow *f = c->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (c->heap[parent]->due <= f->due)
			break;
		heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	heap_set(c, i, f);
}

static void sift_down(struct pcp_client *c, size_t i)
{
	struct pcp_flow *f = c->heap[i];
	size_t n = c->heap_n;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= n)
			break;
		if (child + 1 < n && c->heap[child + 1]->due < c->heap[child]->due)
			child++;
		if (f->due <= c->heap[child]->due)
			break;
		heap_set(c, i, c->heap[child]);
		i = child;
	}
	heap_set(c, i, f);
}

/* Restore heap order after a bulk change of keys (Floyd, O(n)). */
static void heap_build(struct pcp_client *c)
{
	for (size_t i = c->heap_n / 2; i-- > 0;)
		sift_down(c, i);
}

static bool heap_insert(struct pcp_client *c, struct pcp_flow *f)
{
	if (c->heap_n == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap + c->heap_cap / 2 : 16; /* grow by half */
		if (cap > UINT32_MAX)
			return false;
		struct pcp_flow **h = realloc(c->heap, cap * sizeof *h);
		if (!h)
			return false;
		c->heap = h;
		c->heap_cap = cap;
	}
	heap_set(c, c->heap_n++, f);
	if (!c->bulk)
		sift_up(c, f->heap_idx);
	return true;
}

static void heap_remove(struct pcp_client *c, struct pcp_flow *f)
{
	size_t i = f->heap_idx;
	struct pcp_flow *last = c->heap[--c->heap_n];
	if (last == f)
		return;
	heap_set(c, i, last);
	if (c->bulk)
		return;
	if (i > 0 && c->heap[(i - 1) / 2]->due > last->due)
		sift_up(c, i);
	else
		sift_down(c, i);
}

/* The one place a flow's position follows its timers: call after changing any of
 * next_send, deadline, giveup_at, granted_at, lifetime, reported or state. */
static void flow_rearm(struct pcp_client *c, struct pcp_flow *f)
{
	if (f->dead)
		return;
	uint64_t due = flow_due(f), old = f->due;
	if (due == old)
		return;
	f->due = due;
	if (c->bulk)
		return;
	if (due < old)
		sift_up(c, f->heap_idx);
	else
		sift_down(c, f->heap_idx);
}

/* Loops that re-arm many flows: keys change freely, order is restored once at the end
 * (no event may be emitted in between). */
static void bulk_begin(struct pcp_client *c)
{
	c->bulk++;
}

static void bulk_end(struct pcp_client *c)
{
	if (--c->bulk == 0)
		heap_build(c);
}

static uint64_t heap_top(const struct pcp_client *c)
{
	return c->heap_n ? c->heap[0]->due : NEVER;
}

/* ---------------------------------------------------------------- nonce hash */

static size_t nonce_hash(const uint8_t *nonce, size_t n_buckets)
{
	uint64_t a = 0, b = 0;
	for (int i = 0; i < 8; i++)
		a = a << 8 | nonce[i];
	for (int i = 8; i < PCP_NONCE_LEN; i++)
		b = b << 8 | nonce[i];
	/* splitmix64 finaliser: nonces are random, but restored or test ones need not be */
	uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (size_t)h & (n_buckets - 1);
}

/* Re-bucket every live flow into n buckets; keeps the table as it is when out of memory
 * (chains just get longer). Chain order (newest first) is kept. */
static void hash_resize(struct pcp_client *c, size_t n)
{
	struct pcp_flow **b = calloc(n, sizeof *b);
	if (!b)
		return;
	/* walk the old chains from their tails so that each new chain stays newest first */
	for (size_t i = 0; i < c->n_buckets; i++) {
		struct pcp_flow *rev = NULL, *f = c->buckets[i];
		while (f) {
			struct pcp_flow *next = f->hnext;
			f->hnext = rev;
			rev = f;
			f = next;
		}
		while (rev) {
			struct pcp_flow *next = rev->hnext;
			size_t k = nonce_hash(rev->nonce, n);
			rev->hnext = b[k];
			b[k] = rev;
			rev = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->n_buckets = n;
}

static void hash_insert(struct pcp_client *c, struct pcp_flow *f)
{
	size_t k = nonce_hash(f->nonce, c->n_buckets);
	f->hnext = c->buckets[k];
	c->buckets[k] = f;
	if (c->heap_n > 2 * c->n_buckets) /* load factor 2 (heap_n counts this flow) */
		hash_resize(c, 2 * c->n_buckets);
}

static void hash_remove(struct pcp_client *c, struct pcp_flow *f)
{
	struct pcp_flow **pp = &c->buckets[nonce_hash(f->nonce, c->n_buckets)];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	f->hnext = NULL;
	if (c->n_buckets > HASH_MIN_BUCKETS && c->heap_n < c->n_buckets / 4)
		hash_resize(c, c->n_buckets / 2);
}

/* ---------------------------------------------------------------- events */

static void client_enter(struct pcp_client *c)
{
	c->depth++;
}

static struct pcp_flow *flow_alloc(struct pcp_client *c)
{
	if (!FLOW_SLAB)
		return calloc(1, sizeof(struct pcp_flow));
	if (!c->spare) {
		struct flow_block *b = malloc(sizeof *b);
		if (!b)
			return NULL;
		b->next = c->blocks;
		c->blocks = b;
		for (size_t i = FLOW_BLOCK; i-- > 0;) {
			b->flows[i].hnext = c->spare;
			c->spare = &b->flows[i];
		}
	}
	struct pcp_flow *f = c->spare;
	c->spare = f->hnext;
	memset(f, 0, sizeof *f);
	return f;
}

static void flow_free(struct pcp_client *c, struct pcp_flow *f)
{
	free(f->filter);
	if (!FLOW_SLAB) {
		free(f);
		return;
	}
	f->hnext = c->spare;
	c->spare = f;
}

static void sweep(struct pcp_client *c)
{
	while (c->dead) {
		struct pcp_flow *f = c->dead;
		c->dead = f->hnext;
		flow_free(c, f);
	}
}

/* The outermost call returns: free what died, and tell the caller when the next
 * deadline moved before the one it knows (on_wakeup). */
static void client_leave(struct pcp_client *c)
{
	if (--c->depth)
		return;
	sweep(c);
	if (c->cfg.on_wakeup && heap_top(c) < c->told) {
		c->told = 0; /* once, until pcp_client_next_deadline() is asked again */
		c->cfg.on_wakeup(c->cfg.wakeup_arg);
	}
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
		.external_port = f->ever_mapped ? f->ext_port : 0,
		.external_addr = f->ever_mapped ? f->ext_addr : in6addr_any,
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

/* Out of the heap and the hash at once (no timer, no match); freed by the outermost
 * client_leave (readable until then). */
static void flow_kill(struct pcp_client *c, struct pcp_flow *f)
{
	if (f->dead)
		return;
	heap_remove(c, f);
	hash_remove(c, f);
	if (f->unsupp) {
		f->unsupp = false;
		c->n_unsupp--;
	}
	f->dead = true;
	f->hnext = c->dead;
	c->dead = f;
	c->stats.live_flows--;
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
	return t >= flow_expire(f) ? NEVER : t;
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
 * Callers that adjust deadline or reported right after call flow_rearm again.
 */
static void flow_transition(struct pcp_client *c, struct pcp_flow *f, enum flow_state to, uint64_t at)
{
	f->state = (uint8_t)to;
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
	flow_rearm(c, f);
}

/* Schedule after a packet of a §8.1.1 sequence went out at `now`. */
static void rtx_sent(struct pcp_client *c, struct pcp_flow *f, uint64_t now)
{
	uint64_t rt;
	if (f->tx_count == 0) {
		f->first_send = now;
		rt = jitter(c, c->cfg.irt_ms); /* RT = (1 + RAND) * IRT */
	} else {
		/* RT = 2 * RTprev + RAND * RTprev; capped: RT = (1 + RAND) * MRT */
		uint64_t prev = f->rt_ms;
		rt = 2 * prev - prev / 10 + rand_upto(c, prev / 5);
		if (rt > c->cfg.mrt_ms)
			rt = jitter(c, c->cfg.mrt_ms);
	}
	f->rt_ms = rt > UINT32_MAX ? UINT32_MAX : (uint32_t)rt;
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

static void flow_request(const struct pcp_client *c, const struct pcp_flow *f, struct pcp_msg *m, uint64_t now)
{
	memset(m, 0, sizeof *m);
	m->version = PCP_VERSION;
	m->opcode = PCP_OPCODE_MAP;
	bool del = f->state == FLOW_DELETING;
	m->lifetime = del ? 0 : f->req_lifetime; /* §15: delete = lifetime 0, same nonce */
	if (!del && f->end_ms) {
		/* Never ask for longer than the mapping is wanted (at least 1 s: 0 deletes). */
		uint64_t left = f->end_ms > now ? (f->end_ms - now + 999) / 1000 : 1;
		if (left < m->lifetime)
			m->lifetime = (uint32_t)left;
	}
	m->client_addr = c->source;              /* §7.1, §8.1: the source we send from */
	memcpy(m->nonce, f->nonce, PCP_NONCE_LEN);
	m->protocol = f->protocol;
	m->internal_port = f->internal_port;
	/* §15 (erratum 3621): a delete carries no suggestion: port 0, "no preference". */
	m->external_port = del ? 0 : f->ext_port;
	/* §11.1: "no preference" is ::ffff:0.0.0.0 for IPv4 mappings, :: for IPv6. */
	if (del || f->no_addr_pref || addr_no_preference(&f->ext_addr)) {
		/* the family of the grant or of the caller's suggestion (::ffff:0.0.0.0: an IPv4
		 * one, as NAT64 wants for an IPv6 host), else of the internal address */
		const struct in6_addr *fam = pcp_addr_is_v4(&f->ext_addr) ? &f->ext_addr
					     : addr_is_zero(&f->internal_addr) ? &c->source
										: &f->internal_addr;
		memset(&m->external_addr, 0, sizeof m->external_addr);
		if (pcp_addr_is_v4(fam)) {
			m->external_addr.s6_addr[10] = 0xff;
			m->external_addr.s6_addr[11] = 0xff;
		}
	} else {
		m->external_addr = f->ext_addr;
	}
	if (f->third_party) { /* §13.1 */
		m->has_third_party = true;
		m->third_party = f->internal_addr;
	}
	if (!del) {
		m->prefer_failure = f->prefer_failure; /* §13.2 */
		if (f->filter) {                       /* §13.3 */
			m->n_filters = 1;
			m->filters[0] = *f->filter;
		}
	}
}

/* ---------------------------------------------------------------- client */

struct pcp_client *pcp_client_new(const struct pcp_client_config *cfg)
{
	struct pcp_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->buckets = calloc(HASH_MIN_BUCKETS, sizeof *c->buckets);
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->n_buckets = HASH_MIN_BUCKETS;
	if (cfg)
		c->cfg = *cfg;
	if (!c->cfg.irt_ms)
		c->cfg.irt_ms = PCP_IRT_MS;
	if (!c->cfg.mrt_ms)
		c->cfg.mrt_ms = PCP_MRT_MS;
	if (!c->cfg.announce_spread_ms)
		c->cfg.announce_spread_ms = PCP_ANNOUNCE_SPREAD_MS;
	if (!c->cfg.random) {
		c->cfg.random = random_default;
		c->cfg.random_arg = NULL;
	}
	c->told = NEVER;
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
	for (size_t i = 0; i < c->heap_n; i++)
		flow_free(c, c->heap[i]);
	sweep(c);
	while (c->blocks) {
		struct flow_block *b = c->blocks;
		c->blocks = b->next;
		free(b);
	}
	free(c->heap);
	free(c->buckets);
	free(c);
}

void pcp_client_set_wakeup(struct pcp_client *c, void (*cb)(void *arg), void *arg)
{
	if (!c)
		return;
	c->cfg.on_wakeup = cb;
	c->cfg.wakeup_arg = arg;
	c->told = NEVER;
	if (cb && c->depth == 0 && heap_top(c) < c->told) {
		c->told = 0;
		cb(arg);
	}
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
	bulk_begin(c);
	for (size_t i = 0; i < c->heap_n; i++) {
		struct pcp_flow *f = c->heap[i];
		if (f->ever_mapped) /* another CGN: its addresses differ; keep asking for the port */
			f->no_addr_pref = true;
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
		default:
			abort();
		}
		flow_rearm(c, f);
	}
	bulk_end(c);
	client_leave(c);
}

/* ---------------------------------------------------------------- flows */

struct pcp_flow *pcp_flow_map(struct pcp_client *c, const struct pcp_map_params *p, void *user, uint64_t now)
{
	if (!c || !p || p->lifetime == 0 || p->n_filters > PCP_FLOW_MAX_FILTERS)
		return NULL;
	if (p->protocol == 0 && p->internal_port != 0) /* §11.1: all protocols => port 0 */
		return NULL;
	if (p->n_filters && p->filters[0].prefix_len > 128)
		return NULL;

	struct pcp_flow *f = flow_alloc(c);
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
	f->ext_port = p->suggested_port;
	f->ext_addr = p->suggested_addr;
	f->req_lifetime = p->lifetime;
	f->prefer_failure = p->prefer_failure;
	f->third_party = p->third_party;
	if (p->n_filters) {
		f->filter = malloc(sizeof *f->filter);
		if (!f->filter) {
			flow_free(c, f);
			return NULL;
		}
		*f->filter = p->filters[0];
	}
	f->due = NEVER;

	client_enter(c);
	if (!heap_insert(c, f)) {
		flow_free(c, f);
		client_leave(c);
		return NULL;
	}
	hash_insert(c, f);
	c->stats.live_flows++;
	flow_transition(c, f, FLOW_REQUESTING, now);
	f->deadline = p->answer_deadline_ms ? now + p->answer_deadline_ms : NEVER;
	flow_rearm(c, f);
	client_leave(c);
	return f;
}

void pcp_flow_set_lifetime(struct pcp_client *c, struct pcp_flow *f, uint32_t lifetime)
{
	(void)c;
	if (f && !f->dead && lifetime)
		f->req_lifetime = lifetime;
}

void pcp_flow_set_end(struct pcp_client *c, struct pcp_flow *f, uint64_t end_ms)
{
	(void)c;
	if (f && !f->dead)
		f->end_ms = end_ms;
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
		flow_rearm(c, f);
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
	bulk_begin(c);
	for (size_t i = 0; i < c->heap_n; i++)
		pcp_flow_refresh(c, c->heap[i], now);
	bulk_end(c);
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
	flow_rearm(c, f);
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
	return f->state < FLOW_STATE_COUNT ? flow_state_names[f->state] : "?";
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
		flow_rearm(c, f);
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
	if (f->state == FLOW_REMAPPING && !f->reported && flow_expire(f) <= now) {
		/* the old grant ran out while re-creating it: report once, keep re-sending */
		f->reported = true;
		flow_rearm(c, f);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	if (f->state == FLOW_MAPPED && flow_expire(f) <= now) {
		/* the grant ran out with no renewal answered: re-create per §8.1.1 */
		flow_transition(c, f, FLOW_REMAPPING, now);
		f->reported = true;
		flow_rearm(c, f);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, 0, true, 0, false);
		reach_set(c, false);
		return true;
	}
	return false;
}

uint64_t pcp_client_next_deadline(struct pcp_client *c)
{
	if (!c)
		return NEVER;
	c->told = heap_top(c); /* arms on_wakeup against what the caller now knows */
	return c->told;
}

/* The plain formula of the first version (every timer of every state), independent of
 * flow_due(): the two must agree given the invariants of flow_transition(). */
static uint64_t flow_scan_deadline(const struct pcp_flow *f)
{
	uint64_t t = f->next_send;
	if (f->deadline < t)
		t = f->deadline;
	if (f->giveup_at < t)
		t = f->giveup_at;
	if ((f->state == FLOW_MAPPED || (f->state == FLOW_REMAPPING && !f->reported)) && flow_expire(f) < t)
		t = flow_expire(f);
	return t;
}

bool pcp_client_check(const struct pcp_client *c, uint64_t *scan)
{
	if (!c)
		return false;
	uint64_t t = NEVER;
	size_t chained = 0, unsupp = 0;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (const struct pcp_flow *f = c->buckets[i]; f; f = f->hnext) {
			if (f->dead || nonce_hash(f->nonce, c->n_buckets) != i || f->heap_idx >= c->heap_n ||
			    c->heap[f->heap_idx] != f)
				return false;
			chained++;
		}
	if (chained != c->heap_n || c->stats.live_flows != c->heap_n)
		return false;
	for (size_t i = 0; i < c->heap_n; i++) {
		const struct pcp_flow *f = c->heap[i];
		if (f->dead || f->heap_idx != i || f->due != flow_due(f) || f->due != flow_scan_deadline(f))
			return false;
		if (i > 0 && c->heap[(i - 1) / 2]->due > f->due)
			return false;
		unsupp += f->unsupp;
		if (f->due < t)
			t = f->due;
	}
	if (unsupp != c->n_unsupp)
		return false;
	for (const struct pcp_flow *f = c->dead; f; f = f->hnext)
		if (!f->dead)
			return false;
	if (scan)
		*scan = t;
	return true;
}

/* The flow's packet is due: build it (when a server is set) and advance its schedule.
 * Returns the packet length, 0 when nothing was written. */
static size_t flow_send(struct pcp_client *c, struct pcp_flow *f, uint8_t *buf, size_t cap, uint64_t now)
{
	size_t len = 0;
	if (f->state == FLOW_FAILED) {
		/* retry after a short-lived error's Lifetime (§7.4) or UNSUPP_VERSION (§9) */
		flow_transition(c, f, f->ever_mapped ? FLOW_REMAPPING : FLOW_REQUESTING, now);
		f->reported = true;
	}
	if (c->has_server) {
		struct pcp_msg m;
		flow_request(c, f, &m, now);
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
	flow_rearm(c, f);
	return len;
}

size_t pcp_client_output(struct pcp_client *c, uint8_t *buf, size_t cap, uint64_t now)
{
	if (!c || !buf || cap < PCP_MAX_PACKET)
		return 0;
	client_enter(c);
	c->told = 0; /* the caller is pulling; it asks pcp_client_next_deadline() when done */
	size_t len = 0;
	/* Only due flows are visited: the top of the heap until it lies in the future. A
	 * flow's timers run first (events; callbacks may change any flow), then its send.
	 * Every step moves the flow's key past now, kills it or returns a packet. */
	while (!len && c->heap_n && c->heap[0]->due <= now) {
		struct pcp_flow *f = c->heap[0];
		while (!f->dead && flow_timers(c, f, now))
			;
		if (!f->dead && f->next_send <= now)
			len = flow_send(c, f, buf, cap, now);
		flow_rearm(c, f); /* a no-op unless a key went stale: never loop on one */
	}
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
	bulk_begin(c);
	for (size_t i = 0; i < c->heap_n; i++) {
		struct pcp_flow *f = c->heap[i];
		if (f == except)
			continue;
		if (f->state != FLOW_MAPPED && f->state != FLOW_REMAPPING)
			continue;
		/* A restarted server may come back with another external address (a new pool):
		 * ask for the port only, as after a server change, so the re-creation can succeed
		 * there with PREFER_FAILURE; the new address is reported with MAPPED. */
		f->no_addr_pref = true;
		flow_transition(c, f, FLOW_REMAPPING, now + (spread_ms ? rand_upto(c, spread_ms) : 0));
	}
	bulk_end(c);
	c->stats.lost_state_events++;
	struct pcp_event ev = { .type = PCP_EVENT_SERVER_LOST_STATE };
	emit(c, &ev);
}

/* A flow with an outstanding request that m answers (§8.3, §11.4), found by nonce. When
 * several flows share the nonce, the most recently created matching one. */
static struct pcp_flow *flow_match(struct pcp_client *c, const struct pcp_msg *m)
{
	for (struct pcp_flow *f = c->buckets[nonce_hash(m->nonce, c->n_buckets)]; f; f = f->hnext) {
		if (!f->awaiting || memcmp(f->nonce, m->nonce, PCP_NONCE_LEN) != 0 || f->protocol != m->protocol ||
		    f->internal_port != m->internal_port)
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

/*
 * RFC 6887 §14.2 (mapping update), §8 ("updated responses"): a MAP response that answers
 * nothing outstanding but tells of a mapping we hold. Only a flow that is MAPPED with no
 * request outstanding (otherwise flow_match took it as the answer), matched exactly as
 * flow_match does (nonce, protocol, internal port, THIRD_PARTY), and only a SUCCESS that
 * changes something: another external address or port, or lifetime 0 (the server ended
 * it). A copy of an earlier answer (same address and port) tells nothing and stays
 * UNSOLICITED, so a replay cannot stretch a grant; so do error results (a held mapping is
 * not taken away by an unsolicited error; its renewal will hear the error if it holds).
 */
static struct pcp_flow *flow_match_update(struct pcp_client *c, const struct pcp_msg *m)
{
	if (m->result != PCP_RESULT_SUCCESS)
		return NULL;
	for (struct pcp_flow *f = c->buckets[nonce_hash(m->nonce, c->n_buckets)]; f; f = f->hnext) {
		if (f->awaiting || f->state != FLOW_MAPPED || memcmp(f->nonce, m->nonce, PCP_NONCE_LEN) != 0 ||
		    f->protocol != m->protocol || f->internal_port != m->internal_port)
			continue;
		if (m->has_third_party &&
		    (!f->third_party || memcmp(&m->third_party, &f->internal_addr, sizeof m->third_party) != 0))
			continue;
		if (m->lifetime != 0 && f->ext_port == m->external_port &&
		    memcmp(&f->ext_addr, &m->external_addr, sizeof f->ext_addr) == 0)
			continue; /* nothing new: a duplicate or a replay */
		return f;
	}
	return NULL;
}

/*
 * §14.2: apply an update flow_match_update() accepted. Same port: the mapping the caller
 * knows lives on (another address): a new grant, MAPPED (renewal = true), the renewal
 * schedule restarts from it. Another port: the mapping the caller knows is gone; the flow
 * now holds the new port (renewals keep it) and RENEW_FAILED (result 0) says so, as for a
 * renewal answered with another port. Lifetime 0: the server ended the mapping; as after
 * an expiry, RENEW_FAILED (timeout) and the flow re-creates it at once with the same
 * nonce, the port suggested and no address (the server's addresses may have changed).
 */
static void flow_update(struct pcp_client *c, struct pcp_flow *f, const struct pcp_msg *m, uint64_t now)
{
	c->stats.updates++;
	f->granted_at = now;
	if (m->lifetime == 0) {
		f->lifetime = 0; /* ended now (pcp_flow_expires) */
		f->no_addr_pref = true;
		flow_transition(c, f, FLOW_REMAPPING, now);
		f->reported = true;
		flow_rearm(c, f);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, 0, true, 0, false);
		return;
	}
	bool moved = f->ext_port != m->external_port;
	f->lifetime = m->lifetime;
	f->ext_port = m->external_port;
	f->ext_addr = m->external_addr;
	flow_transition(c, f, FLOW_MAPPED, now);
	emit_flow(c, f, moved ? PCP_EVENT_RENEW_FAILED : PCP_EVENT_MAPPED, 0, false, m->lifetime, true);
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
		/* Another port, or another address where we suggested one, is not the mapping
		 * we hold (§11.2.1). Asked without an address preference (a new or restarted
		 * server), a new address is the answer, not a failure. */
		bool moved = renewal && (f->ext_port != m->external_port ||
					 (!f->no_addr_pref &&
					  memcmp(&f->ext_addr, &m->external_addr, sizeof f->ext_addr) != 0));
		f->ever_mapped = true;
		f->lifetime = m->lifetime;
		f->granted_at = now;
		/* §11.2.1: renewals suggest what was assigned */
		f->ext_port = m->external_port;
		f->ext_addr = m->external_addr;
		f->no_addr_pref = false;
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
	/* §9: a server without version 2 may be upgraded; ask again much later */
	uint64_t retry = m->result == PCP_RESULT_UNSUPP_VERSION ? now + PCP_UNSUPP_VERSION_RETRY_MS : NEVER;
	switch (f->state) {
	case FLOW_MAPPED:
		if (m->result == PCP_RESULT_CANNOT_PROVIDE_EXTERNAL && f->prefer_failure && !f->no_addr_pref &&
		    !addr_no_preference(&f->ext_addr)) {
			/* The renewal suggested the address we hold. A carrier that renumbered
			 * its pool refuses it; its update (§14.2) may have been lost on the way.
			 * Ask again at once for the port alone (PREFER_FAILURE still holds the
			 * port the LAN host was told); the grant stands meanwhile. A second
			 * refusal is reported. */
			f->no_addr_pref = true;
			f->next_send = now;
			flow_rearm(c, f);
			return;
		}
		if (short_lived) {
			/* keep the grant; next renewal no earlier than the error lifetime */
			uint64_t t = now + wait;
			if (t < f->next_send)
				t = f->next_send;
			f->next_send = t >= flow_expire(f) ? NEVER : t;
			flow_rearm(c, f);
			return;
		}
		flow_transition(c, f, FLOW_FAILED, retry);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, m->result, false, m->lifetime, false);
		return;
	case FLOW_REMAPPING:
		if (short_lived) {
			flow_transition(c, f, FLOW_REMAPPING, now + wait);
			return;
		}
		flow_transition(c, f, FLOW_FAILED, retry);
		emit_flow(c, f, PCP_EVENT_RENEW_FAILED, m->result, false, m->lifetime, false);
		return;
	default:
		flow_transition(c, f, FLOW_FAILED, short_lived ? now + wait : retry);
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

static bool from_server(const struct pcp_client *c, const struct in6_addr *from, uint16_t from_port)
{
	return c->has_server && memcmp(from, &c->server, sizeof *from) == 0 && from_port == c->server_port;
}

/*
 * RFC 6887 §9: the server answered UNSUPP_VERSION in a form we cannot match to one
 * request (another version, NAT-PMP, a bare header): every request outstanding at it
 * fails. Flows are marked first, then answered one by one; event callbacks may change
 * any flow (and the heap order) meanwhile, so passes repeat until no mark is left.
 */
static enum pcp_err input_unsupp(struct pcp_client *c, uint64_t now)
{
	for (size_t i = 0; i < c->heap_n; i++) {
		struct pcp_flow *f = c->heap[i];
		if (f->awaiting && !f->unsupp) {
			f->unsupp = true;
			c->n_unsupp++;
		}
	}
	if (!c->n_unsupp)
		return drop(c, PCP_ERR_UNSOLICITED);
	c->unanswered_since = NEVER; /* it answered: alive, if useless (RFC 7488 failover) */
	c->last_response_at = now;
	struct pcp_msg m = { .version = PCP_VERSION, .response = true, .opcode = PCP_OPCODE_MAP,
			     .result = PCP_RESULT_UNSUPP_VERSION };
	while (c->n_unsupp) {
		for (size_t i = 0; i < c->heap_n; i++) {
			struct pcp_flow *f = c->heap[i];
			if (!f->unsupp)
				continue;
			f->unsupp = false;
			c->n_unsupp--;
			if (f->awaiting)
				flow_answer(c, f, &m, now);
		}
	}
	return PCP_OK;
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
	if (err != PCP_OK) {
		if (!pcp_msg_is_unsupp_version(pkt, len, NULL))
			return drop(c, err);
		if (!from_server(c, from, from_port))
			return drop(c, PCP_ERR_WRONG_SOURCE);
		client_enter(c);
		err = input_unsupp(c, now);
		client_leave(c);
		return err;
	}
	if (!m.response)
		return drop(c, PCP_ERR_RBIT);
	/* §8.3: only the server we asked may answer */
	if (!from_server(c, from, from_port)) {
		/* §14.1.3: a restarted server multicasts ANNOUNCE to ff02::1, and IPv6 gives
		 * such a datagram the server's link-local source, not the address we use. Such
		 * an ANNOUNCE only brings the re-send of every mapping forward (within 0..5 s,
		 * at most once per 5 s); it changes no Epoch or reachability state, and the
		 * server's answers to the re-sends go through every check as usual. */
		if (m.opcode == PCP_OPCODE_ANNOUNCE && c->has_server && !pcp_addr_is_v4(&c->server) &&
		    IN6_IS_ADDR_LINKLOCAL(from) && from_port == c->server_port &&
		    (c->foreign_announce_at == NEVER || now >= c->foreign_announce_at + PCP_ANNOUNCE_SPREAD_MS)) {
			c->foreign_announce_at = now;
			client_enter(c);
			lost_state(c, NULL, c->cfg.announce_spread_ms, now);
			client_leave(c);
			return PCP_OK;
		}
		return drop(c, PCP_ERR_WRONG_SOURCE);
	}

	struct pcp_flow *f = NULL, *upd = NULL;
	if (m.opcode == PCP_OPCODE_PEER)
		return drop(c, PCP_ERR_UNSOLICITED); /* we never send PEER */
	if (m.opcode == PCP_OPCODE_MAP) {
		f = flow_match(c, &m);
		if (!f)
			f = upd = flow_match_update(c, &m); /* §14.2 */
		if (!f)
			return drop(c, PCP_ERR_UNSOLICITED);
	}

	client_enter(c);
	c->unanswered_since = NEVER; /* the server is alive (RFC 7488 failover) */
	c->last_response_at = now;
	bool valid = epoch_valid(c, m.epoch, now); /* §8.5, on every response */
	c->stats.results[m.result <= PCP_RESULT_MAX ? m.result : PCP_RESULT_MAX + 1]++;
	reach_set(c, true);
	if (!valid)
		lost_state(c, f, m.opcode == PCP_OPCODE_ANNOUNCE ? c->cfg.announce_spread_ms : 0, now);
	/* a callback above may have deleted, abandoned or refreshed f */
	if (upd && !upd->dead && !upd->awaiting && upd->state == FLOW_MAPPED)
		flow_update(c, upd, &m, now);
	else if (f && !upd && !f->dead && f->awaiting)
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

bool pcp_client_epoch(const struct pcp_client *c, uint32_t *server_time, uint64_t *at)
{
	if (!c || !c->have_epoch)
		return false;
	*server_time = c->prev_server_time;
	*at = c->prev_client_ms;
	return true;
}

uint64_t pcp_flow_expires(const struct pcp_flow *f)
{
	return f ? flow_expire(f) : NEVER;
}
