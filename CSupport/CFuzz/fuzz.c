#include "srppo_fuzz.h"

extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) __attribute__((weak));

int srppo_fuzz_driver_available(void) { return LLVMFuzzerRunDriver != NULL; }

int srppo_fuzz_run_driver(int argc, char **argv, srppo_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
