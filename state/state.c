/*
 * state.c - local mapping table and its atomic JSON storage (seed 004 §5.4).
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mapping_vec {
	struct state_mapping *v;
	size_t n, cap;
};

struct state_table {
	struct state_mapping *v; /* entries, in insertion order */
	size_t n, cap;
	struct mapping_vec intents;
};

static enum state_err vec_push(struct state_mapping **v, size_t *n, size_t *cap,
			       const struct state_mapping *m)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct state_mapping *nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return STATE_ERR_NOMEM;
		*v = nv;
		*cap = ncap;
	}
	struct state_mapping *e = &(*v)[*n];
	*e = *m;
	/* Make sure every string is terminated whatever the caller left in the buffers. */
	e->external_addr[sizeof(e->external_addr) - 1] = '\0';
	e->remote_host[sizeof(e->remote_host) - 1] = '\0';
	e->internal_client[sizeof(e->internal_client) - 1] = '\0';
	e->description[sizeof(e->description) - 1] = '\0';
	e->owner[sizeof(e->owner) - 1] = '\0';
	(*n)++;
	return STATE_OK;
}

static const char *const err_names[] = {
	[STATE_OK] = "ok",
	[STATE_ERR_NOMEM] = "out of memory",
	[STATE_ERR_EXISTS] = "entry exists",
	[STATE_ERR_NOTFOUND] = "no such entry",
	[STATE_ERR_IO] = "I/O error",
	[STATE_ERR_FORMAT] = "invalid state file",
	[STATE_ERR_VERSION] = "unknown state file version",
	[STATE_ERR_INVAL] = "invalid argument",
};

const char *state_err_name(enum state_err err)
{
	if ((size_t)err < sizeof(err_names) / sizeof(err_names[0]) && err_names[err])
		return err_names[err];
	return "unknown error";
}

struct state_table *state_table_new(void)
{
	return calloc(1, sizeof(struct state_table));
}

void state_table_free(struct state_table *t)
{
	if (!t)
		return;
	free(t->v);
	free(t->intents.v);
	free(t);
}

size_t state_table_count(const struct state_table *t)
{
	return t->n;
}

static bool same_host(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

long state_table_find(const struct state_table *t, uint8_t protocol, uint16_t external_port,
		      const char *remote_host)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct state_mapping *m = &t->v[i];
		if (m->protocol == protocol && m->external_port == external_port &&
		    same_host(m->remote_host, remote_host))
			return (long)i;
	}
	return -1;
}

enum state_err state_table_add(struct state_table *t, const struct state_mapping *m)
{
	if (!m || (m->protocol != 6 && m->protocol != 17) || m->external_port == 0)
		return STATE_ERR_INVAL;
	if (state_table_find(t, m->protocol, m->external_port, m->remote_host) >= 0)
		return STATE_ERR_EXISTS;
	return vec_push(&t->v, &t->n, &t->cap, m);
}

enum state_err state_table_intent_add(struct state_table *t, const struct state_mapping *m)
{
	if (!m || (m->protocol != 6 && m->protocol != 17))
		return STATE_ERR_INVAL;
	return vec_push(&t->intents.v, &t->intents.n, &t->intents.cap, m);
}

enum state_err state_table_intent_remove(struct state_table *t, const uint8_t nonce[STATE_NONCE_LEN])
{
	for (size_t i = 0; i < t->intents.n; i++) {
		if (memcmp(t->intents.v[i].nonce, nonce, STATE_NONCE_LEN) == 0) {
			memmove(&t->intents.v[i], &t->intents.v[i + 1],
				(t->intents.n - i - 1) * sizeof(t->intents.v[0]));
			t->intents.n--;
			return STATE_OK;
		}
	}
	return STATE_ERR_NOTFOUND;
}

size_t state_table_intent_count(const struct state_table *t)
{
	return t->intents.n;
}

const struct state_mapping *state_table_intent_get(const struct state_table *t, size_t i)
{
	return i < t->intents.n ? &t->intents.v[i] : NULL;
}

const struct state_mapping *state_table_get(const struct state_table *t, size_t i)
{
	return i < t->n ? &t->v[i] : NULL;
}

struct state_mapping *state_table_get_mut(struct state_table *t, size_t i)
{
	return i < t->n ? &t->v[i] : NULL;
}

enum state_err state_table_remove(struct state_table *t, size_t i)
{
	if (i >= t->n)
		return STATE_ERR_NOTFOUND;
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
	t->n--;
	return STATE_OK;
}

void state_table_clear(struct state_table *t)
{
	t->n = 0;
	t->intents.n = 0;
}

/* ------------------------------------------------------------------ storage */

__attribute__((format(printf, 3, 4)))
static void set_detail(char *detail, size_t cap, const char *fmt, ...)
{
	if (!detail || !cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, cap, fmt, ap);
	va_end(ap);
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
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

static bool hex_decode(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static json_t *mapping_to_json(const struct state_mapping *m)
{
	char nonce[2 * STATE_NONCE_LEN + 1];
	hex_encode(m->nonce, STATE_NONCE_LEN, nonce);
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:b, s:I, s:I, s:s}",
			 "protocol", m->protocol == 6 ? "TCP" : "UDP",
			 "external_port", (int)m->external_port,
			 "external_addr", m->external_addr,
			 "remote_host", m->remote_host,
			 "internal_client", m->internal_client,
			 "internal_port", (int)m->internal_port,
			 "router_port", (int)m->router_port,
			 "description", m->description,
			 "owner", m->owner,
			 "enabled", m->enabled,
			 "lease_duration", (json_int_t)m->lease_duration,
			 "lease_end", (json_int_t)m->lease_end,
			 "nonce", nonce);
}

/* Copy a JSON string member into buf; false if missing, not a string or too long. */
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

static bool mapping_from_json(json_t *o, struct state_mapping *m)
{
	char proto[8], nonce[2 * STATE_NONCE_LEN + 2];
	json_int_t ext, in, rport = 0, dur, end;
	memset(m, 0, sizeof(*m));
	if (!json_is_object(o) || !get_str(o, "protocol", proto, sizeof(proto)) ||
	    !get_int(o, "external_port", 0, 65535, &ext) ||
	    !get_str(o, "external_addr", m->external_addr, sizeof(m->external_addr)) ||
	    !get_str(o, "remote_host", m->remote_host, sizeof(m->remote_host)) ||
	    !get_str(o, "internal_client", m->internal_client, sizeof(m->internal_client)) ||
	    !get_int(o, "internal_port", 1, 65535, &in) ||
	    !get_str(o, "description", m->description, sizeof(m->description)) ||
	    !get_str(o, "owner", m->owner, sizeof(m->owner)) ||
	    !get_int(o, "lease_duration", 0, UINT32_MAX, &dur) ||
	    !get_int(o, "lease_end", 0, INT64_MAX, &end) ||
	    !get_str(o, "nonce", nonce, sizeof(nonce)) ||
	    !hex_decode(nonce, m->nonce, STATE_NONCE_LEN))
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
	m->external_port = (uint16_t)ext;
	m->internal_port = (uint16_t)in;
	m->router_port = (uint16_t)rport;
	m->enabled = json_is_true(en);
	m->lease_duration = (uint32_t)dur;
	m->lease_end = (int64_t)end;
	return true;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash) {
		strcpy(dir, ".");
	} else {
		size_t n = (size_t)(slash - path);
		if (n == 0)
			n = 1;
		if (n >= sizeof(dir))
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

enum state_err state_save(const struct state_table *t, const struct state_meta *meta,
			  const char *path, char *detail, size_t detail_cap)
{
	json_t *root = json_pack("{s:i, s:{s:s, s:s, s:s}, s:I, s:I, s:[]}",
				 "version", STATE_FILE_VERSION,
				 "uuid", "igd", meta->uuid_igd, "wan_device", meta->uuid_wan_device,
				 "wan_connection_device", meta->uuid_wan_conn_device,
				 "boot_id", (json_int_t)meta->boot_id,
				 "system_update_id", (json_int_t)meta->system_update_id,
				 "mappings");
	if (!root)
		return STATE_ERR_NOMEM;
	json_t *arr = json_object_get(root, "mappings");
	for (size_t i = 0; i < t->n; i++) {
		if (json_array_append_new(arr, mapping_to_json(&t->v[i])) < 0) {
			json_decref(root);
			return STATE_ERR_NOMEM;
		}
	}
	json_t *intents = json_array();
	if (!intents || json_object_set_new(root, "intents", intents) < 0) {
		json_decref(root);
		return STATE_ERR_NOMEM;
	}
	for (size_t i = 0; i < t->intents.n; i++) {
		if (json_array_append_new(intents, mapping_to_json(&t->intents.v[i])) < 0) {
			json_decref(root);
			return STATE_ERR_NOMEM;
		}
	}
	char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return STATE_ERR_NOMEM;

	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		free(text);
		return STATE_ERR_INVAL;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		free(text);
		set_detail(detail, detail_cap, "cannot create %s: %s", tmp, strerror(e));
		errno = e;
		return STATE_ERR_IO;
	}
	int rc = write_all(fd, text, strlen(text));
	if (rc == 0)
		rc = write_all(fd, "\n", 1);
	if (rc == 0)
		rc = fsync(fd);
	int e = errno;
	free(text);
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc != 0) {
		unlink(tmp);
		set_detail(detail, detail_cap, "cannot write %s: %s", path, strerror(e));
		errno = e;
		return STATE_ERR_IO;
	}
	fsync_dir_of(path);
	return STATE_OK;
}

enum state_err state_load(struct state_table *t, struct state_meta *meta, const char *path,
			  char *detail, size_t detail_cap)
{
	json_error_t jerr;
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		set_detail(detail, detail_cap, "cannot open %s: %s", path, strerror(e));
		errno = e;
		return STATE_ERR_IO;
	}
	json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root) {
		if (detail && detail_cap)
			snprintf(detail, detail_cap, "%s:%d: %s", path, jerr.line, jerr.text);
		return STATE_ERR_FORMAT;
	}
	enum state_err rc = STATE_ERR_FORMAT;
	struct state_meta m = {0};
	json_int_t version, boot_id = 0, sys_id = 0;
	json_t *uuid = json_object_get(root, "uuid");
	json_t *arr = json_object_get(root, "mappings");
	if (!json_is_object(root) || !get_int(root, "version", 1, INT32_MAX, &version)) {
		set_detail(detail, detail_cap, "%s: %s", path, "no version");
		goto out;
	}
	if (version > STATE_FILE_VERSION) {
		set_detail(detail, detail_cap, "%s: %s", path, "written by a newer iwfd");
		rc = STATE_ERR_VERSION;
		goto out;
	}
	if (!json_is_object(uuid) || !json_is_array(arr) ||
	    !get_str(uuid, "igd", m.uuid_igd, sizeof(m.uuid_igd)) ||
	    !get_str(uuid, "wan_device", m.uuid_wan_device, sizeof(m.uuid_wan_device)) ||
	    !get_str(uuid, "wan_connection_device", m.uuid_wan_conn_device,
		     sizeof(m.uuid_wan_conn_device)) ||
	    !get_int(root, "boot_id", 0, UINT32_MAX, &boot_id) ||
	    !get_int(root, "system_update_id", 0, UINT32_MAX, &sys_id)) {
		set_detail(detail, detail_cap, "%s: %s", path, "missing or invalid header fields");
		goto out;
	}
	m.boot_id = (uint32_t)boot_id;
	m.system_update_id = (uint32_t)sys_id;
	state_table_clear(t);
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		struct state_mapping e;
		if (!mapping_from_json(o, &e)) {
			set_detail(detail, detail_cap, "%s: invalid mapping #%zu", path, i);
			state_table_clear(t);
			goto out;
		}
		enum state_err aerr = state_table_add(t, &e);
		if (aerr != STATE_OK) {
			set_detail(detail, detail_cap, "%s: %s", path,
				   aerr == STATE_ERR_EXISTS ? "duplicate mapping" : "cannot add mapping");
			state_table_clear(t);
			rc = aerr == STATE_ERR_NOMEM ? STATE_ERR_NOMEM : STATE_ERR_FORMAT;
			goto out;
		}
	}
	/* Intents are optional: files without them simply have none. */
	json_t *ints = json_object_get(root, "intents");
	if (ints && !json_is_array(ints)) {
		set_detail(detail, detail_cap, "%s: %s", path, "intents is not an array");
		state_table_clear(t);
		goto out;
	}
	json_array_foreach(ints, i, o) {
		struct state_mapping e;
		if (!mapping_from_json(o, &e)) {
			set_detail(detail, detail_cap, "%s: invalid intent #%zu", path, i);
			state_table_clear(t);
			goto out;
		}
		if (state_table_intent_add(t, &e) != STATE_OK) {
			state_table_clear(t);
			rc = STATE_ERR_NOMEM;
			goto out;
		}
	}
	*meta = m;
	rc = STATE_OK;
out:
	json_decref(root);
	return rc;
}

enum state_err state_quarantine(const char *path, int64_t now_wall, char *new_path, size_t cap)
{
	char buf[PATH_MAX];
	if ((size_t)snprintf(buf, sizeof(buf), "%s.corrupt-%lld", path, (long long)now_wall) >=
	    sizeof(buf))
		return STATE_ERR_INVAL;
	if (rename(path, buf) < 0)
		return STATE_ERR_IO;
	if (new_path && cap)
		snprintf(new_path, cap, "%s", buf);
	return STATE_OK;
}
