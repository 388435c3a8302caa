// tokenizer.h: the tokenizer every command uses. Chronos's own: SentencePiece BPE with byte
// fallback, set up so that every UTF-8 string round-trips exactly (no normalisation, no dummy
// prefix, runs of spaces and tabs kept). An imported model's: its tokenizer.json (hf_tokenizer.h),
// or, where the folder has none, its SentencePiece tokenizer.model with the special tokens of the
// tokenizer_config.json beside it.
//
// Special tokens (ids fixed by training options):
//   0 <|pad|>   padding
//   1 <unk>     never produced for valid UTF-8 (byte fallback)
//   2 <|endoftext|>  end of a document
//   3 <|im_start|>, 4 <|im_end|>  chat turns (see chat_template.h)
// They are control symbols: text that spells "<|im_start|>" encodes as ordinary pieces, so user
// content can never forge a turn boundary.
//
//     chronos::tokenizer_train({.input = "train.jsonl", .vocab_size = 8000, .out = "tok.model"});
//     chronos::Tokenizer tok("tok.model");
//     std::vector<int32_t> ids = tok.encode("Hello\tworld");
//     std::string text = tok.decode(ids);   // == "Hello\tworld"
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct chronos_spm;

namespace chronos {

constexpr int32_t kTokenPad = 0;
constexpr int32_t kTokenUnk = 1;
constexpr int32_t kTokenEndOfText = 2;
constexpr int32_t kTokenImStart = 3;
constexpr int32_t kTokenImEnd = 4;

struct TokenizerTrainOptions {
    std::string input;             // plain text (one sentence per line) or JSONL with "text"
    int32_t vocab_size = 8000;
    std::string out;               // path of the .model file to write
    int32_t threads = 2;
    int64_t max_sentences = 400000;  // sample cap for the trainer (deterministic)
};

// Trains a BPE model and writes it atomically to options.out.
void tokenizer_train(const TokenizerTrainOptions& options);

// The chat layout a tokenizer's model was tuned with (chat_template.h): Chronos's own ChatML with
// control ids, or a published family's, recognised from the chat_template of its
// tokenizer_config.json; none when there is no template or one Chronos does not know.
enum class ChatFormat : uint8_t { chronos, chatml, deepseek_v3, deepseek_v2, llama_inst, tulu, none };

class HfTokenizer;

// A Chronos SentencePiece model (`tokenizer.model`, the ids above), or the `tokenizer.json` of a
// published checkpoint (hf_tokenizer.h) with the special tokens its tokenizer_config.json and
// generation_config.json (beside it) name.
class Tokenizer {
public:
    explicit Tokenizer(const std::string& model_path);  // a .json path: a Hugging Face tokenizer
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // Text to ids; special tokens spelled in the text stay text (user content cannot forge a
    // turn boundary).
    std::vector<int32_t> encode(std::string_view text) const;
    // Ordinary pieces decode to their text; control tokens to their spelling ("<|im_end|>").
    std::string decode(const std::vector<int32_t>& ids) const;
    std::string id_to_piece(int32_t id) const;
    int32_t vocab_size() const;
    bool is_control(int32_t id) const;
    // Fails, naming `model_dir`, unless every id this tokenizer can produce has a row in a
    // model's vocabulary of model_vocab (a published model may pad its embeddings beyond it).
    void check_fits(int64_t model_vocab, const std::string& model_dir) const;

    // The token that ends a document (pretraining data, plain completions) and the one that ends
    // a chat reply; the one a prompt starts with (-1: none).
    int32_t end_of_text() const { return end_of_text_; }
    int32_t end_of_turn() const { return end_of_turn_; }
    int32_t bos() const { return bos_; }
    // The padding id (Chronos's <|pad|>); -1 for a published tokenizer, whose streams hold none.
    int32_t pad() const { return published_ ? -1 : kTokenPad; }
    ChatFormat chat_format() const { return chat_; }
    // The id of a special token of the vocabulary, spelled exactly; fails naming it if absent.
    int32_t special(std::string_view token) const;
    // Text whose special-token spellings become their ids (trusted template text only).
    std::vector<int32_t> encode_template(std::string_view text) const;
    // The tokenizer file, for caches keyed by it.
    const std::string& path() const { return path_; }

private:
    void load_hf(const std::string& path);
    void read_published_config(const std::string& path, const std::function<int32_t(const std::string&)>& id_of, bool add_bos_default);
    size_t spm_encode(std::string_view text, std::vector<int32_t>& ids) const;
    std::string path_;
    bool published_ = false;  // a published checkpoint's tokenizer (tokenizer.json, or a SentencePiece model)
    std::vector<std::pair<std::string, int32_t>> sp_specials_;  // a published SentencePiece model's control pieces and <unk>
    std::unique_ptr<HfTokenizer> hf_;
    chronos_spm* sp_ = nullptr;  // SentencePiece, reached through libchronos_spm.so (spm_shim.h)
    int32_t vocab_size_ = 0;
    int32_t unk_ = -1;  // a published SentencePiece model's <unk>, spelled when decoded
    std::vector<uint8_t> control_;  // 1 for control pieces
    int32_t byte_ids_[256];         // id of <0xNN> for each byte
    int32_t end_of_text_ = kTokenEndOfText, end_of_turn_ = kTokenImEnd, bos_ = -1;
    ChatFormat chat_ = ChatFormat::chronos;
};


}  // namespace chronos
