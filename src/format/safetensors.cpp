// safetensors.cpp: strict header validation and the atomic writer.
#include "format/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

namespace chronos {

using nlohmann::json;

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

namespace {

// nlohmann keeps the last of duplicate keys silently; a duplicate tensor name is a malformed
// file, so the parse callback rejects duplicates at every depth.
json parse_json_rejecting_duplicates(const char* begin, const char* end, const std::string& what) {
    std::vector<std::set<std::string>> keys_stack;
    std::string duplicate;
    auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
        switch (event) {
            case json::parse_event_t::object_start: keys_stack.emplace_back(); break;
            case json::parse_event_t::object_end:
                if (!keys_stack.empty()) keys_stack.pop_back();
                break;
            case json::parse_event_t::key:
                if (!keys_stack.empty() && !keys_stack.back().insert(parsed.get<std::string>()).second &&
                    duplicate.empty()) {
                    duplicate = parsed.get<std::string>();
                }
                break;
            default: break;
        }
        return true;
    };
    json header;
    try {
        header = json::parse(begin, end, callback);
    } catch (const json::exception& e) {
        fail("{}: safetensors header is not valid JSON: {}", what, e.what());
    }
    if (!duplicate.empty()) fail("{}: safetensors header has duplicate key \"{}\"", what, duplicate);
    return header;
}

uint64_t read_u64_le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

uint64_t json_to_u64(const json& value, const std::string& what, const std::string& name,
                     const char* field) {
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
        fail("{}: tensor \"{}\": {} must hold non-negative integers", what, name, field);
    }
    return value.get<uint64_t>();
}

TensorInfo parse_tensor_entry(const std::string& name, const json& entry, const std::string& what) {
    if (!entry.is_object()) fail("{}: tensor \"{}\": entry is not an object", what, name);
    for (const auto& [key, unused] : entry.items()) {
        if (key != "dtype" && key != "shape" && key != "data_offsets") {
            fail("{}: tensor \"{}\": unknown field \"{}\"", what, name, key);
        }
    }
    if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
        fail("{}: tensor \"{}\": needs dtype, shape and data_offsets", what, name);
    }
    TensorInfo info;
    info.name = name;
    const json& dtype = entry["dtype"];
    if (!dtype.is_string()) fail("{}: tensor \"{}\": dtype is not a string", what, name);
    auto parsed = dtype_parse(dtype.get<std::string>());
    if (!parsed) fail("{}: tensor \"{}\": unknown dtype \"{}\"", what, name, dtype.get<std::string>());
    info.dtype = *parsed;

    const json& shape = entry["shape"];
    if (!shape.is_array()) fail("{}: tensor \"{}\": shape is not an array", what, name);
    uint64_t numel = 1;
    for (const json& d : shape) {
        uint64_t dim = json_to_u64(d, what, name, "shape");
        if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel)) {
            fail("{}: tensor \"{}\": shape overflows", what, name);
        }
        info.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(info.dtype)), &nbytes)) {
        fail("{}: tensor \"{}\": byte size overflows", what, name);
    }

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) {
        fail("{}: tensor \"{}\": data_offsets must be [begin, end]", what, name);
    }
    info.begin = json_to_u64(offsets[0], what, name, "data_offsets");
    info.end = json_to_u64(offsets[1], what, name, "data_offsets");
    if (info.end < info.begin) fail("{}: tensor \"{}\": data_offsets end before begin", what, name);
    if (info.end - info.begin != nbytes) {
        fail("{}: tensor \"{}\": shape and dtype give {} bytes but data_offsets span {}", what, name,
             nbytes, info.end - info.begin);
    }
    return info;
}

}  // namespace

SafetensorsHeader safetensors_parse(const uint8_t* file, uint64_t file_size, const std::string& what) {
    if (file_size < 8) fail("{}: too short for a safetensors file ({} bytes)", what, file_size);
    uint64_t n = read_u64_le(file);
    if (n > kSafetensorsMaxHeader) fail("{}: not a safetensors file (its header length would be {} bytes)", what, n);
    if (n > file_size - 8) {
        fail("{}: safetensors header length {} exceeds the file ({} bytes)", what, n, file_size);
    }
    if (n < 2 || file[8] != '{') fail("{}: safetensors header must start with '{{'", what);

    const char* begin = reinterpret_cast<const char*>(file + 8);
    json header = parse_json_rejecting_duplicates(begin, begin + n, what);
    if (!header.is_object()) fail("{}: safetensors header is not a JSON object", what);

    SafetensorsHeader out;
    out.data_start = 8 + n;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) fail("{}: __metadata__ is not an object", what);
            for (const auto& [mk, mv] : value.items()) {
                if (!mv.is_string()) fail("{}: __metadata__ value of \"{}\" is not a string", what, mk);
                out.metadata[mk] = mv.get<std::string>();
            }
            continue;
        }
        out.tensors.push_back(parse_tensor_entry(key, value, what));
    }

    // The byte buffer must be covered exactly: sorted by offset, each tensor starts where the
    // previous ended, and the last ends at the end of the file.
    std::stable_sort(out.tensors.begin(), out.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t buffer_size = file_size - out.data_start;
    uint64_t cursor = 0;
    for (const TensorInfo& t : out.tensors) {
        if (t.begin < cursor) fail("{}: tensor \"{}\" overlaps the previous tensor", what, t.name);
        if (t.begin > cursor) {
            fail("{}: hole of {} bytes before tensor \"{}\" in the byte buffer", what, t.begin - cursor, t.name);
        }
        if (t.end > buffer_size) {
            fail("{}: tensor \"{}\" ends at byte {} but the buffer has {} bytes", what, t.name, t.end, buffer_size);
        }
        cursor = t.end;
    }
    if (cursor != buffer_size) {
        fail("{}: byte buffer has {} bytes but tensors cover {}", what, buffer_size, cursor);
    }
    return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
    header_ = safetensors_parse(file_.data(), file_.size(), path);
    for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

TensorView SafetensorsFile::tensor(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) fail("{}: no tensor named \"{}\"", path(), name);
    const TensorInfo& info = header_.tensors[it->second];
    return TensorView{&info, file_.data() + header_.data_start + info.begin};
}

void SafetensorsWriter::add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                            const void* data, uint64_t nbytes) {
    if (name == "__metadata__") fail("safetensors: \"__metadata__\" is not a valid tensor name");
    for (const Entry& e : entries_) {
        if (e.name == name) fail("safetensors: tensor \"{}\" added twice", name);
    }
    uint64_t numel = 1;
    for (int64_t d : shape) {
        CHRONOS_ASSERT(d >= 0, "negative dimension");
        numel *= static_cast<uint64_t>(d);
    }
    if (numel * dtype_size(dtype) != nbytes) {
        fail("safetensors: tensor \"{}\" has {} bytes but its shape needs {}", name, nbytes,
             numel * dtype_size(dtype));
    }
    entries_.push_back(Entry{name, dtype, shape, data, nbytes});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
    metadata_[key] = value;
}

std::string SafetensorsWriter::header_json() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
        nlohmann::ordered_json meta = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata_) meta[k] = v;
        header["__metadata__"] = meta;
    }
    uint64_t offset = 0;
    for (const Entry& e : entries_) {
        nlohmann::ordered_json entry;
        entry["dtype"] = dtype_name(e.dtype);
        entry["shape"] = e.shape;
        entry["data_offsets"] = {offset, offset + e.nbytes};
        header[e.name] = entry;
        offset += e.nbytes;
    }
    std::string text = header.dump();
    // Pad with spaces so the byte buffer starts aligned (allowed by the format).
    while ((8 + text.size()) % header_alignment_ != 0) text.push_back(' ');
    return text;
}

void SafetensorsWriter::write(const std::string& path) const {
    write_streamed(path, [&](size_t i, AtomicFile& out) { out.write(entries_[i].data, entries_[i].nbytes); });
}

void SafetensorsWriter::write_streamed(const std::string& path, const std::function<void(size_t, AtomicFile&)>& emit) const {
    std::string header = header_json();
    uint8_t len[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    AtomicFile out(path);
    out.write(len, 8);
    out.write(header);
    for (size_t i = 0; i < entries_.size(); ++i) {
        const uint64_t before = out.offset();
        emit(i, out);
        CHRONOS_ASSERT(out.offset() - before == entries_[i].nbytes, "a streamed tensor wrote other than its size");
    }
    out.commit();
}

}  // namespace chronos
