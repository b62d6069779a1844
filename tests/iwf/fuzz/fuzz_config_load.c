/*
 * fuzz_config_load.c - libFuzzer target for the configuration file loader (iwf/iwf.h
 * iwf_config_load, then iwf_config_check as the daemon does).
 *
 * The loader reads a path, so each input goes to a scratch file (a memfd reached through
 * /proc/self/fd, else a file in a private temporary directory). Properties checked:
 *   - the result is IWF_OK, IWF_ERR_IO or IWF_ERR_INVAL, and an error comes with a
 *     NUL-terminated message;
 *   - whatever happened, the configuration stays within its own bounds: counts at most
 *     the array sizes, every string NUL-terminated inside its buffer, rules within limits;
 *   - loading the same input a second time over the result (the loader merges) gives the
 *     same answer, and iwf_config_check never crashes on what the loader left.
 * With clang this is built with -fsanitize=fuzzer; with other compilers
 * tests/pcp/fuzz_replay_main.c replays the seed corpus through the same function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "iwf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_dir[256];
static char in_path[300];
static int in_fd = -1;

static void cleanup(void)
{
	if (scratch_dir[0]) {
		unlink(in_path);
		rmdir(scratch_dir);
	}
}

static void setup(void)
{
	if (in_fd >= 0 || scratch_dir[0])
		return;
#ifdef MFD_CLOEXEC
	in_fd = memfd_create("fuzz_config_in", MFD_CLOEXEC);
	if (in_fd >= 0) {
		snprintf(in_path, sizeof in_path, "/proc/self/fd/%d", in_fd);
		return;
	}
#endif
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch_dir, sizeof scratch_dir, "%s/fuzz_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch_dir))
		abort();
	snprintf(in_path, sizeof in_path, "%s/in.json", scratch_dir);
	atexit(cleanup);
}

static void write_input(const uint8_t *data, size_t size)
{
	if (in_fd >= 0) {
		if (ftruncate(in_fd, 0) < 0 || pwrite(in_fd, data, size, 0) != (ssize_t)size)
			abort();
		return;
	}
	FILE *f = fopen(in_path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

#define TERMINATED(buf) (memchr((buf), '\0', sizeof(buf)) != NULL)

static void check_bounds(const struct iwf_config *c)
{
	if (c->n_lan_ifs > IWF_MAX_LAN_IFS || c->n_pcp_servers > IWF_MAX_PCP_SERVERS ||
	    c->n_rules > IWF_MAX_RULES)
		abort();
	for (size_t i = 0; i < IWF_MAX_LAN_IFS; i++)
		if (!TERMINATED(c->lan_ifs[i]))
			abort();
	for (size_t i = 0; i < IWF_MAX_PCP_SERVERS; i++)
		if (!TERMINATED(c->pcp_servers[i]))
			abort();
	if (!TERMINATED(c->lan_addr) || !TERMINATED(c->state_file) || !TERMINATED(c->friendly_name) ||
	    !TERMINATED(c->nat_mode) || !TERMINATED(c->wan_if))
		abort();
	if (c->igd_version != 1 && c->igd_version != 2)
		abort();
	if (c->pcp_lifetime < 60 || c->pcp_lifetime > 65535 || c->answer_deadline_ms < 100 ||
	    c->answer_deadline_ms > 60000)
		abort();
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct iwf_rule *r = &c->rules[i];
		if (r->prefix > 32 || r->ext_lo > r->ext_hi || r->int_lo > r->int_hi)
			abort();
	}
}

/* field by field: structs have padding */
static bool same_config(const struct iwf_config *a, const struct iwf_config *b)
{
	if (a->n_lan_ifs != b->n_lan_ifs || a->n_pcp_servers != b->n_pcp_servers ||
	    a->n_rules != b->n_rules || a->http_port != b->http_port ||
	    a->igd_version != b->igd_version || a->ppp != b->ppp || a->log_level != b->log_level ||
	    a->pcp_lifetime != b->pcp_lifetime || a->answer_deadline_ms != b->answer_deadline_ms ||
	    a->pcp_service_wait_s != b->pcp_service_wait_s || a->replay_rate != b->replay_rate ||
	    a->listen_announce != b->listen_announce || a->nat_port_min != b->nat_port_min ||
	    a->nat_port_max != b->nat_port_max || a->allow_third_party != b->allow_third_party ||
	    strcmp(a->lan_addr, b->lan_addr) || strcmp(a->state_file, b->state_file) ||
	    strcmp(a->friendly_name, b->friendly_name) || strcmp(a->nat_mode, b->nat_mode) ||
	    strcmp(a->wan_if, b->wan_if))
		return false;
	for (size_t i = 0; i < a->n_lan_ifs; i++)
		if (strcmp(a->lan_ifs[i], b->lan_ifs[i]))
			return false;
	for (size_t i = 0; i < a->n_pcp_servers; i++)
		if (strcmp(a->pcp_servers[i], b->pcp_servers[i]))
			return false;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct iwf_rule *x = &a->rules[i], *y = &b->rules[i];
		if (x->allow != y->allow || x->ext_lo != y->ext_lo || x->ext_hi != y->ext_hi ||
		    x->client != y->client || x->prefix != y->prefix || x->int_lo != y->int_lo ||
		    x->int_hi != y->int_hi)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	write_input(data, size);

	struct iwf_config cfg;
	char detail[512];
	detail[0] = '\0';
	iwf_config_init(&cfg);
	enum iwf_err e = iwf_config_load(&cfg, in_path, detail, sizeof detail);
	if (e != IWF_OK && e != IWF_ERR_IO && e != IWF_ERR_INVAL)
		abort();
	if (e != IWF_OK && (!TERMINATED(detail) || detail[0] == '\0'))
		abort();
	check_bounds(&cfg);
	(void)iwf_config_check(&cfg, detail, sizeof detail);
	if (!TERMINATED(detail))
		abort();

	/* the loader merges: the same file again over the result answers the same */
	if (e == IWF_OK) {
		struct iwf_config again;
		memcpy(&again, &cfg, sizeof again);
		if (iwf_config_load(&again, in_path, detail, sizeof detail) != IWF_OK)
			abort();
		check_bounds(&again);
		if (!same_config(&again, &cfg))
			abort();
	}
	return 0;
}
