/*
 * fleet.c - "Real homes over months": a fleet of home routers, each running the real
 * interworking core (iwf/core.h, with its real PCP engine and an in-memory state/ table),
 * against one model PCP server of limited capacity, all in ONE process on ONE simulated
 * clock. Measures what seed 004 §5.10 (PCP_SERVICE_WAIT: "in case of massive reboot of CP
 * routers ... PCP request bursts SHOULD be avoided") and RFC 6887 §14.1.3 (ANNOUNCE after a
 * server restart) do to the carrier. bench/fleet.md has the model, the results and the advice.
 *
 * Discrete-event simulation, no sockets, no threads, no wall clock inside:
 *  - every router is a core (iwf_core_new on its own table, nat "none") whose env gives it
 *    the simulated clock, its own seeded PRNG and a wakeup; its PCP engine's wakeup is ours
 *    too (pcp_client_set_wakeup, as the libevent adapter does);
 *  - one min-heap of routers keyed by their next deadline = min(iwf_core_next_deadline,
 *    pcp_client_next_deadline, now when woken); a router's step is what daemon.c does in
 *    one loop turn: iwf_core_run when due or woken, then drain pcp_client_output;
 *  - the network is two FIFOs (a fixed one-way delay keeps datagrams in time order): router
 *    -> server requests and server -> router responses, delivered with pcp_client_input
 *    from the server's address and port 5351;
 *  - the server: a token bucket of `capacity` requests/s (depth: `burst` ms worth of them);
 *    a request that finds no token is dropped (no queue, no answer). Every other MAP is
 *    granted: SUCCESS, the suggested port, the requested lifetime, THIRD_PARTY and
 *    PREFER_FAILURE echoed, the server's Epoch (RFC 6887 §8.5). It remembers which of each
 *    router's mappings it granted (a bitmap), and can restart (Epoch 0, bitmap cleared).
 *
 * Scenarios:
 *  powercut - every router starts at t = 0 (iwf_core_new + iwf_core_start) with M stored
 *             committed mappings; done when the server has granted all N x M.
 *  restart  - a steady state first (same start, unlimited capacity, not measured), 60 s of
 *             quiet, then at t = 0 the server restarts and every router receives one ANNOUNCE
 *             with Epoch 0; done when the server has granted all N x M again.
 *             --announce-spread W is a what-if, NOT what iwfd does: each router hears the
 *             ANNOUNCE at a random point of 0..W s instead of at once, as if the core waited
 *             RAND(0, W) before its engine's own 0..5 s (bench/fleet.md, "Recommended defaults").
 *
 * Everything is deterministic for a given --seed.
 */
#include "core.h"
#include "nat.h"
#include "pcp.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NEVER UINT64_MAX
#define T0_MS 1000000u           /* simulated monotonic ms at power-on (0 would mean "never") */
#define WALL0 1767225600         /* 2026-01-01T00:00:00Z */
#define BASE_PORT 20000          /* mapping k of a router: TCP BASE_PORT + k -> client:BASE_PORT + k */
#define MAX_MAPPINGS 4096
#define PKT_MAX 128              /* our MAP requests and answers are 84 bytes */
#define BUCKET_MS 100            /* time series resolution */
#define QUIET_MS 60000           /* restart: quiet time between the steady state and the restart */
#define BUSY_HORIZON_MS 1200000  /* a router with a timer sooner than this after the end is busy */
#define SERVER_EPOCH0 1000000u   /* the server's Epoch at t = 0 when it has not restarted */

/* ------------------------------------------------------------------ options */

enum scenario { SC_POWERCUT, SC_RESTART };

struct opts {
	uint32_t routers, mappings;
	uint32_t capacity;       /* requests/s; 0 = unlimited */
	uint32_t burst_ms;       /* token bucket depth in ms of capacity */
	uint32_t delay_ms;       /* one way */
	enum scenario scenario;
	uint32_t service_wait_s, replay_rate;
	uint64_t seed;
	uint32_t max_sim_s;
	uint32_t announce_spread_s; /* restart what-if: ANNOUNCE heard over 0..this (0 = at once) */
	const char *csv;
	bool table_row, verbose;
};

/* ------------------------------------------------------------------ the network */

struct pkt {
	uint64_t at;             /* delivery time */
	uint32_t router;
	uint16_t len;
	uint8_t data[PKT_MAX];
};

/* A ring buffer: delivery times are pushed in non-decreasing order (fixed delay). */
struct fifo {
	struct pkt *v;
	size_t head, n, cap;     /* cap is a power of two */
	size_t peak;
};

/* ------------------------------------------------------------------ routers and the run */

struct sim;

struct router {
	struct sim *sim;
	struct iwf_core *core;
	struct state_table *table;
	struct pcp_client *pcp;
	uint64_t prng;
	uint64_t due;            /* heap key */
	uint32_t heap_idx;
	uint32_t idx;
	bool core_wake;          /* env.wakeup since the last iwf_core_run */
};

/* When each router hears the ANNOUNCE (restart), sorted by time. */
struct announce_at {
	uint64_t at;
	uint32_t router;
};

enum series_kind { SER_OFFERED, SER_DROPPED, SER_GRANTED };

struct series {
	uint32_t *offered, *dropped, *granted;  /* per BUCKET_MS since t_ref */
	size_t n, cap;
};

struct sim {
	struct opts o;
	uint64_t now;
	struct router *r;
	uint32_t *heap;
	size_t heap_n;
	struct router *active;   /* the router being stepped (its wakeups need no heap move) */
	struct fifo up, down;
	struct announce_at *ann;
	size_t ann_n, ann_next;
	struct iwf_nat *nat;
	struct in6_addr srv_addr;

	/* server */
	uint32_t epoch_base;
	uint64_t epoch_t0;
	bool unlimited;
	double tokens, depth;
	uint64_t tokens_at;
	uint8_t *bits;           /* granted mappings, bytes_per_router per router */
	size_t bytes_per_router;
	uint64_t granted, target;

	/* measurement (from t_ref) */
	bool measuring;
	uint64_t t_ref;
	uint64_t n50, n99;
	uint64_t t50, t99, t100; /* ms after t_ref; NEVER = not reached */
	uint64_t sent_map, sent_delete, sent_other, arrived, dropped, dup_grants, bad_requests;
	uint64_t sent_after_100;
	uint64_t first_arrival, last_arrival;
	uint64_t retransmitted0; /* sum of the engines' retransmitted counters at t_ref */
	double cpu_ref;          /* process CPU seconds at t_ref */
	struct series ser;

	/* anomalies */
	uint64_t input_rejects, upnp_answers, log_err, log_warn, stuck;
	uint64_t core_runs, steps;  /* iwf_core_run calls, router loop turns (from t_ref) */
	unsigned log_printed;
};

/* ------------------------------------------------------------------ small helpers */

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fleet: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS or VmHWM of this process, KiB (0 when unknown). */
static uint64_t proc_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	char line[256];
	uint64_t v = 0;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *end;
			errno = 0;
			unsigned long long x = strtoull(line + kl + 1, &end, 10);
			if (!errno && end != line + kl + 1)
				v = x;
			break;
		}
	}
	fclose(f);
	return v;
}

static void v4(struct in6_addr *out, uint32_t host_order)
{
	struct in_addr a = {.s_addr = htonl(host_order)};
	pcp_addr_from_v4(out, &a);
}

static void router_addr(struct in6_addr *out, uint32_t idx)
{
	v4(out, 0x0a000000u + idx + 1); /* 10.0.0.1, 10.0.0.2, ... */
}

static void router_ext_addr(struct in6_addr *out, uint32_t idx)
{
	v4(out, 0xcb007100u + 1 + idx % 250); /* 203.0.113.1..250: the CGN's pool */
}

static void client_addr(struct in6_addr *out, uint32_t k)
{
	v4(out, 0xc0a8010au + k % 50); /* 192.168.1.10..59 */
}

/* ------------------------------------------------------------------ FIFOs */

static void fifo_push(struct fifo *q, uint64_t at, uint32_t router, const uint8_t *data, size_t len)
{
	if (len > PKT_MAX)
		die("a %zu-byte datagram: raise PKT_MAX", len);
	if (q->n == q->cap) {
		size_t ncap = q->cap ? 2 * q->cap : 1024;
		struct pkt *nv = xcalloc(ncap, sizeof(*nv));
		for (size_t i = 0; i < q->n; i++)
			nv[i] = q->v[(q->head + i) & (q->cap - 1)];
		free(q->v);
		q->v = nv;
		q->cap = ncap;
		q->head = 0;
	}
	struct pkt *p = &q->v[(q->head + q->n) & (q->cap - 1)];
	p->at = at;
	p->router = router;
	p->len = (uint16_t)len;
	memcpy(p->data, data, len);
	if (++q->n > q->peak)
		q->peak = q->n;
}

static const struct pkt *fifo_front(const struct fifo *q)
{
	return q->n ? &q->v[q->head] : NULL;
}

static void fifo_pop(struct fifo *q)
{
	q->head = (q->head + 1) & (q->cap - 1);
	q->n--;
}

static void fifo_release(struct fifo *q)
{
	free(q->v);
	q->v = NULL;
	q->head = q->n = q->cap = 0;
}

/* ------------------------------------------------------------------ router heap */

static bool heap_less(const struct sim *s, uint32_t a, uint32_t b)
{
	return s->r[a].due < s->r[b].due || (s->r[a].due == s->r[b].due && a < b);
}

static void heap_put(struct sim *s, size_t i, uint32_t r)
{
	s->heap[i] = r;
	s->r[r].heap_idx = (uint32_t)i;
}

static void heap_up(struct sim *s, size_t i)
{
	uint32_t r = s->heap[i];
	while (i > 0 && heap_less(s, r, s->heap[(i - 1) / 2])) {
		heap_put(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_put(s, i, r);
}

static void heap_down(struct sim *s, size_t i)
{
	uint32_t r = s->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_n)
			break;
		if (c + 1 < s->heap_n && heap_less(s, s->heap[c + 1], s->heap[c]))
			c++;
		if (!heap_less(s, s->heap[c], r))
			break;
		heap_put(s, i, s->heap[c]);
		i = c;
	}
	heap_put(s, i, r);
}

static void router_set_due(struct sim *s, struct router *r, uint64_t due)
{
	uint64_t old = r->due;
	r->due = due;
	if (due < old)
		heap_up(s, r->heap_idx);
	else if (due > old)
		heap_down(s, r->heap_idx);
}

/* ------------------------------------------------------------------ the routers' env */

static uint64_t env_mono(void *arg)
{
	return ((struct router *)arg)->sim->now;
}

static int64_t env_wall(void *arg)
{
	return WALL0 + (int64_t)(((struct router *)arg)->sim->now / 1000);
}

static uint64_t clock_mono(void *arg)
{
	return ((struct sim *)arg)->now;
}

static int64_t clock_wall(void *arg)
{
	return WALL0 + (int64_t)(((struct sim *)arg)->now / 1000);
}

static void env_random(void *arg, void *buf, size_t len)
{
	struct router *r = arg;
	uint8_t *p = buf;
	while (len) {
		uint64_t x = splitmix64(&r->prng);
		size_t k = len < 8 ? len : 8;
		memcpy(p, &x, k);
		p += k;
		len -= k;
	}
}

static void env_reply(void *arg, struct upnp_call *call, const struct upnp_reply *reply)
{
	(void)call;
	(void)reply;
	((struct router *)arg)->sim->upnp_answers++; /* there are no UPnP calls: must stay 0 */
}

static void env_error(void *arg, struct upnp_call *call, enum upnp_error code)
{
	(void)call;
	(void)code;
	((struct router *)arg)->sim->upnp_answers++;
}

static void env_set_state(void *arg, const struct upnp_state *st)
{
	(void)arg;
	(void)st;
}

/* Step the router soon: at once when it is not being stepped already. */
static void router_kick(struct router *r)
{
	struct sim *s = r->sim;
	if (s->active != r && r->due > s->now)
		router_set_due(s, r, s->now);
}

static void env_wakeup(void *arg)
{
	struct router *r = arg;
	r->core_wake = true;
	router_kick(r);
}

static void pcp_wakeup(void *arg)
{
	router_kick(arg);
}

__attribute__((format(printf, 3, 0)))
static void env_log(void *arg, enum iwf_log_level level, const char *fmt, va_list ap)
{
	struct router *r = arg;
	struct sim *s = r->sim;
	if (level == IWF_LOG_ERROR)
		s->log_err++;
	else if (level == IWF_LOG_WARN)
		s->log_warn++;
	if (s->o.verbose && s->log_printed < 3) {
		s->log_printed++;
		fprintf(stderr, "  [%9.3f s] router %u: ", (double)(s->now - T0_MS) / 1000.0, r->idx);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

/* ------------------------------------------------------------------ measurement */

static void series_add(struct sim *s, uint64_t at, enum series_kind what)
{
	if (!s->measuring || at < s->t_ref)
		return;
	size_t b = (size_t)((at - s->t_ref) / BUCKET_MS);
	struct series *z = &s->ser;
	if (b >= z->cap) {
		size_t ncap = z->cap ? z->cap : 1024;
		while (ncap <= b)
			ncap *= 2;
		uint32_t **arrs[3] = {&z->offered, &z->dropped, &z->granted};
		for (int i = 0; i < 3; i++) {
			uint32_t *nv = realloc(*arrs[i], ncap * sizeof(uint32_t));
			if (!nv)
				die("out of memory (series)");
			memset(nv + z->cap, 0, (ncap - z->cap) * sizeof(uint32_t));
			*arrs[i] = nv;
		}
		z->cap = ncap;
	}
	if (b + 1 > z->n)
		z->n = b + 1;
	switch (what) {
	case SER_OFFERED:
		z->offered[b]++;
		break;
	case SER_DROPPED:
		z->dropped[b]++;
		break;
	case SER_GRANTED:
		z->granted[b]++;
		break;
	}
}

/* ------------------------------------------------------------------ one router's loop turn */

static void router_send(struct sim *s, struct router *r, const uint8_t *buf, size_t len)
{
	fifo_push(&s->up, s->now + s->o.delay_ms, r->idx, buf, len);
	if (!s->measuring)
		return;
	/* RFC 6887 §7.1: byte 1 = R | opcode; bytes 4..7 = requested lifetime */
	uint32_t lifetime = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
	if ((buf[1] & 0x7f) != PCP_OPCODE_MAP)
		s->sent_other++;
	else if (lifetime)
		s->sent_map++;
	else
		s->sent_delete++;
	if (s->t100 != NEVER)
		s->sent_after_100++;
}

/* What daemon.c does in one loop turn: the core's timers when due or asked for, then
 * every datagram its PCP engine has ready; then re-arm the router's one timer. */
static void router_step(struct sim *s, struct router *r)
{
	uint8_t buf[PCP_MAX_PACKET];
	s->active = r;
	s->steps += s->measuring;
	for (unsigned guard = 0;; guard++) {
		if (guard > 1000)
			die("router %u busy-loops at %.3f s", r->idx, (double)(s->now - T0_MS) / 1000.0);
		bool did = false;
		if (r->core_wake || iwf_core_next_deadline(r->core) <= s->now) {
			r->core_wake = false;
			iwf_core_run(r->core);
			s->core_runs += s->measuring;
			did = true;
		}
		size_t len;
		while ((len = pcp_client_output(r->pcp, buf, sizeof(buf), s->now)) > 0) {
			router_send(s, r, buf, len);
			did = true;
		}
		if (!did)
			break;
	}
	s->active = NULL;
	uint64_t due = iwf_core_next_deadline(r->core), d = pcp_client_next_deadline(r->pcp);
	if (d < due)
		due = d;
	if (due <= s->now) {
		s->stuck++; /* a deadline iwf_core_run does not move: would busy-loop a daemon */
		due = s->now + 1;
	}
	router_set_due(s, r, due);
}

static void router_input(struct sim *s, struct router *r, const uint8_t *data, size_t len)
{
	s->active = r;
	if (pcp_client_input(r->pcp, data, len, &s->srv_addr, PCP_SERVER_PORT, s->now) != PCP_OK)
		s->input_rejects++;
	router_step(s, r);
}

/* ------------------------------------------------------------------ the PCP server */

static uint32_t server_epoch(const struct sim *s)
{
	return s->epoch_base + (uint32_t)((s->now - s->epoch_t0) / 1000);
}

static bool server_token(struct sim *s)
{
	if (s->unlimited)
		return true;
	s->tokens += (double)(s->now - s->tokens_at) * s->o.capacity / 1000.0;
	s->tokens_at = s->now;
	if (s->tokens > s->depth)
		s->tokens = s->depth;
	if (s->tokens < 1.0)
		return false;
	s->tokens -= 1.0;
	return true;
}

static void server_grant(struct sim *s, uint32_t router, uint32_t k)
{
	uint8_t *b = &s->bits[(size_t)router * s->bytes_per_router + k / 8];
	uint8_t bit = (uint8_t)(1u << (k % 8));
	if (*b & bit) {
		s->dup_grants++;
		return;
	}
	*b |= bit;
	s->granted++;
	series_add(s, s->now, SER_GRANTED);
	if (!s->measuring)
		return;
	uint64_t t = s->now - s->t_ref;
	if (s->granted == s->n50)
		s->t50 = t;
	if (s->granted == s->n99)
		s->t99 = t;
	if (s->granted == s->target)
		s->t100 = t;
}

/* RFC 6887 §11.3, the little a model needs: grant the suggested port for the requested
 * lifetime, delete on lifetime 0; answer with the options it understood (§13). */
static void server_request(struct sim *s, const struct pkt *p)
{
	if (s->measuring) {
		s->arrived++;
		if (s->first_arrival == NEVER)
			s->first_arrival = s->now;
		s->last_arrival = s->now;
		series_add(s, s->now, SER_OFFERED);
	}
	if (!server_token(s)) {
		if (s->measuring) {
			s->dropped++;
			series_add(s, s->now, SER_DROPPED);
		}
		return;
	}
	struct pcp_msg q;
	struct in6_addr src;
	router_addr(&src, p->router);
	if (pcp_msg_decode(p->data, p->len, &q) != PCP_OK || q.response || q.opcode != PCP_OPCODE_MAP ||
	    memcmp(&q.client_addr, &src, sizeof(src)) != 0) {
		s->bad_requests++;
		return;
	}
	struct pcp_msg a;
	memset(&a, 0, sizeof(a));
	a.version = PCP_VERSION;
	a.response = true;
	a.opcode = PCP_OPCODE_MAP;
	a.result = PCP_RESULT_SUCCESS;
	a.lifetime = q.lifetime;
	a.epoch = server_epoch(s);
	memcpy(a.nonce, q.nonce, PCP_NONCE_LEN);
	a.protocol = q.protocol;
	a.internal_port = q.internal_port;
	a.has_third_party = q.has_third_party;
	a.third_party = q.third_party;
	a.prefer_failure = q.prefer_failure;
	uint32_t k = (uint32_t)q.internal_port - BASE_PORT;
	bool ours = q.internal_port >= BASE_PORT && k < s->o.mappings;
	if (q.lifetime) {
		a.external_port = q.external_port ? q.external_port : q.internal_port;
		router_ext_addr(&a.external_addr, p->router);
		if (ours)
			server_grant(s, p->router, k);
		else
			s->bad_requests++; /* the core asked for something never stored */
	} else {
		if (ours) {
			uint8_t *b = &s->bits[(size_t)p->router * s->bytes_per_router + k / 8];
			*b = (uint8_t)(*b & ~(1u << (k % 8)));
		}
		a.external_addr = q.external_addr;
	}
	uint8_t buf[PCP_MAX_PACKET];
	size_t len;
	if (pcp_msg_encode(&a, buf, sizeof(buf), &len) != PCP_OK)
		die("encoding an answer failed");
	fifo_push(&s->down, s->now + s->o.delay_ms, p->router, buf, len);
}

/* ------------------------------------------------------------------ set-up */

static void fleet_new(struct sim *s)
{
	const struct opts *o = &s->o;
	char detail[256] = "";
	s->nat = iwf_nat_new("none", "", detail, sizeof(detail)); /* does nothing: shared */
	if (!s->nat)
		die("iwf_nat_new: %s", detail);
	v4(&s->srv_addr, 0xc0000201u); /* 192.0.2.1, the carrier's PCP server */

	struct iwf_config cfg;
	iwf_config_init(&cfg);
	cfg.state_file[0] = '\0';
	cfg.log_level = IWF_LOG_WARN;
	cfg.pcp_service_wait_s = o->service_wait_s;
	cfg.replay_rate = o->replay_rate;
	struct state_clock clock = {.mono_ms = clock_mono, .wall_s = clock_wall, .arg = s};

	s->r = xcalloc(o->routers, sizeof(*s->r));
	s->heap = xcalloc(o->routers, sizeof(*s->heap));
	s->bytes_per_router = (o->mappings + 7) / 8;
	s->bits = xcalloc((size_t)o->routers * s->bytes_per_router, 1);
	s->target = (uint64_t)o->routers * o->mappings;
	s->n50 = (s->target + 1) / 2;
	s->n99 = (s->target * 99 + 99) / 100;

	for (uint32_t i = 0; i < o->routers; i++) {
		struct router *r = &s->r[i];
		r->sim = s;
		r->idx = i;
		r->prng = o->seed * 0x100000001b3ull ^ ((uint64_t)i << 20);
		(void)splitmix64(&r->prng);
		r->due = NEVER;
		heap_put(s, i, i);
		s->heap_n++;
		r->table = state_table_new(&clock);
		if (!r->table)
			die("state_table_new: out of memory at router %u", i);
		struct in6_addr ext;
		router_ext_addr(&ext, i);
		for (uint32_t k = 0; k < o->mappings; k++) {
			/* a committed record as the journal would restore it (seed 004 §5.4) */
			struct state_mapping m;
			memset(&m, 0, sizeof(m));
			m.protocol = 6;
			m.flags = STATE_F_ENABLED;
			m.external_port = (uint16_t)(BASE_PORT + k);
			m.internal_port = (uint16_t)(BASE_PORT + k);
			client_addr(&m.internal_client, k);
			m.owner = m.internal_client;
			m.external_addr = ext;
			env_random(r, m.nonce, sizeof(m.nonce));
			m.description = "fleet";
			if (state_table_add(r->table, &m, NULL) != STATE_OK)
				die("state_table_add failed at router %u", i);
		}
		struct iwf_env env = {
			.mono_ms = env_mono,
			.wall_s = env_wall,
			.random = env_random,
			.reply = env_reply,
			.error = env_error,
			.set_state = env_set_state,
			.wakeup = env_wakeup,
			.log = env_log,
			.arg = r,
		};
		r->core = iwf_core_new(&cfg, &env, r->table, s->nat);
		if (!r->core)
			die("iwf_core_new: out of memory at router %u", i);
		r->pcp = iwf_core_pcp(r->core);
		struct in6_addr src;
		router_addr(&src, i);
		pcp_client_set_source(r->pcp, &src);
		pcp_client_set_server(r->pcp, &s->srv_addr, PCP_SERVER_PORT, s->now);
		pcp_client_set_wakeup(r->pcp, pcp_wakeup, r);
	}
}

static void fleet_free(struct sim *s)
{
	for (uint32_t i = 0; i < s->o.routers; i++) {
		iwf_core_free(s->r[i].core);
		state_table_free(s->r[i].table);
	}
	iwf_nat_free(s->nat);
	free(s->r);
	free(s->heap);
	free(s->bits);
	free(s->ann);
	free(s->ser.offered);
	free(s->ser.dropped);
	free(s->ser.granted);
	fifo_release(&s->up);
	fifo_release(&s->down);
}

/* ------------------------------------------------------------------ the event loop */

static bool done(const struct sim *s)
{
	return s->granted >= s->target && !s->up.n && !s->down.n && s->ann_next == s->ann_n;
}

/* RFC 6887 §14.1.3: ANNOUNCE = an opcode-0 response, SUCCESS, the server's Epoch now. */
static void announce(struct sim *s, uint32_t router)
{
	struct pcp_msg a;
	memset(&a, 0, sizeof(a));
	a.version = PCP_VERSION;
	a.response = true;
	a.opcode = PCP_OPCODE_ANNOUNCE;
	a.epoch = server_epoch(s);
	uint8_t buf[PCP_MAX_PACKET];
	size_t len;
	if (pcp_msg_encode(&a, buf, sizeof(buf), &len) != PCP_OK)
		die("encoding ANNOUNCE failed");
	router_input(s, &s->r[router], buf, len);
}

static int announce_cmp(const void *a, const void *b)
{
	const struct announce_at *x = a, *y = b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->router < y->router ? -1 : x->router > y->router;
}

/* Run events until `until` (inclusive) or, with stop, until done(). Order at one instant:
 * answers reach routers, requests reach the server, due routers step. */
static void sim_run(struct sim *s, uint64_t until, bool stop)
{
	for (;;) {
		if (stop && done(s))
			return;
		uint64_t t = NEVER;
		const struct pkt *p;
		if ((p = fifo_front(&s->down)) && p->at < t)
			t = p->at;
		if ((p = fifo_front(&s->up)) && p->at < t)
			t = p->at;
		if (s->heap_n && s->r[s->heap[0]].due < t)
			t = s->r[s->heap[0]].due;
		if (s->ann_next < s->ann_n && s->ann[s->ann_next].at < t)
			t = s->ann[s->ann_next].at;
		if (t == NEVER || t > until) {
			if (until != NEVER && s->now < until)
				s->now = until;
			return;
		}
		if (t > s->now)
			s->now = t;
		while ((p = fifo_front(&s->down)) && p->at <= s->now) {
			struct pkt copy = *p;
			fifo_pop(&s->down);
			router_input(s, &s->r[copy.router], copy.data, copy.len);
		}
		while ((p = fifo_front(&s->up)) && p->at <= s->now) {
			struct pkt copy = *p;
			fifo_pop(&s->up);
			server_request(s, &copy);
		}
		while (s->ann_next < s->ann_n && s->ann[s->ann_next].at <= s->now)
			announce(s, s->ann[s->ann_next++].router);
		while (s->heap_n && s->r[s->heap[0]].due <= s->now)
			router_step(s, &s->r[s->heap[0]]);
	}
}

static uint64_t sum_retransmitted(const struct sim *s)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < s->o.routers; i++) {
		struct pcp_client_stats st;
		pcp_client_get_stats(s->r[i].pcp, &st);
		n += st.retransmitted;
	}
	return n;
}

static void measure_from(struct sim *s, uint64_t t)
{
	s->measuring = true;
	s->t_ref = t;
	s->t50 = s->t99 = s->t100 = NEVER;
	s->first_arrival = NEVER;
	s->last_arrival = 0;
	s->retransmitted0 = sum_retransmitted(s);
	s->core_runs = s->steps = 0;
	s->cpu_ref = cpu_s();
}

static void start_all(struct sim *s)
{
	for (uint32_t i = 0; i < s->o.routers; i++) {
		struct router *r = &s->r[i];
		s->active = r;
		iwf_core_start(r->core);
		router_step(s, r);
	}
}

static void scenario_powercut(struct sim *s)
{
	s->unlimited = s->o.capacity == 0;
	s->epoch_base = SERVER_EPOCH0;
	s->epoch_t0 = s->now;
	measure_from(s, s->now);
	start_all(s);
	sim_run(s, s->t_ref + (uint64_t)s->o.max_sim_s * 1000, true);
}

static void scenario_restart(struct sim *s)
{
	/* the steady state: everything mapped, nothing measured */
	s->unlimited = true;
	s->epoch_base = SERVER_EPOCH0;
	s->epoch_t0 = s->now;
	start_all(s);
	sim_run(s, NEVER, true);
	uint64_t t0 = (s->now + QUIET_MS) / 1000 * 1000;
	sim_run(s, t0, false);
	s->now = t0;

	/* the server restarts (RFC 6887 §8.5: Epoch from 0, its mappings gone) and announces
	 * it (§14.1.3: ANNOUNCE = opcode 0 response, SUCCESS, the new Epoch) to every router */
	memset(s->bits, 0, (size_t)s->o.routers * s->bytes_per_router);
	s->granted = 0;
	s->epoch_base = 0;
	s->epoch_t0 = t0;
	s->unlimited = s->o.capacity == 0;
	s->tokens = s->depth;
	s->tokens_at = t0;
	measure_from(s, t0);
	s->ann = xcalloc(s->o.routers, sizeof(*s->ann));
	uint64_t x = s->o.seed ^ 0xa11c0ffeeull;
	for (uint32_t i = 0; i < s->o.routers; i++) {
		uint64_t spread = (uint64_t)s->o.announce_spread_s * 1000;
		s->ann[i].at = t0 + (spread ? splitmix64(&x) % (spread + 1) : 0);
		s->ann[i].router = i;
	}
	qsort(s->ann, s->o.routers, sizeof(*s->ann), announce_cmp);
	s->ann_n = s->o.routers;
	s->ann_next = 0;
	sim_run(s, s->t_ref + (uint64_t)s->o.max_sim_s * 1000, true);
}

/* ------------------------------------------------------------------ report */

struct result {
	double peak_1s, peak_100ms, mean;   /* offered requests/s at the server */
	double cpu_setup, cpu_warm, cpu_run; /* creating the fleet, the restart's steady state, measured */
	double rss_setup_b, rss_end_b;      /* bytes per router */
	uint64_t hwm_kib;
	uint32_t busy;                      /* routers with a PCP/core timer due soon after the end */
	uint64_t retransmitted;
	double sim_s;
};

static double ms_s(uint64_t ms)
{
	return (double)ms / 1000.0;
}

static void fmt_time(char *buf, size_t cap, uint64_t ms)
{
	if (ms == NEVER)
		snprintf(buf, cap, "never");
	else
		snprintf(buf, cap, "%.1f s", ms_s(ms));
}

static void compute(struct sim *s, struct result *res)
{
	const struct series *z = &s->ser;
	uint64_t best1 = 0, best01 = 0;
	for (size_t b = 0; b < z->n; b++)
		if (z->offered[b] > best01)
			best01 = z->offered[b];
	size_t per = 1000 / BUCKET_MS;
	for (size_t b = 0; b < z->n; b += per) {
		uint64_t sum = 0;
		for (size_t k = b; k < b + per && k < z->n; k++)
			sum += z->offered[k];
		if (sum > best1)
			best1 = sum;
	}
	res->peak_1s = (double)best1;
	res->peak_100ms = (double)best01 * (1000.0 / BUCKET_MS);
	uint64_t span = s->t100 != NEVER ? s->t100 : s->now - s->t_ref;
	res->mean = span ? (double)s->arrived * 1000.0 / (double)span : 0;
	res->sim_s = ms_s(s->now - s->t_ref);
	res->busy = 0;
	for (uint32_t i = 0; i < s->o.routers; i++) {
		uint64_t d = iwf_core_next_deadline(s->r[i].core), e = pcp_client_next_deadline(s->r[i].pcp);
		if ((d < e ? d : e) < s->now + BUSY_HORIZON_MS)
			res->busy++;
	}
	res->retransmitted = sum_retransmitted(s) - s->retransmitted0;
}

static const char *scenario_name(enum scenario sc)
{
	return sc == SC_POWERCUT ? "powercut" : "restart";
}

/* Everything that must be zero when the core behaves (printed only when something is not). */
static void print_anomalies(FILE *f, const struct sim *s, const struct result *res)
{
	if (res->busy || s->stuck || s->input_rejects || s->upnp_answers || s->bad_requests || s->log_err ||
	    s->sent_after_100 || s->dup_grants)
		fprintf(f, "Anomalies (%s, %" PRIu32 " routers): %" PRIu32 " routers still busy after the end, %" PRIu64
			" stuck deadlines, %" PRIu64 " answers refused by engines, %" PRIu64 " UPnP completions, %" PRIu64
			" bad requests, %" PRIu64 " core errors, %" PRIu64 " requests sent after 100%%, %" PRIu64
			" duplicate grants.\n",
			scenario_name(s->o.scenario), s->o.routers, res->busy, s->stuck, s->input_rejects,
			s->upnp_answers, s->bad_requests, s->log_err, s->sent_after_100, s->dup_grants);
}

static void print_paragraph(const struct sim *s, const struct result *res)
{
	const struct opts *o = &s->o;
	char t50[32], t99[32], t100[32];
	fmt_time(t50, sizeof(t50), s->t50);
	fmt_time(t99, sizeof(t99), s->t99);
	fmt_time(t100, sizeof(t100), s->t100);
	char cap[64];
	if (o->capacity)
		snprintf(cap, sizeof(cap), "%" PRIu32 " req/s (bucket %" PRIu32 " ms)", o->capacity, o->burst_ms);
	else
		snprintf(cap, sizeof(cap), "unlimited");
	double sent = (double)s->sent_map;
	if (o->scenario == SC_RESTART && o->announce_spread_s)
		printf("[what-if: each router hears the ANNOUNCE at a random point of 0..%" PRIu32 " s] ",
		       o->announce_spread_s);
	printf("%s: %" PRIu32 " routers x %" PRIu32 " mappings, server capacity %s, one-way delay %" PRIu32
	       " ms, service_wait %" PRIu32 " s, replay_rate %" PRIu32 "/s, seed %" PRIu64 ". ",
	       scenario_name(o->scenario), o->routers, o->mappings, cap, o->delay_ms, o->service_wait_s,
	       o->replay_rate, o->seed);
	if (s->t100 != NEVER)
		printf("All %" PRIu64 " mappings back after %s (50%% at %s, 99%% at %s). ", s->target, t100, t50, t99);
	else
		printf("NOT RECOVERED: %" PRIu64 " of %" PRIu64 " mappings back after %.1f s (50%% at %s, 99%% at %s). ",
		       s->granted, s->target, res->sim_s, t50, t99);
	printf("The routers sent %" PRIu64 " MAP requests (%.3f per mapping; %" PRIu64 " retransmissions",
	       s->sent_map, s->target ? sent / (double)s->target : 0.0, res->retransmitted);
	if (s->sent_delete || s->sent_other)
		printf(", plus %" PRIu64 " deletes and %" PRIu64 " other", s->sent_delete, s->sent_other);
	printf("); the server dropped %" PRIu64 " (%.1f%%) and granted %" PRIu64 " twice. ", s->dropped,
	       s->arrived ? 100.0 * (double)s->dropped / (double)s->arrived : 0.0, s->dup_grants);
	printf("Offered load at the server: peak %.0f req/s over 1 s, %.0f req/s over 100 ms, mean %.0f req/s "
	       "until 100%%. ",
	       res->peak_1s, res->peak_100ms, res->mean);
	printf("Simulated %.1f s in %.1f s CPU (+%.1f s creating the fleet, +%.1f s reaching the steady state); RSS %.1f KiB per router with stored mappings, "
	       "%.1f KiB once mapped (peak RSS %.0f MiB).",
	       res->sim_s, res->cpu_run, res->cpu_setup, res->cpu_warm, res->rss_setup_b / 1024.0, res->rss_end_b / 1024.0,
	       (double)res->hwm_kib / 1024.0);
	printf("\n");
	if (o->verbose)
		printf("Loop turns: %" PRIu64 " router steps, %" PRIu64 " iwf_core_run calls (%.1f and %.1f per router); "
		       "%" PRIu64 " core warnings; network queues peaked at %zu requests and %zu answers in flight.\n",
		       s->steps, s->core_runs, (double)s->steps / o->routers, (double)s->core_runs / o->routers,
		       s->log_warn, s->up.peak, s->down.peak);
}

static void print_row(const struct sim *s, const struct result *res)
{
	const struct opts *o = &s->o;
	char t50[32], t99[32], t100[32], cap[32], sc[64];
	if (o->scenario == SC_RESTART && o->announce_spread_s)
		snprintf(sc, sizeof(sc), "restart, ANNOUNCE over %" PRIu32 " s (what-if)", o->announce_spread_s);
	else
		snprintf(sc, sizeof(sc), "%s", scenario_name(o->scenario));
	fmt_time(t50, sizeof(t50), s->t50);
	fmt_time(t99, sizeof(t99), s->t99);
	fmt_time(t100, sizeof(t100), s->t100);
	if (o->capacity)
		snprintf(cap, sizeof(cap), "%" PRIu32, o->capacity);
	else
		snprintf(cap, sizeof(cap), "inf");
	printf("| %s | %" PRIu32 " | %s | %" PRIu32 " | %" PRIu32 " | %.0f | %.0f | %.0f | %" PRIu64 " (%.0f%%) | %s | %s | %s"
	       " | %.2f | %.1f | %.1f | %.1f |\n",
	       sc, o->routers, cap, o->service_wait_s, o->replay_rate, res->peak_1s,
	       res->peak_100ms, res->mean, s->dropped,
	       s->arrived ? 100.0 * (double)s->dropped / (double)s->arrived : 0.0, t50, t99, t100,
	       s->target ? (double)s->sent_map / (double)s->target : 0.0, res->sim_s,
	       res->cpu_setup + res->cpu_warm + res->cpu_run,
	       res->rss_end_b / 1024.0);
}

static void print_header(void)
{
	printf("| scenario | routers | C req/s | wait s | rate /s | peak 1 s | peak 100 ms x10 | mean | dropped | "
	       "50%% | 99%% | 100%% | req/mapping | sim s | CPU s total | KiB/router |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void write_csv(const struct sim *s, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "t_s,offered,dropped,granted,granted_total\n");
	uint64_t cum = 0;
	for (size_t b = 0; b < s->ser.n; b++) {
		cum += s->ser.granted[b];
		fprintf(f, "%.1f,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu64 "\n", (double)(b * BUCKET_MS) / 1000.0,
			s->ser.offered[b], s->ser.dropped[b], s->ser.granted[b], cum);
	}
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------ command line */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fleet [--routers N] [--mappings M] [--capacity C] [--burst-ms B] [--delay-ms D]\n"
		"             [--scenario powercut|restart] [--service-wait S] [--replay-rate R] [--seed X]\n"
		"             [--max-sim-s T] [--announce-spread W] [--csv FILE] [--table-row] [--verbose]\n"
		"       fleet --table-header\n"
		"Defaults: 10000 routers, 10 mappings, capacity 20000 req/s (0 = unlimited), bucket 100 ms,\n"
		"delay 10 ms, powercut, service wait and replay rate from iwf_config_init(), seed 1, 3600 s.\n");
}

static uint64_t num(const char *opt, const char *v, uint64_t max)
{
	if (!v)
		die("%s needs a value", opt);
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || x > max)
		die("%s: not a number in 0..%" PRIu64 ": %s", opt, max, v);
	return x;
}

static void parse(struct opts *o, int argc, char **argv)
{
	struct iwf_config def;
	iwf_config_init(&def);
	*o = (struct opts){.routers = 10000, .mappings = 10, .capacity = 20000, .burst_ms = 100, .delay_ms = 10,
			   .scenario = SC_POWERCUT, .service_wait_s = def.pcp_service_wait_s,
			   .replay_rate = def.replay_rate, .seed = 1, .max_sim_s = 3600};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--routers") == 0)
			o->routers = (uint32_t)num(a, v, 10000000), i++;
		else if (strcmp(a, "--mappings") == 0)
			o->mappings = (uint32_t)num(a, v, MAX_MAPPINGS), i++;
		else if (strcmp(a, "--capacity") == 0)
			o->capacity = (uint32_t)num(a, v, 100000000), i++;
		else if (strcmp(a, "--burst-ms") == 0)
			o->burst_ms = (uint32_t)num(a, v, 60000), i++;
		else if (strcmp(a, "--delay-ms") == 0)
			o->delay_ms = (uint32_t)num(a, v, 10000), i++;
		else if (strcmp(a, "--service-wait") == 0)
			o->service_wait_s = (uint32_t)num(a, v, 86400), i++;
		else if (strcmp(a, "--replay-rate") == 0)
			o->replay_rate = (uint32_t)num(a, v, 1000000), i++;
		else if (strcmp(a, "--seed") == 0)
			o->seed = num(a, v, UINT64_MAX), i++;
		else if (strcmp(a, "--announce-spread") == 0)
			o->announce_spread_s = (uint32_t)num(a, v, 86400), i++;
		else if (strcmp(a, "--max-sim-s") == 0)
			o->max_sim_s = (uint32_t)num(a, v, 86400 * 30), i++;
		else if (strcmp(a, "--csv") == 0) {
			if (!v)
				die("--csv needs a file");
			o->csv = v;
			i++;
		} else if (strcmp(a, "--scenario") == 0) {
			if (v && strcmp(v, "powercut") == 0)
				o->scenario = SC_POWERCUT;
			else if (v && strcmp(v, "restart") == 0)
				o->scenario = SC_RESTART;
			else
				die("--scenario powercut|restart");
			i++;
		} else if (strcmp(a, "--table-row") == 0)
			o->table_row = true;
		else if (strcmp(a, "--verbose") == 0)
			o->verbose = true;
		else if (strcmp(a, "--table-header") == 0) {
			print_header();
			exit(0);
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			exit(2);
		}
	}
	if (!o->routers || !o->mappings)
		die("--routers and --mappings must be at least 1");
}

int main(int argc, char **argv)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	parse(&s->o, argc, argv);
	s->now = T0_MS;
	s->depth = (double)s->o.capacity * s->o.burst_ms / 1000.0;
	if (s->depth < 1.0)
		s->depth = 1.0;
	s->tokens = s->depth;
	s->tokens_at = s->now;

	struct result res;
	memset(&res, 0, sizeof(res));
	uint64_t rss0 = proc_kib("VmRSS");
	double c0 = cpu_s();
	fleet_new(s);
	double c1 = cpu_s();
	uint64_t rss1 = proc_kib("VmRSS");
	res.cpu_setup = c1 - c0;
	res.rss_setup_b = (double)(rss1 - rss0) * 1024.0 / s->o.routers;

	if (s->o.scenario == SC_POWERCUT)
		scenario_powercut(s);
	else
		scenario_restart(s);
	res.cpu_warm = s->cpu_ref - c1;
	res.cpu_run = cpu_s() - s->cpu_ref;
	compute(s, &res);
	fifo_release(&s->up);
	fifo_release(&s->down);
	uint64_t rss2 = proc_kib("VmRSS");
	res.rss_end_b = (double)(rss2 > rss0 ? rss2 - rss0 : 0) * 1024.0 / s->o.routers;
	res.hwm_kib = proc_kib("VmHWM");

	if (s->o.table_row)
		print_row(s, &res);
	else
		print_paragraph(s, &res);
	print_anomalies(s->o.table_row ? stderr : stdout, s, &res);
	if (s->o.csv)
		write_csv(s, s->o.csv);
	bool ok = s->t100 != NEVER;
	fleet_free(s);
	free(s);
	return ok ? 0 : 1;
}
