// cmd_inspect.cpp: `chronos inspect PATH [--json]` — tensors, dtypes, shapes and totals of a
// safetensors file, or of a checkpoint directory (validated against its config.json).
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/file_io.h"
#include "format/checkpoint.h"
#include "format/pack.h"
#include "format/weight_type.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

namespace {

// Which part of the model a tensor belongs to, for the totals.
std::string tensor_group(const std::string& name) {
    if (name.find(".mlp.experts.") != std::string::npos) return "routed experts";
    if (name.find(".mlp.shared_experts.") != std::string::npos) return "shared experts";
    if (name.find(".mlp.gate.") != std::string::npos) return "routers";
    if (name.find(".self_attn.") != std::string::npos) return "attention";
    if (name.rfind("lookahead.", 0) == 0) return "lookahead";
    if (name.find("embed_tokens") != std::string::npos || name.rfind("lm_head", 0) == 0) return "embeddings";
    if (name.find("norm") != std::string::npos) return "norms";
    return "other";
}

nlohmann::ordered_json describe(const SafetensorsFile& f) {
    nlohmann::ordered_json j;
    j["path"] = f.path();
    j["file_bytes"] = f.file_size();
    j["header_bytes"] = f.header().data_start;
    j["metadata"] = f.metadata();
    uint64_t params = 0, bytes = 0;
    std::map<std::string, std::pair<uint64_t, uint64_t>> groups;
    nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
    for (const TensorInfo& t : f.tensors()) {
        tensors.push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"offset", t.begin}, {"bytes", t.nbytes()}});
        params += static_cast<uint64_t>(t.numel());
        bytes += t.nbytes();
        auto& g = groups[tensor_group(t.name)];
        g.first += static_cast<uint64_t>(t.numel());
        g.second += t.nbytes();
    }
    j["tensors"] = tensors;
    j["total"] = {{"tensors", f.tensors().size()}, {"parameters", params}, {"bytes", bytes}};
    nlohmann::ordered_json gj = nlohmann::ordered_json::object();
    for (const auto& [name, pb] : groups) gj[name] = {{"parameters", pb.first}, {"bytes", pb.second}};
    j["groups"] = gj;
    return j;
}

void print_text(const nlohmann::ordered_json& j) {
    std::cout << fmt::format("{}  ({} bytes, header {} bytes)\n", j["path"].get<std::string>(),
                             j["file_bytes"].get<uint64_t>(), j["header_bytes"].get<uint64_t>());
    for (const auto& [k, v] : j["metadata"].items()) std::cout << fmt::format("  metadata {} = {}\n", k, v.get<std::string>());
    for (const auto& t : j["tensors"]) {
        std::string shape;
        for (const auto& d : t["shape"]) shape += (shape.empty() ? "" : ", ") + std::to_string(d.get<int64_t>());
        std::cout << fmt::format("  {:<60} {:<5} [{}]\n", t["name"].get<std::string>(), t["dtype"].get<std::string>(), shape);
    }
    std::cout << "totals by group:\n";
    for (const auto& [name, g] : j["groups"].items()) {
        std::cout << fmt::format("  {:<16} {:>14} params {:>14} bytes\n", name, g["parameters"].get<uint64_t>(), g["bytes"].get<uint64_t>());
    }
    const auto& tot = j["total"];
    std::cout << fmt::format("total: {} tensors, {} parameters, {} bytes\n", tot["tensors"].get<uint64_t>(),
                             tot["parameters"].get<uint64_t>(), tot["bytes"].get<uint64_t>());
}

}  // namespace

void cmd_inspect_register(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("inspect", "describe a safetensors file or a checkpoint directory");
    cmd->add_option("path", *path, "file.safetensors, pack.ctsr or checkpoint directory")->required();
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([path, as_json]() {
        if (dir_exists(*path)) {
            Checkpoint ck = checkpoint_open(*path);
            nlohmann::ordered_json j = describe(*ck.weights);
            j["checkpoint"] = *path;
            j["config"] = config_to_json(ck.config, ck.losses);
            if (!ck.tokenizer_path.empty()) {
                Tokenizer tok(ck.tokenizer_path);
                j["tokenizer"] = {{"path", ck.tokenizer_path}, {"vocab_size", tok.vocab_size()}};
            }
            // Packs, when written: their manifest and each file's size are checked (the bytes
            // against their checksums by `chronos pack --verify`).
            if (file_exists(*path + "/cluster_manifest.json")) {
                const PackManifest m = pack_manifest_load(*path, ck.config);
                j["packs"] = {{"files", m.files.size()}, {"experts", m.entries.size()}, {"dtype", weight_type_name(m.dtype)},
                              {"dense_dtype", weight_type_name(m.dense.dtype)}};
            }
            if (*as_json) {
                std::cout << j.dump(2) << "\n";
                return;
            }
            std::cout << fmt::format("checkpoint {}: {} layers, hidden {}, {} routed experts (top-{}), {} shared\n", *path,
                                     ck.config.num_hidden_layers, ck.config.hidden_size, ck.config.n_routed_experts,
                                     ck.config.num_experts_per_tok, ck.config.n_shared_experts);
            if (j.contains("tokenizer")) std::cout << fmt::format("tokenizer: {} pieces\n", j["tokenizer"]["vocab_size"].get<int>());
            else std::cout << "tokenizer: none (generate and eval need one)\n";
            if (j.contains("packs")) {
                std::cout << fmt::format("packs: {} experts in {} files, experts {}, dense {} (sizes checked; chronos pack --verify checks "
                                         "their bytes)\n",
                                         j["packs"]["experts"].get<size_t>(), j["packs"]["files"].get<size_t>(),
                                         j["packs"]["dtype"].get<std::string>(), j["packs"]["dense_dtype"].get<std::string>());
            } else {
                std::cout << "packs: none (chronos pack writes them)\n";
            }
            print_text(j);
            return;
        }
        SafetensorsFile f(*path);
        nlohmann::ordered_json j = describe(f);
        if (*as_json) std::cout << j.dump(2) << "\n";
        else print_text(j);
    });
}

}  // namespace chronos
