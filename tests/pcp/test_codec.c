/*
 * test_codec.c - golden vectors for pcp_msg_decode / pcp_msg_encode (RFC 6887 §7, §11,
 * §12, §13, §14, RFC 7220): bytes in -> fields out -> the same bytes back; and every
 * malformed case with the exact reason it is refused.
 */
#include "pcp.h"
#include "../testutil.h"

#include <arpa/inet.h>

#define V4(a, b, c, d) "00000000 00000000 0000ffff " #a #b #c #d

/* Client ::ffff:192.0.2.1, nonce 01..0c, TCP 8080 -> suggested 8080 no preference. */
#define MAP_REQ_HDR "02 01 0000 00000e10 00000000 00000000 0000ffff c0000201"
#define MAP_REQ_DATA "0102030405060708090a0b0c 06 000000 1f90 1f90 00000000 00000000 0000ffff 00000000"
#define OPT_THIRD_PARTY "01 00 0010 00000000 00000000 0000ffff c0a8010a" /* 192.168.1.10 */
#define OPT_PREFER_FAILURE "02 00 0000"
#define OPT_DESCRIPTION "80 00 0004 69776664" /* "iwfd" */
#define MAP_RESP_HDR "02 81 00 00 00000e10 0000012c 000000000000000000000000"
#define MAP_RESP_DATA "0102030405060708090a0b0c 06 000000 1f90 1f91 00000000 00000000 0000ffff cb007105"

static void in6(struct in6_addr *a, const char *text)
{
	CHECK(pcp_addr_parse(a, text));
}

static bool addr_eq(const struct in6_addr *a, const char *text)
{
	struct in6_addr b;
	return pcp_addr_parse(&b, text) && memcmp(a, &b, sizeof b) == 0;
}

/* Decode hex, expect err; on PCP_OK re-encode and expect the same bytes (unless !exact). */
static enum pcp_err vec(const char *hex, enum pcp_err want, struct pcp_msg *m, bool exact)
{
	uint8_t in[2048], out[PCP_MAX_PACKET];
	size_t n = tu_hex(hex, in, sizeof in);
	enum pcp_err err = pcp_msg_decode(in, n, m);
	if (err != want) {
		fprintf(stderr, "  vector %.40s...: got %s, want %s\n", hex, pcp_err_name(err), pcp_err_name(want));
		tu_failures++;
		return err;
	}
	if (err == PCP_OK) {
		size_t len = 0;
		CHECK_EQ(pcp_msg_encode(m, out, sizeof out, &len), PCP_OK);
		if (exact) {
			CHECK_EQ(len, n);
			CHECK(len == n && memcmp(in, out, n) == 0);
		}
		struct pcp_msg again;
		CHECK_EQ(pcp_msg_decode(out, len, &again), PCP_OK);
		CHECK(memcmp(&again, m, sizeof again) == 0 || !exact);
	}
	return err;
}

static void test_map_request(void)
{
	struct pcp_msg m;
	if (vec(MAP_REQ_HDR MAP_REQ_DATA OPT_THIRD_PARTY OPT_PREFER_FAILURE OPT_DESCRIPTION, PCP_OK, &m, true))
		return;
	CHECK_EQ(m.version, 2);
	CHECK(!m.response);
	CHECK_EQ(m.opcode, PCP_OPCODE_MAP);
	CHECK_EQ(m.lifetime, 3600);
	CHECK(addr_eq(&m.client_addr, "192.0.2.1"));
	for (int i = 0; i < PCP_NONCE_LEN; i++)
		CHECK_EQ(m.nonce[i], i + 1);
	CHECK_EQ(m.protocol, 6);
	CHECK_EQ(m.internal_port, 8080);
	CHECK_EQ(m.external_port, 8080);
	CHECK(addr_eq(&m.external_addr, "::ffff:0.0.0.0"));
	CHECK(m.has_third_party);
	CHECK(addr_eq(&m.third_party, "192.168.1.10"));
	CHECK(m.prefer_failure);
	CHECK_EQ(m.n_filters, 0);
	CHECK(m.has_description);
	CHECK(strcmp(m.description, "iwfd") == 0);
	CHECK_EQ(m.n_unknown_optional, 0);
}

static void test_map_request_bare(void)
{
	struct pcp_msg m;
	if (vec(MAP_REQ_HDR MAP_REQ_DATA, PCP_OK, &m, true))
		return;
	CHECK(!m.has_third_party);
	CHECK(!m.prefer_failure);
	CHECK(!m.has_description);
}

static void test_map_response(void)
{
	struct pcp_msg m;
	if (vec(MAP_RESP_HDR MAP_RESP_DATA OPT_THIRD_PARTY, PCP_OK, &m, true))
		return;
	CHECK(m.response);
	CHECK_EQ(m.opcode, PCP_OPCODE_MAP);
	CHECK_EQ(m.result, PCP_RESULT_SUCCESS);
	CHECK_EQ(m.lifetime, 3600);
	CHECK_EQ(m.epoch, 300);
	CHECK_EQ(m.external_port, 8081);
	CHECK(addr_eq(&m.external_addr, "203.0.113.5"));
	CHECK(m.has_third_party);
}

static void test_map_error_response(void)
{
	struct pcp_msg m;
	if (vec("02 81 00 02 0000001e 00000064 000000000000000000000000" MAP_RESP_DATA, PCP_OK, &m, true))
		return;
	CHECK_EQ(m.result, PCP_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(m.lifetime, 30);
	CHECK_EQ(m.epoch, 100);
	/* every defined result code decodes; 13 is the last */
	CHECK_EQ(vec("02 81 00 0d 0000001e 00000064 000000000000000000000000" MAP_RESP_DATA, PCP_OK, &m, true),
		 PCP_OK);
	CHECK_EQ(m.result, PCP_RESULT_EXCESSIVE_REMOTE_PEERS);
}

static void test_filter(void)
{
	struct pcp_msg m;
	if (vec(MAP_REQ_HDR MAP_REQ_DATA "03 00 0014 00 78 0050 00000000 00000000 0000ffff c6336400"
					  "03 00 0014 00 00 0000 00000000 00000000 00000000 00000000",
		PCP_OK, &m, true))
		return;
	CHECK_EQ(m.n_filters, 2);
	CHECK_EQ(m.filters[0].prefix_len, 120);
	CHECK_EQ(m.filters[0].port, 80);
	CHECK(addr_eq(&m.filters[0].addr, "198.51.100.0"));
	CHECK_EQ(m.filters[1].prefix_len, 0);
	CHECK_EQ(m.filters[1].port, 0);
}

static void test_peer(void)
{
	struct pcp_msg m;
	const char *peer = "02 02 0000 00001c20 20010db8 00000000 00000000 00000001"
			   "aaaaaaaaaaaaaaaaaaaaaaaa 11 000000 1388 1388 00000000 00000000 00000000 00000000"
			   "01bb 0000 20010db8 00000000 00000000 00000099"
			   "80 00 0005 70656572 21000000";
	if (vec(peer, PCP_OK, &m, true))
		return;
	CHECK_EQ(m.opcode, PCP_OPCODE_PEER);
	CHECK_EQ(m.lifetime, 7200);
	CHECK(addr_eq(&m.client_addr, "2001:db8::1"));
	CHECK_EQ(m.protocol, 17);
	CHECK_EQ(m.internal_port, 5000);
	CHECK_EQ(m.remote_port, 443);
	CHECK(addr_eq(&m.remote_addr, "2001:db8::99"));
	CHECK(strcmp(m.description, "peer!") == 0);
	/* PEER response */
	CHECK_EQ(vec("02 82 00 00 00001c20 00000007 000000000000000000000000"
		     "aaaaaaaaaaaaaaaaaaaaaaaa 11 000000 1388 1389 20010db8 00000000 00000000 00000077"
		     "01bb 0000 20010db8 00000000 00000000 00000099",
		     PCP_OK, &m, true),
		 PCP_OK);
	CHECK(m.response);
	CHECK_EQ(m.external_port, 5001);
	/* PEER is 56 bytes: 36 is short */
	CHECK_EQ(vec("02 02 0000 00001c20 20010db8 00000000 00000000 00000001" MAP_REQ_DATA, PCP_ERR_SHORT, &m,
		     true),
		 PCP_ERR_SHORT);
}

static void test_announce(void)
{
	struct pcp_msg m;
	if (vec("02 80 00 00 00000000 00000005 000000000000000000000000", PCP_OK, &m, true))
		return;
	CHECK(m.response);
	CHECK_EQ(m.opcode, PCP_OPCODE_ANNOUNCE);
	CHECK_EQ(m.epoch, 5);
	CHECK_EQ(vec("02 00 0000 00000000 00000000 00000000 0000ffff c0000201", PCP_OK, &m, true), PCP_OK);
	CHECK(!m.response);
	CHECK(addr_eq(&m.client_addr, "192.0.2.1"));
	/* options on ANNOUNCE: mandatory ones are refused, optional ones skipped */
	vec("02 80 00 00 00000000 00000005 000000000000000000000000" OPT_PREFER_FAILURE, PCP_ERR_OPTION, &m,
	    true);
	if (vec("02 80 00 00 00000000 00000005 000000000000000000000000" OPT_DESCRIPTION, PCP_OK, &m, false) ==
	    PCP_OK) {
		CHECK(!m.has_description);
		CHECK_EQ(m.n_unknown_optional, 1);
	}
}

static void test_unknown_optional_skipped(void)
{
	struct pcp_msg m;
	if (vec(MAP_RESP_HDR MAP_RESP_DATA "99 00 0003 abcdef00" OPT_THIRD_PARTY "fe 00 0000", PCP_OK, &m, false))
		return;
	CHECK_EQ(m.n_unknown_optional, 2);
	CHECK(m.has_third_party);
}

static void test_description_long_truncated(void)
{
	char hex[4096];
	int n = snprintf(hex, sizeof hex, "%s%s 80 00 012c", MAP_REQ_HDR, MAP_REQ_DATA); /* 300 bytes */
	for (int i = 0; i < 300; i++)
		n += snprintf(hex + n, sizeof hex - (size_t)n, "41");
	struct pcp_msg m;
	if (vec(hex, PCP_OK, &m, false))
		return;
	CHECK_EQ(strlen(m.description), PCP_DESCRIPTION_MAX);
}

static void test_malformed(void)
{
	struct pcp_msg m;
	char hex[8192];
	/* length: < 24, > 1100, not a multiple of 4 */
	vec("02 81 00 00 00000e10 0000012c 0000000000000000", PCP_ERR_SHORT, &m, true);
	vec("", PCP_ERR_SHORT, &m, true);
	int n = snprintf(hex, sizeof hex, "%s", MAP_RESP_HDR MAP_RESP_DATA "80 00 0410");
	for (int i = 0; i < 1040; i++)
		n += snprintf(hex + n, sizeof hex - (size_t)n, "41");
	vec(hex, PCP_ERR_LONG, &m, true); /* 1104 bytes */
	n = snprintf(hex, sizeof hex, "%s", MAP_RESP_HDR MAP_RESP_DATA "80 00 040c");
	for (int i = 0; i < 1036; i++)
		n += snprintf(hex + n, sizeof hex - (size_t)n, "41");
	CHECK_EQ(vec(hex, PCP_OK, &m, false), PCP_OK); /* 1100 bytes is fine */
	vec(MAP_RESP_HDR MAP_RESP_DATA "0000", PCP_ERR_ALIGN, &m, true);
	/* version 1 and 0 (NAT-PMP) */
	vec("01 81 00 00 00000e10 0000012c 000000000000000000000000" MAP_RESP_DATA, PCP_ERR_VERSION, &m, true);
	vec("00 81 00 00 00000e10 0000012c 000000000000000000000000" MAP_RESP_DATA, PCP_ERR_VERSION, &m, true);
	/* unknown opcode 3 */
	vec("02 83 00 00 00000e10 0000012c 000000000000000000000000", PCP_ERR_OPCODE, &m, true);
	/* result code 14 out of range */
	vec("02 81 00 0e 00000e10 0000012c 000000000000000000000000" MAP_RESP_DATA, PCP_ERR_RESULT, &m, true);
	/* MAP header without MAP data */
	vec(MAP_RESP_HDR, PCP_ERR_SHORT, &m, true);
	vec(MAP_RESP_HDR "0102030405060708090a0b0c 06000000", PCP_ERR_SHORT, &m, true);
	/* unknown mandatory option 7 */
	vec(MAP_RESP_HDR MAP_RESP_DATA "07 00 0000", PCP_ERR_OPTION_UNKNOWN, &m, true);
	/* option overrunning the packet */
	vec(MAP_RESP_HDR MAP_RESP_DATA "01 00 0014 00000000 00000000 0000ffff c0a8010a", PCP_ERR_OPTION, &m, true);
	vec(MAP_RESP_HDR MAP_RESP_DATA "80 00 0001", PCP_ERR_OPTION, &m, true);
	/* wrong length for the code */
	vec(MAP_RESP_HDR MAP_RESP_DATA "01 00 000c 00000000 0000ffff c0a8010a", PCP_ERR_OPTION, &m, true);
	vec(MAP_RESP_HDR MAP_RESP_DATA "02 00 0004 00000000", PCP_ERR_OPTION, &m, true);
	vec(MAP_RESP_HDR MAP_RESP_DATA "03 00 0010 00000000 00000000 0000ffff c0a8010a", PCP_ERR_OPTION, &m, true);
	/* repeated THIRD_PARTY / PREFER_FAILURE */
	vec(MAP_RESP_HDR MAP_RESP_DATA OPT_THIRD_PARTY OPT_THIRD_PARTY, PCP_ERR_OPTION, &m, true);
	vec(MAP_REQ_HDR MAP_REQ_DATA OPT_PREFER_FAILURE OPT_PREFER_FAILURE, PCP_ERR_OPTION, &m, true);
	/* PREFER_FAILURE and FILTER are MAP-only (§13.2, §13.3) */
	vec("02 02 0000 00001c20 20010db8 00000000 00000000 00000001"
	    "aaaaaaaaaaaaaaaaaaaaaaaa 11 000000 1388 1388 00000000 00000000 00000000 00000000"
	    "01bb 0000 20010db8 00000000 00000000 00000099" OPT_PREFER_FAILURE,
	    PCP_ERR_OPTION, &m, true);
	/* FILTER prefix length 129; nine filters */
	vec(MAP_REQ_HDR MAP_REQ_DATA "03 00 0014 00 81 0050 00000000 00000000 0000ffff c6336400", PCP_ERR_OPTION, &m,
	    true);
	n = snprintf(hex, sizeof hex, "%s", MAP_REQ_HDR MAP_REQ_DATA);
	for (int i = 0; i < 9; i++)
		n += snprintf(hex + n, sizeof hex - (size_t)n, "03 00 0014 00 80 0050 20010db8 00000000 00000000 %08x", i);
	vec(hex, PCP_ERR_OPTION, &m, true);
	CHECK_EQ(pcp_msg_decode(NULL, 4, &m), PCP_ERR_INVAL);
}

static void test_encode_errors(void)
{
	struct pcp_msg m = { .version = 0, .opcode = PCP_OPCODE_MAP, .lifetime = 10 };
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_OK);
	CHECK_EQ(len, 60);
	CHECK_EQ(buf[0], 2); /* version 0 is written as 2 */
	CHECK_EQ(pcp_msg_encode(&m, buf, 59, &len), PCP_ERR_BUFFER);
	m.opcode = 3;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	m.opcode = PCP_OPCODE_ANNOUNCE;
	m.prefer_failure = true;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	m.opcode = PCP_OPCODE_PEER;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	m.prefer_failure = false;
	m.n_filters = 1;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	m.opcode = PCP_OPCODE_MAP;
	m.n_filters = PCP_MAX_FILTERS + 1;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	m.n_filters = 1;
	m.filters[0].prefix_len = 129;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_ERR_INVAL);
	/* a misbehaving test server may send version 1 */
	struct pcp_msg r = { .version = 1, .response = true, .opcode = PCP_OPCODE_ANNOUNCE };
	CHECK_EQ(pcp_msg_encode(&r, buf, sizeof buf, &len), PCP_OK);
	CHECK_EQ(buf[0], 1);
	CHECK_EQ(buf[1], 0x80);
	/* the largest message: 8 filters + 255-byte description fits in 1100 */
	struct pcp_msg big = { .opcode = PCP_OPCODE_MAP, .has_third_party = true, .prefer_failure = true,
			       .n_filters = PCP_MAX_FILTERS, .has_description = true };
	memset(big.description, 'x', PCP_DESCRIPTION_MAX);
	CHECK_EQ(pcp_msg_encode(&big, buf, sizeof buf, &len), PCP_OK);
	CHECK_EQ(len, 24 + 36 + 20 + 4 + 8 * 24 + 4 + 256);
}

static void test_addr_and_names(void)
{
	struct in6_addr a;
	char buf[INET6_ADDRSTRLEN];
	in6(&a, "192.0.2.1");
	CHECK(pcp_addr_is_v4(&a));
	CHECK(strcmp(pcp_addr_format(&a, buf, sizeof buf), "192.0.2.1") == 0);
	in6(&a, "2001:db8::1");
	CHECK(!pcp_addr_is_v4(&a));
	CHECK(strcmp(pcp_addr_format(&a, buf, sizeof buf), "2001:db8::1") == 0);
	CHECK(!pcp_addr_parse(&a, "1.2.3"));
	CHECK(!pcp_addr_parse(&a, "example.com"));
	struct in_addr v4 = { htonl(0xc0000201) };
	pcp_addr_from_v4(&a, &v4);
	CHECK(addr_eq(&a, "::ffff:192.0.2.1"));

	CHECK(strcmp(pcp_result_name(0), "SUCCESS") == 0);
	CHECK(strcmp(pcp_result_name(12), "ADDRESS_MISMATCH") == 0);
	CHECK(strcmp(pcp_result_name(13), "EXCESSIVE_REMOTE_PEERS") == 0);
	CHECK(strcmp(pcp_result_name(14), "UNKNOWN") == 0);
	for (unsigned r = 0; r <= PCP_RESULT_MAX; r++)
		CHECK(pcp_result_name(r) != NULL && strcmp(pcp_result_name(r), "UNKNOWN") != 0);
	for (int e = 0; e <= PCP_ERR_NOMEM; e++)
		CHECK(pcp_err_name((enum pcp_err)e) != NULL);
	CHECK(strcmp(pcp_err_name(PCP_ERR_WRONG_SOURCE), "WRONG_SOURCE") == 0);
	/* RFC 6887 §7.4 short-lifetime errors */
	CHECK(pcp_result_is_short_lived(PCP_RESULT_NETWORK_FAILURE));
	CHECK(pcp_result_is_short_lived(PCP_RESULT_NO_RESOURCES));
	CHECK(pcp_result_is_short_lived(PCP_RESULT_USER_EX_QUOTA));
	unsigned long_lived[] = { 1, 2, 3, 4, 5, 6, 9, 11, 12, 13 };
	for (size_t i = 0; i < sizeof long_lived / sizeof long_lived[0]; i++)
		CHECK(!pcp_result_is_short_lived(long_lived[i]));
	CHECK(!pcp_result_is_short_lived(PCP_RESULT_SUCCESS));
}

/* RFC 6887 §9: UNSUPP_VERSION answers in any version, which pcp_msg_decode refuses. */
static bool unsupp(const char *hex, int want_version)
{
	uint8_t buf[PCP_MAX_PACKET + 8];
	size_t len = tu_hex(hex, buf, sizeof buf);
	uint8_t v = 0xee;
	bool yes = pcp_msg_is_unsupp_version(buf, len, &v);
	if (yes)
		CHECK_EQ(v, want_version);
	else
		CHECK_EQ(v, 0xee); /* untouched */
	return yes;
}

static void test_unsupp_version(void)
{
	uint8_t buf[PCP_MAX_PACKET + 8];
	struct pcp_msg m;
	/* version 1 header: R, MAP, result 1, Lifetime 1800, Epoch 0x1234 */
	const char *v1 = "01 81 00 01  00000708  00001234  000000000000000000000000";
	CHECK(unsupp(v1, 1));
	CHECK_EQ(pcp_msg_decode(buf, tu_hex(v1, buf, sizeof buf), &m), PCP_ERR_VERSION);
	/* a version-3 server echoing a whole MAP */
	CHECK(unsupp("03 81 00 01  00000000 00000005 000000000000000000000000 " MAP_RESP_DATA, 3));
	/* version 2, just the header: too short for a MAP to decode */
	const char *v2 = "02 81 00 01  00000000  00000005  000000000000000000000000";
	CHECK(unsupp(v2, 2));
	CHECK_EQ(pcp_msg_decode(buf, tu_hex(v2, buf, sizeof buf), &m), PCP_ERR_SHORT);
	/* NAT-PMP (RFC 6886 §3.5): 8 bytes, a 16-bit result; OP 0, 128 or 128 + 1 */
	const char *pmp = "00 81 0001  0000abcd";
	CHECK(unsupp(pmp, 0));
	CHECK_EQ(pcp_msg_decode(buf, tu_hex(pmp, buf, sizeof buf), &m), PCP_ERR_SHORT);
	CHECK(unsupp("00 00 0001  0000abcd", 0));
	CHECK(unsupp("00 80 0001  0000abcd", 0));
	CHECK(unsupp("00 81 0001  0000abcd 00000000", 0));
	/* not UNSUPP_VERSION answers */
	CHECK(!unsupp("00 82 0001  0000abcd", 0));                  /* NAT-PMP answer to opcode 2 */
	CHECK(!unsupp("00 81 0101  0000abcd", 0));                  /* result 257 */
	CHECK(!unsupp("00 81 0000  0000abcd", 0));                  /* success */
	CHECK(!unsupp("00 81 0001  0000ab", 0));                    /* 7 bytes */
	CHECK(!unsupp("00 81 0001", 0));                            /* 4 bytes */
	CHECK(!unsupp("01 01 00 01  00000708 00001234 000000000000000000000000", 0)); /* a request */
	CHECK(!unsupp("01 82 00 01  00000708 00001234 000000000000000000000000", 0)); /* PEER */
	CHECK(!unsupp("01 80 00 01  00000708 00001234 000000000000000000000000", 0)); /* ANNOUNCE */
	CHECK(!unsupp("01 81 00 02  00000708 00001234 000000000000000000000000", 0)); /* NOT_AUTHORIZED */
	CHECK(!unsupp("01 81 00 01  00000708 00001234 0000000000000000", 0));         /* 20 bytes */
	CHECK(!unsupp("01 81 00 01  00000708 00001234 000000000000000000000000 0000", 0)); /* 26 */
	memset(buf, 0, sizeof buf);
	buf[0] = 1;
	buf[1] = 0x81;
	buf[3] = 1;
	CHECK(pcp_msg_is_unsupp_version(buf, PCP_MAX_PACKET, NULL));
	CHECK(!pcp_msg_is_unsupp_version(buf, PCP_MAX_PACKET + 4, NULL)); /* over 1100 */
	CHECK(!pcp_msg_is_unsupp_version(NULL, 24, NULL));
	/* a version-2 UNSUPP_VERSION that decodes is also one (the engine matches it by nonce) */
	CHECK(unsupp("02 81 00 01 00000000 0000012c 000000000000000000000000 " MAP_RESP_DATA, 2));
}

int main(void)
{
	TU_RUN(test_map_request);
	TU_RUN(test_map_request_bare);
	TU_RUN(test_map_response);
	TU_RUN(test_map_error_response);
	TU_RUN(test_filter);
	TU_RUN(test_peer);
	TU_RUN(test_announce);
	TU_RUN(test_unknown_optional_skipped);
	TU_RUN(test_description_long_truncated);
	TU_RUN(test_malformed);
	TU_RUN(test_encode_errors);
	TU_RUN(test_addr_and_names);
	TU_RUN(test_unsupp_version);
	return tu_finish(__FILE__);
}
