/*
 * state.h - the local port-mapping table (seed 004 §5.4) and its stable storage.
 *
 * The table is the source of truth of iwfd: an image of the carrier's mapping table for
 * this subscriber. Each entry holds what is needed to answer UPnP reads and to replay or
 * delete the PCP mapping after a reboot (including the PCP nonce). Persistence is a
 * versioned JSON document written atomically (temporary file, fsync, rename).
 *
 * state/ knows neither UPnP nor PCP: it stores plain values. It does not log; functions
 * return enum state_err and, for load/save, a human-readable detail.
 */
#ifndef IWFD_STATE_H
#define IWFD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_FILE_VERSION 1
#define STATE_NONCE_LEN 12
#define STATE_ADDR_MAX 46   /* INET6_ADDRSTRLEN */
#define STATE_HOST_MAX 255
#define STATE_DESC_MAX 255
#define STATE_UUID_MAX 40

enum state_err {
	STATE_OK = 0,
	STATE_ERR_NOMEM,    /* allocation failed */
	STATE_ERR_EXISTS,   /* an entry with the same key is already in the table */
	STATE_ERR_NOTFOUND, /* no such entry / index */
	STATE_ERR_IO,       /* file could not be read or written (errno kept) */
	STATE_ERR_FORMAT,   /* file is not a valid state document */
	STATE_ERR_VERSION,  /* file written by a newer, unknown format version */
	STATE_ERR_INVAL,    /* invalid argument (field out of range) */
};
const char *state_err_name(enum state_err err);

/* One mapping. Plain values, copied in and out of the table. */
struct state_mapping {
	uint8_t protocol;                 /* 6 TCP, 17 UDP */
	uint16_t external_port;           /* granted by the PCP server */
	char external_addr[STATE_ADDR_MAX]; /* granted, text; "" unknown */
	char remote_host[STATE_HOST_MAX + 1]; /* "" = any remote host */
	char internal_client[STATE_ADDR_MAX];
	uint16_t internal_port;
	uint16_t router_port;             /* cascaded NAT: port on the router's WAN side; 0 = none */
	char description[STATE_DESC_MAX + 1];
	char owner[STATE_ADDR_MAX];       /* address of the control point that created it */
	bool enabled;
	uint32_t lease_duration;          /* UPnP lease asked for, seconds; 0 = infinite */
	int64_t lease_end;                /* wall clock (Unix seconds) when it ends; 0 = never */
	uint8_t nonce[STATE_NONCE_LEN];   /* PCP mapping nonce */
};

/* Identity kept across restarts. */
struct state_meta {
	char uuid_igd[STATE_UUID_MAX], uuid_wan_device[STATE_UUID_MAX],
		uuid_wan_conn_device[STATE_UUID_MAX]; /* "" = not yet generated */
	uint32_t boot_id;   /* incremented by the daemon at each start */
	uint32_t system_update_id;
};

struct state_table;

/* New empty table. NULL on allocation failure. */
struct state_table *state_table_new(void);
/* Free the table. NULL is a no-op. */
void state_table_free(struct state_table *t);

size_t state_table_count(const struct state_table *t);

/*
 * Add a copy of *m at the end (UPnP's generic index order is insertion order).
 * STATE_ERR_EXISTS when (protocol, external_port, remote_host) is taken.
 */
enum state_err state_table_add(struct state_table *t, const struct state_mapping *m);

/* Index of the entry with this key, or -1. remote_host NULL is the same as "". */
long state_table_find(const struct state_table *t, uint8_t protocol, uint16_t external_port,
		      const char *remote_host);

/* Entry at index i (0-based), borrowed: valid until the table is next modified. NULL if
 * out of range. */
const struct state_mapping *state_table_get(const struct state_table *t, size_t i);
/* Mutable access for updating lease, description, nonce ... in place. The key fields
 * (protocol, external_port, remote_host) must not be changed through it. */
struct state_mapping *state_table_get_mut(struct state_table *t, size_t i);

/* Remove entry i; later entries move down by one. */
enum state_err state_table_remove(struct state_table *t, size_t i);
/* Remove every entry and every intent. */
void state_table_clear(struct state_table *t);

/*
 * Write-ahead intents: a mapping whose MAP request is about to be sent but that the server
 * has not confirmed yet. Saved with the table so that, after a crash, the daemon can delete
 * what the server may have created meanwhile (lifetime-0 MAP with the intent's nonce) and
 * leave no orphan on the carrier. Intents are not entries: find/get/count ignore them.
 */
enum state_err state_table_intent_add(struct state_table *t, const struct state_mapping *m);
/* Remove the intent with this nonce; STATE_ERR_NOTFOUND if there is none. */
enum state_err state_table_intent_remove(struct state_table *t, const uint8_t nonce[STATE_NONCE_LEN]);
size_t state_table_intent_count(const struct state_table *t);
/* Intent i, borrowed until the next modification; NULL if out of range. */
const struct state_mapping *state_table_intent_get(const struct state_table *t, size_t i);

/*
 * Write the table and meta to path atomically: path.tmp, fsync, rename, fsync of the
 * directory. On failure the old file is untouched; detail (may be NULL) receives a
 * message of at most detail_cap bytes.
 */
enum state_err state_save(const struct state_table *t, const struct state_meta *meta,
			  const char *path, char *detail, size_t detail_cap);

/*
 * Read path into t (which is cleared first) and meta. STATE_ERR_IO with errno ENOENT
 * when there is no file yet. Entries that fail validation make the whole load fail with
 * STATE_ERR_FORMAT (nothing half-loaded).
 */
enum state_err state_load(struct state_table *t, struct state_meta *meta, const char *path,
			  char *detail, size_t detail_cap);

/*
 * Move an unreadable state file aside to "<path>.corrupt-<unix time>" so that the daemon
 * can start clean without destroying evidence. new_path receives the new name.
 */
enum state_err state_quarantine(const char *path, int64_t now_wall, char *new_path, size_t cap);

#endif
