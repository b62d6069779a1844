/*
 * test_state.c - the local mapping table (seed 004 §5.4) and its journal (state/state.h):
 * table semantics against a naive model, the journal round trip, torn and corrupt tails,
 * compaction, group commit, the import of the iwfd 0.1 JSON file, the lease clock rules,
 * O_NOFOLLOW, write errors. Prints the bytes journalled per add and the heap per record.
 */
#include "state.h"
#include "state_internal.h" /* state_crc32, struct state_rec: white-box checks and sizes */
#include "../testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOUR_MS 3600000u
#define SANE_WALL 1800000000 /* 2027-01-15: after STATE_WALL_SANE_MIN */

static char dir[] = "/tmp/iwfd-test-state-XXXXXX";

/* ------------------------------------------------------------------ helpers */

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

static struct state_table *new_table(struct fake_clock *fc)
{
	struct state_clock c = {.mono_ms = fc_mono, .wall_s = fc_wall, .arg = fc};
	return state_table_new(&c);
}

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static struct in6_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct in6_addr x;
	memset(&x, 0, sizeof(x));
	x.s6_addr[10] = x.s6_addr[11] = 0xff;
	x.s6_addr[12] = a;
	x.s6_addr[13] = b;
	x.s6_addr[14] = c;
	x.s6_addr[15] = d;
	return x;
}

static struct in6_addr v6(const char *text)
{
	struct in6_addr x;
	if (inet_pton(AF_INET6, text, &x) != 1)
		abort();
	return x;
}

/* A mapping for internal host 192.168.1.<client>; desc borrowed. */
static struct state_mapping mk(uint8_t proto, uint16_t ext, uint8_t client, uint16_t iport, const char *desc)
{
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.flags = STATE_F_ENABLED;
	m.external_port = ext;
	m.internal_port = iport;
	m.internal_client = v4(192, 168, 1, client);
	m.owner = m.internal_client;
	m.external_addr = v4(198, 51, 100, 7);
	m.lease_duration = 3600;
	for (int i = 0; i < STATE_NONCE_LEN; i++)
		m.nonce[i] = (uint8_t)(ext * 7 + client + i);
	m.description = desc;
	m.desc_len = desc ? (uint8_t)strlen(desc) : 0;
	return m;
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
	       strlen(a->description) == a->desc_len && strcmp(a->description, b->description) == 0;
}

/* Same records (every field), same commit order, same meta. */
static bool same_table(const struct state_table *a, const struct state_table *b)
{
	if (state_table_size(a) != state_table_size(b) || state_table_count(a) != state_table_count(b))
		return false;
	for (size_t i = 0; i < state_table_count(a); i++)
		if (!same_mapping(state_table_at(a, i), state_table_at(b, i)))
			return false;
	size_t cur = 0, n = 0;
	for (const struct state_mapping *m; (m = state_table_next(a, &cur)); n++)
		if (!same_mapping(m, state_table_get(b, m->id)))
			return false;
	return n == state_table_size(a) && memcmp(state_table_meta(a), state_table_meta(b), sizeof(struct state_meta)) == 0;
}

/* A copy of table t as a fresh in-memory table (same ids, order and meta), for comparing
 * with what a reopen gives. Replays t's commit order, then its intents. */
static struct state_table *clone(const struct state_table *t, struct fake_clock *fc)
{
	struct state_table *c = new_table(fc);
	for (size_t i = 0; i < state_table_count(t); i++)
		if (state_rec_put(c, state_table_at(t, i)) != STATE_OK)
			abort();
	size_t cur = 0;
	for (const struct state_mapping *m; (m = state_table_next(t, &cur));)
		if ((m->flags & STATE_F_INTENT) && state_rec_put(c, m) != STATE_OK)
			abort();
	c->meta = *state_table_meta(t);
	return c;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void write_file(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
		abort();
}

static bool starts_with_magic(const char *path)
{
	uint8_t b[8];
	return read_file(path, b, sizeof(b)) == 8 && memcmp(b, "IWFDJRNL", 8) == 0;
}

/* xorshift64*: a seeded, reproducible sequence. */
static uint64_t rnd_state = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return (uint32_t)((rnd_state * UINT64_C(2685821657736338717)) >> 32) % n;
}

/* ------------------------------------------------------------------ table semantics */

static void test_crc(void)
{
	/* The check value of CRC-32/ISO-HDLC. */
	CHECK_EQ_INT(state_crc32(0, "123456789", 9), 0xCBF43926u);
	CHECK_EQ_INT(state_crc32(state_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
	CHECK_EQ_INT(state_crc32(0, "", 0), 0);
}

static void test_table(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	struct state_table *t = new_table(&fc);
	CHECK(t != NULL);
	CHECK(strcmp(state_err_name(STATE_ERR_EXISTS), "entry exists") == 0);
	CHECK(strcmp(state_err_name((enum state_err)99), "unknown error") == 0);
	uint32_t a, b, c, d, x = 77;
	struct state_mapping ma = mk(6, 40000, 10, 8080, "game");
	struct state_mapping mb = mk(17, 40000, 11, 8080, NULL);
	struct state_mapping mc = mk(6, 40000, 12, 8080, "other remote");
	mc.remote_host = v6("2001:db8::9");
	CHECK_EQ_INT(state_table_add(t, &ma, &a), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &mb, &b), STATE_OK); /* other protocol: no conflict */
	CHECK_EQ_INT(state_table_add(t, &mc, &c), STATE_OK); /* other remote host: no conflict */
	CHECK(a != 0 && b != 0 && c != 0 && a != b && b != c && a != c);
	CHECK_EQ_INT(state_table_add(t, &ma, &x), STATE_ERR_EXISTS);
	CHECK_EQ_INT(x, 77); /* untouched on failure */
	struct state_mapping bad = mk(0, 5, 1, 1, "");
	CHECK_EQ_INT(state_table_add(t, &bad, NULL), STATE_ERR_INVAL);
	CHECK_EQ_INT(state_table_add(t, NULL, NULL), STATE_ERR_INVAL);
	CHECK_EQ_INT(state_table_count(t), 3);
	CHECK_EQ_INT(state_table_size(t), 3);

	const struct state_mapping *g = state_table_get(t, a);
	ma.id = a;
	CHECK(same_mapping(g, &ma));
	CHECK(g->description != ma.description); /* a copy, stored in the record */
	CHECK(strcmp(state_table_get(t, b)->description, "") == 0 && state_table_get(t, b)->desc_len == 0);
	CHECK(state_table_get(t, 0) == NULL);
	CHECK(state_table_get(t, 12345) == NULL);
	CHECK(state_table_find(t, 6, 40000, NULL)->id == a);
	struct in6_addr any;
	memset(&any, 0, sizeof(any));
	CHECK(state_table_find(t, 6, 40000, &any)->id == a);
	CHECK(state_table_find(t, 17, 40000, NULL)->id == b);
	CHECK(state_table_find(t, 6, 40000, &mc.remote_host)->id == c);
	CHECK(state_table_find(t, 6, 40001, NULL) == NULL);
	CHECK(state_table_find(t, 6, 0, NULL) == NULL);
	CHECK(state_table_at(t, 0)->id == a && state_table_at(t, 1)->id == b && state_table_at(t, 2)->id == c);
	CHECK(state_table_at(t, 3) == NULL);

	/* find_internal: several records of one endpoint (cascaded NAT): the lowest id. */
	struct state_mapping md = mk(6, 40002, 10, 8080, "second of 10:8080");
	CHECK_EQ_INT(state_table_add(t, &md, &d), STATE_OK);
	struct in6_addr h10 = v4(192, 168, 1, 10);
	CHECK(state_table_find_internal(t, 6, &h10, 8080)->id == a);
	CHECK(state_table_find_internal(t, 17, &h10, 8080) == NULL);
	CHECK(state_table_find_internal(t, 6, &h10, 8081) == NULL);
	CHECK_EQ_INT(state_table_remove(t, a), STATE_OK);
	CHECK(state_table_find_internal(t, 6, &h10, 8080)->id == d);
	CHECK_EQ_INT(state_table_remove(t, a), STATE_ERR_NOTFOUND);
	CHECK(state_table_get(t, a) == NULL);
	CHECK(state_table_find(t, 6, 40000, NULL) == NULL);
	/* Removal keeps the commit order of the rest (GetGenericPortMappingEntry indexes). */
	CHECK_EQ_INT(state_table_count(t), 3);
	CHECK(state_table_at(t, 0)->id == b && state_table_at(t, 1)->id == c && state_table_at(t, 2)->id == d);
	/* Ids are never reused within a run. */
	uint32_t e;
	CHECK_EQ_INT(state_table_add(t, &ma, &e), STATE_OK);
	CHECK(e > d && e != a);

	/* Intents: hold their key, not in count/at; external port 0 (AddAny) holds nothing. */
	struct state_mapping i1 = mk(6, 41000, 30, 9000, "intent");
	i1.flags |= STATE_F_INTENT;
	uint32_t ii1, ii2, ii3;
	CHECK_EQ_INT(state_table_add(t, &i1, &ii1), STATE_OK);
	CHECK_EQ_INT(state_table_count(t), 4);
	CHECK_EQ_INT(state_table_size(t), 5);
	CHECK(state_table_find(t, 6, 41000, NULL)->id == ii1);
	struct state_mapping clash = mk(6, 41000, 31, 9000, "");
	CHECK_EQ_INT(state_table_add(t, &clash, NULL), STATE_ERR_EXISTS); /* a concurrent Add is refused */
	struct state_mapping any1 = mk(17, 0, 32, 9000, "AddAny"), any2 = mk(17, 0, 33, 9000, "AddAny 2");
	any1.flags |= STATE_F_INTENT;
	any2.flags |= STATE_F_INTENT;
	CHECK_EQ_INT(state_table_add(t, &any1, &ii2), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &any2, &ii3), STATE_OK);
	for (size_t i = 0; i < state_table_count(t); i++)
		CHECK(!(state_table_at(t, i)->flags & STATE_F_INTENT));

	/* Commit of an intent: to the end of the commit order, with its granted port. */
	struct state_mapping u = *state_table_get(t, ii2);
	u.flags &= (uint8_t)~STATE_F_INTENT;
	u.protocol = 6;
	u.external_port = 41000; /* taken by intent ii1 */
	CHECK_EQ_INT(state_table_update(t, &u), STATE_ERR_EXISTS);
	CHECK(state_table_get(t, ii2)->flags & STATE_F_INTENT); /* unchanged */
	CHECK(state_table_get(t, ii2)->protocol == 17);
	u.protocol = 17;
	u.external_port = 41001;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK_EQ_INT(state_table_count(t), 5);
	CHECK(state_table_at(t, 4)->id == ii2);
	CHECK(state_table_find(t, 17, 41001, NULL)->id == ii2);
	/* Re-keying a committed record: the old key is free, the new one found; order kept. */
	u = *state_table_get(t, c);
	u.external_port = 40100;
	u.remote_host = any;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK(state_table_find(t, 6, 40000, &mc.remote_host) == NULL);
	CHECK(state_table_find(t, 6, 40100, NULL)->id == c);
	CHECK(state_table_at(t, 1)->id == c);
	/* A withdrawn record (being deleted on the carrier) leaves the order, keeps its key. */
	u = *state_table_get(t, b);
	u.flags |= STATE_F_INTENT;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK_EQ_INT(state_table_count(t), 4);
	CHECK(state_table_at(t, 0)->id == c);
	CHECK(state_table_find(t, 17, 40000, NULL)->id == b);
	CHECK_EQ_INT(state_table_add(t, &mb, NULL), STATE_ERR_EXISTS);
	/* The description of the update may point into the old record (other length: the
	 * record moves; same length: in place). */
	u = *state_table_get(t, d);
	u.description = state_table_get(t, d)->description + 7; /* "of 10:8080" */
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK(strcmp(state_table_get(t, d)->description, "of 10:8080") == 0);
	CHECK_EQ_INT(state_table_get(t, d)->desc_len, 10);
	CHECK(state_table_find_internal(t, 6, &h10, 8080)->id == d);
	CHECK(state_table_at(t, 1)->id == d); /* c, d, e, ii2 */
	CHECK_EQ_INT(state_table_update(t, state_table_get(t, d)), STATE_OK); /* itself */
	CHECK(strcmp(state_table_get(t, d)->description, "of 10:8080") == 0);
	u.id = 999;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_ERR_NOTFOUND);
	u.id = d;
	u.protocol = 0;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_ERR_INVAL);

	/* Descriptions: cut at STATE_DESC_MAX, on a UTF-8 character boundary. */
	char longd[400];
	memset(longd, 'x', sizeof(longd));
	longd[sizeof(longd) - 1] = '\0';
	struct state_mapping ml = mk(6, 50000, 40, 1, longd);
	uint32_t l;
	CHECK_EQ_INT(state_table_add(t, &ml, &l), STATE_OK);
	CHECK_EQ_INT(state_table_get(t, l)->desc_len, STATE_DESC_MAX);
	CHECK_EQ_INT(strlen(state_table_get(t, l)->description), STATE_DESC_MAX);
	memcpy(longd + 253, "\xc3\xa9\xc3\xa9", 4); /* é at 253..254, é at 255..256 */
	u = *state_table_get(t, l);
	u.description = longd;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK_EQ_INT(state_table_get(t, l)->desc_len, 255);
	memcpy(longd + 252, "\xc3\xa9\xc3\xa9", 4); /* é at 252..253, é at 254..255: cut at 254 */
	u = *state_table_get(t, l);
	u.description = longd;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	CHECK_EQ_INT(state_table_get(t, l)->desc_len, 254);

	/* Iteration visits every record once, intents included. */
	size_t cur = 0, n = 0, intents = 0;
	uint64_t idsum = 0, want = (uint64_t)b + c + d + e + ii1 + ii2 + ii3 + l;
	for (const struct state_mapping *m; (m = state_table_next(t, &cur)); n++) {
		idsum += m->id;
		intents += (m->flags & STATE_F_INTENT) != 0;
	}
	CHECK_EQ_INT(n, state_table_size(t));
	CHECK_EQ_INT(n, 8);
	CHECK_EQ_INT(intents, 3);
	CHECK_EQ_INT(idsum, want);
	CHECK(state_table_next(t, &cur) == NULL);

	/* Meta in memory; a table never opened journals nothing and syncs trivially. */
	struct state_meta meta = {.boot_id = 3, .system_update_id = 9};
	meta.uuid_igd[0] = 1;
	CHECK_EQ_INT(state_table_set_meta(t, &meta), STATE_OK);
	CHECK(memcmp(state_table_meta(t), &meta, sizeof(meta)) == 0);
	CHECK_EQ_INT(state_table_sync(t, NULL, 0), STATE_OK);
	CHECK_EQ_INT(state_table_compact(t, NULL, 0), STATE_OK);
	struct state_stats st;
	state_table_stats(t, &st);
	CHECK_EQ_INT(st.bytes_appended + st.syncs + st.journal_bytes + st.write_errors, 0);
	state_table_free(t);
	state_table_free(NULL);

	/* A table without a clock cannot be opened. */
	struct state_table *nc = state_table_new(NULL);
	char p[600], detail[256];
	path_of(p, sizeof(p), "noclock");
	CHECK_EQ_INT(state_table_open(nc, p, NULL, detail, sizeof(detail)), STATE_ERR_INVAL);
	CHECK(access(p, F_OK) != 0);
	state_table_free(nc);
}

/* ------------------------------------------------------------------ against a naive model */

#define MODEL_MAX 20000

struct model_rec {
	struct state_mapping m;
	char desc[32];
	uint64_t seq; /* commit order; 0 for an intent */
	bool alive;
};

struct model {
	struct model_rec *r; /* indexed by id */
	int32_t *ext;        /* (protocol, port, remote host) -> id, 0 = free */
	uint64_t seq;
	size_t alive, committed;
};

static size_t ext_slot(const struct state_mapping *m)
{
	return ((size_t)(m->protocol == 17) << 17) | ((size_t)(m->remote_host.s6_addr[15] != 0) << 16) |
	       m->external_port;
}

static struct state_mapping random_mapping(char *desc, size_t cap)
{
	/* Small key spaces so that keys collide: 2 x 2 x 16384 external keys, 2 x 64 x 32
	 * internal endpoints. */
	struct state_mapping m = mk(rnd(2) ? 6 : 17, (uint16_t)(1 + rnd(16384)), (uint8_t)(1 + rnd(64)),
				    (uint16_t)(1 + rnd(32)), desc);
	if (rnd(4) == 0)
		m.remote_host = v4(203, 0, 113, 9);
	if (rnd(3) == 0)
		m.flags |= STATE_F_INTENT;
	if ((m.flags & STATE_F_INTENT) && rnd(4) == 0)
		m.external_port = 0;
	snprintf(desc, cap, "d%u", rnd(100000));
	m.nonce[0] = (uint8_t)rnd(256);
	return m;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct model_rec *x = *(const struct model_rec *const *)a, *y = *(const struct model_rec *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void model_check(const struct state_table *t, const struct model *md, uint32_t max_id)
{
	int ok = 1;
	CHECK_EQ_INT(state_table_size(t), md->alive);
	CHECK_EQ_INT(state_table_count(t), md->committed);
	struct model_rec **order = calloc(md->committed + 1, sizeof(*order));
	uint32_t *lowest = calloc(2 * 256 * 64, sizeof(*lowest)); /* internal endpoint -> lowest id */
	size_t k = 0;
	for (uint32_t id = 1; id <= max_id; id++) {
		const struct model_rec *r = &md->r[id];
		const struct state_mapping *g = state_table_get(t, id);
		if (!r->alive) {
			ok &= g == NULL;
			continue;
		}
		ok &= same_mapping(g, &r->m);
		if (r->m.external_port)
			ok &= state_table_find(t, r->m.protocol, r->m.external_port, &r->m.remote_host) == g;
		size_t ik = (size_t)(r->m.protocol == 17) * 256 * 64 + r->m.internal_client.s6_addr[15] * 64u +
			    r->m.internal_port;
		if (!lowest[ik])
			lowest[ik] = id; /* ids ascend */
		if (r->seq)
			order[k++] = (struct model_rec *)r;
	}
	for (uint32_t id = 1; id <= max_id; id++) {
		const struct model_rec *r = &md->r[id];
		if (!r->alive)
			continue;
		size_t ik = (size_t)(r->m.protocol == 17) * 256 * 64 + r->m.internal_client.s6_addr[15] * 64u +
			    r->m.internal_port;
		const struct state_mapping *f =
			state_table_find_internal(t, r->m.protocol, &r->m.internal_client, r->m.internal_port);
		ok &= f && f->id == lowest[ik];
	}
	qsort(order, k, sizeof(*order), cmp_seq);
	ok &= k == md->committed;
	for (size_t i = 0; i < k; i++)
		ok &= state_table_at(t, i) && state_table_at(t, i)->id == order[i]->m.id;
	CHECK(ok);
	free(order);
	free(lowest);
}

static void model_store(struct model *md, uint32_t id, const struct state_mapping *m, bool recommit)
{
	struct model_rec *r = &md->r[id];
	bool was = r->alive && r->seq, will = !(m->flags & STATE_F_INTENT);
	if (r->alive && r->m.external_port)
		md->ext[ext_slot(&r->m)] = 0;
	if (!r->alive)
		md->alive++;
	r->alive = true;
	r->m = *m;
	r->m.id = id;
	snprintf(r->desc, sizeof(r->desc), "%s", m->description);
	r->m.description = r->desc;
	r->m.desc_len = (uint8_t)strlen(r->desc);
	if (r->m.external_port)
		md->ext[ext_slot(&r->m)] = (int32_t)id;
	if (will && (!was || recommit))
		r->seq = ++md->seq;
	if (!will)
		r->seq = 0;
	md->committed += (size_t)will - (size_t)was;
}

static void model_del(struct model *md, uint32_t id)
{
	struct model_rec *r = &md->r[id];
	if (r->m.external_port)
		md->ext[ext_slot(&r->m)] = 0;
	md->committed -= r->seq != 0;
	md->alive--;
	r->alive = false;
	r->seq = 0;
}

static void test_model(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	struct state_table *t = new_table(&fc);
	struct model md = {.r = calloc(MODEL_MAX * 3 + 2, sizeof(struct model_rec)), .ext = calloc(1u << 18, sizeof(int32_t))};
	uint32_t max_id = 0;
	char desc[32];
	int ok = 1;
	/* 10,000 adds of distinct keys, every one found; then random operations. */
	for (uint32_t i = 0; i < 10000; i++) {
		snprintf(desc, sizeof(desc), "bulk %u", i); /* before mk(), which takes its strlen */
		struct state_mapping m = mk(i & 1 ? 17 : 6, (uint16_t)(10000 + i), (uint8_t)(1 + i % 64),
					    (uint16_t)(1 + i % 32), desc);
		uint32_t id = 0;
		ok &= state_table_add(t, &m, &id) == STATE_OK && id == max_id + 1;
		max_id = id;
		model_store(&md, id, &m, false);
	}
	CHECK(ok);
	model_check(t, &md, max_id);
	for (int op = 0; op < 30000; op++) {
		uint32_t k = rnd(10);
		if (k < 4 && max_id < MODEL_MAX * 3) { /* add */
			struct state_mapping m = random_mapping(desc, sizeof(desc));
			bool taken = m.external_port && md.ext[ext_slot(&m)];
			uint32_t id = 0;
			enum state_err e = state_table_add(t, &m, &id);
			ok &= e == (taken ? STATE_ERR_EXISTS : STATE_OK);
			if (e == STATE_OK) {
				ok &= id > max_id;
				max_id = id;
				model_store(&md, id, &m, false);
			}
		} else if (k < 7 && md.alive) { /* remove a random live record */
			uint32_t id;
			do
				id = 1 + rnd(max_id);
			while (!md.r[id].alive);
			ok &= state_table_remove(t, id) == STATE_OK;
			ok &= state_table_remove(t, id) == STATE_ERR_NOTFOUND;
			model_del(&md, id);
		} else if (md.alive) { /* update: new key, flags, description */
			uint32_t id;
			do
				id = 1 + rnd(max_id);
			while (!md.r[id].alive);
			struct state_mapping m = random_mapping(desc, sizeof(desc));
			m.id = id;
			int32_t h = m.external_port ? md.ext[ext_slot(&m)] : 0;
			bool taken = h && (uint32_t)h != id;
			enum state_err e = state_table_update(t, &m);
			ok &= e == (taken ? STATE_ERR_EXISTS : STATE_OK);
			if (e == STATE_OK)
				model_store(&md, id, &m, false);
		}
		if (op % 3000 == 2999)
			model_check(t, &md, max_id);
	}
	CHECK(ok);
	/* Remove everything, in random order. */
	while (md.alive) {
		uint32_t id;
		do
			id = 1 + rnd(max_id);
		while (!md.r[id].alive);
		ok &= state_table_remove(t, id) == STATE_OK;
		model_del(&md, id);
		if (md.alive % 2500 == 0)
			model_check(t, &md, max_id);
	}
	CHECK(ok);
	CHECK_EQ_INT(state_table_size(t), 0);
	CHECK_EQ_INT(state_table_count(t), 0);
	free(md.r);
	free(md.ext);
	state_table_free(t);
}

/* ------------------------------------------------------------------ the journal */

static void test_roundtrip(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "rt.journal");
	struct state_table *t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.created && !rep.imported_json && rep.torn_bytes == 0 && rep.mappings == 0);
	CHECK(starts_with_magic(p));
	struct stat st;
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_EQ_INT(state_table_open(t, p, NULL, NULL, 0), STATE_ERR_INVAL); /* already open */

	struct state_meta meta = {.boot_id = 7, .system_update_id = 42};
	for (int i = 0; i < STATE_UUID_LEN; i++) {
		meta.uuid_igd[i] = (uint8_t)i;
		meta.uuid_wan_device[i] = (uint8_t)(0x40 + i);
		meta.uuid_wan_conn_device[i] = (uint8_t)(0x80 + i);
	}
	CHECK_EQ_INT(state_table_set_meta(t, &meta), STATE_OK);
	uint32_t ids[6];
	struct state_mapping a = mk(6, 40000, 10, 8080, "game \"x\" & <y>");
	a.lease_end_ms = fc.mono + 2 * HOUR_MS;
	struct state_mapping b = mk(17, 5000, 11, 5001, "voip");
	b.remote_host = v4(203, 0, 113, 9);
	b.router_port = 61000;
	b.flags = 0; /* disabled */
	b.lease_duration = 0;
	struct state_mapping c = mk(6, 443, 12, 443, "static");
	c.flags |= STATE_F_STATIC;
	c.owner = v6("::");
	c.internal_client = v6("2001:db8::12");
	struct state_mapping i1 = mk(17, 0, 13, 9999, "AddAny in flight");
	i1.flags |= STATE_F_INTENT;
	i1.lease_end_ms = fc.mono + HOUR_MS;
	CHECK_EQ_INT(state_table_add(t, &a, &ids[0]), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &b, &ids[1]), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &c, &ids[2]), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &i1, &ids[3]), STATE_OK);
	struct state_mapping d = mk(6, 40001, 10, 8081, "to be deleted");
	CHECK_EQ_INT(state_table_add(t, &d, &ids[4]), STATE_OK);
	/* Commit of an intent and withdrawal: the order moves. */
	struct state_mapping u = *state_table_get(t, ids[0]);
	u.flags |= STATE_F_INTENT;
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	u.flags &= (uint8_t)~STATE_F_INTENT;
	u.description = "game, renewed";
	CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	/* The highest id is deleted: it must not come back after a reopen either. */
	struct state_mapping e = mk(6, 40002, 10, 8082, "highest");
	CHECK_EQ_INT(state_table_add(t, &e, &ids[5]), STATE_OK);
	CHECK_EQ_INT(state_table_remove(t, ids[5]), STATE_OK);
	CHECK_EQ_INT(state_table_remove(t, ids[4]), STATE_OK);
	meta.system_update_id++;
	CHECK_EQ_INT(state_table_set_meta(t, &meta), STATE_OK);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	struct state_stats s1;
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.journal_bytes, file_size(p));
	CHECK(s1.bytes_appended > 0);
	CHECK_EQ_INT(state_table_at(t, 2)->id, ids[0]); /* b, c, then the recommitted a */
	struct state_table *copy = clone(t, &fc);
	state_table_free(t);

	/* Another run: mono restarted, wall the same; nothing elapsed. */
	struct state_table *u2 = new_table(&fc);
	CHECK_EQ_INT(state_table_open(u2, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(!rep.created && !rep.imported_json && rep.torn_bytes == 0);
	CHECK_EQ_INT(rep.mappings, 4);
	CHECK_EQ_INT(rep.intents, 1);
	CHECK_EQ_INT(rep.records, 13); /* META at creation, 2 META, 7 PUT, 3 DEL */
	CHECK(same_table(copy, u2));
	uint32_t nid;
	struct state_mapping f = mk(6, 40003, 10, 8083, "after reopen");
	CHECK_EQ_INT(state_table_add(u2, &f, &nid), STATE_OK);
	CHECK(nid > ids[5]);
	/* After a compaction (the deleted ids are gone from the file) still above. */
	CHECK_EQ_INT(state_table_remove(u2, nid), STATE_OK);
	CHECK_EQ_INT(state_table_compact(u2, detail, sizeof(detail)), STATE_OK);
	state_table_free(u2);
	struct state_table *u3 = new_table(&fc);
	CHECK_EQ_INT(state_table_open(u3, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(rep.records, 5); /* META + 4 PUT */
	CHECK(same_table(copy, u3));
	uint32_t nid2;
	CHECK_EQ_INT(state_table_add(u3, &f, &nid2), STATE_OK);
	CHECK(nid2 > nid);
	state_table_free(u3);
	state_table_free(copy);
}

/* A journal with records r0..r(n-1); offs[i] is the file offset where record i starts. */
static size_t build_journal(const char *p, struct fake_clock *fc, size_t *offs, struct state_table **before_last)
{
	struct state_table *t = new_table(fc);
	if (state_table_open(t, p, NULL, NULL, 0) != STATE_OK)
		abort();
	struct state_stats st;
	size_t n = 0;
	const char *descs[] = {"one", "two", "three", "four", "five"};
	uint32_t ids[5];
	for (int i = 0; i < 5; i++) {
		state_table_stats(t, &st);
		offs[n++] = st.journal_bytes;
		struct state_mapping m = mk(6, (uint16_t)(1000 + i), (uint8_t)(20 + i), 80, descs[i]);
		if (state_table_add(t, &m, &ids[i]) != STATE_OK)
			abort();
	}
	state_table_stats(t, &st);
	offs[n++] = st.journal_bytes;
	state_table_remove(t, ids[1]);
	state_table_stats(t, &st);
	offs[n++] = st.journal_bytes;
	*before_last = clone(t, fc);
	struct state_mapping u = *state_table_get(t, ids[2]);
	u.description = "three, updated at last";
	state_table_update(t, &u);
	state_table_sync(t, NULL, 0);
	state_table_stats(t, &st);
	offs[n] = st.journal_bytes;
	state_table_free(t);
	return n;
}

static void test_torn_tail(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "torn.journal");
	size_t offs[10];
	struct state_table *before;
	size_t n = build_journal(p, &fc, offs, &before);
	static uint8_t orig[65536];
	size_t len = read_file(p, orig, sizeof(orig));
	CHECK_EQ_INT(len, offs[n]);
	struct state_table *full = new_table(&fc);
	CHECK_EQ_INT(state_table_open(full, p, NULL, NULL, 0), STATE_OK);

	/* Every cut inside the last record: the table as before it, the tail cut off. */
	int ok = 1;
	for (size_t cut = offs[n - 1]; cut <= len; cut++) {
		write_file(p, orig, cut);
		struct state_table *t = new_table(&fc);
		struct state_open_report rep;
		enum state_err e = state_table_open(t, p, &rep, detail, sizeof(detail));
		ok &= e == STATE_OK;
		if (cut == len) {
			ok &= rep.torn_bytes == 0 && same_table(t, full);
		} else {
			ok &= rep.torn_bytes == cut - offs[n - 1] && same_table(t, before);
			ok &= file_size(p) == (long)offs[n - 1];
		}
		state_table_free(t);
	}
	CHECK(ok);
	/* Every cut anywhere after the header: never an error. */
	for (size_t cut = 16; cut <= len; cut++) {
		write_file(p, orig, cut);
		struct state_table *t = new_table(&fc);
		struct state_open_report rep;
		ok &= state_table_open(t, p, &rep, detail, sizeof(detail)) == STATE_OK;
		if (cut < offs[0]) { /* inside the META record of the creation */
			ok &= rep.torn_bytes == cut - 16 && rep.records == 0;
		} else {
			size_t k = 0; /* complete records after that META */
			while (k < n && offs[k + 1] <= cut)
				k++;
			ok &= rep.torn_bytes == cut - offs[k] && rep.records == k + 1;
		}
		state_table_free(t);
	}
	CHECK(ok);
	/* A truncated header is no journal. */
	write_file(p, orig, 12);
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, detail, sizeof(detail)), STATE_ERR_FORMAT);
	CHECK_EQ_INT(file_size(p), 12);
	state_table_free(t);

	/* A bad CRC in the middle (record 3 of 8): the replay ends before it, the rest is cut. */
	uint8_t bad[65536];
	memcpy(bad, orig, len);
	bad[offs[2] + 20] ^= 0x01;
	write_file(p, bad, len);
	t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(rep.torn_bytes, len - offs[2]);
	CHECK_EQ_INT(state_table_size(t), 2);
	CHECK(strcmp(state_table_get(t, 1)->description, "one") == 0);
	CHECK(strcmp(state_table_get(t, 2)->description, "two") == 0);
	CHECK_EQ_INT(file_size(p), offs[2]);
	/* Appends continue after the cut, and the next open is clean. */
	struct state_mapping m = mk(17, 7, 7, 7, "after the cut");
	uint32_t id;
	CHECK_EQ_INT(state_table_add(t, &m, &id), STATE_OK);
	CHECK_EQ_INT(id, 3); /* ids only seen in the cut tail are unknown now: they are given again */
	CHECK_EQ_INT(state_table_sync(t, NULL, 0), STATE_OK);
	state_table_free(t);
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.torn_bytes == 0 && state_table_size(t) == 3);
	state_table_free(t);
	/* A record with a good CRC but a senseless payload (id 0) also ends the replay. */
	memcpy(bad, orig, len);
	bad[offs[3] + 4 + 3] = 0; /* low byte of record 4's id (4): id 0 */
	uint32_t crc = state_crc32(0, bad + offs[3], offs[4] - offs[3] - 4);
	for (int i = 0; i < 4; i++)
		bad[offs[4] - 4 + i] = (uint8_t)(crc >> (24 - 8 * i));
	write_file(p, bad, len);
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(rep.torn_bytes, len - offs[3]);
	CHECK_EQ_INT(state_table_size(t), 3);
	state_table_free(t);
	state_table_free(full);
	state_table_free(before);
}

static void test_compaction_and_sync(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "compact.journal");
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, detail, sizeof(detail)), STATE_OK);
	struct state_stats s0, s1;
	/* Group commit: one fdatasync per sync with appended records, none without. */
	state_table_stats(t, &s0);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.syncs - s0.syncs, 0);
	uint32_t ids[20];
	for (int i = 0; i < 20; i++) {
		struct state_mapping m = mk(6, (uint16_t)(2000 + i), (uint8_t)(1 + i), 80, "compaction test");
		CHECK_EQ_INT(state_table_add(t, &m, &ids[i]), STATE_OK);
	}
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s0);
	CHECK_EQ_INT(s0.syncs - s1.syncs, 1);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	struct state_meta meta = *state_table_meta(t);
	CHECK_EQ_INT(state_table_set_meta(t, &meta), STATE_OK); /* unchanged: nothing written */
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.syncs - s0.syncs, 0);
	CHECK_EQ_INT(s1.bytes_appended, s0.bytes_appended);
	meta.boot_id++;
	CHECK_EQ_INT(state_table_set_meta(t, &meta), STATE_OK);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s0);
	CHECK_EQ_INT(s0.syncs - s1.syncs, 1);
	CHECK_EQ_INT(s0.bytes_appended - s1.bytes_appended, 68);

	/* Many updates: the journal is compacted when over max(64 KiB, 4 x snapshot). */
	char desc[64];
	long biggest = 0;
	for (int i = 0; i < 3000; i++) {
		struct state_mapping u = *state_table_get(t, ids[i % 20]);
		snprintf(desc, sizeof(desc), "update %d", i);
		u.description = desc;
		u.lease_end_ms = fc.mono + (uint64_t)(i % 7) * 1000;
		u.flags ^= STATE_F_ENABLED;
		CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
		if (i % 10 == 9) {
			CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
			long sz = file_size(p);
			if (sz > biggest)
				biggest = sz;
		}
	}
	state_table_stats(t, &s1);
	CHECK(s1.compactions > 0);
	CHECK(s1.bytes_snapshot > 0);
	CHECK(biggest <= 64 * 1024 + 10 * (8 + 104 + 20));
	CHECK_EQ_INT(s1.journal_bytes, file_size(p));
	/* An explicit compaction: the file is the snapshot exactly. */
	long before = file_size(p);
	CHECK_EQ_INT(state_table_compact(t, detail, sizeof(detail)), STATE_OK);
	long snap = 16 + 68;
	size_t cur = 0;
	for (const struct state_mapping *m; (m = state_table_next(t, &cur));)
		snap += 8 + 104 + m->desc_len;
	CHECK_EQ_INT(file_size(p), snap);
	CHECK(snap < before);
	char tmp[700];
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	CHECK(access(tmp, F_OK) != 0);
	struct state_table *copy = clone(t, &fc);
	state_table_free(t);
	t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.torn_bytes == 0 && same_table(t, copy));
	state_table_free(t);
	state_table_free(copy);
}

static void test_json_import(void)
{
	struct fake_clock fc = {5000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "state.json");
	char doc[4096];
	snprintf(doc, sizeof(doc),
		 "  \n{\n \"version\": 1,\n"
		 " \"uuid\": {\"igd\": \"11111111-2222-4333-8444-555555555555\",\n"
		 "          \"wan_device\": \"AAAAAAAA-bbbb-4ccc-8ddd-eeeeeeeeeeee\",\n"
		 "          \"wan_connection_device\": \"not a uuid\"},\n"
		 " \"boot_id\": 7, \"system_update_id\": 42,\n"
		 " \"mappings\": [\n"
		 "  {\"protocol\": \"TCP\", \"external_port\": 40000, \"external_addr\": \"198.51.100.7\",\n"
		 "   \"remote_host\": \"\", \"internal_client\": \"192.168.1.10\", \"internal_port\": 8080,\n"
		 "   \"router_port\": 0, \"description\": \"game\", \"owner\": \"192.168.1.10\", \"enabled\": true,\n"
		 "   \"lease_duration\": 3600, \"lease_end\": %lld, \"nonce\": \"0102030405060708090a0b0c\"},\n"
		 "  {\"protocol\": \"UDP\", \"external_port\": 5000, \"external_addr\": \"\",\n"
		 "   \"remote_host\": \"2001:db8::9\", \"internal_client\": \"192.168.1.11\", \"internal_port\": 5001,\n"
		 "   \"router_port\": 61000, \"description\": \"\", \"owner\": \"bogus\", \"enabled\": false,\n"
		 "   \"lease_duration\": 0, \"lease_end\": 0, \"nonce\": \"A0A1A2A3A4A5A6A7A8A9AAAB\"}\n"
		 " ],\n"
		 " \"intents\": [\n"
		 "  {\"protocol\": \"TCP\", \"external_port\": 41000, \"external_addr\": \"\", \"remote_host\": \"\",\n"
		 "   \"internal_client\": \"192.168.1.12\", \"internal_port\": 22, \"description\": \"ssh\",\n"
		 "   \"owner\": \"192.168.1.12\", \"enabled\": true, \"lease_duration\": 3600, \"lease_end\": %lld,\n"
		 "   \"nonce\": \"b0b1b2b3b4b5b6b7b8b9babb\"},\n"
		 "  {\"protocol\": \"TCP\", \"external_port\": 40000, \"external_addr\": \"\", \"remote_host\": \"\",\n"
		 "   \"internal_client\": \"192.168.1.10\", \"internal_port\": 8080, \"description\": \"game\",\n"
		 "   \"owner\": \"192.168.1.10\", \"enabled\": true, \"lease_duration\": 3600, \"lease_end\": 0,\n"
		 "   \"nonce\": \"0102030405060708090a0b0c\"},\n"
		 "  {\"protocol\": \"TCP\", \"external_port\": 40000, \"external_addr\": \"\", \"remote_host\": \"\",\n"
		 "   \"internal_client\": \"192.168.1.13\", \"internal_port\": 8080, \"description\": \"clash\",\n"
		 "   \"owner\": \"192.168.1.13\", \"enabled\": true, \"lease_duration\": 3600, \"lease_end\": 0,\n"
		 "   \"nonce\": \"c0c1c2c3c4c5c6c7c8c9cacb\"}\n"
		 " ]\n}\n",
		 (long long)(fc.wall + 1800), (long long)(fc.wall - 10));
	write_file(p, doc, strlen(doc));
	struct state_table *t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	if (!rep.imported_json)
		fprintf(stderr, "import: %s\n", detail);
	CHECK(rep.imported_json && !rep.created && rep.torn_bytes == 0);
	CHECK_EQ_INT(rep.mappings, 4);
	CHECK_EQ_INT(rep.intents, 2);
	CHECK_EQ_INT(state_table_count(t), 2);
	CHECK(starts_with_magic(p)); /* the file is a journal now */
	const struct state_mapping *m = state_table_at(t, 0);
	struct in6_addr any;
	memset(&any, 0, sizeof(any));
	CHECK(m && m->id == 1 && m->protocol == 6 && m->external_port == 40000 && m->internal_port == 8080);
	struct in6_addr x = v4(198, 51, 100, 7), c10 = v4(192, 168, 1, 10);
	CHECK(m && !memcmp(&m->external_addr, &x, 16) && !memcmp(&m->internal_client, &c10, 16) &&
	      !memcmp(&m->owner, &c10, 16) && !memcmp(&m->remote_host, &any, 16));
	CHECK(m && m->flags == STATE_F_ENABLED && m->lease_duration == 3600 && strcmp(m->description, "game") == 0);
	CHECK(m && m->lease_end_ms == fc.mono + 1800 * 1000u); /* wall-clock end: 1800 s left */
	CHECK(m && m->nonce[0] == 1 && m->nonce[11] == 12);
	m = state_table_at(t, 1);
	struct in6_addr rh = v6("2001:db8::9");
	CHECK(m && m->id == 2 && m->protocol == 17 && !memcmp(&m->remote_host, &rh, 16) && m->router_port == 61000);
	CHECK(m && m->flags == 0 && m->lease_end_ms == 0 && m->desc_len == 0 && m->nonce[11] == 0xAB);
	CHECK(m && !memcmp(&m->owner, &any, 16) && !memcmp(&m->external_addr, &any, 16)); /* unreadable: none */
	/* Intents: the first as it was (its lease ended 10 s ago: due now); the one with the
	 * mapping's own nonce dropped; the clashing one keeps its nonce, not the key. */
	m = state_table_get(t, 3);
	CHECK(m && (m->flags & STATE_F_INTENT) && m->external_port == 41000 && m->lease_end_ms == fc.mono);
	CHECK(state_table_find(t, 6, 41000, NULL) == m);
	m = state_table_get(t, 4);
	CHECK(m && (m->flags & STATE_F_INTENT) && m->external_port == 0 && m->nonce[0] == 0xc0 &&
	      strcmp(m->description, "clash") == 0);
	CHECK(state_table_find(t, 6, 40000, NULL)->id == 1);
	const struct state_meta *meta = state_table_meta(t);
	CHECK(meta->boot_id == 7 && meta->system_update_id == 42);
	CHECK(meta->uuid_igd[0] == 0x11 && meta->uuid_igd[4] == 0x22 && meta->uuid_igd[15] == 0x55);
	CHECK(meta->uuid_wan_device[0] == 0xaa && meta->uuid_wan_device[15] == 0xee);
	static const uint8_t zero[STATE_UUID_LEN];
	CHECK(memcmp(meta->uuid_wan_conn_device, zero, STATE_UUID_LEN) == 0); /* regenerated by the daemon */
	uint32_t id;
	struct state_mapping n = mk(6, 1, 1, 1, "new");
	CHECK_EQ_INT(state_table_add(t, &n, &id), STATE_OK);
	CHECK_EQ_INT(id, 5);
	CHECK_EQ_INT(state_table_remove(t, id), STATE_OK);
	struct state_table *copy = clone(t, &fc);
	state_table_free(t);
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(!rep.imported_json && rep.torn_bytes == 0 && same_table(t, copy));
	state_table_free(t);
	state_table_free(copy);

	/* A newer JSON version, an invalid mapping, a broken document: refused, untouched. */
	static const char *const refused[] = {
		"{\"version\": 2, \"uuid\": {}, \"mappings\": []}",
		"{\"version\": 1, \"uuid\": {\"igd\": \"\", \"wan_device\": \"\", \"wan_connection_device\": \"\"},"
		" \"boot_id\": 1, \"system_update_id\": 1, \"mappings\": [{\"protocol\": \"TCP\","
		" \"external_port\": 70000}]}",
		"{\"version\": 1, \"mappings\": [",
		"{\"version\": 1, \"version\": 1}",
	};
	static const enum state_err want[] = {STATE_ERR_VERSION, STATE_ERR_FORMAT, STATE_ERR_FORMAT, STATE_ERR_FORMAT};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		write_file(p, refused[i], strlen(refused[i]));
		t = new_table(&fc);
		detail[0] = '\0';
		CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), want[i]);
		CHECK(detail[0] != '\0');
		CHECK_EQ_INT(state_table_size(t), 0);
		uint8_t back[512];
		size_t bl = read_file(p, back, sizeof(back));
		CHECK(bl == strlen(refused[i]) && memcmp(back, refused[i], bl) == 0);
		state_table_free(t);
	}
	unlink(p);
}

static void test_formats(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "fmt.journal");
	struct state_open_report rep;
	/* Garbage: FORMAT, the file untouched, and it can be quarantined. */
	static const uint8_t garbage[] = "hello, world\n\x00\x01\x02 not a state file";
	write_file(p, garbage, sizeof(garbage));
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_ERR_FORMAT);
	uint8_t back[256];
	CHECK(read_file(p, back, sizeof(back)) == sizeof(garbage) && memcmp(back, garbage, sizeof(garbage)) == 0);
	char moved[700];
	CHECK_EQ_INT(state_quarantine(p, 1234, moved, sizeof(moved)), STATE_OK);
	CHECK(strstr(moved, ".corrupt-1234") != NULL);
	CHECK(access(p, F_OK) != 0 && access(moved, F_OK) == 0);
	unlink(moved);
	CHECK_EQ_INT(state_quarantine(p, 1234, NULL, 0), STATE_ERR_IO);
	/* The same table opens the new file after a failure. */
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.created);
	state_table_free(t);

	/* A newer journal version: VERSION, untouched; version 0 or 1 (binary): FORMAT. */
	uint8_t hdr[16] = {'I', 'W', 'F', 'D', 'J', 'R', 'N', 'L', 0, 0, 0, 3, 0, 0, 0, 0};
	uint8_t v3[40];
	memcpy(v3, hdr, 16);
	memset(v3 + 16, 0xee, sizeof(v3) - 16);
	write_file(p, v3, sizeof(v3));
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_ERR_VERSION);
	CHECK(read_file(p, back, sizeof(back)) == sizeof(v3) && memcmp(back, v3, sizeof(v3)) == 0);
	hdr[11] = 1;
	write_file(p, hdr, sizeof(hdr));
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_ERR_FORMAT);
	/* The header alone: an empty journal. */
	hdr[11] = 2;
	write_file(p, hdr, sizeof(hdr));
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(!rep.created && rep.records == 0 && rep.mappings == 0 && rep.torn_bytes == 0);
	state_table_free(t);
	/* An empty file (nothing to lose): a new journal. */
	write_file(p, "", 0);
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.created && starts_with_magic(p));
	state_table_free(t);
	unlink(p);
	/* A directory, a missing directory: IO with errno. */
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, dir, &rep, detail, sizeof(detail)), STATE_ERR_IO);
	path_of(p, sizeof(p), "missing/fmt.journal");
	errno = 0;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_ERR_IO);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(detail, "missing") != NULL);
	state_table_free(t);
}

/* state.h "Time": the lease left is written with the wall time of the write; at open the
 * wall time elapsed is subtracted only when both wall times are sane. */
static uint64_t reopen_lease(const char *p, int64_t write_wall, int64_t open_wall, uint64_t left_ms)
{
	struct fake_clock fc = {777000, write_wall};
	unlink(p);
	struct state_table *t = new_table(&fc);
	if (state_table_open(t, p, NULL, NULL, 0) != STATE_OK)
		abort();
	struct state_mapping m = mk(6, 1234, 5, 1234, "lease");
	m.lease_end_ms = left_ms ? fc.mono + left_ms : 0; /* 0: never */
	uint32_t id;
	if (state_table_add(t, &m, &id) != STATE_OK)
		abort();
	state_table_free(t);
	struct fake_clock fc2 = {1000, open_wall}; /* another boot: mono restarted */
	t = new_table(&fc2);
	if (state_table_open(t, p, NULL, NULL, 0) != STATE_OK)
		abort();
	uint64_t end = state_table_get(t, id)->lease_end_ms;
	state_table_free(t);
	return end;
}

static void test_lease_clock(void)
{
	char p[600];
	path_of(p, sizeof(p), "lease.journal");
	const int64_t day = 86400, insane = 1000; /* a CPE without RTC before NTP: 1970 */
	const uint64_t two_h = 2 * HOUR_MS, now2 = 1000;
	/* Written while the clock was not sane; opened a day "later" or "earlier": nothing
	 * elapsed, the 2-hour lease is whole. */
	CHECK_EQ_INT(reopen_lease(p, insane, insane + day, two_h), now2 + two_h);
	CHECK_EQ_INT(reopen_lease(p, insane + day, insane, two_h), now2 + two_h);
	CHECK_EQ_INT(reopen_lease(p, insane, SANE_WALL, two_h), now2 + two_h); /* NTP came meanwhile */
	/* Written sane, opened before NTP: unknown, whole. */
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, insane, two_h), now2 + two_h);
	/* Both sane: the elapsed time is subtracted; a step back counts as nothing elapsed. */
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, SANE_WALL + 3600, two_h), now2 + HOUR_MS);
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, SANE_WALL - day, two_h), now2 + two_h);
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, SANE_WALL + day, two_h), now2); /* due: still loaded */
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, SANE_WALL + 7200, two_h), now2); /* exactly at its end */
	/* Never ends; already due at the write; a part-second left rounds up. */
	CHECK_EQ_INT(reopen_lease(p, SANE_WALL, SANE_WALL + day, 0), 0);
	struct fake_clock fc = {777000, SANE_WALL};
	unlink(p);
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, NULL, 0), STATE_OK);
	struct state_mapping m = mk(6, 1, 1, 1, "due");
	m.lease_end_ms = 5;
	uint32_t due, part;
	CHECK_EQ_INT(state_table_add(t, &m, &due), STATE_OK);
	m = mk(6, 2, 1, 2, "part");
	m.lease_end_ms = fc.mono + 300;
	CHECK_EQ_INT(state_table_add(t, &m, &part), STATE_OK);
	state_table_free(t);
	fc.mono = 0; /* "due now" is never 0, which would mean "never" */
	t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, NULL, 0), STATE_OK);
	CHECK_EQ_INT(state_table_get(t, due)->lease_end_ms, 1);
	CHECK_EQ_INT(state_table_get(t, part)->lease_end_ms, 1000);
	state_table_free(t);
	unlink(p);
}

static void test_nofollow(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], tmp[700], victim[600], detail[256];
	path_of(p, sizeof(p), "nf.journal");
	path_of(victim, sizeof(victim), "victim");
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	write_file(victim, "precious\n", 9);
	CHECK(symlink(victim, tmp) == 0);
	/* Creating the journal goes through path.tmp: the link is replaced, not written through. */
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, detail, sizeof(detail)), STATE_OK);
	struct state_mapping m = mk(6, 1, 1, 1, "x");
	CHECK_EQ_INT(state_table_add(t, &m, NULL), STATE_OK);
	CHECK(symlink(victim, tmp) == 0);
	struct state_stats s0, s1;
	state_table_stats(t, &s0);
	CHECK_EQ_INT(state_table_compact(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.compactions - s0.compactions, 1);
	uint8_t back[64];
	CHECK(read_file(victim, back, sizeof(back)) == 9 && memcmp(back, "precious\n", 9) == 0);
	struct stat st;
	CHECK(lstat(tmp, &st) != 0); /* renamed away */
	CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
	state_table_free(t);
	/* A symlink at the path itself is not opened. */
	unlink(p);
	CHECK(symlink(victim, p) == 0);
	t = new_table(&fc);
	errno = 0;
	CHECK_EQ_INT(state_table_open(t, p, NULL, detail, sizeof(detail)), STATE_ERR_IO);
	CHECK_EQ_INT(errno, ELOOP);
	CHECK(read_file(victim, back, sizeof(back)) == 9 && memcmp(back, "precious\n", 9) == 0);
	state_table_free(t);
	unlink(p);
	unlink(victim);
}

/* A relative path keeps meaning the directory it meant at open, whatever chdir comes later
 * (the daemon's daemon(0, 0) does one). */
static void test_relative_path(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char cwd[4096], p[600], detail[256];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(dir) == 0);
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, "rel.journal", NULL, detail, sizeof(detail)), STATE_OK);
	struct state_mapping m = mk(6, 1, 1, 1, "relative");
	CHECK_EQ_INT(state_table_add(t, &m, NULL), STATE_OK);
	CHECK(chdir("/") == 0);
	CHECK_EQ_INT(state_table_compact(t, detail, sizeof(detail)), STATE_OK);
	CHECK(access("/rel.journal", F_OK) != 0 && access("/rel.journal.tmp", F_OK) != 0);
	state_table_free(t);
	CHECK(chdir(cwd) == 0);
	path_of(p, sizeof(p), "rel.journal");
	t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.records == 2 && rep.mappings == 1); /* the compacted file: META + PUT */
	state_table_free(t);
	unlink(p);
}

/* Write errors: appends fail (file size limit), the table stays in memory, the sync
 * reports it or the compaction repairs it. */
static void test_write_errors(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600], detail[256];
	path_of(p, sizeof(p), "err.journal");
	struct state_table *t = new_table(&fc);
	CHECK_EQ_INT(state_table_open(t, p, NULL, detail, sizeof(detail)), STATE_OK);
	uint32_t id;
	struct state_mapping m = mk(6, 1, 1, 1, "a mapping");
	CHECK_EQ_INT(state_table_add(t, &m, &id), STATE_OK);
	for (int i = 0; i < 40; i++) { /* grow the journal well beyond a snapshot */
		struct state_mapping u = *state_table_get(t, id);
		u.flags ^= STATE_F_ENABLED;
		CHECK_EQ_INT(state_table_update(t, &u), STATE_OK);
	}
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	struct state_stats s0, s1;
	state_table_stats(t, &s0);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = s0.journal_bytes + 50; /* the next PUT fits half */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	struct state_mapping n = mk(17, 2, 2, 2, "written at the compaction");
	uint32_t nid;
	CHECK_EQ_INT(state_table_add(t, &n, &nid), STATE_OK); /* in memory at least */
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.write_errors - s0.write_errors, 1);
	CHECK_EQ_INT(file_size(p), s0.journal_bytes); /* the partial record was cut */
	CHECK(state_table_get(t, nid) != NULL);
	/* The sync compacts: the snapshot is small enough for the limit. */
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	state_table_stats(t, &s1);
	CHECK_EQ_INT(s1.compactions - s0.compactions, 1);
	/* Now a limit below the snapshot: appends and compaction fail, the sync says so. */
	lim.rlim_cur = 100;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	struct state_mapping o = mk(17, 3, 3, 3, "third");
	uint32_t oid;
	CHECK_EQ_INT(state_table_add(t, &o, &oid), STATE_OK);
	detail[0] = '\0';
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_ERR_IO);
	CHECK(detail[0] != '\0');
	CHECK_EQ_INT(state_table_size(t), 3);
	/* The disk has room again: the next sync writes everything. */
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	struct state_table *copy = clone(t, &fc);
	state_table_free(t);
	t = new_table(&fc);
	struct state_open_report rep;
	CHECK_EQ_INT(state_table_open(t, p, &rep, detail, sizeof(detail)), STATE_OK);
	CHECK(rep.torn_bytes == 0 && same_table(t, copy));
	state_table_free(t);
	state_table_free(copy);
	signal(SIGXFSZ, SIG_DFL);
	unlink(p);
}

/* ------------------------------------------------------------------ numbers for the docs */

static void measure(void)
{
	struct fake_clock fc = {1000000, SANE_WALL};
	char p[600];
	path_of(p, sizeof(p), "measure.journal");
	struct state_table *t = new_table(&fc);
	if (state_table_open(t, p, NULL, NULL, 0) != STATE_OK)
		abort();
	const char *desc = "Skype UDP at 192.168.1.10:34567"; /* a typical client's description */
	struct state_stats s0, s1, s2;
	state_table_stats(t, &s0);
	/* What iwf/ does for an AddPortMapping: intent, commit, SystemUpdateID. */
	struct state_mapping m = mk(17, 34567, 10, 34567, desc);
	m.flags |= STATE_F_INTENT;
	uint32_t id;
	state_table_add(t, &m, &id);
	struct state_mapping u = *state_table_get(t, id);
	u.flags &= (uint8_t)~STATE_F_INTENT;
	state_table_update(t, &u);
	state_table_stats(t, &s1);
	struct state_meta meta = *state_table_meta(t);
	meta.system_update_id++;
	state_table_set_meta(t, &meta);
	state_table_stats(t, &s2);
	printf("journal: one add (intent PUT + commit PUT, %zu-byte description) = %llu bytes; "
	       "+ META for SystemUpdateID = %llu bytes\n",
	       strlen(desc), (unsigned long long)(s1.bytes_appended - s0.bytes_appended),
	       (unsigned long long)(s2.bytes_appended - s0.bytes_appended));
	state_table_free(t);
	unlink(p);

	/* Heap per record: 10,000 records with that description. */
	char d[64];
	t = new_table(&fc);
	struct mallinfo2 a = mallinfo2();
	for (int i = 0; i < 10000; i++) {
		snprintf(d, sizeof(d), "Skype UDP at 192.168.1.%d:%d", 2 + i % 250, 30000 + i);
		m = mk(i & 1 ? 17 : 6, (uint16_t)(30000 + i), (uint8_t)(2 + i % 250), (uint16_t)(30000 + i), d);
		state_table_add(t, &m, NULL);
	}
	struct mallinfo2 b = mallinfo2();
	printf("heap: %.1f bytes per record for 10,000 records (record block %zu + %zu-byte description, "
	       "3 indexes, commit order; mallinfo2 uordblks; 0 under ASan)\n",
	       (double)(b.uordblks - a.uordblks) / 10000.0, offsetof(struct state_rec, desc), strlen(d) + 1);
	state_table_free(t);
	fflush(stdout);
}

static void rm_dir(void)
{
	DIR *dp = opendir(dir);
	if (dp) {
		struct dirent *de;
		char p[600];
		while ((de = readdir(dp)))
			if (de->d_name[0] != '.') {
				path_of(p, sizeof(p), de->d_name);
				unlink(p);
			}
		closedir(dp);
	}
	rmdir(dir);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 2;
	test_crc();
	test_table();
	test_model();
	test_roundtrip();
	test_torn_tail();
	test_compaction_and_sync();
	test_json_import();
	test_formats();
	test_lease_clock();
	test_nofollow();
	test_relative_path();
	test_write_errors();
	measure();
	rm_dir();
	return tu_finish("test_state");
}
