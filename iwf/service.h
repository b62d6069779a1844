/*
 * service.h - how iwfd runs as a service on a router (inside iwf/, used by main.c): paths
 * made absolute before the working directory changes, detaching with the start-up result
 * handed back to the starting shell, the one-instance lock, readiness for systemd
 * (sd_notify protocol, no libsystemd), and whether stderr is the journal.
 *
 * None of these functions log: they return an errno value or false and, where useful, a
 * one-line reason in detail. main.c decides what to print.
 */
#ifndef IWFD_SERVICE_H
#define IWFD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

/* Make path (a NUL-terminated string in a buffer of cap bytes) absolute against the current
 * directory; "" and absolute paths are left alone. false when the result does not fit. */
bool svc_path_absolute(char *path, size_t cap);

/*
 * Detach from the terminal so that start-up errors still reach it: fork; the parent waits
 * until the child calls svc_detach_ready() (then exits 0) or exits (then exits with the
 * child's status: the child has printed its reason on the inherited stderr). The parent
 * never returns. In the child: a new session, working directory "/", umask 022; stdin,
 * stdout and stderr are kept until svc_detach_ready(). Returns 0 in the child with
 * *ready_fd set, or an errno value (nothing forked).
 */
int svc_detach(int *ready_fd);
/* The child is serving: tell the waiting parent and point stdin/out/err at /dev/null.
 * ready_fd < 0 is a no-op (foreground). */
void svc_detach_ready(int ready_fd);

/*
 * The one-instance lock of a state file: "STATE.lock" beside it (the journal itself is
 * replaced by rename when it is compacted, so it cannot carry the lock), created 0644,
 * flock()ed exclusively and holding the pid. The state file's directory is created first
 * when missing (parents 0755, the directory itself 0700). Returns the lock's file
 * descriptor (close-on-exec; kept open for the life of the process: the kernel releases
 * the lock when the process ends, however it ends) or -1 with a one-line reason in detail
 * (another instance: its pid; otherwise the path and strerror).
 */
int svc_lock_state(const char *state_file, char *detail, size_t cap);

/* sd_notify(3) without libsystemd: send text (e.g. "READY=1") as one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ('@' = abstract namespace). Returns 0 when sent
 * or when $NOTIFY_SOCKET is not set, else an errno value. */
int svc_notify(const char *text);

/* True when stderr is connected to the systemd journal: $JOURNAL_STREAM ("DEV:INO") names
 * the device and inode of file descriptor 2 (systemd.exec(5)). Then each line should carry
 * its own "<N>" priority prefix and no timestamp (the journal stamps it). */
bool svc_stderr_is_journal(void);

#endif
