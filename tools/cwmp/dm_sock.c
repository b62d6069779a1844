/* dm_sock.c - the data-model backend over iwfd's control socket: one JSON object per line
 * each way (docs/tr069.md "Backend protocol"). Synchronous with a deadline: CWMP RPCs are
 * answered one at a time and the peer is a local daemon; a stuck peer costs at most
 * timeout_ms and becomes fault 9002. */
#include "dm.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SOCK_MAX_REPLY (1024 * 1024) /* what iwfd may make us hold */

struct sockb {
	struct dm_backend base;
	char *path;
	int timeout_ms;
	unsigned next_id;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends req (taken), returns the parsed reply or NULL. */
static json_t *call(struct sockb *s, json_t *req)
{
	json_int_t id = ++s->next_id;
	json_object_set_new(req, "id", json_integer(id));
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return NULL;
	json_t *reply = NULL;
	char *buf = NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (fd < 0 || strlen(s->path) >= sizeof sa.sun_path)
		goto out;
	strcpy(sa.sun_path, s->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	long long deadline = now_ms() + s->timeout_ms;
	size_t len = strlen(text);
	text[len] = '\n'; /* the NUL becomes the line end */
	for (size_t off = 0; off <= len;) {
		ssize_t w = send(fd, text + off, len + 1 - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR)
			goto out;
		if (w > 0)
			off += (size_t)w;
	}
	size_t used = 0, cap = 4096;
	buf = malloc(cap);
	while (buf) {
		long long left = deadline - now_ms();
		struct pollfd p = { fd, POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			goto out;
		if (used + 1 >= cap) {
			if (cap >= SOCK_MAX_REPLY)
				goto out;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + used, cap - used - 1, 0);
		if (r <= 0)
			goto out;
		used += (size_t)r;
		char *nl = memchr(buf, '\n', used);
		if (nl) {
			reply = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(text);
	if (reply && (!json_is_object(reply) || json_integer_value(json_object_get(reply, "id")) != id)) {
		json_decref(reply);
		reply = NULL;
	}
	return reply;
}

/* DM_OK, or the fault of a reply (9002 for no reply / no fault code). */
static int status(json_t *reply)
{
	if (!reply)
		return DM_INTERNAL;
	if (json_is_true(json_object_get(reply, "ok")))
		return DM_OK;
	json_int_t f = json_integer_value(json_object_get(reply, "fault"));
	return f >= 9000 && f <= 9899 ? (int)f : DM_INTERNAL;
}

static int rows(json_t *arr, struct dm_list *out)
{
	size_t i;
	json_t *r;
	json_array_foreach(arr, i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *value = json_string_value(json_object_get(r, "value"));
		enum dm_type t = DM_STRING;
		if (!name || (type && !dm_type_parse(type, &t)))
			return DM_INTERNAL;
		if (dm_list_push(out, name, t, value, json_is_true(json_object_get(r, "writable"))))
			return DM_INTERNAL;
	}
	return DM_OK;
}

static int sock_get_values(struct dm_backend *b, const char *const *paths, size_t n, struct dm_list *out)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(paths[i]));
	json_t *rep = call((struct sockb *)b, json_pack("{s:s, s:o}", "op", "dm.get", "paths", arr));
	int rc = status(rep);
	if (rc == DM_OK)
		rc = rows(json_object_get(rep, "params"), out);
	json_decref(rep);
	return rc;
}

static int sock_get_names(struct dm_backend *b, const char *path, bool next_level, struct dm_list *out)
{
	json_t *rep = call((struct sockb *)b,
	                   json_pack("{s:s, s:s, s:b}", "op", "dm.names", "path", path, "next_level", next_level));
	int rc = status(rep);
	if (rc == DM_OK)
		rc = rows(json_object_get(rep, "names"), out);
	json_decref(rep);
	return rc;
}

static const char *short_type(enum dm_type t)
{
	const char *n = dm_type_name(t), *c = strchr(n, ':');
	return c ? c + 1 : n;
}

static int sock_set_values(struct dm_backend *b, const struct dm_set *sets, size_t n, struct dm_list *faults)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_pack("{s:s, s:s}", "name", sets[i].name, "value", sets[i].value);
		if (sets[i].typed)
			json_object_set_new(p, "type", json_string(short_type(sets[i].type)));
		json_array_append_new(arr, p);
	}
	json_t *rep = call((struct sockb *)b, json_pack("{s:s, s:o}", "op", "dm.set", "params", arr));
	int rc = status(rep);
	size_t i;
	json_t *f;
	if (rc && faults)
		json_array_foreach(json_object_get(rep, "param_faults"), i, f) {
			const char *name = json_string_value(json_object_get(f, "name"));
			json_int_t code = json_integer_value(json_object_get(f, "fault"));
			if (name && code >= 9000 && dm_list_push(faults, name, DM_STRING, NULL, false) == DM_OK)
				faults->v[faults->n - 1].fault = (int)code;
		}
	json_decref(rep);
	return rc;
}

static int sock_add_object(struct dm_backend *b, const char *path, unsigned *instance)
{
	json_t *rep = call((struct sockb *)b, json_pack("{s:s, s:s}", "op", "dm.add", "path", path));
	int rc = status(rep);
	json_int_t inst = json_integer_value(json_object_get(rep, "instance"));
	if (rc == DM_OK && (inst <= 0 || inst > 0xffffffffLL))
		rc = DM_INTERNAL;
	if (rc == DM_OK)
		*instance = (unsigned)inst;
	json_decref(rep);
	return rc;
}

static int simple(struct dm_backend *b, const char *op, const char *path)
{
	json_t *req = json_pack("{s:s}", "op", op);
	if (path)
		json_object_set_new(req, "path", json_string(path));
	json_t *rep = call((struct sockb *)b, req);
	int rc = status(rep);
	json_decref(rep);
	return rc;
}

static int sock_delete_object(struct dm_backend *b, const char *path)
{
	return simple(b, "dm.delete", path);
}

static int sock_reboot(struct dm_backend *b)
{
	return simple(b, "dm.reboot", NULL);
}

static int sock_factory_reset(struct dm_backend *b)
{
	return simple(b, "dm.factory_reset", NULL);
}

static void sock_free(struct dm_backend *b)
{
	struct sockb *s = (struct sockb *)b;
	free(s->path);
	free(s);
}

static const struct dm_ops sock_ops = {
	sock_get_values, sock_get_names, sock_set_values, sock_add_object, sock_delete_object,
	sock_reboot, sock_factory_reset, sock_free,
};

struct dm_backend *dm_sock_new(const char *socket_path, int timeout_ms)
{
	struct sockb *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(socket_path))) {
		free(s);
		return NULL;
	}
	s->base.ops = &sock_ops;
	s->timeout_ms = timeout_ms;
	return &s->base;
}
