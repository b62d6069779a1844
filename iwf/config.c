/*
 * config.c - defaults, the JSON configuration file (jansson), permission rules.
 * Every key is documented in docs/configuration.md.
 */
#include "iwf.h"
#include "pcp_event.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void iwf_config_init(struct iwf_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->igd_version = 1; /* many games and consoles only know IGD:1 */
	cfg->log_level = IWF_LOG_INFO;
	snprintf(cfg->friendly_name, sizeof(cfg->friendly_name), "iwfd Internet Gateway");
	cfg->pcp_lifetime = 7200;
	cfg->answer_deadline_ms = 4000;
	cfg->pcp_service_wait_s = 60; /* 100,000 routers x 10 mappings at 20,000 req/s: bench/fleet.md */
	cfg->replay_rate = 20;
	cfg->announce_spread_s = 5;
	cfg->listen_announce = true;
	snprintf(cfg->nat_mode, sizeof(cfg->nat_mode), "none");
	snprintf(cfg->state_file, sizeof(cfg->state_file), "%s", IWF_DEFAULT_STATE_FILE);
	cfg->nat_port_min = 1024;
	cfg->nat_port_max = 65535;
}

__attribute__((format(printf, 3, 4)))
static enum iwf_err fail(char *detail, size_t cap, const char *fmt, ...)
{
	if (detail && cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, cap, fmt, ap);
		va_end(ap);
	}
	return IWF_ERR_INVAL;
}

static bool copy_str(char *dst, size_t cap, json_t *v)
{
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return false;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return strlen(dst) == json_string_length(v);
}

static bool get_uint(json_t *v, json_int_t max, uint32_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return false;
	*out = (uint32_t)json_integer_value(v);
	return true;
}

bool iwf_log_level_parse(const char *s, enum iwf_log_level *out)
{
	static const struct {
		const char *name;
		enum iwf_log_level level;
	} names[] = {{"error", IWF_LOG_ERROR}, {"warn", IWF_LOG_WARN}, {"info", IWF_LOG_INFO}, {"debug", IWF_LOG_DEBUG}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return true;
		}
	}
	return false;
}

/* Parse "N" or "N-M" (decimal, 0..65535, N <= M). */
static bool parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	errno = 0;
	unsigned long a = strtoul(s, &end, 10), b;
	if (errno || end == s || a > 65535 || *s == '-' || *s == '+')
		return false;
	if (*end == '\0') {
		b = a;
	} else if (*end == '-') {
		const char *t = end + 1;
		if (*t < '0' || *t > '9')
			return false;
		b = strtoul(t, &end, 10);
		if (errno || *end != '\0' || b > 65535)
			return false;
	} else {
		return false;
	}
	if (a > b)
		return false;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return true;
}

bool iwf_rule_parse(struct iwf_rule *rule, const char *text)
{
	char buf[128], *save = NULL;
	if (strlen(text) >= sizeof(buf))
		return false;
	strcpy(buf, text);
	char *verb = strtok_r(buf, " \t", &save);
	char *ext = strtok_r(NULL, " \t", &save);
	char *client = strtok_r(NULL, " \t", &save);
	char *in = strtok_r(NULL, " \t", &save);
	if (!verb || !ext || !client || !in || strtok_r(NULL, " \t", &save))
		return false;
	struct iwf_rule r = {0};
	if (strcmp(verb, "allow") == 0)
		r.allow = true;
	else if (strcmp(verb, "deny") != 0)
		return false;
	if (!parse_range(ext, &r.ext_lo, &r.ext_hi) || !parse_range(in, &r.int_lo, &r.int_hi))
		return false;
	char *slash = strchr(client, '/');
	r.prefix = 32;
	if (slash) {
		*slash = '\0';
		uint16_t p, q;
		if (!parse_range(slash + 1, &p, &q) || p != q || p > 32)
			return false;
		r.prefix = (uint8_t)p;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, client, &a) != 1)
		return false;
	r.client = ntohl(a.s_addr);
	*rule = r;
	return true;
}

bool iwf_rules_permit(const struct iwf_rule *rules, size_t n, uint16_t ext_port, uint32_t client,
		      uint16_t int_port)
{
	for (size_t i = 0; i < n; i++) {
		const struct iwf_rule *r = &rules[i];
		uint32_t mask = r->prefix ? ~0u << (32 - r->prefix) : 0;
		if (ext_port >= r->ext_lo && ext_port <= r->ext_hi && int_port >= r->int_lo &&
		    int_port <= r->int_hi && (client & mask) == (r->client & mask))
			return r->allow;
	}
	return ext_port >= 1024; /* default: no well-known external ports */
}

static enum iwf_err load_rules(struct iwf_config *cfg, json_t *arr, char *detail, size_t cap)
{
	if (!json_is_array(arr))
		return fail(detail, cap, "security.rules must be an array of strings");
	if (json_array_size(arr) > IWF_MAX_RULES)
		return fail(detail, cap, "security.rules: at most %d rules", IWF_MAX_RULES);
	size_t i;
	json_t *v;
	cfg->n_rules = 0;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || !iwf_rule_parse(&cfg->rules[cfg->n_rules], json_string_value(v)))
			return fail(detail, cap, "security.rules[%zu]: expected \"allow|deny EXT CLIENT[/PREFIX] INT\"", i);
		cfg->n_rules++;
	}
	return IWF_OK;
}

enum iwf_err iwf_config_load(struct iwf_config *cfg, const char *path, char *detail, size_t cap)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (detail && cap)
			snprintf(detail, cap, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return jerr.line < 0 || jerr.line == 0 ? IWF_ERR_IO : IWF_ERR_INVAL;
	}
	enum iwf_err rc = IWF_ERR_INVAL;
	const char *key;
	json_t *v;
	if (!json_is_object(root)) {
		rc = fail(detail, cap, "%s: top level must be an object", path);
		goto out;
	}
	json_object_foreach(root, key, v) {
		uint32_t u;
		if (strcmp(key, "lan_interfaces") == 0) {
			size_t i;
			json_t *e;
			if (!json_is_array(v) || json_array_size(v) > IWF_MAX_LAN_IFS) {
				rc = fail(detail, cap, "lan_interfaces: array of at most %d names", IWF_MAX_LAN_IFS);
				goto out;
			}
			cfg->n_lan_ifs = 0;
			json_array_foreach(v, i, e) {
				if (!copy_str(cfg->lan_ifs[i], sizeof(cfg->lan_ifs[i]), e)) {
					rc = fail(detail, cap, "lan_interfaces[%zu]: interface name expected", i);
					goto out;
				}
				cfg->n_lan_ifs++;
			}
		} else if (strcmp(key, "lan_address") == 0) {
			if (!copy_str(cfg->lan_addr, sizeof(cfg->lan_addr), v)) {
				rc = fail(detail, cap, "lan_address: string expected");
				goto out;
			}
		} else if (strcmp(key, "http_port") == 0) {
			if (!get_uint(v, 65535, &u)) {
				rc = fail(detail, cap, "http_port: 0..65535 expected");
				goto out;
			}
			cfg->http_port = (uint16_t)u;
		} else if (strcmp(key, "pcp_servers") == 0) {
			size_t i;
			json_t *e;
			if (!json_is_array(v) || json_array_size(v) > IWF_MAX_PCP_SERVERS) {
				rc = fail(detail, cap, "pcp_servers: array of at most %d addresses", IWF_MAX_PCP_SERVERS);
				goto out;
			}
			cfg->n_pcp_servers = 0;
			json_array_foreach(v, i, e) {
				if (!copy_str(cfg->pcp_servers[i], sizeof(cfg->pcp_servers[i]), e)) {
					rc = fail(detail, cap, "pcp_servers[%zu]: address expected", i);
					goto out;
				}
				cfg->n_pcp_servers++;
			}
		} else if (strcmp(key, "pcp_servers_file") == 0) {
			if (!copy_str(cfg->pcp_servers_file, sizeof(cfg->pcp_servers_file), v)) {
				rc = fail(detail, cap, "pcp_servers_file: path expected");
				goto out;
			}
		} else if (strcmp(key, "state_file") == 0) {
			if (!copy_str(cfg->state_file, sizeof(cfg->state_file), v)) {
				rc = fail(detail, cap, "state_file: path expected");
				goto out;
			}
		} else if (strcmp(key, "igd_version") == 0) {
			if (!get_uint(v, 2, &u) || u < 1) {
				rc = fail(detail, cap, "igd_version: 1 or 2 expected");
				goto out;
			}
			cfg->igd_version = (int)u;
		} else if (strcmp(key, "wan_type") == 0) {
			const char *s = json_string_value(v);
			if (!s || (strcmp(s, "ip") && strcmp(s, "ppp"))) {
				rc = fail(detail, cap, "wan_type: \"ip\" or \"ppp\" expected");
				goto out;
			}
			cfg->ppp = strcmp(s, "ppp") == 0;
		} else if (strcmp(key, "log_level") == 0) {
			if (!json_is_string(v) || !iwf_log_level_parse(json_string_value(v), &cfg->log_level)) {
				rc = fail(detail, cap, "log_level: error, warn, info or debug expected");
				goto out;
			}
		} else if (strcmp(key, "user") == 0) {
			if (!copy_str(cfg->user, sizeof(cfg->user), v)) {
				rc = fail(detail, cap, "user: user name of at most %zu bytes expected", sizeof(cfg->user) - 1);
				goto out;
			}
		} else if (strcmp(key, "friendly_name") == 0) {
			if (!copy_str(cfg->friendly_name, sizeof(cfg->friendly_name), v)) {
				rc = fail(detail, cap, "friendly_name: string of at most %zu bytes expected",
					  sizeof(cfg->friendly_name) - 1);
				goto out;
			}
		} else if (strcmp(key, "pcp") == 0 && json_is_object(v)) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2) {
				if (strcmp(k2, "lifetime") == 0 && get_uint(v2, 65535, &u) && u >= 60)
					cfg->pcp_lifetime = u;
				else if (strcmp(k2, "answer_deadline_ms") == 0 && get_uint(v2, 60000, &u) && u >= 100)
					cfg->answer_deadline_ms = u;
				else if (strcmp(k2, "service_wait_s") == 0 && get_uint(v2, 3600, &u))
					cfg->pcp_service_wait_s = u;
				else if (strcmp(k2, "replay_rate") == 0 && get_uint(v2, 100000, &u))
					cfg->replay_rate = u;
				else if (strcmp(k2, "announce_spread_s") == 0 && get_uint(v2, 3600, &u) && u >= 1)
					cfg->announce_spread_s = u;
				else if (strcmp(k2, "listen_announce") == 0 && json_is_boolean(v2))
					cfg->listen_announce = json_is_true(v2);
				else {
					rc = fail(detail, cap, "pcp.%s: unknown key or value out of range", k2);
					goto out;
				}
			}
		} else if (strcmp(key, "nat") == 0 && json_is_object(v)) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2) {
				if (strcmp(k2, "mode") == 0 && copy_str(cfg->nat_mode, sizeof(cfg->nat_mode), v2) &&
				    (!strcmp(cfg->nat_mode, "none") || !strcmp(cfg->nat_mode, "nftables")))
					continue;
				if (strcmp(k2, "wan_interface") == 0 && copy_str(cfg->wan_if, sizeof(cfg->wan_if), v2))
					continue;
				if (strcmp(k2, "port_min") == 0 && get_uint(v2, 65535, &u) && u >= 1) {
					cfg->nat_port_min = (uint16_t)u;
					continue;
				}
				if (strcmp(k2, "port_max") == 0 && get_uint(v2, 65535, &u) && u >= 1) {
					cfg->nat_port_max = (uint16_t)u;
					continue;
				}
				rc = fail(detail, cap, "nat.%s: unknown key or bad value", k2);
				goto out;
			}
		} else if (strcmp(key, "security") == 0 && json_is_object(v)) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2) {
				if (strcmp(k2, "allow_third_party") == 0 && json_is_boolean(v2)) {
					cfg->allow_third_party = json_is_true(v2);
				} else if (strcmp(k2, "rules") == 0) {
					if ((rc = load_rules(cfg, v2, detail, cap)) != IWF_OK)
						goto out;
				} else {
					rc = fail(detail, cap, "security.%s: unknown key or bad value", k2);
					goto out;
				}
			}
		} else {
			rc = fail(detail, cap, "%s: unknown key or bad value", key);
			goto out;
		}
	}
	rc = IWF_OK;
out:
	json_decref(root);
	return rc;
}

enum iwf_err iwf_config_check(const struct iwf_config *cfg, char *detail, size_t cap)
{
	if (cfg->n_lan_ifs == 0)
		return fail(detail, cap, "no LAN interface: give --lan-if or lan_interfaces");
	for (size_t i = 0; i < cfg->n_pcp_servers; i++) {
		struct in6_addr a;
		uint16_t port;
		if (!pcp_io_parse_server(cfg->pcp_servers[i], &a, &port))
			return fail(detail, cap, "PCP server '%s' is not ADDR, ADDR:PORT or [V6]:PORT", cfg->pcp_servers[i]);
	}
	if (cfg->igd_version != 1 && cfg->igd_version != 2)
		return fail(detail, cap, "IGD version must be 1 or 2");
	if (cfg->ppp && cfg->igd_version != 1)
		return fail(detail, cap, "WANPPPConnection is only offered with IGD:1");
	if (strcmp(cfg->nat_mode, "none") && strcmp(cfg->nat_mode, "nftables"))
		return fail(detail, cap, "NAT mode must be none or nftables");
	if (!strcmp(cfg->nat_mode, "nftables") && !cfg->wan_if[0])
		return fail(detail, cap, "the nftables NAT needs the WAN interface (--wan-if or nat.wan_interface)");
	if (cfg->nat_port_min > cfg->nat_port_max)
		return fail(detail, cap, "nat.port_min is above nat.port_max");
	if (cfg->lan_addr[0]) {
		struct in_addr a;
		if (inet_pton(AF_INET, cfg->lan_addr, &a) != 1)
			return fail(detail, cap, "LAN address %s is not an IPv4 address", cfg->lan_addr);
	}
	return IWF_OK;
}
