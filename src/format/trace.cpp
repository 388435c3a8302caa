// trace.cpp: little-endian binary reader and writer of the CTRC format.
#include "format/trace.h"

#include <cstring>

#include "core/error.h"

namespace chronos {

namespace {

constexpr char kMagic[4] = {'C', 'T', 'R', 'C'};

template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class Cursor {
public:
    Cursor(const uint8_t* data, size_t size, const std::string& what) : p_(data), end_(data + size), what_(what) {}
    template <typename T>
    T get() {
        need(sizeof(T));
        T v;
        std::memcpy(&v, p_, sizeof(T));
        p_ += sizeof(T);
        return v;
    }
    template <typename T>
    void get_array(std::vector<T>& out, size_t n) {
        if (n > remaining() / sizeof(T)) fail("{}: trace is truncated", what_);
        out.resize(n);
        if (n == 0) return;  // memcpy wants non-null pointers even for no bytes
        std::memcpy(out.data(), p_, n * sizeof(T));
        p_ += n * sizeof(T);
    }
    bool done() const { return p_ == end_; }
    uint64_t remaining() const { return static_cast<uint64_t>(end_ - p_); }

private:
    void need(size_t n) {
        if (static_cast<size_t>(end_ - p_) < n) fail("{}: trace is truncated", what_);
    }
    const uint8_t* p_;
    const uint8_t* end_;
    std::string what_;  // names the trace in messages
};

}  // namespace

uint64_t Trace::tokens() const {
    uint64_t n = 0;
    for (const auto& s : sequences) n += s.tokens.size();
    return n;
}

TraceWriter::TraceWriter(const std::string& path, const TraceShape& shape) : path_(path), shape_(shape) {
    if (shape.layers == 0 || shape.experts == 0 || shape.top_k == 0 || shape.top_k > shape.experts || shape.experts > 65535) {
        fail("trace: invalid shape (layers {}, experts {}, top_k {})", shape.layers, shape.experts, shape.top_k);
    }
}

void TraceWriter::add_sequence(const TraceSequence& seq) {
    const size_t per_token = static_cast<size_t>(shape_.layers) * shape_.top_k;
    CHRONOS_ASSERT(seq.experts.size() == seq.tokens.size() * per_token, "experts size");
    CHRONOS_ASSERT(seq.weights.size() == seq.tokens.size() * per_token, "weights size");
    CHRONOS_ASSERT(seq.prompt_len <= seq.tokens.size(), "prompt longer than sequence");
    pending_.push_back(seq);
}

void TraceWriter::finish() {
    std::string out;
    out.append(kMagic, 4);
    put<uint32_t>(out, kTraceVersion);
    put<uint32_t>(out, shape_.layers);
    put<uint32_t>(out, shape_.experts);
    put<uint32_t>(out, shape_.top_k);
    put<uint32_t>(out, 0);  // reserved
    put<uint64_t>(out, pending_.size());
    uint64_t tokens = 0;
    for (const auto& s : pending_) tokens += s.tokens.size();
    put<uint64_t>(out, tokens);
    for (const auto& s : pending_) {
        put<uint32_t>(out, static_cast<uint32_t>(s.tokens.size()));
        put<uint32_t>(out, s.prompt_len);
        out.append(reinterpret_cast<const char*>(s.tokens.data()), s.tokens.size() * 4);
        out.append(reinterpret_cast<const char*>(s.experts.data()), s.experts.size() * 2);
        out.append(reinterpret_cast<const char*>(s.weights.data()), s.weights.size() * 4);
    }
    file_write_atomic(path_, out);
}

Trace trace_parse(const uint8_t* data, size_t size, const std::string& what) {
    Cursor c(data, size, what);
    char magic[4];
    for (char& m : magic) m = static_cast<char>(c.get<uint8_t>());
    if (std::memcmp(magic, kMagic, 4) != 0) fail("{}: not a Chronos trace (bad magic)", what);
    const uint32_t version = c.get<uint32_t>();
    if (version != kTraceVersion) fail("{}: trace version {} is not supported (expected {})", what, version, kTraceVersion);
    Trace t;
    t.shape.layers = c.get<uint32_t>();
    t.shape.experts = c.get<uint32_t>();
    t.shape.top_k = c.get<uint32_t>();
    c.get<uint32_t>();
    // Expert ids are u16, so more than 65535 experts cannot be written (TraceWriter refuses them).
    if (t.shape.layers == 0 || t.shape.experts == 0 || t.shape.top_k == 0 || t.shape.top_k > t.shape.experts || t.shape.experts > 65535) {
        fail("{}: trace header has an invalid shape (layers {}, experts {}, top_k {})", what, t.shape.layers, t.shape.experts, t.shape.top_k);
    }
    const uint64_t n_seq = c.get<uint64_t>();
    const uint64_t n_tok = c.get<uint64_t>();
    // Each record takes at least 8 bytes and each token at least 4: counts beyond what the rest
    // of the file can hold are refused before anything is allocated for them.
    if (n_seq > c.remaining() / 8 || n_tok > c.remaining() / 4) fail("{}: trace header counts exceed the file", what);
    // At most 2^32 x 65535 < 2^48 ids per token, so the per-token byte count cannot overflow.
    const uint64_t per_token = static_cast<uint64_t>(t.shape.layers) * t.shape.top_k;
    const uint64_t token_bytes = 4 + per_token * (sizeof(uint16_t) + sizeof(float));
    uint64_t seen = 0;
    t.sequences.resize(n_seq);
    // Where each expert id was last seen, to find an id repeated among one token's top-k in one
    // layer in O(k) (stamp = index of the (token, layer) row + 1).
    std::vector<uint64_t> last_row(t.shape.experts, 0);
    uint64_t row = 0;
    for (size_t si = 0; si < t.sequences.size(); ++si) {
        TraceSequence& s = t.sequences[si];
        const uint32_t T = c.get<uint32_t>();
        s.prompt_len = c.get<uint32_t>();
        if (s.prompt_len > T) fail("{}: a sequence's prompt is longer than the sequence", what);
        // A division, not T * token_bytes, which can wrap around 2^64.
        if (T > c.remaining() / token_bytes) fail("{}: trace is truncated", what);
        c.get_array(s.tokens, T);
        c.get_array(s.experts, T * per_token);
        c.get_array(s.weights, T * per_token);
        for (size_t i = 0; i < s.experts.size(); ++i) {
            const uint16_t e = s.experts[i];
            if (e >= t.shape.experts) fail("{}: expert id {} out of range ({} experts)", what, e, t.shape.experts);
            if (i % t.shape.top_k == 0) ++row;
            if (last_row[e] == row) {
                fail("{}: sequence {} token {} layer {} chooses expert {} twice", what, si, i / per_token, i / t.shape.top_k % t.shape.layers, e);
            }
            last_row[e] = row;
        }
        seen += T;
    }
    if (seen != n_tok) fail("{}: header says {} tokens, sequences hold {}", what, n_tok, seen);
    if (!c.done()) fail("{}: trailing bytes after the last sequence", what);
    return t;
}

Trace trace_read(const std::string& path) {
    MappedFile f(path);
    return trace_parse(f.data(), f.size(), path);
}

}  // namespace chronos
