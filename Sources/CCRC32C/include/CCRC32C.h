// CRC-32C with the processor's own instruction (SSE 4.2 on x86-64): CaptureStore's checksum of
// every record and index entry. Swift cannot reach the instruction, so this small C file does.
#ifndef BEAMTRACE_CCRC32C_H
#define BEAMTRACE_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when `beamtrace_crc32c_update` uses the instruction on this processor; 0 when it cannot (the
/// caller keeps its software table then).
int beamtrace_crc32c_hardware(void);

/// Runs the CRC-32C register `crc` over `count` bytes (no inversion before or after: the caller
/// does both, as the software version does).
uint32_t beamtrace_crc32c_update(uint32_t crc, const void *bytes, size_t count);

#endif
