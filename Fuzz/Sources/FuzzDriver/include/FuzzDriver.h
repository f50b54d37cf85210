// libFuzzer's entry point, called from each fuzzer's main (SwiftPM renames an executable's main,
// so libFuzzer's own main is not used).
#include <stdint.h>
#include <stddef.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
