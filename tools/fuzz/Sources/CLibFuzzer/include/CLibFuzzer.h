// libFuzzer's driver, called from each target's main (see Package.swift for why not
// libFuzzer's own main). Defined in libclang_rt.fuzzer, linked by -sanitize=fuzzer.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
