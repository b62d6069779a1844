/*
 * json_import.c - reads the version-1 state file of iwfd 0.1 (a JSON document) into an
 * empty table, once; journal.c then replaces the file by a journal.
 *
 * The document, as 0.1 wrote it:
 *   {"version": 1,
 *    "uuid": {"igd": S, "wan_device": S, "wan_connection_device": S},   text UUIDs
 *    "boot_id": N, "system_update_id": N,
 *    "mappings": [M...], "intents": [M...]  (intents optional)}
 *   M = {"protocol": "TCP"|"UDP", "external_port": 0..65535, "external_addr": S,
 *        "remote_host": S ("" any), "internal_client": S, "internal_port": 1..65535,
 *        "router_port": 0..65535 (optional), "description": S (<= 255 bytes), "owner": S,
 *        "enabled": B, "lease_duration": 0..2^32-1, "lease_end": Unix seconds (0 never),
 *        "nonce": 24 hex digits}
 * Validation is the one of 0.1's loader; any invalid mapping fails the whole import
 * (STATE_ERR_FORMAT, nothing loaded). Text addresses become binary (IPv4 as ::ffff:a.b.c.d);
 * remote_host and internal_client must be addresses, while an unreadable external_addr
 * or owner (informational only) becomes "none".
 */
#include "state_internal.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <string.h>

#define V1_ADDR_MAX 46  /* INET6_ADDRSTRLEN: 0.1's buffers */
#define V1_HOST_MAX 256
#define V1_UUID_MAX 40

/* Copy a JSON string member into buf; false if missing, not a string, too long or with NUL. */
static bool get_str(json_t *obj, const char *key, char *buf, size_t cap)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v))
		return false;
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (len >= cap || memchr(s, '\0', len))
		return false;
	memcpy(buf, s, len + 1);
	return true;
}

static bool get_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return false;
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2n hex digits from *s into out; *s advances. */
static bool hex_take(const char **s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value((*s)[0]), lo = hi < 0 ? -1 : hex_value((*s)[1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		*s += 2;
	}
	return true;
}

/* RFC 4122 text (8-4-4-4-12 hex digits) to binary; anything else gives all-zero, so the
 * daemon makes new ones (an identity change is better than refusing the file). */
static void uuid_parse(const char *s, uint8_t out[STATE_UUID_LEN])
{
	static const uint8_t groups[] = {4, 2, 2, 2, 6};
	uint8_t b[STATE_UUID_LEN];
	size_t k = 0;
	for (size_t g = 0; g < sizeof(groups); g++) {
		if (g && *s++ != '-')
			goto bad;
		if (!hex_take(&s, b + k, groups[g]))
			goto bad;
		k += groups[g];
	}
	if (*s)
		goto bad;
	memcpy(out, b, STATE_UUID_LEN);
	return;
bad:
	memset(out, 0, STATE_UUID_LEN);
}

/* Text address to in6_addr (IPv4 as IPv4-mapped); "" is the all-zero address. */
static bool addr_parse(const char *s, struct in6_addr *a)
{
	struct in_addr v4;
	memset(a, 0, sizeof(*a));
	if (!*s)
		return true;
	if (inet_pton(AF_INET6, s, a) == 1)
		return true;
	if (inet_pton(AF_INET, s, &v4) != 1)
		return false;
	a->s6_addr[10] = 0xff;
	a->s6_addr[11] = 0xff;
	memcpy(&a->s6_addr[12], &v4, 4);
	return true;
}

/* One mapping of 0.1 (its mapping_from_json) into m, description into desc. */
static bool mapping_from_json(json_t *o, struct state_mapping *m, char desc[STATE_DESC_MAX + 1],
			      int64_t wall_now, uint64_t mono_now)
{
	char proto[8], nonce[2 * STATE_NONCE_LEN + 2], ext_addr[V1_ADDR_MAX], rh[V1_HOST_MAX],
		client[V1_ADDR_MAX], owner[V1_ADDR_MAX];
	json_int_t ext, in, rport = 0, dur, end;
	memset(m, 0, sizeof(*m));
	if (!json_is_object(o) || !get_str(o, "protocol", proto, sizeof(proto)) ||
	    !get_int(o, "external_port", 0, 65535, &ext) ||
	    !get_str(o, "external_addr", ext_addr, sizeof(ext_addr)) ||
	    !get_str(o, "remote_host", rh, sizeof(rh)) ||
	    !get_str(o, "internal_client", client, sizeof(client)) ||
	    !get_int(o, "internal_port", 1, 65535, &in) ||
	    !get_str(o, "description", desc, STATE_DESC_MAX + 1) ||
	    !get_str(o, "owner", owner, sizeof(owner)) ||
	    !get_int(o, "lease_duration", 0, UINT32_MAX, &dur) ||
	    !get_int(o, "lease_end", 0, INT64_MAX, &end) ||
	    !get_str(o, "nonce", nonce, sizeof(nonce)))
		return false;
	const char *np = nonce;
	if (strlen(nonce) != 2 * STATE_NONCE_LEN || !hex_take(&np, m->nonce, STATE_NONCE_LEN))
		return false;
	if (json_object_get(o, "router_port") && !get_int(o, "router_port", 0, 65535, &rport))
		return false;
	json_t *en = json_object_get(o, "enabled");
	if (!json_is_boolean(en))
		return false;
	if (strcmp(proto, "TCP") == 0)
		m->protocol = 6;
	else if (strcmp(proto, "UDP") == 0)
		m->protocol = 17;
	else
		return false;
	if (!addr_parse(rh, &m->remote_host) || !*client || !addr_parse(client, &m->internal_client))
		return false;
	if (!addr_parse(ext_addr, &m->external_addr))
		memset(&m->external_addr, 0, sizeof(m->external_addr));
	if (!addr_parse(owner, &m->owner))
		memset(&m->owner, 0, sizeof(m->owner));
	m->external_port = (uint16_t)ext;
	m->internal_port = (uint16_t)in;
	m->router_port = (uint16_t)rport;
	m->flags = json_is_true(en) ? STATE_F_ENABLED : 0;
	m->lease_duration = (uint32_t)dur;
	m->description = desc;
	/* 0.1 stored the wall-clock end. Only when that and the clock now are sane is the time
	 * left known; else (state.h "Time") nothing is taken as elapsed: a whole lease is left.
	 * Never more than the lease asked for. */
	if (end) {
		bool known = end >= STATE_WALL_SANE_MIN && wall_now >= STATE_WALL_SANE_MIN;
		int64_t left = known ? (int64_t)end - wall_now : dur;
		if (dur && left > dur)
			left = dur;
		if (left > INT32_MAX)
			left = INT32_MAX; /* what the journal holds (68 years) */
		if (known || dur) /* else an infinite lease with an end of unknown meaning */
			m->lease_end_ms = state_lease_end(left, mono_now);
	}
	return true;
}

enum state_err state_json_import(struct state_table *t, const char *text, size_t len, int64_t wall_now,
				 uint64_t mono_now, size_t *count, char *detail, size_t cap)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		state_detail(detail, cap, "JSON state file, line %d: %s", jerr.line, jerr.text);
		return STATE_ERR_FORMAT;
	}
	enum state_err rc = STATE_ERR_FORMAT;
	json_int_t version, boot_id = 0, sys_id = 0;
	char u_igd[V1_UUID_MAX], u_wd[V1_UUID_MAX], u_wcd[V1_UUID_MAX];
	char desc[STATE_DESC_MAX + 1];
	json_t *uuid = json_object_get(root, "uuid");
	json_t *arr = json_object_get(root, "mappings");
	json_t *ints = json_object_get(root, "intents");
	size_t n = 0;
	if (!json_is_object(root) || !get_int(root, "version", 1, INT32_MAX, &version)) {
		state_detail(detail, cap, "JSON state file: no version");
		goto out;
	}
	if (version > 1) {
		state_detail(detail, cap, "JSON state file version %lld, written by a newer iwfd", (long long)version);
		rc = STATE_ERR_VERSION;
		goto out;
	}
	if (!json_is_object(uuid) || !json_is_array(arr) || !get_str(uuid, "igd", u_igd, sizeof(u_igd)) ||
	    !get_str(uuid, "wan_device", u_wd, sizeof(u_wd)) ||
	    !get_str(uuid, "wan_connection_device", u_wcd, sizeof(u_wcd)) ||
	    !get_int(root, "boot_id", 0, UINT32_MAX, &boot_id) ||
	    !get_int(root, "system_update_id", 0, UINT32_MAX, &sys_id)) {
		state_detail(detail, cap, "JSON state file: missing or invalid header fields");
		goto out;
	}
	if (ints && !json_is_array(ints)) {
		state_detail(detail, cap, "JSON state file: intents is not an array");
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		struct state_mapping m;
		if (!mapping_from_json(o, &m, desc, wall_now, mono_now) || !m.external_port) {
			state_detail(detail, cap, "JSON state file: invalid mapping #%zu", i);
			goto out;
		}
		m.id = (uint32_t)++n;
		enum state_err e = state_rec_put(t, &m);
		if (e != STATE_OK) {
			state_detail(detail, cap, "JSON state file: %s mapping #%zu",
				     e == STATE_ERR_EXISTS ? "duplicate" : "cannot add", i);
			rc = e == STATE_ERR_NOMEM ? e : STATE_ERR_FORMAT;
			goto out;
		}
	}
	/* Intents of 0.1 were requests in flight, kept for their nonce (deleted at the next
	 * start). 0.1 did not hold their keys: one whose key is taken is the mapping itself
	 * (same nonce: dropped) or keeps its nonce without the key (external port 0). */
	json_array_foreach(ints, i, o) {
		struct state_mapping m;
		if (!mapping_from_json(o, &m, desc, wall_now, mono_now)) {
			state_detail(detail, cap, "JSON state file: invalid intent #%zu", i);
			goto out;
		}
		const struct state_mapping *h = state_table_find(t, m.protocol, m.external_port, &m.remote_host);
		if (h && memcmp(h->nonce, m.nonce, STATE_NONCE_LEN) == 0)
			continue;
		if (h)
			m.external_port = 0;
		m.flags |= STATE_F_INTENT;
		m.id = (uint32_t)++n;
		enum state_err e = state_rec_put(t, &m);
		if (e != STATE_OK) {
			state_detail(detail, cap, "JSON state file: cannot add intent #%zu", i);
			rc = e == STATE_ERR_NOMEM ? e : STATE_ERR_FORMAT;
			goto out;
		}
	}
	uuid_parse(u_igd, t->meta.uuid_igd);
	uuid_parse(u_wd, t->meta.uuid_wan_device);
	uuid_parse(u_wcd, t->meta.uuid_wan_conn_device);
	t->meta.boot_id = (uint32_t)boot_id;
	t->meta.system_update_id = (uint32_t)sys_id;
	state_ids_above(t, (uint32_t)n);
	*count = n;
	rc = STATE_OK;
out:
	if (rc != STATE_OK)
		state_recs_clear(t);
	json_decref(root);
	return rc;
}
