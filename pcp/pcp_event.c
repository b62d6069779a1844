/*
 * pcp_event.c - libevent adapter for the PCP client engine: sockets and one timer.
 * All protocol decisions stay in pcp_client.c; this file only moves datagrams.
 */
#include "pcp_event.h"

#include <errno.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IO_READ_BATCH 64 /* datagrams per read callback, then back to the loop */
#define IO_WRITE_WAIT_MS 1000 /* EAGAIN: wait for EV_WRITE, but look again after this */
#define IO_NOBUFS_WAIT_MS 10  /* ENOBUFS (a full device queue): try again after this */

enum io_sent { IO_SENT, IO_WOULDBLOCK, IO_NOBUFS, IO_DROPPED };

/* Where the server list in use comes from (the first non-empty one wins). */
enum io_source { SRC_FILE, SRC_CONFIG, SRC_ROUTER };

struct pcp_io {
	struct event_base *base;
	struct pcp_client *client;
	void (*log)(void *arg, int level, const char *fmt, va_list ap);
	void *log_arg;
	pcp_io_server_cb *on_server;
	void *server_arg;

	bool has_server;
	struct in6_addr server;
	uint16_t server_port;
	struct in6_addr source; /* what the connected socket sends from */
	int fd; /* connected to the server, -1 = none */
	struct event *ev_read;
	struct event *ev_write;  /* EV_WRITE on fd, added while a datagram waits in pending */
	/* the previous servers' socket events: one may be running right now (a callback
	 * switched servers), so they are freed from on_kick */
	struct event **retired;
	size_t n_retired, cap_retired;

	/* A datagram the engine produced that the socket refused for now (EAGAIN, ENOBUFS):
	 * sent before anything else is pulled, so nothing is lost and nothing counts as sent
	 * before it is. */
	uint8_t pending[PCP_MAX_PACKET];
	size_t pending_len;
	/* Answer-clocked pacing: send times of the requests in flight, oldest first (a
	 * ring of flight_cap; 0 = unlimited). A datagram from the server retires the oldest,
	 * so does age (PCP_IO_IN_FLIGHT_MS). While it is full nothing more is pulled. */
	uint64_t *flight;
	size_t flight_cap, flight_head, flight_n;

	/* server lists: RFC 7488 order; the watched file's wins over the configured one;
	 * with neither, the default router (RFC 6887 §8.1) */
	struct pcp_server config_list[PCP_MAX_SERVERS];
	size_t n_config;
	struct pcp_server file_list[PCP_MAX_SERVERS];
	size_t n_file;
	enum io_source source_kind;
	size_t cur;           /* index of the server in use in the list in use */
	size_t round_start;   /* failover: where the current round through the list began */
	unsigned rounds;      /* failover: complete rounds without any answer (backoff) */
	uint64_t failover_seen; /* the unanswered_since already acted on (single server) */
	uint32_t failover_ms;

	char *route_file;     /* NULL = /proc/net/route */
	uint32_t router_poll_ms;
	struct event *ev_router;

	char *watch_path;
	struct event *ev_watch;
	bool watch_known;     /* the identity below describes the file last applied */
	bool watch_exists;
	struct stat watch_st;

	int announce_fd4, announce_fd6;
	struct event *ev_announce4, *ev_announce6;
	/* ANNOUNCE only from the WAN interface, and at most one re-send per gap */
	char *announce_ifname;   /* configured; NULL = the interface of io->source */
	unsigned wan_ifindex;    /* 0 = unknown: no ANNOUNCE is taken */
	uint64_t wan_if_checked; /* when wan_ifindex was last looked up */
	uint32_t announce_gap_ms;
	bool ipv6_only;          /* pcp_io_config.ipv6_only */
	uint64_t announce_quiet_until;
	struct pcp_io_stats stats;

	struct event *ev_timer;
	struct event *ev_kick;
};

__attribute__((format(printf, 3, 4))) static void io_log(struct pcp_io *io, int level, const char *fmt, ...)
{
	if (!io->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	io->log(io->log_arg, level, fmt, ap);
	va_end(ap);
}

uint64_t pcp_io_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- addresses */

bool pcp_io_parse_server(const char *text, struct in6_addr *addr, uint16_t *port)
{
	struct pcp_server srv;
	if (!text || !addr || !port || pcp_server_parse(text, strlen(text), &srv) != PCP_OK)
		return false;
	*addr = srv.addr;
	*port = srv.port;
	return true;
}

static socklen_t to_sockaddr(const struct in6_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (pcp_addr_is_v4(a)) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		memcpy(&sin.sin_addr, &a->s6_addr[12], 4);
		memcpy(ss, &sin, sizeof sin);
		return sizeof sin;
	}
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = *a };
	memcpy(ss, &sin6, sizeof sin6);
	return sizeof sin6;
}

static bool from_sockaddr(const struct sockaddr_storage *ss, struct in6_addr *a, uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, ss, sizeof sin);
		pcp_addr_from_v4(a, &sin.sin_addr);
		*port = ntohs(sin.sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, ss, sizeof sin6);
		*a = sin6.sin6_addr;
		*port = ntohs(sin6.sin6_port);
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- default router */

/* Next whitespace-separated field of line[*pos..len) as hex; false if absent/invalid. */
static bool route_hex_field(const char *line, size_t len, size_t *pos, uint32_t *v)
{
	size_t i = *pos;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t start = i;
	uint32_t x = 0;
	for (; i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n'; i++) {
		char ch = line[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return false;
		if (i - start >= 8)
			return false;
		x = x << 4 | d;
	}
	if (i == start)
		return false;
	*pos = i;
	*v = x;
	return true;
}

/* Next field as a decimal number, saturating at UINT32_MAX. */
static bool route_dec_field(const char *line, size_t len, size_t *pos, uint32_t *v)
{
	size_t i = *pos;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t start = i;
	uint64_t x = 0;
	for (; i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n'; i++) {
		if (line[i] < '0' || line[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(line[i] - '0');
		if (x > UINT32_MAX)
			x = UINT32_MAX;
	}
	if (i == start)
		return false;
	*pos = i;
	*v = (uint32_t)x;
	return true;
}

static bool route_skip_field(const char *line, size_t len, size_t *pos)
{
	size_t i = *pos;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t start = i;
	while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n')
		i++;
	*pos = i;
	return i > start;
}

bool pcp_io_default_router(const char *route_file, struct in6_addr *out)
{
	/* /proc/net/route: Iface Destination Gateway Flags(hex) RefCnt Use Metric (decimal)
	 * Mask ...; addresses are network-order 32-bit values printed as host integers. */
	FILE *fp = fopen(route_file ? route_file : "/proc/net/route", "re");
	if (!fp || !out) {
		if (fp)
			fclose(fp);
		return false;
	}
	char line[512];
	bool found = false, header = true;
	uint32_t best_metric = 0;
	while (fgets(line, sizeof line, fp)) {
		if (header) {
			header = false;
			continue;
		}
		size_t len = strnlen(line, sizeof line), pos = 0;
		uint32_t dst, gw, flags, refcnt, use, metric, mask;
		if (!route_skip_field(line, len, &pos) || !route_hex_field(line, len, &pos, &dst) ||
		    !route_hex_field(line, len, &pos, &gw) || !route_hex_field(line, len, &pos, &flags) ||
		    !route_dec_field(line, len, &pos, &refcnt) || !route_dec_field(line, len, &pos, &use) ||
		    !route_dec_field(line, len, &pos, &metric) || !route_hex_field(line, len, &pos, &mask))
			continue;
		(void)refcnt;
		(void)use;
		if (dst != 0 || mask != 0 || gw == 0 || (flags & 0x3) != 0x3) /* RTF_UP | RTF_GATEWAY */
			continue;
		if (found && metric >= best_metric)
			continue;
		struct in_addr a;
		a.s_addr = gw;
		pcp_addr_from_v4(out, &a);
		best_metric = metric;
		found = true;
	}
	fclose(fp);
	return found;
}

/* ---------------------------------------------------------------- timer and output */

static void io_failover(struct pcp_io *io, uint64_t now);
static uint64_t io_failover_at(const struct pcp_io *io);

/* ---- answer-clocked pacing (docs/pcp.md "Sending") */

static void flight_expire(struct pcp_io *io, uint64_t now)
{
	while (io->flight_n && io->flight[io->flight_head] + PCP_IO_IN_FLIGHT_MS <= now) {
		io->flight_head = (io->flight_head + 1) % io->flight_cap;
		io->flight_n--;
	}
}

/* A datagram came from the server: it answers (we assume) the oldest request. */
static void flight_ack(struct pcp_io *io)
{
	if (io->flight_n) {
		io->flight_head = (io->flight_head + 1) % io->flight_cap;
		io->flight_n--;
	}
}

static void flight_push(struct pcp_io *io, uint64_t now)
{
	if (io->flight_cap && io->flight_n < io->flight_cap)
		io->flight[(io->flight_head + io->flight_n++) % io->flight_cap] = now;
}

/* When the window opens again (0: it is open). */
static uint64_t flight_blocked_until(const struct pcp_io *io)
{
	if (!io->flight_cap || io->flight_n < io->flight_cap)
		return 0;
	return io->flight[io->flight_head] + PCP_IO_IN_FLIGHT_MS;
}

/* One datagram on the connected socket. ECONNREFUSED is an earlier datagram's ICMP port
 * unreachable reported now, and this one was not sent: once more. */
static enum io_sent io_send(struct pcp_io *io, const uint8_t *buf, size_t len)
{
	for (int refused = 0;;) {
		if (send(io->fd, buf, len, 0) >= 0)
			return IO_SENT;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_WOULDBLOCK;
		if (errno == ENOBUFS)
			return IO_NOBUFS;
		if (errno == ECONNREFUSED && !refused++)
			continue;
		io_log(io, LOG_DEBUG, "pcp: send: %s (the engine retransmits)", strerror(errno));
		return IO_DROPPED;
	}
}

/* Send everything due, as far as the socket and the pacing window allow; then arm the
 * one timer. A refused datagram is kept and goes first next time (EV_WRITE or a timer
 * brings us back); while blocked, nothing more is pulled from the engine, so its due
 * flows stay due and count as sent only when they really leave. */
static void io_flush(struct pcp_io *io)
{
	uint8_t buf[PCP_MAX_PACKET];
	size_t len;
	uint64_t now = pcp_io_now();
	uint64_t blocked_until = 0; /* 0: not blocked */

	io_failover(io, now);
	flight_expire(io, now);
	if (io->pending_len && io->fd >= 0) {
		enum io_sent r = io_send(io, io->pending, io->pending_len);
		if (r == IO_WOULDBLOCK) {
			event_add(io->ev_write, NULL);
			blocked_until = now + IO_WRITE_WAIT_MS;
		} else if (r == IO_NOBUFS) {
			blocked_until = now + IO_NOBUFS_WAIT_MS;
		} else {
			if (r == IO_SENT)
				flight_push(io, now);
			io->pending_len = 0;
		}
	}
	while (!blocked_until) {
		if (io->fd >= 0 && (blocked_until = flight_blocked_until(io)) != 0)
			break;
		if ((len = pcp_client_output(io->client, buf, sizeof buf, now)) == 0)
			break;
		if (io->fd < 0)
			continue; /* no server yet: the engine skips it too */
		enum io_sent r = io_send(io, buf, len);
		if (r == IO_SENT) {
			flight_push(io, now);
		} else if (r == IO_WOULDBLOCK || r == IO_NOBUFS) {
			memcpy(io->pending, buf, len);
			io->pending_len = len;
			if (r == IO_WOULDBLOCK)
				event_add(io->ev_write, NULL);
			blocked_until = now + (r == IO_WOULDBLOCK ? IO_WRITE_WAIT_MS : IO_NOBUFS_WAIT_MS);
		}
	}
	uint64_t next = pcp_client_next_deadline(io->client);
	if (next < blocked_until)
		next = blocked_until; /* due flows wait for the socket or the window, not spin */
	uint64_t fo = io_failover_at(io);
	if (fo < next)
		next = fo;
	if (next == UINT64_MAX) {
		evtimer_del(io->ev_timer);
		return;
	}
	uint64_t delta = next > now ? next - now : 0;
	struct timeval tv = { .tv_sec = (time_t)(delta / 1000), .tv_usec = (suseconds_t)(delta % 1000) * 1000 };
	if (delta)
		tv.tv_usec += 999; /* round up: never wake a hair early and spin */
	evtimer_add(io->ev_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	io_flush(arg);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	io_flush(arg);
}

/* Flush from the event loop (an immediately activated event): safe from anywhere,
 * including the engine's callbacks; many calls before it runs make one flush. */
static void io_kick(struct pcp_io *io)
{
	event_active(io->ev_kick, EV_TIMEOUT, 0);
}

/* The engine's on_wakeup (pcp_client_set_wakeup): it has something due earlier than
 * the timer we armed. */
static void on_wakeup(void *arg)
{
	io_kick(arg);
}

/* ---------------------------------------------------------------- input */

/* Interface index holding address a (IPv4-mapped for IPv4); 0 when none does. */
static unsigned ifindex_of_addr(const struct in6_addr *a)
{
	struct ifaddrs *list, *i;
	unsigned idx = 0;
	if (getifaddrs(&list) < 0)
		return 0;
	for (i = list; i && !idx; i = i->ifa_next) {
		if (!i->ifa_addr || !i->ifa_name)
			continue;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		if (i->ifa_addr->sa_family == AF_INET)
			memcpy(&ss, i->ifa_addr, sizeof(struct sockaddr_in));
		else if (i->ifa_addr->sa_family == AF_INET6)
			memcpy(&ss, i->ifa_addr, sizeof(struct sockaddr_in6));
		else
			continue;
		struct in6_addr x;
		uint16_t port;
		if (from_sockaddr(&ss, &x, &port) && memcmp(&x, a, sizeof x) == 0)
			idx = if_nametoindex(i->ifa_name);
	}
	freeifaddrs(list);
	return idx;
}

/* Look up the WAN interface again: the configured name, else the interface of the
 * address we send to the server from (the route towards it chose that address). */
static void io_find_wan_if(struct pcp_io *io, uint64_t now)
{
	unsigned idx = 0;
	if (io->announce_ifname)
		idx = if_nametoindex(io->announce_ifname);
	else if (io->has_server)
		idx = ifindex_of_addr(&io->source);
	io->wan_if_checked = now;
	if (idx == io->wan_ifindex)
		return;
	io->wan_ifindex = idx;
	io->stats.wan_ifindex = idx;
	char name[IF_NAMESIZE] = "";
	if (idx && !if_indextoname(idx, name))
		name[0] = '\0';
	if (idx)
		io_log(io, LOG_INFO, "pcp: ANNOUNCE taken only from interface %s (%s)", name,
		       io->announce_ifname ? "configured" : "route to the server");
	else if (io->announce_fd4 >= 0 || io->announce_fd6 >= 0)
		io_log(io, LOG_WARNING, "pcp: the WAN interface (%s) is unknown: ANNOUNCE is ignored",
		       io->announce_ifname ? io->announce_ifname : "route to the server");
}

/* The interface a datagram arrived on, from its IP_PKTINFO / IPV6_PKTINFO; 0 = unknown. */
static unsigned pktinfo_ifindex(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof pi);
			return (unsigned)pi.ipi_ifindex;
		}
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi6;
			memcpy(&pi6, CMSG_DATA(cm), sizeof pi6);
			return pi6.ipi6_ifindex;
		}
	}
	return 0;
}

/* Whether an ANNOUNCE socket's datagram may reach the engine: it came in on the WAN
 * interface (a LAN host cannot pass for the server, RFC 6887 §14.1.3 has the server
 * announce towards its clients) and no ANNOUNCE made everything be re-sent within the
 * last announce_gap_ms. */
static bool announce_allowed(struct pcp_io *io, unsigned ifindex, const struct in6_addr *from, uint64_t now)
{
	char a[INET6_ADDRSTRLEN];
	if (ifindex != io->wan_ifindex && now >= io->wan_if_checked + 1000)
		io_find_wan_if(io, now); /* the interface may have been re-created */
	if (!ifindex || ifindex != io->wan_ifindex) {
		io->stats.announce_wrong_if++;
		io_log(io, LOG_DEBUG, "pcp: ANNOUNCE from %s on interface %u dropped: not the WAN interface (%u)",
		       pcp_addr_format(from, a, sizeof a), ifindex, io->wan_ifindex);
		return false;
	}
	if (now < io->announce_quiet_until) {
		io->stats.announce_rate_limited++;
		io_log(io, LOG_DEBUG, "pcp: ANNOUNCE from %s dropped: mappings were re-sent %llu ms ago",
		       pcp_addr_format(from, a, sizeof a),
		       (unsigned long long)(now - (io->announce_quiet_until - io->announce_gap_ms)));
		return false;
	}
	return true;
}

static void io_read(struct pcp_io *io, int fd, bool server, const char *what)
{
	uint8_t buf[PCP_MAX_PACKET + 4]; /* one word more: oversize packets still look oversize */
	union {
		struct cmsghdr align;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
	} ctl;
	for (int i = 0; i < IO_READ_BATCH; i++) {
		struct sockaddr_storage ss;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
		struct msghdr mh = { .msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
		ssize_t n = recvmsg(fd, &mh, MSG_TRUNC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				io_log(io, LOG_DEBUG, "pcp: recv on %s socket: %s", what, strerror(errno));
			break;
		}
		struct in6_addr from;
		uint16_t port;
		if (!from_sockaddr(&ss, &from, &port))
			continue;
		size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
		uint64_t now = pcp_io_now();
		if (server)
			flight_ack(io); /* the server answered something: one more may go */
		else if (!announce_allowed(io, pktinfo_ifindex(&mh), &from, now))
			continue;
		struct pcp_client_stats before, after;
		pcp_client_get_stats(io->client, &before);
		enum pcp_err err = pcp_client_input(io->client, buf, len, &from, port, now);
		if (err != PCP_OK) {
			char a[INET6_ADDRSTRLEN];
			io_log(io, LOG_DEBUG, "pcp: dropped %zd-byte datagram from %s port %u on %s socket: %s", n,
			       pcp_addr_format(&from, a, sizeof a), port, what, pcp_err_name(err));
		}
		pcp_client_get_stats(io->client, &after);
		if (!server && after.lost_state_events != before.lost_state_events) {
			io->stats.announce_resends++;
			io->announce_quiet_until = now + io->announce_gap_ms;
		}
		if (server && fd != io->fd)
			break; /* an event callback switched servers: this socket is closed */
	}
	io_flush(io);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	io_read(arg, fd, true, "server");
}

static void on_announce(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	io_read(arg, fd, false, "announce");
}

void pcp_io_get_stats(const struct pcp_io *io, struct pcp_io_stats *out)
{
	if (io && out)
		*out = io->stats;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct pcp_io *io = arg;
	(void)fd;
	(void)what;
	while (io->n_retired)
		event_free(io->retired[--io->n_retired]);
	io_flush(io);
}

/* ---------------------------------------------------------------- sockets */

/* Socket connected to the server; *src = the address it sends from (RFC 6887 §8.1). */
static int open_server_socket(const struct in6_addr *addr, uint16_t port, struct in6_addr *src)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(addr, port, &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	struct sockaddr_storage local;
	socklen_t ll = sizeof local;
	uint16_t lport;
	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 || !from_sockaddr(&local, src, &lport))
		goto fail;
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int open_announce_socket(struct pcp_io *io, int family, uint16_t port)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) {
		io_log(io, LOG_WARNING, "pcp: ANNOUNCE socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc;
	if (family == AF_INET) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
	} else {
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		sin6.sin6_addr = in6addr_any;
		rc = bind(fd, (struct sockaddr *)&sin6, sizeof sin6);
	}
	if (rc < 0) {
		io_log(io, LOG_WARNING, "pcp: cannot bind UDP port %u for ANNOUNCE (%s): %s", port,
		       family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		close(fd);
		return -1;
	}
	/* the interface each datagram arrived on: ANNOUNCE is taken from the WAN only */
	if (family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
			      : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one)) {
		io_log(io, LOG_WARNING, "pcp: ANNOUNCE socket (%s): cannot learn the interface: %s",
		       family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		close(fd);
		return -1;
	}
	/* RFC 6887 §14.1.3: ANNOUNCE goes to the all-hosts groups */
	if (family == AF_INET) {
		struct ip_mreq mr;
		memset(&mr, 0, sizeof mr);
		mr.imr_multiaddr.s_addr = htonl(0xe0000001); /* 224.0.0.1 */
		mr.imr_interface.s_addr = htonl(INADDR_ANY);
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
			io_log(io, LOG_DEBUG, "pcp: join 224.0.0.1 for ANNOUNCE: %s (every host is in the all-hosts group anyway)", strerror(errno));
	} else {
		struct ipv6_mreq mr6;
		memset(&mr6, 0, sizeof mr6);
		mr6.ipv6mr_multiaddr.s6_addr[0] = 0xff;
		mr6.ipv6mr_multiaddr.s6_addr[1] = 0x02;
		mr6.ipv6mr_multiaddr.s6_addr[15] = 0x01; /* ff02::1 */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr6, sizeof mr6) < 0)
			io_log(io, LOG_DEBUG, "pcp: join ff02::1 for ANNOUNCE: %s (every host is in the all-hosts group anyway)", strerror(errno));
	}
	return fd;
}

static const char *const reason_names[] = {
	[PCP_IO_SERVER_CONFIGURED] = "configured",
	[PCP_IO_SERVER_FAILOVER] = "failover",
	[PCP_IO_SERVER_FILE] = "file",
	[PCP_IO_SERVER_DEFAULT_ROUTER] = "default-router",
};

const char *pcp_io_server_reason_name(enum pcp_io_server_reason why)
{
	return (unsigned)why < sizeof reason_names / sizeof reason_names[0] ? reason_names[why] : "?";
}

/* Room to retire the two events of the current socket (false: out of memory). */
static bool io_retire_room(struct pcp_io *io)
{
	if (io->cap_retired - io->n_retired >= 2)
		return true;
	size_t cap = io->cap_retired ? 2 * io->cap_retired : 4;
	struct event **r = realloc(io->retired, cap * sizeof *r);
	if (!r)
		return false;
	io->retired = r;
	io->cap_retired = cap;
	return true;
}

static void io_retire(struct pcp_io *io, struct event *ev)
{
	if (!ev)
		return;
	event_del(ev);
	io->retired[io->n_retired++] = ev; /* io_retire_room made room */
}

/* Switch to server addr:port. Returns 0, or an errno value and nothing changed. */
static int io_use_server(struct pcp_io *io, const struct in6_addr *addr, uint16_t port,
			 enum pcp_io_server_reason why)
{
	struct in6_addr src;
	int fd = open_server_socket(addr, port, &src);
	char a[INET6_ADDRSTRLEN];
	if (fd < 0) {
		int e = errno;
		io_log(io, LOG_ERR, "pcp: cannot reach server %s port %u: %s", pcp_addr_format(addr, a, sizeof a), port,
		       strerror(e));
		return e ? e : EIO;
	}
	struct event *ev = event_new(io->base, fd, EV_READ | EV_PERSIST, on_read, io);
	struct event *evw = event_new(io->base, fd, EV_WRITE, on_write, io);
	if (!ev || !evw || event_add(ev, NULL) < 0 || !io_retire_room(io)) {
		if (ev)
			event_free(ev);
		if (evw)
			event_free(evw);
		close(fd);
		return ENOMEM;
	}
	/* The old socket's events may be running right now (a callback switched servers):
	 * stop them here, free them later from on_kick. */
	io_retire(io, io->ev_read);
	io_retire(io, io->ev_write);
	if (io->fd >= 0)
		close(io->fd);
	io->fd = fd;
	io->ev_read = ev;
	io->ev_write = evw;
	io->pending_len = 0; /* built for the old socket; the engine re-sends every flow */
	io->flight_n = 0;
	bool same_server = io->has_server && memcmp(&io->server, addr, sizeof *addr) == 0 &&
			   io->server_port == port;
	bool new_source = memcmp(&io->source, &src, sizeof src) != 0;
	io->has_server = true;
	io->server = *addr;
	io->server_port = port;
	io->source = src;
	char s[INET6_ADDRSTRLEN];
	io_log(io, LOG_INFO, "pcp: server %s port %u (%s), client address %s", pcp_addr_format(addr, a, sizeof a), port,
	       pcp_io_server_reason_name(why), pcp_addr_format(&src, s, sizeof s));
	pcp_client_set_source(io->client, &src); /* §8.1: the address we really send from */
	io_find_wan_if(io, pcp_io_now());
	if (same_server && new_source)
		pcp_client_refresh_all(io->client, pcp_io_now()); /* reconnect after a WAN change */
	else
		pcp_client_set_server(io->client, addr, port, pcp_io_now());
	if (!same_server && io->on_server) {
		struct pcp_server srv = { .addr = *addr, .port = port };
		io->on_server(io->server_arg, &srv, why);
	}
	io_kick(io);
	return 0;
}

/* ---------------------------------------------------------------- server lists */

static const struct pcp_server *io_list(const struct pcp_io *io, size_t *n)
{
	if (io->source_kind == SRC_FILE) {
		*n = io->n_file;
		return io->file_list;
	}
	if (io->source_kind == SRC_CONFIG) {
		*n = io->n_config;
		return io->config_list;
	}
	*n = 0;
	return NULL;
}

/* No server configured: the IPv4 default router (RFC 6887 §8.1). Returns 0, ENOENT
 * (no default route) or the errno of the switch. */
static int io_check_router(struct pcp_io *io)
{
	struct in6_addr gw;
	if (io->ipv6_only) {
		io_log(io, LOG_DEBUG, "pcp: no server configured (the IPv4 default router is not one: IPv6 servers only)");
		return ENOENT;
	}
	if (!pcp_io_default_router(io->route_file, &gw)) {
		io_log(io, LOG_DEBUG, "pcp: no server configured and no IPv4 default router");
		return ENOENT;
	}
	if (io->has_server && memcmp(&io->server, &gw, sizeof gw) == 0 && io->server_port == PCP_SERVER_PORT)
		return 0;
	return io_use_server(io, &gw, PCP_SERVER_PORT, PCP_IO_SERVER_DEFAULT_ROUTER);
}

/* Try list[from], list[from+1], ... (cyclic) until a socket opens; 0 or the last errno. */
static int io_try_from(struct pcp_io *io, const struct pcp_server *l, size_t n, size_t from,
		       enum pcp_io_server_reason why)
{
	int rc = ENOENT;
	for (size_t k = 0; k < n; k++) {
		size_t i = (from + k) % n;
		rc = io_use_server(io, &l[i].addr, l[i].port, why);
		if (rc == 0) {
			io->cur = i;
			return 0;
		}
	}
	return rc;
}

/* The lists changed: pick the source and the server. A server still in the new list
 * is kept (no re-sending); otherwise the list's first (RFC 7488 order). */
static int io_apply(struct pcp_io *io, enum pcp_io_server_reason why)
{
	io->source_kind = io->n_file ? SRC_FILE : io->n_config ? SRC_CONFIG : SRC_ROUTER;
	io->rounds = 0;
	io->failover_seen = UINT64_MAX;
	if (io->source_kind == SRC_ROUTER) {
		struct timeval tv = { .tv_sec = io->router_poll_ms / 1000,
				      .tv_usec = (suseconds_t)(io->router_poll_ms % 1000) * 1000 };
		evtimer_add(io->ev_router, &tv);
		int rc = io_check_router(io);
		return rc == ENOENT ? 0 : rc; /* no route yet: the poll keeps looking */
	}
	evtimer_del(io->ev_router);
	size_t n;
	const struct pcp_server *l = io_list(io, &n);
	for (size_t i = 0; i < n && io->has_server; i++) {
		if (l[i].port == io->server_port && memcmp(&l[i].addr, &io->server, sizeof io->server) == 0) {
			io->cur = io->round_start = i;
			return 0;
		}
	}
	io->round_start = 0;
	return io_try_from(io, l, n, 0, why);
}

static void on_router_poll(evutil_socket_t fd, short what, void *arg)
{
	struct pcp_io *io = arg;
	(void)fd;
	(void)what;
	if (io->source_kind == SRC_ROUTER)
		(void)io_check_router(io);
}

/* Failover wait for the current round: failover_ms, doubled per complete round through
 * the list without any answer, at most PCP_MRT_MS (§8.1.1's ceiling). */
static uint64_t io_failover_wait(const struct pcp_io *io)
{
	uint64_t w = io->failover_ms;
	for (unsigned r = 0; r < io->rounds && w < PCP_MRT_MS; r++)
		w *= 2;
	return w < PCP_MRT_MS ? w : PCP_MRT_MS;
}

/* When the current server counts as gone (UINT64_MAX: not applicable). */
static uint64_t io_failover_at(const struct pcp_io *io)
{
	size_t n;
	(void)io_list(io, &n);
	if (!io->has_server || (n < 2 && io->source_kind != SRC_ROUTER))
		return UINT64_MAX;
	uint64_t since = pcp_client_unanswered_since(io->client);
	if (since == UINT64_MAX || since == io->failover_seen)
		return UINT64_MAX;
	return since + io_failover_wait(io);
}

/* RFC 7488: the server in use has not answered any request for the failover wait:
 * move on to the next address of the list (cyclic), re-sending every live flow with its
 * nonce (pcp_client_set_server). Without a list, re-read the default router. */
static void io_failover(struct pcp_io *io, uint64_t now)
{
	uint64_t at = io_failover_at(io);
	if (at > now)
		return;
	uint64_t since = pcp_client_unanswered_since(io->client);
	io->failover_seen = since;
	char a[INET6_ADDRSTRLEN];
	io_log(io, LOG_WARNING, "pcp: server %s port %u has not answered for %llu ms",
	       pcp_addr_format(&io->server, a, sizeof a), io->server_port, (unsigned long long)(now - since));
	if (io->source_kind == SRC_ROUTER) {
		(void)io_check_router(io);
		return;
	}
	size_t n;
	const struct pcp_server *l = io_list(io, &n);
	if (pcp_client_last_response(io->client) != UINT64_MAX) {
		io->round_start = io->cur; /* it used to answer: a new round starts here */
		io->rounds = 0;
	}
	size_t next = (io->cur + 1) % n;
	if (next == io->round_start && io->rounds < 16)
		io->rounds++;
	if (io_try_from(io, l, n, next, PCP_IO_SERVER_FAILOVER) != 0)
		io_log(io, LOG_ERR, "pcp: no server of the list can be reached");
}

/* Parse server strings into out[]; EINVAL on any bad one or more than PCP_MAX_SERVERS. */
static int parse_list(const char *const *servers, size_t n, struct pcp_server *out, size_t *n_out)
{
	if (n > PCP_MAX_SERVERS || (n && !servers))
		return EINVAL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct pcp_server srv;
		if (!servers[i] || pcp_server_parse(servers[i], strlen(servers[i]), &srv) != PCP_OK)
			return EINVAL;
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup |= out[j].port == srv.port && memcmp(&out[j].addr, &srv.addr, sizeof srv.addr) == 0;
		if (!dup)
			out[k++] = srv;
	}
	*n_out = k;
	return 0;
}

int pcp_io_set_servers(struct pcp_io *io, const char *const *servers, size_t n)
{
	struct pcp_server list[PCP_MAX_SERVERS];
	size_t k = 0;
	if (!io || parse_list(servers, n, list, &k) != 0)
		return EINVAL;
	struct pcp_server old[PCP_MAX_SERVERS];
	size_t n_old = io->n_config;
	memcpy(old, io->config_list, sizeof old);
	memcpy(io->config_list, list, sizeof list);
	io->n_config = k;
	if (io->source_kind == SRC_FILE)
		return 0; /* the hand-over file's list stays in charge */
	int rc = io_apply(io, PCP_IO_SERVER_CONFIGURED);
	if (rc != 0) { /* no server of the new list opens: back to the old list */
		memcpy(io->config_list, old, sizeof old);
		io->n_config = n_old;
		(void)io_apply(io, PCP_IO_SERVER_CONFIGURED);
	}
	return rc;
}

int pcp_io_reconnect(struct pcp_io *io)
{
	if (!io)
		return EINVAL;
	if (io->source_kind == SRC_ROUTER) {
		struct in6_addr before = io->server;
		bool had = io->has_server;
		int rc = io_check_router(io);
		if (rc != 0)
			return rc;
		if (!had || memcmp(&before, &io->server, sizeof before) != 0)
			return 0; /* a new router: freshly connected already */
	}
	if (!io->has_server)
		return ENOENT;
	struct in6_addr addr = io->server;
	return io_use_server(io, &addr, io->server_port, PCP_IO_SERVER_CONFIGURED);
}

bool pcp_io_get_server(const struct pcp_io *io, struct pcp_server *out)
{
	if (!io || !out || !io->has_server)
		return false;
	out->addr = io->server;
	out->port = io->server_port;
	return true;
}

/* ---------------------------------------------------------------- the hand-over file */

struct bad_line_ctx {
	struct pcp_io *io;
	const char *path;
	unsigned bad;
};

static void on_bad_line(void *arg, unsigned line, enum pcp_err why)
{
	struct bad_line_ctx *b = arg;
	b->bad++;
	io_log(b->io, LOG_WARNING, "pcp: %s line %u: %s, line ignored", b->path, line, pcp_err_name(why));
}

static bool same_identity(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read the watched file if it changed and apply it. */
static void io_watch_check(struct pcp_io *io)
{
	struct stat st;
	if (stat(io->watch_path, &st) < 0) {
		if (errno != ENOENT) {
			io_log(io, LOG_DEBUG, "pcp: %s: %s", io->watch_path, strerror(errno));
			return; /* keep what we have */
		}
		if (io->watch_known && !io->watch_exists)
			return;
		io->watch_known = true;
		io->watch_exists = false;
		if (io->n_file) {
			io_log(io, LOG_INFO, "pcp: %s is gone: back to the %s", io->watch_path,
			       io->n_config ? "configured servers" : "default router");
			io->n_file = 0;
			(void)io_apply(io, PCP_IO_SERVER_CONFIGURED);
		}
		return;
	}
	if (io->watch_known && io->watch_exists && same_identity(&st, &io->watch_st))
		return;
	io->watch_known = io->watch_exists = true;
	io->watch_st = st;
	if (!S_ISREG(st.st_mode) || st.st_size > PCP_IO_SERVERS_FILE_MAX) {
		io_log(io, LOG_WARNING, "pcp: %s: not a regular file of at most %d bytes, ignored", io->watch_path,
		       PCP_IO_SERVERS_FILE_MAX);
		return;
	}
	char text[PCP_IO_SERVERS_FILE_MAX];
	size_t len = 0;
	int fd = open(io->watch_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		io_log(io, LOG_WARNING, "pcp: %s: %s", io->watch_path, strerror(errno));
		io->watch_known = false;
		return;
	}
	for (;;) {
		ssize_t r = read(fd, text + len, sizeof text - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof text) {
			char extra;
			if (read(fd, &extra, 1) > 0) {
				io_log(io, LOG_WARNING, "pcp: %s grew beyond %d bytes, ignored", io->watch_path,
				       PCP_IO_SERVERS_FILE_MAX);
				close(fd);
				return;
			}
			break;
		}
	}
	close(fd);
	struct pcp_server list[PCP_MAX_SERVERS];
	struct bad_line_ctx b = { io, io->watch_path, 0 };
	size_t n = pcp_servers_parse(text, len, list, PCP_MAX_SERVERS, on_bad_line, &b);
	if (io->ipv6_only) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (!pcp_addr_is_v4(&list[i].addr)) {
				list[k++] = list[i];
				continue;
			}
			char t[INET6_ADDRSTRLEN];
			pcp_addr_format(&list[i].addr, t, sizeof t);
			io_log(io, LOG_WARNING, "pcp: %s: server %s is IPv4; only IPv6 servers are used here, ignored",
			       io->watch_path, t);
			b.bad++;
		}
		n = k;
	}
	if (n == 0 && b.bad) {
		io_log(io, LOG_WARNING, "pcp: %s holds no usable server: keeping the current one", io->watch_path);
		return;
	}
	if (n == 0) { /* nothing but blanks and comments: DHCP offered no PCP server */
		if (io->n_file) {
			io->n_file = 0;
			io_log(io, LOG_INFO, "pcp: %s is empty: back to the %s", io->watch_path,
			       io->n_config ? "configured servers" : "default router");
			(void)io_apply(io, PCP_IO_SERVER_CONFIGURED);
		}
		return;
	}
	bool same = n == io->n_file;
	for (size_t i = 0; same && i < n; i++)
		same = list[i].port == io->file_list[i].port &&
		       memcmp(&list[i].addr, &io->file_list[i].addr, sizeof list[i].addr) == 0;
	if (same && io->source_kind == SRC_FILE)
		return;
	memcpy(io->file_list, list, sizeof list);
	io->n_file = n;
	io_log(io, LOG_INFO, "pcp: %s: %zu server%s", io->watch_path, n, n == 1 ? "" : "s");
	if (io_apply(io, PCP_IO_SERVER_FILE) != 0)
		io_log(io, LOG_ERR, "pcp: none of the servers in %s can be reached", io->watch_path);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	io_watch_check(arg);
}

int pcp_io_watch_servers_file(struct pcp_io *io, const char *path, uint32_t poll_ms)
{
	if (!io)
		return EINVAL;
	if (io->ev_watch) {
		event_free(io->ev_watch);
		io->ev_watch = NULL;
	}
	free(io->watch_path);
	io->watch_path = NULL;
	io->watch_known = false;
	if (!path) {
		if (io->n_file) {
			io->n_file = 0;
			(void)io_apply(io, PCP_IO_SERVER_CONFIGURED);
		}
		return 0;
	}
	io->watch_path = strdup(path);
	io->ev_watch = event_new(io->base, -1, EV_PERSIST, on_watch, io);
	if (!io->watch_path || !io->ev_watch)
		goto nomem;
	if (!poll_ms)
		poll_ms = PCP_IO_WATCH_POLL_MS;
	struct timeval tv = { .tv_sec = poll_ms / 1000, .tv_usec = (suseconds_t)(poll_ms % 1000) * 1000 };
	if (event_add(io->ev_watch, &tv) < 0)
		goto nomem;
	io_watch_check(io);
	return 0;
nomem:
	if (io->ev_watch)
		event_free(io->ev_watch);
	io->ev_watch = NULL;
	free(io->watch_path);
	io->watch_path = NULL;
	return ENOMEM;
}

/* ---------------------------------------------------------------- life cycle */

struct pcp_io *pcp_io_new(struct event_base *base, struct pcp_client *client, const struct pcp_io_config *cfg,
			  int *err_out)
{
	int dummy;
	int *err = err_out ? err_out : &dummy;
	*err = EINVAL;
	if (!base || !client || !cfg)
		return NULL;
	struct pcp_server list[PCP_MAX_SERVERS];
	size_t n = 0;
	if (parse_list(cfg->servers, cfg->n_servers, list, &n) != 0)
		return NULL;

	*err = ENOMEM;
	struct pcp_io *io = calloc(1, sizeof *io);
	if (!io)
		return NULL;
	io->base = base;
	io->client = client;
	io->log = cfg->log;
	io->log_arg = cfg->log_arg;
	io->on_server = cfg->on_server;
	io->server_arg = cfg->server_arg;
	io->failover_ms = cfg->failover_ms ? cfg->failover_ms : PCP_IO_FAILOVER_MS;
	io->router_poll_ms = cfg->router_poll_ms ? cfg->router_poll_ms : PCP_IO_ROUTER_POLL_MS;
	io->failover_seen = UINT64_MAX;
	memcpy(io->config_list, list, sizeof list);
	io->n_config = n;
	io->fd = io->announce_fd4 = io->announce_fd6 = -1;
	io->ev_timer = evtimer_new(base, on_timer, io);
	io->ev_kick = event_new(base, -1, 0, on_kick, io);
	io->ev_router = event_new(base, -1, EV_PERSIST, on_router_poll, io); /* periodic */
	if (!io->ev_timer || !io->ev_kick || !io->ev_router)
		goto fail;
	if (cfg->max_in_flight != UINT32_MAX) {
		io->flight_cap = cfg->max_in_flight ? cfg->max_in_flight : PCP_IO_MAX_IN_FLIGHT;
		if (!(io->flight = calloc(io->flight_cap, sizeof *io->flight)))
			goto fail;
	}
	pcp_client_set_wakeup(client, on_wakeup, io); /* pcp_io_kick is gone: the engine says */
	if (cfg->route_file && !(io->route_file = strdup(cfg->route_file)))
		goto fail;
	if (cfg->announce_ifname && !(io->announce_ifname = strdup(cfg->announce_ifname)))
		goto fail;
	io->announce_gap_ms = cfg->announce_gap_ms ? cfg->announce_gap_ms : PCP_IO_ANNOUNCE_GAP_MS;
	io->ipv6_only = cfg->ipv6_only;

	if (cfg->listen_announce) {
		uint16_t aport = cfg->announce_port ? cfg->announce_port : PCP_CLIENT_PORT;
		io->announce_fd4 = open_announce_socket(io, AF_INET, aport);
		io->announce_fd6 = open_announce_socket(io, AF_INET6, aport);
		if (io->announce_fd4 >= 0) {
			io->ev_announce4 = event_new(base, io->announce_fd4, EV_READ | EV_PERSIST, on_announce, io);
			if (!io->ev_announce4 || event_add(io->ev_announce4, NULL) < 0)
				goto fail;
		}
		if (io->announce_fd6 >= 0) {
			io->ev_announce6 = event_new(base, io->announce_fd6, EV_READ | EV_PERSIST, on_announce, io);
			if (!io->ev_announce6 || event_add(io->ev_announce6, NULL) < 0)
				goto fail;
		}
	}
	if (io->announce_ifname)
		io_find_wan_if(io, pcp_io_now());
	int rc = io_apply(io, PCP_IO_SERVER_CONFIGURED);
	if (rc != 0) {
		*err = rc;
		goto fail;
	}
	*err = 0;
	io_kick(io);
	return io;
fail:;
	int saved = errno;
	pcp_io_free(io);
	errno = saved;
	return NULL;
}

void pcp_io_free(struct pcp_io *io)
{
	if (!io)
		return;
	pcp_client_set_wakeup(io->client, NULL, NULL);
	struct event *evs[] = { io->ev_read,  io->ev_write, io->ev_announce4, io->ev_announce6,
				io->ev_timer, io->ev_kick,  io->ev_router,    io->ev_watch };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	while (io->n_retired)
		event_free(io->retired[--io->n_retired]);
	free(io->retired);
	free(io->flight);
	int fds[] = { io->fd, io->announce_fd4, io->announce_fd6 };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(io->route_file);
	free(io->watch_path);
	free(io->announce_ifname);
	free(io);
}
