/*
 * test_gena_unit.c - gena.c on its own: its source is included here and the HTTP side
 * (http_exchange_respond, http_request_header, http_client_send, http_client_cancel) is
 * replaced by recorders,
 * so the test can look at every NOTIFY gena asks for and complete it at will.
 * Covers what the socket-level test cannot reach: CALLBACK/TIMEOUT parsing vectors,
 * coalescing of changes while a NOTIFY is in flight, SEQ wrap-around after 2^32-1, and
 * that gena_free cancels every NOTIFY still in flight (nothing left to leak at exit).
 */
#include "../../../upnp/gena.c"

#include <stdio.h>

/* ---- recorders standing in for http.c ---- */

struct http_exchange {
	int status;
	char sid[64], timeout[32];
};

void http_exchange_respond(struct http_exchange *x, int status, const char *const *headers,
			   const char *content_type, const char *body, size_t body_len)
{
	x->status = status;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2) {
		if (strcmp(headers[i], "SID") == 0)
			snprintf(x->sid, sizeof(x->sid), "%s", headers[i + 1]);
		if (strcmp(headers[i], "TIMEOUT") == 0)
			snprintf(x->timeout, sizeof(x->timeout), "%s", headers[i + 1]);
	}
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

struct http_client {
	int unused;
};

static struct {
	int calls, cancelled;
	char host_path[256], sid[64], seq[16], body[2048];
	struct sockaddr_storage addr; /* where the last NOTIFY went */
	http_client_done *done[8]; /* NOTIFYs in flight, oldest first */
	void *arg[8];
	struct http_client *cl[8];
	int n;
	bool fail;
} sent;

static void sent_remove(int i)
{
	free(sent.cl[i]);
	sent.n--;
	memmove(sent.done + i, sent.done + i + 1, (size_t)(sent.n - i) * sizeof(sent.done[0]));
	memmove(sent.arg + i, sent.arg + i + 1, (size_t)(sent.n - i) * sizeof(sent.arg[0]));
	memmove(sent.cl + i, sent.cl + i + 1, (size_t)(sent.n - i) * sizeof(sent.cl[0]));
}

void http_client_cancel(struct http_client *cl)
{
	for (int i = 0; cl != NULL && i < sent.n; i++)
		if (sent.cl[i] == cl) {
			sent.cancelled++;
			sent_remove(i);
			return;
		}
}

struct http_client *http_client_send(struct event_base *base, const struct sockaddr *addr,
				     socklen_t addrlen, const char *method, const char *host_path,
				     const char *const *headers, const char *body,
				     size_t body_len, uint32_t timeout_ms,
				     http_client_done *done, void *arg)
{
	if (sent.fail)
		return NULL;
	sent.calls++;
	memset(&sent.addr, 0, sizeof(sent.addr));
	if ((size_t)addrlen <= sizeof(sent.addr))
		memcpy(&sent.addr, addr, (size_t)addrlen);
	snprintf(sent.host_path, sizeof(sent.host_path), "%s", host_path);
	for (size_t i = 0; headers[i] != NULL; i += 2) {
		if (strcmp(headers[i], "SID") == 0)
			snprintf(sent.sid, sizeof(sent.sid), "%s", headers[i + 1]);
		if (strcmp(headers[i], "SEQ") == 0)
			snprintf(sent.seq, sizeof(sent.seq), "%s", headers[i + 1]);
	}
	snprintf(sent.body, sizeof(sent.body), "%.*s", (int)body_len, body);
	if (sent.n == 8)
		abort();
	sent.done[sent.n] = done;
	sent.arg[sent.n] = arg;
	sent.cl[sent.n] = calloc(1, sizeof(struct http_client));
	if (sent.cl[sent.n] == NULL)
		abort();
	return sent.cl[sent.n++];
}

/* Complete the oldest NOTIFY in flight with an HTTP status (0 = network failure). */
static void deliver(int status)
{
	http_client_done *d;
	void *a;

	if (sent.n == 0)
		return;
	d = sent.done[0];
	a = sent.arg[0];
	sent_remove(0);
	d(a, status);
}

/* ---- test plumbing ---- */

static int fails, checks;

static void check(bool ok, const char *what)
{
	checks++;
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		fails++;
}

static void run_loop_ms(struct event_base *base, int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static struct http_request mkreq(const char *method, const char *peer, const char *const *hv)
{
	struct http_request r;
	struct sockaddr_in *sin = (struct sockaddr_in *)&r.peer;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r.peer;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = "/evt";
	if (strchr(peer, ':') != NULL) { /* IPv6: "addr" or "addr%scope-number" */
		char a[INET6_ADDRSTRLEN];
		const char *pct = strchr(peer, '%');

		snprintf(a, sizeof(a), "%.*s", pct ? (int)(pct - peer) : (int)strlen(peer), peer);
		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, a, &sin6->sin6_addr);
		sin6->sin6_scope_id = pct ? (uint32_t)strtoul(pct + 1, NULL, 10) : 0;
	} else {
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, peer, &sin->sin_addr);
	}
	for (size_t i = 0; hv[i] != NULL && r.n_headers < HTTP_MAX_HEADERS; i += 2) {
		r.headers[r.n_headers].name = hv[i];
		r.headers[r.n_headers].value = hv[i + 1];
		r.n_headers++;
	}
	r.body = "";
	return r;
}

static void set1(struct gena *g, const char *name, const char *value)
{
	const char *n[] = { name, NULL }, *v[] = { value, NULL };

	gena_set_vars(g, 0, n, v);
}

static void test_callback_vectors(void)
{
	static const struct {
		const char *in, *host_path;
		unsigned port;
	} v[] = {
		{ "<http://10.0.0.2:5000/evt>", "10.0.0.2:5000/evt", 5000 },
		{ "<http://10.0.0.2/>", "10.0.0.2/", 80 },
		{ "<http://10.0.0.2:5000>", "10.0.0.2:5000/", 5000 },
		{ "<HTTP://10.0.0.2:1/x?y=1>", "10.0.0.2:1/x?y=1", 1 },
		{ "<ftp://10.0.0.2/><http://10.0.0.3:8/a>", "10.0.0.3:8/a", 8 },
		{ "<https://10.0.0.2/><http://10.0.0.4/b>", "10.0.0.4/b", 80 },
		{ "<http://router.lan/><http://10.0.0.5:9/c>", "10.0.0.5:9/c", 9 },
		{ "  <http://10.0.0.6:7/d>  ", "10.0.0.6:7/d", 7 },
		{ "http://10.0.0.2/", NULL, 0 },
		{ "<http://10.0.0.2:0/>", NULL, 0 },
		{ "<http://10.0.0.2:65536/>", NULL, 0 },
		{ "<http://10.0.0.2:12a/>", NULL, 0 },
		{ "<http://10.0.0.2:/>", NULL, 0 },
		{ "<http://10.0.0.2/a b>", NULL, 0 },
		{ "<http://10.0.0.2/a\tb>", NULL, 0 },
		{ "<http://:80/>", NULL, 0 },
		{ "<http://10.0.0.2/", NULL, 0 },
		{ "<http://999.0.0.2/>", NULL, 0 },
		{ "<>", NULL, 0 },
		{ "", NULL, 0 },
		/* IPv6 literals (UDA 1.1 Annex A, RFC 3986 §3.2.2) */
		{ "<http://[fd00::2]:5000/evt>", "[fd00::2]:5000/evt", 5000 },
		{ "<http://[fe80::2]/>", "[fe80::2]/", 80 },
		{ "<http://[2001:db8::7]:9>", "[2001:db8::7]:9/", 9 },
		{ "<http://[fd00::zz]/><http://[fd00::3]:8/a>", "[fd00::3]:8/a", 8 },
		{ "<http://[fe80::2%25eth0]:5000/>", NULL, 0 },  /* zone id: not ours to use */
		{ "<http://[fe80::2%eth0]:5000/>", NULL, 0 },
		{ "<http://[fd00::2:5000/>", NULL, 0 },
		{ "<http://[fd00::2]x/>", NULL, 0 },
		{ "<http://fd00::2/>", NULL, 0 },
		{ "<http://[]/>", NULL, 0 },
		{ "<http://[10.0.0.2]/>", NULL, 0 },
		{ "<http://[fd00::2]:0/>", NULL, 0 },
		{ "<http://[::ffff:10.0.0.2]/>", NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct sockaddr_storage a;
		char hp[GENA_URL_MAX], what[160];
		int rc = parse_callback(v[i].in, &a, hp, sizeof(hp));
		unsigned port = a.ss_family == AF_INET6
				? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
				: ntohs(((struct sockaddr_in *)&a)->sin_port);
		bool ok = v[i].host_path == NULL ? rc != 0
			  : rc == 0 && strcmp(hp, v[i].host_path) == 0 && port == v[i].port &&
			    (a.ss_family == AF_INET6) == (v[i].host_path[0] == '[');

		snprintf(what, sizeof(what), "CALLBACK %s", v[i].in);
		check(ok, what);
	}
}

static void test_timeout_vectors(void)
{
	static const struct {
		const char *in;
		uint32_t cap, want;
	} v[] = {
		{ "Second-1800", 1800, 1800 }, { "Second-300", 1800, 300 },
		{ "second-300", 1800, 300 },   { "Second-10", 1800, 60 },
		{ "Second-infinite", 1800, 1800 }, { "Second-999999999999", 1800, 1800 },
		{ "Second-", 1800, 1800 },     { "Second-12x", 1800, 1800 },
		{ "Minute-5", 1800, 1800 },    { NULL, 1800, 1800 },
		{ "Second-100", 2, 2 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char what[80];

		snprintf(what, sizeof(what), "TIMEOUT %s cap %u -> %u", v[i].in ? v[i].in : "(none)",
			 (unsigned)v[i].cap, (unsigned)v[i].want);
		check(parse_timeout(v[i].in, v[i].cap) == v[i].want, what);
	}
}

static void test_flow(void)
{
	struct event_base *base = event_base_new();
	struct gena_config gc = { .max_subscriptions = 2, .max_timeout_s = 600 };
	struct gena *g = gena_new(base, &gc);
	struct http_exchange x = { 0 };
	const char *sub_h[] = { "CALLBACK", "<http://10.0.0.2:5000/e>", "NT", "upnp:event", NULL };
	struct http_request r = mkreq("SUBSCRIBE", "10.0.0.2", sub_h);
	struct gena_sub *sub;
	char sid[64];

	set1(g, "ConnectionStatus", "Connected");
	set1(g, "PortMappingNumberOfEntries", "0");
	gena_handle(g, &x, &r, 0);
	check(x.status == 200 && strncmp(x.sid, "uuid:", 5) == 0, "subscribe -> 200 + SID");
	check(strcmp(x.timeout, "Second-600") == 0, "TIMEOUT capped at 600");
	snprintf(sid, sizeof(sid), "%s", x.sid);
	check(sent.calls == 0, "initial NOTIFY waits until the response is out");
	run_loop_ms(base, 60);
	check(sent.calls == 1 && strcmp(sent.seq, "0") == 0 && strcmp(sent.sid, sid) == 0,
	      "initial NOTIFY, SEQ 0");
	check(strstr(sent.body, "<ConnectionStatus>Connected</ConnectionStatus>") != NULL &&
	      strstr(sent.body, "<PortMappingNumberOfEntries>0</PortMappingNumberOfEntries>"),
	      "initial NOTIFY carries both variables");
	check(strcmp(sent.host_path, "10.0.0.2:5000/e") == 0, "sent to the CALLBACK URL");

	/* Two changes while the initial NOTIFY is in flight: one NOTIFY with both. */
	set1(g, "PortMappingNumberOfEntries", "1");
	set1(g, "ConnectionStatus", "A&B<C>\"'");
	check(sent.calls == 1, "nothing sent while a NOTIFY is in flight");
	deliver(200);
	check(sent.calls == 2 && strcmp(sent.seq, "1") == 0, "coalesced change NOTIFY, SEQ 1");
	check(strstr(sent.body, "<PortMappingNumberOfEntries>1</PortMappingNumberOfEntries>") &&
	      strstr(sent.body, "<ConnectionStatus>A&amp;B&lt;C&gt;&quot;&apos;</ConnectionStatus>"),
	      "both changes, escaped");
	deliver(200);
	set1(g, "PortMappingNumberOfEntries", "1");
	check(sent.calls == 2, "no NOTIFY for an unchanged value");

	/* SEQ wraps from 2^32-1 to 1 (UDA 1.1 §4.3.2). */
	sub = g->subs;
	sub->seq = UINT32_MAX;
	set1(g, "PortMappingNumberOfEntries", "2");
	check(strcmp(sent.seq, "4294967295") == 0, "SEQ 4294967295");
	deliver(200);
	set1(g, "PortMappingNumberOfEntries", "3");
	check(strcmp(sent.seq, "1") == 0, "then SEQ 1, never 0 again");
	deliver(200);

	/* Renewal, refusals. */
	{
		const char *h[] = { "SID", sid, "TIMEOUT", "Second-120", NULL };
		struct http_request rr = mkreq("SUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 200 && strcmp(y.sid, sid) == 0 &&
		      strcmp(y.timeout, "Second-120") == 0, "renewal");
		memset(&y, 0, sizeof(y));
		gena_handle(g, &y, &rr, 1);
		check(y.status == 412, "renewal at another service's URL -> 412");
	}
	{
		const char *h[] = { "CALLBACK", "<http://10.0.0.9:5000/e>", "NT", "upnp:event", NULL };
		struct http_request rr = mkreq("SUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 412, "callback to another host -> 412");
	}
	{
		struct http_request rr = mkreq("SUBSCRIBE", "10.0.0.3", (const char *const[]){
			"CALLBACK", "<http://10.0.0.3/>", "NT", "upnp:event", NULL });
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 200, "second subscriber accepted");
		memset(&y, 0, sizeof(y));
		gena_handle(g, &y, &rr, 0);
		check(y.status == 503, "third over max_subscriptions 2 -> 503");
		run_loop_ms(base, 60); /* its initial NOTIFY */
		deliver(200);
	}
	{
		struct http_request rr = mkreq("POST", "10.0.0.2", (const char *const[]){ NULL });
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 405, "POST at the event URL -> 405");
	}

	/* Failed deliveries: dropped after GENA_MAX_FAILURES in a row. */
	check(g->n_subs == 2, "two subscriptions");
	for (int i = 0; i < GENA_MAX_FAILURES; i++) {
		char v[8];

		snprintf(v, sizeof(v), "%d", 10 + i);
		set1(g, "PortMappingNumberOfEntries", v);
		/* two subscribers: fail the first's, succeed the second's */
		deliver(0);
	}
	check(g->n_subs <= 2, "subscriber count bounded");
	{
		const char *h[] = { "SID", sid, NULL };
		struct http_request rr = mkreq("UNSUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 200 || y.status == 412, "unsubscribe answered");
	}

	/* NOTIFYs in flight at gena_free (of a live subscription and of one already dropped)
	 * are cancelled and their subscriptions freed: nothing is left to complete later. */
	set1(g, "ConnectionStatus", "Disconnected");
	check(sent.n > 0, "a NOTIFY is in flight at gena_free");
	sent.cancelled = 0;
	gena_free(g);
	check(sent.n == 0 && sent.cancelled > 0, "gena_free cancelled every NOTIFY in flight");
	event_base_free(base);
}

static void test_drop_after_failures(void)
{
	struct event_base *base = event_base_new();
	struct gena *g = gena_new(base, NULL);
	struct http_exchange x = { 0 };
	struct http_request r = mkreq("SUBSCRIBE", "10.0.0.2", (const char *const[]){
		"CALLBACK", "<http://10.0.0.2:5000/e>", "NT", "upnp:event", NULL });

	memset(&sent, 0, sizeof(sent));
	set1(g, "X", "0");
	gena_handle(g, &x, &r, 0);
	run_loop_ms(base, 60);
	deliver(500);
	set1(g, "X", "1");
	deliver(0);
	check(g->n_subs == 1, "still subscribed after 2 failures");
	set1(g, "X", "2");
	deliver(503);
	check(g->n_subs == 0, "dropped after 3 failed deliveries in a row");
	{
		const char *h[] = { "SID", x.sid, NULL };
		struct http_request rr = mkreq("UNSUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 412, "its SID is unknown now");
	}
	/* Subscribe, UNSUBSCRIBE with SID + NT -> 400, then proper UNSUBSCRIBE. */
	memset(&x, 0, sizeof(x));
	gena_handle(g, &x, &r, 0);
	{
		const char *h[] = { "SID", x.sid, "NT", "upnp:event", NULL };
		struct http_request rr = mkreq("UNSUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 400, "UNSUBSCRIBE with SID and NT -> 400");
	}
	{
		const char *h[] = { "SID", x.sid, NULL };
		struct http_request rr = mkreq("UNSUBSCRIBE", "10.0.0.2", h);
		struct http_exchange y = { 0 };

		gena_handle(g, &y, &rr, 0);
		check(y.status == 200 && g->n_subs == 0, "UNSUBSCRIBE before the initial NOTIFY");
	}
	run_loop_ms(base, 60);
	gena_free(g);
	event_base_free(base);
}

/* IPv6 subscribers (UDA 1.1 Annex A): the callback must be the subscriber's own address;
 * a link-local one is reached on the subscriber's link (its scope id). */
static void test_ipv6(void)
{
	struct event_base *base = event_base_new();
	struct gena_config gc = { .max_subscriptions = 8, .max_timeout_s = 600 };
	struct gena *g = gena_new(base, &gc);
	static const struct {
		const char *peer, *cb;
		int status;
		const char *what;
	} v[] = {
		{ "fd00::2", "<http://[fd00::2]:5000/e>", 200, "ULA subscriber, own callback -> 200" },
		{ "fd00::2", "<http://[fd00::3]:5000/e>", 412, "callback to another IPv6 host -> 412" },
		{ "fd00::2", "<http://10.0.0.2:5000/e>", 412, "IPv6 subscriber, IPv4 callback -> 412" },
		{ "10.0.0.2", "<http://[fd00::2]:5000/e>", 412, "IPv4 subscriber, IPv6 callback -> 412" },
		{ "fd00::2", "<http://[::ffff:10.0.0.2]:5000/e>", 412, "v4-mapped callback -> 412" },
		{ "fe80::2%7", "<http://[fe80::2%257]:5000/e>", 412, "zone id in the callback -> 412" },
	};

	set1(g, "ConnectionStatus", "Connected");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *h[] = { "CALLBACK", v[i].cb, "NT", "upnp:event", NULL };
		struct http_request r = mkreq("SUBSCRIBE", v[i].peer, h);
		struct http_exchange x = { 0 };

		gena_handle(g, &x, &r, 0);
		check(x.status == v[i].status, v[i].what);
	}
	run_loop_ms(base, 60);
	while (sent.n > 0)
		deliver(200);
	{
		const char *h[] = { "CALLBACK", "<http://[fe80::2]:5000/e>", "NT", "upnp:event", NULL };
		struct http_request r = mkreq("SUBSCRIBE", "fe80::2%7", h);
		struct http_exchange x = { 0 };
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&sent.addr;
		struct in6_addr want;

		gena_handle(g, &x, &r, 0);
		check(x.status == 200, "link-local subscriber, own link-local callback -> 200");
		sent.calls = 0;
		run_loop_ms(base, 60);
		inet_pton(AF_INET6, "fe80::2", &want);
		check(sent.calls == 1 && a6->sin6_family == AF_INET6 && a6->sin6_scope_id == 7 &&
		      ntohs(a6->sin6_port) == 5000 &&
		      memcmp(&a6->sin6_addr, &want, sizeof(want)) == 0 &&
		      strcmp(sent.host_path, "[fe80::2]:5000/e") == 0,
		      "its NOTIFY goes to [fe80::2]:5000 on the subscriber's link (scope 7)");
		while (sent.n > 0)
			deliver(200);
	}
	gena_free(g);
	event_base_free(base);
}

int main(void)
{
	test_callback_vectors();
	test_timeout_vectors();
	test_flow();
	test_ipv6();
	test_drop_after_failures();
	printf("%d failed of %d\n", fails, checks);
	return fails != 0;
}
