/*
 * test_core_harness.h - drive the sans-I/O interworking core (iwf/core.h) with a fake clock,
 * a deterministic random source, captured UPnP completions and a scripted PCP server (the
 * "carrier"), with no socket anywhere. Shared by the tests/iwf/test_core_*.c executables;
 * each includes it once (everything here is static inline).
 *
 * The carrier is a small model of a PCP server (RFC 6887 §11.3): one mapping per internal
 * endpoint, keyed by (protocol, internal address, internal port), owned by its nonce; a
 * suggested free port is granted, a taken one is refused with CANNOT_PROVIDE_EXTERNAL under
 * PREFER_FAILURE and replaced by another otherwise; lifetime 0 deletes; mappings expire; the
 * Epoch grows with the clock and restarts from 0 when the server "reboots". Faults: silent
 * (requests vanish), lost answers (requests are applied, answers vanish), hold (answers wait
 * for srv_release), a forced result for the next N requests, another port despite
 * PREFER_FAILURE, FILTER refused, reserved ports.
 *
 * Every request the core's PCP engine sends is decoded and logged (h->log), whatever the
 * carrier does with it, so a test can count exactly what went on the wire.
 */
#ifndef IWFD_TEST_CORE_HARNESS_H
#define IWFD_TEST_CORE_HARNESS_H

#include "core.h"
#include "../testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define H_MAX_CALLS 1024
#define H_MAX_LOG 16384
#define H_MAX_CMAP 512
#define H_MAX_HELD 256
#define H_MAX_LIST 128
#define H_MAX_RESERVED 16
#define H_NONE (-1)
#define H_T0 1000000u            /* mono ms at harness start (0 would mean "never" for leases) */
#define H_WALL0 1767225600       /* 2026-01-01T00:00:00Z */

#define H_SERVER "198.51.100.1"
#define H_SOURCE "192.0.2.1"
#define H_EXT "203.0.113.5"
#define HOST_A "192.168.1.10"
#define HOST_B "192.168.1.11"
#define HOST_C "192.168.1.12"
#define REMOTE_X "198.51.100.77"

#define TCP UPNP_PROTO_TCP
#define UDP UPNP_PROTO_UDP

#define PROBE_INTERNAL_PORT 9    /* the core's external-address probe (no THIRD_PARTY) */

/* What the core answered to one UPnP call. */
struct h_answer {
	int n;                  /* completions (must end at exactly 1) */
	int code;               /* 0 = reply, else the UPnP error */
	uint64_t at;            /* mono ms of the first completion */
	unsigned runs_before;   /* iwf_core_run calls made before it */
	struct upnp_pm_entry pm;
	uint16_t reserved_port;
	char external_ip[64];
	char status[32];
	uint32_t uptime;
	size_t n_list;          /* GetListOfPortMappings: entries (copied to h->list) */
};

struct h_req {
	uint64_t at;
	struct pcp_msg m;
	int result;             /* result the carrier answered with; H_NONE: no answer (yet) */
	uint16_t granted_port;
};

struct h_cmap {
	bool used;
	uint8_t proto;
	struct in6_addr in_addr;
	uint16_t in_port;
	uint16_t ext_port;
	uint8_t nonce[PCP_NONCE_LEN];
	uint64_t expires;       /* mono ms */
	uint8_t n_filters;
};

enum h_kind { K_ANY, K_CREATE, K_DELETE };

struct h_srv {
	struct in6_addr addr, ext_addr;
	uint16_t port;
	uint32_t epoch_base;
	uint64_t epoch_t0;
	bool silent;            /* requests are never seen by the server */
	bool lose_answers;      /* requests are applied; their answers are lost */
	bool hold;              /* requests wait in held[] for srv_release() */
	bool reject_filter;     /* FILTER -> UNSUPP_OPTION */
	struct {
		int count;      /* requests still to answer with result */
		uint8_t result;
		uint16_t in_port; /* 0 = any */
		enum h_kind kind;
	} force;
	struct {
		int count;
		uint16_t in_port;
	} other_port;           /* SUCCESS with another port despite PREFER_FAILURE */
	uint32_t max_lifetime;  /* granted = min(requested, this) */
	uint32_t error_lifetime;
	struct {
		uint8_t proto;
		uint16_t port;
	} reserved[H_MAX_RESERVED];
	size_t n_reserved;
	uint16_t next_port;
	struct h_cmap maps[H_MAX_CMAP];
	struct pcp_msg held[H_MAX_HELD];
	size_t held_log[H_MAX_HELD];
	size_t n_held;
	unsigned input_rejects; /* answers pcp_client_input did not take (not an error per se) */
};

struct h {
	struct iwf_config cfg;
	struct iwf_env env;
	struct state_clock clock;
	struct state_table *table;
	bool own_table;
	struct iwf_nat *nat;
	struct iwf_core *core;
	char path[256], dir[128];  /* journal (durability tests), "" = memory table */
	const char *source;        /* the PCP client's source address (default H_SOURCE) */

	uint64_t now;
	int64_t wall_offset;
	uint64_t prng;
	bool force_u32;
	uint32_t forced_u32;
	bool verbose;

	char calls[H_MAX_CALLS];   /* call i is (struct upnp_call *)&calls[i] */
	struct h_answer ans[H_MAX_CALLS];
	int n_calls;
	struct upnp_pm_entry list[H_MAX_LIST];
	int foreign_answers;       /* completions of pointers that are no call of ours */

	unsigned wakeups, runs;
	bool wake;
	unsigned stuck_ms;         /* milliseconds in which the core never settled */
	uint64_t max_step;

	unsigned n_set_state;
	char st_status[32], st_ext[64];
	uint32_t st_entries, st_sysupd;

	struct h_req *log;
	size_t n_log;
	struct h_srv srv;
};

/* ------------------------------------------------------------------ env */

static inline uint64_t h_env_mono(void *arg)
{
	return ((struct h *)arg)->now;
}

static inline int64_t h_env_wall(void *arg)
{
	struct h *h = arg;
	return H_WALL0 + (int64_t)(h->now / 1000) + h->wall_offset;
}

static inline void h_env_random(void *arg, void *buf, size_t len)
{
	struct h *h = arg;
	if (len == sizeof(uint32_t) && h->force_u32) {
		h->force_u32 = false;
		memcpy(buf, &h->forced_u32, sizeof(uint32_t));
		return;
	}
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		h->prng ^= h->prng << 13;
		h->prng ^= h->prng >> 7;
		h->prng ^= h->prng << 17;
		p[i] = (uint8_t)(h->prng >> 24);
	}
}

static inline int h_call_index(struct h *h, struct upnp_call *call)
{
	char *p = (char *)(void *)call;
	if (p < h->calls || p >= h->calls + H_MAX_CALLS)
		return -1;
	return (int)(p - h->calls);
}

static inline struct h_answer *h_answer_slot(struct h *h, struct upnp_call *call)
{
	int i = h_call_index(h, call);
	if (i < 0 || i >= h->n_calls) {
		h->foreign_answers++;
		return NULL;
	}
	struct h_answer *a = &h->ans[i];
	if (a->n++ == 0) {
		a->at = h->now;
		a->runs_before = h->runs;
		return a;
	}
	fprintf(stderr, "call %d completed %d times\n", i, a->n);
	return NULL;
}

static inline void h_env_reply(void *arg, struct upnp_call *call, const struct upnp_reply *r)
{
	struct h *h = arg;
	struct h_answer *a = h_answer_slot(h, call);
	if (!a)
		return;
	a->code = 0;
	a->pm = r->pm;
	a->reserved_port = r->reserved_port;
	snprintf(a->external_ip, sizeof(a->external_ip), "%s", r->external_ip ? r->external_ip : "");
	snprintf(a->status, sizeof(a->status), "%s", r->connection_status ? r->connection_status : "");
	a->uptime = r->uptime;
	a->n_list = r->n_list;
	for (size_t i = 0; i < r->n_list && i < H_MAX_LIST; i++)
		h->list[i] = r->list[i];
}

static inline void h_env_error(void *arg, struct upnp_call *call, enum upnp_error code)
{
	struct h *h = arg;
	struct h_answer *a = h_answer_slot(h, call);
	if (a)
		a->code = (int)code;
}

static inline void h_env_set_state(void *arg, const struct upnp_state *st)
{
	struct h *h = arg;
	h->n_set_state++;
	snprintf(h->st_status, sizeof(h->st_status), "%s", st->connection_status ? st->connection_status : "");
	snprintf(h->st_ext, sizeof(h->st_ext), "%s", st->external_ip ? st->external_ip : "");
	h->st_entries = st->port_mapping_number_of_entries;
	h->st_sysupd = st->system_update_id;
}

static inline void h_env_wakeup(void *arg)
{
	struct h *h = arg;
	h->wakeups++;
	h->wake = true;
}

__attribute__((format(printf, 3, 0)))
static inline void h_env_log(void *arg, enum iwf_log_level level, const char *fmt, va_list ap)
{
	struct h *h = arg;
	if (!h->verbose)
		return;
	fprintf(stderr, "  [%8.3f s] core %d: ", (double)(h->now - H_T0) / 1000.0, (int)level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ addresses */

static inline struct in6_addr h_ip(const char *text)
{
	struct in6_addr a;
	memset(&a, 0, sizeof(a));
	if (!pcp_addr_parse(&a, text)) {
		fprintf(stderr, "bad address in test: %s\n", text);
		abort();
	}
	return a;
}

static inline bool h_ip_eq(const struct in6_addr *a, const char *text)
{
	struct in6_addr b = h_ip(text);
	return memcmp(a, &b, sizeof(b)) == 0;
}

/* ------------------------------------------------------------------ setup */

static inline void h_config(struct iwf_config *cfg)
{
	iwf_config_init(cfg);
	cfg->pcp_service_wait_s = 0; /* tests of §5.10 set it */
	cfg->log_level = IWF_LOG_DEBUG;
}

static inline bool h_verbose(void)
{
	const char *v = getenv("IWF_TEST_VERBOSE");
	return v && *v && strcmp(v, "0") != 0;
}

/* A harness with a memory table (or, with journal = true, a journal in a temp directory),
 * no core yet: tests may put records in h->table first (records "made before
 * iwf_core_new"). */
static inline struct h *h_alloc(const struct iwf_config *cfg, bool journal)
{
	struct h *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	h->log = calloc(H_MAX_LOG, sizeof(*h->log));
	if (!h->log)
		abort();
	h->cfg = *cfg;
	h->now = H_T0;
	h->prng = 0x9e3779b97f4a7c15ull;
	h->verbose = h_verbose();
	h->max_step = 1000;
	h->env = (struct iwf_env){
		.mono_ms = h_env_mono,
		.wall_s = h_env_wall,
		.random = h_env_random,
		.reply = h_env_reply,
		.error = h_env_error,
		.set_state = h_env_set_state,
		.wakeup = h_env_wakeup,
		.log = h_env_log,
		.arg = h,
	};
	h->clock = (struct state_clock){.mono_ms = h_env_mono, .wall_s = h_env_wall, .arg = h};
	h->table = state_table_new(&h->clock);
	CHECK(h->table != NULL);
	h->own_table = true;
	if (journal) {
		const char *tmp = getenv("TMPDIR");
		snprintf(h->dir, sizeof(h->dir), "%s/iwf_core_XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(h->dir)) {
			perror("mkdtemp");
			abort();
		}
		snprintf(h->path, sizeof(h->path), "%s/state.journal", h->dir);
		char detail[256] = "";
		enum state_err e = state_table_open(h->table, h->path, NULL, detail, sizeof(detail));
		if (e != STATE_OK)
			fprintf(stderr, "state_table_open: %s %s\n", state_err_name(e), detail);
		CHECK_EQ_INT(e, STATE_OK);
	}
	char detail[256] = "";
	h->nat = iwf_nat_new("none", "", detail, sizeof(detail));
	CHECK(h->nat != NULL);

	struct h_srv *s = &h->srv;
	s->addr = h_ip(H_SERVER);
	s->port = PCP_SERVER_PORT;
	s->ext_addr = h_ip(H_EXT);
	s->epoch_base = 100000;
	s->epoch_t0 = h->now;
	s->max_lifetime = UINT32_MAX;
	s->error_lifetime = 30;
	s->next_port = 40000;
	return h;
}

static inline struct pcp_client *h_pcp(struct h *h)
{
	return iwf_core_pcp(h->core);
}

/* Create the core on h->table and point its engine at the fake server. */
static inline void h_core_new(struct h *h)
{
	h->core = iwf_core_new(&h->cfg, &h->env, h->table, h->nat);
	CHECK(h->core != NULL);
	if (!h->core)
		abort();
	struct in6_addr src = h_ip(h->source ? h->source : H_SOURCE);
	pcp_client_set_source(h_pcp(h), &src);
	pcp_client_set_server(h_pcp(h), &h->srv.addr, h->srv.port, h->now);
}

static inline void h_run(struct h *h, uint64_t ms);

/* iwf_core_start with RAND(0, PCP_SERVICE_WAIT) decided by `rand_u32` (the core's one
 * 4-byte random draw at start). */
static inline void h_start_with(struct h *h, uint32_t rand_u32)
{
	h->force_u32 = true;
	h->forced_u32 = rand_u32;
	iwf_core_start(h->core);
	h->force_u32 = false;
}

/* Everything a plain test needs: core, start (no PCP_SERVICE_WAIT unless cfg says), and
 * one second of running so the carrier is known and the external address learnt. */
static inline struct h *h_new(const struct iwf_config *cfg)
{
	struct h *h = h_alloc(cfg, false);
	h_core_new(h);
	h_start_with(h, 0);
	h_run(h, 1000);
	return h;
}

/* Simulate a process restart: free the core (pending calls are answered 501), and - for a
 * journal - close and reopen the table from disk; then a new core on it. Not started. */
static inline void h_restart(struct h *h)
{
	iwf_core_free(h->core);
	h->core = NULL;
	if (h->path[0]) {
		state_table_free(h->table);
		h->table = state_table_new(&h->clock);
		char detail[256] = "";
		struct state_open_report rep;
		enum state_err e = state_table_open(h->table, h->path, &rep, detail, sizeof(detail));
		if (e != STATE_OK)
			fprintf(stderr, "state_table_open (restart): %s %s\n", state_err_name(e), detail);
		CHECK_EQ_INT(e, STATE_OK);
	}
	h_core_new(h);
}

static inline void h_free(struct h *h)
{
	if (!h)
		return;
	iwf_core_free(h->core);
	for (int i = 0; i < h->n_calls; i++) {
		if (h->ans[i].n != 1)
			fprintf(stderr, "call %d completed %d times (want exactly 1)\n", i, h->ans[i].n);
		CHECK_EQ_INT(h->ans[i].n, 1);
	}
	CHECK_EQ_INT(h->foreign_answers, 0);
	if (h->own_table)
		state_table_free(h->table);
	iwf_nat_free(h->nat);
	if (h->path[0]) {
		DIR *d = opendir(h->dir);
		for (struct dirent *de; d && (de = readdir(d));) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", h->dir, de->d_name);
			unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(h->dir);
	}
	free(h->log);
	free(h);
}

/* ------------------------------------------------------------------ the carrier */

static inline uint32_t srv_epoch(const struct h *h)
{
	return h->srv.epoch_base + (uint32_t)((h->now - h->srv.epoch_t0) / 1000);
}

/* The server reboots: its table is gone and its Epoch starts again from 0 (RFC 6887 §8.5). */
static inline void srv_restart(struct h *h)
{
	memset(h->srv.maps, 0, sizeof(h->srv.maps));
	h->srv.epoch_base = 0;
	h->srv.epoch_t0 = h->now;
}

static inline void srv_expire(struct h *h)
{
	for (size_t i = 0; i < H_MAX_CMAP; i++)
		if (h->srv.maps[i].used && h->srv.maps[i].expires <= h->now)
			h->srv.maps[i].used = false;
}

static inline void srv_reserve(struct h *h, uint8_t proto, uint16_t port)
{
	if (h->srv.n_reserved < H_MAX_RESERVED) {
		h->srv.reserved[h->srv.n_reserved].proto = proto;
		h->srv.reserved[h->srv.n_reserved].port = port;
		h->srv.n_reserved++;
	}
}

static inline bool srv_port_taken(struct h *h, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < h->srv.n_reserved; i++)
		if (h->srv.reserved[i].proto == proto && h->srv.reserved[i].port == port)
			return true;
	for (size_t i = 0; i < H_MAX_CMAP; i++)
		if (h->srv.maps[i].used && h->srv.maps[i].proto == proto && h->srv.maps[i].ext_port == port)
			return true;
	return false;
}

static inline struct h_cmap *srv_find(struct h *h, uint8_t proto, const struct in6_addr *ia, uint16_t in_port)
{
	for (size_t i = 0; i < H_MAX_CMAP; i++) {
		struct h_cmap *m = &h->srv.maps[i];
		if (m->used && m->proto == proto && m->in_port == in_port && memcmp(&m->in_addr, ia, sizeof(*ia)) == 0)
			return m;
	}
	return NULL;
}

/* The carrier's mapping for a LAN endpoint (NULL when none). */
static inline struct h_cmap *srv_map(struct h *h, uint8_t proto, const char *client, uint16_t in_port)
{
	struct in6_addr ia = h_ip(client);
	srv_expire(h);
	return srv_find(h, proto, &ia, in_port);
}

/* Mappings the carrier holds for LAN hosts (the probe, for the router itself, excluded). */
static inline size_t srv_count(struct h *h)
{
	srv_expire(h);
	size_t n = 0;
	struct in6_addr src = h_ip(h->source ? h->source : H_SOURCE);
	for (size_t i = 0; i < H_MAX_CMAP; i++)
		n += h->srv.maps[i].used && memcmp(&h->srv.maps[i].in_addr, &src, sizeof(src)) != 0;
	return n;
}

/* Put a mapping in the carrier's table directly (it kept one from before a restart). */
static inline void srv_put(struct h *h, uint8_t proto, const char *client, uint16_t in_port, uint16_t ext_port,
			   const uint8_t nonce[PCP_NONCE_LEN], uint32_t lifetime)
{
	for (size_t i = 0; i < H_MAX_CMAP; i++) {
		struct h_cmap *m = &h->srv.maps[i];
		if (m->used)
			continue;
		memset(m, 0, sizeof(*m));
		m->used = true;
		m->proto = proto;
		m->in_addr = h_ip(client);
		m->in_port = in_port;
		m->ext_port = ext_port;
		memcpy(m->nonce, nonce, PCP_NONCE_LEN);
		m->expires = h->now + (uint64_t)lifetime * 1000;
		return;
	}
}

static inline uint16_t srv_pick(struct h *h, uint8_t proto)
{
	for (unsigned k = 0; k < 20000; k++) {
		uint16_t p = h->srv.next_port++;
		if (h->srv.next_port < 40000)
			h->srv.next_port = 40000;
		if (!srv_port_taken(h, proto, p))
			return p;
	}
	return 0;
}

static inline bool srv_force_matches(const struct h *h, const struct pcp_msg *q)
{
	if (h->srv.force.count <= 0)
		return false;
	if (h->srv.force.in_port && h->srv.force.in_port != q->internal_port)
		return false;
	if (h->srv.force.kind == K_CREATE && q->lifetime == 0)
		return false;
	if (h->srv.force.kind == K_DELETE && q->lifetime != 0)
		return false;
	return q->opcode == PCP_OPCODE_MAP;
}

/* Apply request q to the carrier's table; the answer goes to *r. */
static inline void srv_process(struct h *h, const struct pcp_msg *q, struct pcp_msg *r)
{
	*r = *q;
	r->response = true;
	r->epoch = srv_epoch(h);
	memset(&r->client_addr, 0, sizeof(r->client_addr));
	r->prefer_failure = false;
	r->has_description = false;
	r->result = PCP_RESULT_SUCCESS;
	srv_expire(h);
	struct in6_addr ia = q->has_third_party ? q->third_party : q->client_addr;
	if (srv_force_matches(h, q)) {
		h->srv.force.count--;
		r->result = h->srv.force.result;
		r->lifetime = h->srv.error_lifetime;
		return;
	}
	if (h->srv.reject_filter && q->n_filters) {
		r->result = PCP_RESULT_UNSUPP_OPTION;
		r->lifetime = h->srv.error_lifetime;
		return;
	}
	struct h_cmap *m = srv_find(h, q->protocol, &ia, q->internal_port);
	if (m && memcmp(m->nonce, q->nonce, PCP_NONCE_LEN) != 0) {
		r->result = PCP_RESULT_NOT_AUTHORIZED; /* RFC 6887 §11.3: another nonce owns it */
		r->lifetime = h->srv.error_lifetime;
		return;
	}
	if (q->lifetime == 0) {
		if (m) {
			r->external_port = m->ext_port;
			m->used = false;
		}
		r->lifetime = 0;
		r->external_addr = h->srv.ext_addr;
		return;
	}
	uint32_t granted = q->lifetime < h->srv.max_lifetime ? q->lifetime : h->srv.max_lifetime;
	if (m) {
		m->expires = h->now + (uint64_t)granted * 1000;
		r->external_port = m->ext_port;
		r->external_addr = h->srv.ext_addr;
		r->lifetime = granted;
		return;
	}
	uint16_t want = q->external_port;
	bool other = h->srv.other_port.count > 0 &&
		     (!h->srv.other_port.in_port || h->srv.other_port.in_port == q->internal_port);
	bool taken = want == 0 || srv_port_taken(h, q->protocol, want);
	if (other) {
		h->srv.other_port.count--;
		taken = true;
	} else if (taken && want && q->prefer_failure) {
		r->result = PCP_RESULT_CANNOT_PROVIDE_EXTERNAL;
		r->lifetime = h->srv.error_lifetime;
		return;
	}
	uint16_t port = taken ? srv_pick(h, q->protocol) : want;
	if (!port) {
		r->result = PCP_RESULT_NO_RESOURCES;
		r->lifetime = h->srv.error_lifetime;
		return;
	}
	for (size_t i = 0; i < H_MAX_CMAP; i++) {
		if (h->srv.maps[i].used)
			continue;
		m = &h->srv.maps[i];
		memset(m, 0, sizeof(*m));
		m->used = true;
		m->proto = q->protocol;
		m->in_addr = ia;
		m->in_port = q->internal_port;
		m->ext_port = port;
		memcpy(m->nonce, q->nonce, PCP_NONCE_LEN);
		m->expires = h->now + (uint64_t)granted * 1000;
		m->n_filters = q->n_filters;
		break;
	}
	r->external_port = port;
	r->external_addr = h->srv.ext_addr;
	r->lifetime = granted;
}

static inline void srv_send(struct h *h, const struct pcp_msg *r)
{
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	enum pcp_err e = pcp_msg_encode(r, buf, sizeof(buf), &len);
	CHECK_EQ_INT(e, PCP_OK);
	if (e != PCP_OK)
		return;
	if (pcp_client_input(h_pcp(h), buf, len, &h->srv.addr, h->srv.port, h->now) != PCP_OK)
		h->srv.input_rejects++;
}

/* Process request q (log entry li) and answer it unless answers are being lost. */
static inline void srv_handle(struct h *h, const struct pcp_msg *q, size_t li)
{
	struct pcp_msg r;
	srv_process(h, q, &r);
	if (li < h->n_log) {
		h->log[li].result = r.result;
		h->log[li].granted_port = r.external_port;
	}
	if (!h->srv.lose_answers)
		srv_send(h, &r);
}

/* Answer the held requests (in arrival order, or the last first). */
static inline void srv_release(struct h *h, bool reverse)
{
	size_t n = h->srv.n_held;
	struct pcp_msg *q = malloc((n ? n : 1) * sizeof(*q));
	size_t *li = malloc((n ? n : 1) * sizeof(*li));
	if (!q || !li)
		abort();
	memcpy(q, h->srv.held, n * sizeof(*q));
	memcpy(li, h->srv.held_log, n * sizeof(*li));
	h->srv.n_held = 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		srv_handle(h, &q[i], li[i]);
	}
	free(q);
	free(li);
}

/* Answer only the held requests for internal port in_port (the others stay held). */
static inline void srv_release_port(struct h *h, uint16_t in_port)
{
	size_t k = 0;
	for (size_t i = 0; i < h->srv.n_held; i++) {
		if (h->srv.held[i].internal_port == in_port) {
			struct pcp_msg q = h->srv.held[i];
			srv_handle(h, &q, h->srv.held_log[i]);
			continue;
		}
		h->srv.held[k] = h->srv.held[i];
		h->srv.held_log[k] = h->srv.held_log[i];
		k++;
	}
	h->srv.n_held = k;
}

/* An ANNOUNCE from the server (RFC 6887 §14.1.3), with its current Epoch. */
static inline void srv_announce(struct h *h)
{
	struct pcp_msg r;
	memset(&r, 0, sizeof(r));
	r.version = PCP_VERSION;
	r.response = true;
	r.opcode = PCP_OPCODE_ANNOUNCE;
	r.epoch = srv_epoch(h);
	srv_send(h, &r);
}

/* ------------------------------------------------------------------ the wire */

static inline bool h_is_probe(const struct pcp_msg *m)
{
	return m->internal_port == PROBE_INTERNAL_PORT && !m->has_third_party;
}

/* Drain the engine's output: log every request, let the carrier handle it. Returns the
 * number of packets sent. */
static inline size_t h_pump(struct h *h)
{
	if (!h->core)
		return 0;
	uint8_t buf[PCP_MAX_PACKET];
	size_t len, n = 0;
	while ((len = pcp_client_output(h_pcp(h), buf, sizeof(buf), h->now)) > 0) {
		struct pcp_msg m;
		memset(&m, 0, sizeof(m));
		enum pcp_err e = pcp_msg_decode(buf, len, &m);
		CHECK_EQ_INT(e, PCP_OK);
		CHECK(!m.response);
		n++;
		size_t li = h->n_log;
		if (h->n_log < H_MAX_LOG) {
			h->log[h->n_log].at = h->now;
			h->log[h->n_log].m = m;
			h->log[h->n_log].result = H_NONE;
			h->n_log++;
		}
		if (h->verbose) {
			char a[INET6_ADDRSTRLEN] = "";
			if (m.has_third_party)
				pcp_addr_format(&m.third_party, a, sizeof(a));
			fprintf(stderr, "  [%8.3f s] wire: MAP proto %u int %s:%u ext %u lifetime %u nonce %02x%02x%s%s\n",
				(double)(h->now - H_T0) / 1000.0, m.protocol, a, m.internal_port, m.external_port,
				m.lifetime, m.nonce[0], m.nonce[1], m.prefer_failure ? " PREFER_FAILURE" : "",
				m.n_filters ? " FILTER" : "");
		}
		if (e != PCP_OK || h->srv.silent)
			continue;
		if (h->srv.hold) {
			if (h->srv.n_held < H_MAX_HELD) {
				h->srv.held[h->srv.n_held] = m;
				h->srv.held_log[h->srv.n_held] = li;
				h->srv.n_held++;
			}
			continue;
		}
		srv_handle(h, &m, li);
	}
	return n;
}

/* Advance the clock by ms: the engine's output is drained at every step, iwf_core_run() is
 * called whenever the core asked for a wake-up or its deadline is due (as daemon.c does). */
static inline void h_run(struct h *h, uint64_t ms)
{
	uint64_t end = h->now + ms;
	for (;;) {
		int guard = 0;
		for (; guard < 1000; guard++) {
			bool did = h_pump(h) > 0;
			if (h->core && (h->wake || iwf_core_next_deadline(h->core) <= h->now)) {
				h->wake = false;
				h->runs++;
				iwf_core_run(h->core);
				did = true;
			}
			if (!did)
				break;
		}
		if (guard == 1000 && ++h->stuck_ms > 1000) {
			/* The core keeps asking to run (or keeps a deadline in the past) without
			 * time passing: a busy loop in a real event loop. Fail instead of hanging. */
			fprintf(stderr, "core busy at %.3f s: wake-up or deadline never satisfied\n",
				(double)(h->now - H_T0) / 1000.0);
			CHECK(!"core busy-loops");
			h->now = end;
			break;
		}
		if (h->now >= end)
			break;
		uint64_t next = end;
		if (h->core) {
			uint64_t d = iwf_core_next_deadline(h->core);
			if (d < next)
				next = d;
			d = pcp_client_next_deadline(h_pcp(h));
			if (d < next)
				next = d;
		}
		if (next > h->now + h->max_step)
			next = h->now + h->max_step;
		if (next <= h->now)
			next = h->now + 1;
		h->now = next;
	}
}

/* Only iwf_core_run(), no time passing, no PCP. */
static inline void h_core_run(struct h *h)
{
	h->wake = false;
	h->runs++;
	iwf_core_run(h->core);
}

/* Log position (for "what was sent since"). */
static inline size_t h_mark(const struct h *h)
{
	return h->n_log;
}

/* Requests for LAN mappings (the probe excluded) sent since mark. */
static inline size_t h_sent(const struct h *h, size_t since)
{
	size_t n = 0;
	for (size_t i = since; i < h->n_log; i++)
		n += !h_is_probe(&h->log[i].m);
	return n;
}

/* Every request (the probe included) since mark. */
static inline size_t h_sent_all(const struct h *h, size_t since)
{
	return h->n_log - since;
}

enum h_life { L_ANY, L_CREATE, L_DELETE };

/* The first request since mark for internal port in_port (0 = any) of the given kind. */
static inline const struct pcp_msg *h_req(const struct h *h, size_t since, uint16_t in_port, enum h_life kind)
{
	for (size_t i = since; i < h->n_log; i++) {
		const struct pcp_msg *m = &h->log[i].m;
		if (h_is_probe(m) || (in_port && m->internal_port != in_port))
			continue;
		if ((kind == L_CREATE && m->lifetime == 0) || (kind == L_DELETE && m->lifetime != 0))
			continue;
		return m;
	}
	return NULL;
}

static inline size_t h_count_req(const struct h *h, size_t since, uint16_t in_port, enum h_life kind)
{
	size_t n = 0;
	for (size_t i = since; i < h->n_log; i++) {
		const struct pcp_msg *m = &h->log[i].m;
		if (h_is_probe(m) || (in_port && m->internal_port != in_port))
			continue;
		if ((kind == L_CREATE && m->lifetime == 0) || (kind == L_DELETE && m->lifetime != 0))
			continue;
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ UPnP calls */

static inline struct upnp_args h_args(enum upnp_proto proto, uint16_t ext, const char *client, uint16_t in_port,
				      uint32_t lease)
{
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	a.service = UPNP_SVC_WANIPCONN;
	a.pm.protocol = proto;
	a.pm.external_port = ext;
	a.pm.internal_port = in_port;
	snprintf(a.pm.internal_client, sizeof(a.pm.internal_client), "%s", client ? client : "");
	a.pm.enabled = true;
	snprintf(a.pm.description, sizeof(a.pm.description), "test %u", ext);
	a.pm.lease_duration = lease;
	return a;
}

/* Issue one action from LAN host `from`; returns the call's index (answer in h->ans[i]). */
static inline int h_act(struct h *h, enum upnp_action action, const struct upnp_args *args, const char *from)
{
	if (h->n_calls >= H_MAX_CALLS) {
		fprintf(stderr, "too many calls\n");
		abort();
	}
	int i = h->n_calls++;
	memset(&h->ans[i], 0, sizeof(h->ans[i]));
	/* an IPv4 caller arrives as sockaddr_in, an IPv6 one (mode nat64) as sockaddr_in6 */
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(49152);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(49152);
	const struct sockaddr *sa = (const struct sockaddr *)&sin;
	if (strchr(from, ':')) {
		if (inet_pton(AF_INET6, from, &sin6.sin6_addr) != 1)
			abort();
		sa = (const struct sockaddr *)&sin6;
	} else if (inet_pton(AF_INET, from, &sin.sin_addr) != 1) {
		abort();
	}
	struct upnp_args copy = *args;
	iwf_core_action(h->core, (struct upnp_call *)(void *)&h->calls[i], action, &copy, sa);
	return i;
}

/* H_NONE while unanswered, else 0 or the UPnP error. */
static inline int h_code(const struct h *h, int i)
{
	return h->ans[i].n ? h->ans[i].code : H_NONE;
}

/* Run (at most max_ms) until call i is answered; its code (H_NONE: still unanswered). */
static inline int h_wait(struct h *h, int i, uint64_t max_ms)
{
	for (uint64_t t = 0; h_code(h, i) == H_NONE && t < max_ms; t += 10)
		h_run(h, 10);
	return h_code(h, i);
}

static inline int h_add_lease(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext, const char *client,
			      uint16_t in_port, uint32_t lease)
{
	struct upnp_args a = h_args(proto, ext, client, in_port, lease);
	return h_wait(h, h_act(h, UPNP_ACT_ADD_PORT_MAPPING, &a, from), 30000);
}

/* AddPortMapping from `from` for itself, lease 3600, answered (or 30 s); the code. */
static inline int h_add(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext, uint16_t in_port)
{
	return h_add_lease(h, from, proto, ext, from, in_port, 3600);
}

/* AddAnyPortMapping; *port = NewReservedPort. */
static inline int h_add_any(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext, uint16_t in_port,
			    uint16_t *port)
{
	struct upnp_args a = h_args(proto, ext, from, in_port, 3600);
	int i = h_act(h, UPNP_ACT_ADD_ANY_PORT_MAPPING, &a, from);
	int code = h_wait(h, i, 30000);
	if (port)
		*port = code == 0 ? h->ans[i].reserved_port : 0;
	return code;
}

static inline int h_delete(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext)
{
	struct upnp_args a = h_args(proto, ext, NULL, 0, 0);
	return h_wait(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING, &a, from), 30000);
}

/* A read: must be answered inside iwf_core_action (no run, no PCP). The code, entry in *e. */
static inline int h_get_specific(struct h *h, const char *from, enum upnp_proto proto, uint16_t ext,
				 struct upnp_pm_entry *e)
{
	struct upnp_args a = h_args(proto, ext, NULL, 0, 0);
	int i = h_act(h, UPNP_ACT_GET_SPECIFIC_PORT_MAPPING_ENTRY, &a, from);
	CHECK(h->ans[i].n == 1); /* answered at once */
	if (e)
		*e = h->ans[i].pm;
	return h_code(h, i);
}

static inline int h_get_generic(struct h *h, uint16_t index, struct upnp_pm_entry *e)
{
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	a.index = index;
	int i = h_act(h, UPNP_ACT_GET_GENERIC_PORT_MAPPING_ENTRY, &a, HOST_A);
	CHECK(h->ans[i].n == 1); /* answered at once */
	if (e)
		*e = h->ans[i].pm;
	return h_code(h, i);
}

/* GetListOfPortMappings (IGD:2): the code; entries in h->list[0..*n). Answered at once. */
static inline int h_get_list(struct h *h, const char *from, enum upnp_proto proto, uint16_t lo, uint16_t hi,
			     bool manage, size_t *n)
{
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	a.pm.protocol = proto;
	a.start_port = lo;
	a.end_port = hi;
	a.manage = manage;
	int i = h_act(h, UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS, &a, from);
	CHECK(h->ans[i].n == 1); /* answered at once */
	if (n)
		*n = h_code(h, i) == 0 ? h->ans[i].n_list : 0;
	return h_code(h, i);
}

/* GetStatusInfo / GetExternalIPAddress: the call index (not necessarily answered). */
static inline int h_status_call(struct h *h, enum upnp_action action)
{
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	return h_act(h, action, &a, HOST_A);
}

/* DeletePortMappingRange (IGD:2); answered (or 30 s); the code. */
static inline int h_delete_range(struct h *h, const char *from, enum upnp_proto proto, uint16_t lo, uint16_t hi,
				 bool manage)
{
	struct upnp_args a;
	memset(&a, 0, sizeof(a));
	a.pm.protocol = proto;
	a.start_port = lo;
	a.end_port = hi;
	a.manage = manage;
	return h_wait(h, h_act(h, UPNP_ACT_DELETE_PORT_MAPPING_RANGE, &a, from), 30000);
}

/* Is (proto, ext) listed (GetSpecificPortMappingEntry succeeds)? */
static inline bool h_listed(struct h *h, enum upnp_proto proto, uint16_t ext)
{
	return h_get_specific(h, HOST_A, proto, ext, NULL) == 0;
}

/* The committed record for (proto, ext), or NULL. */
static inline const struct state_mapping *h_rec(struct h *h, uint8_t proto, uint16_t ext)
{
	const struct state_mapping *m = state_table_find(h->table, proto, ext, NULL);
	return m && !(m->flags & STATE_F_INTENT) ? m : NULL;
}

/* A stored record made before the core (id returned): lease_s 0 = none; lease_end_ms given
 * relative to now (negative: already over). */
static inline uint32_t h_store(struct h *h, uint8_t proto, uint16_t ext, const char *client, uint16_t in_port,
			       uint32_t lease_s, int64_t lease_left_ms, uint8_t flags, uint8_t nonce_byte)
{
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.flags = flags;
	m.external_port = ext;
	m.internal_port = in_port;
	m.lease_duration = lease_s;
	m.lease_end_ms = lease_s ? (uint64_t)((int64_t)h->now + lease_left_ms) : 0;
	m.internal_client = h_ip(client);
	m.owner = m.internal_client;
	m.external_addr = h_ip(H_EXT);
	memset(m.nonce, nonce_byte, sizeof(m.nonce));
	m.description = "stored";
	uint32_t id = 0;
	CHECK_EQ_INT(state_table_add(h->table, &m, &id), STATE_OK);
	return id;
}

static inline bool h_nonce_is(const struct pcp_msg *m, uint8_t byte)
{
	for (size_t i = 0; i < PCP_NONCE_LEN; i++)
		if (m->nonce[i] != byte)
			return false;
	return true;
}

/* ------------------------------------------------------------------ running tests */

struct h_test {
	const char *name;
	void (*fn)(void);
};

static inline int h_main(int argc, char **argv, const struct h_test *tests, size_t n, const char *prog)
{
	int ran = 0;
	for (size_t i = 0; i < n; i++) {
		bool want = argc < 2;
		for (int k = 1; k < argc; k++)
			want |= strcmp(argv[k], tests[i].name) == 0 || strcmp(argv[k], "all") == 0;
		if (!want)
			continue;
		int before = tu_failures;
		tests[i].fn();
		fprintf(stderr, "%s %s\n", tu_failures == before ? "ok  " : "FAIL", tests[i].name);
		ran++;
	}
	if (!ran) {
		fprintf(stderr, "%s: no test named", prog);
		for (int k = 1; k < argc; k++)
			fprintf(stderr, " %s", argv[k]);
		fprintf(stderr, "\n");
		return 2;
	}
	return tu_finish(prog);
}

#endif
