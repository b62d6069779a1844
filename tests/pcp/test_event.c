/*
 * test_event.c - the libevent adapter (pcp_event.h) over real loopback UDP sockets with a
 * tiny in-test PCP responder: MAP, the client address taken from the connected socket,
 * ANNOUNCE with an Epoch reset on the announce port, re-MAP with the same nonce, a
 * run-time server switch (IPv6 loopback when available), delete, and an answer deadline
 * against a silent server; a 10,000-flow burst against a responder in another process
 * with a default-sized socket buffer, also with send() refusing datagrams (EAGAIN,
 * ENOBUFS, ECONNREFUSED): every flow answered once, no retransmission.
 */
#include "pcp.h"
#include "pcp_event.h"
#include "../testutil.h"
#include "udp_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fault injection for the adapter's send() (pcp_event.c, linked statically into this
 * test, resolves send() to this definition): when armed, refuse some datagrams the way
 * a full socket (EAGAIN) or device queue (ENOBUFS) does, and report one earlier
 * datagram's ICMP error (ECONNREFUSED: this one is not sent). */
static struct {
	bool armed;
	unsigned calls, eagain, enobufs, refused;
} fake_send;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (fake_send.armed) {
		unsigned n = ++fake_send.calls;
		if (n % 7 == 3) {
			fake_send.eagain++;
			errno = EAGAIN;
			return -1;
		}
		if (n % 11 == 5) {
			fake_send.enobufs++;
			errno = ENOBUFS;
			return -1;
		}
		if (n == 100) {
			fake_send.refused++;
			errno = ECONNREFUSED;
			return -1;
		}
	}
	return sendto(fd, buf, len, flags, NULL, 0);
}

struct responder {
	int fd;
	int family;
	uint16_t port;
	struct event *ev;
	bool silent;
	unsigned drop; /* drop this many requests first */
	uint64_t at[8]; /* arrival times (pcp_io_now) of the first requests */
	uint32_t epoch0;
	uint64_t t0;
	unsigned n_req;
	struct pcp_msg last;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct ctx {
	struct event_base *base;
	struct pcp_client *client;
	struct pcp_io *io;
	enum pcp_event_type want;
	bool want_renewal;
	bool got;
	struct pcp_event last;
	unsigned n_lost;
	const char *const *switch_to; /* on the next MAPPED, switch servers from the callback */
};

static void t_random(void *arg, void *buf, size_t len)
{
	(void)arg;
	if (len == PCP_NONCE_LEN) {
		if (getrandom(buf, len, 0) != (ssize_t)len)
			abort();
	} else {
		memset(buf, 0, len); /* jitter at its minimum, ANNOUNCE spread 0: fast test */
	}
}

static void on_pcp_event(void *arg, const struct pcp_event *ev)
{
	struct ctx *c = arg;
	if (ev->type == PCP_EVENT_SERVER_LOST_STATE)
		c->n_lost++;
	if (ev->type == PCP_EVENT_MAPPED && c->switch_to) {
		CHECK_EQ(pcp_io_set_servers(c->io, c->switch_to, 1), 0);
		c->switch_to = NULL;
		return;
	}
	if (ev->type == c->want && (!c->want_renewal || ev->renewal)) {
		c->got = true;
		c->last = *ev;
		event_base_loopbreak(c->base);
	}
}

static void on_request(evutil_socket_t fd, short what, void *arg)
{
	struct responder *r = arg;
	uint8_t buf[2048];
	(void)what;
	r->peer_len = sizeof r->peer;
	ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&r->peer, &r->peer_len);
	if (n <= 0)
		return;
	struct pcp_msg m;
	if (pcp_msg_decode(buf, (size_t)n, &m) != PCP_OK || m.response)
		return;
	if (r->n_req < 8)
		r->at[r->n_req] = pcp_io_now();
	r->n_req++;
	r->last = m;
	if (r->silent)
		return;
	if (r->drop) {
		r->drop--;
		return;
	}
	m.response = true;
	m.result = PCP_RESULT_SUCCESS;
	m.epoch = r->epoch0 + (uint32_t)((pcp_io_now() - r->t0) / 1000);
	m.external_port = m.internal_port;
	CHECK(pcp_addr_parse(&m.external_addr, "203.0.113.5"));
	m.prefer_failure = false;
	m.n_filters = 0;
	m.has_description = false;
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_OK);
	CHECK(sendto(fd, buf, len, 0, (struct sockaddr *)&r->peer, r->peer_len) == (ssize_t)len);
}

static bool responder_open(struct responder *r, struct event_base *base, int family)
{
	memset(r, 0, sizeof *r);
	r->family = family;
	r->fd = socket(family, SOCK_DGRAM, 0);
	if (r->fd < 0)
		return false;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sl;
	if (family == AF_INET) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&ss, &sin, sizeof sin);
		sl = sizeof sin;
	} else {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
		memcpy(&ss, &sin6, sizeof sin6);
		sl = sizeof sin6;
	}
	if (bind(r->fd, (struct sockaddr *)&ss, sl) < 0 || getsockname(r->fd, (struct sockaddr *)&ss, &sl) < 0) {
		close(r->fd);
		r->fd = -1;
		return false;
	}
	if (family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, &ss, sizeof sin);
		r->port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &ss, sizeof sin6);
		r->port = ntohs(sin6.sin6_port);
	}
	r->epoch0 = 1000;
	r->t0 = pcp_io_now();
	r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, on_request, r);
	event_add(r->ev, NULL);
	return true;
}

static void responder_close(struct responder *r)
{
	if (r->ev)
		event_free(r->ev);
	if (r->fd >= 0)
		close(r->fd);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Run the loop until the wanted event (true) or ms pass (false). */
static bool wait_for(struct ctx *c, enum pcp_event_type type, bool renewal, unsigned ms)
{
	c->want = type;
	c->want_renewal = renewal;
	c->got = false;
	struct event *guard = evtimer_new(c->base, on_guard, c->base);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(guard, &tv);
	event_base_dispatch(c->base);
	event_free(guard);
	return c->got;
}

static void send_announce(struct responder *r, uint16_t to_port, uint32_t epoch)
{
	tu_send_announce(r->fd, to_port, epoch);
}

static void test_parse_server(void)
{
	struct in6_addr a, b;
	uint16_t port;
	CHECK(pcp_io_parse_server("192.0.2.1", &a, &port));
	CHECK_EQ(port, 5351);
	CHECK(pcp_addr_parse(&b, "192.0.2.1") && !memcmp(&a, &b, sizeof a));
	CHECK(pcp_io_parse_server("192.0.2.1:15351", &a, &port));
	CHECK_EQ(port, 15351);
	CHECK(pcp_io_parse_server("[2001:db8::1]:5352", &a, &port));
	CHECK_EQ(port, 5352);
	CHECK(pcp_addr_parse(&b, "2001:db8::1") && !memcmp(&a, &b, sizeof a));
	CHECK(pcp_io_parse_server("[2001:db8::1]", &a, &port));
	CHECK_EQ(port, 5351);
	CHECK(pcp_io_parse_server("2001:db8::1", &a, &port));
	CHECK_EQ(port, 5351);
	CHECK(!pcp_io_parse_server("192.0.2.1:", &a, &port));
	CHECK(!pcp_io_parse_server("192.0.2.1:0", &a, &port));
	CHECK(!pcp_io_parse_server("192.0.2.1:65536", &a, &port));
	CHECK(!pcp_io_parse_server("192.0.2.1:53x", &a, &port));
	CHECK(!pcp_io_parse_server("[2001:db8::1", &a, &port));
	CHECK(!pcp_io_parse_server("[2001:db8::1]x", &a, &port));
	CHECK(!pcp_io_parse_server("pcp.example.net", &a, &port));
	CHECK(!pcp_io_parse_server("", &a, &port));
}

static void test_loopback(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r1, r2;
	CHECK(responder_open(&r1, c.base, AF_INET));
	struct pcp_client_config cfg = { .random = t_random, .on_event = on_pcp_event, .event_arg = &c };
	c.client = pcp_client_new(&cfg);

	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%u", r1.port);
	const char *servers[] = { server };
	uint16_t aport = tu_free_udp_port();
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1, .listen_announce = true,
				       .announce_port = aport };
	int err = -1;
	c.io = pcp_io_new(c.base, c.client, &iocfg, &err);
	CHECK(c.io != NULL);
	CHECK_EQ(err, 0);
	if (!c.io)
		return;

	/* MAP over loopback */
	struct pcp_map_params p = { .protocol = 6, .internal_port = 40000, .suggested_port = 40000,
				    .lifetime = 600, .prefer_failure = true, .third_party = true,
				    .answer_deadline_ms = 2000 };
	CHECK(pcp_addr_parse(&p.internal_addr, "192.168.1.10"));
	struct pcp_flow *f = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 3000));
	CHECK_EQ(c.last.external_port, 40000);
	CHECK_EQ(r1.n_req, 1);
	struct in6_addr lo;
	CHECK(pcp_addr_parse(&lo, "127.0.0.1"));
	CHECK(memcmp(&r1.last.client_addr, &lo, sizeof lo) == 0); /* from getsockname() */
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	CHECK(r1.last.has_third_party && r1.last.prefer_failure);

	/* the server restarts: ANNOUNCE with a reset Epoch to the announce port */
	r1.epoch0 = 0;
	r1.t0 = pcp_io_now();
	send_announce(&r1, aport, 0);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(c.n_lost, 1);
	CHECK_EQ(r1.n_req, 2);
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);

	/* run-time server switch: the mapping is re-sent to the new server, same nonce */
	bool v6 = responder_open(&r2, c.base, AF_INET6);
	if (!v6)
		CHECK(responder_open(&r2, c.base, AF_INET));
	char server2[64];
	snprintf(server2, sizeof server2, v6 ? "[::1]:%u" : "127.0.0.1:%u", r2.port);
	const char *servers2[] = { server2 };
	CHECK_EQ(pcp_io_set_servers(c.io, servers2, 1), 0);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(r2.n_req, 1);
	CHECK(memcmp(r2.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	if (v6) {
		CHECK(pcp_addr_parse(&lo, "::1"));
		CHECK(memcmp(&r2.last.client_addr, &lo, sizeof lo) == 0);
	}
	CHECK_EQ(pcp_io_set_servers(c.io, servers2, 1), 0); /* same: nothing */
	CHECK_EQ(r2.n_req, 1);
	/* reconnect with an unchanged source: the same server, nothing re-sent */
	CHECK_EQ(pcp_io_reconnect(c.io), 0);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK_EQ(r2.n_req, 1);
	const char *bad[] = { "not an address" };
	CHECK_EQ(pcp_io_set_servers(c.io, bad, 1), EINVAL);

	/* delete: lifetime 0, same nonce, confirmed */
	pcp_flow_delete(c.client, f, 2000, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_DELETED, false, 3000));
	CHECK(!c.last.timeout);
	CHECK_EQ(r2.n_req, 2);
	CHECK_EQ(r2.last.lifetime, 0);

	/* a server switch from inside the engine's callback, while reading the old socket */
	c.switch_to = servers; /* back to r1 */
	struct pcp_flow *g = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK(c.switch_to == NULL);
	CHECK_EQ(r2.n_req, 3);
	CHECK_EQ(r1.n_req, 3);
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(g), PCP_NONCE_LEN) == 0);
	pcp_flow_abandon(c.client, g);
	CHECK_EQ(pcp_io_set_servers(c.io, servers2, 1), 0);

	/* a silent server: the answer deadline fires */
	r2.silent = true;
	p.answer_deadline_ms = 300;
	pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	uint64_t t0 = pcp_io_now();
	CHECK(wait_for(&c, PCP_EVENT_FAILED, false, 3000));
	CHECK(c.last.timeout);
	CHECK(pcp_io_now() - t0 >= 290);
	CHECK_EQ(r2.n_req, 4);

	struct pcp_client_stats st;
	pcp_client_get_stats(c.client, &st);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.lost_state_events, 1);

	pcp_io_free(c.io);
	pcp_client_free(c.client);
	responder_close(&r1);
	responder_close(&r2);
	event_base_free(c.base);
}

/* Two requests lost: the adapter's timer drives the §8.1.1 retransmissions. */
static void test_retransmit_over_udp(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r;
	CHECK(responder_open(&r, c.base, AF_INET));
	r.drop = 2;
	struct pcp_client_config cfg = { .irt_ms = 100, .random = t_random, .on_event = on_pcp_event,
					 .event_arg = &c };
	c.client = pcp_client_new(&cfg);
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%u", r.port);
	const char *servers[] = { server };
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1 };
	c.io = pcp_io_new(c.base, c.client, &iocfg, NULL);
	CHECK(c.io != NULL);
	if (!c.io)
		return;
	struct pcp_map_params p = { .protocol = 17, .internal_port = 5000, .lifetime = 60 };
	CHECK(pcp_addr_parse(&p.internal_addr, "127.0.0.1"));
	struct pcp_flow *f = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 5000));
	CHECK_EQ(r.n_req, 3);
	/* RAND at its minimum: RT1 = 90 ms, RT2 = 171 ms; not earlier than that (the
	 * margin covers the event loop's latency in stamping the first arrival) */
	CHECK(r.at[1] - r.at[0] >= 80);
	CHECK(r.at[2] - r.at[1] >= 160);
	CHECK(memcmp(r.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	struct pcp_client_stats st;
	pcp_client_get_stats(c.client, &st);
	CHECK_EQ(st.sent, 3);
	CHECK_EQ(st.retransmitted, 2);
	pcp_io_free(c.io);
	pcp_client_free(c.client);
	responder_close(&r);
	event_base_free(c.base);
}

static void test_new_errors(void)
{
	struct event_base *base = event_base_new();
	struct pcp_client *client = pcp_client_new(NULL);
	const char *bad[] = { "nonsense" };
	struct pcp_io_config cfg = { .servers = bad, .n_servers = 1 };
	int err = 0;
	CHECK(pcp_io_new(base, client, &cfg, &err) == NULL);
	CHECK_EQ(err, EINVAL);
	CHECK(pcp_io_new(NULL, client, &cfg, &err) == NULL);
	/* no server and no default route yet is fine */
	struct pcp_io_config none = { .route_file = "/nonexistent/route" };
	struct pcp_io *io = pcp_io_new(base, client, &none, &err);
	CHECK(io != NULL);
	CHECK_EQ(err, 0);
	CHECK_EQ(pcp_io_reconnect(io), ENOENT);
	pcp_io_free(io);
	pcp_io_free(NULL);
	pcp_client_free(client);
	event_base_free(base);
}

static void write_file(const char *path, const char *text);

static void write_file_(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp) {
		fputs(text, fp);
		fclose(fp);
	}
}

static void test_default_router(void)
{
	char path[] = "/tmp/test_pcp_route.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	struct in6_addr a, want;
	const char *hdr = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
	char text[1024];
	/* two default routes: the lower metric wins; a huge Use counter is fine */
	snprintf(text, sizeof text,
		 "%s"
		 "wan0\t00000000\t0164A8C0\t0003\t0\t123456789012\t100\t00000000\t0\t0\t0\n"
		 "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
		 "wan1\t00000000\t010200C0\t0003\t0\t0\t20\t00000000\t0\t0\t0\n",
		 hdr);
	write_file(path, text);
	CHECK(pcp_io_default_router(path, &a));
	CHECK(pcp_addr_parse(&want, "192.0.2.1"));
	CHECK(memcmp(&a, &want, sizeof a) == 0);
	/* no default route (and a garbage line) */
	snprintf(text, sizeof text, "%s%s", hdr,
		 "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
		 "junk\tzz\n"
		 "down\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n");
	write_file(path, text);
	CHECK(!pcp_io_default_router(path, &a));
	unlink(path);
	CHECK(!pcp_io_default_router("/nonexistent/route", &a));
	/* the real table: whatever it says, it must not crash */
	(void)pcp_io_default_router(NULL, &a);
}

static void write_file(const char *path, const char *text)
{
	write_file_(path, text);
}

/* Write via a temporary file and rename(), as the DHCP hook does. */
static void write_atomic(const char *path, const char *text)
{
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	write_file_(tmp, text);
	CHECK(rename(tmp, path) == 0);
}

struct server_log {
	unsigned n;
	struct pcp_server last;
	enum pcp_io_server_reason why;
};

static void on_server(void *arg, const struct pcp_server *srv, enum pcp_io_server_reason why)
{
	struct server_log *l = arg;
	l->n++;
	l->last = *srv;
	l->why = why;
}

static bool is_server(const struct pcp_server *s, const char *addr, uint16_t port)
{
	struct in6_addr a;
	return pcp_addr_parse(&a, addr) && memcmp(&a, &s->addr, sizeof a) == 0 && s->port == port;
}

/* RFC 7488 failover: the first server is silent, the second answers; later the second
 * falls silent and the list wraps back to the first. Same nonce everywhere. */
static void test_failover(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r1, r2;
	CHECK(responder_open(&r1, c.base, AF_INET));
	CHECK(responder_open(&r2, c.base, AF_INET));
	r1.silent = true;
	struct pcp_client_config cfg = { .irt_ms = 100, .random = t_random, .on_event = on_pcp_event,
					 .event_arg = &c };
	c.client = pcp_client_new(&cfg);
	char s1[64], s2[64];
	snprintf(s1, sizeof s1, "127.0.0.1:%u", r1.port);
	snprintf(s2, sizeof s2, "127.0.0.1:%u", r2.port);
	const char *servers[] = { s1, s2, s1 /* duplicate, dropped */ };
	struct server_log sl = { 0 };
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 3, .failover_ms = 400,
				       .on_server = on_server, .server_arg = &sl };
	c.io = pcp_io_new(c.base, c.client, &iocfg, NULL);
	CHECK(c.io != NULL);
	if (!c.io)
		return;
	CHECK_EQ(sl.n, 1);
	CHECK_EQ(sl.why, PCP_IO_SERVER_CONFIGURED);
	CHECK(is_server(&sl.last, "127.0.0.1", r1.port));
	struct pcp_map_params p = { .protocol = 6, .internal_port = 7000, .lifetime = 3600 };
	CHECK(pcp_addr_parse(&p.internal_addr, "127.0.0.1"));
	struct pcp_flow *f = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	uint64_t t0 = pcp_io_now();
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 5000));
	CHECK(pcp_io_now() - t0 >= 390); /* not before the failover wait */
	CHECK(r1.n_req >= 2);            /* 0, 90, 261 ms ... */
	CHECK_EQ(r2.n_req, 1);
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	CHECK(memcmp(r2.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	CHECK_EQ(sl.n, 2);
	CHECK_EQ(sl.why, PCP_IO_SERVER_FAILOVER);
	struct pcp_server cur;
	CHECK(pcp_io_get_server(c.io, &cur) && is_server(&cur, "127.0.0.1", r2.port));

	/* the second server dies, the first comes back: a refresh finds no answer and the
	 * list wraps round to the first, which re-creates the mapping with its nonce */
	r2.silent = true;
	r1.silent = false;
	unsigned r1_before = r1.n_req;
	pcp_flow_refresh(c.client, f, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 5000));
	CHECK_EQ(sl.n, 3);
	CHECK_EQ(sl.why, PCP_IO_SERVER_FAILOVER);
	CHECK(pcp_io_get_server(c.io, &cur) && is_server(&cur, "127.0.0.1", r1.port));
	CHECK(r1.n_req > r1_before);
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);

	/* set_servers keeps a listed server in use (nothing re-sent), else takes the first */
	const char *again[] = { s2, s1 };
	unsigned before = r1.n_req;
	CHECK_EQ(pcp_io_set_servers(c.io, again, 2), 0);
	CHECK_EQ(sl.n, 3);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 200));
	CHECK_EQ(r1.n_req, before);
	const char *too_many[PCP_MAX_SERVERS + 1];
	for (size_t i = 0; i <= PCP_MAX_SERVERS; i++)
		too_many[i] = s1;
	CHECK_EQ(pcp_io_set_servers(c.io, too_many, PCP_MAX_SERVERS + 1), EINVAL);

	pcp_io_free(c.io);
	pcp_client_free(c.client);
	responder_close(&r1);
	responder_close(&r2);
	event_base_free(c.base);
}

/* Bind a responder on addr:5351 (another loopback address) for the default-router
 * tests; false when that is impossible here. */
static bool responder_open_at(struct responder *r, struct event_base *base, const char *addr)
{
	memset(r, 0, sizeof *r);
	r->family = AF_INET;
	r->fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(PCP_SERVER_PORT) };
	if (r->fd < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    bind(r->fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		return false;
	}
	r->port = PCP_SERVER_PORT;
	r->epoch0 = 1000;
	r->t0 = pcp_io_now();
	r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, on_request, r);
	event_add(r->ev, NULL);
	return true;
}

static const char route_hdr[] = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

/* gateway as the /proc/net/route hex of a 127.0.0.x address */
static void write_route(const char *path, unsigned last_octet)
{
	char text[512];
	snprintf(text, sizeof text, "%swan0\t00000000\t%02X00007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", route_hdr,
		 last_octet);
	write_atomic(path, text);
}

/* No server configured: the default router (RFC 6887 §8.1), re-read when it changes. */
static void test_default_router_mode(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r1, r2;
	bool ok1 = responder_open_at(&r1, c.base, "127.0.0.2");
	bool ok2 = ok1 && responder_open_at(&r2, c.base, "127.0.0.3");
	if (!ok2) {
		fprintf(stderr, "  (127.0.0.2/3:5351 not bindable here: default-router mode untested)\n");
		if (ok1)
			responder_close(&r1);
		event_base_free(c.base);
		return;
	}
	char route[] = "/tmp/test_pcp_route.XXXXXX";
	int fd = mkstemp(route);
	CHECK(fd >= 0);
	close(fd);
	write_route(route, 2);
	struct pcp_client_config cfg = { .random = t_random, .on_event = on_pcp_event, .event_arg = &c };
	c.client = pcp_client_new(&cfg);
	struct server_log sl = { 0 };
	struct pcp_io_config iocfg = { .route_file = route, .router_poll_ms = 100, .on_server = on_server,
				       .server_arg = &sl };
	int err = -1;
	c.io = pcp_io_new(c.base, c.client, &iocfg, &err);
	CHECK(c.io != NULL);
	CHECK_EQ(err, 0);
	if (!c.io)
		return;
	CHECK_EQ(sl.n, 1);
	CHECK_EQ(sl.why, PCP_IO_SERVER_DEFAULT_ROUTER);
	CHECK(is_server(&sl.last, "127.0.0.2", PCP_SERVER_PORT));
	struct pcp_map_params p = { .protocol = 17, .internal_port = 7001, .lifetime = 3600 };
	CHECK(pcp_addr_parse(&p.internal_addr, "127.0.0.1"));
	struct pcp_flow *f = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 3000));
	CHECK_EQ(r1.n_req, 1);

	/* the route changes: found by the poll, the mapping follows with its nonce */
	write_route(route, 3);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 2);
	CHECK_EQ(sl.why, PCP_IO_SERVER_DEFAULT_ROUTER);
	CHECK_EQ(r2.n_req, 1);
	CHECK(memcmp(r2.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	/* and back, found by a later poll (the poll keeps running) */
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 350));
	write_route(route, 2);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 3);
	CHECK_EQ(r1.n_req, 2);
	/* and again, found at once by pcp_io_reconnect (the daemon's route-change hook) */
	write_route(route, 3);
	CHECK_EQ(pcp_io_reconnect(c.io), 0);
	CHECK_EQ(sl.n, 4);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(r2.n_req, 2);
	/* a configured list takes over from the router */
	char s2[64];
	snprintf(s2, sizeof s2, "127.0.0.3");
	const char *servers[] = { s2 };
	write_route(route, 2);
	CHECK_EQ(pcp_io_reconnect(c.io), 0);
	CHECK_EQ(sl.n, 5);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(r1.n_req, 3);
	CHECK_EQ(pcp_io_set_servers(c.io, servers, 1), 0);
	CHECK_EQ(sl.n, 6);
	CHECK_EQ(sl.why, PCP_IO_SERVER_CONFIGURED);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(r2.n_req, 3);
	write_route(route, 3); /* ignored now */
	write_route(route, 2);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK_EQ(sl.n, 6);

	pcp_io_free(c.io);
	pcp_client_free(c.client);
	responder_close(&r1);
	responder_close(&r2);
	event_base_free(c.base);
	unlink(route);
}

/* The DHCP hand-over file (option 158 / 86): watched, applied without losing the
 * mapping, garbage refused with the last good list kept, empty hands back. */
static void test_servers_file(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r1, r2;
	CHECK(responder_open(&r1, c.base, AF_INET));
	CHECK(responder_open(&r2, c.base, AF_INET));
	struct pcp_client_config cfg = { .random = t_random, .on_event = on_pcp_event, .event_arg = &c };
	c.client = pcp_client_new(&cfg);
	char s1[64], text[256];
	snprintf(s1, sizeof s1, "127.0.0.1:%u", r1.port);
	const char *servers[] = { s1 };
	struct server_log sl = { 0 };
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1, .on_server = on_server,
				       .server_arg = &sl };
	c.io = pcp_io_new(c.base, c.client, &iocfg, NULL);
	CHECK(c.io != NULL);
	if (!c.io)
		return;
	char path[] = "/tmp/test_pcp_servers.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	unlink(path);
	CHECK_EQ(pcp_io_watch_servers_file(c.io, path, 50), 0); /* absent: configured list */
	CHECK_EQ(sl.n, 1);

	struct pcp_map_params p = { .protocol = 6, .internal_port = 7002, .lifetime = 3600 };
	CHECK(pcp_addr_parse(&p.internal_addr, "127.0.0.1"));
	struct pcp_flow *f = pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 3000));
	CHECK_EQ(r1.n_req, 1);

	/* the hook writes option 158's servers: garbage line logged, the good one used */
	snprintf(text, sizeof text, "# dhcp\nnot-an-address\n127.0.0.1:%u\n", r2.port);
	write_atomic(path, text);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 2);
	CHECK_EQ(sl.why, PCP_IO_SERVER_FILE);
	CHECK(is_server(&sl.last, "127.0.0.1", r2.port));
	CHECK_EQ(r2.n_req, 1);
	CHECK(memcmp(r2.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);

	/* the same content rewritten (a DHCP renew): nothing happens */
	write_atomic(path, text);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK_EQ(sl.n, 2);
	/* only garbage: refused, the last good list stays */
	write_atomic(path, "999.1.1.1\nhello\n");
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK_EQ(sl.n, 2);
	/* a configured list set meanwhile does not override the file */
	CHECK_EQ(pcp_io_set_servers(c.io, servers, 1), 0);
	CHECK_EQ(sl.n, 2);
	/* empty (the lease has no PCP option): back to the configured server */
	write_atomic(path, "# no PCP server offered\n");
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 3);
	CHECK_EQ(sl.why, PCP_IO_SERVER_CONFIGURED);
	CHECK_EQ(r1.n_req, 2);
	CHECK(memcmp(r1.last.nonce, pcp_flow_nonce(f), PCP_NONCE_LEN) == 0);
	/* the file again, then removed: back again */
	write_atomic(path, text);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 4);
	unlink(path);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK_EQ(sl.n, 5);
	CHECK(is_server(&sl.last, "127.0.0.1", r1.port));
	/* too big: ignored */
	char big[PCP_IO_SERVERS_FILE_MAX + 100];
	memset(big, '\n', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big + 10, text, strlen(text));
	write_atomic(path, big);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK_EQ(sl.n, 5);
	CHECK_EQ(pcp_io_watch_servers_file(c.io, NULL, 0), 0);
	CHECK_EQ(pcp_io_watch_servers_file(NULL, path, 0), EINVAL);
	unlink(path);

	pcp_io_free(c.io);
	pcp_client_free(c.client);
	responder_close(&r1);
	responder_close(&r2);
	event_base_free(c.base);
}

/* ipv6_only (a NAT64's client): an IPv4 server in the DHCP file is skipped, never asked;
 * a file of IPv4 servers only keeps the current one; no server and an IPv4 default router:
 * no server at all. */
static void test_servers_file_ipv6_only(void)
{
	struct ctx c = { 0 };
	c.base = event_base_new();
	struct responder r4, r6a, r6b;
	CHECK(responder_open(&r4, c.base, AF_INET));
	if (!responder_open(&r6a, c.base, AF_INET6)) {
		fprintf(stderr, "  (no IPv6 loopback: ipv6_only untested)\n");
		responder_close(&r4);
		event_base_free(c.base);
		return;
	}
	CHECK(responder_open(&r6b, c.base, AF_INET6));
	struct pcp_client_config cfg = { .random = t_random, .on_event = on_pcp_event, .event_arg = &c };
	c.client = pcp_client_new(&cfg);
	char s1[64], text[256];
	snprintf(s1, sizeof s1, "[::1]:%u", r6a.port);
	const char *servers[] = { s1 };
	struct server_log sl = { 0 };
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1, .on_server = on_server,
				       .server_arg = &sl, .ipv6_only = true };
	c.io = pcp_io_new(c.base, c.client, &iocfg, NULL);
	CHECK(c.io != NULL);
	if (!c.io)
		return;
	char path[] = "/tmp/test_pcp_servers6.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	unlink(path);
	CHECK_EQ(pcp_io_watch_servers_file(c.io, path, 50), 0);
	struct pcp_map_params p = { .protocol = 6, .internal_port = 7003, .lifetime = 3600 };
	CHECK(pcp_addr_parse(&p.internal_addr, "::1"));
	(void)pcp_flow_map(c.client, &p, NULL, pcp_io_now());
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, false, 3000));
	CHECK_EQ(r6a.n_req, 1);

	/* IPv4 first, IPv6 second: the IPv6 one is used, the IPv4 one never asked */
	snprintf(text, sizeof text, "127.0.0.1:%u\n[::1]:%u\n", r4.port, r6b.port);
	write_atomic(path, text);
	CHECK(wait_for(&c, PCP_EVENT_MAPPED, true, 3000));
	CHECK(is_server(&sl.last, "::1", r6b.port));
	CHECK_EQ(r6b.n_req, 1);
	CHECK_EQ(r4.n_req, 0);
	/* IPv4 only: refused like garbage, the IPv6 server stays */
	snprintf(text, sizeof text, "127.0.0.1:%u\n", r4.port);
	write_atomic(path, text);
	CHECK(!wait_for(&c, PCP_EVENT_MAPPED, true, 300));
	CHECK(is_server(&sl.last, "::1", r6b.port));
	CHECK_EQ(r4.n_req, 0);
	unlink(path);
	pcp_io_free(c.io);

	/* nothing configured, an IPv4 default router: not taken */
	char route[] = "/tmp/test_pcp_route6.XXXXXX";
	fd = mkstemp(route);
	CHECK(fd >= 0);
	close(fd);
	write_route(route, 1);
	struct server_log sl2 = { 0 };
	struct pcp_io_config none = { .route_file = route, .on_server = on_server, .server_arg = &sl2,
				      .ipv6_only = true };
	c.io = pcp_io_new(c.base, c.client, &none, NULL);
	CHECK(c.io != NULL);
	CHECK_EQ(sl2.n, 0);
	struct pcp_server in_use;
	CHECK(c.io == NULL || !pcp_io_get_server(c.io, &in_use));
	pcp_io_free(c.io);
	unlink(route);

	pcp_client_free(c.client);
	responder_close(&r4);
	responder_close(&r6a);
	responder_close(&r6b);
	event_base_free(c.base);
}

/* ---------------------------------------------------------------- bursts */

#define BURST 10000

struct tally {
	unsigned requests, distinct;
};

/* In a child process: answer every MAP request with SUCCESS, count requests and distinct
 * nonces; report through out_fd after a second of silence. The socket keeps the
 * kernel's default receive buffer (~208 KiB: a few hundred datagrams), like a server. */
static void responder_child(int fd, int out_fd)
{
	enum { SLOTS = 32768 };
	static uint8_t seen[SLOTS][PCP_NONCE_LEN];
	static bool used[SLOTS];
	struct tally t = { 0, 0 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (poll(&pfd, 1, 1000) > 0) {
		uint8_t buf[PCP_MAX_PACKET];
		struct sockaddr_storage peer;
		socklen_t pl = sizeof peer;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &pl);
		struct pcp_msg m;
		if (n <= 0 || pcp_msg_decode(buf, (size_t)n, &m) != PCP_OK || m.response || m.opcode != PCP_OPCODE_MAP)
			continue;
		t.requests++;
		size_t k = ((size_t)m.nonce[0] << 8 | m.nonce[1]) % SLOTS;
		while (used[k] && memcmp(seen[k], m.nonce, PCP_NONCE_LEN) != 0)
			k = (k + 1) % SLOTS;
		if (!used[k]) {
			used[k] = true;
			memcpy(seen[k], m.nonce, PCP_NONCE_LEN);
			t.distinct++;
		}
		m.response = true;
		m.result = PCP_RESULT_SUCCESS;
		m.epoch = 1000;
		m.external_port = m.internal_port;
		pcp_addr_parse(&m.external_addr, "203.0.113.5");
		m.prefer_failure = false;
		m.n_filters = 0;
		size_t len = 0;
		if (pcp_msg_encode(&m, buf, sizeof buf, &len) == PCP_OK)
			(void)sendto(fd, buf, len, 0, (struct sockaddr *)&peer, pl);
	}
	ssize_t w = write(out_fd, &t, sizeof t);
	_exit(w == (ssize_t)sizeof t ? 0 : 1);
}

struct burst_ctx {
	struct event_base *base;
	unsigned mapped;
};

static void on_burst_event(void *arg, const struct pcp_event *ev)
{
	struct burst_ctx *b = arg;
	if (ev->type == PCP_EVENT_MAPPED && !ev->renewal && ++b->mapped == BURST)
		event_base_loopbreak(b->base);
}

/* A restore of 10,000 mappings through engine + adapter against a responder in another
 * process. Every flow must be answered without the §8.1.1 back-off (IRT 10 s here, and
 * we give up after 8.5 s), each request must arrive exactly once, and the engine must
 * count exactly what arrived as sent. With faults, send() refuses datagrams meanwhile. */
static void run_burst(bool faults)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sin;
	int pfd[2];
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	      getsockname(fd, (struct sockaddr *)&sin, &sl) == 0 && pipe(pfd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid < 0)
		return;
	if (pid == 0) {
		close(pfd[0]);
		responder_child(fd, pfd[1]);
	}
	close(fd);
	close(pfd[1]);

	struct burst_ctx b = { .base = event_base_new() };
	struct pcp_client_config cfg = { .irt_ms = 10000, .random = t_random, .on_event = on_burst_event,
					 .event_arg = &b };
	struct pcp_client *client = pcp_client_new(&cfg);
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(sin.sin_port));
	const char *servers[] = { server };
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1 };
	struct pcp_io *io = pcp_io_new(b.base, client, &iocfg, NULL);
	CHECK(io != NULL);
	memset(&fake_send, 0, sizeof fake_send);
	fake_send.armed = faults;
	uint64_t t0 = pcp_io_now();
	for (unsigned i = 0; i < BURST; i++) {
		struct pcp_map_params p = { .protocol = 6, .internal_port = (uint16_t)(1 + i), .lifetime = 3600,
					    .third_party = true, .prefer_failure = true };
		CHECK(pcp_addr_parse(&p.internal_addr, "192.168.1.10"));
		CHECK(pcp_flow_map(client, &p, NULL, pcp_io_now()) != NULL);
	}
	struct event *guard = evtimer_new(b.base, on_guard, b.base);
	struct timeval tv = { .tv_sec = 8, .tv_usec = 500000 };
	evtimer_add(guard, &tv);
	event_base_dispatch(b.base);
	uint64_t took = pcp_io_now() - t0;
	fake_send.armed = false;
	CHECK_EQ(b.mapped, BURST);
	struct pcp_client_stats st;
	pcp_client_get_stats(client, &st);
	CHECK_EQ(st.sent, BURST);
	CHECK_EQ(st.retransmitted, 0);
	event_free(guard);
	pcp_io_free(io);
	pcp_client_free(client);
	event_base_free(b.base);

	struct tally t = { 0, 0 };
	CHECK(read(pfd[0], &t, sizeof t) == (ssize_t)sizeof t);
	close(pfd[0]);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(t.requests, BURST); /* each exactly once: nothing lost, nothing repeated */
	CHECK_EQ(t.distinct, BURST);
	if (faults) {
		CHECK(fake_send.eagain > 0);
		CHECK(fake_send.enobufs > 0);
		CHECK_EQ(fake_send.refused, 1);
		CHECK(fake_send.calls < BURST + 3 * (fake_send.eagain + fake_send.enobufs) + 10); /* no spinning */
	}
	fprintf(stderr, "  %u flows mapped in %llu ms (%u requests, %u distinct nonces at the server)", b.mapped,
		(unsigned long long)took, t.requests, t.distinct);
	if (faults)
		fprintf(stderr, "; send() refused %u x EAGAIN, %u x ENOBUFS, %u x ECONNREFUSED", fake_send.eagain,
			fake_send.enobufs, fake_send.refused);
	fputc('\n', stderr);
}

static void test_burst(void)
{
	run_burst(false);
}

static void test_burst_send_refused(void)
{
	run_burst(true);
}

int main(void)
{
	TU_RUN(test_parse_server);
	TU_RUN(test_loopback);
	TU_RUN(test_retransmit_over_udp);
	TU_RUN(test_new_errors);
	TU_RUN(test_default_router);
	TU_RUN(test_failover);
	TU_RUN(test_default_router_mode);
	TU_RUN(test_servers_file);
	TU_RUN(test_servers_file_ipv6_only);
	TU_RUN(test_burst);
	TU_RUN(test_burst_send_refused);
	return tu_finish(__FILE__);
}
