/*
 * test_core_read_delete.c - listing and deleting through the core (iwf/core.h) under a fake
 * clock and a scripted PCP server: seed 004 §5.8 (reads from the local table only, in commit
 * order) and §5.9 (DeletePortMapping / DeletePortMappingRange: the local table first, a
 * lifetime-0 MAP with the stored nonce, removal only on the server's positive answer).
 *
 * Run one test: test_core_read_delete NAME; all: no argument. IWF_TEST_VERBOSE=1 for logs.
 */
#include "test_core_harness.h"

/* §5.8: reads never reach PCP; GetGeneric's index follows the order of commit. */
static void seed004_5_8_reads(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 39001, 39001), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, UDP, 39002, 39002), 0);
	h_run(h, 1000);
	size_t mark = h_mark(h);
	unsigned runs = h->runs;
	for (int round = 0; round < 3; round++) {
		struct upnp_pm_entry e;
		CHECK_EQ_INT(h_get_generic(h, 0, &e), 0);
		CHECK_EQ_INT(e.external_port, 39001);
		CHECK_EQ_INT(e.protocol, TCP);
		CHECK_EQ_INT(h_get_generic(h, 1, &e), 0);
		CHECK_EQ_INT(e.external_port, 39002);
		CHECK_EQ_INT(e.protocol, UDP);
		CHECK_EQ_INT(h_get_generic(h, 2, NULL), 713); /* past the end */
		CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39001, &e), 0);
		CHECK(strcmp(e.internal_client, HOST_A) == 0);
		CHECK_EQ_INT(e.internal_port, 39001);
		CHECK(e.enabled);
		CHECK(strcmp(e.description, "test 39001") == 0);
		CHECK(e.lease_duration > 3500 && e.lease_duration <= 3600);
		CHECK(strcmp(e.remote_host, "") == 0);
		CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39009, NULL), 714); /* unknown */
		CHECK_EQ_INT(h_get_specific(h, HOST_A, UDP, 39001, NULL), 714); /* other protocol */
		size_t n = 0;
		CHECK_EQ_INT(h_get_list(h, HOST_A, TCP, 0, 65535, false, &n), 0);
		CHECK_EQ_INT(n, 1);
		CHECK_EQ_INT(h->list[0].external_port, 39001);
		int ip = h_status_call(h, UPNP_ACT_GET_EXTERNAL_IP_ADDRESS);
		CHECK_EQ_INT(h_code(h, ip), 0);
		CHECK(strcmp(h->ans[ip].external_ip, H_EXT) == 0);
		int st = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
		CHECK_EQ_INT(h_code(h, st), 0);
		CHECK(strcmp(h->ans[st].status, "Connected") == 0);
	}
	CHECK_EQ_INT(h->runs, runs);          /* answered at once */
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0); /* MUST NOT be proxied to the PCP server */

	/* The order of commit, not of request: the server answers the later Add first. */
	h->srv.hold = true;
	struct upnp_args a = h_args(TCP, 39003, HOST_A, 39003, 3600);
	int i3 = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	a = h_args(TCP, 39004, HOST_A, 39004, 3600);
	int i4 = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_run(h, 10);
	CHECK_EQ_INT(h->srv.n_held, 2);
	/* Not granted yet: neither listed nor counted. */
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39003, NULL), 714);
	CHECK_EQ_INT(h_get_generic(h, 2, NULL), 713);
	CHECK_EQ_INT(h->st_entries, 2);
	h->srv.hold = false;
	srv_release_port(h, 39004);
	CHECK_EQ_INT(h_wait(h, i4, 1000), 0);
	CHECK_EQ_INT(h_code(h, i3), H_NONE);
	srv_release_port(h, 39003);
	CHECK_EQ_INT(h_wait(h, i3, 1000), 0);
	uint16_t order[4];
	for (uint16_t k = 0; k < 4; k++) {
		struct upnp_pm_entry e;
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(h_get_generic(h, k, &e), 0);
		order[k] = e.external_port;
	}
	CHECK_EQ_INT(order[0], 39001);
	CHECK_EQ_INT(order[1], 39002);
	CHECK_EQ_INT(order[2], 39004);
	CHECK_EQ_INT(order[3], 39003);
	CHECK_EQ_INT(h_get_generic(h, 4, NULL), 713);
	size_t n = 0;
	CHECK_EQ_INT(h_get_list(h, HOST_A, TCP, 39000, 39100, false, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_INT(h->list[0].external_port, 39001);
		CHECK_EQ_INT(h->list[1].external_port, 39004);
		CHECK_EQ_INT(h->list[2].external_port, 39003);
	}
	/* After a delete the others keep their relative order. */
	CHECK_EQ_INT(h_delete(h, HOST_A, TCP, 39001), 0);
	uint16_t want[3] = {39002, 39004, 39003};
	for (uint16_t k = 0; k < 3; k++) {
		struct upnp_pm_entry e;
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(h_get_generic(h, k, &e), 0);
		CHECK_EQ_INT(e.external_port, want[k]);
	}
	CHECK_EQ_INT(h_get_generic(h, 3, NULL), 713);
	h_free(h);
}

/*
 * §5.8 read strictly: GetStatusInfo and GetExternalIPAddress are answered from the state
 * variables - also before the PCP server was ever heard of (here: during PCP_SERVICE_WAIT)
 * - and send no PCP message.
 */
/*
 * Issue "Real homes over months" #8: right after start (here inside PCP_SERVICE_WAIT) nobody
 * knows yet whether the carrier answers. A status question (GetStatusInfo,
 * GetExternalIPAddress) is user-triggered like an Add: it sends the one address probe (not a
 * mapping replay) and is answered when the server answers - Connected, with the external
 * address - instead of "Disconnected" and "", which made miniupnpc-based clients give up.
 * A silent server: answered at the answer deadline, Disconnected. Table reads still send
 * nothing (§5.8), and nothing else leaves before the wait is over (§5.10).
 */
static void seed004_5_8_status_reads_during_service_wait(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.pcp_service_wait_s = 30;
	struct h *h = h_alloc(&cfg, false);
	h_store(h, 6, 41000, HOST_A, 41000, 0, 0, STATE_F_ENABLED, 0x41); /* its replay must wait */
	h_core_new(h);
	h_start_with(h, 20000); /* RAND(0, PCP_SERVICE_WAIT) = 20 s */
	h_run(h, 1000);
	size_t mark = h_mark(h);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_generic(h, 0, &e), 0); /* table reads: at once, no PCP */
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	int st = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	int ip = h_status_call(h, UPNP_ACT_GET_EXTERNAL_IP_ADDRESS);
	h_run(h, 500);
	CHECK_EQ_INT(h_code(h, st), 0);
	CHECK_EQ_INT(h_code(h, ip), 0);
	CHECK(strcmp(h->ans[st].status, "Connected") == 0);
	CHECK(h->ans[ip].external_ip[0] != '\0');
	/* exactly the probe left, and no replay of the stored mapping before the wait is over */
	size_t probes = 0, others = 0;
	for (size_t i = mark; i < h->n_log; i++) {
		if (h_is_probe(&h->log[i].m))
			probes++;
		else
			others++;
	}
	CHECK(probes >= 1);
	CHECK_EQ_INT(others, 0);
	/* later status questions are answered at once, without PCP */
	mark = h_mark(h);
	int st2 = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	CHECK_EQ_INT(h_code(h, st2), 0);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent(h, mark), 0); /* (the probe's own delete may still leave) */
	h_free(h);

	/* A silent server: the question is answered at the deadline, Disconnected. */
	h = h_alloc(&cfg, false);
	h_core_new(h);
	h_start_with(h, 20000);
	h->srv.silent = true;
	st = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	h_run(h, cfg.answer_deadline_ms - 100);
	CHECK_EQ_INT(h_code(h, st), H_NONE); /* still waiting */
	h_run(h, 200);
	CHECK_EQ_INT(h_code(h, st), 0);
	CHECK(strcmp(h->ans[st].status, "Disconnected") == 0);
	h_free(h);
}

/* §5.9 DeletePortMapping. */
static void delete_for(int igd)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	/* Unknown: 714 at once, zero PCP messages (Figure 9). */
	size_t mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 40000, NULL, 0, 0);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_A)), 714);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);

	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 40001, 40001), 0);
	const struct state_mapping *m = h_rec(h, TCP, 40001);
	uint8_t nonce[PCP_NONCE_LEN];
	CHECK(m != NULL);
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));

	/* Not the owner (allow_third_party false): 606, zero PCP messages, still listed. */
	mark = h_mark(h);
	a = h_args(TCP, 40001, NULL, 0, 0);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_B)), 606);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK(h_listed(h, TCP, 40001));

	/* Found: a lifetime-0 MAP with the stored nonce; removed only on the server's answer. */
	h->srv.hold = true;
	mark = h_mark(h);
	int i = h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_A);
	h_run(h, 10);
	const struct pcp_msg *d = h_req(h, mark, 40001, L_DELETE);
	CHECK(d != NULL);
	if (d) {
		CHECK(memcmp(d->nonce, nonce, PCP_NONCE_LEN) == 0);
		CHECK(d->has_third_party && h_ip_eq(&d->third_party, HOST_A));
		CHECK_EQ_INT(d->protocol, 6);
	}
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	CHECK(state_table_find(h->table, TCP, 40001, NULL) != NULL); /* still in the table */
	a = h_args(TCP, 40001, HOST_B, 40001, 3600);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_B)), 718); /* key held */
	CHECK(srv_map(h, TCP, HOST_A, 40001) != NULL);
	h->srv.hold = false;
	srv_release(h, false);
	CHECK_EQ_INT(h_wait(h, i, 1000), 0);
	CHECK(state_table_find(h->table, TCP, 40001, NULL) == NULL);
	CHECK(srv_map(h, TCP, HOST_A, 40001) == NULL);
	CHECK(!h_listed(h, TCP, 40001));
	CHECK_EQ_INT(h_count_req(h, mark, 40001, L_DELETE), 1);
	CHECK_EQ_INT(h_count_req(h, mark, 40001, L_CREATE), 0);
	h_free(h);
}

static void seed004_5_9_delete(void)
{
	delete_for(1);
	delete_for(2);
}

/* §5.9: no answer within 4 s -> 501 and the entry kept (still listed, still on the carrier
 * afterwards: the table mirrors the carrier). */
static void seed004_5_9_delete_no_answer(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 40101, 40101), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 40102, 40102), 0);
	const struct state_mapping *m = h_rec(h, TCP, 40101);
	uint8_t nonce[PCP_NONCE_LEN];
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	h->srv.silent = true;
	size_t mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 40101, NULL, 0, 0);
	uint64_t t0 = h->now;
	int i = h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_A);
	h_run(h, 3900);
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	h_run(h, 200);
	CHECK_EQ_INT(h_code(h, i), 501);
	CHECK(h->ans[i].at >= t0 + 4000 && h->ans[i].at <= t0 + 4100);
	CHECK(h_count_req(h, mark, 40101, L_DELETE) >= 1);
	CHECK(h_listed(h, TCP, 40101));
	CHECK_EQ_INT(state_table_count(h->table), 2);
	CHECK_EQ_INT(h->st_entries, 2);
	bool seen = false;
	for (uint16_t k = 0; k < 2; k++) {
		struct upnp_pm_entry e;
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(h_get_generic(h, k, &e), 0);
		seen |= e.external_port == 40101;
	}
	CHECK(seen);
	/* The server comes back: the mapping is still there, with its nonce, on both sides. */
	h->srv.silent = false;
	h_run(h, 600 * 1000);
	CHECK(h_listed(h, TCP, 40101));
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 40101);
	CHECK(cm != NULL);
	if (cm)
		CHECK(memcmp(cm->nonce, nonce, PCP_NONCE_LEN) == 0);
	m = h_rec(h, TCP, 40101);
	CHECK(m && memcmp(m->nonce, nonce, PCP_NONCE_LEN) == 0);
	/* And it can still be deleted. */
	CHECK_EQ_INT(h_delete(h, HOST_A, TCP, 40101), 0);
	CHECK(srv_map(h, TCP, HOST_A, 40101) == NULL);
	CHECK(!h_listed(h, TCP, 40101));
	h_free(h);
}

/* §5.9 (new rule): a PCP error result on the delete -> its §4.3 UPnP error, entry kept. */
static void delete_error_for(int igd)
{
	static const struct {
		uint8_t pcp;
		int igd1, igd2;
	} rows[] = {
		{PCP_RESULT_NOT_AUTHORIZED, 718, 606},
		{PCP_RESULT_MALFORMED_REQUEST, 501, 501},
		{PCP_RESULT_NO_RESOURCES, 501, 728},
	};
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		uint16_t port = (uint16_t)(40201 + r);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, port, port), 0);
		h->srv.force.count = 1;
		h->srv.force.result = rows[r].pcp;
		h->srv.force.in_port = port;
		h->srv.force.kind = K_DELETE;
		int want = igd == 2 ? rows[r].igd2 : rows[r].igd1;
		int code = h_delete(h, HOST_A, TCP, port);
		if (code != want)
			fprintf(stderr, "IGD:%d delete refused with %s: UPnP %d, want %d\n", igd,
				pcp_result_name(rows[r].pcp), code, want);
		CHECK_EQ_INT(code, want);
		CHECK_EQ_INT(h->srv.force.count, 0);
		CHECK(h_listed(h, TCP, port));
		CHECK(srv_map(h, TCP, HOST_A, port) != NULL);
		h_run(h, 60000);
		CHECK(h_listed(h, TCP, port));
		CHECK(srv_map(h, TCP, HOST_A, port) != NULL);
	}
	CHECK_EQ_INT(state_table_count(h->table), 3);
	h_free(h);
}

static void seed004_5_9_delete_error_kept(void)
{
	delete_error_for(1);
	delete_error_for(2);
}

/* §5.9 DeletePortMappingRange (IGD:2): only the requester's mappings in range, one MAP
 * each with its own nonce; 730 when none, 733 when start > end, zero PCP for both. */
static void seed004_5_9_delete_range(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	a.pm.protocol = TCP;
	a.start_port = 41000;
	a.end_port = 41100;
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING_RANGE, &a, HOST_A)), 730);
	a.start_port = 41100;
	a.end_port = 41000;
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING_RANGE, &a, HOST_A)), 733);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);

	static const uint16_t mine[] = {41001, 41002, 41003};
	uint8_t nonces[3][PCP_NONCE_LEN];
	for (size_t k = 0; k < 3; k++) {
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, mine[k], mine[k]), 0);
		const struct state_mapping *m = h_rec(h, TCP, mine[k]);
		if (m)
			memcpy(nonces[k], m->nonce, PCP_NONCE_LEN);
	}
	CHECK_EQ_INT(h_add(h, HOST_A, UDP, 41004, 41004), 0);  /* other protocol */
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 41200, 41200), 0);  /* out of range */
	CHECK_EQ_INT(h_add(h, HOST_B, TCP, 41005, 41005), 0);  /* another host's */

	/* start > end with mappings around: still 733, nothing sent. */
	mark = h_mark(h);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING_RANGE, &a, HOST_A)), 733);
	h_run(h, 500);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);

	mark = h_mark(h);
	CHECK_EQ_INT(h_delete_range(h, HOST_A, TCP, 41000, 41100, false), 0);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_DELETE), 3);
	CHECK_EQ_INT(h_count_req(h, mark, 0, L_CREATE), 0);
	for (size_t k = 0; k < 3; k++) {
		const struct pcp_msg *d = h_req(h, mark, mine[k], L_DELETE);
		CHECK(d != NULL);
		if (d)
			CHECK(memcmp(d->nonce, nonces[k], PCP_NONCE_LEN) == 0);
		CHECK(!h_listed(h, TCP, mine[k]));
		CHECK(srv_map(h, TCP, HOST_A, mine[k]) == NULL);
	}
	CHECK(h_listed(h, UDP, 41004));
	CHECK(h_listed(h, TCP, 41200));
	CHECK(h_listed(h, TCP, 41005));
	CHECK(srv_map(h, TCP, HOST_B, 41005) != NULL);
	CHECK_EQ_INT(state_table_count(h->table), 3);

	/* NewManage = 1 does not reach another host's mapping without third-party rights. */
	mark = h_mark(h);
	int code = h_delete_range(h, HOST_A, TCP, 41000, 41100, true);
	CHECK(code == 606 || code == 730);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK(h_listed(h, TCP, 41005));
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"seed004_5_8_reads", seed004_5_8_reads},
		{"seed004_5_8_status_reads_during_service_wait", seed004_5_8_status_reads_during_service_wait},
		{"seed004_5_9_delete", seed004_5_9_delete},
		{"seed004_5_9_delete_no_answer", seed004_5_9_delete_no_answer},
		{"seed004_5_9_delete_error_kept", seed004_5_9_delete_error_kept},
		{"seed004_5_9_delete_range", seed004_5_9_delete_range},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_read_delete");
}
