/*
 * core_internal.h - what the files of the core share (not a public header).
 *
 * A mapping is ONE state/ record (struct state_mapping, owned by the table) plus, beside it,
 * what only the lifecycle needs: struct life (phase, PCP flow, the UPnP call waiting on it).
 * The two are joined by the record's id. Every phase change goes through life_to()
 * (mappings.c), which also journals, notifies UPnP/GENA and arms the lease timer.
 */
#ifndef IWFD_CORE_INTERNAL_H
#define IWFD_CORE_INTERNAL_H

#include "core.h"

#define IGD2_MAX_LEASE 604800u   /* WANIPConnection:2: 0 and larger leases become a week */
#define USER_DELETE_DEADLINE_MS 4000u
#define PROBE_PORT 9             /* discard: the router's own short-lived address probe */
#define PROBE_LIFETIME 60

/* The lifecycle of one mapping (STYLE.md rule 8: one enum, one names table, one transition
 * function). Which state/ flags go with each phase is said beside it. */
enum life_phase {
	LIFE_PENDING,   /* committed; stored, waiting for the start-up synchronisation (no flow) */
	LIFE_ADDING,    /* intent; MAP sent for an Add, the UPnP call waits */
	LIFE_ACTIVE,    /* committed; granted, pcp/ renews it */
	LIFE_REPLAYING, /* committed; MAP re-sent with its nonce (restored, lost state, outage) */
	LIFE_DELETING,  /* withdrawn (intent); lifetime-0 MAP for a Delete, the UPnP call waits */
	LIFE_DISCARD,   /* withdrawn (intent); lifetime-0 MAP until the server confirms it */
	LIFE_DISABLED,  /* committed, PortMappingEnabled 0: listed, its port held, not on the
			   carrier (no flow, or the lifetime-0 MAP that takes it off) */
	LIFE_GONE,      /* removed from the table; the life is freed */
	LIFE_PHASE_COUNT
};

/* A DeletePortMappingRange in progress: answered when its last delete ends. */
struct range_op {
	struct upnp_call *call;
	unsigned remaining;        /* deletes still running (+1 while they are being issued) */
	enum upnp_error error;     /* the first failure, 0 = none */
};

struct life {
	uint32_t id;             /* the state/ record */
	uint8_t phase;           /* enum life_phase */
	bool any;                /* AddAnyPortMapping: the server may choose the port */
	bool started;            /* a flow was started for it at least once */
	uint8_t version;         /* service version the waiting call addressed (its §4.3 column) */
	struct pcp_flow *flow;   /* NULL when no PCP exchange runs for it */
	struct upnp_call *call;  /* the UPnP call waiting on it, or NULL */
	union {
		struct range_op *range;  /* the range delete it belongs to, or NULL */
		struct life *next_spare; /* a freed life: the next one (mappings.c) */
	};
};

struct host_count {
	struct in6_addr addr;
	uint32_t n;
};

/* mappings.c: the mappings the control point `owner` holds now. */
uint32_t host_mappings(const struct iwf_core *c, const struct in6_addr *owner);

/* A UPnP answer that waits for the journal to be durable (group commit). */
struct deferred {
	struct deferred *next;
	struct upnp_call *call;
	enum upnp_error error;   /* 0: success */
	uint16_t reserved_port;  /* AddAnyPortMapping's NewReservedPort */
};

/* A status question (GetStatusInfo, GetExternalIPAddress) asked before the PCP server was
 * ever heard of: answered when it is, or at the answer deadline. */
struct status_wait {
	struct status_wait *next;
	struct upnp_call *call;
	enum upnp_action action;
};

struct lease_slot {
	uint64_t at;   /* monotonic ms */
	uint32_t id;
};

struct iwf_core {
	struct iwf_config cfg;
	struct iwf_env env;
	struct state_table *table;
	struct iwf_nat *nat;
	struct pcp_client *pcp;

	/* id -> life, open addressing (linear probing, tombstones) */
	struct life **lives;
	size_t lives_cap, lives_used, lives_n;
	struct life *spare_lives;        /* freed lives for reuse (mappings.c) */
	/* mappings held per control point (record owner; static ones not counted), open
	 * addressing; an entry stays when its count drops to 0 (LAN hosts are few) */
	struct host_count *hosts;
	size_t hosts_cap, hosts_n;
	struct life_block *life_blocks;  /* where lives come from */

	/* lease ends: a min-heap with lazy deletion (a slot is stale when its record's
	 * lease_end_ms no longer equals it) */
	struct lease_slot *leases;
	size_t leases_n, leases_cap;
	size_t leases_compact_at;        /* compact the lease heap past this many slots */
	uint64_t lease_compactions;

	/* group commit */
	struct deferred *deferred_head, **deferred_tail;
	bool woken;

	/* synchronisation (sync.c) */
	bool started;            /* iwf_core_start called */
	bool synced;             /* PCP_SERVICE_WAIT over: stored mappings are being replayed */
	uint64_t start_at;       /* end of PCP_SERVICE_WAIT; UINT64_MAX once over */
	uint64_t replay_next;    /* pacing of the replay; UINT64_MAX = nothing waits */
	uint32_t *replay_q;      /* ids waiting for their replay (or their stored delete) */
	size_t replay_head, replay_n, replay_cap;
	uint64_t replay_last;    /* last paced tick (UINT64_MAX: none yet) */
	uint64_t replay_credit;  /* requests allowed, in thousandths */
	struct pcp_flow *probe;  /* the external-address probe (§4.1), or NULL */
	size_t overwrites;       /* overwrites waiting for their old PCP mapping's delete (actions.c) */

	/* what the control points see */
	bool reach_known;        /* the PCP server answered, or was found silent, at least once */
	struct status_wait *status_waiters;
	uint64_t status_deadline; /* UINT64_MAX = none */
	bool connected;
	uint64_t connected_since;
	struct in6_addr external;
	uint32_t system_update_id;

	/* cascaded NAT: router-side ports in use (bit per port, per protocol) */
	uint8_t *router_ports[2];

	/* the administrator's requests waiting for their answer (admin.c) */
	struct admin_op *admin_ops;
	struct iwf_core_stats stats;
};

/* core.c-wide helpers (mappings.c) */
void core_log(struct iwf_core *c, enum iwf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t core_now(const struct iwf_core *c);
const char *proto_name(uint8_t p);
const char *life_phase_name(enum life_phase p);
/* Text of an address for logs and UPnP (IPv4-mapped as a dotted quad; :: as ""). */
const char *addr_text(const struct in6_addr *a, char *buf, size_t cap);
bool addr_is_any(const struct in6_addr *a);
/* "a.b.c.d:port" or "[v6]:port" for logs (cap: ADDR_PORT_TEXT_MAX). */
#define ADDR_PORT_TEXT_MAX (INET6_ADDRSTRLEN + 8)
const char *addr_port_text(const struct in6_addr *a, uint16_t port, char *buf, size_t cap);
/* The administrator's permission rules (seed 004 §7) for a mapping of client. The rules name
 * IPv4 clients: for an IPv6 client only the rules for every client (prefix /0) apply. */
bool rules_permit(const struct iwf_core *c, uint16_t ext_port, const struct in6_addr *client, uint16_t int_port);
/* nat.mode "nat64": IPv6 LAN hosts are mapped untranslated onto the NAT64's IPv4 ports. */
bool core_nat64(const struct iwf_core *c);
/* May a mapping have this internal client in the configured mode? An IPv4 host (not
 * 0.0.0.0) always; an IPv6 host only in mode nat64 and only with an address the carrier
 * can route to (not ::/8, link-local fe80::/10 or multicast ff00::/8). */
bool client_mappable(const struct iwf_core *c, const struct in6_addr *ic);

struct life *life_get(struct iwf_core *c, uint32_t id);
/* New life for record id in phase (no side effects besides registering it). */
struct life *life_new(struct iwf_core *c, uint32_t id, enum life_phase phase);
/* THE transition function (mappings.c). */
void life_to(struct iwf_core *c, struct life *l, enum life_phase to, const struct state_mapping *upd,
	     const char *why);
/* The record of a life (never NULL while the life is not GONE). */
const struct state_mapping *life_rec(const struct iwf_core *c, const struct life *l);
/* Iterate every life: *cursor = 0 first; NULL at the end. Do not add lives meanwhile;
 * a life freed by the loop body is fine. */
struct life *life_next(struct iwf_core *c, size_t *cursor);

/* Start (or restart) the PCP flow of a life: MAP with the record's nonce. */
bool life_start_flow(struct iwf_core *c, struct life *l, bool prefer_failure, uint32_t deadline_ms);
/* PCP lifetime to ask for a record now: min(cfg.pcp_lifetime, lease left), at least 1. */
uint32_t life_pcp_lifetime(const struct iwf_core *c, const struct state_mapping *m);
/* Seconds of lease left for UPnP (0 = infinite; at least 1 while finite). */
uint32_t lease_left_s(const struct iwf_core *c, const struct state_mapping *m);

/* Journal a changed record (update) - logs on error. */
bool rec_update(struct iwf_core *c, const struct state_mapping *m);
/* A committed change of the table: SystemUpdateID, evented state. */
void table_changed(struct iwf_core *c);
void push_state(struct iwf_core *c);
void set_connected(struct iwf_core *c, bool up);
void learn_external(struct iwf_core *c, const struct in6_addr *a);
void lease_arm(struct iwf_core *c, const struct state_mapping *m);

/* Answer a UPnP call now (reads, errors) or after the next journal sync (changes). */
void answer_now(struct iwf_core *c, struct upnp_call *call, const struct upnp_reply *r);
void answer_error(struct iwf_core *c, struct upnp_call *call, enum upnp_error e);
void answer_durable(struct iwf_core *c, struct upnp_call *call, enum upnp_error e, uint16_t reserved_port);
void core_wakeup(struct iwf_core *c);

/* Cascaded NAT bookkeeping (mappings.c). */
uint16_t router_port_pick(struct iwf_core *c, uint8_t proto, uint16_t wanted);
void router_port_mark(struct iwf_core *c, uint8_t proto, uint16_t port, bool used);

/* actions.c: an Add (any: AddAnyPortMapping) or a Delete, for the control point `from`
 * or, with admin, for the router's administrator (admin.c: a static mapping, owner ::, no
 * permission rules, no IGD:1 default security, lease 0 = permanent, any mapping deletable). */
void core_add(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a, const struct in6_addr *from,
	      bool any, bool admin);
void core_delete(struct iwf_core *c, struct upnp_call *call, const struct upnp_args *a, const struct in6_addr *from,
		 bool admin);
/* admin.c: the administrator's requests use a pointer of theirs as their `call`; answer_*
 * hand such a call here (true) instead of to env->reply / env->error. */
bool admin_answer(struct iwf_core *c, struct upnp_call *call, enum upnp_error e, uint16_t external_port);
void admin_free_all(struct iwf_core *c);
void range_done(struct iwf_core *c, struct range_op *r, enum upnp_error e);
/* An overwrite (another InternalPort) waits for the delete of l's PCP mapping: the new
 * mapping's life, or NULL. */
struct life *overwrite_of(struct iwf_core *c, const struct life *l);
/* pcp_events.c */
void pcp_event_fn(void *arg, const struct pcp_event *ev);
/* sync.c */
void sync_run(struct iwf_core *c, uint64_t now);
uint64_t sync_next_deadline(const struct iwf_core *c);
void sync_load(struct iwf_core *c);
void sync_replay_one(struct iwf_core *c, struct life *l);
void sync_probe(struct iwf_core *c);
/* actions.c: answer the status questions that waited (now, or at their deadline) */
void status_answer_waiting(struct iwf_core *c, bool deadline_passed);
void leases_run(struct iwf_core *c, uint64_t now);
uint64_t leases_next(struct iwf_core *c);

#endif
