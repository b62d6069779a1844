/*
 * test_servers.c - golden vectors for server addresses as text: pcp_server_parse (one
 * entry) and pcp_servers_parse (the DHCP hand-over file, docs/pcp.md).
 */
#include "pcp.h"
#include "../testutil.h"

struct vec {
	const char *text;
	enum pcp_err want;
	const char *addr; /* expected address when PCP_OK */
	uint16_t port;
};

static const struct vec vectors[] = {
	{ "192.0.2.1", PCP_OK, "192.0.2.1", 5351 },
	{ "192.0.2.1:15351", PCP_OK, "192.0.2.1", 15351 },
	{ "192.0.2.1:65535", PCP_OK, "192.0.2.1", 65535 },
	{ "[2001:db8::1]:5352", PCP_OK, "2001:db8::1", 5352 },
	{ "[2001:db8::1]", PCP_OK, "2001:db8::1", 5351 },
	{ "2001:db8::1", PCP_OK, "2001:db8::1", 5351 },
	{ "2001:DB8::A", PCP_OK, "2001:db8::a", 5351 },
	{ "::ffff:192.0.2.7", PCP_OK, "192.0.2.7", 5351 }, /* DHCPv6 option 86 carries IPv4 so */
	{ "[::ffff:192.0.2.7]:99", PCP_OK, "192.0.2.7", 99 },
	{ "::1", PCP_OK, "::1", 5351 },
	/* syntax */
	{ "", PCP_ERR_SYNTAX, NULL, 0 },
	{ "pcp.example.net", PCP_ERR_SYNTAX, NULL, 0 }, /* no resolver */
	{ "192.0.2.1 5351", PCP_ERR_SYNTAX, NULL, 0 },
	{ "fe80::1%eth0", PCP_ERR_SYNTAX, NULL, 0 },
	{ "[2001:db8::1", PCP_ERR_SYNTAX, NULL, 0 },
	{ "[2001:db8::1]x", PCP_ERR_SYNTAX, NULL, 0 },
	{ "[2001:db8::1]]", PCP_ERR_SYNTAX, NULL, 0 },
	{ "[[2001:db8::1]", PCP_ERR_SYNTAX, NULL, 0 },
	{ "2001:db8::1]", PCP_ERR_SYNTAX, NULL, 0 },
	{ "0123456789012345678901234567890123456789012345678901234567890123", PCP_ERR_SYNTAX, NULL, 0 },
	/* addresses */
	{ "192.0.2", PCP_ERR_ADDRESS, NULL, 0 },
	{ "192.0.2.256", PCP_ERR_ADDRESS, NULL, 0 },
	{ "01.2.3.4", PCP_ERR_ADDRESS, NULL, 0 },
	{ "[192.0.2.1]", PCP_ERR_ADDRESS, NULL, 0 },
	{ "[]", PCP_ERR_ADDRESS, NULL, 0 },
	{ "[]:5351", PCP_ERR_ADDRESS, NULL, 0 },
	{ ":5351", PCP_ERR_ADDRESS, NULL, 0 },
	{ "0.0.0.0", PCP_ERR_ADDRESS, NULL, 0 },
	{ "::", PCP_ERR_ADDRESS, NULL, 0 },
	{ "::ffff:0.0.0.0", PCP_ERR_ADDRESS, NULL, 0 },
	{ "224.0.0.1", PCP_ERR_ADDRESS, NULL, 0 },
	{ "239.255.255.250", PCP_ERR_ADDRESS, NULL, 0 },
	{ "255.255.255.255", PCP_ERR_ADDRESS, NULL, 0 },
	{ "ff02::1", PCP_ERR_ADDRESS, NULL, 0 },
	{ "fe80::1", PCP_ERR_ADDRESS, NULL, 0 },
	{ "febf::1", PCP_ERR_ADDRESS, NULL, 0 },
	{ "1:2:3:4:5:6:7:8:9", PCP_ERR_ADDRESS, NULL, 0 },
	/* ports */
	{ "192.0.2.1:", PCP_ERR_PORT, NULL, 0 },
	{ "192.0.2.1:0", PCP_ERR_PORT, NULL, 0 },
	{ "192.0.2.1:00000", PCP_ERR_PORT, NULL, 0 },
	{ "192.0.2.1:65536", PCP_ERR_PORT, NULL, 0 },
	{ "192.0.2.1:999999", PCP_ERR_PORT, NULL, 0 },
	{ "192.0.2.1:53a", PCP_ERR_PORT, NULL, 0 },
	{ "[2001:db8::1]:", PCP_ERR_PORT, NULL, 0 },
	{ "[2001:db8::1]:1:2", PCP_ERR_PORT, NULL, 0 },
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vec *v = &vectors[i];
		struct pcp_server s = { .port = 7 };
		enum pcp_err e = pcp_server_parse(v->text, strlen(v->text), &s);
		if (e != v->want)
			fprintf(stderr, "  \"%s\": got %s, want %s\n", v->text, pcp_err_name(e), pcp_err_name(v->want));
		CHECK_EQ(e, v->want);
		if (v->want == PCP_OK && e == PCP_OK) {
			struct in6_addr a;
			CHECK(pcp_addr_parse(&a, v->addr));
			CHECK(memcmp(&a, &s.addr, sizeof a) == 0);
			CHECK_EQ(s.port, v->port);
		} else {
			CHECK_EQ(s.port, 7); /* untouched on error */
		}
	}
	/* not NUL-terminated, and a NUL inside */
	struct pcp_server s;
	CHECK_EQ(pcp_server_parse("192.0.2.1:80junk", 12, &s), PCP_OK);
	CHECK_EQ(s.port, 80);
	CHECK_EQ(pcp_server_parse("192.0.2.1\0:80", 13, &s), PCP_ERR_SYNTAX);
	CHECK_EQ(pcp_server_parse(NULL, 3, &s), PCP_ERR_SYNTAX);
	CHECK_EQ(pcp_server_parse("1.2.3.4", 7, NULL), PCP_ERR_SYNTAX);
	CHECK(strcmp(pcp_err_name(PCP_ERR_DUPLICATE), "DUPLICATE") == 0);
}

struct bad_log {
	unsigned n;
	unsigned line[16];
	enum pcp_err why[16];
};

static void on_bad(void *arg, unsigned line, enum pcp_err why)
{
	struct bad_log *b = arg;
	if (b->n < 16) {
		b->line[b->n] = line;
		b->why[b->n] = why;
	}
	b->n++;
}

static void test_file(void)
{
	static const char text[] = "# written by the udhcpc hook\n"
				   "\n"
				   "  192.0.2.1  \r\n"
				   "\t[2001:db8::5]:5352\n"
				   "bogus line\n"
				   "192.0.2.1\n" /* duplicate */
				   "192.0.2.1:5351\n" /* the same again */
				   "192.0.2.2:1\n"
				   "0.0.0.0\n"
				   "192.0.2.3:70000\n"
				   "192.0.2.4"; /* no final newline */
	struct pcp_server out[8];
	struct bad_log b = { 0 };
	size_t n = pcp_servers_parse(text, sizeof text - 1, out, 8, on_bad, &b);
	CHECK_EQ(n, 4);
	struct in6_addr a;
	CHECK(pcp_addr_parse(&a, "192.0.2.1") && !memcmp(&a, &out[0].addr, sizeof a));
	CHECK_EQ(out[0].port, 5351);
	CHECK(pcp_addr_parse(&a, "2001:db8::5") && !memcmp(&a, &out[1].addr, sizeof a));
	CHECK_EQ(out[1].port, 5352);
	CHECK_EQ(out[2].port, 1);
	CHECK(pcp_addr_parse(&a, "192.0.2.4") && !memcmp(&a, &out[3].addr, sizeof a));
	CHECK_EQ(b.n, 5);
	CHECK_EQ(b.line[0], 5);
	CHECK_EQ(b.why[0], PCP_ERR_SYNTAX);
	CHECK_EQ(b.line[1], 6);
	CHECK_EQ(b.why[1], PCP_ERR_DUPLICATE);
	CHECK_EQ(b.line[2], 7);
	CHECK_EQ(b.why[2], PCP_ERR_DUPLICATE);
	CHECK_EQ(b.line[3], 9);
	CHECK_EQ(b.why[3], PCP_ERR_ADDRESS);
	CHECK_EQ(b.line[4], 10);
	CHECK_EQ(b.why[4], PCP_ERR_PORT);

	/* capacity: the third valid entry is TOO_MANY */
	memset(&b, 0, sizeof b);
	static const char three[] = "192.0.2.1\n192.0.2.2\n192.0.2.3\n";
	CHECK_EQ(pcp_servers_parse(three, sizeof three - 1, out, 2, on_bad, &b), 2);
	CHECK_EQ(b.n, 1);
	CHECK_EQ(b.why[0], PCP_ERR_TOO_MANY);
	CHECK_EQ(pcp_servers_parse(three, sizeof three - 1, NULL, 0, NULL, NULL), 0);

	/* empty, comments only, NUL bytes, NULL */
	CHECK_EQ(pcp_servers_parse("", 0, out, 8, NULL, NULL), 0);
	CHECK_EQ(pcp_servers_parse("# none\n\n  \n", 11, out, 8, NULL, NULL), 0);
	memset(&b, 0, sizeof b);
	static const char nul[] = "192.0.2.1\0\n192.0.2.9\n";
	CHECK_EQ(pcp_servers_parse(nul, sizeof nul - 1, out, 8, on_bad, &b), 1);
	CHECK_EQ(b.n, 1);
	CHECK_EQ(b.why[0], PCP_ERR_SYNTAX);
	CHECK_EQ(pcp_servers_parse(NULL, 5, out, 8, NULL, NULL), 0);

	/* a long line is one bad line, not a crash or a split */
	char longline[300];
	memset(longline, '1', sizeof longline);
	longline[sizeof longline - 1] = '\n';
	memset(&b, 0, sizeof b);
	CHECK_EQ(pcp_servers_parse(longline, sizeof longline, out, 8, on_bad, &b), 0);
	CHECK_EQ(b.n, 1);
	CHECK_EQ(b.why[0], PCP_ERR_SYNTAX);
}

int main(void)
{
	TU_RUN(test_vectors);
	TU_RUN(test_file);
	return tu_finish(__FILE__);
}
