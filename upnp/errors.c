/*
 * errors.c - UPnP error codes and their standard errorDescription strings, and the names
 * of enum upnp_err.
 *
 * Sources: UDA 1.1 §3.2.2 (4xx, 5xx, 6xx), WANIPConnection:1 / WANPPPConnection:1 (seed 000
 * §2.4: 703-727), WANIPConnection:2 (728-733), Layer3Forwarding:1 (720-723).
 */
#include "content.h"

#include <stddef.h>

struct upnp_error_def {
	int code;
	const char *description;
};

/* Sorted by code (the test checks it). */
static const struct upnp_error_def error_table[] = {
	{ 401, "Invalid Action" },          /* UDA: no action by that name at this service */
	{ 402, "Invalid Args" },            /* UDA: missing / wrong type / unknown argument */
	{ 403, "Out of Sync" },             /* UDA 1.0, deprecated */
	{ 404, "Invalid Var" },             /* UDA 1.0 QueryStateVariable */
	{ 501, "Action Failed" },           /* UDA: may be returned by any action */
	{ 600, "Argument Value Invalid" },
	{ 601, "Argument Value Out of Range" },
	{ 602, "Optional Action Not Implemented" },
	{ 603, "Out of Memory" },
	{ 604, "Human Intervention Required" },
	{ 605, "String Argument Too Long" },
	{ 606, "Action not authorized" },
	{ 607, "Signature failure" },
	{ 608, "Signature missing" },
	{ 609, "Not encrypted" },
	{ 610, "Invalid sequence" },
	{ 611, "Invalid control URL" },
	{ 612, "No such session" },
	{ 703, "InactiveConnectionStateRequired" },
	{ 704, "ConnectionSetupFailed" },
	{ 705, "ConnectionSetupInProgress" },
	{ 706, "ConnectionNotConfigured" },
	{ 707, "DisconnectInProgress" },
	{ 708, "InvalidLayer2Address" },
	{ 709, "InternetAccessDisabled" },
	{ 710, "InvalidConnectionType" },
	{ 711, "ConnectionAlreadyTerminated" },
	{ 713, "SpecifiedArrayIndexInvalid" },
	{ 714, "NoSuchEntryInArray" },
	{ 715, "WildCardNotPermittedInSrcIP" },
	{ 716, "WildCardNotPermittedInExtPort" },
	{ 718, "ConflictInMappingEntry" },
	{ 719, "ActionDisallowedWhenAutoConfigEnabled" },
	{ 720, "InvalidDeviceUUID" },
	{ 721, "InvalidServiceID" },
	{ 723, "InvalidConnServiceSelection" },
	{ 724, "SamePortValuesRequired" },
	{ 725, "OnlyPermanentLeasesSupported" },
	{ 726, "RemoteHostOnlySupportsWildcard" },
	{ 727, "ExternalPortOnlySupportsWildcard" },
	{ 728, "NoPortMapsAvailable" },
	{ 729, "ConflictWithOtherMechanisms" },
	{ 730, "PortMappingNotFound" },
	{ 731, "ReadOnly" },
	{ 732, "WildCardNotPermittedInIntPort" },
	{ 733, "InconsistentParameters" },
};

const char *upnp_error_description(int code)
{
	size_t lo = 0, hi = sizeof error_table / sizeof error_table[0];

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (error_table[mid].code == code)
			return error_table[mid].description;
		if (error_table[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *upnp_error_description_or(int code)
{
	const char *d = upnp_error_description(code);

	if (d != NULL)
		return d;
	if (code >= 800 && code <= 899)
		return "Vendor Error"; /* UDA: 800-899 vendor defined */
	return "Action Failed";
}

const char *upnp_err_name(enum upnp_err err)
{
	switch (err) {
	case UPNP_OK: return "ok";
	case UPNP_ERR_INVAL: return "invalid configuration";
	case UPNP_ERR_SOCKET: return "socket error";
	case UPNP_ERR_IFACE: return "LAN interface not found or without IPv4 address";
	case UPNP_ERR_NOMEM: return "out of memory";
	}
	return "unknown error";
}
