/*
 * dm.h - the TR-181 data model (Device.PCP., Device.DeviceInfo.) served on the control
 * socket with the dm.* operations of docs/tr069.md ("Backend protocol"), for the TR-069
 * agent iwf-cwmp (tools/cwmp, its socket backend). control.c hands it every request whose
 * "op" starts with "dm."; the model reads the core through the administrator's entry points
 * (core.h, admin.c) and changes it only through them (iwf_core_admin_add / _delete).
 */
#ifndef IWFD_DM_H
#define IWFD_DM_H

#include "control.h"

#include <jansson.h>

struct iwf_dm;

/* An answer that came later (after the carrier answered an add or a delete). */
typedef void iwf_dm_reply_fn(void *arg, json_t *answer);

/* ops (borrowed): info, and upnp_enable for UPnPIWF.Enable (read-only when NULL). store:
 * the file that keeps UPnPIWF.Enable, the rows not enabled yet and the instance numbers
 * across restarts (copied; NULL or "" = kept in memory only); read here. */
struct iwf_dm *iwf_dm_new(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg,
			  const char *store);
/* UPnPIWF.Enable as stored in `store` (true when there is none, NULL or ""). A store that
 * exists but cannot be read gives true with the reason in why (else why is ""). For the
 * daemon, before it starts the IGD. */
bool iwf_dm_stored_upnp_enabled(const char *store, char *why, size_t cap);
/* Forgets the pending rows; requests still waiting for the carrier are cancelled. */
void iwf_dm_free(struct iwf_dm *dm);

/* One dm.* request (req: the parsed line; borrowed). Returns the answer, or NULL when it
 * comes later through reply(reply_arg, answer) (exactly once unless cancelled). */
json_t *iwf_dm_handle(struct iwf_dm *dm, const struct iwf_control_info *info, json_t *req,
		      iwf_dm_reply_fn *reply, void *reply_arg);
/* The requester reply_arg is gone: its waiting requests go on, unanswered. */
void iwf_dm_cancel(struct iwf_dm *dm, void *reply_arg);

#endif
