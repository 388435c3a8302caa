// stats.cpp: validation pass and token counting (OpenMP over records).
#include "data/stats.h"

#include <fmt/format.h>

#include "core/progress.h"
#include "data/jsonl.h"
#include "data/text_utils.h"

namespace chronos {

using nlohmann::json;

SplitTable data_stats(const std::string& dir, const Tokenizer* tok) {
    SplitTable table;
    table.has_tokens = tok != nullptr;
    ProgressBar bar("stats", 12, "files");
    for (RecordKind kind : kRecordKinds) {
        for (Split split : kSplits) {
            const std::string path = data_file(dir, kind, split);
            // Texts to count, gathered first so that tokenisation can run in parallel.
            std::vector<std::string> texts;
            std::vector<std::vector<ChatMessage>> chats;
            jsonl_read(path, [&](const json& j, int64_t line) {
                const std::string where = fmt::format("{}:{}", path, line);
                switch (kind) {
                    case RecordKind::pretrain: texts.push_back(pretrain_from_json(j, where).text); break;
                    case RecordKind::sft: chats.push_back(sft_from_json(j, where).conversations); break;
                    case RecordKind::preference: {
                        PreferenceRecord r = preference_from_json(j, where);
                        texts.push_back(r.prompt);
                        texts.push_back(r.chosen);
                        texts.push_back(r.rejected);
                        break;
                    }
                    case RecordKind::prompts: {
                        PromptRecord r = prompt_from_json(j, where);
                        texts.push_back(r.prompt);
                        texts.push_back(r.answer);
                        break;
                    }
                }
                table.records[static_cast<size_t>(kind)][static_cast<size_t>(split)] += 1;
            });
            int64_t words = 0, tokens = 0;
            const auto n_texts = static_cast<int64_t>(texts.size());
            const auto n_chats = static_cast<int64_t>(chats.size());
#pragma omp parallel for reduction(+ : words, tokens) schedule(dynamic, 64)
            for (int64_t i = 0; i < n_texts; ++i) {
                words += count_words(texts[static_cast<size_t>(i)]);
                if (tok) tokens += static_cast<int64_t>(tok->encode(texts[static_cast<size_t>(i)]).size());
            }
#pragma omp parallel for reduction(+ : words, tokens) schedule(dynamic, 64)
            for (int64_t i = 0; i < n_chats; ++i) {
                for (const ChatMessage& m : chats[static_cast<size_t>(i)]) words += count_words(m.content);
                if (tok) tokens += static_cast<int64_t>(chat_encode(*tok, chats[static_cast<size_t>(i)], false).ids.size());
            }
            table.words[static_cast<size_t>(kind)][static_cast<size_t>(split)] = words;
            table.tokens[static_cast<size_t>(kind)][static_cast<size_t>(split)] = tokens;
            bar.advance(1);
        }
    }
    bar.finish();
    return table;
}

std::string split_table_format(const SplitTable& t) {
    std::string out = fmt::format("{:<11} {:<11} {:>9} {:>11}", "kind", "split", "records", "words");
    if (t.has_tokens) out += fmt::format(" {:>11}", "tokens");
    out += "\n";
    for (RecordKind k : kRecordKinds) {
        for (Split s : kSplits) {
            const size_t ki = static_cast<size_t>(k), si = static_cast<size_t>(s);
            out += fmt::format("{:<11} {:<11} {:>9} {:>11}", record_kind_name(k), split_name(s), t.records[ki][si], t.words[ki][si]);
            if (t.has_tokens) out += fmt::format(" {:>11}", t.tokens[ki][si]);
            out += "\n";
        }
    }
    return out;
}

json split_table_json(const SplitTable& t) {
    json j = json::object();
    for (RecordKind k : kRecordKinds) {
        for (Split s : kSplits) {
            const size_t ki = static_cast<size_t>(k), si = static_cast<size_t>(s);
            json cell{{"records", t.records[ki][si]}, {"words", t.words[ki][si]}};
            if (t.has_tokens) cell["tokens"] = t.tokens[ki][si];
            j[record_kind_name(k)][split_name(s)] = cell;
        }
    }
    return j;
}

}  // namespace chronos
