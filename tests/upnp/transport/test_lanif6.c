/*
 * test_lanif6.c - the IPv6 LAN rules of upnp/ (ssdp.c) on hand-made interfaces: who is
 * on-link (upnp_lan_if_has6), which of our addresses a URL names for a peer
 * (upnp_lan_if_addr6_for) and the bracketed URL (upnp_url_with_v6_host). Issue 15, UDA 1.1
 * Annex A, RFC 6874.
 */
#include "upnp_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int fails, checks;

static void check(bool ok, const char *what)
{
	checks++;
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		fails++;
}

static struct in6_addr a6(const char *s)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, s, &a) != 1)
		memset(&a, 0xee, sizeof(a));
	return a;
}

static void net(struct upnp_lan_if *lif, const char *addr, unsigned plen)
{
	lif->nets6[lif->n_nets6].addr = a6(addr);
	lif->nets6[lif->n_nets6].plen = plen;
	lif->n_nets6++;
}

int main(void)
{
	struct upnp_lan_if lif;
	struct in6_addr got, peer;
	char url[128], text[INET6_ADDRSTRLEN];

	memset(&lif, 0, sizeof(lif));
	snprintf(lif.name, sizeof(lif.name), "br-lan");
	lif.index = 7;
	lif.ll6 = a6("fe80::1");
	lif.has_ll6 = true;
	net(&lif, "2001:db8:1:2::1", 64);
	net(&lif, "fd00:aa:bb:80::1", 57); /* a prefix not on a byte boundary */

	static const struct {
		const char *peer;
		uint32_t scope;
		bool onlink;
		const char *what;
	} v[] = {
		{ "2001:db8:1:2::99", 0, true, "GUA inside the /64" },
		{ "2001:db8:1:3::99", 0, false, "GUA in the next /64" },
		{ "fd00:aa:bb:80::5", 0, true, "ULA inside the /57" },
		{ "fd00:aa:bb:ff::5", 0, true, "ULA at the /57's top" },
		{ "fd00:aa:bb:7f::5", 0, false, "ULA just below the /57" },
		{ "fd00:aa:bb:100::5", 0, false, "ULA just above the /57" },
		{ "fe80::2", 7, true, "link-local from this link (scope 7)" },
		{ "fe80::2", 8, false, "link-local from another link (scope 8)" },
		{ "fe80::2", 0, false, "link-local without a scope" },
		{ "::ffff:10.0.0.2", 0, false, "IPv4-mapped" },
		{ "::", 0, false, "unspecified" },
		{ "::1", 0, false, "loopback" },
		{ "ff02::c", 7, false, "multicast" },
		{ "2001:db8:1:2::1", 0, true, "our own address (on-link by prefix)" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		peer = a6(v[i].peer);
		check(upnp_lan_if_has6(&lif, &peer, v[i].scope) == v[i].onlink, v[i].what);
	}

	/* The address a URL names for a peer. */
	static const struct {
		const char *peer, *want, *what;
	} w[] = {
		{ "fe80::2", "fe80::1", "link-local peer: our link-local address" },
		{ "2001:db8:1:2::99", "2001:db8:1:2::1", "GUA peer: our address in its prefix" },
		{ "fd00:aa:bb:90::5", "fd00:aa:bb:80::1", "ULA peer: our address in its prefix" },
		{ "2001:db8:9::9", "2001:db8:1:2::1", "off-prefix peer: our first global/ULA address" },
		{ NULL, "fe80::1", "multicast to ff02::c: link-local" },
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		peer = w[i].peer ? a6(w[i].peer) : a6("::");
		bool ok = upnp_lan_if_addr6_for(&lif, w[i].peer ? &peer : NULL, &got);
		inet_ntop(AF_INET6, &got, text, sizeof(text));
		check(ok && strcmp(text, w[i].want) == 0, w[i].what);
	}
	{
		struct upnp_lan_if only_ll = lif, none = lif;

		only_ll.n_nets6 = 0;
		peer = a6("2001:db8:1:2::99");
		check(upnp_lan_if_addr6_for(&only_ll, &peer, &got) &&
		      memcmp(&got, &lif.ll6, sizeof(got)) == 0,
		      "no global/ULA address: the link-local one for everyone");
		none.n_nets6 = 0;
		none.has_ll6 = false;
		check(!upnp_lan_if_addr6_for(&none, &peer, &got), "no IPv6 address: none to name");
	}

	/* URLs: host replaced, bracketed, no zone id. */
	got = a6("fe80::1");
	check(upnp_url_with_v6_host("http://192.168.1.1:2869/rootDesc.xml", &got, url, sizeof(url)) &&
	      strcmp(url, "http://[fe80::1]:2869/rootDesc.xml") == 0, "IPv4 host -> [fe80::1]");
	got = a6("2001:db8:1:2::1");
	check(upnp_url_with_v6_host("http://[fd00::1]:5000/x", &got, url, sizeof(url)) &&
	      strcmp(url, "http://[2001:db8:1:2::1]:5000/x") == 0, "bracketed host replaced");
	check(upnp_url_with_v6_host("http://10.0.0.1/", &got, url, sizeof(url)) &&
	      strcmp(url, "http://[2001:db8:1:2::1]/") == 0, "no port");
	check(!upnp_url_with_v6_host("ftp://10.0.0.1/", &got, url, sizeof(url)), "not http: refused");
	check(!upnp_url_with_v6_host("http://[fd00::1:5000/", &got, url, sizeof(url)),
	      "unclosed bracket: refused");
	check(!upnp_url_with_v6_host("http://10.0.0.1:2869/rootDesc.xml", &got, url, 20),
	      "too small a buffer: refused");
	printf("%d failed of %d\n", fails, checks);
	return fails != 0;
}
