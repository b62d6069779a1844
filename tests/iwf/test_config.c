/* test_config.c - configuration file, defaults, permission rules. */
#include "iwf.h"
#include "../testutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *write_file(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "cfg-%d.json", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void)
{
	struct iwf_config c;
	char d[256];
	iwf_config_init(&c);
	CHECK_EQ_INT(c.igd_version, 1);
	CHECK_EQ_INT(c.pcp_lifetime, 7200);
	CHECK(c.listen_announce);
	CHECK(!c.allow_third_party);
	CHECK(!c.upnp_ipv6); /* issue 15: UPnP over IPv6 is opt-in */
	/* issue "Real homes" #12: persistence is on unless turned off */
	CHECK(strcmp(c.state_file, IWF_DEFAULT_STATE_FILE) == 0);
	CHECK(strcmp(c.state_file, "/var/lib/iwfd/state") == 0);
	CHECK_EQ_INT(c.pcp_service_wait_s, 60); /* bench/fleet.md */
	CHECK(!c.status_page);            /* opt-in (issue 13) */
	CHECK(!c.control_socket_set);     /* the default path: not making it only warns */
	/* Nothing to run on yet: the check names what is missing. */
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_ERR_INVAL);
	CHECK(strstr(d, "LAN") != NULL);
}

static void test_load(void)
{
	struct iwf_config c;
	char d[256];
	iwf_config_init(&c);
	const char *p = write_file(
		"{\"lan_interfaces\": [\"br-lan\", \"wlan0\"], \"pcp_servers\": [\"[2001:db8::1]:5351\"],"
		" \"igd_version\": 2, \"http_port\": 5000, \"state_file\": \"/tmp/x.json\", \"upnp_ipv6\": true,"
		" \"log_level\": \"debug\", \"pcp\": {\"lifetime\": 600, \"service_wait_s\": 0},"
		" \"status_page\": true, \"control_socket\": \"/tmp/ctl\","
		" \"security\": {\"allow_third_party\": true, \"rules\": [\"deny 0-65535 192.168.1.66 0-65535\","
		" \"allow 1024-65535 192.168.1.0/24 1024-65535\"]}}");
	CHECK_EQ_INT(iwf_config_load(&c, p, d, sizeof(d)), IWF_OK);
	CHECK_EQ_INT(c.n_lan_ifs, 2);
	CHECK(strcmp(c.lan_ifs[1], "wlan0") == 0);
	CHECK(strcmp(c.pcp_servers[0], "[2001:db8::1]:5351") == 0);
	CHECK_EQ_INT(c.igd_version, 2);
	CHECK_EQ_INT(c.http_port, 5000);
	CHECK(c.upnp_ipv6);
	CHECK_EQ_INT(c.log_level, IWF_LOG_DEBUG);
	CHECK_EQ_INT(c.pcp_lifetime, 600);
	CHECK_EQ_INT(c.pcp_service_wait_s, 0);
	CHECK(c.allow_third_party);
	CHECK_EQ_INT(c.n_rules, 2);
	CHECK(c.status_page);
	CHECK(c.control_socket_set && strcmp(c.control_socket, "/tmp/ctl") == 0);
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_OK);

	/* Errors name the key. */
	static const struct { const char *json, *key; } bad[] = {
		{"{\"igd_version\": 3}", "igd_version"},
		{"{\"http_port\": 70000}", "http_port"},
		{"{\"nosuchkey\": 1}", "nosuchkey"},
		{"{\"pcp\": {\"lifetime\": 5}}", "lifetime"},
		{"{\"security\": {\"rules\": [\"permit all\"]}}", "rules[0]"},
		{"{\"lan_interfaces\": \"br-lan\"}", "lan_interfaces"},
		{"{\"log_level\": \"loud\"}", "log_level"},
		{"{\"status_page\": \"yes\"}", "status_page"},
		{"{\"upnp_ipv6\": \"yes\"}", "upnp_ipv6"},
		{"[1, 2]", "top level"},
		{"{\"igd_version\": 1, \"igd_version\": 2}", "duplicate"},
		{"{broken", "cfg-"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		iwf_config_init(&c);
		p = write_file(bad[i].json);
		d[0] = '\0';
		CHECK(iwf_config_load(&c, p, d, sizeof(d)) != IWF_OK);
		if (!strstr(d, bad[i].key))
			fprintf(stderr, "  case %zu: detail '%s' lacks '%s'\n", i, d, bad[i].key);
		CHECK(strstr(d, bad[i].key) != NULL);
	}
	unlink(p);
	iwf_config_init(&c);
	CHECK(iwf_config_load(&c, "/nonexistent/iwfd.json", d, sizeof(d)) != IWF_OK);
}

static void test_rules(void)
{
	struct iwf_rule r[3];
	CHECK(iwf_rule_parse(&r[0], "deny 0-65535 192.168.1.66 0-65535"));
	CHECK(iwf_rule_parse(&r[1], "allow 1024-65535 192.168.1.0/24 1024-65535"));
	CHECK(iwf_rule_parse(&r[2], "allow 80 192.168.1.10/32 8080"));
	CHECK(!iwf_rule_parse(&r[2], "allow 80 192.168.1.10/33 8080"));
	CHECK(!iwf_rule_parse(&r[2], "allow 90-80 192.168.1.10 80"));
	CHECK(!iwf_rule_parse(&r[2], "allow 80 192.168.1.300 80"));
	CHECK(!iwf_rule_parse(&r[2], "allow 80 192.168.1.1 80 extra"));
	CHECK(!iwf_rule_parse(&r[2], "maybe 80 192.168.1.1 80"));
	CHECK(!iwf_rule_parse(&r[2], "allow -1 192.168.1.1 80"));
	CHECK(!iwf_rule_parse(&r[2], "allow 65536 192.168.1.1 80"));
	CHECK(iwf_rule_parse(&r[2], "allow 80 192.168.1.10/32 8080"));
	uint32_t h66 = 0xc0a80142, h10 = 0xc0a8010a, other = 0x0a000001;
	CHECK(!iwf_rules_permit(r, 3, 40000, h66, 40000)); /* first match: denied host */
	CHECK(iwf_rules_permit(r, 3, 40000, h10, 40000));
	CHECK(iwf_rules_permit(r, 3, 40000, h10, 80));     /* no rule matches: default */
	r[1].allow = false;
	CHECK(!iwf_rules_permit(r, 3, 40000, h10, 40000)); /* a deny rule that matches */
	r[1].allow = true;
	CHECK(iwf_rules_permit(r, 3, 80, h10, 8080));      /* the explicit low-port rule */
	CHECK(!iwf_rules_permit(r, 3, 81, h10, 8080));
	CHECK(iwf_rules_permit(r, 3, 40000, other, 40000)); /* no rule: default >= 1024 */
	/* Default without rules: well-known external ports are refused. */
	CHECK(!iwf_rules_permit(NULL, 0, 80, h10, 80));
	CHECK(!iwf_rules_permit(NULL, 0, 1023, h10, 80));
	CHECK(iwf_rules_permit(NULL, 0, 1024, h10, 80));
}

/* --nat nat64 (issue 15, IPv6 LAN hosts behind a NAT64): needs an IPv6 PCP server (or the
 * DHCP hand-over file); the CLAT prefix goes with clat and nat64 only. */
static void test_nat64(void)
{
	struct iwf_config c;
	char d[256];
	iwf_config_init(&c);
	snprintf(c.lan_ifs[0], sizeof(c.lan_ifs[0]), "br-lan");
	c.n_lan_ifs = 1;
	CHECK(iwf_nat_mode_known("nat64") && iwf_nat_mode_known("clat") && !iwf_nat_mode_known("nat46"));
	snprintf(c.nat_mode, sizeof(c.nat_mode), "nat64");
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_ERR_INVAL); /* no server: not the v4 router */
	CHECK(strstr(d, "nat64") != NULL && strstr(d, "--pcp-server") != NULL);
	snprintf(c.pcp_servers[0], sizeof(c.pcp_servers[0]), "192.0.2.1");
	c.n_pcp_servers = 1;
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_ERR_INVAL); /* an IPv4 server */
	CHECK(strstr(d, "192.0.2.1") != NULL);
	snprintf(c.pcp_servers[0], sizeof(c.pcp_servers[0]), "[fd00:99::1]:5351");
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_OK);
	c.n_pcp_servers = 0;
	snprintf(c.pcp_servers_file, sizeof(c.pcp_servers_file), "/run/iwfd/pcp-servers");
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_OK);
	CHECK(iwf_clat_prefix_parse("2001:db8:c1a7::/96", &c.clat_prefix, &c.clat_prefix_len));
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_OK); /* nat64 + CLAT for IPv4 hosts */
	snprintf(c.nat_mode, sizeof(c.nat_mode), "none");
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_ERR_INVAL);
	snprintf(c.nat_mode, sizeof(c.nat_mode), "clat");
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_OK);
	c.clat_prefix_len = 0;
	CHECK_EQ_INT(iwf_config_check(&c, d, sizeof(d)), IWF_ERR_INVAL); /* clat without its prefix */
	const char *p = write_file("{\"nat\": {\"mode\": \"nat64\"}}");
	iwf_config_init(&c);
	CHECK_EQ_INT(iwf_config_load(&c, p, d, sizeof(d)), IWF_OK);
	CHECK(strcmp(c.nat_mode, "nat64") == 0);
	p = write_file("{\"nat\": {\"mode\": \"nat66\"}}");
	CHECK_EQ_INT(iwf_config_load(&c, p, d, sizeof(d)), IWF_ERR_INVAL);
	CHECK(strstr(d, "nat64") != NULL);
}

int main(void)
{
	test_nat64();
	test_defaults();
	test_load();
	test_rules();
	return tu_finish("test_config");
}
