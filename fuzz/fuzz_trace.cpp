// fuzz_trace.cpp: libFuzzer target for trace_parse (CTRC expert traces, docs/trace-format.md).
// Any input must either parse into a trace whose arrays have the sizes the shape implies, with
// expert ids in range and distinct within one token's layer, or be rejected with
// chronos::Error; a crash, a sanitizer report, a huge allocation or another exception is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "format/trace.h"
#include "core/error.h"
#include "fuzz_rejection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    chronos::Trace t;
    try {
        t = chronos::trace_parse(data, size, "fuzz");
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);  // rejected cleanly
        return 0;
    }
    // Accepted: the promises of the reader must hold.
    const chronos::TraceShape& s = t.shape;
    if (s.layers == 0 || s.top_k == 0 || s.top_k > s.experts || s.experts > 65535) std::abort();
    const size_t per_token = static_cast<size_t>(s.layers) * s.top_k;
    uint64_t bytes = 40;
    for (const chronos::TraceSequence& seq : t.sequences) {
        const size_t T = seq.tokens.size();
        if (seq.prompt_len > T) std::abort();
        if (seq.experts.size() != T * per_token || seq.weights.size() != T * per_token) std::abort();
        for (size_t tok = 0; tok < T; ++tok) {
            for (size_t l = 0; l < s.layers; ++l) {
                for (size_t a = 0; a < s.top_k; ++a) {
                    const uint16_t e = seq.expert(tok, l, a, s);
                    if (e >= s.experts) std::abort();
                    for (size_t b = 0; b < a; ++b) {
                        if (seq.expert(tok, l, b, s) == e) std::abort();
                    }
                }
            }
        }
        bytes += 8 + 4 * T + 6 * T * per_token;
    }
    // Every byte of the input is accounted for.
    if (bytes != size) std::abort();
    return 0;
}
