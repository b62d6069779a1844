/* auth.h - HTTP authentication for iwf-cwmp: the client side towards the ACS (basic and
 * digest, RFC 2617, seed 003 §3.4.4) and the server side of the connection-request
 * listener (digest only, seed 003 §3.2.2). Pure: no I/O, the caller passes time and
 * randomness. */
#ifndef IWF_CWMP_AUTH_H
#define IWF_CWMP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void md5_hex(const void *data, size_t len, char out[33]);

/* Builds the Authorization header value answering challenge (a WWW-Authenticate value:
 * "Basic ..." or "Digest ...") for method and uri. nc counts uses of the same nonce (1 the
 * first time); cnonce is any fresh token. Returns false if the challenge is not
 * understood or out is too short. */
bool auth_client_answer(const char *challenge, const char *user, const char *pass, const char *method,
                        const char *uri, unsigned nc, const char *cnonce, char *out, size_t outlen);

#define AUTH_NONCES 8
struct auth_server {
	char realm[64];
	char user[256], pass[256];
	struct {
		char nonce[33];
		uint64_t born_ms;
		uint32_t last_nc;
	} nonces[AUTH_NONCES];
	unsigned next;
};
/* A fresh challenge for the WWW-Authenticate header; rand16 gives 16 random bytes. */
void auth_server_challenge(struct auth_server *s, uint64_t now_ms, const uint8_t rand16[16], char *out,
                           size_t outlen);
/* True if header (an Authorization value) is a valid digest answer to one of our nonces of the
 * last 60 s, for method; its nc must grow (no replay). */
bool auth_server_check(struct auth_server *s, const char *header, const char *method, uint64_t now_ms);

#endif
