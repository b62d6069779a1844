/*
 * test_core_nat64.c - IPv6-only LAN hosts behind a NAT64 carrier (issue 15 "NAT64 CPEs",
 * case 2; `--nat nat64`): an IPv6 InternalClient is mapped untranslated (seed 004 §5.5: the
 * MAP's internal address is the host's own, in THIRD_PARTY, RFC 6887 §13.1) onto an IPv4
 * external port ("no preference" in the IPv4 family, ::ffff:0.0.0.0, RFC 6887 §11.1 and §5);
 * IGD:1 default security compares all 128 bits (seed 004 §7); other modes answer 402; the
 * listings, the administrator's view and the journal carry the IPv6 address; a restart
 * replays it, a restart in another mode deletes it.
 *
 * Run one test: test_core_nat64 NAME; all: no argument. IWF_TEST_VERBOSE=1 for the logs.
 */
#include "test_core_harness.h"

#define SRC6 "fd00:99::2"              /* the router's IPv6-only WAN address (PCP source) */
#define SRV6 "fd00:99::1"              /* the NAT64's PCP server */
#define V6_A "2001:db8:77::13"         /* IPv6-only LAN hosts (the router routes 2001:db8:77::/64) */
#define V6_B "2001:db8:77::14"
#define V6_TWIN "2001:db8:77::c0a8:10a" /* low 32 bits = HOST_A 192.168.1.10 */
#define V4_ANY "::ffff:0.0.0.0"

static struct h *h_new_mode(struct iwf_config *cfg, const char *mode, bool journal)
{
	snprintf(cfg->nat_mode, sizeof(cfg->nat_mode), "%s", mode);
	struct h *h = h_alloc(cfg, journal);
	h->source = SRC6;
	h->srv.addr = h_ip(SRV6);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	return h;
}

static const struct pcp_msg *first_probe(const struct h *h)
{
	for (size_t i = 0; i < h->n_log; i++)
		if (h_is_probe(&h->log[i].m))
			return &h->log[i].m;
	return NULL;
}

/* The host asks for itself: MAP over IPv6 with THIRD_PARTY = its address, port kept, an IPv4
 * external address wanted; granted; every listing shows the IPv6 text; delete removes it. */
static void nat64_own_ipv6_client(void)
{
	for (int version = 1; version <= 2; version++) {
		struct iwf_config cfg;
		h_config(&cfg);
		cfg.igd_version = version;
		struct h *h = h_new_mode(&cfg, "nat64", false);
		const struct pcp_msg *p = first_probe(h);
		CHECK(p != NULL); /* the external-address probe asks for an IPv4 address too */
		if (p)
			CHECK(h_ip_eq(&p->external_addr, V4_ANY));
		CHECK_EQ_INT((int)strcmp(h->st_ext, H_EXT), 0);

		size_t mk = h_mark(h);
		CHECK_EQ_INT(h_add(h, V6_A, TCP, 40000, 8080), 0);
		CHECK_EQ_INT((int)h_count_req(h, mk, 8080, L_CREATE), 1);
		const struct pcp_msg *q = h_req(h, mk, 8080, L_CREATE);
		CHECK(q != NULL);
		if (q) {
			CHECK(q->has_third_party);
			CHECK(h_ip_eq(&q->third_party, V6_A));
			CHECK(h_ip_eq(&q->client_addr, SRC6));
			CHECK_EQ_INT(q->internal_port, 8080);
			CHECK_EQ_INT(q->external_port, 40000);
			CHECK(h_ip_eq(&q->external_addr, V4_ANY));
			CHECK(q->prefer_failure);
		}
		struct h_cmap *cm = srv_map(h, TCP, V6_A, 8080);
		CHECK(cm && cm->ext_port == 40000);
		const struct state_mapping *m = h_rec(h, TCP, 40000);
		CHECK(m != NULL);
		if (m) {
			CHECK(h_ip_eq(&m->internal_client, V6_A));
			CHECK(h_ip_eq(&m->owner, V6_A));
			CHECK(h_ip_eq(&m->external_addr, H_EXT));
		}

		struct upnp_pm_entry e;
		CHECK_EQ_INT(h_get_specific(h, V6_A, TCP, 40000, &e), 0);
		CHECK_EQ_INT((int)strcmp(e.internal_client, V6_A), 0);
		CHECK_EQ_INT(e.internal_port, 8080);
		CHECK_EQ_INT(h_get_generic(h, 0, &e), 0);
		CHECK_EQ_INT((int)strcmp(e.internal_client, V6_A), 0);
		if (version == 2) {
			size_t n = 0;
			CHECK_EQ_INT(h_get_list(h, V6_A, TCP, 1, 65535, false, &n), 0);
			CHECK_EQ_INT((int)n, 1);
			if (n == 1)
				CHECK_EQ_INT((int)strcmp(h->list[0].internal_client, V6_A), 0);
			/* NewManage 0 for another host: not its mapping */
			CHECK_EQ_INT(h_get_list(h, V6_B, TCP, 1, 65535, false, &n), UPNP_E_PORT_MAPPING_NOT_FOUND);
		}
		struct iwf_admin_entry ae[4];
		CHECK_EQ_INT((int)iwf_core_admin_list(h->core, ae, 4), 1);
		CHECK_EQ_INT((int)strcmp(ae[0].pm.internal_client, V6_A), 0);
		CHECK_EQ_INT((int)strcmp(ae[0].external_addr, H_EXT), 0);

		/* a second mapping of the same host, UDP, AddAnyPortMapping (IGD:2) or Add */
		mk = h_mark(h);
		if (version == 2) {
			uint16_t got = 0;
			CHECK_EQ_INT(h_add_any(h, V6_A, UDP, 40001, 8081, &got), 0);
			CHECK_EQ_INT(got, 40001);
		} else {
			CHECK_EQ_INT(h_add(h, V6_A, UDP, 40001, 8081), 0);
		}
		q = h_req(h, mk, 8081, L_CREATE);
		CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, V6_A) && q->protocol == 17);

		mk = h_mark(h);
		CHECK_EQ_INT(h_delete(h, V6_A, TCP, 40000), 0);
		q = h_req(h, mk, 8080, L_DELETE);
		CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, V6_A));
		CHECK(srv_map(h, TCP, V6_A, 8080) == NULL);
		CHECK(h_rec(h, TCP, 40000) == NULL);
		CHECK(srv_map(h, UDP, V6_A, 8081) != NULL);
		h_free(h);
	}
}

/* seed 004 §7 with IPv6 callers: the whole address decides; v4 <-> v6 is a third party. */
static void nat64_security(void)
{
	for (int version = 1; version <= 2; version++) {
		int refused = version == 2 ? UPNP_E_NOT_AUTHORIZED : UPNP_E_CONFLICT;
		struct iwf_config cfg;
		h_config(&cfg);
		cfg.igd_version = version;
		CHECK(iwf_rule_parse(&cfg.rules[0], "deny 0-65535 192.168.1.10/32 0-65535"));
		CHECK(iwf_rule_parse(&cfg.rules[1], "deny 30000-30999 0.0.0.0/0 0-65535"));
		cfg.n_rules = 2;
		struct h *h = h_new_mode(&cfg, "nat64", false);
		size_t mk = h_mark(h);
		CHECK_EQ_INT(h_add_lease(h, V6_B, TCP, 40001, V6_A, 8080, 3600), refused);   /* other IPv6 */
		CHECK_EQ_INT(h_add_lease(h, HOST_B, TCP, 40002, V6_A, 8080, 3600), refused); /* IPv4 for IPv6 */
		CHECK_EQ_INT(h_add_lease(h, V6_A, TCP, 40003, HOST_B, 8080, 3600), refused); /* IPv6 for IPv4 */
		CHECK_EQ_INT(h_add_lease(h, V6_TWIN, TCP, 40004, HOST_B, 8080, 3600), refused);
		CHECK_EQ_INT(h_add_lease(h, HOST_B, TCP, 40005, V6_TWIN, 8080, 3600), refused);
		CHECK_EQ_INT((int)h_sent(h, mk), 0); /* refused locally, nothing sent */

		/* the rules name IPv4 clients: 192.168.1.10/32 is not the IPv6 twin; /0 is everyone */
		CHECK_EQ_INT(h_add(h, V6_TWIN, TCP, 40006, 8086), 0);
		CHECK_EQ_INT(h_add(h, V6_A, TCP, 30001, 8087), refused);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 40007, 8088), refused); /* the IPv4 rule itself works */

		/* another IPv6 host may neither delete nor see it as its own */
		CHECK_EQ_INT(h_add(h, V6_A, TCP, 40008, 8089), 0);
		CHECK_EQ_INT(h_delete(h, V6_B, TCP, 40008), UPNP_E_NOT_AUTHORIZED);
		CHECK_EQ_INT(h_delete(h, HOST_B, TCP, 40008), UPNP_E_NOT_AUTHORIZED);
		CHECK(srv_map(h, TCP, V6_A, 8089) != NULL);
		CHECK_EQ_INT(h_delete(h, V6_A, TCP, 40008), 0);
		h_free(h);
	}
	/* allow_third_party: any LAN host may map for an IPv6 one */
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.allow_third_party = true;
	struct h *h = h_new_mode(&cfg, "nat64", false);
	CHECK_EQ_INT(h_add_lease(h, V6_B, TCP, 40001, V6_A, 8080, 3600), 0);
	CHECK_EQ_INT(h_add_lease(h, HOST_B, TCP, 40002, V6_A, 8081, 3600), 0);
	CHECK(srv_map(h, TCP, V6_A, 8080) != NULL && srv_map(h, TCP, V6_A, 8081) != NULL);
	h_free(h);
}

/* An IPv6 InternalClient where it cannot be mapped: 402 Invalid Args, no PCP. */
static void nat64_refused_402(void)
{
	static const char *const modes[] = {"none", "clat"};
	for (size_t k = 0; k < 2; k++) {
		struct iwf_config cfg;
		h_config(&cfg);
		if (strcmp(modes[k], "clat") == 0)
			CHECK(iwf_clat_prefix_parse("2001:db8:c1a7::/96", &cfg.clat_prefix, &cfg.clat_prefix_len));
		struct h *h = h_new_mode(&cfg, modes[k], false);
		size_t mk = h_mark(h);
		CHECK_EQ_INT(h_add(h, V6_A, TCP, 40000, 8080), UPNP_E_INVALID_ARGS);
		CHECK_EQ_INT(h_add_lease(h, HOST_A, TCP, 40001, V6_A, 8080, 3600), UPNP_E_INVALID_ARGS);
		CHECK_EQ_INT((int)h_sent(h, mk), 0);
		CHECK_EQ_INT((int)state_table_count(h->table), 0);
		h_free(h);
	}
	/* nat64, but addresses no carrier routes to a LAN host */
	static const char *const bad[] = {"fe80::13", "ff02::1", "::1", "::", "::c0a8:10a", "0.0.0.0"};
	struct iwf_config cfg;
	h_config(&cfg);
	cfg.allow_third_party = true;
	struct h *h = h_new_mode(&cfg, "nat64", false);
	size_t mk = h_mark(h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int code = h_add_lease(h, V6_A, TCP, (uint16_t)(40000 + i), bad[i], 8080, 3600);
		if (code != UPNP_E_INVALID_ARGS)
			fprintf(stderr, "InternalClient %s: %d\n", bad[i], code);
		CHECK_EQ_INT(code, UPNP_E_INVALID_ARGS);
	}
	CHECK_EQ_INT((int)h_sent(h, mk), 0);
	h_free(h);
}

/* IPv4 LAN hosts in mode nat64: as mode none (their IPv4 address in THIRD_PARTY), or through
 * the CLAT when a CLAT prefix is given (a dual-stack LAN behind a 464XLAT CPE). */
static void nat64_ipv4_hosts(void)
{
	for (int clat = 0; clat <= 1; clat++) {
		struct iwf_config cfg;
		h_config(&cfg);
		if (clat)
			CHECK(iwf_clat_prefix_parse("2001:db8:c1a7::/96", &cfg.clat_prefix, &cfg.clat_prefix_len));
		struct h *h = h_new_mode(&cfg, "nat64", false);
		size_t mk = h_mark(h);
		CHECK_EQ_INT(h_add(h, HOST_A, TCP, 40000, 8080), 0);
		CHECK_EQ_INT(h_add(h, V6_A, TCP, 40001, 8081), 0);
		const struct pcp_msg *q = h_req(h, mk, 8080, L_CREATE);
		CHECK(q && q->has_third_party && h_ip_eq(&q->external_addr, V4_ANY));
		if (q)
			CHECK(h_ip_eq(&q->third_party, clat ? "2001:db8:c1a7::c0a8:10a" : HOST_A));
		q = h_req(h, mk, 8081, L_CREATE);
		CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, V6_A)); /* never through the CLAT */
		struct upnp_pm_entry e;
		CHECK_EQ_INT(h_get_specific(h, HOST_A, TCP, 40000, &e), 0);
		CHECK_EQ_INT((int)strcmp(e.internal_client, HOST_A), 0);
		h_free(h);
	}
}

static void admin_done(void *arg, enum upnp_error err, uint16_t port)
{
	int *out = arg;
	out[0] = (int)err;
	out[1] = port;
	out[2]++;
}

/* The administrator (iwfctl add, TR-181 AddObject) may name an IPv6 host too in mode nat64,
 * and gets 402 for it elsewhere, like a control point. */
static void nat64_admin_static(void)
{
	for (int nat64 = 0; nat64 <= 1; nat64++) {
		struct iwf_config cfg;
		h_config(&cfg);
		struct h *h = h_new_mode(&cfg, nat64 ? "nat64" : "none", false);
		struct upnp_pm_entry pm;
		memset(&pm, 0, sizeof(pm));
		pm.protocol = TCP;
		pm.external_port = 41000;
		pm.internal_port = 22;
		snprintf(pm.internal_client, sizeof(pm.internal_client), "%s", V6_B);
		pm.enabled = true;
		snprintf(pm.description, sizeof(pm.description), "static v6");
		int res[3] = {-1, 0, 0};
		size_t mk = h_mark(h);
		iwf_core_admin_add(h->core, &pm, admin_done, res);
		for (int t = 0; t < 100 && !res[2]; t++)
			h_run(h, 10);
		CHECK_EQ_INT(res[2], 1);
		CHECK_EQ_INT(res[0], nat64 ? 0 : UPNP_E_INVALID_ARGS);
		const struct pcp_msg *q = h_req(h, mk, 22, L_CREATE);
		if (nat64) {
			CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, V6_B) &&
			      h_ip_eq(&q->external_addr, V4_ANY));
			struct iwf_admin_entry ae[2];
			CHECK_EQ_INT((int)iwf_core_admin_list(h->core, ae, 2), 1);
			CHECK(ae[0].is_static && strcmp(ae[0].pm.internal_client, V6_B) == 0);
		} else {
			CHECK(q == NULL);
		}
		h_free(h);
	}
}

/* The journal keeps the 128-bit client: after a restart the mapping is listed and re-created
 * (same nonce, same THIRD_PARTY); after a restart in a mode without IPv6 clients it is
 * deleted from the carrier with its nonce and forgotten. */
static void nat64_journal_replay(void)
{
	struct iwf_config cfg;
	h_config(&cfg);
	snprintf(cfg.nat_mode, sizeof(cfg.nat_mode), "nat64");
	struct h *h = h_alloc(&cfg, true);
	h->source = SRC6;
	h->srv.addr = h_ip(SRV6);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	CHECK_EQ_INT(h_add(h, V6_A, TCP, 40000, 8080), 0);
	const struct state_mapping *m = h_rec(h, TCP, 40000);
	uint8_t nonce[PCP_NONCE_LEN] = {0};
	if (m)
		memcpy(nonce, m->nonce, sizeof(nonce));

	h_restart(h); /* the carrier keeps its mapping */
	m = h_rec(h, TCP, 40000);
	CHECK(m && h_ip_eq(&m->internal_client, V6_A));
	struct upnp_pm_entry e;
	CHECK_EQ_INT(h_get_specific(h, V6_A, TCP, 40000, &e), 0);
	CHECK_EQ_INT((int)strcmp(e.internal_client, V6_A), 0);
	size_t mk = h_mark(h);
	h_start_with(h, 0);
	h_run(h, 2000);
	const struct pcp_msg *q = h_req(h, mk, 8080, L_CREATE);
	CHECK(q != NULL);
	if (q) {
		CHECK(q->has_third_party && h_ip_eq(&q->third_party, V6_A));
		CHECK(memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0);
		CHECK_EQ_INT(q->external_port, 40000);
	}
	CHECK(h->log[mk].result == H_NONE || srv_map(h, TCP, V6_A, 8080) != NULL);
	CHECK_EQ_INT(h_delete(h, V6_A, TCP, 40001), UPNP_E_NO_SUCH_ENTRY);
	CHECK(h_rec(h, TCP, 40000) != NULL);

	/* restarted in mode none: the stored IPv6 mapping cannot be carried; deleted */
	snprintf(h->cfg.nat_mode, sizeof(h->cfg.nat_mode), "none");
	h_restart(h);
	mk = h_mark(h);
	h_start_with(h, 0);
	h_run(h, 2000);
	CHECK_EQ_INT((int)h_count_req(h, mk, 8080, L_CREATE), 0);
	q = h_req(h, mk, 8080, L_DELETE);
	CHECK(q && q->has_third_party && h_ip_eq(&q->third_party, V6_A) && memcmp(q->nonce, nonce, PCP_NONCE_LEN) == 0);
	CHECK(srv_map(h, TCP, V6_A, 8080) == NULL);
	CHECK(state_table_find(h->table, TCP, 40000, NULL) == NULL);
	h_free(h);
}

int main(int argc, char **argv)
{
	static const struct h_test tests[] = {
		{"nat64_own_ipv6_client", nat64_own_ipv6_client},
		{"nat64_security", nat64_security},
		{"nat64_refused_402", nat64_refused_402},
		{"nat64_ipv4_hosts", nat64_ipv4_hosts},
		{"nat64_admin_static", nat64_admin_static},
		{"nat64_journal_replay", nat64_journal_replay},
	};
	return h_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), "test_core_nat64");
}
