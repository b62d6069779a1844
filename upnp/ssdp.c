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

struct ssdp_pending {
	struct ssdp_pending *next;
	struct ssdp *s;
	struct event *ev;
	struct sockaddr_in to;
	size_t iface;              /* index into s->ifaces */
	struct in_addr local;      /* address the search was sent to, if unicast */
	char st[SSDP_ST_MAX];
};

struct ssdp {
	struct event_base *base;
	evutil_socket_t fd;
	struct event *ev_read, *ev_notify;
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
static void src_buckets(struct ssdp *s, struct in_addr a, uint64_t now,
			struct ssdp_src_bucket *b[2])
{
	b[0] = &s->srcs[src_hash(a.s_addr, s->src_key[0], 0x9e3779b1u)];
	b[1] = &s->srcs[src_hash(a.s_addr, s->src_key[1], 0x85ebca77u)];
	src_refill(b[0], now);
	src_refill(b[1], now);
	if (b[1]->asks_milli > b[0]->asks_milli ||
	    (b[1]->asks_milli == b[0]->asks_milli && b[1]->tokens_milli > b[0]->tokens_milli)) {
		struct ssdp_src_bucket *t = b[0];

		b[0] = b[1];
		b[1] = t;
	}
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


/* Send one datagram out of interface ifc, from its address (or `src` when set). */
static void send_on(struct ssdp *s, const struct ssdp_iface *ifc, struct in_addr src,
		    const struct sockaddr_in *to, const char *msg, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)msg, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)(uintptr_t)to, .msg_namelen = sizeof(*to),
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	struct in_pktinfo pi;

	memset(&cm, 0, sizeof(cm));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memset(&pi, 0, sizeof(pi));
	pi.ipi_ifindex = (int)ifc->lan.index;
	pi.ipi_spec_dst = src.s_addr != 0 ? src : ifc->lan.addr;
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	if (IN_MULTICAST(ntohl(to->sin_addr.s_addr))) {
		struct ip_mreqn mr = { .imr_address = ifc->lan.addr, .imr_ifindex = (int)ifc->lan.index };

		setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr));
	}
	if (sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: send on %s: %s", ifc->lan.name,
			 strerror(errno));
}

/* UDA 1.1 §1.2.2 (ssdp:alive) and §1.2.4 (ssdp:byebye). */
static void send_notify(struct ssdp *s, bool alive)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(SSDP_PORT) };
	char msg[SSDP_DGRAM_MAX];
	struct in_addr none = { 0 };

	inet_pton(AF_INET, SSDP_GROUP, &to.sin_addr);
	for (size_t i = 0; i < s->n_ifaces; i++) {
		const struct ssdp_iface *ifc = &s->ifaces[i];

		for (size_t t = 0; t < s->n_targets; t++) {
			const struct ssdp_target *tg = &s->targets[t];
			int n;

			if (alive)
				n = snprintf(msg, sizeof(msg),
					     "NOTIFY * HTTP/1.1\r\nHOST: " SSDP_GROUP ":1900\r\n"
					     "CACHE-CONTROL: max-age=%u\r\nLOCATION: %s\r\n"
					     "NT: %s\r\nNTS: ssdp:alive\r\nSERVER: %s\r\nUSN: %s\r\n"
					     "BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
					     (unsigned)s->max_age, ifc->location, tg->nt,
					     s->server_header, tg->usn, (unsigned)s->boot_id,
					     (unsigned)s->config_id);
			else
				n = snprintf(msg, sizeof(msg),
					     "NOTIFY * HTTP/1.1\r\nHOST: " SSDP_GROUP ":1900\r\n"
					     "NT: %s\r\nNTS: ssdp:byebye\r\nUSN: %s\r\n"
					     "BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
					     tg->nt, tg->usn, (unsigned)s->boot_id,
					     (unsigned)s->config_id);
			if (n > 0 && (size_t)n < sizeof(msg))
				send_on(s, ifc, none, &to, msg, (size_t)n);
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
static void send_replies(struct ssdp *s, size_t iface, struct in_addr local,
			 const struct sockaddr_in *to, const char *st)
{
	const struct ssdp_iface *ifc = &s->ifaces[iface];
	char msg[SSDP_DGRAM_MAX], usn[SSDP_ST_MAX * 2], date[64];
	const char *rst;

	http_date(date, sizeof(date));
	for (size_t t = 0; t < s->n_targets; t++) {
		int n;

		if (!target_answers(&s->targets[t], st, &rst, usn, sizeof(usn)))
			continue;
		n = snprintf(msg, sizeof(msg),
			     "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=%u\r\nDATE: %s\r\nEXT:\r\n"
			     "LOCATION: %s\r\nSERVER: %s\r\nST: %s\r\nUSN: %s\r\n"
			     "BOOTID.UPNP.ORG: %u\r\nCONFIGID.UPNP.ORG: %u\r\n\r\n",
			     (unsigned)s->max_age, date, ifc->location, s->server_header, rst, usn,
			     (unsigned)s->boot_id, (unsigned)s->config_id);
		if (n > 0 && (size_t)n < sizeof(msg))
			send_on(s, ifc, local, to, msg, (size_t)n);
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

	send_replies(s, p->iface, p->local, &p->to, p->st);
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

static void handle_msearch(struct ssdp *s, const char *buf, size_t len,
			   const struct sockaddr_in *from, unsigned ifindex, struct in_addr dst)
{
	struct msearch m;
	int ii = iface_of(s, ifindex);
	bool multicast = IN_MULTICAST(ntohl(dst.s_addr));
	unsigned n, delay_ms = 0;
	uint64_t now;
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, ip, sizeof(ip));
	if (ii < 0) {
		/* Not a LAN interface (the WAN side): never answer. */
		return;
	}
	if (!upnp_lan_if_has(&s->ifaces[ii].lan, from->sin_addr) || from->sin_port == 0) {
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: ignoring %s: not on %s's subnet", ip,
			 s->ifaces[ii].lan.name);
		return;
	}
	if (len < 9 || strncasecmp(buf, "M-SEARCH ", 9) != 0)
		return; /* NOTIFYs of other devices, responses: not for us */
	if (msearch_parse(buf, len, &m, NULL, 0) != 0) {
		upnp_log(&s->logger, LOG_DEBUG, "ssdp: malformed M-SEARCH from %s", ip);
		return;
	}
	if (multicast) {
		/* UDA 1.1 §1.3.2: multicast searches carry MAN "ssdp:discover" and MX. */
		if (!m.man_quoted || !m.has_mx)
			return;
		dst.s_addr = 0;
	} else if (!m.man_quoted && !m.man_bare) {
		return;
	}
	n = count_answers(s, m.st);
	if (n == 0)
		return;
	now = now_ms();
	/* Two global budgets: quiet sources (an ask credit left in their bucket) draw from
	 * "fresh", the busy ones from "global". A flood from many
	 * addresses then exhausts only "global", and an ordinary host's occasional search is
	 * still answered; the total stays bounded by the sum of both. */
	struct ssdp_src_bucket *sb[2];
	src_buckets(s, from->sin_addr, now, sb);
	bool fresh = sb[0]->asks_milli >= 1000u;
	src_charge(sb, 1000u, 0);
	if (sb[0]->tokens_milli < n * 1000u ||
	    !(fresh ? bucket_take(&s->fresh, now, SSDP_GLOBAL_BURST, SSDP_GLOBAL_RATE, n)
		    : bucket_take(&s->global, now, SSDP_GLOBAL_BURST, SSDP_GLOBAL_RATE, n))) {
		if (now - s->last_limit_log_ms >= 1000) { /* the log must not flood either */
			s->last_limit_log_ms = now;
			upnp_log(&s->logger, LOG_INFO, "ssdp: rate limit, not answering %s", ip);
		}
		return;
	}
	src_charge(sb, 0, n * 1000u);
	if (multicast) {
		unsigned mx = m.mx < SSDP_MX_CAP ? m.mx : SSDP_MX_CAP;

		/* UDA 1.1 §1.3.3: a random delay within MX seconds spreads the answers. */
		delay_ms = mx > 0 ? rnd32() % (mx * 1000u) : 0;
	}
	if (delay_ms == 0) {
		send_replies(s, (size_t)ii, dst, from, m.st);
		return;
	}
	if (s->n_pending >= SSDP_MAX_PENDING)
		return;
	{
		/* A flood (even from many addresses) must not fill every slot: each source
		 * may have only a couple of delayed answers waiting. */
		unsigned mine = 0;
		for (const struct ssdp_pending *q = s->pending; q != NULL; q = q->next)
			if (q->to.sin_addr.s_addr == from->sin_addr.s_addr)
				mine++;
		if (mine >= SSDP_PENDING_PER_SOURCE)
			return;
	}
	{
		struct ssdp_pending *p = calloc(1, sizeof(*p));
		struct timeval tv = { .tv_sec = delay_ms / 1000,
				      .tv_usec = (suseconds_t)(delay_ms % 1000) * 1000 };

		if (p == NULL)
			return;
		p->ev = evtimer_new(s->base, pending_cb, p);
		if (p->ev == NULL) {
			free(p);
			return;
		}
		p->s = s;
		p->to = *from;
		p->iface = (size_t)ii;
		p->local = dst;
		snprintf(p->st, sizeof(p->st), "%s", m.st);
		p->next = s->pending;
		s->pending = p;
		s->n_pending++;
		event_add(p->ev, &tv);
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ssdp *s = arg;

	for (int budget = 0; budget < 32; budget++) {
		char buf[SSDP_DGRAM_MAX + 1];
		union {
			char b[CMSG_SPACE(sizeof(struct in_pktinfo)) + 64];
			struct cmsghdr align;
		} cm;
		struct sockaddr_in from;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
		struct cmsghdr *c;
		unsigned ifindex = 0;
		struct in_addr dst = { 0 };
		bool have_pi = false;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0)
			return;
		if (mh.msg_namelen != sizeof(from) || from.sin_family != AF_INET ||
		    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			continue;
		for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
			    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				ifindex = (unsigned)pi.ipi_ifindex;
				dst = pi.ipi_addr;
				have_pi = true;
			}
		}
		if (!have_pi)
			continue; /* cannot tell where it came from: not answered */
		buf[n] = '\0';
		if (!s->off)
			handle_msearch(s, buf, (size_t)n, &from, ifindex, dst);
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
	s->ev_read = event_new(base, s->fd, EV_READ | EV_PERSIST, read_cb, s);
	s->ev_notify = evtimer_new(base, notify_cb, s);
	if (s->ev_read == NULL || s->ev_notify == NULL) {
		e = UPNP_ERR_NOMEM;
		goto fail;
	}
	event_add(s->ev_read, NULL);
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
	if (s->fd >= 0)
		evutil_closesocket(s->fd);
	s->fd = -1;
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
	if (s->fd >= 0)
		evutil_closesocket(s->fd);
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
