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
 * The application never pokes the adapter after pcp_flow_* calls: pcp_io_new() installs
 * the engine's wakeup (pcp_client_set_wakeup), and the adapter flushes from the loop
 * whenever the engine has something due earlier than the armed timer.
 *
 * Sending (docs/pcp.md "Sending"): a burst (a restore, a server change, lost state) is
 * paced by the server's answers: at most max_in_flight requests are outstanding; each
 * datagram from the server, or PCP_IO_IN_FLIGHT_MS of silence, lets one more go. A
 * datagram the socket refuses (EAGAIN, ENOBUFS) is kept and sent first when the socket
 * takes it (EV_WRITE); meanwhile nothing more is pulled from the engine. So nothing due
 * is lost and nothing counts as sent before it leaves.
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

#define PCP_IO_FAILOVER_MS 21000      /* default pcp_io_config.failover_ms */
#define PCP_IO_ROUTER_POLL_MS 30000   /* default pcp_io_config.router_poll_ms */
#define PCP_IO_WATCH_POLL_MS 2000     /* default poll of pcp_io_watch_servers_file() */
#define PCP_IO_SERVERS_FILE_MAX 4096  /* a larger server file is ignored */
#define PCP_IO_MAX_IN_FLIGHT 64       /* default pcp_io_config.max_in_flight */
#define PCP_IO_IN_FLIGHT_MS 1000      /* an unanswered request stops counting as in flight */
#define PCP_IO_ANNOUNCE_GAP_MS 30000  /* default pcp_io_config.announce_gap_ms */

/* Why the adapter talks to a (new) server; pcp_io_config.on_server. */
enum pcp_io_server_reason {
	PCP_IO_SERVER_CONFIGURED,     /* pcp_io_new, pcp_io_set_servers, pcp_io_reconnect, a
				       * server file that emptied or vanished */
	PCP_IO_SERVER_FAILOVER,       /* the previous one did not answer (RFC 7488) */
	PCP_IO_SERVER_FILE,           /* the watched server file named it */
	PCP_IO_SERVER_DEFAULT_ROUTER, /* no server configured: the default router (§8.1) */
};
/* "configured", "failover", "file", "default-router" (no spaces: log-parser friendly). */
const char *pcp_io_server_reason_name(enum pcp_io_server_reason why);

/* The adapter switched to server (borrowed, valid during the call). Called after the
 * engine was told (pcp_client_set_server: live flows are being re-sent with their
 * nonces). Must not call pcp_io_set_servers, pcp_io_watch_servers_file or pcp_io_free. */
typedef void pcp_io_server_cb(void *arg, const struct pcp_server *server, enum pcp_io_server_reason why);

struct pcp_io_config {
	/* Up to PCP_MAX_SERVERS addresses of the PCP server in RFC 7488 order (preferred
	 * first): "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" (a bare IPv6 address is also
	 * taken); default port 5351 (pcp_server_parse). Duplicates are dropped. None: the
	 * IPv4 default router (RFC 6887 §8.1), re-read every router_poll_ms and on
	 * pcp_io_reconnect. */
	const char *const *servers;
	size_t n_servers;
	/* Bind UDP announce_port (default 5350) and join 224.0.0.1 (and ff02::1 where IPv6
	 * works) to receive ANNOUNCE. Failure to bind or join is logged, not fatal. */
	bool listen_announce;
	uint16_t announce_port; /* 0 = PCP_CLIENT_PORT (5350); tests use another */
	/* ANNOUNCE is taken only when it arrived on the WAN interface (the packet's interface
	 * index, IP_PKTINFO / IPV6_RECVPKTINFO): a LAN host can neither spoof the server's
	 * IPv4 address (loose rp_filter) nor multicast from its own IPv6 link-local address.
	 * announce_ifname names that interface; NULL: the interface that holds the source
	 * address of the socket connected to the server (the route towards the server),
	 * found again whenever that socket is (re)opened. An unknown interface accepts no
	 * ANNOUNCE (the Epoch of the next answer still detects a restarted server). */
	const char *announce_ifname;
	/* After an ANNOUNCE made the engine re-send every mapping, further ANNOUNCEs are
	 * dropped for this long (a spoofed flood costs one re-send per gap, not one per
	 * datagram). 0 = PCP_IO_ANNOUNCE_GAP_MS. */
	uint32_t announce_gap_ms;
	/* Only servers reached over IPv6 (e.g. a NAT64's, which maps IPv6 internal addresses):
	 * an IPv4 address in a watched servers file is skipped like a bad line (logged), and
	 * with no server the IPv4 default router is not taken. The configured list is the
	 * caller's to check. */
	bool ipv6_only;
	/* level: a syslog priority, LOG_ERR .. LOG_DEBUG (<syslog.h>). NULL = silent. */
	void (*log)(void *arg, int level, const char *fmt, va_list ap);
	void *log_arg;
	/* RFC 7488 failover: when the server in use has left a request unanswered for this
	 * long (no accepted response at all meanwhile), the next address of the list is
	 * used (cyclic; logged; on_server). After each complete round through the list
	 * without any answer the wait doubles, up to PCP_MRT_MS. 0 = PCP_IO_FAILOVER_MS
	 * (21 s: the §8.1.1 transmissions at 0, 3 and 9 s and the third's RT). */
	uint32_t failover_ms;
	/* Default router source (pcp_io_default_router); NULL = /proc/net/route. */
	const char *route_file;
	uint32_t router_poll_ms; /* 0 = PCP_IO_ROUTER_POLL_MS */
	pcp_io_server_cb *on_server; /* NULL = not told */
	void *server_arg;
	/* Pacing: requests sent and not yet answered (nor PCP_IO_IN_FLIGHT_MS old) at most;
	 * 0 = PCP_IO_MAX_IN_FLIGHT (64: well inside a server's default 208 KiB socket
	 * buffer, and ours), UINT32_MAX = no limit. */
	uint32_t max_in_flight;
};

/* Monotonic milliseconds (CLOCK_MONOTONIC): the "now" to pass to pcp_flow_* calls. */
uint64_t pcp_io_now(void);

/*
 * New adapter. Parses the servers, opens and connects a socket to the first one that
 * opens (then the next ...), sets the client's source and server (pcp_client_set_source
 * / pcp_client_set_server), installs its wakeup in the client (pcp_client_set_wakeup,
 * replacing the config's on_wakeup) and arms the timer. n_servers may be 0: the default router
 * is used (none yet is not an error: it is looked for every router_poll_ms).
 * Returns NULL on failure with *err_out (may be NULL) = an errno value for strerror():
 * EINVAL (bad server string, more than PCP_MAX_SERVERS, NULL argument), ENOMEM, or the
 * socket()/connect()/getsockname() errno of the last server tried (e.g. ENETUNREACH).
 * On success *err_out = 0.
 */
struct pcp_io *pcp_io_new(struct event_base *base, struct pcp_client *client, const struct pcp_io_config *cfg,
			  int *err_out);

/*
 * Replace the configured server list at run time without losing mappings. If the server
 * in use is in the new list it stays (nothing is re-sent); otherwise the list's first
 * that opens is used: a new connected socket replaces the old one and
 * pcp_client_set_server() re-sends MAP for the live flows with their nonces. n = 0:
 * the default router. While a watched server file holds servers, it stays in charge
 * and the new list is only stored. Returns 0 or an errno value (as for pcp_io_new); on
 * error the previous list stays.
 */
int pcp_io_set_servers(struct pcp_io *io, const char *const *servers, size_t n);

/*
 * Watch the DHCP hand-over file (docs/pcp.md): a DHCP client hook writes the addresses
 * of DHCPv4 option 158 / DHCPv6 option 86 (RFC 7291) there, one per line, preferred
 * first (pcp_servers_parse). Read now and whenever its identity (inode, size, mtime,
 * ctime) changes, polled every poll_ms (0 = PCP_IO_WATCH_POLL_MS). A file with at least
 * one valid server replaces the configured list (as pcp_io_set_servers: the server in
 * use is kept if listed, else the first; flows re-sent with their nonces); bad lines
 * are logged and skipped; a file with only bad lines, over PCP_IO_SERVERS_FILE_MAX
 * bytes or unreadable is ignored (the last good list stays); an empty or missing file
 * hands back to the configured list, else the default router. path is copied; NULL
 * stops watching (and hands back). Returns 0, EINVAL or ENOMEM.
 */
int pcp_io_watch_servers_file(struct pcp_io *io, const char *path, uint32_t poll_ms);

/* The server in use; false when there is none yet. */
bool pcp_io_get_server(const struct pcp_io *io, struct pcp_server *out);

/*
 * Reopen the socket towards the current server (call when the WAN address or routes
 * changed: a connected socket keeps the source address it had). If the source address
 * changed, the client gets the new one and every live flow is re-sent at once
 * (pcp_client_refresh_all). Without configured servers the default router is re-read
 * first (a new router is switched to). Returns 0, ENOENT when there is no server, or
 * an errno value (the old socket is kept).
 */
int pcp_io_reconnect(struct pcp_io *io);

/* What the adapter dropped on the ANNOUNCE sockets (tests, diagnostics). */
struct pcp_io_stats {
	uint64_t announce_wrong_if;      /* arrived on another interface than the WAN's */
	uint64_t announce_rate_limited;  /* within announce_gap_ms of a re-send it caused */
	uint64_t announce_resends;       /* ANNOUNCEs that made the engine re-send everything */
	unsigned wan_ifindex;            /* the interface ANNOUNCE is taken from; 0 = none */
};
void pcp_io_get_stats(const struct pcp_io *io, struct pcp_io_stats *out);

/* pcp_server_parse() on a NUL-terminated string (for config checks). */
bool pcp_io_parse_server(const char *text, struct in6_addr *addr, uint16_t *port);

/*
 * The IPv4 default router, for "no server configured" (RFC 6887 §8.1: the default
 * router is the PCP server to try). Reads route_file (NULL = "/proc/net/route"): the
 * default route (destination 0, mask 0, RTF_UP | RTF_GATEWAY) with the lowest metric.
 * Returns false when there is none or the file cannot be read. IPv6 default routers
 * are link-local and need an interface scope, which this address type cannot carry.
 */
bool pcp_io_default_router(const char *route_file, struct in6_addr *out);

/* Close sockets and events and remove the wakeup from the client (set to NULL); the
 * client is not freed; a datagram still waiting for the socket is dropped (the engine
 * counted it as sent and will retransmit it). NULL is a no-op. Not from inside the
 * engine's event callback (pcp_io_set_servers is fine there). */
void pcp_io_free(struct pcp_io *io);

#endif
