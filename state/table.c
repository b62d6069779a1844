/*
 * table.c - the local port-mapping table (seed 004 §5.4): the one record of each mapping,
 * its three hash indexes and the commit order (state.h). The journal is journal.c.
 *
 * Memory per record: the record itself (struct state_rec, the description at its real
 * length in the same block), one pointer in each of the three indexes (load factor at most
 * 3/4) and one in the commit order.
 */
#include "state_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

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

void state_detail(char *detail, size_t cap, const char *fmt, ...)
{
	if (!detail || !cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, cap, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ hashing */

/* The 64-bit finaliser of MurmurHash3 (fmix64): every input bit affects every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* Hash of an endpoint key (protocol, port, address); salt tells the indexes apart. */
static uint64_t hash_endpoint(uint64_t seed, uint8_t protocol, uint16_t port, const struct in6_addr *a)
{
	uint64_t w0, w1;
	memcpy(&w0, &a->s6_addr[0], 8);
	memcpy(&w1, &a->s6_addr[8], 8);
	uint64_t h = mix64(seed ^ ((uint64_t)protocol << 16 | port));
	h = mix64(h ^ w0);
	return mix64(h ^ w1);
}

enum idx_kind { IDX_ID, IDX_EXT, IDX_INT };

/* The key of one index, for lookups without a record. */
struct key {
	uint32_t id;
	uint8_t protocol;
	uint16_t port;
	const struct in6_addr *addr;
};

static struct key key_of(enum idx_kind k, const struct state_mapping *m)
{
	struct key key = {.id = m->id, .protocol = m->protocol};
	if (k == IDX_EXT) {
		key.port = m->external_port;
		key.addr = &m->remote_host;
	} else if (k == IDX_INT) {
		key.port = m->internal_port;
		key.addr = &m->internal_client;
	}
	return key;
}

static uint64_t key_hash(const struct state_table *t, enum idx_kind k, const struct key *key)
{
	switch (k) {
	case IDX_ID:
		return mix64(t->seed ^ key->id);
	case IDX_EXT:
		return hash_endpoint(t->seed + 1, key->protocol, key->port, key->addr);
	case IDX_INT:
		return hash_endpoint(t->seed + 2, key->protocol, key->port, key->addr);
	}
	return 0;
}

static bool key_match(enum idx_kind k, const struct key *key, const struct state_mapping *m)
{
	switch (k) {
	case IDX_ID:
		return m->id == key->id;
	case IDX_EXT:
		return m->protocol == key->protocol && m->external_port == key->port &&
		       memcmp(&m->remote_host, key->addr, sizeof(*key->addr)) == 0;
	case IDX_INT:
		return m->protocol == key->protocol && m->internal_port == key->port &&
		       memcmp(&m->internal_client, key->addr, sizeof(*key->addr)) == 0;
	}
	return false;
}

static size_t rec_home(const struct state_table *t, enum idx_kind k, const struct state_index *ix,
		       const struct state_rec *r)
{
	struct key key = key_of(k, &r->m);
	return (size_t)key_hash(t, k, &key) & ix->mask;
}

/* ------------------------------------------------------------------ one index */

/* Make room for n records (load factor at most 3/4). False on allocation failure, the
 * index unchanged. */
static bool idx_reserve(const struct state_table *t, enum idx_kind k, struct state_index *ix, size_t n)
{
	size_t cap = ix->slot ? ix->mask + 1 : 0;
	if (n <= cap / 4 * 3)
		return true;
	size_t ncap = cap ? cap : 16;
	while (n > ncap / 4 * 3) {
		if (ncap > SIZE_MAX / 2 / sizeof(struct state_rec *))
			return false;
		ncap *= 2;
	}
	struct state_rec **ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return false;
	struct state_index nix = {.slot = ns, .mask = ncap - 1, .n = ix->n};
	for (size_t i = 0; i < cap; i++) {
		struct state_rec *r = ix->slot[i];
		if (!r)
			continue;
		size_t j = rec_home(t, k, &nix, r);
		while (ns[j])
			j = (j + 1) & nix.mask;
		ns[j] = r;
	}
	free(ix->slot);
	*ix = nix;
	return true;
}

/* Insert r; the room was reserved before. */
static void idx_insert(const struct state_table *t, enum idx_kind k, struct state_index *ix, struct state_rec *r)
{
	size_t j = rec_home(t, k, ix, r);
	while (ix->slot[j])
		j = (j + 1) & ix->mask;
	ix->slot[j] = r;
	ix->n++;
}

static struct state_rec *idx_find(const struct state_table *t, enum idx_kind k, const struct state_index *ix,
				  const struct key *key)
{
	if (!ix->slot)
		return NULL;
	for (size_t j = (size_t)key_hash(t, k, key) & ix->mask; ix->slot[j]; j = (j + 1) & ix->mask)
		if (key_match(k, key, &ix->slot[j]->m))
			return ix->slot[j];
	return NULL;
}

/* The slot holding exactly r (which is in the index). */
static size_t idx_slot_of(const struct state_table *t, enum idx_kind k, const struct state_index *ix,
			  const struct state_rec *r)
{
	size_t j = rec_home(t, k, ix, r);
	while (ix->slot[j] != r)
		j = (j + 1) & ix->mask;
	return j;
}

/* Remove r by backward-shift deletion: each later record of the cluster whose home is not
 * cyclically in (hole, its slot] moves into the hole, so no probe sequence is broken. */
static void idx_remove(const struct state_table *t, enum idx_kind k, struct state_index *ix,
		       const struct state_rec *r)
{
	size_t hole = idx_slot_of(t, k, ix, r);
	for (size_t j = (hole + 1) & ix->mask; ix->slot[j]; j = (j + 1) & ix->mask) {
		size_t home = rec_home(t, k, ix, ix->slot[j]);
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (!stays) {
			ix->slot[hole] = ix->slot[j];
			hole = j;
		}
	}
	ix->slot[hole] = NULL;
	ix->n--;
}

/* r's block moved to nr (same key in this index). */
static void idx_replace(const struct state_table *t, enum idx_kind k, struct state_index *ix,
			const struct state_rec *r, struct state_rec *nr)
{
	ix->slot[idx_slot_of(t, k, ix, r)] = nr;
}

/* ------------------------------------------------------------------ commit order */

static bool order_reserve(struct state_table *t, size_t n)
{
	if (n <= t->cap_order)
		return true;
	size_t ncap = t->cap_order ? t->cap_order : 16;
	while (ncap < n) { /* grow by half: a quarter less slack than doubling, on average */
		if (ncap > SIZE_MAX / 2 / sizeof(*t->order))
			return false;
		ncap += ncap / 2;
	}
	struct state_rec **no = realloc(t->order, ncap * sizeof(*no));
	if (!no)
		return false;
	t->order = no;
	t->cap_order = ncap;
	return true;
}

/* Position of r in the order (binary search on seq; r is committed). */
static size_t order_pos(const struct state_table *t, const struct state_rec *r)
{
	size_t lo = 0, hi = t->n_order;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->order[mid]->seq < r->seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Append r (room reserved). Sequence numbers are renumbered densely when they run out. */
static void order_append(struct state_table *t, struct state_rec *r)
{
	if (t->next_seq == UINT32_MAX) {
		for (size_t i = 0; i < t->n_order; i++)
			t->order[i]->seq = (uint32_t)(i + 1);
		t->next_seq = (uint32_t)t->n_order;
	}
	r->seq = ++t->next_seq;
	t->order[t->n_order++] = r;
}

static void order_remove(struct state_table *t, struct state_rec *r)
{
	size_t i = order_pos(t, r);
	memmove(&t->order[i], &t->order[i + 1], (t->n_order - i - 1) * sizeof(t->order[0]));
	t->n_order--;
	r->seq = 0;
}

/* ------------------------------------------------------------------ the table */

struct state_table *state_table_new(const struct state_clock *clock)
{
	struct state_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (clock) {
		t->clock = *clock;
		t->has_clock = clock->mono_ms && clock->wall_s;
	}
	/* A per-table hash seed, so that keys chosen on the LAN cannot be made to collide. */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
		t->seed = mix64((uint64_t)(uintptr_t)t);
	t->next_id = 1;
	t->fd = t->dirfd = -1;
	return t;
}

void state_recs_clear(struct state_table *t)
{
	if (t->by_id.slot)
		for (size_t i = 0; i <= t->by_id.mask; i++)
			free(t->by_id.slot[i]);
	free(t->by_id.slot);
	free(t->by_ext.slot);
	free(t->by_int.slot);
	free(t->order);
	memset(&t->by_id, 0, sizeof(t->by_id));
	memset(&t->by_ext, 0, sizeof(t->by_ext));
	memset(&t->by_int, 0, sizeof(t->by_int));
	t->order = NULL;
	t->n_order = t->cap_order = t->n_intents = 0;
	t->next_seq = 0;
	t->put_bytes = 0;
}

void state_table_free(struct state_table *t)
{
	if (!t)
		return;
	state_journal_close(t);
	state_recs_clear(t);
	free(t);
}

size_t state_table_count(const struct state_table *t)
{
	return t->n_order;
}

size_t state_table_size(const struct state_table *t)
{
	return t->by_id.n;
}

void state_ids_above(struct state_table *t, uint32_t id)
{
	if (id >= t->next_id)
		t->next_id = id + 1; /* UINT32_MAX wraps to 0, which new_id skips */
}

static struct state_rec *rec_by_id(const struct state_table *t, uint32_t id)
{
	struct key key = {.id = id};
	return id ? idx_find(t, IDX_ID, &t->by_id, &key) : NULL;
}

static uint32_t new_id(struct state_table *t)
{
	uint32_t id = t->next_id;
	while (id == 0 || rec_by_id(t, id))
		id++;
	t->next_id = id + 1;
	return id;
}

/* Length of the description as stored: at most STATE_DESC_MAX bytes, cut on a UTF-8
 * character boundary (a lone continuation byte would make invalid XML in UPnP answers). */
static size_t desc_length(const char *s)
{
	size_t n = strnlen(s, STATE_DESC_MAX + 1);
	if (n <= STATE_DESC_MAX)
		return n;
	n = STATE_DESC_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* The record holding m's external key, other than the record self; NULL when the key is
 * free or external_port is 0. */
static struct state_rec *ext_holder(const struct state_table *t, const struct state_mapping *m,
				    const struct state_rec *self)
{
	if (!m->external_port)
		return NULL;
	struct key key = key_of(IDX_EXT, m);
	struct state_rec *h = idx_find(t, IDX_EXT, &t->by_ext, &key);
	return h != self ? h : NULL;
}

static void index_keys(struct state_table *t, struct state_rec *r)
{
	if (r->m.external_port)
		idx_insert(t, IDX_EXT, &t->by_ext, r);
	idx_insert(t, IDX_INT, &t->by_int, r);
}

static void unindex_keys(struct state_table *t, const struct state_rec *r)
{
	if (r->m.external_port)
		idx_remove(t, IDX_EXT, &t->by_ext, r);
	idx_remove(t, IDX_INT, &t->by_int, r);
}

/* Insert a new record with id (free, not 0). */
static enum state_err rec_insert(struct state_table *t, const struct state_mapping *m, uint32_t id,
				 struct state_rec **out)
{
	const char *d = m->description ? m->description : "";
	size_t dl = desc_length(d);
	bool committed = !(m->flags & STATE_F_INTENT);
	size_t n = t->by_id.n + 1;
	if (!idx_reserve(t, IDX_ID, &t->by_id, n) || !idx_reserve(t, IDX_EXT, &t->by_ext, n) ||
	    !idx_reserve(t, IDX_INT, &t->by_int, n) || (committed && !order_reserve(t, t->n_order + 1)))
		return STATE_ERR_NOMEM;
	struct state_rec *r = malloc(offsetof(struct state_rec, desc) + dl + 1);
	if (!r)
		return STATE_ERR_NOMEM;
	r->m = *m;
	r->m.id = id;
	r->m.desc_len = (uint8_t)dl;
	memcpy(r->desc, d, dl);
	r->desc[dl] = '\0';
	r->m.description = r->desc;
	r->seq = 0;
	idx_insert(t, IDX_ID, &t->by_id, r);
	index_keys(t, r);
	if (committed)
		order_append(t, r);
	else
		t->n_intents++;
	t->put_bytes += state_journal_put_size(dl);
	*out = r;
	return STATE_OK;
}

/* Replace r with *m (m->id == r->id; m->description may point into r). */
static enum state_err rec_replace(struct state_table *t, struct state_rec *r, const struct state_mapping *m,
				  struct state_rec **out)
{
	struct state_mapping v = *m; /* m may be &r->m */
	const char *d = v.description ? v.description : "";
	size_t dl = desc_length(d);
	bool was = !(r->m.flags & STATE_F_INTENT), will = !(v.flags & STATE_F_INTENT);
	/* Everything that can fail comes first, so that a failure changes nothing. */
	size_t n = t->by_id.n + 1;
	if (!idx_reserve(t, IDX_EXT, &t->by_ext, n) || !idx_reserve(t, IDX_INT, &t->by_int, n) ||
	    (will && !was && !order_reserve(t, t->n_order + 1)))
		return STATE_ERR_NOMEM;
	struct state_rec *nr = r;
	if (dl != r->m.desc_len) {
		nr = malloc(offsetof(struct state_rec, desc) + dl + 1);
		if (!nr)
			return STATE_ERR_NOMEM;
		memcpy(nr->desc, d, dl); /* d may point into r, which is still there */
	} else {
		memmove(nr->desc, d, dl);
	}
	nr->desc[dl] = '\0';
	unindex_keys(t, r);
	t->put_bytes -= state_journal_put_size(r->m.desc_len);
	uint32_t seq = r->seq;
	if (nr != r) {
		idx_replace(t, IDX_ID, &t->by_id, r, nr);
		if (was)
			t->order[order_pos(t, r)] = nr;
		free(r);
	}
	nr->m = v;
	nr->m.desc_len = (uint8_t)dl;
	nr->m.description = nr->desc;
	nr->seq = seq;
	index_keys(t, nr);
	t->put_bytes += state_journal_put_size(dl);
	if (was && !will) {
		order_remove(t, nr); /* withdrawn: keeps its key, leaves the commit order */
		t->n_intents++;
	} else if (!was && will) {
		order_append(t, nr); /* committed now: the end of the commit order */
		t->n_intents--;
	}
	*out = nr;
	return STATE_OK;
}

static void rec_free(struct state_table *t, struct state_rec *r)
{
	idx_remove(t, IDX_ID, &t->by_id, r);
	unindex_keys(t, r);
	if (r->m.flags & STATE_F_INTENT)
		t->n_intents--;
	else
		order_remove(t, r);
	t->put_bytes -= state_journal_put_size(r->m.desc_len);
	free(r);
}

enum state_err state_rec_put(struct state_table *t, const struct state_mapping *m)
{
	if (!m->protocol || !m->id)
		return STATE_ERR_INVAL;
	struct state_rec *r = rec_by_id(t, m->id), *out;
	if (ext_holder(t, m, r))
		return STATE_ERR_EXISTS;
	return r ? rec_replace(t, r, m, &out) : rec_insert(t, m, m->id, &out);
}

bool state_rec_del(struct state_table *t, uint32_t id)
{
	struct state_rec *r = rec_by_id(t, id);
	if (!r)
		return false;
	rec_free(t, r);
	return true;
}

enum state_err state_table_add(struct state_table *t, const struct state_mapping *m, uint32_t *id_out)
{
	if (!m || !m->protocol)
		return STATE_ERR_INVAL;
	if (ext_holder(t, m, NULL))
		return STATE_ERR_EXISTS;
	struct state_rec *r;
	enum state_err e = rec_insert(t, m, new_id(t), &r);
	if (e != STATE_OK)
		return e;
	state_journal_put(t, r);
	if (id_out)
		*id_out = r->m.id;
	return STATE_OK;
}

enum state_err state_table_update(struct state_table *t, const struct state_mapping *m)
{
	if (!m)
		return STATE_ERR_INVAL;
	struct state_rec *r = rec_by_id(t, m->id);
	if (!r)
		return STATE_ERR_NOTFOUND;
	if (!m->protocol)
		return STATE_ERR_INVAL;
	if (ext_holder(t, m, r))
		return STATE_ERR_EXISTS;
	struct state_rec *nr;
	enum state_err e = rec_replace(t, r, m, &nr);
	if (e == STATE_OK)
		state_journal_put(t, nr);
	return e;
}

enum state_err state_table_remove(struct state_table *t, uint32_t id)
{
	if (!state_rec_del(t, id))
		return STATE_ERR_NOTFOUND;
	state_journal_del(t, id);
	return STATE_OK;
}

const struct state_mapping *state_table_get(const struct state_table *t, uint32_t id)
{
	struct state_rec *r = rec_by_id(t, id);
	return r ? &r->m : NULL;
}

const struct state_mapping *state_table_at(const struct state_table *t, size_t i)
{
	return i < t->n_order ? &t->order[i]->m : NULL;
}

const struct state_mapping *state_table_find(const struct state_table *t, uint8_t protocol,
					     uint16_t external_port, const struct in6_addr *remote_host)
{
	static const struct in6_addr any; /* const: all zero */
	if (!external_port)
		return NULL;
	struct key key = {.protocol = protocol, .port = external_port, .addr = remote_host ? remote_host : &any};
	struct state_rec *r = idx_find(t, IDX_EXT, &t->by_ext, &key);
	return r ? &r->m : NULL;
}

const struct state_mapping *state_table_find_internal(const struct state_table *t, uint8_t protocol,
						      const struct in6_addr *internal_client,
						      uint16_t internal_port)
{
	const struct state_index *ix = &t->by_int;
	if (!ix->slot || !internal_client)
		return NULL;
	struct key key = {.protocol = protocol, .port = internal_port, .addr = internal_client};
	const struct state_rec *best = NULL;
	/* Every record of this key is in the cluster that starts at its home slot. */
	for (size_t j = (size_t)key_hash(t, IDX_INT, &key) & ix->mask; ix->slot[j]; j = (j + 1) & ix->mask) {
		const struct state_rec *r = ix->slot[j];
		if (key_match(IDX_INT, &key, &r->m) && (!best || r->m.id < best->m.id))
			best = r;
	}
	return best ? &best->m : NULL;
}

const struct state_mapping *state_table_next(const struct state_table *t, size_t *cursor)
{
	const struct state_index *ix = &t->by_id;
	if (!ix->slot)
		return NULL;
	for (; *cursor <= ix->mask; (*cursor)++)
		if (ix->slot[*cursor])
			return &ix->slot[(*cursor)++]->m;
	return NULL;
}

const struct state_meta *state_table_meta(const struct state_table *t)
{
	return &t->meta;
}

enum state_err state_table_set_meta(struct state_table *t, const struct state_meta *meta)
{
	if (!meta)
		return STATE_ERR_INVAL;
	const struct state_meta *o = &t->meta;
	if (memcmp(o->uuid_igd, meta->uuid_igd, STATE_UUID_LEN) == 0 &&
	    memcmp(o->uuid_wan_device, meta->uuid_wan_device, STATE_UUID_LEN) == 0 &&
	    memcmp(o->uuid_wan_conn_device, meta->uuid_wan_conn_device, STATE_UUID_LEN) == 0 &&
	    o->boot_id == meta->boot_id && o->system_update_id == meta->system_update_id)
		return STATE_OK; /* nothing changed: nothing written */
	t->meta = *meta;
	state_journal_meta(t);
	return STATE_OK;
}
