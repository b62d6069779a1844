/*
 * state.h - the local port-mapping table (seed 004 §5.4) and its journal on stable storage.
 *
 * The table is the source of truth of iwfd: an image of the carrier's mapping table for
 * this subscriber. It owns the ONE record of each mapping (struct state_mapping): binary
 * fields, the description stored once at its real length, the PCP nonce. Other modules
 * hold a handle (the record's id), never a copy.
 *
 * Indexes: by id (handle), by (protocol, external port, remote host) - unique among records
 * with a non-zero external port - and by (protocol, internal client, internal port) - not
 * unique (cascaded NAT may map one endpoint twice). The committed records also keep their
 * commit order, which UPnP's GetGenericPortMappingEntry index follows.
 *
 * Intents (STATE_F_INTENT): a mapping whose MAP request is on its way but not yet confirmed.
 * An intent holds its key (so a concurrent Add of the same port is refused) and is stored
 * (so that after a crash the daemon deletes on the carrier what it may have created), but
 * is not "committed": state_table_count() and state_table_at() skip it.
 *
 * Storage is an append-only journal (state_table_open): every mutation appends one record
 * (PUT = the whole mapping, DEL = an id, META) with a CRC-32 each; state_table_sync() makes
 * what was appended durable with one fdatasync (group commit: call it once after a batch)
 * and, when the journal has grown past its bound, compacts it into a snapshot (temporary
 * file, fsync, rename, fsync of the directory). At open the journal is replayed; a torn or
 * corrupt tail is cut (reported, never fatal). A version-1 JSON state file (iwfd 0.1) is
 * imported and rewritten as a journal.
 *
 * Time: lease ends are monotonic milliseconds in memory (the caller's clock). On disk a
 * lease is written as "seconds left at the record's wall-clock write time"; at open the
 * wall time elapsed since then is subtracted. A write or read wall time before
 * STATE_WALL_SANE_MIN (a CPE without RTC before NTP) counts as unknown: no time is taken
 * as elapsed, so a clock step never expires leases at once.
 *
 * state/ knows neither UPnP nor PCP: it stores plain values. It does not log; functions
 * return enum state_err and, where useful, a human-readable detail.
 */
#ifndef IWFD_STATE_H
#define IWFD_STATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_JOURNAL_VERSION 2   /* version 1 was the JSON document of iwfd 0.1 */
#define STATE_NONCE_LEN 12
#define STATE_DESC_MAX 255
#define STATE_UUID_LEN 16         /* binary UUID */
#define STATE_WALL_SANE_MIN 1735689600 /* 2025-01-01T00:00:00Z */

enum state_err {
	STATE_OK = 0,
	STATE_ERR_NOMEM,    /* allocation failed */
	STATE_ERR_EXISTS,   /* a record with the same external key is already in the table */
	STATE_ERR_NOTFOUND, /* no such record */
	STATE_ERR_IO,       /* file could not be read or written (errno kept) */
	STATE_ERR_FORMAT,   /* file is not a journal (or JSON state document) at all */
	STATE_ERR_VERSION,  /* file written by a newer, unknown format version */
	STATE_ERR_INVAL,    /* invalid argument (field out of range) */
};
const char *state_err_name(enum state_err err);

enum state_flag {
	STATE_F_ENABLED = 1u << 0, /* PortMappingEnabled */
	STATE_F_INTENT = 1u << 1,  /* MAP sent, not yet confirmed (see above) */
	STATE_F_STATIC = 1u << 2,  /* made by the administrator, not by a UPnP control point */
};

/*
 * One mapping. Addresses are struct in6_addr, IPv4 as IPv4-mapped (::ffff:a.b.c.d); the
 * all-zero address means "none" (remote_host: any remote host; external_addr: unknown).
 */
struct state_mapping {
	uint32_t id;              /* handle, given by state_table_add; never 0; stable and stored */
	uint8_t protocol;         /* 6 TCP, 17 UDP */
	uint8_t flags;            /* enum state_flag */
	uint16_t external_port;   /* granted by the PCP server (0: intent of an AddAny, not known yet) */
	uint16_t internal_port;
	uint16_t router_port;     /* cascaded NAT: port on the router's WAN side; 0 = none */
	uint32_t lease_duration;  /* UPnP lease asked for, seconds; 0 = infinite */
	uint64_t lease_end_ms;    /* monotonic ms (caller's clock) when it ends; 0 = never */
	struct in6_addr remote_host;
	struct in6_addr internal_client;
	struct in6_addr external_addr;
	struct in6_addr owner;    /* the control point that made it (:: for static ones) */
	uint8_t nonce[STATE_NONCE_LEN]; /* PCP mapping nonce (RFC 6887 §11.1) */
	uint8_t desc_len;         /* strlen(description) */
	const char *description;  /* NUL-terminated; in a stored record it points into the record */
};

/* Identity kept across restarts. */
struct state_meta {
	uint8_t uuid_igd[STATE_UUID_LEN], uuid_wan_device[STATE_UUID_LEN],
		uuid_wan_conn_device[STATE_UUID_LEN]; /* all-zero = not yet generated */
	uint32_t boot_id;   /* incremented by the daemon at each start */
	uint32_t system_update_id;
};

/* The clock the table uses for lease ends on disk (see above). */
struct state_clock {
	uint64_t (*mono_ms)(void *arg);  /* monotonic milliseconds, the lease_end_ms clock */
	int64_t (*wall_s)(void *arg);    /* Unix seconds */
	void *arg;
};

struct state_table;

/* New empty table, in memory only until state_table_open. clock is copied (NULL: only
 * for tables that are never opened). NULL on allocation failure. */
struct state_table *state_table_new(const struct state_clock *clock);
/* Close the journal (nothing more is written) and free the table. NULL is a no-op. */
void state_table_free(struct state_table *t);

/* What state_table_open found. */
struct state_open_report {
	size_t records;        /* journal records replayed */
	size_t mappings;       /* records in the table afterwards (intents included) */
	size_t intents;        /* of which intents */
	size_t torn_bytes;     /* bytes of a torn or corrupt tail cut off (0 = clean) */
	bool imported_json;    /* a version-1 JSON file was imported and rewritten */
	bool created;          /* there was no file: a new journal was made */
};

/*
 * Load the journal at path into t (which must be empty) and keep it open for appending:
 * from then on every mutation of t is journalled. No file: a new one is created
 * (report->created). A torn or corrupt tail is cut off (report->torn_bytes) - not an error.
 * Errors: STATE_ERR_IO (errno kept; the file could not be read or created), STATE_ERR_FORMAT
 * (not a journal or JSON state document: nothing loaded, the file untouched; the caller
 * may state_quarantine it and open again), STATE_ERR_VERSION (a newer version: likewise).
 * The path is opened with O_NOFOLLOW. report and detail may be NULL.
 */
enum state_err state_table_open(struct state_table *t, const char *path,
				struct state_open_report *report, char *detail, size_t detail_cap);

/*
 * Make everything appended since the last call durable: one fdatasync; when the journal
 * has grown past its bound (max(64 KiB, 4 x the size of a snapshot)) it is first replaced
 * by a snapshot of the table. Returns STATE_OK at once when nothing was appended or no
 * journal is open. On an error the table stays as it is in memory (and is written again
 * at the next compaction); detail (may be NULL) says what failed.
 */
enum state_err state_table_sync(struct state_table *t, char *detail, size_t detail_cap);
/* Compact now (snapshot), whatever the size. */
enum state_err state_table_compact(struct state_table *t, char *detail, size_t detail_cap);

/* Counters of the storage, for benchmarks and the control socket. */
struct state_stats {
	uint64_t bytes_appended;  /* journal records written */
	uint64_t bytes_snapshot;  /* bytes written by compactions */
	uint64_t syncs;           /* fdatasync / fsync calls */
	uint64_t compactions;
	uint64_t journal_bytes;   /* current size of the journal file */
	uint64_t write_errors;
};
void state_table_stats(const struct state_table *t, struct state_stats *out);

/* ------------------------------------------------------------------ records */

/* Mutations (add, update, remove, set_meta) change the table in memory and append their
 * journal record. A failed append does not fail the mutation: it is counted
 * (state_stats.write_errors), appending stops, and the next state_table_sync rewrites the
 * whole journal (compaction) - returning STATE_ERR_IO with a detail if that fails too. */

/* Committed records (intents not counted). */
size_t state_table_count(const struct state_table *t);
/* Every record, intents included. */
size_t state_table_size(const struct state_table *t);

/*
 * Add a copy of *m (id ignored; description copied, NULL = ""; desc_len recomputed; a
 * description over STATE_DESC_MAX bytes is cut) and journal it. A committed record
 * (no STATE_F_INTENT) goes to the end of the commit order. *id_out (may be NULL) receives
 * its id. STATE_ERR_EXISTS when external_port != 0 and (protocol, external_port,
 * remote_host) is taken; STATE_ERR_INVAL for a protocol of 0.
 */
enum state_err state_table_add(struct state_table *t, const struct state_mapping *m, uint32_t *id_out);

/*
 * Replace the record m->id with *m (every field may change; description may point into the
 * old record) and journal it. An intent that loses STATE_F_INTENT is committed: it goes to
 * the end of the commit order. A committed record that gains STATE_F_INTENT is withdrawn
 * (being deleted on the carrier): it leaves the commit order but keeps its key.
 * STATE_ERR_NOTFOUND, STATE_ERR_EXISTS as for add.
 */
enum state_err state_table_update(struct state_table *t, const struct state_mapping *m);

/* Remove record id and journal it. STATE_ERR_NOTFOUND if there is none. */
enum state_err state_table_remove(struct state_table *t, uint32_t id);

/* Borrowed pointers below are valid until the table is next modified. */

/* The record with this id, or NULL. */
const struct state_mapping *state_table_get(const struct state_table *t, uint32_t id);
/* The i-th committed record in commit order (0-based), or NULL past the end. O(1). */
const struct state_mapping *state_table_at(const struct state_table *t, size_t i);
/* The record holding (protocol, external_port, remote_host) - intents included; remote_host
 * NULL is the same as "any" (all zero). NULL when none, or when external_port is 0. */
const struct state_mapping *state_table_find(const struct state_table *t, uint8_t protocol,
					     uint16_t external_port, const struct in6_addr *remote_host);
/* A record for this internal endpoint (intents included), or NULL. When several exist, the
 * one with the lowest id. */
const struct state_mapping *state_table_find_internal(const struct state_table *t, uint8_t protocol,
						      const struct in6_addr *internal_client,
						      uint16_t internal_port);
/* Iterate over every record (intents included) in no particular order: start with *cursor
 * = 0; NULL at the end. Not valid across modifications of the table. */
const struct state_mapping *state_table_next(const struct state_table *t, size_t *cursor);

/* Identity. set_meta journals a META record when something changed. */
const struct state_meta *state_table_meta(const struct state_table *t);
enum state_err state_table_set_meta(struct state_table *t, const struct state_meta *meta);

/*
 * Move an unreadable state file aside to "<path>.corrupt-<unix time>" so that the daemon
 * can start clean without destroying evidence. new_path receives the new name.
 */
enum state_err state_quarantine(const char *path, int64_t now_wall, char *new_path, size_t cap);

#endif
