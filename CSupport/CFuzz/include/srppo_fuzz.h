// libFuzzer's driver entry point, declared weak: in a -sanitize=fuzzer build it resolves to
// libFuzzer; in an ordinary build it is NULL and srppo-fuzz only replays corpus files.
#ifndef SRPPO_FUZZ_H
#define SRPPO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef int (*srppo_fuzz_callback)(const uint8_t *data, size_t size);

// Returns 1 when libFuzzer is linked in.
int srppo_fuzz_driver_available(void);

// Runs libFuzzer with the given arguments (argv[0] included); only when available.
int srppo_fuzz_run_driver(int argc, char **argv, srppo_fuzz_callback callback);

#endif
