/* dm.c - data-model vocabulary (faults, types, lists) and the prefix mux. */
#include "dm.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* seed 003 A.5.1 Table 58: the one table of fault meanings. */
static const struct {
	int code;
	const char *text;
} fault_table[] = {
	{ DM_METHOD_NOT_SUPPORTED, "Method not supported" },
	{ DM_REQUEST_DENIED, "Request denied" },
	{ DM_INTERNAL, "Internal error" },
	{ DM_INVALID_ARGUMENTS, "Invalid arguments" },
	{ DM_RESOURCES_EXCEEDED, "Resources exceeded" },
	{ DM_INVALID_NAME, "Invalid parameter name" },
	{ DM_INVALID_TYPE, "Invalid parameter type" },
	{ DM_INVALID_VALUE, "Invalid parameter value" },
	{ DM_NOT_WRITABLE, "Attempt to set a non-writable parameter" },
	{ DM_NOTIFICATION_REJECTED, "Notification request rejected" },
};

const char *dm_fault_string(int code)
{
	for (size_t i = 0; i < sizeof fault_table / sizeof fault_table[0]; i++)
		if (fault_table[i].code == code)
			return fault_table[i].text;
	return "Fault";
}

static const char *const type_names[DM_TYPE_COUNT] = {
	[DM_OBJECT] = "object", [DM_STRING] = "xsd:string", [DM_INT] = "xsd:int",
	[DM_UINT] = "xsd:unsignedInt", [DM_BOOL] = "xsd:boolean", [DM_DATETIME] = "xsd:dateTime",
	[DM_BASE64] = "xsd:base64",
};

const char *dm_type_name(enum dm_type t)
{
	return (unsigned)t < DM_TYPE_COUNT ? type_names[t] : "xsd:string";
}

bool dm_type_parse(const char *s, enum dm_type *out)
{
	const char *colon = strchr(s, ':');
	const char *local = colon ? colon + 1 : s;
	for (int t = DM_STRING; t < DM_TYPE_COUNT; t++)
		if (strcmp(local, strchr(type_names[t], ':') + 1) == 0) {
			*out = (enum dm_type)t;
			return true;
		}
	if (strcmp(local, "object") == 0) {
		*out = DM_OBJECT;
		return true;
	}
	return false;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int dm_value_check(enum dm_type t, const char *text, char *canon)
{
	char *end;
	switch (t) {
	case DM_OBJECT:
		return DM_INVALID_TYPE;
	case DM_INT: {
		const char *d = (*text == '-' || *text == '+') ? text + 1 : text;
		if (!all_digits(d))
			return DM_INVALID_VALUE;
		errno = 0;
		long v = strtol(text, &end, 10);
		if (errno || v < INT_MIN || v > INT_MAX)
			return DM_INVALID_VALUE;
		break;
	}
	case DM_UINT: {
		if (!all_digits(text))
			return DM_INVALID_VALUE;
		errno = 0;
		unsigned long long v = strtoull(text, &end, 10);
		if (errno || v > UINT_MAX)
			return DM_INVALID_VALUE;
		break;
	}
	case DM_BOOL:
		if (!strcmp(text, "1") || !strcmp(text, "true")) {
			strcpy(canon, "1");
			return DM_OK;
		}
		if (!strcmp(text, "0") || !strcmp(text, "false")) {
			strcpy(canon, "0");
			return DM_OK;
		}
		return DM_INVALID_VALUE;
	case DM_DATETIME:
		/* YYYY-MM-DDThh:mm:ss with an optional fraction and zone: the shape only. */
		if (strlen(text) < 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
		    text[16] != ':')
			return DM_INVALID_VALUE;
		break;
	case DM_BASE64:
		for (const char *p = text; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/' && *p != '=')
				return DM_INVALID_VALUE;
		break;
	default:
		break;
	}
	strcpy(canon, text);
	return DM_OK;
}

int dm_list_push(struct dm_list *l, const char *name, enum dm_type type, const char *value, bool writable)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct dm_item *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return DM_INTERNAL;
		l->v = v;
		l->cap = cap;
	}
	struct dm_item *it = &l->v[l->n];
	it->name = strdup(name);
	it->value = value ? strdup(value) : NULL;
	if (!it->name || (value && !it->value)) {
		free(it->name);
		free(it->value);
		return DM_INTERNAL;
	}
	it->type = type;
	it->writable = writable;
	it->fault = 0;
	l->n++;
	return DM_OK;
}

void dm_list_clear(struct dm_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- dm_mux ---------------------------------------------------------------------------- */

struct mux {
	struct dm_backend base;
	char *prefix;
	struct dm_backend *mounted, *fallback;
};

static bool under(const char *path, const char *prefix)
{
	return strncmp(path, prefix, strlen(prefix)) == 0;
}

/* path is an ancestor of the mount point (so both backends answer). */
static bool above(const struct mux *m, const char *path)
{
	size_t n = strlen(path);
	return (n == 0 || path[n - 1] == '.') && strlen(m->prefix) > n && strncmp(m->prefix, path, n) == 0;
}

static struct dm_backend *route(const struct mux *m, const char *path)
{
	return under(path, m->prefix) ? m->mounted : m->fallback;
}

static int mux_get_values(struct dm_backend *b, const char *const *paths, size_t n, struct dm_list *out)
{
	struct mux *m = (struct mux *)b;
	for (size_t i = 0; i < n; i++) {
		int rc;
		if (above(m, paths[i])) {
			rc = m->fallback->ops->get_values(m->fallback, &paths[i], 1, out);
			if (rc == DM_OK || rc == DM_INVALID_NAME) {
				const char *p = m->prefix;
				rc = m->mounted->ops->get_values(m->mounted, &p, 1, out);
			}
		} else {
			struct dm_backend *t = route(m, paths[i]);
			rc = t->ops->get_values(t, &paths[i], 1, out);
		}
		if (rc)
			return rc;
	}
	return DM_OK;
}

static int mux_get_names(struct dm_backend *b, const char *path, bool next_level, struct dm_list *out)
{
	struct mux *m = (struct mux *)b;
	if (!above(m, path)) {
		struct dm_backend *t = route(m, path);
		return t->ops->get_names(t, path, next_level, out);
	}
	int rc = m->fallback->ops->get_names(m->fallback, path, next_level, out);
	if (rc != DM_OK && rc != DM_INVALID_NAME)
		return rc;
	size_t depth = strlen(path);
	const char *next = strchr(m->prefix + depth, '.');
	if (next_level && next && next[1] != '\0') {
		/* the mount is deeper than one level: list its first component as an object */
		char tmp[256];
		size_t len = (size_t)(next - m->prefix) + 1;
		if (len >= sizeof tmp)
			return DM_INTERNAL;
		memcpy(tmp, m->prefix, len);
		tmp[len] = '\0';
		for (size_t i = 0; i < out->n; i++)
			if (!strcmp(out->v[i].name, tmp))
				return DM_OK;
		return dm_list_push(out, tmp, DM_OBJECT, NULL, false);
	}
	if (next_level)
		return dm_list_push(out, m->prefix, DM_OBJECT, NULL, false);
	return m->mounted->ops->get_names(m->mounted, m->prefix, false, out);
}

static int mux_set_values(struct dm_backend *b, const struct dm_set *sets, size_t n, struct dm_list *faults)
{
	/* All or nothing across two owners: the mounted (agent-local) part is validated by a
	 * dry run first — dm_mem sets are all-or-nothing and cannot fail once validated — so the
	 * fallback's set is the only one that may still fail. */
	struct mux *m = (struct mux *)b;
	struct dm_set *a = calloc(n ? n : 1, sizeof *a), *f = calloc(n ? n : 1, sizeof *f);
	size_t na = 0, nf = 0;
	int rc = DM_INTERNAL;
	if (!a || !f)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (under(sets[i].name, m->prefix))
			a[na++] = sets[i];
		else
			f[nf++] = sets[i];
	}
	if (na && nf) {
		/* validate the mounted part by setting the current values back on failure */
		struct dm_list old = { 0 };
		const char **names = calloc(na, sizeof *names);
		if (!names)
			goto out;
		for (size_t i = 0; i < na; i++)
			names[i] = a[i].name;
		rc = m->mounted->ops->get_values(m->mounted, names, na, &old);
		free(names);
		if (rc == DM_OK)
			rc = m->mounted->ops->set_values(m->mounted, a, na, faults);
		if (rc == DM_OK) {
			rc = m->fallback->ops->set_values(m->fallback, f, nf, faults);
			if (rc != DM_OK) {
				struct dm_set *undo = calloc(old.n ? old.n : 1, sizeof *undo);
				for (size_t i = 0; undo && i < old.n; i++)
					undo[i] = (struct dm_set){ old.v[i].name, old.v[i].value, old.v[i].type, true };
				if (undo)
					m->mounted->ops->set_values(m->mounted, undo, old.n, NULL);
				free(undo);
			}
		}
		dm_list_clear(&old);
	} else if (na) {
		rc = m->mounted->ops->set_values(m->mounted, a, na, faults);
	} else {
		rc = m->fallback->ops->set_values(m->fallback, f, nf, faults);
	}
out:
	free(a);
	free(f);
	return rc;
}

static int mux_add_object(struct dm_backend *b, const char *path, unsigned *instance)
{
	struct dm_backend *t = route((struct mux *)b, path);
	return t->ops->add_object(t, path, instance);
}

static int mux_delete_object(struct dm_backend *b, const char *path)
{
	struct dm_backend *t = route((struct mux *)b, path);
	return t->ops->delete_object(t, path);
}

static int mux_reboot(struct dm_backend *b)
{
	struct mux *m = (struct mux *)b;
	return m->fallback->ops->reboot ? m->fallback->ops->reboot(m->fallback) : DM_METHOD_NOT_SUPPORTED;
}

static int mux_factory_reset(struct dm_backend *b)
{
	struct mux *m = (struct mux *)b;
	return m->fallback->ops->factory_reset ? m->fallback->ops->factory_reset(m->fallback)
	                                       : DM_METHOD_NOT_SUPPORTED;
}

static void mux_free(struct dm_backend *b)
{
	struct mux *m = (struct mux *)b;
	dm_free(m->mounted);
	dm_free(m->fallback);
	free(m->prefix);
	free(m);
}

static const struct dm_ops mux_ops = {
	mux_get_values, mux_get_names, mux_set_values, mux_add_object, mux_delete_object,
	mux_reboot, mux_factory_reset, mux_free,
};

struct dm_backend *dm_mux_new(const char *prefix, struct dm_backend *mounted, struct dm_backend *fallback)
{
	struct mux *m = calloc(1, sizeof *m);
	if (!m || !mounted || !fallback || !(m->prefix = strdup(prefix))) {
		free(m);
		dm_free(mounted);
		dm_free(fallback);
		return NULL;
	}
	m->base.ops = &mux_ops;
	m->mounted = mounted;
	m->fallback = fallback;
	return &m->base;
}
