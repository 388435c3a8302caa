// hf_checkpoint.cpp: see hf_checkpoint.h.
#include "format/hf_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

using nlohmann::json;

namespace {

// Reads exactly n bytes at offset, or fails naming the file.
void pread_exact(int fd, uint8_t* dst, uint64_t n, uint64_t offset, const std::string& path) {
    while (n > 0) {
        const ssize_t got = ::pread(fd, dst, n, static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail("{}: read failed: {}", path, std::strerror(errno));
        if (got == 0) fail("{}: file ends early (truncated?)", path);
        dst += got;
        n -= static_cast<uint64_t>(got);
        offset += static_cast<uint64_t>(got);
    }
}

struct Fd {
    int fd = -1;
    Fd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd < 0) fail("cannot open {}: {}", path, std::strerror(errno));
    }
    ~Fd() { ::close(fd); }
};

// A shard's header only: its first 8 + N bytes, checked against the file's real size.
HfCheckpoint::Shard shard_open(const std::string& path) {
    if (!file_exists(path)) fail("{}: no such shard (named by the checkpoint's index)", path);
    Fd f(path);
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) fail("cannot stat {}: {}", path, std::strerror(errno));
    HfCheckpoint::Shard s;
    s.path = path;
    s.file_size = static_cast<uint64_t>(st.st_size);
    if (s.file_size < 8) fail("{}: too short for a safetensors file ({} bytes)", path, s.file_size);
    uint8_t len[8];
    pread_exact(f.fd, len, 8, 0, path);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
    if (n > kSafetensorsMaxHeader || n > s.file_size - 8) fail("{}: safetensors header length {} does not fit the file ({} bytes)", path, n, s.file_size);
    std::vector<uint8_t> head(8 + n);
    pread_exact(f.fd, head.data(), 8 + n, 0, path);
    s.header = safetensors_parse(head.data(), s.file_size, path);  // checks every offset against the file's size
    return s;
}

}  // namespace

const TensorInfo& HfCheckpoint::info(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("{}: the checkpoint has no tensor {}", dir, name);
    return shards[it->second.first].header.tensors[it->second.second];
}

std::vector<std::string> HfCheckpoint::names() const {
    std::vector<std::string> out;
    for (const auto& [name, unused] : where_) out.push_back(name);
    return out;
}

void HfCheckpoint::read_f32(const std::string& name, std::vector<float>& out) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("{}: the checkpoint has no tensor {}", dir, name);
    const Shard& s = shards[it->second.first];
    const TensorInfo& t = s.header.tensors[it->second.second];
    const uint64_t n = static_cast<uint64_t>(t.numel());
    out.resize(n);
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16) {
        fail("{}: tensor {} is {}; import reads F32, BF16 and F16 weights", s.path, name, dtype_name(t.dtype));
    }
    Fd f(s.path);
    if (t.dtype == DType::F32) {
        pread_exact(f.fd, reinterpret_cast<uint8_t*>(out.data()), t.nbytes(), s.header.data_start + t.begin, s.path);
        return;
    }
    raw_.resize(t.nbytes());
    pread_exact(f.fd, raw_.data(), t.nbytes(), s.header.data_start + t.begin, s.path);
    const uint16_t* h = reinterpret_cast<const uint16_t*>(raw_.data());
    if (t.dtype == DType::BF16) {
        for (uint64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(h[i]);
    } else {
        for (uint64_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
    }
}

DType HfCheckpoint::source_dtype() const {
    bool bf16 = false, f16 = false;
    for (const Shard& s : shards) {
        for (const TensorInfo& t : s.header.tensors) {
            if (t.shape.size() < 2) continue;  // norms and biases are often kept in F32 beside bf16 matrices
            if (t.dtype == DType::F32) return DType::F32;
            bf16 |= t.dtype == DType::BF16;
            f16 |= t.dtype == DType::F16;
        }
    }
    return bf16 ? DType::BF16 : f16 ? DType::F16 : DType::F32;
}

uint64_t HfCheckpoint::total_bytes() const {
    uint64_t n = 0;
    for (const Shard& s : shards) n += s.file_size;
    return n;
}

HfCheckpoint hf_open(const std::string& dir) {
    if (!dir_exists(dir)) fail("{}: no such checkpoint folder", dir);
    HfCheckpoint hf;
    hf.dir = dir;
    const std::string config_path = dir + "/config.json";
    if (!file_exists(config_path)) fail("{}: no config.json (not a Hugging Face checkpoint folder?)", dir);
    try {
        hf.config = json::parse(file_read_all(config_path));
    } catch (const json::parse_error& e) {
        fail("{}: invalid JSON: {}", config_path, e.what());
    }
    if (!hf.config.is_object()) fail("{}: not a JSON object", config_path);

    const std::string index_path = dir + "/model.safetensors.index.json";
    std::map<std::string, std::string> weight_map;  // tensor -> shard file name
    std::vector<std::string> files;
    if (file_exists(index_path)) {
        json index;
        try {
            index = json::parse(file_read_all(index_path));
        } catch (const json::parse_error& e) {
            fail("{}: invalid JSON: {}", index_path, e.what());
        }
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
            fail("{}: no \"weight_map\" object", index_path);
        }
        for (const auto& [name, file] : index["weight_map"].items()) {
            if (!file.is_string()) fail("{}: the shard of {} is not a file name", index_path, name);
            const std::string f = file.get<std::string>();
            // A shard is a file of this folder: no path components.
            if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
                fail("{}: shard name \"{}\" of {} is not a file name in the folder", index_path, f, name);
            }
            weight_map[name] = f;
            if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
        }
        std::sort(files.begin(), files.end());
    } else if (file_exists(dir + "/model.safetensors")) {
        files.push_back("model.safetensors");
    } else {
        fail("{}: neither model.safetensors nor model.safetensors.index.json", dir);
    }

    for (const std::string& f : files) hf.shards.push_back(shard_open(dir + "/" + f));
    for (size_t s = 0; s < hf.shards.size(); ++s) {
        const auto& tensors = hf.shards[s].header.tensors;
        for (size_t i = 0; i < tensors.size(); ++i) {
            const std::string& name = tensors[i].name;
            if (hf.where_.count(name)) {
                fail("{}: tensor {} is in both {} and {}", dir, name, hf.shards[hf.where_[name].first].path, hf.shards[s].path);
            }
            if (!weight_map.empty()) {
                auto it = weight_map.find(name);
                if (it == weight_map.end()) fail("{}: {} holds {}, which the index does not list", index_path, hf.shards[s].path, name);
                if (dir + "/" + it->second != hf.shards[s].path) {
                    fail("{}: the index puts {} in {}, but it is in {}", index_path, name, it->second, hf.shards[s].path);
                }
            }
            hf.where_[name] = {s, i};
        }
    }
    for (const auto& [name, file] : weight_map) {
        if (!hf.where_.count(name)) fail("{}: the index names {} in {}, which does not hold it", index_path, name, file);
    }
    return hf;
}

}  // namespace chronos
