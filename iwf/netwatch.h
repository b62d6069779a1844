/*
 * netwatch.h - address and route changes from the kernel (rtnetlink), inside iwf/.
 */
#ifndef IWFD_NETWATCH_H
#define IWFD_NETWATCH_H

struct event_base;
struct iwf_netwatch;

/* Call changed(arg) from the loop, once a burst of address/route changes has settled.
 * NULL on failure with *err an errno value. */
struct iwf_netwatch *iwf_netwatch_new(struct event_base *base, void (*changed)(void *arg), void *arg, int *err);
void iwf_netwatch_free(struct iwf_netwatch *nw);

#endif
