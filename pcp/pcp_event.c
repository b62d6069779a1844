/*
 * pcp_event.c - libevent adapter for the PCP client engine: sockets and one timer.
 * All protocol decisions stay in pcp_client.c; this file only moves datagrams.
 */
#include "pcp_event.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_READ_BATCH 64 /* datagrams per read callback, then back to the loop */

struct pcp_io {
	struct event_base *base;
	struct pcp_client *client;
	void (*log)(void *arg, int level, const char *fmt, va_list ap);
	void *log_arg;

	bool has_server;
	struct in6_addr server;
	uint16_t server_port;
	struct in6_addr source; /* what the connected socket sends from */
	int fd; /* connected to the server, -1 = none */
	struct event *ev_read;
	struct event *ev_retired; /* the previous server's read event, freed from on_kick */

	int announce_fd4, announce_fd6;
	struct event *ev_announce4, *ev_announce6;

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

static bool parse_port(const char *s, uint16_t *port)
{
	unsigned v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 65535)
			return false;
	}
	if (v == 0)
		return false;
	*port = (uint16_t)v;
	return true;
}

bool pcp_io_parse_server(const char *text, struct in6_addr *addr, uint16_t *port)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL;
	size_t hlen;

	if (!text || !addr || !port)
		return false;
	*port = PCP_SERVER_PORT;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end)
			return false;
		hlen = (size_t)(end - text - 1);
		if (hlen >= sizeof host)
			return false;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (end[1] == ':')
			port_text = end + 2;
		else if (end[1] != '\0')
			return false;
	} else {
		const char *colon = strchr(text, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* bare IPv6 address */
		hlen = colon ? (size_t)(colon - text) : strlen(text);
		if (hlen >= sizeof host)
			return false;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (colon)
			port_text = colon + 1;
	}
	if (port_text && !parse_port(port_text, port))
		return false;
	return pcp_addr_parse(addr, host);
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

static void io_flush(struct pcp_io *io)
{
	uint8_t buf[PCP_MAX_PACKET];
	size_t len;
	uint64_t now = pcp_io_now();

	while ((len = pcp_client_output(io->client, buf, sizeof buf, now)) > 0) {
		if (io->fd < 0)
			continue;
		if (send(io->fd, buf, len, 0) < 0)
			io_log(io, 3, "pcp: send: %s (the engine retransmits)", strerror(errno));
	}
	uint64_t next = pcp_client_next_deadline(io->client);
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

void pcp_io_kick(struct pcp_io *io)
{
	if (io)
		event_active(io->ev_kick, EV_TIMEOUT, 0);
}

/* ---------------------------------------------------------------- input */

static void io_read(struct pcp_io *io, int fd, bool server, const char *what)
{
	uint8_t buf[PCP_MAX_PACKET + 4]; /* one word more: oversize packets still look oversize */
	for (int i = 0; i < IO_READ_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&ss, &sl);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				io_log(io, 3, "pcp: recv on %s socket: %s", what, strerror(errno));
			break;
		}
		struct in6_addr from;
		uint16_t port;
		if (!from_sockaddr(&ss, &from, &port))
			continue;
		size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
		enum pcp_err err = pcp_client_input(io->client, buf, len, &from, port, pcp_io_now());
		if (err != PCP_OK) {
			char a[INET6_ADDRSTRLEN];
			io_log(io, 3, "pcp: dropped %zd-byte datagram from %s port %u on %s socket: %s", n,
			       pcp_addr_format(&from, a, sizeof a), port, what, pcp_err_name(err));
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

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct pcp_io *io = arg;
	(void)fd;
	(void)what;
	if (io->ev_retired) {
		event_free(io->ev_retired);
		io->ev_retired = NULL;
	}
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
		io_log(io, 1, "pcp: ANNOUNCE socket: %s", strerror(errno));
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
		io_log(io, 1, "pcp: cannot bind UDP port %u for ANNOUNCE (%s): %s", port,
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
			io_log(io, 2, "pcp: join 224.0.0.1: %s", strerror(errno));
	} else {
		struct ipv6_mreq mr6;
		memset(&mr6, 0, sizeof mr6);
		mr6.ipv6mr_multiaddr.s6_addr[0] = 0xff;
		mr6.ipv6mr_multiaddr.s6_addr[1] = 0x02;
		mr6.ipv6mr_multiaddr.s6_addr[15] = 0x01; /* ff02::1 */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr6, sizeof mr6) < 0)
			io_log(io, 2, "pcp: join ff02::1: %s", strerror(errno));
	}
	return fd;
}

/* Switch to server addr:port. Returns 0, or an errno value and nothing changed. */
static int io_use_server(struct pcp_io *io, const struct in6_addr *addr, uint16_t port)
{
	struct in6_addr src;
	int fd = open_server_socket(addr, port, &src);
	char a[INET6_ADDRSTRLEN];
	if (fd < 0) {
		int e = errno;
		io_log(io, 0, "pcp: cannot reach server %s port %u: %s", pcp_addr_format(addr, a, sizeof a), port,
		       strerror(e));
		return e ? e : EIO;
	}
	struct event *ev = event_new(io->base, fd, EV_READ | EV_PERSIST, on_read, io);
	if (!ev || event_add(ev, NULL) < 0) {
		if (ev)
			event_free(ev);
		close(fd);
		return ENOMEM;
	}
	/* The old read event may be running right now (a callback switched servers):
	 * stop it here, free it later from on_kick. */
	if (io->ev_read) {
		event_del(io->ev_read);
		if (io->ev_retired)
			event_free(io->ev_read); /* the running one, if any, is ev_retired */
		else
			io->ev_retired = io->ev_read;
	}
	if (io->fd >= 0)
		close(io->fd);
	io->fd = fd;
	io->ev_read = ev;
	bool same_server = io->has_server && memcmp(&io->server, addr, sizeof *addr) == 0 &&
			   io->server_port == port;
	bool new_source = memcmp(&io->source, &src, sizeof src) != 0;
	io->has_server = true;
	io->server = *addr;
	io->server_port = port;
	io->source = src;
	char s[INET6_ADDRSTRLEN];
	io_log(io, 2, "pcp: server %s port %u, client address %s", pcp_addr_format(addr, a, sizeof a), port,
	       pcp_addr_format(&src, s, sizeof s));
	pcp_client_set_source(io->client, &src); /* §8.1: the address we really send from */
	if (same_server && new_source)
		pcp_client_refresh_all(io->client, pcp_io_now()); /* reconnect after a WAN change */
	else
		pcp_client_set_server(io->client, addr, port, pcp_io_now());
	pcp_io_kick(io);
	return 0;
}

int pcp_io_reconnect(struct pcp_io *io)
{
	if (!io)
		return EINVAL;
	if (!io->has_server)
		return ENOENT;
	struct in6_addr addr = io->server;
	return io_use_server(io, &addr, io->server_port);
}

int pcp_io_set_servers(struct pcp_io *io, const char *const *servers, size_t n)
{
	struct in6_addr addr;
	uint16_t port;
	if (!io || !servers || n == 0 || !pcp_io_parse_server(servers[0], &addr, &port))
		return EINVAL;
	if (io->has_server && memcmp(&addr, &io->server, sizeof addr) == 0 && port == io->server_port)
		return 0;
	return io_use_server(io, &addr, port);
}

struct pcp_io *pcp_io_new(struct event_base *base, struct pcp_client *client, const struct pcp_io_config *cfg,
			  int *err_out)
{
	int dummy;
	int *err = err_out ? err_out : &dummy;
	*err = EINVAL;
	if (!base || !client || !cfg || (cfg->n_servers && !cfg->servers))
		return NULL;
	struct in6_addr addr;
	uint16_t port = 0;
	if (cfg->n_servers && !pcp_io_parse_server(cfg->servers[0], &addr, &port))
		return NULL;

	*err = ENOMEM;
	struct pcp_io *io = calloc(1, sizeof *io);
	if (!io)
		return NULL;
	io->base = base;
	io->client = client;
	io->log = cfg->log;
	io->log_arg = cfg->log_arg;
	io->fd = io->announce_fd4 = io->announce_fd6 = -1;
	io->ev_timer = evtimer_new(base, on_timer, io);
	io->ev_kick = event_new(base, -1, 0, on_kick, io);
	if (!io->ev_timer || !io->ev_kick)
		goto fail;

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
	if (cfg->n_servers) {
		int rc = io_use_server(io, &addr, port);
		if (rc != 0) {
			*err = rc;
			goto fail;
		}
	}
	*err = 0;
	pcp_io_kick(io);
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
	struct event *evs[] = { io->ev_read, io->ev_retired, io->ev_announce4, io->ev_announce6, io->ev_timer,
				io->ev_kick };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	int fds[] = { io->fd, io->announce_fd4, io->announce_fd6 };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(io);
}
