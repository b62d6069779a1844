/*
 * fuzz_pcp_decode.c - libFuzzer target for the PCP decoder and the client engine.
 *
 * For every input: decode; a decodable message must re-encode and decode to the same
 * fields (unknown optional options and bytes after an embedded NUL in DESCRIPTION are
 * the only things not carried over). Then the input is fed to a client engine that has
 * one outstanding MAP whose nonce, protocol and internal port are taken from the input,
 * so that well-formed MAP responses reach the response handling, and the engine's
 * timers are run afterwards (timer heap and nonce hash checked after every step; an
 * UNSUPP_VERSION answer of any version is recognised, RFC 6887 §9). The same bytes are
 * also read as a DHCP hand-over server file (pcp_servers_parse): every server it yields
 * must format and parse back to itself. Built with -fsanitize=fuzzer under clang; with other
 * compilers fuzz_replay_main.c replays the seed corpus through the same function.
 */
#include "pcp.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void normalise(struct pcp_msg *m)
{
	size_t n = strnlen(m->description, sizeof m->description);
	memset(m->description + n, 0, sizeof m->description - n);
	m->n_unknown_optional = 0;
}

struct fuzz_ctx {
	struct pcp_client *client;
	uint32_t seed;
};

static void fuzz_random(void *arg, void *buf, size_t len)
{
	struct fuzz_ctx *x = arg;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		x->seed = x->seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(x->seed >> 16);
	}
}

static void fuzz_event(void *arg, const struct pcp_event *ev)
{
	struct fuzz_ctx *x = arg;
	/* exercise re-entrancy: forget or delete flows from inside events */
	if (ev->type == PCP_EVENT_FAILED && ev->flow)
		pcp_flow_abandon(x->client, ev->flow);
	if (ev->type == PCP_EVENT_RENEW_FAILED && ev->flow)
		pcp_flow_delete(x->client, ev->flow, 0, 0);
}

static void round_trip(const uint8_t *data, size_t size)
{
	struct pcp_msg m, again;
	uint8_t out[PCP_MAX_PACKET];
	size_t len = 0;
	uint8_t version = 0;
	bool unsupp = pcp_msg_is_unsupp_version(data, size, &version);
	if (unsupp && (size < 8 || size % 4 || size > PCP_MAX_PACKET || version != data[0] || data[3] != 1))
		abort();
	if (pcp_msg_decode(data, size, &m) != PCP_OK)
		return;
	/* §9: a decodable version-2 MAP UNSUPP_VERSION answer is recognised too */
	if (m.response && m.opcode == PCP_OPCODE_MAP && m.result == PCP_RESULT_UNSUPP_VERSION && !unsupp)
		abort();
	if (pcp_msg_encode(&m, out, sizeof out, &len) != PCP_OK)
		abort();
	if (len > size || len % 4 || pcp_msg_decode(out, len, &again) != PCP_OK)
		abort();
	normalise(&m);
	normalise(&again);
	if (memcmp(&m, &again, sizeof m) != 0)
		abort();
}

/* The timer heap and nonce hash hold together, and next_deadline is the scan's. */
static void check(struct pcp_client *client)
{
	uint64_t scan = 0;
	if (!pcp_client_check(client, &scan) || scan != pcp_client_next_deadline(client))
		abort();
}

static void engine(const uint8_t *data, size_t size)
{
	struct fuzz_ctx x = { .seed = 1 };
	struct pcp_client_config cfg = { .random = fuzz_random, .random_arg = &x, .on_event = fuzz_event,
					 .event_arg = &x };
	struct pcp_client *client = x.client = pcp_client_new(&cfg);
	if (!client)
		return;
	struct in6_addr server, src;
	pcp_addr_parse(&server, "192.0.2.1");
	pcp_addr_parse(&src, "192.0.2.2");
	pcp_client_set_source(client, &src);
	pcp_client_set_server(client, &server, PCP_SERVER_PORT, 1000);

	/* one flow that the input can answer: nonce, protocol, internal port from the input */
	struct pcp_map_params p = { .protocol = 6, .internal_port = 80, .lifetime = 120, .answer_deadline_ms = 1000 };
	uint8_t nonce[PCP_NONCE_LEN] = { 0 };
	if (size >= 44) {
		memcpy(nonce, data + 24, PCP_NONCE_LEN);
		p.protocol = data[36];
		p.internal_port = (uint16_t)(data[40] << 8 | data[41]);
		if (p.protocol == 0)
			p.internal_port = 0;
	}
	p.nonce = nonce;
	struct pcp_flow *f = pcp_flow_map(client, &p, NULL, 1000);
	uint8_t buf[PCP_MAX_PACKET];
	while (pcp_client_output(client, buf, sizeof buf, 1000) > 0)
		;
	check(client);
	(void)pcp_client_input(client, data, size, &server, PCP_SERVER_PORT, 1500);
	check(client);
	(void)pcp_client_input(client, data, size, &server, PCP_SERVER_PORT, 400000); /* again, later */
	check(client);
	uint64_t now = 400000;
	for (int i = 0; i < 8; i++) {
		uint64_t next = pcp_client_next_deadline(client);
		if (next == UINT64_MAX)
			break;
		if (next > now)
			now = next;
		while (pcp_client_output(client, buf, sizeof buf, now) > 0)
			;
		check(client);
	}
	struct pcp_client_stats st;
	pcp_client_get_stats(client, &st);
	if (f && st.live_flows && size % 2)
		pcp_flow_delete(client, f, 0, now);
	(void)pcp_client_input(client, data, size, &server, PCP_SERVER_PORT, now);
	check(client);
	while (pcp_client_output(client, buf, sizeof buf, now + 20000) > 0)
		;
	check(client);
	pcp_client_free(client);
}

static void bad_line(void *arg, unsigned line, enum pcp_err why)
{
	(void)arg;
	if (line == 0 || why == PCP_OK || why > PCP_ERR_NOMEM)
		abort();
}

static void servers_file(const uint8_t *data, size_t size)
{
	struct pcp_server out[PCP_MAX_SERVERS];
	size_t n = pcp_servers_parse((const char *)data, size, out, PCP_MAX_SERVERS, bad_line, NULL);
	if (n > PCP_MAX_SERVERS)
		abort();
	for (size_t i = 0; i < n; i++) {
		char a[INET6_ADDRSTRLEN], text[PCP_SERVER_TEXT_MAX + 1];
		pcp_addr_format(&out[i].addr, a, sizeof a);
		int len = snprintf(text, sizeof text, pcp_addr_is_v4(&out[i].addr) ? "%s:%u" : "[%s]:%u", a,
				   out[i].port);
		struct pcp_server back;
		if (len <= 0 || (size_t)len >= sizeof text || pcp_server_parse(text, (size_t)len, &back) != PCP_OK ||
		    back.port != out[i].port || memcmp(&back.addr, &out[i].addr, sizeof back.addr) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	round_trip(data, size);
	engine(data, size);
	servers_file(data, size);
	return 0;
}
