/*
 * upnp.h - UPnP Internet Gateway Device server for the LAN: SSDP, HTTP, descriptions,
 * SOAP control and GENA eventing, IGD:1 and IGD:2.
 *
 * upnp/ knows nothing of PCP. It validates syntax and dispatches each action through one
 * table to the operations interface (struct upnp_ops) that the application implements.
 * Each call is completed exactly once with upnp_call_reply() or upnp_call_error(),
 * possibly later (after a PCP round trip). Evented state variables are pushed in with
 * upnp_server_set_state(); upnp/ sends GENA NOTIFYs for what changed.
 *
 * Ownership: pointer arguments are borrowed for the duration of the call unless said
 * otherwise.
 */
#ifndef IWFD_UPNP_H
#define IWFD_UPNP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

enum upnp_err {
	UPNP_OK = 0,
	UPNP_ERR_INVAL,  /* bad configuration value */
	UPNP_ERR_SOCKET, /* socket/bind/multicast join failed (errno kept) */
	UPNP_ERR_IFACE,  /* LAN interface not found or has no IPv4 address */
	UPNP_ERR_NOMEM,
};
const char *upnp_err_name(enum upnp_err err);

/* UPnP error codes an action answers with (UDA 1.1 §3.2.2; WANIPConnection:1/2 and
 * WANPPPConnection:1, seed 000 §2.4; the descriptions are upnp/errors.c's table). */
enum upnp_error {
	UPNP_E_INVALID_ACTION = 401,
	UPNP_E_INVALID_ARGS = 402,
	UPNP_E_ACTION_FAILED = 501,
	UPNP_E_ARGUMENT_VALUE_INVALID = 600,
	UPNP_E_NOT_AUTHORIZED = 606,
	UPNP_E_ARRAY_INDEX_INVALID = 713,        /* SpecifiedArrayIndexInvalid */
	UPNP_E_NO_SUCH_ENTRY = 714,              /* NoSuchEntryInArray */
	UPNP_E_WILDCARD_SRC_IP = 715,            /* WildCardNotPermittedInSrcIP */
	UPNP_E_WILDCARD_EXT_PORT = 716,          /* WildCardNotPermittedInExtPort */
	UPNP_E_CONFLICT = 718,                   /* ConflictInMappingEntry */
	UPNP_E_SAME_PORT_REQUIRED = 724,         /* SamePortValuesRequired */
	UPNP_E_ONLY_PERMANENT_LEASES = 725,      /* OnlyPermanentLeasesSupported */
	UPNP_E_REMOTE_HOST_WILDCARD_ONLY = 726,  /* RemoteHostOnlySupportsWildcard */
	UPNP_E_EXT_PORT_WILDCARD_ONLY = 727,     /* ExternalPortOnlySupportsWildcard */
	UPNP_E_NO_PORT_MAPS_AVAILABLE = 728,     /* NoPortMapsAvailable (IGD:2) */
	UPNP_E_CONFLICT_OTHER_MECHANISMS = 729,  /* ConflictWithOtherMechanisms (IGD:2) */
	UPNP_E_PORT_MAPPING_NOT_FOUND = 730,     /* PortMappingNotFound (IGD:2) */
	UPNP_E_READ_ONLY = 731,                  /* ReadOnly (IGD:2) */
	UPNP_E_WILDCARD_INT_PORT = 732,          /* WildCardNotPermittedInIntPort (IGD:2) */
	UPNP_E_INCONSISTENT_PARAMETERS = 733,    /* InconsistentParameters (IGD:2) */
};

/* Services we host. */
enum upnp_service {
	UPNP_SVC_WANIPCONN,   /* WANIPConnection:1 or :2 */
	UPNP_SVC_WANPPPCONN,  /* WANPPPConnection:1 */
	UPNP_SVC_WANCOMMONIFC, /* WANCommonInterfaceConfig:1 */
	UPNP_SVC_L3FWD,       /* Layer3Forwarding:1 */
};

/* Every action of every hosted service. The dispatch table in upnp/ maps the SOAP name
 * of each to one of these, with its argument and result lists. */
enum upnp_action {
	/* WANIPConnection / WANPPPConnection */
	UPNP_ACT_SET_CONNECTION_TYPE,
	UPNP_ACT_GET_CONNECTION_TYPE_INFO,
	UPNP_ACT_REQUEST_CONNECTION,
	UPNP_ACT_REQUEST_TERMINATION,
	UPNP_ACT_FORCE_TERMINATION,
	UPNP_ACT_SET_AUTO_DISCONNECT_TIME,
	UPNP_ACT_SET_IDLE_DISCONNECT_TIME,
	UPNP_ACT_SET_WARN_DISCONNECT_DELAY,
	UPNP_ACT_GET_STATUS_INFO,
	UPNP_ACT_GET_AUTO_DISCONNECT_TIME,
	UPNP_ACT_GET_IDLE_DISCONNECT_TIME,
	UPNP_ACT_GET_WARN_DISCONNECT_DELAY,
	UPNP_ACT_GET_NAT_RSIP_STATUS,
	UPNP_ACT_GET_GENERIC_PORT_MAPPING_ENTRY,
	UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY,
	UPNP_ACT_ADD_PORT_MAPPING,
	UPNP_ACT_DELETE_PORT_MAPPING,
	UPNP_ACT_GET_EXTERNAL_IP_ADDRESS,
	UPNP_ACT_DELETE_PORT_MAPPING_RANGE,  /* IGD:2 */
	UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS,  /* IGD:2 */
	UPNP_ACT_ADD_ANY_PORT_MAPPING,       /* IGD:2 */
	/* WANPPPConnection:1 only */
	UPNP_ACT_GET_LINK_LAYER_MAX_BIT_RATES,
	UPNP_ACT_GET_PPP_ENCRYPTION_PROTOCOL,
	UPNP_ACT_GET_PPP_COMPRESSION_PROTOCOL,
	UPNP_ACT_GET_PPP_AUTHENTICATION_PROTOCOL,
	UPNP_ACT_GET_USER_NAME,
	UPNP_ACT_GET_PASSWORD,
	UPNP_ACT_CONFIGURE_CONNECTION,
	/* WANCommonInterfaceConfig:1 */
	UPNP_ACT_GET_COMMON_LINK_PROPERTIES,
	UPNP_ACT_GET_TOTAL_BYTES_SENT,
	UPNP_ACT_GET_TOTAL_BYTES_RECEIVED,
	UPNP_ACT_GET_TOTAL_PACKETS_SENT,
	UPNP_ACT_GET_TOTAL_PACKETS_RECEIVED,
	UPNP_ACT_GET_ENABLED_FOR_INTERNET,
	UPNP_ACT_SET_ENABLED_FOR_INTERNET,
	UPNP_ACT_GET_MAXIMUM_ACTIVE_CONNECTIONS,
	UPNP_ACT_GET_ACTIVE_CONNECTION,
	/* Layer3Forwarding:1 */
	UPNP_ACT_GET_DEFAULT_CONNECTION_SERVICE,
	UPNP_ACT_SET_DEFAULT_CONNECTION_SERVICE,
	UPNP_ACT__COUNT
};
/* SOAP name of an action ("AddPortMapping"). */
const char *upnp_action_name(enum upnp_action a);

enum upnp_proto { UPNP_PROTO_TCP = 6, UPNP_PROTO_UDP = 17 };

#define UPNP_HOST_MAX 255      /* RemoteHost / InternalClient / NewRemoteHost text */
#define UPNP_DESC_MAX 255      /* PortMappingDescription */

/* One port mapping as UPnP shows it. */
struct upnp_pm_entry {
	char remote_host[UPNP_HOST_MAX + 1]; /* "" = any */
	uint16_t external_port;
	enum upnp_proto protocol;
	uint16_t internal_port;
	char internal_client[UPNP_HOST_MAX + 1];
	bool enabled;
	char description[UPNP_DESC_MAX + 1];
	uint32_t lease_duration; /* remaining seconds; 0 = infinite (IGD:1) */
};

/* Arguments of an incoming action, already type-checked. Only the fields of the action's
 * argument list are meaningful; the rest are zero. */
struct upnp_args {
	enum upnp_service service;
	uint8_t version;          /* version of the service type the control point addressed (the
				     action's namespace, = its SOAPACTION): 1 or 2; a :1 control
				     point may drive a :2 service (UDA: versions are backward
				     compatible). 0 = not known */
	struct upnp_pm_entry pm;  /* NewRemoteHost, NewExternalPort, NewProtocol,
				     NewInternalPort, NewInternalClient, NewEnabled,
				     NewPortMappingDescription, NewLeaseDuration */
	uint16_t index;           /* NewPortMappingIndex */
	uint16_t start_port, end_port; /* NewStartPort, NewEndPort */
	bool manage;              /* NewManage */
	uint16_t number_of_ports; /* NewNumberOfPorts (0 = all) */
	char text[UPNP_HOST_MAX + 1]; /* NewConnectionType, NewDefaultConnectionService,
					 NewUserName ... (single string argument) */
	char text2[UPNP_HOST_MAX + 1]; /* NewPassword (ConfigureConnection's 2nd string) */
	uint32_t number;          /* NewAutoDisconnectTime, NewIdleDisconnectTime,
				     NewWarnDisconnectDelay, NewActiveConnectionIndex */
	bool flag;                /* NewEnabledForInternet */
};

/* Output of a successful action. Fill the fields the action returns. */
struct upnp_reply {
	struct upnp_pm_entry pm;    /* Get{Generic,Specific}PortMappingEntry */
	const struct upnp_pm_entry *list; size_t n_list; /* GetListOfPortMappings
						       (borrowed during the call) */
	uint16_t reserved_port;     /* AddAnyPortMapping NewReservedPort */
	const char *external_ip;    /* GetExternalIPAddress ("" allowed) */
	const char *connection_status, *last_connection_error; uint32_t uptime; /* GetStatusInfo */
	const char *connection_type, *possible_connection_types; /* GetConnectionTypeInfo */
	bool rsip_available, nat_enabled; /* GetNATRSIPStatus */
	uint32_t number;            /* Get*DisconnectTime / Delay, counters, max connections */
	const char *text;           /* GetDefaultConnectionService, GetUserName, ...,
				       GetActiveConnection NewActiveConnDeviceContainer */
	const char *text2;          /* GetActiveConnection NewActiveConnectionServiceID */
	bool flag;                  /* GetEnabledForInternet */
	/* GetCommonLinkProperties */
	const char *wan_access_type, *physical_link_status;
	uint32_t up_max_bitrate, down_max_bitrate;
};

struct upnp_call; /* a pending SOAP call; owned by upnp/ */
/* Lifecycle: allocated per valid SOAP request, freed by its upnp_call_reply/_error. A call
 * still pending when the server is freed has its HTTP side answered 501 and stays
 * allocated: the application's later upnp_call_reply/_error only frees it. NULL: no-op.
 * Reply strings left NULL are sent empty, except GetDefaultConnectionService's text and
 * GetActiveConnection's text/text2, which upnp/ then fills with its own device UDN and
 * serviceId (leave them NULL rather than building them). */

/*
 * Complete a call with success. Exactly once per call, either this or upnp_call_error.
 * May be called from inside ops->action or later. If the HTTP client went away in the
 * meantime the answer is discarded. The call is invalid afterwards.
 */
void upnp_call_reply(struct upnp_call *call, const struct upnp_reply *reply);
/* Complete a call with a UPnP error (401, 402, 501, 6xx, 7xx). The description text comes
 * from upnp/'s table of standard error descriptions. */
void upnp_call_error(struct upnp_call *call, enum upnp_error code);

/* A page the application serves beside the IGD's own documents (iwfd's status page). */
struct upnp_page {
	int status;                 /* HTTP status, e.g. 200 */
	const char *content_type;   /* static or valid until the callback's next call */
	const char *const *headers; /* NULL-terminated name/value pairs (static), or NULL */
	char *body;                 /* malloc'd by the application; upnp/ frees it */
	size_t body_len;
};

/* The operations the application implements. */
struct upnp_ops {
	/* A syntactically valid action arrived from LAN host `from`. Must lead to exactly one
	 * upnp_call_reply / upnp_call_error, now or later. */
	void (*action)(void *arg, struct upnp_call *call, enum upnp_action action,
		       const struct upnp_args *args, const struct sockaddr *from);
	/* Optional (NULL: none). A GET or HEAD for a path none of the IGD's documents has
	 * (path: the request target's path, query and fragment removed) arrived from LAN host
	 * `from` - over the LAN HTTP listener, so after its subnet check and within its limits.
	 * Return true with *out filled to answer it (the body is sent for GET only), false for
	 * upnp/'s 404. Other methods on such paths get 404 without a call. */
	bool (*page)(void *arg, const char *path, const struct sockaddr *from, struct upnp_page *out);
};

/* Evented / descriptive state, pushed by the application. */
struct upnp_state {
	const char *connection_status;     /* "Connected" / "Disconnected" */
	const char *external_ip;           /* "" when unknown */
	uint32_t port_mapping_number_of_entries;
	uint32_t system_update_id;         /* IGD:2 */
	const char *possible_connection_types; /* "IP_Routed" */
};


struct upnp_config {
	int igd_version;             /* 1 (default) or 2 */
	bool ppp;                    /* WANPPPConnection:1 instead of WANIPConnection */
	const char *const *lan_ifnames; size_t n_lan_ifnames; /* SSDP and HTTP only on these */
	/* LAN only: HTTP and SSDP answer only what arrives on one of these interfaces
	 * (SO_BINDTODEVICE, IP_PKTINFO) from an address on its subnets; a connection to
	 * lan_addr arriving on the WAN finds no listener. (None named: no SSDP, HTTP only on
	 * lan_addr, which is then required, from any peer: tests on loopback.) */
	const char *lan_addr;        /* IPv4 address for LOCATION and HTTP bind; NULL = first
					address of the first LAN interface */
	uint16_t http_port;          /* 0 = ephemeral */
	const char *uuid_igd, *uuid_wan_device, *uuid_wan_conn_device; /* "uuid:" omitted */
	/* (NULL: a random v4 UUID is made at start) */
	const char *friendly_name;   /* NULL = "iwfd Internet Gateway" */
	uint32_t ssdp_max_age;       /* CACHE-CONTROL max-age, default 1800 */
	uint32_t boot_id, config_id; /* BOOTID.UPNP.ORG / CONFIGID.UPNP.ORG */
	bool start_stopped;          /* start as after upnp_server_set_enabled(false): no
					ssdp:alive, searches ignored, SOAP 503 (TR-181
					UPnPIWF.Enable stored as 0) */
	/* Limits (0 = default). */
	size_t max_connections, max_header_bytes, max_body_bytes, max_subscriptions;
	uint32_t idle_timeout_ms;
	const struct upnp_ops *ops; void *ops_arg;
	/* priority: a syslog priority, LOG_ERR .. LOG_DEBUG (<syslog.h>) */
	void (*log)(void *arg, int priority, const char *fmt, va_list ap);
	void *log_arg;

	/* --- UPnP over IPv6 (UDA 1.1 Annex A), opt-in --- */
	/* With LAN interfaces named: also HTTP on [::]:http_port of each (IPV6_V6ONLY,
	 * SO_BINDTODEVICE) for on-link peers only (link-local from that link, or inside one of
	 * its IPv6 prefixes), and SSDP on ff02::c there, LOCATION naming the interface's IPv6
	 * address in brackets (link-local for link-local searchers and NOTIFYs, else global/ULA).
	 * The interfaces still need an IPv4 address (lan_addr, the IPv4 side). ops->action's
	 * `from` is then an AF_INET6 sockaddr for IPv6 peers. */
	bool ipv6;
};

struct upnp_server;

#define UPNP_UUID_TEXT 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and its NUL */
/* THE UUID helper: a random version-4 UUID (RFC 4122 §4.4) into b[0..16), and the canonical
 * lower-case text of b (without "uuid:"). */
void upnp_uuid_random(uint8_t b[16]);
void upnp_uuid_format(const uint8_t b[16], char out[UPNP_UUID_TEXT]);

/* Start SSDP and HTTP on base. cfg and the strings in it are copied. On failure returns
 * NULL and sets *err. Sends NOTIFY ssdp:alive at start (not with start_stopped). */
struct upnp_server *upnp_server_new(struct event_base *base, const struct upnp_config *cfg,
				    enum upnp_err *err);
/* Send ssdp:byebye, close everything, complete pending calls' HTTP side. NULL no-op. */
void upnp_server_free(struct upnp_server *s);
/* "http://ADDR:PORT/rootDesc.xml"; valid while s lives. */
const char *upnp_server_root_url(const struct upnp_server *s);
uint16_t upnp_server_http_port(const struct upnp_server *s);
/* Stop the IGD on the LAN (ssdp:byebye, searches ignored, every SOAP action answered HTTP
 * 503; descriptions and GENA stay) or start it again (ssdp:alive). Pending calls go on. */
void upnp_server_set_enabled(struct upnp_server *s, bool on);
bool upnp_server_enabled(const struct upnp_server *s);
/* Counters since upnp_server_new (iwfctl stats; docs/control.md). */
struct upnp_stats {
	/* SSDP, UDP 1900 */
	uint64_t ssdp_msearch;        /* M-SEARCH datagrams from a LAN host on its interface's subnets */
	uint64_t ssdp_answered;       /* searches answered (their replies sent, at once or after the MX delay) */
	uint64_t ssdp_no_match;       /* valid searches for a target we do not offer: nothing to say */
	uint64_t ssdp_rate_limited;   /* not answered: the source's or the shared reply budget, or the
					 delayed-answer slots (per source, in all) were used up */
	uint64_t ssdp_malformed;      /* not answered: not a valid M-SEARCH (start line, ST, MAN, MX) */
	uint64_t ssdp_not_lan;        /* ignored: from a source not on the arriving interface's subnets */
	/* HTTP, TCP 2869 */
	uint64_t http_accepted;       /* connections served */
	uint64_t http_refused_limit;  /* 503 and closed: max_connections reached */
	uint64_t http_refused_per_host; /* 503 and closed: the host already holds its quarter */
	uint64_t http_refused_not_lan;  /* closed unanswered: peer not on the interface's subnets */
	uint64_t http_bad_request;    /* 400, 501 (method), 505 (version) answered by upnp/ */
	uint64_t http_header_too_big; /* 431: request line and headers over max_header_bytes or 32 headers */
	uint64_t http_body_too_big;   /* 413: body over max_body_bytes */
	uint64_t http_timeout_request;/* closed: a request not complete within the idle time (slowloris) */
	uint64_t http_timeout_idle;   /* closed: nothing asked, or an answer not read, for the idle time */
	uint64_t http_throttled;      /* a connection held back by a memory bound (not read for a while) */
	/* SOAP control */
	uint64_t soap_requests;       /* POSTs to a control URL */
	uint64_t soap_actions;        /* parsed and valid: handed to the application (or answered from
					 the pushed state: QueryStateVariable and the like) */
	uint64_t soap_invalid_action; /* 401 Invalid Action from upnp/ (unknown action, bad SOAPACTION) */
	uint64_t soap_invalid_args;   /* 402 Invalid Args from upnp/ (arguments, broken XML) */
	uint64_t soap_other_faults;   /* other faults upnp/ answers itself (716, 732, 733, 501) */
	uint64_t soap_refused_stopped;/* 503: the IGD is stopped (upnp_server_set_enabled) */
	/* GENA eventing */
	uint64_t gena_subscribed;     /* new subscriptions accepted */
	uint64_t gena_renewed;
	uint64_t gena_unsubscribed;
	uint64_t gena_refused_limit;  /* 503: max_subscriptions or the host's quarter of them */
	uint64_t gena_rejected;       /* 400 / 412: malformed, unknown SID, callback not the subscriber */
	uint64_t gena_active;         /* subscriptions now */
	/* ops->page */
	uint64_t pages;               /* requests the application's page callback answered */
};
void upnp_server_stats(const struct upnp_server *s, struct upnp_stats *out);

/* Push the current state; upnp/ events the variables that changed (GENA). st copied. */
void upnp_server_set_state(struct upnp_server *s, const struct upnp_state *st);

#endif
