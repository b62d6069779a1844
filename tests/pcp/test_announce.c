/*
 * test_announce.c - the adapter's guards on ANNOUNCE (pcp_event.h, issue "A hostile LAN and
 * a curious WAN", finding 3), over loopback UDP:
 *  - a flood of ANNOUNCEs whose Epochs each fail the RFC 6887 §8.5 check makes the engine
 *    re-send every mapping once per announce_gap_ms, not once per datagram;
 *  - an ANNOUNCE that arrives on another interface than the WAN's is dropped before the
 *    engine sees it; with no WAN interface configured, the interface of the address the
 *    server socket sends from (here lo) is the one.
 * The responder stays silent after the first answer, so every MAP it counts was caused by
 * an ANNOUNCE. The checks that use the adapter's statistics compile only where they exist
 * (PCP_IO_ANNOUNCE_GAP_MS), so the behavioural checks also run against an adapter without
 * the guards, where they fail.
 */
#include "pcp.h"
#include "pcp_event.h"
#include "../testutil.h"
#include "udp_util.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

struct srv {
	int fd;
	uint16_t port;
	struct event *ev;
	bool silent;
	unsigned n_req;
};

struct ctx {
	struct event_base *base;
	struct pcp_client *client;
	bool mapped;
	unsigned n_lost;
};

static void t_random(void *arg, void *buf, size_t len)
{
	(void)arg;
	if (len == PCP_NONCE_LEN) {
		if (getrandom(buf, len, 0) != (ssize_t)len)
			abort();
	} else {
		memset(buf, 0, len); /* no jitter, ANNOUNCE spread 0: the re-send is immediate */
	}
}

static void on_pcp_event(void *arg, const struct pcp_event *ev)
{
	struct ctx *c = arg;
	if (ev->type == PCP_EVENT_SERVER_LOST_STATE)
		c->n_lost++;
	if (ev->type == PCP_EVENT_MAPPED) {
		c->mapped = true;
		event_base_loopbreak(c->base);
	}
}

static void on_request(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	uint8_t buf[2048];
	struct sockaddr_storage peer;
	socklen_t pl = sizeof peer;
	(void)what;
	ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &pl);
	struct pcp_msg m;
	if (n <= 0 || pcp_msg_decode(buf, (size_t)n, &m) != PCP_OK || m.response)
		return;
	s->n_req++;
	if (s->silent)
		return;
	m.response = true;
	m.result = PCP_RESULT_SUCCESS;
	m.epoch = 1000;
	size_t len;
	CHECK_EQ(pcp_msg_encode(&m, buf, sizeof buf, &len), PCP_OK);
	CHECK(sendto(fd, buf, len, 0, (struct sockaddr *)&peer, pl) == (ssize_t)len);
}

static bool srv_open(struct srv *s, struct event_base *base)
{
	memset(s, 0, sizeof *s);
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    getsockname(s->fd, (struct sockaddr *)&sin, &sl) < 0)
		return false;
	s->port = ntohs(sin.sin_port);
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, on_request, s);
	return s->ev && event_add(s->ev, NULL) == 0;
}

static void srv_close(struct srv *s)
{
	event_free(s->ev);
	close(s->fd);
}

static void send_announce(struct srv *s, uint16_t to_port, uint32_t epoch)
{
	tu_send_announce(s->fd, to_port, epoch);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void run_for(struct event_base *base, unsigned ms)
{
	struct event *guard = evtimer_new(base, on_guard, base);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(guard, &tv);
	event_base_dispatch(base);
	event_free(guard);
}

struct setup {
	struct ctx c;
	struct srv s;
	struct pcp_io *io;
	uint16_t aport;
};

/* A client with one mapping made on a server at 127.0.0.1, which then falls silent. */
static bool setup(struct setup *t, const char *ifname)
{
	memset(t, 0, sizeof *t);
	t->c.base = event_base_new();
	if (!srv_open(&t->s, t->c.base))
		return false;
	struct pcp_client_config cfg = { .random = t_random, .on_event = on_pcp_event, .event_arg = &t->c };
	t->c.client = pcp_client_new(&cfg);
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%u", t->s.port);
	const char *servers[] = { server };
	t->aport = tu_free_udp_port();
	struct pcp_io_config iocfg = { .servers = servers, .n_servers = 1, .listen_announce = true,
				       .announce_port = t->aport };
#ifdef PCP_IO_ANNOUNCE_GAP_MS
	iocfg.announce_ifname = ifname;
#else
	(void)ifname;
#endif
	t->io = pcp_io_new(t->c.base, t->c.client, &iocfg, NULL);
	if (!t->io)
		return false;
	struct pcp_map_params p = { .protocol = 6, .internal_port = 40000, .suggested_port = 40000,
				    .lifetime = 600, .third_party = true };
	CHECK(pcp_addr_parse(&p.internal_addr, "192.168.1.10"));
	pcp_flow_map(t->c.client, &p, NULL, pcp_io_now());
	run_for(t->c.base, 2000);
	CHECK(t->c.mapped);
	CHECK_EQ(t->s.n_req, 1);
	t->s.silent = true;
	return t->c.mapped;
}

static void teardown(struct setup *t)
{
	pcp_io_free(t->io);
	pcp_client_free(t->c.client);
	srv_close(&t->s);
	event_base_free(t->c.base);
}

/* 20 ANNOUNCEs from the server's own address, 50 ms apart, Epochs alternating so that each
 * one fails §8.5: one re-send of the mapping, not 20. */
static void test_flood_rate_limited(void)
{
	struct setup t;
	CHECK(setup(&t, NULL));
	unsigned before = t.s.n_req, lost0 = t.c.n_lost;
	for (unsigned i = 0; i < 20; i++) {
		send_announce(&t.s, t.aport, i % 2 ? 5000000 : 0);
		run_for(t.c.base, 50);
	}
	run_for(t.c.base, 200);
	CHECKF(t.c.n_lost - lost0 == 1, "%u lost-state events", t.c.n_lost - lost0);
	CHECKF(t.s.n_req - before == 1, "%u MAPs re-sent for 20 ANNOUNCEs", t.s.n_req - before);
#ifdef PCP_IO_ANNOUNCE_GAP_MS
	struct pcp_io_stats st;
	pcp_io_get_stats(t.io, &st);
	CHECK_EQ(st.announce_resends, 1);
	CHECK_EQ(st.announce_rate_limited, 19);
	CHECK_EQ(st.announce_wrong_if, 0);
	CHECK_EQ(st.wan_ifindex, if_nametoindex("lo")); /* derived: the route to 127.0.0.1 */
#endif
	teardown(&t);
}

/* The WAN interface is another one than the ANNOUNCE's (lo): dropped, nothing re-sent. */
static void test_wrong_interface(void)
{
	/* any interface but lo; a name that does not exist works as well (nothing matches) */
	const char *other = "iwfd-nonexist";
	struct if_nameindex *ifs = if_nameindex();
	for (struct if_nameindex *i = ifs; i && i->if_index; i++)
		if (strcmp(i->if_name, "lo") != 0) {
			other = i->if_name;
			break;
		}
	struct setup t;
	CHECK(setup(&t, other));
	unsigned before = t.s.n_req, lost0 = t.c.n_lost;
	send_announce(&t.s, t.aport, 0);
	run_for(t.c.base, 500);
	CHECKF(t.c.n_lost == lost0, "an ANNOUNCE on lo was taken with WAN interface %s", other);
	CHECK_EQ(t.s.n_req, before);
#ifdef PCP_IO_ANNOUNCE_GAP_MS
	struct pcp_io_stats st;
	pcp_io_get_stats(t.io, &st);
	CHECK_EQ(st.announce_wrong_if, 1);
	CHECK_EQ(st.announce_resends, 0);
#endif
	teardown(&t);
	if (ifs)
		if_freenameindex(ifs);

	/* configured as lo: taken */
	CHECK(setup(&t, "lo"));
	before = t.s.n_req;
	send_announce(&t.s, t.aport, 0);
	run_for(t.c.base, 500);
	CHECK_EQ(t.c.n_lost, 1);
	CHECK_EQ(t.s.n_req, before + 1);
	teardown(&t);
}

int main(void)
{
	test_flood_rate_limited();
	test_wrong_interface();
	return tu_finish("test_announce");
}
