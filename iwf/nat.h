/*
 * nat.h - the router's own NAT for the cascaded-NAT mode (seed 004 §5.6), inside iwf/.
 *
 * Two backends: "none" (no NAT in the CP router, seed 004 §5.5: every call succeeds and
 * does nothing) and "nftables" (libnftables: one table `ip iwfd` with a DNAT map per
 * protocol, router port -> LAN client address . port, applied to packets arriving on the
 * WAN interface). Entries are map elements, so adding and removing one is a single
 * idempotent command and nothing is left behind by a crash: the table is recreated at start
 * and deleted at a clean stop. "clat" (a 464XLAT CPE, RFC 6877) installs nothing either: the
 * CLAT is set up by the router's own tooling; iwfd only needs its address rule
 * (iwf_nat_clat_addr). "nat64" (IPv6 LAN hosts behind a NAT64 carrier) installs nothing:
 * IPv6 is routed, not translated, by the router.
 */
#ifndef IWFD_NAT_H
#define IWFD_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

struct iwf_nat;

/* mode "none", "clat", "nat64" or "nftables"; wan_if required for nftables. NULL on failure with detail. */
struct iwf_nat *iwf_nat_new(const char *mode, const char *wan_if, char *detail, size_t cap);
/* Remove the table (nftables) and free. NULL is a no-op. */
void iwf_nat_free(struct iwf_nat *n);
/* True when the router translates (cascaded mode). */
bool iwf_nat_active(const struct iwf_nat *n);
/* Is port (protocol 6/17) in use by a socket of the router itself: a listening TCP socket
 * or a bound, unconnected UDP socket, IPv4 or IPv6 (/proc/net/{tcp,tcp6,udp,udp6} of the
 * network namespace we run in)? Such a port is one of the router's own WAN services (e.g.
 * TR-069's connection-request port 7547) and must never be forwarded to a LAN host. */
bool iwf_nat_port_local(uint8_t proto, uint16_t port);
/* Forward router_port (protocol 6/17) arriving on the WAN to client:port. 0 = OK. A
 * router_port in use by a local socket (iwf_nat_port_local) is refused (-1, detail): the
 * DNAT never takes a service of the router away from it. */
int iwf_nat_add(struct iwf_nat *n, uint8_t proto, uint16_t router_port, const char *client,
		uint16_t port, char *detail, size_t cap);
/* Stop forwarding router_port. 0 = OK (also when it was not there). */
int iwf_nat_remove(struct iwf_nat *n, uint8_t proto, uint16_t router_port, char *detail, size_t cap);

/* The IPv6 address a stateless CLAT (RFC 6877 §6.3, a dedicated prefix) gives the LAN host
 * v4 (IPv4-mapped, as stored): RFC 6052 §2.2, the IPv4 address in the prefix_len/8 bytes
 * after the prefix, skipping byte 8 (bits 64-71, "u", zero); the suffix is zero. */
void iwf_nat_clat_addr(const struct in6_addr *prefix, uint8_t prefix_len, const struct in6_addr *v4,
		       struct in6_addr *out);

#endif
