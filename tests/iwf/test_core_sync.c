/*
 * test_core_sync.c - synchronisation and time in the core (iwf/core.h) under a fake clock and
 * a scripted PCP server: seed 004 §5.10 (PCP_SERVICE_WAIT, replay of stored mappings with
 * their stored nonces, stored intents and ended leases deleted, Epoch reset, replay pacing),
 * leases on the monotonic clock (IGD:1 / IGD:2 rules, lifetime-0 MAP at lease end, the PCP
 * lifetime never beyond the lease, wall-clock steps), and the "real homes over months" rules
 * (a long outage keeps the mapping; a re-add during PCP_SERVICE_WAIT keeps the stored nonce).
 *
 * Run one test: test_core_sync NAME; all: no argument. IWF_TEST_VERBOSE=1 for the logs.
 */
#include "test_core_harness.h"

/*
 * §5.10: nothing leaves before iwf_core_start() + RAND(0, PCP_SERVICE_WAIT); then stored
 * mappings are replayed with their stored nonces, a stored intent is deleted with its nonce
 * (and never listed), a stored mapping whose lease ended is deleted, not replayed.
 */
static void service_wait_case(uint32_t rand_u32)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_service_wait_s = 10;
	struct h *h = h_alloc(&cfg, false);
	h_store(h, TCP, 42001, HOST_A, 42001, 0, 0, STATE_F_ENABLED, 0x11);
	h_store(h, UDP, 42002, HOST_B, 42012, 3600, 3600 * 1000, STATE_F_ENABLED, 0x22);
	h_store(h, TCP, 42003, HOST_A, 42003, 3600, 3600 * 1000, STATE_F_ENABLED | STATE_F_INTENT, 0x33);
	h_store(h, TCP, 42004, HOST_A, 42004, 600, -1000, STATE_F_ENABLED, 0x44);
	h_core_new(h);
	uint64_t t0 = h->now;
	h_start_with(h, rand_u32);
	uint64_t wait = rand_u32 % (10 * 1000u + 1); /* RAND(0, 10 s) as the core draws it */

	/* During the wait: reads work from the stored table; the intent is never listed. */
	h_run(h, 100);
	CHECK(h_listed(h, TCP, 42001));
	CHECK(h_listed(h, UDP, 42002));
	CHECK(!h_listed(h, TCP, 42003));
	CHECK(!h_listed(h, TCP, 42004)); /* its lease is over */
	CHECK_EQ_INT(h_get_generic(h, 2, NULL), 713);
	h_run(h, wait + 2000);
	/* Not one packet (not even the address probe) before start + RAND(0, PCP_SERVICE_WAIT);
	 * then the synchronisation at once. */
	CHECK(h->n_log > 0);
	if (h->n_log) {
		if (h->log[0].at < t0 + wait)
			fprintf(stderr, "first PCP packet %llu ms after start, RAND(PCP_SERVICE_WAIT) = %llu ms\n",
				(unsigned long long)(h->log[0].at - t0), (unsigned long long)wait);
		CHECK(h->log[0].at >= t0 + wait);
		CHECK(h->log[0].at <= t0 + wait + 200);
		CHECK(h->log[0].at <= t0 + 10000 + 200);
	}
	const struct pcp_msg *q;
	q = h_req(h, 0, 42001, L_CREATE);
	CHECK(q && h_nonce_is(q, 0x11) && q->external_port == 42001 && q->protocol == 6);
	q = h_req(h, 0, 42012, L_CREATE);
	CHECK(q && h_nonce_is(q, 0x22) && q->external_port == 42002 && q->protocol == 17 &&
	      q->has_third_party && h_ip_eq(&q->third_party, HOST_B));
	q = h_req(h, 0, 42003, L_DELETE);
	CHECK(q && h_nonce_is(q, 0x33));
	CHECK_EQ_INT(h_count_req(h, 0, 42003, L_CREATE), 0);
	q = h_req(h, 0, 42004, L_DELETE);
	CHECK(q && h_nonce_is(q, 0x44));
	CHECK_EQ_INT(h_count_req(h, 0, 42004, L_CREATE), 0);
	for (size_t k = 0; k < h->n_log; k++) { /* every request with its stored nonce */
		const struct pcp_msg *r = &h->log[k].m;
		uint8_t want = r->internal_port == 42001 ? 0x11 : r->internal_port == 42012 ? 0x22
			       : r->internal_port == 42003 ? 0x33 : r->internal_port == 42004 ? 0x44 : 0;
		if (!h_is_probe(r))
			CHECK(want && h_nonce_is(r, want));
	}
	h_run(h, 30000);
	CHECK_EQ_INT(state_table_count(h->table), 2);
	CHECK_EQ_INT(state_table_size(h->table), 2);
	CHECK(!h_listed(h, TCP, 42003));
	struct h_cmap *c1 = srv_map(h, TCP, HOST_A, 42001), *c2 = srv_map(h, UDP, HOST_B, 42012);
	CHECK(c1 && c1->ext_port == 42001 && c1->nonce[0] == 0x11);
	CHECK(c2 && c2->ext_port == 42002 && c2->nonce[0] == 0x22);
	CHECK(strcmp(h->st_status, "Connected") == 0);
	h_free(h);
}

static void seed004_5_10_service_wait(void)
{
	service_wait_case(7345);
	service_wait_case(0xffffffffu);
	service_wait_case(0);
}

/* §5.10: the replay is paced by cfg.replay_rate (requests per second), 0 = no pacing. */
static void replay_rate_case(uint32_t rate, unsigned n)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.replay_rate = rate;
	cfg.log_level = IWF_LOG_INFO;
	struct h *h = h_alloc(&cfg, false);
	for (unsigned k = 0; k < n; k++)
		h_store(h, TCP, (uint16_t)(43000 + k), HOST_A, (uint16_t)(43000 + k), 0, 0, STATE_F_ENABLED,
			(uint8_t)(k + 1));
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 60000);
	CHECK_EQ_INT(h_count_req(h, 0, 0, L_CREATE), n);
	size_t worst = 0;
	for (size_t i = 0; i < h->n_log; i++) {
		size_t in = 0;
		for (size_t j = i; j < h->n_log && h->log[j].at < h->log[i].at + 1000; j++)
			in += !h_is_probe(&h->log[j].m);
		if (in > worst)
			worst = in;
	}
	uint64_t span = h->n_log ? h->log[h->n_log - 1].at - h->log[0].at : 0;
	if (rate) {
		if (worst > rate)
			fprintf(stderr, "replay_rate %u: %zu requests within one second\n", rate, worst);
		CHECK(worst <= rate);
		CHECK(span <= (uint64_t)(n / rate + 1) * 1000); /* and not much slower */
	} else {
		CHECK_EQ_INT(worst, n);
		CHECK_EQ_INT(span, 0);
	}
	CHECK_EQ_INT(srv_count(h), n);
	h_free(h);
}

static void seed004_5_10_replay_rate(void)
{
	replay_rate_case(20, 60);
	replay_rate_case(50, 120);
	replay_rate_case(0, 60);
}

/* The same below 10 per second (a rounding of the pacing tick must not double the rate). */
static void seed004_5_10_replay_rate_slow(void)
{
	replay_rate_case(5, 30);
	replay_rate_case(1, 8);
}

/* §5.10 / RFC 6887 §8.5: an Epoch reset (the server lost its state) -> every mapping
 * re-sent with its own nonce; seen from an ANNOUNCE or from any response. */
static void epoch_case(bool announce)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.allow_third_party = true;
	struct h *h = h_new(&cfg);
	static const char *const client[3] = {HOST_A, HOST_B, HOST_C};
	uint8_t nonces[3][PCP_NONCE_LEN];
	for (int k = 0; k < 3; k++) {
		uint16_t p = (uint16_t)(44001 + k);
		struct upnp_args a = h_args(k == 2 ? UDP : TCP, p, client[k], p, 0);
		CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
		const struct state_mapping *m = h_rec(h, k == 2 ? UDP : TCP, p);
		if (m)
			memcpy(nonces[k], m->nonce, PCP_NONCE_LEN);
	}
	h_run(h, 100000);
	srv_restart(h);
	CHECK_EQ_INT(srv_count(h), 0);
	size_t mark = h_mark(h);
	if (announce) {
		srv_announce(h);
	} else {
		struct upnp_args a = h_args(TCP, 44010, HOST_A, 44010, 0);
		CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
	}
	h_run(h, 10000);
	for (int k = 0; k < 3; k++) {
		uint16_t p = (uint16_t)(44001 + k);
		const struct pcp_msg *q = h_req(h, mark, p, L_CREATE);
		CHECK(q != NULL);
		if (q)
			CHECK(memcmp(q->nonce, nonces[k], PCP_NONCE_LEN) == 0);
		struct h_cmap *cm = srv_map(h, k == 2 ? UDP : TCP, client[k], p);
		CHECK(cm && cm->ext_port == p && memcmp(cm->nonce, nonces[k], PCP_NONCE_LEN) == 0);
		CHECK(h_listed(h, k == 2 ? UDP : TCP, p));
	}
	CHECK_EQ_INT(srv_count(h), announce ? 3 : 4);
	CHECK_EQ_INT(state_table_count(h->table), announce ? 3 : 4);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_DELETE), 0);
	h_free(h);
}

static void seed004_5_10_epoch_reset(void)
{
	epoch_case(true);
	epoch_case(false);
}

/* §5.4 + §5.10 across a real restart: the journal brings back the mappings; the new core
 * replays them with their nonces, and nothing deleted comes back. */
static void seed004_5_10_restart_journal(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_service_wait_s = 5;
	struct h *h = h_alloc(&cfg, true);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 45001, 45001), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, UDP, 45002, 45002), 0);
	CHECK_EQ_INT(h_delete(h, HOST_A, UDP, 45002), 0);
	uint8_t nonce[PCP_NONCE_LEN];
	const struct state_mapping *m = h_rec(h, TCP, 45001);
	CHECK(m != NULL);
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	h_run(h, 5000);
	h_restart(h);
	size_t mark = h_mark(h);
	CHECK(h_listed(h, TCP, 45001));  /* readable before the start */
	CHECK(!h_listed(h, UDP, 45002));
	h_start_with(h, 3000);
	h_run(h, 2900);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	h_run(h, 2000);
	const struct pcp_msg *q = h_req(h, mark, 45001, L_CREATE);
	CHECK(q && memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0 && q->external_port == 45001);
	CHECK_EQ_INT(h_count_req(h, mark, 45002, L_ANY), 0);
	CHECK(srv_map(h, TCP, HOST_A, 45001) != NULL);
	CHECK_EQ_INT(state_table_count(h->table), 1);
	h_free(h);
}

/* Leases, IGD:1: 0 = infinite; at the end of a finite lease a lifetime-0 MAP (its nonce)
 * and the entry removed. */
static void leases_igd1(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 46001, HOST_A, 46001, 0), 0);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 46002, HOST_A, 46002, 30), 0);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46001, &e), 0);
	CHECK_EQ_INT(e.lease_duration, 0);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46002, &e), 0);
	CHECK(e.lease_duration >= 29 && e.lease_duration <= 30);
	const struct state_mapping *m = h_rec(h, TCP, 46002);
	uint8_t nonce[PCP_NONCE_LEN];
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	h_run(h, 28500);
	CHECK(h_listed(h, TCP, 46002));
	CHECK_EQ_INT(h_count_req(h, mark, 46002, L_DELETE), 0);
	h_run(h, 2000);
	CHECK(!h_listed(h, TCP, 46002));
	const struct pcp_msg *d = h_req(h, mark, 46002, L_DELETE);
	CHECK(d && memcmp(d->nonce, nonce, PCP_NONCE_LEN) == 0);
	CHECK(srv_map(h, TCP, HOST_A, 46002) == NULL);
	CHECK(state_table_find(h->table, TCP, 46002, NULL) == NULL);
	/* Infinite: still there after 8 days, renewed all along, never deleted. */
	h_run(h, 8ull * 86400 * 1000);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46001, &e), 0);
	CHECK_EQ_INT(e.lease_duration, 0);
	CHECK(srv_map(h, TCP, HOST_A, 46001) != NULL);
	CHECK_EQ_INT(h_count_req(h, mark, 46001, L_DELETE), 0);
	h_free(h);
}

/* Leases, IGD:2: 0 or > 604800 -> 604800. */
static void leases_igd2(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	static const struct {
		uint16_t port;
		uint32_t lease, want;
	} rows[] = {{46101, 0, 604800}, {46102, 1000000, 604800}, {46103, 604800, 604800}, {46104, 3600, 3600}};
	for (size_t k = 0; k < 4; k++) {
		CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, rows[k].port, HOST_A, rows[k].port, rows[k].lease), 0);
		struct upnp_pm_entry e;
		CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, rows[k].port, &e), 0);
		CHECK(e.lease_duration >= rows[k].want - 1 && e.lease_duration <= rows[k].want);
	}
	size_t mark = h_mark(h);
	h_run(h, 604800ull * 1000 - 10000);
	CHECK(h_listed(h, TCP, 46101));
	CHECK(h_listed(h, TCP, 46102));
	CHECK(!h_listed(h, TCP, 46104));
	h_run(h, 20000);
	CHECK(!h_listed(h, TCP, 46101));
	CHECK(!h_listed(h, TCP, 46102));
	CHECK(!h_listed(h, TCP, 46103));
	CHECK_EQ_INT(state_table_size(h->table), 0);
	CHECK_EQ_INT(srv_count(h), 0);
	CHECK_EQ_INT(h_count_req(h, mark, 46101, L_DELETE), 1);
	h_free(h);
}

/* The PCP lifetime requested is min(cfg.pcp_lifetime, lease left) - in every MAP, renewals
 * included. */
static void leases_pcp_lifetime(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_lifetime = 600;
	struct h *h = h_new(&cfg);
	static const struct {
		uint16_t port;
		uint32_t lease;
	} rows[] = {{46201, 1000}, {46202, 300}, {46203, 0}, {46204, 2500}};
	uint64_t end[4];
	size_t mark = h_mark(h);
	for (size_t k = 0; k < 4; k++) {
		end[k] = rows[k].lease ? h->now + (uint64_t)rows[k].lease * 1000 : 0;
		CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, rows[k].port, HOST_A, rows[k].port, rows[k].lease), 0);
	}
	const struct pcp_msg *q = h_req(h, mark, 46201, L_CREATE);
	CHECK(q && q->lifetime == 600);
	q = h_req(h, mark, 46202, L_CREATE);
	CHECK(q && q->lifetime >= 299 && q->lifetime <= 300);
	q = h_req(h, mark, 46203, L_CREATE);
	CHECK(q && q->lifetime == 600);
	h_run(h, 3000 * 1000);
	size_t renewals = 0;
	for (size_t i = mark; i < h->n_log; i++) {
		const struct pcp_msg *r = &h->log[i].m;
		if (h_is_probe(r) || r->lifetime == 0)
			continue;
		size_t k = (size_t)(r->internal_port - 46201);
		if (k >= 4)
			continue;
		CHECK(r->lifetime <= 600);
		if (end[k]) {
			uint64_t left = end[k] > h->log[i].at ? end[k] - h->log[i].at : 0;
			bool ok = (uint64_t)r->lifetime * 1000 <= left + 1000;
			if (!ok)
				fprintf(stderr, "port %u: MAP at %.1f s asks %u s, lease left %.1f s\n",
					r->internal_port, (double)(h->log[i].at - H_T0) / 1000.0, r->lifetime,
					(double)left / 1000.0);
			CHECK(ok);
		}
		renewals++;
	}
	CHECK(renewals >= 8);
	h_free(h);
}

/* Leases live on the monotonic clock: stepping the wall clock +-1 day changes nothing. */
static void leases_wall_clock_step(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 46301, HOST_A, 46301, 3600), 0);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 46302, HOST_A, 46302, 0), 0);
	h_run(h, 100000);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46301, &e), 0);
	uint32_t left = e.lease_duration;
	size_t mark = h_mark(h);
	h->wall_offset += 86400;
	h_run(h, 10000);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46301, &e), 0);
	CHECK(e.lease_duration + 10 >= left - 1 && e.lease_duration + 10 <= left + 1);
	h->wall_offset -= 2 * 86400;
	h_run(h, 10000);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46301, &e), 0);
	CHECK(e.lease_duration + 20 >= left - 1 && e.lease_duration + 20 <= left + 1);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 46302, &e), 0);
	CHECK_EQ_INT(e.lease_duration, 0);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_DELETE), 0);
	CHECK_EQ_INT(state_table_count(h->table), 2);
	/* ...and the lease still ends when the monotonic clock says. */
	h_run(h, (uint64_t)(left - 20) * 1000 + 2000);
	CHECK(!h_listed(h, TCP, 46301));
	CHECK(h_listed(h, TCP, 46302));
	h_free(h);
}

/* New rule: a renewal unanswered past the mapping's lifetime (a long outage) does not
 * remove the entry; when the server answers again it is re-created with the same nonce. */
static void outage_longer_than_lifetime(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_lifetime = 120;
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 47001, HOST_A, 47001, 0), 0);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, UDP, 47002, HOST_A, 47002, 0), 0);
	uint8_t n1[PCP_NONCE_LEN], n2[PCP_NONCE_LEN];
	const struct state_mapping *m = h_rec(h, TCP, 47001);
	if (m)
		memcpy(n1, m->nonce, sizeof(n1));
	m = h_rec(h, UDP, 47002);
	if (m)
		memcpy(n2, m->nonce, sizeof(n2));
	h_run(h, 30000);
	size_t mark = h_mark(h);
	h->srv.silent = true;
	for (int k = 0; k < 6; k++) {
		h_run(h, 600 * 1000);
		CHECK(h_listed(h, TCP, 47001));
		CHECK(h_listed(h, UDP, 47002));
		CHECK_EQ_INT(state_table_count(h->table), 2);
	}
	CHECK_EQ_INT(srv_count(h), 0); /* the carrier dropped them long ago */
	CHECK(strcmp(h->st_status, "Disconnected") == 0);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_DELETE), 0);
	size_t back = h_mark(h);
	h->srv.silent = false;
	h_run(h, 1100 * 1000); /* at most one MRT (RFC 6887 §8.1.1) until the next attempt */
	struct h_cmap *c1 = srv_map(h, TCP, HOST_A, 47001), *c2 = srv_map(h, UDP, HOST_A, 47002);
	CHECK(c1 && c1->ext_port == 47001 && memcmp(c1->nonce, n1, PCP_NONCE_LEN) == 0);
	CHECK(c2 && c2->ext_port == 47002 && memcmp(c2->nonce, n2, PCP_NONCE_LEN) == 0);
	for (size_t i = mark; i < h->n_log; i++) {
		const struct pcp_msg *r = &h->log[i].m;
		if (r->internal_port == 47001)
			CHECK(memcmp(r->nonce, n1, PCP_NONCE_LEN) == 0);
		if (r->internal_port == 47002)
			CHECK(memcmp(r->nonce, n2, PCP_NONCE_LEN) == 0);
	}
	CHECK(h_mark(h) > back);
	CHECK(h_listed(h, TCP, 47001));
	CHECK(h_listed(h, UDP, 47002));
	CHECK(strcmp(h->st_status, "Connected") == 0);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_DELETE), 0);
	h_free(h);
}

/* New rule: after a restart, a host re-adding its own stored mapping during
 * PCP_SERVICE_WAIT gets success at once (not waiting for PCP), and the carrier later sees
 * the stored nonce, never a new one. */
static void readd_during_service_wait(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_service_wait_s = 30;
	struct h *h = h_alloc(&cfg, false);
	h_store(h, TCP, 48001, HOST_A, 48001, 3600, 1800 * 1000, STATE_F_ENABLED, 0x5a);
	uint8_t stored[PCP_NONCE_LEN];
	memset(stored, 0x5a, sizeof(stored));
	srv_put(h, TCP, HOST_A, 48001, 48001, stored, 1000); /* the carrier kept it */
	h_core_new(h);
	uint64_t t0 = h->now;
	h_start_with(h, 20000);
	h_run(h, 1000);
	h->srv.hold = true; /* whatever is sent now gets no answer for a while */
	struct upnp_args a = h_args(TCP, 48001, HOST_A, 48001, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_run(h, 100);
	CHECK_EQ_INT(h_code(h, i), 0);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 48001, &e), 0);
	CHECK(e.lease_duration >= 3599); /* renewed */
	h_run(h, 3000);
	h->srv.hold = false;
	srv_release(h, false);
	h_run(h, (t0 + 40000) - h->now);
	CHECK(h_count_req(h, 0, 48001, L_CREATE) >= 1);
	for (size_t k = 0; k < h->n_log; k++)
		if (h->log[k].m.internal_port == 48001)
			CHECK(h_nonce_is(&h->log[k].m, 0x5a));
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 48001);
	CHECK(cm && cm->nonce[0] == 0x5a && cm->ext_port == 48001);
	CHECK(h_listed(h, TCP, 48001));
	CHECK_EQ_INT(state_table_count(h->table), 1);
	const struct state_mapping *m = h_rec(h, TCP, 48001);
	CHECK(m && m->nonce[0] == 0x5a);
	h_free(h);
}

/* A restore arms each stored lease once: the replay's phase changes (PENDING -> REPLAYING
 * -> ACTIVE) do not push it again. They did, and the lease heap, full of live duplicates,
 * was compacted at every push: restoring 10,000 mappings cost 2 s of CPU (bench). */
static void restore_arms_each_lease_once(void)
{
	enum { N = 300 };
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.max_per_host = N; /* one host holds them all (default 128) */
	cfg.pcp_service_wait_s = 0;
	struct h *h = h_alloc(&cfg, true);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	for (uint16_t k = 0; k < N; k++)
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, (uint16_t)(47000 + k), (uint16_t)(47000 + k)), 0);
	h_restart(h);
	h_start_with(h, 0);
	h_run(h, 60000);
	CHECK_EQ_INT(srv_count(h), N);
	struct iwf_core_counters n;
	iwf_core_counters(h->core, &n);
	CHECK_EQ_INT(n.mappings, N);
	CHECK_RANGE(n.lease_slots, N, N);
	CHECK_RANGE(n.lease_compactions, 0, 2);
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"seed004_5_10_service_wait", seed004_5_10_service_wait},
		{"seed004_5_10_replay_rate", seed004_5_10_replay_rate},
		{"seed004_5_10_replay_rate_slow", seed004_5_10_replay_rate_slow},
		{"seed004_5_10_epoch_reset", seed004_5_10_epoch_reset},
		{"seed004_5_10_restart_journal", seed004_5_10_restart_journal},
		{"leases_igd1", leases_igd1},
		{"leases_igd2", leases_igd2},
		{"leases_pcp_lifetime", leases_pcp_lifetime},
		{"leases_wall_clock_step", leases_wall_clock_step},
		{"outage_longer_than_lifetime", outage_longer_than_lifetime},
		{"readd_during_service_wait", readd_during_service_wait},
		{"restore_arms_each_lease_once", restore_arms_each_lease_once},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_sync");
}
