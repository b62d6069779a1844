/*
 * pcp_cli.c - test driver: one mapping through the real client code (pcp_client engine +
 * pcp_event adapter), events printed to stdout with monotonic timestamps. Used by
 * tests/pcp/test_sim.py (against tests/pcpsim) and tests/pcp/test_miniupnpd.py (against
 * Debian's miniupnpd in network namespaces). Not installed.
 *
 *   pcp_cli --server ADDR[:PORT] [--server ...] [--servers-file PATH]
 *           --internal ADDR --iport N [--protocol tcp|udp|N] [--eport N] [--lifetime S]
 *           [--prefer-failure] [--third-party] [--nonce HEX24]
 *           [--renewals N] [--hold-ms MS] [--delete | --delete-only] [--delete-ms MS]
 *           [--irt-ms MS] [--failover-ms MS] [--announce-port N] [--timeout-ms MS] [-v]
 *   pcp_cli --check-servers-file PATH     parse a DHCP hand-over file and print it
 *
 * Output, one line per event: "<ms since start> <EVENT> key=value ...":
 *   SERVER addr=A port=P why=R | MAPPED external=A:P lifetime=S renewal=0|1 nonce=HEX |
 *   FAILED result=NAME timeout=0|1 lifetime=S | RENEW_FAILED ... | DELETED result=NAME
 *   timeout=0|1 | LOST_STATE | REACHABLE 0|1, then "DONE" or "GIVE_UP <why>".
 * Exit: 0 done (mapped [+ renewals] [+ deleted], or --delete-only answered), 1 a FAILED /
 * RENEW_FAILED event, 2 usage, 3 timeout.
 */
#include "pcp.h"
#include "pcp_event.h"

#include <event2/event.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli {
	struct event_base *base;
	struct pcp_client *client;
	struct pcp_io *io;
	struct pcp_flow *flow;
	uint64_t t0;
	unsigned renewals_wanted, renewals_seen;
	uint32_t hold_ms, delete_ms;
	bool do_delete, delete_only, verbose, mapped, holding, finished;
	int rc;
	struct event *ev_hold;
};

static void out(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct cli *c, const char *fmt, ...)
{
	va_list ap;
	printf("%llu ", (unsigned long long)(pcp_io_now() - c->t0));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void finish(struct cli *c, int rc, const char *why)
{
	if (c->finished)
		return;
	c->finished = true;
	c->rc = rc;
	if (rc == 0)
		out(c, "DONE");
	else
		out(c, "GIVE_UP %s", why);
	event_base_loopbreak(c->base);
}

static void start_delete(struct cli *c)
{
	pcp_flow_delete(c->client, c->flow, c->delete_ms, pcp_io_now());
}

/* Mapped and renewed enough: hold, delete, or finish. */
static void after_mapped(struct cli *c)
{
	if (c->renewals_seen < c->renewals_wanted || c->holding || c->finished)
		return;
	if (c->hold_ms) {
		struct timeval tv = { .tv_sec = c->hold_ms / 1000, .tv_usec = (suseconds_t)(c->hold_ms % 1000) * 1000 };
		evtimer_add(c->ev_hold, &tv);
		c->hold_ms = 0;
		c->holding = true;
		return;
	}
	if (c->do_delete)
		start_delete(c);
	else
		finish(c, 0, NULL);
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct cli *c = arg;
	c->holding = false;
	after_mapped(c);
}

static void hex(const uint8_t *b, size_t n, char *buf)
{
	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", b[i]);
}

static void on_event(void *arg, const struct pcp_event *ev)
{
	struct cli *c = arg;
	char a[INET6_ADDRSTRLEN], n[2 * PCP_NONCE_LEN + 1];
	switch (ev->type) {
	case PCP_EVENT_MAPPED:
		hex(pcp_flow_nonce(ev->flow), PCP_NONCE_LEN, n);
		out(c, "MAPPED external=%s:%u lifetime=%u renewal=%d nonce=%s",
		    pcp_addr_format(&ev->external_addr, a, sizeof a), ev->external_port, ev->lifetime, ev->renewal, n);
		if (ev->renewal && c->mapped)
			c->renewals_seen++;
		c->mapped = true;
		after_mapped(c);
		return;
	case PCP_EVENT_FAILED:
	case PCP_EVENT_RENEW_FAILED:
		out(c, "%s result=%s timeout=%d lifetime=%u external=%s:%u",
		    ev->type == PCP_EVENT_FAILED ? "FAILED" : "RENEW_FAILED", pcp_result_name(ev->result), ev->timeout,
		    ev->lifetime, pcp_addr_format(&ev->external_addr, a, sizeof a), ev->external_port);
		if (!ev->timeout)
			finish(c, 1, "error result");
		return;
	case PCP_EVENT_DELETED:
		out(c, "DELETED result=%s timeout=%d", pcp_result_name(ev->result), ev->timeout);
		c->flow = NULL;
		if (ev->timeout)
			finish(c, 3, "delete not answered");
		else
			finish(c, 0, NULL);
		return;
	case PCP_EVENT_SERVER_LOST_STATE:
		out(c, "LOST_STATE");
		return;
	case PCP_EVENT_REACHABILITY:
		out(c, "REACHABLE %d", ev->reachable);
		return;
	}
}

static void on_server(void *arg, const struct pcp_server *srv, enum pcp_io_server_reason why)
{
	char a[INET6_ADDRSTRLEN];
	out(arg, "SERVER addr=%s port=%u why=%s", pcp_addr_format(&srv->addr, a, sizeof a), srv->port,
	    pcp_io_server_reason_name(why));
}

__attribute__((format(printf, 3, 0))) static void on_log(void *arg, int level, const char *fmt, va_list ap)
{
	struct cli *c = arg;
	if (!c->verbose && level > 1)
		return;
	fprintf(stderr, "%llu log%d: ", (unsigned long long)(pcp_io_now() - c->t0), level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, 3, "timeout");
}

static bool num(const char *s, uint32_t max, uint32_t *v)
{
	uint64_t x = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > max)
			return false;
	}
	*v = (uint32_t)x;
	return true;
}

static bool parse_nonce(const char *s, uint8_t *out)
{
	if (strlen(s) != 2 * PCP_NONCE_LEN)
		return false;
	for (size_t i = 0; i < 2 * PCP_NONCE_LEN; i++) {
		char ch = s[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | d : d << 4);
	}
	return true;
}

static void on_bad_line(void *arg, unsigned line, enum pcp_err why)
{
	(void)arg;
	printf("BAD line=%u why=%s\n", line, pcp_err_name(why));
}

/* --check-servers-file: what iwfd would make of the file (pcp_servers_parse). */
static int check_servers_file(const char *path)
{
	char text[PCP_IO_SERVERS_FILE_MAX];
	FILE *fp = fopen(path, "r");
	if (!fp) {
		perror(path);
		return 2;
	}
	size_t len = fread(text, 1, sizeof text, fp);
	fclose(fp);
	struct pcp_server out[PCP_MAX_SERVERS];
	size_t n = pcp_servers_parse(text, len, out, PCP_MAX_SERVERS, on_bad_line, NULL);
	for (size_t i = 0; i < n; i++) {
		char a[INET6_ADDRSTRLEN];
		printf("SERVER addr=%s port=%u\n", pcp_addr_format(&out[i].addr, a, sizeof a), out[i].port);
	}
	return n ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: pcp_cli --server ADDR[:PORT] --internal ADDR --iport N [options] (see pcp_cli.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "servers-file", required_argument, NULL, 'F' },
		{ "internal", required_argument, NULL, 'i' },
		{ "iport", required_argument, NULL, 'p' },
		{ "protocol", required_argument, NULL, 'P' },
		{ "eport", required_argument, NULL, 'e' },
		{ "lifetime", required_argument, NULL, 'l' },
		{ "prefer-failure", no_argument, NULL, 'f' },
		{ "third-party", no_argument, NULL, 't' },
		{ "nonce", required_argument, NULL, 'n' },
		{ "renewals", required_argument, NULL, 'r' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "delete", no_argument, NULL, 'd' },
		{ "delete-only", no_argument, NULL, 'o' },
		{ "delete-ms", required_argument, NULL, 'm' },
		{ "irt-ms", required_argument, NULL, 'I' },
		{ "failover-ms", required_argument, NULL, 'O' },
		{ "announce-port", required_argument, NULL, 'a' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-servers-file", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *servers[PCP_MAX_SERVERS];
	size_t n_servers = 0;
	const char *servers_file = NULL;
	struct cli c = { .delete_ms = 10000 };
	struct pcp_map_params p = { .protocol = 6, .lifetime = 600 };
	struct pcp_client_config ccfg = { .on_event = on_event, .event_arg = &c };
	struct pcp_io_config iocfg = { .log = on_log, .log_arg = &c, .on_server = on_server, .server_arg = &c };
	uint8_t nonce[PCP_NONCE_LEN];
	uint32_t v, timeout_ms = 60000;
	bool have_internal = false, have_iport = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (n_servers == PCP_MAX_SERVERS)
				return usage();
			servers[n_servers++] = optarg;
			break;
		case 'F':
			servers_file = optarg;
			break;
		case 'i':
			if (!pcp_addr_parse(&p.internal_addr, optarg))
				return usage();
			have_internal = true;
			break;
		case 'p':
			if (!num(optarg, 65535, &v))
				return usage();
			p.internal_port = (uint16_t)v;
			have_iport = true;
			break;
		case 'P':
			if (!strcmp(optarg, "tcp"))
				p.protocol = 6;
			else if (!strcmp(optarg, "udp"))
				p.protocol = 17;
			else if (num(optarg, 255, &v))
				p.protocol = (uint8_t)v;
			else
				return usage();
			break;
		case 'e':
			if (!num(optarg, 65535, &v))
				return usage();
			p.suggested_port = (uint16_t)v;
			break;
		case 'l':
			if (!num(optarg, UINT32_MAX, &p.lifetime) || !p.lifetime)
				return usage();
			break;
		case 'f':
			p.prefer_failure = true;
			break;
		case 't':
			p.third_party = true;
			break;
		case 'n':
			if (!parse_nonce(optarg, nonce))
				return usage();
			p.nonce = nonce;
			break;
		case 'r':
			if (!num(optarg, 1000, &c.renewals_wanted))
				return usage();
			break;
		case 'H':
			if (!num(optarg, UINT32_MAX, &c.hold_ms))
				return usage();
			break;
		case 'd':
			c.do_delete = true;
			break;
		case 'o':
			c.delete_only = true;
			break;
		case 'm':
			if (!num(optarg, UINT32_MAX, &c.delete_ms))
				return usage();
			break;
		case 'I':
			if (!num(optarg, UINT32_MAX, &ccfg.irt_ms))
				return usage();
			break;
		case 'O':
			if (!num(optarg, UINT32_MAX, &iocfg.failover_ms))
				return usage();
			break;
		case 'a':
			if (!num(optarg, 65535, &v) || !v)
				return usage();
			iocfg.listen_announce = true;
			iocfg.announce_port = (uint16_t)v;
			break;
		case 'T':
			if (!num(optarg, UINT32_MAX, &timeout_ms))
				return usage();
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'C':
			return check_servers_file(optarg);
		default:
			return usage();
		}
	}
	if (optind != argc || !have_internal || !have_iport || (c.delete_only && !p.nonce))
		return usage();

	c.t0 = pcp_io_now();
	c.base = event_base_new();
	c.client = pcp_client_new(&ccfg);
	iocfg.servers = servers;
	iocfg.n_servers = n_servers;
	int err = 0;
	c.io = c.base && c.client ? pcp_io_new(c.base, c.client, &iocfg, &err) : NULL;
	if (!c.io) {
		fprintf(stderr, "pcp_cli: cannot start: %s\n", strerror(err));
		return 2;
	}
	if (servers_file && pcp_io_watch_servers_file(c.io, servers_file, 200) != 0)
		return 2;
	c.ev_hold = evtimer_new(c.base, on_hold, &c);
	struct event *guard = evtimer_new(c.base, on_timeout, &c);
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
	evtimer_add(guard, &tv);

	c.flow = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	if (!c.flow) {
		fprintf(stderr, "pcp_cli: bad mapping parameters\n");
		return 2;
	}
	if (c.delete_only) /* nothing sent yet: only the lifetime-0 request with this nonce goes out */
		start_delete(&c);
	c.rc = 3;
	event_base_dispatch(c.base);

	struct pcp_client_stats st;
	pcp_client_get_stats(c.client, &st);
	fprintf(stderr, "pcp_cli: sent %llu (retransmitted %llu), received %llu, dropped %llu\n",
		(unsigned long long)st.sent, (unsigned long long)st.retransmitted, (unsigned long long)st.received,
		(unsigned long long)st.dropped);
	event_free(guard);
	event_free(c.ev_hold);
	pcp_io_free(c.io);
	pcp_client_free(c.client);
	event_base_free(c.base);
	return c.rc;
}
