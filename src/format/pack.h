// pack.h: cluster-packed expert files (.ctsr) and cluster_manifest.json (docs/format.md).
//
// A .ctsr file is a valid safetensors file holding one cluster's routed experts in cluster
// order, under their checkpoint names. Each expert's three matrices (gate, up, down) are
// contiguous and the expert starts on a 4096-byte file offset, so one expert is one aligned read
// (O_DIRECT) and a whole cluster is one sequential read. The gaps are filled with U8 tensors
// named "__pad__.N" so the file has no holes, as the format requires.
//
//     chronos::PackManifest m = chronos::pack_write(ck, plan, WeightType::q4, WeightType::q8);  // into ck.dir
//     chronos::pack_verify(ck.dir);                                            // re-read, checksums
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/weight_type.h"

namespace chronos {

constexpr uint64_t kPackAlignment = 4096;

struct PackEntry {
    int64_t layer = 0, expert = 0;
    int32_t file = 0;        // index into PackManifest::files
    uint64_t offset = 0;     // file offset of the expert's first byte (4096-aligned)
    uint64_t length = 0;     // bytes of gate + up + down
    uint64_t checksum = 0;   // XXH3-64 of those bytes
};

// The dense matrices in a narrow type (`chronos pack --dense-dtype`): one safetensors file in the
// pack generation, tensors under their checkpoint names; absent (path empty) for f32, which the
// runtime reads from model.safetensors.
struct PackDense {
    std::string path;            // relative to the checkpoint directory; empty: none
    WeightType dtype = WeightType::f32;
    uint64_t bytes = 0;          // the file's size
    uint64_t checksum = 0;       // XXH3-64 of the file's byte buffer (everything after the header)
};

struct PackManifest {
    int64_t layers = 0, experts = 0, hidden = 0, inner = 0;
    WeightType dtype = WeightType::f32;  // the experts' stored type
    PackDense dense;
    std::vector<std::string> files;        // relative to the checkpoint directory
    std::vector<uint64_t> file_bytes;
    std::vector<std::vector<int64_t>> clusters;  // pair ids (layer * experts + expert) per file, in order
    std::vector<PackEntry> entries;        // indexed by pair id
    const PackEntry& entry(int64_t layer, int64_t expert) const { return entries[static_cast<size_t>(layer * experts + expert)]; }
};

uint64_t pack_checksum(const void* data, uint64_t size);

// One expert's bytes rounded up to kPackAlignment: the slot it takes in the runtime's RAM tier
// (O_DIRECT reads land in aligned buffers). Every expert of a manifest has the same length.
uint64_t pack_slot_bytes(const PackManifest& m);

// Bytes of one expert stored as t: gate [F, H] | up [F, H] | down [H, F], rows of
// weight_row_bytes(t, ...) each.
uint64_t pack_expert_bytes(WeightType t, int64_t H, int64_t F);
// The dense matrices a narrow dense file holds (the products the runtime computes with them):
// embeddings, the head if untied, attention projections except MLA's kv_b (read per head as
// slices), shared experts. Norms, routers and the lookahead head stay f32.
std::vector<std::string> pack_dense_names(const ModelConfig& c);
// The stored safetensors dtype and shape of a [rows, cols] matrix as t: F32/BF16/F16 [rows,
// cols], or U8 [rows, row bytes] for the block types (layout in the file's metadata).
DType pack_stored_dtype(WeightType t);
std::vector<int64_t> pack_stored_shape(WeightType t, int64_t rows, int64_t cols);

// Which pairs go into which pack file, in read order (clustering, src/cluster/, makes one from
// a routing trace).
struct ClusterPlan {
    std::vector<std::vector<int64_t>> clusters;  // pair ids (layer * experts + expert) in read order
};
// Natural order, one cluster per layer (for untrained models / no trace).
ClusterPlan cluster_plan_natural(int64_t layers, int64_t experts);

// Writes the packs and the manifest into the checkpoint directory (atomically: new files under
// a fresh packs/ generation, the manifest replaced last, old generations removed). Experts are
// stored as `experts`; with `dense` other than f32, pack_dense_names' matrices are written to
// the generation's dense.ctsr as `dense`.
PackManifest pack_write(const Checkpoint& ck, const ClusterPlan& plan, WeightType experts, WeightType dense = WeightType::f32);
// Parses cluster_manifest.json text held in memory and checks it against config.json (which
// must be validated): every field typed and in range, no pack file twice or empty, every pair
// in exactly one file and with exactly one entry naming that file, offsets aligned, lengths
// pack_expert_bytes, experts inside their files and in cluster order without overlap.
// Throws chronos::Error naming `what`; the pack files themselves are not looked at
// (fuzz/fuzz_pack_manifest.cpp).
PackManifest pack_manifest_parse(const std::string& text, const std::string& what, const ModelConfig& config);
// Loads DIR/cluster_manifest.json (pack_manifest_parse) and checks that every pack file exists
// with the size the manifest gives.
PackManifest pack_manifest_load(const std::string& dir, const ModelConfig& config);
// Re-reads every expert (and the dense file) and compares checksums; throws naming the first fault.
void pack_verify(const std::string& dir, const ModelConfig& config);

}  // namespace chronos
