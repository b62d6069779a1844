/*
 * ssdp.c - SSDP responder and advertiser (UPnP Device Architecture 1.1 §1) on the LAN
 * interfaces only.
 *
 * One UDP socket bound to *:1900 (SO_REUSEADDR + SO_REUSEPORT so another SSDP stack on the
 * router can coexist) joins 239.255.255.250 on each LAN interface. IP_PKTINFO tells on
 * which interface each datagram arrived and to which address; anything that did not
 * arrive on a LAN interface, or whose source is not on that interface's subnet, is
 * dropped without an answer: SSDP is silent on the WAN side and cannot be used to reflect
 * traffic at a spoofed victim elsewhere. Replies are further limited by a global token
 * bucket and one per source address.
 *
 * IPv6 (ssdp_config.ipv6, UDA 1.1 Annex A): a second socket on [::]:1900 joins ff02::c on
 * each LAN interface; IPV6_PKTINFO plays IP_PKTINFO's part, a source must be on-link
 * (upnp_lan_if_has6), the buckets and limits are shared with IPv4, and LOCATION names a
 * bracketed address of the interface (location6).
 *
 * Per-source buckets are not a small table of recent sources (a source evicted from it
 * came back with a full bucket, so 100 rotating addresses were each "new" and fresh and
 * used up every budget): each address owns two of SSDP_SRC_BUCKETS buckets chosen by two
 * keyed hashes; the quieter one decides, both are charged. Each bucket holds reply tokens (the per-source
 * rate) and "ask credits" (SSDP_ASK_BURST, one back every SSDP_ASK_EVERY_MS): a search
 * made with a credit left is from a quiet source and draws on the "fresh" budget, any
 * other on the "global" one. A flood from many addresses drains the buckets it hashes to;
 * another host is held back only if both of its buckets are shared with flooders (with
 * 100 flooders about 0.2 %; a different random key at each start).
 *
 * Targets (what we advertise and answer for) come from the configuration list; an entry
 * "uuid:X::NT" names the USN explicitly, a bare "uuid:X" is its own USN, and any other NT
 * is announced with USN root_uuid::NT.
 */
#include <syslog.h>
#include "upnp_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/util.h>

#define SSDP_GROUP "239.255.255.250"
#define SSDP_GROUP6 "ff02::c"     /* UDA 1.1 Annex A: link-local scope */
#define SSDP_PORT 1900
#define SSDP_TTL 2                /* UDA 1.1 §1.1.2: TTL should default to 2 */
#define SSDP_MAX_IFACES 8
#define SSDP_ST_MAX 256
#define SSDP_MAX_PENDING 128      /* delayed M-SEARCH answers in flight */
#define SSDP_PENDING_PER_SOURCE 2 /* ... of which one source address may hold */
#define SSDP_MX_CAP 5             /* UDA 1.1 §1.3.3: MX greater than 5 is treated as 5 */
#define SSDP_DGRAM_MAX 1500
/* Rate limits, in reply datagrams. */
#define SSDP_GLOBAL_BURST 200
#define SSDP_GLOBAL_RATE 100      /* per second */
#define SSDP_SRC_BUCKETS 4096    /* per-source buckets, 12 bytes each (a power of two) */
#define SSDP_ASK_BURST 3          /* searches a quiet source may make at once ... */
#define SSDP_ASK_EVERY_MS 2000    /* ... and one more every 2 s, as a "fresh" source */
#define SSDP_SRC_BUCKET_BITS 12
#define SSDP_SRC_BURST 60
#define SSDP_SRC_RATE 20          /* per second */
#define SSDP_ALIVE_REPEAT_MS 300  /* gap between the two start-up announcements */

struct ssdp_target {
	char *nt;      /* NT / ST value we advertise */
	char *usn;     /* full USN */
	char *uuid;    /* "uuid:X" part of the USN */
	char *base;    /* urn:...:type: without the version (NULL if not versioned) */
	unsigned version;
};

struct ssdp_iface {
	struct upnp_lan_if lan;    /* name, index, primary address (source of our datagrams) */
	uint64_t refreshed_ms;     /* IPv6 addresses last re-read (upnp_lan_if_refresh6) */
	char *location;
};

struct ssdp_bucket {
	uint64_t tokens_milli;     /* tokens x 1000 */
	uint64_t last_ms;
};

/* A per-source bucket, compact: tokens x 1000, and the time of the last refill in 16 ms
 * ticks (wraps after 2.2 years: a bucket untouched that long is refilled less once). */
struct ssdp_src_bucket {
	uint32_t tokens_milli;
	uint32_t asks_milli;       /* ask credits x 1000 */
	uint32_t last_tick;
};

/* A searcher (IPv4 or IPv6) and the address its search was sent to when unicast (all
 * zero for a multicast search). */
struct ssdp_peer {
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} to;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} local;
};

struct ssdp_pending {
	struct ssdp_pending *next;
	struct ssdp *s;
	struct event *ev;
	struct ssdp_peer peer;
	size_t iface;              /* index into s->ifaces */
	char st[SSDP_ST_MAX];
};

struct ssdp {
	struct event_base *base;
	evutil_socket_t fd;
	struct event *ev_read, *ev_notify;
	bool ipv6;                 /* also ff02::c (UDA 1.1 Annex A) on fd6 */
	evutil_socket_t fd6;
	struct event *ev_read6;
	struct ssdp_iface ifaces[SSDP_MAX_IFACES];
	size_t n_ifaces;
	struct ssdp_target *targets;
	size_t n_targets;
	char *server_header;
	uint32_t max_age, boot_id, config_id;
	uint16_t port;
	bool location_per_iface;
	unsigned alive_round;      /* start-up announcements sent so far */
	struct ssdp_bucket global; /* replies to sources that asked recently */
	struct ssdp_bucket fresh;  /* replies to sources quiet for a while */
	struct ssdp_src_bucket *srcs;  /* SSDP_SRC_BUCKETS */
	uint32_t src_key[2];           /* random hash keys */
	struct ssdp_pending *pending;
	size_t n_pending;
	uint64_t last_limit_log_ms;
	struct upnp_logger logger;
	bool off;                  /* stopped (ssdp_set_enabled): no alive, searches ignored */
	struct upnp_stats st;      /* the ssdp_* counters */
};

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t rnd32(void)
{
	uint32_t r;

	evutil_secure_rng_get_bytes(&r, sizeof(r));
	return r;
}

/* Take n tokens if available. */
static bool bucket_take(struct ssdp_bucket *b, uint64_t now, unsigned burst, unsigned rate,
			unsigned n)
{
	uint64_t cap = (uint64_t)burst * 1000u;

	if (now > b->last_ms) {
		b->tokens_milli += (now - b->last_ms) * rate;
		if (b->tokens_milli > cap)
			b->tokens_milli = cap;
	}
	b->last_ms = now;
	if (b->tokens_milli < (uint64_t)n * 1000u)
		return false;
	b->tokens_milli -= (uint64_t)n * 1000u;
	return true;
}

static size_t src_hash(uint32_t a, uint32_t key, uint32_t mul)
{
	uint32_t h = (a ^ key) * mul;

	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	return (size_t)(h >> (32 - SSDP_SRC_BUCKET_BITS));
}

static void src_refill(struct ssdp_src_bucket *b, uint64_t now)
{
	uint32_t tick = (uint32_t)(now / 16u);
	uint64_t ms = (uint64_t)(uint32_t)(tick - b->last_tick) * 16u;
	uint64_t t = b->tokens_milli + ms * SSDP_SRC_RATE;
	uint64_t a = b->asks_milli + ms * 1000u / SSDP_ASK_EVERY_MS;

	b->tokens_milli = t > (uint64_t)SSDP_SRC_BURST * 1000u ? SSDP_SRC_BURST * 1000u : (uint32_t)t;
	b->asks_milli = a > (uint64_t)SSDP_ASK_BURST * 1000u ? SSDP_ASK_BURST * 1000u : (uint32_t)a;
	b->last_tick = tick;
}

/* Source a's two buckets, refilled; b[0] is the quieter one (more ask credits, then more
 * tokens), which decides. */
static void src_buckets(struct ssdp *s, uint32_t a, uint64_t now,
			struct ssdp_src_bucket *b[2])
{
	b[0] = &s->srcs[src_hash(a, s->src_key[0], 0x9e3779b1u)];
	b[1] = &s->srcs[src_hash(a, s->src_key[1], 0x85ebca77u)];
	src_refill(b[0], now);
	src_refill(b[1], now);
	if (b[1]->asks_milli > b[0]->asks_milli ||
	    (b[1]->asks_milli == b[0]->asks_milli && b[1]->tokens_milli > b[0]->tokens_milli)) {
		struct ssdp_src_bucket *t = b[0];

		b[0] = b[1];
		b[1] = t;
	}
}

/* The 32 bits a source's buckets are chosen by: an IPv4 address itself; an IPv6 address
 * folded whole (all 128 bits, keyed, so that neighbours in one prefix spread). */
static uint32_t src_key_of(const struct ssdp *s, const struct ssdp_peer *p)
{
	uint32_t h = s->src_key[0] ^ 0x6a09e667u;

	if (p->to.sa.sa_family == AF_INET)
		return p->to.v4.sin_addr.s_addr;
	for (size_t i = 0; i < 16; i += 4) {
		uint32_t w;

		memcpy(&w, &p->to.v6.sin6_addr.s6_addr[i], 4);
		h = (h ^ w) * 0x9e3779b1u;
		h ^= h >> 16;
	}
	return h ^ s->src_key[1];
}

static bool peer_same_host(const struct ssdp_peer *a, const struct ssdp_peer *b)
{
	if (a->to.sa.sa_family != b->to.sa.sa_family)
		return false;
	if (a->to.sa.sa_family == AF_INET)
		return a->to.v4.sin_addr.s_addr == b->to.v4.sin_addr.s_addr;
	return memcmp(&a->to.v6.sin6_addr, &b->to.v6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Charge both buckets (a source gets one bucket's rate, not two); never below zero. */
static void src_charge(struct ssdp_src_bucket *b[2], uint32_t asks, uint32_t tokens)
{
	for (int i = 0; i < 2; i++) {
		b[i]->asks_milli = b[i]->asks_milli > asks ? b[i]->asks_milli - asks : 0;
		b[i]->tokens_milli = b[i]->tokens_milli > tokens ? b[i]->tokens_milli - tokens : 0;
		if (b[0] == b[1])
			break;
	}
}

/* "urn:domain:device:Type:3" -> base "urn:domain:device:Type:" and 3. */
static bool split_version(const char *nt, size_t *base_len, unsigned *version)
{
	const char *colon = strrchr(nt, ':');
	unsigned v = 0;

	if (strncmp(nt, "urn:", 4) != 0 || colon == NULL || colon[1] == '\0')
		return false;
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > 100000)
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v == 0)
		return false;
	*base_len = (size_t)(colon + 1 - nt);
	*version = v;
	return true;
}

/* ------------------------------------------------------------------ M-SEARCH parsing */

struct msearch {
	char st[SSDP_ST_MAX];
	bool has_st, has_mx, man_quoted, man_bare;
	unsigned mx;
};

/* Case-insensitive compare of a counted string with a C string. */
static bool span_ieq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/*
 * UDA 1.1 §1.3.2. Tolerant of what clients really send: any header case, no space (or
 * several) after the colon, bare LF line ends, unknown headers. Strict about the start
 * line and about numbers. Returns 0 for a syntactically valid M-SEARCH with an ST.
 */
static int msearch_parse(const char *buf, size_t len, struct msearch *m, char *st, size_t cap)
{
	size_t pos = 0;
	bool first = true;

	memset(m, 0, sizeof(*m));
	if (cap > 0)
		st[0] = '\0';
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;

		pos += ll + (nl ? 1 : 0);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (memchr(line, '\0', ll) != NULL)
			return -1;
		if (first) {
			/* "M-SEARCH * HTTP/1.1" (HTTP/1.0 tolerated) */
			static const char ms[] = "M-SEARCH * HTTP/1.";

			if (ll != sizeof(ms) || strncasecmp(line, ms, sizeof(ms) - 1) != 0 ||
			    (line[ll - 1] != '1' && line[ll - 1] != '0'))
				return -1;
			first = false;
			continue;
		}
		if (ll == 0)
			break; /* end of headers; SSDP has no body */
		{
			const char *colon = memchr(line, ':', ll);
			const char *v, *end = line + ll;
			size_t nl_len, vl;

			if (colon == NULL || colon == line)
				return -1;
			nl_len = (size_t)(colon - line);
			while (nl_len > 0 && (line[nl_len - 1] == ' ' || line[nl_len - 1] == '\t'))
				nl_len--;
			v = colon + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			vl = (size_t)(end - v);
			if (span_ieq(line, nl_len, "ST")) {
				if (m->has_st || vl == 0)
					return -1; /* duplicate or empty ST is ambiguous */
				m->has_st = true;
				if (vl >= sizeof(m->st))
					vl = sizeof(m->st) - 1;
				memcpy(m->st, v, vl);
				m->st[vl] = '\0';
				if (cap > 0) {
					size_t c = vl < cap - 1 ? vl : cap - 1;

					memcpy(st, v, c);
					st[c] = '\0';
				}
			} else if (span_ieq(line, nl_len, "MX")) {
				unsigned mx = 0;

				if (m->has_mx || vl == 0 || vl > 9)
					return -1;
				for (size_t i = 0; i < vl; i++) {
					if (v[i] < '0' || v[i] > '9')
						return -1;
					mx = mx * 10 + (unsigned)(v[i] - '0');
				}
				m->has_mx = true;
				m->mx = mx;
			} else if (span_ieq(line, nl_len, "MAN")) {
				if (span_ieq(v, vl, "\"ssdp:discover\""))
					m->man_quoted = true;
				else if (span_ieq(v, vl, "ssdp:discover"))
					m->man_bare = true;
				else
					return -1;
			}
		}
	}
	if (first || !m->has_st)
		return -1;
	return 0;
}

int ssdp_parse_msearch(const char *buf, size_t len, char *st, size_t cap, unsigned *mx)
{
	struct msearch m;

	if (buf == NULL || msearch_parse(buf, len, &m, st, cap) != 0 || !m.man_quoted)
		return -1;
	if (mx != NULL)
		*mx = m.has_mx ? m.mx : SSDP_MX_NONE;
	return 0;
}

/* ------------------------------------------------------------------ sending */


/* Send one datagram out of interface ifc, on the socket of to's family. IPv4 (IP_PKTINFO):
 * from `src` when set and not 0.0.0.0, else from the interface's address. IPv6
 * (IPV6_PKTINFO): from `src` when set and not ::, else the kernel picks by scope. */
static void send_on(struct ssdp *s, const struct ssdp_iface *ifc, const void *src,
		    const struct sockaddr *to, const char *msg, size_t len)
{
	bool v6 = to->sa_family == AF_INET6;
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)msg, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)(uintptr_t)to,
			     .msg_namelen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
			     .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = v6 ? CMSG_SPACE(sizeof(struct in6_pktinfo))
						  : CMSG_SPACE(sizeof(struct in_pktinfo)) };
	struct cmsghdr *c;
	int fd = v6 ? s->fd6 : s->fd;

	if (fd < 0)
		return;
	memset(&cm, 0, sizeof(cm));
	c = CMSG_FIRSTHDR(&mh);
	if (v6) {
		struct in6_pktinfo pi = { .ipi6_ifindex = ifc->lan.index };

		if (src != NULL)
			memcpy(&pi.ipi6_addr, src, sizeof(pi.ipi6_addr));
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	} else {
		struct in_pktinfo pi = { .ipi_ifindex = (int)ifc->lan.index, .ipi_spec_dst = ifc->lan.addr };
		struct sockaddr_in sin;

		if (src != NULL && ((const struct in_addr *)src)->s_addr != 0)
			memcpy(&pi.ipi_spec_dst, src, sizeof(pi.ipi_spec_dst));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		memcpy(&sin, to, sizeof(sin));
		if (IN_MULTICAST(ntohl(sin.sin_addr.s_addr))) {
			struct ip_mreqn mr = { .imr_address = ifc->lan.addr,
					       .imr_ifindex = (int)ifc->lan.index };

			setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr));
		}
	}
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: send on %s%s: %s", ifc->lan.name,
			 v6 ? " (IPv6)" : "", strerror(errno));
}

static void send_notify4(struct ssdp *s, bool alive);
static void send_notify6(struct ssdp *s, bool alive);

/* One NOTIFY: alive (with LOCATION) or byebye, HOST as given. snprintf's result. */
static int notify_format(const struct ssdp *s, const struct ssdp_target *tg, bool alive,
			 const char *host, const char *location, char *msg, size_t cap)
{
	if (alive)
		return snprintf(msg, cap,
				"NOTIFY * HTTP/1.1\r\nHOST: %s\r\n"
				"CACHE-CONTROL: max-age=%u\r\nLOCATION: %s\r\n"
				"NT: %s\r\nNTS: ssdp:alive\r\nSERVER: %s\r\nUSN: %s\r\n"
				"BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
				host, (unsigned)s->max_age, location, tg->nt, s->server_header,
				tg->usn, (unsigned)s->boot_id, (unsigned)s->config_id);
	return snprintf(msg, cap,
			"NOTIFY * HTTP/1.1\r\nHOST: %s\r\n"
			"NT: %s\r\nNTS: ssdp:byebye\r\nUSN: %s\r\n"
			"BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
			host, tg->nt, tg->usn, (unsigned)s->boot_id, (unsigned)s->config_id);
}

/* LOCATION for an IPv6 peer on ifc (NULL: a NOTIFY to ff02::c): the configured URL with
 * the address upnp_lan_if_addr6_for picks, bracketed (RFC 3986 §3.2.2), no zone id; or, for
 * a unicast search, the address it was sent to. false: no IPv6 address to name. */
static bool location6(const struct ssdp_iface *ifc, const struct ssdp_peer *p, char *out,
		      size_t cap)
{
	struct in6_addr a;

	if (p != NULL && !IN6_IS_ADDR_UNSPECIFIED(&p->local.v6))
		a = p->local.v6;
	else if (!upnp_lan_if_addr6_for(&ifc->lan, p != NULL ? &p->to.v6.sin6_addr : NULL, &a))
		return false;
	return upnp_url_with_v6_host(ifc->location, &a, out, cap);
}

/* UDA 1.1 §1.2.2 (ssdp:alive) and §1.2.4 (ssdp:byebye); on IPv6 also to [ff02::c]:1900 of
 * each LAN interface (UDA 1.1 Annex A), LOCATION naming its link-local address. */
static void send_notify(struct ssdp *s, bool alive)
{
	send_notify4(s, alive);
	if (s->ipv6)
		send_notify6(s, alive);
}

static void send_notify6(struct ssdp *s, bool alive)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(SSDP_PORT) };
	char msg[SSDP_DGRAM_MAX], loc[256];

	inet_pton(AF_INET6, SSDP_GROUP6, &to.sin6_addr);
	for (size_t i = 0; i < s->n_ifaces; i++) {
		struct ssdp_iface *ifc = &s->ifaces[i];

		if (alive) { /* announce the addresses the interface has now */
			ifc->refreshed_ms = now_ms();
			upnp_lan_if_refresh6(&ifc->lan);
		}

		if (!location6(ifc, NULL, loc, sizeof(loc)))
			continue;
		to.sin6_scope_id = ifc->lan.index;
		for (size_t t = 0; t < s->n_targets; t++) {
			const struct ssdp_target *tg = &s->targets[t];
			int n = notify_format(s, tg, alive, "[FF02::C]:1900", loc, msg, sizeof(msg));

			if (n > 0 && (size_t)n < sizeof(msg))
				send_on(s, ifc, NULL, (const struct sockaddr *)&to, msg, (size_t)n);
		}
	}
}

static void send_notify4(struct ssdp *s, bool alive)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(SSDP_PORT) };
	char msg[SSDP_DGRAM_MAX];

	inet_pton(AF_INET, SSDP_GROUP, &to.sin_addr);
	for (size_t i = 0; i < s->n_ifaces; i++) {
		const struct ssdp_iface *ifc = &s->ifaces[i];

		for (size_t t = 0; t < s->n_targets; t++) {
			const struct ssdp_target *tg = &s->targets[t];
			int n = notify_format(s, tg, alive, SSDP_GROUP ":1900", ifc->location, msg,
					      sizeof(msg));

			if (n > 0 && (size_t)n < sizeof(msg))
				send_on(s, ifc, NULL, (const struct sockaddr *)&to, msg, (size_t)n);
		}
	}
}

/* Does target tg answer a search for st? On success writes the reply ST and USN. */
static bool target_answers(const struct ssdp_target *tg, const char *st, const char **rst,
			   char *usn, size_t usn_cap)
{
	size_t blen;
	unsigned v;

	if (strcmp(st, "ssdp:all") == 0) {
		*rst = tg->nt;
		snprintf(usn, usn_cap, "%s", tg->usn);
		return true;
	}
	if (strncasecmp(st, "uuid:", 5) == 0) {
		if (strcasecmp(st, tg->nt) != 0)
			return false;
		*rst = tg->nt;
		snprintf(usn, usn_cap, "%s", tg->usn);
		return true;
	}
	if (strcmp(st, tg->nt) == 0) {
		*rst = tg->nt;
		snprintf(usn, usn_cap, "%s", tg->usn);
		return true;
	}
	/* UDA 1.1 §1.3.2: a device or service of version N answers searches for versions
	 * 1..N, echoing the requested version in ST and USN. */
	if (tg->base != NULL && split_version(st, &blen, &v) && blen == strlen(tg->base) &&
	    strncmp(st, tg->base, blen) == 0 && v <= tg->version) {
		*rst = st;
		return snprintf(usn, usn_cap, "%s::%s", tg->uuid, st) < (int)usn_cap;
	}
	return false;
}

static unsigned count_answers(const struct ssdp *s, const char *st)
{
	char usn[SSDP_ST_MAX * 2];
	const char *rst;
	unsigned n = 0;

	for (size_t t = 0; t < s->n_targets; t++)
		if (target_answers(&s->targets[t], st, &rst, usn, sizeof(usn)))
			n++;
	return n;
}

/* UDA 1.1 §1.3.3: one unicast response per matching target. */
static void send_replies(struct ssdp *s, size_t iface, const struct ssdp_peer *peer,
			 const char *st)
{
	const struct ssdp_iface *ifc = &s->ifaces[iface];
	char msg[SSDP_DGRAM_MAX], usn[SSDP_ST_MAX * 2], date[64], loc6[256];
	const char *rst, *loc = ifc->location;
	bool v6 = peer->to.sa.sa_family == AF_INET6;

	if (v6) {
		if (!location6(ifc, peer, loc6, sizeof(loc6)))
			return;
		loc = loc6;
	}
	s->st.ssdp_answered++;
	http_date(date, sizeof(date));
	for (size_t t = 0; t < s->n_targets; t++) {
		int n;

		if (!target_answers(&s->targets[t], st, &rst, usn, sizeof(usn)))
			continue;
		n = snprintf(msg, sizeof(msg),
			     "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=%u\r\nDATE: %s\r\nEXT:\r\n"
			     "LOCATION: %s\r\nSERVER: %s\r\nST: %s\r\nUSN: %s\r\n"
			     "BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
			     (unsigned)s->max_age, date, loc, s->server_header, rst, usn,
			     (unsigned)s->boot_id, (unsigned)s->config_id);
		if (n <= 0 || (size_t)n >= sizeof(msg))
			continue;
		send_on(s, ifc, &peer->local, &peer->to.sa, msg, (size_t)n);
	}
}

static void pending_free(struct ssdp *s, struct ssdp_pending *p)
{
	struct ssdp_pending **pp;

	for (pp = &s->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	s->n_pending--;
	event_free(p->ev);
	free(p);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ssdp_pending *p = arg;
	struct ssdp *s = p->s;

	send_replies(s, p->iface, &p->peer, p->st);
	pending_free(s, p);
}

/* ------------------------------------------------------------------ receiving */

static int iface_of(const struct ssdp *s, unsigned ifindex)
{
	for (size_t i = 0; i < s->n_ifaces; i++)
		if (s->ifaces[i].lan.index == ifindex)
			return (int)i;
	return -1;
}

/* p: the searcher, and in p->local the address the datagram was sent to (IP_PKTINFO /
 * IPV6_PKTINFO); ifindex: the interface it arrived on. */
static void handle_msearch(struct ssdp *s, const char *buf, size_t len, struct ssdp_peer *p,
			   unsigned ifindex)
{
	struct msearch m;
	int ii = iface_of(s, ifindex);
	bool v6 = p->to.sa.sa_family == AF_INET6;
	bool multicast = v6 ? IN6_IS_ADDR_MULTICAST(&p->local.v6)
			    : IN_MULTICAST(ntohl(p->local.v4.s_addr));
	bool onlink;
	unsigned n, delay_ms = 0;
	uint64_t now;
	char ip[INET6_ADDRSTRLEN];

	if (len < 9 || strncasecmp(buf, "M-SEARCH ", 9) != 0)
		return; /* NOTIFYs of other devices, responses: not for us */
	if (v6)
		inet_ntop(AF_INET6, &p->to.v6.sin6_addr, ip, sizeof(ip));
	else
		inet_ntop(AF_INET, &p->to.v4.sin_addr, ip, sizeof(ip));
	if (ii < 0) {
		/* Not a LAN interface (the WAN side): never answer. */
		s->st.ssdp_not_lan++;
		return;
	}
	/* IPv6: link-local from this link, or inside one of the interface's prefixes. */
	onlink = v6 ? upnp_lan_if_has6(&s->ifaces[ii].lan, &p->to.v6.sin6_addr,
				       p->to.v6.sin6_scope_id) && p->to.v6.sin6_port != 0
		    : upnp_lan_if_has(&s->ifaces[ii].lan, p->to.v4.sin_addr) && p->to.v4.sin_port != 0;
	if (!onlink && v6 && now_ms() - s->ifaces[ii].refreshed_ms >= 1000) {
		/* the LAN prefix may have changed since we last looked */
		s->ifaces[ii].refreshed_ms = now_ms();
		upnp_lan_if_refresh6(&s->ifaces[ii].lan);
		onlink = upnp_lan_if_has6(&s->ifaces[ii].lan, &p->to.v6.sin6_addr,
					  p->to.v6.sin6_scope_id) && p->to.v6.sin6_port != 0;
	}
	if (!onlink) {
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: ignoring %s: not on %s's subnet", ip,
			 s->ifaces[ii].lan.name);
		s->st.ssdp_not_lan++;
		return;
	}
	s->st.ssdp_msearch++;
	if (msearch_parse(buf, len, &m, NULL, 0) != 0) {
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: malformed M-SEARCH from %s", ip);
		s->st.ssdp_malformed++;
		return;
	}
	if (multicast) {
		/* UDA 1.1 §1.3.2: multicast searches carry MAN "ssdp:discover" and MX. */
		if (!m.man_quoted || !m.has_mx) {
			s->st.ssdp_malformed++;
			return;
		}
		memset(&p->local, 0, sizeof(p->local));
	} else if (!m.man_quoted && !m.man_bare) {
		s->st.ssdp_malformed++;
		return;
	}
	n = count_answers(s, m.st);
	if (n == 0) {
		s->st.ssdp_no_match++;
		return;
	}
	now = now_ms();
	/* Two global budgets: quiet sources (an ask credit left in their bucket) draw from
	 * "fresh", the busy ones from "global". A flood from many
	 * addresses then exhausts only "global", and an ordinary host's occasional search is
	 * still answered; the total stays bounded by the sum of both. */
	struct ssdp_src_bucket *sb[2];
	src_buckets(s, src_key_of(s, p), now, sb);
	bool fresh = sb[0]->asks_milli >= 1000u;
	src_charge(sb, 1000u, 0);
	if (sb[0]->tokens_milli < n * 1000u ||
	    !(fresh ? bucket_take(&s->fresh, now, SSDP_GLOBAL_BURST, SSDP_GLOBAL_RATE, n)
		    : bucket_take(&s->global, now, SSDP_GLOBAL_BURST, SSDP_GLOBAL_RATE, n))) {
		if (now - s->last_limit_log_ms >= 1000) { /* the log must not flood either */
			s->last_limit_log_ms = now;
			upnp_log(&s->logger, LOG_INFO, "ssdp: rate limit, not answering %s", ip);
		}
		s->st.ssdp_rate_limited++;
		return;
	}
	src_charge(sb, 0, n * 1000u);
	if (multicast) {
		unsigned mx = m.mx < SSDP_MX_CAP ? m.mx : SSDP_MX_CAP;

		/* UDA 1.1 §1.3.3: a random delay within MX seconds spreads the answers. */
		delay_ms = mx > 0 ? rnd32() % (mx * 1000u) : 0;
	}
	if (delay_ms == 0) {
		send_replies(s, (size_t)ii, p, m.st);
		return;
	}
	if (s->n_pending >= SSDP_MAX_PENDING) {
		s->st.ssdp_rate_limited++;
		return;
	}
	{
		/* A flood (even from many addresses) must not fill every slot: each source
		 * may have only a couple of delayed answers waiting. */
		unsigned mine = 0;
		for (const struct ssdp_pending *q = s->pending; q != NULL; q = q->next)
			if (peer_same_host(&q->peer, p))
				mine++;
		if (mine >= SSDP_PENDING_PER_SOURCE) {
			s->st.ssdp_rate_limited++;
			return;
		}
	}
	{
		struct ssdp_pending *q = calloc(1, sizeof(*q));
		struct timeval tv = { .tv_sec = delay_ms / 1000,
				      .tv_usec = (suseconds_t)(delay_ms % 1000) * 1000 };

		if (q == NULL)
			return;
		q->ev = evtimer_new(s->base, pending_cb, q);
		if (q->ev == NULL) {
			free(q);
			return;
		}
		q->s = s;
		q->peer = *p;
		q->iface = (size_t)ii;
		snprintf(q->st, sizeof(q->st), "%s", m.st);
		q->next = s->pending;
		s->pending = q;
		s->n_pending++;
		event_add(q->ev, &tv);
	}
}

/* M-SEARCHes on the IPv4 socket (239.255.255.250 and unicast) or the IPv6 one (ff02::c and
 * unicast): the arrival interface and our address from IP_PKTINFO / IPV6_PKTINFO; a datagram
 * without it cannot be placed and is not answered. */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ssdp *s = arg;
	bool v6 = s->fd6 >= 0 && fd == s->fd6;

	(void)what;
	for (int budget = 0; budget < 32; budget++) {
		char buf[SSDP_DGRAM_MAX + 1];
		union {
			char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
			struct cmsghdr align;
		} cm;
		struct ssdp_peer peer;
		socklen_t want = v6 ? sizeof(peer.to.v6) : sizeof(peer.to.v4);
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = { .msg_name = &peer.to, .msg_namelen = want,
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
		unsigned ifindex = 0;
		bool have_pi = false;
		ssize_t n;

		memset(&peer, 0, sizeof(peer));
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			return;
		if (mh.msg_namelen != want || peer.to.sa.sa_family != (v6 ? AF_INET6 : AF_INET) ||
		    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			continue;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
			if (!v6 && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
			    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				ifindex = (unsigned)pi.ipi_ifindex;
				peer.local.v4 = pi.ipi_addr;
				have_pi = true;
			} else if (v6 && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
				   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
				struct in6_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				ifindex = pi.ipi6_ifindex;
				peer.local.v6 = pi.ipi6_addr;
				have_pi = true;
			}
		}
		if (!have_pi)
			continue;
		buf[n] = '\0';
		if (!s->off)
			handle_msearch(s, buf, (size_t)n, &peer, ifindex);
	}
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ssdp *s = arg;
	struct timeval tv;
	uint32_t period_ms;

	send_notify(s, true);
	if (s->alive_round < 1) {
		/* UDA 1.1 §1.2.2: send each announcement more than once (UDP is lossy). */
		s->alive_round++;
		tv.tv_sec = 0;
		tv.tv_usec = SSDP_ALIVE_REPEAT_MS * 1000;
		event_add(s->ev_notify, &tv);
		return;
	}
	/* Re-announce well within max-age: every max-age/3, minus up to 10 % jitter. */
	period_ms = s->max_age * 1000u / 3u;
	if (period_ms < 1000)
		period_ms = 1000;
	period_ms -= rnd32() % (period_ms / 10 + 1);
	tv.tv_sec = period_ms / 1000;
	tv.tv_usec = (suseconds_t)(period_ms % 1000) * 1000;
	event_add(s->ev_notify, &tv);
}

/* ------------------------------------------------------------------ setup */

/* Prefix length of an IPv6 netmask (contiguous masks; anything else counts its ones). */
static unsigned mask6_len(const struct in6_addr *m)
{
	unsigned n = 0;

	for (size_t i = 0; i < 16; i++)
		for (unsigned b = 0x80; b != 0; b >>= 1)
			n += (m->s6_addr[i] & b) != 0;
	return n;
}

/* One IPv6 address of the interface from getifaddrs: the link-local one is kept apart
 * (its "prefix" is the link, recognised by scope), global and ULA ones with their prefix. */
static void lan_if_add6(struct upnp_lan_if *lif, const struct ifaddrs *p)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)p->ifa_addr;
	const struct sockaddr_in6 *m = (const struct sockaddr_in6 *)(const void *)p->ifa_netmask;

	if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr)) {
		if (!lif->has_ll6) {
			lif->ll6 = a->sin6_addr;
			lif->has_ll6 = true;
		}
		return;
	}
	if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) || IN6_IS_ADDR_MULTICAST(&a->sin6_addr) ||
	    IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
	    lif->n_nets6 >= UPNP_LAN_MAX_NETS)
		return;
	lif->nets6[lif->n_nets6].addr = a->sin6_addr;
	lif->nets6[lif->n_nets6].plen = m != NULL ? mask6_len(&m->sin6_addr) : 128;
	lif->n_nets6++;
}

static bool prefix6_has(const struct in6_addr *net, unsigned plen, const struct in6_addr *a)
{
	size_t full = plen / 8;
	unsigned rest = plen % 8;

	if (plen > 128 || memcmp(net->s6_addr, a->s6_addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (net->s6_addr[full] & mask) == (a->s6_addr[full] & mask);
}

bool upnp_lan_if_has6(const struct upnp_lan_if *lif, const struct in6_addr *a, uint32_t scope_id)
{
	if (IN6_IS_ADDR_MULTICAST(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
	    IN6_IS_ADDR_V4MAPPED(a))
		return false;
	if (IN6_IS_ADDR_LINKLOCAL(a)) /* on this link: its scope is this interface */
		return scope_id == lif->index;
	for (size_t i = 0; i < lif->n_nets6; i++)
		if (prefix6_has(&lif->nets6[i].addr, lif->nets6[i].plen, a))
			return true;
	return false;
}

static bool is_ula(const struct in6_addr *a)
{
	return (a->s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7, RFC 4193 */
}

bool upnp_lan_if_addr6_for(const struct upnp_lan_if *lif, const struct in6_addr *peer,
			   struct in6_addr *out)
{
	for (size_t i = 0; peer != NULL && !IN6_IS_ADDR_LINKLOCAL(peer) && i < lif->n_nets6; i++)
		if (prefix6_has(&lif->nets6[i].addr, lif->nets6[i].plen, peer)) {
			*out = lif->nets6[i].addr;
			return true;
		}
	/* Link-local peers and ff02::c too: a global address first, then a ULA one. A host
	 * that follows such a LOCATION talks to us from its own global (or ULA) address (RFC
	 * 6724 source selection), the address it names as InternalClient; sent our link-local
	 * one, it would call from its link-local address and be a third party for its global
	 * one under IGD:1's default security. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < lif->n_nets6; i++)
			if (is_ula(&lif->nets6[i].addr) == (pass == 1)) {
				*out = lif->nets6[i].addr;
				return true;
			}
	if (lif->has_ll6) {
		*out = lif->ll6;
		return true;
	}
	return false;
}

bool upnp_url_with_v6_host(const char *url, const struct in6_addr *addr, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const char *h, *e;
	int n;

	if (url == NULL || strncmp(url, "http://", 7) != 0 ||
	    inet_ntop(AF_INET6, addr, host, sizeof(host)) == NULL)
		return false;
	h = url + 7;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL)
			return false;
		e++;
	} else {
		for (e = h; *e != '\0' && *e != ':' && *e != '/'; e++)
			;
	}
	n = snprintf(out, cap, "http://[%s]%s", host, e);
	return n > 0 && (size_t)n < cap;
}

void upnp_lan_if_refresh6(struct upnp_lan_if *lif)
{
	struct ifaddrs *ifa, *p;

	if (getifaddrs(&ifa) != 0)
		return; /* keep what we had */
	lif->n_nets6 = 0;
	lif->has_ll6 = false;
	for (p = ifa; p != NULL; p = p->ifa_next)
		if (p->ifa_addr != NULL && p->ifa_addr->sa_family == AF_INET6 &&
		    strcmp(p->ifa_name, lif->name) == 0)
			lan_if_add6(lif, p);
	freeifaddrs(ifa);
}

/* Fill name, index and IPv4 networks of one LAN interface (shared with http.c). */
enum upnp_err upnp_lan_if_lookup(struct upnp_lan_if *lif, const char *name)
{
	struct ifaddrs *ifa, *p;

	memset(lif, 0, sizeof(*lif));
	if (strlen(name) >= sizeof(lif->name))
		return UPNP_ERR_IFACE;
	snprintf(lif->name, sizeof(lif->name), "%s", name);
	lif->index = if_nametoindex(name);
	if (lif->index == 0)
		return UPNP_ERR_IFACE;
	if (getifaddrs(&ifa) != 0)
		return UPNP_ERR_IFACE;
	for (p = ifa; p != NULL; p = p->ifa_next) {
		if (p->ifa_addr != NULL && p->ifa_addr->sa_family == AF_INET6 &&
		    strcmp(p->ifa_name, name) == 0) {
			lan_if_add6(lif, p);
			continue;
		}
		if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET ||
		    strcmp(p->ifa_name, name) != 0 || lif->n_nets >= UPNP_LAN_MAX_NETS)
			continue;
		memcpy(&lif->nets[lif->n_nets].addr,
		       &((const struct sockaddr_in *)(const void *)p->ifa_addr)->sin_addr,
		       sizeof(struct in_addr));
		if (p->ifa_netmask != NULL)
			memcpy(&lif->nets[lif->n_nets].mask,
			       &((const struct sockaddr_in *)(const void *)p->ifa_netmask)->sin_addr,
			       sizeof(struct in_addr));
		else
			lif->nets[lif->n_nets].mask.s_addr = 0xffffffffu;
		if (lif->n_nets == 0)
			lif->addr = lif->nets[0].addr;
		lif->n_nets++;
	}
	freeifaddrs(ifa);
	return lif->n_nets > 0 ? UPNP_OK : UPNP_ERR_IFACE;
}

bool upnp_lan_if_has(const struct upnp_lan_if *lif, struct in_addr a)
{
	for (size_t i = 0; i < lif->n_nets; i++)
		if ((a.s_addr & lif->nets[i].mask.s_addr) ==
		    (lif->nets[i].addr.s_addr & lif->nets[i].mask.s_addr))
			return true;
	return false;
}

/* LOCATION for an interface: when asked to (location_per_iface) and with several LAN
 * interfaces, a URL whose host is one of our LAN addresses is rewritten to the address of
 * the interface the message goes out on, so each segment is given its own address.
 * Otherwise the URL is used as configured. */
static char *iface_location(const struct ssdp *s, const struct ssdp_iface *ifc, const char *loc)
{
	const char *h, *e;
	char host[INET_ADDRSTRLEN], me[INET_ADDRSTRLEN];
	struct in_addr a;
	bool ours = false;
	char *out;
	size_t n;

	if (!s->location_per_iface || s->n_ifaces < 2 || strncmp(loc, "http://", 7) != 0)
		return strdup(loc);
	h = loc + 7;
	for (e = h; *e != '\0' && *e != ':' && *e != '/'; e++)
		;
	if ((size_t)(e - h) >= sizeof(host))
		return strdup(loc);
	memcpy(host, h, (size_t)(e - h));
	host[e - h] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1)
		return strdup(loc);
	for (size_t i = 0; i < s->n_ifaces; i++)
		for (size_t j = 0; j < s->ifaces[i].lan.n_nets; j++)
			if (s->ifaces[i].lan.nets[j].addr.s_addr == a.s_addr)
				ours = true;
	if (!ours)
		return strdup(loc);
	inet_ntop(AF_INET, &ifc->lan.addr, me, sizeof(me));
	n = 7 + strlen(me) + strlen(e) + 1;
	out = malloc(n);
	if (out != NULL)
		snprintf(out, n, "http://%s%s", me, e);
	return out;
}

static enum upnp_err target_init(struct ssdp_target *tg, const char *entry, const char *root_uuid)
{
	const char *sep = strstr(entry, "::");
	size_t blen;
	unsigned v;

	if (strncmp(entry, "uuid:", 5) == 0 && sep != NULL) {
		tg->nt = strdup(sep + 2);
		tg->usn = strdup(entry);
		tg->uuid = strndup(entry, (size_t)(sep - entry));
	} else if (strncmp(entry, "uuid:", 5) == 0) {
		tg->nt = strdup(entry);
		tg->usn = strdup(entry);
		tg->uuid = strdup(entry);
	} else {
		size_t n = strlen(root_uuid) + 2 + strlen(entry) + 1;

		tg->nt = strdup(entry);
		tg->uuid = strdup(root_uuid);
		tg->usn = malloc(n);
		if (tg->usn != NULL)
			snprintf(tg->usn, n, "%s::%s", root_uuid, entry);
	}
	if (tg->nt == NULL || tg->usn == NULL || tg->uuid == NULL)
		return UPNP_ERR_NOMEM;
	if (tg->nt[0] == '\0' || strpbrk(tg->usn, "\r\n") != NULL)
		return UPNP_ERR_INVAL;
	if (split_version(tg->nt, &blen, &v)) {
		tg->base = strndup(tg->nt, blen);
		if (tg->base == NULL)
			return UPNP_ERR_NOMEM;
		tg->version = v;
	}
	return UPNP_OK;
}

/* UDA 1.1 Annex A: a second socket, [::]:port (IPV6_V6ONLY: IPv4 stays on the first),
 * joined to ff02::c on each LAN interface; IPV6_RECVPKTINFO tells the arrival interface and
 * address. An interface without any IPv6 address is skipped (logged). */
static enum upnp_err open6(struct ssdp *s)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	int one = 1, zero = 0, hops = SSDP_TTL;

	s->fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd6 < 0 ||
	    setsockopt(s->fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd6, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd6, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd6, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) != 0) {
		upnp_log(&s->logger, LOG_ERR, "ssdp: IPv6 socket: %s", strerror(errno));
		return UPNP_ERR_SOCKET;
	}
	/* Only the groups joined here, on the interfaces they were joined on. */
	(void)setsockopt(s->fd6, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof(zero));
	sin6.sin6_port = htons(s->port);
	if (bind(s->fd6, (struct sockaddr *)&sin6, sizeof(sin6)) != 0) {
		upnp_log(&s->logger, LOG_ERR, "ssdp: IPv6 socket on port %u: %s",
			 (unsigned)s->port, strerror(errno));
		return UPNP_ERR_SOCKET;
	}
	for (size_t i = 0; i < s->n_ifaces; i++) {
		struct ipv6_mreq mr;

		if (!s->ifaces[i].lan.has_ll6 && s->ifaces[i].lan.n_nets6 == 0) {
			upnp_log(&s->logger, LOG_WARNING, "ssdp: %s has no IPv6 address: no SSDP "
				 "over IPv6 there", s->ifaces[i].lan.name);
			continue;
		}
		memset(&mr, 0, sizeof(mr));
		inet_pton(AF_INET6, SSDP_GROUP6, &mr.ipv6mr_multiaddr);
		mr.ipv6mr_interface = s->ifaces[i].lan.index;
		if (setsockopt(s->fd6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) != 0 &&
		    errno != EADDRINUSE) {
			upnp_log(&s->logger, LOG_ERR, "ssdp: join %s on %s: %s", SSDP_GROUP6,
				 s->ifaces[i].lan.name, strerror(errno));
			return UPNP_ERR_SOCKET;
		}
	}
	return UPNP_OK;
}

struct ssdp *ssdp_new(struct event_base *base, const struct ssdp_config *cfg, enum upnp_err *err)
{
	struct ssdp *s;
	enum upnp_err e = UPNP_ERR_INVAL;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct ip_mreqn mr;
	int one = 1, zero = 0, ttl = SSDP_TTL;
	size_t n = 0;

	if (base == NULL || cfg == NULL || cfg->location == NULL || cfg->root_uuid == NULL ||
	    cfg->usns_nt == NULL || cfg->n_ifnames == 0 || cfg->n_ifnames > SSDP_MAX_IFACES ||
	    strncmp(cfg->root_uuid, "uuid:", 5) != 0 || strpbrk(cfg->location, "\r\n") != NULL) {
		if (err)
			*err = UPNP_ERR_INVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		if (err)
			*err = UPNP_ERR_NOMEM;
		return NULL;
	}
	s->fd = -1;
	s->fd6 = -1;
	s->ipv6 = cfg->ipv6;
	s->base = base;
	s->logger = cfg->logger;
	s->max_age = cfg->max_age ? cfg->max_age : 1800;
	s->boot_id = cfg->boot_id;
	s->config_id = cfg->config_id;
	s->port = cfg->port ? cfg->port : SSDP_PORT;
	s->location_per_iface = cfg->location_per_iface;
	s->global.tokens_milli = (uint64_t)SSDP_GLOBAL_BURST * 1000u;
	s->global.last_ms = now_ms();
	s->fresh = s->global;
	s->srcs = calloc(SSDP_SRC_BUCKETS, sizeof(*s->srcs));
	if (s->srcs == NULL) {
		free(s);
		if (err)
			*err = UPNP_ERR_NOMEM;
		return NULL;
	}
	for (size_t i = 0; i < SSDP_SRC_BUCKETS; i++) {
		s->srcs[i].tokens_milli = SSDP_SRC_BURST * 1000u;
		s->srcs[i].asks_milli = SSDP_ASK_BURST * 1000u;
		s->srcs[i].last_tick = (uint32_t)(s->global.last_ms / 16u);
	}
	evutil_secure_rng_get_bytes(s->src_key, sizeof(s->src_key));
	s->server_header = strdup(cfg->server_header ? cfg->server_header
				  : "Linux UPnP/1.1 iwfd/0.1");
	while (cfg->usns_nt[n] != NULL)
		n++;
	s->targets = calloc(n ? n : 1, sizeof(*s->targets));
	if (s->server_header == NULL || s->targets == NULL || strpbrk(s->server_header, "\r\n")) {
		e = s->server_header && s->targets ? UPNP_ERR_INVAL : UPNP_ERR_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		s->n_targets++;
		e = target_init(&s->targets[i], cfg->usns_nt[i], cfg->root_uuid);
		if (e != UPNP_OK)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_ifnames; i++) {
		e = upnp_lan_if_lookup(&s->ifaces[i].lan, cfg->ifnames[i]);
		if (e != UPNP_OK) {
			upnp_log(&s->logger, LOG_ERR,
				 "ssdp: LAN interface %s not found or without IPv4 address",
				 cfg->ifnames[i]);
			goto fail;
		}
		s->n_ifaces++;
	}
	for (size_t i = 0; i < s->n_ifaces; i++) {
		s->ifaces[i].location = iface_location(s, &s->ifaces[i], cfg->location);
		if (s->ifaces[i].location == NULL) {
			e = UPNP_ERR_NOMEM;
			goto fail;
		}
	}
	e = UPNP_ERR_SOCKET;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) != 0 ||
	    setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0)
		goto sockfail;
	/* Only the groups this socket joined, on the interfaces it joined them. */
	(void)setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero));
	sin.sin_port = htons(s->port);
	if (bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		goto sockfail;
	for (size_t i = 0; i < s->n_ifaces; i++) {
		memset(&mr, 0, sizeof(mr));
		inet_pton(AF_INET, SSDP_GROUP, &mr.imr_multiaddr);
		mr.imr_address = s->ifaces[i].lan.addr;
		mr.imr_ifindex = (int)s->ifaces[i].lan.index;
		if (setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0 &&
		    errno != EADDRINUSE) {
			upnp_log(&s->logger, LOG_ERR, "ssdp: join %s on %s: %s", SSDP_GROUP,
				 s->ifaces[i].lan.name, strerror(errno));
			goto fail;
		}
	}
	if (s->ipv6) {
		e = open6(s);
		if (e != UPNP_OK)
			goto fail;
	}
	s->ev_read = event_new(base, s->fd, EV_READ | EV_PERSIST, read_cb, s);
	s->ev_notify = evtimer_new(base, notify_cb, s);
	if (s->fd6 >= 0)
		s->ev_read6 = event_new(base, s->fd6, EV_READ | EV_PERSIST, read_cb, s);
	if (s->ev_read == NULL || s->ev_notify == NULL || (s->fd6 >= 0 && s->ev_read6 == NULL)) {
		e = UPNP_ERR_NOMEM;
		goto fail;
	}
	event_add(s->ev_read, NULL);
	if (s->ev_read6 != NULL)
		event_add(s->ev_read6, NULL);
	if (cfg->start_off)
		s->off = true; /* silent until ssdp_set_enabled(true) */
	else
		notify_cb(-1, 0, s); /* first ssdp:alive now; arms the repeat */
	if (err)
		*err = UPNP_OK;
	return s;
sockfail:
	upnp_log(&s->logger, LOG_ERR, "ssdp: socket on port %u: %s", (unsigned)s->port,
		 strerror(errno));
fail:
	if (s->ev_read) {
		event_free(s->ev_read);
		s->ev_read = NULL;
	}
	if (s->ev_notify) {
		event_free(s->ev_notify);
		s->ev_notify = NULL;
	}
	if (s->ev_read6) {
		event_free(s->ev_read6);
		s->ev_read6 = NULL;
	}
	if (s->fd >= 0)
		evutil_closesocket(s->fd);
	s->fd = -1;
	if (s->fd6 >= 0)
		evutil_closesocket(s->fd6);
	s->fd6 = -1;
	ssdp_free(s);
	if (err)
		*err = e;
	return NULL;
}

void ssdp_set_enabled(struct ssdp *s, bool on)
{
	if (s == NULL || s->off == !on)
		return;
	if (!on) {
		send_notify(s, false); /* UDA 1.1 §1.2.4 */
		event_del(s->ev_notify);
		while (s->pending != NULL)
			pending_free(s, s->pending);
		s->off = true;
		return;
	}
	s->off = false;
	s->alive_round = 0;
	notify_cb(-1, 0, s); /* ssdp:alive now, repeated as at start */
}

void ssdp_stats(const struct ssdp *s, struct upnp_stats *out)
{
	if (s == NULL)
		return;
	out->ssdp_msearch = s->st.ssdp_msearch;
	out->ssdp_answered = s->st.ssdp_answered;
	out->ssdp_no_match = s->st.ssdp_no_match;
	out->ssdp_rate_limited = s->st.ssdp_rate_limited;
	out->ssdp_malformed = s->st.ssdp_malformed;
	out->ssdp_not_lan = s->st.ssdp_not_lan;
}

void ssdp_free(struct ssdp *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0 && s->ev_read != NULL && !s->off)
		send_notify(s, false); /* UDA 1.1 §1.2.4 */
	while (s->pending != NULL)
		pending_free(s, s->pending);
	if (s->ev_read)
		event_free(s->ev_read);
	if (s->ev_notify)
		event_free(s->ev_notify);
	if (s->ev_read6)
		event_free(s->ev_read6);
	if (s->fd >= 0)
		evutil_closesocket(s->fd);
	if (s->fd6 >= 0)
		evutil_closesocket(s->fd6);
	for (size_t i = 0; i < s->n_targets; i++) {
		free(s->targets[i].nt);
		free(s->targets[i].usn);
		free(s->targets[i].uuid);
		free(s->targets[i].base);
	}
	free(s->targets);
	for (size_t i = 0; i < s->n_ifaces; i++)
		free(s->ifaces[i].location);
	free(s->server_header);
	free(s->srcs);
	free(s);
}
