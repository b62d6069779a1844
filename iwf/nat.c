/*
 * nat.c - NAT backends for the cascaded-NAT mode (seed 004 §5.6): "none" and "nftables".
 */
#include "nat.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef IWFD_HAVE_NFTABLES
#include <dlfcn.h>
#include <nftables/libnftables.h>
#endif

#define NAT_TABLE "iwfd"

#ifdef IWFD_HAVE_NFTABLES
/* libnftables (with libnftnl, libmnl, libxtables, libgmp: ~0.5 MiB of RSS) is loaded only
 * when the router's own NAT is used; a DS-Lite / NAT64 router never maps it. */
struct nft_lib {
	void *so;
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	int (*run_cmd_from_buffer)(struct nft_ctx *nft, const char *buf);
	const char *(*ctx_get_error_buffer)(struct nft_ctx *ctx);
	int (*ctx_buffer_output)(struct nft_ctx *ctx);
	int (*ctx_buffer_error)(struct nft_ctx *ctx);
};
#endif

struct iwf_nat {
	bool nft;
#ifdef IWFD_HAVE_NFTABLES
	struct nft_lib lib;
	struct nft_ctx *ctx;
#endif
};

#ifdef IWFD_HAVE_NFTABLES
#define nft_ctx_new n->lib.ctx_new
#define nft_ctx_free n->lib.ctx_free
#define nft_run_cmd_from_buffer n->lib.run_cmd_from_buffer
#define nft_ctx_get_error_buffer n->lib.ctx_get_error_buffer
#define nft_ctx_buffer_output n->lib.ctx_buffer_output
#define nft_ctx_buffer_error n->lib.ctx_buffer_error

static bool nft_load(struct nft_lib *l)
{
	l->so = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!l->so)
		return false;
	*(void **)&l->ctx_new = dlsym(l->so, "nft_ctx_new");
	*(void **)&l->ctx_free = dlsym(l->so, "nft_ctx_free");
	*(void **)&l->run_cmd_from_buffer = dlsym(l->so, "nft_run_cmd_from_buffer");
	*(void **)&l->ctx_get_error_buffer = dlsym(l->so, "nft_ctx_get_error_buffer");
	*(void **)&l->ctx_buffer_output = dlsym(l->so, "nft_ctx_buffer_output");
	*(void **)&l->ctx_buffer_error = dlsym(l->so, "nft_ctx_buffer_error");
	if (l->ctx_new && l->ctx_free && l->run_cmd_from_buffer && l->ctx_get_error_buffer &&
	    l->ctx_buffer_output && l->ctx_buffer_error)
		return true;
	dlclose(l->so);
	l->so = NULL;
	return false;
}
#endif

__attribute__((format(printf, 3, 4)))
static void say(char *detail, size_t cap, const char *fmt, ...)
{
	if (!detail || !cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, cap, fmt, ap);
	va_end(ap);
}

#ifdef IWFD_HAVE_NFTABLES
/* Run one nft command; on failure copy nft's own message into detail. */
static int run(struct iwf_nat *n, const char *cmd, char *detail, size_t cap)
{
	int rc = nft_run_cmd_from_buffer(n->ctx, cmd);
	const char *err = nft_ctx_get_error_buffer(n->ctx);
	if (rc != 0) {
		say(detail, cap, "nft: %s", err && *err ? err : "command failed");
		/* nft's messages end with a newline and may span lines: keep the first. */
		if (detail) {
			char *nl = strchr(detail, '\n');
			if (nl)
				*nl = '\0';
		}
	}
	/* Reading the buffer resets it for the next command. */
	return rc;
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '@'))
			return false;
	}
	return true;
}
#endif

struct iwf_nat *iwf_nat_new(const char *mode, const char *wan_if, char *detail, size_t cap)
{
	struct iwf_nat *n = calloc(1, sizeof(*n));
	if (!n) {
		say(detail, cap, "out of memory");
		return NULL;
	}
	if (!mode || !*mode || strcmp(mode, "none") == 0 || strcmp(mode, "clat") == 0 || strcmp(mode, "nat64") == 0)
		return n; /* clat: the router's CLAT translates statelessly; nat64: IPv6 hosts are not
			   * translated by the router at all: nothing to install */
	if (strcmp(mode, "nftables") != 0) {
		say(detail, cap, "unknown NAT mode '%s' (none, clat, nat64 or nftables)", mode);
		free(n);
		return NULL;
	}
#ifdef IWFD_HAVE_NFTABLES
	if (!wan_if || !ifname_ok(wan_if)) {
		say(detail, cap, "the nftables NAT needs a valid WAN interface name");
		free(n);
		return NULL;
	}
	if (!nft_load(&n->lib)) {
		say(detail, cap, "cannot load libnftables.so.1 (%s)", dlerror());
		free(n);
		return NULL;
	}
	n->nft = true;
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx) {
		say(detail, cap, "cannot create an nftables context");
		dlclose(n->lib.so);
		free(n);
		return NULL;
	}
	nft_ctx_buffer_output(n->ctx);
	nft_ctx_buffer_error(n->ctx);
	/* Start from a clean table: whatever a crashed run left is replaced; the stored
	 * mappings are installed again by the caller. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "add table ip " NAT_TABLE "\n"
		 "delete table ip " NAT_TABLE "\n"
		 "table ip " NAT_TABLE " {\n"
		 " map fwd_tcp { type inet_service : ipv4_addr . inet_service; }\n"
		 " map fwd_udp { type inet_service : ipv4_addr . inet_service; }\n"
		 " chain prerouting {\n"
		 "  type nat hook prerouting priority dstnat; policy accept;\n"
		 "  iifname \"%s\" meta l4proto tcp dnat ip addr . port to tcp dport map @fwd_tcp\n"
		 "  iifname \"%s\" meta l4proto udp dnat ip addr . port to udp dport map @fwd_udp\n"
		 " }\n"
		 "}\n",
		 wan_if, wan_if);
	if (run(n, cmd, detail, cap) != 0) {
		nft_ctx_free(n->ctx);
		dlclose(n->lib.so);
		free(n);
		return NULL;
	}
	return n;
#else
	(void)wan_if;
	say(detail, cap, "this iwfd was built without libnftables");
	free(n);
	return NULL;
#endif
}

void iwf_nat_free(struct iwf_nat *n)
{
	if (!n)
		return;
#ifdef IWFD_HAVE_NFTABLES
	if (n->nft) {
		run(n, "delete table ip " NAT_TABLE, NULL, 0);
		nft_ctx_free(n->ctx);
		dlclose(n->lib.so);
	}
#endif
	free(n);
}

/* One line of /proc/net/{tcp,udp}{,6}: "sl: LOCALHEX:PORT REMHEX:PORT ST ...". True when
 * its local port is port and its state is st (hex). */
static bool proc_line_matches(const char *line, uint16_t port, unsigned st)
{
	const char *p = strchr(line, ':'); /* after "sl" */
	if (!p)
		return false;
	p++;
	while (*p == ' ')
		p++;
	const char *colon = strchr(p, ':'); /* local address : port */
	if (!colon)
		return false;
	char *end;
	unsigned long lport = strtoul(colon + 1, &end, 16);
	if (end == colon + 1 || *end != ' ' || lport != port)
		return false;
	p = end;
	while (*p == ' ')
		p++;
	p = strchr(p, ' '); /* skip the remote address */
	if (!p)
		return false;
	unsigned long state = strtoul(p, &end, 16);
	return end != p && state == st;
}

bool iwf_nat_port_local(uint8_t proto, uint16_t port)
{
	/* TCP_LISTEN = 0x0A; an unconnected UDP socket is TCP_CLOSE = 0x07 (a connected
	 * one, ESTABLISHED, only gets answers to what it sent: conntrack keeps those) */
	static const char *const tcp[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	static const char *const udp[] = { "/proc/net/udp", "/proc/net/udp6" };
	const char *const *files = proto == 6 ? tcp : udp;
	unsigned st = proto == 6 ? 0x0A : 0x07;
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		char line[512];
		bool found = false;
		while (!found && fgets(line, sizeof(line), f))
			found = proc_line_matches(line, port, st);
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

bool iwf_nat_active(const struct iwf_nat *n)
{
	return n && n->nft;
}

int iwf_nat_add(struct iwf_nat *n, uint8_t proto, uint16_t router_port, const char *client,
		uint16_t port, char *detail, size_t cap)
{
	if (!iwf_nat_active(n))
		return 0;
#ifdef IWFD_HAVE_NFTABLES
	struct in_addr a;
	if ((proto != 6 && proto != 17) || !router_port || !port || inet_pton(AF_INET, client, &a) != 1) {
		say(detail, cap, "invalid forwarding %u -> %s:%u", router_port, client, port);
		return -1;
	}
	char text[INET_ADDRSTRLEN], cmd[256];
	inet_ntop(AF_INET, &a, text, sizeof(text)); /* canonical form only reaches nft */
	if (iwf_nat_port_local(proto, router_port)) {
		say(detail, cap, "router port %u/%s is used by a socket of the router itself: not forwarded to %s:%u",
		    router_port, proto == 6 ? "TCP" : "UDP", text, port);
		return -1;
	}
	const char *map = proto == 6 ? "fwd_tcp" : "fwd_udp";
	snprintf(cmd, sizeof(cmd), "add element ip " NAT_TABLE " %s { %u : %s . %u }", map,
		 router_port, text, port);
	if (run(n, cmd, NULL, 0) == 0)
		return 0;
	/* A stale element for the same router port (nft 1.0.6 refuses to overwrite it):
	 * delete it and add ours in one transaction. */
	char cmd2[320];
	snprintf(cmd2, sizeof(cmd2), "delete element ip " NAT_TABLE " %s { %u }\n%s", map,
		 router_port, cmd);
	return run(n, cmd2, detail, cap) == 0 ? 0 : -1;
#else
	(void)proto; (void)router_port; (void)client; (void)port;
	say(detail, cap, "no nftables");
	return -1;
#endif
}

int iwf_nat_remove(struct iwf_nat *n, uint8_t proto, uint16_t router_port, char *detail, size_t cap)
{
	if (!iwf_nat_active(n))
		return 0;
#ifdef IWFD_HAVE_NFTABLES
	char cmd[192];
	const char *map = proto == 6 ? "fwd_tcp" : "fwd_udp";
	snprintf(cmd, sizeof(cmd), "delete element ip " NAT_TABLE " %s { %u }", map, router_port);
	/* Deleting what is not there fails in nft 1.0.6; that is the state we want anyway. */
	run(n, cmd, detail, cap);
	return 0;
#else
	(void)proto; (void)router_port;
	say(detail, cap, "no nftables");
	return -1;
#endif
}

void iwf_nat_clat_addr(const struct in6_addr *prefix, uint8_t prefix_len, const struct in6_addr *v4,
		       struct in6_addr *out)
{
	/* RFC 6052 §2.2 */
	size_t at = prefix_len / 8;
	memset(out, 0, sizeof(*out));
	memcpy(out->s6_addr, prefix->s6_addr, at);
	for (size_t i = 12; i < 16; i++, at++) {
		if (at == 8)
			at++; /* bits 64-71 */
		out->s6_addr[at] = v4->s6_addr[i];
	}
}
