/*
 * journal.c - the table on stable storage: an append-only journal with a CRC-32 per record,
 * group commit, and compaction into a snapshot (state.h).
 *
 * File (every integer big-endian, i.e. network byte order):
 *
 *   header, 16 bytes:
 *     0  magic "IWFDJRNL" (8 bytes)
 *     8  u32 version (STATE_JOURNAL_VERSION = 2; 1 was the JSON file of iwfd 0.1)
 *    12  u32 reserved, written 0, ignored
 *   then records, each:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+---------------+---------------+
 *   |        payload length         |     type      |   reserved 0  |
 *   +-------------------------------+---------------+---------------+
 *   :                    payload (length bytes)                     :
 *   +---------------------------------------------------------------+
 *   |       CRC-32 of the bytes above (length .. end of payload)    |
 *   +---------------------------------------------------------------+
 *
 *   PUT (1), 104 + description bytes: the whole mapping; the last PUT of an id wins.
 *     0 u32 id          4 u8 protocol      5 u8 flags      6 u16 external_port
 *     8 u16 internal_port                 10 u16 router_port
 *    12 u32 lease_duration
 *    16 i32 lease left in seconds at the write (0: never; < 0: already due)
 *    20 i64 wall-clock time of the write (Unix seconds)
 *    28 remote_host   44 internal_client   60 external_addr   76 owner  (16 bytes each)
 *    92 nonce (12 bytes)
 *   104 description (the rest of the payload, 0..255 bytes, no NUL)
 *   DEL (2), 4 bytes: u32 id.
 *   META (3), 60 bytes: uuid_igd, uuid_wan_device, uuid_wan_conn_device (16 bytes each),
 *     u32 boot_id, u32 system_update_id, u32 next id (ids given later are at least this).
 *
 * A snapshot is the header, one META and one PUT per record (committed ones in commit
 * order, then the intents), so replaying it rebuilds the same table and order.
 */
#include "state_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC "IWFDJRNL"
#define HEADER_LEN 16
#define REC_OVERHEAD 8 /* length, type, reserved, CRC */
#define PUT_FIXED 104
#define DEL_LEN 4
#define META_LEN 60
#define COMPACT_MIN ((uint64_t)64 * 1024)
#define FILE_MAX ((size_t)1 << 30) /* no state file is this large: not ours */

enum rec_type { REC_PUT = 1, REC_DEL = 2, REC_META = 3 };

/* ------------------------------------------------------------------ CRC-32 */

/* Table of the reflected CRC-32 (polynomial 0xEDB88320, as in ISO-HDLC, zlib, PNG):
 * entry n is the CRC register after shifting the byte n through it. */
static const uint32_t crc_table[256] = {
	0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
	0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
	0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
	0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
	0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
	0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
	0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
	0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
	0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
	0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
	0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
	0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
	0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
	0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
	0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
	0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
	0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
	0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
	0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
	0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
	0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
	0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
	0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
	0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
	0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
	0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
	0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
	0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
	0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
	0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
	0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
	0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
	0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
	0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
	0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
	0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
	0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
	0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
	0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
	0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
	0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
	0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
	0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t state_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------------------------ writer */

/* A bounded byte writer: the caller sizes buf for what it writes. */
struct wbuf {
	uint8_t *p;
	size_t len;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
	w->p[w->len++] = v;
}

static void put_u16(struct wbuf *w, uint16_t v)
{
	put_u8(w, (uint8_t)(v >> 8));
	put_u8(w, (uint8_t)v);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
	put_u16(w, (uint16_t)(v >> 16));
	put_u16(w, (uint16_t)v);
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

static void put_bytes(struct wbuf *w, const void *b, size_t n)
{
	memcpy(w->p + w->len, b, n);
	w->len += n;
}

/* Start a record at w->len; returns its offset for rec_end. */
static size_t rec_begin(struct wbuf *w, enum rec_type type)
{
	size_t at = w->len;
	put_u16(w, 0); /* length, filled in by rec_end */
	put_u8(w, (uint8_t)type);
	put_u8(w, 0);
	return at;
}

static void rec_end(struct wbuf *w, size_t at)
{
	size_t plen = w->len - at - 4;
	w->p[at] = (uint8_t)(plen >> 8);
	w->p[at + 1] = (uint8_t)plen;
	put_u32(w, state_crc32(0, w->p + at, w->len - at));
}

#define PUT_MAX (REC_OVERHEAD + PUT_FIXED + STATE_DESC_MAX)
#define META_MAX (REC_OVERHEAD + META_LEN)

size_t state_journal_put_size(size_t desc_len)
{
	return REC_OVERHEAD + PUT_FIXED + desc_len;
}

/* Seconds left of a lease ending at end_ms, as stored: 0 never, < 0 due, else rounded up
 * (a lease with 0.3 s left is not "never"). */
static int32_t lease_left_s(uint64_t end_ms, uint64_t now_ms)
{
	if (!end_ms)
		return 0;
	if (end_ms <= now_ms)
		return -1;
	uint64_t s = (end_ms - now_ms + 999) / 1000;
	return s > INT32_MAX ? INT32_MAX : (int32_t)s;
}

/* One PUT record of m into w (PUT_MAX bytes of room). */
static void encode_put(struct wbuf *w, const struct state_mapping *m, uint64_t mono_now, int64_t wall_now)
{
	size_t at = rec_begin(w, REC_PUT);
	put_u32(w, m->id);
	put_u8(w, m->protocol);
	put_u8(w, m->flags);
	put_u16(w, m->external_port);
	put_u16(w, m->internal_port);
	put_u16(w, m->router_port);
	put_u32(w, m->lease_duration);
	put_u32(w, (uint32_t)lease_left_s(m->lease_end_ms, mono_now));
	put_u64(w, (uint64_t)wall_now);
	put_bytes(w, &m->remote_host, 16);
	put_bytes(w, &m->internal_client, 16);
	put_bytes(w, &m->external_addr, 16);
	put_bytes(w, &m->owner, 16);
	put_bytes(w, m->nonce, STATE_NONCE_LEN);
	put_bytes(w, m->description, m->desc_len);
	rec_end(w, at);
}

static void encode_meta(struct wbuf *w, const struct state_table *t)
{
	size_t at = rec_begin(w, REC_META);
	put_bytes(w, t->meta.uuid_igd, STATE_UUID_LEN);
	put_bytes(w, t->meta.uuid_wan_device, STATE_UUID_LEN);
	put_bytes(w, t->meta.uuid_wan_conn_device, STATE_UUID_LEN);
	put_u32(w, t->meta.boot_id);
	put_u32(w, t->meta.system_update_id);
	put_u32(w, t->next_id);
	rec_end(w, at);
}

/* ------------------------------------------------------------------ appending */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Append one record (no fsync: the page cache survives a killed process; sync makes it
 * durable). A failed write stops the appends: the journal no longer holds every change,
 * so the next sync rewrites it from the table (compaction).
 */
static void append(struct state_table *t, const uint8_t *rec, size_t n)
{
	if (t->fd < 0 || t->appends_off)
		return;
	if (write_all(t->fd, rec, n) != 0) {
		t->stats.write_errors++;
		t->appends_off = t->compact_due = true;
		/* Best effort: cut a partial record. The compaction replaces the file anyway. */
		if (ftruncate(t->fd, (off_t)t->stats.journal_bytes) != 0) {
			/* nothing more to do before that compaction */
		}
		return;
	}
	t->stats.bytes_appended += n;
	t->stats.journal_bytes += n;
	t->pending = true;
}

void state_journal_put(struct state_table *t, const struct state_rec *r)
{
	if (t->fd < 0 || t->appends_off)
		return;
	uint8_t buf[PUT_MAX];
	struct wbuf w = {buf, 0};
	encode_put(&w, &r->m, t->clock.mono_ms(t->clock.arg), t->clock.wall_s(t->clock.arg));
	append(t, buf, w.len);
}

void state_journal_del(struct state_table *t, uint32_t id)
{
	uint8_t buf[REC_OVERHEAD + DEL_LEN];
	struct wbuf w = {buf, 0};
	size_t at = rec_begin(&w, REC_DEL);
	put_u32(&w, id);
	rec_end(&w, at);
	append(t, buf, w.len);
}

void state_journal_meta(struct state_table *t)
{
	uint8_t buf[META_MAX];
	struct wbuf w = {buf, 0};
	encode_meta(&w, t);
	append(t, buf, w.len);
}

void state_journal_close(struct state_table *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->dirfd >= 0)
		close(t->dirfd);
	t->fd = t->dirfd = -1;
	free(t->path);
	t->path = NULL;
	t->base = NULL;
	t->pending = t->compact_due = t->appends_off = false;
}

/* ------------------------------------------------------------------ snapshots */

static void encode_header(struct wbuf *w)
{
	put_bytes(w, JOURNAL_MAGIC, 8);
	put_u32(w, STATE_JOURNAL_VERSION);
	put_u32(w, 0);
}

static uint64_t snapshot_size(const struct state_table *t)
{
	return HEADER_LEN + META_MAX + t->put_bytes;
}

/* fsync of the journal's directory, so that a rename in it is durable. A file system that
 * cannot sync directories (EINVAL, ENOTSUP) has nothing more to do. */
static int fsync_dir(struct state_table *t)
{
	t->stats.syncs++;
	if (fsync(t->dirfd) == 0 || errno == EINVAL || errno == ENOTSUP)
		return 0;
	return -1;
}

struct snapshot_out {
	int fd;         /* the new journal, open for appending; -1 if it did not replace path */
	uint64_t size;
	bool dir_synced;
};

/* Buffered writes of a snapshot. */
struct sbuf {
	int fd;
	uint8_t buf[8192];
	struct wbuf w;
	uint64_t total;
	int err; /* errno of the first failure, 0 if none */
};

static void sbuf_flush(struct sbuf *s)
{
	if (!s->err && s->w.len && write_all(s->fd, s->buf, s->w.len) != 0)
		s->err = errno ? errno : EIO;
	s->total += s->w.len;
	s->w.len = 0;
}

static struct wbuf *sbuf_room(struct sbuf *s, size_t n)
{
	if (sizeof(s->buf) - s->w.len < n)
		sbuf_flush(s);
	return &s->w;
}

/*
 * Write the whole table to path.tmp (created afresh, O_NOFOLLOW, mode 0600: whatever was
 * at that name, a symlink included, is unlinked and never written through), fsync, rename
 * over path, fsync the directory. Names are taken relative to the directory opened at
 * state_table_open, so a later chdir or rename of a parent changes nothing. out->fd >= 0:
 * the file replaced path (even if the directory fsync then failed) and is the new journal.
 */
static enum state_err snapshot_write(struct state_table *t, struct snapshot_out *out, char *detail, size_t cap)
{
	out->fd = -1;
	out->size = 0;
	out->dir_synced = false;
	char tmp[NAME_MAX + 1];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", t->base) >= sizeof(tmp)) {
		state_detail(detail, cap, "%s: file name too long", t->path);
		errno = ENAMETOOLONG;
		return STATE_ERR_IO;
	}
	int e = 0, fd = -1;
	const char *what = "create";
	struct sbuf *s = NULL;
	if (unlinkat(t->dirfd, tmp, 0) < 0 && errno != ENOENT) {
		e = errno;
		what = "remove the old";
		goto fail;
	}
	fd = openat(t->dirfd, tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	s = malloc(sizeof(*s));
	if (!s) {
		close(fd);
		unlinkat(t->dirfd, tmp, 0);
		state_detail(detail, cap, "out of memory");
		return STATE_ERR_NOMEM;
	}
	s->fd = fd;
	s->w = (struct wbuf){s->buf, 0};
	s->total = 0;
	s->err = 0;
	uint64_t mono = t->clock.mono_ms(t->clock.arg);
	int64_t wall = t->clock.wall_s(t->clock.arg);
	encode_header(sbuf_room(s, HEADER_LEN));
	encode_meta(sbuf_room(s, META_MAX), t);
	for (size_t i = 0; i < t->n_order; i++)
		encode_put(sbuf_room(s, PUT_MAX), &t->order[i]->m, mono, wall);
	if (t->n_intents)
		for (size_t i = 0; i <= t->by_id.mask; i++)
			if (t->by_id.slot[i] && (t->by_id.slot[i]->m.flags & STATE_F_INTENT))
				encode_put(sbuf_room(s, PUT_MAX), &t->by_id.slot[i]->m, mono, wall);
	sbuf_flush(s);
	e = s->err;
	out->size = s->total;
	free(s);
	what = "write";
	if (!e) {
		t->stats.syncs++;
		if (fsync(fd) != 0) {
			e = errno;
			what = "fsync";
		}
	}
	if (!e && renameat(t->dirfd, tmp, t->dirfd, t->base) != 0) {
		e = errno;
		what = "rename";
	}
	if (e) {
		close(fd);
		unlinkat(t->dirfd, tmp, 0);
		goto fail;
	}
	out->fd = fd;
	t->stats.bytes_snapshot += out->size;
	if (fsync_dir(t) != 0) {
		e = errno;
		t->stats.write_errors++;
		state_detail(detail, cap, "%s: fsync of its directory: %s", t->path, strerror(e));
		errno = e;
		return STATE_ERR_IO;
	}
	out->dir_synced = true;
	return STATE_OK;
fail:
	t->stats.write_errors++;
	state_detail(detail, cap, "cannot %s %s.tmp: %s", what, t->path, strerror(e));
	errno = e;
	return STATE_ERR_IO;
}

/* Take a written snapshot as the journal. */
static void adopt(struct state_table *t, const struct snapshot_out *out)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = out->fd;
	t->stats.journal_bytes = out->size;
	t->pending = false;
	t->appends_off = false;
	t->compact_due = !out->dir_synced; /* the rename may not be durable yet: again next time */
}

static enum state_err compact(struct state_table *t, char *detail, size_t cap)
{
	struct snapshot_out out;
	enum state_err e = snapshot_write(t, &out, detail, cap);
	if (out.fd >= 0) {
		adopt(t, &out);
		t->stats.compactions++;
	}
	return e;
}

enum state_err state_table_compact(struct state_table *t, char *detail, size_t detail_cap)
{
	if (t->fd < 0)
		return STATE_OK;
	return compact(t, detail, detail_cap);
}

/*
 * Open the journal's directory without following a symlink someone else could have planted
 * (O_NOFOLLOW on the last component). A symlink there is followed only when it belongs to
 * root or to us and the directory holding it is written by its owner alone, or is sticky
 * (/tmp: nobody may replace another's entry): e.g. OpenWrt-style /var -> /tmp layouts.
 */
static int open_dir_nofollow(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat link, par;
	if (fd >= 0 || (errno != ELOOP && errno != ENOTDIR))
		return fd;
	int e = errno; /* a symlink gives ENOTDIR (O_DIRECTORY) or ELOOP */
	if (lstat(dir, &link) != 0 || !S_ISLNK(link.st_mode)) {
		errno = e;
		return -1;
	}
	char parent[PATH_MAX];
	if ((size_t)snprintf(parent, sizeof(parent), "%s", dir) >= sizeof(parent)) {
		errno = ELOOP;
		return -1;
	}
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	uid_t me = geteuid();
	if (stat(parent, &par) == 0 && (link.st_uid == 0 || link.st_uid == me) &&
	    (par.st_uid == 0 || par.st_uid == me) &&
	    (!(par.st_mode & (S_IWGRP | S_IWOTH)) || (par.st_mode & S_ISVTX)))
		return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	errno = ELOOP;
	return -1;
}

/*
 * Is the file at the journal's path still the one we append to? Not when it was deleted or
 * moved away, or a filesystem was mounted over its directory (a router remounting its
 * storage). Then the directory is looked up again by name and the table written anew.
 */
static bool still_at_path(struct state_table *t)
{
	struct stat at_path, ours, dir_at_path, dir_ours;
	if (t->path[0] != '/' || fstat(t->fd, &ours) != 0)
		return true; /* relative paths are looked up through the directory held open */
	char *slash = strrchr(t->path, '/');
	*slash = '\0';
	const char *dir = slash == t->path ? "/" : t->path;
	if (stat(dir, &dir_at_path) == 0 && fstat(t->dirfd, &dir_ours) == 0 &&
	    (dir_at_path.st_dev != dir_ours.st_dev || dir_at_path.st_ino != dir_ours.st_ino)) {
		int dfd = open_dir_nofollow(dir);
		if (dfd >= 0) {
			close(t->dirfd);
			t->dirfd = dfd;
		}
	}
	*slash = '/';
	return stat(t->path, &at_path) == 0 && at_path.st_dev == ours.st_dev && at_path.st_ino == ours.st_ino;
}

enum state_err state_table_sync(struct state_table *t, char *detail, size_t detail_cap)
{
	if (t->fd < 0 || (!t->pending && !t->compact_due))
		return STATE_OK;
	if (!still_at_path(t))
		t->compact_due = true;
	enum state_err rc = STATE_OK;
	uint64_t snap = snapshot_size(t), bound = snap * 4 > COMPACT_MIN ? snap * 4 : COMPACT_MIN;
	if (t->compact_due || t->stats.journal_bytes > bound) {
		rc = compact(t, detail, detail_cap);
		if (rc == STATE_OK)
			return STATE_OK; /* the snapshot was fsynced: everything is durable */
	}
	if (!t->pending)
		return rc; /* the failed compaction */
	/* Group commit: one fdatasync for everything appended since the last one. */
	t->stats.syncs++;
	if (fdatasync(t->fd) != 0) {
		int e = errno;
		t->stats.write_errors++;
		/* After a failed fdatasync the page cache cannot be trusted: rewrite it all. */
		t->appends_off = t->compact_due = true;
		if (rc == STATE_OK)
			state_detail(detail, detail_cap, "fdatasync %s: %s", t->path, strerror(e));
		errno = e;
		return STATE_ERR_IO;
	}
	t->pending = false;
	return rc; /* STATE_OK, or the failed compaction (what was appended is durable anyway) */
}

void state_table_stats(const struct state_table *t, struct state_stats *out)
{
	*out = t->stats;
}

/* ------------------------------------------------------------------ reading */

/* A bounds-checked reader: a read past the end sets bad and yields zeros. */
struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *get_bytes(struct rbuf *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *b = r->p + r->off;
	r->off += n;
	return b;
}

static uint8_t get_u8(struct rbuf *r)
{
	const uint8_t *b = get_bytes(r, 1);
	return b ? b[0] : 0;
}

static uint16_t get_u16(struct rbuf *r)
{
	const uint8_t *b = get_bytes(r, 2);
	return b ? (uint16_t)(b[0] << 8 | b[1]) : 0;
}

static uint32_t get_u32(struct rbuf *r)
{
	const uint8_t *b = get_bytes(r, 4);
	return b ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
}

static uint64_t get_u64(struct rbuf *r)
{
	uint64_t hi = get_u32(r);
	return hi << 32 | get_u32(r);
}

static void get_copy(struct rbuf *r, void *out, size_t n)
{
	const uint8_t *b = get_bytes(r, n);
	if (b)
		memcpy(out, b, n);
	else
		memset(out, 0, n);
}

uint64_t state_lease_end(int64_t left_s, uint64_t mono_now)
{
	if (left_s <= 0)
		return mono_now ? mono_now : 1; /* due now; 0 would mean "never" */
	if ((uint64_t)left_s > (UINT64_MAX - mono_now) / 1000)
		return UINT64_MAX;
	return mono_now + (uint64_t)left_s * 1000;
}

/* What a replay needs besides the table. */
struct replay {
	int64_t wall_now;
	uint64_t mono_now;
	uint32_t max_id;   /* highest id seen, deleted ones included */
	uint32_t meta_next_id;
};

/* Apply one record whose CRC was good. STATE_ERR_FORMAT: it makes no sense (the replay
 * ends before it); STATE_ERR_NOMEM. */
static enum state_err apply(struct state_table *t, struct replay *rp, uint8_t type, const uint8_t *p,
			    size_t len)
{
	struct rbuf r = {p, len, 0, false};
	switch (type) {
	case REC_PUT: {
		if (len < PUT_FIXED || len > PUT_FIXED + STATE_DESC_MAX)
			return STATE_ERR_FORMAT;
		struct state_mapping m;
		memset(&m, 0, sizeof(m));
		m.id = get_u32(&r);
		m.protocol = get_u8(&r);
		m.flags = get_u8(&r);
		m.external_port = get_u16(&r);
		m.internal_port = get_u16(&r);
		m.router_port = get_u16(&r);
		m.lease_duration = get_u32(&r);
		int32_t left = (int32_t)get_u32(&r);
		int64_t written = (int64_t)get_u64(&r);
		get_copy(&r, &m.remote_host, 16);
		get_copy(&r, &m.internal_client, 16);
		get_copy(&r, &m.external_addr, 16);
		get_copy(&r, &m.owner, 16);
		get_copy(&r, m.nonce, STATE_NONCE_LEN);
		char desc[STATE_DESC_MAX + 1];
		size_t dl = len - r.off;
		get_copy(&r, desc, dl);
		desc[dl] = '\0';
		if (r.bad || !m.id || !m.protocol || memchr(desc, '\0', dl))
			return STATE_ERR_FORMAT;
		m.description = desc;
		/* state.h "Time": the wall time elapsed since the write counts only when both
		 * ends are sane; a clock step never expires a lease at once. */
		if (left > 0) {
			int64_t elapsed = 0;
			if (written >= STATE_WALL_SANE_MIN && rp->wall_now >= STATE_WALL_SANE_MIN &&
			    rp->wall_now > written)
				elapsed = rp->wall_now - written;
			m.lease_end_ms = state_lease_end((int64_t)left - elapsed, rp->mono_now);
		} else {
			m.lease_end_ms = left ? state_lease_end(0, rp->mono_now) : 0;
		}
		enum state_err e = state_rec_put(t, &m);
		if (e != STATE_OK)
			return e == STATE_ERR_NOMEM ? e : STATE_ERR_FORMAT;
		if (m.id > rp->max_id)
			rp->max_id = m.id;
		return STATE_OK;
	}
	case REC_DEL: {
		if (len != DEL_LEN)
			return STATE_ERR_FORMAT;
		uint32_t id = get_u32(&r);
		if (!id)
			return STATE_ERR_FORMAT;
		state_rec_del(t, id); /* an unknown id: nothing to do */
		if (id > rp->max_id)
			rp->max_id = id;
		return STATE_OK;
	}
	case REC_META:
		if (len != META_LEN)
			return STATE_ERR_FORMAT;
		get_copy(&r, t->meta.uuid_igd, STATE_UUID_LEN);
		get_copy(&r, t->meta.uuid_wan_device, STATE_UUID_LEN);
		get_copy(&r, t->meta.uuid_wan_conn_device, STATE_UUID_LEN);
		t->meta.boot_id = get_u32(&r);
		t->meta.system_update_id = get_u32(&r);
		rp->meta_next_id = get_u32(&r);
		return STATE_OK;
	default:
		return STATE_ERR_FORMAT;
	}
}

/* Replay the records of buf (after the header). *good_end: the end of the last record
 * applied. Only STATE_ERR_NOMEM is an error: anything else ends the replay. */
static enum state_err replay(struct state_table *t, struct replay *rp, const uint8_t *buf, size_t len,
			     size_t *good_end, size_t *records)
{
	size_t off = HEADER_LEN;
	*good_end = off;
	while (len - off >= REC_OVERHEAD) {
		struct rbuf r = {buf + off, len - off, 0, false};
		size_t plen = get_u16(&r);
		uint8_t type = get_u8(&r);
		uint8_t reserved = get_u8(&r);
		const uint8_t *payload = get_bytes(&r, plen);
		uint32_t crc = get_u32(&r);
		if (r.bad || reserved != 0)
			break; /* torn */
		if (state_crc32(0, buf + off, 4 + plen) != crc)
			break; /* corrupt */
		enum state_err e = apply(t, rp, type, payload, plen);
		if (e == STATE_ERR_NOMEM)
			return e;
		if (e != STATE_OK)
			break;
		off += r.off;
		*good_end = off;
		(*records)++;
	}
	return STATE_OK;
}

/* The whole file; FILE_MAX at most. */
static enum state_err read_all(int fd, uint8_t **out, size_t *out_len)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return STATE_ERR_IO;
	if (!S_ISREG(st.st_mode))
		return STATE_ERR_FORMAT;
	size_t cap = st.st_size > 0 && (uint64_t)st.st_size < FILE_MAX ? (size_t)st.st_size + 1 : 4096;
	size_t len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return STATE_ERR_NOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > FILE_MAX) {
				free(buf);
				return STATE_ERR_FORMAT;
			}
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return STATE_ERR_NOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			errno = e;
			return STATE_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	return STATE_OK;
}

/* ------------------------------------------------------------------ opening */

enum state_err state_table_open(struct state_table *t, const char *path, struct state_open_report *report,
				char *detail, size_t detail_cap)
{
	struct state_open_report rep;
	memset(&rep, 0, sizeof(rep));
	if (report)
		*report = rep;
	if (detail && detail_cap)
		detail[0] = '\0';
	if (!path || !t->has_clock || t->fd >= 0 || t->by_id.n) {
		state_detail(detail, detail_cap, "table already open, not empty, or without a clock");
		return STATE_ERR_INVAL;
	}
	struct state_meta meta0 = t->meta;
	uint32_t next_id0 = t->next_id;
	uint8_t *buf = NULL;
	size_t len = 0;
	enum state_err e;
	int saved_errno = 0;
	struct snapshot_out out = {.fd = -1};
	t->path = strdup(path);
	if (!t->path) {
		state_detail(detail, detail_cap, "out of memory");
		return STATE_ERR_NOMEM;
	}
	/* The directory is held open: compactions create and rename in it, whatever the
	 * current directory is later. */
	char *slash = strrchr(t->path, '/');
	t->base = slash ? slash + 1 : t->path;
	if (slash)
		*slash = '\0';
	t->dirfd = open_dir_nofollow(!slash ? "." : slash == t->path ? "/" : t->path);
	if (slash)
		*slash = '/';
	int fd = -1;
	if (t->dirfd < 0 || !*t->base) {
		saved_errno = t->dirfd < 0 ? errno : EISDIR;
		state_detail(detail, detail_cap, "cannot open the directory of %s: %s", path, strerror(saved_errno));
		e = STATE_ERR_IO;
		goto fail;
	}
	/* O_APPEND: every write goes to the end, whatever was read. */
	fd = openat(t->dirfd, t->base, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		saved_errno = errno;
		state_detail(detail, detail_cap, "cannot open %s: %s", path, strerror(saved_errno));
		e = STATE_ERR_IO;
		goto fail;
	}
	if (fd >= 0) {
		e = read_all(fd, &buf, &len);
		if (e != STATE_OK) {
			saved_errno = errno;
			state_detail(detail, detail_cap, "cannot read %s: %s", path,
				     e == STATE_ERR_IO ? strerror(saved_errno)
				     : e == STATE_ERR_NOMEM ? "out of memory" : "not a regular file of a sane size");
			goto fail;
		}
	}
	int64_t wall_now = t->clock.wall_s(t->clock.arg);
	uint64_t mono_now = t->clock.mono_ms(t->clock.arg);
	size_t ws = 0;
	while (ws < len && (buf[ws] == ' ' || buf[ws] == '\t' || buf[ws] == '\r' || buf[ws] == '\n'))
		ws++;
	if (fd < 0 || len == 0) {
		/* No file, or an empty one (nothing to lose): a new journal. */
		rep.created = true;
	} else if (len >= 8 && memcmp(buf, JOURNAL_MAGIC, 8) == 0) {
		struct rbuf r = {buf, len, 8, false};
		uint32_t version = get_u32(&r);
		if (r.bad || version < STATE_JOURNAL_VERSION) {
			state_detail(detail, detail_cap, "%s: %s", path, r.bad ? "truncated header" : "bad version");
			e = STATE_ERR_FORMAT;
			goto fail;
		}
		if (version > STATE_JOURNAL_VERSION) {
			state_detail(detail, detail_cap, "%s: journal version %u, written by a newer iwfd", path,
				     (unsigned)version);
			e = STATE_ERR_VERSION;
			goto fail;
		}
		if (len < HEADER_LEN) {
			state_detail(detail, detail_cap, "%s: truncated header", path);
			e = STATE_ERR_FORMAT;
			goto fail;
		}
		struct replay rp = {.wall_now = wall_now, .mono_now = mono_now};
		size_t good_end;
		e = replay(t, &rp, buf, len, &good_end, &rep.records);
		if (e != STATE_OK) {
			state_detail(detail, detail_cap, "out of memory");
			goto fail;
		}
		state_ids_above(t, rp.max_id);
		if (rp.meta_next_id)
			state_ids_above(t, rp.meta_next_id - 1);
		rep.torn_bytes = len - good_end;
		t->fd = fd;
		fd = -1;
		t->stats.journal_bytes = good_end;
		if (rep.torn_bytes && ftruncate(t->fd, (off_t)good_end) != 0) {
			/* Cannot cut it: append nothing after it; the next sync rewrites the file. */
			t->stats.write_errors++;
			t->appends_off = t->compact_due = true;
		}
	} else if (ws < len && buf[ws] == '{') {
		e = state_json_import(t, (const char *)buf, len, wall_now, mono_now, &rep.records, detail,
				      detail_cap);
		if (e != STATE_OK)
			goto fail;
		rep.imported_json = true;
	} else {
		state_detail(detail, detail_cap, "%s: neither a journal nor a JSON state file", path);
		e = STATE_ERR_FORMAT;
		goto fail;
	}
	if (rep.created || rep.imported_json) {
		/* The new journal replaces the file at once (atomically: a crash leaves the old). */
		e = snapshot_write(t, &out, detail, detail_cap);
		if (out.fd < 0) {
			saved_errno = errno;
			goto fail;
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
		adopt(t, &out);
	}
	free(buf);
	rep.mappings = t->by_id.n;
	rep.intents = t->n_intents;
	if (report)
		*report = rep;
	return STATE_OK;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	state_journal_close(t);
	state_recs_clear(t);
	t->meta = meta0;
	t->next_id = next_id0;
	if (saved_errno)
		errno = saved_errno;
	return e;
}

/* ------------------------------------------------------------------ quarantine */

enum state_err state_quarantine(const char *path, int64_t now_wall, char *new_path, size_t cap)
{
	char buf[PATH_MAX];
	if ((size_t)snprintf(buf, sizeof(buf), "%s.corrupt-%lld", path, (long long)now_wall) >= sizeof(buf))
		return STATE_ERR_INVAL;
	if (rename(path, buf) < 0)
		return STATE_ERR_IO;
	if (new_path && cap)
		snprintf(new_path, cap, "%s", buf);
	return STATE_OK;
}
