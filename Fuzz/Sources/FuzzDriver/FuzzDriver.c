// Empty: the header declares libFuzzer's LLVMFuzzerRunDriver for the Swift fuzzers.
#include "FuzzDriver.h"
