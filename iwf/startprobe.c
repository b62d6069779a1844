/*
 * startprobe.c - is the PCP server there? (startprobe.h)
 *
 * The core sends nothing until PCP_SERVICE_WAIT has passed or a control point asks (seed
 * 004 §5.10), so without this an unreachable server stayed silent in the logs until a
 * game failed to map its port. At start the daemon sends one ANNOUNCE request (RFC 6887
 * §14.1.1: a client may send it to learn whether the server is there; lifetime 0, no
 * opcode data, the server answers with its Epoch) from a socket of its own, retransmitted
 * like any request (§8.1.1: IRT 3 s, doubling) at 0, 3 and 9 s, and logs the verdict once:
 * info when anything came back, a warning naming the server, the source address and what
 * was tried when nothing did (after 15 s) or when the network said no (ICMP unreachable,
 * no route). The probe creates no state anywhere: ANNOUNCE maps nothing.
 */
#include "startprobe.h"

#include "pcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* When each transmission goes and when the verdict falls, ms after the start. */
static const uint32_t send_at_ms[] = {0, 3000, 9000};
#define VERDICT_MS 15000u

struct iwf_startprobe {
	const struct iwf_logger *log;
	struct pcp_server server;
	char server_text[INET6_ADDRSTRLEN + 16]; /* "ADDR port N (why)" */
	char source[INET6_ADDRSTRLEN];
	int fd;
	struct event *ev_read, *ev_timer;
	size_t sent;
	uint64_t t0;
	uint8_t req[PCP_HEADER_LEN];
	size_t req_len;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void finish(struct iwf_startprobe *p)
{
	if (p->ev_read) {
		event_free(p->ev_read);
		p->ev_read = NULL;
	}
	if (p->ev_timer) {
		event_free(p->ev_timer);
		p->ev_timer = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
}

static void network_refused(struct iwf_startprobe *p, int err)
{
	if (err == ECONNREFUSED)
		iwf_log(p->log, IWF_LOG_WARN,
			"PCP server %s refused the start-up probe from %s: ICMP port unreachable, nothing listens "
			"on UDP %u there; port mappings will fail (UPnP 501) until a PCP server answers",
			p->server_text, p->source, p->server.port);
	else
		iwf_log(p->log, IWF_LOG_WARN,
			"PCP server %s cannot be reached from %s: %s; port mappings will fail (UPnP 501) until it can",
			p->server_text, p->source[0] ? p->source : "this router", strerror(err));
	finish(p);
}

static void arm(struct iwf_startprobe *p)
{
	uint32_t at = p->sent < sizeof(send_at_ms) / sizeof(send_at_ms[0]) ? send_at_ms[p->sent] : VERDICT_MS;
	uint64_t el = now_ms() - p->t0, d = at > el ? at - el : 0;
	struct timeval tv = {.tv_sec = (time_t)(d / 1000), .tv_usec = (suseconds_t)(d % 1000) * 1000};
	evtimer_add(p->ev_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct iwf_startprobe *p = arg;
	(void)fd;
	(void)what;
	if (p->sent == sizeof(send_at_ms) / sizeof(send_at_ms[0])) {
		iwf_log(p->log, IWF_LOG_WARN,
			"PCP server %s does not answer: %zu ANNOUNCE requests from %s over %u s got no response; "
			"port mappings will fail (UPnP 501) until it answers (check the server address, the route "
			"to it and that the carrier offers PCP)",
			p->server_text, p->sent, p->source, VERDICT_MS / 1000);
		finish(p);
		return;
	}
	if (send(p->fd, p->req, p->req_len, MSG_NOSIGNAL) < 0 && errno != EAGAIN && errno != ENOBUFS) {
		network_refused(p, errno);
		return;
	}
	p->sent++;
	arm(p);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct iwf_startprobe *p = arg;
	(void)what;
	uint8_t buf[PCP_MAX_PACKET + 4];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			network_refused(p, errno);
		return;
	}
	/* The socket is connected: only the server's address and port reach it. */
	struct pcp_msg m;
	uint8_t version = 0;
	unsigned ms = (unsigned)(now_ms() - p->t0);
	if (pcp_msg_decode(buf, (size_t)n, &m) == PCP_OK && m.response) {
		iwf_log(p->log, IWF_LOG_INFO, "PCP server %s answers (start-up probe: ANNOUNCE %s, epoch %u, %u ms)",
			p->server_text, pcp_result_name(m.result), m.epoch, ms);
	} else if (pcp_msg_is_unsupp_version(buf, (size_t)n, &version)) {
		iwf_log(p->log, IWF_LOG_WARN,
			"PCP server %s answers, but not in PCP version 2 (it speaks version %u%s); port mappings "
			"will fail",
			p->server_text, version, version == 0 ? ": NAT-PMP only" : "");
	} else {
		iwf_log(p->log, IWF_LOG_WARN, "PCP server %s answered the start-up probe with %zd bytes that are not a "
			"PCP response; port mappings may fail", p->server_text, n);
	}
	finish(p);
}

struct iwf_startprobe *iwf_startprobe_new(struct event_base *base, const struct pcp_server *server,
					  const char *why, const struct iwf_logger *log)
{
	struct iwf_startprobe *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->log = log;
	p->fd = -1;
	if (!server) {
		iwf_log(log, IWF_LOG_WARN, "no PCP server known yet (none configured, none handed over by DHCP, no "
			"IPv4 default route); port mappings will fail (UPnP 501) until one is");
		return p;
	}
	p->server = *server;
	char addr[INET6_ADDRSTRLEN];
	pcp_addr_format(&server->addr, addr, sizeof(addr));
	snprintf(p->server_text, sizeof(p->server_text), "%s port %u%s%s%s", addr, server->port,
		 why ? " (" : "", why ? why : "", why ? ")" : "");

	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (IN6_IS_ADDR_V4MAPPED(&server->addr)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(server->port);
		memcpy(&sin->sin_addr, &server->addr.s6_addr[12], 4);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(server->port);
		sin6->sin6_addr = server->addr;
		sl = sizeof(*sin6);
	}
	p->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&ss, sl) < 0) {
		network_refused(p, errno);
		return p;
	}
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	struct pcp_msg m;
	memset(&m, 0, sizeof(m));
	m.version = PCP_VERSION;
	m.opcode = PCP_OPCODE_ANNOUNCE;
	m.lifetime = 0;
	if (getsockname(p->fd, (struct sockaddr *)&me, &ml) == 0) {
		if (me.ss_family == AF_INET) {
			pcp_addr_from_v4(&m.client_addr, &((struct sockaddr_in *)&me)->sin_addr);
		} else {
			m.client_addr = ((struct sockaddr_in6 *)&me)->sin6_addr;
		}
		pcp_addr_format(&m.client_addr, p->source, sizeof(p->source));
	}
	if (pcp_msg_encode(&m, p->req, sizeof(p->req), &p->req_len) != PCP_OK) {
		finish(p);
		return p;
	}
	p->ev_read = event_new(base, p->fd, EV_READ | EV_PERSIST, on_read, p);
	p->ev_timer = evtimer_new(base, on_timer, p);
	if (!p->ev_read || !p->ev_timer) {
		finish(p);
		return p;
	}
	event_add(p->ev_read, NULL);
	p->t0 = now_ms();
	arm(p);
	return p;
}

void iwf_startprobe_free(struct iwf_startprobe *p)
{
	if (!p)
		return;
	finish(p);
	free(p);
}
