/*
 * pcp_servers.c - PCP server addresses as text: one entry ("ADDR", "ADDR:PORT", "[V6]",
 * "[V6]:PORT", bare IPv6) and the server-list file a DHCP client hook writes with the
 * addresses of DHCPv4 option 158 / DHCPv6 option 86 (RFC 7291), one per line, in
 * preference order (RFC 7488). Pure: no I/O, no allocation, bounds-checked, never
 * needs a NUL terminator. No resolver: a name is a SYNTAX error.
 */
#include "pcp.h"

#include <arpa/inet.h>
#include <string.h>

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Decimal 1..65535, digits only. */
static enum pcp_err parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned v = 0;
	if (len == 0 || len > 5)
		return PCP_ERR_PORT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PCP_ERR_PORT;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return PCP_ERR_PORT;
	*port = (uint16_t)v;
	return PCP_OK;
}

/* An address no PCP server can be reached at. */
static bool unusable(const struct in6_addr *a)
{
	static const struct in6_addr zero;
	const uint8_t *b = a->s6_addr;
	if (memcmp(a, &zero, sizeof zero) == 0)
		return true; /* :: */
	if (pcp_addr_is_v4(a)) {
		if ((b[12] | b[13] | b[14] | b[15]) == 0)
			return true; /* 0.0.0.0 */
		if ((b[12] & 0xf0) == 0xe0)
			return true; /* 224.0.0.0/4 */
		return b[12] == 255 && b[13] == 255 && b[14] == 255 && b[15] == 255;
	}
	if (b[0] == 0xff)
		return true; /* ff00::/8 */
	return b[0] == 0xfe && (b[1] & 0xc0) == 0x80; /* fe80::/10 needs a scope */
}

enum pcp_err pcp_server_parse(const char *text, size_t len, struct pcp_server *out)
{
	char host[PCP_SERVER_TEXT_MAX + 1];
	const char *port_text = NULL;
	size_t hlen, plen = 0;
	uint16_t port = PCP_SERVER_PORT;

	if (!text || !out || len == 0 || len > PCP_SERVER_TEXT_MAX)
		return PCP_ERR_SYNTAX;
	for (size_t i = 0; i < len; i++)
		if (!is_hex(text[i]) && text[i] != '.' && text[i] != ':' && text[i] != '[' && text[i] != ']')
			return PCP_ERR_SYNTAX;

	if (text[0] == '[') {
		const char *end = memchr(text, ']', len);
		if (!end)
			return PCP_ERR_SYNTAX;
		hlen = (size_t)(end - text) - 1;
		memcpy(host, text + 1, hlen);
		size_t rest = len - (size_t)(end - text) - 1;
		if (rest > 0) {
			if (end[1] != ':')
				return PCP_ERR_SYNTAX;
			port_text = end + 2;
			plen = rest - 1;
		}
		if (memchr(host, '[', hlen))
			return PCP_ERR_SYNTAX;
		if (!memchr(host, ':', hlen))
			return PCP_ERR_ADDRESS; /* only IPv6 goes in brackets */
	} else {
		if (memchr(text, '[', len) || memchr(text, ']', len))
			return PCP_ERR_SYNTAX;
		const char *colon = memchr(text, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon - text) - 1))
			colon = NULL; /* two colons or more: a bare IPv6 address */
		hlen = colon ? (size_t)(colon - text) : len;
		memcpy(host, text, hlen);
		if (colon) {
			port_text = colon + 1;
			plen = len - hlen - 1;
		}
	}
	host[hlen] = '\0';
	if (port_text) {
		enum pcp_err e = parse_port(port_text, plen, &port);
		if (e != PCP_OK)
			return e;
	}
	struct in6_addr a;
	if (hlen == 0 || !pcp_addr_parse(&a, host) || unusable(&a))
		return PCP_ERR_ADDRESS;
	out->addr = a;
	out->port = port;
	return PCP_OK;
}

size_t pcp_servers_parse(const char *text, size_t len, struct pcp_server *out, size_t cap,
			 pcp_servers_bad_line_cb *bad, void *arg)
{
	size_t n = 0, pos = 0;
	unsigned line = 0;
	if (!text)
		return 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t s = pos, e = end;
		pos = nl ? end + 1 : len;
		line++;
		if (e > s && text[e - 1] == '\r')
			e--;
		while (s < e && (text[s] == ' ' || text[s] == '\t'))
			s++;
		while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t'))
			e--;
		if (s == e || text[s] == '#')
			continue;
		struct pcp_server srv;
		enum pcp_err why = pcp_server_parse(text + s, e - s, &srv);
		if (why == PCP_OK) {
			for (size_t i = 0; i < n; i++)
				if (out[i].port == srv.port && memcmp(&out[i].addr, &srv.addr, sizeof srv.addr) == 0)
					why = PCP_ERR_DUPLICATE;
		}
		if (why == PCP_OK && (!out || n >= cap))
			why = PCP_ERR_TOO_MANY;
		if (why != PCP_OK) {
			if (bad)
				bad(arg, line, why);
			continue;
		}
		out[n++] = srv;
	}
	return n;
}
