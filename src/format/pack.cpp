// pack.cpp: writing, loading and verifying cluster packs.
#include "format/pack.h"

#include <xxhash.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_set>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"

namespace chronos {

namespace fs = std::filesystem;
using nlohmann::json;

uint64_t pack_checksum(const void* data, uint64_t size) { return XXH3_64bits(data, size); }

uint64_t pack_expert_bytes(WeightType t, int64_t H, int64_t F) {
    return weight_matrix_bytes(t, 2 * F, H) + weight_matrix_bytes(t, H, F);
}

uint64_t pack_slot_bytes(const PackManifest& m) {
    CHRONOS_ASSERT(!m.entries.empty(), "a pack manifest without experts");
    return (m.entries[0].length + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
}

std::vector<std::string> pack_dense_names(const ModelConfig& c) {
    std::vector<std::string> names{"model.embed_tokens.weight"};
    if (!c.tie_word_embeddings) names.push_back("lm_head.weight");
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        if (c.attention_pattern[static_cast<size_t>(l)] == AttentionKind::mla) {
            if (c.q_lora_rank > 0) {
                for (const char* n : {"self_attn.q_a_proj.weight", "self_attn.q_b_proj.weight"}) names.push_back(p + n);
            } else {
                names.push_back(p + "self_attn.q_proj.weight");
            }
            names.push_back(p + "self_attn.kv_a_proj_with_mqa.weight");
        } else {
            for (const char* n : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}) names.push_back(p + n);
        }
        names.push_back(p + "self_attn.o_proj.weight");
        if (!c.is_moe_layer(l)) {
            for (const char* n : {"gate_proj", "up_proj", "down_proj"}) names.push_back(p + "mlp." + n + ".weight");
        } else if (c.n_shared_experts > 0) {
            for (const char* n : {"gate_proj", "up_proj", "down_proj"}) names.push_back(p + "mlp.shared_experts." + n + ".weight");
        }
    }
    return names;
}

DType pack_stored_dtype(WeightType t) {
    switch (t) {
        case WeightType::f32: return DType::F32;
        case WeightType::bf16: return DType::BF16;
        case WeightType::f16: return DType::F16;
        case WeightType::q8:
        case WeightType::q4: return DType::U8;
    }
    return DType::U8;
}

std::vector<int64_t> pack_stored_shape(WeightType t, int64_t rows, int64_t cols) {
    if (weight_type_is_block(t)) return {rows, static_cast<int64_t>(weight_row_bytes(t, cols))};
    return {rows, cols};
}

namespace {

// One line of JSON for a value read from an input, for error messages: escaped and ASCII (a
// newline inside a string cannot split the one error line) and cut at 60 characters.
std::string brief(const json& v) {
    std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

WeightType weight_type_from(const std::string& s, const std::string& what, const char* field_name) {
    std::optional<WeightType> t = weight_type_parse(s);
    if (!t) fail("{}: unknown {} {}", what, field_name, brief(json(s)));
    return *t;
}

// Converts one fp32 matrix [rows, cols] to the stored type, appending to out.
void append_converted(const float* src, int64_t rows, int64_t cols, WeightType t, std::vector<uint8_t>& out) {
    const uint64_t rb = weight_row_bytes(t, cols);
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(rb * static_cast<uint64_t>(rows)));
    for (int64_t r = 0; r < rows; ++r) weight_quantize_row(t, src + r * cols, cols, out.data() + at + static_cast<uint64_t>(r) * rb);
}

// Writes the dense file of a pack generation: pack_dense_names' matrices as t, in that order.
PackDense dense_write(const Checkpoint& ck, const std::string& rel, WeightType t) {
    SafetensorsWriter w;
    w.set_metadata("format", "chronos-dense-v1");
    w.set_metadata("dtype", weight_type_name(t));
    w.set_metadata("layout", weight_type_layout(t));
    const std::vector<std::string> names = pack_dense_names(ck.config);
    for (const std::string& name : names) {
        const TensorInfo& info = *ck.weights->tensor(name).info;
        const int64_t rows = info.shape[0], cols = info.shape[1];
        w.add(name, pack_stored_dtype(t), pack_stored_shape(t, rows, cols), nullptr, weight_matrix_bytes(t, rows, cols));
    }
    // One matrix converted at a time, and the checksum of the byte buffer (the tensors in order)
    // taken as they are written: a model larger than memory is never held or re-read whole.
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), &XXH3_freeState);
    CHRONOS_ASSERT(hash != nullptr, "out of memory for a checksum state");
    XXH3_64bits_reset(hash.get());
    std::vector<uint8_t> blob;
    const std::string path = ck.dir + "/" + rel;
    w.write_streamed(path, [&](size_t i, AtomicFile& out) {
        TensorView v = ck.weights->tensor(names[i]);
        blob.clear();
        append_converted(v.as<float>(), v.info->shape[0], v.info->shape[1], t, blob);
        ck.weights->drop_pages(v);
        XXH3_64bits_update(hash.get(), blob.data(), blob.size());
        out.write(blob.data(), blob.size());
    });
    PackDense d;
    d.path = rel;
    d.dtype = t;
    d.bytes = std::filesystem::file_size(path);
    d.checksum = XXH3_64bits_digest(hash.get());
    return d;
}

}  // namespace

ClusterPlan cluster_plan_natural(int64_t layers, int64_t experts) {
    ClusterPlan plan;
    for (int64_t l = 0; l < layers; ++l) {
        std::vector<int64_t> c;
        for (int64_t e = 0; e < experts; ++e) c.push_back(l * experts + e);
        plan.clusters.push_back(c);
    }
    return plan;
}

PackManifest pack_write(const Checkpoint& ck, const ClusterPlan& plan, WeightType dtype, WeightType dense) {
    const ModelConfig& c = ck.config;
    const int64_t H = c.hidden_size, F = c.moe_intermediate_size, E = c.n_routed_experts;
    PackManifest m;
    m.layers = c.n_moe_layers();  // pairs count MoE layers (model_config.h)
    m.experts = E;
    m.hidden = H;
    m.inner = F;
    m.dtype = dtype;
    m.entries.resize(static_cast<size_t>(m.layers * E));
    std::vector<int> seen(m.entries.size(), 0);
    for (const auto& cluster : plan.clusters) {
        for (int64_t p : cluster) {
            if (p < 0 || p >= m.layers * E || seen[static_cast<size_t>(p)]++) fail("pack: cluster plan names pair {} twice or out of range", p);
        }
    }
    for (size_t p = 0; p < seen.size(); ++p) {
        if (!seen[p]) fail("pack: cluster plan leaves out layer {} expert {}", p / static_cast<size_t>(E), p % static_cast<size_t>(E));
    }

    // A fresh generation directory: the old manifest keeps pointing at old files until the new
    // manifest replaces it.
    std::random_device rd;
    const std::string gen = fmt::format("packs/gen-{:08x}", rd());
    dir_create(ck.dir + "/" + gen);
    const uint64_t expert_bytes = pack_expert_bytes(dtype, H, F);
    ProgressBar bar("pack", static_cast<uint64_t>(m.layers * E), "experts");
    for (size_t ci = 0; ci < plan.clusters.size(); ++ci) {
        const auto& cluster = plan.clusters[ci];
        const std::string rel = fmt::format("{}/cluster-{:04}.ctsr", gen, ci);
        // Stored bytes of every expert of the cluster, converted once.
        std::vector<std::vector<uint8_t>> blobs(cluster.size());
        for (size_t i = 0; i < cluster.size(); ++i) {
            const int64_t l = c.moe_layer(cluster[i] / E), e = cluster[i] % E;
            for (const char* proj : {"gate", "up", "down"}) {
                TensorView v = ck.weights->tensor(expert_tensor_name(l, e, proj));
                append_converted(v.as<float>(), v.info->shape[0], v.info->shape[1], dtype, blobs[i]);
                ck.weights->drop_pages(v);  // packing a model larger than memory holds one cluster at a time
            }
        }
        // Lay out: pad tensors so every expert starts 4096-aligned (the header is padded to 4096
        // too, so buffer offsets and file offsets align alike).
        SafetensorsWriter w;
        w.set_header_alignment(kPackAlignment);
        w.set_metadata("format", "chronos-pack-v1");
        w.set_metadata("dtype", weight_type_name(dtype));
        w.set_metadata("layout", weight_type_layout(dtype));
        static const std::vector<uint8_t> zeros(kPackAlignment, 0);
        uint64_t buffer = 0;
        int pad_id = 0;
        std::vector<uint64_t> buffer_offsets;
        for (size_t i = 0; i < cluster.size(); ++i) {
            const int64_t l = c.moe_layer(cluster[i] / E), e = cluster[i] % E;
            if (buffer % kPackAlignment != 0) {
                const uint64_t pad = kPackAlignment - buffer % kPackAlignment;
                w.add(fmt::format("__pad__.{}", pad_id++), DType::U8, {static_cast<int64_t>(pad)}, zeros.data(), pad);
                buffer += pad;
            }
            buffer_offsets.push_back(buffer);
            const uint8_t* blob = blobs[i].data();
            const uint64_t mat = weight_matrix_bytes(dtype, F, H);
            const DType st = pack_stored_dtype(dtype);
            w.add(expert_tensor_name(l, e, "gate"), st, pack_stored_shape(dtype, F, H), blob, mat);
            w.add(expert_tensor_name(l, e, "up"), st, pack_stored_shape(dtype, F, H), blob + mat, mat);
            w.add(expert_tensor_name(l, e, "down"), st, pack_stored_shape(dtype, H, F), blob + 2 * mat, weight_matrix_bytes(dtype, H, F));
            buffer += expert_bytes;
        }
        const uint64_t data_start = w.data_start();
        CHRONOS_ASSERT(data_start % kPackAlignment == 0, "pack header not aligned");
        w.write(ck.dir + "/" + rel);
        for (size_t i = 0; i < cluster.size(); ++i) {
            PackEntry& en = m.entries[static_cast<size_t>(cluster[i])];
            en.layer = cluster[i] / E;
            en.expert = cluster[i] % E;
            en.file = static_cast<int32_t>(ci);
            en.offset = data_start + buffer_offsets[i];
            en.length = expert_bytes;
            en.checksum = pack_checksum(blobs[i].data(), expert_bytes);
        }
        m.files.push_back(rel);
        m.file_bytes.push_back(data_start + buffer);
        m.clusters.push_back(cluster);
        bar.advance(cluster.size());
    }
    bar.finish();
    if (dense != WeightType::f32) m.dense = dense_write(ck, gen + "/dense.ctsr", dense);

    json j;
    j["format"] = "chronos-pack-manifest-v1";
    j["num_hidden_layers"] = m.layers;
    j["n_routed_experts"] = m.experts;
    j["hidden_size"] = m.hidden;
    j["moe_intermediate_size"] = m.inner;
    j["dtype"] = weight_type_name(dtype);
    j["alignment"] = kPackAlignment;
    if (!m.dense.path.empty()) {
        j["dense"] = {{"path", m.dense.path}, {"dtype", weight_type_name(m.dense.dtype)}, {"bytes", m.dense.bytes},
                      {"checksum", fmt::format("{:016x}", m.dense.checksum)}};
    }
    j["files"] = json::array();
    for (size_t f = 0; f < m.files.size(); ++f) j["files"].push_back({{"path", m.files[f]}, {"bytes", m.file_bytes[f]}, {"pairs", m.clusters[f]}});
    j["experts"] = json::array();
    for (const PackEntry& en : m.entries) {
        j["experts"].push_back({{"layer", en.layer}, {"expert", en.expert}, {"file", en.file}, {"offset", en.offset},
                                {"length", en.length}, {"checksum", fmt::format("{:016x}", en.checksum)}});
    }
    file_write_atomic(ck.dir + "/cluster_manifest.json", j.dump(1) + "\n");
    // Older generations are no longer referenced.
    for (const auto& entry : fs::directory_iterator(ck.dir + "/packs")) {
        if (entry.path().filename().string() != gen.substr(6)) {
            std::error_code ec;
            fs::remove_all(entry.path(), ec);
        }
    }
    return m;
}

namespace {

// Strict readers of manifest fields: a missing field, a wrong type, a fraction or a value out
// of range is an error naming the field, never a silent conversion (nlohmann's get<> would
// truncate 1.5 to 1 and wrap -1 to 2^64-1).
const json& field(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) fail("{}: missing field \"{}\"", where, key);
    return *it;
}

uint64_t field_uint(const json& obj, const char* key, const std::string& where, uint64_t max = UINT64_MAX) {
    const json& v = field(obj, key, where);
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
        const uint64_t x = v.get<uint64_t>();
        if (x <= max) return x;
        fail("{}: field \"{}\" is {}, above {}", where, key, x, max);
    }
    fail("{}: field \"{}\" must be a non-negative integer, got {}", where, key, brief(v));
}

const std::string& field_string(const json& obj, const char* key, const std::string& where) {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail("{}: field \"{}\" must be a string", where, key);
    return v.get_ref<const std::string&>();
}

const json& field_array(const json& obj, const char* key, const std::string& where) {
    const json& v = field(obj, key, where);
    if (!v.is_array()) fail("{}: field \"{}\" must be a list", where, key);
    return v;
}

// The writer spells checksums as exactly 16 hex digits; std::stoull would also take signs,
// spaces, "0x" and trailing junk, and throw its own exceptions.
uint64_t checksum_from_hex(const std::string& s, const std::string& where) {
    if (s.size() != 16) fail("{}: checksum {} is not 16 hex digits", where, brief(json(s)));
    uint64_t v = 0;
    for (char ch : s) {
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) fail("{}: checksum {} is not 16 hex digits", where, brief(json(s)));
        v = v << 4 | static_cast<uint64_t>(d);
    }
    return v;
}

// Pack files live inside the checkpoint: a relative path without "." or ".." components, so
// that a manifest cannot point the runtime at other files, and printable.
void check_pack_path(const std::string& rel, const std::string& what) {
    auto refuse = [&] { fail("{}: pack file path {} is not a plain relative path inside the checkpoint directory", what, brief(json(rel))); };
    if (rel.empty() || rel.front() == '/') refuse();
    // Control characters (NUL, newlines) have no place in a file name the writer makes.
    for (char ch : rel) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) refuse();
    }
    size_t at = 0;
    while (at <= rel.size()) {
        const size_t slash = std::min(rel.find('/', at), rel.size());
        const std::string part = rel.substr(at, slash - at);
        if (part.empty() || part == "." || part == "..") refuse();
        at = slash + 1;
    }
}

}  // namespace

PackManifest pack_manifest_parse(const std::string& text, const std::string& what, const ModelConfig& c) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", what, e.what());
    }
    if (!j.is_object()) fail("{}: manifest is not a JSON object", what);
    PackManifest m;
    if (field_string(j, "format", what) != "chronos-pack-manifest-v1") fail("{}: unknown manifest format", what);
    // Sizes are compared with config.json (validated, so bounded) before anything is allocated.
    const uint64_t layers = field_uint(j, "num_hidden_layers", what), experts = field_uint(j, "n_routed_experts", what);
    const uint64_t hidden = field_uint(j, "hidden_size", what), inner = field_uint(j, "moe_intermediate_size", what);
    // num_hidden_layers here counts the MoE layers, the pairs' layer index (model_config.h).
    if (layers != static_cast<uint64_t>(c.n_moe_layers()) || experts != static_cast<uint64_t>(c.n_routed_experts) ||
        hidden != static_cast<uint64_t>(c.hidden_size) || inner != static_cast<uint64_t>(c.moe_intermediate_size)) {
        fail("{}: manifest is for {} layers x {} experts (hidden {}, inner {}) but config.json has {} x {} ({}, {})", what, layers,
             experts, hidden, inner, c.n_moe_layers(), c.n_routed_experts, c.hidden_size, c.moe_intermediate_size);
    }
    m.layers = c.n_moe_layers();
    m.experts = c.n_routed_experts;
    m.hidden = c.hidden_size;
    m.inner = c.moe_intermediate_size;
    m.dtype = weight_type_from(field_string(j, "dtype", what), what, "expert dtype");
    if (j.contains("dense")) {
        const json& d = j["dense"];
        const std::string where = what + ": dense";
        if (!d.is_object()) fail("{} is not an object", where);
        m.dense.path = field_string(d, "path", where);
        check_pack_path(m.dense.path, where);
        m.dense.dtype = weight_type_from(field_string(d, "dtype", where), where, "dtype");
        m.dense.bytes = field_uint(d, "bytes", where);
        m.dense.checksum = checksum_from_hex(field_string(d, "checksum", where), where);
    }
    const uint64_t alignment = field_uint(j, "alignment", what);
    if (alignment != kPackAlignment) fail("{}: alignment is {}, this reader needs {}", what, alignment, kPackAlignment);
    const size_t n_pairs = static_cast<size_t>(m.layers * m.experts);

    const json& files = field_array(j, "files", what);
    const json& experts_list = field_array(j, "experts", what);
    if (experts_list.size() != n_pairs) fail("{}: {} expert entries for {} layers x {} experts", what, experts_list.size(), m.layers, m.experts);
    // Every pair sits in exactly one file's list; remember which, to check each entry against it.
    std::vector<int64_t> pair_file(n_pairs, -1);
    std::unordered_set<std::string> paths;
    for (size_t f = 0; f < files.size(); ++f) {
        const json& x = files[f];
        const std::string where = fmt::format("{}: files[{}]", what, f);
        if (!x.is_object()) fail("{} is not an object", where);
        const std::string& rel = field_string(x, "path", where);
        check_pack_path(rel, where);
        if (!paths.insert(rel).second) fail("{}: pack file {} is listed twice", what, rel);
        m.files.push_back(rel);
        m.file_bytes.push_back(field_uint(x, "bytes", where));
        std::vector<int64_t> pairs;
        for (const json& p : field_array(x, "pairs", where)) {
            if (!(p.is_number_unsigned() || (p.is_number_integer() && p.get<int64_t>() >= 0)) || p.get<uint64_t>() >= n_pairs) {
                fail("{}: pair {} is not a pair id (0 .. {})", where, brief(p), n_pairs - 1);
            }
            const size_t id = p.get<size_t>();
            if (pair_file[id] >= 0) fail("{}: pair {} (layer {} expert {}) is listed in two clusters", what, id, id / static_cast<size_t>(m.experts), id % static_cast<size_t>(m.experts));
            pair_file[id] = static_cast<int64_t>(f);
            pairs.push_back(static_cast<int64_t>(id));
        }
        // The writer makes no empty pack; refusing them also bounds the files by the pairs.
        if (pairs.empty()) fail("{} holds no experts", where);
        m.clusters.push_back(std::move(pairs));
    }

    m.entries.resize(n_pairs);
    std::vector<char> seen(n_pairs, 0);
    const uint64_t expected_len = pack_expert_bytes(m.dtype, m.hidden, m.inner);
    for (size_t i = 0; i < experts_list.size(); ++i) {
        const json& x = experts_list[i];
        const std::string where = fmt::format("{}: experts[{}]", what, i);
        if (!x.is_object()) fail("{} is not an object", where);
        PackEntry en;
        en.layer = static_cast<int64_t>(field_uint(x, "layer", where, INT64_MAX));
        en.expert = static_cast<int64_t>(field_uint(x, "expert", where, INT64_MAX));
        if (en.layer >= m.layers || en.expert >= m.experts) {
            fail("{}: layer {} expert {} is outside the manifest's {} layers x {} experts", where, en.layer, en.expert, m.layers, m.experts);
        }
        const uint64_t file = field_uint(x, "file", where);
        if (file >= m.files.size()) fail("{}: layer {} expert {} names file #{} which is not listed", what, en.layer, en.expert, file);
        en.file = static_cast<int32_t>(file);
        en.offset = field_uint(x, "offset", where);
        en.length = field_uint(x, "length", where);
        en.checksum = checksum_from_hex(field_string(x, "checksum", where), where);
        if (en.offset % kPackAlignment != 0) fail("{}: layer {} expert {} is not 4096-aligned", what, en.layer, en.expert);
        if (en.length != expected_len) fail("{}: layer {} expert {} has {} bytes, expected {}", what, en.layer, en.expert, en.length, expected_len);
        // Written as a subtraction: offset + length may wrap around 2^64.
        const uint64_t file_bytes = m.file_bytes[file];
        if (en.offset > file_bytes || en.length > file_bytes - en.offset) fail("{}: layer {} expert {} lies past the end of its file", what, en.layer, en.expert);
        const size_t p = static_cast<size_t>(en.layer * m.experts + en.expert);
        if (seen[p]++) fail("{}: layer {} expert {} listed twice", what, en.layer, en.expert);
        if (pair_file[p] != static_cast<int64_t>(file)) {
            fail("{}: layer {} expert {} names file #{} but {} lists it", what, en.layer, en.expert, file,
                 pair_file[p] < 0 ? std::string("no file") : fmt::format("file #{}", pair_file[p]));
        }
        m.entries[p] = en;
    }
    // Every pair has an entry (experts_list has n_pairs entries, none twice) and a file. Within
    // a file, experts lie in cluster order without overlap: one cluster is one sequential read.
    for (size_t f = 0; f < m.clusters.size(); ++f) {
        uint64_t end = 0;
        for (int64_t p : m.clusters[f]) {
            const PackEntry& en = m.entries[static_cast<size_t>(p)];
            if (en.offset < end) fail("{}: layer {} expert {} overlaps the expert before it in {}", what, en.layer, en.expert, m.files[f]);
            end = en.offset + en.length;
        }
    }
    return m;
}

PackManifest pack_manifest_load(const std::string& dir, const ModelConfig& c) {
    const std::string path = dir + "/cluster_manifest.json";
    if (!file_exists(path)) fail("{}: no cluster_manifest.json (run chronos pack)", dir);
    PackManifest m = pack_manifest_parse(file_read_all(path), path, c);
    for (size_t f = 0; f < m.files.size(); ++f) {
        const std::string fp = dir + "/" + m.files[f];
        if (!file_exists(fp)) fail("{}: pack file {} is missing", path, fp);
        std::error_code ec;
        const uint64_t size = fs::file_size(fp, ec);
        if (ec) fail("{}: cannot stat pack file {}: {}", path, fp, ec.message());
        if (size != m.file_bytes[f]) fail("{}: pack file {} has {} bytes, the manifest says {} (truncated or replaced?)", path, fp, size, m.file_bytes[f]);
    }
    if (!m.dense.path.empty()) {
        const std::string fp = dir + "/" + m.dense.path;
        if (!file_exists(fp)) fail("{}: dense file {} is missing", path, fp);
        std::error_code ec;
        const uint64_t size = fs::file_size(fp, ec);
        if (ec || size != m.dense.bytes) fail("{}: dense file {} has {} bytes, the manifest says {} (truncated or replaced?)", path, fp, size, m.dense.bytes);
    }
    return m;
}

void pack_verify(const std::string& dir, const ModelConfig& c) {
    PackManifest m = pack_manifest_load(dir, c);
    ProgressBar bar("verify", m.entries.size(), "experts");
    for (size_t f = 0; f < m.files.size(); ++f) {
        SafetensorsFile file(dir + "/" + m.files[f]);  // validates the safetensors header
        for (int64_t p : m.clusters[f]) {
            const PackEntry& en = m.entries[static_cast<size_t>(p)];
            if (en.file != static_cast<int32_t>(f)) fail("{}: pair {} listed under file {} but its entry names file {}", dir, p, f, en.file);
            TensorView gate = file.tensor(expert_tensor_name(c.moe_layer(en.layer), en.expert, "gate"));
            const uint64_t at = file.header().data_start + gate.info->begin;
            if (at != en.offset) fail("{}: layer {} expert {} is at offset {} in {}, the manifest says {}", dir, en.layer, en.expert, at, m.files[f], en.offset);
            const uint8_t* bytes = gate.data;
            if (pack_checksum(bytes, en.length) != en.checksum) {
                fail("{}: checksum mismatch for layer {} expert {} in {}", dir, en.layer, en.expert, m.files[f]);
            }
            bar.advance(1);
        }
    }
    bar.finish();
    if (!m.dense.path.empty()) {
        SafetensorsFile f(dir + "/" + m.dense.path);
        if (pack_checksum(f.buffer(), f.buffer_bytes()) != m.dense.checksum) {
            fail("{}: checksum mismatch in the dense file {}", dir, m.dense.path);
        }
    }
}

}  // namespace chronos
