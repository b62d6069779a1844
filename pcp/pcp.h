/*
 * pcp.h - Port Control Protocol (RFC 6887, version 2) client library.
 *
 * Three layers, all in this one header:
 *   1. a pure codec (pcp_msg_encode / pcp_msg_decode): bytes <-> struct pcp_msg;
 *   2. a sans-I/O client engine (struct pcp_client): the caller feeds received packets
 *      with pcp_client_input(), pulls packets to send with pcp_client_output(), and
 *      arms one timer at pcp_client_next_deadline();
 *   3. (separate library, pcp/pcp_event.h) a thin libevent adapter owning the sockets.
 *
 * pcp/ knows nothing of UPnP. It needs only libc. Times are monotonic milliseconds
 * supplied by the caller ("now"); the engine never reads a clock itself.
 * Addresses are always struct in6_addr; IPv4 is carried as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, RFC 6887 §5).
 *
 * Ownership: every pointer argument is borrowed for the duration of the call unless
 * said otherwise.
 */
#ifndef IWFD_PCP_H
#define IWFD_PCP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCP_VERSION 2
#define PCP_SERVER_PORT 5351 /* RFC 6887 §19.1 */
#define PCP_CLIENT_PORT 5350 /* ANNOUNCE is sent to this port, RFC 6887 §14.1.3 */
#define PCP_MAX_PACKET 1100  /* RFC 6887 §7 */
#define PCP_NONCE_LEN 12
#define PCP_MAX_FILTERS 8    /* FILTER options in one message (codec) */
#define PCP_FLOW_MAX_FILTERS 1 /* FILTER options a flow carries (pcp_flow_map) */
#define PCP_DESCRIPTION_MAX 255
#define PCP_HEADER_LEN 24    /* request and response header, RFC 6887 §7.1, §7.2 */
#define PCP_MAP_LEN 36       /* MAP opcode-specific data, RFC 6887 §11.1 */
#define PCP_PEER_LEN 56      /* PEER opcode-specific data, RFC 6887 §12.1 */
#define PCP_IRT_MS 3000      /* RFC 6887 §8.1.1 */
#define PCP_MRT_MS 1024000   /* RFC 6887 §8.1.1 */
#define PCP_DELETE_DEADLINE_MS 10000 /* pcp_flow_delete() default when deadline_ms is 0 */
#define PCP_DELETE_NO_DEADLINE UINT32_MAX /* pcp_flow_delete(): retransmit until answered */
#define PCP_ANNOUNCE_SPREAD_MS 5000 /* RFC 6887 §14.1.3: re-send within 0..5 s of an ANNOUNCE */
#define PCP_UNSUPP_VERSION_RETRY_MS 1800000 /* re-send 30 min after UNSUPP_VERSION (§9, docs/pcp.md) */

/* ---------------------------------------------------------------- constants */

enum pcp_opcode {
	PCP_OPCODE_ANNOUNCE = 0,
	PCP_OPCODE_MAP = 1,
	PCP_OPCODE_PEER = 2,
};

/* RFC 6887 §7.4 result codes. */
enum pcp_result {
	PCP_RESULT_SUCCESS = 0,
	PCP_RESULT_UNSUPP_VERSION = 1,
	PCP_RESULT_NOT_AUTHORIZED = 2,
	PCP_RESULT_MALFORMED_REQUEST = 3,
	PCP_RESULT_UNSUPP_OPCODE = 4,
	PCP_RESULT_UNSUPP_OPTION = 5,
	PCP_RESULT_MALFORMED_OPTION = 6,
	PCP_RESULT_NETWORK_FAILURE = 7,
	PCP_RESULT_NO_RESOURCES = 8,
	PCP_RESULT_UNSUPP_PROTOCOL = 9,
	PCP_RESULT_USER_EX_QUOTA = 10,
	PCP_RESULT_CANNOT_PROVIDE_EXTERNAL = 11,
	PCP_RESULT_ADDRESS_MISMATCH = 12,
	PCP_RESULT_EXCESSIVE_REMOTE_PEERS = 13,
	PCP_RESULT_MAX = 13,
};

/* Option codes, RFC 6887 §13 and RFC 7220. */
enum pcp_option {
	PCP_OPTION_THIRD_PARTY = 1,
	PCP_OPTION_PREFER_FAILURE = 2,
	PCP_OPTION_FILTER = 3,
	PCP_OPTION_DESCRIPTION = 128,
};

/* Status of library calls. 0 = OK; every value names one reason. */
enum pcp_err {
	PCP_OK = 0,
	PCP_ERR_SHORT,        /* packet or option shorter than its format */
	PCP_ERR_LONG,         /* packet longer than 1100 bytes */
	PCP_ERR_ALIGN,        /* length not a multiple of 4 */
	PCP_ERR_VERSION,      /* version field is not 2 */
	PCP_ERR_OPCODE,       /* unknown opcode */
	PCP_ERR_RBIT,         /* R bit not what was expected (request vs response) */
	PCP_ERR_RESULT,       /* result code out of range */
	PCP_ERR_OPTION,       /* malformed option (length, value, not allowed for opcode) */
	PCP_ERR_OPTION_UNKNOWN, /* unknown mandatory option (code < 128) */
	PCP_ERR_BUFFER,       /* output buffer too small */
	PCP_ERR_INVAL,        /* invalid argument */
	PCP_ERR_UNSOLICITED,  /* well-formed response that answers no outstanding request */
	PCP_ERR_WRONG_SOURCE, /* response not from the server's address and port */
	/* server addresses as text (pcp_server_parse, pcp_servers_parse): */
	PCP_ERR_SYNTAX,       /* characters outside the address syntax, missing ']', line too long */
	PCP_ERR_ADDRESS,      /* not an IPv4/IPv6 address, or one no server can have (unspecified,
			       * multicast, broadcast, link-local without a scope) */
	PCP_ERR_PORT,         /* port not a decimal 1..65535 */
	PCP_ERR_TOO_MANY,     /* more than the caller's capacity (PCP_MAX_SERVERS) */
	PCP_ERR_DUPLICATE,    /* the same address and port twice */
	PCP_ERR_NOMEM,
};

/* Name of a result code ("SUCCESS", "NOT_AUTHORIZED", ...); "UNKNOWN" otherwise. */
const char *pcp_result_name(unsigned result);
/* Name of an enum pcp_err value. */
const char *pcp_err_name(enum pcp_err err);
/* True for the result codes RFC 6887 §7.4 calls short-lifetime errors (NETWORK_FAILURE,
 * NO_RESOURCES, USER_EX_QUOTA): the engine retries these after the error's Lifetime.
 * Everything else, CANNOT_PROVIDE_EXTERNAL included (its lifetime "depends on the
 * reason"; with PREFER_FAILURE the port is gone), is reported and never retried
 * automatically - except that a renewal refused CANNOT_PROVIDE_EXTERNAL for the address it
 * held is asked once more, at once, for the port alone (a renumbered carrier). */
bool pcp_result_is_short_lived(unsigned result);

/* ---------------------------------------------------------------- codec */

struct pcp_filter {
	uint8_t prefix_len; /* 0..128, IPv4-mapped counts the 96 prefix bits */
	uint16_t port;      /* 0 = all ports */
	struct in6_addr addr;
};

/* One decoded (or to-be-encoded) PCP message. Zero-initialise before filling. */
struct pcp_msg {
	uint8_t version;   /* PCP_VERSION when encoding */
	bool response;     /* R bit */
	uint8_t opcode;    /* enum pcp_opcode */
	uint8_t result;    /* responses only */
	uint32_t lifetime; /* requested (request) or granted / error lifetime (response) */
	uint32_t epoch;    /* responses only: server Epoch time, RFC 6887 §8.5 */
	struct in6_addr client_addr; /* requests only: PCP client's IP address */

	/* MAP and PEER opcode-specific data (RFC 6887 §11.1, §12.1). */
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol;          /* IANA protocol number; 0 = all */
	uint16_t internal_port;
	uint16_t external_port;    /* suggested (request) / assigned (response) */
	struct in6_addr external_addr;
	uint16_t remote_port;      /* PEER only */
	struct in6_addr remote_addr; /* PEER only */

	/* Options (RFC 6887 §13, RFC 7220). */
	bool has_third_party;
	struct in6_addr third_party;
	bool prefer_failure;
	uint8_t n_filters;
	struct pcp_filter filters[PCP_MAX_FILTERS];
	bool has_description;
	char description[PCP_DESCRIPTION_MAX + 1]; /* NUL-terminated */
	uint8_t n_unknown_optional; /* optional options (>=128) skipped while decoding */
};

/*
 * Encode m into buf[0..cap). On PCP_OK *out_len is the packet length (multiple of 4,
 * <= 1100). Encodes requests and responses (the simulator and tests use the latter).
 * version 0 is written as PCP_VERSION; any other value is written as given (so a test
 * server can misbehave). Result codes are written as given. Options not valid for the
 * opcode (RFC 6887 §13: THIRD_PARTY for MAP/PEER, PREFER_FAILURE and FILTER for MAP
 * only; DESCRIPTION for MAP/PEER), opcode > 2 or n_filters > PCP_MAX_FILTERS give
 * PCP_ERR_INVAL; a too small buffer gives PCP_ERR_BUFFER. Option order on the wire:
 * THIRD_PARTY, PREFER_FAILURE, FILTER..., DESCRIPTION.
 */
enum pcp_err pcp_msg_encode(const struct pcp_msg *m, uint8_t *buf, size_t cap, size_t *out_len);

/*
 * Decode buf[0..len) into *m, validating everything that does not depend on client
 * state: length (>= 24, <= 1100, multiple of 4), version, opcode, result range, option
 * lengths and codes. Unknown optional options (>=128) are skipped and counted; unknown
 * mandatory ones fail with PCP_ERR_OPTION_UNKNOWN. On failure *m is unspecified.
 * Checks in this order: SHORT (< 24), LONG, ALIGN, VERSION, OPCODE, RESULT (responses),
 * SHORT (opcode data missing), then per option: OPTION when the option overruns the
 * packet, has the wrong length for its code, is repeated when it must not be, is not
 * valid for the opcode, or a FILTER has prefix length > 128 or there are more than
 * PCP_MAX_FILTERS; OPTION_UNKNOWN for an unknown code < 128. DESCRIPTION longer than
 * PCP_DESCRIPTION_MAX is truncated; an optional option not valid for the opcode is
 * skipped like an unknown one. Reserved fields are ignored (RFC 6887 §7). A server's
 * UNSUPP_VERSION answer in another version (or too short for its opcode) is refused
 * here like any other message (VERSION / SHORT): recognise it with
 * pcp_msg_is_unsupp_version (§9).
 */
enum pcp_err pcp_msg_decode(const uint8_t *buf, size_t len, struct pcp_msg *m);

/*
 * RFC 6887 §9: is buf[0..len) a server's UNSUPP_VERSION answer, in whatever version?
 * pcp_msg_decode refuses most of them (VERSION for a version other than 2; SHORT for
 * NAT-PMP's 8 bytes or a bare 24-byte header answering a MAP), yet a version-2-only
 * client must hear them. True when the length is a multiple of 4 and at most 1100, and:
 *   - version 0 (a NAT-PMP server, RFC 6886 §3.5): at least 8 bytes, byte 1 is 0x00,
 *     0x80 or 0x81 (both spellings are seen), bytes 2-3 (a 16-bit result) are 1;
 *   - any other version: at least 24 bytes (the §7.2 header), R bit set, opcode MAP
 *     (the only one we send), result (byte 3) 1.
 * Nothing beyond the first four bytes is interpreted (fields of other versions are not
 * ours to read). *version (may be NULL) = the version the server speaks. Pure.
 */
bool pcp_msg_is_unsupp_version(const uint8_t *buf, size_t len, uint8_t *version);

/* Address helpers. */
void pcp_addr_from_v4(struct in6_addr *out, const struct in_addr *v4);
bool pcp_addr_is_v4(const struct in6_addr *a);
/* Parse "1.2.3.4" or "2001:db8::1" into a (v4 becomes v4-mapped). Returns false on error. */
bool pcp_addr_parse(struct in6_addr *out, const char *text);
/* Format a (v4-mapped as dotted quad). buf must hold INET6_ADDRSTRLEN bytes. */
const char *pcp_addr_format(const struct in6_addr *a, char *buf, size_t cap);

/* ---------------------------------------------------------------- server addresses as text */

#define PCP_MAX_SERVERS 8       /* addresses in one server list (RFC 7488 order) */
#define PCP_SERVER_TEXT_MAX 63  /* longest accepted "[v6]:port" */

struct pcp_server {
	struct in6_addr addr; /* IPv4 as IPv4-mapped */
	uint16_t port;        /* PCP_SERVER_PORT unless given */
};

/*
 * Parse one server: "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address in
 * text[0..len) (no NUL needed; none allowed). No resolver is called. Returns PCP_OK, or
 * SYNTAX (empty, longer than PCP_SERVER_TEXT_MAX, a character other than hex digits, '.',
 * ':', '[' and ']', a missing ']'), ADDRESS (not an address, or ::, 0.0.0.0, multicast,
 * 255.255.255.255, fe80::/10), PORT. *out is written only on PCP_OK.
 */
enum pcp_err pcp_server_parse(const char *text, size_t len, struct pcp_server *out);

/* Told about each line pcp_servers_parse() skipped: 1-based line number and why. */
typedef void pcp_servers_bad_line_cb(void *arg, unsigned line, enum pcp_err why);

/*
 * Parse a server-list file (the DHCP hand-over file, docs/pcp.md): one server per line
 * in pcp_server_parse() syntax, in preference order (RFC 7488); '\n' or "\r\n" line ends;
 * spaces and tabs around an entry ignored; empty lines and lines starting with '#'
 * ignored. A bad line is skipped and reported through bad (may be NULL) with its
 * reason; so are duplicates (DUPLICATE) and entries beyond cap (TOO_MANY). Pure: no
 * I/O, no allocation; text need not be NUL-terminated. Returns the number of servers
 * written to out[0..cap).
 */
size_t pcp_servers_parse(const char *text, size_t len, struct pcp_server *out, size_t cap,
			 pcp_servers_bad_line_cb *bad, void *arg);

/* ---------------------------------------------------------------- client engine */

struct pcp_client;
struct pcp_flow; /* one MAP mapping, with its own nonce; owned by the client */

enum pcp_event_type {
	/* A SUCCESS response for a flow (first answer or a renewal), or a server's unsolicited
	 * update moving it to another address with the same port (RFC 6887 §14.2; renewal =
	 * true; see pcp_client_input). */
	PCP_EVENT_MAPPED,
	/* The flow's request failed: an error result (result != 0), or no answer before the
	 * first-answer deadline / MRC / MRD (timeout = true). The flow stays alive and keeps
	 * its nonce: the caller decides (pcp_flow_delete or pcp_flow_abandon).
	 * If the caller keeps the flow: after a deadline timeout it keeps retransmitting
	 * (§8.1.1) and a late answer gives MAPPED or FAILED again; after a short-lived
	 * error (pcp_result_is_short_lived) it is re-sent after the error Lifetime (at
	 * least IRT) and may give FAILED again; after UNSUPP_VERSION (the server does not
	 * speak version 2, §9: every request outstanding at that server fails at once,
	 * whatever version and format the answer had) it is re-sent after
	 * PCP_UNSUPP_VERSION_RETRY_MS; after another long-lived error it stays idle. */
	PCP_EVENT_FAILED,
	/* A renewal failed for good (error result that is not short-lived, or the server
	 * answered with a different external port/address, or an unsolicited update (§14.2)
	 * moved it to another port (result 0) or ended it (lifetime 0: timeout = true, re-sent
	 * at once), or the mapping expired with
	 * no answer to its renewals or to its re-creation after lost state / refresh /
	 * server change: timeout = true, reported once per grant). The flow stays alive: after a different port it is
	 * mapped to the new one (fields carry it) and keeps renewing; after an error it is
	 * idle (UNSUPP_VERSION: re-sent after PCP_UNSUPP_VERSION_RETRY_MS, as for FAILED);
	 * after expiry it keeps re-sending per §8.1.1 and a late answer gives
	 * MAPPED (renewal = true). */
	PCP_EVENT_RENEW_FAILED,
	/* pcp_flow_delete() finished: confirmed by the server (result = the response's
	 * result code; an error result also ends the delete), or given up after the delete
	 * deadline (timeout = true). The flow is freed right after this event. */
	PCP_EVENT_DELETED,
	/* The server lost its state: the §8.5 Epoch check failed on a response, or on an
	 * ANNOUNCE (§14.1.3: an ANNOUNCE is Epoch-checked like any response; a restarted
	 * server's ANNOUNCE carries a reset Epoch and so fails it). flow is NULL. Before
	 * this event the engine has scheduled a MAP re-send (same nonce, the assigned port
	 * and address as suggestion) for every mapped flow: at once after a response, at a
	 * random point in the next 5 s after an ANNOUNCE (§14.1.3). MAPPED (renewal = true)
	 * or RENEW_FAILED events follow per flow. */
	PCP_EVENT_SERVER_LOST_STATE,
	/* Reachability changed: reachable = true after any valid response, false when a
	 * request got no answer by its deadline. flow is NULL. */
	PCP_EVENT_REACHABILITY,
};

struct pcp_event {
	enum pcp_event_type type;
	struct pcp_flow *flow;  /* borrowed; NULL for server-wide events */
	void *user;             /* the flow's user pointer */
	uint8_t result;         /* PCP result code (FAILED, RENEW_FAILED) */
	bool timeout;           /* no answer in time */
	bool reachable;         /* REACHABILITY */
	uint32_t lifetime;      /* granted lifetime (MAPPED) or error lifetime */
	uint16_t external_port; /* assigned (MAPPED) */
	struct in6_addr external_addr;
	bool renewal;           /* MAPPED: this answered a renewal, not the first request */
};

/* Called synchronously from pcp_client_input / pcp_client_output / pcp_flow_* /
 * pcp_client_set_server. The callback may call any pcp_flow_* / pcp_client_* function
 * except pcp_client_free. A flow deleted or abandoned from inside a callback stays
 * readable (pcp_flow_user, pcp_flow_nonce) until the outermost library call returns;
 * further pcp_flow_* calls on it are no-ops. */
typedef void pcp_event_cb(void *arg, const struct pcp_event *ev);

struct pcp_client_config {
	uint32_t irt_ms;  /* initial retransmission time, default 3000 (§8.1.1) */
	uint32_t mrt_ms;  /* max retransmission time, default 1024000 */
	uint32_t mrc;     /* max retransmission count, 0 = unlimited */
	uint32_t mrd_ms;  /* max retransmission duration, 0 = unlimited */
	/* After an ANNOUNCE (server restart) every mapping is re-sent at a random time within
	 * this window; 0 = PCP_ANNOUNCE_SPREAD_MS (RFC 6887 §14.1.3). An operator of a large
	 * fleet widens it so a restarted server is not flooded (bench/fleet.md). */
	uint32_t announce_spread_ms;
	/* Source of randomness for nonces and RAND jitter; NULL = getrandom(). Tests
	 * pass a deterministic one. Must fill buf[0..len). */
	void (*random)(void *arg, void *buf, size_t len);
	void *random_arg;
	pcp_event_cb *on_event;
	void *event_arg;
	/* "Come and call pcp_client_output": called synchronously (keep it cheap, e.g.
	 * activate an event) when the engine's next deadline becomes earlier than the one
	 * pcp_client_next_deadline() last returned (a new flow is due now, a refresh, a
	 * lost state ...). It is armed by pcp_client_next_deadline() (before the first call:
	 * armed with "no timer") and disarmed by pcp_client_output() and by the wakeup
	 * itself, so it fires at most once between two pcp_client_next_deadline() calls.
	 * Called only when the outermost library call returns, never from inside an event
	 * callback's nesting; it may call any pcp_client_* / pcp_flow_* function.
	 * NULL = not told (the caller polls). pcp_event.h's adapter installs its own with
	 * pcp_client_set_wakeup(). */
	void (*on_wakeup)(void *arg);
	void *wakeup_arg;
};

struct pcp_map_params {
	uint8_t protocol;            /* 6 TCP, 17 UDP */
	struct in6_addr internal_addr; /* the host the mapping is for */
	uint16_t internal_port;
	uint16_t suggested_port;     /* suggested external port, 0 = any */
	struct in6_addr suggested_addr; /* all-zero or ::ffff:0.0.0.0 = no preference */
	uint32_t lifetime;           /* requested lifetime in seconds (> 0) */
	bool prefer_failure;         /* add PREFER_FAILURE (§13.2) */
	bool third_party;            /* add THIRD_PARTY with internal_addr (§13.1) */
	uint8_t n_filters;           /* 0 or 1 (PCP_FLOW_MAX_FILTERS) */
	struct pcp_filter filters[PCP_FLOW_MAX_FILTERS];
	/* PCP_NONCE_LEN bytes (borrowed, copied): the mapping's nonce, made and persisted by
	 * the caller (iwfd's state/ does); NULL = a new random one (§11.1). */
	const uint8_t *nonce;
	uint32_t answer_deadline_ms; /* give up on the first answer after this long (FAILED, timeout); 0 = MRC/MRD only */
};
/* No DESCRIPTION (RFC 7220) on flows: iwfd never sends one (seed 004: the UPnP
 * PortMappingDescription SHOULD NOT be propagated). The codec still encodes and decodes
 * the option (struct pcp_msg). */

/* New client. cfg is copied. Returns NULL on allocation failure. */
struct pcp_client *pcp_client_new(const struct pcp_client_config *cfg);
/* Replace the config's on_wakeup / wakeup_arg (NULL: none), for an adapter that gets an
 * already created client (pcp_io_new does this; pcp_io_free sets NULL). The wakeup is
 * armed with "no timer", so when anything is scheduled cb is called once right away
 * (from inside a library callback: when the outermost call returns). */
void pcp_client_set_wakeup(struct pcp_client *c, void (*cb)(void *arg), void *arg);
/* Free the client and all its flows, sending nothing. NULL is a no-op. */
void pcp_client_free(struct pcp_client *c);

/* The server to talk to (address and UDP port). Changing it re-sends MAP for every
 * live flow to the new server (same nonces; the external port assigned so far is still
 * suggested, the old server's external address no longer), including flows that had
 * failed, restarts pending deletes towards it, and forgets the old server's Epoch
 * (§8.5) and reachability. Setting the same server again does nothing. Until a server is set,
 * due packets are skipped (counted as lost) and timers still run. */
void pcp_client_set_server(struct pcp_client *c, const struct in6_addr *addr, uint16_t port, uint64_t now);
/* The address our requests leave with (PCP client address in the header, §7.1).
 * Only sets it; see pcp_client_refresh_all when it changes under live flows. */
void pcp_client_set_source(struct pcp_client *c, const struct in6_addr *addr);
/* Re-send MAP now for every live flow that is not being deleted (same nonces), as
 * pcp_flow_refresh does for one (e.g. the WAN address changed). */
void pcp_client_refresh_all(struct pcp_client *c, uint64_t now);

/*
 * Start a mapping: queue a MAP request, due at once (on_wakeup tells the caller).
 * Returns the flow (owned by the client, valid until PCP_EVENT_DELETED or
 * pcp_flow_abandon) or NULL on bad params (lifetime 0, protocol 0 with a port, more
 * than PCP_FLOW_MAX_FILTERS filters, a prefix length over 128) or no memory. Success or
 * failure arrives later as an event carrying `user`. Several flows may share a nonce (e.g. a mapping re-added
 * while the delete of its previous incarnation is outstanding): a response goes to the
 * most recently created one it matches.
 */
struct pcp_flow *pcp_flow_map(struct pcp_client *c, const struct pcp_map_params *p, void *user, uint64_t now);

/* Change the lifetime requested at the next renewal (e.g. capped by a UPnP lease).
 * 0 is ignored (a delete is pcp_flow_delete). */
void pcp_flow_set_lifetime(struct pcp_client *c, struct pcp_flow *f, uint32_t lifetime);
/* The mapping is not wanted past end_ms (monotonic ms; 0 = no end, the default): every
 * later request asks for at most the seconds left until then (e.g. a UPnP lease end). */
void pcp_flow_set_end(struct pcp_client *c, struct pcp_flow *f, uint64_t end_ms);
/* Re-send MAP now with the same nonce (e.g. after the caller learnt of lost state). */
void pcp_flow_refresh(struct pcp_client *c, struct pcp_flow *f, uint64_t now);
/* Delete: MAP with lifetime 0 and the flow's nonce, retransmitted until answered or
 * deadline_ms passes (0 = PCP_DELETE_DEADLINE_MS); then PCP_EVENT_DELETED and the flow
 * is freed. The delete carries THIRD_PARTY when the flow does, not PREFER_FAILURE or
 * FILTER. */
void pcp_flow_delete(struct pcp_client *c, struct pcp_flow *f, uint32_t deadline_ms, uint64_t now);
/* Forget the flow at once, sending nothing. */
void pcp_flow_abandon(struct pcp_client *c, struct pcp_flow *f);

const uint8_t *pcp_flow_nonce(const struct pcp_flow *f);
/* Name of the flow's engine state ("requesting", "mapped", "remapping", "failed",
 * "deleting") for logs. */
const char *pcp_flow_state_name(const struct pcp_flow *f);
void *pcp_flow_user(const struct pcp_flow *f);
void pcp_flow_set_user(struct pcp_flow *f, void *user);

/*
 * Feed one received datagram. from/from_port: its source. Returns PCP_OK when it was
 * a valid response that was processed (events may have fired), else the reason it was
 * dropped (it is also counted in the stats). Order: decode errors, RBIT (a request),
 * WRONG_SOURCE (not the server's address and port, or no server set), UNSOLICITED (a
 * PEER response, or a MAP response matching no flow with an outstanding request by
 * nonce, protocol, internal port, and THIRD_PARTY address when present; a SUCCESS with
 * non-zero lifetime does not answer a delete). Then the §8.5 Epoch check. The flow is
 * found through a hash of the nonce (O(1)), then the checks above are applied.
 * RFC 6887 §14.2: a MAP SUCCESS from the server that answers nothing outstanding but
 * matches (nonce, protocol, internal port, THIRD_PARTY) a MAPPED flow with no request
 * outstanding, and brings another external address or port or lifetime 0, is a mapping
 * update (PCP_OK, counted in stats.updates; Epoch-checked like any response): same port ->
 * MAPPED (renewal = true) with the new address and lifetime; another port ->
 * RENEW_FAILED (result 0, the flow holds the new port); lifetime 0 -> RENEW_FAILED
 * (timeout = true) and the flow re-creates the mapping at once (same nonce, the port
 * suggested, no address). Anything else unsolicited is dropped (UNSOLICITED).
 * RFC 6887 §9: a datagram that does not decode but is an UNSUPP_VERSION answer
 * (pcp_msg_is_unsupp_version: another version, NAT-PMP, a bare header) from the server
 * is accepted (PCP_OK; UNSOLICITED when nothing is outstanding): every request
 * outstanding at the server fails (FAILED, RENEW_FAILED or DELETED with result
 * UNSUPP_VERSION; the flows are re-sent after PCP_UNSUPP_VERSION_RETRY_MS). It proves
 * the server alive (pcp_client_last_response) but is not Epoch-checked and does not
 * change reachability. A version-2 UNSUPP_VERSION that decodes is matched by nonce like
 * any error answer and handled the same way for its flow.
 */
enum pcp_err pcp_client_input(struct pcp_client *c, const uint8_t *pkt, size_t len,
			      const struct in6_addr *from, uint16_t from_port, uint64_t now);

/*
 * Run due timers and return the next packet to send to the server, if any: writes it to
 * buf (cap >= PCP_MAX_PACKET) and returns its length; 0 when nothing is to be sent now.
 * Call repeatedly until it returns 0, then pcp_client_next_deadline(). Visits only due
 * flows (a timer heap): draining a burst of n packets costs O(n log n). A flow's packet
 * counts as sent when it is returned here, so pull only what can be sent now (an
 * adapter that cannot send stops pulling; the rest stays due).
 */
size_t pcp_client_output(struct pcp_client *c, uint8_t *buf, size_t cap, uint64_t now);

/* Monotonic ms when pcp_client_output must next be called; UINT64_MAX = no timer. O(1).
 * Also arms the on_wakeup callback against this value. */
uint64_t pcp_client_next_deadline(struct pcp_client *c);

/* Tests and fuzzers: walks every flow, recomputing its next deadline from its timers
 * with the plain formula (no cache), and checks the timer heap (order, back-indices,
 * cached keys) and the nonce hash (every live flow findable, no dead one). Returns
 * false on a broken invariant; else true with *scan = the earliest deadline found,
 * which pcp_client_next_deadline() must equal. O(n). */
bool pcp_client_check(const struct pcp_client *c, uint64_t *scan);

/*
 * Server liveness, the input of RFC 7488 failover (pcp_event.h does it): the monotonic
 * ms of the first request sent to the current server since its last accepted response
 * that is still unanswered, UINT64_MAX when nothing is outstanding; and the time of the
 * last accepted response (UINT64_MAX: none since the server was set). Any accepted
 * response, an error result or ANNOUNCE included, proves the server alive.
 */
uint64_t pcp_client_unanswered_since(const struct pcp_client *c);
uint64_t pcp_client_last_response(const struct pcp_client *c);

struct pcp_client_stats {
	/* sent: packets returned by pcp_client_output; retransmitted: those of them sent
	 * while the flow's previous request was still unanswered; received: every
	 * pcp_client_input call; dropped: those not returning PCP_OK. */
	uint64_t sent, retransmitted, received, dropped;
	uint64_t dropped_by_reason[PCP_ERR_NOMEM + 1];
	uint64_t lost_state_events;
	/* unsolicited MAP responses accepted as mapping updates (RFC 6887 §14.2) */
	uint64_t updates;
	size_t live_flows;
	/* accepted responses (MAP and ANNOUNCE) by result code; results above PCP_RESULT_MAX
	 * are counted in the last slot */
	uint64_t results[PCP_RESULT_MAX + 2];
};
void pcp_client_get_stats(const struct pcp_client *c, struct pcp_client_stats *out);
/* The current server's last accepted Epoch time (RFC 6887 §8.5) and the monotonic ms it
 * was received at; false when no response of this server was accepted yet. */
bool pcp_client_epoch(const struct pcp_client *c, uint32_t *server_time, uint64_t *at);
/* Monotonic ms at which the flow's last grant ends (granted lifetime from the grant),
 * UINT64_MAX when it was never granted. For operators ("PCP lifetime left"). */
uint64_t pcp_flow_expires(const struct pcp_flow *f);

#endif
