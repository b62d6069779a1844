/*
 * state_internal.h - what table.c, journal.c and json_import.c share. Not installed, not
 * for other modules: they use state.h only.
 *
 * table.c owns the records and their indexes, journal.c the file (format, replay, appends,
 * group commit, snapshots), json_import.c the one-way conversion of the iwfd 0.1 JSON file.
 */
#ifndef IWFD_STATE_INTERNAL_H
#define IWFD_STATE_INTERNAL_H

#include "state.h"

/*
 * One record: the public struct followed by its description, allocated as one block of
 * offsetof(struct state_rec, desc) + desc_len + 1 bytes. m.description points at desc.
 */
struct state_rec {
	struct state_mapping m;
	uint32_t seq;  /* commit sequence number (0 for an intent): the order array is sorted by it */
	char desc[];   /* m.desc_len bytes and a NUL */
};

/*
 * Open addressing with linear probing and backward-shift deletion (no tombstones): every
 * record is reachable from its home slot without crossing an empty slot, which is also
 * what lets the multimap (by internal endpoint) find all records of one key.
 */
struct state_index {
	struct state_rec **slot; /* NULL = empty; NULL array while capacity is 0 */
	size_t mask;             /* capacity - 1; capacity is a power of two */
	size_t n;
};

struct state_table {
	struct state_clock clock;
	bool has_clock;
	uint64_t seed;                  /* hash seed, per table */
	struct state_index by_id;       /* id -> record */
	struct state_index by_ext;      /* (protocol, external_port, remote_host), external_port != 0 */
	struct state_index by_int;      /* (protocol, internal_client, internal_port), multimap */
	struct state_rec **order;       /* committed records in commit order (sorted by seq) */
	size_t n_order, cap_order;
	size_t n_intents;
	uint32_t next_id;               /* next id to try (0 is skipped) */
	uint32_t next_seq;              /* last commit sequence number given */
	uint64_t put_bytes;             /* sum of the PUT records of every record: snapshot size */
	struct state_meta meta;

	/* journal.c */
	int fd;                         /* the open journal, -1 when none */
	int dirfd;                      /* its directory, -1 when none */
	char *path;
	const char *base;               /* the file name in path */
	bool pending;                   /* appended since the last fdatasync */
	bool compact_due;               /* the file is not a faithful image: the next sync compacts */
	bool appends_off;               /* an append failed: append nothing until that compaction */
	struct state_stats stats;
};

/* table.c: insert or replace the record m->id (m->id != 0) without journalling (replay and
 * import). STATE_ERR_EXISTS, STATE_ERR_INVAL, STATE_ERR_NOMEM as for state_table_add. */
enum state_err state_rec_put(struct state_table *t, const struct state_mapping *m);
/* table.c: remove record id without journalling; false if there is none. */
bool state_rec_del(struct state_table *t, uint32_t id);
/* table.c: drop every record (the journal, meta and statistics are left alone). */
void state_recs_clear(struct state_table *t);
/* table.c: ids given from now on are above id. */
void state_ids_above(struct state_table *t, uint32_t id);

/* journal.c: append one record for r / a deletion / the meta (no-op without a journal). */
void state_journal_put(struct state_table *t, const struct state_rec *r);
void state_journal_del(struct state_table *t, uint32_t id);
void state_journal_meta(struct state_table *t);
/* journal.c: bytes of the PUT record of a mapping with this description length. */
size_t state_journal_put_size(size_t desc_len);
/* journal.c: close the file (at state_table_free). */
void state_journal_close(struct state_table *t);

/* journal.c: lease end in monotonic ms for left_s seconds left at mono_now: 0 < left_s
 * gives mono_now + left_s s; left_s <= 0 gives "due now" (mono_now, at least 1 since 0
 * means never). Saturates. */
uint64_t state_lease_end(int64_t left_s, uint64_t mono_now);

/* json_import.c: build t (empty) and its meta from a version-1 JSON document; wall_now and
 * mono_now convert its wall-clock lease ends. *count receives the records made. Nothing
 * is journalled. On an error t is left empty. */
enum state_err state_json_import(struct state_table *t, const char *text, size_t len, int64_t wall_now,
				 uint64_t mono_now, size_t *count, char *detail, size_t detail_cap);

/* CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and final xor
 * 0xFFFFFFFF), continuing from crc (0 to start). */
uint32_t state_crc32(uint32_t crc, const void *data, size_t len);

__attribute__((format(printf, 3, 4)))
void state_detail(char *detail, size_t cap, const char *fmt, ...);

#endif
