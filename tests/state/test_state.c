/* test_state.c - the local mapping table (seed 004 §5.4) and its atomic storage. */
#include "state.h"
#include "../testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct state_mapping mk(uint8_t proto, uint16_t ext, const char *client, const char *rh)
{
	struct state_mapping m;
	memset(&m, 0, sizeof(m));
	m.protocol = proto;
	m.external_port = ext;
	m.internal_port = (uint16_t)(ext + 1);
	snprintf(m.internal_client, sizeof(m.internal_client), "%s", client);
	snprintf(m.remote_host, sizeof(m.remote_host), "%s", rh);
	snprintf(m.external_addr, sizeof(m.external_addr), "198.51.100.7");
	snprintf(m.owner, sizeof(m.owner), "%s", client);
	snprintf(m.description, sizeof(m.description), "desc \"%u\" & <x>", ext);
	m.enabled = true;
	m.lease_duration = 3600;
	m.lease_end = 1700000000 + ext;
	for (int i = 0; i < STATE_NONCE_LEN; i++)
		m.nonce[i] = (uint8_t)(ext * 7 + i);
	return m;
}

static void test_table(void)
{
	struct state_table *t = state_table_new();
	CHECK(t != NULL);
	struct state_mapping a = mk(6, 40000, "192.168.1.10", "");
	struct state_mapping b = mk(17, 40000, "192.168.1.11", "");
	struct state_mapping c = mk(6, 40000, "192.168.1.12", "203.0.113.9");
	CHECK_EQ_INT(state_table_add(t, &a), STATE_OK);
	CHECK_EQ_INT(state_table_add(t, &b), STATE_OK); /* other protocol: no conflict */
	CHECK_EQ_INT(state_table_add(t, &c), STATE_OK); /* other remote host: no conflict */
	CHECK_EQ_INT(state_table_add(t, &a), STATE_ERR_EXISTS);
	struct state_mapping bad = mk(1, 5, "x", "");
	CHECK_EQ_INT(state_table_add(t, &bad), STATE_ERR_INVAL);
	bad = mk(6, 0, "x", "");
	CHECK_EQ_INT(state_table_add(t, &bad), STATE_ERR_INVAL);
	CHECK_EQ_INT(state_table_count(t), 3);
	CHECK_EQ_INT(state_table_find(t, 6, 40000, ""), 0);
	CHECK_EQ_INT(state_table_find(t, 6, 40000, NULL), 0);
	CHECK_EQ_INT(state_table_find(t, 17, 40000, ""), 1);
	CHECK_EQ_INT(state_table_find(t, 6, 40000, "203.0.113.9"), 2);
	CHECK_EQ_INT(state_table_find(t, 6, 40001, ""), -1);
	/* Removal keeps insertion order of the rest (GetGenericPortMappingEntry indexes). */
	CHECK_EQ_INT(state_table_remove(t, 0), STATE_OK);
	CHECK_EQ_INT(state_table_count(t), 2);
	CHECK(strcmp(state_table_get(t, 0)->internal_client, "192.168.1.11") == 0);
	CHECK(strcmp(state_table_get(t, 1)->internal_client, "192.168.1.12") == 0);
	CHECK(state_table_get(t, 2) == NULL);
	CHECK_EQ_INT(state_table_remove(t, 2), STATE_ERR_NOTFOUND);
	/* Growth beyond the first allocation. */
	for (unsigned p = 1; p <= 1000; p++) {
		struct state_mapping m = mk(6, (uint16_t)(1000 + p), "192.168.1.20", "");
		CHECK_EQ_INT(state_table_add(t, &m), STATE_OK);
	}
	CHECK_EQ_INT(state_table_count(t), 1002);
	CHECK_EQ_INT(state_table_find(t, 6, 2000, ""), 1001);
	state_table_free(t);
	state_table_free(NULL);
}

static void test_roundtrip(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	struct state_table *t = state_table_new(), *u = state_table_new();
	struct state_meta meta = {.boot_id = 7, .system_update_id = 42};
	snprintf(meta.uuid_igd, sizeof(meta.uuid_igd), "11111111-2222-4333-8444-555555555555");
	snprintf(meta.uuid_wan_device, sizeof(meta.uuid_wan_device), "a");
	snprintf(meta.uuid_wan_conn_device, sizeof(meta.uuid_wan_conn_device), "b");
	struct state_mapping a = mk(6, 40000, "192.168.1.10", "");
	struct state_mapping b = mk(17, 5000, "192.168.1.11", "203.0.113.9");
	b.lease_end = 0;
	b.lease_duration = 0;
	b.router_port = 61000;
	b.enabled = false;
	state_table_add(t, &a);
	state_table_add(t, &b);

	char detail[256];
	struct state_meta got = {0};
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_ERR_IO);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK_EQ_INT(state_save(t, &meta, path, detail, sizeof(detail)), STATE_OK);
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(access(tmp, F_OK) != 0); /* the temporary file was renamed away */
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(state_table_count(u), 2);
	CHECK(memcmp(state_table_get(u, 0), &a, sizeof(a)) == 0);
	CHECK(memcmp(state_table_get(u, 1), &b, sizeof(b)) == 0);
	CHECK_EQ_INT(got.boot_id, 7);
	CHECK_EQ_INT(got.system_update_id, 42);
	CHECK(strcmp(got.uuid_igd, meta.uuid_igd) == 0);

	/* Write-ahead intents survive a save/load and are not entries. */
	struct state_mapping i1 = mk(6, 41000, "192.168.1.30", "");
	struct state_mapping i2 = mk(17, 0, "192.168.1.31", ""); /* AddAny: port not known yet */
	i2.nonce[0] = 0xee;
	CHECK_EQ_INT(state_table_intent_add(t, &i1), STATE_OK);
	CHECK_EQ_INT(state_table_intent_add(t, &i2), STATE_OK);
	CHECK_EQ_INT(state_table_count(t), 2);
	CHECK_EQ_INT(state_table_find(t, 6, 41000, ""), -1);
	CHECK_EQ_INT(state_save(t, &meta, path, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_OK);
	CHECK_EQ_INT(state_table_count(u), 2);
	CHECK_EQ_INT(state_table_intent_count(u), 2);
	CHECK(memcmp(state_table_intent_get(u, 1), &i2, sizeof(i2)) == 0);
	CHECK(state_table_intent_get(u, 2) == NULL);
	CHECK_EQ_INT(state_table_intent_remove(u, i1.nonce), STATE_OK);
	CHECK_EQ_INT(state_table_intent_remove(u, i1.nonce), STATE_ERR_NOTFOUND);
	CHECK_EQ_INT(state_table_intent_count(u), 1);
	CHECK(state_table_intent_get(u, 0)->nonce[0] == 0xee);
	CHECK_EQ_INT(state_table_intent_remove(t, i1.nonce), STATE_OK);
	CHECK_EQ_INT(state_table_intent_remove(t, i2.nonce), STATE_OK);
	state_table_clear(u);
	CHECK_EQ_INT(state_table_intent_count(u), 0);

	/* A corrupt file fails as a whole and can be quarantined. */
	FILE *f = fopen(path, "w");
	fputs("{\"version\": 1, \"mappings\": [", f);
	fclose(f);
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_ERR_FORMAT);
	char moved[600];
	CHECK_EQ_INT(state_quarantine(path, 1234, moved, sizeof(moved)), STATE_OK);
	CHECK(strstr(moved, ".corrupt-1234") != NULL);
	CHECK(access(path, F_OK) != 0);
	CHECK(access(moved, F_OK) == 0);
	unlink(moved);

	/* A newer version is refused as such. */
	f = fopen(path, "w");
	fputs("{\"version\": 99}", f);
	fclose(f);
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_ERR_VERSION);

	/* A bad entry (port out of range, bad nonce) makes the whole load fail, leaves u empty. */
	state_save(t, &meta, path, NULL, 0);
	f = fopen(path, "r+");
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	char *p = strstr(buf, "\"internal_port\": 40001");
	CHECK(p != NULL);
	if (p) {
		memcpy(p, "\"internal_port\": 99999", 22);
		rewind(f);
		fwrite(buf, 1, n, f);
	}
	fclose(f);
	CHECK_EQ_INT(state_load(u, &got, path, detail, sizeof(detail)), STATE_ERR_FORMAT);
	CHECK_EQ_INT(state_table_count(u), 0);
	CHECK(strstr(detail, "#0") != NULL);

	/* Saving into a directory that does not exist fails and says where. */
	char nodir[600];
	snprintf(nodir, sizeof(nodir), "%s/missing/state.json", dir);
	CHECK_EQ_INT(state_save(t, &meta, nodir, detail, sizeof(detail)), STATE_ERR_IO);
	CHECK(strstr(detail, "missing") != NULL);
	unlink(path);
	state_table_free(t);
	state_table_free(u);
}

int main(void)
{
	char dir[] = "/tmp/iwfd-test-state-XXXXXX";
	if (!mkdtemp(dir))
		return 2;
	test_table();
	test_roundtrip(dir);
	rmdir(dir);
	return tu_finish("test_state");
}
