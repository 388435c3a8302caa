// pack.cpp: writing, loading and verifying cluster packs.
#include "format/pack.h"

#include <xxhash.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"

namespace chronos {

namespace fs = std::filesystem;
using nlohmann::json;

uint64_t pack_checksum(const void* data, uint64_t size) { return XXH3_64bits(data, size); }

namespace {

const char* dtype_short(DType d) { return d == DType::BF16 ? "bf16" : d == DType::F16 ? "f16" : "f32"; }

DType dtype_from_short(const std::string& s, const std::string& what) {
    if (s == "f32") return DType::F32;
    if (s == "bf16") return DType::BF16;
    if (s == "f16") return DType::F16;
    fail("{}: unknown expert dtype \"{}\"", what, s);
}

// Converts one fp32 matrix to the stored dtype, appending to out.
void append_converted(const float* src, int64_t n, DType dtype, std::vector<uint8_t>& out) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) * dtype_size(dtype));
    if (dtype == DType::F32) {
        std::memcpy(out.data() + at, src, static_cast<size_t>(n) * 4);
        return;
    }
    auto* dst = reinterpret_cast<uint16_t*>(out.data() + at);
    for (int64_t i = 0; i < n; ++i) dst[i] = dtype == DType::BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
}

}  // namespace

PackManifest pack_write(const Checkpoint& ck, const ClusterPlan& plan, DType dtype) {
    const ModelConfig& c = ck.config;
    const int64_t H = c.hidden_size, F = c.moe_intermediate_size, E = c.n_routed_experts;
    PackManifest m;
    m.layers = c.num_hidden_layers;
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
    const uint64_t expert_bytes = static_cast<uint64_t>(3 * F * H) * dtype_size(dtype);
    ProgressBar bar("pack", static_cast<uint64_t>(m.layers * E), "experts");
    for (size_t ci = 0; ci < plan.clusters.size(); ++ci) {
        const auto& cluster = plan.clusters[ci];
        const std::string rel = fmt::format("{}/cluster-{:04}.ctsr", gen, ci);
        // Stored bytes of every expert of the cluster, converted once.
        std::vector<std::vector<uint8_t>> blobs(cluster.size());
        for (size_t i = 0; i < cluster.size(); ++i) {
            const int64_t l = cluster[i] / E, e = cluster[i] % E;
            for (const char* proj : {"gate", "up", "down"}) {
                TensorView v = ck.weights->tensor(expert_tensor_name(l, e, proj));
                append_converted(v.as<float>(), v.info->numel(), dtype, blobs[i]);
            }
        }
        // Lay out: pad tensors so every expert starts 4096-aligned (the header is padded to 4096
        // too, so buffer offsets and file offsets align alike).
        SafetensorsWriter w;
        w.set_header_alignment(kPackAlignment);
        w.set_metadata("format", "chronos-pack-v1");
        w.set_metadata("dtype", dtype_short(dtype));
        static const std::vector<uint8_t> zeros(kPackAlignment, 0);
        uint64_t buffer = 0;
        int pad_id = 0;
        std::vector<uint64_t> buffer_offsets;
        for (size_t i = 0; i < cluster.size(); ++i) {
            const int64_t l = cluster[i] / E, e = cluster[i] % E;
            if (buffer % kPackAlignment != 0) {
                const uint64_t pad = kPackAlignment - buffer % kPackAlignment;
                w.add(fmt::format("__pad__.{}", pad_id++), DType::U8, {static_cast<int64_t>(pad)}, zeros.data(), pad);
                buffer += pad;
            }
            buffer_offsets.push_back(buffer);
            const uint8_t* blob = blobs[i].data();
            const uint64_t mat = static_cast<uint64_t>(F * H) * dtype_size(dtype);
            w.add(expert_tensor_name(l, e, "gate"), dtype, {F, H}, blob, mat);
            w.add(expert_tensor_name(l, e, "up"), dtype, {F, H}, blob + mat, mat);
            w.add(expert_tensor_name(l, e, "down"), dtype, {H, F}, blob + 2 * mat, mat);
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

    json j;
    j["format"] = "chronos-pack-manifest-v1";
    j["num_hidden_layers"] = m.layers;
    j["n_routed_experts"] = m.experts;
    j["hidden_size"] = m.hidden;
    j["moe_intermediate_size"] = m.inner;
    j["dtype"] = dtype_short(dtype);
    j["alignment"] = kPackAlignment;
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

PackManifest pack_manifest_load(const std::string& dir, const ModelConfig& c) {
    const std::string path = dir + "/cluster_manifest.json";
    if (!file_exists(path)) fail("{}: no cluster_manifest.json (run chronos pack)", dir);
    json j;
    try {
        j = json::parse(file_read_all(path));
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", path, e.what());
    }
    PackManifest m;
    try {
        if (j.at("format") != "chronos-pack-manifest-v1") fail("{}: unknown manifest format", path);
        m.layers = j.at("num_hidden_layers").get<int64_t>();
        m.experts = j.at("n_routed_experts").get<int64_t>();
        m.hidden = j.at("hidden_size").get<int64_t>();
        m.inner = j.at("moe_intermediate_size").get<int64_t>();
        m.dtype = dtype_from_short(j.at("dtype").get<std::string>(), path);
        if (m.layers != c.num_hidden_layers || m.experts != c.n_routed_experts || m.hidden != c.hidden_size || m.inner != c.moe_intermediate_size) {
            fail("{}: manifest is for {} layers x {} experts (hidden {}, inner {}) but config.json has {} x {} ({}, {})", path, m.layers,
                 m.experts, m.hidden, m.inner, c.num_hidden_layers, c.n_routed_experts, c.hidden_size, c.moe_intermediate_size);
        }
        for (const json& f : j.at("files")) {
            m.files.push_back(f.at("path").get<std::string>());
            m.file_bytes.push_back(f.at("bytes").get<uint64_t>());
            m.clusters.push_back(f.at("pairs").get<std::vector<int64_t>>());
        }
        m.entries.resize(static_cast<size_t>(m.layers * m.experts));
        std::vector<int> seen(m.entries.size(), 0);
        const uint64_t expected_len = static_cast<uint64_t>(3 * m.hidden * m.inner) * dtype_size(m.dtype);
        for (const json& x : j.at("experts")) {
            PackEntry en;
            en.layer = x.at("layer").get<int64_t>();
            en.expert = x.at("expert").get<int64_t>();
            en.file = x.at("file").get<int32_t>();
            en.offset = x.at("offset").get<uint64_t>();
            en.length = x.at("length").get<uint64_t>();
            en.checksum = std::stoull(x.at("checksum").get<std::string>(), nullptr, 16);
            if (en.layer < 0 || en.layer >= m.layers || en.expert < 0 || en.expert >= m.experts) fail("{}: expert entry out of range", path);
            if (en.file < 0 || static_cast<size_t>(en.file) >= m.files.size()) fail("{}: layer {} expert {} names file #{} which is not listed", path, en.layer, en.expert, en.file);
            if (en.offset % kPackAlignment != 0) fail("{}: layer {} expert {} is not 4096-aligned", path, en.layer, en.expert);
            if (en.length != expected_len) fail("{}: layer {} expert {} has {} bytes, expected {}", path, en.layer, en.expert, en.length, expected_len);
            if (en.offset + en.length > m.file_bytes[static_cast<size_t>(en.file)]) fail("{}: layer {} expert {} lies past the end of its file", path, en.layer, en.expert);
            const size_t p = static_cast<size_t>(en.layer * m.experts + en.expert);
            if (seen[p]++) fail("{}: layer {} expert {} listed twice", path, en.layer, en.expert);
            m.entries[p] = en;
        }
        for (size_t p = 0; p < seen.size(); ++p) {
            if (!seen[p]) fail("{}: layer {} expert {} is missing", path, p / static_cast<size_t>(m.experts), p % static_cast<size_t>(m.experts));
        }
    } catch (const json::exception& e) {
        fail("{}: malformed manifest: {}", path, e.what());
    }
    for (size_t f = 0; f < m.files.size(); ++f) {
        const std::string fp = dir + "/" + m.files[f];
        if (!file_exists(fp)) fail("{}: pack file {} is missing", path, fp);
        const uint64_t size = fs::file_size(fp);
        if (size != m.file_bytes[f]) fail("{}: pack file {} has {} bytes, the manifest says {} (truncated or replaced?)", path, fp, size, m.file_bytes[f]);
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
            TensorView gate = file.tensor(expert_tensor_name(en.layer, en.expert, "gate"));
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
}

}  // namespace chronos
