/*
 * errmap.c - PCP result codes -> UPnP IGD errors, seed 004 §4.3 (both columns).
 */
#include "iwf.h"

static const struct iwf_error_row error_table[] = {
	/* pcp                        name                       IGD:1 IGD:2 disconnects */
	{1, "UNSUPP_VERSION", 501, 501, false},           /* "Should not happen" */
	{2, "NOT_AUTHORIZED", 718, 606, false},
	{3, "MALFORMED_REQUEST", 501, 501, false},
	{4, "UNSUPP_OPCODE", 501, 501, false},
	{5, "UNSUPP_OPTION", 501, 501, false},            /* e.g. PREFER_FAILURE refused */
	{6, "MALFORMED_OPTION", 501, 501, false},
	{7, "NETWORK_FAILURE", 501, 501, true},           /* §4.3: not Connected */
	{8, "NO_RESOURCES", 501, 728, false},
	{9, "UNSUPP_PROTOCOL", 501, 501, false},
	{10, "USER_EX_QUOTA", 501, 728, false},
	{11, "CANNOT_PROVIDE_EXTERNAL", 718, 718, false},
	{12, "ADDRESS_MISMATCH", 501, 501, false},
	{13, "EXCESSIVE_REMOTE_PEERS", 501, 501, false},
	{IWF_PCP_NO_ANSWER, "NO_ANSWER", 501, 501, true}, /* no response: ActionFailed */
};

const struct iwf_error_row *iwf_error_table(size_t *n)
{
	*n = sizeof(error_table) / sizeof(error_table[0]);
	return error_table;
}

int iwf_error_map(unsigned pcp_result, int igd_version)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].pcp_result == pcp_result)
			return igd_version == 2 ? error_table[i].igd2 : error_table[i].igd1;
	return 501;
}

enum upnp_error iwf_error_for(unsigned pcp_result, int igd_version, bool filtered)
{
	if (pcp_result == 5 /* UNSUPP_OPTION */ && filtered)
		return igd_version == 2 ? UPNP_E_ACTION_FAILED : UPNP_E_REMOTE_HOST_WILDCARD_ONLY;
	return (enum upnp_error)iwf_error_map(pcp_result, igd_version);
}
