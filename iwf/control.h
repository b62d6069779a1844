/*
 * control.h - the control socket (inside iwf/): a UNIX stream socket, owner-only, on which
 * iwfctl (tools/iwfctl.c) asks for the status, the mappings and the counters, adds and
 * deletes the administrator's static mappings and reloads the configuration. One JSON
 * object per line each way (docs/control.md). The decisions are the core's (core.h,
 * admin.c); this file owns the socket, the framing and the JSON.
 */
#ifndef IWFD_CONTROL_H
#define IWFD_CONTROL_H

#include "core.h"

#include <jansson.h>

#include <stddef.h>
#include <sys/types.h>

#define IWF_CONTROL_MAX_REQUEST 4096  /* bytes of one request line, newline included */
#define IWF_CONTROL_MAX_CLIENTS 8     /* connections at once; more are closed at once */
#define IWF_CONTROL_IDLE_S 60         /* a connection idle this long is closed */

/* What the daemon adds to the core's view (daemon.c fills it). */
struct iwf_control_info {
	const char *version;
	bool have_server;          /* a PCP server is in use */
	char server[80];           /* its address and port text */
	const char *server_origin; /* where it came from ("configured", "default router", ...) */
	uint64_t started_ms;       /* monotonic ms of the daemon's start */
	uint64_t now_ms;
	uint64_t announce_resends; /* pcp_io_stats */
	bool upnp_enabled;         /* the IGD is on the LAN (upnp_server_set_enabled) */
};

struct iwf_control_ops {
	void (*info)(void *arg, struct iwf_control_info *out);
	/* Reload what can change without a restart; 0 with a message, or -1 with the reason. */
	int (*reload)(void *arg, char *msg, size_t cap);
	/* Start or stop the IGD on the LAN (TR-181 UPnPIWF.Enable); NULL = not possible. */
	void (*upnp_enable)(void *arg, bool on);
	/* upnp/'s counters (SSDP, HTTP, SOAP, GENA, status page); NULL = none (zeros). */
	void (*upnp_stats)(void *arg, struct upnp_stats *out);
};

struct iwf_control;

/* Listen on path (its directory is made 0700 if missing; a stale socket is replaced, a live
 * one is an error). core and ops are borrowed for the life of the control. dm_store: the
 * TR-069 model's store (dm.h iwf_dm_new; NULL = none). NULL with detail on failure. */
struct iwf_control *iwf_control_new(struct event_base *base, const char *path, struct iwf_core *core,
				    const struct iwf_control_ops *ops, void *arg, const char *dm_store, char *detail,
				    size_t cap);
/* Give the socket (and its directory when iwfd made it) to uid/gid: for --user, before the
 * privileges are dropped, so that the daemon can remove it at exit. 0, or -1 with detail. */
int iwf_control_chown(struct iwf_control *ctl, uid_t uid, gid_t gid, char *detail, size_t cap);
/* Close every connection (their pending requests are forgotten), remove the socket. NULL
 * is a no-op. Call before iwf_core_free. */
void iwf_control_free(struct iwf_control *ctl);

/* The request of one line (text[0..len), no newline) -> a new JSON answer, or NULL when the
 * answer comes later: add and delete call done(done_arg, ...) once the carrier answered
 * (iwf_control_admin_answer makes the JSON of that). Public for tests. */
json_t *iwf_control_handle(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg,
			   const char *text, size_t len, iwf_admin_done_fn *done, void *done_arg);
json_t *iwf_control_admin_answer(enum upnp_error err, uint16_t external_port);

#endif
