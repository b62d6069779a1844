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

/* What the core holds, for operators and tests. */
struct iwf_core_counters {
	size_t mappings;            /* lives: every mapping the core knows, in any phase */
	size_t lease_slots;         /* entries of the lease heap (stale ones included) */
	uint64_t lease_compactions; /* times the lease heap was rebuilt without its stale entries */
};
void iwf_core_counters(const struct iwf_core *c, struct iwf_core_counters *out);

/* The evented state as it is now; ext[0..cap) holds the external address text. */
void iwf_core_state(const struct iwf_core *c, struct upnp_state *out, char *ext, size_t cap);

#endif
