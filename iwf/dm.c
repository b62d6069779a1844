/*
 * dm.c - TR-181 Device.PCP. (and a minimal Device.DeviceInfo.) over the control socket,
 * with the dm.* operations of docs/tr069.md: dm.get, dm.names, dm.set (all or nothing),
 * dm.add, dm.delete (dm.reboot / dm.factory_reset: 9000).
 *
 * Each request takes a snapshot of the tree (rows: name, type, value, writable) from the
 * core's administrator view (iwf_core_admin_list / _status) and the rows held here:
 *  - every committed mapping is an InboundMapping instance, Origin UPnP_IWF (made by a
 *    control point, read-only) or Static (made by the administrator; DeleteObject deletes
 *    it on the carrier through iwf_core_admin_delete);
 *  - an AddObject makes a *pending* row held here (Static, disabled); when Enable=1 is set
 *    with InternalPort, ProtocolNumber, ThirdPartyAddress and SuggestedExternalPort it goes
 *    through iwf_core_admin_add (the real lifecycle: local table, PCP MAP, journal) and the
 *    answer waits for the carrier; on success the pending row becomes that mapping, with the
 *    same instance number.
 * Instance numbers: a map from the state/ record id to the instance number, given in order
 * of first sight, never reused.
 *
 * Stored beside the state file (STATE.dm, JSON, written to STATE.dm.tmp, fsync, rename) when
 * the ACS changes something: UPnPIWF.Enable, the pending rows, the instance numbers of the
 * Static mappings, and a reservation of instance numbers (the next number rounded up by
 * DM_INST_BLOCK, so that a new UPnP mapping costs no write: after a restart numbering
 * resumes past the reservation, never reusing one). A change the ACS asks for is stored
 * before it is applied; a store that cannot be written fails the request (9002).
 */
#include "dm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCP_PREFIX "Device.PCP."
#define CLIENT "Device.PCP.Client.1."
#define SERVER CLIENT "Server.1."
#define TABLE SERVER "InboundMapping."
#define DM_MAX_PENDING 64
#define DM_ALIAS_MAX 64
#define DM_INST_BLOCK 1024 /* instance numbers reserved per write of the store */
#define DM_STORE_MAX (256 * 1024)

/* ------------------------------------------------------------------ rows */

struct row {
	char *name;
	const char *type; /* "object", "string", "boolean", "unsignedInt", ... */
	char *value;      /* NULL for objects */
	bool writable;
	uint32_t inst;    /* InboundMapping instance the row belongs to (0 = none) */
};

struct rows {
	struct row *v;
	size_t n, cap;
	bool oom;
};

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].value);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static void row_add(struct rows *r, uint32_t inst, bool writable, const char *type, const char *value,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void row_add(struct rows *r, uint32_t inst, bool writable, const char *type, const char *value,
		    const char *fmt, ...)
{
	if (r->oom)
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct row *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->oom = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	struct row *w = &r->v[r->n];
	w->name = strdup(name);
	w->value = value ? strdup(value) : NULL;
	if (!w->name || (value && !w->value)) {
		free(w->name);
		free(w->value);
		r->oom = true;
		return;
	}
	w->type = type;
	w->writable = writable;
	w->inst = inst;
	r->n++;
}

static const struct row *row_find(const struct rows *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0)
			return &r->v[i];
	return NULL;
}

/* ------------------------------------------------------------------ the model's own state */

struct pending {
	uint32_t inst;
	bool enable;
	char status[32];
	uint32_t error_code;
	char alias[DM_ALIAS_MAX + 1];
	uint32_t lifetime;
	char sugg_ip[INET6_ADDRSTRLEN];
	uint32_t sugg_port, sugg_end;
	uint32_t internal_port, proto;
	char third[INET6_ADDRSTRLEN]; /* IPv6 too: --nat nat64 maps IPv6 LAN hosts */
	char desc[UPNP_DESC_MAX + 1];
};

struct inst_map {
	uint32_t id, inst;
	bool seen;
	bool is_static; /* stored: the ACS's (or iwfctl's) mappings keep their number */
};

struct dm_wait {
	struct dm_wait *next;
	struct iwf_dm *dm;
	json_t *id;
	iwf_dm_reply_fn *reply; /* NULL once cancelled */
	void *reply_arg;
	bool is_add;
	struct pending cand[DM_MAX_PENDING]; /* add: the pending rows as the set leaves them */
	size_t n_cand;
	int upnp_on;   /* UPnPIWF.Enable to apply with the set: -1 = not set */
	uint32_t inst; /* the row added or deleted */
	enum upnp_proto proto;
	uint16_t eport;
};

struct iwf_dm {
	struct iwf_core *core;
	const struct iwf_control_ops *ops;
	void *ops_arg;
	char *store;        /* STATE.dm; NULL: nothing stored */
	bool upnp_on;       /* UPnPIWF.Enable as stored */
	uint32_t inst_reserved; /* numbers below it may have been given: a restart starts here */
	uint32_t next_inst;
	struct pending pend[DM_MAX_PENDING];
	size_t n_pend;
	struct inst_map *map; /* sorted by id */
	size_t n_map, cap_map;
	struct dm_wait *waits;
};

static int set_field(struct pending *p, const char *field, const char *value);
static struct inst_map *inst_of(struct iwf_dm *dm, uint32_t id, uint32_t fresh_inst);
static struct pending *pend_find(struct pending *v, size_t n, uint32_t inst);

/* ------------------------------------------------------------------ the store (STATE.dm) */

/* The fields of a pending row, stored as their TR-181 text (read back through set_field). */
static const char *const pend_fields[] = { "Enable", "Alias", "Lifetime", "SuggestedExternalIPAddress",
					   "SuggestedExternalPort", "SuggestedExternalPortEndRange",
					   "InternalPort", "ProtocolNumber", "ThirdPartyAddress", "Description" };

static void pend_field_text(const struct pending *p, const char *f, char *out, size_t cap)
{
	if (!strcmp(f, "Enable"))
		snprintf(out, cap, "%d", p->enable);
	else if (!strcmp(f, "Alias"))
		snprintf(out, cap, "%s", p->alias);
	else if (!strcmp(f, "Lifetime"))
		snprintf(out, cap, "%u", p->lifetime);
	else if (!strcmp(f, "SuggestedExternalIPAddress"))
		snprintf(out, cap, "%s", p->sugg_ip);
	else if (!strcmp(f, "SuggestedExternalPort"))
		snprintf(out, cap, "%u", p->sugg_port);
	else if (!strcmp(f, "SuggestedExternalPortEndRange"))
		snprintf(out, cap, "%u", p->sugg_end);
	else if (!strcmp(f, "InternalPort"))
		snprintf(out, cap, "%u", p->internal_port);
	else if (!strcmp(f, "ProtocolNumber"))
		snprintf(out, cap, "%u", p->proto);
	else if (!strcmp(f, "ThirdPartyAddress"))
		snprintf(out, cap, "%s", p->third);
	else
		snprintf(out, cap, "%s", p->desc);
}

/* Write the store as it would be with these pending rows, this UPnPIWF.Enable and this
 * reservation: 0, or an errno. Nothing stored without a store path (0). */
static int store_write(struct iwf_dm *dm, const struct pending *pend, size_t n_pend, bool upnp_on,
		       uint32_t reserved)
{
	if (!dm->store)
		return 0;
	json_t *root = json_object(), *insts = json_array(), *rows = json_array();
	if (!root || !insts || !rows) {
		json_decref(root);
		json_decref(insts);
		json_decref(rows);
		return ENOMEM;
	}
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "upnp_enabled", json_boolean(upnp_on));
	json_object_set_new(root, "next_instance", json_integer(reserved));
	for (size_t i = 0; i < dm->n_map; i++)
		if (dm->map[i].is_static)
			json_array_append_new(insts, json_pack("[I, I]", (json_int_t)dm->map[i].id,
							       (json_int_t)dm->map[i].inst));
	json_object_set_new(root, "static_instances", insts);
	for (size_t i = 0; i < n_pend; i++) {
		json_t *o = json_pack("{s:I, s:s, s:I}", "instance", (json_int_t)pend[i].inst, "Status",
				      pend[i].status, "ErrorCode", (json_int_t)pend[i].error_code);
		for (size_t f = 0; o && f < sizeof(pend_fields) / sizeof(pend_fields[0]); f++) {
			char text[UPNP_DESC_MAX + 1];
			pend_field_text(&pend[i], pend_fields[f], text, sizeof(text));
			json_object_set_new(o, pend_fields[f], json_string(text));
		}
		json_array_append_new(rows, o);
	}
	json_object_set_new(root, "pending", rows);
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text)
		return ENOMEM;
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", dm->store) >= sizeof(tmp)) {
		free(text);
		return ENAMETOOLONG;
	}
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = errno;
	} else {
		size_t len = strlen(text), off = 0;
		while (off < len && !rc) {
			ssize_t n = write(fd, text + off, len - off);
			if (n < 0 && errno != EINTR)
				rc = errno;
			else if (n > 0)
				off += (size_t)n;
		}
		if (!rc && fsync(fd) != 0)
			rc = errno;
		if (close(fd) != 0 && !rc)
			rc = errno;
		if (!rc && rename(tmp, dm->store) != 0)
			rc = errno;
		if (rc)
			unlink(tmp);
	}
	free(text);
	return rc;
}

/* The reservation that covers instance numbers up to `next` (exclusive). */
static uint32_t reserve_for(uint32_t next)
{
	return (next / DM_INST_BLOCK + 1) * DM_INST_BLOCK;
}

static json_t *store_load(const char *path, char *why, size_t cap)
{
	struct stat st;
	if (lstat(path, &st) != 0 && errno == ENOENT)
		return NULL; /* none yet */
	if (lstat(path, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > DM_STORE_MAX)) {
		snprintf(why, cap, "not a regular file of at most %d bytes", DM_STORE_MAX);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, cap, "%s", jerr.text);
		return NULL;
	}
	if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1) {
		snprintf(why, cap, "not a version 1 store");
		json_decref(root);
		return NULL;
	}
	return root;
}

bool iwf_dm_stored_upnp_enabled(const char *path, char *why, size_t cap)
{
	if (cap)
		why[0] = '\0';
	if (!path || !path[0])
		return true;
	json_t *root = store_load(path, why, cap);
	bool on = !root || !json_is_false(json_object_get(root, "upnp_enabled"));
	json_decref(root);
	return on;
}

/* Read what was stored; anything that makes no sense is left out (a bad row, a number that
 * is not a number). */
static void store_read(struct iwf_dm *dm)
{
	char why[160];
	json_t *root = store_load(dm->store, why, sizeof(why));
	if (!root)
		return;
	dm->upnp_on = !json_is_false(json_object_get(root, "upnp_enabled"));
	json_int_t next = json_integer_value(json_object_get(root, "next_instance"));
	if (next > 0 && next < (json_int_t)UINT32_MAX - DM_INST_BLOCK)
		dm->next_inst = (uint32_t)next;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(root, "static_instances"), i, e) {
		json_int_t id = json_integer_value(json_array_get(e, 0)), inst = json_integer_value(json_array_get(e, 1));
		if (id <= 0 || id > (json_int_t)UINT32_MAX || inst <= 0 || inst >= (json_int_t)UINT32_MAX - DM_INST_BLOCK)
			continue;
		struct inst_map *m = inst_of(dm, (uint32_t)id, (uint32_t)inst);
		if (m) {
			m->is_static = true;
			if (m->inst >= dm->next_inst)
				dm->next_inst = m->inst + 1;
		}
	}
	json_array_foreach(json_object_get(root, "pending"), i, e) {
		json_int_t inst = json_integer_value(json_object_get(e, "instance"));
		if (dm->n_pend >= DM_MAX_PENDING || inst <= 0 || inst >= (json_int_t)UINT32_MAX - DM_INST_BLOCK ||
		    pend_find(dm->pend, dm->n_pend, (uint32_t)inst))
			continue;
		struct pending p;
		memset(&p, 0, sizeof(p));
		p.inst = (uint32_t)inst;
		bool ok = true;
		for (size_t f = 0; ok && f < sizeof(pend_fields) / sizeof(pend_fields[0]); f++) {
			const char *v = json_string_value(json_object_get(e, pend_fields[f]));
			if (v && !strcmp(pend_fields[f], "ProtocolNumber") && !strcmp(v, "0"))
				continue; /* not set yet */
			ok = v && set_field(&p, pend_fields[f], v) == 0;
		}
		const char *st = json_string_value(json_object_get(e, "Status"));
		json_int_t ec = json_integer_value(json_object_get(e, "ErrorCode"));
		if (!ok || !st || (strcmp(st, "Disabled") && strncmp(st, "Error_", 6)) || ec < 0 || ec > 999)
			continue;
		p.enable = false; /* a row is enabled only by becoming a mapping */
		snprintf(p.status, sizeof(p.status), "%s", st);
		p.error_code = (uint32_t)ec;
		dm->pend[dm->n_pend++] = p;
		if (p.inst >= dm->next_inst)
			dm->next_inst = p.inst + 1;
	}
	json_decref(root);
}

struct iwf_dm *iwf_dm_new(struct iwf_core *core, const struct iwf_control_ops *ops, void *ops_arg,
			  const char *store)
{
	struct iwf_dm *dm = calloc(1, sizeof(*dm));
	if (!dm)
		return NULL;
	dm->core = core;
	dm->ops = ops;
	dm->ops_arg = ops_arg;
	dm->next_inst = 1;
	dm->upnp_on = true;
	if (store && store[0]) {
		dm->store = strdup(store);
		if (dm->store)
			store_read(dm);
	}
	dm->inst_reserved = dm->next_inst;
	return dm;
}

void iwf_dm_free(struct iwf_dm *dm)
{
	if (!dm)
		return;
	while (dm->waits) {
		struct dm_wait *w = dm->waits;
		dm->waits = w->next;
		iwf_core_admin_cancel(dm->core, w);
		json_decref(w->id);
		free(w);
	}
	free(dm->map);
	free(dm->store);
	free(dm);
}

void iwf_dm_cancel(struct iwf_dm *dm, void *reply_arg)
{
	for (struct dm_wait *w = dm ? dm->waits : NULL; w; w = w->next)
		if (w->reply_arg == reply_arg)
			w->reply = NULL;
}

/* The instance of record `id`, a new one at first sight (NULL: out of memory). */
static struct inst_map *inst_of(struct iwf_dm *dm, uint32_t id, uint32_t fresh_inst)
{
	size_t lo = 0, hi = dm->n_map;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (dm->map[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < dm->n_map && dm->map[lo].id == id)
		return &dm->map[lo];
	if (dm->n_map == dm->cap_map) {
		size_t cap = dm->cap_map ? dm->cap_map * 2 : 64;
		struct inst_map *m = realloc(dm->map, cap * sizeof(*m));
		if (!m)
			return NULL;
		dm->map = m;
		dm->cap_map = cap;
	}
	memmove(&dm->map[lo + 1], &dm->map[lo], (dm->n_map - lo) * sizeof(*dm->map));
	dm->n_map++;
	dm->map[lo].id = id;
	dm->map[lo].inst = fresh_inst ? fresh_inst : dm->next_inst++;
	dm->map[lo].seen = false;
	dm->map[lo].is_static = false;
	return &dm->map[lo];
}

static struct pending *pend_find(struct pending *v, size_t n, uint32_t inst)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].inst == inst)
			return &v[i];
	return NULL;
}

static void pend_remove(struct iwf_dm *dm, uint32_t inst)
{
	for (size_t i = 0; i < dm->n_pend; i++) {
		if (dm->pend[i].inst == inst) {
			memmove(&dm->pend[i], &dm->pend[i + 1], (dm->n_pend - i - 1) * sizeof(dm->pend[0]));
			dm->n_pend--;
			return;
		}
	}
}

/* ------------------------------------------------------------------ the snapshot */

/* One InboundMapping instance (live: e != NULL; pending: p != NULL). */
struct inst_ref {
	uint32_t inst;
	const struct iwf_admin_entry *e;
	const struct pending *p;
};

static int inst_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct inst_ref *)a)->inst, y = ((const struct inst_ref *)b)->inst;
	return x < y ? -1 : x > y;
}

static const char *b01(bool b)
{
	return b ? "1" : "0";
}

static void u32(char *buf, uint32_t v)
{
	snprintf(buf, 16, "%u", v);
}

static void add_mapping(struct rows *r, const struct inst_ref *x)
{
	const uint32_t i = x->inst;
	char a[16], b[16], c[16], d[16], e[16], f[16], g[16];
	if (x->e) {
		const struct iwf_admin_entry *m = x->e;
		bool st = m->is_static;
		row_add(r, i, st, "object", NULL, TABLE "%u.", i);
		u32(a, m->has_pcp ? m->pcp_left_s : m->pm.lease_duration);
		u32(b, m->pm.external_port);
		u32(c, m->pm.internal_port);
		u32(d, m->pm.protocol == UPNP_PROTO_TCP ? 6 : 17);
		row_add(r, i, false, "boolean", b01(m->pm.enabled), TABLE "%u.Enable", i);
		row_add(r, i, false, "string", m->pm.enabled ? "Enabled" : "Disabled", TABLE "%u.Status", i);
		row_add(r, i, false, "unsignedInt", "0", TABLE "%u.ErrorCode", i);
		snprintf(e, sizeof(e), "cpe-%u", i);
		row_add(r, i, false, "string", e, TABLE "%u.Alias", i);
		row_add(r, i, false, "string", st ? "Static" : "UPnP_IWF", TABLE "%u.Origin", i);
		row_add(r, i, false, "unsignedInt", a, TABLE "%u.Lifetime", i);
		row_add(r, i, false, "string", "", TABLE "%u.SuggestedExternalIPAddress", i);
		row_add(r, i, false, "unsignedInt", b, TABLE "%u.SuggestedExternalPort", i);
		row_add(r, i, false, "unsignedInt", "0", TABLE "%u.SuggestedExternalPortEndRange", i);
		row_add(r, i, false, "unsignedInt", c, TABLE "%u.InternalPort", i);
		row_add(r, i, false, "unsignedInt", d, TABLE "%u.ProtocolNumber", i);
		row_add(r, i, false, "string", m->pm.internal_client, TABLE "%u.ThirdPartyAddress", i);
		row_add(r, i, false, "string", m->pm.description, TABLE "%u.Description", i);
		row_add(r, i, false, "string", m->external_addr, TABLE "%u.AssignedExternalIPAddress", i);
		row_add(r, i, false, "unsignedInt", b, TABLE "%u.AssignedExternalPort", i);
		row_add(r, i, false, "unsignedInt", "0", TABLE "%u.AssignedExternalPortEndRange", i);
	} else {
		const struct pending *p = x->p;
		row_add(r, i, true, "object", NULL, TABLE "%u.", i);
		u32(a, p->lifetime);
		u32(b, p->sugg_port);
		u32(c, p->sugg_end);
		u32(d, p->internal_port);
		u32(f, p->proto);
		u32(g, p->error_code);
		row_add(r, i, true, "boolean", b01(p->enable), TABLE "%u.Enable", i);
		row_add(r, i, false, "string", p->status, TABLE "%u.Status", i);
		row_add(r, i, false, "unsignedInt", g, TABLE "%u.ErrorCode", i);
		row_add(r, i, true, "string", p->alias, TABLE "%u.Alias", i);
		row_add(r, i, false, "string", "Static", TABLE "%u.Origin", i);
		row_add(r, i, true, "unsignedInt", a, TABLE "%u.Lifetime", i);
		row_add(r, i, true, "string", p->sugg_ip, TABLE "%u.SuggestedExternalIPAddress", i);
		row_add(r, i, true, "unsignedInt", b, TABLE "%u.SuggestedExternalPort", i);
		row_add(r, i, true, "unsignedInt", c, TABLE "%u.SuggestedExternalPortEndRange", i);
		row_add(r, i, true, "unsignedInt", d, TABLE "%u.InternalPort", i);
		row_add(r, i, true, "unsignedInt", f, TABLE "%u.ProtocolNumber", i);
		row_add(r, i, true, "string", p->third, TABLE "%u.ThirdPartyAddress", i);
		row_add(r, i, true, "string", p->desc, TABLE "%u.Description", i);
		row_add(r, i, false, "string", "", TABLE "%u.AssignedExternalIPAddress", i);
		row_add(r, i, false, "unsignedInt", "0", TABLE "%u.AssignedExternalPort", i);
		row_add(r, i, false, "unsignedInt", "0", TABLE "%u.AssignedExternalPortEndRange", i);
	}
	row_add(r, i, false, "unsignedInt", "0", TABLE "%u.FilterNumberOfEntries", i);
	row_add(r, i, false, "object", NULL, TABLE "%u.Filter.", i);
}

/* Server origin (daemon.c's server_why) -> TR-181 Server.Origin. */
static const char *server_origin(const struct iwf_control_info *info)
{
	const char *o = info->server_origin ? info->server_origin : "";
	if (strcmp(o, "file") == 0)
		return strchr(info->server, '[') ? "DHCPv6" : "DHCPv4";
	return "Static"; /* configured, failover, default-router */
}

/* The address part of "ADDR:PORT" / "[V6]:PORT". */
static void server_addr(const char *s, char *out, size_t cap)
{
	const char *end;
	if (s[0] == '[') {
		s++;
		end = strchr(s, ']');
	} else {
		end = strrchr(s, ':');
	}
	size_t n = end ? (size_t)(end - s) : strlen(s);
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

static void device_info(struct rows *r, const struct iwf_control_info *info)
{
	char serial[64] = "";
	FILE *f = fopen("/etc/machine-id", "r");
	if (f) {
		if (!fgets(serial, 13, f))
			serial[0] = '\0';
		fclose(f);
	}
	if (!serial[0] && gethostname(serial, sizeof(serial) - 1) != 0)
		snprintf(serial, sizeof(serial), "iwfd");
	serial[strcspn(serial, "\n")] = '\0';
	row_add(r, 0, false, "object", NULL, "Device.DeviceInfo.");
	row_add(r, 0, false, "string", "iwfd", "Device.DeviceInfo.Manufacturer");
	row_add(r, 0, false, "string", "000000", "Device.DeviceInfo.OUI");
	row_add(r, 0, false, "string", "iwfd", "Device.DeviceInfo.ProductClass");
	row_add(r, 0, false, "string", serial, "Device.DeviceInfo.SerialNumber");
	row_add(r, 0, false, "string", "", "Device.DeviceInfo.HardwareVersion");
	row_add(r, 0, false, "string", info->version ? info->version : "", "Device.DeviceInfo.SoftwareVersion");
	row_add(r, 0, false, "string", "", "Device.DeviceInfo.ProvisioningCode");
}

static bool snapshot(struct iwf_dm *dm, const struct iwf_control_info *info, struct rows *r)
{
	struct iwf_admin_status st;
	iwf_core_admin_status(dm->core, &st);
	size_t n = iwf_core_admin_list(dm->core, NULL, 0);
	struct iwf_admin_entry *v = calloc(n ? n : 1, sizeof(*v));
	struct inst_ref *refs = calloc(n + dm->n_pend + 1, sizeof(*refs));
	if (!v || !refs) {
		free(v);
		free(refs);
		return false;
	}
	n = iwf_core_admin_list(dm->core, v, n);
	size_t k = 0;
	for (size_t i = 0; i < dm->n_map; i++)
		dm->map[i].seen = false;
	bool statics_changed = false;
	for (size_t i = 0; i < n; i++) {
		struct inst_map *m = inst_of(dm, v[i].id, 0);
		if (!m)
			continue;
		m->seen = true;
		if (m->is_static != v[i].is_static) {
			m->is_static = v[i].is_static;
			statics_changed = true;
		}
		refs[k++] = (struct inst_ref){.inst = m->inst, .e = &v[i]};
	}
	/* forget the records that are gone (ids are not reused soon; instances never) */
	size_t j = 0;
	for (size_t i = 0; i < dm->n_map; i++) {
		if (dm->map[i].seen)
			dm->map[j++] = dm->map[i];
		else if (dm->map[i].is_static)
			statics_changed = true;
	}
	dm->n_map = j;
	/* Numbers given past the reservation, or a Static mapping came or went (iwfctl): store.
	 * A failed write is tried again at the next request. */
	if (statics_changed || dm->next_inst > dm->inst_reserved) {
		uint32_t res = dm->next_inst > dm->inst_reserved ? reserve_for(dm->next_inst) : dm->inst_reserved;
		if (store_write(dm, dm->pend, dm->n_pend, dm->upnp_on, res) == 0)
			dm->inst_reserved = res;
	}
	for (size_t i = 0; i < dm->n_pend; i++)
		refs[k++] = (struct inst_ref){.inst = dm->pend[i].inst, .p = &dm->pend[i]};
	qsort(refs, k, sizeof(*refs), inst_cmp);

	char a[16], b[16], addr[80] = "";
	row_add(r, 0, false, "object", NULL, "Device.");
	device_info(r, info);
	row_add(r, 0, false, "object", NULL, PCP_PREFIX);
	row_add(r, 0, false, "string", "2", PCP_PREFIX "SupportedVersions");
	row_add(r, 0, false, "unsignedInt", "2", PCP_PREFIX "PreferredVersion");
	row_add(r, 0, false, "string", "1,2", PCP_PREFIX "OptionList"); /* THIRD_PARTY, PREFER_FAILURE */
	row_add(r, 0, false, "unsignedInt", "1", PCP_PREFIX "ClientNumberOfEntries");
	row_add(r, 0, false, "object", NULL, PCP_PREFIX "Client.");
	row_add(r, 0, false, "object", NULL, CLIENT);
	row_add(r, 0, false, "boolean", "1", CLIENT "Enable");
	row_add(r, 0, false, "string", "Enabled", CLIENT "Status");
	row_add(r, 0, false, "string", st.wan_if, CLIENT "WANInterface");
	row_add(r, 0, false, "boolean", "1", CLIENT "MAPEnable");
	row_add(r, 0, false, "boolean", "0", CLIENT "PEEREnable");
	row_add(r, 0, false, "boolean", "1", CLIENT "ANNOUNCEEnable");
	row_add(r, 0, false, "boolean", "1", CLIENT "THIRDPARTYEnable");
	row_add(r, 0, false, "string", "Enabled", CLIENT "THIRDPARTYStatus");
	row_add(r, 0, false, "boolean", "0", CLIENT "FILTEREnable");
	row_add(r, 0, false, "unsignedInt", "1", CLIENT "ServerNumberOfEntries");
	row_add(r, 0, false, "object", NULL, CLIENT "UPnPIWF.");
	row_add(r, 0, dm->ops && dm->ops->upnp_enable, "boolean", b01(info->upnp_enabled), CLIENT "UPnPIWF.Enable");
	row_add(r, 0, false, "string", info->upnp_enabled ? "Enabled" : "Disabled", CLIENT "UPnPIWF.Status");
	row_add(r, 0, false, "object", NULL, CLIENT "Server.");
	row_add(r, 0, false, "object", NULL, SERVER);
	if (info->have_server)
		server_addr(info->server, addr, sizeof(addr));
	row_add(r, 0, false, "boolean", b01(info->have_server), SERVER "Enable");
	row_add(r, 0, false, "string",
		!info->have_server ? "Disabled" : (st.reach_known && !st.connected) ? "Error_Timeout" : "Enabled",
		SERVER "Status");
	row_add(r, 0, false, "string", addr, SERVER "ServerNameOrAddress");
	row_add(r, 0, false, "string", addr, SERVER "ServerAddressInUse");
	row_add(r, 0, false, "string", "", SERVER "AdditionalServerAddresses");
	row_add(r, 0, false, "string", st.external, SERVER "ExternalIPAddress");
	row_add(r, 0, false, "unsignedInt", "2", SERVER "CurrentVersion");
	row_add(r, 0, false, "unsignedInt", "0", SERVER "MaximumFilters");
	row_add(r, 0, false, "unsignedInt", "0", SERVER "PortQuota");
	u32(a, st.pcp_lifetime);
	row_add(r, 0, false, "unsignedInt", a, SERVER "PreferredLifetime");
	row_add(r, 0, false, "string", "", SERVER "Capabilities");
	u32(b, (uint32_t)k);
	row_add(r, 0, false, "unsignedInt", b, SERVER "InboundMappingNumberOfEntries");
	row_add(r, 0, false, "unsignedInt", "0", SERVER "OutboundMappingNumberOfEntries");
	row_add(r, 0, false, "string", info->have_server ? server_origin(info) : "Static", SERVER "Origin");
	row_add(r, 0, true, "object", NULL, TABLE);
	for (size_t i = 0; i < k; i++)
		add_mapping(r, &refs[i]);
	row_add(r, 0, false, "object", NULL, SERVER "OutboundMapping.");
	free(refs);
	free(v);
	if (r->oom) {
		rows_free(r);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ answers */

static json_t *answer_ok(json_t *id)
{
	json_t *a = json_pack("{s:O, s:b}", "id", id ? id : json_null(), "ok", 1);
	return a;
}

static json_t *answer_fault(json_t *id, int code, const char *msg)
{
	return json_pack("{s:O, s:b, s:i, s:s}", "id", id ? id : json_null(), "ok", 0, "fault", code, "message",
			 msg);
}

static bool is_object_name(const char *s)
{
	size_t n = strlen(s);
	return n && s[n - 1] == '.';
}

static json_t *do_get(struct rows *r, json_t *id, json_t *req)
{
	json_t *paths = json_object_get(req, "paths");
	if (!json_is_array(paths))
		return answer_fault(id, 9003, "paths: a list of names");
	json_t *out = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(paths, i, p) {
		const char *path = json_string_value(p);
		if (!path) {
			json_decref(out);
			return answer_fault(id, 9003, "paths: a list of names");
		}
		if (path[0] && !is_object_name(path)) {
			const struct row *w = row_find(r, path);
			if (!w || !w->value) {
				json_decref(out);
				return answer_fault(id, 9005, path);
			}
			json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "name", w->name, "type", w->type, "value",
							     w->value));
			continue;
		}
		if (path[0] && !row_find(r, path)) {
			json_decref(out);
			return answer_fault(id, 9005, path);
		}
		size_t n = strlen(path);
		for (size_t j = 0; j < r->n; j++) {
			const struct row *w = &r->v[j];
			if (w->value && strncmp(w->name, path, n) == 0)
				json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "name", w->name, "type",
								     w->type, "value", w->value));
		}
	}
	json_t *a = answer_ok(id);
	json_object_set_new(a, "params", out);
	return a;
}

static json_t *do_names(struct rows *r, json_t *id, json_t *req)
{
	const char *path = json_string_value(json_object_get(req, "path"));
	bool next = json_is_true(json_object_get(req, "next_level"));
	if (!path)
		return answer_fault(id, 9003, "path: a name");
	const struct row *self = path[0] ? row_find(r, path) : NULL;
	if (path[0] && !self)
		return answer_fault(id, 9005, path);
	json_t *out = json_array();
	if (self && !is_object_name(path)) {
		if (next) {
			json_decref(out);
			return answer_fault(id, 9003, "next_level on a parameter");
		}
		json_array_append_new(out, json_pack("{s:s, s:b}", "name", self->name, "writable", self->writable));
	} else {
		size_t n = strlen(path);
		for (size_t j = 0; j < r->n; j++) {
			const struct row *w = &r->v[j];
			if (strncmp(w->name, path, n) != 0)
				continue;
			const char *rest = w->name + n;
			size_t rl = strlen(rest);
			if (next && (!rl || memchr(rest, '.', rl - 1)))
				continue;
			json_array_append_new(out, json_pack("{s:s, s:b}", "name", w->name, "writable", w->writable));
		}
	}
	json_t *a = answer_ok(id);
	json_object_set_new(a, "names", out);
	return a;
}

/* ------------------------------------------------------------------ dm.set */

static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	if (!s[0] || strlen(s) > 10)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "true"))
		*out = true;
	else if (!strcmp(s, "0") || !strcmp(s, "false"))
		*out = false;
	else
		return false;
	return true;
}

/* Put `value` into the field `field` of candidate p: 0, or the fault (9007). */
static int set_field(struct pending *p, const char *field, const char *value)
{
	uint32_t u;
	bool b;
	struct in6_addr a6;
	struct in_addr a4;
	if (!strcmp(field, "Enable")) {
		if (!parse_bool(value, &b))
			return 9007;
		p->enable = b;
	} else if (!strcmp(field, "Alias")) {
		if (strlen(value) > DM_ALIAS_MAX)
			return 9007;
		snprintf(p->alias, sizeof(p->alias), "%s", value);
	} else if (!strcmp(field, "Lifetime")) {
		if (!parse_uint(value, UINT32_MAX, &u))
			return 9007;
		p->lifetime = u;
	} else if (!strcmp(field, "SuggestedExternalIPAddress")) {
		if (value[0] && inet_pton(AF_INET, value, &a4) != 1 && inet_pton(AF_INET6, value, &a6) != 1)
			return 9007;
		snprintf(p->sugg_ip, sizeof(p->sugg_ip), "%s", value);
	} else if (!strcmp(field, "SuggestedExternalPort")) {
		if (!parse_uint(value, 65535, &u))
			return 9007;
		p->sugg_port = u;
	} else if (!strcmp(field, "SuggestedExternalPortEndRange")) {
		if (!parse_uint(value, 65535, &u) || u != 0)
			return 9007; /* port ranges: not offered */
		p->sugg_end = u;
	} else if (!strcmp(field, "InternalPort")) {
		if (!parse_uint(value, 65535, &u))
			return 9007;
		p->internal_port = u;
	} else if (!strcmp(field, "ProtocolNumber")) {
		if (!parse_uint(value, 255, &u) || (u != 6 && u != 17))
			return 9007;
		p->proto = u;
	} else if (!strcmp(field, "ThirdPartyAddress")) {
		/* IPv6 is a valid value; whether the NAT mode can map it, the core decides */
		if (value[0] && inet_pton(AF_INET, value, &a4) != 1 && inet_pton(AF_INET6, value, &a6) != 1)
			return 9007;
		snprintf(p->third, sizeof(p->third), "%s", value);
	} else if (!strcmp(field, "Description")) {
		if (strlen(value) > UPNP_DESC_MAX)
			return 9007;
		snprintf(p->desc, sizeof(p->desc), "%s", value);
	} else {
		return 9008;
	}
	return 0;
}

static const char *type_name(const char *t)
{
	return strncmp(t, "xsd:", 4) == 0 ? t + 4 : t;
}

static void wait_done(void *arg, enum upnp_error err, uint16_t external_port);

static json_t *do_set(struct iwf_dm *dm, struct rows *r, json_t *id, json_t *req, iwf_dm_reply_fn *reply,
		      void *reply_arg)
{
	json_t *params = json_object_get(req, "params");
	if (!json_is_array(params))
		return answer_fault(id, 9003, "params: a list");
	struct dm_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return answer_fault(id, 9002, "out of memory");
	memcpy(w->cand, dm->pend, dm->n_pend * sizeof(dm->pend[0]));
	w->n_cand = dm->n_pend;
	w->upnp_on = -1;
	json_t *faults = json_array();
	uint32_t enabling = 0;
	size_t n_enabling = 0;
	size_t i;
	json_t *p;
	json_array_foreach(params, i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *value = json_string_value(json_object_get(p, "value"));
		const char *type = json_string_value(json_object_get(p, "type"));
		int fault = 0;
		const struct row *row = name ? row_find(r, name) : NULL;
		struct pending *c = NULL;
		bool b;
		if (!name || !value) {
			fault = 9003;
		} else if (!row || !row->value) {
			fault = 9005;
		} else if (row->writable && !strcmp(name, CLIENT "UPnPIWF.Enable")) {
			if (type && strcmp(type_name(type), "boolean") != 0)
				fault = 9006;
			else if (!parse_bool(value, &b))
				fault = 9007;
			else
				w->upnp_on = b;
		} else if (!row->writable || !(c = pend_find(w->cand, w->n_cand, row->inst))) {
			fault = 9008;
		} else if (type && strcmp(type_name(type), row->type) != 0) {
			fault = 9006;
		} else {
			bool was = c->enable;
			fault = set_field(c, strrchr(name, '.') + 1, value);
			if (!fault && c->enable && !was && enabling != c->inst) {
				enabling = c->inst;
				n_enabling++;
			}
			if (!fault && !c->enable && enabling == c->inst) {
				enabling = 0;
				n_enabling--;
			}
		}
		if (fault)
			json_array_append_new(faults, json_pack("{s:s, s:i}", "name", name ? name : "", "fault", fault));
	}
	if (!json_array_size(faults) && enabling) {
		const struct pending *c = pend_find(w->cand, w->n_cand, enabling);
		if (!c->internal_port || !c->proto || !c->third[0] || !c->sugg_port) {
			char name[96];
			snprintf(name, sizeof(name), TABLE "%u.Enable", enabling);
			json_array_append_new(faults, json_pack("{s:s, s:i}", "name", name, "fault", 9007));
		}
	}
	if (json_array_size(faults)) {
		free(w);
		json_t *a = answer_fault(id, 9003, "parameters in error");
		json_object_set_new(a, "param_faults", faults);
		return a;
	}
	json_decref(faults);
	if (n_enabling > 1) {
		free(w);
		return answer_fault(id, 9001, "one InboundMapping enabled per SetParameterValues");
	}
	if (!enabling) { /* only pending rows change: stored first, then applied */
		int e = store_write(dm, w->cand, w->n_cand, w->upnp_on >= 0 ? w->upnp_on : dm->upnp_on,
				    dm->inst_reserved);
		if (e) {
			free(w);
			return answer_fault(id, 9002, e == ENOMEM ? "out of memory" : "cannot store the change");
		}
		if (w->upnp_on >= 0)
			dm->upnp_on = w->upnp_on;
		for (size_t k = 0; k < w->n_cand; k++) {
			struct pending *d = pend_find(dm->pend, dm->n_pend, w->cand[k].inst);
			if (d)
				*d = w->cand[k];
		}
		if (w->upnp_on >= 0)
			dm->ops->upnp_enable(dm->ops_arg, w->upnp_on);
		free(w);
		return answer_ok(id);
	}
	/* The carrier decides: through the administrator's add (core lifecycle, MAP, journal). */
	const struct pending *c = pend_find(w->cand, w->n_cand, enabling);
	struct upnp_pm_entry pm;
	memset(&pm, 0, sizeof(pm));
	pm.protocol = c->proto == 6 ? UPNP_PROTO_TCP : UPNP_PROTO_UDP;
	pm.external_port = (uint16_t)c->sugg_port;
	pm.internal_port = (uint16_t)c->internal_port;
	snprintf(pm.internal_client, sizeof(pm.internal_client), "%s", c->third);
	snprintf(pm.description, sizeof(pm.description), "%s", c->desc[0] ? c->desc : "TR-069");
	pm.enabled = true;
	pm.lease_duration = c->lifetime;
	w->dm = dm;
	w->id = json_incref(id);
	w->reply = reply;
	w->reply_arg = reply_arg;
	w->is_add = true;
	w->inst = enabling;
	w->proto = pm.protocol;
	w->eport = pm.external_port;
	w->next = dm->waits;
	dm->waits = w;
	iwf_core_admin_add(dm->core, &pm, wait_done, w);
	return NULL;
}

static const char *upnp_error_text(enum upnp_error e)
{
	switch (e) {
	case UPNP_E_CONFLICT: return "ConflictInMappingEntry";
	case UPNP_E_NO_PORT_MAPS_AVAILABLE: return "NoPortMapsAvailable";
	case UPNP_E_NO_SUCH_ENTRY: return "NoSuchEntryInArray";
	case UPNP_E_INVALID_ARGS: return "InvalidArgs";
	case UPNP_E_ACTION_FAILED: return "ActionFailed (no answer from the PCP server)";
	default: return "the carrier refused";
	}
}

static void wait_done(void *arg, enum upnp_error err, uint16_t external_port)
{
	struct dm_wait *w = arg;
	struct iwf_dm *dm = w->dm;
	(void)external_port;
	for (struct dm_wait **pp = &dm->waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	json_t *ans;
	if (w->is_add && !err) {
		/* the other pending rows take the set's values; the enabled one is now a mapping */
		for (size_t k = 0; k < w->n_cand; k++) {
			struct pending *d = pend_find(dm->pend, dm->n_pend, w->cand[k].inst);
			if (d)
				*d = w->cand[k];
		}
		pend_remove(dm, w->inst);
		if (w->upnp_on >= 0) {
			dm->upnp_on = w->upnp_on;
			dm->ops->upnp_enable(dm->ops_arg, w->upnp_on);
		}
		size_t n = iwf_core_admin_list(dm->core, NULL, 0);
		struct iwf_admin_entry *v = calloc(n ? n : 1, sizeof(*v));
		if (v) {
			n = iwf_core_admin_list(dm->core, v, n);
			for (size_t k = 0; k < n; k++) {
				if (v[k].is_static && v[k].pm.protocol == w->proto && v[k].pm.external_port == w->eport &&
				    !v[k].pm.remote_host[0]) {
					struct inst_map *m = inst_of(dm, v[k].id, w->inst);
					if (m && m->inst != w->inst)
						m->inst = w->inst; /* seen before under another number: keep ours */
					if (m)
						m->is_static = true;
					break;
				}
			}
			free(v);
		}
		/* the mapping is in the journal already; its number and the rest follow (a failed
		 * write leaves the previous store: the row comes back pending, the mapping too) */
		(void)store_write(dm, dm->pend, dm->n_pend, dm->upnp_on, dm->inst_reserved);
		ans = answer_ok(w->id);
	} else if (w->is_add) {
		struct pending *d = pend_find(dm->pend, dm->n_pend, w->inst);
		if (d) {
			snprintf(d->status, sizeof(d->status), "%s",
				 err == UPNP_E_CONFLICT ? "Error_PortAlreadyUsed" : "Error_PCPErrorCodeReceived");
			d->error_code = (uint32_t)err;
			(void)store_write(dm, dm->pend, dm->n_pend, dm->upnp_on, dm->inst_reserved);
		}
		ans = answer_fault(w->id, 9001, upnp_error_text(err));
	} else {
		ans = err ? answer_fault(w->id, 9001, upnp_error_text(err)) : answer_ok(w->id);
	}
	if (w->reply)
		w->reply(w->reply_arg, ans);
	else
		json_decref(ans);
	json_decref(w->id);
	free(w);
}

/* ------------------------------------------------------------------ add, delete */

static json_t *do_add(struct iwf_dm *dm, json_t *id, json_t *req)
{
	const char *path = json_string_value(json_object_get(req, "path"));
	if (!path || strcmp(path, TABLE) != 0)
		return answer_fault(id, 9005, "not a table AddObject may add to");
	if (dm->n_pend >= DM_MAX_PENDING)
		return answer_fault(id, 9004, "too many InboundMapping rows not enabled yet");
	struct pending *p = &dm->pend[dm->n_pend];
	memset(p, 0, sizeof(*p));
	p->inst = dm->next_inst;
	snprintf(p->status, sizeof(p->status), "Disabled");
	uint32_t res = p->inst + 1 > dm->inst_reserved ? reserve_for(p->inst + 1) : dm->inst_reserved;
	if (store_write(dm, dm->pend, dm->n_pend + 1, dm->upnp_on, res) != 0)
		return answer_fault(id, 9002, "cannot store the new row");
	dm->n_pend++;
	dm->next_inst++;
	dm->inst_reserved = res;
	json_t *a = answer_ok(id);
	json_object_set_new(a, "instance", json_integer(p->inst));
	return a;
}

static json_t *do_delete(struct iwf_dm *dm, struct rows *r, json_t *id, json_t *req, iwf_dm_reply_fn *reply,
			 void *reply_arg)
{
	const char *path = json_string_value(json_object_get(req, "path"));
	uint32_t inst;
	size_t tl = strlen(TABLE);
	if (!path || strncmp(path, TABLE, tl) != 0 || !is_object_name(path))
		return answer_fault(id, 9005, "not a deletable instance");
	char num[16];
	snprintf(num, sizeof(num), "%.*s", (int)(strlen(path) - tl - 1), path + tl);
	const struct row *row = row_find(r, path);
	if (!parse_uint(num, UINT32_MAX, &inst) || !row || row->inst != inst || !row->writable)
		return answer_fault(id, 9005, "not a deletable instance");
	if (pend_find(dm->pend, dm->n_pend, inst)) {
		struct pending rest[DM_MAX_PENDING];
		size_t n = 0;
		for (size_t i = 0; i < dm->n_pend; i++)
			if (dm->pend[i].inst != inst)
				rest[n++] = dm->pend[i];
		if (store_write(dm, rest, n, dm->upnp_on, dm->inst_reserved) != 0)
			return answer_fault(id, 9002, "cannot store the change");
		pend_remove(dm, inst);
		return answer_ok(id);
	}
	/* a Static mapping on the carrier: its protocol and port from the snapshot */
	char name[128];
	snprintf(name, sizeof(name), TABLE "%u.ProtocolNumber", inst);
	const struct row *pr = row_find(r, name);
	snprintf(name, sizeof(name), TABLE "%u.AssignedExternalPort", inst);
	const struct row *er = row_find(r, name);
	uint32_t proto, eport;
	if (!pr || !er || !parse_uint(pr->value, 255, &proto) || !parse_uint(er->value, 65535, &eport))
		return answer_fault(id, 9002, "instance without protocol or port");
	struct dm_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return answer_fault(id, 9002, "out of memory");
	w->dm = dm;
	w->id = json_incref(id);
	w->reply = reply;
	w->reply_arg = reply_arg;
	w->inst = inst;
	w->next = dm->waits;
	dm->waits = w;
	iwf_core_admin_delete(dm->core, proto == 6 ? UPNP_PROTO_TCP : UPNP_PROTO_UDP, (uint16_t)eport, "", wait_done,
			      w);
	return NULL;
}

/* ------------------------------------------------------------------ dispatch */

json_t *iwf_dm_handle(struct iwf_dm *dm, const struct iwf_control_info *info, json_t *req,
		      iwf_dm_reply_fn *reply, void *reply_arg)
{
	json_t *id = json_object_get(req, "id");
	const char *op = json_string_value(json_object_get(req, "op"));
	if (!op)
		return answer_fault(id, 9003, "no op");
	if (!strcmp(op, "dm.reboot") || !strcmp(op, "dm.factory_reset"))
		return answer_fault(id, 9000, "not supported by iwfd");
	if (!strcmp(op, "dm.add"))
		return do_add(dm, id, req);
	bool get = !strcmp(op, "dm.get"), names = !strcmp(op, "dm.names"), set = !strcmp(op, "dm.set"),
	     del = !strcmp(op, "dm.delete");
	if (!get && !names && !set && !del)
		return answer_fault(id, 9000, "unknown op");
	struct rows r;
	memset(&r, 0, sizeof(r));
	if (!snapshot(dm, info, &r))
		return answer_fault(id, 9002, "out of memory");
	json_t *a = get ? do_get(&r, id, req)
		    : names ? do_names(&r, id, req)
		    : set ? do_set(dm, &r, id, req, reply, reply_arg)
			  : do_delete(dm, &r, id, req, reply, reply_arg);
	rows_free(&r);
	return a;
}
