/*
 * test_core_homes.c - "Real homes over months" (issue 11): rules of the mapping lifecycle
 * that months of real control points exercise, each checked on the sans-I/O core with a
 * fake clock and the scripted RFC 6887 server of test_core_harness.h.
 *
 *  5  PortMappingEnabled 0: kept in the table and listed disabled, not on the carrier
 *  6  AddAnyPortMapping with a wildcard or well-known port: the carrier chooses, the
 *     permission rules judge what it granted
 *  7  the same internal client re-adding its mapping with another InternalPort: overwritten
 *     (WANIPConnection:1 and :2), the carrier's mapping moved
 * 10  the §4.3 error column follows the service version the control point addressed
 *
 * Run one test: test_core_homes NAME; all: no argument. IWF_TEST_VERBOSE=1 for the logs.
 */
#include "test_core_harness.h"

static struct upnp_args args_enabled(enum upnp_proto proto, uint16_t ext, const char *client, uint16_t in_port,
				     bool enabled)
{
	struct upnp_args a = h_args(proto, ext, client, in_port, 3600);
	a.pm.enabled = enabled;
	return a;
}

static int add_enabled(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext, uint16_t in_port,
		       bool enabled)
{
	struct upnp_args a = args_enabled(proto, ext, from, in_port, enabled);
	return h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, from), 30000);
}

/* Listed, with this Enabled value. */
static bool listed_as(struct h *h, enum upnp_proto proto, uint16_t ext, bool enabled)
{
	struct upnp_pm_entry e;
	return h_get_specific(h, HOST_A, proto, ext, &e) == 0 && e.enabled == enabled;
}

/* ------------------------------------------------------------------ case 5 */

/* WANIPConnection PortMappingEnabled ("disable and enable ... port mappings", seed 000
 * §2.2.20; AddPortMapping overwrites it, §2.2.27). A disabled mapping stays in the table,
 * keeps its external port against other hosts, and is listed with NewEnabled 0; it is not
 * on the carrier: disabling deletes the PCP mapping (lifetime 0, its nonce), it is not
 * renewed nor replayed after a restart, and enabling it again sends MAP again. */
static void disabled_for(int igd)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	cfg.pcp_lifetime = 600;
	struct h *h = h_alloc(&cfg, true);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);

	/* An enabled mapping, on the carrier. */
	CHECK_EQ_INT(add_enabled(h, HOST_A, TCP, 39001, 39001, true), 0);
	CHECK(srv_map(h, TCP, HOST_A, 39001) != NULL);
	const struct state_mapping *m = h_rec(h, TCP, 39001);
	uint8_t nonce[PCP_NONCE_LEN];
	memset(nonce, 0, sizeof(nonce));
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));

	/* Disabled by its owner: still listed (Enabled 0), gone from the carrier, deleted with
	 * the mapping's own nonce. */
	size_t mark = h_mark(h);
	CHECK_EQ_INT(add_enabled(h, HOST_A, TCP, 39001, 39001, false), 0);
	h_run(h, 2000);
	CHECK(listed_as(h, TCP, 39001, false));
	CHECK_EQ_INT(state_table_count(h->table), 1);
	CHECK(srv_map(h, TCP, HOST_A, 39001) == NULL);
	const struct pcp_msg *d = h_req(h, mark, 39001, L_DELETE);
	CHECK(d != NULL);
	if (d)
		CHECK(memcmp(d->nonce, nonce, PCP_NONCE_LEN) == 0);
	CHECK_EQ_INT(h_count_req(h, mark, 39001, L_CREATE), 0);

	/* Not renewed: several PCP lifetimes pass without a request for it. */
	mark = h_mark(h);
	h_run(h, 3 * 600 * 1000);
	CHECK_EQ_INT(h_count_req(h, mark, 39001, L_ANY), 0);
	CHECK(listed_as(h, TCP, 39001, false));

	/* Its port stays reserved: another host gets 718 at once, without PCP. */
	mark = h_mark(h);
	CHECK_EQ_INT(add_enabled(h, HOST_B, TCP, 39001, 39001, true), 718);
	CHECK_EQ_INT(h_sent(h, mark), 0);

	/* Not replayed after a restart. */
	h_restart(h);
	mark = h_mark(h);
	h_start_with(h, 0);
	h_run(h, 5000);
	CHECK_EQ_INT(h_count_req(h, mark, 39001, L_ANY), 0);
	CHECK(listed_as(h, TCP, 39001, false));
	CHECK(srv_map(h, TCP, HOST_A, 39001) == NULL);

	/* Enabled again: MAP again, with the same nonce and PREFER_FAILURE (a specific port). */
	mark = h_mark(h);
	CHECK_EQ_INT(add_enabled(h, HOST_A, TCP, 39001, 39001, true), 0);
	const struct pcp_msg *q = h_req(h, mark, 39001, L_CREATE);
	CHECK(q && q->prefer_failure && q->external_port == 39001);
	if (q)
		CHECK(memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0);
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 39001);
	CHECK(cm && cm->ext_port == 39001);
	CHECK(listed_as(h, TCP, 39001, true));
	/* ...and renewed like any active mapping. */
	mark = h_mark(h);
	h_run(h, 2 * 600 * 1000);
	CHECK(h_count_req(h, mark, 39001, L_CREATE) >= 1);
	CHECK(srv_map(h, TCP, HOST_A, 39001) != NULL);

	/* Enabling it again when the carrier gave its port to somebody else meanwhile: 718,
	 * and the mapping stays, disabled. */
	CHECK_EQ_INT(add_enabled(h, HOST_A, TCP, 39001, 39001, false), 0);
	h_run(h, 2000);
	srv_reserve(h, TCP, 39001);
	CHECK_EQ_INT(add_enabled(h, HOST_A, TCP, 39001, 39001, true), 718);
	h_run(h, 2000);
	CHECK(listed_as(h, TCP, 39001, false));
	h->srv.n_reserved = 0;

	/* A new mapping added disabled: stored and listed, its port reserved, no PCP at all;
	 * deleting it needs no PCP either. */
	mark = h_mark(h);
	CHECK_EQ_INT(add_enabled(h, HOST_A, UDP, 39002, 39002, false), 0);
	h_run(h, 2000);
	CHECK_EQ_INT(h_sent(h, mark), 0);
	CHECK(listed_as(h, UDP, 39002, false));
	CHECK(srv_map(h, UDP, HOST_A, 39002) == NULL);
	CHECK_EQ_INT(add_enabled(h, HOST_B, UDP, 39002, 39002, true), 718);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_generic(h, 1, &e), 0);
	CHECK(e.external_port == 39002 && !e.enabled);
	CHECK_EQ_INT(h_delete(h, HOST_A, UDP, 39002), 0);
	CHECK(!h_listed(h, UDP, 39002));
	CHECK_EQ_INT(h_sent(h, mark), 0);

	/* Its lease still counts down and ends it (seed 000 §2.2.28). */
	struct upnp_args a = args_enabled(UDP, 39003, HOST_A, 39003, false);
	a.pm.lease_duration = 60;
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 1000), 0);
	CHECK(listed_as(h, UDP, 39003, false));
	h_run(h, 61 * 1000);
	CHECK(!h_listed(h, UDP, 39003));
	h_free(h);
}

static void disabled_not_on_carrier(void)
{
	disabled_for(1);
	disabled_for(2);
}

/* ------------------------------------------------------------------ case 6 */

/* seed 004 §5.7.1: AddAnyPortMapping lets the PCP server choose. A wildcard (0) or a port the
 * permission rules refuse is not refused before asking: MAP goes out without a suggested
 * port and without PREFER_FAILURE, and the rules judge the port the carrier granted (a
 * refused grant is deleted again with its nonce, 606). AddPortMapping with a wildcard
 * external port is 716 (WildCardNotPermittedInExtPort), without PCP. */
static void add_any_wildcard_port(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = 2;
	struct h *h = h_new(&cfg);
	uint16_t port = 0;

	size_t mark = h_mark(h);
	CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, 0, 39301, &port), 0);
	const struct pcp_msg *q = h_req(h, mark, 39301, L_CREATE);
	CHECK(q && !q->prefer_failure);
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 39301);
	CHECK(cm && cm->ext_port == port && port >= 1024);
	CHECK(h_listed(h, TCP, port));

	mark = h_mark(h);
	CHECK_EQ_INT(h_add_any(h, HOST_A, UDP, 80, 8080, &port), 0);
	q = h_req(h, mark, 8080, L_CREATE);
	CHECK(q && !q->prefer_failure && q->external_port != 80);
	CHECK(port >= 1024);
	cm = srv_map(h, UDP, HOST_A, 8080);
	CHECK(cm && cm->ext_port == port);

	/* The rules refuse what the carrier chose: 606, and its mapping is deleted again. */
	struct iwf_rule rules[1];
	CHECK(iwf_rule_parse(&rules[0], "deny 40000-49999 0.0.0.0/0 0-65535"));
	iwf_core_set_rules(h->core, rules, 1);
	mark = h_mark(h);
	size_t n = state_table_count(h->table);
	CHECK_EQ_INT(h_add_any(h, HOST_A, TCP, 0, 39302, &port), 606);
	h_run(h, 5000);
	q = h_req(h, mark, 39302, L_CREATE);
	const struct pcp_msg *d = h_req(h, mark, 39302, L_DELETE);
	CHECK(q != NULL && d != NULL);
	if (q && d)
		CHECK(memcmp(q->nonce, d->nonce, PCP_NONCE_LEN) == 0);
	CHECK(srv_map(h, TCP, HOST_A, 39302) == NULL);
	CHECK_EQ_INT(state_table_count(h->table), n);

	/* AddPortMapping: a wildcard external port is not allowed (716), nothing sent. */
	iwf_core_set_rules(h->core, rules, 0);
	mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 0, HOST_A, 39303, 3600);
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 1000), 716);
	h_run(h, 1000);
	CHECK_EQ_INT(h_sent(h, mark), 0);
	h_free(h);
}

/* ------------------------------------------------------------------ case 7 */

/* WANIPConnection:1 (seed 000 §2.2.27, "Overwriting Previous / Existing Port Mappings") and
 * WANIPConnection:2 AddPortMapping: the same RemoteHost, ExternalPort, protocol and
 * InternalClient overwrite InternalPort, description, Enabled and lease; 718 only when the
 * port belongs to another internal client. On the carrier a PCP mapping is its internal
 * endpoint (RFC 6887 §11.1), so a new InternalPort is another mapping: the old one is deleted
 * (lifetime 0, its nonce) and, once the carrier confirmed it, the new one is made with
 * PREFER_FAILURE for the same external port. */
static void overwrite_for(int igd)
{
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.igd_version = igd;
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 39101, 39111), 0);
	const struct state_mapping *m = h_rec(h, TCP, 39101);
	uint8_t nonce[PCP_NONCE_LEN];
	memset(nonce, 0, sizeof(nonce));
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));
	size_t n = state_table_count(h->table);

	size_t mark = h_mark(h);
	struct upnp_args a = h_args(TCP, 39101, HOST_A, 39112, 1800);
	snprintf(a.pm.description, sizeof(a.pm.description), "moved");
	CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000), 0);
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39101, &e), 0);
	CHECK_EQ_INT(e.internal_port, 39112);
	CHECK(strcmp(e.description, "moved") == 0);
	CHECK(e.lease_duration <= 1800 && e.lease_duration >= 1790);
	CHECK_EQ_INT(state_table_count(h->table), n);
	/* On the carrier: the old endpoint's mapping deleted with its nonce, then the new one. */
	CHECK(srv_map(h, TCP, HOST_A, 39111) == NULL);
	struct h_cmap *cm = srv_map(h, TCP, HOST_A, 39112);
	CHECK(cm && cm->ext_port == 39101);
	size_t del = SIZE_MAX, add = SIZE_MAX;
	for (size_t i = mark; i < h->n_log; i++) {
		const struct pcp_msg *r = &h->log[i].m;
		if (r->internal_port == 39111 && r->lifetime == 0 && del == SIZE_MAX)
			del = i;
		if (r->internal_port == 39112 && r->lifetime != 0 && add == SIZE_MAX)
			add = i;
	}
	CHECK(del != SIZE_MAX && add != SIZE_MAX && del < add);
	if (del != SIZE_MAX)
		CHECK(memcmp(h->log[del].m.nonce, nonce, PCP_NONCE_LEN) == 0);
	if (add != SIZE_MAX) {
		CHECK(h->log[add].m.prefer_failure);
		CHECK_EQ_INT(h->log[add].m.external_port, 39101);
		CHECK_EQ_INT(h->log[add].result, PCP_RESULT_SUCCESS);
	}
	m = h_rec(h, TCP, 39101);
	CHECK(m && m->internal_port == 39112);
	if (m && cm)
		CHECK(memcmp(m->nonce, cm->nonce, PCP_NONCE_LEN) == 0); /* the table knows its nonce */

	/* Another internal client: 718, without PCP. */
	mark = h_mark(h);
	CHECK_EQ_INT(h_add(h, HOST_B, TCP, 39101, 39113), 718);
	CHECK_EQ_INT(h_sent(h, mark), 0);

	/* An internal port that already has another external port: 718 (one PCP mapping per
	 * internal endpoint), and the mapping is left as it was. */
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 39102, 39122), 0);
	mark = h_mark(h);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 39101, 39122), 718);
	CHECK_EQ_INT(h_sent(h, mark), 0);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39101, &e), 0);
	CHECK_EQ_INT(e.internal_port, 39112);

	/* Overwritten again while the carrier is silent: 501, and the mapping it had is kept
	 * (its delete was not confirmed, so it is still there). */
	h->srv.silent = true;
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 39101, 39114), 501);
	h->srv.silent = false;
	h_run(h, 30000);
	CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 39101, &e), 0);
	CHECK_EQ_INT(e.internal_port, 39112);
	CHECK(srv_map(h, TCP, HOST_A, 39112) != NULL);
	CHECK(srv_map(h, TCP, HOST_A, 39114) == NULL);

	h_free(h);
}

static void overwrite_internal_port(void)
{
	overwrite_for(1);
	overwrite_for(2);
}

/* ------------------------------------------------------------------ case 10 */

/* seed 004 §4.3 has a column per IGD version. An IGD:2 device serves WANIPConnection:2, which
 * a WANIPConnection:1 control point may drive as :1 (its SOAPACTION says :1): it gets the
 * IGD:1 column, the only codes it knows (606 and 728 are not WANIPConnection:1 errors). */
static int add_version(struct h *h, uint8_t version, const char *client, uint16_t ext, uint16_t in_port)
{
	struct upnp_args a = h_args(TCP, ext, client, in_port, 3600);
	a.version = version;
	return h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A), 10000);
}

static void errors_follow_addressed_version(void)
{
	static const struct {
		uint8_t pcp;
		int v1, v2;
	} rows[] = {
		{PCP_RESULT_NOT_AUTHORIZED, 718, 606},
		{PCP_RESULT_NO_RESOURCES, 501, 728},
		{PCP_RESULT_USER_EX_QUOTA, 501, 728},
		{PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, 718, 718},
	};
	for (int igd = 1; igd <= 2; igd++) {
		struct iwf_config cfg;
		h_config(&cfg);
		cfg.igd_version = igd;
		struct h *h = h_new(&cfg);
		uint16_t port = 39401;
		for (uint8_t v = 1; v <= igd; v++) {
			for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++, port++) {
				h->srv.force.count = 1;
				h->srv.force.result = rows[r].pcp;
				h->srv.force.in_port = port;
				h->srv.force.kind = K_CREATE;
				int want = v == 2 ? rows[r].v2 : rows[r].v1;
				int code = add_version(h, v, HOST_A, port, port);
				if (code != want)
					fprintf(stderr, "IGD:%d device, :%u control point, PCP %s: %d, want %d\n", igd, v,
						pcp_result_name(rows[r].pcp), code, want);
				CHECK_EQ_INT(code, want);
				h_run(h, 1000);
			}
			/* Refused by policy before PCP: a third party, a well-known port. */
			int refuse = v == 2 ? 606 : 718;
			CHECK_EQ_INT(add_version(h, v, HOST_B, port, port), refuse);
			CHECK_EQ_INT(add_version(h, v, HOST_A, 80, 8080), refuse);
			port++;
			/* A delete the carrier refuses. */
			CHECK_EQ_INT(add_version(h, v, HOST_A, port, port), 0);
			h->srv.force.count = 1;
			h->srv.force.result = PCP_RESULT_NOT_AUTHORIZED;
			h->srv.force.in_port = port;
			h->srv.force.kind = K_DELETE;
			struct upnp_args a = h_args(TCP, port, NULL, 0, 0);
			a.version = v;
			CHECK_EQ_INT(h_wait(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, HOST_A), 10000), refuse);
			port++;
		}
		h_free(h);
	}
}

/* Issue 11 #1: the WAN (or B4) address changes. The daemon hears it from the kernel
 * (netwatch.c) and the adapter tells the engine the new source; every mapping is then asked
 * for again from the new address, each with its own stored nonce, and stays listed
 * throughout. */
static void wan_renumbering_resends_with_nonces(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	static const uint16_t ports[] = {48001, 48002, 48003};
	for (size_t k = 0; k < 3; k++)
		CHECK_EQ_INT(h_add(h, k == 2 ? HOST_B : HOST_A, k == 1 ? UDP : TCP, ports[k], ports[k]), 0);
	h_run(h, 5000);
	size_t mark = h_mark(h);
	struct in6_addr src = h_ip("192.0.2.77");
	pcp_client_set_source(h_pcp(h), &src);
	pcp_client_refresh_all(h_pcp(h), h->now);
	h_run(h, 2000);
	for (size_t k = 0; k < 3; k++) {
		const struct pcp_msg *q = h_req(h, mark, ports[k], L_CREATE);
		const struct state_mapping *m = h_rec(h, k == 1 ? UDP : TCP, ports[k]);
		CHECK(q != NULL && m != NULL);
		if (q && m) {
			CHECK(memcmp(q->nonce, m->nonce, PCP_NONCE_LEN) == 0);
			CHECK(h_ip_eq(&q->client_addr, "192.0.2.77"));
			CHECK_EQ_INT(q->external_port, ports[k]);
		}
		CHECK(h_listed(h, k == 1 ? UDP : TCP, ports[k]));
	}
	CHECK_EQ_INT(h_count_req(h, mark, 48001, L_DELETE), 0);
	CHECK_EQ_INT(srv_count(h), 3);
	h_free(h);
}

/* Issue 11 #9: NewManage is one rule for GetListOfPortMappings and DeletePortMappingRange:
 * without the right to touch other hosts' mappings (IGD:2 default), Manage=1 reaches only the
 * caller's own ones in both; with it (allow_third_party), every host's in both. */
static void manage_one_rule(void)
{
	for (int rights = 0; rights < 2; rights++) {
		struct iwf_config cfg;
		h_config(&cfg);
		cfg.igd_version = 2;
		cfg.allow_third_party = rights;
		struct h *h = h_new(&cfg);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 48101, 48101), 0);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 48102, 48102), 0);
		CHECK_EQ_INT(h_add(h, HOST_B, TCP, 48103, 48103), 0);
		size_t n = 0;
		h_get_list(h, HOST_A, TCP, 48100, 48199, false, &n);
		CHECK_EQ_INT(n, 2);
		h_get_list(h, HOST_A, TCP, 48100, 48199, true, &n);
		CHECK_EQ_INT(n, rights ? 3 : 2);
		int code = h_delete_range(h, HOST_A, TCP, 48100, 48199, true);
		CHECK_EQ_INT(code, 0);
		CHECK(!h_listed(h, TCP, 48101));
		CHECK(!h_listed(h, TCP, 48102));
		CHECK_EQ_INT(h_listed(h, TCP, 48103), !rights);
		CHECK_EQ_INT(srv_count(h), rights ? 0 : 1);
		h_free(h);
	}
}

/* Issue 11 #11: a server that does not speak PCP version 2 answers UNSUPP_VERSION (RFC 6887
 * §9). The control point hears 501 at once (seed 004 §4.3), the request is not retransmitted,
 * and the connection is not called up: there is no usable PCP service. */
static void unsupp_version_heard(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	size_t mark = h_mark(h);
	h->srv.force.count = 1000;
	h->srv.force.result = PCP_RESULT_UNSUPP_VERSION;
	h->srv.force.in_port = 0;
	h->srv.force.kind = K_CREATE;
	struct upnp_args a = h_args(TCP, 48201, HOST_A, 48201, 3600);
	int i = h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, HOST_A);
	int code = h_wait(h, i, 1000);
	CHECK_EQ_INT(code, 501);
	h_run(h, 60000);
	CHECK_EQ_INT(h_count_req(h, mark, 48201, L_CREATE), 1);
	CHECK(!h_listed(h, TCP, 48201));
	int s = h_status_call(h, UPNP_ACT_GET_STATUS_INFO);
	CHECK_EQ_INT(h_code(h, s), 0);
	CHECK(strcmp(h->ans[s].status, "Connected") != 0);
	h_free(h);
}

/* RFC 6887 §14.2: the carrier changes a mapping and tells iwfd with an unsolicited MAP
 * response (the mapping's nonce, protocol, internal port, THIRD_PARTY). */
static void srv_update(struct h *h, struct h_cmap *m, const char *ext_addr, uint16_t ext_port, uint32_t lifetime)
{
	struct pcp_msg r;
	memset(&r, 0, sizeof(r));
	r.version = PCP_VERSION;
	r.response = true;
	r.opcode = PCP_OPCODE_MAP;
	r.result = PCP_RESULT_SUCCESS;
	r.lifetime = lifetime;
	r.epoch = srv_epoch(h);
	memcpy(r.nonce, m->nonce, PCP_NONCE_LEN);
	r.protocol = m->proto;
	r.internal_port = m->in_port;
	r.external_port = ext_port;
	r.external_addr = h_ip(ext_addr);
	r.has_third_party = true;
	r.third_party = m->in_addr;
	h->srv.ext_addr = h_ip(ext_addr);
	m->ext_port = ext_port;
	m->expires = h->now + (uint64_t)lifetime * 1000;
	if (!lifetime)
		m->used = false;
	srv_send(h, &r);
}

static void carrier_update_unsolicited(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	struct h *h = h_new(&cfg);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 48101, 8101), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 48102, 8102), 0);
	CHECK_EQ_INT(h_add(h, HOST_A, TCP, 48103, 8103), 0);
	h_run(h, 5000);
	struct h_cmap *m1 = srv_map(h, TCP, HOST_A, 8101), *m2 = srv_map(h, TCP, HOST_A, 8102),
		      *m3 = srv_map(h, TCP, HOST_A, 8103);
	CHECK(m1 && m2 && m3);
	if (!m1 || !m2 || !m3) {
		h_free(h);
		return;
	}
	/* same port, another address: ExternalIPAddress and the record follow, no request */
	size_t mark = h_mark(h);
	srv_update(h, m1, "203.0.113.99", 48101, 3600);
	h_run(h, 1000);
	CHECK_EQ_INT(h->srv.input_rejects, 0);
	CHECK_EQ_INT(h_sent(h, mark), 0);
	int ip = h_status_call(h, UPNP_ACT_GET_EXTERNAL_IP_ADDRESS);
	CHECK_EQ_INT(h_code(h, ip), 0);
	CHECK(strcmp(h->ans[ip].external_ip, "203.0.113.99") == 0);
	const struct state_mapping *r1 = h_rec(h, TCP, 48101);
	CHECK(r1 != NULL && h_ip_eq(&r1->external_addr, "203.0.113.99"));
	CHECK(h_listed(h, TCP, 48101));

	/* another port: the control point's mapping is gone; iwfd removes it and deletes the
	 * carrier's (now on 48999) with its nonce: nothing is left there */
	mark = h_mark(h);
	srv_update(h, m2, "203.0.113.99", 48999, 3600);
	h_run(h, 3000);
	CHECK(!h_listed(h, TCP, 48102));
	CHECK_EQ_INT(h_count_req(h, mark, 8102, L_DELETE), 1);
	CHECK(srv_map(h, TCP, HOST_A, 8102) == NULL);

	/* lifetime 0: the carrier ended it; iwfd keeps it and re-creates it with its nonce */
	uint8_t nonce3[PCP_NONCE_LEN];
	memcpy(nonce3, m3->nonce, PCP_NONCE_LEN);
	mark = h_mark(h);
	srv_update(h, m3, "203.0.113.99", 48103, 0);
	CHECK(srv_map(h, TCP, HOST_A, 8103) == NULL);
	h_run(h, 3000);
	const struct pcp_msg *q = h_req(h, mark, 8103, L_CREATE);
	CHECK(q != NULL && memcmp(q->nonce, nonce3, PCP_NONCE_LEN) == 0 && q->external_port == 48103);
	struct h_cmap *back = srv_map(h, TCP, HOST_A, 8103);
	CHECK(back != NULL && back->ext_port == 48103);
	CHECK(h_listed(h, TCP, 48103));
	CHECK_EQ_INT(srv_count(h), 2);
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"disabled_not_on_carrier", disabled_not_on_carrier},
		{"add_any_wildcard_port", add_any_wildcard_port},
		{"overwrite_internal_port", overwrite_internal_port},
		{"errors_follow_addressed_version", errors_follow_addressed_version},
		{"wan_renumbering_resends_with_nonces", wan_renumbering_resends_with_nonces},
		{"manage_one_rule", manage_one_rule},
		{"unsupp_version_heard", unsupp_version_heard},
		{"carrier_update_unsolicited", carrier_update_unsolicited},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_homes");
}
