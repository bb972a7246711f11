/*
 * fuzz_arf.c — libFuzzer target for the ARF parser (core/arf.c), which
 * reads abuse reports from outside.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_arf.c core/arf.c core/err.c -ljansson -lsodium -o fuzz_arf
 *   ./fuzz_arf -max_total_time=60
 *
 * The first byte picks a Content-Type; the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "p25/arf.h"
#include "p25/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cts[] = {
		"multipart/report; report-type=feedback-report; boundary=\"B1\"",
		"multipart/report; report-type=feedback-report; boundary=B",
		"multipart/report; boundary=x; report-type=\"feedback-report\"",
		"multipart/report; report-type=feedback-report; boundary=",
	};
	struct p25_arf a;
	struct p25_err err = { 0 };

	if (size < 1)
		return 0;
	if (p25_arf_parse(cts[data[0] % 4], (const char *)data + 1, size - 1, &a, &err) == 0)
		json_decref(a.fields);
	p25_err_clear(&err);
	return 0;
}
