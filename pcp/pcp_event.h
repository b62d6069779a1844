/*
 * pcp_event.h - thin libevent adapter for the PCP client engine (pcp.h).
 *
 * Owns: one UDP socket connect()ed to the PCP server (so getsockname() yields the
 * source address requests really leave with, which becomes the PCP client address,
 * RFC 6887 §7.1 / ADDRESS_MISMATCH), optionally sockets on UDP 5350 for ANNOUNCE
 * (unicast, 224.0.0.1 and ff02::1, RFC 6887 §14.1.3), and the engine's single timer at
 * pcp_client_next_deadline(). Every datagram received goes to pcp_client_input() with
 * its real source address and port. Built as its own static library (iwfpcp_event,
 * meson dependency pcp_event_dep) so that pcp/ itself needs only libc.
 *
 * Ownership: the io borrows base and client (both must outlive it); cfg is copied
 * (server strings included).
 */
#ifndef IWFD_PCP_EVENT_H
#define IWFD_PCP_EVENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcp.h"

struct event_base;
struct pcp_io;

struct pcp_io_config {
	/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" (a bare IPv6 address is also taken);
	 * default port 5351. The first one is used (RFC 7488 fallback order: later). */
	const char *const *servers;
	size_t n_servers;
	/* Bind UDP announce_port (default 5350) and join 224.0.0.1 (and ff02::1 where IPv6
	 * works) to receive ANNOUNCE. Failure to bind or join is logged, not fatal. */
	bool listen_announce;
	uint16_t announce_port; /* 0 = PCP_CLIENT_PORT (5350); tests use another */
	/* level: 0 error, 1 warn, 2 info, 3 debug. NULL = silent. */
	void (*log)(void *arg, int level, const char *fmt, va_list ap);
	void *log_arg;
};

/* Monotonic milliseconds (CLOCK_MONOTONIC): the "now" to pass to pcp_flow_* calls. */
uint64_t pcp_io_now(void);

/*
 * New adapter. Parses the first server, opens and connects its socket, sets the
 * client's source and server (pcp_client_set_source / pcp_client_set_server) and arms
 * the timer. n_servers may be 0 (no server yet: set one with pcp_io_set_servers).
 * Returns NULL on failure with *err_out (may be NULL) = an errno value for strerror():
 * EINVAL (bad server string, NULL argument), ENOMEM, or the socket()/connect()/
 * getsockname() errno (e.g. ENETUNREACH). On success *err_out = 0.
 */
struct pcp_io *pcp_io_new(struct event_base *base, struct pcp_client *client, const struct pcp_io_config *cfg,
			  int *err_out);

/* Call after any pcp_flow_* call: flushes pcp_client_output() and re-arms the timer
 * from the event loop (an immediately activated event), so it is safe to call from
 * inside event callbacks, including the engine's. */
void pcp_io_kick(struct pcp_io *io);

/*
 * Switch servers at run time (e.g. DHCPv4 option 158 / DHCPv6 option 86, RFC 7291)
 * without losing mappings: if the first server differs from the current one a new
 * connected socket replaces the old one and pcp_client_set_server() re-sends MAP for
 * the live flows with their nonces. Same server: nothing happens. n = 0 is rejected.
 * Returns 0 or an errno value (as for pcp_io_new); on error nothing changed.
 */
int pcp_io_set_servers(struct pcp_io *io, const char *const *servers, size_t n);

/*
 * Reopen the socket towards the current server (call when the WAN address or routes
 * changed: a connected socket keeps the source address it had). If the source address
 * changed, the client gets the new one and every live flow is re-sent at once
 * (pcp_client_refresh_all). Returns 0, ENOENT when no server is set, or an errno value
 * (the old socket is kept).
 */
int pcp_io_reconnect(struct pcp_io *io);

/* Parse "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address. Port
 * defaults to PCP_SERVER_PORT; port 0 is rejected. Exposed for tests and config checks. */
bool pcp_io_parse_server(const char *text, struct in6_addr *addr, uint16_t *port);

/*
 * The IPv4 default router, for "no server configured" (RFC 6887 §8.1: the default
 * router is the PCP server to try). Reads route_file (NULL = "/proc/net/route"): the
 * default route (destination 0, mask 0, RTF_UP | RTF_GATEWAY) with the lowest metric.
 * Returns false when there is none or the file cannot be read. IPv6 default routers
 * are link-local and need an interface scope, which this address type cannot carry.
 */
bool pcp_io_default_router(const char *route_file, struct in6_addr *out);

/* Close sockets and events. The client is not freed. NULL is a no-op. Not from inside
 * the engine's event callback (pcp_io_set_servers and pcp_io_kick are fine there). */
void pcp_io_free(struct pcp_io *io);

#endif
