/*
 * fuzz_state_load.c - libFuzzer target for the state file loader (state/state.h).
 *
 * state_load() reads a path, so each input is written to a scratch file first (a memfd
 * reached through /proc/self/fd when the kernel has them, else a file in a private
 * temporary directory). Properties checked for every input:
 *   - state_load returns a state_err in range and never crashes or leaks;
 *   - a failed load leaves the table empty (nothing half-loaded, state.h);
 *   - a successful load saves again (atomic save into the temporary directory), and that
 *     file loads to the same number of entries and intents, the same meta and the same
 *     entries field by field.
 * With clang this is built with -fsanitize=fuzzer; with other compilers
 * tests/pcp/fuzz_replay_main.c replays the seed corpus through the same function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_dir[256];
static char in_path[300];
static char out_path[300];
static int in_fd = -1;

static void setup(void)
{
	if (in_fd >= 0)
		return;
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch_dir, sizeof scratch_dir, "%s/fuzz_state.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch_dir))
		abort();
	snprintf(out_path, sizeof out_path, "%s/out.json", scratch_dir);
#ifdef MFD_CLOEXEC
	in_fd = memfd_create("fuzz_state_in", MFD_CLOEXEC);
	if (in_fd >= 0) {
		snprintf(in_path, sizeof in_path, "/proc/self/fd/%d", in_fd);
		return;
	}
#endif
	snprintf(in_path, sizeof in_path, "%s/in.json", scratch_dir);
	in_fd = 0; /* marker: plain file */
}

static void cleanup(void)
{
	if (scratch_dir[0]) {
		unlink(out_path);
		char tmp[320];
		snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
		unlink(tmp);
		snprintf(tmp, sizeof tmp, "%s/in.json", scratch_dir);
		unlink(tmp);
		rmdir(scratch_dir);
	}
}

static void write_input(const uint8_t *data, size_t size)
{
	if (strncmp(in_path, "/proc/self/fd/", 14) == 0) {
		if (ftruncate(in_fd, 0) < 0 || pwrite(in_fd, data, size, 0) != (ssize_t)size)
			abort();
		return;
	}
	FILE *f = fopen(in_path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

static void same_mapping(const struct state_mapping *a, const struct state_mapping *b)
{
	if (a->protocol != b->protocol || a->external_port != b->external_port ||
	    strcmp(a->external_addr, b->external_addr) || strcmp(a->remote_host, b->remote_host) ||
	    strcmp(a->internal_client, b->internal_client) || a->internal_port != b->internal_port ||
	    a->router_port != b->router_port || strcmp(a->description, b->description) ||
	    strcmp(a->owner, b->owner) || a->enabled != b->enabled ||
	    a->lease_duration != b->lease_duration || a->lease_end != b->lease_end ||
	    memcmp(a->nonce, b->nonce, STATE_NONCE_LEN))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int registered;
	if (!registered) {
		registered = 1;
		atexit(cleanup);
	}
	setup();
	write_input(data, size);

	struct state_table *t = state_table_new();
	struct state_table *u = state_table_new();
	if (!t || !u)
		abort();
	struct state_meta meta, meta2;
	memset(&meta, 0, sizeof meta);
	memset(&meta2, 0, sizeof meta2);
	char detail[256];
	detail[0] = '\0';
	enum state_err e = state_load(t, &meta, in_path, detail, sizeof detail);
	if ((unsigned)e > STATE_ERR_INVAL || !state_err_name(e))
		abort();
	if (e != STATE_OK) {
		/* nothing half-loaded */
		if (state_table_count(t) != 0 || state_table_intent_count(t) != 0)
			abort();
		if (memchr(detail, '\0', sizeof detail) == NULL)
			abort();
	} else {
		if (state_save(t, &meta, out_path, detail, sizeof detail) != STATE_OK)
			abort();
		if (state_load(u, &meta2, out_path, detail, sizeof detail) != STATE_OK)
			abort();
		if (state_table_count(t) != state_table_count(u) ||
		    state_table_intent_count(t) != state_table_intent_count(u) ||
		    strcmp(meta.uuid_igd, meta2.uuid_igd) ||
		    strcmp(meta.uuid_wan_device, meta2.uuid_wan_device) ||
		    strcmp(meta.uuid_wan_conn_device, meta2.uuid_wan_conn_device) ||
		    meta.boot_id != meta2.boot_id ||
		    meta.system_update_id != meta2.system_update_id)
			abort();
		for (size_t i = 0; i < state_table_count(t); i++)
			same_mapping(state_table_get(t, i), state_table_get(u, i));
		for (size_t i = 0; i < state_table_intent_count(t); i++)
			same_mapping(state_table_intent_get(t, i), state_table_intent_get(u, i));
	}
	state_table_free(t);
	state_table_free(u);
	return 0;
}
