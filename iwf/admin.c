/*
 * admin.c - the router's own administrator (the control socket, control.c, is its
 * frontend): static mappings added and deleted through the same lifecycle as UPnP ones
 * (actions.c core_add / core_delete with admin set, then mappings.c life_to), and what
 * iwfctl shows (status, list, counters).
 *
 * An administrator's request has no upnp_call: it is an admin_op, and a pointer to it is
 * what the lifecycle carries as its `call`. The core never dereferences a call; answer_now
 * and answer_error (mappings.c) ask admin_answer() first, which recognises the pointers of
 * the ops it holds and calls the requester's callback instead of env->reply / env->error.
 */
#include "core_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct admin_op {
	struct admin_op *next;
	iwf_admin_done_fn *done; /* NULL once cancelled */
	void *arg;
};

static struct upnp_call *op_call(struct admin_op *op)
{
	return (struct upnp_call *)(void *)op; /* a token: never dereferenced as a upnp_call */
}

static struct admin_op *op_new(struct iwf_core *c, iwf_admin_done_fn *done, void *arg)
{
	struct admin_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->done = done;
	op->arg = arg;
	op->next = c->admin_ops;
	c->admin_ops = op;
	c->stats.admin_requests++;
	return op;
}

bool admin_answer(struct iwf_core *c, struct upnp_call *call, enum upnp_error e, uint16_t external_port)
{
	for (struct admin_op **p = &c->admin_ops; *p; p = &(*p)->next) {
		struct admin_op *op = *p;
		if (op_call(op) != call)
			continue;
		*p = op->next;
		if (op->done)
			op->done(op->arg, e, external_port);
		free(op);
		return true;
	}
	return false;
}

void admin_free_all(struct iwf_core *c)
{
	while (c->admin_ops) {
		struct admin_op *op = c->admin_ops;
		c->admin_ops = op->next;
		free(op);
	}
}

void iwf_core_admin_cancel(struct iwf_core *c, void *arg)
{
	for (struct admin_op *op = c->admin_ops; op; op = op->next)
		if (op->arg == arg)
			op->done = NULL;
}

/* A new pending request and the arguments of the action it stands for, addressed to the
 * device's own service version (its §4.3 column); NULL (done already told) without memory. */
static struct admin_op *admin_start(struct iwf_core *c, iwf_admin_done_fn *done, void *arg, struct upnp_args *a)
{
	struct admin_op *op = op_new(c, done, arg);
	if (!op) {
		done(arg, UPNP_E_ACTION_FAILED, 0);
		return NULL;
	}
	memset(a, 0, sizeof(*a));
	a->service = UPNP_SVC_WANIPCONN;
	a->version = (uint8_t)c->cfg.igd_version;
	return op;
}

static const struct in6_addr admin_owner; /* :: - the administrator's mappings are static */

void iwf_core_admin_add(struct iwf_core *c, const struct upnp_pm_entry *pm, iwf_admin_done_fn *done, void *arg)
{
	if ((pm->protocol != UPNP_PROTO_TCP && pm->protocol != UPNP_PROTO_UDP) || !pm->external_port ||
	    !pm->internal_port) {
		done(arg, UPNP_E_INVALID_ARGS, 0);
		return;
	}
	struct upnp_args a;
	struct admin_op *op = admin_start(c, done, arg, &a);
	if (!op)
		return;
	a.pm = *pm;
	core_add(c, op_call(op), &a, &admin_owner, false, true);
}

void iwf_core_admin_delete(struct iwf_core *c, enum upnp_proto proto, uint16_t external_port,
			   const char *remote_host, iwf_admin_done_fn *done, void *arg)
{
	struct upnp_args a;
	struct admin_op *op = admin_start(c, done, arg, &a);
	if (!op)
		return;
	a.pm.protocol = proto;
	a.pm.external_port = external_port;
	snprintf(a.pm.remote_host, sizeof(a.pm.remote_host), "%s", remote_host ? remote_host : "");
	core_delete(c, op_call(op), &a, &admin_owner, true);
}

size_t iwf_core_admin_list(struct iwf_core *c, struct iwf_admin_entry *out, size_t cap)
{
	size_t n = state_table_count(c->table);
	uint64_t now = core_now(c);
	for (size_t i = 0; i < n && i < cap; i++) {
		const struct state_mapping *m = state_table_at(c->table, i);
		const struct life *l = life_get(c, m->id);
		struct iwf_admin_entry *e = &out[i];
		memset(e, 0, sizeof(*e));
		e->id = m->id;
		addr_text(&m->remote_host, e->pm.remote_host, sizeof(e->pm.remote_host));
		e->pm.external_port = m->external_port;
		e->pm.protocol = (enum upnp_proto)m->protocol;
		e->pm.internal_port = m->internal_port;
		addr_text(&m->internal_client, e->pm.internal_client, sizeof(e->pm.internal_client));
		e->pm.enabled = m->flags & STATE_F_ENABLED;
		memcpy(e->pm.description, m->description, m->desc_len);
		e->pm.description[m->desc_len] = '\0';
		e->pm.lease_duration = lease_left_s(c, m);
		addr_text(&m->external_addr, e->external_addr, sizeof(e->external_addr));
		e->is_static = m->flags & STATE_F_STATIC;
		e->phase = l ? life_phase_name((enum life_phase)l->phase) : "?";
		uint64_t end = l && l->flow ? pcp_flow_expires(l->flow) : UINT64_MAX;
		if (end != UINT64_MAX) {
			e->has_pcp = true;
			e->pcp_left_s = end > now ? (uint32_t)((end - now + 999) / 1000) : 0;
		}
	}
	return n;
}

void iwf_core_admin_status(const struct iwf_core *c, struct iwf_admin_status *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t now = core_now(c);
	out->igd_version = c->cfg.igd_version;
	out->connected = c->connected;
	out->reach_known = c->reach_known;
	addr_text(&c->external, out->external, sizeof(out->external));
	uint64_t at;
	if (pcp_client_epoch(c->pcp, &out->epoch, &at)) {
		out->have_epoch = true;
		if (now > at)
			out->epoch += (uint32_t)((now - at) / 1000);
	}
	out->mappings = state_table_count(c->table);
	out->connected_s = c->connected ? (uint32_t)((now - c->connected_since) / 1000) : 0;
	out->pcp_lifetime = c->cfg.pcp_lifetime;
	snprintf(out->wan_if, sizeof(out->wan_if), "%s", c->cfg.wan_if);
}

void iwf_core_stats(const struct iwf_core *c, struct iwf_core_stats *out)
{
	*out = c->stats;
}

void iwf_core_reload(struct iwf_core *c, const struct iwf_config *cfg)
{
	iwf_core_set_rules(c, cfg->rules, cfg->n_rules);
	c->cfg.allow_third_party = cfg->allow_third_party;
	c->cfg.max_per_host = cfg->max_per_host;
	c->cfg.log_level = cfg->log_level;
}
