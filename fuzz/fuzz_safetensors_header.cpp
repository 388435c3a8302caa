// fuzz_safetensors_header.cpp: libFuzzer target for safetensors_parse. Any input must either
// parse into a header whose tensors lie inside the buffer without overlap, or be rejected
// with chronos::Error; a crash, a sanitizer report or another exception is a bug.
#include <cstdint>
#include <cstdlib>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        chronos::SafetensorsHeader h = chronos::safetensors_parse(data, size, "fuzz");
        // Accepted: the invariants the reader promises must hold.
        uint64_t buffer = size - h.data_start;
        uint64_t cursor = 0;
        for (const chronos::TensorInfo& t : h.tensors) {
            if (t.begin != cursor || t.end > buffer || t.end < t.begin) std::abort();
            if (t.nbytes() != static_cast<uint64_t>(t.numel()) * chronos::dtype_size(t.dtype)) std::abort();
            // Touch the bytes so ASan checks the range.
            volatile uint8_t sink = 0;
            if (t.nbytes() > 0) sink = data[h.data_start + t.end - 1];
            (void)sink;
            cursor = t.end;
        }
        if (cursor != buffer) std::abort();
    } catch (const chronos::Error&) {
        // Rejected cleanly.
    }
    return 0;
}
