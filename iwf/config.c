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
	cfg->http_port = IWF_DEFAULT_HTTP_PORT;
	snprintf(cfg->friendly_name, sizeof(cfg->friendly_name), "iwfd Internet Gateway");
	cfg->pcp_lifetime = 7200;
	cfg->answer_deadline_ms = 4000;
	cfg->pcp_service_wait_s = 60; /* 100,000 routers x 10 mappings at 20,000 req/s: bench/fleet.md */
	cfg->replay_rate = 20;
	cfg->announce_spread_s = 5;
	cfg->listen_announce = true;
	snprintf(cfg->nat_mode, sizeof(cfg->nat_mode), "none");
	snprintf(cfg->state_file, sizeof(cfg->state_file), "%s", IWF_DEFAULT_STATE_FILE);
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", IWF_DEFAULT_CONTROL_SOCKET);
	cfg->nat_port_min = 1024;
	cfg->nat_port_max = 65535;
	cfg->max_per_host = 128; /* docs/configuration.md: a console needs a handful, a P2P client a few */
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

/* Levenshtein distance of a and b, capped at 9 (names are short). */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 9;
	unsigned row[41];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > 9 ? 9 : row[lb];
}

/* "unknown key PREFIX.KEY (did you mean PREFIX.NEAREST?)" - or the list of keys when none
 * is near. known is NULL-terminated. */
static enum iwf_err fail_unknown(char *detail, size_t cap, const char *prefix, const char *key,
				 const char *const *known)
{
	const char *best = NULL;
	unsigned bd = 9;
	for (size_t i = 0; known[i]; i++) {
		unsigned d = edit_distance(key, known[i]);
		if (d < bd) {
			bd = d;
			best = known[i];
		}
	}
	size_t len = strlen(key);
	if (best && bd <= (len < 6 ? 2u : 3u))
		return fail(detail, cap, "%s%s: unknown key (did you mean %s%s?)", prefix, key, prefix, best);
	char list[512] = "";
	size_t at = 0;
	for (size_t i = 0; known[i] && at < sizeof(list); i++)
		at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", i ? ", " : "", known[i]);
	return fail(detail, cap, "%s%s: unknown key (known here: %s)", prefix, key, list);
}

/* An integer key within lo..hi, with the range named when it is not. */
static bool get_range(json_t *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	return get_uint(v, hi, out) && *out >= lo;
}

#define FAIL_RANGE(detail, cap, name, lo, hi, unit) \
	fail(detail, cap, "%s: an integer %u..%u%s expected", name, (unsigned)(lo), (unsigned)(hi), unit)

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

bool iwf_nat_mode_known(const char *mode)
{
	static const char *const modes[] = {"none", "nftables", "clat", "nat64"};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(mode, modes[i]) == 0)
			return true;
	return false;
}

bool iwf_clat_prefix_parse(const char *text, struct in6_addr *prefix, uint8_t *len)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	if (!slash || (size_t)(slash - text) >= sizeof(addr))
		return false;
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	struct in6_addr a;
	if (inet_pton(AF_INET6, addr, &a) != 1)
		return false;
	unsigned l = 0;
	const char *p = slash + 1;
	if (!*p || strlen(p) > 2)
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		l = l * 10 + (unsigned)(*p - '0');
	}
	if (l != 32 && l != 40 && l != 48 && l != 56 && l != 64 && l != 96)
		return false; /* RFC 6052 §2.2 */
	for (unsigned i = l / 8; i < 16; i++)
		if (a.s6_addr[i])
			return false;
	if (a.s6_addr[8])
		return false; /* bits 64-71 must be zero (RFC 6052 §2.2) */
	*prefix = a;
	*len = (uint8_t)l;
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
		if (detail && cap && jerr.line < 1 && strstr(jerr.text, path))
			snprintf(detail, cap, "%s", jerr.text); /* "unable to open PATH: No such file ..." */
		else if (detail && cap && jerr.line < 1)
			snprintf(detail, cap, "%s: %s", path, jerr.text);
		else if (detail && cap)
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
				rc = fail(detail, cap, "http_port: a TCP port 0..65535 expected (0: any free port; default %u)",
					  IWF_DEFAULT_HTTP_PORT);
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
		} else if (strcmp(key, "control_socket") == 0) {
			if (!copy_str(cfg->control_socket, sizeof(cfg->control_socket), v) ||
			    (cfg->control_socket[0] && cfg->control_socket[0] != '/')) {
				rc = fail(detail, cap, "control_socket: absolute path (shorter than 108 bytes) or \"\" expected");
				goto out;
			}
			cfg->control_socket_set = true;
		} else if (strcmp(key, "status_page") == 0) {
			if (!json_is_boolean(v)) {
				rc = fail(detail, cap, "status_page: true or false expected");
				goto out;
			}
			cfg->status_page = json_is_true(v);
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
		} else if (strcmp(key, "upnp_ipv6") == 0) {
			if (!json_is_boolean(v)) {
				rc = fail(detail, cap, "upnp_ipv6: true or false expected");
				goto out;
			}
			cfg->upnp_ipv6 = json_is_true(v);
		} else if (strcmp(key, "friendly_name") == 0) {
			if (!copy_str(cfg->friendly_name, sizeof(cfg->friendly_name), v)) {
				rc = fail(detail, cap, "friendly_name: string of at most %zu bytes expected",
					  sizeof(cfg->friendly_name) - 1);
				goto out;
			}
		} else if (strcmp(key, "pcp") == 0) {
			static const char *const known[] = {"lifetime", "answer_deadline_ms", "service_wait_s", "replay_rate",
							    "announce_spread_s", "listen_announce", NULL};
			static const struct {
				const char *name;
				uint32_t lo, hi;
				const char *unit;
				size_t off;
			} ints[] = {
				{"lifetime", 60, 65535, " (seconds)", offsetof(struct iwf_config, pcp_lifetime)},
				{"answer_deadline_ms", 100, 60000, " (milliseconds)", offsetof(struct iwf_config, answer_deadline_ms)},
				{"service_wait_s", 0, 3600, " (seconds)", offsetof(struct iwf_config, pcp_service_wait_s)},
				{"replay_rate", 0, 100000, " (requests per second, 0 = unpaced)", offsetof(struct iwf_config, replay_rate)},
				{"announce_spread_s", 1, 3600, " (seconds)", offsetof(struct iwf_config, announce_spread_s)},
			};
			const char *k2;
			json_t *v2;
			if (!json_is_object(v)) {
				rc = fail(detail, cap, "pcp: an object expected ({\"lifetime\": 7200, ...})");
				goto out;
			}
			json_object_foreach(v, k2, v2) {
				size_t i, n = sizeof(ints) / sizeof(ints[0]);
				for (i = 0; i < n && strcmp(k2, ints[i].name); i++)
					;
				if (i < n) {
					char name[64];
					snprintf(name, sizeof(name), "pcp.%s", k2);
					if (!get_range(v2, ints[i].lo, ints[i].hi, &u)) {
						rc = FAIL_RANGE(detail, cap, name, ints[i].lo, ints[i].hi, ints[i].unit);
						goto out;
					}
					memcpy((char *)cfg + ints[i].off, &u, sizeof(u));
				} else if (strcmp(k2, "listen_announce") == 0) {
					if (!json_is_boolean(v2)) {
						rc = fail(detail, cap, "pcp.listen_announce: true or false expected");
						goto out;
					}
					cfg->listen_announce = json_is_true(v2);
				} else {
					rc = fail_unknown(detail, cap, "pcp.", k2, known);
					goto out;
				}
			}
		} else if (strcmp(key, "nat") == 0) {
			static const char *const known[] = {"mode", "wan_interface", "port_min", "port_max", "clat_prefix", NULL};
			const char *k2;
			json_t *v2;
			if (!json_is_object(v)) {
				rc = fail(detail, cap, "nat: an object expected ({\"mode\": \"nftables\", ...})");
				goto out;
			}
			json_object_foreach(v, k2, v2) {
				if (strcmp(k2, "mode") == 0) {
					if (!copy_str(cfg->nat_mode, sizeof(cfg->nat_mode), v2) ||
					    !iwf_nat_mode_known(cfg->nat_mode)) {
						rc = fail(detail, cap, "nat.mode: \"none\", \"nftables\", \"clat\" or \"nat64\" expected");
						goto out;
					}
				} else if (strcmp(k2, "clat_prefix") == 0) {
					if (!json_is_string(v2) ||
					    !iwf_clat_prefix_parse(json_string_value(v2), &cfg->clat_prefix, &cfg->clat_prefix_len)) {
						rc = fail(detail, cap, "nat.clat_prefix: an IPv6 prefix \"ADDR/LEN\", LEN 32, 40, 48, 56, 64 or 96 (RFC 6052) expected");
						goto out;
					}
				} else if (strcmp(k2, "wan_interface") == 0) {
					if (!copy_str(cfg->wan_if, sizeof(cfg->wan_if), v2) || !cfg->wan_if[0]) {
						rc = fail(detail, cap, "nat.wan_interface: an interface name (at most %zu bytes) expected",
							  sizeof(cfg->wan_if) - 1);
						goto out;
					}
				} else if (strcmp(k2, "port_min") == 0 || strcmp(k2, "port_max") == 0) {
					char name[32];
					snprintf(name, sizeof(name), "nat.%s", k2);
					if (!get_range(v2, 1, 65535, &u)) {
						rc = FAIL_RANGE(detail, cap, name, 1, 65535, " (a port)");
						goto out;
					}
					if (k2[5] == 'm' && k2[6] == 'i')
						cfg->nat_port_min = (uint16_t)u;
					else
						cfg->nat_port_max = (uint16_t)u;
				} else {
					rc = fail_unknown(detail, cap, "nat.", k2, known);
					goto out;
				}
			}
		} else if (strcmp(key, "security") == 0) {
			static const char *const known[] = {"allow_third_party", "rules", "max_mappings_per_host", NULL};
			const char *k2;
			json_t *v2;
			if (!json_is_object(v)) {
				rc = fail(detail, cap, "security: an object expected ({\"rules\": [...]})");
				goto out;
			}
			json_object_foreach(v, k2, v2) {
				if (strcmp(k2, "allow_third_party") == 0) {
					if (!json_is_boolean(v2)) {
						rc = fail(detail, cap, "security.allow_third_party: true or false expected");
						goto out;
					}
					cfg->allow_third_party = json_is_true(v2);
				} else if (strcmp(k2, "rules") == 0) {
					if ((rc = load_rules(cfg, v2, detail, cap)) != IWF_OK)
						goto out;
				} else if (strcmp(k2, "max_mappings_per_host") == 0) {
					if (!json_is_integer(v2) || json_integer_value(v2) < 0 ||
					    json_integer_value(v2) > 65536) {
						rc = fail(detail, cap, "security.max_mappings_per_host: 0 (no limit) .. 65536 expected");
						goto out;
					}
					cfg->max_per_host = (uint32_t)json_integer_value(v2);
				} else {
					rc = fail_unknown(detail, cap, "security.", k2, known);
					goto out;
				}
			}
		} else {
			static const char *const known[] = {"lan_interfaces", "lan_address", "http_port", "pcp_servers",
							    "pcp_servers_file", "state_file", "igd_version", "wan_type",
							    "log_level", "friendly_name", "pcp", "nat", "security", "user",
							    "control_socket", "upnp_ipv6", "status_page", NULL};
			rc = fail_unknown(detail, cap, "", key, known);
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
	if (!iwf_nat_mode_known(cfg->nat_mode))
		return fail(detail, cap, "NAT mode must be none, nftables, clat or nat64");
	bool clat = !strcmp(cfg->nat_mode, "clat"), nat64 = !strcmp(cfg->nat_mode, "nat64");
	if (clat && !cfg->clat_prefix_len)
		return fail(detail, cap, "NAT mode clat needs the CLAT prefix (--clat-prefix or nat.clat_prefix)");
	if (cfg->clat_prefix_len && !clat && !nat64)
		return fail(detail, cap, "the CLAT prefix (--clat-prefix or nat.clat_prefix) goes with NAT mode clat or nat64, and only with them");
	if (nat64) {
		/* An IPv6 LAN host's MAP carries its IPv6 address: the PCP server of a NAT64 is
		 * reached over IPv6 (RFC 6146 carrier; docs/configuration.md "IPv6 LAN hosts"). */
		if (!cfg->n_pcp_servers && !cfg->pcp_servers_file[0])
			return fail(detail, cap, "NAT mode nat64 needs the NAT64's PCP server: --pcp-server [IPV6] or --pcp-servers-file (the IPv4 default router is no NAT64)");
		for (size_t i = 0; i < cfg->n_pcp_servers; i++) {
			struct in6_addr a;
			uint16_t port;
			if (pcp_io_parse_server(cfg->pcp_servers[i], &a, &port) && pcp_addr_is_v4(&a))
				return fail(detail, cap, "NAT mode nat64: PCP server '%s' is IPv4; a NAT64's PCP server is reached over IPv6", cfg->pcp_servers[i]);
		}
	}
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
