/* cwmp.h - iwf-cwmp's entry points between main.c and agent.c. */
#ifndef IWF_CWMP_CWMP_H
#define IWF_CWMP_CWMP_H

#include "agent.h"

/* Runs the agent until a Reboot/FactoryReset asks for a restart (returns 101/102) or a
 * start-up failure (1). cfg is borrowed (acs_url may be replaced). */
int cwmp_agent_run(struct cwmp_config *cfg, char **argv);
void cwmp_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
