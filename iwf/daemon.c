/*
 * daemon.c - wiring: the core (core.h) gets its clocks, randomness, UPnP completions and a
 * wake-up from libevent; the PCP adapter (pcp_event.h) owns the PCP sockets; upnp/ owns SSDP
 * and HTTP; state/ the journal. The public daemon API of iwf.h (iwf_new / iwf_free).
 */
#include <syslog.h>
#include "core.h"

#include "control.h"
#include "dm.h"
#include "netwatch.h"
#include "pcp_event.h"
#include "startprobe.h"
#include "statuspage.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct iwf {
	struct event_base *base;
	struct iwf_config cfg;
	const struct iwf_logger *log;
	struct state_table *table;
	struct iwf_nat *nat;
	struct iwf_core *core;
	struct pcp_io *io;
	struct upnp_server *upnp;
	struct iwf_netwatch *netwatch;
	struct iwf_startprobe *probe;
	struct iwf_control *control;
	int (*reload)(void *arg, char *msg, size_t cap);
	void *reload_arg;
	uint64_t started_ms;
	struct event *ev_run, *ev_timer;
	char root_url[128];
	char udn[48];           /* "uuid:" and the root device's UUID (the status page) */
	/* While iwf_new runs: the last error the LAN side logged, for the one-line reason. */
	bool starting;
	char start_error[256];
	const char *server_why; /* where the PCP server in use came from */
};

/* ------------------------------------------------------------------ environment */

static uint64_t env_mono(void *arg)
{
	(void)arg;
	return pcp_io_now(); /* CLOCK_MONOTONIC ms, the clock the PCP adapter gives the engine */
}

static int64_t env_wall(void *arg)
{
	(void)arg;
	return (int64_t)time(NULL);
}

static void env_random(void *arg, void *buf, size_t len)
{
	(void)arg;
	evutil_secure_rng_get_bytes(buf, len);
}

static void env_reply(void *arg, struct upnp_call *call, const struct upnp_reply *reply)
{
	(void)arg;
	upnp_call_reply(call, reply);
}

static void env_error(void *arg, struct upnp_call *call, enum upnp_error code)
{
	(void)arg;
	upnp_call_error(call, code);
}

static void env_set_state(void *arg, const struct upnp_state *st)
{
	struct iwf *w = arg;
	if (w->upnp)
		upnp_server_set_state(w->upnp, st);
}

static void env_wakeup(void *arg)
{
	struct iwf *w = arg;
	event_active(w->ev_run, EV_TIMEOUT, 0);
}

static void env_log(void *arg, enum iwf_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void env_log(void *arg, enum iwf_log_level level, const char *fmt, va_list ap)
{
	struct iwf *w = arg;
	iwf_vlog(w->log, level, fmt, ap);
}

/* ------------------------------------------------------------------ the core's timer */

static void arm(struct iwf *w)
{
	uint64_t next = iwf_core_next_deadline(w->core);
	if (next == UINT64_MAX) {
		evtimer_del(w->ev_timer);
		return;
	}
	uint64_t now = env_mono(w), delta = next > now ? next - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(delta / 1000), .tv_usec = (suseconds_t)(delta % 1000) * 1000};
	evtimer_add(w->ev_timer, &tv);
}

/* Runs once per loop turn after anything woke the core: due timers, then ONE journal sync
 * for every change of this turn (group commit), then the answers that waited for it. */
static void on_run(evutil_socket_t fd, short what, void *arg)
{
	struct iwf *w = arg;
	(void)fd;
	(void)what;
	iwf_core_run(w->core);
	arm(w);
}

/* ------------------------------------------------------------------ glue */

static void upnp_action_cb(void *arg, struct upnp_call *call, enum upnp_action action, const struct upnp_args *a,
			   const struct sockaddr *from)
{
	struct iwf *w = arg;
	iwf_core_action(w->core, call, action, a, from);
}

static void control_info(void *arg, struct iwf_control_info *out);

/* The status page (cfg.status_page): only /status and /status.json; the rest is upnp/'s 404. */
static bool upnp_page_cb(void *arg, const char *path, const struct sockaddr *from, struct upnp_page *out)
{
	struct iwf *w = arg;
	struct iwf_control_info info;
	(void)from; /* a LAN host: upnp/ checked its subnet */
	memset(&info, 0, sizeof(info));
	control_info(w, &info);
	struct iwf_status_device dev = {.friendly_name = w->cfg.friendly_name, .udn = w->udn};
	return iwf_status_page(w->core, &info, &dev, path, out);
}

static const struct upnp_ops iwf_upnp_ops = {.action = upnp_action_cb};
static const struct upnp_ops iwf_upnp_ops_status = {.action = upnp_action_cb, .page = upnp_page_cb};

static void upnp_log_cb(void *arg, int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void upnp_log_cb(void *arg, int level, const char *fmt, va_list ap)
{
	struct iwf *w = arg;
	if (w->starting && level <= LOG_ERR) {
		va_list cp;
		va_copy(cp, ap);
		vsnprintf(w->start_error, sizeof(w->start_error), fmt, cp);
		va_end(cp);
	}
	iwf_vlog(w->log, (enum iwf_log_level)level, fmt, ap);
}

static void pcp_log_cb(void *arg, int level, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void pcp_log_cb(void *arg, int level, const char *fmt, va_list ap)
{
	struct iwf *w = arg;
	iwf_vlog(w->log, (enum iwf_log_level)level, fmt, ap);
}

static void pcp_server_cb(void *arg, const struct pcp_server *server, enum pcp_io_server_reason why)
{
	struct iwf *w = arg;
	(void)server;
	/* pcp/ logs the switch itself ("pcp: server ADDR port N (REASON), client address ...");
	 * the daemon only remembers why, for the start-up probe's messages. */
	w->server_why = pcp_io_server_reason_name(why);
}

/* An address or route of the router changed (renumbering of the WAN, a new B4 prefix): the
 * PCP socket is reopened; if our source address changed, every mapping is re-sent at once
 * from the new one with its own nonce (pcp_io_reconnect -> pcp_client_refresh_all). */
static void on_net_changed(void *arg)
{
	struct iwf *w = arg;
	int rc = pcp_io_reconnect(w->io);
	if (rc != 0 && rc != ENOENT)
		iwf_log(w->log, IWF_LOG_WARN, "network changed; PCP socket not reopened: %s", strerror(rc));
}

/* ------------------------------------------------------------------ control socket */

static void control_info(void *arg, struct iwf_control_info *out)
{
	struct iwf *w = arg;
	out->version = IWFD_VERSION;
	out->started_ms = w->started_ms;
	out->upnp_enabled = upnp_server_enabled(w->upnp);
	out->now_ms = env_mono(w);
	struct pcp_server server;
	if (w->io && pcp_io_get_server(w->io, &server)) {
		char addr[INET6_ADDRSTRLEN + 1];
		out->have_server = true;
		pcp_addr_format(&server.addr, addr, sizeof(addr));
		snprintf(out->server, sizeof(out->server), "%s%s%s:%u", strchr(addr, ':') ? "[" : "", addr,
			 strchr(addr, ':') ? "]" : "", server.port);
		out->server_origin = w->server_why;
	}
	struct pcp_io_stats io;
	if (w->io) {
		pcp_io_get_stats(w->io, &io);
		out->announce_resends = io.announce_resends;
	}
}

static int control_reload(void *arg, char *msg, size_t cap)
{
	struct iwf *w = arg;
	if (!w->reload) {
		snprintf(msg, cap, "nothing to reload");
		return -1;
	}
	return w->reload(w->reload_arg, msg, cap);
}

static void control_upnp_enable(void *arg, bool on)
{
	struct iwf *w = arg;
	upnp_server_set_enabled(w->upnp, on);
}

static void control_upnp_stats(void *arg, struct upnp_stats *out)
{
	struct iwf *w = arg;
	upnp_server_stats(w->upnp, out);
}

static const struct iwf_control_ops control_ops = {.info = control_info,
						   .reload = control_reload,
						   .upnp_enable = control_upnp_enable,
						   .upnp_stats = control_upnp_stats};

int iwf_reload(struct iwf *w, const struct iwf_config *cfg, char *msg, size_t cap)
{
	bool servers_changed = cfg->n_pcp_servers != w->cfg.n_pcp_servers ||
			       memcmp(cfg->pcp_servers, w->cfg.pcp_servers, sizeof(cfg->pcp_servers)) != 0;
	if (servers_changed) {
		const char *servers[IWF_MAX_PCP_SERVERS];
		for (size_t i = 0; i < cfg->n_pcp_servers; i++)
			servers[i] = cfg->pcp_servers[i];
		int e = pcp_io_set_servers(w->io, servers, cfg->n_pcp_servers);
		if (e) {
			snprintf(msg, cap, "PCP servers not changed (%s); nothing changed", strerror(e));
			return -1;
		}
		memcpy(w->cfg.pcp_servers, cfg->pcp_servers, sizeof(cfg->pcp_servers));
		w->cfg.n_pcp_servers = cfg->n_pcp_servers;
	}
	iwf_core_reload(w->core, cfg);
	memcpy(w->cfg.rules, cfg->rules, sizeof(cfg->rules));
	w->cfg.n_rules = cfg->n_rules;
	w->cfg.allow_third_party = cfg->allow_third_party;
	w->cfg.max_per_host = cfg->max_per_host;
	w->cfg.log_level = cfg->log_level;
	snprintf(msg, cap, "%zu permission rules, third-party mappings %s, PCP servers %s", cfg->n_rules,
		 cfg->allow_third_party ? "allowed" : "refused", servers_changed ? "changed" : "unchanged");
	return 0;
}

void iwf_set_reload(struct iwf *w, int (*reload)(void *arg, char *msg, size_t cap), void *arg)
{
	w->reload = reload;
	w->reload_arg = arg;
}

int iwf_control_give(struct iwf *w, unsigned uid, unsigned gid, char *detail, size_t cap)
{
	return iwf_control_chown(w->control, (uid_t)uid, (gid_t)gid, detail, cap);
}

const char *iwf_err_name(enum iwf_err err)
{
	static const char *const names[] = {"ok", "invalid configuration", "cannot read configuration",
					    "LAN side failed", "PCP side failed", "out of memory",
					    "control socket failed"};
	return (size_t)err < sizeof(names) / sizeof(names[0]) ? names[err] : "unknown error";
}

/* Open the journal; an unusable file is kept aside as evidence and iwfd starts clean. */
static void open_state(struct iwf *w)
{
	if (!w->cfg.state_file[0])
		return;
	char detail[512];
	struct state_open_report rep;
	enum state_err e = state_table_open(w->table, w->cfg.state_file, &rep, detail, sizeof(detail));
	if (e == STATE_ERR_IO && errno == ENOENT) {
		/* The state directory does not exist yet (first start, tmpfs /var): make it. */
		char dir[sizeof(w->cfg.state_file)];
		snprintf(dir, sizeof(dir), "%s", w->cfg.state_file);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0700) == 0) {
				iwf_log(w->log, IWF_LOG_INFO, "created the state directory %s", dir);
				e = state_table_open(w->table, w->cfg.state_file, &rep, detail, sizeof(detail));
			}
		}
	}
	if (e == STATE_ERR_FORMAT || e == STATE_ERR_VERSION) {
		char moved[600] = "";
		if (state_quarantine(w->cfg.state_file, env_wall(w), moved, sizeof(moved)) == STATE_OK)
			iwf_log(w->log, IWF_LOG_ERROR, "state file unusable (%s); kept as %s; starting clean", detail,
				moved);
		else
			iwf_log(w->log, IWF_LOG_ERROR, "state file unusable (%s); starting clean", detail);
		e = state_table_open(w->table, w->cfg.state_file, &rep, detail, sizeof(detail));
	}
	if (e != STATE_OK) {
		iwf_log(w->log, IWF_LOG_ERROR, "state file %s: %s; mappings are kept in memory only",
			w->cfg.state_file, detail);
		return;
	}
	if (rep.torn_bytes)
		iwf_log(w->log, IWF_LOG_WARN, "state file %s: a torn or damaged tail of %zu bytes was cut off",
			w->cfg.state_file, rep.torn_bytes);
	if (rep.imported_json)
		iwf_log(w->log, IWF_LOG_INFO, "state file %s: converted from the JSON format of iwfd 0.1",
			w->cfg.state_file);
	iwf_log(w->log, IWF_LOG_INFO, "loaded %zu mappings from %s", state_table_count(w->table), w->cfg.state_file);
}

struct iwf *iwf_new(struct event_base *base, const struct iwf_config *cfg, const struct iwf_logger *logger,
		    enum iwf_err *err, char *detail, size_t cap)
{
	struct iwf *w = calloc(1, sizeof(*w));
	*err = IWF_ERR_NOMEM;
	if (!w)
		return NULL;
	w->base = base;
	w->cfg = *cfg;
	w->log = logger;
	w->starting = true;
	struct state_clock clock = {.mono_ms = env_mono, .wall_s = env_wall, .arg = w};
	w->table = state_table_new(&clock);
	w->ev_run = event_new(base, -1, 0, on_run, w);
	w->ev_timer = evtimer_new(base, on_run, w);
	if (!w->table || !w->ev_run || !w->ev_timer)
		goto fail;
	w->nat = iwf_nat_new(cfg->nat_mode, cfg->wan_if, detail, cap);
	if (!w->nat) {
		*err = IWF_ERR_INVAL;
		goto fail;
	}
	open_state(w);

	struct state_meta meta = *state_table_meta(w->table);
	static const uint8_t zero[STATE_UUID_LEN];
	if (memcmp(meta.uuid_igd, zero, sizeof(zero)) == 0) {
		upnp_uuid_random(meta.uuid_igd);
		upnp_uuid_random(meta.uuid_wan_device);
		upnp_uuid_random(meta.uuid_wan_conn_device);
	}
	meta.boot_id++;
	state_table_set_meta(w->table, &meta);

	struct iwf_env env = {
		.mono_ms = env_mono,
		.wall_s = env_wall,
		.random = env_random,
		.reply = env_reply,
		.error = env_error,
		.set_state = env_set_state,
		.wakeup = env_wakeup,
		.log = env_log,
		.arg = w,
	};
	w->core = iwf_core_new(cfg, &env, w->table, w->nat);
	if (!w->core)
		goto fail;

	const char *servers[IWF_MAX_PCP_SERVERS];
	for (size_t i = 0; i < cfg->n_pcp_servers; i++)
		servers[i] = cfg->pcp_servers[i];
	struct pcp_io_config ioc = {
		.servers = servers,
		.n_servers = cfg->n_pcp_servers,
		.listen_announce = cfg->listen_announce,
		.announce_ifname = cfg->wan_if[0] ? cfg->wan_if : NULL, /* else the route to the server */
		/* a NAT64 maps IPv6 hosts: never an IPv4 server, not even from DHCP's file */
		.ipv6_only = strcmp(cfg->nat_mode, "nat64") == 0,
		.log = pcp_log_cb,
		.log_arg = w,
		.on_server = pcp_server_cb,
		.server_arg = w,
	};
	int ioerr = 0;
	w->io = pcp_io_new(base, iwf_core_pcp(w->core), &ioc, &ioerr);
	if (!w->io) {
		*err = IWF_ERR_PCP;
		if (detail)
			snprintf(detail, cap, "PCP client could not start (server %s): %s",
				 cfg->n_pcp_servers ? cfg->pcp_servers[0] : "default router", strerror(ioerr));
		goto fail;
	}
	if (cfg->pcp_servers_file[0]) {
		/* RFC 7291 hand-over by the router's DHCP clients (docs/pcp.md: file format). */
		int werr = pcp_io_watch_servers_file(w->io, cfg->pcp_servers_file, 0);
		if (werr) {
			*err = IWF_ERR_PCP;
			if (detail)
				snprintf(detail, cap, "cannot watch %s: %s", cfg->pcp_servers_file, strerror(werr));
			goto fail;
		}
	}

	int nwerr;
	w->netwatch = iwf_netwatch_new(base, on_net_changed, w, &nwerr);
	if (!w->netwatch)
		iwf_log(w->log, IWF_LOG_WARN, "address changes will not be noticed (rtnetlink: %s)", strerror(nwerr));

	/* TR-181 UPnPIWF.Enable survives a restart (dm.c's store beside the state file): an
	 * operator who turned the IGD off does not see it come back with a reboot. */
	char dm_store[sizeof(w->cfg.state_file) + 4] = "";
	if (cfg->state_file[0])
		snprintf(dm_store, sizeof(dm_store), "%s.dm", cfg->state_file);
	char dm_why[160];
	bool upnp_on = iwf_dm_stored_upnp_enabled(dm_store, dm_why, sizeof(dm_why));
	if (dm_why[0])
		iwf_log(w->log, IWF_LOG_WARN, "%s: %s; the TR-069 settings start from their defaults", dm_store,
			dm_why);
	else if (!upnp_on)
		iwf_log(w->log, IWF_LOG_INFO, "the IGD stays stopped on the LAN (UPnPIWF.Enable 0, stored in %s)",
			dm_store);

	if (cfg->control_socket[0]) {
		/* iwfctl's way in. A path the administrator named must work: not making it is a
		 * start-up error like a busy port (before the LAN side starts, so a failed start
		 * announces nothing there). The default path only warns and iwfd serves
		 * without it: a second iwfd started by hand beside the service (its own state
		 * file, its own LAN) finds the default socket taken, and a system without a
		 * writable /run still gets its IGD (docs/configuration.md). */
		char cdetail[512];
		w->control = iwf_control_new(base, cfg->control_socket, w->core, &control_ops, w, dm_store, cdetail,
					     sizeof(cdetail));
		if (!w->control && cfg->control_socket_set) {
			*err = IWF_ERR_CONTROL;
			if (detail)
				snprintf(detail, cap, "%s", cdetail);
			goto fail;
		}
		if (!w->control)
			iwf_log(w->log, IWF_LOG_WARN, "%s; iwfctl cannot reach this iwfd", cdetail);
	}
	char uuids[3][UPNP_UUID_TEXT];
	upnp_uuid_format(meta.uuid_igd, uuids[0]);
	upnp_uuid_format(meta.uuid_wan_device, uuids[1]);
	upnp_uuid_format(meta.uuid_wan_conn_device, uuids[2]);
	snprintf(w->udn, sizeof(w->udn), "uuid:%s", uuids[0]);
	const char *ifs[IWF_MAX_LAN_IFS];
	for (size_t i = 0; i < cfg->n_lan_ifs; i++)
		ifs[i] = cfg->lan_ifs[i];
	struct upnp_config uc = {
		.igd_version = cfg->igd_version,
		.ppp = cfg->ppp,
		.lan_ifnames = ifs,
		.n_lan_ifnames = cfg->n_lan_ifs,
		.lan_addr = cfg->lan_addr[0] ? cfg->lan_addr : NULL,
		.http_port = cfg->http_port,
		.ipv6 = cfg->upnp_ipv6,
		.uuid_igd = uuids[0],
		.uuid_wan_device = uuids[1],
		.uuid_wan_conn_device = uuids[2],
		.friendly_name = cfg->friendly_name,
		.boot_id = meta.boot_id,
		.config_id = 1,
		.start_stopped = !upnp_on,
		.ops = cfg->status_page ? &iwf_upnp_ops_status : &iwf_upnp_ops,
		.ops_arg = w,
		.log = upnp_log_cb,
		.log_arg = w,
	};
	enum upnp_err uerr = UPNP_OK;
	w->upnp = upnp_server_new(base, &uc, &uerr);
	if (!w->upnp) {
		*err = IWF_ERR_UPNP;
		if (detail && w->start_error[0])
			snprintf(detail, cap, "UPnP server could not start on %s: %s", cfg->lan_ifs[0], w->start_error);
		else if (detail)
			snprintf(detail, cap, "UPnP server could not start on %s: %s", cfg->lan_ifs[0],
				 upnp_err_name(uerr));
		goto fail;
	}
	w->starting = false;
	struct pcp_server server;
	bool have_server = pcp_io_get_server(w->io, &server);
	w->probe = iwf_startprobe_new(base, have_server ? &server : NULL, w->server_why, w->log);
	snprintf(w->root_url, sizeof(w->root_url), "%s", upnp_server_root_url(w->upnp));
	w->started_ms = env_mono(w);
	iwf_core_start(w->core); /* pushes the evented state; PCP_SERVICE_WAIT begins */
	iwf_core_run(w->core);   /* the identity (boot id) is durable before we serve */
	arm(w);
	*err = IWF_OK;
	return w;
fail:
	iwf_free(w);
	return NULL;
}

void iwf_free(struct iwf *w)
{
	if (!w)
		return;
	/* Order: the WAN side closes, the core answers pending calls (501) while the LAN side
	 * still exists, then the LAN side says goodbye. */
	iwf_control_free(w->control); /* before the core: its pending requests are forgotten */
	w->control = NULL;
	iwf_startprobe_free(w->probe);
	iwf_netwatch_free(w->netwatch);
	pcp_io_free(w->io); /* the adapter borrows the core's engine: it goes first */
	w->io = NULL;
	iwf_core_free(w->core);
	w->core = NULL;
	if (w->table) {
		/* A clean stop leaves a fresh snapshot: the next start reads the least. */
		char detail[256];
		if (state_table_compact(w->table, detail, sizeof(detail)) != STATE_OK)
			iwf_log(w->log, IWF_LOG_ERROR, "state not saved at exit: %s", detail);
	}
	upnp_server_free(w->upnp);
	if (w->ev_run)
		event_free(w->ev_run);
	if (w->ev_timer)
		event_free(w->ev_timer);
	state_table_free(w->table);
	iwf_nat_free(w->nat);
	free(w);
}

const char *iwf_root_url(const struct iwf *w)
{
	return w->root_url;
}

void iwf_set_rules(struct iwf *w, const struct iwf_rule *rules, size_t n)
{
	iwf_core_set_rules(w->core, rules, n);
	memcpy(w->cfg.rules, rules, (n > IWF_MAX_RULES ? IWF_MAX_RULES : n) * sizeof(*rules));
}
