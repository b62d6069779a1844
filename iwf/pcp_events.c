/*
 * pcp_events.c - what each PCP event (pcp.h, enum pcp_event_type) does to a mapping.
 * Every change goes through life_to(); errors become UPnP errors only in errmap.c.
 */
#include "core_internal.h"

#include <string.h>

static bool filtered(const struct state_mapping *m)
{
	return !addr_is_any(&m->remote_host);
}

/* The §4.3 column for the call waiting on l: the service version it addressed (actions.c). */
static int column(const struct iwf_core *c, const struct life *l)
{
	return l->version ? l->version : c->cfg.igd_version;
}

static void on_mapped(struct iwf_core *c, struct life *l, const struct pcp_event *ev)
{
	const struct state_mapping *m = life_rec(c, l);
	struct state_mapping upd = *m;
	char ext[INET6_ADDRSTRLEN];
	switch ((enum life_phase)l->phase) {
	case LIFE_ADDING: {
		struct upnp_call *call = l->call;
		l->call = NULL;
		if (!l->any && ev->external_port != m->external_port) {
			/* RFC 6887 §13.2: PREFER_FAILURE forbids another port; some servers (Debian's
			 * miniupnpd) still assign one. Undo it and report the conflict. */
			core_log(c, IWF_LOG_WARN, "PCP server gave port %u instead of %u despite PREFER_FAILURE: "
				 "deleting it", ev->external_port, m->external_port);
			answer_error(c, call, iwf_error_for(PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, column(c, l), false));
			life_to(c, l, LIFE_DISCARD, NULL, "port not as asked");
			return;
		}
		if (l->any && !rules_permit(c, ev->external_port, &m->internal_client, m->internal_port)) {
			/* The permission rules judge the port the carrier chose (seed 004 §7). */
			core_log(c, IWF_LOG_INFO, "PCP server gave port %u, which the permission rules refuse",
				 ev->external_port);
			answer_error(c, call, column(c, l) == 2 ? UPNP_E_NOT_AUTHORIZED : UPNP_E_CONFLICT);
			life_to(c, l, LIFE_DISCARD, NULL, "granted port refused by the rules");
			return;
		}
		upd.external_port = ev->external_port;
		upd.external_addr = ev->external_addr;
		upd.flags &= (uint8_t)~STATE_F_INTENT;
		const struct state_mapping *holder =
			state_table_find(c->table, upd.protocol, upd.external_port, &upd.remote_host);
		if (holder && holder->id != l->id) {
			/* The carrier granted a port another local mapping holds: its table and ours
			 * disagree; never show two mappings for one port. */
			answer_error(c, call, UPNP_E_CONFLICT);
			life_to(c, l, LIFE_DISCARD, NULL, "granted port held locally");
			return;
		}
		life_to(c, l, LIFE_ACTIVE, &upd, "granted");
		char in[ADDR_PORT_TEXT_MAX], owner[INET6_ADDRSTRLEN];
		core_log(c, IWF_LOG_INFO, "mapping %s %s:%u -> %s added for %s (lifetime %u s)",
			 proto_name(upd.protocol), addr_text(&ev->external_addr, ext, sizeof(ext)), upd.external_port,
			 addr_port_text(&upd.internal_client, upd.internal_port, in, sizeof(in)),
			 addr_text(&upd.owner, owner, sizeof(owner)), (unsigned)ev->lifetime);
		/* Answered after the journal sync (iwf_core_run): acknowledged means stored. */
		answer_durable(c, call, 0, upd.external_port);
		return;
	}
	case LIFE_PENDING:
	case LIFE_REPLAYING:
	case LIFE_ACTIVE: {
		struct upnp_call *call = l->call; /* a disabled mapping being enabled again */
		l->call = NULL;
		if (ev->external_port != m->external_port) {
			if (call) {
				/* Its port is somebody else's on the carrier now: it stays disabled. */
				answer_error(c, call, iwf_error_for(PCP_RESULT_CANNOT_PROVIDE_EXTERNAL, column(c, l), false));
				life_to(c, l, LIFE_DISABLED, NULL, "the PCP server gave another external port");
				return;
			}
			life_to(c, l, LIFE_DISCARD, NULL, "the PCP server gave another external port on replay");
			return;
		}
		if (memcmp(&ev->external_addr, &m->external_addr, sizeof(ev->external_addr)) != 0) {
			upd.external_addr = ev->external_addr;
			life_to(c, l, LIFE_ACTIVE, &upd, "external address changed");
		} else if (l->phase != LIFE_ACTIVE) {
			life_to(c, l, LIFE_ACTIVE, NULL, call ? "enabled again" : "re-created");
		}
		m = life_rec(c, l);
		pcp_flow_set_lifetime(c->pcp, l->flow, life_pcp_lifetime(c, m));
		answer_durable(c, call, 0, m->external_port);
		return;
	}
	default:
		return; /* DELETING / DISCARD: a late answer to the MAP; the delete is on its way */
	}
}

static void on_failed(struct iwf_core *c, struct life *l, const struct pcp_event *ev)
{
	const struct state_mapping *m = life_rec(c, l);
	unsigned code = ev->timeout ? IWF_PCP_NO_ANSWER : ev->result;
	char ic[INET6_ADDRSTRLEN];
	switch ((enum life_phase)l->phase) {
	case LIFE_ADDING: {
		enum upnp_error err = iwf_error_for(code, column(c, l), filtered(m));
		core_log(c, IWF_LOG_INFO, "AddPortMapping %s %u for %s: PCP %s -> UPnP %d", proto_name(m->protocol),
			 m->external_port, addr_text(&m->internal_client, ic, sizeof(ic)),
			 ev->timeout ? "no answer" : pcp_result_name(ev->result), (int)err);
		answer_error(c, l->call, err);
		l->call = NULL;
		if (ev->timeout) /* the server may have made it without us hearing: delete with the nonce */
			life_to(c, l, LIFE_DISCARD, NULL, "no answer");
		else
			life_to(c, l, LIFE_GONE, NULL, "refused");
		return;
	}
	case LIFE_REPLAYING:
		if (l->call) {
			/* Enabling a disabled mapping again failed: it stays disabled (and whatever the
			 * carrier may have made of the request is deleted with its nonce). */
			enum upnp_error err = iwf_error_for(code, column(c, l), filtered(m));
			answer_error(c, l->call, err);
			l->call = NULL;
			life_to(c, l, LIFE_DISABLED, NULL, "could not be enabled again");
			return;
		}
		__attribute__((fallthrough)); /* a replay failing: as for an active mapping */
	case LIFE_ACTIVE:
		/* No answer: pcp/ keeps re-sending until the server is back (seed 004 §5.1). A
		 * short-lived error is retried by pcp/ after its lifetime. A lasting refusal: the
		 * carrier will not hold it, so neither does the table. */
		if (ev->timeout || pcp_result_is_short_lived(ev->result))
			return;
		life_to(c, l, LIFE_GONE, NULL, "the PCP server refused to re-create it");
		return;
	default:
		return;
	}
}

static void on_renew_failed(struct iwf_core *c, struct life *l, const struct pcp_event *ev)
{
	const struct state_mapping *m = life_rec(c, l);
	if (l->phase != LIFE_ACTIVE && l->phase != LIFE_REPLAYING)
		return;
	if (ev->timeout) {
		/* An outage longer than the lifetime: the carrier has probably dropped it, but the
		 * control point still wants it. Keep it; pcp/ re-sends it (same nonce) until the
		 * server answers again (seed 004 §5.1: synchronise once reachable). */
		/* Also when the server ended it itself (an unsolicited lifetime 0, RFC 6887 §14.2):
		 * pcp/ re-creates it at once. */
		core_log(c, IWF_LOG_WARN, "mapping %s %u: no answer before its PCP lifetime ended, or the server "
			 "ended it; kept, re-created when the server answers",
			 proto_name(m->protocol), m->external_port);
		if (l->phase == LIFE_ACTIVE)
			life_to(c, l, LIFE_REPLAYING, NULL, "outage");
		return;
	}
	/* Result 0: the server moved it to another port (its answer to a renewal, or an
	 * unsolicited update, RFC 6887 §14.2). The control point's port is gone; the flow holds
	 * the new one, and DISCARD deletes that with the nonce, so nothing is left on the
	 * carrier. */
	if (ev->result)
		core_log(c, IWF_LOG_WARN, "renewal of %s %u refused (%s)", proto_name(m->protocol), m->external_port,
			 pcp_result_name(ev->result));
	else
		core_log(c, IWF_LOG_WARN, "the PCP server moved %s %u to port %u: mapping removed, deleted on the carrier",
			 proto_name(m->protocol), m->external_port, ev->external_port);
	life_to(c, l, LIFE_DISCARD, NULL, "the PCP server refused to renew it");
}

/* The old PCP mapping of an overwrite is deleted: the new one takes its external port and is
 * sent (PREFER_FAILURE, seed 004 §5.7.2); the call waits on it now (actions.c overwrite). */
static void start_overwrite(struct iwf_core *c, struct life *old, struct life *next, struct upnp_call *call)
{
	uint16_t port = life_rec(c, old)->external_port;
	uint8_t version = old->version;
	life_to(c, old, LIFE_GONE, NULL, "overwritten: deleted on the carrier");
	struct state_mapping upd = *life_rec(c, next);
	upd.external_port = port;
	if (!rec_update(c, &upd) || !life_start_flow(c, next, true, c->cfg.answer_deadline_ms)) {
		life_to(c, next, LIFE_GONE, NULL, "cannot start its PCP request");
		answer_error(c, call, UPNP_E_ACTION_FAILED);
		return;
	}
	next->call = call;
	next->version = version;
}

static void on_deleted(struct iwf_core *c, struct life *l, const struct pcp_event *ev)
{
	l->flow = NULL; /* freed by pcp/ after this event */
	if (l->phase == LIFE_DELETING) {
		struct upnp_call *call = l->call;
		struct range_op *range = l->range;
		l->call = NULL;
		l->range = NULL;
		struct life *next = overwrite_of(c, l);
		if (ev->timeout || ev->result != PCP_RESULT_SUCCESS) {
			/* No answer, or the server refused: the mapping may still be on the carrier, so
			 * it stays in the table too and is kept alive (the table mirrors the carrier).
			 * An overwrite waiting for this delete is dropped (it was never sent). */
			unsigned code = ev->timeout ? IWF_PCP_NO_ANSWER : ev->result;
			enum upnp_error err = iwf_error_for(code, column(c, l), false);
			if (next)
				life_to(c, next, LIFE_GONE, NULL, "overwrite abandoned: the old mapping was not deleted");
			core_log(c, IWF_LOG_WARN, "delete of %s %u: %s; mapping kept", proto_name(life_rec(c, l)->protocol),
				 life_rec(c, l)->external_port, ev->timeout ? "no answer" : pcp_result_name(ev->result));
			life_to(c, l, LIFE_REPLAYING, NULL, "delete failed");
			if (!life_start_flow(c, l, true, 0))
				life_to(c, l, LIFE_GONE, NULL, "cannot restart its PCP flow");
			if (range)
				range_done(c, range, err);
			else
				answer_error(c, call, err);
			return;
		}
		if (next) {
			start_overwrite(c, l, next, call);
			return;
		}
		life_to(c, l, LIFE_GONE, NULL, "deleted");
		/* Answered after the journal sync: a crash right after "done" must not bring the
		 * mapping back at the next start. */
		if (range)
			range_done(c, range, 0);
		else
			answer_durable(c, call, 0, 0);
		return;
	}
	if (l->phase == LIFE_DISCARD)
		life_to(c, l, LIFE_GONE, NULL, ev->timeout ? "delete gave up" : "deleted on the carrier");
}

static void on_probe(struct iwf_core *c, const struct pcp_event *ev)
{
	if (ev->type == PCP_EVENT_MAPPED && c->probe) {
		/* We learnt the external address (§4.1); the probe's mapping is not wanted. */
		pcp_flow_delete(c->pcp, c->probe, 0, core_now(c));
		c->probe = NULL;
	}
}

void pcp_event_fn(void *arg, const struct pcp_event *ev)
{
	struct iwf_core *c = arg;
	switch (ev->type) {
	case PCP_EVENT_REACHABILITY:
		set_connected(c, ev->reachable);
		if (!ev->reachable) { /* silent: tell the waiting status questions so */
			c->reach_known = true;
			status_answer_waiting(c, false);
		} /* reachable: the response's own event follows, with the external address */
		return;
	case PCP_EVENT_SERVER_LOST_STATE: {
		/* pcp/ has scheduled a MAP with its nonce for every mapped flow (RFC 6887 §8.5). */
		core_log(c, IWF_LOG_WARN, "PCP server lost its state: re-creating %zu mappings",
			 state_table_count(c->table));
		size_t cur = 0, n = 0;
		for (struct life *l; (l = life_next(c, &cur));)
			if (l->phase == LIFE_ACTIVE) {
				life_to(c, l, LIFE_REPLAYING, NULL, "server lost state");
				n++;
			}
		/* It may have come back with another external address (seed 004 §4.1): the
		 * re-created mappings tell it; without any, the probe asks. */
		if (!n)
			sync_probe(c);
		return;
	}
	default:
		break;
	}
	if (ev->type == PCP_EVENT_MAPPED) {
		set_connected(c, true);
		learn_external(c, &ev->external_addr);
	} else if (ev->type == PCP_EVENT_FAILED) {
		/* seed 004 §4.3; a server without PCP version 2 (RFC 6887 §9) offers no service either */
		if (ev->result == PCP_RESULT_NETWORK_FAILURE || ev->result == PCP_RESULT_UNSUPP_VERSION)
			set_connected(c, false);
		else if (!ev->timeout)
			set_connected(c, true);
	}
	if (ev->type == PCP_EVENT_MAPPED || (ev->type == PCP_EVENT_FAILED && !ev->timeout))
		c->reach_known = true;
	status_answer_waiting(c, false);
	if (ev->user == (void *)&c->probe) {
		on_probe(c, ev);
		return;
	}
	struct life *l = ev->user;
	if (!l)
		return;
	switch (ev->type) {
	case PCP_EVENT_MAPPED:
		on_mapped(c, l, ev);
		break;
	case PCP_EVENT_FAILED:
		on_failed(c, l, ev);
		break;
	case PCP_EVENT_RENEW_FAILED:
		on_renew_failed(c, l, ev);
		break;
	case PCP_EVENT_DELETED:
		on_deleted(c, l, ev);
		break;
	default:
		break;
	}
}
