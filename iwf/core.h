/*
 * core.h - the interworking core of iwfd, sans-I/O (internal to iwf/).
 *
 * The core decides; it owns no socket, no clock and no timer. The daemon (daemon.c) and the
 * C core tests (tests/iwf/) give it, through struct iwf_env: the time, randomness, the way to
 * complete a UPnP call and to push evented state, and a wake-up. It owns the PCP engine
 * (pcp/pcp.h, itself sans-I/O: the caller feeds pcp_client_input and drains
 * pcp_client_output) and uses a state/ table that the caller opened (journal or memory).
 *
 * Files (each a job): mappings.c - the lifecycle registry and its ONE transition function
 * (it saves, notifies UPnP/GENA and arms timers); actions.c - the UPnP actions (policy, the
 * local table first, seed 004 §5.7-§5.9); pcp_events.c - what each PCP event does; sync.c -
 * start-up, PCP_SERVICE_WAIT, replay, the address probe, leases (seed 004 §5.10);
 * daemon.c - sockets, clocks and signals wired to all of this.
 *
 * Driving it: call iwf_core_action() for each UPnP action, feed PCP datagrams to the engine
 * (iwf_core_pcp()), and call iwf_core_run() whenever env->wakeup asked for it or the time
 * reached iwf_core_next_deadline(). iwf_core_run() runs due timers, makes the journal
 * durable with one sync for everything changed since the last run (group commit) and only
 * then completes the UPnP calls that waited for it.
 */
#ifndef IWFD_CORE_H
#define IWFD_CORE_H

#include "iwf.h"
#include "nat.h"

#include "pcp.h"
#include "state.h"
#include "upnp.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct iwf_env {
	uint64_t (*mono_ms)(void *arg);  /* monotonic milliseconds: leases, deadlines, timers */
	int64_t (*wall_s)(void *arg);    /* Unix seconds: only for logs */
	void (*random)(void *arg, void *buf, size_t len); /* nonces, PCP_SERVICE_WAIT */
	/* Complete a UPnP call (upnp_call_reply / upnp_call_error in the daemon). */
	void (*reply)(void *arg, struct upnp_call *call, const struct upnp_reply *reply);
	void (*error)(void *arg, struct upnp_call *call, enum upnp_error code);
	/* The evented state changed (upnp_server_set_state in the daemon). */
	void (*set_state)(void *arg, const struct upnp_state *st);
	/* Call iwf_core_run() soon (from the event loop, not from inside this call). */
	void (*wakeup)(void *arg);
	void (*log)(void *arg, enum iwf_log_level level, const char *fmt, va_list ap);
	void *arg;
};

struct iwf_core;

/*
 * New core. cfg and env are copied; table (opened or in memory, borrowed, must outlive the
 * core) is loaded already: every record in it becomes a mapping of the core (committed ones
 * hold their key and are replayed after PCP_SERVICE_WAIT; intents are deleted on the
 * carrier with their nonce). nat is borrowed (iwf_nat_new("none") when there is no NAT).
 * Nothing is sent before iwf_core_start(). NULL on allocation failure.
 */
struct iwf_core *iwf_core_new(const struct iwf_config *cfg, const struct iwf_env *env,
			      struct state_table *table, struct iwf_nat *nat);
/* Pending UPnP calls are completed with 501; the journal is synced; PCP flows are
 * abandoned (the carrier keeps the mappings until their lifetime ends; the journal keeps
 * them for the next start). NULL is a no-op. */
void iwf_core_free(struct iwf_core *c);

/* The PCP engine (owned by the core; for pcp_io_new / tests). */
struct pcp_client *iwf_core_pcp(struct iwf_core *c);

/* Start: arm PCP_SERVICE_WAIT (seed 004 §5.10), after which stored mappings are replayed. */
void iwf_core_start(struct iwf_core *c);

/* One UPnP action from LAN host `from` (struct upnp_ops.action). Leads to exactly one
 * env->reply / env->error for the call, now, at a later iwf_core_run, or after PCP. */
void iwf_core_action(struct iwf_core *c, struct upnp_call *call, enum upnp_action action,
		     const struct upnp_args *args, const struct sockaddr *from);

/* Run due timers, sync the journal, complete the calls that waited for the sync. */
void iwf_core_run(struct iwf_core *c);
/* Monotonic ms of the core's next timer (not the PCP engine's); UINT64_MAX = none. */
uint64_t iwf_core_next_deadline(const struct iwf_core *c);

/* Replace the permission rules (SIGHUP reload). */
void iwf_core_set_rules(struct iwf_core *c, const struct iwf_rule *rules, size_t n);
/* Take from cfg what may change while running (admin.c): the permission rules,
 * security.allow_third_party and the log level. */
void iwf_core_reload(struct iwf_core *c, const struct iwf_config *cfg);

/* What the core holds, for operators and tests. */
struct iwf_core_counters {
	size_t mappings;            /* lives: every mapping the core knows, in any phase */
	size_t lease_slots;         /* entries of the lease heap (stale ones included) */
	uint64_t lease_compactions; /* times the lease heap was rebuilt without its stale entries */
};
void iwf_core_counters(const struct iwf_core *c, struct iwf_core_counters *out);

/* The evented state as it is now; ext[0..cap) holds the external address text. */
void iwf_core_state(const struct iwf_core *c, struct upnp_state *out, char *ext, size_t cap);

/* ------------------------------------------------------------------ the administrator
 * (admin.c): the router's own administrator, through the control socket (control.c). A
 * static mapping is a state/ record with STATE_F_STATIC and owner ::, made and removed
 * through the same lifecycle as a UPnP one (the local table first, MAP with PREFER_FAILURE
 * and a stored nonce, lifetime-0 MAP with it on delete, replayed after a restart); the
 * permission rules and IGD:1 default security do not apply to the administrator. */

/* How a change ended: 0 = done (external_port: the mapping's port), else the UPnP error it
 * would have been for a control point (718 conflict, 714 no such entry, 501 no answer...).
 * Called exactly once per request, possibly before the request function returns; never
 * after iwf_core_admin_cancel(c, arg). */
typedef void iwf_admin_done_fn(void *arg, enum upnp_error err, uint16_t external_port);

/* Add (or refresh) a static mapping: pm's protocol, external port (1..65535), internal
 * client (IPv4 text) and port, remote host ("" = any), description, enabled, and lease in
 * seconds (0 = permanent: renewed on the carrier until deleted). pm is copied. */
void iwf_core_admin_add(struct iwf_core *c, const struct upnp_pm_entry *pm, iwf_admin_done_fn *done, void *arg);
/* Delete any mapping, static or made by a control point (remote_host "" = any). */
void iwf_core_admin_delete(struct iwf_core *c, enum upnp_proto proto, uint16_t external_port,
			   const char *remote_host, iwf_admin_done_fn *done, void *arg);
/* Forget the requester `arg` (its connection closed): its requests go on, unanswered. */
void iwf_core_admin_cancel(struct iwf_core *c, void *arg);

/* One mapping as the administrator sees it. */
struct iwf_admin_entry {
	uint32_t id;                 /* the state/ record's id: stable while the mapping lives */
	struct upnp_pm_entry pm;     /* as UPnP lists it (lease_duration: seconds left, 0 = none) */
	char external_addr[64];      /* the carrier's external address of it ("" = not known) */
	uint32_t pcp_left_s;         /* seconds until the carrier's grant ends; 0 = none */
	bool has_pcp;                /* the carrier granted it (pcp_left_s is meaningful) */
	bool is_static;              /* made by the administrator */
	const char *phase;           /* lifecycle phase name (static string) */
};
/* Fill out[0..cap) with the committed mappings in commit order (as GetGenericPortMappingEntry;
 * intents - an Add or a Delete on its way - are not listed); returns how many there are (may
 * exceed cap). */
size_t iwf_core_admin_list(struct iwf_core *c, struct iwf_admin_entry *out, size_t cap);

struct iwf_admin_status {
	int igd_version;
	bool connected;             /* UPnP ConnectionStatus */
	bool reach_known;           /* the PCP server answered, or was found silent, once */
	char external[64];          /* "" = not known */
	bool have_epoch;
	uint32_t epoch;             /* the server's Epoch time now (last one + time since) */
	size_t mappings;            /* records in the table, every phase */
	uint32_t connected_s;       /* seconds since ConnectionStatus became Connected (0 = not) */
	uint32_t pcp_lifetime;      /* configured MAP lifetime, s (pcp.lifetime) */
	char wan_if[32];            /* configured WAN interface ("" = none) */
};
void iwf_core_admin_status(const struct iwf_core *c, struct iwf_admin_status *out);

/* What the core counted since it was made (the daemon adds pcp/ and upnp/ counters). */
#define IWF_STATS_ERROR_CODES 24
struct iwf_core_stats {
	uint64_t actions[UPNP_ACT__COUNT];  /* UPnP actions received, by action */
	uint64_t errors_total;              /* UPnP errors answered */
	struct {
		uint16_t code;              /* 0 = unused slot */
		uint64_t n;
	} errors[IWF_STATS_ERROR_CODES];    /* by code (the last slot also takes the overflow) */
	uint64_t admin_requests;            /* control-socket changes (add, delete) */
};
void iwf_core_stats(const struct iwf_core *c, struct iwf_core_stats *out);

#endif
