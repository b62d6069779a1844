/*
 * test_client.c - the sans-I/O PCP client engine under a fake clock and a scripted
 * random source: retransmission (RFC 6887 §8.1.1), renewal (§11.2.1), Epoch (§8.5),
 * ANNOUNCE (§14.1.3), response validation (§8.3), errors (§7.4), delete, re-entrancy.
 */
#include "pcp.h"
#include "../testutil.h"

#include <stdlib.h>
#include <time.h>

#define NEVER UINT64_MAX

enum rmode { R_PRNG, R_MID, R_MIN, R_MAX };

struct env {
	struct pcp_client *c;
	uint64_t now;
	enum rmode mode;
	uint64_t prng;
	struct pcp_event evs[256];
	size_t n_evs;
	size_t n_type[PCP_EVENT_REACHABILITY + 1]; /* every event, by type (evs keeps the first 256) */
	struct in6_addr server;
	uint16_t port;
	uint32_t epoch;            /* server epoch at now == 0 */
	void (*hook)(struct env *e, const struct pcp_event *ev);
	struct pcp_flow *hook_flow;
};

/* R_MID yields rand_u32 = 0x80000000 (RAND = 0), R_MIN 0 (RAND = -0.1), R_MAX ~1 (+0.1).
 * Nonces (12-byte requests) always come from the PRNG so that flows differ. */
static void t_random(void *arg, void *buf, size_t len)
{
	struct env *e = arg;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		switch (len == PCP_NONCE_LEN ? R_PRNG : e->mode) {
		case R_PRNG:
			e->prng ^= e->prng << 13;
			e->prng ^= e->prng >> 7;
			e->prng ^= e->prng << 17;
			p[i] = (uint8_t)(e->prng >> 24);
			break;
		case R_MID:
			p[i] = i % 4 == 0 ? 0x80 : 0;
			break;
		case R_MIN:
			p[i] = 0;
			break;
		case R_MAX:
			p[i] = 0xff;
			break;
		}
	}
}

static void t_event(void *arg, const struct pcp_event *ev)
{
	struct env *e = arg;
	e->n_type[ev->type]++;
	if (e->n_evs < sizeof e->evs / sizeof e->evs[0])
		e->evs[e->n_evs++] = *ev;
	if (e->hook)
		e->hook(e, ev);
}

static void env_init(struct env *e, enum rmode mode, const struct pcp_client_config *over)
{
	memset(e, 0, sizeof *e);
	e->mode = mode;
	e->prng = 0x9e3779b97f4a7c15ull;
	struct pcp_client_config cfg = { 0 };
	if (over)
		cfg = *over;
	cfg.random = t_random;
	cfg.random_arg = e;
	cfg.on_event = t_event;
	cfg.event_arg = e;
	e->c = pcp_client_new(&cfg);
	CHECK(e->c != NULL);
	e->now = 1000000;
	e->epoch = 5000;
	CHECK(pcp_addr_parse(&e->server, "198.51.100.1"));
	e->port = PCP_SERVER_PORT;
	struct in6_addr src;
	CHECK(pcp_addr_parse(&src, "192.0.2.1"));
	pcp_client_set_source(e->c, &src);
	pcp_client_set_server(e->c, &e->server, e->port, e->now);
}

static void env_free(struct env *e)
{
	pcp_client_free(e->c);
	e->c = NULL;
}

static size_t count(const struct env *e, enum pcp_event_type type)
{
	size_t n = 0;
	for (size_t i = 0; i < e->n_evs; i++)
		n += e->evs[i].type == type;
	return n;
}

static const struct pcp_event *last(const struct env *e, enum pcp_event_type type)
{
	for (size_t i = e->n_evs; i > 0; i--)
		if (e->evs[i - 1].type == type)
			return &e->evs[i - 1];
	return NULL;
}

/* Pull one packet at e->now; decode it into *m. Returns false when none. */
static bool out(struct env *e, struct pcp_msg *m)
{
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = pcp_client_output(e->c, buf, sizeof buf, e->now);
	if (!len)
		return false;
	CHECK_EQ(pcp_msg_decode(buf, len, m), PCP_OK);
	CHECK(!m->response);
	return true;
}

static size_t drain(struct env *e)
{
	struct pcp_msg m;
	size_t n = 0;
	while (out(e, &m))
		n++;
	return n;
}

static uint32_t server_epoch(const struct env *e)
{
	return e->epoch + (uint32_t)(e->now / 1000);
}

/* Feed a response to req (result, lifetime, assigned port / address) from the server. */
static enum pcp_err answer(struct env *e, const struct pcp_msg *req, uint8_t result, uint32_t lifetime,
			   uint16_t ext_port, const char *ext_addr)
{
	struct pcp_msg r = *req;
	r.response = true;
	r.result = result;
	r.lifetime = lifetime;
	r.epoch = server_epoch(e);
	memset(&r.client_addr, 0, sizeof r.client_addr);
	r.external_port = ext_port;
	CHECK(pcp_addr_parse(&r.external_addr, ext_addr));
	r.prefer_failure = false;
	r.n_filters = 0;
	r.has_description = false;
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	return pcp_client_input(e->c, buf, len, &e->server, e->port, e->now);
}

static enum pcp_err announce(struct env *e, uint32_t epoch, const struct in6_addr *from, uint16_t port)
{
	struct pcp_msg r = { .version = 2, .response = true, .opcode = PCP_OPCODE_ANNOUNCE, .epoch = epoch };
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	return pcp_client_input(e->c, buf, len, from ? from : &e->server, from ? port : e->port, e->now);
}

static struct pcp_map_params params(uint16_t port)
{
	struct pcp_map_params p = { .protocol = 6, .internal_port = port, .suggested_port = port,
				    .lifetime = 3600, .prefer_failure = true, .third_party = true };
	CHECK(pcp_addr_parse(&p.internal_addr, "192.168.1.10"));
	return p;
}

/* Map flow on port and answer it with SUCCESS lifetime L. */
static struct pcp_flow *mapped(struct env *e, uint16_t port, uint32_t lifetime, struct pcp_msg *req)
{
	struct pcp_map_params p = params(port);
	p.lifetime = lifetime;
	struct pcp_flow *f = pcp_flow_map(e->c, &p, NULL, e->now);
	CHECK(f != NULL);
	struct pcp_msg m;
	CHECK(out(e, &m));
	CHECK_EQ(answer(e, &m, PCP_RESULT_SUCCESS, lifetime, port, "203.0.113.5"), PCP_OK);
	if (req)
		*req = m;
	return f;
}

/* ---------------------------------------------------------------- tests */

static void test_map_request_fields(void)
{
	struct env e;
	env_init(&e, R_PRNG, NULL);
	struct pcp_map_params p = params(8080);
	p.n_filters = 1;
	p.filters[0].prefix_len = 128;
	CHECK(pcp_addr_parse(&p.filters[0].addr, "198.51.100.77"));
	int user = 42;
	struct pcp_flow *f = pcp_flow_map(e.c, &p, &user, e.now);
	CHECK(f != NULL);
	CHECK(pcp_flow_user(f) == &user);
	CHECK(strcmp(pcp_flow_state_name(f), "requesting") == 0);
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	CHECK_EQ(m.version, 2);
	CHECK_EQ(m.opcode, PCP_OPCODE_MAP);
	CHECK_EQ(m.lifetime, 3600);
	struct in6_addr a;
	CHECK(pcp_addr_parse(&a, "192.0.2.1"));
	CHECK(memcmp(&m.client_addr, &a, sizeof a) == 0); /* §8.1 source address */
	CHECK(memcmp(m.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	CHECK_EQ(m.protocol, 6);
	CHECK_EQ(m.internal_port, 8080);
	CHECK_EQ(m.external_port, 8080);
	CHECK(pcp_addr_parse(&a, "::ffff:0.0.0.0")); /* §11.1 no preference, IPv4 */
	CHECK(memcmp(&m.external_addr, &a, sizeof a) == 0);
	CHECK(m.has_third_party);
	CHECK(pcp_addr_parse(&a, "192.168.1.10"));
	CHECK(memcmp(&m.third_party, &a, sizeof a) == 0);
	CHECK(m.prefer_failure);
	CHECK_EQ(m.n_filters, 1);
	CHECK_EQ(m.filters[0].prefix_len, 128);
	CHECK(!m.has_description); /* flows never carry DESCRIPTION (seed 004) */
	CHECK(!out(&e, &m));

	/* two flows get different nonces; a restored nonce is used as given */
	struct pcp_flow *g = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(memcmp(pcp_flow_nonce(f), pcp_flow_nonce(g), PCP_NONCE_LEN) != 0);
	uint8_t nonce[PCP_NONCE_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2 };
	p.nonce = nonce;
	struct pcp_flow *h = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(memcmp(pcp_flow_nonce(h), nonce, PCP_NONCE_LEN) == 0);

	/* IPv6 mapping: no preference is :: */
	struct pcp_map_params p6 = params(9000);
	CHECK(pcp_addr_parse(&p6.internal_addr, "2001:db8::10"));
	drain(&e);
	pcp_flow_map(e.c, &p6, NULL, e.now);
	CHECK(out(&e, &m));
	CHECK(pcp_addr_parse(&a, "::"));
	CHECK(memcmp(&m.external_addr, &a, sizeof a) == 0);

	/* NAT64 (an IPv6 internal address, an IPv4 external one wanted): the caller's
	 * ::ffff:0.0.0.0 keeps its family; it was sent as :: (an IPv6 external address) */
	struct pcp_map_params p64 = params(9001);
	CHECK(pcp_addr_parse(&p64.internal_addr, "2001:db8:c1a7::c0a8:4d0b"));
	p64.third_party = true;
	CHECK(pcp_addr_parse(&p64.suggested_addr, "::ffff:0.0.0.0"));
	drain(&e);
	pcp_flow_map(e.c, &p64, NULL, e.now);
	CHECK(out(&e, &m));
	CHECK(pcp_addr_parse(&a, "::ffff:0.0.0.0"));
	CHECK(memcmp(&m.external_addr, &a, sizeof a) == 0);

	/* bad params */
	struct pcp_map_params bad = params(1);
	bad.lifetime = 0;
	CHECK(pcp_flow_map(e.c, &bad, NULL, e.now) == NULL);
	bad = params(1);
	bad.protocol = 0;
	CHECK(pcp_flow_map(e.c, &bad, NULL, e.now) == NULL);
	bad = params(1);
	bad.n_filters = PCP_FLOW_MAX_FILTERS + 1; /* one FILTER per flow at most */
	CHECK(pcp_flow_map(e.c, &bad, NULL, e.now) == NULL);
	bad = params(1);
	bad.n_filters = 1;
	bad.filters[0].prefix_len = 129;
	CHECK(pcp_flow_map(e.c, &bad, NULL, e.now) == NULL);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.live_flows, 5);
	CHECK_EQ(st.sent, 5);
	env_free(&e);
}

static void test_map_success(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_map_params p = params(8080);
	int user;
	struct pcp_flow *f = pcp_flow_map(e.c, &p, &user, e.now);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	e.now += 40;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 1800, 8081, "203.0.113.5"), PCP_OK);
	CHECK_EQ(e.n_evs, 2);
	CHECK_EQ(e.evs[0].type, PCP_EVENT_REACHABILITY);
	CHECK(e.evs[0].reachable);
	CHECK(e.evs[0].flow == NULL);
	CHECK_EQ(e.evs[1].type, PCP_EVENT_MAPPED);
	CHECK(e.evs[1].flow == f);
	CHECK(e.evs[1].user == &user);
	CHECK_EQ(e.evs[1].lifetime, 1800);
	CHECK_EQ(e.evs[1].external_port, 8081);
	CHECK(!e.evs[1].renewal);
	char buf[INET6_ADDRSTRLEN];
	CHECK(strcmp(pcp_addr_format(&e.evs[1].external_addr, buf, sizeof buf), "203.0.113.5") == 0);
	CHECK(strcmp(pcp_flow_state_name(f), "mapped") == 0);
	/* first renewal between 1/2 and 5/8 of the lifetime (§11.2.1) */
	CHECK_RANGE(pcp_client_next_deadline(e.c), e.now + 900000, e.now + 1125000);
	/* the same answer again is a duplicate: no outstanding request */
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 1800, 8081, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(e.n_evs, 2);
	env_free(&e);
}

/* RFC 7488 failover input: the first unanswered request since the last accepted
 * response, reset by any accepted response (an error too) and by a server change. */
static void test_liveness(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	CHECK(pcp_client_unanswered_since(e.c) == NEVER);
	CHECK(pcp_client_last_response(e.c) == NEVER);
	struct pcp_map_params p = params(8080);
	pcp_flow_map(e.c, &p, NULL, e.now);
	uint64_t t0 = e.now;
	struct pcp_msg m;
	CHECK(out(&e, &m));
	CHECK(pcp_client_unanswered_since(e.c) == t0);
	e.now = pcp_client_next_deadline(e.c); /* a retransmission does not move it */
	CHECK(out(&e, &m));
	CHECK(pcp_client_unanswered_since(e.c) == t0);
	/* a dropped datagram (wrong nonce) proves nothing */
	struct pcp_msg bad = m;
	bad.nonce[0] ^= 1;
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	CHECK(pcp_client_unanswered_since(e.c) == t0);
	e.now += 10;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NO_RESOURCES, 30, 0, "0.0.0.0"), PCP_OK);
	CHECK(pcp_client_unanswered_since(e.c) == NEVER);
	CHECK(pcp_client_last_response(e.c) == e.now);
	/* the retry after the error lifetime starts the clock again */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK(pcp_client_unanswered_since(e.c) == e.now);
	/* a new server: judged on its own answers */
	struct in6_addr other;
	CHECK(pcp_addr_parse(&other, "198.51.100.2"));
	pcp_client_set_server(e.c, &other, PCP_SERVER_PORT, e.now);
	CHECK(pcp_client_unanswered_since(e.c) == NEVER);
	CHECK(pcp_client_last_response(e.c) == NEVER);
	CHECK(pcp_client_unanswered_since(NULL) == NEVER);
	env_free(&e);
}

/* §8.1.1: RT1 = (1+RAND)*IRT, RTn = (2+RAND)*RTn-1, capped (1+RAND)*MRT. */
static void check_schedule(enum rmode mode, const struct pcp_client_config *cfg, uint64_t *gaps, size_t n)
{
	struct env e;
	env_init(&e, mode, cfg);
	struct pcp_map_params p = params(8080);
	pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg first, m;
	CHECK(out(&e, &first));
	uint64_t prev = e.now;
	for (size_t i = 0; i < n; i++) {
		uint64_t next = pcp_client_next_deadline(e.c);
		CHECK(next != NEVER);
		if (next == NEVER)
			break;
		e.now = next - 1;
		CHECK(!out(&e, &m)); /* not a millisecond early */
		e.now = next;
		CHECK(out(&e, &m));
		CHECK(memcmp(m.nonce, first.nonce, PCP_NONCE_LEN) == 0);
		gaps[i] = e.now - prev;
		prev = e.now;
	}
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.sent, n + 1);
	CHECK_EQ(st.retransmitted, n);
	env_free(&e);
}

static void test_retransmit_schedule(void)
{
	uint64_t g[12];
	/* RAND = 0: exactly 3 s, 6 s, 12 s ...: arrivals 3 s and 9 s after the first */
	check_schedule(R_MID, NULL, g, 12);
	CHECK_EQ(g[0], 3000);
	CHECK_EQ(g[1], 6000);
	CHECK_EQ(g[0] + g[1], 9000);
	CHECK_EQ(g[2], 12000);
	CHECK_EQ(g[8], 768000);
	CHECK_EQ(g[9], 1024000); /* 1536 s capped at MRT */
	CHECK_EQ(g[10], 1024000);
	/* extremes of RAND stay within the RFC's bounds */
	enum rmode modes[] = { R_MIN, R_MAX, R_PRNG };
	for (size_t k = 0; k < 3; k++) {
		check_schedule(modes[k], NULL, g, 12);
		CHECK_RANGE(g[0], 2700, 3300);
		for (size_t i = 1; i < 12; i++) {
			if (g[i] >= 921600) { /* at the cap: (1 +- 0.1) * MRT */
				CHECK_RANGE(g[i], 921600, 1126400);
			} else {
				CHECK_RANGE(g[i], g[i - 1] * 19 / 10, g[i - 1] * 21 / 10 + 1);
			}
		}
		CHECK_RANGE(g[0] + g[1], 9000 - 1230, 9000 + 1230);
	}
	check_schedule(R_MIN, NULL, g, 2);
	CHECK_EQ(g[0], 2700);
	CHECK_EQ(g[1], 5130);
	check_schedule(R_MAX, NULL, g, 2);
	CHECK_EQ(g[0], 3300);
	CHECK_EQ(g[1], 6930);
	/* a configured IRT / MRT */
	struct pcp_client_config cfg = { .irt_ms = 1000, .mrt_ms = 5000 };
	check_schedule(R_MID, &cfg, g, 5);
	CHECK_EQ(g[0], 1000);
	CHECK_EQ(g[1], 2000);
	CHECK_EQ(g[2], 4000);
	CHECK_EQ(g[3], 5000);
	CHECK_EQ(g[4], 5000);
}

/* Two requests lost: the third (at ~9 s) is answered. */
static void test_lost_requests_then_success(void)
{
	struct env e;
	env_init(&e, R_PRNG, NULL);
	struct pcp_map_params p = params(8080);
	p.answer_deadline_ms = 20000;
	pcp_flow_map(e.c, &p, NULL, e.now);
	uint64_t t0 = e.now;
	struct pcp_msg m;
	uint64_t at[3];
	for (int i = 0; i < 3; i++) {
		e.now = pcp_client_next_deadline(e.c);
		CHECK(out(&e, &m));
		at[i] = e.now - t0;
	}
	CHECK_EQ(at[0], 0);
	CHECK_RANGE(at[1], 2700, 3300);
	CHECK_RANGE(at[2], 9000 - 1230, 9000 + 1230);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 0);
	env_free(&e);
}

static void test_answer_deadline(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_map_params p = params(8080);
	p.answer_deadline_ms = 5000;
	struct pcp_flow *f = pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg m;
	uint64_t t0 = e.now;
	CHECK(out(&e, &m));
	e.now = pcp_client_next_deadline(e.c);
	CHECK_EQ(e.now, t0 + 3000);
	CHECK(out(&e, &m));
	e.now = pcp_client_next_deadline(e.c);
	CHECK_EQ(e.now, t0 + 5000); /* the caller's deadline comes before the next RT */
	CHECK(!out(&e, &m));
	CHECK_EQ(e.n_evs, 2);
	CHECK_EQ(e.evs[0].type, PCP_EVENT_FAILED);
	CHECK(e.evs[0].timeout);
	CHECK(e.evs[0].flow == f);
	CHECK_EQ(e.evs[1].type, PCP_EVENT_REACHABILITY);
	CHECK(!e.evs[1].reachable);
	/* the flow keeps retransmitting; a late answer still maps it */
	e.now = pcp_client_next_deadline(e.c);
	CHECK_EQ(e.now, t0 + 9000);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	CHECK(last(&e, PCP_EVENT_REACHABILITY)->reachable);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	env_free(&e);
}

static void test_mrc_mrd(void)
{
	struct pcp_client_config cfg = { .mrc = 3 };
	struct env e;
	env_init(&e, R_MID, &cfg);
	struct pcp_map_params p = params(8080);
	struct pcp_flow *f = pcp_flow_map(e.c, &p, NULL, e.now);
	uint64_t t0 = e.now;
	size_t sent = 0;
	struct pcp_msg m;
	while (pcp_client_next_deadline(e.c) != NEVER && e.now < t0 + 100000) {
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m))
			sent++;
	}
	CHECK_EQ(sent, 3);
	CHECK_EQ(e.now, t0 + 21000); /* failed RT after the third transmission (3+6+12) */
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	CHECK(last(&e, PCP_EVENT_FAILED)->timeout);
	CHECK(strcmp(pcp_flow_state_name(f), "failed") == 0);
	env_free(&e);

	struct pcp_client_config cfg2 = { .mrd_ms = 10000 };
	env_init(&e, R_MID, &cfg2);
	pcp_flow_map(e.c, &p, NULL, e.now);
	t0 = e.now;
	sent = 0;
	while (pcp_client_next_deadline(e.c) != NEVER && e.now < t0 + 100000) {
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m))
			sent++;
	}
	CHECK_EQ(sent, 3); /* 0, 3, 9 s; the next (21 s) is past MRD */
	CHECK_EQ(e.now, t0 + 10000);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	env_free(&e);
}

static void test_renewal_schedule(void)
{
	enum rmode modes[] = { R_MIN, R_MID, R_MAX, R_PRNG };
	for (size_t k = 0; k < 4; k++) {
		struct env e;
		env_init(&e, modes[k], NULL);
		struct pcp_msg req, m;
		struct pcp_flow *f = mapped(&e, 8080, 100, &req);
		uint64_t granted = e.now, expiry = granted + 100000, prev = granted;
		unsigned n = 0;
		for (;;) {
			uint64_t next = pcp_client_next_deadline(e.c);
			if (next >= expiry)
				break;
			e.now = next;
			CHECK(out(&e, &m));
			n++;
			CHECK(memcmp(m.nonce, req.nonce, PCP_NONCE_LEN) == 0);
			CHECK_EQ(m.lifetime, 100);
			CHECK_EQ(m.external_port, 8080); /* suggests what was assigned */
			uint64_t t = e.now - granted;
			/* attempt n at [1 - 2^-n, 1 - 2^-n + 2^-(n+2)] of the lifetime, or 4 s after the last */
			uint64_t lo = 100000 - (100000 >> n), hi = lo + (100000 >> (n + 2));
			if (e.now != prev + 4000)
				CHECK_RANGE(t, lo, hi + 1);
			CHECK(e.now >= prev + 4000);
			prev = e.now;
		}
		CHECK_RANGE(n, 4, 6);
		CHECK_EQ(pcp_client_next_deadline(e.c), expiry);
		CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
		/* expiry without an answer: RENEW_FAILED timeout, unreachable, re-create at once */
		e.now = expiry;
		CHECK(out(&e, &m));
		CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
		CHECK(last(&e, PCP_EVENT_RENEW_FAILED)->timeout);
		CHECK(!last(&e, PCP_EVENT_REACHABILITY)->reachable);
		CHECK(strcmp(pcp_flow_state_name(f), "remapping") == 0);
		CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 100, 8080, "203.0.113.5"), PCP_OK);
		CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
		env_free(&e);
	}
}

static void test_renewal_success_and_moved(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg m;
	struct pcp_flow *f = mapped(&e, 8080, 1000, NULL);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 1000, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 2);
	CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
	/* the new grant restarts the schedule from 1/2..5/8 */
	CHECK_RANGE(pcp_client_next_deadline(e.c), e.now + 500000, e.now + 625000);
	/* the server answers a renewal with another port: RENEW_FAILED carrying the new port */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 1000, 9999, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	CHECK_EQ(last(&e, PCP_EVENT_RENEW_FAILED)->external_port, 9999);
	CHECK_EQ(last(&e, PCP_EVENT_RENEW_FAILED)->result, 0);
	CHECK(strcmp(pcp_flow_state_name(f), "mapped") == 0);
	/* short renew lifetime: first renewal 4 s after the grant, then none before expiry */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	mapped(&e, 8080, 6, NULL);
	uint64_t t0 = e.now;
	CHECK_EQ(pcp_client_next_deadline(e.c), t0 + 4000);
	e.now = t0 + 4000;
	CHECK(out(&e, &m));
	CHECK_EQ(pcp_client_next_deadline(e.c), t0 + 6000);
	/* the longest lifetime: the schedule arithmetic does not overflow */
	enum rmode lm[] = { R_MIN, R_MAX };
	for (size_t k = 0; k < 2; k++) {
		env_free(&e);
		env_init(&e, lm[k], NULL);
		mapped(&e, 8080, UINT32_MAX, NULL);
		uint64_t l = (uint64_t)UINT32_MAX * 1000;
		CHECK_RANGE(pcp_client_next_deadline(e.c) - e.now, l / 2, l / 2 + l / 8);
	}
	/* pcp_flow_set_lifetime changes the next request */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	f = mapped(&e, 8080, 100, NULL);
	pcp_flow_set_lifetime(e.c, f, 50);
	pcp_flow_set_lifetime(e.c, f, 0); /* ignored */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(m.lifetime, 50);
	/* pcp_flow_set_end caps every later request at the seconds left until the end */
	pcp_flow_set_end(e.c, f, e.now + 20500);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 50, 8080, "203.0.113.5"), PCP_OK);
	e.now = pcp_client_next_deadline(e.c);
	uint64_t end = e.now; /* whatever the renewal time, it asks at most what is left */
	CHECK(out(&e, &m));
	CHECK(m.lifetime >= 1 && (uint64_t)m.lifetime * 1000 <= 20500 + 999);
	pcp_flow_set_end(e.c, f, end - 1); /* already past: 1 s, never 0 (a delete) */
	pcp_flow_refresh(e.c, f, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(m.lifetime, 1);
	env_free(&e);
}

static void test_errors(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_map_params p = params(8080);
	struct pcp_flow *f = pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	/* long-lifetime error: FAILED, then silence */
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NOT_AUTHORIZED, 600, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	CHECK_EQ(last(&e, PCP_EVENT_FAILED)->result, PCP_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(last(&e, PCP_EVENT_FAILED)->lifetime, 600);
	CHECK(!last(&e, PCP_EVENT_FAILED)->timeout);
	CHECK(strcmp(pcp_flow_state_name(f), "failed") == 0);
	CHECK_EQ(pcp_client_next_deadline(e.c), NEVER);
	env_free(&e);

	/* short-lifetime error (§7.4): retried after its Lifetime */
	env_init(&e, R_MID, NULL);
	f = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(out(&e, &m));
	uint64_t t0 = e.now;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NO_RESOURCES, 30, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	CHECK_EQ(pcp_client_next_deadline(e.c), t0 + 30000);
	e.now = t0 + 30000;
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	/* short error on a renewal: silent, next attempt after the error lifetime */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	t0 = e.now;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NETWORK_FAILURE, 60, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
	CHECK(pcp_client_next_deadline(e.c) >= t0 + 60000);
	/* long error on a renewal: RENEW_FAILED */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_UNSUPP_PROTOCOL, 600, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	CHECK_EQ(last(&e, PCP_EVENT_RENEW_FAILED)->result, PCP_RESULT_UNSUPP_PROTOCOL);
	CHECK_EQ(pcp_client_next_deadline(e.c), NEVER);
	/* CANNOT_PROVIDE_EXTERNAL on a renewal that suggested the held address (PREFER_FAILURE):
	 * asked again at once for the port alone (a renumbered carrier whose §14.2 update was
	 * lost); refused again: reported */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	mapped(&e, 8080, 600, NULL);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK(m.prefer_failure);
	CHECK(!pcp_addr_is_v4(&m.external_addr) || m.external_addr.s6_addr[12] != 0); /* the held one */
	CHECK_EQ(answer(&e, &m, PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 30, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	CHECK(out(&e, &m));
	CHECK(m.prefer_failure);
	CHECK_EQ(m.external_port, 8080);
	CHECK(pcp_addr_is_v4(&m.external_addr) && m.external_addr.s6_addr[12] == 0 &&
	      m.external_addr.s6_addr[15] == 0); /* ::ffff:0.0.0.0, no preference */
	CHECK_EQ(answer(&e, &m, PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 30, 0, "::"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	CHECK_EQ(last(&e, PCP_EVENT_RENEW_FAILED)->result, PCP_RESULT_CANNOT_PROVIDE_EXTERNAL);
	CHECK_EQ(pcp_client_next_deadline(e.c), NEVER);
	/* the same, but the port-only request succeeds on the carrier's new address: MAPPED
	 * (a renewal) with it, nothing reported as lost */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	mapped(&e, 8080, 600, NULL);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 30, 0, "::"), PCP_OK);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 600, 8080, "198.51.100.77"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 2);
	CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
	{
		struct in6_addr want;
		CHECK(pcp_addr_parse(&want, "198.51.100.77"));
		CHECK(memcmp(&last(&e, PCP_EVENT_MAPPED)->external_addr, &want, sizeof want) == 0);
	}
	/* the next renewal suggests the new address again */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK(m.external_addr.s6_addr[12] == 198 && m.external_addr.s6_addr[15] == 77);
	/* error with lifetime 0 is retried no sooner than IRT */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_USER_EX_QUOTA, 0, 0, "::"), PCP_OK);
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now + 3000);
	env_free(&e);
}

static void test_validation_drops(void)
{
	struct env e;
	env_init(&e, R_PRNG, NULL);
	struct pcp_map_params p = params(8080);
	pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	struct pcp_msg bad = m;
	bad.nonce[0] ^= 1; /* nonce mismatch */
	CHECK_EQ(answer(&e, &bad, 0, 600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	bad = m;
	bad.protocol = 17;
	CHECK_EQ(answer(&e, &bad, 0, 600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	bad = m;
	bad.internal_port = 8081;
	CHECK_EQ(answer(&e, &bad, 0, 600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	bad = m;
	CHECK(pcp_addr_parse(&bad.third_party, "192.168.1.11"));
	CHECK_EQ(answer(&e, &bad, 0, 600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);

	/* wrong source address, wrong source port */
	struct pcp_msg r = m;
	r.response = true;
	r.lifetime = 600;
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	struct in6_addr other;
	CHECK(pcp_addr_parse(&other, "198.51.100.2"));
	CHECK_EQ(pcp_client_input(e.c, buf, len, &other, PCP_SERVER_PORT, e.now), PCP_ERR_WRONG_SOURCE);
	CHECK_EQ(pcp_client_input(e.c, buf, len, &e.server, 5352, e.now), PCP_ERR_WRONG_SOURCE);
	/* our own request echoed back: R bit clear */
	uint8_t req[PCP_MAX_PACKET];
	size_t rlen = 0;
	CHECK_EQ(pcp_msg_encode(&m, req, sizeof req, &rlen), PCP_OK);
	CHECK_EQ(pcp_client_input(e.c, req, rlen, &e.server, e.port, e.now), PCP_ERR_RBIT);
	/* decode failures are counted by reason */
	CHECK_EQ(pcp_client_input(e.c, buf, 20, &e.server, e.port, e.now), PCP_ERR_SHORT);
	CHECK_EQ(pcp_client_input(e.c, buf, len - 2, &e.server, e.port, e.now), PCP_ERR_ALIGN);
	buf[0] = 1;
	CHECK_EQ(pcp_client_input(e.c, buf, len, &e.server, e.port, e.now), PCP_ERR_VERSION);
	buf[0] = 2;
	/* a PEER response answers nothing we sent */
	struct pcp_msg peer = r;
	peer.opcode = PCP_OPCODE_PEER;
	peer.has_third_party = false;
	peer.prefer_failure = false;
	peer.n_filters = 0;
	CHECK_EQ(pcp_msg_encode(&peer, req, sizeof req, &rlen), PCP_OK);
	CHECK_EQ(pcp_client_input(e.c, req, rlen, &e.server, e.port, e.now), PCP_ERR_UNSOLICITED);
	CHECK_EQ(e.n_evs, 0); /* nothing was trusted */

	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.received, 11);
	CHECK_EQ(st.dropped, 11);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_UNSOLICITED], 5);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_WRONG_SOURCE], 2);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_RBIT], 1);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_SHORT], 1);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_ALIGN], 1);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_VERSION], 1);
	/* the right answer is still accepted */
	CHECK_EQ(answer(&e, &m, 0, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	env_free(&e);
}

/* RFC 6887 §14.2, §8: a server that renumbers sends an unsolicited MAP response (the
 * request's nonce, protocol, internal port, THIRD_PARTY; the new address). The flow holds
 * its mapping with nothing outstanding: the update is applied; anything else is dropped. */
static void test_unsolicited_update(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg req;
	struct pcp_flow *f = mapped(&e, 8080, 1000, &req);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	e.now += 100000; /* 100 s into a 1000 s grant, no renewal outstanding */
	CHECK(pcp_client_next_deadline(e.c) > e.now);
	/* same port, another address: MAPPED (renewal) with it, schedule from now */
	CHECK_EQ(answer(&e, &req, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.77"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 2);
	const struct pcp_event *ev = last(&e, PCP_EVENT_MAPPED);
	CHECK(ev->renewal);
	CHECK_EQ(ev->lifetime, 2000);
	CHECK_EQ(ev->external_port, 8080);
	struct in6_addr a77;
	CHECK(pcp_addr_parse(&a77, "203.0.113.77"));
	CHECK(memcmp(&ev->external_addr, &a77, sizeof a77) == 0);
	CHECK_EQ(pcp_flow_expires(f), e.now + 2000000);
	CHECK_RANGE(pcp_client_next_deadline(e.c), e.now + 1000000, e.now + 1250000);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.updates, 1);
	CHECK_EQ(st.dropped, 0);
	uint64_t scan;
	CHECK(pcp_client_check(e.c, &scan));
	CHECK_EQ(scan, pcp_client_next_deadline(e.c));
	/* the next renewal suggests the new address */
	e.now = pcp_client_next_deadline(e.c);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	CHECK(memcmp(&m.external_addr, &a77, sizeof a77) == 0);
	CHECK_EQ(m.external_port, 8080);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.77"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 3);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);

	/* a copy of that (nothing new) is dropped: it must not stretch the grant */
	uint64_t exp = pcp_flow_expires(f);
	e.now += 1000;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.77"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(pcp_flow_expires(f), exp);
	/* wrong nonce, protocol, internal port, THIRD_PARTY; an unsolicited error: dropped */
	struct pcp_msg bad = m;
	bad.nonce[11] ^= 0x40;
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.99"), PCP_ERR_UNSOLICITED);
	bad = m;
	bad.protocol = 17;
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.99"), PCP_ERR_UNSOLICITED);
	bad = m;
	bad.internal_port = 8081;
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.99"), PCP_ERR_UNSOLICITED);
	bad = m;
	CHECK(pcp_addr_parse(&bad.third_party, "192.168.1.11"));
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 2000, 8080, "203.0.113.99"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NOT_AUTHORIZED, 2000, 8080, "203.0.113.99"), PCP_ERR_UNSOLICITED);
	/* from another address or port than the server's */
	struct pcp_msg r = m;
	r.response = true;
	r.lifetime = 2000;
	r.epoch = server_epoch(&e);
	CHECK(pcp_addr_parse(&r.external_addr, "203.0.113.99"));
	r.prefer_failure = false;
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	struct in6_addr other;
	CHECK(pcp_addr_parse(&other, "198.51.100.2"));
	CHECK_EQ(pcp_client_input(e.c, buf, len, &other, PCP_SERVER_PORT, e.now), PCP_ERR_WRONG_SOURCE);
	CHECK_EQ(pcp_client_input(e.c, buf, len, &e.server, 5352, e.now), PCP_ERR_WRONG_SOURCE);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 3);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
	CHECK(memcmp(&last(&e, PCP_EVENT_MAPPED)->external_addr, &a77, sizeof a77) == 0);
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.updates, 1);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_UNSOLICITED], 6);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_WRONG_SOURCE], 2);

	/* another port: the mapping the caller knew is gone: RENEW_FAILED with the new port,
	 * and the flow keeps (renews) what it holds now */
	size_t n_mapped = count(&e, PCP_EVENT_MAPPED);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 2000, 9090, "203.0.113.77"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	ev = last(&e, PCP_EVENT_RENEW_FAILED);
	CHECK_EQ(ev->result, 0);
	CHECK(!ev->timeout);
	CHECK_EQ(ev->external_port, 9090);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), n_mapped);
	CHECK(strcmp(pcp_flow_state_name(f), "mapped") == 0);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(m.external_port, 9090);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 2000, 9090, "203.0.113.77"), PCP_OK);

	/* lifetime 0: the server ended the mapping; RENEW_FAILED (timeout) and the flow
	 * re-creates it at once, same nonce, port suggested, no address */
	e.now += 5000;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 0, 9090, "203.0.113.77"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 2);
	ev = last(&e, PCP_EVENT_RENEW_FAILED);
	CHECK(ev->timeout);
	CHECK(strcmp(pcp_flow_state_name(f), "remapping") == 0);
	CHECK_EQ(pcp_flow_expires(f), e.now);
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	struct pcp_msg again;
	CHECK(out(&e, &again));
	CHECK(memcmp(again.nonce, m.nonce, PCP_NONCE_LEN) == 0);
	CHECK_EQ(again.external_port, 9090);
	CHECK(!memcmp(again.external_addr.s6_addr + 10, "\xff\xff\0\0\0\0", 6));
	CHECK_EQ(answer(&e, &again, PCP_RESULT_SUCCESS, 2000, 9090, "203.0.113.88"), PCP_OK);
	CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 2);
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.updates, 3);
	CHECK(pcp_client_check(e.c, &scan));

	/* RFC 6887 §8.5: a server whose external address changed resets its Epoch, so the
	 * first update also reveals a lost state: that flow takes the update, every other one
	 * is re-created with no address suggested (and its own update, arriving while it waits
	 * for that answer, is taken as the answer) */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	struct pcp_msg r1, r2;
	struct pcp_flow *f1 = mapped(&e, 6001, 3600, &r1), *f2 = mapped(&e, 6002, 3600, &r2);
	e.now += 60000;
	e.epoch = 0 - (uint32_t)(e.now / 1000); /* server_epoch() = 0 now */
	size_t mark = e.n_evs;
	CHECK_EQ(answer(&e, &r1, PCP_RESULT_SUCCESS, 3600, 6001, "203.0.113.66"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 1);
	CHECK(strcmp(pcp_flow_state_name(f1), "mapped") == 0);
	CHECK(strcmp(pcp_flow_state_name(f2), "remapping") == 0);
	CHECK(e.evs[e.n_evs - 1].type == PCP_EVENT_MAPPED && e.evs[e.n_evs - 1].flow == f1);
	CHECK_EQ(e.n_evs, mark + 2); /* LOST_STATE, MAPPED (reachability unchanged) */
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, r2.nonce, PCP_NONCE_LEN) == 0);
	CHECK(!memcmp(m.external_addr.s6_addr + 10, "\xff\xff\0\0\0\0", 6)); /* no address */
	CHECK_EQ(answer(&e, &r2, PCP_RESULT_SUCCESS, 3600, 6002, "203.0.113.66"), PCP_OK);
	CHECK(strcmp(pcp_flow_state_name(f2), "mapped") == 0);
	CHECK(last(&e, PCP_EVENT_MAPPED)->flow == f2);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.updates, 1);
	CHECK(pcp_client_check(e.c, &scan));

	/* a flow not holding a mapping (first request unanswered, or failed): dropped */
	env_free(&e);
	env_init(&e, R_MID, NULL);
	struct pcp_map_params p = params(7070);
	pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(out(&e, &req));
	CHECK_EQ(answer(&e, &req, PCP_RESULT_NOT_AUTHORIZED, 600, 0, "::"), PCP_OK); /* now FAILED, idle */
	CHECK_EQ(answer(&e, &req, PCP_RESULT_SUCCESS, 600, 7070, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 0);
	env_free(&e);
}

/* §8.5: feed ANNOUNCEs (Epoch-checked like any response) with client / server deltas. */
static bool epoch_lost(int64_t client_delta_ms, int64_t server_delta_s)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	uint32_t e0 = 100000;
	CHECK_EQ(announce(&e, e0, NULL, 0), PCP_OK); /* the first is valid by definition */
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 0);
	e.now += (uint64_t)client_delta_ms;
	CHECK_EQ(announce(&e, (uint32_t)((int64_t)e0 + server_delta_s), NULL, 0), PCP_OK);
	bool lost = count(&e, PCP_EVENT_SERVER_LOST_STATE) == 1;
	env_free(&e);
	return lost;
}

static void test_epoch_rule(void)
{
	CHECK(!epoch_lost(10000, 10));
	CHECK(!epoch_lost(0, 0));
	/* going backwards: by one second tolerated, by two not */
	CHECK(!epoch_lost(0, -1));
	CHECK(epoch_lost(0, -2));
	CHECK(epoch_lost(100000, -50));
	/* server ahead of client: invalid when client_delta + 2 < server_delta - server_delta/16 */
	CHECK(!epoch_lost(32000, 36)); /* 34 < 33.75 false */
	CHECK(epoch_lost(32000, 37));  /* 34 < 34.69 */
	CHECK(epoch_lost(10000, 100));
	/* client ahead of server: invalid when server_delta + 2 < client_delta - client_delta/16 */
	CHECK(!epoch_lost(36200, 32)); /* 34 < 33.94 false */
	CHECK(epoch_lost(36300, 32));  /* 34 < 34.03 */
	CHECK(epoch_lost(100000, 10));
	/* small deltas: 2 s slack */
	CHECK(!epoch_lost(0, 2));
	CHECK(epoch_lost(0, 3));
	CHECK(!epoch_lost(2000, 0));
	CHECK(epoch_lost(2200, 0));
}

static void test_epoch_on_map_response(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg ra, rb, m;
	struct pcp_flow *a = mapped(&e, 8080, 3600, &ra);
	struct pcp_flow *b = mapped(&e, 8081, 3600, &rb);
	e.now += 60000;
	/* refresh a; the server answers it after a reboot: Epoch reset */
	pcp_flow_refresh(e.c, a, e.now);
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, ra.nonce, PCP_NONCE_LEN) == 0);
	e.epoch = 0;
	size_t before = e.n_evs;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 1);
	CHECK_EQ(e.evs[before].type, PCP_EVENT_SERVER_LOST_STATE); /* before the per-flow events */
	CHECK(last(&e, PCP_EVENT_MAPPED)->flow == a);
	/* b is re-sent at once with its own nonce and its assigned port as suggestion */
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, rb.nonce, PCP_NONCE_LEN) == 0);
	CHECK_EQ(m.external_port, 8081);
	CHECK(!out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, 8081, "203.0.113.5"), PCP_OK);
	CHECK(last(&e, PCP_EVENT_MAPPED)->flow == b);
	CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.lost_state_events, 1);
	env_free(&e);

	/* lost state, then the server goes silent: the old grant's expiry is reported once */
	env_init(&e, R_MID, NULL);
	a = mapped(&e, 8080, 100, &ra);
	b = mapped(&e, 8081, 100, &rb);
	uint64_t expiry = e.now + 100000;
	e.now += 10000;
	pcp_flow_refresh(e.c, a, e.now);
	CHECK(out(&e, &m));
	e.epoch = 0;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 100, 8080, "203.0.113.5"), PCP_OK);
	CHECK(out(&e, &m)); /* b re-sent; never answered */
	while (pcp_client_next_deadline(e.c) <= expiry) {
		e.now = pcp_client_next_deadline(e.c);
		drain(&e);
		if (e.now == expiry)
			break;
	}
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	CHECK(last(&e, PCP_EVENT_RENEW_FAILED)->flow == b);
	CHECK(last(&e, PCP_EVENT_RENEW_FAILED)->timeout);
	CHECK(!last(&e, PCP_EVENT_REACHABILITY)->reachable);
	CHECK(strcmp(pcp_flow_state_name(b), "remapping") == 0);
	CHECK(pcp_client_next_deadline(e.c) > e.now);
	env_free(&e);
}

static void test_announce(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg ra, rb, m;
	struct in6_addr nopref;
	char buf[INET6_ADDRSTRLEN];
	CHECK(pcp_addr_parse(&nopref, "::ffff:0.0.0.0"));
	mapped(&e, 8080, 3600, &ra);
	mapped(&e, 8081, 3600, &rb);
	struct pcp_flow *pending = pcp_flow_map(e.c, &(struct pcp_map_params){ .protocol = 17, .internal_port = 53,
										.lifetime = 60 },
						NULL, e.now);
	CHECK(out(&e, &m));
	e.now += 10000;
	CHECK_EQ(drain(&e), 1); /* the pending flow's retransmission */
	/* an ANNOUNCE whose Epoch is consistent: nothing to do */
	CHECK_EQ(announce(&e, server_epoch(&e), NULL, 0), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 0);
	/* from a stranger: dropped */
	struct in6_addr other;
	CHECK(pcp_addr_parse(&other, "192.0.2.99"));
	CHECK_EQ(announce(&e, 1, &other, PCP_SERVER_PORT), PCP_ERR_WRONG_SOURCE);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 0);
	/* the server restarted: Epoch reset -> one event, both mappings re-sent within 5 s */
	e.now += 1000;
	uint64_t t0 = e.now;
	e.epoch = (uint32_t)(3 - t0 / 1000); /* the server's clock restarted at 0 three seconds ago */
	CHECK_EQ(announce(&e, server_epoch(&e), NULL, 0), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 1);
	CHECK(last(&e, PCP_EVENT_SERVER_LOST_STATE)->flow == NULL);
	bool got_a = false, got_b = false;
	uint64_t at_a = 0, at_b = 0;
	while (pcp_client_next_deadline(e.c) <= t0 + 5000) {
		CHECK(pcp_client_next_deadline(e.c) >= e.now);
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m)) {
			if (!memcmp(m.nonce, ra.nonce, PCP_NONCE_LEN)) {
				got_a = true;
				at_a = e.now;
				CHECK_EQ(answer(&e, &m, 0, 3600, 8080, "203.0.113.5"), PCP_OK);
			} else if (!memcmp(m.nonce, rb.nonce, PCP_NONCE_LEN)) {
				got_b = true;
				at_b = e.now;
				/* the port is still wanted, the address the server lost with its state not;
				 * it came back with another one: MAPPED with it, not RENEW_FAILED */
				CHECK_EQ(m.external_port, 8081);
				CHECK(memcmp(&m.external_addr, &nopref, sizeof nopref) == 0);
				CHECK_EQ(answer(&e, &m, 0, 3600, 8081, "203.0.113.77"), PCP_OK);
				CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 0);
				CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
				CHECK(!strcmp(pcp_addr_format(&last(&e, PCP_EVENT_MAPPED)->external_addr, buf,
							      sizeof buf), "203.0.113.77"));
			} else {
				CHECK(memcmp(m.nonce, pcp_flow_nonce(pending), PCP_NONCE_LEN) == 0);
			}
		}
	}
	CHECK(got_a && got_b);
	CHECK_EQ(at_a, t0 + 2500); /* mid-point of the 0..5 s spread (§14.1.3) */
	CHECK_EQ(at_b, t0 + 2500);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 4);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 1);
	/* the grant is suggested again by the next renewal; another address there is a move */
	bool renewed_b = false;
	while (!renewed_b && pcp_client_next_deadline(e.c) <= at_b + 3600 * 1000) {
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m)) {
			if (memcmp(m.nonce, rb.nonce, PCP_NONCE_LEN))
				continue; /* a's renewal, the pending flow's retransmissions */
			renewed_b = true;
			CHECK(!strcmp(pcp_addr_format(&m.external_addr, buf, sizeof buf), "203.0.113.77"));
			CHECK_EQ(answer(&e, &m, 0, 3600, 8081, "203.0.113.5"), PCP_OK);
		}
	}
	CHECK(renewed_b);
	CHECK_EQ(count(&e, PCP_EVENT_RENEW_FAILED), 1);
	env_free(&e);

	/* an operator's wider window (announce_spread_ms, bench/fleet.md): the re-send lands in
	 * it, not in the first 5 s */
	struct pcp_client_config wide = { .announce_spread_ms = 60000 };
	env_init(&e, R_MID, &wide);
	mapped(&e, 8080, 3600, &ra);
	e.now += 11000;
	t0 = e.now;
	e.epoch = (uint32_t)(3 - t0 / 1000);
	CHECK_EQ(announce(&e, server_epoch(&e), NULL, 0), PCP_OK);
	CHECK_EQ(pcp_client_next_deadline(e.c), t0 + 30000); /* mid-point of 0..60 s */
	e.now = t0 + 5000;
	CHECK(!out(&e, &m));
	e.now = t0 + 30000;
	CHECK(out(&e, &m));
	CHECK(!memcmp(m.nonce, ra.nonce, PCP_NONCE_LEN));
	env_free(&e);
}

/* §14.1.3 over IPv6: a restarted AFTR multicasts ANNOUNCE from its link-local address. */
static void test_announce_link_local(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct in6_addr v6server, v6src, ll, global;
	CHECK(pcp_addr_parse(&v6server, "2001:db8::1"));
	CHECK(pcp_addr_parse(&v6src, "2001:db8::2"));
	CHECK(pcp_addr_parse(&ll, "fe80::1"));
	CHECK(pcp_addr_parse(&global, "2001:db8::66"));
	pcp_client_set_source(e.c, &v6src);
	e.server = v6server;
	pcp_client_set_server(e.c, &e.server, e.port, e.now);
	struct pcp_msg ra, m;
	mapped(&e, 8080, 3600, &ra);
	e.now += 20000;
	/* not link-local, or not from the PCP port: still a stranger */
	CHECK_EQ(announce(&e, 1, &global, PCP_SERVER_PORT), PCP_ERR_WRONG_SOURCE);
	CHECK_EQ(announce(&e, 1, &ll, 40000), PCP_ERR_WRONG_SOURCE);
	CHECK(!out(&e, &m));
	/* link-local from port 5351: the mapping is re-sent within 5 s, same nonce */
	uint64_t t0 = e.now;
	CHECK_EQ(announce(&e, 1, &ll, PCP_SERVER_PORT), PCP_OK);
	CHECK(pcp_client_next_deadline(e.c) <= t0 + 5000);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, ra.nonce, PCP_NONCE_LEN) == 0);
	/* a second one right after is ignored (no amplification by a LAN/WAN neighbour) */
	CHECK_EQ(announce(&e, 1, &ll, PCP_SERVER_PORT), PCP_ERR_WRONG_SOURCE);
	env_free(&e);
}

/* A delete with PCP_DELETE_NO_DEADLINE is retransmitted until it is answered. */
static void test_delete_no_deadline(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg req, m;
	struct pcp_flow *f = mapped(&e, 8090, 3600, &req);
	pcp_flow_delete(e.c, f, PCP_DELETE_NO_DEADLINE, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(m.lifetime, 0);
	unsigned sent = 1;
	uint64_t t0 = e.now;
	while (e.now < t0 + 600000) { /* ten minutes of silence */
		e.now = pcp_client_next_deadline(e.c);
		sent += (unsigned)drain(&e);
	}
	CHECK_EQ(count(&e, PCP_EVENT_DELETED), 0);
	CHECK(sent >= 7); /* 0, 3, 9, 21, 45, 93, 189, 381 s ... */
	CHECK(out(&e, &m) || pcp_client_next_deadline(e.c) != NEVER);
	e.now = pcp_client_next_deadline(e.c);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 0, 8090, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_DELETED), 1);
	CHECK(!last(&e, PCP_EVENT_DELETED)->timeout);
	env_free(&e);
}

static void test_delete(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg req, m;
	int user;
	struct pcp_flow *f = mapped(&e, 8080, 3600, &req);
	pcp_flow_set_user(f, &user);
	pcp_flow_delete(e.c, f, 0, e.now);
	CHECK(strcmp(pcp_flow_state_name(f), "deleting") == 0);
	CHECK(out(&e, &m));
	CHECK_EQ(m.lifetime, 0);
	CHECK(memcmp(m.nonce, req.nonce, PCP_NONCE_LEN) == 0);
	CHECK_EQ(m.protocol, 6);
	CHECK_EQ(m.internal_port, 8080);
	CHECK(m.has_third_party);
	CHECK(!m.prefer_failure);
	/* §15 (erratum 3621): no suggestion in a delete, whatever the create suggested */
	CHECK(req.external_port != 0);
	CHECK_EQ(m.external_port, 0);
	static const uint8_t v4_any[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
	CHECK(memcmp(m.external_addr.s6_addr, v4_any, 16) == 0);
	/* a late SUCCESS with a lifetime is not the delete's answer */
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 0, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_DELETED), 1);
	CHECK(last(&e, PCP_EVENT_DELETED)->user == &user);
	CHECK(!last(&e, PCP_EVENT_DELETED)->timeout);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.live_flows, 0);
	CHECK_EQ(pcp_client_next_deadline(e.c), NEVER);
	env_free(&e);

	/* delete that gets no answer: retransmitted, then DELETED timeout at the deadline */
	env_init(&e, R_MID, NULL);
	f = mapped(&e, 8080, 3600, NULL);
	uint64_t t0 = e.now;
	pcp_flow_delete(e.c, f, 8000, e.now);
	size_t sent = 0;
	while (pcp_client_next_deadline(e.c) != NEVER) {
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m))
			sent++;
	}
	CHECK_EQ(sent, 2); /* 0 s, 3 s; 9 s is past the deadline */
	CHECK_EQ(e.now, t0 + 8000);
	CHECK_EQ(count(&e, PCP_EVENT_DELETED), 1);
	CHECK(last(&e, PCP_EVENT_DELETED)->timeout);
	CHECK(!last(&e, PCP_EVENT_REACHABILITY)->reachable);
	env_free(&e);

	/* an error answer also ends the delete, carrying the result */
	env_init(&e, R_MID, NULL);
	f = mapped(&e, 8080, 3600, NULL);
	pcp_flow_delete(e.c, f, 0, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, PCP_RESULT_NOT_AUTHORIZED, 0, 0, "::"), PCP_OK);
	CHECK_EQ(last(&e, PCP_EVENT_DELETED)->result, PCP_RESULT_NOT_AUTHORIZED);
	env_free(&e);

	/* abandon: gone, nothing sent */
	env_init(&e, R_MID, NULL);
	f = mapped(&e, 8080, 3600, NULL);
	pcp_flow_abandon(e.c, f);
	CHECK_EQ(pcp_client_next_deadline(e.c), NEVER);
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.live_flows, 0);
	env_free(&e);
}

static void test_server_switch(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg req, m;
	mapped(&e, 8080, 3600, &req);
	struct in6_addr old = e.server;
	/* DHCPv6 option 86: the AFTR is reached over IPv6 */
	CHECK(pcp_addr_parse(&e.server, "2001:db8::53"));
	struct in6_addr src;
	CHECK(pcp_addr_parse(&src, "2001:db8::2"));
	pcp_client_set_source(e.c, &src);
	pcp_client_set_server(e.c, &e.server, PCP_SERVER_PORT, e.now);
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, req.nonce, PCP_NONCE_LEN) == 0);
	CHECK(memcmp(&m.client_addr, &src, sizeof src) == 0);
	CHECK_EQ(m.external_port, 8080); /* the port is still wanted ... */
	struct in6_addr nopref;
	CHECK(pcp_addr_parse(&nopref, "::ffff:0.0.0.0")); /* ... the old CGN's address not */
	CHECK(memcmp(&m.external_addr, &nopref, sizeof nopref) == 0);
	/* the old server is now a stranger; the new one's first Epoch is valid */
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	struct pcp_msg r = m;
	r.response = true;
	r.lifetime = 3600;
	r.prefer_failure = false;
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	CHECK_EQ(pcp_client_input(e.c, buf, len, &old, PCP_SERVER_PORT, e.now), PCP_ERR_WRONG_SOURCE);
	e.epoch = 0;
	CHECK_EQ(answer(&e, &m, 0, 3600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 0);
	CHECK(last(&e, PCP_EVENT_MAPPED)->renewal);
	/* the same server again: nothing */
	pcp_client_set_server(e.c, &e.server, PCP_SERVER_PORT, e.now);
	CHECK(!out(&e, &m));
	/* the WAN address changed: refresh_all re-sends every live flow with the new source */
	struct pcp_flow *g = mapped(&e, 9090, 3600, NULL);
	struct pcp_flow *d = mapped(&e, 9091, 3600, NULL);
	pcp_flow_delete(e.c, d, 0, e.now);
	CHECK(out(&e, &m)); /* d's delete */
	CHECK(pcp_addr_parse(&src, "2001:db8::3"));
	pcp_client_set_source(e.c, &src);
	pcp_client_refresh_all(e.c, e.now);
	size_t n = 0;
	while (out(&e, &m)) {
		n++;
		CHECK(memcmp(&m.client_addr, &src, sizeof src) == 0);
		CHECK(m.lifetime != 0 || memcmp(m.nonce, pcp_flow_nonce(d), PCP_NONCE_LEN) == 0);
	}
	CHECK_EQ(n, 2); /* the first flow and g; d keeps its delete schedule */
	CHECK(strcmp(pcp_flow_state_name(g), "remapping") == 0);
	CHECK(strcmp(pcp_flow_state_name(d), "deleting") == 0);
	env_free(&e);
}

static void test_no_server(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	pcp_client_free(e.c);
	struct pcp_client_config cfg = { .random = t_random, .random_arg = &e, .on_event = t_event, .event_arg = &e };
	e.c = pcp_client_new(&cfg);
	struct pcp_map_params p = params(8080);
	p.answer_deadline_ms = 4000;
	pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg m;
	CHECK(!out(&e, &m)); /* nowhere to send */
	e.now = pcp_client_next_deadline(e.c);
	CHECK(!out(&e, &m));
	e.now = pcp_client_next_deadline(e.c);
	CHECK(!out(&e, &m));
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 1);
	pcp_client_set_server(e.c, &e.server, e.port, e.now);
	CHECK(out(&e, &m)); /* sent at once */
	CHECK_EQ(answer(&e, &m, 0, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 1);
	env_free(&e);
}

/* ---------------------------------------------------------------- re-entrancy */

static void hook_delete_on_mapped(struct env *e, const struct pcp_event *ev)
{
	if (ev->type == PCP_EVENT_MAPPED)
		pcp_flow_delete(e->c, ev->flow, 0, e->now);
}

static void hook_abandon_all(struct env *e, const struct pcp_event *ev)
{
	if (ev->flow)
		pcp_flow_abandon(e->c, ev->flow);
	if (ev->type == PCP_EVENT_SERVER_LOST_STATE || ev->type == PCP_EVENT_REACHABILITY) {
		/* abandon the flow the engine is in the middle of answering, and map anew */
		if (e->hook_flow) {
			pcp_flow_abandon(e->c, e->hook_flow);
			pcp_flow_abandon(e->c, e->hook_flow); /* twice: a no-op */
			e->hook_flow = NULL;
			struct pcp_map_params p = params(7000);
			CHECK(pcp_flow_map(e->c, &p, NULL, e->now) != NULL);
		}
	}
}

static void hook_remap_on_deleted(struct env *e, const struct pcp_event *ev)
{
	if (ev->type == PCP_EVENT_DELETED || ev->type == PCP_EVENT_FAILED) {
		pcp_flow_delete(e->c, ev->flow, 0, e->now); /* on a dying flow: no-op */
		pcp_flow_refresh(e->c, ev->flow, e->now);
		if (ev->type == PCP_EVENT_DELETED) {
			struct pcp_map_params p = params(7001);
			pcp_flow_map(e->c, &p, NULL, e->now);
		}
	}
}

static void test_reentrancy(void)
{
	struct env e;
	env_init(&e, R_MID, NULL);
	e.hook = hook_delete_on_mapped;
	struct pcp_map_params p = params(8080);
	struct pcp_flow *f = pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg m;
	CHECK(out(&e, &m));
	CHECK_EQ(answer(&e, &m, 0, 600, 8080, "203.0.113.5"), PCP_OK);
	CHECK(strcmp(pcp_flow_state_name(f), "deleting") == 0);
	CHECK(out(&e, &m));
	CHECK_EQ(m.lifetime, 0);
	e.hook = hook_remap_on_deleted;
	CHECK_EQ(answer(&e, &m, 0, 0, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_DELETED), 1);
	CHECK(out(&e, &m));
	CHECK_EQ(m.internal_port, 7001);
	env_free(&e);

	/* abandon from inside every kind of event, while the engine iterates */
	env_init(&e, R_MID, NULL);
	struct pcp_flow *a = mapped(&e, 8080, 3600, NULL);
	mapped(&e, 8081, 3600, NULL);
	e.now += 1000;
	pcp_flow_refresh(e.c, a, e.now);
	CHECK(out(&e, &m));
	e.hook = hook_abandon_all;
	e.hook_flow = a;
	e.epoch = 0; /* lost state while answering a: the hook abandons a mid-answer */
	CHECK_EQ(answer(&e, &m, 0, 3600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(count(&e, PCP_EVENT_SERVER_LOST_STATE), 1);
	CHECK_EQ(count(&e, PCP_EVENT_MAPPED), 2); /* a's answer was not delivered after abandon */
	/* timers firing while the hook abandons flows */
	for (int i = 0; i < 20 && pcp_client_next_deadline(e.c) != NEVER; i++) {
		e.now = pcp_client_next_deadline(e.c);
		drain(&e);
	}
	env_free(&e);

	/* deadline events with abandon */
	env_init(&e, R_MID, NULL);
	e.hook = hook_abandon_all;
	for (int i = 0; i < 5; i++) {
		p = params((uint16_t)(9000 + i));
		p.answer_deadline_ms = 1000;
		pcp_flow_map(e.c, &p, NULL, e.now);
	}
	drain(&e);
	e.now += 1000;
	drain(&e);
	CHECK_EQ(count(&e, PCP_EVENT_FAILED), 5);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.live_flows, 0);
	env_free(&e);
	pcp_client_free(NULL);
}

/* ---------------------------------------------------------------- scale (issue item 5) */

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int nonce_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PCP_NONCE_LEN);
}

static void check_invariants(struct env *e)
{
	uint64_t scan = 0;
	CHECK(pcp_client_check(e->c, &scan));
	CHECK_EQ(pcp_client_next_deadline(e->c), scan);
}

static void hook_user_is_slot(struct env *e, const struct pcp_event *ev)
{
	(void)e;
	if (ev->flow)
		CHECK(*(struct pcp_flow *const *)ev->user == ev->flow);
}

#define BURST 10000
#define BURST_PKT 128 /* a MAP with THIRD_PARTY and PREFER_FAILURE is 84 bytes */

/* A restore: 10,000 flows created at once are drained in one pass at the same now
 * (exactly 10,000 packets, then 0); every answer finds its flow through the nonce hash;
 * answers for unknown nonces are dropped. The time taken is printed, not asserted. */
static void test_burst(void)
{
	static struct pcp_flow *flows[BURST];
	static uint8_t pkts[BURST][BURST_PKT];
	static size_t lens[BURST];
	static uint8_t nonces[BURST][PCP_NONCE_LEN];
	struct env e;
	env_init(&e, R_PRNG, NULL);
	e.hook = hook_user_is_slot;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < BURST; i++) {
		struct pcp_map_params p = params((uint16_t)(1 + i));
		flows[i] = pcp_flow_map(e.c, &p, &flows[i], e.now);
		CHECK(flows[i] != NULL);
	}
	double t_map = ms_since(&t0);
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	size_t n = 0;
	uint8_t buf[PCP_MAX_PACKET];
	size_t len;
	while ((len = pcp_client_output(e.c, buf, sizeof buf, e.now)) > 0) {
		if (n < BURST && len <= BURST_PKT) {
			memcpy(pkts[n], buf, len);
			lens[n] = len;
		}
		n++;
	}
	double t_drain = ms_since(&t0);
	CHECK_EQ(n, BURST);
	CHECK_EQ(pcp_client_output(e.c, buf, sizeof buf, e.now), 0);
	CHECK(pcp_client_next_deadline(e.c) > e.now);
	check_invariants(&e);
	if (n != BURST)
		goto out;
	/* one packet per flow: 10,000 distinct nonces */
	for (size_t i = 0; i < BURST; i++) {
		struct pcp_msg m;
		CHECK_EQ(pcp_msg_decode(pkts[i], lens[i], &m), PCP_OK);
		memcpy(nonces[i], m.nonce, PCP_NONCE_LEN);
	}
	qsort(nonces, BURST, PCP_NONCE_LEN, nonce_cmp);
	size_t dup = 0;
	for (size_t i = 1; i < BURST; i++)
		dup += memcmp(nonces[i - 1], nonces[i], PCP_NONCE_LEN) == 0;
	CHECK_EQ(dup, 0);

	/* answers in reverse order, with unknown nonces in between */
	e.now += 20;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	size_t unknown = 0;
	for (size_t i = BURST; i-- > 0;) {
		struct pcp_msg m;
		CHECK_EQ(pcp_msg_decode(pkts[i], lens[i], &m), PCP_OK);
		CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, m.internal_port, "203.0.113.5"), PCP_OK);
		if (i % 10 == 0) {
			m.nonce[i % PCP_NONCE_LEN] ^= 0x5a;
			CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, m.internal_port, "203.0.113.5"),
				 PCP_ERR_UNSOLICITED);
			unknown++;
		}
	}
	double t_answer = ms_since(&t1);
	CHECK_EQ(e.n_type[PCP_EVENT_MAPPED], BURST);
	for (size_t i = 0; i < BURST; i += 997)
		CHECK(strcmp(pcp_flow_state_name(flows[i]), "mapped") == 0);
	struct pcp_client_stats st;
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.sent, BURST);
	CHECK_EQ(st.retransmitted, 0);
	CHECK_EQ(st.dropped_by_reason[PCP_ERR_UNSOLICITED], unknown);
	CHECK_EQ(st.live_flows, BURST);
	check_invariants(&e);
	/* an answer again: nothing outstanding any more */
	{
		struct pcp_msg m;
		CHECK_EQ(pcp_msg_decode(pkts[17], lens[17], &m), PCP_OK);
		CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, m.internal_port, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	}

	/* delete half, abandon the rest: the tables shrink back and stay consistent */
	for (size_t i = 0; i < BURST; i += 2)
		pcp_flow_delete(e.c, flows[i], 0, e.now);
	n = 0;
	while ((len = pcp_client_output(e.c, buf, sizeof buf, e.now)) > 0) {
		struct pcp_msg m;
		CHECK_EQ(pcp_msg_decode(buf, len, &m), PCP_OK);
		CHECK_EQ(m.lifetime, 0);
		CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 0, 0, "203.0.113.5"), PCP_OK);
		n++;
	}
	CHECK_EQ(n, BURST / 2);
	CHECK_EQ(e.n_type[PCP_EVENT_DELETED], BURST / 2);
	check_invariants(&e);
	for (size_t i = 1; i < BURST; i += 2)
		pcp_flow_abandon(e.c, flows[i]);
	pcp_client_get_stats(e.c, &st);
	CHECK_EQ(st.live_flows, 0);
	CHECK(pcp_client_next_deadline(e.c) == NEVER);
	check_invariants(&e);
	fprintf(stderr,
		"  engine, %d flows: pcp_flow_map %.1f ms, + draining output %.1f ms in all (%.2f us/flow); "
		"%d answers %.1f ms\n",
		BURST, t_map, t_drain, t_drain * 1000 / BURST, BURST, t_answer);
out:
	env_free(&e);
}

/* ---- randomized model: several thousand operations, next_deadline against a scan */

#define MODEL_FLOWS 300
#define MODEL_SENT 64

struct model {
	struct env e; /* first: the event hook gets the env */
	struct pcp_flow *flows[MODEL_FLOWS];
	struct pcp_msg sent[MODEL_SENT]; /* recent requests, to answer */
	size_t n_sent;
	struct in6_addr servers[2];
	unsigned server;
};

static uint64_t model_rand(struct model *md, uint64_t n)
{
	md->e.prng ^= md->e.prng << 13;
	md->e.prng ^= md->e.prng >> 7;
	md->e.prng ^= md->e.prng << 17;
	return n ? md->e.prng % n : 0;
}

static void model_forget(struct model *md, const struct pcp_flow *f)
{
	for (size_t i = 0; i < MODEL_FLOWS; i++)
		if (md->flows[i] == f)
			md->flows[i] = NULL;
}

static void model_hook(struct env *e, const struct pcp_event *ev)
{
	struct model *md = (struct model *)e;
	if (!ev->flow)
		return;
	if (ev->type == PCP_EVENT_DELETED) {
		model_forget(md, ev->flow);
		return;
	}
	/* re-entrancy: act on this or another flow from inside the event */
	uint64_t r = model_rand(md, 20);
	if (r == 0) {
		pcp_flow_abandon(e->c, ev->flow);
		model_forget(md, ev->flow);
	} else if (r == 1) {
		pcp_flow_delete(e->c, ev->flow, 3000, e->now);
	} else if (r == 2) {
		struct pcp_flow *g = md->flows[model_rand(md, MODEL_FLOWS)];
		if (g)
			pcp_flow_refresh(e->c, g, e->now);
	}
}

static struct pcp_flow *model_pick(struct model *md)
{
	for (int k = 0; k < 8; k++) {
		struct pcp_flow *f = md->flows[model_rand(md, MODEL_FLOWS)];
		if (f)
			return f;
	}
	return NULL;
}

static void model_drain(struct model *md)
{
	struct pcp_msg m;
	while (out(&md->e, &m))
		md->sent[md->n_sent++ % MODEL_SENT] = m;
	CHECK(pcp_client_next_deadline(md->e.c) > md->e.now); /* nothing left due */
}

static void model_answer(struct model *md)
{
	size_t have = md->n_sent < MODEL_SENT ? md->n_sent : MODEL_SENT;
	if (!have)
		return;
	struct pcp_msg m = md->sent[model_rand(md, have)];
	uint64_t r = model_rand(md, 100);
	if (r < 55)
		(void)answer(&md->e, &m, PCP_RESULT_SUCCESS, m.lifetime,
			     model_rand(md, 10) ? m.internal_port : 9999, "203.0.113.5");
	else if (r < 65)
		(void)answer(&md->e, &m, PCP_RESULT_NO_RESOURCES, (uint32_t)model_rand(md, 60), 0, "::");
	else if (r < 72)
		(void)answer(&md->e, &m, PCP_RESULT_NOT_AUTHORIZED, 600, 0, "::");
	else if (r < 76)
		(void)answer(&md->e, &m, PCP_RESULT_UNSUPP_VERSION, 0, 0, "::");
	else if (r < 80)
		(void)answer(&md->e, &m, PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 30, 0, "::");
	else if (r < 85) {
		m.nonce[0] ^= 1; /* nobody's */
		CHECK_EQ(answer(&md->e, &m, PCP_RESULT_SUCCESS, 60, 1, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	} else if (r < 87) {
		/* §9: a version-1 server */
		uint8_t v1[24] = { 1, 0x81, 0, PCP_RESULT_UNSUPP_VERSION };
		(void)pcp_client_input(md->e.c, v1, sizeof v1, &md->e.server, md->e.port, md->e.now);
	} else {
		(void)answer(&md->e, &m, PCP_RESULT_SUCCESS, m.lifetime, m.internal_port, "203.0.113.5");
	}
}

static void model_step(struct model *md)
{
	struct env *e = &md->e;
	uint64_t r = model_rand(md, 100);
	struct pcp_flow *f;
	if (r < 22) {
		size_t slot = model_rand(md, MODEL_FLOWS);
		if (md->flows[slot])
			return;
		struct pcp_map_params p = params((uint16_t)(1 + model_rand(md, 50)));
		p.protocol = model_rand(md, 2) ? 6 : 17;
		p.lifetime = (uint32_t)(5 + model_rand(md, 200));
		p.prefer_failure = model_rand(md, 2);
		p.third_party = model_rand(md, 2);
		if (model_rand(md, 4) == 0) {
			p.n_filters = 1;
			p.filters[0].prefix_len = 128;
		}
		p.answer_deadline_ms = model_rand(md, 3) ? 0 : (uint32_t)(1000 + model_rand(md, 20000));
		struct pcp_flow *twin = model_rand(md, 10) == 0 ? model_pick(md) : NULL;
		if (twin) /* the same nonce twice (a mapping re-added before its delete is done) */
			p.nonce = pcp_flow_nonce(twin);
		md->flows[slot] = pcp_flow_map(e->c, &p, &md->flows[slot], e->now);
		CHECK(md->flows[slot] != NULL);
	} else if (r < 28) {
		if ((f = model_pick(md)) != NULL) {
			uint64_t k = model_rand(md, 3);
			pcp_flow_delete(e->c, f, k == 0 ? 0 : k == 1 ? 5000 : PCP_DELETE_NO_DEADLINE, e->now);
		}
	} else if (r < 32) {
		if ((f = model_pick(md)) != NULL) {
			pcp_flow_abandon(e->c, f);
			model_forget(md, f);
		}
	} else if (r < 36) {
		if ((f = model_pick(md)) != NULL)
			pcp_flow_refresh(e->c, f, e->now);
	} else if (r < 37) {
		pcp_client_refresh_all(e->c, e->now);
	} else if (r < 38) {
		md->server ^= 1;
		e->server = md->servers[md->server];
		pcp_client_set_server(e->c, &e->server, e->port, e->now);
	} else if (r < 40) {
		if ((f = model_pick(md)) != NULL)
			pcp_flow_set_lifetime(e->c, f, (uint32_t)(1 + model_rand(md, 100)));
	} else if (r < 42) {
		if (model_rand(md, 2))
			e->epoch -= 1000; /* a restarted server: the §8.5 check fails */
		(void)announce(e, server_epoch(e), NULL, 0);
	} else if (r < 65) {
		model_answer(md);
	} else {
		uint64_t next = pcp_client_next_deadline(e->c);
		uint64_t to = model_rand(md, 2) && next != NEVER && next <= e->now + 7200000
				      ? next
				      : e->now + model_rand(md, 5000);
		if (to > e->now) {
			size_t before = e->n_evs;
			struct pcp_msg m;
			uint64_t keep = e->now;
			e->now = to - 1; /* not a millisecond early */
			if (to - 1 < next) {
				CHECK(!out(e, &m));
				CHECK_EQ(e->n_evs, before);
			} else {
				model_drain(md);
			}
			(void)keep;
			e->now = to;
		}
		model_drain(md);
	}
}

static void test_model_random(void)
{
	static struct model md;
	for (unsigned round = 0; round < 4; round++) {
		memset(&md, 0, sizeof md);
		env_init(&md.e, round % 2 ? R_PRNG : R_MID, NULL);
		md.e.prng ^= 0x1234567ull * (round + 1);
		md.e.hook = model_hook;
		md.servers[0] = md.e.server;
		CHECK(pcp_addr_parse(&md.servers[1], "198.51.100.2"));
		for (unsigned i = 0; i < 5000; i++) {
			model_step(&md);
			check_invariants(&md.e);
		}
		struct pcp_client_stats st;
		pcp_client_get_stats(md.e.c, &st);
		CHECK(st.sent > 1000);
		env_free(&md.e);
	}
}

/* ---------------------------------------------------------------- wakeup */

static void on_wake(void *arg)
{
	(*(unsigned *)arg)++;
}

static unsigned hook_wakes_seen;
static unsigned *hook_wakes;

static void hook_map_on_mapped(struct env *e, const struct pcp_event *ev)
{
	if (ev->type != PCP_EVENT_MAPPED)
		return;
	struct pcp_map_params p = params(6000);
	CHECK(pcp_flow_map(e->c, &p, NULL, e->now) != NULL);
	hook_wakes_seen = *hook_wakes; /* not called from inside the event */
}

static void test_wakeup(void)
{
	unsigned wakes = 0;
	struct pcp_client_config cfg = { .on_wakeup = on_wake, .wakeup_arg = &wakes };
	struct env e;
	env_init(&e, R_MID, &cfg);
	CHECK_EQ(wakes, 0); /* setting the server with no flow: nothing due */
	struct pcp_map_params p = params(8080);
	struct pcp_flow *f1 = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK_EQ(wakes, 1); /* a new flow is due now */
	p = params(8081);
	struct pcp_flow *f2 = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK_EQ(wakes, 1); /* once until the caller asks again */
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	p = params(8082);
	pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK_EQ(wakes, 1); /* due now, as known: not earlier */
	pcp_flow_set_lifetime(e.c, f1, 100);
	CHECK_EQ(wakes, 1);
	struct pcp_msg m1, m;
	CHECK(out(&e, &m1));
	CHECK_EQ(drain(&e), 2);
	uint64_t t = pcp_client_next_deadline(e.c);
	CHECK_EQ(t, e.now + 3000);
	/* an answer schedules a renewal far away: nothing earlier */
	CHECK_EQ(answer(&e, &m1, PCP_RESULT_SUCCESS, 3600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(wakes, 1);
	/* a dropped datagram changes nothing */
	struct pcp_msg bad = m1;
	bad.nonce[0] ^= 1;
	CHECK_EQ(answer(&e, &bad, PCP_RESULT_SUCCESS, 3600, 8080, "203.0.113.5"), PCP_ERR_UNSOLICITED);
	CHECK_EQ(wakes, 1);
	pcp_flow_abandon(e.c, f2);
	CHECK_EQ(wakes, 1); /* a flow gone: nothing earlier */
	e.now += 100;
	p = params(8083);
	pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK_EQ(wakes, 2); /* due at now < t */
	CHECK_EQ(pcp_client_next_deadline(e.c), e.now);
	CHECK(out(&e, &m));
	CHECK(!out(&e, &m));
	t = pcp_client_next_deadline(e.c);
	pcp_flow_refresh(e.c, f1, e.now); /* the mapped flow is re-sent now */
	CHECK_EQ(wakes, 3);
	CHECK(out(&e, &m));
	CHECK(memcmp(m.nonce, pcp_flow_nonce(f1), PCP_NONCE_LEN) == 0);
	(void)pcp_client_next_deadline(e.c);
	/* a flow mapped from inside an event: the wakeup comes after the outermost call */
	e.hook = hook_map_on_mapped;
	hook_wakes = &wakes;
	hook_wakes_seen = 99;
	CHECK_EQ(answer(&e, &m, PCP_RESULT_SUCCESS, 3600, 8080, "203.0.113.5"), PCP_OK);
	CHECK_EQ(hook_wakes_seen, 3);
	CHECK_EQ(wakes, 4);
	e.hook = NULL;
	/* an adapter hooking in later hears at once that something is scheduled */
	unsigned other = 0;
	pcp_client_set_wakeup(e.c, on_wake, &other);
	CHECK_EQ(other, 1);
	pcp_client_set_wakeup(e.c, NULL, NULL);
	p = params(8084);
	pcp_flow_map(e.c, &p, NULL, e.now - 1000);
	CHECK_EQ(other, 1);
	CHECK_EQ(wakes, 4);
	env_free(&e);
}

/* ---------------------------------------------------------------- §9 version negotiation */

static enum pcp_err feed(struct env *e, const char *hex, const struct in6_addr *from)
{
	uint8_t buf[PCP_MAX_PACKET + 8];
	size_t len = tu_hex(hex, buf, sizeof buf);
	return pcp_client_input(e->c, buf, len, from ? from : &e->server, e->port, e->now);
}

/* A server that does not speak version 2 answers UNSUPP_VERSION in its own version
 * (RFC 6887 §9) or as NAT-PMP (RFC 6886 §3.5): every outstanding request fails at once
 * with result UNSUPP_VERSION; the flows are re-sent after PCP_UNSUPP_VERSION_RETRY_MS. */
static void test_unsupp_version(void)
{
	/* version 1, R + MAP, result 1, Lifetime 1800, Epoch 0x1234 */
	static const char v1[] = "01 81 00 01  00 00 07 08  00 00 12 34  00000000 00000000 00000000";
	/* NAT-PMP "Unsupported Version": version 0, 128 + 1, result 1 (16 bits), epoch */
	static const char natpmp[] = "00 81 00 01  00 00 ab cd";
	/* version 2, but only the header (the server could not read our MAP data) */
	static const char v2_bare[] = "02 81 00 01  00 00 00 00  00 00 00 05  00000000 00000000 00000000";
	struct env e;
	env_init(&e, R_MID, NULL);
	struct pcp_msg m, ra;
	struct pcp_flow *b = mapped(&e, 8081, 3600, NULL);
	struct pcp_flow *d = mapped(&e, 8082, 3600, NULL);
	struct pcp_flow *q = mapped(&e, 8083, 7200, NULL);
	struct pcp_map_params p = params(8080);
	struct pcp_flow *a = pcp_flow_map(e.c, &p, NULL, e.now);
	CHECK(out(&e, &ra));
	e.now = pcp_client_next_deadline(e.c) - 1000; /* before a's retransmission */
	pcp_flow_refresh(e.c, b, e.now);              /* b's re-MAP is outstanding */
	pcp_flow_delete(e.c, d, 0, e.now);            /* d's delete is outstanding */
	CHECK_EQ(drain(&e), 2);
	size_t reach = e.n_type[PCP_EVENT_REACHABILITY], failed = e.n_type[PCP_EVENT_FAILED];
	struct in6_addr stranger;
	CHECK(pcp_addr_parse(&stranger, "192.0.2.99"));
	CHECK_EQ(feed(&e, v1, &stranger), PCP_ERR_WRONG_SOURCE);
	e.now += 5;
	CHECK_EQ(feed(&e, v1, NULL), PCP_OK);
	CHECK_EQ(e.n_type[PCP_EVENT_FAILED], failed + 1);
	CHECK(last(&e, PCP_EVENT_FAILED)->flow == a);
	CHECK_EQ(last(&e, PCP_EVENT_FAILED)->result, PCP_RESULT_UNSUPP_VERSION);
	CHECK(!last(&e, PCP_EVENT_FAILED)->timeout);
	CHECK(last(&e, PCP_EVENT_RENEW_FAILED)->flow == b);
	CHECK_EQ(last(&e, PCP_EVENT_RENEW_FAILED)->result, PCP_RESULT_UNSUPP_VERSION);
	CHECK(last(&e, PCP_EVENT_DELETED)->flow == d);
	CHECK_EQ(last(&e, PCP_EVENT_DELETED)->result, PCP_RESULT_UNSUPP_VERSION);
	CHECK(strcmp(pcp_flow_state_name(a), "failed") == 0);
	CHECK(strcmp(pcp_flow_state_name(b), "failed") == 0);
	CHECK(strcmp(pcp_flow_state_name(q), "mapped") == 0); /* nothing outstanding: untouched */
	CHECK_EQ(e.n_type[PCP_EVENT_REACHABILITY], reach);     /* alive, but not usable */
	CHECK(pcp_client_last_response(e.c) == e.now);
	CHECK(pcp_client_unanswered_since(e.c) == NEVER);
	check_invariants(&e);
	/* the same again: nothing is outstanding any more */
	CHECK_EQ(feed(&e, v1, NULL), PCP_ERR_UNSOLICITED);
	/* not retransmitted every RT: next send 30 min later (q renews after that) */
	uint64_t t0 = e.now;
	CHECK_EQ(pcp_client_next_deadline(e.c), t0 + PCP_UNSUPP_VERSION_RETRY_MS);
	CHECK_EQ(drain(&e), 0);
	e.now = t0 + PCP_UNSUPP_VERSION_RETRY_MS;
	CHECK(out(&e, &m));
	CHECK(out(&e, &ra));
	CHECK(!out(&e, &m) || memcmp(m.nonce, pcp_flow_nonce(q), PCP_NONCE_LEN) == 0);
	CHECK(strcmp(pcp_flow_state_name(a), "requesting") == 0);
	CHECK(strcmp(pcp_flow_state_name(b), "remapping") == 0);
	/* NAT-PMP says the same in 8 bytes */
	size_t renew_failed = e.n_type[PCP_EVENT_RENEW_FAILED];
	failed = e.n_type[PCP_EVENT_FAILED];
	CHECK_EQ(feed(&e, natpmp, NULL), PCP_OK);
	CHECK_EQ(e.n_type[PCP_EVENT_FAILED], failed + 1);
	CHECK_EQ(e.n_type[PCP_EVENT_RENEW_FAILED], renew_failed + 1);
	/* and a bare version-2 header */
	pcp_flow_refresh(e.c, a, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(feed(&e, v2_bare, NULL), PCP_OK);
	CHECK_EQ(e.n_type[PCP_EVENT_FAILED], failed + 2);
	/* not an UNSUPP_VERSION: a version-1 SUCCESS is a decode error as before */
	pcp_flow_refresh(e.c, a, e.now);
	CHECK(out(&e, &m));
	CHECK_EQ(feed(&e, "01 81 00 00  00 00 07 08  00 00 12 34  00000000 00000000 00000000", NULL),
		 PCP_ERR_VERSION);
	CHECK(strcmp(pcp_flow_state_name(a), "requesting") == 0);
	/* a version-2 UNSUPP_VERSION that decodes: matched by nonce, only that flow fails */
	p = params(9000);
	struct pcp_flow *c2 = pcp_flow_map(e.c, &p, NULL, e.now);
	struct pcp_msg mc;
	while (out(&e, &m))
		if (memcmp(m.nonce, pcp_flow_nonce(c2), PCP_NONCE_LEN) == 0)
			mc = m;
	CHECK_EQ(answer(&e, &mc, PCP_RESULT_UNSUPP_VERSION, 0, 0, "::"), PCP_OK);
	CHECK(last(&e, PCP_EVENT_FAILED)->flow == c2);
	CHECK_EQ(last(&e, PCP_EVENT_FAILED)->result, PCP_RESULT_UNSUPP_VERSION);
	CHECK(strcmp(pcp_flow_state_name(a), "requesting") == 0);
	t0 = e.now;
	while (pcp_client_next_deadline(e.c) < t0 + PCP_UNSUPP_VERSION_RETRY_MS) {
		e.now = pcp_client_next_deadline(e.c);
		while (out(&e, &m))
			CHECK(memcmp(m.nonce, pcp_flow_nonce(c2), PCP_NONCE_LEN) != 0);
	}
	e.now = t0 + PCP_UNSUPP_VERSION_RETRY_MS;
	bool resent = false;
	while (out(&e, &m))
		resent |= memcmp(m.nonce, pcp_flow_nonce(c2), PCP_NONCE_LEN) == 0;
	CHECK(resent);
	check_invariants(&e);
	env_free(&e);
}

int main(void)
{
	TU_RUN(test_map_request_fields);
	TU_RUN(test_map_success);
	TU_RUN(test_liveness);
	TU_RUN(test_retransmit_schedule);
	TU_RUN(test_lost_requests_then_success);
	TU_RUN(test_answer_deadline);
	TU_RUN(test_mrc_mrd);
	TU_RUN(test_renewal_schedule);
	TU_RUN(test_renewal_success_and_moved);
	TU_RUN(test_errors);
	TU_RUN(test_validation_drops);
	TU_RUN(test_unsolicited_update);
	TU_RUN(test_epoch_rule);
	TU_RUN(test_epoch_on_map_response);
	TU_RUN(test_announce);
	TU_RUN(test_announce_link_local);
	TU_RUN(test_delete);
	TU_RUN(test_delete_no_deadline);
	TU_RUN(test_server_switch);
	TU_RUN(test_no_server);
	TU_RUN(test_reentrancy);
	TU_RUN(test_wakeup);
	TU_RUN(test_unsupp_version);
	TU_RUN(test_burst);
	TU_RUN(test_model_random);
	return tu_finish(__FILE__);
}
