// trace.cpp: little-endian binary reader and writer of the CTRC format.
#include "cluster/trace.h"

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
    Cursor(const uint8_t* data, size_t size, const std::string& path) : p_(data), end_(data + size), path_(path) {}
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
        need(n * sizeof(T));
        out.resize(n);
        std::memcpy(out.data(), p_, n * sizeof(T));
        p_ += n * sizeof(T);
    }
    bool done() const { return p_ == end_; }

private:
    void need(size_t n) {
        if (static_cast<size_t>(end_ - p_) < n) fail("{}: trace is truncated", path_);
    }
    const uint8_t* p_;
    const uint8_t* end_;
    std::string path_;
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

Trace trace_read(const std::string& path) {
    MappedFile f(path);
    Cursor c(f.data(), f.size(), path);
    char magic[4];
    for (char& m : magic) m = static_cast<char>(c.get<uint8_t>());
    if (std::memcmp(magic, kMagic, 4) != 0) fail("{}: not a Chronos trace (bad magic)", path);
    const uint32_t version = c.get<uint32_t>();
    if (version != kTraceVersion) fail("{}: trace version {} is not supported (expected {})", path, version, kTraceVersion);
    Trace t;
    t.shape.layers = c.get<uint32_t>();
    t.shape.experts = c.get<uint32_t>();
    t.shape.top_k = c.get<uint32_t>();
    c.get<uint32_t>();
    if (t.shape.layers == 0 || t.shape.experts == 0 || t.shape.top_k == 0 || t.shape.top_k > t.shape.experts) {
        fail("{}: trace header has an invalid shape", path);
    }
    const uint64_t n_seq = c.get<uint64_t>();
    const uint64_t n_tok = c.get<uint64_t>();
    if (n_seq > f.size() || n_tok > f.size()) fail("{}: trace header counts exceed the file", path);
    const size_t per_token = static_cast<size_t>(t.shape.layers) * t.shape.top_k;
    uint64_t seen = 0;
    t.sequences.resize(n_seq);
    for (auto& s : t.sequences) {
        const uint32_t T = c.get<uint32_t>();
        s.prompt_len = c.get<uint32_t>();
        if (s.prompt_len > T) fail("{}: a sequence's prompt is longer than the sequence", path);
        if (static_cast<uint64_t>(T) * (4 + per_token * 6) > f.size()) fail("{}: trace is truncated", path);
        c.get_array(s.tokens, T);
        c.get_array(s.experts, T * per_token);
        c.get_array(s.weights, T * per_token);
        for (uint16_t e : s.experts) {
            if (e >= t.shape.experts) fail("{}: expert id {} out of range ({} experts)", path, e, t.shape.experts);
        }
        seen += T;
    }
    if (seen != n_tok) fail("{}: header says {} tokens, sequences hold {}", path, n_tok, seen);
    if (!c.done()) fail("{}: trailing bytes after the last sequence", path);
    return t;
}

}  // namespace chronos
