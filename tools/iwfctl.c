/*
 * iwfctl.c - the administrator's client of iwfd's control socket (docs/control.md): one
 * request line, one answer line, printed as a table (default) or as the JSON itself
 * (--json). Exit status: 0 done, 1 iwfd refused or failed the request, 2 bad command line,
 * 3 iwfd could not be reached or did not answer.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/iwfd/control"
#define MAX_ANSWER (8u << 20)      /* a list of ~30,000 mappings */
#define ANSWER_TIMEOUT_MS 30000    /* an add waits for the carrier (answer_deadline_ms) */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: iwfctl [--socket PATH] [--json] COMMAND [ARGS]\n"
		"Ask a running iwfd (UPnP IGD-PCP interworking) through its control socket.\n"
		"\n"
		"Commands:\n"
		"  status                 version, connection, external address, PCP server, epoch,\n"
		"                         mapping count, uptime\n"
		"  list                   every mapping, UPnP and static\n"
		"  add PROTO EXT_PORT CLIENT INT_PORT [DESCRIPTION]\n"
		"                         add a static mapping (PROTO: tcp or udp); options\n"
		"                         --lease SECONDS (default 0: until deleted), --remote-host ADDR\n"
		"  delete PROTO EXT_PORT [REMOTE_HOST]\n"
		"                         delete a mapping, static or UPnP, here and on the carrier\n"
		"  reload                 re-read what can change without a restart\n"
		"  stats                  counters: SOAP, PCP, and the LAN side (SSDP, HTTP\n"
		"                         refusals by limit, SOAP parsing, GENA, status page)\n"
		"\n"
		"  -s, --socket PATH      the control socket (default " DEFAULT_SOCKET ")\n"
		"  -j, --json             print iwfd's JSON answer instead of a table\n"
		"  -h, --help             show this help\n"
		"Exit status: 0 done, 1 refused or failed, 2 bad command line, 3 iwfd not reachable.\n"
		"Manual: iwfctl(8).\n");
}

/* ------------------------------------------------------------------ talking */

static int connect_to(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "iwfctl: %s: path too long\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "iwfctl: cannot reach iwfd at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Send the request, read one answer line; a new string or NULL (reported). */
static char *ask(const char *path, const char *request)
{
	int fd = connect_to(path);
	if (fd < 0)
		return NULL;
	size_t len = strlen(request);
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "iwfctl: sending to iwfd: %s\n", strerror(errno));
			close(fd);
			return NULL;
		}
		off += (size_t)n;
	}
	size_t cap = 4096, have = 0;
	char *buf = malloc(cap);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (buf) {
		char *nl = memchr(buf, '\n', have);
		if (nl) {
			*nl = '\0';
			close(fd);
			return buf;
		}
		int pr = poll(&p, 1, ANSWER_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			fprintf(stderr, "iwfctl: iwfd did not answer within %d s\n", ANSWER_TIMEOUT_MS / 1000);
			break;
		}
		if (have == cap) {
			char *nb = cap < MAX_ANSWER ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				fprintf(stderr, "iwfctl: answer too long\n");
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + have, cap - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "iwfctl: iwfd closed the connection without an answer\n");
			break;
		}
		have += (size_t)n;
	}
	free(buf);
	close(fd);
	return NULL;
}

/* ------------------------------------------------------------------ printing */

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void duration(char *out, size_t cap, long long s)
{
	if (s >= 86400)
		snprintf(out, cap, "%lldd%02lldh%02lldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(out, cap, "%lldh%02lldm%02llds", s / 3600, s % 3600 / 60, s % 60);
	else
		snprintf(out, cap, "%llds", s);
}

static void print_status(json_t *a)
{
	char up[32];
	duration(up, sizeof(up), num(a, "uptime"));
	json_t *srv = json_object_get(a, "pcp_server");
	printf("iwfd %s, IGD:%lld, up %s\n", str(a, "version"), num(a, "igd_version"), up);
	printf("connection:       %s\n", str(a, "connection_status"));
	printf("external address: %s\n", *str(a, "external_address") ? str(a, "external_address") : "(not known)");
	if (json_is_object(srv))
		printf("PCP server:       %s (%s), %s\n", str(srv, "address"), str(srv, "origin"),
		       str(srv, "reachability"));
	else
		printf("PCP server:       none\n");
	json_t *epoch = json_object_get(a, "epoch");
	if (json_is_integer(epoch))
		printf("epoch:            %lld\n", (long long)json_integer_value(epoch));
	else
		printf("epoch:            (no answer yet)\n");
	printf("mappings:         %lld\n", num(a, "mappings"));
}

static void print_list(json_t *a)
{
	json_t *v = json_object_get(a, "mappings");
	printf("%-5s %-21s %-21s %-15s %-9s %-9s %-9s %-6s %s\n", "PROTO", "EXTERNAL", "INTERNAL", "REMOTE", "LEASE",
	       "PCP", "PHASE", "ORIGIN", "DESCRIPTION");
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		char ext[64], in[64], lease[32], pcp[32];
		snprintf(ext, sizeof(ext), "%s:%lld", *str(e, "external_address") ? str(e, "external_address") : "*",
			 num(e, "external_port"));
		snprintf(in, sizeof(in), "%s:%lld", str(e, "internal_client"), num(e, "internal_port"));
		if (num(e, "lease_left"))
			duration(lease, sizeof(lease), num(e, "lease_left"));
		else
			snprintf(lease, sizeof(lease), "-");
		json_t *p = json_object_get(e, "pcp_lifetime_left");
		if (json_is_integer(p))
			duration(pcp, sizeof(pcp), json_integer_value(p));
		else
			snprintf(pcp, sizeof(pcp), "-");
		printf("%-5s %-21s %-21s %-15s %-9s %-9s %-9s %-6s %s%s\n", str(e, "protocol"), ext, in,
		       *str(e, "remote_host") ? str(e, "remote_host") : "*", lease, pcp, str(e, "phase"),
		       str(e, "origin"), str(e, "description"), json_is_false(json_object_get(e, "enabled")) ? " (disabled)" : "");
	}
	printf("%zu mapping%s\n", json_array_size(v), json_array_size(v) == 1 ? "" : "s");
}

static void print_counts(const char *title, json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
		printf("  %-32s %lld\n", k, (long long)json_integer_value(v));
	(void)title;
}

static void print_stats(json_t *a)
{
	json_t *soap = json_object_get(a, "soap"), *pcp = json_object_get(a, "pcp");
	printf("SOAP actions:        %lld\n", num(soap, "actions"));
	print_counts("by action", json_object_get(soap, "by_action"));
	printf("SOAP errors:         %lld\n", num(soap, "errors"));
	print_counts("by code", json_object_get(soap, "errors_by_code"));
	printf("PCP requests:        %lld (retransmissions %lld)\n", num(pcp, "requests"), num(pcp, "retransmissions"));
	printf("PCP responses:       %lld (datagrams received %lld, dropped %lld)\n", num(pcp, "responses"),
	       num(pcp, "received"), num(pcp, "dropped"));
	printf("PCP results:\n");
	print_counts("by code", json_object_get(pcp, "results_by_code"));
	printf("PCP lost state:      %lld\n", num(pcp, "lost_state_events"));
	printf("PCP updates:         %lld\n", num(pcp, "updates"));
	printf("control changes:     %lld\n", num(a, "admin_requests"));
	json_t *u = json_object_get(a, "upnp");
	if (!u)
		return; /* an older iwfd */
	json_t *ssdp = json_object_get(u, "ssdp"), *http = json_object_get(u, "http"),
	       *refused = json_object_get(http, "refused"), *us = json_object_get(u, "soap"),
	       *gena = json_object_get(u, "gena");
	printf("SSDP M-SEARCH:       %lld (answered %lld, no match %lld, rate limited %lld, malformed %lld, "
	       "not from the LAN %lld)\n",
	       num(ssdp, "msearch"), num(ssdp, "answered"), num(ssdp, "no_match"), num(ssdp, "rate_limited"),
	       num(ssdp, "malformed"), num(ssdp, "not_lan"));
	printf("HTTP connections:    %lld accepted\n", num(http, "accepted"));
	printf("  refused: connection limit %lld, per-host limit %lld, not from the LAN %lld\n",
	       num(refused, "connection_limit"), num(refused, "per_host_limit"), num(refused, "not_lan"));
	printf("  answered by limit: bad request %lld, header too big (431) %lld, body too big (413) %lld\n",
	       num(http, "bad_request"), num(http, "header_too_big"), num(http, "body_too_big"));
	printf("  closed: request not complete in time %lld, idle %lld; held back (memory) %lld\n",
	       num(http, "timeout_request"), num(http, "timeout_idle"), num(http, "throttled"));
	printf("SOAP requests:       %lld (valid %lld, 401 %lld, 402 %lld, other faults %lld, IGD stopped %lld)\n",
	       num(us, "requests"), num(us, "actions"), num(us, "invalid_action_401"), num(us, "invalid_args_402"),
	       num(us, "other_faults"), num(us, "refused_stopped"));
	printf("GENA subscriptions:  %lld active (subscribed %lld, renewed %lld, unsubscribed %lld, refused by "
	       "limit %lld, rejected %lld)\n",
	       num(gena, "active"), num(gena, "subscribed"), num(gena, "renewed"), num(gena, "unsubscribed"),
	       num(gena, "refused_limit"), num(gena, "rejected"));
	printf("status page:         %lld requests\n", num(u, "status_page_requests"));
}

/* ------------------------------------------------------------------ the command line */

static bool parse_port(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return false;
	*out = v;
	return true;
}

static bool parse_proto(const char *s)
{
	return strcasecmp(s, "tcp") == 0 || strcasecmp(s, "udp") == 0;
}

static const char *upper(const char *s)
{
	return strcasecmp(s, "tcp") == 0 ? "TCP" : "UDP";
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
		{"lease", required_argument, NULL, 'l'},   {"remote-host", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_SOCKET, *remote = NULL;
	bool as_json = false;
	long long lease = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'l': {
			char *end;
			errno = 0;
			lease = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || lease < 0 || lease > 4294967295LL) {
				fprintf(stderr, "iwfctl: --lease: seconds expected\n");
				return 2;
			}
			break;
		}
		case 'r':
			remote = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	int n = argc - optind;
	char **arg = argv + optind;
	if (n < 1) {
		usage(stderr);
		return 2;
	}
	const char *cmd = arg[0];
	json_t *req = NULL;
	long long ext, in;
	if ((!strcmp(cmd, "status") || !strcmp(cmd, "list") || !strcmp(cmd, "reload") || !strcmp(cmd, "stats")) &&
	    n == 1) {
		req = json_pack("{s:s}", "command", cmd);
	} else if (!strcmp(cmd, "add") && (n == 5 || n == 6) && parse_proto(arg[1]) && parse_port(arg[2], &ext) &&
		   parse_port(arg[4], &in)) {
		req = json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "command", "add", "protocol", upper(arg[1]),
				"external_port", (json_int_t)ext, "internal_client", arg[3], "internal_port", (json_int_t)in,
				"lease", (json_int_t)lease);
		if (req && n == 6)
			json_object_set_new(req, "description", json_string(arg[5]));
		if (req && remote)
			json_object_set_new(req, "remote_host", json_string(remote));
	} else if (!strcmp(cmd, "delete") && (n == 3 || n == 4) && parse_proto(arg[1]) && parse_port(arg[2], &ext)) {
		req = json_pack("{s:s, s:s, s:I}", "command", "delete", "protocol", upper(arg[1]), "external_port",
				(json_int_t)ext);
		if (req && (n == 4 || remote))
			json_object_set_new(req, "remote_host", json_string(n == 4 ? arg[3] : remote));
	} else {
		fprintf(stderr, "iwfctl: bad command or arguments: %s\n", cmd);
		usage(stderr);
		return 2;
	}
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text) {
		fprintf(stderr, "iwfctl: a description must be UTF-8\n");
		return 2;
	}
	size_t tl = strlen(text);
	char *line = malloc(tl + 2);
	if (!line) {
		free(text);
		return 3;
	}
	memcpy(line, text, tl);
	line[tl] = '\n';
	line[tl + 1] = '\0';
	free(text);
	char *answer = ask(path, line);
	free(line);
	if (!answer)
		return 3;
	json_error_t jerr;
	json_t *a = json_loads(answer, 0, &jerr);
	if (!json_is_object(a)) {
		fprintf(stderr, "iwfctl: iwfd's answer is not JSON: %s\n", jerr.text);
		free(answer);
		json_decref(a);
		return 3;
	}
	bool ok = json_is_true(json_object_get(a, "ok"));
	if (as_json) {
		printf("%s\n", answer);
	} else if (!ok) {
		json_t *code = json_object_get(a, "code");
		if (json_is_integer(code))
			fprintf(stderr, "iwfctl: %s: %s (UPnP error %lld)\n", cmd, str(a, "error"),
				(long long)json_integer_value(code));
		else
			fprintf(stderr, "iwfctl: %s: %s\n", cmd, str(a, "error"));
	} else if (!strcmp(cmd, "status")) {
		print_status(a);
	} else if (!strcmp(cmd, "list")) {
		print_list(a);
	} else if (!strcmp(cmd, "stats")) {
		print_stats(a);
	} else if (!strcmp(cmd, "reload")) {
		printf("reloaded: %s\n", str(a, "message"));
	} else if (!strcmp(cmd, "add")) {
		printf("added %s %lld -> %s:%lld\n", upper(arg[1]), num(a, "external_port"), arg[3], in);
	} else {
		printf("deleted %s %lld\n", upper(arg[1]), ext);
	}
	free(answer);
	json_decref(a);
	return ok ? 0 : 1;
}
