/*
 * actions.c - the tables that are the specification of what we host: service flavours,
 * state variables (serviceStateTable rows) and THE dispatch table of actions (SOAP name ->
 * enum upnp_action, the services defining it, in and out arguments with their
 * relatedStateVariable and the struct field each lives in).
 *
 * Sources: WANIPConnection:1 and WANPPPConnection:1 (ISO/IEC 29341-8-20, seed 000 §2.2,
 * §2.4), WANIPConnection:2 (ISO/IEC 29341-26-11), WANCommonInterfaceConfig:1,
 * Layer3Forwarding:1. desc.c prints the SCPDs from these rows, soap.c checks and stores
 * arguments by them; tests/upnp/test_actions.c checks their invariants.
 */
#include "content.h"

#include <string.h>

static const struct upnp_flavour_def flavours[UPNP_FL__COUNT] = {
	[UPNP_FL_IP1] = { UPNP_FL_IP1, UPNP_SVC_WANIPCONN, "WANIPConnection", 1,
			  "urn:upnp-org:serviceId:WANIPConn1", "WANIPConn" },
	[UPNP_FL_IP2] = { UPNP_FL_IP2, UPNP_SVC_WANIPCONN, "WANIPConnection", 2,
			  "urn:upnp-org:serviceId:WANIPConn1", "WANIPConn" },
	[UPNP_FL_PPP1] = { UPNP_FL_PPP1, UPNP_SVC_WANPPPCONN, "WANPPPConnection", 1,
			   "urn:upnp-org:serviceId:WANPPPConn1", "WANPPPConn" },
	[UPNP_FL_CIC1] = { UPNP_FL_CIC1, UPNP_SVC_WANCOMMONIFC, "WANCommonInterfaceConfig", 1,
			   "urn:upnp-org:serviceId:WANCommonIFC1", "WANCommonIFC" },
	[UPNP_FL_L3F1] = { UPNP_FL_L3F1, UPNP_SVC_L3FWD, "Layer3Forwarding", 1,
			   "urn:upnp-org:serviceId:L3Forwarding1", "L3F" },
};

const struct upnp_flavour_def *upnp_flavour_get(enum upnp_flavour fl)
{
	if ((unsigned)fl >= UPNP_FL__COUNT)
		return NULL;
	return &flavours[fl];
}

const char *upnp_dtype_name(enum upnp_dtype t)
{
	switch (t) {
	case UPNP_DT_STRING: return "string";
	case UPNP_DT_UI2: return "ui2";
	case UPNP_DT_UI4: return "ui4";
	case UPNP_DT_BOOLEAN: return "boolean";
	}
	return "string";
}

#define IP1 UPNP_FLB(UPNP_FL_IP1)
#define IP2 UPNP_FLB(UPNP_FL_IP2)
#define PPP1 UPNP_FLB(UPNP_FL_PPP1)
#define CIC1 UPNP_FLB(UPNP_FL_CIC1)
#define L3F1 UPNP_FLB(UPNP_FL_L3F1)
#define CONN (IP1 | IP2 | PPP1)

/* Allowed value lists (seed 000 tables 1.1-1.4, WANIPConnection:1/2 §2.2). */
static const char *const ip_conn_types[] = { "Unconfigured", "IP_Routed", "IP_Bridged", NULL };
static const char *const ppp_conn_types[] = { "Unconfigured", "IP_Routed", "DHCP_Spoofed",
	"PPPoE_Bridged", "PPTP_Relay", "L2TP_Relay", "PPPoE_Relay", NULL };
static const char *const ip_conn_status[] = { "Unconfigured", "Connecting", "Connected",
	"PendingDisconnect", "Disconnecting", "Disconnected", NULL };
static const char *const ppp_conn_status[] = { "Unconfigured", "Connecting", "Authenticating",
	"Connected", "PendingDisconnect", "Disconnecting", "Disconnected", NULL };
static const char *const ip_last_error[] = { "ERROR_NONE", "ERROR_COMMAND_ABORTED",
	"ERROR_NOT_ENABLED_FOR_INTERNET", "ERROR_USER_DISCONNECT", "ERROR_ISP_DISCONNECT",
	"ERROR_IDLE_DISCONNECT", "ERROR_FORCED_DISCONNECT", "ERROR_NO_CARRIER",
	"ERROR_IP_CONFIGURATION", "ERROR_UNKNOWN", NULL };
static const char *const ppp_last_error[] = { "ERROR_NONE", "ERROR_ISP_TIME_OUT",
	"ERROR_COMMAND_ABORTED", "ERROR_NOT_ENABLED_FOR_INTERNET", "ERROR_BAD_PHONE_NUMBER",
	"ERROR_USER_DISCONNECT", "ERROR_ISP_DISCONNECT", "ERROR_IDLE_DISCONNECT",
	"ERROR_FORCED_DISCONNECT", "ERROR_SERVER_OUT_OF_RESOURCES", "ERROR_RESTRICTED_LOGON_HOURS",
	"ERROR_ACCOUNT_DISABLED", "ERROR_ACCOUNT_EXPIRED", "ERROR_PASSWORD_EXPIRED",
	"ERROR_AUTHENTICATION_FAILURE", "ERROR_NO_DIALTONE", "ERROR_NO_CARRIER", "ERROR_NO_ANSWER",
	"ERROR_LINE_BUSY", "ERROR_UNSUPPORTED_BITSPERSECOND", "ERROR_TOO_MANY_LINE_ERRORS",
	"ERROR_IP_CONFIGURATION", "ERROR_UNKNOWN", NULL };
static const char *const protocols[] = { "TCP", "UDP", NULL };
static const char *const wan_access_types[] = { "DSL", "POTS", "Cable", "Ethernet", NULL };
static const char *const link_status[] = { "Up", "Down", "Initializing", "Unavailable", NULL };

#define S UPNP_DT_STRING
#define U2 UPNP_DT_UI2
#define U4 UPNP_DT_UI4
#define B UPNP_DT_BOOLEAN

const struct upnp_var_def upnp_vars[] = {
	/* name, flavours, type, evented, default, allowed, has_range, min, max */
	{ "ConnectionType", CONN, S, false, "IP_Routed", NULL, false, 0, 0 },
	{ "PossibleConnectionTypes", IP1 | IP2, S, true, NULL, ip_conn_types, false, 0, 0 },
	{ "PossibleConnectionTypes", PPP1, S, true, NULL, ppp_conn_types, false, 0, 0 },
	{ "ConnectionStatus", IP1 | IP2, S, true, NULL, ip_conn_status, false, 0, 0 },
	{ "ConnectionStatus", PPP1, S, true, NULL, ppp_conn_status, false, 0, 0 },
	{ "Uptime", CONN, U4, false, NULL, NULL, false, 0, 0 },
	{ "UpstreamMaxBitRate", PPP1, U4, false, NULL, NULL, false, 0, 0 },
	{ "DownstreamMaxBitRate", PPP1, U4, false, NULL, NULL, false, 0, 0 },
	{ "LastConnectionError", IP1 | IP2, S, false, NULL, ip_last_error, false, 0, 0 },
	{ "LastConnectionError", PPP1, S, false, NULL, ppp_last_error, false, 0, 0 },
	{ "AutoDisconnectTime", CONN, U4, false, NULL, NULL, false, 0, 0 },
	{ "IdleDisconnectTime", CONN, U4, false, NULL, NULL, false, 0, 0 },
	{ "WarnDisconnectDelay", CONN, U4, false, NULL, NULL, false, 0, 0 },
	{ "RSIPAvailable", CONN, B, false, NULL, NULL, false, 0, 0 },
	{ "NATEnabled", CONN, B, false, NULL, NULL, false, 0, 0 },
	{ "UserName", PPP1, S, false, NULL, NULL, false, 0, 0 },
	{ "Password", PPP1, S, false, NULL, NULL, false, 0, 0 },
	{ "PPPEncryptionProtocol", PPP1, S, false, NULL, NULL, false, 0, 0 },
	{ "PPPCompressionProtocol", PPP1, S, false, NULL, NULL, false, 0, 0 },
	{ "PPPAuthenticationProtocol", PPP1, S, false, NULL, NULL, false, 0, 0 },
	{ "ExternalIPAddress", CONN, S, true, NULL, NULL, false, 0, 0 },
	{ "PortMappingNumberOfEntries", CONN, U2, true, NULL, NULL, false, 0, 0 },
	{ "PortMappingEnabled", CONN, B, false, NULL, NULL, false, 0, 0 },
	{ "PortMappingLeaseDuration", IP1 | PPP1, U4, false, NULL, NULL, false, 0, 0 },
	/* WANIPConnection:2 §2.3: 0 .. 604800 (one week) */
	{ "PortMappingLeaseDuration", IP2, U4, false, NULL, NULL, true, 0, 604800 },
	{ "RemoteHost", CONN, S, false, NULL, NULL, false, 0, 0 },
	{ "ExternalPort", CONN, U2, false, NULL, NULL, false, 0, 0 },
	{ "InternalPort", IP1 | PPP1, U2, false, NULL, NULL, false, 0, 0 },
	{ "InternalPort", IP2, U2, false, NULL, NULL, true, 1, 65535 },
	{ "PortMappingProtocol", CONN, S, false, NULL, protocols, false, 0, 0 },
	{ "InternalClient", CONN, S, false, NULL, NULL, false, 0, 0 },
	{ "PortMappingDescription", CONN, S, false, NULL, NULL, false, 0, 0 },
	{ "SystemUpdateID", IP2, U4, true, NULL, NULL, false, 0, 0 },
	{ "A_ARG_TYPE_Manage", IP2, B, false, NULL, NULL, false, 0, 0 },
	{ "A_ARG_TYPE_PortListing", IP2, S, false, NULL, NULL, false, 0, 0 },
	/* WANCommonInterfaceConfig:1 */
	{ "WANAccessType", CIC1, S, false, NULL, wan_access_types, false, 0, 0 },
	{ "Layer1UpstreamMaxBitRate", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	{ "Layer1DownstreamMaxBitRate", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	{ "PhysicalLinkStatus", CIC1, S, true, NULL, link_status, false, 0, 0 },
	{ "EnabledForInternet", CIC1, B, true, NULL, NULL, false, 0, 0 },
	{ "MaximumActiveConnections", CIC1, U2, false, NULL, NULL, true, 1, 65535 },
	{ "NumberOfActiveConnections", CIC1, U2, false, NULL, NULL, false, 0, 0 },
	{ "ActiveConnectionDeviceContainer", CIC1, S, false, NULL, NULL, false, 0, 0 },
	{ "ActiveConnectionServiceID", CIC1, S, false, NULL, NULL, false, 0, 0 },
	{ "TotalBytesSent", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	{ "TotalBytesReceived", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	{ "TotalPacketsSent", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	{ "TotalPacketsReceived", CIC1, U4, false, NULL, NULL, false, 0, 0 },
	/* Layer3Forwarding:1 */
	{ "DefaultConnectionService", L3F1, S, true, NULL, NULL, false, 0, 0 },
};
const size_t upnp_n_vars = sizeof upnp_vars / sizeof upnp_vars[0];

const struct upnp_var_def *upnp_var_find(const char *name, enum upnp_flavour fl)
{
	for (size_t i = 0; i < upnp_n_vars; i++)
		if ((upnp_vars[i].flavours & UPNP_FLB(fl)) && strcmp(upnp_vars[i].name, name) == 0)
			return &upnp_vars[i];
	return NULL;
}

/* Argument lists shared by several actions. */
#define A(name, var, field) { name, var, UPNP_F_##field }
#define PM_KEY A("NewRemoteHost", "RemoteHost", REMOTE_HOST), \
	A("NewExternalPort", "ExternalPort", EXTERNAL_PORT), \
	A("NewProtocol", "PortMappingProtocol", PROTOCOL)
#define PM_VALUE A("NewInternalPort", "InternalPort", INTERNAL_PORT), \
	A("NewInternalClient", "InternalClient", INTERNAL_CLIENT), \
	A("NewEnabled", "PortMappingEnabled", ENABLED), \
	A("NewPortMappingDescription", "PortMappingDescription", DESCRIPTION), \
	A("NewLeaseDuration", "PortMappingLeaseDuration", LEASE)
#define RANGE A("NewStartPort", "ExternalPort", START_PORT), \
	A("NewEndPort", "ExternalPort", END_PORT), \
	A("NewProtocol", "PortMappingProtocol", PROTOCOL), \
	A("NewManage", "A_ARG_TYPE_Manage", MANAGE)

#define ACT(e, n, fl) .action = UPNP_ACT_##e, .name = n, .flavours = (fl)

/* THE dispatch table, in enum upnp_action order (test_actions checks it). */
const struct upnp_action_def upnp_actions[] = {
	/* WANIPConnection:1/2, WANPPPConnection:1 (seed 000 §2.4) */
	{ ACT(SET_CONNECTION_TYPE, "SetConnectionType", CONN),
	  .in = { A("NewConnectionType", "ConnectionType", TEXT) } },
	{ ACT(GET_CONNECTION_TYPE_INFO, "GetConnectionTypeInfo", CONN),
	  .out = { A("NewConnectionType", "ConnectionType", CONNECTION_TYPE),
		   A("NewPossibleConnectionTypes", "PossibleConnectionTypes",
		     POSSIBLE_CONNECTION_TYPES) } },
	{ ACT(REQUEST_CONNECTION, "RequestConnection", CONN) },
	{ ACT(REQUEST_TERMINATION, "RequestTermination", CONN) },
	{ ACT(FORCE_TERMINATION, "ForceTermination", CONN) },
	{ ACT(SET_AUTO_DISCONNECT_TIME, "SetAutoDisconnectTime", CONN),
	  .in = { A("NewAutoDisconnectTime", "AutoDisconnectTime", NUMBER) } },
	{ ACT(SET_IDLE_DISCONNECT_TIME, "SetIdleDisconnectTime", CONN),
	  .in = { A("NewIdleDisconnectTime", "IdleDisconnectTime", NUMBER) } },
	{ ACT(SET_WARN_DISCONNECT_DELAY, "SetWarnDisconnectDelay", CONN),
	  .in = { A("NewWarnDisconnectDelay", "WarnDisconnectDelay", NUMBER) } },
	{ ACT(GET_STATUS_INFO, "GetStatusInfo", CONN),
	  .out = { A("NewConnectionStatus", "ConnectionStatus", CONNECTION_STATUS),
		   A("NewLastConnectionError", "LastConnectionError", LAST_CONNECTION_ERROR),
		   A("NewUptime", "Uptime", UPTIME) } },
	{ ACT(GET_AUTO_DISCONNECT_TIME, "GetAutoDisconnectTime", CONN),
	  .out = { A("NewAutoDisconnectTime", "AutoDisconnectTime", NUMBER) } },
	{ ACT(GET_IDLE_DISCONNECT_TIME, "GetIdleDisconnectTime", CONN),
	  .out = { A("NewIdleDisconnectTime", "IdleDisconnectTime", NUMBER) } },
	{ ACT(GET_WARN_DISCONNECT_DELAY, "GetWarnDisconnectDelay", CONN),
	  .out = { A("NewWarnDisconnectDelay", "WarnDisconnectDelay", NUMBER) } },
	{ ACT(GET_NAT_RSIP_STATUS, "GetNATRSIPStatus", CONN),
	  .out = { A("NewRSIPAvailable", "RSIPAvailable", RSIP_AVAILABLE),
		   A("NewNATEnabled", "NATEnabled", NAT_ENABLED) } },
	{ ACT(GET_GENERIC_PORT_MAPPING_ENTRY, "GetGenericPortMappingEntry", CONN),
	  .in = { A("NewPortMappingIndex", "PortMappingNumberOfEntries", INDEX) },
	  .out = { PM_KEY, PM_VALUE } },
	{ ACT(GET_SPECIFIC_PORT_MAPPING_ENTRY, "GetSpecificPortMappingEntry", CONN),
	  .in = { PM_KEY },
	  .out = { PM_VALUE } },
	{ ACT(ADD_PORT_MAPPING, "AddPortMapping", CONN),
	  .in = { PM_KEY, PM_VALUE } },
	{ ACT(DELETE_PORT_MAPPING, "DeletePortMapping", CONN),
	  .in = { PM_KEY } },
	{ ACT(GET_EXTERNAL_IP_ADDRESS, "GetExternalIPAddress", CONN),
	  .out = { A("NewExternalIPAddress", "ExternalIPAddress", EXTERNAL_IP) } },
	/* WANIPConnection:2 only */
	{ ACT(DELETE_PORT_MAPPING_RANGE, "DeletePortMappingRange", IP2),
	  .in = { RANGE } },
	{ ACT(GET_LIST_OF_PORT_MAPPINGS, "GetListOfPortMappings", IP2),
	  .in = { RANGE, A("NewNumberOfPorts", "PortMappingNumberOfEntries", NUMBER_OF_PORTS) },
	  .out = { A("NewPortListing", "A_ARG_TYPE_PortListing", PORT_LISTING) } },
	{ ACT(ADD_ANY_PORT_MAPPING, "AddAnyPortMapping", IP2),
	  .in = { PM_KEY, PM_VALUE },
	  .out = { A("NewReservedPort", "ExternalPort", RESERVED_PORT) } },
	/* WANPPPConnection:1 only (seed 000 §2.4.7-2.4.16) */
	{ ACT(GET_LINK_LAYER_MAX_BIT_RATES, "GetLinkLayerMaxBitRates", PPP1),
	  .out = { A("NewUpstreamMaxBitRate", "UpstreamMaxBitRate", UP_MAX_BITRATE),
		   A("NewDownstreamMaxBitRate", "DownstreamMaxBitRate", DOWN_MAX_BITRATE) } },
	{ ACT(GET_PPP_ENCRYPTION_PROTOCOL, "GetPPPEncryptionProtocol", PPP1),
	  .out = { A("NewPPPEncryptionProtocol", "PPPEncryptionProtocol", TEXT) } },
	{ ACT(GET_PPP_COMPRESSION_PROTOCOL, "GetPPPCompressionProtocol", PPP1),
	  .out = { A("NewPPPCompressionProtocol", "PPPCompressionProtocol", TEXT) } },
	{ ACT(GET_PPP_AUTHENTICATION_PROTOCOL, "GetPPPAuthenticationProtocol", PPP1),
	  .out = { A("NewPPPAuthenticationProtocol", "PPPAuthenticationProtocol", TEXT) } },
	{ ACT(GET_USER_NAME, "GetUserName", PPP1),
	  .out = { A("NewUserName", "UserName", TEXT) } },
	{ ACT(GET_PASSWORD, "GetPassword", PPP1),
	  .out = { A("NewPassword", "Password", TEXT) } },
	{ ACT(CONFIGURE_CONNECTION, "ConfigureConnection", PPP1),
	  .in = { A("NewUserName", "UserName", TEXT), A("NewPassword", "Password", TEXT2) } },
	/* WANCommonInterfaceConfig:1 */
	{ ACT(GET_COMMON_LINK_PROPERTIES, "GetCommonLinkProperties", CIC1),
	  .out = { A("NewWANAccessType", "WANAccessType", WAN_ACCESS_TYPE),
		   A("NewLayer1UpstreamMaxBitRate", "Layer1UpstreamMaxBitRate", UP_MAX_BITRATE),
		   A("NewLayer1DownstreamMaxBitRate", "Layer1DownstreamMaxBitRate",
		     DOWN_MAX_BITRATE),
		   A("NewPhysicalLinkStatus", "PhysicalLinkStatus", PHYSICAL_LINK_STATUS) } },
	{ ACT(GET_TOTAL_BYTES_SENT, "GetTotalBytesSent", CIC1),
	  .out = { A("NewTotalBytesSent", "TotalBytesSent", NUMBER) } },
	{ ACT(GET_TOTAL_BYTES_RECEIVED, "GetTotalBytesReceived", CIC1),
	  .out = { A("NewTotalBytesReceived", "TotalBytesReceived", NUMBER) } },
	{ ACT(GET_TOTAL_PACKETS_SENT, "GetTotalPacketsSent", CIC1),
	  .out = { A("NewTotalPacketsSent", "TotalPacketsSent", NUMBER) } },
	{ ACT(GET_TOTAL_PACKETS_RECEIVED, "GetTotalPacketsReceived", CIC1),
	  .out = { A("NewTotalPacketsReceived", "TotalPacketsReceived", NUMBER) } },
	{ ACT(GET_ENABLED_FOR_INTERNET, "GetEnabledForInternet", CIC1),
	  .out = { A("NewEnabledForInternet", "EnabledForInternet", FLAG) } },
	{ ACT(SET_ENABLED_FOR_INTERNET, "SetEnabledForInternet", CIC1),
	  .in = { A("NewEnabledForInternet", "EnabledForInternet", FLAG) } },
	{ ACT(GET_MAXIMUM_ACTIVE_CONNECTIONS, "GetMaximumActiveConnections", CIC1),
	  .out = { A("NewMaximumActiveConnections", "MaximumActiveConnections", NUMBER) } },
	{ ACT(GET_ACTIVE_CONNECTION, "GetActiveConnection", CIC1),
	  .in = { A("NewActiveConnectionIndex", "NumberOfActiveConnections", NUMBER) },
	  .out = { A("NewActiveConnDeviceContainer", "ActiveConnectionDeviceContainer", TEXT),
		   A("NewActiveConnectionServiceID", "ActiveConnectionServiceID", TEXT2) } },
	/* Layer3Forwarding:1 */
	{ ACT(GET_DEFAULT_CONNECTION_SERVICE, "GetDefaultConnectionService", L3F1),
	  .out = { A("NewDefaultConnectionService", "DefaultConnectionService", TEXT) } },
	{ ACT(SET_DEFAULT_CONNECTION_SERVICE, "SetDefaultConnectionService", L3F1),
	  .in = { A("NewDefaultConnectionService", "DefaultConnectionService", TEXT) } },
};
const size_t upnp_n_actions = sizeof upnp_actions / sizeof upnp_actions[0];

_Static_assert(sizeof upnp_actions / sizeof upnp_actions[0] == UPNP_ACT__COUNT,
	       "one dispatch row per enum upnp_action");

const struct upnp_action_def upnp_compat_query_state_variable = {
	.action = UPNP_ACT__COUNT, .name = "QueryStateVariable",
	.flavours = CONN | CIC1 | L3F1,
	.in = { { "varName", NULL, UPNP_F_TEXT } },
	.out = { { "return", NULL, UPNP_F_TEXT } },
};

const struct upnp_action_def upnp_compat_get_pm_number_of_entries = {
	.action = UPNP_ACT__COUNT, .name = "GetPortMappingNumberOfEntries",
	.flavours = CONN,
	.out = { A("NewPortMappingNumberOfEntries", "PortMappingNumberOfEntries", NUMBER) },
};

const struct upnp_action_def *upnp_action_get(enum upnp_action a)
{
	if ((unsigned)a >= upnp_n_actions || upnp_actions[a].action != a)
		return NULL;
	return &upnp_actions[a];
}

const char *upnp_action_name(enum upnp_action a)
{
	const struct upnp_action_def *d = upnp_action_get(a);

	return d != NULL ? d->name : "?";
}

const struct upnp_action_def *upnp_action_lookup(const char *name, size_t len, enum upnp_flavour fl)
{
	for (size_t i = 0; i < upnp_n_actions; i++) {
		const struct upnp_action_def *d = &upnp_actions[i];
		if ((d->flavours & UPNP_FLB(fl)) && strlen(d->name) == len &&
		    memcmp(d->name, name, len) == 0)
			return d;
	}
	return NULL;
}

size_t upnp_action_n_in(const struct upnp_action_def *d)
{
	size_t n = 0;

	while (n < UPNP_MAX_ARGS && d->in[n].name != NULL)
		n++;
	return n;
}

size_t upnp_action_n_out(const struct upnp_action_def *d)
{
	size_t n = 0;

	while (n < UPNP_MAX_ARGS && d->out[n].name != NULL)
		n++;
	return n;
}
