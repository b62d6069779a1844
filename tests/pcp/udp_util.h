/*
 * udp_util.h - what the libevent-adapter tests (test_event.c, test_announce.c) share: a free
 * UDP port on loopback, and an ANNOUNCE sent from a socket standing for the PCP server.
 */
#ifndef IWFD_TESTS_PCP_UDP_UTIL_H
#define IWFD_TESTS_PCP_UDP_UTIL_H

#include "pcp.h"
#include "../testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A UDP port nobody holds right now on 127.0.0.1 (bound, read, released). */
static inline uint16_t tu_free_udp_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* An ANNOUNCE with this Epoch from fd (the server's socket) to 127.0.0.1:to_port. */
static inline void tu_send_announce(int fd, uint16_t to_port, uint32_t epoch)
{
	struct pcp_msg a = { .version = 2, .response = true, .opcode = PCP_OPCODE_ANNOUNCE, .epoch = epoch };
	uint8_t buf[PCP_MAX_PACKET];
	size_t len = 0;
	CHECK_EQ(pcp_msg_encode(&a, buf, sizeof buf, &len), PCP_OK);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(to_port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(sendto(fd, buf, len, 0, (struct sockaddr *)&sin, sizeof sin) == (ssize_t)len);
}

#endif
