/* fuzz_soap.c - libFuzzer target for the SOAP control parser (and the response/fault
 * writers behind it). Input format: soap_case.h. Seed corpus: tests/upnp/corpus-soap/. */
#include "soap_case.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct soap_case c;

	soap_case_split(data, size, &c);
	(void)soap_case_run(&c);
	return 0;
}
