// cmd_tokenizer.cpp: `chronos tokenizer train|encode|decode` (the SentencePiece tokenizer) and
// `chronos tokenizer hf-encode` (a Hugging Face tokenizer.json over a JSONL file) and
// `chronos tokenizer chat` (a chat prompt as the model's tokenizer builds it).
#include <spdlog/spdlog.h>

#include <array>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/file_io.h"
#include "data/jsonl.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

void cmd_tokenizer_register(CLI::App& app) {
    CLI::App* tok = app.add_subcommand("tokenizer", "train and use the SentencePiece BPE tokenizer; run Hugging Face tokenizer.json files");
    tok->require_subcommand(1);

    auto train = std::make_shared<TokenizerTrainOptions>();
    CLI::App* t = tok->add_subcommand("train", "train a BPE model on plain text or JSONL {\"text\": ...}");
    t->add_option("--input", train->input, "training text (.txt or .jsonl)")->required();
    t->add_option("--vocab-size", train->vocab_size, "vocabulary size")->capture_default_str()->check(CLI::Range(300, 1000000));
    t->add_option("--out", train->out, "output .model file")->required();
    t->add_option("--max-sentences", train->max_sentences, "sentences sampled for training")->capture_default_str()->check(cli_range(1, 1e9));
    t->callback([train]() {
        file_out_check(train->out, "--out", train->input, "--input");
        spdlog::info("training BPE tokenizer (vocab {}) on {}", train->vocab_size, train->input);
        tokenizer_train(*train);
        Tokenizer loaded(train->out);
        std::cout << "wrote " << train->out << " (" << loaded.vocab_size() << " pieces)\n";
    });

    auto model = std::make_shared<std::string>();
    auto text = std::make_shared<std::string>();
    CLI::App* e = tok->add_subcommand("encode", "print the token ids of a text, separated by spaces");
    e->add_option("--model", *model, "tokenizer .model")->required();
    e->add_option("--text", *text, "text to encode")->required();
    e->callback([model, text]() {
        Tokenizer tk(*model);
        std::vector<int32_t> ids = tk.encode(*text);
        for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
        std::cout << "\n";
    });

    auto dmodel = std::make_shared<std::string>();
    auto ids_text = std::make_shared<std::string>();
    CLI::App* d = tok->add_subcommand("decode", "print the text of space-separated token ids");
    d->add_option("--model", *dmodel, "tokenizer .model")->required();
    d->add_option("--ids", *ids_text, "ids, e.g. \"17 4 980\"")->required();
    d->callback([dmodel, ids_text]() {
        Tokenizer tk(*dmodel);
        std::vector<int32_t> ids;
        std::istringstream in(*ids_text);
        std::string word;
        while (in >> word) {
            size_t used = 0;
            long long v = 0;
            try {
                v = std::stoll(word, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != word.size() || v < 0 || v > INT32_MAX) fail("--ids: \"{}\" is not a token id", word);
            ids.push_back(static_cast<int32_t>(v));
        }
        std::cout << tk.decode(ids);
        std::cout.flush();
    });

    // One output line per input line, for comparison with another implementation
    // (tests/hf_tokenizer.sh runs transformers.js on the same file).
    struct HfEncodeOptions {
        std::string tokenizer, input, output;
    };
    auto hf = std::make_shared<HfEncodeOptions>();
    CLI::App* h = tok->add_subcommand("hf-encode", "encode each {\"text\": ...} line of a JSONL file with a published tokenizer "
                                                   "(tokenizer.json, or a tokenizer.model with its tokenizer_config.json); "
                                                   "write {\"ids\": [...], \"decoded\": ...} lines");
    h->add_option("--tokenizer", hf->tokenizer, "tokenizer.json, or a published SentencePiece tokenizer.model")->required();
    h->add_option("--input", hf->input, "JSONL with a \"text\" string per line")->required();
    h->add_option("--output", hf->output, "JSONL to write")->required();
    h->callback([hf]() {
        const auto& [tokenizer, input, output] = *hf;
        file_out_check(output, "--output", input, "--input");
        // A tokenizer.json as the file alone says (no special tokens added; their spellings in
        // the text become their ids, as transformers does); a SentencePiece model through the
        // tokenizer every command uses, the same way.
        std::unique_ptr<HfTokenizer> json;
        std::unique_ptr<Tokenizer> model;
        if (tokenizer.size() >= 5 && tokenizer.compare(tokenizer.size() - 5, 5, ".json") == 0) {
            json = std::make_unique<HfTokenizer>(tokenizer);
        } else {
            model = std::make_unique<Tokenizer>(tokenizer);
        }
        auto encode = [&](const std::string& text) { return json ? json->encode(text) : model->encode_template(text); };
        auto decode = [&](const std::vector<int32_t>& ids) { return json ? json->decode(ids) : model->decode(ids); };
        JsonlWriter out(output);
        int64_t tokens = 0;
        jsonl_read(input, [&](const nlohmann::json& j, int64_t line) {
            if (!j.contains("text") || !j["text"].is_string()) fail("{}:{}: no \"text\" string", input, line);
            std::vector<int32_t> ids;
            try {
                ids = encode(j["text"].get<std::string>());
            } catch (const Error& e) {
                fail("{}:{}: {}", input, line, e.what());
            }
            tokens += static_cast<int64_t>(ids.size());
            out.write({{"ids", ids}, {"decoded", decode(ids)}});
        });
        out.commit();
        std::cout << "wrote " << output << " (" << out.count() << " lines, " << tokens << " tokens)\n";
    });

    // The chat prompt a model's tokenizer builds (chat_template.h), for checking it against the
    // template itself.
    auto chat = std::make_shared<std::array<std::string, 3>>();
    CLI::App* c = tok->add_subcommand("chat", "encode each {\"messages\": [{role, content}...]} line as a chat prompt with a "
                                              "generation prompt; write {\"ids\": [...]} lines");
    c->add_option("--tokenizer", (*chat)[0], "tokenizer.model, or a tokenizer.json with its tokenizer_config.json beside it")->required();
    c->add_option("--input", (*chat)[1], "JSONL with a \"messages\" list per line")->required();
    c->add_option("--output", (*chat)[2], "JSONL to write")->required();
    c->callback([chat]() {
        const auto& [tokenizer, input, output] = *chat;
        file_out_check(output, "--output", input, "--input");
        Tokenizer tk(tokenizer);
        JsonlWriter out(output);
        jsonl_read(input, [&](const nlohmann::json& j, int64_t line) {
            if (!j.contains("messages") || !j["messages"].is_array()) fail("{}:{}: no \"messages\" list", input, line);
            std::vector<ChatMessage> messages;
            for (const auto& m : j["messages"]) {
                if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string()) {
                    fail("{}:{}: a message needs \"role\" and \"content\" strings", input, line);
                }
                messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
            }
            out.write({{"ids", chat_encode(tk, messages, /*add_generation_prompt=*/true).ids}});
        });
        out.commit();
        std::cout << "wrote " << output << " (" << out.count() << " lines)\n";
    });
}

}  // namespace chronos
