/*
 * iwf.h - the UPnP IGD-PCP Interworking Function (seed 004): configuration, the PCP ->
 * UPnP error table, and the daemon core that joins upnp/, pcp/ and state/.
 *
 * Data flow (one call down, one callback up per boundary): upnp/ parses and validates a
 * SOAP action -> iwf applies policy and the local table (718 at once, refresh of the same
 * client's mapping) -> pcp/ sends MAP and retransmits -> one event back -> iwf maps the
 * result through iwf_error_map, commits to state/, saves, pushes evented state ->
 * upnp/ completes the SOAP call exactly once.
 */
#ifndef IWFD_IWF_H
#define IWFD_IWF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <syslog.h>

#include "upnp.h"

struct event_base;

#define IWF_MAX_LAN_IFS 8
#define IWF_MAX_PCP_SERVERS 4
#define IWF_MAX_RULES 32
/* Where the mapping table is kept unless told otherwise (seed 004 §5.4: SHOULD be stored
 * permanently; without it every reboot orphans the carrier's mappings). */
#define IWF_DEFAULT_STATE_FILE "/var/lib/iwfd/state"
/* The LAN HTTP port unless told otherwise: fixed so that a firewall rule can name it;
 * 2869 is the port of the UPnP device host (IANA "icslap", Windows' own IGD), unused by
 * router services (why not 5000, 1900-adjacent or random ports: docs/configuration.md). */
#define IWF_DEFAULT_HTTP_PORT 2869
/* The control socket of iwfctl unless told otherwise (docs/control.md). */
#define IWF_DEFAULT_CONTROL_SOCKET "/run/iwfd/control"

enum iwf_err {
	IWF_OK = 0,
	IWF_ERR_INVAL,   /* invalid configuration value (detail says which) */
	IWF_ERR_IO,      /* configuration file unreadable */
	IWF_ERR_UPNP,    /* LAN side could not start (sockets, interface) */
	IWF_ERR_PCP,     /* WAN side could not start */
	IWF_ERR_NOMEM,
	IWF_ERR_CONTROL, /* the control socket the configuration named could not be made */
};
const char *iwf_err_name(enum iwf_err err);

/* THE log-level vocabulary of every module: syslog priorities (<syslog.h>). pcp/ and upnp/
 * take an int priority in their log callbacks (LOG_ERR .. LOG_DEBUG); iwf/ names them. */
enum iwf_log_level { IWF_LOG_ERROR = LOG_ERR, IWF_LOG_WARN = LOG_WARNING, IWF_LOG_INFO = LOG_INFO, IWF_LOG_DEBUG = LOG_DEBUG };

/* A permission rule as a router administrator writes it (seed 004 §7, miniupnpd-like):
 * allow or deny mapping external ports ext_lo..ext_hi to clients in client/prefix with
 * internal ports int_lo..int_hi. First match wins. */
struct iwf_rule {
	bool allow;
	uint16_t ext_lo, ext_hi;
	uint32_t client;  /* IPv4, host order */
	uint8_t prefix;   /* 0..32 */
	uint16_t int_lo, int_hi;
};

/* Everything the daemon can be told. Defaults: iwf_config_init(). Documented key by key
 * in docs/configuration.md. */
struct iwf_config {
	char lan_ifs[IWF_MAX_LAN_IFS][32];
	size_t n_lan_ifs;
	char lan_addr[64];        /* "" = first IPv4 address of the first LAN interface */
	uint16_t http_port;       /* default IWF_DEFAULT_HTTP_PORT; 0 = ephemeral */
	bool upnp_ipv6;           /* also UPnP over IPv6 on the LAN interfaces (UDA 1.1 Annex A);
				     default false */
	char pcp_servers[IWF_MAX_PCP_SERVERS][80]; /* "ADDR", "ADDR:PORT", "[V6]:PORT" */
	size_t n_pcp_servers;        /* 0 = the IPv4 default router (RFC 6887 §8.1) */
	char pcp_servers_file[256];  /* DHCP hand-over file (RFC 7291 options), "" = none */
	char state_file[256];     /* default IWF_DEFAULT_STATE_FILE; "" = no persistence */
	int igd_version;          /* 1 or 2 */
	bool ppp;                 /* WANPPPConnection:1 instead of WANIPConnection */
	bool foreground;
	enum iwf_log_level log_level;
	char friendly_name[64];
	char user[32];            /* run as this user after start-up; "" = stay (privileges are dropped anyway) */
	char control_socket[108]; /* iwfctl's UNIX socket (default IWF_DEFAULT_CONTROL_SOCKET); "" = none */
	bool control_socket_set;  /* named by the file or --control-socket: not making it is a
				     start-up error (the default path only warns) */
	bool status_page;         /* serve /status and /status.json on the LAN HTTP port */

	/* PCP */
	uint32_t pcp_lifetime;       /* lifetime requested in MAP when the lease is longer, s */
	uint32_t answer_deadline_ms; /* a UPnP call waits at most this long for PCP */
	uint32_t pcp_service_wait_s; /* seed 004 §5.10 PCP_SERVICE_WAIT */
	uint32_t replay_rate;        /* replayed MAP requests per second after start */
	uint32_t announce_spread_s;  /* re-send window after a server's ANNOUNCE (RFC 6887 §14.1.3: 5) */
	bool listen_announce;        /* receive ANNOUNCE on UDP 5350 */

	/* Cascaded NAT (seed 004 §5.6) */
	char nat_mode[16];           /* "none" (default: DS-Lite, §5.5), "nftables", "clat" or "nat64" (IPv6
				      * LAN hosts mapped untranslated onto the NAT64's IPv4 ports) */
	char wan_if[32];             /* WAN interface the router's DNAT applies to */
	uint16_t nat_port_min, nat_port_max; /* router-side ports iwfd may pick */
	/* 464XLAT CPE (nat_mode "clat", or "nat64" with IPv4 LAN hosts behind a CLAT; RFC 6877
	 * §6.3): the CLAT's dedicated IPv6 prefix; a LAN
	 * host's address on the carrier is its IPv4 address embedded in it (RFC 6052 §2.2). */
	struct in6_addr clat_prefix;
	uint8_t clat_prefix_len;     /* 32, 40, 48, 56, 64 or 96; 0 = not set */

	/* Security (seed 004 §7) */
	bool allow_third_party;      /* IGD:1 default security off: map for other hosts */
	uint32_t max_per_host;       /* mappings one control point may hold (static ones aside); 0 = no limit */
	struct iwf_rule rules[IWF_MAX_RULES];
	size_t n_rules;
};

void iwf_config_init(struct iwf_config *cfg);
/* "error", "warn", "info", "debug" -> level; false if unknown. */
bool iwf_log_level_parse(const char *s, enum iwf_log_level *out);
/* Merge the JSON file at path into cfg (keys absent keep their value). On error returns
 * IWF_ERR_IO / IWF_ERR_INVAL with a message in detail. */
enum iwf_err iwf_config_load(struct iwf_config *cfg, const char *path, char *detail, size_t cap);
/* Check cross-field consistency; IWF_ERR_INVAL with detail when something is wrong. */
enum iwf_err iwf_config_check(const struct iwf_config *cfg, char *detail, size_t cap);
/* "none", "nftables", "clat" or "nat64". */
bool iwf_nat_mode_known(const char *mode);
/* Parse "PREFIX/LEN" (an RFC 6052 §2.2 prefix: LEN 32, 40, 48, 56, 64 or 96, no bits set
 * past LEN nor in bits 64-71) into *prefix and *len; false if it is not one. */
bool iwf_clat_prefix_parse(const char *text, struct in6_addr *prefix, uint8_t *len);
/* Parse "allow 1024-65535 192.168.0.0/16 1024-65535" into *rule. */
bool iwf_rule_parse(struct iwf_rule *rule, const char *text);
/* First matching rule decides; no rule matches -> allowed if ext_port >= 1024. */
bool iwf_rules_permit(const struct iwf_rule *rules, size_t n, uint16_t ext_port,
		      uint32_t client, uint16_t int_port);

/* ----------------------------------------------------- PCP result -> UPnP (seed 004 §4.3) */

/* Pseudo result for "no answer from the PCP server" (not a PCP code). */
#define IWF_PCP_NO_ANSWER 256

struct iwf_error_row {
	unsigned pcp_result;  /* PCP result code, or IWF_PCP_NO_ANSWER */
	const char *pcp_name;
	int igd1;             /* UPnP error for IGD:1 */
	int igd2;             /* UPnP error for IGD:2 */
	bool disconnects;     /* also sets ConnectionStatus Disconnected */
};
/* The whole table (seed 004 §4.3, one row per PCP result); *n receives its length. */
const struct iwf_error_row *iwf_error_table(size_t *n);
/* UPnP error for a PCP result under IGD version 1 or 2; 501 for anything unknown. */
int iwf_error_map(unsigned pcp_result, int igd_version);
/* THE place a failed PCP request becomes a UPnP error: the §4.3 row of the result
 * (IWF_PCP_NO_ANSWER for no answer), except that a refused FILTER (UNSUPP_OPTION for a
 * mapping with a RemoteHost) is 726 RemoteHostOnlySupportsWildcard on IGD:1 and 501 on
 * IGD:2: never a wider mapping than asked. A server that grants another port despite
 * PREFER_FAILURE is reported as CANNOT_PROVIDE_EXTERNAL. */
enum upnp_error iwf_error_for(unsigned pcp_result, int igd_version, bool filtered);

/* ----------------------------------------------------- logging */

struct iwf_logger {
	enum iwf_log_level level;
	bool syslog;  /* false: stderr with a timestamp */
	bool journal; /* stderr is the systemd journal: "<N>" priority prefix, no timestamp */
};
void iwf_log(const struct iwf_logger *lg, enum iwf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void iwf_vlog(const struct iwf_logger *lg, enum iwf_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* ----------------------------------------------------- the daemon core */

struct iwf;

/* Start everything on base: load state, start the LAN side (SSDP, HTTP) and the WAN side
 * (PCP), schedule the synchronisation (seed 004 §5.10). cfg is copied; logger borrowed
 * for the life of the iwf. NULL on failure with *err and a message in detail. */
struct iwf *iwf_new(struct event_base *base, const struct iwf_config *cfg,
		    const struct iwf_logger *logger, enum iwf_err *err, char *detail, size_t cap);
/* Save state, send ssdp:byebye, free. NULL is a no-op. */
void iwf_free(struct iwf *w);
/* Root description URL, valid while w lives. */
const char *iwf_root_url(const struct iwf *w);
/* Replace the permission rules (SIGHUP reload). */
void iwf_set_rules(struct iwf *w, const struct iwf_rule *rules, size_t n);
/* Apply what may change without a restart from a freshly loaded cfg: the permission rules,
 * security.allow_third_party, the log level (of the core; the logger is the caller's) and the
 * PCP servers (pcp_servers; the server in use stays if listed, else mappings move with their
 * nonces). A one-line summary in msg. 0, or -1 with the reason in msg (nothing changed). */
int iwf_reload(struct iwf *w, const struct iwf_config *cfg, char *msg, size_t cap);
/* What the control socket's "reload" calls (main.c: the same as SIGHUP): 0 with a message
 * in msg, or -1 with the reason. */
void iwf_set_reload(struct iwf *w, int (*reload)(void *arg, char *msg, size_t cap), void *arg);
/* Give the control socket (and its directory when iwfd made it) to uid/gid before the
 * privileges are dropped (--user). 0, or -1 with detail. */
int iwf_control_give(struct iwf *w, unsigned uid, unsigned gid, char *detail, size_t cap);

#endif
