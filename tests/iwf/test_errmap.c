/* test_errmap.c - PCP result -> UPnP error, seed 004 §4.3, both columns. */
#include "iwf.h"
#include "../testutil.h"

#include <string.h>

int main(void)
{
	/* The expected values written out once more from the seed's table, independently of
	 * errmap.c, so a typo in either shows. */
	static const struct { unsigned pcp; int igd1, igd2; } want[] = {
		{1, 501, 501}, {2, 718, 606}, {3, 501, 501}, {4, 501, 501}, {5, 501, 501},
		{6, 501, 501}, {7, 501, 501}, {8, 501, 728}, {9, 501, 501}, {10, 501, 728},
		{11, 718, 718}, {12, 501, 501}, {13, 501, 501}, {IWF_PCP_NO_ANSWER, 501, 501},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ_INT(iwf_error_map(want[i].pcp, 1), want[i].igd1);
		CHECK_EQ_INT(iwf_error_map(want[i].pcp, 2), want[i].igd2);
	}
	/* Unknown result codes (a server bending the RFC) still give a UPnP error. */
	CHECK_EQ_INT(iwf_error_map(14, 1), 501);
	CHECK_EQ_INT(iwf_error_map(255, 2), 501);
	/* One row per PCP result 1..13 plus "no answer"; names unique; only
	 * NETWORK_FAILURE and no answer take the connection down (§4.3 row 7). */
	size_t n;
	const struct iwf_error_row *t = iwf_error_table(&n);
	CHECK_EQ_INT(n, 14);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			CHECK(t[i].pcp_result != t[j].pcp_result);
			CHECK(strcmp(t[i].pcp_name, t[j].pcp_name) != 0);
		}
		CHECK_EQ_INT(t[i].disconnects, t[i].pcp_result == 7 || t[i].pcp_result == IWF_PCP_NO_ANSWER);
	}
	return tu_finish("test_errmap");
}
