/*
 * http.c - the HTTP/1.1 server of upnp/ (descriptions, SOAP control, GENA subscriptions)
 * and a tiny fire-and-forget client for GENA NOTIFY.
 *
 * Sockets are raw non-blocking fds driven by libevent events; requests are parsed by
 * libhttp-parser (which knows SUBSCRIBE/UNSUBSCRIBE, unlike libevent 2.1's evhttp).
 * Writes use send(MSG_NOSIGNAL) so a LAN client that resets its connection cannot raise
 * SIGPIPE in the daemon.
 *
 * Per connection, complete requests form a FIFO of exchanges. Responses leave strictly in
 * request order (RFC 9112 §9.3.2, pipelining): a response produced for a later request
 * waits until every earlier one has been answered. At most HTTP_MAX_PIPELINE requests
 * are parsed ahead; further input stays unread (TCP flow control does the rest).
 *
 * Lifetime: a connection that fails or is closed is marked dead at once (fd closed,
 * unanswered exchanges orphaned) and its memory is released from a deferred event, so no
 * code running on the stack ever sees a freed connection. An orphaned exchange is freed
 * by http_exchange_respond(), which the handler must call exactly once anyway.
 *
 * LAN only, by construction: with LAN interfaces configured there is one listening socket
 * per interface, bound to it (SO_BINDTODEVICE); Linux delivers a connection for our LAN
 * address that arrives on the WAN interface to no listener at all (the weak host model
 * would otherwise accept it). A peer must also be on one of its interface's subnets.
 * With http_server_config.ipv6 each interface also gets an IPv6 listener on [::] (same
 * port, IPV6_V6ONLY), whose peers must be on-link (upnp_lan_if_has6); limits are shared.
 *
 * Memory: every byte a peer can make us hold is counted (conn_held: unparsed input,
 * requests, responses not yet sent). A connection is not read or parsed further while
 * HTTP_OUT_MAX bytes of its answers are unsent (a client that pipelines and never reads),
 * while its host holds its share, or while all connections together hold max_held_bytes
 * (a host holding almost nothing may still go on: one host cannot lock the others out).
 * A connection held back this way is resumed when memory is released anywhere. The idle
 * timer is re-armed by a new request or by output written out completely, never by a
 * peer that only sends, so a client that never reads is closed after one idle period.
 */
#include <syslog.h>
#include "upnp_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <http_parser.h>

#define HTTP_MAX_PIPELINE 4      /* requests parsed ahead of their responses */
#define HTTP_LINGER_MS 1000      /* after an error response: drain input before close */
#define HTTP_READ_CHUNK 4096
#define HTTP_OUT_MAX 16384       /* unsent answer bytes above which a connection is not parsed */
#define HTTP_HOST_SHARE 4        /* a host may hold 1/4 of the connections and of the bytes */
#define HTTP_HOST_RESERVE 16384  /* a host holding less may read even when the total is full */
#define HTTP_MAX_LISTENERS 16      /* 8 LAN interfaces, IPv4 and IPv6 each */
#define HTTP_KERNEL_BUF 65536    /* SO_RCVBUF / SO_SNDBUF of LAN connections (kernel doubles) */
#define HTTP_CLIENT_MAX_STATUS 512 /* bytes of a NOTIFY response we look at */

#define DEF_MAX_CONNECTIONS 64
#define DEF_MAX_HEADER_BYTES 8192
#define DEF_MAX_BODY_BYTES 65536
#define DEF_IDLE_TIMEOUT_MS 30000
#define DEF_MAX_HELD_BYTES (1024u * 1024u)
#define DEF_SERVER_HEADER "Linux UPnP/1.1 iwfd/0.1"

struct http_conn;

struct http_exchange {
	struct http_exchange *next;  /* FIFO of the connection */
	struct http_conn *conn;      /* NULL once the connection is gone (orphan) */
	struct http_request req;     /* pointers into strbuf / body */
	char *strbuf;                /* url, then header names and values, NUL-separated */
	size_t str_len, str_cap;
	size_t url_off;
	size_t name_off[HTTP_MAX_HEADERS], value_off[HTTP_MAX_HEADERS];
	char *body;                  /* NUL-terminated */
	size_t body_len, body_cap;
	bool head;                   /* HEAD request: send headers only */
	bool keep_alive;             /* the connection may carry another request */
	bool handed;                 /* given to the handler, awaiting respond */
	bool ready;                  /* response built into resp */
	bool close_after;            /* close the connection once resp is written */
	struct evbuffer *resp;
};

enum conn_phase {
	CONN_OPEN,    /* reading requests */
	CONN_CLOSING, /* no more reading; close once queued responses are written */
	CONN_LINGER,  /* write side shut; discarding input for a moment, then close */
};

struct http_conn {
	struct http_conn *prev, *next; /* server's list */
	struct http_server *srv;
	evutil_socket_t fd;
	struct event *ev_read, *ev_write, *ev_timer, *ev_free;
	struct evbuffer *in, *out;
	enum conn_phase phase;
	struct http_listener *lst;   /* the listener it came in on (NULL: adopted) */
	bool dead;                   /* closed; memory freed by ev_free */
	bool throttled;              /* not read: over a memory bound (see the top) */
	bool stop_parsing;           /* a request ended the connection or was malformed */
	bool peer_eof;               /* the client shut its sending side */
	bool in_parse;               /* conn_parse is on the stack */
	http_parser parser;
	int parse_status;            /* status chosen by a callback that failed the parse */
	struct http_exchange *cur;   /* request being parsed */
	enum { HB_NONE, HB_FIELD, HB_VALUE } hb;
	size_t hdr_bytes;            /* URL + header bytes of cur */
	struct http_exchange *q_head, *q_tail; /* complete requests in arrival order */
	size_t n_queued;
	struct sockaddr_storage peer, local;
};

struct http_listener {
	struct http_server *srv;
	struct evconnlistener *lst;
	int family;                  /* AF_INET or AF_INET6 */
	bool lan;                    /* bound to lif: peers must be on its subnets (IPv6: on-link,
					upnp_lan_if_has6) */
	struct upnp_lan_if lif;
	uint64_t refreshed_ms;       /* IPv6: lif's addresses last re-read */
};

struct http_server {
	struct event_base *base;
	struct http_listener lsts[HTTP_MAX_LISTENERS];
	size_t n_lsts;
	struct http_server_config cfg; /* limits with defaults applied */
	char *server_header;
	struct http_conn *conns;
	struct http_conn *dead;  /* closed, memory not yet freed by their ev_free */
	size_t n_conns;
	size_t n_throttled;
	uint64_t last_refusal_log_ms;
	size_t host_held_max;    /* a host's share of cfg.max_held_bytes */
	struct event *ev_resume; /* deferred: retry throttled connections */
	uint16_t port;
	http_parser_settings settings;
	struct upnp_stats st;    /* the http_* counters */
};

/* ------------------------------------------------------------------ helpers */

static struct timeval ms_tv(uint32_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	return tv;
}

/* RFC 9110 §5.6.7 IMF-fixdate, independent of the locale. */
void http_date(char *buf, size_t cap)
{
	static const char wd[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mo[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t now = time(NULL);

	if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		snprintf(buf, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
		 mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *reason_phrase(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return (s == NULL || s[0] == '<') ? "Unknown" : s;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* Same client host (address only, any port)? */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (b == NULL || a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

/* ------------------------------------------------------------------ exchanges */

static void exchange_free(struct http_exchange *x)
{
	if (x == NULL)
		return;
	if (x->resp != NULL)
		evbuffer_free(x->resp);
	free(x->strbuf);
	free(x->body);
	free(x);
}

static struct http_exchange *exchange_new(struct http_conn *c)
{
	struct http_exchange *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->conn = c;
	x->keep_alive = true;
	return x;
}

/* Append raw bytes to the string buffer (bounded by the caller). */
static int str_append(struct http_exchange *x, const char *at, size_t len)
{
	if (x->str_len + len + 1 > x->str_cap) {
		size_t cap = x->str_cap ? x->str_cap : 256;
		char *p;

		while (cap < x->str_len + len + 1)
			cap *= 2;
		p = realloc(x->strbuf, cap);
		if (p == NULL)
			return -1;
		x->strbuf = p;
		x->str_cap = cap;
	}
	memcpy(x->strbuf + x->str_len, at, len);
	x->str_len += len;
	x->strbuf[x->str_len] = '\0';
	return 0;
}

/* Start a new NUL-separated token; returns its offset. */
static int str_token(struct http_exchange *x, size_t *off)
{
	if (x->str_len > 0 && str_append(x, "", 1) != 0) /* keeps the previous NUL */
		return -1;
	*off = x->str_len;
	return str_append(x, "", 0);
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* Build the response bytes of x (status line, standard headers, extra headers, body). */
static int exchange_build(struct http_exchange *x, const char *server_header, int status,
			  const char *const *headers, const char *content_type, const char *body,
			  size_t body_len)
{
	char date[64];
	struct evbuffer *b = evbuffer_new();
	int rc = 0;

	if (b == NULL)
		return -1;
	http_date(date, sizeof(date));
	rc |= evbuffer_add_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\n"
				  "Content-Length: %zu\r\nConnection: %s\r\n",
				  status, reason_phrase(status), date, server_header, body_len,
				  x->close_after ? "close" : "keep-alive") < 0;
	if (content_type != NULL)
		rc |= evbuffer_add_printf(b, "Content-Type: %s\r\n", content_type) < 0;
	for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2) {
		/* Our own code supplies these; refuse anything that could split the header. */
		if (strpbrk(headers[i], "\r\n:") != NULL || strpbrk(headers[i + 1], "\r\n") != NULL)
			continue;
		rc |= evbuffer_add_printf(b, "%s: %s\r\n", headers[i], headers[i + 1]) < 0;
	}
	rc |= evbuffer_add(b, "\r\n", 2);
	if (!x->head && body_len > 0)
		rc |= evbuffer_add(b, body, body_len);
	if (rc != 0) {
		evbuffer_free(b);
		return -1;
	}
	if (x->resp != NULL)
		evbuffer_free(x->resp);
	x->resp = b;
	x->ready = true;
	return 0;
}

/* ------------------------------------------------------------------ connections */

static void conn_flush(struct http_conn *c);
static void conn_parse(struct http_conn *c);

/* ------------------------------------------------------------------ memory bounds */

static size_t exchange_held(const struct http_exchange *x)
{
	return sizeof(*x) + x->str_cap + x->body_cap +
	       (x->resp != NULL ? evbuffer_get_length(x->resp) : 0);
}

/* Bytes c holds on behalf of its peer: input not yet parsed, requests, answers unsent. */
static size_t conn_held(const struct http_conn *c)
{
	size_t n = sizeof(*c) + evbuffer_get_length(c->in) + evbuffer_get_length(c->out);

	if (c->cur != NULL)
		n += exchange_held(c->cur);
	for (const struct http_exchange *x = c->q_head; x != NULL; x = x->next)
		n += exchange_held(x);
	return n;
}

/* Answer bytes of c not yet sent (in c->out or ready in the FIFO). */
static size_t conn_unsent(const struct http_conn *c)
{
	size_t n = evbuffer_get_length(c->out);

	for (const struct http_exchange *x = c->q_head; x != NULL; x = x->next)
		if (x->ready && x->resp != NULL)
			n += evbuffer_get_length(x->resp);
	return n;
}

/* May c read and parse more? See the top of the file. */
static bool conn_may_take(const struct http_conn *c)
{
	const struct http_server *s = c->srv;
	size_t host = 0, total = 0;

	if (conn_unsent(c) >= HTTP_OUT_MAX)
		return false;
	for (const struct http_conn *d = s->conns; d != NULL; d = d->next) {
		size_t h = conn_held(d);

		total += h;
		if (d == c || same_host(&d->peer, (const struct sockaddr *)&c->peer))
			host += h;
	}
	if (host >= s->host_held_max)
		return false;
	return total < s->cfg.max_held_bytes || host < HTTP_HOST_RESERVE;
}

static void conn_throttle(struct http_conn *c)
{
	event_del(c->ev_read);
	if (!c->throttled) {
		c->throttled = true;
		c->srv->n_throttled++;
		c->srv->st.http_throttled++;
	}
}

static void conn_unthrottle(struct http_conn *c)
{
	if (c->throttled) {
		c->throttled = false;
		c->srv->n_throttled--;
	}
}

/* Read (and parse what is buffered) again, if c wants input and is within its bounds. */
static void conn_resume(struct http_conn *c)
{
	if (c->dead || c->phase != CONN_OPEN || c->stop_parsing ||
	    c->n_queued >= HTTP_MAX_PIPELINE)
		return;
	if (!conn_may_take(c)) {
		conn_throttle(c);
		return;
	}
	conn_unthrottle(c);
	event_add(c->ev_read, NULL);
	/* Requests already buffered behind the answered ones. */
	if (evbuffer_get_length(c->in) > 0 && !c->in_parse)
		conn_parse(c);
}

/* Memory was released: retry the throttled connections, from a deferred event (never
 * from inside the code of the connection that released it). */
static void server_released(struct http_server *s)
{
	if (s->n_throttled > 0 && s->ev_resume != NULL)
		event_active(s->ev_resume, EV_TIMEOUT, 0);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	struct http_conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next; /* c may be closed (moved to the dead list) by its own parse */
		if (c->throttled)
			conn_resume(c);
	}
}

static void conn_timer_arm(struct http_conn *c, uint32_t ms)
{
	struct timeval tv = ms_tv(ms);

	event_add(c->ev_timer, &tv);
}

/* Mark c dead: close the socket, orphan unanswered exchanges. Memory goes in ev_free. */
static void conn_close(struct http_conn *c)
{
	struct http_server *s = c->srv;
	struct http_exchange *x, *nx;

	if (c->dead)
		return;
	c->dead = true;
	conn_unthrottle(c);
	event_del(c->ev_read);
	event_del(c->ev_write);
	event_del(c->ev_timer);
	evutil_closesocket(c->fd);
	c->fd = -1;
	for (x = c->q_head; x != NULL; x = nx) {
		nx = x->next;
		x->next = NULL;
		x->conn = NULL;
		if (!x->handed || x->ready) /* nobody else will free it */
			exchange_free(x);
	}
	c->q_head = c->q_tail = NULL;
	c->n_queued = 0;
	exchange_free(c->cur);
	c->cur = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n_conns--;
	/* Park it on the dead list so http_server_free can still reach it if the loop never
	 * runs ev_free (the server freed right after a close). */
	c->next = s->dead;
	if (s->dead != NULL)
		s->dead->prev = c;
	s->dead = c;
	event_active(c->ev_free, EV_TIMEOUT, 0);
	server_released(s);
}

static void conn_destroy(struct http_conn *c)
{
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_timer);
	event_free(c->ev_free);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	free(c);
}

static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->dead = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	conn_destroy(c);
}

/* Output fully written and the connection must end: half-close, drain input briefly so
 * the peer reads our response instead of an RST, then close. */
static void conn_start_linger(struct http_conn *c)
{
	c->phase = CONN_LINGER;
	shutdown(c->fd, SHUT_WR);
	event_add(c->ev_read, NULL);
	conn_timer_arm(c, HTTP_LINGER_MS);
}

/* Move ready responses at the head of the FIFO to the output buffer, then send. */
static void conn_flush(struct http_conn *c)
{
	struct http_server *s = c->srv;
	bool sent = false;

	if (c->dead)
		return;
	/* Nothing after a closing response is ever sent. */
	while (c->phase == CONN_OPEN && c->q_head != NULL && c->q_head->ready) {
		struct http_exchange *x = c->q_head;

		c->q_head = x->next;
		if (c->q_head == NULL)
			c->q_tail = NULL;
		c->n_queued--;
		evbuffer_add_buffer(c->out, x->resp);
		if (x->close_after)
			c->phase = CONN_CLOSING;
		exchange_free(x);
	}
	while (evbuffer_get_length(c->out) > 0) {
		struct evbuffer_iovec v;
		ssize_t n;

		if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1)
			break;
		n = send(c->fd, v.iov_base, v.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				event_add(c->ev_write, NULL);
				return;
			}
			if (errno == EINTR)
				continue;
			conn_close(c);
			return;
		}
		evbuffer_drain(c->out, (size_t)n);
		sent = true;
		server_released(s);
	}
	/* Everything written: the client reads; restart its clock. Partial progress does not
	 * count, so a peer that never reads (or one byte at a time) is closed after one idle
	 * period. */
	if (sent)
		conn_timer_arm(c, s->cfg.idle_timeout_ms);
	event_del(c->ev_write);
	if (c->peer_eof && c->q_head == NULL) {
		conn_close(c);
		return;
	}
	if (c->phase == CONN_CLOSING) {
		event_del(c->ev_read);
		conn_start_linger(c);
		return;
	}
	conn_resume(c);
}

/* Queue an exchange http.c answers itself (400, 413, ...), ending the connection. */
static void conn_reply_error(struct http_conn *c, int status)
{
	struct http_exchange *x = exchange_new(c);

	if (status == 431)
		c->srv->st.http_header_too_big++;
	else if (status == 413)
		c->srv->st.http_body_too_big++;
	else if (status != 503) /* 503 here: out of memory, not the peer's fault */
		c->srv->st.http_bad_request++;
	c->stop_parsing = true;
	exchange_free(c->cur);
	c->cur = NULL;
	if (x == NULL) {
		conn_close(c);
		return;
	}
	x->close_after = true;
	x->keep_alive = false;
	if (exchange_build(x, c->srv->server_header, status, NULL, NULL, NULL, 0) != 0) {
		exchange_free(x);
		conn_close(c);
		return;
	}
	if (c->q_tail != NULL)
		c->q_tail->next = x;
	else
		c->q_head = x;
	c->q_tail = x;
	c->n_queued++;
	event_del(c->ev_read);
	conn_flush(c);
}

/* ---- http_parser callbacks; data is the connection ---- */

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	exchange_free(c->cur);
	c->cur = exchange_new(c);
	if (c->cur == NULL) {
		c->parse_status = 503;
		return -1;
	}
	c->hb = HB_NONE;
	c->hdr_bytes = 0;
	/* The whole request must arrive within one idle period (slowloris). */
	conn_timer_arm(c, c->srv->cfg.idle_timeout_ms);
	return 0;
}

static int count_header_bytes(struct http_conn *c, size_t len)
{
	c->hdr_bytes += len;
	if (c->hdr_bytes > c->srv->cfg.max_header_bytes) {
		c->parse_status = 431; /* RFC 6585 §5 */
		return -1;
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (count_header_bytes(c, len) != 0)
		return -1;
	if (c->hb != HB_NONE) { /* cannot happen with a sane parser */
		c->parse_status = 400;
		return -1;
	}
	if (c->cur->str_len == 0 && str_token(c->cur, &c->cur->url_off) != 0)
		goto nomem;
	if (str_append(c->cur, at, len) != 0)
		goto nomem;
	return 0;
nomem:
	c->parse_status = 503;
	return -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_exchange *x = c->cur;

	if (count_header_bytes(c, len) != 0)
		return -1;
	/* Trailer fields of a chunked body (RFC 9112 §7.1.2) come after the header pointers
	 * were resolved: strbuf must not grow any more, and we need none of them. */
	if (x->req.path != NULL)
		return 0;
	if (c->hb != HB_FIELD) {
		if (x->req.n_headers >= HTTP_MAX_HEADERS) {
			c->parse_status = 431;
			return -1;
		}
		if (str_token(x, &x->name_off[x->req.n_headers]) != 0)
			goto nomem;
		x->value_off[x->req.n_headers] = (size_t)-1;
		x->req.n_headers++;
		c->hb = HB_FIELD;
	}
	if (str_append(x, at, len) != 0)
		goto nomem;
	return 0;
nomem:
	c->parse_status = 503;
	return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_exchange *x = c->cur;

	if (count_header_bytes(c, len) != 0)
		return -1;
	if (x->req.path != NULL) /* a trailer's value: ignored, see on_header_field */
		return 0;
	if (x->req.n_headers == 0) {
		c->parse_status = 400;
		return -1;
	}
	if (c->hb != HB_VALUE) {
		if (str_token(x, &x->value_off[x->req.n_headers - 1]) != 0)
			goto nomem;
		c->hb = HB_VALUE;
	}
	if (str_append(x, at, len) != 0)
		goto nomem;
	return 0;
nomem:
	c->parse_status = 503;
	return -1;
}

/* RFC 9110 §5.6.2 token; also rejects white space before the colon (RFC 9112 §5.1). */
static bool is_token(const char *t)
{
	if (*t == '\0')
		return false;
	for (; *t != '\0'; t++) {
		unsigned char ch = (unsigned char)*t;

		if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch) != NULL)
			return false;
	}
	return true;
}

static bool method_served(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_POST:
	case HTTP_SUBSCRIBE:
	case HTTP_UNSUBSCRIBE:
		return true;
	default:
		return false;
	}
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_exchange *x = c->cur;
	const struct http_server *s = c->srv;

	if (p->http_major != 1) {
		/* HTTP/0.9 (no version at all) is not spoken; 2.x and later are not ours. */
		c->parse_status = p->http_major == 0 ? 400 : 505;
		return -1;
	}
	if (!method_served((enum http_method)p->method)) {
		c->parse_status = 501; /* RFC 9110 §15.6.2: method not supported for any target */
		return -1;
	}
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > s->cfg.max_body_bytes) {
		c->parse_status = 413; /* decided before reading the body */
		return -1;
	}
	if (str_append(x, "", 1) != 0) { /* terminate the last token */
		c->parse_status = 503;
		return -1;
	}
	/* Resolve the pointers (strbuf no longer grows). */
	x->req.path = x->strbuf + x->url_off;
	for (size_t i = 0; i < x->req.n_headers; i++) {
		x->req.headers[i].name = x->strbuf + x->name_off[i];
		if (!is_token(x->req.headers[i].name)) {
			c->parse_status = 400;
			return -1;
		}
		x->req.headers[i].value = x->value_off[i] == (size_t)-1 ? ""
					  : trim(x->strbuf + x->value_off[i]);
	}
	x->head = p->method == HTTP_HEAD;
	/* HEAD is GET without the body (RFC 9110 §9.3.2): the handler sees GET. */
	x->req.method = x->head ? "GET" : http_method_str((enum http_method)p->method);
	x->req.http_major = p->http_major;
	x->req.http_minor = p->http_minor;
	/* RFC 9110 §10.1.1: tell a waiting client to send its body, if it is next in line. */
	if ((p->flags & (F_CONTENTLENGTH | F_CHUNKED)) && c->q_head == NULL) {
		const char *e = http_request_header(&x->req, "Expect");

		if (e != NULL && strcasecmp(e, "100-continue") == 0) {
			evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		}
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_exchange *x = c->cur;

	if (x->body_len + len > c->srv->cfg.max_body_bytes) {
		c->parse_status = 413; /* chunked bodies are capped as they arrive */
		return -1;
	}
	if (x->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 1024;
		char *b;

		while (cap < x->body_len + len + 1)
			cap *= 2;
		b = realloc(x->body, cap);
		if (b == NULL) {
			c->parse_status = 503;
			return -1;
		}
		x->body = b;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, at, len);
	x->body_len += len;
	x->body[x->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_exchange *x = c->cur;

	if (x->body == NULL) {
		x->body = calloc(1, 1);
		if (x->body == NULL) {
			c->parse_status = 503;
			return -1;
		}
	}
	x->req.body = x->body;
	x->req.body_len = x->body_len;
	x->req.peer = c->peer;
	x->req.local = c->local;
	/* HTTP/1.0 always closes; HTTP/1.1 unless "Connection: close" (RFC 9112 §9.3).
	 * An Upgrade request is answered and the connection closed: no protocol switching. */
	x->keep_alive = p->http_minor >= 1 && http_should_keep_alive(p) && !p->upgrade;
	x->close_after = !x->keep_alive;
	if (!x->keep_alive)
		c->stop_parsing = true;
	if (c->q_tail != NULL)
		c->q_tail->next = x;
	else
		c->q_head = x;
	c->q_tail = x;
	c->n_queued++;
	c->cur = NULL;
	http_parser_pause(p, 1); /* hand requests over one at a time */
	return 0;
}

/* Map a parser error to the status we answer with. */
static int parse_error_status(struct http_conn *c, enum http_errno e, const char *data, size_t len)
{
	if (c->parse_status != 0)
		return c->parse_status;
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_METHOD: {
		/* A well-formed token followed by a space is a method we do not know. */
		size_t i = 0;

		while (i < len && i < 32 && ((data[i] >= 'A' && data[i] <= 'Z') || data[i] == '-' ||
					     data[i] == '_'))
			i++;
		return (i > 0 && i < len && data[i] == ' ') ? 501 : 400;
	}
	default:
		return 400;
	}
}

/* Hand the newly complete requests (not yet handed) to the handler, in order. */
static void conn_dispatch(struct http_conn *c)
{
	struct http_server *s = c->srv;
	struct http_exchange *x;

	while (!c->dead) {
		/* x may be answered and freed inside the handler: rescan from the head. */
		for (x = c->q_head; x != NULL && (x->handed || x->ready); x = x->next)
			;
		if (x == NULL)
			break;
		x->handed = true;
		s->cfg.handler(s->cfg.handler_arg, x, &x->req);
	}
}

static void conn_parse(struct http_conn *c)
{
	struct http_server *s = c->srv;

	c->in_parse = true;
	while (!c->dead && c->phase == CONN_OPEN && !c->stop_parsing &&
	       c->n_queued < HTTP_MAX_PIPELINE) {
		struct evbuffer_iovec v;
		size_t n;
		enum http_errno e;

		if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		if (!conn_may_take(c)) {
			conn_throttle(c); /* resumed when memory is released */
			break;
		}
		c->parser.data = c;
		n = http_parser_execute(&c->parser, &s->settings, v.iov_base, v.iov_len);
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_OK || e == HPE_PAUSED) {
			evbuffer_drain(c->in, n);
			if (e == HPE_PAUSED)
				http_parser_pause(&c->parser, 0);
			conn_dispatch(c);
			if (c->dead)
				return;
			conn_flush(c);
			if (c->dead)
				return;
			if (n == 0 && e == HPE_OK)
				break; /* nothing consumed: wait for more input */
			continue;
		}
		{
			int status = parse_error_status(c, e, v.iov_base, v.iov_len);

			evbuffer_drain(c->in, evbuffer_get_length(c->in));
			upnp_log(&s->cfg.logger, LOG_DEBUG, "http: bad request (%s): %d",
				 http_errno_name(e), status);
			c->in_parse = false;
			conn_reply_error(c, status);
			return;
		}
	}
	c->in_parse = false;
	if (!c->dead && c->phase == CONN_OPEN && (c->n_queued >= HTTP_MAX_PIPELINE || c->stop_parsing))
		event_del(c->ev_read); /* resumed by conn_flush */
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	int n;

	if (c->phase == CONN_LINGER) {
		char sink[HTTP_READ_CHUNK];
		ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(c);
		return;
	}
	if (!conn_may_take(c)) {
		conn_throttle(c);
		return;
	}
	n = evbuffer_read(c->in, fd, HTTP_READ_CHUNK);
	if (n == 0) {
		/* Peer closed or half-closed its side. Answers still owed are sent (they may
		 * fail harmlessly: MSG_NOSIGNAL); then we close. Nothing more is parsed. */
		exchange_free(c->cur);
		c->cur = NULL;
		c->stop_parsing = true;
		c->peer_eof = true;
		event_del(c->ev_read);
		if (c->q_head == NULL && evbuffer_get_length(c->out) == 0)
			conn_close(c);
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	conn_parse(c);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_flush(arg);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	if (c->phase == CONN_LINGER) {
		conn_close(c);
		return;
	}
	/* Waiting on our own handler (e.g. a PCP round trip) is not the client's fault. */
	if (c->q_head != NULL && !c->q_head->ready && evbuffer_get_length(c->out) == 0) {
		conn_timer_arm(c, c->srv->cfg.idle_timeout_ms);
		return;
	}
	/* A request begun and not finished within the idle time: slowloris or a dead peer. */
	if (c->cur != NULL)
		c->srv->st.http_timeout_request++;
	else
		c->srv->st.http_timeout_idle++;
	upnp_log(&c->srv->cfg.logger, LOG_DEBUG, "http: idle timeout, closing");
	conn_close(c);
}

/* Over the connection limit: a short 503 and close (RFC 9110 §15.6.4). */
static void refuse_busy(struct http_server *s, evutil_socket_t fd)
{
	char date[64], buf[256];
	int n;

	http_date(date, sizeof(date));
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\n"
		     "Server: %s\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
		     date, s->server_header);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Refusals are logged at most once a second: a flood must not flood the log too. */
static bool refusal_log_due(struct http_server *s)
{
	uint64_t now = mono_ms();

	if (s->last_refusal_log_ms != 0 && now - s->last_refusal_log_ms < 1000)
		return false;
	s->last_refusal_log_ms = now;
	return true;
}

/* Is peer sa one listener l serves: IPv4 on one of the interface's subnets; IPv6 on-link
 * (link-local from this link, or inside one of its prefixes)? */
static bool peer_on_lan(const struct http_listener *l, const struct sockaddr *sa)
{
	if (sa == NULL || sa->sa_family != l->family)
		return false;
	if (sa->sa_family == AF_INET)
		return upnp_lan_if_has(&l->lif, ((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
	return upnp_lan_if_has6(&l->lif, &s6->sin6_addr, s6->sin6_scope_id);
}

/* Take fd as a new connection (over the limit: 503 and close). l: the listener it came in
 * on (NULL: adopted). */
static int conn_add(struct http_server *s, struct http_listener *l, evutil_socket_t fd,
		    const struct sockaddr *sa, socklen_t salen)
{
	struct http_conn *c, *my_oldest_linger = NULL, *oldest_linger = NULL;
	socklen_t len;
	/* One host may hold at most a quarter of the connections, so that a slow or
	 * hostile client (slowloris) cannot lock every other LAN host out of the IGD. */
	size_t per_host = s->cfg.max_connections / HTTP_HOST_SHARE > 4 ?
			  s->cfg.max_connections / HTTP_HOST_SHARE : 4, mine = 0;

	if (l != NULL && l->lan && l->family == AF_INET6 && !peer_on_lan(l, sa) &&
	    mono_ms() - l->refreshed_ms >= 1000) {
		/* the LAN prefix may have changed (DHCPv6-PD): look again, once a second at most */
		l->refreshed_ms = mono_ms();
		upnp_lan_if_refresh6(&l->lif);
	}
	if (l != NULL && l->lan && !peer_on_lan(l, sa)) {
		/* LAN only: a peer that is not on the interface's subnet gets no answer. */
		if (refusal_log_due(s)) {
			char ip[INET6_ADDRSTRLEN] = "?";

			if (sa != NULL && sa->sa_family == AF_INET)
				inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
					  ip, sizeof(ip));
			else if (sa != NULL && sa->sa_family == AF_INET6)
				inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
					  ip, sizeof(ip));
			upnp_log(&s->cfg.logger, LOG_INFO, "http: %s is not on %s's subnet: closed",
				 ip, l->lif.name);
		}
		s->st.http_refused_not_lan++;
		evutil_closesocket(fd);
		return -1;
	}
	/* The list is newest first: the last lingering connection seen is the oldest. Lingering
	 * ones (answered, closing) count against their host too; they are the first to go when
	 * room is needed, since all they still do is wait for the peer to read its answer. */
	for (c = s->conns; c != NULL; c = c->next) {
		if (c->phase == CONN_LINGER)
			oldest_linger = c;
		if (sa != NULL && same_host(&c->peer, sa)) {
			mine++;
			if (c->phase == CONN_LINGER)
				my_oldest_linger = c;
		}
	}
	if (mine >= per_host && my_oldest_linger != NULL) {
		if (oldest_linger == my_oldest_linger)
			oldest_linger = NULL;
		conn_close(my_oldest_linger);
		mine--;
	}
	if (mine >= per_host) {
		if (refusal_log_due(s))
			upnp_log(&s->cfg.logger, LOG_WARNING,
				 "http: one client holds %zu connections: refused", mine);
		s->st.http_refused_per_host++;
		refuse_busy(s, fd);
		return -1;
	}
	if (s->n_conns >= s->cfg.max_connections && oldest_linger != NULL)
		conn_close(oldest_linger);
	if (s->n_conns >= s->cfg.max_connections) {
		if (refusal_log_due(s))
			upnp_log(&s->cfg.logger, LOG_WARNING, "http: connection limit %zu reached",
				 s->cfg.max_connections);
		s->st.http_refused_limit++;
		refuse_busy(s, fd);
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	c->srv = s;
	c->lst = l;
	c->fd = fd;
	if (sa != NULL && salen > 0 && (size_t)salen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)salen);
	len = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &len) != 0)
		memset(&c->local, 0, sizeof(c->local));
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->ev_read = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->ev_write = event_new(s->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->ev_timer = evtimer_new(s->base, conn_timer_cb, c);
	c->ev_free = event_new(s->base, -1, 0, conn_free_cb, c);
	if (c->in == NULL || c->out == NULL || c->ev_read == NULL || c->ev_write == NULL ||
	    c->ev_timer == NULL || c->ev_free == NULL) {
		if (c->in) evbuffer_free(c->in);
		if (c->out) evbuffer_free(c->out);
		if (c->ev_read) event_free(c->ev_read);
		if (c->ev_write) event_free(c->ev_write);
		if (c->ev_timer) event_free(c->ev_timer);
		if (c->ev_free) event_free(c->ev_free);
		free(c);
		evutil_closesocket(fd);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->st.http_accepted++;
	event_add(c->ev_read, NULL);
	conn_timer_arm(c, s->cfg.idle_timeout_ms);
	return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct http_listener *hl = arg;

	(void)conn_add(hl->srv, hl, fd, sa, salen > 0 ? (socklen_t)salen : 0);
}

int http_server_adopt(struct http_server *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (s == NULL || fd < 0)
		return -1;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		len = 0;
	return conn_add(s, NULL, fd, len ? (struct sockaddr *)&ss : NULL, len);
}

/* ------------------------------------------------------------------ public server API */

/* A listening socket on sa (IPv4 or IPv6; IPv6 is IPV6_V6ONLY), bound to interface ifname
 * unless NULL. -1 with errno set. */
static evutil_socket_t listen_socket(const struct sockaddr *sa, socklen_t salen, const char *ifname)
{
	int one = 1, kbuf = HTTP_KERNEL_BUF, e;
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto fail;
	/* Fixed kernel buffers, inherited by accepted connections: a peer that sends and never
	 * reads cannot make the kernel autotune them to megabytes either (LAN requests and
	 * answers are small; HTTP_KERNEL_BUF is plenty). Sockets bound to different devices
	 * may share address and port (Linux). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kbuf, sizeof(kbuf));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kbuf, sizeof(kbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    (ifname == NULL ||
	     setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) == 0) &&
	    bind(fd, sa, salen) == 0 && listen(fd, 32) == 0)
		return fd;
fail:
	e = errno;
	evutil_closesocket(fd);
	errno = e;
	return -1;
}

/* One listener (on LAN interface ifname, or on any when NULL) on sin's address and port,
 * or with v6 on [::]:that port; sin->sin_port is set to the port it got, so that further
 * ones share it. */
static int listener_add(struct http_server *s, struct sockaddr_in *sin, const char *ifname,
			bool v6)
{
	struct http_listener *l = &s->lsts[s->n_lsts];
	struct sockaddr_storage got;
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				     .sin6_port = sin->sin_port };
	socklen_t len = sizeof(got);
	evutil_socket_t fd;

	if (s->n_lsts >= HTTP_MAX_LISTENERS)
		return -1;
	memset(l, 0, sizeof(*l));
	l->srv = s;
	l->family = v6 ? AF_INET6 : AF_INET;
	if (ifname != NULL) {
		if (upnp_lan_if_lookup(&l->lif, ifname) != UPNP_OK) {
			upnp_log(&s->cfg.logger, LOG_ERR,
				 "http: LAN interface %s not found or without IPv4 address", ifname);
			return -1;
		}
		l->lan = true;
	}
	fd = v6 ? listen_socket((const struct sockaddr *)&sin6, sizeof(sin6), ifname)
		: listen_socket((const struct sockaddr *)sin, sizeof(*sin), ifname);
	if (fd < 0) {
		upnp_log(&s->cfg.logger, LOG_ERR, "http: cannot listen on %sport %u%s%s: %s",
			 v6 ? "IPv6 " : "", (unsigned)ntohs(sin->sin_port), ifname ? " of " : "",
			 ifname ? ifname : "", strerror(errno));
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&got, &len) != 0 || got.ss_family != l->family) {
		evutil_closesocket(fd);
		return -1;
	}
	l->lst = evconnlistener_new(s->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->lst == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	s->n_lsts++;
	sin->sin_port = v6 ? ((const struct sockaddr_in6 *)(const void *)&got)->sin6_port
			   : ((const struct sockaddr_in *)(const void *)&got)->sin_port;
	return 0;
}

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg)
{
	struct http_server *s;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (base == NULL || cfg == NULL || cfg->handler == NULL ||
	    cfg->n_lan_ifnames * (cfg->ipv6 ? 2 : 1) > HTTP_MAX_LISTENERS ||
	    (cfg->n_lan_ifnames > 0 && cfg->lan_ifnames == NULL))
		return NULL;
	if (cfg->bind_addr != NULL && inet_pton(AF_INET, cfg->bind_addr, &sin.sin_addr) != 1)
		return NULL;
	sin.sin_port = htons(cfg->port);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->base = base;
	s->cfg = *cfg;
	s->cfg.bind_addr = NULL; /* not kept */
	s->cfg.lan_ifnames = NULL;
	s->cfg.n_lan_ifnames = 0;
	if (s->cfg.max_connections == 0)
		s->cfg.max_connections = DEF_MAX_CONNECTIONS;
	if (s->cfg.max_header_bytes == 0)
		s->cfg.max_header_bytes = DEF_MAX_HEADER_BYTES;
	if (s->cfg.max_body_bytes == 0)
		s->cfg.max_body_bytes = DEF_MAX_BODY_BYTES;
	if (s->cfg.idle_timeout_ms == 0)
		s->cfg.idle_timeout_ms = DEF_IDLE_TIMEOUT_MS;
	if (s->cfg.max_held_bytes == 0)
		s->cfg.max_held_bytes = DEF_MAX_HELD_BYTES;
	/* A host's share, but always room for one largest request and its answer. */
	s->host_held_max = s->cfg.max_held_bytes / HTTP_HOST_SHARE;
	if (s->host_held_max < 2 * (s->cfg.max_header_bytes + s->cfg.max_body_bytes))
		s->host_held_max = 2 * (s->cfg.max_header_bytes + s->cfg.max_body_bytes);
	s->ev_resume = event_new(base, -1, 0, resume_cb, s);
	if (s->ev_resume == NULL)
		goto fail;
	s->server_header = strdup(cfg->server_header ? cfg->server_header : DEF_SERVER_HEADER);
	s->cfg.server_header = s->server_header;
	if (s->server_header == NULL)
		goto fail;
	http_parser_settings_init(&s->settings);
	s->settings.on_message_begin = on_message_begin;
	s->settings.on_url = on_url;
	s->settings.on_header_field = on_header_field;
	s->settings.on_header_value = on_header_value;
	s->settings.on_headers_complete = on_headers_complete;
	s->settings.on_body = on_body;
	s->settings.on_message_complete = on_message_complete;
	if (cfg->n_lan_ifnames == 0) {
		if (listener_add(s, &sin, NULL, false) != 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_lan_ifnames; i++)
		if (listener_add(s, &sin, cfg->lan_ifnames[i], false) != 0)
			goto fail;
	/* UDA 1.1 Annex A: the same port on IPv6, one listener per LAN interface too. */
	for (size_t i = 0; cfg->ipv6 && i < cfg->n_lan_ifnames; i++)
		if (listener_add(s, &sin, cfg->lan_ifnames[i], true) != 0)
			goto fail;
	s->port = ntohs(sin.sin_port);
	return s;
fail:
	http_server_free(s);
	return NULL;
}

void http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	while (s->conns != NULL) {
		struct http_conn *c = s->conns;

		conn_close(c); /* moves c to the dead list */
	}
	while (s->dead != NULL) {
		struct http_conn *c = s->dead;

		s->dead = c->next;
		conn_destroy(c); /* event_free also drops the pending ev_free activation */
	}
	if (s->ev_resume != NULL)
		event_free(s->ev_resume);
	for (size_t i = 0; i < s->n_lsts; i++)
		evconnlistener_free(s->lsts[i].lst);
	free(s->server_header);
	free(s);
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

size_t http_server_connections(const struct http_server *s)
{
	return s->n_conns;
}

void http_server_stats(const struct http_server *s, struct upnp_stats *out)
{
	out->http_accepted = s->st.http_accepted;
	out->http_refused_limit = s->st.http_refused_limit;
	out->http_refused_per_host = s->st.http_refused_per_host;
	out->http_refused_not_lan = s->st.http_refused_not_lan;
	out->http_bad_request = s->st.http_bad_request;
	out->http_header_too_big = s->st.http_header_too_big;
	out->http_body_too_big = s->st.http_body_too_big;
	out->http_timeout_request = s->st.http_timeout_request;
	out->http_timeout_idle = s->st.http_timeout_idle;
	out->http_throttled = s->st.http_throttled;
}

size_t http_server_held_bytes(const struct http_server *s)
{
	size_t n = 0;

	for (const struct http_conn *c = s->conns; c != NULL; c = c->next)
		n += conn_held(c);
	return n;
}

void http_exchange_respond(struct http_exchange *x, int status, const char *const *headers,
			   const char *content_type, const char *body, size_t body_len)
{
	struct http_conn *c;

	if (x == NULL)
		return;
	c = x->conn;
	if (c == NULL || c->dead) {
		/* The client left while we worked: nothing to send. */
		exchange_free(x);
		return;
	}
	if (x->ready) /* answered twice: a bug in the caller; keep the first answer */
		return;
	if (exchange_build(x, c->srv->server_header, status, headers, content_type, body,
			   body_len) != 0) {
		/* Out of memory: a bare 500 without body, or give up on the connection. */
		x->close_after = true;
		if (exchange_build(x, c->srv->server_header, 500, NULL, NULL, NULL, 0) != 0) {
			conn_close(c);
			exchange_free(x);
			return;
		}
	}
	if (c->q_head == x)
		conn_flush(c);
}

/* ------------------------------------------------------------------ client */

struct http_client {
	struct event *ev_io, *ev_timer;
	evutil_socket_t fd;
	struct evbuffer *out;
	char in[HTTP_CLIENT_MAX_STATUS];
	size_t in_len;
	bool connected;
	http_client_done *done;
	void *arg;
};

static void client_destroy(struct http_client *cl)
{
	event_free(cl->ev_io);
	event_free(cl->ev_timer);
	evutil_closesocket(cl->fd);
	evbuffer_free(cl->out);
	free(cl);
}

static void client_finish(struct http_client *cl, int status)
{
	http_client_done *done = cl->done;
	void *arg = cl->arg;

	client_destroy(cl);
	if (done != NULL)
		done(arg, status);
}

void http_client_cancel(struct http_client *cl)
{
	if (cl != NULL)
		client_destroy(cl);
}

/* "HTTP/1.x NNN ..." -> NNN, or -1 while incomplete, 0 when malformed. */
static int client_status(const char *buf, size_t len)
{
	const char *eol = memchr(buf, '\n', len);
	int st = 0;

	if (eol == NULL)
		return len >= HTTP_CLIENT_MAX_STATUS ? 0 : -1;
	if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return 0;
		st = st * 10 + (buf[i] - '0');
	}
	if (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
		return 0;
	return st >= 100 ? st : 0;
}

static void client_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *cl = arg;

	if (!cl->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0) {
			client_finish(cl, 0);
			return;
		}
		cl->connected = true;
	}
	if (evbuffer_get_length(cl->out) > 0) {
		struct evbuffer_iovec v;
		ssize_t n;

		if (evbuffer_peek(cl->out, -1, NULL, &v, 1) < 1)
			return;
		n = send(fd, v.iov_base, v.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			client_finish(cl, 0);
			return;
		}
		evbuffer_drain(cl->out, (size_t)n);
		if (evbuffer_get_length(cl->out) == 0) {
			/* Request sent: now wait for the status line only. */
			event_del(cl->ev_io);
			event_assign(cl->ev_io, event_get_base(cl->ev_io), fd, EV_READ | EV_PERSIST,
				     client_io_cb, cl);
			event_add(cl->ev_io, NULL);
		}
		return;
	}
	{
		ssize_t n = recv(fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);
		int st;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			client_finish(cl, 0);
			return;
		}
		if (n == 0) {
			client_finish(cl, 0);
			return;
		}
		cl->in_len += (size_t)n;
		st = client_status(cl->in, cl->in_len);
		if (st >= 0)
			client_finish(cl, st);
	}
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	client_finish(arg, 0);
}

struct http_client *http_client_send(struct event_base *base, const struct sockaddr *addr,
				     socklen_t addrlen, const char *method, const char *host_path,
				     const char *const *headers, const char *body,
				     size_t body_len, uint32_t timeout_ms,
				     http_client_done *done, void *arg)
{
	struct http_client *cl;
	const char *slash;
	struct timeval tv = ms_tv(timeout_ms ? timeout_ms : 5000);
	int rc = 0;

	if (base == NULL || addr == NULL || method == NULL || host_path == NULL)
		return NULL;
	slash = strchr(host_path, '/');
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return NULL;
	cl->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cl->out = evbuffer_new();
	if (cl->fd < 0 || cl->out == NULL)
		goto fail;
	rc |= evbuffer_add_printf(cl->out, "%s %s HTTP/1.1\r\nHOST: %.*s\r\n", method,
				  slash ? slash : "/",
				  (int)(slash ? (size_t)(slash - host_path) : strlen(host_path)),
				  host_path) < 0;
	for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		rc |= evbuffer_add_printf(cl->out, "%s: %s\r\n", headers[i], headers[i + 1]) < 0;
	rc |= evbuffer_add_printf(cl->out, "CONTENT-LENGTH: %zu\r\nConnection: close\r\n\r\n",
				  body_len) < 0;
	if (body_len > 0)
		rc |= evbuffer_add(cl->out, body, body_len);
	if (rc != 0)
		goto fail;
	if (connect(cl->fd, addr, addrlen) != 0 &&
	    errno != EINPROGRESS)
		goto fail;
	cl->done = done;
	cl->arg = arg;
	cl->ev_io = event_new(base, cl->fd, EV_WRITE | EV_PERSIST, client_io_cb, cl);
	cl->ev_timer = evtimer_new(base, client_timer_cb, cl);
	if (cl->ev_io == NULL || cl->ev_timer == NULL)
		goto fail;
	event_add(cl->ev_io, NULL);
	event_add(cl->ev_timer, &tv);
	return cl;
fail:
	if (cl->ev_io) event_free(cl->ev_io);
	if (cl->ev_timer) event_free(cl->ev_timer);
	if (cl->fd >= 0) evutil_closesocket(cl->fd);
	if (cl->out) evbuffer_free(cl->out);
	free(cl);
	return NULL;
}
