/*
 * privs.c - capabilities, NoNewPrivs and the unprivileged user (privs.h). Raw capget/capset
 * and prctl: no libcap needed for a bit mask.
 */
#include "privs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static int fail(char *detail, size_t cap, const char *fmt, ...)
{
	if (detail && cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, cap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct capsets {
	uint64_t eff, perm, inh;
};

static int cap_get(struct capsets *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	c->eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	c->perm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	c->inh = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
	return 0;
}

static int cap_set(const struct capsets *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)c->eff, (uint32_t)c->perm, (uint32_t)c->inh },
		{ (uint32_t)(c->eff >> 32), (uint32_t)(c->perm >> 32), (uint32_t)(c->inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

#define BIT(cap) ((uint64_t)1 << (cap))

int iwf_privs_prepare(struct iwf_privs *p, const char *user, bool net_admin, char *detail, size_t cap)
{
	memset(p, 0, sizeof(*p));
	p->net_admin = net_admin;
	if (!user || !*user)
		return 0;
	if (strlen(user) >= sizeof(p->user))
		return fail(detail, cap, "user name '%s' too long", user);
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return fail(detail, cap, "no user '%s'%s%s", user, errno ? ": " : "", errno ? strerror(errno) : "");
	if (pw->pw_uid == 0)
		return fail(detail, cap, "user '%s' is root: name an unprivileged user", user);
	p->switch_user = true;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->user, sizeof(p->user), "%s", user);
	return 0;
}

/* Is name one of the journal's own files (base, base.tmp, base.corrupt-*) or the instance lock (base.lock)? */
static bool state_sibling(const char *name, const char *base)
{
	size_t n = strlen(base);
	if (strncmp(name, base, n) != 0)
		return false;
	return name[n] == '\0' || strcmp(name + n, ".tmp") == 0 || strcmp(name + n, ".lock") == 0 ||
	       strcmp(name + n, ".dm") == 0 || strcmp(name + n, ".dm.tmp") == 0 || strncmp(name + n, ".corrupt-", 9) == 0;
}

int iwf_privs_own_state(const struct iwf_privs *p, const char *state_file, char *detail, size_t cap)
{
	if (!p->switch_user || !state_file || !*state_file)
		return 0;
	char dir[4096];
	const char *slash = strrchr(state_file, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == state_file)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - state_file), state_file);
	const char *base = slash ? slash + 1 : state_file;
	/* O_NOFOLLOW: the state directory itself is never reached through a symlink here */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return fail(detail, cap, "state directory %s: %s", dir, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(dfd, &st) != 0) {
		rc = fail(detail, cap, "state directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if (st.st_uid != p->uid) {
		/* Hand the directory over only when it is iwfd's own: nothing else in it. */
		int lfd = dup(dfd);
		DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d) {
			if (lfd >= 0)
				close(lfd);
			rc = fail(detail, cap, "state directory %s: %s", dir, strerror(errno));
			goto out;
		}
		const char *other = NULL;
		for (struct dirent *e; (e = readdir(d)) && !other;)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !state_sibling(e->d_name, base))
				other = e->d_name;
		if (other) {
			rc = fail(detail, cap,
				  "state directory %s holds other files (%s): not giving it to user %s; make it "
				  "%s's own or use a directory of its own for --state", dir, other, p->user, p->user);
			closedir(d);
			goto out;
		}
		closedir(d);
		if (fchown(dfd, p->uid, p->gid) != 0) {
			rc = fail(detail, cap, "chown %s: %s", dir, strerror(errno));
			goto out;
		}
	}
	/* the journal and its siblings; a symlink is changed itself, never its target */
	static const char *const sfx[] = { "", ".tmp", ".dm", ".dm.tmp" }; /* .dm: dm.c's store */
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		char name[512];
		if ((size_t)snprintf(name, sizeof(name), "%s%s", base, sfx[i]) >= sizeof(name))
			continue;
		if (fchownat(dfd, name, p->uid, p->gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT) {
			rc = fail(detail, cap, "chown %s/%s: %s", dir, name, strerror(errno));
			goto out;
		}
	}
out:
	close(dfd);
	return rc;
}

int iwf_privs_drop(const struct iwf_privs *p, char *detail, size_t cap)
{
	struct capsets c;
	if (cap_get(&c) != 0)
		return fail(detail, cap, "capget: %s", strerror(errno));
	uint64_t keep = p->net_admin ? BIT(CAP_NET_ADMIN) : 0;
	if ((c.perm & keep) != keep)
		return fail(detail, cap, "CAP_NET_ADMIN is needed for --nat nftables and is not permitted");
	/* Bounding set: nothing beyond what is kept can come back, even through execve. Needs
	 * CAP_SETPCAP, which a process started without it never had anyway. */
	if (c.eff & BIT(CAP_SETPCAP)) {
		for (int i = 0; i < 64; i++) {
			if (keep & BIT(i))
				continue;
			int r = prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0);
			if (r < 0)
				break; /* past the kernel's last capability */
			if (r == 1 && prctl(PR_CAPBSET_DROP, (unsigned long)i, 0, 0, 0) != 0)
				return fail(detail, cap, "dropping capability %d from the bounding set: %s", i,
					    strerror(errno));
		}
	}
	if (p->switch_user) {
		/* keep the permitted set across the uid change; the effective set is cleared by it */
		if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0)
			return fail(detail, cap, "PR_SET_KEEPCAPS: %s", strerror(errno));
		if (setgroups(1, &p->gid) != 0 || setresgid(p->gid, p->gid, p->gid) != 0)
			return fail(detail, cap, "becoming group %u: %s", (unsigned)p->gid, strerror(errno));
		if (setresuid(p->uid, p->uid, p->uid) != 0)
			return fail(detail, cap, "becoming user %s (%u): %s", p->user, (unsigned)p->uid,
				    strerror(errno));
		(void)prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	}
	struct capsets want = { .eff = keep, .perm = keep, .inh = 0 };
	if (cap_set(&want) != 0)
		return fail(detail, cap, "capset: %s", strerror(errno));
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0)
		return fail(detail, cap, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	/* verify: what we hold now is exactly what we meant */
	if (cap_get(&c) != 0 || c.eff != keep || c.perm != keep || c.inh != 0)
		return fail(detail, cap, "capabilities not dropped as asked");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0L, 0L, 0L, 0L) != 1)
		return fail(detail, cap, "NoNewPrivs not set");
	if (p->switch_user && (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
			       getegid() != p->gid || setuid(0) == 0))
		return fail(detail, cap, "user not switched as asked");
	return 0;
}

void iwf_privs_describe(char *out, size_t cap)
{
	struct capsets c = { 0, 0, 0 };
	(void)cap_get(&c);
	snprintf(out, cap, "uid %u, gid %u, capabilities %s, NoNewPrivs %d", (unsigned)geteuid(), (unsigned)getegid(),
		 c.eff == 0 ? "none" : c.eff == BIT(CAP_NET_ADMIN) ? "cap_net_admin" : "several",
		 prctl(PR_GET_NO_NEW_PRIVS, 0L, 0L, 0L, 0L));
}
