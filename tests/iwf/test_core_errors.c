/*
 * test_core_errors.c - the core (iwf/core.h) under a fake clock and a scripted PCP server:
 * seed 004 §4.3 (every PCP result -> its UPnP error, IGD:1 and IGD:2; no answer -> 501 and
 * ConnectionStatus Disconnected) and §5.1 (the LAN is never held up by a silent PCP server;
 * synchronisation once it answers again).
 *
 * Run one test: test_core_errors NAME (see tests[] below); all: no argument.
 * IWF_TEST_VERBOSE=1 prints the core's log and every PCP request.
 */
#include "test_core_harness.h"

/* seed 004 §4.3, written out again from docs/conformance.md's table (not from errmap.c). */
static const struct {
	uint8_t pcp;
	int igd1, igd2;
} want_4_3[] = {
	{PCP_RESULT_UNSUPP_VERSION, 501, 501},
	{PCP_RESULT_NOT_AUTHORIZED, 718, 606},
	{PCP_RESULT_MALFORMED_REQUEST, 501, 501},
	{PCP_RESULT_UNSUPP_OPCODE, 501, 501},
	{PCP_RESULT_UNSUPP_OPTION, 501, 501},
	{PCP_RESULT_MALFORMED_OPTION, 501, 501},
	{PCP_RESULT_NETWORK_FAILURE, 501, 501},
	{PCP_RESULT_NO_RESOURCES, 501, 728},
	{PCP_RESULT_UNSUPP_PROTOCOL, 501, 501},
	{PCP_RESULT_USER_EX_QUOTA, 501, 728},
	{PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 718, 718},
	{PCP_RESULT_ADDRESS_MISMATCH, 501, 501},
	{PCP_RESULT_EXCESSIVE_REMOTE_PEERS, 501, 501},
};
#define N_4_3 (sizeof(want_4_3) / sizeof(want_4_3[0]))

/* One Add (AddPortMapping or AddAnyPortMapping) answered with `result` by the server. */
static void check_result(struct h *h, int igd, bool any, size_t row, uint16_t port)
{
	uint8_t result = want_4_3[row].pcp;
	int want = igd == 2 ? want_4_3[row].igd2 : want_4_3[row].igd1;
	size_t entries = state_table_count(h->table);
	size_t mark = h_mark(h);
	h->srv.force.count = 1;
	h->srv.force.result = result;
	h->srv.force.in_port = port;
	h->srv.force.kind = K_CREATE;
	struct upnp_args a = h_args(TCP, port, HOST_A, port, 3600);
	int i = h_act(h, any ? UPNP_ACT_ADD_ANY_PORT_MAPPING : UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	int code = h_wait(h, i, 10000);
	if (code != want)
		fprintf(stderr, "IGD:%d %s, PCP %s: UPnP %d, want %d\n", igd, any ? "AddAny" : "Add",
			pcp_result_name(result), code, want);
	CHECK_EQ_INT(code, want);
	CHECK(h_req(h, mark, port, L_CREATE) != NULL);       /* it did ask the server */
	CHECK_EQ_INT(h->srv.force.count, 0);                 /* and the server refused it */
	CHECK_EQ_INT(state_table_count(h->table), entries);  /* nothing stored */
	CHECK(!h_listed(h, TCP, port));
	if (result == PCP_RESULT_NETWORK_FAILURE) {
		/* §4.3 row 7: not Connected. */
		CHECK(strcmp(h->st_status, "Disconnected") == 0);
		int s = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
		CHECK_EQ_INT(h_code(h, s), 0);
		CHECK(strcmp(h->ans[s].status, "Disconnected") == 0);
	}
	/* Give the engine time to forget the refused request (short-lived errors are retried
	 * by pcp/ only while somebody holds the flow). */
	h_run(h, 1000);
}

static void errors_for(int igd)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	CHECK(strcmp(h->st_status, "Connected") == 0);
	for (size_t row = 0; row < N_4_3; row++) {
		check_result(h, igd, false, row, (uint16_t)(30000 + row));
		if (want_4_3[row].pcp == PCP_RESULT_NETWORK_FAILURE) {
			/* Connected again once the server grants something. */
			CHECK_EQ_INT(h_add(h, HOST_A, TCP, 30100, 30100), 0);
			CHECK(strcmp(h->st_status, "Connected") == 0);
		}
		if (igd == 2)
			check_result(h, igd, true, row, (uint16_t)(31000 + row));
	}
	/* Nothing refused reached the table; only the one mapping granted is there. */
	CHECK_EQ_INT(state_table_count(h->table), 1);
	h_free(h);
}

static void seed004_4_3_errors_igd1(void)
{
	errors_for(1);
}

static void seed004_4_3_errors_igd2(void)
{
	errors_for(2);
}

/* No answer within answer_deadline_ms -> 501 and ConnectionStatus Disconnected; the
 * request does not linger in the table; Connected again when the server answers. */
static void no_answer_for(int igd, bool any)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	cfg.answer_deadline_ms = 4000;
	struct h *h = h_new(&cfg);
	CHECK(strcmp(h->st_status, "Connected") == 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 32000, 32000), 0);
	h->srv.silent = true;
	struct upnp_args a = h_args(TCP, 32001, HOST_A, 32001, 3600);
	uint64_t t_act = h->now;
	int i = h_act(h, any ? UPNP_ACT_ADD_ANY_PORT_MAPPING : UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_run(h, 3900);
	CHECK_EQ_INT(h_code(h, i), H_NONE); /* it waits for the deadline... */
	h_run(h, 200);
	CHECK_EQ_INT(h_code(h, i), 501);    /* ...and no longer */
	CHECK(h->ans[i].at >= t_act + 4000 && h->ans[i].at <= t_act + 4100);
	CHECK(strcmp(h->st_status, "Disconnected") == 0);
	int s = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	CHECK_EQ_INT(h_code(h, s), 0); /* answered at once, while the server is silent */
	CHECK(strcmp(h->ans[s].status, "Disconnected") == 0);
	CHECK(!h_listed(h, TCP, 32001));
	CHECK(h_listed(h, TCP, 32000));
	CHECK_EQ_INT(state_table_count(h->table), 1);
	/* The server answers again: Connected; the failed request left nothing behind. */
	h->srv.silent = false;
	h_run(h, 120000);
	CHECK(strcmp(h->st_status, "Connected") == 0);
	CHECK(srv_map(h, TCP, HOST_A, 32001) == NULL);
	CHECK(!h_listed(h, TCP, 32001));
	CHECK(h_listed(h, TCP, 32000));
	h_free(h);
}

static void seed004_4_3_no_answer(void)
{
	no_answer_for(1, false);
	no_answer_for(2, false);
	no_answer_for(2, true);
}

/* The server made the mapping but its answers were lost: the control point got 501, so
 * the mapping must not stay on the carrier either (deleted with the request's nonce). */
static void seed004_4_3_no_answer_no_orphan(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.answer_deadline_ms = 4000;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	h->srv.lose_answers = true;
	struct upnp_args a = h_args(TCP, 32101, HOST_A, 32101, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	CHECK_EQ_INT(h_wait(h, i, 6000), 501);
	const struct pcp_msg *create = h_req(h, mark, 32101, L_CREATE);
	CHECK(create != NULL);
	CHECK(mark < h->n_log && h->log[mark].result == PCP_RESULT_SUCCESS); /* made, unbeknown */
	h->srv.lose_answers = false;
	h_run(h, 120000);
	CHECK(srv_map(h, TCP, HOST_A, 32101) == NULL);
	const struct pcp_msg *del = h_req(h, mark, 32101, L_DELETE);
	CHECK(del != NULL);
	if (create && del)
		CHECK(memcmp(create->nonce, del->nonce, PCP_NONCE_LEN) == 0);
	CHECK(!h_listed(h, TCP, 32101));
	CHECK_EQ_INT(state_table_size(h->table), 0);
	h_free(h);
}

/*
 * §5.1: while the server is silent, every read is answered inside iwf_core_action (no
 * iwf_core_run, no PCP message) and a pending Add holds nobody up; once the server answers
 * again - it lost its state meanwhile - the stored mappings are on it again, same nonces
 * and ports.
 */
static void seed004_5_1_reads_while_silent(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	cfg.answer_deadline_ms = 4000;
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 33001, HOST_A, 33001, 0), 0); /* a week */
	CHECK_EQ_INT(h_add_lease(h, HOST_A, UDP, 33002, HOST_A, 33002, 0), 0);
	uint8_t n1[PCP_NONCE_LEN], n2[PCP_NONCE_LEN];
	const struct state_mapping *m1 = h_rec(h, TCP, 33001), *m2 = h_rec(h, UDP, 33002);
	CHECK(m1 && m2);
	if (!m1 || !m2) {
		h_free(h);
		return;
	}
	memcpy(n1, m1->nonce, sizeof(n1));
	memcpy(n2, m2->nonce, sizeof(n2));

	h->srv.silent = true;
	struct upnp_args a = h_args(TCP, 33003, HOST_A, 33003, 3600);
	int pending = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_run(h, 500);
	size_t mark = h_mark(h);
	unsigned runs = h->runs;
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_generic(h, 0, &e), 0);
	CHECK_EQ_INT(e.external_port, 33001);
	CHECK_EQ_INT(h_get_generic(h, 1, &e), 0);
	CHECK_EQ_INT(e.external_port, 33002);
	CHECK_EQ_INT(h_get_generic(h, 2, NULL), 713);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 33001, &e), 0);
	CHECK(strcmp(e.internal_client, HOST_A) == 0);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 33003, NULL), 714); /* not granted yet */
	size_t n = 0;
	CHECK_EQ_INT(h_get_list(h, HOST_A, TCP, 0, 65535, false, &n), 0);
	CHECK_EQ_INT(n, 1);
	int ip = h_status_call(h, UPNP_ACT_GET_EXTERNAL_IP_ADDRESS);
	CHECK_EQ_INT(h_code(h, ip), 0);
	CHECK(strcmp(h->ans[ip].external_ip, H_EXT) == 0);
	int st = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	CHECK_EQ_INT(h_code(h, st), 0);
	CHECK_EQ_INT(h->runs, runs);              /* nobody needed iwf_core_run */
	CHECK_EQ_INT(h_sent_all(h, mark), 0);     /* nor the PCP server */
	CHECK_EQ_INT(h_code(h, pending), H_NONE); /* the Add still waits, alone */
	CHECK_EQ_INT(h_wait(h, pending, 5000), 501);

	/* The server reboots while unreachable, then answers again. */
	srv_restart(h);
	h_run(h, 60000);
	CHECK_EQ_INT(h_get_generic(h, 0, NULL), 0); /* still readable, still two */
	CHECK_EQ_INT(h_get_generic(h, 2, NULL), 713);
	mark = h_mark(h);
	h->srv.silent = false;
	h_run(h, 1200 * 1000); /* at most one MRT (RFC 6887 §8.1.1) until the next attempt */
	struct h_cmap *c1 = srv_map(h, TCP, HOST_A, 33001), *c2 = srv_map(h, UDP, HOST_A, 33002);
	CHECK(c1 != NULL);
	CHECK(c2 != NULL);
	if (c1) {
		CHECK(memcmp(c1->nonce, n1, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(c1->ext_port, 33001);
	}
	if (c2) {
		CHECK(memcmp(c2->nonce, n2, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(c2->ext_port, 33002);
	}
	CHECK_EQ_INT(state_table_count(h->table), 2);
	CHECK(strcmp(h->st_status, "Connected") == 0);
	CHECK(h_count_req(h, mark, 33001, L_DELETE) == 0); /* never given up */
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"seed004_4_3_errors_igd1", seed004_4_3_errors_igd1},
		{"seed004_4_3_errors_igd2", seed004_4_3_errors_igd2},
		{"seed004_4_3_no_answer", seed004_4_3_no_answer},
		{"seed004_4_3_no_answer_no_orphan", seed004_4_3_no_answer_no_orphan},
		{"seed004_5_1_reads_while_silent", seed004_5_1_reads_while_silent},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_errors");
}
