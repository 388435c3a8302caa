// safetensors.h: reader (mmap, zero-copy) and atomic writer for the safetensors format.
//
// Layout (https://github.com/huggingface/safetensors, "Format"):
//   [u64 little-endian N][N bytes of JSON header, may end in spaces][byte buffer]
//   header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "value", ...}}   (offsets relative to the byte buffer)
// The reader accepts only what the specification allows: the JSON must be well formed and
// start with '{', dtypes known, shape * dtype size == end - begin, offsets inside the buffer,
// tensors neither overlapping nor leaving holes, and the buffer must end at the end of the file.
// Anything else throws chronos::Error naming the file and the fault.
//
//     chronos::SafetensorsFile f("model.safetensors");
//     const chronos::TensorView& t = f.tensor("model.norm.weight");
//     const float* w = t.as<float>();             // points into the mapping
//
//     chronos::SafetensorsWriter w;
//     w.add("x", chronos::DType::F32, {2, 3}, data, 24);
//     w.write("out.safetensors");                  // temp file, fsync, rename
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "format/dtype.h"

namespace chronos {

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0;  // byte offsets inside the byte buffer
    uint64_t end = 0;

    int64_t numel() const;
    uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // ordered by data offset
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0;  // file offset of the byte buffer (8 + N)
};

// Largest header accepted (the reference implementation's limit).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

// Parses and validates the header of a whole safetensors file held in memory.
// `what` names the source in error messages. Throws chronos::Error on any fault.
SafetensorsHeader safetensors_parse(const uint8_t* file, uint64_t file_size, const std::string& what);

struct TensorView {
    const TensorInfo* info = nullptr;
    const uint8_t* data = nullptr;

    template <typename T>
    const T* as() const {
        return reinterpret_cast<const T*>(data);
    }
};

class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);

    const SafetensorsHeader& header() const { return header_; }
    const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
    bool has(const std::string& name) const { return index_.count(name) != 0; }
    // Throws chronos::Error if absent.
    TensorView tensor(const std::string& name) const;
    // Drops a tensor's pages from this process's resident set once it has been read (a pass
    // over a checkpoint larger than memory; MappedFile::drop_pages).
    void drop_pages(const TensorView& t) const { file_.drop_pages(t.data, t.info->nbytes()); }
    const std::string& path() const { return file_.path(); }
    uint64_t file_size() const { return file_.size(); }
    // The byte buffer after the header (every tensor's bytes, in file order).
    const uint8_t* buffer() const { return file_.data() + header_.data_start; }
    uint64_t buffer_bytes() const { return file_.size() - header_.data_start; }

private:
    MappedFile file_;
    SafetensorsHeader header_;
    std::map<std::string, size_t> index_;
};

class SafetensorsWriter {
public:
    // Copies nothing: `data` must stay valid until write() returns.
    void add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
             const void* data, uint64_t nbytes);
    void set_metadata(const std::string& key, const std::string& value);
    // Pads the header with spaces so that the byte buffer starts at a multiple of `alignment`
    // (default 8). Packs use 4096 so that tensor offsets can be page-aligned in the file.
    void set_header_alignment(uint64_t alignment) { header_alignment_ = alignment; }
    // Bytes of the header JSON with its padding, as write() will emit it.
    uint64_t data_start() const { return 8 + header_json().size(); }
    // The header JSON and the buffer's layout, without writing (exposed for tests).
    std::string header_json() const;
    // Writes atomically: `path` is either the old file or the complete new one.
    void write(const std::string& path) const;
    // The same, for tensors added with data == nullptr: emit(i, out) writes entry i's bytes
    // (exactly its nbytes, checked) when its turn comes, so that a file larger than memory is
    // written one tensor at a time.
    void write_streamed(const std::string& path, const std::function<void(size_t, AtomicFile&)>& emit) const;

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
        const void* data;
        uint64_t nbytes;
    };
    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
    uint64_t header_alignment_ = 8;
};

}  // namespace chronos
