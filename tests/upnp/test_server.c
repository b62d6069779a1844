/* test_server.c - upnp_server_new's configuration checks and error codes, the root URL,
 * NULL-safety of the public functions. (Requests are exercised end to end by
 * test_clients.py.) */
#include "upnp.h"
#include "../testutil.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

static void no_action(void *arg, struct upnp_call *call, enum upnp_action action,
		      const struct upnp_args *args, const struct sockaddr *from)
{
	(void)arg; (void)action; (void)args; (void)from;
	upnp_call_error(call, 501);
}

static const struct upnp_ops ops = { .action = no_action };

static struct upnp_config base_cfg(void)
{
	struct upnp_config c;

	memset(&c, 0, sizeof c);
	c.lan_addr = "127.0.0.1";
	c.ops = &ops;
	return c;
}

int main(void)
{
	struct event_base *base = event_base_new();
	struct upnp_config c;
	struct upnp_server *s, *s2;
	enum upnp_err err;
	char want[64];

	CHECK(base != NULL);
	/* valid: IGD:1 default, ephemeral port, random UUIDs */
	c = base_cfg();
	err = UPNP_ERR_NOMEM;
	s = upnp_server_new(base, &c, &err);
	CHECK(s != NULL && err == UPNP_OK);
	CHECK(upnp_server_http_port(s) != 0);
	snprintf(want, sizeof want, "http://127.0.0.1:%u/rootDesc.xml", upnp_server_http_port(s));
	CHECK(strcmp(upnp_server_root_url(s), want) == 0);
	struct upnp_state st = { "Connected", "198.51.100.1", 3, 7, "IP_Routed" };
	upnp_server_set_state(s, &st);
	upnp_server_set_state(s, NULL);
	struct upnp_state st0;
	memset(&st0, 0, sizeof st0); /* NULL strings: defaults */
	upnp_server_set_state(s, &st0);

	/* same port again: socket error */
	c = base_cfg();
	c.http_port = upnp_server_http_port(s);
	s2 = upnp_server_new(base, &c, &err);
	CHECK(s2 == NULL && err == UPNP_ERR_SOCKET);
	upnp_server_free(s);

	/* IGD:2 and PPP with given UUIDs ("uuid:" prefix tolerated) */
	c = base_cfg();
	c.igd_version = 2;
	c.ppp = true;
	c.uuid_igd = "uuid:4d696e69-5550-6e50-4947-440000000001";
	s = upnp_server_new(base, &c, &err);
	CHECK(s != NULL && err == UPNP_OK);
	upnp_server_free(s);

	/* bad configurations */
	c = base_cfg();
	c.igd_version = 3;
	CHECK(upnp_server_new(base, &c, &err) == NULL && err == UPNP_ERR_INVAL);
	c = base_cfg();
	c.lan_addr = "not-an-address";
	CHECK(upnp_server_new(base, &c, &err) == NULL && err == UPNP_ERR_INVAL);
	c = base_cfg();
	c.lan_addr = NULL; /* and no interface */
	CHECK(upnp_server_new(base, &c, &err) == NULL && err == UPNP_ERR_INVAL);
	const char *ifs[] = { "nosuchif0" };
	c.lan_ifnames = ifs;
	c.n_lan_ifnames = 1;
	CHECK(upnp_server_new(base, &c, &err) == NULL && err == UPNP_ERR_IFACE);
	c = base_cfg();
	c.uuid_wan_device = "not a uuid!";
	CHECK(upnp_server_new(base, &c, &err) == NULL && err == UPNP_ERR_INVAL);
	CHECK(upnp_server_new(NULL, &c, &err) == NULL && err == UPNP_ERR_INVAL);
	CHECK(upnp_server_new(base, NULL, &err) == NULL && err == UPNP_ERR_INVAL);

	/* lan_addr from the first LAN interface (lo has 127.0.0.1) */
	c = base_cfg();
	c.lan_addr = NULL;
	const char *lo[] = { "lo" };
	c.lan_ifnames = lo;
	c.n_lan_ifnames = 1;
	s = upnp_server_new(base, &c, &err);
	/* SSDP on lo may be refused where lo has no multicast: then a socket error */
	CHECK((s != NULL && strncmp(upnp_server_root_url(s), "http://127.0.0.1:", 17) == 0) ||
	      (s == NULL && err == UPNP_ERR_SOCKET));
	upnp_server_free(s);

	/* NULL-safety */
	upnp_server_free(NULL);
	upnp_call_reply(NULL, NULL);
	upnp_call_error(NULL, 501);
	CHECK(strcmp(upnp_server_root_url(NULL), "") == 0);
	CHECK(upnp_server_http_port(NULL) == 0);
	event_base_free(base);
	return tu_finish("test_server");
}
