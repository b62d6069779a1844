/*
 * service.c - detaching, the instance lock, sd_notify readiness, journal detection
 * (service.h). Plain POSIX + Linux; no libsystemd.
 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

bool svc_path_absolute(char *path, size_t cap)
{
	if (!path[0] || path[0] == '/')
		return true;
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return false;
	size_t lc = strlen(cwd), lp = strlen(path);
	if (lc + 1 + lp + 1 > cap)
		return false;
	memmove(path + lc + 1, path, lp + 1);
	memcpy(path, cwd, lc);
	path[lc] = '/';
	return true;
}

/* ------------------------------------------------------------------ detaching */

int svc_detach(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid > 0) {
		/* The parent: wait for "ready" (one byte) or for the child to end. */
		close(p[1]);
		char b;
		ssize_t n;
		do
			n = read(p[0], &b, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st))
			_exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
		fprintf(stderr, "iwfd: the daemon process died while starting (signal %d)\n",
			WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0 || chdir("/") < 0) {
		int e = errno;
		close(p[1]);
		return e;
	}
	umask(022);
	*ready_fd = p[1];
	return 0;
}

void svc_detach_ready(int ready_fd)
{
	if (ready_fd < 0)
		return;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		fflush(NULL);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	ssize_t n;
	do
		n = write(ready_fd, "1", 1);
	while (n < 0 && errno == EINTR);
	close(ready_fd);
}

/* ------------------------------------------------------------------ the instance lock */

/* mkdir -p for the parents (0755), the last component 0700. */
static int make_dirs(char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		int rc = mkdir(dir, 0755);
		int e = errno;
		*s = '/';
		if (rc < 0 && e != EEXIST)
			return e;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return errno;
	return 0;
}

int svc_lock_state(const char *state_file, char *detail, size_t cap)
{
	char dir[4096], lock[4096 + 8];
	if ((size_t)snprintf(dir, sizeof(dir), "%s", state_file) >= sizeof(dir) ||
	    (size_t)snprintf(lock, sizeof(lock), "%s.lock", state_file) >= sizeof(lock)) {
		snprintf(detail, cap, "state file path too long: %s", state_file);
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int e = make_dirs(dir);
		if (e) {
			snprintf(detail, cap, "cannot create the state directory %s: %s (--state FILE elsewhere, or --no-state)",
				 dir, strerror(e));
			return -1;
		}
	}
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(detail, cap, "cannot open the lock file %s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			char buf[32] = "";
			ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
			long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
			if (pid > 0)
				snprintf(detail, cap, "another iwfd (pid %ld) is running with the state file %s (lock %s)",
					 pid, state_file, lock);
			else
				snprintf(detail, cap, "another iwfd is running with the state file %s (lock %s)",
					 state_file, lock);
		} else {
			snprintf(detail, cap, "cannot lock %s: %s", lock, strerror(e));
		}
		close(fd);
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		/* The lock holds without the pid: only the message of a second instance is poorer. */
	}
	return fd;
}

/* ------------------------------------------------------------------ systemd */

int svc_notify(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int rc = 0;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		rc = errno;
	close(fd);
	return rc;
}

bool svc_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	if (!js)
		return false;
	uintmax_t dev, ino;
	if (sscanf(js, "%ju:%ju", &dev, &ino) != 2)
		return false;
	struct stat st;
	if (fstat(2, &st) < 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}
