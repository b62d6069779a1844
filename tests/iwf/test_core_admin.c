/*
 * test_core_admin.c - the router administrator's entry points of the core (iwf/core.h,
 * iwf/admin.c; the control socket and iwfctl drive them) under a fake clock and a scripted
 * PCP server: a static mapping goes through the same lifecycle as a UPnP one (MAP with
 * PREFER_FAILURE and a stored nonce, listed over UPnP with its description, a lifetime-0
 * MAP with the nonce on delete, replayed after a restart), the administrator deletes UPnP
 * mappings too, control points may not touch static ones.
 *
 * Run one test: test_core_admin NAME; all: no argument. IWF_TEST_VERBOSE=1 for logs.
 */
#include "test_core_harness.h"

struct admin_result {
	int n;
	int err;
	uint16_t port;
};

static void admin_done(void *arg, enum upnp_error err, uint16_t external_port)
{
	struct admin_result *r = arg;
	r->n++;
	r->err = (int)err;
	r->port = external_port;
}

static struct upnp_pm_entry static_pm(enum upnp_proto proto, uint16_t ext, const char *client, uint16_t in,
				      const char *desc)
{
	struct upnp_pm_entry pm;
	memset(&pm, 0, sizeof(pm));
	pm.protocol = proto;
	pm.external_port = ext;
	pm.internal_port = in;
	pm.enabled = true;
	snprintf(pm.internal_client, sizeof(pm.internal_client), "%s", client);
	snprintf(pm.description, sizeof(pm.description), "%s", desc);
	return pm;
}

/* Add, list, refuse control points, restart (replay with the nonce), delete. */
static void static_lifecycle(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;          /* lease 0 stays permanent for the administrator */
	cfg.pcp_service_wait_s = 5;
	/* the permission rules bind control points, not the administrator */
	CHECK(iwf_rule_parse(&cfg.rules[0], "deny 0-65535 0.0.0.0/0 0-65535"));
	cfg.n_rules = 1;
	struct h *h = h_alloc(&cfg, true);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);

	size_t mark = h_mark(h);
	struct admin_result r = {0};
	struct upnp_pm_entry pm = static_pm(TCP, 47000, HOST_A, 8080, "admin game");
	iwf_core_admin_add(h->core, &pm, admin_done, &r);
	h_run(h, 1000);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.err, 0);
	CHECK_EQ_INT(r.port, 47000);
	const struct state_mapping *m = h_rec(h, TCP, 47000);
	CHECK(m != NULL);
	uint8_t nonce[PCP_NONCE_LEN] = {0};
	if (m) {
		memcpy(nonce, m->nonce, sizeof(nonce));
		CHECK(m->flags & STATE_F_STATIC);
		CHECK(!(m->flags & STATE_F_INTENT));
		static const struct in6_addr zero;
		CHECK(memcmp(&m->owner, &zero, sizeof(zero)) == 0);
		CHECK_EQ_INT(m->lease_end_ms, 0);
	}
	const struct pcp_msg *q = h_req(h, mark, 8080, L_CREATE);
	CHECK(q != NULL);
	if (q) {
		CHECK(memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(q->external_port, 47000);
		CHECK(q->prefer_failure);
		CHECK(q->has_third_party && h_ip_eq(&q->third_party, HOST_A));
	}
	CHECK(srv_map(h, TCP, HOST_A, 8080) != NULL);

	/* UPnP lists it with its description and no lease end */
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 47000, &e), 0);
	CHECK(strcmp(e.description, "admin game") == 0);
	CHECK_EQ_INT(e.lease_duration, 0);
	CHECK_EQ_INT(e.internal_port, 8080);

	/* the administrator's view */
	struct iwf_admin_entry list[4];
	CHECK_EQ_INT(iwf_core_admin_list(h->core, list, 4), 1);
	CHECK(list[0].is_static);
	CHECK(strcmp(list[0].phase, "active") == 0);
	CHECK(list[0].has_pcp && list[0].pcp_left_s > 0);
	struct iwf_admin_status st;
	iwf_core_admin_status(h->core, &st);
	CHECK(st.connected);
	CHECK(st.have_epoch);
	CHECK_EQ_INT(st.mappings, 1);
	CHECK(strcmp(st.external, H_EXT) == 0);

	/* a control point, even the internal client itself, may not delete or overwrite it */
	mark = h_mark(h);
	CHECK_EQ_INT(h_delete(h, HOST_A, TCP, 47000), 606);
	struct upnp_args a = h_args(TCP, 47000, HOST_A, 8080, 3600);
	CHECK(h_code(h, h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 2000)) != 0);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK(h_rec(h, TCP, 47000) && strcmp(h_rec(h, TCP, 47000)->description, "admin game") == 0);

	/* restart: stored, replayed with its nonce after PCP_SERVICE_WAIT, still static */
	h_run(h, 5000);
	h_restart(h);
	mark = h_mark(h);
	CHECK(h_listed(h, TCP, 47000));
	h_start_with(h, 0);
	h_run(h, 7000);
	q = h_req(h, mark, 8080, L_CREATE);
	CHECK(q && memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0 && q->external_port == 47000);
	m = h_rec(h, TCP, 47000);
	CHECK(m && (m->flags & STATE_F_STATIC));

	/* delete: a lifetime-0 MAP with the stored nonce, then gone */
	mark = h_mark(h);
	struct admin_result d = {0};
	iwf_core_admin_delete(h->core, TCP, 47000, "", admin_done, &d);
	h_run(h, 1000);
	CHECK_EQ_INT(d.n, 1);
	CHECK_EQ_INT(d.err, 0);
	const struct pcp_msg *del = h_req(h, mark, 8080, L_DELETE);
	CHECK(del && memcmp(del->nonce, nonce, PCP_NONCE_LEN) == 0 && del->lifetime == 0);
	CHECK(srv_map(h, TCP, HOST_A, 8080) == NULL);
	CHECK(!h_listed(h, TCP, 47000));
	CHECK_EQ_INT(state_table_count(h->table), 0);
	iwf_core_admin_delete(h->core, TCP, 47000, "", admin_done, &d);
	CHECK_EQ_INT(d.n, 2);
	CHECK_EQ_INT(d.err, 714);
	CHECK_EQ_INT(h->foreign_answers, 0);
	h_free(h);
}

/* The administrator removes a control point's mapping (which that control point could, but
 * no other could under IGD:1 default security), here and on the carrier. */
static void admin_deletes_upnp_mapping(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add(h, HOST_B, UDP, 47002, 47002), 0);
	CHECK_EQ_INT(h_delete(h, HOST_A, UDP, 47002), 606); /* another host may not */
	struct admin_result d = {0};
	size_t mark = h_mark(h);
	iwf_core_admin_delete(h->core, UDP, 47002, NULL, admin_done, &d);
	h_run(h, 1000);
	CHECK_EQ_INT(d.n, 1);
	CHECK_EQ_INT(d.err, 0);
	CHECK(h_req(h, mark, 47002, L_DELETE) != NULL);
	CHECK(srv_map(h, UDP, HOST_B, 47002) == NULL);
	CHECK(!h_listed(h, UDP, 47002));
	struct iwf_core_stats cs;
	iwf_core_stats(h->core, &cs);
	CHECK_EQ_INT(cs.actions[UPNP_ACT_ADD_PORT_MAPPING], 1);
	uint64_t n606 = 0, sum = 0;
	for (size_t i = 0; i < IWF_STATS_ERROR_CODES; i++) {
		sum += cs.errors[i].n;
		if (cs.errors[i].code == 606)
			n606 = cs.errors[i].n;
	}
	CHECK_EQ_INT(n606, 1);
	CHECK_EQ_INT(sum, cs.errors_total);
	CHECK_EQ_INT(cs.admin_requests, 1);
	h_free(h);
}

/* A requester that went away (iwfctl closed its connection) is never called; the change it
 * asked for still completes. Bad arguments and a taken port are answered at once. */
static void cancel_and_errors(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	h->srv.hold = true;
	struct admin_result r = {0};
	struct upnp_pm_entry pm = static_pm(TCP, 47010, HOST_A, 47010, "held");
	iwf_core_admin_add(h->core, &pm, admin_done, &r);
	h_run(h, 100);
	CHECK_EQ_INT(r.n, 0);
	iwf_core_admin_cancel(h->core, &r);
	h->srv.hold = false;
	srv_release(h, false);
	h_run(h, 1000);
	CHECK_EQ_INT(r.n, 0);
	CHECK(h_listed(h, TCP, 47010));

	struct admin_result c = {0};
	CHECK_EQ_INT(h_add(h, HOST_B, TCP, 47011, 47011), 0);
	pm = static_pm(TCP, 47011, HOST_A, 47011, "taken");
	iwf_core_admin_add(h->core, &pm, admin_done, &c);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.err, 718);
	pm = static_pm(TCP, 47012, "not an address", 1, "bad");
	iwf_core_admin_add(h->core, &pm, admin_done, &c);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_INT(c.err, 402);
	pm = static_pm(TCP, 0, HOST_A, 1, "no port");
	iwf_core_admin_add(h->core, &pm, admin_done, &c);
	CHECK_EQ_INT(c.n, 3);
	CHECK_EQ_INT(c.err, 402);
	CHECK_EQ_INT(h->foreign_answers, 0);
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"static_lifecycle", static_lifecycle},
		{"admin_deletes_upnp_mapping", admin_deletes_upnp_mapping},
		{"cancel_and_errors", cancel_and_errors},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_admin");
}
