/*
 * netwatch.c - the kernel tells us when the router's addresses or routes change (rtnetlink:
 * RTM_NEWADDR / RTM_DELADDR / RTM_NEWROUTE / RTM_DELROUTE), so that a WAN renumbering (DHCP,
 * PPPoE reconnect, a new DS-Lite B4 prefix) is acted on at once instead of leaving the PCP
 * socket bound to an address that no longer exists. Bursts are coalesced (NETWATCH_SETTLE_MS)
 * before the callback runs.
 */
#include "netwatch.h"

#include <errno.h>
#include <event2/event.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETWATCH_SETTLE_MS 300

struct iwf_netwatch {
	int fd;
	struct event *ev_read, *ev_settle;
	void (*changed)(void *arg);
	void *arg;
};

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
	struct iwf_netwatch *nw = arg;
	(void)fd;
	(void)what;
	nw->changed(nw->arg);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct iwf_netwatch *nw = arg;
	uint8_t buf[8192] __attribute__((aligned(4)));
	bool relevant = false;
	(void)what;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == ENOBUFS)
				relevant = true; /* the kernel dropped events: assume a change */
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR || h->nlmsg_type == RTM_NEWROUTE ||
			    h->nlmsg_type == RTM_DELROUTE)
				relevant = true;
		}
	}
	if (relevant) {
		struct timeval tv = {0, NETWATCH_SETTLE_MS * 1000};
		evtimer_add(nw->ev_settle, &tv); /* re-armed by each burst: runs once it settles */
	}
}

struct iwf_netwatch *iwf_netwatch_new(struct event_base *base, void (*changed)(void *arg), void *arg, int *err)
{
	struct iwf_netwatch *nw = calloc(1, sizeof(*nw));
	*err = ENOMEM;
	if (!nw)
		return NULL;
	nw->changed = changed;
	nw->arg = arg;
	nw->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
					      RTMGRP_IPV6_ROUTE};
	if (nw->fd < 0 || bind(nw->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*err = errno;
		iwf_netwatch_free(nw);
		return NULL;
	}
	nw->ev_read = event_new(base, nw->fd, EV_READ | EV_PERSIST, on_read, nw);
	nw->ev_settle = evtimer_new(base, on_settle, nw);
	if (!nw->ev_read || !nw->ev_settle || event_add(nw->ev_read, NULL) < 0) {
		iwf_netwatch_free(nw);
		return NULL;
	}
	*err = 0;
	return nw;
}

void iwf_netwatch_free(struct iwf_netwatch *nw)
{
	if (!nw)
		return;
	if (nw->ev_read)
		event_free(nw->ev_read);
	if (nw->ev_settle)
		event_free(nw->ev_settle);
	if (nw->fd >= 0)
		close(nw->fd);
	free(nw);
}
