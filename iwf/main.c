/*
 * main.c - the iwfd daemon: command line, configuration, signals, the event loop.
 *
 * The command line is a contract (operators, tests and benchmarks rely on it): extend it,
 * never break it. Flags override the JSON configuration file.
 */
#include "iwf.h"
#include "service.h"
#include "privs.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#ifndef IWFD_VERSION
#define IWFD_VERSION "unknown"
#endif

/* The only globals of the program live here (STYLE.md rule 10). */
static struct iwf_logger g_log = {.level = IWF_LOG_INFO};
static const char *g_config_path;
static char g_config_abs[4096]; /* g_config_path made absolute (SIGHUP after chdir("/")) */

__attribute__((format(printf, 2, 3))) static void usage_printf(FILE *out, const char *fmt, ...);
static void usage_printf(FILE *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
}

static void usage(FILE *out)
{
	usage_printf(out,
		"Usage: iwfd [OPTION]...\n"
		"UPnP IGD-PCP Interworking Function: an Internet Gateway Device on the LAN whose\n"
		"port mappings are made on the carrier's NAT with PCP (RFC 6887).\n"
		"\n"
		"  -c, --config FILE      JSON configuration file (flags override it)\n"
		"  --lan-if IFNAME        LAN interface for SSDP and HTTP (repeatable)\n"
		"  --lan-addr ADDR        IPv4 address to serve HTTP on (default: first address of the first LAN interface)\n"
		"  --http-port N          HTTP port for descriptions and control (default %u;\n"
		"                         0: any free port)\n"
		"  --upnp-ipv6            also serve UPnP over IPv6 on the LAN interfaces (SSDP on\n"
		"                         ff02::c, HTTP on their IPv6 addresses; default off)\n"
		"  --pcp-server ADDR[:PORT]  PCP server (repeatable, tried in order; default port 5351;\n"
		"                         [V6]:PORT for IPv6; none given: the default router)\n"
		"  --pcp-servers-file FILE   PCP servers handed over by the DHCP client (RFC 7291),\n"
		"                         one per line, watched while running; wins when not empty\n"
		"  --state FILE           where the mapping table is kept across restarts\n"
		"                         (default " IWF_DEFAULT_STATE_FILE ")\n"
		"  --no-state             keep the table in memory only (a restart orphans the\n"
		"                         carrier's mappings until they expire)\n"
		"  --igd 1|2              device version: IGD:1 (default) or IGD:2\n"
		"  -f, --foreground       stay in the foreground and log to stderr (to the journal\n"
		"                         with priorities under systemd); else detach and log to syslog\n"
		"  -d                     foreground and debug: -f --log-level debug\n"
		"  --log-level LEVEL      error, warn, info (default) or debug\n"
		"  --nat none|nftables|clat|nat64  the router's own NAT: none (DS-Lite, default),\n"
		"                         nftables (cascaded NAT: iwfd installs the LAN DNAT rules),\n"
		"                         clat (464XLAT: the router's CLAT translates the LAN to IPv6) or\n"
		"                         nat64 (IPv6 LAN hosts get IPv4 ports from the NAT64 carrier)\n"
		"  --clat-prefix P/LEN    with --nat clat or nat64: the CLAT's IPv6 prefix for IPv4 LAN\n"
		"                         hosts (RFC 6052)\n"
		"  --wan-if IFNAME        WAN interface (for --nat nftables; PCP ANNOUNCE is taken only\n"
		"                         from it; default: the interface of the route to the server)\n"
		"  --user NAME            run as this user once the sockets are open\n"
		"  --control-socket PATH  iwfctl's UNIX socket (default " IWF_DEFAULT_CONTROL_SOCKET ";\n"
		"                         \"\" for none)\n"
		"  --status-page          serve a status page for people at /status on the HTTP port\n"
		"                         (LAN only; its data at /status.json)\n"
		"  -h, --help             show this help and exit\n"
		"  -V, --version          show the version and exit\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop cleanly (ssdp:byebye, state saved); SIGHUP reloads the\n"
		"rules, allow_third_party, log level and PCP servers from the configuration file\n"
		"(as iwfctl reload).\n"
		"Exit status: 0 stopped cleanly, 1 could not start (the reason is on stderr, also\n"
		"when detaching), 2 bad command line or configuration. Only one iwfd runs per state\n"
		"file (lock STATE.lock). Manual: iwfd(8), iwfd.json(5), iwfctl(8).\n",
		IWF_DEFAULT_HTTP_PORT);
}

enum { OPT_CONFIG = 256, OPT_LAN_IF, OPT_LAN_ADDR, OPT_HTTP_PORT, OPT_PCP_SERVER, OPT_STATE,
       OPT_IGD, OPT_FOREGROUND, OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION, OPT_NAT, OPT_WAN_IF,
       OPT_PCP_SERVERS_FILE, OPT_NO_STATE, OPT_USER, OPT_CONTROL_SOCKET, OPT_CLAT_PREFIX,
       OPT_UPNP_IPV6, OPT_STATUS_PAGE };

static const struct option long_opts[] = {
	{"config", required_argument, NULL, OPT_CONFIG},
	{"lan-if", required_argument, NULL, OPT_LAN_IF},
	{"lan-addr", required_argument, NULL, OPT_LAN_ADDR},
	{"http-port", required_argument, NULL, OPT_HTTP_PORT},
	{"upnp-ipv6", no_argument, NULL, OPT_UPNP_IPV6},
	{"pcp-server", required_argument, NULL, OPT_PCP_SERVER},
	{"state", required_argument, NULL, OPT_STATE},
	{"no-state", no_argument, NULL, OPT_NO_STATE},
	{"igd", required_argument, NULL, OPT_IGD},
	{"foreground", no_argument, NULL, OPT_FOREGROUND},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"nat", required_argument, NULL, OPT_NAT},
	{"pcp-servers-file", required_argument, NULL, OPT_PCP_SERVERS_FILE},
	{"wan-if", required_argument, NULL, OPT_WAN_IF},
	{"clat-prefix", required_argument, NULL, OPT_CLAT_PREFIX},
	{"user", required_argument, NULL, OPT_USER},
	{"control-socket", required_argument, NULL, OPT_CONTROL_SOCKET},
	{"status-page", no_argument, NULL, OPT_STATUS_PAGE},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static bool parse_port(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 65535 || *s == '-' || *s == '+')
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool copy_arg(char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap)
		return false;
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

/* Flags given on the command line, applied over the configuration file. */
struct cli {
	char lan_ifs[IWF_MAX_LAN_IFS][32];
	size_t n_lan_ifs;
	const char *lan_addr, *state, *nat, *wan_if, *servers_file, *user, *control, *clat_prefix;
	char pcp[IWF_MAX_PCP_SERVERS][80];
	size_t n_pcp;
	bool http_port_set, igd_set, log_set, foreground, upnp_ipv6, status_page;
	uint16_t http_port;
	int igd;
	enum iwf_log_level log_level;
};

static int parse_cli(int argc, char **argv, struct cli *c)
{
	int opt;
	/* Short flags in miniupnpd's spirit (-d: foreground + debug); each is also a long one. */
	while ((opt = getopt_long(argc, argv, "c:dfhV", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			c->log_level = IWF_LOG_DEBUG;
			c->log_set = true;
			c->foreground = true;
			break;
		case 'c':
		case OPT_CONFIG:
			g_config_path = optarg;
			break;
		case OPT_LAN_IF:
			if (c->n_lan_ifs == IWF_MAX_LAN_IFS || !copy_arg(c->lan_ifs[c->n_lan_ifs], 32, optarg)) {
				fprintf(stderr, "iwfd: --lan-if: too many interfaces or name too long\n");
				return 2;
			}
			c->n_lan_ifs++;
			break;
		case OPT_LAN_ADDR:
			c->lan_addr = optarg;
			break;
		case OPT_HTTP_PORT:
			if (!parse_port(optarg, &c->http_port)) {
				fprintf(stderr, "iwfd: --http-port: 0..65535 expected, got '%s'\n", optarg);
				return 2;
			}
			c->http_port_set = true;
			break;
		case OPT_PCP_SERVER:
			if (c->n_pcp == IWF_MAX_PCP_SERVERS || !copy_arg(c->pcp[c->n_pcp], 80, optarg)) {
				fprintf(stderr, "iwfd: --pcp-server: too many servers or address too long\n");
				return 2;
			}
			c->n_pcp++;
			break;
		case OPT_STATE:
			c->state = optarg;
			break;
		case OPT_NO_STATE:
			c->state = "";
			break;
		case OPT_IGD:
			if (strcmp(optarg, "1") && strcmp(optarg, "2")) {
				fprintf(stderr, "iwfd: --igd: 1 or 2 expected, got '%s'\n", optarg);
				return 2;
			}
			c->igd = optarg[0] - '0';
			c->igd_set = true;
			break;
		case 'f':
		case OPT_FOREGROUND:
			c->foreground = true;
			break;
		case OPT_LOG_LEVEL:
			if (!iwf_log_level_parse(optarg, &c->log_level)) {
				fprintf(stderr, "iwfd: --log-level: error, warn, info or debug expected\n");
				return 2;
			}
			c->log_set = true;
			break;
		case OPT_NAT:
			if (!iwf_nat_mode_known(optarg)) {
				fprintf(stderr, "iwfd: --nat: none, nftables, clat or nat64 expected, got '%s'\n", optarg);
				return 2;
			}
			c->nat = optarg;
			break;
		case OPT_WAN_IF:
			c->wan_if = optarg;
			break;
		case OPT_CLAT_PREFIX:
			c->clat_prefix = optarg;
			break;
		case OPT_PCP_SERVERS_FILE:
			c->servers_file = optarg;
			break;
		case OPT_USER:
			c->user = optarg;
			break;
		case OPT_CONTROL_SOCKET:
			c->control = optarg;
			break;
		case OPT_UPNP_IPV6:
			c->upnp_ipv6 = true;
			break;
		case OPT_STATUS_PAGE:
			c->status_page = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return -1;
		case 'V':
		case OPT_VERSION:
			printf("iwfd %s\n", IWFD_VERSION);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "iwfd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

static int build_config(const struct cli *c, struct iwf_config *cfg)
{
	char detail[512];
	iwf_config_init(cfg);
	if (g_config_path && iwf_config_load(cfg, g_config_path, detail, sizeof(detail)) != IWF_OK) {
		/* Name the file unless the detail does (jansson's errors name it). */
		if (strstr(detail, g_config_path))
			fprintf(stderr, "iwfd: %s\n", detail);
		else
			fprintf(stderr, "iwfd: %s: %s\n", g_config_path, detail);
		return 2;
	}
	if (c->n_lan_ifs) {
		memcpy(cfg->lan_ifs, c->lan_ifs, sizeof(c->lan_ifs));
		cfg->n_lan_ifs = c->n_lan_ifs;
	}
	if (c->lan_addr && !copy_arg(cfg->lan_addr, sizeof(cfg->lan_addr), c->lan_addr)) {
		fprintf(stderr, "iwfd: --lan-addr too long\n");
		return 2;
	}
	if (c->n_pcp) {
		memcpy(cfg->pcp_servers, c->pcp, sizeof(c->pcp));
		cfg->n_pcp_servers = c->n_pcp;
	}
	if (c->state && !copy_arg(cfg->state_file, sizeof(cfg->state_file), c->state)) {
		fprintf(stderr, "iwfd: --state path too long\n");
		return 2;
	}
	if (c->nat)
		copy_arg(cfg->nat_mode, sizeof(cfg->nat_mode), c->nat);
	if (c->clat_prefix && !iwf_clat_prefix_parse(c->clat_prefix, &cfg->clat_prefix, &cfg->clat_prefix_len)) {
		fprintf(stderr, "iwfd: --clat-prefix: an IPv6 prefix ADDR/LEN, LEN 32, 40, 48, 56, 64 or 96 expected\n");
		return 2;
	}
	if (c->servers_file &&
	    !copy_arg(cfg->pcp_servers_file, sizeof(cfg->pcp_servers_file), c->servers_file)) {
		fprintf(stderr, "iwfd: --pcp-servers-file path too long\n");
		return 2;
	}
	if (c->wan_if && !copy_arg(cfg->wan_if, sizeof(cfg->wan_if), c->wan_if)) {
		fprintf(stderr, "iwfd: --wan-if name too long\n");
		return 2;
	}
	if (c->user && !copy_arg(cfg->user, sizeof(cfg->user), c->user)) {
		fprintf(stderr, "iwfd: --user name too long\n");
		return 2;
	}
	if (c->control && (!copy_arg(cfg->control_socket, sizeof(cfg->control_socket), c->control) ||
			   (c->control[0] && c->control[0] != '/'))) {
		fprintf(stderr, "iwfd: --control-socket: absolute path (shorter than 108 bytes) or \"\" expected\n");
		return 2;
	}
	if (c->control)
		cfg->control_socket_set = true;
	if (c->http_port_set)
		cfg->http_port = c->http_port;
	if (c->upnp_ipv6)
		cfg->upnp_ipv6 = true;
	if (c->igd_set)
		cfg->igd_version = c->igd;
	if (c->log_set)
		cfg->log_level = c->log_level;
	if (c->foreground)
		cfg->foreground = true;
	if (c->status_page)
		cfg->status_page = true;
	if (iwf_config_check(cfg, detail, sizeof(detail)) != IWF_OK) {
		fprintf(stderr, "iwfd: %s\n", detail);
		return 2;
	}
	/* Paths are resolved now: detaching changes to "/" before they are used. */
	if (!svc_path_absolute(cfg->state_file, sizeof(cfg->state_file))) {
		fprintf(stderr, "iwfd: --state: path too long once made absolute\n");
		return 2;
	}
	if (!svc_path_absolute(cfg->pcp_servers_file, sizeof(cfg->pcp_servers_file))) {
		fprintf(stderr, "iwfd: --pcp-servers-file: path too long once made absolute\n");
		return 2;
	}
	if (g_config_path) {
		snprintf(g_config_abs, sizeof(g_config_abs), "%s", g_config_path);
		if (strlen(g_config_path) >= sizeof(g_config_abs) ||
		    !svc_path_absolute(g_config_abs, sizeof(g_config_abs))) {
			fprintf(stderr, "iwfd: --config: path too long once made absolute\n");
			return 2;
		}
		g_config_path = g_config_abs;
	}
	return 0;
}

struct loop_ctx {
	struct event_base *base;
	struct iwf *iwf;
	const struct cli *cli; /* flags win over the file at a reload too */
};

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct loop_ctx *ctx = arg;
	iwf_log(&g_log, IWF_LOG_INFO, "signal %d: shutting down", (int)sig);
	event_base_loopbreak(ctx->base);
}

/* What can change without a restart, from the configuration file (SIGHUP, iwfctl reload):
 * iwf_reload (rules, allow_third_party, log level, PCP servers). 0 with a message, or -1 with the reason. */
static int reload(void *arg, char *msg, size_t cap)
{
	struct loop_ctx *ctx = arg;
	if (!g_config_path) {
		snprintf(msg, cap, "no configuration file to reload");
		return -1;
	}
	struct iwf_config cfg;
	char detail[512];
	iwf_config_init(&cfg);
	if (iwf_config_load(&cfg, g_config_path, detail, sizeof(detail)) != IWF_OK) {
		snprintf(msg, cap, "%s; nothing changed", detail);
		return -1;
	}
	if (ctx->cli->log_set)
		cfg.log_level = ctx->cli->log_level; /* --log-level / -d win over the file, as at start */
	if (ctx->cli->n_pcp) {
		memcpy(cfg.pcp_servers, ctx->cli->pcp, sizeof(ctx->cli->pcp));
		cfg.n_pcp_servers = ctx->cli->n_pcp;
	}
	char what[400];
	if (iwf_reload(ctx->iwf, &cfg, what, sizeof(what)) != 0) {
		snprintf(msg, cap, "%s", what);
		return -1;
	}
	g_log.level = cfg.log_level;
	snprintf(msg, cap, "%s, log level %s", what,
		 g_log.level == IWF_LOG_DEBUG ? "debug" : g_log.level == IWF_LOG_INFO ? "info"
							  : g_log.level == IWF_LOG_WARN ? "warn" : "error");
	return 0;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	char msg[600];
	int rc = reload(arg, msg, sizeof(msg));
	iwf_log(&g_log, rc ? IWF_LOG_ERROR : IWF_LOG_INFO, "SIGHUP: %s", msg);
}

/* A start-up error: one line in the log and, when the log is not stderr (detaching: syslog),
 * also on stderr, which is still the starting shell's or service manager's. Returns 1. */
__attribute__((format(printf, 1, 2))) static int start_failed(const char *fmt, ...);
static int start_failed(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	iwf_log(&g_log, IWF_LOG_ERROR, "%s", msg);
	if (g_log.syslog)
		fprintf(stderr, "iwfd: %s\n", msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct cli c;
	memset(&c, 0, sizeof(c));
	int rc = parse_cli(argc, argv, &c);
	if (rc)
		return rc < 0 ? 0 : rc;
	struct iwf_config cfg;
	if ((rc = build_config(&c, &cfg)) != 0)
		return rc;
	g_log.level = cfg.log_level;
	struct iwf_privs privs; /* looked up before detaching: a bad --user is told on stderr */
	char pdetail[512];
	if (iwf_privs_prepare(&privs, cfg.user, strcmp(cfg.nat_mode, "nftables") == 0, pdetail, sizeof(pdetail))) {
		fprintf(stderr, "iwfd: --user: %s\n", pdetail);
		return 2;
	}
	/* Detach first, start everything in the detached process, and only then let the
	 * starting process exit 0: every start-up error below is reported on stderr and in the
	 * exit status, with and without --foreground (service.h). */
	int ready_fd = -1;
	if (!cfg.foreground) {
		int e = svc_detach(&ready_fd);
		if (e) {
			fprintf(stderr, "iwfd: cannot detach: %s\n", strerror(e));
			return 1;
		}
		openlog("iwfd", LOG_PID, LOG_DAEMON);
		g_log.syslog = true;
	} else if (svc_stderr_is_journal()) {
		g_log.journal = true;
	}
	signal(SIGPIPE, SIG_IGN);

	/* One iwfd per state file: two would answer on the LAN with the same UUIDs and write
	 * one journal. Held until exit (the kernel releases it however the process ends). */
	int lock_fd = -1;
	if (cfg.state_file[0]) {
		char why[1024];
		if ((lock_fd = svc_lock_state(cfg.state_file, why, sizeof(why))) < 0)
			return start_failed("cannot start: %s", why);
	}

	iwf_log(&g_log, IWF_LOG_DEBUG, "starting iwfd %s: LAN %s%s, HTTP port %u, %zu PCP server(s)%s%s, state %s, config %s",
		IWFD_VERSION, cfg.lan_ifs[0], cfg.n_lan_ifs > 1 ? " (and more)" : "", cfg.http_port, cfg.n_pcp_servers,
		cfg.pcp_servers_file[0] ? " + hand-over file " : "", cfg.pcp_servers_file,
		cfg.state_file[0] ? cfg.state_file : "in memory only", g_config_path ? g_config_path : "none");
	struct loop_ctx ctx = {0};
	ctx.base = event_base_new();
	if (!ctx.base)
		return start_failed("cannot start: cannot create the event loop");
	enum iwf_err err;
	char detail[512] = "";
	ctx.iwf = iwf_new(ctx.base, &cfg, &g_log, &err, detail, sizeof(detail));
	if (!ctx.iwf) {
		event_base_free(ctx.base);
		return start_failed("cannot start: %s%s%s", iwf_err_name(err), detail[0] ? ": " : "", detail);
	}
	/* Sockets open, state directory ready: keep only what this mode needs (docs/robustness.md). */
	if (iwf_privs_own_state(&privs, cfg.state_file, pdetail, sizeof(pdetail)) ||
	    (privs.switch_user && iwf_control_give(ctx.iwf, privs.uid, privs.gid, pdetail, sizeof(pdetail))) ||
	    iwf_privs_drop(&privs, pdetail, sizeof(pdetail))) {
		iwf_free(ctx.iwf);
		event_base_free(ctx.base);
		return start_failed("cannot drop privileges: %s", pdetail);
	}
	iwf_privs_describe(pdetail, sizeof(pdetail));
	iwf_log(&g_log, IWF_LOG_INFO, "privileges: %s", pdetail);
	ctx.cli = &c;
	iwf_set_reload(ctx.iwf, reload, &ctx);
	struct event *ev_term = evsignal_new(ctx.base, SIGTERM, on_stop, &ctx);
	struct event *ev_int = evsignal_new(ctx.base, SIGINT, on_stop, &ctx);
	struct event *ev_hup = evsignal_new(ctx.base, SIGHUP, on_hup, &ctx);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);

	iwf_log(&g_log, IWF_LOG_INFO, "ready: %s (IGD:%d, PCP server %s, state %s)", iwf_root_url(ctx.iwf),
		cfg.igd_version, cfg.n_pcp_servers ? cfg.pcp_servers[0] : "from the default router",
		cfg.state_file[0] ? cfg.state_file : "in memory only");
	char status[256];
	snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %s", iwf_root_url(ctx.iwf));
	int nerr = svc_notify(status);
	if (nerr)
		iwf_log(&g_log, IWF_LOG_WARN, "cannot tell systemd we are ready ($NOTIFY_SOCKET): %s", strerror(nerr));
	svc_detach_ready(ready_fd);
	event_base_dispatch(ctx.base);

	svc_notify("STOPPING=1");
	iwf_free(ctx.iwf);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(ctx.base);
	if (lock_fd >= 0)
		close(lock_fd);
	iwf_log(&g_log, IWF_LOG_INFO, "stopped");
	return 0;
}
