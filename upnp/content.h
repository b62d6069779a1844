/*
 * content.h - the content half of upnp/ (not public): service/action/state-variable tables,
 * description generation, SOAP parsing and formatting, error descriptions.
 *
 *   actions.c  the const tables: hosted service flavours, state variables, actions
 *   desc.c     root description and SCPDs generated from those tables; XML output buffer
 *   soap.c     SOAP request parsing (expat, namespace mode), argument checks, responses,
 *              faults, the PortListing document of WANIPConnection:2
 *   errors.c   UPnP error code -> standard errorDescription
 *
 * Everything here is pure (no I/O, no logging) so that tests and fuzzers can drive it.
 */
#ifndef IWFD_UPNP_CONTENT_H
#define IWFD_UPNP_CONTENT_H

#include "upnp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors.c */

/* Standard errorDescription of a UPnP error code (UDA 1.1 §3.2.2 table 3-3, the IGD
 * service templates); NULL for a code we do not know. */
const char *upnp_error_description(int code);
/* Description or "Action Failed" style fallback: never NULL. */
const char *upnp_error_description_or(int code);

/* ------------------------------------------------------------------ actions.c */

/* A hosted service at one version ("flavour"). */
enum upnp_flavour {
	UPNP_FL_IP1,  /* WANIPConnection:1 */
	UPNP_FL_IP2,  /* WANIPConnection:2 */
	UPNP_FL_PPP1, /* WANPPPConnection:1 */
	UPNP_FL_CIC1, /* WANCommonInterfaceConfig:1 */
	UPNP_FL_L3F1, /* Layer3Forwarding:1 */
	UPNP_FL__COUNT
};
#define UPNP_FLB(fl) (1u << (fl))

struct upnp_flavour_def {
	enum upnp_flavour flavour;
	enum upnp_service service;
	const char *type;       /* "WANIPConnection" */
	int version;            /* 1 or 2 */
	const char *service_id; /* "urn:upnp-org:serviceId:WANIPConn1" */
	const char *path;       /* URL part: /scpd/<path>.xml, /ctl/<path>, /evt/<path> */
};
const struct upnp_flavour_def *upnp_flavour_get(enum upnp_flavour fl);

enum upnp_dtype { UPNP_DT_STRING, UPNP_DT_UI2, UPNP_DT_UI4, UPNP_DT_BOOLEAN };
const char *upnp_dtype_name(enum upnp_dtype t);

/* One row of a serviceStateTable. A variable that differs between flavours has one row per
 * variant; `flavours` says where each row applies. */
struct upnp_var_def {
	const char *name;
	unsigned flavours;        /* UPNP_FLB() mask */
	enum upnp_dtype type;
	bool evented;             /* sendEvents="yes" */
	const char *default_value;  /* NULL = none in the SCPD */
	const char *const *allowed; /* NULL-terminated allowedValueList, or NULL */
	bool has_range;
	uint32_t min, max;        /* allowedValueRange (step 1) */
};
extern const struct upnp_var_def upnp_vars[];
extern const size_t upnp_n_vars;
/* The row of variable `name` for flavour fl, or NULL. */
const struct upnp_var_def *upnp_var_find(const char *name, enum upnp_flavour fl);

/* Where an argument's value lives: a member of struct upnp_args (in) or of struct
 * upnp_reply (out). Each value also fixes the syntax check applied to an in argument. */
enum upnp_field {
	UPNP_F_NONE,
	/* port mapping entry (args.pm / reply.pm) */
	UPNP_F_REMOTE_HOST,     /* "" or IPv4 dotted quad */
	UPNP_F_EXTERNAL_PORT,
	UPNP_F_PROTOCOL,        /* TCP / UDP */
	UPNP_F_INTERNAL_PORT,
	UPNP_F_INTERNAL_CLIENT, /* IPv4 dotted quad */
	UPNP_F_ENABLED,
	UPNP_F_DESCRIPTION,     /* truncated to UPNP_DESC_MAX bytes */
	UPNP_F_LEASE,
	/* other in arguments (args.*) */
	UPNP_F_INDEX, UPNP_F_START_PORT, UPNP_F_END_PORT, UPNP_F_MANAGE, UPNP_F_NUMBER_OF_PORTS,
	UPNP_F_TEXT, UPNP_F_TEXT2, UPNP_F_NUMBER, UPNP_F_FLAG,
	/* other out arguments (reply.*) */
	UPNP_F_RESERVED_PORT, UPNP_F_EXTERNAL_IP, UPNP_F_CONNECTION_STATUS,
	UPNP_F_LAST_CONNECTION_ERROR, UPNP_F_UPTIME, UPNP_F_CONNECTION_TYPE,
	UPNP_F_POSSIBLE_CONNECTION_TYPES, UPNP_F_RSIP_AVAILABLE, UPNP_F_NAT_ENABLED,
	UPNP_F_WAN_ACCESS_TYPE, UPNP_F_PHYSICAL_LINK_STATUS, UPNP_F_UP_MAX_BITRATE,
	UPNP_F_DOWN_MAX_BITRATE, UPNP_F_PORT_LISTING,
};

struct upnp_arg_def {
	const char *name;     /* "NewExternalPort"; NULL ends the list */
	const char *var;      /* relatedStateVariable */
	enum upnp_field field;
};

#define UPNP_MAX_ARGS 9
struct upnp_action_def {
	enum upnp_action action;
	const char *name;       /* SOAP name */
	unsigned flavours;      /* UPNP_FLB() mask of the services that define it */
	struct upnp_arg_def in[UPNP_MAX_ARGS];  /* in SCPD order, NULL-name terminated */
	struct upnp_arg_def out[UPNP_MAX_ARGS];
};
/* The dispatch table: one row per enum upnp_action, in enum order. */
extern const struct upnp_action_def upnp_actions[];
extern const size_t upnp_n_actions;
const struct upnp_action_def *upnp_action_get(enum upnp_action a);
/* Action `name` (exact, case-sensitive: UDA names are) defined by flavour fl, or NULL. */
const struct upnp_action_def *upnp_action_lookup(const char *name, size_t len, enum upnp_flavour fl);
/* Compatibility requests answered by upnp/ itself from the state the application pushed
 * (upnp_server_set_state): not in enum upnp_action (their .action is UPNP_ACT__COUNT), not
 * listed in any SCPD. QueryStateVariable (UDA 1.0 §3.3.1, deprecated in 1.1; in namespace
 * urn:schemas-upnp-org:control-1-0, argument varName, result "return") and
 * GetPortMappingNumberOfEntries (miniupnpd's vendor action; python3-miniupnpc's
 * getportmappingnumberofentries() calls it). */
extern const struct upnp_action_def upnp_compat_query_state_variable;
extern const struct upnp_action_def upnp_compat_get_pm_number_of_entries;
#define UPNP_CONTROL_NS "urn:schemas-upnp-org:control-1-0"

/* Number of in / out arguments. */
size_t upnp_action_n_in(const struct upnp_action_def *d);
size_t upnp_action_n_out(const struct upnp_action_def *d);

/* ------------------------------------------------------------------ desc.c */

/* Growable output buffer. On allocation failure or when `limit` would be exceeded, `failed`
 * is set and further appends are ignored. */
struct upnp_buf {
	char *p;      /* NUL-terminated while !failed; owned */
	size_t len, cap;
	size_t limit; /* 0 = 1 MiB */
	bool failed;
};
void upnp_buf_init(struct upnp_buf *b);
void upnp_buf_free(struct upnp_buf *b);
void upnp_buf_add(struct upnp_buf *b, const char *s);
void upnp_buf_addn(struct upnp_buf *b, const char *s, size_t n);
void upnp_buf_printf(struct upnp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s XML-escaped (& < > " ' as entities; C0 controls other than TAB/LF/CR, which
 * XML 1.0 cannot carry even as references, become '?'). NULL appends nothing. */
void upnp_buf_esc(struct upnp_buf *b, const char *s);
/* <name>escaped text</name> */
void upnp_buf_elem(struct upnp_buf *b, const char *name, const char *text);

/* Device tree of the configured IGD. */
struct upnp_desc_config {
	int igd_version;     /* 1 or 2 */
	bool ppp;            /* WANPPPConnection:1 as the connection service */
	const char *friendly_name;
	const char *uuid_igd, *uuid_wan_device, *uuid_wan_conn_device; /* without "uuid:" */
	uint32_t config_id;  /* UDA 1.1 configId (IGD:2 only) */
};
/* The connection service flavour: IP1, IP2 or PPP1. */
enum upnp_flavour upnp_desc_conn_flavour(const struct upnp_desc_config *c);
/* Is flavour fl hosted by this configuration? */
bool upnp_desc_hosts(const struct upnp_desc_config *c, enum upnp_flavour fl);
/* Root device description into b (appended). */
void upnp_desc_root(struct upnp_buf *b, const struct upnp_desc_config *c);
/* SCPD of flavour fl into b. */
void upnp_desc_scpd(struct upnp_buf *b, enum upnp_flavour fl);
/* Device types of the tree, root first: "urn:schemas-upnp-org:device:InternetGatewayDevice:2".
 * Fills up to 3 entries of out (caller's buffers of 96 bytes each); returns the count. */
size_t upnp_desc_device_types(const struct upnp_desc_config *c, char out[][96], size_t cap);
/* "urn:schemas-upnp-org:service:<type>:<v>" into out (cap >= 96). */
void upnp_desc_service_type(enum upnp_flavour fl, char *out, size_t cap);

/* ------------------------------------------------------------------ soap.c */

#define UPNP_SOAP_NS_MAX 96

/* A parsed, syntactically valid request. */
struct upnp_soap_req {
	const struct upnp_action_def *def; /* set as soon as the action is identified */
	char ns[UPNP_SOAP_NS_MAX];          /* service type URN the request used (reply in it) */
	struct upnp_args args;
};

/*
 * Parse and check a SOAP control request for the service `hosted` (the one whose control
 * URL was posted to). soapaction is the SOAPACTION header value or NULL when absent.
 * Returns 0 with *req filled, or the UPnP error code to answer with:
 *   401  not a SOAP envelope / not well-formed before the action element / Body without
 *        exactly one element / wrong service namespace / unknown action / SOAPACTION
 *        header disagreeing with the body (UDA 1.1 §3.2.1)
 *   402  unknown, missing, duplicated or ill-typed argument, XML broken inside the action
 *   716, 732, 733  the syntax-level rules of WANIPConnection (see docs/upnp.md)
 */
int upnp_soap_parse(const char *body, size_t len, const char *soapaction,
		    enum upnp_flavour hosted, struct upnp_soap_req *req);

/* Append the success envelope of action d in namespace ns with out arguments from r, in
 * SCPD order. NULL strings in r are sent empty. */
void upnp_soap_response(struct upnp_buf *b, const struct upnp_action_def *d, const char *ns,
			const struct upnp_reply *r);
/* Append the UDA fault envelope for UPnP error code (description from errors.c). */
void upnp_soap_fault(struct upnp_buf *b, int code);
/* Append the PortListing document of WANIPConnection:2 (unescaped XML). */
void upnp_soap_port_listing(struct upnp_buf *b, const struct upnp_pm_entry *list, size_t n);

/* Strict unsigned decimal: optional XML white space around, digits only, <= max. */
bool upnp_parse_uint(const char *s, size_t len, uint32_t max, uint32_t *out);
/* 0/1/true/false/yes/no, case-insensitive, white space around tolerated. */
bool upnp_parse_bool(const char *s, size_t len, bool *out);

#endif
