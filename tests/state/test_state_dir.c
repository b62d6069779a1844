/*
 * test_state_dir.c - the state directory is not reached through a symlink that someone else
 * could have planted (issue "A hostile LAN and a curious WAN": every open of a state path
 * refuses symlinks where an attacker could plant one). The journal and its temporary file
 * are opened O_NOFOLLOW already (test_state's test_nofollow); this is about the directory:
 *  - in a directory writable by others (0777, e.g. a shared /tmp-like place), a symlink at
 *    the state directory's name is refused (ELOOP) and nothing is created at its target;
 *  - in a sticky world-writable directory (/tmp), a symlink owned by another user is refused
 *    (as root only: the test gives the link away with lchown);
 *  - in a directory only its owner writes (0700; OpenWrt's /var -> /tmp style), a symlink
 *    placed by root or by us is followed as before.
 */
#include "state.h"
#include "../testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t t_mono(void *arg)
{
	(void)arg;
	return 1000000;
}

static int64_t t_wall(void *arg)
{
	(void)arg;
	return 1800000000;
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* state_table_open(parent/st/journal) where parent/st -> victim; parent gets mode. */
static enum state_err open_through_link(const char *root, mode_t mode, bool give_away, int *err)
{
	char parent[512], victim[512], link[600], path[700];
	snprintf(parent, sizeof(parent), "%s/parent%o%s", root, (unsigned)mode, give_away ? "g" : "");
	snprintf(victim, sizeof(victim), "%s/victim%o%s", root, (unsigned)mode, give_away ? "g" : "");
	snprintf(link, sizeof(link), "%s/st", parent);
	snprintf(path, sizeof(path), "%s/journal", link);
	CHECK(mkdir(parent, 0700) == 0 && mkdir(victim, 0700) == 0);
	CHECK(symlink(victim, link) == 0);
	if (give_away)
		CHECK(lchown(link, 65534, 65534) == 0);
	CHECK(chmod(parent, mode) == 0);
	struct state_clock clock = { .mono_ms = t_mono, .wall_s = t_wall };
	struct state_table *t = state_table_new(&clock);
	char detail[256] = "";
	errno = 0;
	enum state_err e = state_table_open(t, path, NULL, detail, sizeof(detail));
	*err = errno;
	if (e == STATE_OK) {
		struct state_mapping m;
		memset(&m, 0, sizeof(m));
		m.protocol = 6;
		m.external_port = m.internal_port = 40000;
		m.flags = STATE_F_ENABLED;
		CHECK_EQ(state_table_add(t, &m, NULL), STATE_OK);
		CHECK_EQ(state_table_sync(t, detail, sizeof(detail)), STATE_OK);
	}
	state_table_free(t);
	bool written = entries(victim) != 0;
	CHECKF(written == (e == STATE_OK), "%s: open %d, victim %s", path, (int)e, written ? "written" : "empty");
	return e;
}

int main(void)
{
	char root[] = "/tmp/iwfd-statedir-XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	int err = 0;

	/* world-writable, not sticky: anyone could have put the link there */
	CHECK_EQ(open_through_link(root, 0777, false, &err), STATE_ERR_IO);
	CHECK_EQ(err, ELOOP);
	/* group-writable: the same */
	CHECK_EQ(open_through_link(root, 0770, false, &err), STATE_ERR_IO);
	CHECK_EQ(err, ELOOP);
	/* sticky and world-writable (/tmp), the link belongs to someone else */
	if (geteuid() == 0) {
		CHECK_EQ(open_through_link(root, 01777, true, &err), STATE_ERR_IO);
		CHECK_EQ(err, ELOOP);
	}
	/* only its owner writes the parent: a symlinked state directory still works */
	CHECK_EQ(open_through_link(root, 0700, false, &err), STATE_OK);
	/* sticky /tmp-like parent, our own link: followed */
	CHECK_EQ(open_through_link(root, 01777, false, &err), STATE_OK);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
	return tu_finish("test_state_dir");
}
