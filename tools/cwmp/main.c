/* main.c - iwf-cwmp: the command line and configuration file, then the agent. */
#include "cwmp.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* iwfd's control socket lives in its RuntimeDirectory (docs/install.md); the name is the
 * control socket's, to be kept in step with iwfd. */
#define DEFAULT_CONTROL_SOCKET "/run/iwfd/control" /* iwfd's IWF_DEFAULT_CONTROL_SOCKET */

static void usage(FILE *f)
{
	fprintf(f, "usage: iwf-cwmp --acs-url URL [--acs-auth USER:PASS] [--cr-port N] [--cr-bind ADDR]\n"
	           "                [--cr-interface WANIF]"
	           "                [--cr-auth USER:PASS] [--control-socket PATH | --static-backend]\n"
	           "                [--periodic-inform SECONDS] [--state-file FILE] [--ca-file FILE]\n"
	           "                [--config FILE] [--foreground]\n");
}

static bool split_auth(const char *s, char **user, char **pass)
{
	const char *c = strchr(s, ':');
	if (!c)
		return false;
	free(*user);
	free(*pass);
	*user = strndup(s, (size_t)(c - s));
	*pass = strdup(c + 1);
	return *user && *pass;
}

static bool parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || *s == '-')
		return false;
	*out = (unsigned)v;
	return true;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

/* One key, from the command line or the configuration file (the same names). */
static bool apply(struct cwmp_config *c, const char *key, const char *val)
{
	if (!strcmp(key, "acs-url"))
		set_str(&c->acs_url, val);
	else if (!strcmp(key, "acs-auth"))
		return split_auth(val, &c->acs_user, &c->acs_pass);
	else if (!strcmp(key, "cr-port"))
		return parse_uint(val, 65535, &c->cr_port);
	else if (!strcmp(key, "cr-bind"))
		set_str(&c->cr_bind, val);
	else if (!strcmp(key, "cr-interface"))
		set_str(&c->cr_interface, val);
	else if (!strcmp(key, "cr-auth"))
		return split_auth(val, &c->cr_user, &c->cr_pass);
	else if (!strcmp(key, "control-socket"))
		set_str(&c->control_socket, val);
	else if (!strcmp(key, "static-backend"))
		c->static_backend = !strcmp(val, "1") || !strcmp(val, "true");
	else if (!strcmp(key, "static-hook"))
		set_str(&c->static_hook, val);
	else if (!strcmp(key, "periodic-inform"))
		return parse_uint(val, UINT_MAX / 1000, &c->periodic_inform);
	else if (!strcmp(key, "state-file"))
		set_str(&c->state_file, val);
	else if (!strcmp(key, "ca-file"))
		set_str(&c->ca_file, val);
	else if (!strcmp(key, "foreground"))
		c->foreground = !strcmp(val, "1") || !strcmp(val, "true");
	else if (!strcmp(key, "retry-min-wait"))
		return parse_uint(val, 3600, &c->retry_min_wait) && c->retry_min_wait > 0;
	else if (!strcmp(key, "retry-multiplier"))
		return parse_uint(val, 65535, &c->retry_multiplier) && c->retry_multiplier >= 1000;
	else if (!strcmp(key, "notify-poll-ms"))
		return parse_uint(val, 3600000, &c->notify_poll_ms) && c->notify_poll_ms >= 100;
	else if (!strcmp(key, "cwmp-version")) {
		if (strlen(val) != 3 || strncmp(val, "1.", 2) || val[2] < '0' || val[2] > '4')
			return false;
		c->cwmp_minor = (unsigned)(val[2] - '0');
	} else
		return false;
	return true;
}

static bool load_file(struct cwmp_config *c, const char *file)
{
	json_error_t err;
	json_t *j = json_load_file(file, 0, &err);
	if (!json_is_object(j)) {
		fprintf(stderr, "iwf-cwmp: %s:%d: %s\n", file, err.line, err.text);
		json_decref(j);
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v) {
		char num[32];
		const char *s = json_string_value(v);
		if (json_is_integer(v)) {
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
			s = num;
		} else if (json_is_boolean(v)) {
			s = json_is_true(v) ? "1" : "0";
		}
		if (!s || !apply(c, key, s)) {
			fprintf(stderr, "iwf-cwmp: %s: bad key or value '%s'\n", file, key);
			json_decref(j);
			return false;
		}
	}
	json_decref(j);
	return true;
}

static void config_free(struct cwmp_config *c)
{
	char **strs[] = { &c->acs_url, &c->acs_user, &c->acs_pass, &c->cr_bind, &c->cr_interface, &c->cr_user, &c->cr_pass,
		&c->control_socket, &c->static_hook, &c->state_file, &c->ca_file };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

int main(int argc, char **argv)
{
	struct cwmp_config c = { .retry_min_wait = 5, .retry_multiplier = 2000, .notify_poll_ms = 1000, .cwmp_minor = 4 };
	static const struct option opts[] = {
		{ "acs-url", required_argument, 0, 0 }, { "acs-auth", required_argument, 0, 0 },
		{ "cr-port", required_argument, 0, 0 }, { "cr-bind", required_argument, 0, 0 },
		{ "cr-interface", required_argument, 0, 0 },
		{ "cr-auth", required_argument, 0, 0 }, { "control-socket", required_argument, 0, 0 },
		{ "static-backend", no_argument, 0, 0 }, { "static-hook", required_argument, 0, 0 },
		{ "periodic-inform", required_argument, 0, 0 }, { "state-file", required_argument, 0, 0 },
		{ "ca-file", required_argument, 0, 0 }, { "foreground", no_argument, 0, 0 },
		{ "retry-min-wait", required_argument, 0, 0 }, { "retry-multiplier", required_argument, 0, 0 },
		{ "notify-poll-ms", required_argument, 0, 0 }, { "cwmp-version", required_argument, 0, 0 },
		{ "config", required_argument, 0, 'c' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	int rc = 2;
	/* the file first, so the command line overrides it */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c"))
			if (!load_file(&c, argv[i + 1]))
				goto out;
	int ch, idx;
	while ((ch = getopt_long(argc, argv, "c:h", opts, &idx)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if (ch == 'c')
			continue;
		if (ch != 0) {
			usage(stderr);
			goto out;
		}
		const char *val = opts[idx].has_arg ? optarg : "1";
		if (!apply(&c, opts[idx].name, val)) {
			fprintf(stderr, "iwf-cwmp: bad value for --%s\n", opts[idx].name);
			goto out;
		}
	}
	if (!c.control_socket && !c.static_backend)
		c.control_socket = strdup(DEFAULT_CONTROL_SOCKET);
	if (!c.acs_url) {
		fprintf(stderr, "iwf-cwmp: --acs-url is needed\n");
		usage(stderr);
		goto out;
	}
	if ((c.cr_port && !c.cr_user)) {
		fprintf(stderr, "iwf-cwmp: --cr-port needs --cr-auth (seed 003 §3.2.2: authenticate the ACS)\n");
		goto out;
	}
	if (!c.cr_bind)
		c.cr_bind = strdup("0.0.0.0");
	if (!c.state_file)
		c.state_file = strdup("/var/lib/iwf-cwmp/state.json");
	if (!c.foreground) {
		openlog("iwf-cwmp", LOG_PID, LOG_DAEMON);
		if (daemon(0, 0) != 0) {
			perror("iwf-cwmp: daemon");
			rc = 1;
			goto out;
		}
	}
	rc = cwmp_agent_run(&c, argv);
	if (rc == 101 || rc == 102) {
		/* Reboot / FactoryReset: start again as a new process (argv[0] as started) */
		config_free(&c);
		execv("/proc/self/exe", argv);
		perror("iwf-cwmp: re-exec");
		return 1;
	}
out:
	config_free(&c);
	return rc;
}
