/* dm_mem.c - an in-memory parameter tree: the agent's own ManagementServer object and the
 * static backend the tests run against. Small trees only: every lookup is a linear scan. */
#include "dm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MAX_ROWS 4096 /* AddObject beyond this: 9004 */

struct row {
	char *name;
	char *value;
	enum dm_type type;
	bool writable;
	bool is_template; /* under a ".{i}." */
};

struct mem {
	struct dm_backend base;
	struct row *v;
	size_t n, cap;
};

static bool is_partial(const char *p)
{
	size_t n = strlen(p);
	return n == 0 || p[n - 1] == '.';
}

static struct row *find(struct mem *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!m->v[i].is_template && !strcmp(m->v[i].name, name))
			return &m->v[i];
	return NULL;
}

static int insert(struct mem *m, size_t at, const char *name, enum dm_type type, const char *value, bool writable)
{
	if (m->n >= MEM_MAX_ROWS)
		return DM_RESOURCES_EXCEEDED;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct row *v = realloc(m->v, cap * sizeof *v);
		if (!v)
			return DM_INTERNAL;
		m->v = v;
		m->cap = cap;
	}
	struct row r = { strdup(name), strdup(value ? value : ""), type, writable, strstr(name, "{i}") != NULL };
	if (!r.name || !r.value) {
		free(r.name);
		free(r.value);
		return DM_INTERNAL;
	}
	memmove(&m->v[at + 1], &m->v[at], (m->n - at) * sizeof *m->v);
	m->v[at] = r;
	m->n++;
	return DM_OK;
}

static int mem_get_values(struct dm_backend *b, const char *const *paths, size_t n, struct dm_list *out)
{
	struct mem *m = (struct mem *)b;
	for (size_t k = 0; k < n; k++) {
		const char *p = paths[k];
		if (is_partial(p)) {
			if (*p && !find(m, p))
				return DM_INVALID_NAME;
			size_t len = strlen(p);
			for (size_t i = 0; i < m->n; i++) {
				struct row *r = &m->v[i];
				if (r->is_template || r->type == DM_OBJECT || strncmp(r->name, p, len))
					continue;
				if (dm_list_push(out, r->name, r->type, r->value, r->writable))
					return DM_INTERNAL;
			}
		} else {
			struct row *r = find(m, p);
			if (!r || r->type == DM_OBJECT)
				return DM_INVALID_NAME;
			if (dm_list_push(out, r->name, r->type, r->value, r->writable))
				return DM_INTERNAL;
		}
	}
	return DM_OK;
}

static int mem_get_names(struct dm_backend *b, const char *p, bool next_level, struct dm_list *out)
{
	struct mem *m = (struct mem *)b;
	if (!is_partial(p)) {
		struct row *r = find(m, p);
		if (!r)
			return DM_INVALID_NAME;
		if (next_level)
			return DM_INVALID_ARGUMENTS; /* NextLevel true on a parameter */
		return dm_list_push(out, r->name, r->type, NULL, r->writable);
	}
	if (*p && !find(m, p))
		return DM_INVALID_NAME;
	size_t len = strlen(p);
	for (size_t i = 0; i < m->n; i++) {
		struct row *r = &m->v[i];
		if (r->is_template || strncmp(r->name, p, len))
			continue;
		if (next_level) {
			const char *rest = r->name + len;
			const char *dot = strchr(rest, '.');
			if (!*rest || (dot && dot[1] != '\0'))
				continue; /* the object itself, or deeper than one level */
		}
		if (dm_list_push(out, r->name, r->type, NULL, r->writable))
			return DM_INTERNAL;
	}
	return DM_OK;
}

static int mem_set_values(struct dm_backend *b, const struct dm_set *sets, size_t n, struct dm_list *faults)
{
	struct mem *m = (struct mem *)b;
	int bad = 0;
	char **canon = calloc(n ? n : 1, sizeof *canon);
	if (!canon)
		return DM_INTERNAL;
	/* check every parameter first (seed 003 A.3.2.1: all or nothing) */
	for (size_t i = 0; i < n; i++) {
		struct row *r = is_partial(sets[i].name) ? NULL : find(m, sets[i].name);
		int f = DM_OK;
		if (!r || r->type == DM_OBJECT)
			f = DM_INVALID_NAME;
		else if (!r->writable)
			f = DM_NOT_WRITABLE;
		else if (sets[i].typed && sets[i].type != r->type)
			f = DM_INVALID_TYPE;
		else if (!(canon[i] = malloc(strlen(sets[i].value) + 1)))
			f = DM_INTERNAL;
		else
			f = dm_value_check(r->type, sets[i].value, canon[i]);
		if (f) {
			bad = bad ? bad : f;
			if (faults && dm_list_push(faults, sets[i].name, DM_STRING, NULL, false) == DM_OK)
				faults->v[faults->n - 1].fault = f;
		}
	}
	if (!bad)
		for (size_t i = 0; i < n; i++) {
			struct row *r = find(m, sets[i].name);
			free(r->value);
			r->value = canon[i];
			canon[i] = NULL;
		}
	for (size_t i = 0; i < n; i++)
		free(canon[i]);
	free(canon);
	if (bad == DM_INTERNAL)
		return DM_INTERNAL;
	return bad ? DM_INVALID_ARGUMENTS : DM_OK;
}

/* "A.B.Table." → the counter "A.B.TableNumberOfEntries", if the tree has one. */
static void update_count(struct mem *m, const char *table)
{
	char cname[512];
	size_t len = strlen(table);
	if (len < 2 || len + 20 >= sizeof cname)
		return;
	snprintf(cname, sizeof cname, "%.*sNumberOfEntries", (int)(len - 1), table);
	struct row *c = find(m, cname);
	if (!c)
		return;
	unsigned count = 0;
	for (size_t i = 0; i < m->n; i++) {
		const char *rest = m->v[i].name + len;
		if (m->v[i].is_template || strncmp(m->v[i].name, table, len) || !*rest)
			continue;
		const char *dot = strchr(rest, '.');
		if (dot && dot[1] == '\0' && rest[0] != '{')
			count++;
	}
	char buf[16];
	snprintf(buf, sizeof buf, "%u", count);
	free(c->value);
	c->value = strdup(buf);
}

static int mem_add_object(struct dm_backend *b, const char *p, unsigned *instance)
{
	struct mem *m = (struct mem *)b;
	char tmpl[512];
	size_t len = strlen(p);
	if (!len || p[len - 1] != '.' || len + 5 >= sizeof tmpl || !find(m, p))
		return DM_INVALID_NAME;
	snprintf(tmpl, sizeof tmpl, "%s{i}.", p);
	size_t tlen = strlen(tmpl), at = m->n;
	struct row *t = NULL;
	unsigned max = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (!strncmp(m->v[i].name, p, len)) {
			at = i + 1;
			unsigned long v = strtoul(m->v[i].name + len, NULL, 10);
			if (v > max && v < 1000000)
				max = (unsigned)v;
		}
		if (!strcmp(m->v[i].name, tmpl))
			t = &m->v[i];
	}
	if (!t)
		return DM_INVALID_NAME; /* not a multi-instance object */
	/* instance numbers are not reused: the template object's value keeps the last one given */
	unsigned long last = strtoul(t->value, NULL, 10);
	unsigned inst = (last > max ? (unsigned)last : max) + 1;
	char lastbuf[16];
	snprintf(lastbuf, sizeof lastbuf, "%u", inst);
	char name[600];
	/* instances go after the template rows, so the indexes of templates do not move */
	size_t n0 = m->n;
	for (size_t i = 0; i < n0; i++) {
		if (strncmp(m->v[i].name, tmpl, tlen))
			continue;
		snprintf(name, sizeof name, "%s%u.%s", p, inst, m->v[i].name + tlen);
		struct row r = m->v[i];
		int rc = insert(m, at++, name, r.type, r.value, r.writable);
		if (rc) {
			/* undo the rows made so far */
			char pre[600];
			snprintf(pre, sizeof pre, "%s%u.", p, inst);
			for (size_t k = m->n; k-- > 0;)
				if (!strncmp(m->v[k].name, pre, strlen(pre))) {
					free(m->v[k].name);
					free(m->v[k].value);
					memmove(&m->v[k], &m->v[k + 1], (m->n - k - 1) * sizeof *m->v);
					m->n--;
				}
			return rc;
		}
	}
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].name, tmpl)) {
			char *v = strdup(lastbuf);
			if (v) {
				free(m->v[i].value);
				m->v[i].value = v;
			}
		}
	update_count(m, p);
	*instance = inst;
	return DM_OK;
}

static int mem_delete_object(struct dm_backend *b, const char *p)
{
	struct mem *m = (struct mem *)b;
	size_t len = strlen(p);
	if (!len || p[len - 1] != '.' || !find(m, p) || strstr(p, "{i}"))
		return DM_INVALID_NAME;
	/* must be an instance: "<table>.<digits>." */
	size_t k = len - 1;
	while (k > 0 && p[k - 1] >= '0' && p[k - 1] <= '9')
		k--;
	if (k == len - 1 || k == 0 || p[k - 1] != '.')
		return DM_INVALID_NAME;
	/* and of a table with a template (a fixed instance such as Client.1. is not deletable) */
	char tmpl[512];
	if (k + 5 >= sizeof tmpl)
		return DM_INVALID_NAME;
	memcpy(tmpl, p, k);
	strcpy(tmpl + k, "{i}.");
	bool have = false;
	for (size_t i = 0; i < m->n; i++)
		have |= !strcmp(m->v[i].name, tmpl);
	if (!have)
		return DM_INVALID_NAME;
	for (size_t i = m->n; i-- > 0;)
		if (!strncmp(m->v[i].name, p, len)) {
			free(m->v[i].name);
			free(m->v[i].value);
			memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
			m->n--;
		}
	char table[512];
	if (k < sizeof table) {
		memcpy(table, p, k);
		table[k] = '\0';
		update_count(m, table);
	}
	return DM_OK;
}

static int mem_reboot(struct dm_backend *b)
{
	return DM_OK; /* nothing to do: the agent restarts itself (docs/tr069.md) */
}

static void mem_free(struct dm_backend *b)
{
	struct mem *m = (struct mem *)b;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].value);
	}
	free(m->v);
	free(m);
}

static const struct dm_ops mem_ops = {
	mem_get_values, mem_get_names, mem_set_values, mem_add_object, mem_delete_object,
	mem_reboot, mem_reboot, mem_free,
};

struct dm_backend *dm_mem_new(const struct dm_mem_row *rows, size_t n)
{
	struct mem *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	for (size_t i = 0; i < n; i++)
		if (insert(m, m->n, rows[i].name, rows[i].type, rows[i].value, rows[i].writable)) {
			mem_free(&m->base);
			return NULL;
		}
	return &m->base;
}

int dm_mem_force(struct dm_backend *b, const char *name, const char *value)
{
	struct mem *m = (struct mem *)b;
	struct row *r = find(m, name);
	if (!r || r->type == DM_OBJECT)
		return DM_INVALID_NAME;
	char *v = strdup(value);
	if (!v)
		return DM_INTERNAL;
	free(r->value);
	r->value = v;
	return DM_OK;
}

int dm_mem_apply_file(struct dm_backend *b, const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return 0;
	char line[1024];
	int applied = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (dm_mem_force(b, line, eq + 1) == DM_OK)
			applied++;
	}
	fclose(f);
	unlink(file);
	return applied;
}

/* The static test tree: DeviceInfo and a mock of TR-181 Device.PCP. (the part iwfd will
 * serve for real). */
static const struct dm_mem_row static_rows[] = {
	{ "Device.", DM_OBJECT, NULL, false },
	{ "Device.DeviceInfo.", DM_OBJECT, NULL, false },
	{ "Device.DeviceInfo.Manufacturer", DM_STRING, "iwfd project", false },
	{ "Device.DeviceInfo.OUI", DM_STRING, "00A0C5", false },
	{ "Device.DeviceInfo.ProductClass", DM_STRING, "iwfd-test", false },
	{ "Device.DeviceInfo.SerialNumber", DM_STRING, "TEST0001", false },
	{ "Device.DeviceInfo.HardwareVersion", DM_STRING, "1", false },
	{ "Device.DeviceInfo.SoftwareVersion", DM_STRING, "0.1.0", false },
	{ "Device.DeviceInfo.ProvisioningCode", DM_STRING, "", true },
	{ "Device.DeviceInfo.UpTime", DM_UINT, "0", false },
	{ "Device.PCP.", DM_OBJECT, NULL, false },
	{ "Device.PCP.SupportedVersions", DM_STRING, "2", false },
	{ "Device.PCP.ClientNumberOfEntries", DM_UINT, "1", false },
	{ "Device.PCP.Client.", DM_OBJECT, NULL, false },
	{ "Device.PCP.Client.1.", DM_OBJECT, NULL, false },
	{ "Device.PCP.Client.1.Enable", DM_BOOL, "1", true },
	{ "Device.PCP.Client.1.Status", DM_STRING, "Enabled", false },
	{ "Device.PCP.Client.1.ServerNumberOfEntries", DM_UINT, "1", false },
	{ "Device.PCP.Client.1.Server.", DM_OBJECT, NULL, false },
	{ "Device.PCP.Client.1.Server.1.", DM_OBJECT, NULL, false },
	{ "Device.PCP.Client.1.Server.1.Enable", DM_BOOL, "1", true },
	{ "Device.PCP.Client.1.Server.1.ServerNameOrAddress", DM_STRING, "192.0.2.1", true },
	{ "Device.PCP.Client.1.Server.1.ServerAddressInUse", DM_STRING, "192.0.2.1", false },
	{ "Device.PCP.Client.1.Server.1.ExternalIPAddress", DM_STRING, "198.51.100.7", false },
	{ "Device.PCP.Client.1.Server.1.Status", DM_STRING, "Connected", false },
	{ "Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries", DM_UINT, "0", false },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.", DM_OBJECT, NULL, true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.", DM_OBJECT, NULL, true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.Enable", DM_BOOL, "0", true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.Status", DM_STRING, "Disabled", false },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.Lifetime", DM_UINT, "0", true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.InternalPort", DM_UINT, "0", true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.ProtocolNumber", DM_UINT, "6", true },
	{ "Device.PCP.Client.1.Server.1.InboundMapping.{i}.Description", DM_STRING, "", true },
};

struct dm_backend *dm_static_new(void)
{
	return dm_mem_new(static_rows, sizeof static_rows / sizeof static_rows[0]);
}
