// records.h: the four dataset record kinds and their JSONL forms.
//
//   pretrain    {"text": ...}
//   sft         {"conversations": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}
//   preference  {"prompt": ..., "chosen": ..., "rejected": ...}
//   prompts     {"prompt": ..., "answer": ...}          (verifiable: the answer is checked exactly)
// Every record written by `chronos data prepare` also carries "source" and "id"; readers
// ignore fields they do not know.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace chronos {

enum class RecordKind { pretrain, sft, preference, prompts };
constexpr RecordKind kRecordKinds[] = {RecordKind::pretrain, RecordKind::sft, RecordKind::preference, RecordKind::prompts};
const char* record_kind_name(RecordKind kind);

struct PretrainRecord {
    std::string text;
};
struct SftRecord {
    std::vector<ChatMessage> conversations;
};
struct PreferenceRecord {
    std::string prompt, chosen, rejected;
};
struct PromptRecord {
    std::string prompt, answer;
};

// Parse one JSONL object; `where` ("FILE:LINE") prefixes errors.
PretrainRecord pretrain_from_json(const nlohmann::json& j, const std::string& where);
SftRecord sft_from_json(const nlohmann::json& j, const std::string& where);
PreferenceRecord preference_from_json(const nlohmann::json& j, const std::string& where);
PromptRecord prompt_from_json(const nlohmann::json& j, const std::string& where);

// Validates a record of the given kind (throws with `where`).
void record_validate(RecordKind kind, const nlohmann::json& j, const std::string& where);

// Readers of whole files (every line validated).
std::vector<PretrainRecord> pretrain_load(const std::string& path);
std::vector<SftRecord> sft_load(const std::string& path);
std::vector<PreferenceRecord> preference_load(const std::string& path);
std::vector<PromptRecord> prompts_load(const std::string& path);

}  // namespace chronos
