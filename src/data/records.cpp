// records.cpp: schema checks for the record kinds.
#include "data/records.h"

#include "core/error.h"
#include "data/jsonl.h"

namespace chronos {

using nlohmann::json;

const char* record_kind_name(RecordKind kind) {
    switch (kind) {
        case RecordKind::pretrain: return "pretrain";
        case RecordKind::sft: return "sft";
        case RecordKind::preference: return "preference";
        case RecordKind::prompts: return "prompts";
    }
    return "?";
}

static std::string get_text(const json& j, const char* key, const std::string& where) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail("{}: expected a string field \"{}\"", where, key);
    return it->get<std::string>();
}

PretrainRecord pretrain_from_json(const json& j, const std::string& where) {
    PretrainRecord r{get_text(j, "text", where)};
    if (r.text.empty()) fail("{}: \"text\" is empty", where);
    return r;
}

SftRecord sft_from_json(const json& j, const std::string& where) {
    auto it = j.find("conversations");
    if (it == j.end() || !it->is_array() || it->empty()) {
        fail("{}: expected a non-empty list \"conversations\"", where);
    }
    SftRecord r;
    bool has_assistant = false;
    for (const json& m : *it) {
        if (!m.is_object()) fail("{}: each conversation turn must be an object", where);
        ChatMessage msg{get_text(m, "role", where), get_text(m, "content", where)};
        if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
            fail("{}: unknown role \"{}\"", where, msg.role);
        }
        has_assistant |= msg.role == "assistant";
        r.conversations.push_back(std::move(msg));
    }
    if (!has_assistant) fail("{}: conversation has no assistant turn", where);
    return r;
}

PreferenceRecord preference_from_json(const json& j, const std::string& where) {
    PreferenceRecord r{get_text(j, "prompt", where), get_text(j, "chosen", where), get_text(j, "rejected", where)};
    if (r.chosen == r.rejected) fail("{}: chosen and rejected are identical", where);
    return r;
}

PromptRecord prompt_from_json(const json& j, const std::string& where) {
    PromptRecord r{get_text(j, "prompt", where), get_text(j, "answer", where)};
    if (r.prompt.empty() || r.answer.empty()) fail("{}: prompt and answer must be non-empty", where);
    return r;
}

void record_validate(RecordKind kind, const json& j, const std::string& where) {
    switch (kind) {
        case RecordKind::pretrain: pretrain_from_json(j, where); break;
        case RecordKind::sft: sft_from_json(j, where); break;
        case RecordKind::preference: preference_from_json(j, where); break;
        case RecordKind::prompts: prompt_from_json(j, where); break;
    }
}

template <typename R, typename F>
static std::vector<R> load_all(const std::string& path, F parse) {
    std::vector<R> out;
    jsonl_read(path, [&](const json& j, int64_t line) { out.push_back(parse(j, fmt::format("{}:{}", path, line))); });
    return out;
}

std::vector<PretrainRecord> pretrain_load(const std::string& path) { return load_all<PretrainRecord>(path, pretrain_from_json); }
std::vector<SftRecord> sft_load(const std::string& path) { return load_all<SftRecord>(path, sft_from_json); }
std::vector<PreferenceRecord> preference_load(const std::string& path) { return load_all<PreferenceRecord>(path, preference_from_json); }
std::vector<PromptRecord> prompts_load(const std::string& path) { return load_all<PromptRecord>(path, prompt_from_json); }

}  // namespace chronos
