/*
 * log.c - the daemon's printf-checked logging: stderr with a timestamp (a terminal, a file),
 * stderr with sd-daemon(3) "<N>" priority prefixes and no timestamp (the systemd journal,
 * which stamps each line itself), or syslog (daemon mode).
 */
#include "iwf.h"

#include <stdio.h>
#include <syslog.h>
#include <time.h>

static const char *level_name(enum iwf_log_level level)
{
	return level <= IWF_LOG_ERROR ? "error" : level <= IWF_LOG_WARN ? "warn" : level <= IWF_LOG_INFO ? "info" : "debug";
}

void iwf_vlog(const struct iwf_logger *lg, enum iwf_log_level level, const char *fmt, va_list ap)
{
	if (!lg || level > lg->level)
		return;
	if (lg->syslog) {
		vsyslog((int)level, fmt, ap);
		return;
	}
	if (lg->journal) {
		flockfile(stderr);
		fprintf(stderr, "<%d>", (int)level);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		funlockfile(stderr);
		fflush(stderr);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ld iwfd %s: ", stamp, ts.tv_nsec / 1000000, level_name(level));
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	fflush(stderr);
}

void iwf_log(const struct iwf_logger *lg, enum iwf_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	iwf_vlog(lg, level, fmt, ap);
	va_end(ap);
}
