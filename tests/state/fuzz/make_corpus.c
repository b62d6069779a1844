/*
 * make_corpus.c - writes the binary journal seeds of corpus/ (journal_*) with the state
 * library itself: make_corpus DIR. The JSON seeds (iwfd 0.1 files) are written by hand.
 * Built with the fuzzers so that it keeps compiling; run by hand when the format changes.
 */
#include "state.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void die(const char *what)
{
	fprintf(stderr, "make_corpus: %s\n", what);
	exit(1);
}

static struct state_mapping mk(uint8_t proto, uint16_t ext, const char *client, uint16_t iport, const char *desc)
{
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.flags = STATE_F_ENABLED;
	m.external_port = ext;
	m.internal_port = iport;
	char text[64];
	if (!strchr(client, ':'))
		snprintf(text, sizeof(text), "::ffff:%s", client);
	else
		snprintf(text, sizeof(text), "%s", client);
	if (inet_pton(AF_INET6, text, &m.internal_client) != 1)
		die("bad address");
	m.owner = m.internal_client;
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &m.external_addr);
	m.lease_duration = 3600;
	for (int i = 0; i < STATE_NONCE_LEN; i++)
		m.nonce[i] = (uint8_t)(ext + i);
	m.description = desc;
	return m;
}

static struct state_table *open_new(const char *path, struct fake_clock *fc)
{
	struct state_clock c = {.mono_ms = fc_mono, .wall_s = fc_wall, .arg = fc};
	struct state_table *t = state_table_new(&c);
	char detail[256];
	unlink(path);
	if (!t || state_table_open(t, path, NULL, detail, sizeof(detail)) != STATE_OK)
		die(detail);
	return t;
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void spit(const char *dir, const char *name, const uint8_t *buf, size_t n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
		die(p);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: make_corpus DIR");
	const char *dir = argv[1];
	char path[512];
	snprintf(path, sizeof(path), "%s/.scratch", dir);
	struct fake_clock fc = {5000000, 1800000000};
	static uint8_t buf[65536];

	/* A day in the life: meta, adds, intents (one of an AddAny), a commit, a withdrawal,
	 * a delete, leases of every kind. */
	struct state_table *t = open_new(path, &fc);
	struct state_meta meta = {.boot_id = 3, .system_update_id = 10};
	for (int i = 0; i < STATE_UUID_LEN; i++)
		meta.uuid_igd[i] = meta.uuid_wan_device[i] = meta.uuid_wan_conn_device[i] = (uint8_t)(i * 17);
	state_table_set_meta(t, &meta);
	uint32_t a, b, c, d, e;
	struct state_mapping m = mk(6, 40000, "192.168.1.10", 8080, "game");
	m.lease_end_ms = fc.mono + 7200000;
	state_table_add(t, &m, &a);
	m = mk(17, 5000, "2001:db8::11", 5000, "voip \xc3\xa9");
	inet_pton(AF_INET6, "2001:db8::9", &m.remote_host);
	m.router_port = 61000;
	state_table_add(t, &m, &b);
	m = mk(6, 41000, "192.168.1.12", 22, "ssh, in flight");
	m.flags |= STATE_F_INTENT;
	m.lease_end_ms = 1; /* due */
	state_table_add(t, &m, &c);
	m = mk(17, 0, "192.168.1.13", 9999, "AddAny in flight");
	m.flags |= STATE_F_INTENT;
	state_table_add(t, &m, &d);
	m = *state_table_get(t, d);
	m.flags &= (uint8_t)~STATE_F_INTENT;
	m.external_port = 41001;
	state_table_update(t, &m);
	m = *state_table_get(t, a);
	m.flags |= STATE_F_INTENT;
	state_table_update(t, &m);
	m = mk(6, 40001, "192.168.1.10", 8080, "second of one endpoint");
	m.flags |= STATE_F_STATIC;
	state_table_add(t, &m, &e);
	state_table_remove(t, b);
	meta.system_update_id++;
	state_table_set_meta(t, &meta);
	state_table_sync(t, NULL, 0);
	size_t n = slurp(path, buf, sizeof(buf));
	spit(dir, "journal_day", buf, n);
	/* The same, cut in its last record, and with a bad CRC in the middle. */
	spit(dir, "journal_torn", buf, n - 30);
	buf[n / 2] ^= 0x40;
	spit(dir, "journal_bad_crc", buf, n);
	buf[n / 2] ^= 0x40;
	/* The same compacted: a snapshot. */
	state_table_compact(t, NULL, 0);
	state_table_free(t);
	n = slurp(path, buf, sizeof(buf));
	spit(dir, "journal_snapshot", buf, n);
	/* The header alone; a newer version; an old (binary) version. */
	spit(dir, "journal_header_only", buf, 16);
	buf[11] = 3;
	spit(dir, "journal_version_future", buf, n);
	buf[11] = 1;
	spit(dir, "journal_version_old", buf, n);

	/* Many updates of a few records: DEL and PUT over one id, long descriptions. */
	t = open_new(path, &fc);
	char desc[STATE_DESC_MAX + 1];
	memset(desc, 'x', STATE_DESC_MAX);
	desc[STATE_DESC_MAX] = '\0';
	for (int i = 0; i < 8; i++) {
		m = mk(i & 1 ? 17 : 6, (uint16_t)(1000 + i % 3), "192.168.1.20", 80, i == 4 ? desc : "r");
		uint32_t id;
		if (state_table_add(t, &m, &id) == STATE_OK && i % 2)
			state_table_remove(t, id);
	}
	state_table_free(t);
	n = slurp(path, buf, sizeof(buf));
	spit(dir, "journal_churn", buf, n);
	unlink(path);
	return 0;
}
