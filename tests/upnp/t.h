/* t.h - minimal checks for the upnp/ content tests: count failures, print where. */
#ifndef IWFD_TESTS_UPNP_T_H
#define IWFD_TESTS_UPNP_T_H

#include <stdio.h>

static int t_failures;
static int t_checks;

#define CHECK(cond) do { \
	t_checks++; \
	if (!(cond)) { \
		t_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECKF(cond, ...) do { \
	t_checks++; \
	if (!(cond)) { \
		t_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

static inline int t_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, t_checks, t_failures);
	return t_failures == 0 && t_checks > 0 ? 0 : 1;
}

#endif
