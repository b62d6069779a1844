/*
 * control.c - the control socket: a UNIX stream socket (owner-only: the socket 0600 in a
 * 0700 directory), one JSON object per line each way, one answer per request, requests of
 * a connection answered in order (reading pauses while an add or a delete waits for the
 * carrier). Bounded: IWF_CONTROL_MAX_REQUEST bytes a line, IWF_CONTROL_MAX_CLIENTS
 * connections, IWF_CONTROL_IDLE_S of silence. The protocol: docs/control.md.
 */
#include "control.h"
#include "dm.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct ctl_conn {
	struct ctl_conn *next;
	struct iwf_control *ctl;
	struct bufferevent *bev;
	bool waiting;  /* an add or a delete waits for the carrier */
	bool closing;  /* close once the output is written */
};

struct iwf_control {
	struct event_base *base;
	struct iwf_core *core;
	const struct iwf_control_ops *ops;
	void *ops_arg;
	struct evconnlistener *listener;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* made by us, "" = not */
	struct ctl_conn *conns;
	size_t n_conns;
	struct iwf_dm *dm; /* Device.PCP. for the dm.* ops (dm.c) */
};

/* ------------------------------------------------------------------ requests */

static const char *error_name(enum upnp_error e)
{
	switch (e) {
	case UPNP_E_INVALID_ARGS: return "InvalidArgs";
	case UPNP_E_ACTION_FAILED: return "ActionFailed";
	case UPNP_E_NOT_AUTHORIZED: return "ActionNotAuthorized";
	case UPNP_E_NO_SUCH_ENTRY: return "NoSuchEntryInArray";
	case UPNP_E_CONFLICT: return "ConflictInMappingEntry";
	case UPNP_E_REMOTE_HOST_WILDCARD_ONLY: return "RemoteHostOnlySupportsWildcard";
	case UPNP_E_NO_PORT_MAPS_AVAILABLE: return "NoPortMapsAvailable";
	case UPNP_E_CONFLICT_OTHER_MECHANISMS: return "ConflictWithOtherMechanisms";
	case UPNP_E_PORT_MAPPING_NOT_FOUND: return "PortMappingNotFound";
	default: return "Error";
	}
}

static json_t *fail(const char *text)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", text);
}

json_t *iwf_control_admin_answer(enum upnp_error err, uint16_t external_port)
{
	if (err)
		return json_pack("{s:b, s:i, s:s}", "ok", 0, "code", (int)err, "error", error_name(err));
	return json_pack("{s:b, s:i}", "ok", 1, "external_port", (int)external_port);
}

static bool get_proto(json_t *req, enum upnp_proto *out)
{
	const char *p = json_string_value(json_object_get(req, "protocol"));
	if (p && strcasecmp(p, "TCP") == 0)
		*out = UPNP_PROTO_TCP;
	else if (p && strcasecmp(p, "UDP") == 0)
		*out = UPNP_PROTO_UDP;
	else
		return false;
	return true;
}

static bool get_port(json_t *req, const char *key, uint16_t *out)
{
	json_t *v = json_object_get(req, key);
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		return false;
	*out = (uint16_t)json_integer_value(v);
	return true;
}

/* Optional string: absent -> def; present and too long or not a string -> false. */
static bool get_text(json_t *req, const char *key, char *out, size_t cap, const char *def)
{
	json_t *v = json_object_get(req, key);
	const char *s = v ? json_string_value(v) : def;
	if (!s || strlen(s) >= cap)
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

static json_t *do_status(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg)
{
	struct iwf_admin_status st;
	struct iwf_control_info info;
	memset(&info, 0, sizeof(info));
	iwf_core_admin_status(core, &st);
	ops->info(ops_arg, &info);
	json_t *server = info.have_server
		? json_pack("{s:s, s:s, s:s}", "address", info.server, "origin",
			    info.server_origin ? info.server_origin : "",
			    "reachability", !st.reach_known ? "unknown" : st.connected ? "reachable" : "unreachable")
		: json_null();
	return json_pack("{s:b, s:s, s:i, s:s, s:s, s:o, s:o, s:I, s:I, s:I}", "ok", 1, "version",
			 info.version ? info.version : "", "igd_version", st.igd_version, "connection_status",
			 st.connected ? "Connected" : "Disconnected", "external_address", st.external, "pcp_server",
			 server, "epoch", st.have_epoch ? json_integer(st.epoch) : json_null(), "mappings",
			 (json_int_t)st.mappings, "uptime", (json_int_t)((info.now_ms - info.started_ms) / 1000),
			 "connected_for", (json_int_t)st.connected_s);
}

static json_t *do_list(struct iwf_core *core)
{
	size_t n = iwf_core_admin_list(core, NULL, 0);
	struct iwf_admin_entry *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return fail("out of memory");
	n = iwf_core_admin_list(core, v, n);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct iwf_admin_entry *e = &v[i];
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:b, s:I, s:o, s:s, s:s}", "protocol",
				       e->pm.protocol == UPNP_PROTO_TCP ? "TCP" : "UDP", "external_address",
				       e->external_addr, "external_port", e->pm.external_port, "internal_client",
				       e->pm.internal_client, "internal_port", e->pm.internal_port, "remote_host",
				       e->pm.remote_host, "description", e->pm.description, "enabled", e->pm.enabled,
				       "lease_left", (json_int_t)e->pm.lease_duration, "pcp_lifetime_left",
				       e->has_pcp ? json_integer(e->pcp_left_s) : json_null(), "phase", e->phase,
				       "origin", e->is_static ? "static" : "upnp"));
	}
	free(v);
	return json_pack("{s:b, s:o}", "ok", 1, "mappings", arr);
}

/* upnp/'s counters, grouped as docs/control.md shows them. */
static json_t *upnp_stats_json(const struct iwf_control_ops *ops, void *ops_arg)
{
	struct upnp_stats u;
	memset(&u, 0, sizeof(u));
	if (ops && ops->upnp_stats)
		ops->upnp_stats(ops_arg, &u);
#define N(x) (json_int_t)(x)
	json_t *ssdp = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "msearch", N(u.ssdp_msearch), "answered",
				 N(u.ssdp_answered), "no_match", N(u.ssdp_no_match), "rate_limited",
				 N(u.ssdp_rate_limited), "malformed", N(u.ssdp_malformed), "not_lan", N(u.ssdp_not_lan));
	json_t *refused = json_pack("{s:I, s:I, s:I}", "connection_limit", N(u.http_refused_limit), "per_host_limit",
				    N(u.http_refused_per_host), "not_lan", N(u.http_refused_not_lan));
	json_t *http = json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "accepted", N(u.http_accepted), "refused",
				 refused, "bad_request", N(u.http_bad_request), "header_too_big",
				 N(u.http_header_too_big), "body_too_big", N(u.http_body_too_big), "timeout_request",
				 N(u.http_timeout_request), "timeout_idle", N(u.http_timeout_idle), "throttled",
				 N(u.http_throttled));
	json_t *soap = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "requests", N(u.soap_requests), "actions",
				 N(u.soap_actions), "invalid_action_401", N(u.soap_invalid_action), "invalid_args_402",
				 N(u.soap_invalid_args), "other_faults", N(u.soap_other_faults), "refused_stopped",
				 N(u.soap_refused_stopped));
	json_t *gena = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "subscribed", N(u.gena_subscribed), "renewed",
				 N(u.gena_renewed), "unsubscribed", N(u.gena_unsubscribed), "refused_limit",
				 N(u.gena_refused_limit), "rejected", N(u.gena_rejected), "active", N(u.gena_active));
	return json_pack("{s:o, s:o, s:o, s:o, s:I}", "ssdp", ssdp, "http", http, "soap", soap, "gena", gena,
			 "status_page_requests", N(u.pages));
#undef N
}

static json_t *do_stats(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg)
{
	struct iwf_core_stats cs;
	struct pcp_client_stats ps;
	iwf_core_stats(core, &cs);
	pcp_client_get_stats(iwf_core_pcp(core), &ps);
	json_t *actions = json_object(), *errors = json_object(), *results = json_object();
	uint64_t total = 0;
	for (int a = 0; a < UPNP_ACT__COUNT; a++) {
		total += cs.actions[a];
		if (cs.actions[a])
			json_object_set_new(actions, upnp_action_name((enum upnp_action)a), json_integer((json_int_t)cs.actions[a]));
	}
	for (size_t i = 0; i < IWF_STATS_ERROR_CODES && cs.errors[i].code; i++) {
		char code[8];
		snprintf(code, sizeof(code), "%u", cs.errors[i].code);
		json_object_set_new(errors, code, json_integer((json_int_t)cs.errors[i].n));
	}
	for (int r = 0; r <= PCP_RESULT_MAX + 1; r++) {
		if (!ps.results[r])
			continue;
		char code[8];
		snprintf(code, sizeof(code), "%d", r);
		json_object_set_new(results, r <= PCP_RESULT_MAX ? code : "other", json_integer((json_int_t)ps.results[r]));
	}
	json_t *soap = json_pack("{s:I, s:o, s:I, s:o}", "actions", (json_int_t)total, "by_action", actions, "errors",
				 (json_int_t)cs.errors_total, "errors_by_code", errors);
	json_t *pcp = json_pack("{s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I}", "requests", (json_int_t)ps.sent,
				"retransmissions", (json_int_t)ps.retransmitted, "received", (json_int_t)ps.received,
				"responses", (json_int_t)(ps.received - ps.dropped), "results_by_code", results, "dropped",
				(json_int_t)ps.dropped, "lost_state_events", (json_int_t)ps.lost_state_events, "updates",
				(json_int_t)ps.updates);
	return json_pack("{s:b, s:o, s:o, s:o, s:I}", "ok", 1, "soap", soap, "pcp", pcp, "upnp",
			 upnp_stats_json(ops, ops_arg), "admin_requests", (json_int_t)cs.admin_requests);
}

json_t *iwf_control_handle(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg,
			   const char *text, size_t len, iwf_admin_done_fn *done, void *done_arg)
{
	json_error_t jerr;
	json_t *req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		return fail("not a JSON object");
	}
	const char *cmd = json_string_value(json_object_get(req, "command"));
	json_t *ans = NULL;
	enum upnp_proto proto;
	struct upnp_pm_entry pm;
	memset(&pm, 0, sizeof(pm));
	if (!cmd) {
		ans = fail("no \"command\"");
	} else if (strcmp(cmd, "status") == 0) {
		ans = do_status(core, ops, ops_arg);
	} else if (strcmp(cmd, "list") == 0) {
		ans = do_list(core);
	} else if (strcmp(cmd, "stats") == 0) {
		ans = do_stats(core, ops, ops_arg);
	} else if (strcmp(cmd, "reload") == 0) {
		char msg[512] = "";
		int rc = ops->reload ? ops->reload(ops_arg, msg, sizeof(msg)) : -1;
		ans = rc == 0 ? json_pack("{s:b, s:s}", "ok", 1, "message", msg) : fail(msg[0] ? msg : "cannot reload");
	} else if (strcmp(cmd, "add") == 0) {
		json_t *lease = json_object_get(req, "lease");
		json_t *enabled = json_object_get(req, "enabled");
		if (!get_proto(req, &proto) || !get_port(req, "external_port", &pm.external_port) ||
		    !get_text(req, "internal_client", pm.internal_client, sizeof(pm.internal_client), NULL) ||
		    !get_port(req, "internal_port", &pm.internal_port) ||
		    !get_text(req, "remote_host", pm.remote_host, sizeof(pm.remote_host), "") ||
		    !get_text(req, "description", pm.description, sizeof(pm.description), "iwfctl") ||
		    (lease && (!json_is_integer(lease) || json_integer_value(lease) < 0 ||
			       json_integer_value(lease) > UINT32_MAX)) ||
		    (enabled && !json_is_boolean(enabled))) {
			ans = fail("add needs protocol, external_port, internal_client, internal_port "
				   "(optional: remote_host, description, lease, enabled)");
		} else {
			pm.protocol = proto;
			pm.lease_duration = lease ? (uint32_t)json_integer_value(lease) : 0;
			pm.enabled = enabled ? json_is_true(enabled) : true;
			iwf_core_admin_add(core, &pm, done, done_arg);
		}
	} else if (strcmp(cmd, "delete") == 0) {
		if (!get_proto(req, &proto) || !get_port(req, "external_port", &pm.external_port) ||
		    !get_text(req, "remote_host", pm.remote_host, sizeof(pm.remote_host), ""))
			ans = fail("delete needs protocol and external_port (optional: remote_host)");
		else
			iwf_core_admin_delete(core, proto, pm.external_port, pm.remote_host, done, done_arg);
	} else {
		ans = fail("unknown command");
	}
	json_decref(req);
	return ans;
}

/* ------------------------------------------------------------------ connections */

static void conn_free(struct ctl_conn *k)
{
	struct iwf_control *ctl = k->ctl;
	for (struct ctl_conn **p = &ctl->conns; *p; p = &(*p)->next) {
		if (*p == k) {
			*p = k->next;
			break;
		}
	}
	ctl->n_conns--;
	if (k->waiting) {
		iwf_core_admin_cancel(ctl->core, k);
		iwf_dm_cancel(ctl->dm, k);
	}
	bufferevent_free(k->bev);
	free(k);
}

static void conn_send(struct ctl_conn *k, json_t *ans)
{
	char *text = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
	json_decref(ans);
	struct evbuffer *out = bufferevent_get_output(k->bev);
	if (text) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		free(text);
	} else {
		evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"out of memory\"}\n");
	}
}

static void conn_read(struct bufferevent *bev, void *arg);

static void admin_done(void *arg, enum upnp_error err, uint16_t external_port)
{
	struct ctl_conn *k = arg;
	k->waiting = false;
	conn_send(k, iwf_control_admin_answer(err, external_port));
	bufferevent_enable(k->bev, EV_READ);
	conn_read(k->bev, k); /* requests that arrived meanwhile */
}

static void dm_done(void *arg, json_t *ans)
{
	struct ctl_conn *k = arg;
	k->waiting = false;
	conn_send(k, ans);
	bufferevent_enable(k->bev, EV_READ);
	conn_read(k->bev, k);
}

/* A dm.* request (docs/tr069.md) goes to dm.c; anything else to iwf_control_handle. */
static json_t *handle_line(struct ctl_conn *k, const char *line, size_t len)
{
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	const char *op = json_string_value(json_object_get(req, "op"));
	if (k->ctl->dm && op && strncmp(op, "dm.", 3) == 0) {
		struct iwf_control_info info;
		memset(&info, 0, sizeof(info));
		k->ctl->ops->info(k->ctl->ops_arg, &info);
		json_t *ans = iwf_dm_handle(k->ctl->dm, &info, req, dm_done, k);
		json_decref(req);
		return ans;
	}
	json_decref(req);
	return iwf_control_handle(k->ctl->core, k->ctl->ops, k->ctl->ops_arg, line, len, admin_done, k);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!k->waiting && !k->closing) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (!line) {
			if (evbuffer_get_length(in) >= IWF_CONTROL_MAX_REQUEST) {
				conn_send(k, fail("request too long"));
				k->closing = true;
				bufferevent_disable(bev, EV_READ);
			}
			return;
		}
		if (len >= IWF_CONTROL_MAX_REQUEST) {
			free(line);
			conn_send(k, fail("request too long"));
			k->closing = true;
			bufferevent_disable(bev, EV_READ);
			return;
		}
		k->waiting = true; /* the callback may come before iwf_control_handle returns */
		json_t *ans = handle_line(k, line, len);
		free(line);
		if (ans) {
			k->waiting = false;
			conn_send(k, ans);
		} else if (k->waiting) {
			bufferevent_disable(bev, EV_READ); /* one request at a time */
		}
	}
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *k = arg;
	if (k->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(k);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what; /* EOF, error or idle timeout: the connection ends */
	conn_free(arg);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct iwf_control *ctl = arg;
	(void)lis;
	(void)sa;
	(void)salen;
	struct ctl_conn *k = ctl->n_conns < IWF_CONTROL_MAX_CLIENTS ? calloc(1, sizeof(*k)) : NULL;
	struct bufferevent *bev = k ? bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (!bev) {
		free(k);
		evutil_closesocket(fd);
		return;
	}
	k->ctl = ctl;
	k->bev = bev;
	k->next = ctl->conns;
	ctl->conns = k;
	ctl->n_conns++;
	struct timeval idle = {.tv_sec = IWF_CONTROL_IDLE_S};
	bufferevent_set_timeouts(bev, &idle, &idle);
	bufferevent_setwatermark(bev, EV_READ, 0, IWF_CONTROL_MAX_REQUEST + 1);
	bufferevent_setcb(bev, conn_read, conn_write, conn_event, k);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* ------------------------------------------------------------------ the socket */

static struct iwf_control *ctl_fail(struct iwf_control *ctl, char *detail, size_t cap, const char *what, int err)
{
	if (detail)
		snprintf(detail, cap, "control socket %s: %s: %s", ctl->path, what, strerror(err));
	iwf_control_free(ctl);
	return NULL;
}

struct iwf_control *iwf_control_new(struct event_base *base, const char *path, struct iwf_core *core,
				    const struct iwf_control_ops *ops, void *arg, const char *dm_store, char *detail,
				    size_t cap)
{
	struct iwf_control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->base = base;
	ctl->core = core;
	ctl->ops = ops;
	ctl->ops_arg = arg;
	ctl->dm = iwf_dm_new(core, ops, arg, dm_store);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path) || path[0] != '/') {
		snprintf(ctl->path, sizeof(ctl->path), "%.40s...", path);
		return ctl_fail(ctl, detail, cap, "not an absolute path shorter than 108 bytes", EINVAL);
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);

	/* Its directory: made 0700 when missing (/run/iwfd on a tmpfs /run). */
	char dir[sizeof(ctl->dir)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == 0)
			snprintf(ctl->dir, sizeof(ctl->dir), "%s", dir);
		else if (errno != EEXIST)
			return ctl_fail(ctl, detail, cap, "cannot make its directory", errno);
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ctl_fail(ctl, detail, cap, "socket", errno);
	/* A socket file left by an iwfd that died is replaced; one that answers is another
	 * iwfd's and is left alone. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && S_ISSOCK(st.st_mode) &&
			    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (probe >= 0)
			close(probe);
		if (live || !S_ISSOCK(st.st_mode)) {
			close(fd);
			return ctl_fail(ctl, detail, cap, live ? "another process listens on it" : "exists and is no socket",
					EADDRINUSE);
		}
		unlink(path);
	}
	mode_t old = umask(0177); /* the socket is born 0600 */
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	int e = errno;
	umask(old);
	if (rc != 0) {
		close(fd);
		return ctl_fail(ctl, detail, cap, "bind", e);
	}
	if (chmod(path, 0600) != 0 || listen(fd, 8) != 0) {
		e = errno;
		close(fd);
		unlink(path);
		return ctl_fail(ctl, detail, cap, "listen", e);
	}
	ctl->listener = evconnlistener_new(base, on_accept, ctl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!ctl->listener) {
		close(fd);
		unlink(path);
		return ctl_fail(ctl, detail, cap, "listener", ENOMEM);
	}
	return ctl;
}

int iwf_control_chown(struct iwf_control *ctl, uid_t uid, gid_t gid, char *detail, size_t cap)
{
	if (!ctl)
		return 0;
	if (lchown(ctl->path, uid, gid) != 0 || (ctl->dir[0] && lchown(ctl->dir, uid, gid) != 0)) {
		snprintf(detail, cap, "control socket %s: chown: %s", ctl->path, strerror(errno));
		return -1;
	}
	return 0;
}

void iwf_control_free(struct iwf_control *ctl)
{
	if (!ctl)
		return;
	while (ctl->conns)
		conn_free(ctl->conns);
	iwf_dm_free(ctl->dm);
	if (ctl->listener) {
		evconnlistener_free(ctl->listener);
		unlink(ctl->path); /* may fail after dropping privileges without --user: harmless */
		if (ctl->dir[0])
			rmdir(ctl->dir);
	}
	free(ctl);
}
