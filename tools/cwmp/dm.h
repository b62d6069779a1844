/* dm.h - the data-model backend interface of iwf-cwmp.
 *
 * The agent speaks CWMP; a backend owns parameters. One vtable, four implementations:
 * dm_mem (an in-memory tree: the agent's own Device.ManagementServer. and the static test
 * tree), dm_sock (JSON over iwfd's control socket, docs/tr069.md "Backend protocol") and
 * dm_mux (mounts backends on path prefixes, so one tree is answered by several owners).
 *
 * Vocabulary: every call returns enum dm_fault (0 = OK, else the TR-069 fault code,
 * seed 003 Table 58). Lists handed out are owned by the caller (dm_list_clear). Paths and
 * values passed in are borrowed for the call. */
#ifndef IWF_CWMP_DM_H
#define IWF_CWMP_DM_H

#include <stdbool.h>
#include <stddef.h>

/* seed 003 A.5.1 Table 58 */
enum dm_fault {
	DM_OK = 0,
	DM_METHOD_NOT_SUPPORTED = 9000,
	DM_REQUEST_DENIED = 9001,
	DM_INTERNAL = 9002,
	DM_INVALID_ARGUMENTS = 9003,
	DM_RESOURCES_EXCEEDED = 9004,
	DM_INVALID_NAME = 9005,
	DM_INVALID_TYPE = 9006,
	DM_INVALID_VALUE = 9007,
	DM_NOT_WRITABLE = 9008,
	DM_NOTIFICATION_REJECTED = 9009,
};
const char *dm_fault_string(int code);

/* The SOAP 1.1 / XML Schema types of seed 003 A.2.1 used by parameters. */
enum dm_type { DM_OBJECT, DM_STRING, DM_INT, DM_UINT, DM_BOOL, DM_DATETIME, DM_BASE64, DM_TYPE_COUNT };
const char *dm_type_name(enum dm_type t);            /* "xsd:string", ... ; "object" */
bool dm_type_parse(const char *s, enum dm_type *out); /* accepts "xsd:int", "int", "unsignedInt"... */
/* DM_OK, or DM_INVALID_TYPE/DM_INVALID_VALUE if text is not a value of type t. Booleans are
 * canonicalised into canon ("0"/"1"), others copied; canon must hold strlen(text)+1 bytes. */
int dm_value_check(enum dm_type t, const char *text, char *canon);

/* One row of a result: GetParameterValues fills name/type/value, GetParameterNames name and
 * writable (objects end with '.'). */
struct dm_item {
	char *name;
	char *value;
	enum dm_type type;
	bool writable;
	int fault; /* set_values: the per-parameter fault (SetParameterValuesFault) */
};
struct dm_list {
	struct dm_item *v;
	size_t n, cap;
};
int dm_list_push(struct dm_list *l, const char *name, enum dm_type type, const char *value, bool writable);
void dm_list_clear(struct dm_list *l);

/* SetParameterValues input: type as given by xsi:type (DM_STRING when absent). */
struct dm_set {
	const char *name;
	const char *value;
	enum dm_type type;
	bool typed; /* an xsi:type was given */
};

struct dm_backend;
struct dm_ops {
	/* Each path is a full parameter name or a partial path ending in '.' (all parameters
	 * below it; "" is the whole tree). Appends name/type/value rows to out. */
	int (*get_values)(struct dm_backend *b, const char *const *paths, size_t n, struct dm_list *out);
	/* seed 003 A.3.2.3: path is a parameter, a partial path or ""; next_level limits the
	 * answer to the children of a partial path. Appends name/writable rows. */
	int (*get_names)(struct dm_backend *b, const char *path, bool next_level, struct dm_list *out);
	/* All or nothing: on any error nothing changes and faults (may be NULL) gets one row
	 * per parameter in error, with .fault set; the return is then DM_INVALID_ARGUMENTS or
	 * a whole-request fault (9001, 9002, 9004). */
	int (*set_values)(struct dm_backend *b, const struct dm_set *sets, size_t n, struct dm_list *faults);
	/* path is a partial path naming a multi-instance object ("...InboundMapping."). */
	int (*add_object)(struct dm_backend *b, const char *path, unsigned *instance);
	int (*delete_object)(struct dm_backend *b, const char *path);
	/* Optional (NULL = 9000 / no-op). reboot and factory_reset are called after the
	 * session that asked for them has ended. */
	int (*reboot)(struct dm_backend *b);
	int (*factory_reset)(struct dm_backend *b);
	void (*free)(struct dm_backend *b);
};
struct dm_backend {
	const struct dm_ops *ops;
};

/* dm_mem: an in-memory tree. A table row is {name, type, value, writable}; names of
 * objects end with '.', a multi-instance table is a row "X.{i}." followed by the template
 * rows "X.{i}.Field". Rows are copied. */
struct dm_mem_row {
	const char *name;
	enum dm_type type;
	const char *value;
	bool writable;
};
struct dm_backend *dm_mem_new(const struct dm_mem_row *rows, size_t n);
/* Sets a value without the writability check (the agent's ParameterKey, a test hook's
 * "external change"). Creates nothing. */
int dm_mem_force(struct dm_backend *b, const char *name, const char *value);
/* The static test tree: DeviceInfo + a mock Device.PCP. with an InboundMapping table. */
struct dm_backend *dm_static_new(void);
/* Applies "name=value" lines of file (then removes it): the static backend's test hook for
 * changes by "another cause". Returns the number applied. */
int dm_mem_apply_file(struct dm_backend *b, const char *file);

/* dm_sock: the JSON client of iwfd's control socket (docs/tr069.md). timeout_ms bounds
 * each request; the socket is opened per request. */
struct dm_backend *dm_sock_new(const char *socket_path, int timeout_ms);

/* dm_mux: prefix "Device.ManagementServer." → b1, everything else → fallback. Takes
 * ownership of both (also on failure). */
struct dm_backend *dm_mux_new(const char *prefix, struct dm_backend *mounted, struct dm_backend *fallback);

static inline void dm_free(struct dm_backend *b)
{
	if (b)
		b->ops->free(b);
}

#endif
