/*
 * startprobe.h - one ANNOUNCE request to the PCP server at start, to warn an operator at
 * once when the server does not answer (inside iwf/, used by daemon.c; startprobe.c says
 * why and how).
 */
#ifndef IWFD_STARTPROBE_H
#define IWFD_STARTPROBE_H

#include "iwf.h"

struct event_base;
struct pcp_server;
struct iwf_startprobe;

/* Probe server (copied; NULL: warn at once that no server is known) on base; why names
 * where the server came from ("configured", "file", ..., copied; may be NULL). log is
 * borrowed for the life of the probe. The verdict is logged once (info: it answered;
 * warn: it did not, or the network refused). NULL only when out of memory. */
struct iwf_startprobe *iwf_startprobe_new(struct event_base *base, const struct pcp_server *server,
					  const char *why, const struct iwf_logger *log);
/* Stop probing (nothing is logged); NULL is a no-op. */
void iwf_startprobe_free(struct iwf_startprobe *p);

#endif
