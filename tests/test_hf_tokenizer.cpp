// test_hf_tokenizer.cpp: the Hugging Face tokenizer.json reader on small hand-written files:
// byte-level round trips, merge order, the added-token split, byte fallback, speed on a long
// word, and clear errors for what it does not support. tests/hf_tokenizer.sh compares it with
// transformers.js on the published Qwen3, DeepSeek-V3 and Llama 2 files.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/hf_tokenizer.h"
#include "test_helpers.h"

using namespace chronos;
using json = nlohmann::json;

namespace {

using test::utf8;

// GPT-2's byte alphabet: printable Latin-1 bytes stand for themselves, the others for 256 + n.
std::string byte_char(uint32_t b) {
    static const std::vector<uint32_t> table = [] {
        std::vector<uint32_t> t(256);
        uint32_t next = 256;
        for (uint32_t i = 0; i < 256; ++i) t[i] = ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174) ? i : next++;
        return t;
    }();
    return utf8(table[b]);
}

// A byte-level BPE (Qwen-style pipeline) whose vocabulary is the 256 byte characters, then
// `extra` tokens, with the given merges.
json byte_level(const std::vector<std::string>& extra, const json& merges) {
    json vocab = json::object();
    for (uint32_t b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
    for (const std::string& t : extra) vocab[t] = static_cast<int32_t>(vocab.size());
    return {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", {{"type", "NFC"}}},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+|\\p{N}|\\s+|[^\\s\\p{L}\\p{N}]+"}}}, {"behavior", "Isolated"}, {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

// A Llama-style BPE: "▁" for spaces, byte fallback, no pre-tokenizer.
json llama_style(bool byte_fallback) {
    json vocab = {{"<unk>", 0}, {"▁", 1}, {"a", 2}, {"b", 3}, {"▁a", 4}, {"ab", 5}};
    if (byte_fallback)
        for (uint32_t b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = static_cast<int32_t>(vocab.size());
    return {{"added_tokens", {{{"id", 0}, {"content", "<unk>"}, {"special", true}}}},
            {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "▁"}},
                                                                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}}},
            {"pre_tokenizer", nullptr},
            {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                                             {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                             {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "▁ a"}}, {"unk_token", "<unk>"},
                       {"byte_fallback", byte_fallback}, {"fuse_unk", true}}}};
}

std::string write(const test::TempDir& dir, const json& j, const std::string& name = "tokenizer.json") {
    const std::string path = dir.file(name);
    file_write_atomic(path, j.dump());
    return path;
}

std::vector<std::string> pieces(const HfTokenizer& tok, std::string_view text) {
    std::vector<std::string> out;
    for (int32_t id : tok.encode(text)) out.push_back(tok.id_to_token(id));
    return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST(HfTokenizer, ByteLevelRoundTripsAnyText) {
    test::TempDir dir;
    HfTokenizer tok(write(dir, byte_level({"ab"}, {"a b"})));
    EXPECT_EQ(tok.vocab_size(), 257);
    EXPECT_EQ(tok.token_id("ab"), 256);
    EXPECT_EQ(tok.token_id(byte_char(' ')), static_cast<int32_t>(' '));
    EXPECT_FALSE(tok.token_id("abc").has_value());
    EXPECT_EQ(tok.id_to_token(256), "ab");
    for (const std::string& s : {std::string(""), std::string(" \t\n\r\n  "), std::string("nul\0byte", 8), std::string("ab abab"),
                                 std::string("emoji \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 and \xE4\xB8\xAD\xE6\x96\x87"),
                                 std::string("\xEF\xBB\xBF" "BOM kept")})
        EXPECT_EQ(tok.decode(tok.encode(s)), s);
    // NFC: a decomposed é encodes as the composed one.
    EXPECT_EQ(tok.encode("e\xCC\x81"), tok.encode("\xC3\xA9"));
    std::mt19937 rng(7);
    for (int32_t it = 0; it < 2000; ++it) {
        std::string s;
        for (uint32_t n = rng() % 16; n > 0; --n) {
            uint32_t c = rng() % 4 == 0 ? rng() % 0x110000 : rng() % 0x3000;
            if (c >= 0xD800 && c < 0xE000) c = 'x';
            s += utf8(c);
        }
        // The text comes back in NFC, which encodes to the same ids.
        const std::vector<int32_t> ids = tok.encode(s);
        EXPECT_EQ(tok.encode(tok.decode(ids)), ids) << "not a fixed point: " << s;
    }
    // Bytes that are not UTF-8 decode as the WHATWG decoder does: one U+FFFD per bad sequence.
    EXPECT_EQ(tok.decode({0xE4, 0xB8, 'a', 0xFF}), "\xEF\xBF\xBD" "a" "\xEF\xBF\xBD");
}

TEST(HfTokenizer, MergesApplyInRankOrder) {
    test::TempDir dir;
    const Strings extra = {"ab", "bc", "abc"};
    // (b, c) outranks (a, b): a + bc, then abc.
    EXPECT_EQ(pieces(HfTokenizer(write(dir, byte_level(extra, {"b c", "a b", "a bc"}))), "abc"), (Strings{"abc"}));
    EXPECT_EQ(pieces(HfTokenizer(write(dir, byte_level(extra, {"b c", "a b"}))), "abc"), (Strings{"a", "bc"}));
    EXPECT_EQ(pieces(HfTokenizer(write(dir, byte_level(extra, {"a b", "b c"}))), "abc"), (Strings{"ab", "c"}));
    // The pair format of tokenizers >= 0.20 reads the same.
    EXPECT_EQ(pieces(HfTokenizer(write(dir, byte_level(extra, json::array({json::array({"a", "b"}), json::array({"b", "c"})})))), "abc"), (Strings{"ab", "c"}));
    // Equal ranks: leftmost first.
    HfTokenizer aa(write(dir, byte_level({"aa"}, {"a a"})));
    EXPECT_EQ(pieces(aa, "aaa"), (Strings{"aa", "a"}));
    EXPECT_EQ(pieces(aa, "aaaaa"), (Strings{"aa", "aa", "a"}));
    // Merges never cross the pre-tokenizer's pieces.
    EXPECT_EQ(pieces(aa, "a a"), (Strings{"a", byte_char(' '), "a"}));
}

TEST(HfTokenizer, LongWordIsFast) {
    test::TempDir dir;
    HfTokenizer tok(write(dir, byte_level({"aa", "aaaa", "aaaaaaaa"}, {"a a", "aa aa", "aaaa aaaa"})));
    // One 100,000-character word: merging it pair by pair over the whole word each time is
    // quadratic (~1e10 steps, minutes); the rank-ordered merge takes milliseconds. Measured as
    // this thread's CPU time, so other processes on the machine do not count against it.
    const std::string text(100000, 'a');
    auto cpu_seconds = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    };
    const double start = cpu_seconds();
    std::vector<int32_t> ids = tok.encode(text);
    const double seconds = cpu_seconds() - start;
    EXPECT_EQ(ids.size(), 12500u);
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_LT(seconds, 0.5);
}

TEST(HfTokenizer, AddedTokensSplitFirst) {
    test::TempDir dir;
    json j = byte_level({}, json::array());
    j["added_tokens"] = {{{"id", 300}, {"content", "<|x|>"}, {"special", true}},
                         {{"id", 301}, {"content", "<|x|>!"}, {"special", false}},
                         {{"id", 302}, {"content", "<L>"}, {"special", true}, {"lstrip", true}},
                         {{"id", 303}, {"content", "<R>"}, {"special", true}, {"rstrip", true}}};
    HfTokenizer tok(write(dir, j));
    EXPECT_EQ(tok.vocab_size(), 304);
    EXPECT_TRUE(tok.is_special(300));
    EXPECT_FALSE(tok.is_special(301));
    EXPECT_FALSE(tok.is_special('a'));
    EXPECT_EQ(tok.encode("a<|x|>b"), (std::vector<int32_t>{'a', 300, 'b'}));
    EXPECT_EQ(tok.encode("<|x|>!?"), (std::vector<int32_t>{301, '?'}));  // the longest match
    // lstrip eats the whitespace before the token, rstrip the whitespace after it.
    const int32_t space = ' ';  // a space is byte-level 'Ġ', id 32
    EXPECT_EQ(tok.encode("a \t<L> b"), (std::vector<int32_t>{'a', 302, space, 'b'}));
    EXPECT_EQ(tok.encode("a <R> \n b"), (std::vector<int32_t>{'a', space, 303, 'b'}));
    // Without parse_special the spelling is ordinary text.
    std::vector<int32_t> plain = tok.encode("<|x|>", false);
    EXPECT_EQ(plain.size(), 5u);
    EXPECT_EQ(tok.decode(plain), "<|x|>");
    EXPECT_EQ(tok.decode({'a', 300, 'b'}), "a<|x|>b");
    EXPECT_EQ(tok.decode({'a', 300, 301, 'b'}, true), "a<|x|>!b");
}

TEST(HfTokenizer, ByteFallbackAndUnknowns) {
    test::TempDir dir;
    HfTokenizer tok(write(dir, llama_style(true)));
    const int32_t e2 = *tok.token_id("<0xE2>"), x82 = *tok.token_id("<0x82>"), xac = *tok.token_id("<0xAC>");
    // "a€ ab": ▁a, then € as its three UTF-8 bytes, then ▁ and ab ("a b" outranks "▁ a").
    EXPECT_EQ(tok.encode("a\xE2\x82\xAC ab"), (std::vector<int32_t>{4, e2, x82, xac, 1, 5}));
    EXPECT_EQ(tok.decode(tok.encode("a\xE2\x82\xAC ab")), "a\xE2\x82\xAC ab");
    EXPECT_EQ(tok.decode({e2, 2}), "\xEF\xBF\xBD" "a");  // a truncated sequence is one U+FFFD
    EXPECT_EQ(tok.encode("<unk>"), (std::vector<int32_t>{0}));
    // Without byte fallback unknown characters are <unk>, a run of them fused into one.
    HfTokenizer unk(write(dir, llama_style(false)));
    EXPECT_EQ(unk.encode("axyzb c"), (std::vector<int32_t>{4, 0, 3, 1, 0}));
}

TEST(HfTokenizer, ClearErrors) {
    test::TempDir dir;
    json lower = byte_level({}, json::array());
    lower["normalizer"] = {{"type", "Lowercase"}};
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, lower)); }, "normalizer type \"Lowercase\" is not supported");
    json wordpiece = byte_level({}, json::array());
    wordpiece["model"]["type"] = "WordPiece";
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, wordpiece)); }, "type \"WordPiece\" is not supported");
    json metaspace = byte_level({}, json::array());
    metaspace["pre_tokenizer"] = {{"type", "Metaspace"}};
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, metaspace)); }, "pre-tokenizer type \"Metaspace\"");
    json ctc = byte_level({}, json::array());
    ctc["decoder"] = {{"type", "CTC"}};
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, ctc)); }, "decoder type \"CTC\"");
    json merged = byte_level({}, json::array());
    merged["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithPrevious";
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, merged)); }, "MergedWithPrevious");
    json boundary = byte_level({}, json::array());
    boundary["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "\\bword"}};
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, boundary)); }, "\\b is not supported");
    json bad_merge = byte_level({}, {"a b c"});
    test::expect_error_mentions([&] { HfTokenizer t(write(dir, bad_merge)); }, "merge 0");

    file_write_atomic(dir.file("broken.json"), "{\"model\": {\"type\": \"BPE\",");
    test::expect_error_mentions([&] { HfTokenizer t(dir.file("broken.json")); }, "broken.json: malformed JSON");
    test::expect_error_mentions([&] { HfTokenizer t(dir.file("absent.json")); }, "absent.json");

    HfTokenizer tok(write(dir, byte_level({}, json::array())));
    test::expect_error_mentions([&] { tok.encode("ok \xC3\x28"); }, "not valid UTF-8");
    test::expect_error_mentions([&] { tok.encode("\xED\xA0\x80"); }, "not valid UTF-8");  // a surrogate
    test::expect_error_mentions([&] { tok.decode({5, 256}); }, "id 256 is outside the vocabulary");
    test::expect_error_mentions([&] { tok.decode({-1}); }, "outside the vocabulary");
}

TEST(HfTokenizer, ReadsTheConfigBeside) {
    test::TempDir dir;
    const std::string path = write(dir, byte_level({}, json::array()));
    // transformers.js cleans up " ." and friends unless the config says otherwise.
    file_write_atomic(dir.file("tokenizer_config.json"), "{}");
    HfTokenizer cleaned(path);
    EXPECT_EQ(cleaned.decode(cleaned.encode("a . b ,c")), "a. b,c");
    file_write_atomic(dir.file("tokenizer_config.json"), R"({"clean_up_tokenization_spaces": false})");
    HfTokenizer kept(path);
    EXPECT_EQ(kept.decode(kept.encode("a . b ,c")), "a . b ,c");
    file_write_atomic(dir.file("tokenizer_config.json"), R"({"tokenizer_class": "LlamaTokenizerFast", "legacy": false})");
    test::expect_error_mentions([&] { HfTokenizer t(path); }, "legacy false");
}
