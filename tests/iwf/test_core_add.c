/*
 * test_core_add.c - creating mappings through the core (iwf/core.h) under a fake clock and a
 * scripted PCP server: seed 004 §5.4 (a MAP SUCCESS is stored and committed; UPnP answers
 * only after the journal sync), §5.5 (no NAT: THIRD_PARTY, FILTER, no DESCRIPTION; refused
 * FILTER), §5.7.1 (AddAnyPortMapping), §5.7.2 (AddPortMapping, the local table first,
 * PREFER_FAILURE) and §7 (IGD:1 default security, permission rules).
 *
 * Run one test: test_core_add NAME; all: no argument. IWF_TEST_VERBOSE=1 for the logs.
 */
#include "test_core_harness.h"

/* §5.4 + group commit: the record is committed with what the server granted, evented state
 * changes, and the control point hears "done" only from iwf_core_run(), after the sync. */
static void seed004_5_4_success_stored(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	size_t n0 = state_table_count(h->table);
	uint32_t ent0 = h->st_entries, upd0 = h->st_sysupd;
	unsigned ss0 = h->n_set_state;

	/* AddPortMapping */
	struct upnp_args a = h_args(TCP, 34001, HOST_A, 34011, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	h->wake = false;
	CHECK(h_pump(h) >= 1);                     /* MAP out, SUCCESS back */
	CHECK_EQ_INT(h_code(h, i), H_NONE);        /* not before iwf_core_run */
	CHECK(h->wake);                            /* but the core asked for one */
	CHECK_EQ_INT(state_table_count(h->table), n0 + 1);
	const struct state_mapping *m = h_rec(h, TCP, 34001);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(m->internal_port, 34011);
		CHECK(h_ip_eq(&m->internal_client, HOST_A));
		CHECK(h_ip_eq(&m->external_addr, H_EXT));
		struct h_cmap *cm = srv_map(h, TCP, HOST_A, 34011);
		CHECK(cm && memcmp(cm->nonce, m->nonce, PCP_NONCE_LEN) == 0); /* the nonce is stored */
	}
	CHECK(h->n_set_state > ss0);
	CHECK_EQ_INT(h->st_entries, ent0 + 1);
	CHECK(h->st_sysupd != upd0);
	unsigned runs = h->runs;
	h_core_run(h);
	CHECK_EQ_INT(h_code(h, i), 0);
	CHECK(h->ans[i].runs_before > runs);       /* answered from inside iwf_core_run */

	/* AddAnyPortMapping: the port the server granted (not the one asked) is stored. */
	srv_reserve(h, TCP, 34002);
	a = h_args(TCP, 34002, HOST_A, 34002, 3600);
	i = h_act(h, UPNP_ACT_ADD_ANY_PORT_MAPPING, &a, HOST_A);
	h_pump(h);
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 34002);
	CHECK(cm != NULL);
	uint16_t granted = cm ? cm->ext_port : 0;
	CHECK(granted != 0 && granted != 34002);
	CHECK(h_rec(h, TCP, granted) != NULL);
	CHECK(h_rec(h, TCP, 34002) == NULL);
	h_core_run(h);
	CHECK_EQ_INT(h_code(h, i), 0);
	CHECK_EQ_INT(h->ans[i].reserved_port, granted);
	CHECK_EQ_INT(h->st_entries, ent0 + 2);

	/* DeletePortMapping: removed after the server's answer, answered after the sync. */
	upd0 = h->st_sysupd;
	a = h_args(TCP, 34001, NULL, 0, 0);
	i = h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_A);
	h_pump(h);
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	CHECK(state_table_find(h->table, TCP, 34001, NULL) == NULL);
	CHECK_EQ_INT(h->st_entries, ent0 + 1);
	CHECK(h->st_sysupd != upd0);
	runs = h->runs;
	h_core_run(h);
	CHECK_EQ_INT(h_code(h, i), 0);
	CHECK(h->ans[i].runs_before > runs);
	h_free(h);
}

/* §5.4 "SHOULD be stored in permanent storage": with a journal, the sync happens before the
 * answer, and what was acknowledged is there after a restart (with its nonce). */
static void seed004_5_4_durable_before_reply(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_alloc(&cfg, true);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	struct upnp_args a = h_args(TCP, 34101, HOST_A, 34101, 0);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_pump(h);
	struct state_stats st0, st1;
	state_table_stats(h->table, &st0);
	CHECK_EQ_INT(h_code(h, i), H_NONE);
	h_core_run(h);
	state_table_stats(h->table, &st1);
	CHECK_EQ_INT(h_code(h, i), 0);
	CHECK(st1.syncs > st0.syncs); /* the sync came with the answer */
	CHECK_EQ_INT(h_add(h, HOST_A, UDP, 34102, 34102), 0);
	uint8_t nonce[PCP_NONCE_LEN];
	const struct state_mapping *m = h_rec(h, TCP, 34101);
	CHECK(m != NULL);
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	CHECK_EQ_INT(h_delete(h, HOST_A, UDP, 34102), 0);

	h_restart(h); /* a crash right after the answers: the journal has what was told */
	m = h_rec(h, TCP, 34101);
	CHECK(m != NULL);
	if (m) {
		CHECK(memcmp(m->nonce, nonce, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(m->internal_port, 34101);
	}
	CHECK(state_table_find(h->table, UDP, 34102, NULL) == NULL);
	CHECK_EQ_INT(state_table_count(h->table), 1);
	h_free(h);
}

/* §5.5: no NAT in the CP router - the UPnP arguments go to PCP as they are. */
static void seed004_5_5_map_fields(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.allow_third_party = true;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 35001, HOST_B, 35011, 3600);
	snprintf(a.pm.remote_host, sizeof(a.pm.remote_host), "%s", REMOTE_X);
	snprintf(a.pm.description, sizeof(a.pm.description), "my game server");
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
	const struct pcp_msg *q = h_req(h, mark, 35011, L_CREATE);
	CHECK(q != NULL);
	if (q) {
		CHECK_EQ_INT(q->opcode, PCP_OPCODE_MAP);
		CHECK_EQ_INT(q->protocol, 6);
		CHECK_EQ_INT(q->internal_port, 35011);              /* as asked */
		CHECK_EQ_INT(q->external_port, 35001);              /* suggested */
		CHECK(q->has_third_party && h_ip_eq(&q->third_party, HOST_B)); /* the LAN host */
		CHECK(h_ip_eq(&q->client_addr, H_SOURCE));
		CHECK(!q->has_description);                         /* never DESCRIPTION */
		CHECK_EQ_INT(q->n_filters, 1);                      /* RemoteHost -> FILTER */
		if (q->n_filters == 1) {
			CHECK_EQ_INT(q->filters[0].prefix_len, 128);
			CHECK(h_ip_eq(&q->filters[0].addr, REMOTE_X));
			CHECK_EQ_INT(q->filters[0].port, 0);
		}
		CHECK_EQ_INT(q->lifetime, 3600);                    /* min(7200, lease 3600) */
	}
	/* Without RemoteHost: no FILTER; UDP; the delete carries THIRD_PARTY and the nonce. */
	mark = h_mark(h);
	a = h_args(UDP, 35002, HOST_A, 35002, 0);
	snprintf(a.pm.description, sizeof(a.pm.description), "voice");
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
	q = h_req(h, mark, 35002, L_CREATE);
	CHECK(q != NULL);
	if (q) {
		CHECK_EQ_INT(q->protocol, 17);
		CHECK(q->has_third_party && h_ip_eq(&q->third_party, HOST_A));
		CHECK_EQ_INT(q->n_filters, 0);
		CHECK(!q->has_description);
	}
	CHECK_EQ_INT(h_delete(h, HOST_A, UDP, 35002), 0);
	const struct pcp_msg *d = h_req(h, mark, 35002, L_DELETE);
	CHECK(d != NULL);
	if (q && d) {
		CHECK(memcmp(q->nonce, d->nonce, PCP_NONCE_LEN) == 0);
		CHECK(d->has_third_party && h_ip_eq(&d->third_party, HOST_A));
		CHECK(!d->has_description);
		CHECK_EQ_INT(d->internal_port, 35002);
	}
	/* Every request of this test was for a LAN host: THIRD_PARTY on all of them. */
	for (size_t k = 0; k < h->n_log; k++)
		if (!h_is_probe(&h->log[k].m))
			CHECK(h->log[k].m.has_third_party && !h->log[k].m.has_description);
	h_free(h);
}

/* §5.5 / RemoteHost: a refused FILTER is 726 on IGD:1 and 501 on IGD:2, never a wider
 * mapping. */
static void filter_refused_for(int igd, int want)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	h->srv.reject_filter = true;
	struct upnp_args a = h_args(TCP, 35101, HOST_A, 35101, 3600);
	snprintf(a.pm.remote_host, sizeof(a.pm.remote_host), "%s", REMOTE_X);
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), want);
	h_run(h, 30000);
	CHECK(srv_map(h, TCP, HOST_A, 35101) == NULL); /* no wider mapping made instead */
	CHECK(!h_listed(h, TCP, 35101));
	CHECK_EQ_INT(state_table_size(h->table), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 35102, 35102), 0); /* without RemoteHost all is well */
	h_free(h);
}

static void seed004_5_5_filter_refused(void)
{
	filter_refused_for(1, 726);
	filter_refused_for(2, 501);
}

/* §5.7.1 AddAnyPortMapping. */
static void seed004_5_7_1_add_any(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	uint16_t port = 0;

	/* A free port: granted as asked; no PREFER_FAILURE. */
	CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, 36001, 36001, &port), 0);
	CHECK_EQ_INT(port, 36001);
	const struct pcp_msg *q = h_req(h, mark, 36001, L_CREATE);
	CHECK(q && !q->prefer_failure);

	/* Taken on the carrier: the server's port is NewReservedPort and what is stored. */
	srv_reserve(h, TCP, 36002);
	CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, 36002, 36002, &port), 0);
	CHECK(port != 36002 && port != 0);
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 36002);
	CHECK(cm && cm->ext_port == port);
	const struct state_mapping *m = h_rec(h, TCP, port);
	CHECK(m && m->internal_port == 36002);

	/* Taken locally by another host: MAP does not insist on that port; the granted one
	 * comes back; both mappings listed. */
	CHECK_EQ_INT(h_add(h, HOST_B, TCP, 36003, 36003), 0);
	size_t mark2 = h_mark(h);
	CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, 36003, 36013, &port), 0);
	CHECK(port != 36003 && port != 0);
	q = h_req(h, mark2, 36013, L_CREATE);
	CHECK(q != NULL);
	if (q) {
		CHECK(q->external_port != 36003);
		CHECK(!q->prefer_failure);
	}
	CHECK(h_listed(h, TCP, 36003));
	CHECK(h_listed(h, TCP, port));
	m = h_rec(h, TCP, 36003);
	CHECK(m && h_ip_eq(&m->internal_client, HOST_B));

	/* Repeated for an endpoint that has its mapping (with its port, or another one
	 * asked): the same port, no new PCP mapping (no MAP with another nonce). */
	uint8_t nonce[PCP_NONCE_LEN];
	m = h_rec(h, TCP, 36001);
	CHECK(m != NULL);
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	for (uint16_t ext = 36001; ext <= 36101; ext += 100) {
		size_t n = state_table_count(h->table);
		size_t mark3 = h_mark(h);
		CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, ext, 36001, &port), 0);
		CHECK_EQ_INT(port, 36001);
		CHECK_EQ_INT(state_table_count(h->table), n);
		for (size_t k = mark3; k < h->n_log; k++)
			if (h->log[k].m.internal_port == 36001)
				CHECK(m && memcmp(h->log[k].m.nonce, nonce, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(h_count_req(h, mark3, 36001, L_DELETE), 0);
		cm = srv_map(h, TCP, HOST_A, 36001);
		CHECK(cm && cm->ext_port == 36001);
		m = h_rec(h, TCP, 36001);
		CHECK(m && memcmp(m->nonce, nonce, PCP_NONCE_LEN) == 0);
	}
	/* Never PREFER_FAILURE for AddAny. */
	for (size_t k = mark; k < h->n_log; k++)
		if (h->log[k].m.internal_port != 36003)
			CHECK(!h->log[k].m.prefer_failure);
	h_free(h);
}

/* §5.7.2 AddPortMapping: the local table first (Figure 6), PREFER_FAILURE, 718. */
static void add_for(int igd)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 37001, 37001), 0);
	const struct pcp_msg *q = h_req(h, mark, 37001, L_CREATE);
	CHECK(q && q->prefer_failure && q->external_port == 37001);

	/* Held by another host (committed): 718 at once, zero PCP messages. */
	mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 37001, HOST_B, 37001, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_B);
	CHECK_EQ_INT(h_code(h, i), 718);
	a = h_args(TCP, 37001, HOST_B, 40000, 3600);
	i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_B);
	CHECK_EQ_INT(h_code(h, i), 718);
	h_run(h, 2000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);

	/* Held by an Add still waiting for its answer: 718 at once, zero PCP messages. */
	h->srv.hold = true;
	a = h_args(TCP, 37002, HOST_A, 37002, 3600);
	int pending = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	h_run(h, 10);
	CHECK_EQ_INT(h->srv.n_held, 1);
	mark = h_mark(h);
	a = h_args(TCP, 37002, HOST_B, 37002, 3600);
	i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_B);
	CHECK_EQ_INT(h_code(h, i), 718);
	h_run(h, 500);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK_EQ_INT(h_code(h, pending), H_NONE);
	h->srv.hold = false;
	srv_release(h, false);
	CHECK_EQ_INT(h_wait(h, pending, 1000), 0);

	/* The server cannot give the port: CANNOT_PROVIDE_EXTERNAL -> 718, nothing stored. */
	srv_reserve(h, TCP, 37003);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 37003, 37003), 718);
	CHECK(!h_listed(h, TCP, 37003));

	/* The server grants another port despite PREFER_FAILURE: 718, and that mapping is
	 * deleted again with the nonce it was made with. */
	size_t size0 = state_table_size(h->table);
	mark = h_mark(h);
	h->srv.other_port.count = 1;
	h->srv.other_port.in_port = 37004;
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 37004, 37004), 718);
	h_run(h, 20000);
	q = h_req(h, mark, 37004, L_CREATE);
	const struct pcp_msg *d = h_req(h, mark, 37004, L_DELETE);
	CHECK(q && q->prefer_failure);
	CHECK(d != NULL);
	if (q && d)
		CHECK(memcmp(q->nonce, d->nonce, PCP_NONCE_LEN) == 0);
	CHECK(srv_map(h, TCP, HOST_A, 37004) == NULL);
	CHECK_EQ_INT(state_table_size(h->table), size0);
	CHECK(!h_listed(h, TCP, 37004));

	/* A second external port for an endpoint that has one: 718 locally (PCP keys a
	 * mapping by its internal endpoint), zero PCP messages. */
	mark = h_mark(h);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 37011, 37001), 718);
	h_run(h, 500);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);

	/* The same client re-adding its mapping: success, no PCP message, lease renewed. */
	h_run(h, 1000 * 1000);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 37001, &e), 0);
	CHECK(e.lease_duration < 2700);
	const struct state_mapping *m = h_rec(h, TCP, 37001);
	uint8_t nonce[PCP_NONCE_LEN];
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	mark = h_mark(h);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 37001, 37001), 0);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 37001, &e), 0);
	CHECK(e.lease_duration >= 3598 && e.lease_duration <= 3600);
	m = h_rec(h, TCP, 37001);
	CHECK(m && memcmp(m->nonce, nonce, PCP_NONCE_LEN) == 0);
	/* The renewed lease holds on the carrier too: past the old lease end the PCP mapping
	 * is still renewed (same nonce), until the new end. */
	h_run(h, 3000 * 1000);
	CHECK(h_listed(h, TCP, 37001));
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 37001);
	CHECK(cm && memcmp(cm->nonce, nonce, PCP_NONCE_LEN) == 0);
	/* ...with normal renewals (RFC 6887 §11.2.1), not one-second lifetimes capped at the
	 * old lease end. */
	size_t renewals = h_count_req(h, mark, 37001, L_CREATE);
	if (renewals > 20)
		fprintf(stderr, "%zu renewals of 37001 in 3000 s\n", renewals);
	CHECK(renewals <= 20);
	h_run(h, 700 * 1000);
	CHECK(!h_listed(h, TCP, 37001)); /* and it ends with the new lease */
	CHECK(srv_map(h, TCP, HOST_A, 37001) == NULL);

	h_free(h);
}

static void seed004_5_7_2_add(void)
{
	add_for(1);
	add_for(2);
}

/* §7: IGD:1 default security (no mapping for a third party) unless allowed; the
 * permission rules (default: no external port below 1024). Refusals cost no PCP message. */
static void security_for(int igd)
{
	int refuse = igd == 2 ? 606 : 718;
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 38001, HOST_B, 38001, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	CHECK_EQ_INT(h_code(h, i), refuse);
	if (igd == 2) {
		i = h_act(h, UPNP_ACT_ADD_ANY_PORT_MAPPING, &a, HOST_A);
		CHECK_EQ_INT(h_code(h, i), refuse);
	}
	a = h_args(TCP, 80, HOST_A, 8080, 3600);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A)), refuse);
	a = h_args(TCP, 1023, HOST_A, 8080, 3600);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A)), refuse);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 1024, 1024), 0);

	/* Administrator's rules (SIGHUP reload). */
	struct iwf_rule rules[2];
	CHECK(iwf_rule_parse(&rules[0], "deny 5000-5999 192.168.1.0/24 0-65535"));
	CHECK(iwf_rule_parse(&rules[1], "allow 1024-65535 0.0.0.0/0 0-65535"));
	iwf_core_set_rules(h->core, rules, 2);
	mark = h_mark(h);
	a = h_args(TCP, 5500, HOST_A, 5500, 3600);
	CHECK_EQ_INT(h_code(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A)), refuse);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent_all(h, mark), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 6000, 6000), 0);
	h_free(h);

	/* allow_third_party: the mapping is made, for the LAN host named. */
	cfg.allow_third_party = true;
	h = h_new(&cfg);
	mark = h_mark(h);
	a = h_args(TCP, 38001, HOST_B, 38001, 3600);
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
	const struct pcp_msg *q = h_req(h, mark, 38001, L_CREATE);
	CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, HOST_B));
	CHECK(srv_map(h, TCP, HOST_B, 38001) != NULL);
	h_free(h);
}

static void seed004_7_security(void)
{
	security_for(1);
	security_for(2);
}

/* Issue "A hostile LAN": one host cannot take every mapping. At the per-host limit its Add
 * gets 728 (IGD:2; 501 for IGD:1) without a PCP request while another host's Add succeeds;
 * a delete frees its place; the count survives a restart (stored mappings count). */
static void per_host_limit(void)
{
	for (int igd = 1; igd <= 2; igd++) {
		struct iwf_config cfg;
		h_config(&cfg);
		cfg.igd_version = igd;
		cfg.max_per_host = 3;
		struct h *h = h_alloc(&cfg, true);
		h_core_new(h);
		h_start_with(h, 0);
		h_run(h, 1000);
		for (uint16_t k = 0; k < 3; k++)
			CHECK_EQ_INT(h_add(h, HOST_A, TCP, (uint16_t)(49001 + k), (uint16_t)(49001 + k)), 0);
		size_t mark = h_mark(h);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 49004, 49004), igd == 2 ? 728 : 501);
		CHECK_EQ_INT(h_count_req(h, mark, 49004, L_ANY), 0);
		CHECK(!h_listed(h, TCP, 49004));
		CHECK_EQ_INT(h_add(h, HOST_B, TCP, 49101, 49101), 0);
		/* re-adding one it has is an update, not a new mapping */
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 49001, 49001), 0);
		CHECK_EQ_INT(h_delete(h, HOST_A, TCP, 49001), 0);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 49004, 49004), 0);
		h_restart(h);
		h_start_with(h, 0);
		h_run(h, 5000);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 49005, 49005), igd == 2 ? 728 : 501);
		CHECK_EQ_INT(h_add(h, HOST_B, TCP, 49102, 49102), 0);
		h_free(h);
	}
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"seed004_5_4_success_stored", seed004_5_4_success_stored},
		{"per_host_limit", per_host_limit},
		{"seed004_5_4_durable_before_reply", seed004_5_4_durable_before_reply},
		{"seed004_5_5_map_fields", seed004_5_5_map_fields},
		{"seed004_5_5_filter_refused", seed004_5_5_filter_refused},
		{"seed004_5_7_1_add_any", seed004_5_7_1_add_any},
		{"seed004_5_7_2_add", seed004_5_7_2_add},
		{"seed004_7_security", seed004_7_security},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_add");
}
