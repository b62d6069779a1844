/*
 * test_msearch.c - golden vectors for ssdp_parse_msearch() (UDA 1.1 §1.3.2): the tolerant
 * forms real clients send, and garbage that must be refused.
 */
#include "upnp_internal.h"

#include <stdio.h>
#include <string.h>

struct vec {
	const char *name;
	const char *msg;
	int rc;          /* expected return */
	const char *st;  /* expected ST when rc == 0 */
	unsigned mx;     /* expected MX when rc == 0 */
};

#define CRLF "\r\n"
#define HOSTH "HOST: 239.255.255.250:1900" CRLF
#define MANQ "MAN: \"ssdp:discover\"" CRLF

static const struct vec vecs[] = {
	{ "canonical", "M-SEARCH * HTTP/1.1" CRLF HOSTH MANQ "MX: 2" CRLF "ST: ssdp:all" CRLF CRLF,
	  0, "ssdp:all", 2 },
	{ "no space after colon", "M-SEARCH * HTTP/1.1" CRLF "HOST:239.255.255.250:1900" CRLF
	  "MAN:\"ssdp:discover\"" CRLF "MX:3" CRLF "ST:upnp:rootdevice" CRLF CRLF,
	  0, "upnp:rootdevice", 3 },
	{ "lower-case everything", "m-search * http/1.1" CRLF "host: x" CRLF
	  "man: \"ssdp:discover\"" CRLF "mx: 1" CRLF "st: uuid:abc" CRLF CRLF, 0, "uuid:abc", 1 },
	{ "bare LF", "M-SEARCH * HTTP/1.1\nMAN: \"ssdp:discover\"\nMX: 1\nST: ssdp:all\n\n",
	  0, "ssdp:all", 1 },
	{ "tabs and trailing spaces", "M-SEARCH * HTTP/1.1" CRLF "MAN:\t\"ssdp:discover\"  " CRLF
	  "MX:  4 " CRLF "ST:\t urn:schemas-upnp-org:device:InternetGatewayDevice:1 \t" CRLF CRLF,
	  0, "urn:schemas-upnp-org:device:InternetGatewayDevice:1", 4 },
	{ "extra headers", "M-SEARCH * HTTP/1.1" CRLF HOSTH MANQ "MX: 1" CRLF
	  "USER-AGENT: Linux/5 UPnP/1.1 test/1" CRLF "CPFN.UPNP.ORG: x" CRLF "ST: ssdp:all" CRLF
	  "X-Foo: bar" CRLF CRLF, 0, "ssdp:all", 1 },
	{ "no MX (unicast form)", "M-SEARCH * HTTP/1.1" CRLF MANQ "ST: ssdp:all" CRLF CRLF,
	  0, "ssdp:all", SSDP_MX_NONE },
	{ "MX 0", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 0" CRLF "ST: ssdp:all" CRLF CRLF,
	  0, "ssdp:all", 0 },
	{ "MX 120 (kept; capped when used)", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 120" CRLF
	  "ST: ssdp:all" CRLF CRLF, 0, "ssdp:all", 120 },
	{ "HTTP/1.0", "M-SEARCH * HTTP/1.0" CRLF MANQ "MX: 1" CRLF "ST: ssdp:all" CRLF CRLF,
	  0, "ssdp:all", 1 },
	{ "no final blank line", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF "ST: ssdp:all",
	  0, "ssdp:all", 1 },
	{ "body after headers ignored", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF
	  "ST: ssdp:all" CRLF CRLF "ST: other" CRLF, 0, "ssdp:all", 1 },
	{ "ST truncated to cap", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF
	  "ST: urn:schemas-upnp-org:service:WANIPConnection:1" CRLF CRLF, 0,
	  "urn:schemas-upnp-org:service:WANIPC", 1 }, /* cap 36 below, for this vector */

	{ "empty", "", -1, NULL, 0 },
	{ "NOTIFY", "NOTIFY * HTTP/1.1" CRLF "NT: upnp:rootdevice" CRLF "NTS: ssdp:alive" CRLF CRLF,
	  -1, NULL, 0 },
	{ "response", "HTTP/1.1 200 OK" CRLF "ST: ssdp:all" CRLF CRLF, -1, NULL, 0 },
	{ "GET", "GET / HTTP/1.1" CRLF "ST: ssdp:all" CRLF CRLF, -1, NULL, 0 },
	{ "no ST", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF CRLF, -1, NULL, 0 },
	{ "empty ST", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF "ST:" CRLF CRLF, -1, NULL, 0 },
	{ "two STs", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF "ST: a" CRLF "ST: b" CRLF CRLF,
	  -1, NULL, 0 },
	{ "no MAN", "M-SEARCH * HTTP/1.1" CRLF "MX: 1" CRLF "ST: ssdp:all" CRLF CRLF, -1, NULL, 0 },
	{ "MAN unquoted", "M-SEARCH * HTTP/1.1" CRLF "MAN: ssdp:discover" CRLF "MX: 1" CRLF
	  "ST: ssdp:all" CRLF CRLF, -1, NULL, 0 },
	{ "MAN other", "M-SEARCH * HTTP/1.1" CRLF "MAN: \"ssdp:alive\"" CRLF "MX: 1" CRLF
	  "ST: ssdp:all" CRLF CRLF, -1, NULL, 0 },
	{ "MX letters", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: two" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "MX negative", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: -1" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "MX huge", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 99999999999999" CRLF "ST: ssdp:all"
	  CRLF CRLF, -1, NULL, 0 },
	{ "MX empty", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX:" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "two MX", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX: 1" CRLF "MX: 2" CRLF "ST: ssdp:all"
	  CRLF CRLF, -1, NULL, 0 },
	{ "header without colon", "M-SEARCH * HTTP/1.1" CRLF MANQ "MX 1" CRLF "ST: ssdp:all"
	  CRLF CRLF, -1, NULL, 0 },
	{ "colon first", "M-SEARCH * HTTP/1.1" CRLF MANQ ": x" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "bad target", "M-SEARCH / HTTP/1.1" CRLF MANQ "MX: 1" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "bad version", "M-SEARCH * HTTP/2.0" CRLF MANQ "MX: 1" CRLF "ST: ssdp:all" CRLF CRLF,
	  -1, NULL, 0 },
	{ "start line junk", "M-SEARCH * HTTP/1.1 x" CRLF MANQ "MX: 1" CRLF "ST: ssdp:all" CRLF
	  CRLF, -1, NULL, 0 },
	{ "start line only", "M-SEARCH * HTTP/1.1" CRLF CRLF, -1, NULL, 0 },
};

int main(void)
{
	int fails = 0;
	size_t n = sizeof(vecs) / sizeof(vecs[0]);

	for (size_t i = 0; i < n; i++) {
		const struct vec *v = &vecs[i];
		char st[256];
		unsigned mx = 12345;
		size_t cap = strcmp(v->name, "ST truncated to cap") == 0 ? 36 : sizeof(st);
		int rc = ssdp_parse_msearch(v->msg, strlen(v->msg), st, cap, &mx);
		int ok = rc == v->rc;

		if (ok && rc == 0)
			ok = strcmp(st, v->st) == 0 && mx == v->mx;
		printf("%s %s\n", ok ? "ok  " : "FAIL", v->name);
		if (!ok) {
			printf("     rc %d (want %d) st '%s' mx %u\n", rc, v->rc, rc == 0 ? st : "",
			       mx);
			fails++;
		}
	}
	/* A NUL inside the datagram is refused, not read past. */
	{
		static const char m[] = "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: ss\0dp:all\r\n\r\n";
		char st[64];
		unsigned mx;
		int rc = ssdp_parse_msearch(m, sizeof(m) - 1, st, sizeof(st), &mx);

		printf("%s embedded NUL\n", rc != 0 ? "ok  " : "FAIL");
		fails += rc == 0;
	}
	/* Every prefix of a valid search parses or fails cleanly (run under ASan in CI). */
	{
		const char *m = vecs[0].msg;
		char st[8];
		unsigned mx;

		for (size_t k = 0; k <= strlen(m); k++)
			(void)ssdp_parse_msearch(m, k, st, sizeof(st), &mx);
		printf("ok   prefixes\n");
	}
	printf("%d failed of %zu\n", fails, n + 1);
	return fails != 0;
}
