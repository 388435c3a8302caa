// trace.h: expert-activation traces (`chronos trace`), format "CTRC" version 1
// (docs/trace-format.md). For every token of every sequence: each MoE layer's top-k experts
// and gate weights, plus where the prompt ends and the continuation begins.
//
//     chronos::TraceWriter w("cal.ctrc", {.layers = 4, .experts = 8, .top_k = 2});
//     w.add_sequence(tokens, prompt_len, experts, weights);  // experts [T][L][k]
//     w.finish();
//     chronos::Trace t = chronos::trace_read("cal.ctrc");
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/file_io.h"

namespace chronos {

constexpr uint32_t kTraceVersion = 1;

struct TraceShape {
    uint32_t layers = 0;
    uint32_t experts = 0;
    uint32_t top_k = 0;
};

struct TraceSequence {
    std::vector<uint32_t> tokens;     // [T]
    uint32_t prompt_len = 0;          // tokens [0, prompt_len) are the prompt
    std::vector<uint16_t> experts;    // [T][layers][top_k], expert ids
    std::vector<float> weights;       // [T][layers][top_k], gate weights as applied
    uint16_t expert(size_t t, size_t layer, size_t slot, const TraceShape& s) const {
        return experts[(t * s.layers + layer) * s.top_k + slot];
    }
};

struct Trace {
    TraceShape shape;
    std::vector<TraceSequence> sequences;
    uint64_t tokens() const;
};

class TraceWriter {
public:
    TraceWriter(const std::string& path, const TraceShape& shape);
    void add_sequence(const TraceSequence& seq);
    // Writes the header's counts and publishes the file atomically.
    void finish();

private:
    std::string path_;
    TraceShape shape_;
    std::vector<TraceSequence> pending_;
};

// Parses and validates a trace held in memory: a wrong magic or version, an invalid shape,
// counts the bytes cannot hold, a prompt longer than its sequence, an expert id >= E or chosen
// twice by one token in one layer, a record cut short, a token total unlike the header's and
// trailing bytes each throw chronos::Error naming `what` (fuzz/fuzz_trace.cpp holds it to that).
Trace trace_parse(const uint8_t* data, size_t size, const std::string& what);
// Maps the file and parses it.
Trace trace_read(const std::string& path);

}  // namespace chronos
