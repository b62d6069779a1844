/*
 * fuzz_http.c - libFuzzer target for the HTTP request side of http.c: each input is the
 * byte stream of one client connection (socketpair, adopted by a real http_server on a
 * real event loop). The handler answers most requests at once, hands SUBSCRIBE and
 * UNSUBSCRIBE to a real gena (CALLBACK/SID/TIMEOUT parsing on hostile input), and parks
 * requests for "/park", answering them only after the connection is gone (orphan path).
 */
#include "upnp_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <event2/event.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARK_MAX 16

struct fuzz_ctx {
	struct event_base *base;
	struct http_server *srv;
	struct gena *gena;
	struct http_exchange *parked[PARK_MAX];
	size_t n_parked;
};

static void handler(void *arg, struct http_exchange *x, const struct http_request *req)
{
	struct fuzz_ctx *f = arg;

	/* Touch everything the contract promises is valid. */
	if (strlen(req->method) == 0 || req->body[req->body_len] != '\0')
		abort();
	for (size_t i = 0; i < req->n_headers; i++)
		if (strlen(req->headers[i].name) + strlen(req->headers[i].value) > 1u << 20)
			abort();
	if (strcmp(req->method, "SUBSCRIBE") == 0 || strcmp(req->method, "UNSUBSCRIBE") == 0) {
		gena_handle(f->gena, x, req, 0);
		return;
	}
	if (strncmp(req->path, "/park", 5) == 0 && f->n_parked < PARK_MAX) {
		f->parked[f->n_parked++] = x;
		return;
	}
	http_exchange_respond(x, 200, NULL, HTTP_CT_XML, req->body, req->body_len);
}

static struct fuzz_ctx *ctx(void)
{
	static struct fuzz_ctx f;

	if (f.base == NULL) {
		struct http_server_config cfg = {
			.bind_addr = "127.0.0.1", .port = 0, .max_connections = 4,
			.max_header_bytes = 2048, .max_body_bytes = 4096, .idle_timeout_ms = 1000,
			.server_header = "fuzz", .handler = handler, .handler_arg = &f,
		};

		f.base = event_base_new();
		f.srv = http_server_new(f.base, &cfg);
		f.gena = gena_new(f.base, NULL);
		if (f.base == NULL || f.srv == NULL || f.gena == NULL)
			abort();
	}
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_ctx *f = ctx();
	int sv[2];
	size_t off = 0;
	char sink[8192];

	if (size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (http_server_adopt(f->srv, sv[0]) != 0)
		abort();
	/* Feed in two halves so requests straddle reads; drain responses as we go. */
	for (int round = 0; round < 200; round++) {
		ssize_t n;

		if (off < size) {
			size_t chunk = off == 0 ? (size + 1) / 2 : size - off;

			n = write(sv[1], data + off, chunk);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && round == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		n = read(sv[1], sink, sizeof(sink));
		if (n == 0 && off == size)
			break; /* server closed */
	}
	close(sv[1]);
	for (int i = 0; i < 4; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	while (f->n_parked > 0)
		http_exchange_respond(f->parked[--f->n_parked], 200, NULL, NULL, NULL, 0);
	for (int i = 0; i < 4; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	/* The client is gone and owes nothing: the connection must be gone too, without
	 * waiting for any timer. */
	if (http_server_connections(f->srv) != 0)
		abort();
	return 0;
}
