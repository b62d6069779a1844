/* agent.h - what the parts of iwf-cwmp share: the configuration, the agent record, the
 * RPC table (rpc.c) and the session machinery (agent.c). */
#ifndef IWF_CWMP_AGENT_H
#define IWF_CWMP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dm.h"
#include "soap.h"

struct evbuffer;

struct cwmp_config {
	char *acs_url;
	char *acs_user, *acs_pass;     /* NULL: no credentials */
	unsigned cr_port;              /* 0: no connection-request listener */
	char *cr_bind;                 /* address the listener binds to */
	char *cr_interface;            /* SO_BINDTODEVICE: only connections arriving over it (WAN) */
	char *cr_user, *cr_pass;
	char *control_socket;          /* dm_sock backend; NULL with static_backend */
	bool static_backend;           /* the in-memory test tree instead of iwfd */
	char *static_hook;             /* file of name=value lines applied as external changes */
	unsigned periodic_inform;      /* seconds; 0 = off */
	char *state_file;
	char *ca_file;                 /* https: CA bundle (default: the system's) */
	bool foreground;
	unsigned retry_min_wait;       /* seconds: the m of the session retry window */
	unsigned retry_multiplier;     /* per mille: the k of the session retry window */
	unsigned notify_poll_ms;       /* how often notified parameters are compared */
	unsigned cwmp_minor;           /* 0..4: the urn:dslforum-org:cwmp-1-N of our Inform */
};

/* Inform event codes (seed 003 Table 35): bit positions. */
enum cwmp_event { EV_BOOTSTRAP, EV_BOOT, EV_PERIODIC, EV_VALUE_CHANGE, EV_CONNECTION_REQUEST, EV_M_REBOOT,
	EV_COUNT };
extern const char *const cwmp_event_codes[EV_COUNT];

struct attr {
	char *name;
	int notification;   /* 0 off, 1 passive, 2 active */
	char *last;         /* the value last reported */
	bool changed;
};

/* One RPC answer under construction: the response body (inside soap:Body), or a fault. */
struct rpc_reply {
	struct evbuffer *body;
	int fault;                    /* 0 or a dm_fault code */
	const char *fault_text;
	struct dm_list param_faults;  /* SetParameterValuesFault rows */
};

struct agent;
/* The RPCs the agent answers (seed 003 A.3.2, A.4.1.6): one const table. */
struct rpc_method {
	const char *name;
	void (*handle)(struct agent *a, const struct xnode *req, struct rpc_reply *r);
};
extern const struct rpc_method rpc_methods[];
extern const size_t rpc_method_count;

/* Things rpc.c asks of the agent. */
struct dm_backend *agent_dm(struct agent *a);
void agent_parameter_key(struct agent *a, const char *key);
void agent_after_session(struct agent *a, int what, const char *command_key); /* 1 reboot, 2 factory reset */
struct attr *agent_attrs(struct agent *a, size_t *n);
int agent_attr_set(struct agent *a, const char *name, int notification);
void agent_attrs_resnapshot(struct agent *a);

#define RPC_MAX_ITEMS 1024 /* names or values in one request: more is 9004 */

#endif
