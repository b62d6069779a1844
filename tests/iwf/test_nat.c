/* test_nat.c - the nftables backend of the cascaded-NAT mode (seed 004 §5.6), run in a
 * private network namespace of its own (unshare), so the host's rules are never touched. */
#include "iwf.h"
#include "nat.h"
#include "../testutil.h"

#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output of an nft command (small). */
static char *nft_out(const char *args)
{
	static char buf[8192];
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "nft %s 2>&1", args);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(buf, 1, sizeof(buf) - 1, p) : 0;
	buf[n] = '\0';
	if (p)
		pclose(p);
	return buf;
}

/* RFC 6052 §2.4: 192.0.2.33 embedded in each of the six prefix lengths (the "clat" mode's
 * address rule, RFC 6877 §6.3), and prefixes that are not RFC 6052 prefixes. */
static void clat_addresses(void)
{
	static const char *const vec[][2] = {
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::c000:221"},
	};
	struct in6_addr v4 = {0}, prefix, out, want;
	uint8_t len;
	v4.s6_addr[10] = v4.s6_addr[11] = 0xff;
	inet_pton(AF_INET, "192.0.2.33", &v4.s6_addr[12]);
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		CHECK(iwf_clat_prefix_parse(vec[i][0], &prefix, &len));
		iwf_nat_clat_addr(&prefix, len, &v4, &out);
		CHECK(inet_pton(AF_INET6, vec[i][1], &want) == 1);
		CHECK(memcmp(&out, &want, sizeof(out)) == 0);
	}
	CHECK(!iwf_clat_prefix_parse("2001:db8::/33", &prefix, &len));
	CHECK(!iwf_clat_prefix_parse("2001:db8::1/96", &prefix, &len));     /* bits past the prefix */
	CHECK(!iwf_clat_prefix_parse("2001:db8:0:0:ff00::/96", &prefix, &len)); /* bits 64-71 */
	CHECK(!iwf_clat_prefix_parse("2001:db8::", &prefix, &len));
	CHECK(!iwf_clat_prefix_parse("192.0.2.0/96", &prefix, &len));
	CHECK(!iwf_clat_prefix_parse("2001:db8::/096", &prefix, &len));
	char d[256] = "";
	struct iwf_nat *clat = iwf_nat_new("clat", NULL, d, sizeof(d));
	CHECK(clat && !iwf_nat_active(clat)); /* nothing installed: the CLAT is the router's own */
	iwf_nat_free(clat);
}

int main(void)
{
	clat_addresses();
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "test_nat: needs root for a private network namespace: skipped\n");
		return 77;
	}
	char d[256] = "";
	/* "none": the DS-Lite case, nothing to do, always succeeds. */
	struct iwf_nat *none = iwf_nat_new("none", NULL, d, sizeof(d));
	CHECK(none && !iwf_nat_active(none));
	CHECK_EQ_INT(iwf_nat_add(none, 6, 5000, "192.168.1.10", 5000, d, sizeof(d)), 0);
	iwf_nat_free(none);
	CHECK(iwf_nat_new("iptables", "wan0", d, sizeof(d)) == NULL && strstr(d, "iptables"));
	CHECK(iwf_nat_new("nftables", NULL, d, sizeof(d)) == NULL);
	CHECK(iwf_nat_new("nftables", "wan0\"; flush ruleset", d, sizeof(d)) == NULL);

	/* A stale table from a crashed run is replaced. */
	nft_out("add table ip iwfd");
	nft_out("add chain ip iwfd junk");
	struct iwf_nat *n = iwf_nat_new("nftables", "wan0", d, sizeof(d));
	CHECK(n != NULL);
	if (!n) {
		fprintf(stderr, "detail: %s\n", d);
		return tu_finish("test_nat");
	}
	CHECK(iwf_nat_active(n));
	CHECK(strstr(nft_out("list table ip iwfd"), "junk") == NULL);
	CHECK(strstr(nft_out("list table ip iwfd"), "iifname \"wan0\"") != NULL);

	CHECK_EQ_INT(iwf_nat_add(n, 6, 61000, "192.168.1.10", 40000, d, sizeof(d)), 0);
	CHECK_EQ_INT(iwf_nat_add(n, 17, 61000, "192.168.1.11", 40001, d, sizeof(d)), 0);
	CHECK(strstr(nft_out("list map ip iwfd fwd_tcp"), "61000 : 192.168.1.10 . 40000") != NULL);
	CHECK(strstr(nft_out("list map ip iwfd fwd_udp"), "61000 : 192.168.1.11 . 40001") != NULL);
	/* Re-adding the same router port replaces the target. */
	CHECK_EQ_INT(iwf_nat_add(n, 6, 61000, "192.168.1.12", 40002, d, sizeof(d)), 0);
	CHECK(strstr(nft_out("list map ip iwfd fwd_tcp"), "61000 : 192.168.1.12 . 40002") != NULL);
	CHECK(strstr(nft_out("list map ip iwfd fwd_tcp"), "192.168.1.10") == NULL);
	/* Bad input never reaches nft. */
	CHECK(iwf_nat_add(n, 6, 61001, "192.168.1.1; flush ruleset", 1, d, sizeof(d)) != 0);
	CHECK(iwf_nat_add(n, 1, 61001, "192.168.1.1", 1, d, sizeof(d)) != 0);
	CHECK(iwf_nat_add(n, 6, 0, "192.168.1.1", 1, d, sizeof(d)) != 0);
	CHECK_EQ_INT(iwf_nat_remove(n, 6, 61000, d, sizeof(d)), 0);
	CHECK(strstr(nft_out("list map ip iwfd fwd_tcp"), "61000") == NULL);
	CHECK(strstr(nft_out("list map ip iwfd fwd_udp"), "61000") != NULL);
	CHECK_EQ_INT(iwf_nat_remove(n, 6, 61000, d, sizeof(d)), 0); /* already gone: fine */
	iwf_nat_free(n);
	CHECK(strstr(nft_out("list tables"), "iwfd") == NULL);
	return tu_finish("test_nat");
}
