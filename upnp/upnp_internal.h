/*
 * upnp_internal.h - contracts between the parts of upnp/ (not installed, not public).
 *
 *   http.c   HTTP/1.1 server on libevent + http-parser (GET, POST, SUBSCRIBE, UNSUBSCRIBE),
 *            and a tiny HTTP client for GENA NOTIFY.
 *   ssdp.c   SSDP responder/advertiser (UDA 1.1) on the LAN interfaces.
 *   gena.c   GENA subscriptions and event NOTIFY.
 *   desc.c   root device description and SCPDs generated from const tables.
 *   soap.c   SOAP envelope parsing (expat, namespace-aware), argument checks, faults.
 *   actions.c  the const dispatch table: action name -> enum upnp_action, args, results.
 *   server.c glue: upnp_server_new/free, routing of HTTP paths, struct upnp_call.
 */
#ifndef IWFD_UPNP_INTERNAL_H
#define IWFD_UPNP_INTERNAL_H

#include "upnp.h"

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>

struct event_base;

/* Logging helper used inside upnp/: forwards to cfg->log if set. */
struct upnp_logger {
	void (*log)(void *arg, int level, const char *fmt, va_list ap);
	void *arg;
};
void upnp_log(const struct upnp_logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ LAN interfaces */

/* One LAN interface: HTTP and SSDP answer only what arrives on it from its own subnets. */
#define UPNP_LAN_MAX_NETS 8
struct upnp_lan_if {
	char name[IF_NAMESIZE];
	unsigned index;
	struct in_addr addr;       /* its first IPv4 address */
	struct { struct in_addr addr, mask; } nets[UPNP_LAN_MAX_NETS];
	size_t n_nets;
	/* IPv6 (UDA 1.1 Annex A; used only when upnp_config.ipv6 is on): the interface's
	 * global/ULA addresses with their prefix lengths, and its link-local address. */
	struct { struct in6_addr addr; unsigned plen; } nets6[UPNP_LAN_MAX_NETS];
	size_t n_nets6;
	struct in6_addr ll6;
	bool has_ll6;
};
/* Fill lif from the interface's current addresses (ssdp.c). UPNP_ERR_IFACE when it does
 * not exist or has no IPv4 address. */
enum upnp_err upnp_lan_if_lookup(struct upnp_lan_if *lif, const char *name);
/* Is a on one of lif's subnets? */
bool upnp_lan_if_has(const struct upnp_lan_if *lif, struct in_addr a);
/* Is IPv6 peer a on-link for lif: link-local (fe80::/10) with lif's index as scope, or
 * inside one of lif's global/ULA prefixes? Multicast, unspecified, loopback and
 * IPv4-mapped addresses never are. */
bool upnp_lan_if_has6(const struct upnp_lan_if *lif, const struct in6_addr *a, uint32_t scope_id);
/* Our IPv6 address on lif to name in a URL for peer (RFC 6874 §1: no zone in what we send;
 * the zone is the receiver's): the global/ULA address whose prefix holds the peer; for any
 * other peer (link-local ones included) and for peer NULL (a multicast to ff02::c) our first
 * global address, else our first ULA one, else the link-local one (see ssdp.c for why).
 * false when lif has no IPv6 address at all. */
bool upnp_lan_if_addr6_for(const struct upnp_lan_if *lif, const struct in6_addr *peer,
			   struct in6_addr *out);
/* Re-read lif's IPv6 addresses: LAN prefixes change while we run (DHCPv6-PD after a WAN
 * reconnect, SLAAC). Callers do it when an IPv6 peer is not on-link (at most once a second)
 * and SSDP before each round of announcements. */
void upnp_lan_if_refresh6(struct upnp_lan_if *lif);
/* "http://HOST:PORT/path" of url with its host replaced by "[addr]" (len bytes written into
 * out, NUL-terminated); false when url has no "http://host" or out is too small. */
bool upnp_url_with_v6_host(const char *url, const struct in6_addr *addr, char *out, size_t cap);

/* ------------------------------------------------------------------ http.c */

#define HTTP_MAX_HEADERS 32

struct http_header {
	const char *name;  /* as received; compare case-insensitively */
	const char *value; /* leading/trailing white space trimmed */
};

/* One parsed request; all pointers are valid until the exchange is answered. */
struct http_request {
	const char *method;        /* "GET", "POST", "SUBSCRIBE", "UNSUBSCRIBE", ... */
	const char *path;          /* request target, e.g. "/ctl/IPConn" */
	unsigned http_major, http_minor;
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t n_headers;
	const char *body;          /* NUL-terminated copy; body_len excludes the NUL */
	size_t body_len;
	struct sockaddr_storage peer;  /* the LAN client */
	struct sockaddr_storage local; /* our address the request came in on */
};
/* Value of header `name` (case-insensitive) or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/* The current time as an RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), for the
 * Date header of HTTP responses and SSDP replies; cap >= 30. */
void http_date(char *buf, size_t cap);

struct http_server;
struct http_exchange; /* one request awaiting its response; owned by http.c */

/* Called once per complete, well-formed request (malformed ones are answered 400/413/...
 * by http.c itself). The handler must answer with http_exchange_respond exactly once,
 * now or later. Methods passed on: GET, POST, SUBSCRIBE, UNSUBSCRIBE; HEAD arrives as
 * "GET" (http.c then omits the body); every other method gets 501 from http.c. */
typedef void http_handler(void *arg, struct http_exchange *x, const struct http_request *req);

struct http_server_config {
	const char *bind_addr;  /* IPv4 text; NULL = any */
	uint16_t port;          /* 0 = ephemeral */
	/* LAN only, by construction: one listening socket per interface named here, bound to
	 * it (SO_BINDTODEVICE), so a connection arriving on any other interface (the WAN) finds
	 * no listener, whatever address it was sent to; and a peer not on one of that
	 * interface's subnets is closed at once without an answer. None named: one socket on
	 * bind_addr, any peer (tests on loopback). */
	const char *const *lan_ifnames; size_t n_lan_ifnames;
	/* With LAN interfaces: also one IPv6 listener per interface on the same port (IPV6_V6ONLY,
	 * SO_BINDTODEVICE), taking only on-link peers (upnp_lan_if_has6). Every limit below
	 * counts IPv4 and IPv6 connections together; a host is its full address. */
	bool ipv6;
	size_t max_connections; /* default 64; beyond: 503 then close */
	size_t max_header_bytes;/* default 8192 -> 431/400 */
	size_t max_body_bytes;  /* default 65536 -> 413 */
	uint32_t idle_timeout_ms; /* default 30000 (also bounds slow clients / slowloris) */
	/* Bytes all connections together may hold (requests, responses not yet sent, input
	 * not yet parsed); default 1 MiB. One host may hold a quarter of it (at least one
	 * largest request); a connection stops parsing while 16 KiB of its answers are unsent.
	 * Over a bound a connection is not read until memory is released (docs/robustness.md
	 * "Memory bound"). */
	size_t max_held_bytes;
	const char *server_header; /* "Linux/x UPnP/1.1 iwfd/0.1" */
	http_handler *handler; void *handler_arg;
	struct upnp_logger logger;
};
struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg);
void http_server_free(struct http_server *s);
uint16_t http_server_port(const struct http_server *s);
/* Serve an already connected stream socket as if it had been accepted (tests, fuzzers;
 * also usable for socket activation). Takes ownership of fd, also on failure (closed).
 * Counts against max_connections (over it: 503 and close). Returns 0 or -1. */
int http_server_adopt(struct http_server *s, int fd);
/* Open connections right now (tests). */
size_t http_server_connections(const struct http_server *s);
/* Bytes the connections hold right now (tests, logs). */
size_t http_server_held_bytes(const struct http_server *s);
/* Copy the http_* counters into out (the other fields are left alone). */
void http_server_stats(const struct http_server *s, struct upnp_stats *out);

/* Content type of every XML body we send (UDA 1.1 §2.1, §3.2.1). */
#define HTTP_CT_XML "text/xml; charset=\"utf-8\""

/* Send the response: status code, extra headers (NULL-terminated name/value pairs, may be
 * NULL), body (copied). http.c adds Date, Server, Content-Length, Connection. If the client
 * disconnected meanwhile, the response is dropped silently. x is invalid afterwards. */
void http_exchange_respond(struct http_exchange *x, int status, const char *const *headers,
			   const char *content_type, const char *body, size_t body_len);

/* Fire-and-forget HTTP/1.1 request (GENA NOTIFY): connect to addr, send, read the status
 * line, call done(arg, status) with status = 0 on network failure/timeout. */
/* Details: host_path is the URL without "http://", "HOST[:PORT]/path"; the request line
 * carries "/path" and a HOST header carries "HOST[:PORT]". http.c adds CONTENT-LENGTH and
 * "Connection: close". Returns the request when started (done is then called exactly once,
 * never from inside this call, unless it is cancelled first), NULL on immediate failure
 * (done is not called). The handle is owned by http.c and valid until done is called. */
struct http_client;
typedef void http_client_done(void *arg, int status);
struct http_client *http_client_send(struct event_base *base, const struct sockaddr *addr,
				     socklen_t addrlen, const char *method, const char *host_path,
				     const char *const *headers, const char *body,
				     size_t body_len, uint32_t timeout_ms,
				     http_client_done *done, void *arg);
/* Abandon a request still in flight (shutdown): everything freed, done is not called.
 * NULL: no-op. */
void http_client_cancel(struct http_client *cl);

/* ------------------------------------------------------------------ ssdp.c */

struct ssdp;
struct ssdp_config {
	const char *const *ifnames; size_t n_ifnames; /* LAN interfaces only */
	const char *location;     /* root description URL */
	const char *server_header;
	const char *const *usns_nt; /* NULL-terminated list of NT values we advertise:
				       "upnp:rootdevice", "uuid:...", device/service types */
	const char *root_uuid;    /* "uuid:..." for USN building */
	uint32_t max_age;         /* default 1800 */
	uint32_t boot_id, config_id;
	int igd_version;          /* lower versions of our types are answered too */
	struct upnp_logger logger;
	uint16_t port;            /* UDP port; 0 = 1900 (tests use others) */
	bool location_per_iface;  /* rewrite LOCATION's host per interface (see below); only
				     right when the HTTP server listens on every address */
	bool ipv6;                /* also SSDP over IPv6 on ff02::c (UDA 1.1 Annex A): LOCATION
				     is `location` with its host replaced by a bracketed
				     address of the interface (upnp_lan_if_addr6_for) */
	bool start_off;           /* start stopped (as ssdp_set_enabled(false), no byebye) */
};
/* usns_nt entries: "upnp:rootdevice" (USN root_uuid::upnp:rootdevice), "uuid:X" (its own
 * USN), "uuid:X::urn:...:type:v" (NT is the part after "::", USN the whole entry: use it
 * for types of embedded devices and their services), or a bare type "urn:...:v" (USN
 * root_uuid::type). Versioned types also answer searches for lower versions, with the
 * requested version echoed in ST and USN (UDA 1.1 §1.3.2); igd_version is not needed for
 * that. With location_per_iface and several LAN interfaces, a LOCATION whose host is one of
 * their addresses is rewritten to the address of the interface the message leaves on (or
 * the search arrived on). Without it LOCATION is sent as configured, which a router also
 * serves to its other LAN segments (weak host model). */
struct ssdp *ssdp_new(struct event_base *base, const struct ssdp_config *cfg, enum upnp_err *err);
void ssdp_free(struct ssdp *s); /* sends ssdp:byebye */
/* Stop (ssdp:byebye, no more alive, searches ignored) or start again (ssdp:alive). */
void ssdp_set_enabled(struct ssdp *s, bool on);
/* Copy the ssdp_* counters into out (the other fields are left alone). NULL: none. */
void ssdp_stats(const struct ssdp *s, struct upnp_stats *out);

/* Pure M-SEARCH parsing, for tests and fuzzing. Returns 0 and fills st (the ST value,
 * NUL-terminated, truncated to cap) and *mx when buf is a valid M-SEARCH. */
int ssdp_parse_msearch(const char *buf, size_t len, char *st, size_t cap, unsigned *mx);
/* *mx when the M-SEARCH has no MX header (valid for unicast searches only). A valid
 * M-SEARCH here has the start line "M-SEARCH * HTTP/1.1", one non-empty ST and
 * MAN: "ssdp:discover" in quotes; header names in any case, any white space. */
#define SSDP_MX_NONE UINT_MAX

/* ------------------------------------------------------------------ gena.c */

struct gena;
struct gena_config {
	size_t max_subscriptions; /* default 32 */
	uint32_t max_timeout_s;   /* TIMEOUT cap, default 1800 */
	struct upnp_logger logger;
};
struct gena *gena_new(struct event_base *base, const struct gena_config *cfg);
void gena_free(struct gena *g);
/* Handle SUBSCRIBE / UNSUBSCRIBE for the service whose event URL was hit; answers x.
 * The callback must point at the subscribing host itself (CVE-2020-12695). After a new
 * subscription, gena sends the initial NOTIFY with every evented variable of `service`. */
void gena_handle(struct gena *g, struct http_exchange *x, const struct http_request *req,
		 int service /* enum upnp_service */);
/* Set evented variables of a service: names/values NULL-terminated arrays. Variables
 * whose value changed are sent to every subscriber of that service (SEQ increasing). */
void gena_set_vars(struct gena *g, int service, const char *const *names,
		   const char *const *values);
/* Copy the gena_* counters into out (the other fields are left alone). */
void gena_stats(const struct gena *g, struct upnp_stats *out);

#endif
