/*
 * privs.h - giving up privileges once the daemon's sockets are open (inside iwf/).
 *
 * Every port iwfd binds is above 1023 and every socket it needs at run time is opened
 * without privilege (the PCP socket reopened after a WAN renumbering is an ordinary
 * connected UDP socket; rtnetlink address/route groups are readable by anyone). So after
 * start-up iwfd keeps no capability with --nat none and only CAP_NET_ADMIN with --nat
 * nftables (libnftables talks nfnetlink for every map element), sets NoNewPrivs, empties
 * its bounding and ambient sets, and optionally becomes an unprivileged user.
 * docs/robustness.md "Privileges".
 */
#ifndef IWFD_PRIVS_H
#define IWFD_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct iwf_privs {
	bool net_admin;   /* keep CAP_NET_ADMIN (the nftables NAT) */
	bool switch_user; /* become uid/gid below */
	uid_t uid;
	gid_t gid;
	char user[32];
};

/* Fill p for user (NULL or "" = stay the user we are) and the NAT mode. Looks the user up
 * (getpwnam) now, so that a typo is reported before the daemon detaches. 0, or -1 with
 * detail. */
int iwf_privs_prepare(struct iwf_privs *p, const char *user, bool net_admin, char *detail, size_t cap);

/* With a user to become: give it the state directory and files (state_file, borrowed; ""
 * = none). The directory is handed over only when it holds nothing but the journal and
 * its siblings (STATE.tmp, STATE.corrupt-*); symlinks are never followed. 0, or -1 with
 * detail. Call as root, before iwf_privs_drop. */
int iwf_privs_own_state(const struct iwf_privs *p, const char *state_file, char *detail, size_t cap);

/* Drop: bounding set to what is kept, groups/gid/uid when switching user, permitted and
 * effective = CAP_NET_ADMIN or nothing, inheritable and ambient empty, NoNewPrivs. A
 * capability kept must be permitted already (else -1). Verifies the result. 0, or -1
 * with detail (the caller should exit: it may be half-way). */
int iwf_privs_drop(const struct iwf_privs *p, char *detail, size_t cap);

/* One line for the log: "uid 65534, capabilities none, NoNewPrivs 1". */
void iwf_privs_describe(char *out, size_t cap);

#endif
