/*
 * pcp_codec.c - RFC 6887 message codec: bytes <-> struct pcp_msg.
 *
 * Pure: no allocation, no I/O, no logging. Every byte is read and written through the
 * bounds-checked reader / writer below; nothing is ever cast onto a buffer.
 */
#include "pcp.h"

#include <arpa/inet.h>
#include <string.h>

/* ---------------------------------------------------------------- bounds-checked reader */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static size_t rd_left(const struct rd *r)
{
	return r->len - r->off;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[r->off++];
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)((unsigned)r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[r->off] << 24 | (uint32_t)r->p[r->off + 1] << 16 |
	     (uint32_t)r->p[r->off + 2] << 8 | r->p[r->off + 3];
	r->off += 4;
	return true;
}

static bool rd_bytes(struct rd *r, void *out, size_t n)
{
	if (rd_left(r) < n)
		return false;
	memcpy(out, r->p + r->off, n);
	r->off += n;
	return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
	if (rd_left(r) < n)
		return false;
	r->off += n;
	return true;
}

static bool rd_addr(struct rd *r, struct in6_addr *a)
{
	return rd_bytes(r, a->s6_addr, 16);
}

/* ---------------------------------------------------------------- bounds-checked writer */

struct wr {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool overflow;
};

static bool wr_room(struct wr *w, size_t n)
{
	if (w->overflow || w->cap - w->off < n) {
		w->overflow = true;
		return false;
	}
	return true;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	if (wr_room(w, 1))
		w->p[w->off++] = v;
}

static void wr_u16(struct wr *w, uint16_t v)
{
	wr_u8(w, (uint8_t)(v >> 8));
	wr_u8(w, (uint8_t)v);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	wr_u16(w, (uint16_t)(v >> 16));
	wr_u16(w, (uint16_t)v);
}

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (wr_room(w, n)) {
		memcpy(w->p + w->off, src, n);
		w->off += n;
	}
}

static void wr_zero(struct wr *w, size_t n)
{
	if (wr_room(w, n)) {
		memset(w->p + w->off, 0, n);
		w->off += n;
	}
}

static void wr_addr(struct wr *w, const struct in6_addr *a)
{
	wr_bytes(w, a->s6_addr, 16);
}

/* ---------------------------------------------------------------- names */

static const char *const result_names[PCP_RESULT_MAX + 1] = {
	[PCP_RESULT_SUCCESS] = "SUCCESS",
	[PCP_RESULT_UNSUPP_VERSION] = "UNSUPP_VERSION",
	[PCP_RESULT_NOT_AUTHORIZED] = "NOT_AUTHORIZED",
	[PCP_RESULT_MALFORMED_REQUEST] = "MALFORMED_REQUEST",
	[PCP_RESULT_UNSUPP_OPCODE] = "UNSUPP_OPCODE",
	[PCP_RESULT_UNSUPP_OPTION] = "UNSUPP_OPTION",
	[PCP_RESULT_MALFORMED_OPTION] = "MALFORMED_OPTION",
	[PCP_RESULT_NETWORK_FAILURE] = "NETWORK_FAILURE",
	[PCP_RESULT_NO_RESOURCES] = "NO_RESOURCES",
	[PCP_RESULT_UNSUPP_PROTOCOL] = "UNSUPP_PROTOCOL",
	[PCP_RESULT_USER_EX_QUOTA] = "USER_EX_QUOTA",
	[PCP_RESULT_CANNOT_PROVIDE_EXTERNAL] = "CANNOT_PROVIDE_EXTERNAL",
	[PCP_RESULT_ADDRESS_MISMATCH] = "ADDRESS_MISMATCH",
	[PCP_RESULT_EXCESSIVE_REMOTE_PEERS] = "EXCESSIVE_REMOTE_PEERS",
};

/* RFC 6887 §7.4: the short-lifetime errors. CANNOT_PROVIDE_EXTERNAL ("depends on the
 * reason") is not among them: with PREFER_FAILURE it means the port is gone, which the
 * caller must hear at once. */
static const bool result_short_lived[PCP_RESULT_MAX + 1] = {
	[PCP_RESULT_NETWORK_FAILURE] = true,
	[PCP_RESULT_NO_RESOURCES] = true,
	[PCP_RESULT_USER_EX_QUOTA] = true,
};

static const char *const err_names[PCP_ERR_NOMEM + 1] = {
	[PCP_OK] = "OK",
	[PCP_ERR_SHORT] = "SHORT",
	[PCP_ERR_LONG] = "LONG",
	[PCP_ERR_ALIGN] = "ALIGN",
	[PCP_ERR_VERSION] = "VERSION",
	[PCP_ERR_OPCODE] = "OPCODE",
	[PCP_ERR_RBIT] = "RBIT",
	[PCP_ERR_RESULT] = "RESULT",
	[PCP_ERR_OPTION] = "OPTION",
	[PCP_ERR_OPTION_UNKNOWN] = "OPTION_UNKNOWN",
	[PCP_ERR_BUFFER] = "BUFFER",
	[PCP_ERR_INVAL] = "INVAL",
	[PCP_ERR_UNSOLICITED] = "UNSOLICITED",
	[PCP_ERR_WRONG_SOURCE] = "WRONG_SOURCE",
	[PCP_ERR_SYNTAX] = "SYNTAX",
	[PCP_ERR_ADDRESS] = "ADDRESS",
	[PCP_ERR_PORT] = "PORT",
	[PCP_ERR_TOO_MANY] = "TOO_MANY",
	[PCP_ERR_DUPLICATE] = "DUPLICATE",
	[PCP_ERR_NOMEM] = "NOMEM",
};

const char *pcp_result_name(unsigned result)
{
	return result <= PCP_RESULT_MAX ? result_names[result] : "UNKNOWN";
}

bool pcp_result_is_short_lived(unsigned result)
{
	return result <= PCP_RESULT_MAX && result_short_lived[result];
}

const char *pcp_err_name(enum pcp_err err)
{
	return (unsigned)err <= PCP_ERR_NOMEM ? err_names[err] : "UNKNOWN";
}

/* ---------------------------------------------------------------- option rules */

#define OPT_LEN_ANY 0xffff

/* RFC 6887 §13 and RFC 7220 §3: length, where valid, and whether it may repeat. */
static const struct opt_rule {
	uint8_t code;
	uint16_t len;
	bool map, peer;
	bool repeat;
} opt_rules[] = {
	{ PCP_OPTION_THIRD_PARTY, 16, true, true, false },       /* §13.1 */
	{ PCP_OPTION_PREFER_FAILURE, 0, true, false, false },    /* §13.2 */
	{ PCP_OPTION_FILTER, 20, true, false, true },            /* §13.3 */
	{ PCP_OPTION_DESCRIPTION, OPT_LEN_ANY, true, true, false }, /* RFC 7220 */
};

static const struct opt_rule *opt_rule_find(uint8_t code)
{
	for (size_t i = 0; i < sizeof opt_rules / sizeof opt_rules[0]; i++)
		if (opt_rules[i].code == code)
			return &opt_rules[i];
	return NULL;
}

static bool opt_allowed(const struct opt_rule *rule, uint8_t opcode)
{
	return (opcode == PCP_OPCODE_MAP && rule->map) || (opcode == PCP_OPCODE_PEER && rule->peer);
}

/* ---------------------------------------------------------------- decode */

/*
 * RFC 6887 §7.1 request header / §7.2 response header (24 bytes each):
 *   | Version=2 |R| Opcode | Reserved (16)            |   (request)
 *   | Version=2 |R| Opcode | Reserved (8) | Result (8) |  (response)
 *   | Requested Lifetime / Lifetime (32)               |
 *   | request: PCP Client's IP Address (128)           |
 *   | response: Epoch Time (32), Reserved (96)         |
 */
static enum pcp_err decode_header(struct rd *r, struct pcp_msg *m)
{
	uint8_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;

	if (!rd_u8(r, &b0) || !rd_u8(r, &b1) || !rd_u8(r, &b2) || !rd_u8(r, &b3))
		return PCP_ERR_SHORT;
	(void)b2;
	m->version = b0;
	if (b0 != PCP_VERSION)
		return PCP_ERR_VERSION;
	m->response = (b1 & 0x80) != 0;
	m->opcode = b1 & 0x7f;
	if (m->opcode > PCP_OPCODE_PEER)
		return PCP_ERR_OPCODE;
	if (m->response) {
		m->result = b3;
		if (b3 > PCP_RESULT_MAX)
			return PCP_ERR_RESULT;
		if (!rd_u32(r, &m->lifetime) || !rd_u32(r, &m->epoch) || !rd_skip(r, 12))
			return PCP_ERR_SHORT;
	} else {
		if (!rd_u32(r, &m->lifetime) || !rd_addr(r, &m->client_addr))
			return PCP_ERR_SHORT;
	}
	return PCP_OK;
}

/*
 * RFC 6887 §11.1 MAP (36 bytes) and §12.1 PEER (56 bytes):
 *   | Mapping Nonce (96)                                     |
 *   | Protocol | Reserved (24)                               |
 *   | Internal Port (16) | Suggested/Assigned External Port   |
 *   | Suggested/Assigned External IP Address (128)           |
 * PEER adds:
 *   | Remote Peer Port (16) | Reserved (16)                  |
 *   | Remote Peer IP Address (128)                           |
 */
static enum pcp_err decode_opdata(struct rd *r, struct pcp_msg *m)
{
	if (m->opcode == PCP_OPCODE_ANNOUNCE)
		return PCP_OK; /* §14.1: no opcode-specific data */
	if (!rd_bytes(r, m->nonce, PCP_NONCE_LEN) || !rd_u8(r, &m->protocol) || !rd_skip(r, 3) ||
	    !rd_u16(r, &m->internal_port) || !rd_u16(r, &m->external_port) ||
	    !rd_addr(r, &m->external_addr))
		return PCP_ERR_SHORT;
	if (m->opcode == PCP_OPCODE_PEER) {
		if (!rd_u16(r, &m->remote_port) || !rd_skip(r, 2) || !rd_addr(r, &m->remote_addr))
			return PCP_ERR_SHORT;
	}
	return PCP_OK;
}

/*
 * RFC 6887 §7.3 option:
 *   | Option Code (8) | Reserved (8) | Option Length (16) |
 *   | data, Option Length bytes, padded with zeros to a multiple of 4 |
 */
static enum pcp_err decode_option(struct rd *r, struct pcp_msg *m, unsigned *seen)
{
	uint8_t code = 0, reserved = 0;
	uint16_t len = 0;

	if (!rd_u8(r, &code) || !rd_u8(r, &reserved) || !rd_u16(r, &len))
		return PCP_ERR_SHORT; /* cannot happen: the length is a multiple of 4 */
	size_t padded = ((size_t)len + 3) & ~(size_t)3;
	if (padded > rd_left(r))
		return PCP_ERR_OPTION;
	struct rd body = { r->p + r->off, len, 0 };
	r->off += padded;

	const struct opt_rule *rule = opt_rule_find(code);
	if (!rule || !opt_allowed(rule, m->opcode)) {
		if (code < 128)
			return rule ? PCP_ERR_OPTION : PCP_ERR_OPTION_UNKNOWN;
		if (m->n_unknown_optional < UINT8_MAX)
			m->n_unknown_optional++; /* §7.3: optional options may be ignored */
		return PCP_OK;
	}
	if (rule->len != OPT_LEN_ANY && rule->len != len)
		return PCP_ERR_OPTION;
	unsigned bit = 1u << (rule - opt_rules);
	if (!rule->repeat && (*seen & bit))
		return PCP_ERR_OPTION;
	*seen |= bit;

	switch (code) {
	case PCP_OPTION_THIRD_PARTY: /* §13.1: Internal IP Address (128) */
		m->has_third_party = true;
		(void)rd_addr(&body, &m->third_party);
		break;
	case PCP_OPTION_PREFER_FAILURE: /* §13.2: no data */
		m->prefer_failure = true;
		break;
	case PCP_OPTION_FILTER: { /* §13.3: Reserved (8), Prefix Length (8), Port (16), Address (128) */
		struct pcp_filter flt = { 0 };
		uint8_t res = 0;
		(void)rd_u8(&body, &res);
		(void)rd_u8(&body, &flt.prefix_len);
		(void)rd_u16(&body, &flt.port);
		(void)rd_addr(&body, &flt.addr);
		if (flt.prefix_len > 128 || m->n_filters >= PCP_MAX_FILTERS)
			return PCP_ERR_OPTION;
		m->filters[m->n_filters++] = flt;
		break;
	}
	case PCP_OPTION_DESCRIPTION: { /* RFC 7220: UTF-8 text, not NUL-terminated */
		size_t n = len < PCP_DESCRIPTION_MAX ? len : PCP_DESCRIPTION_MAX;
		(void)rd_bytes(&body, m->description, n);
		m->description[n] = '\0';
		m->has_description = true;
		break;
	}
	default:
		break;
	}
	return PCP_OK;
}

enum pcp_err pcp_msg_decode(const uint8_t *buf, size_t len, struct pcp_msg *m)
{
	if (!m || (!buf && len))
		return PCP_ERR_INVAL;
	memset(m, 0, sizeof *m);
	if (len < PCP_HEADER_LEN)
		return PCP_ERR_SHORT;
	if (len > PCP_MAX_PACKET)
		return PCP_ERR_LONG;
	if (len % 4)
		return PCP_ERR_ALIGN;

	struct rd r = { buf, len, 0 };
	enum pcp_err err = decode_header(&r, m);
	if (err == PCP_OK)
		err = decode_opdata(&r, m);
	unsigned seen = 0;
	while (err == PCP_OK && rd_left(&r) > 0)
		err = decode_option(&r, m, &seen);
	return err;
}

/*
 * RFC 6887 §9: an UNSUPP_VERSION answer, whatever its version. Only the first four
 * bytes are read, which every version keeps in place:
 *   PCP (any version):  | Version | R | Opcode | Reserved (8) | Result (8) |  (+ >= 20 bytes)
 *   NAT-PMP (RFC 6886 §3.5, version 0): | 0 | OP | Result (16) | Epoch (32) |
 */
bool pcp_msg_is_unsupp_version(const uint8_t *buf, size_t len, uint8_t *version)
{
	struct rd r = { buf, len, 0 };
	uint8_t ver = 0, op = 0, b2 = 0, b3 = 0;
	if (!buf || len % 4 || len > PCP_MAX_PACKET || !rd_u8(&r, &ver) || !rd_u8(&r, &op) || !rd_u8(&r, &b2) ||
	    !rd_u8(&r, &b3))
		return false;
	bool ok;
	if (ver == 0) /* NAT-PMP: OP drawn as 0 in RFC 6886, sent as 128 + opcode by others */
		ok = len >= 8 && (op == 0x00 || op == 0x80 || op == (0x80 | PCP_OPCODE_MAP)) && b2 == 0 &&
		     b3 == PCP_RESULT_UNSUPP_VERSION;
	else
		ok = len >= PCP_HEADER_LEN && op == (0x80 | PCP_OPCODE_MAP) && b3 == PCP_RESULT_UNSUPP_VERSION;
	if (ok && version)
		*version = ver;
	return ok;
}

/* ---------------------------------------------------------------- encode */

static void encode_option_header(struct wr *w, uint8_t code, uint16_t len)
{
	wr_u8(w, code);
	wr_u8(w, 0);
	wr_u16(w, len);
}

enum pcp_err pcp_msg_encode(const struct pcp_msg *m, uint8_t *buf, size_t cap, size_t *out_len)
{
	if (!m || !buf || !out_len || m->opcode > PCP_OPCODE_PEER || m->n_filters > PCP_MAX_FILTERS)
		return PCP_ERR_INVAL;
	bool is_map = m->opcode == PCP_OPCODE_MAP, is_peer = m->opcode == PCP_OPCODE_PEER;
	if ((m->has_third_party && !is_map && !is_peer) || (m->prefer_failure && !is_map) ||
	    (m->n_filters && !is_map) || (m->has_description && !is_map && !is_peer))
		return PCP_ERR_INVAL;
	for (unsigned i = 0; i < m->n_filters; i++)
		if (m->filters[i].prefix_len > 128)
			return PCP_ERR_INVAL;

	struct wr w = { buf, cap < PCP_MAX_PACKET ? cap : PCP_MAX_PACKET, 0, false };

	/* §7.1 / §7.2 header */
	wr_u8(&w, m->version ? m->version : PCP_VERSION);
	wr_u8(&w, (uint8_t)((m->response ? 0x80 : 0) | m->opcode));
	wr_u8(&w, 0);
	wr_u8(&w, m->response ? m->result : 0);
	wr_u32(&w, m->lifetime);
	if (m->response) {
		wr_u32(&w, m->epoch);
		wr_zero(&w, 12);
	} else {
		wr_addr(&w, &m->client_addr);
	}

	/* §11.1 / §12.1 opcode-specific data */
	if (is_map || is_peer) {
		wr_bytes(&w, m->nonce, PCP_NONCE_LEN);
		wr_u8(&w, m->protocol);
		wr_zero(&w, 3);
		wr_u16(&w, m->internal_port);
		wr_u16(&w, m->external_port);
		wr_addr(&w, &m->external_addr);
		if (is_peer) {
			wr_u16(&w, m->remote_port);
			wr_zero(&w, 2);
			wr_addr(&w, &m->remote_addr);
		}
	}

	/* §13 options */
	if (m->has_third_party) {
		encode_option_header(&w, PCP_OPTION_THIRD_PARTY, 16);
		wr_addr(&w, &m->third_party);
	}
	if (m->prefer_failure)
		encode_option_header(&w, PCP_OPTION_PREFER_FAILURE, 0);
	for (unsigned i = 0; i < m->n_filters; i++) {
		encode_option_header(&w, PCP_OPTION_FILTER, 20);
		wr_u8(&w, 0);
		wr_u8(&w, m->filters[i].prefix_len);
		wr_u16(&w, m->filters[i].port);
		wr_addr(&w, &m->filters[i].addr);
	}
	if (m->has_description) {
		size_t n = strnlen(m->description, PCP_DESCRIPTION_MAX);
		encode_option_header(&w, PCP_OPTION_DESCRIPTION, (uint16_t)n);
		wr_bytes(&w, m->description, n);
		wr_zero(&w, ((n + 3) & ~(size_t)3) - n);
	}

	if (w.overflow)
		return PCP_ERR_BUFFER;
	*out_len = w.off;
	return PCP_OK;
}

/* ---------------------------------------------------------------- addresses */

void pcp_addr_from_v4(struct in6_addr *out, const struct in_addr *v4)
{
	/* RFC 6887 §5: IPv4 addresses travel as IPv4-mapped IPv6, ::ffff:a.b.c.d */
	memset(out, 0, sizeof *out);
	out->s6_addr[10] = 0xff;
	out->s6_addr[11] = 0xff;
	memcpy(&out->s6_addr[12], &v4->s_addr, 4);
}

bool pcp_addr_is_v4(const struct in6_addr *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a->s6_addr, prefix, sizeof prefix) == 0;
}

bool pcp_addr_parse(struct in6_addr *out, const char *text)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!out || !text)
		return false;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		pcp_addr_from_v4(out, &v4);
		return true;
	}
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		*out = v6;
		return true;
	}
	return false;
}

const char *pcp_addr_format(const struct in6_addr *a, char *buf, size_t cap)
{
	if (!a || !buf || cap == 0)
		return "";
	const char *res = pcp_addr_is_v4(a) ? inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)cap)
					    : inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
	if (!res) {
		buf[0] = '\0';
		return buf;
	}
	return res;
}
