/*
 * fuzz_state_load.c - libFuzzer target for the state file reader (state_table_open:
 * journal replay and the import of the iwfd 0.1 JSON file, state/state.h).
 *
 * Each input is written to a file in a private temporary directory (under $TMPDIR, else
 * /dev/shm when there is one - compactions fsync - else /tmp) and opened under a fake clock
 * (sane wall time for even input lengths, 1970 for odd ones). Properties, for every input:
 *   - the result is a state_err in range; an error comes with a message, leaves the table
 *     empty and the file byte for byte as it was;
 *   - a table that opened is consistent: count <= size, state_table_at gives committed
 *     records, get/find/find_internal find them, state_table_next visits each once;
 *   - what opened survives: the file (now a journal, any tail cut) opens clean to the same
 *     table (records field by field, commit order, meta), and again after a compaction.
 * A journal input is also tried with every record's CRC-32 made right, or the mutations
 * would hardly ever get past the CRC to the record decoder.
 * With clang this is built with -fsanitize=fuzzer; with other compilers
 * tests/pcp/fuzz_replay_main.c replays the seed corpus through the same function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "state.h"
#include "state_internal.h" /* state_crc32 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_ctx {
	char dir[256];
	char path[300];
	char tmp[310];
	uint8_t back[1 << 17];
	uint8_t fixed[1 << 17];
};

static struct fuzz_ctx *ctx; /* the harness's only state: set once, freed at exit */

static void cleanup(void)
{
	if (!ctx)
		return;
	unlink(ctx->path);
	unlink(ctx->tmp);
	rmdir(ctx->dir);
	free(ctx);
	ctx = NULL;
}

static void setup(void)
{
	if (ctx)
		return;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		abort();
	const char *base = getenv("TMPDIR");
	struct stat st;
	if (!base || !*base)
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
														: "/tmp";
	snprintf(ctx->dir, sizeof(ctx->dir), "%s/fuzz_state.XXXXXX", base);
	if (!mkdtemp(ctx->dir))
		abort();
	snprintf(ctx->path, sizeof(ctx->path), "%s/state", ctx->dir);
	snprintf(ctx->tmp, sizeof(ctx->tmp), "%s.tmp", ctx->path);
	atexit(cleanup);
}

struct fake_clock {
	uint64_t mono;
	int64_t wall;
};

static uint64_t fc_mono(void *arg)
{
	return ((struct fake_clock *)arg)->mono;
}

static int64_t fc_wall(void *arg)
{
	return ((struct fake_clock *)arg)->wall;
}

static bool same_mapping(const struct state_mapping *a, const struct state_mapping *b)
{
	return a && b && a->id == b->id && a->protocol == b->protocol && a->flags == b->flags &&
	       a->external_port == b->external_port && a->internal_port == b->internal_port &&
	       a->router_port == b->router_port && a->lease_duration == b->lease_duration &&
	       a->lease_end_ms == b->lease_end_ms && !memcmp(&a->remote_host, &b->remote_host, 16) &&
	       !memcmp(&a->internal_client, &b->internal_client, 16) &&
	       !memcmp(&a->external_addr, &b->external_addr, 16) && !memcmp(&a->owner, &b->owner, 16) &&
	       !memcmp(a->nonce, b->nonce, STATE_NONCE_LEN) && a->desc_len == b->desc_len &&
	       strcmp(a->description, b->description) == 0;
}

static void same_table(const struct state_table *a, const struct state_table *b)
{
	if (state_table_size(a) != state_table_size(b) || state_table_count(a) != state_table_count(b) ||
	    memcmp(state_table_meta(a), state_table_meta(b), sizeof(struct state_meta)) != 0)
		abort();
	for (size_t i = 0; i < state_table_count(a); i++)
		if (!same_mapping(state_table_at(a, i), state_table_at(b, i)))
			abort();
	size_t cur = 0;
	for (const struct state_mapping *m; (m = state_table_next(a, &cur));)
		if (!same_mapping(m, state_table_get(b, m->id)))
			abort();
}

static void consistent(const struct state_table *t)
{
	size_t n = 0, intents = 0, cur = 0;
	if (state_table_count(t) > state_table_size(t))
		abort();
	for (const struct state_mapping *m; (m = state_table_next(t, &cur)); n++) {
		if (!m->id || !m->protocol || state_table_get(t, m->id) != m || strlen(m->description) != m->desc_len)
			abort();
		intents += (m->flags & STATE_F_INTENT) != 0;
		if (m->external_port && state_table_find(t, m->protocol, m->external_port, &m->remote_host) != m)
			abort();
		const struct state_mapping *f =
			state_table_find_internal(t, m->protocol, &m->internal_client, m->internal_port);
		if (!f || f->id > m->id || f->protocol != m->protocol || f->internal_port != m->internal_port ||
		    memcmp(&f->internal_client, &m->internal_client, 16) != 0)
			abort();
	}
	if (n != state_table_size(t) || n - intents != state_table_count(t))
		abort();
	for (size_t i = 0; i < state_table_count(t); i++) {
		const struct state_mapping *m = state_table_at(t, i);
		if (!m || (m->flags & STATE_F_INTENT) || state_table_get(t, m->id) != m)
			abort();
	}
	if (state_table_at(t, state_table_count(t)) != NULL)
		abort();
}

static struct state_table *open_ok(struct fake_clock *fc, bool clean)
{
	struct state_clock c = {.mono_ms = fc_mono, .wall_s = fc_wall, .arg = fc};
	struct state_table *t = state_table_new(&c);
	struct state_open_report rep;
	char detail[256];
	if (!t || state_table_open(t, ctx->path, &rep, detail, sizeof(detail)) != STATE_OK)
		abort();
	if (clean && (rep.torn_bytes || rep.imported_json || rep.created))
		abort();
	return t;
}

static void check_one(const uint8_t *data, size_t size)
{
	unlink(ctx->tmp);
	FILE *f = fopen(ctx->path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();

	struct fake_clock fc = {5000000, size & 1 ? 1000 : 1800003600};
	struct state_clock c = {.mono_ms = fc_mono, .wall_s = fc_wall, .arg = &fc};
	struct state_table *t = state_table_new(&c);
	if (!t)
		abort();
	struct state_open_report rep;
	char detail[256];
	detail[0] = '\0';
	enum state_err e = state_table_open(t, ctx->path, &rep, detail, sizeof(detail));
	if ((unsigned)e > STATE_ERR_INVAL || !state_err_name(e))
		abort();
	if (e != STATE_OK) {
		if (e == STATE_ERR_NOMEM || !memchr(detail, '\0', sizeof(detail)) || !detail[0])
			abort();
		if (state_table_size(t) != 0 || state_table_count(t) != 0)
			abort(); /* nothing half-loaded */
		f = fopen(ctx->path, "rb");
		size_t n = f ? fread(ctx->back, 1, sizeof(ctx->back), f) : 0;
		if (!f || n != size || (size && memcmp(ctx->back, data, size) != 0))
			abort(); /* the file untouched */
		fclose(f);
		state_table_free(t);
		return;
	}
	consistent(t);
	if (rep.mappings != state_table_size(t) || rep.torn_bytes > size)
		abort();

	/* The same table again from the file it left, and after a compaction. */
	struct state_table *u = open_ok(&fc, true);
	same_table(t, u);
	if (state_table_compact(u, detail, sizeof(detail)) != STATE_OK)
		abort();
	state_table_free(u);
	u = open_ok(&fc, true);
	same_table(t, u);
	state_table_free(u);
	state_table_free(t);
}

/* A copy of a journal with the CRC of each complete record recomputed; false when data is
 * not a journal or nothing changed. */
static bool fix_crcs(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
	if (size < 16 || size > cap || memcmp(data, "IWFDJRNL", 8) != 0)
		return false;
	memcpy(out, data, size);
	size_t off = 16;
	while (size - off >= 8) {
		size_t plen = (size_t)out[off] << 8 | out[off + 1];
		if (size - off - 8 < plen)
			break;
		uint32_t crc = state_crc32(0, out + off, 4 + plen);
		for (int i = 0; i < 4; i++)
			out[off + 4 + plen + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
		off += 8 + plen;
	}
	return memcmp(out, data, size) != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	check_one(data, size);
	if (fix_crcs(data, size, ctx->fixed, sizeof(ctx->fixed)))
		check_one(ctx->fixed, size);
	return 0;
}
