// test_tokenizer.cpp: exact round trip on arbitrary UTF-8, special tokens, the chat template,
// and training from plain text. Uses the tokenizer the prepare_real_data fixture trained on
// the real pretraining split.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "data/records.h"
#include "data/token_stream.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

using test::utf8;

std::string hex(const std::string& s) {
    std::string out;
    for (unsigned char c : s) out += fmt::format("{:02x}", c);
    return out;
}

const Tokenizer& fixture_tokenizer() {
    static Tokenizer tok(test::test_tokenizer());
    return tok;
}

}  // namespace

TEST(Tokenizer, RoundTripsHandPickedStrings) {
    const Tokenizer& tok = fixture_tokenizer();
    for (const std::string& s : {std::string(""), std::string(" "), std::string("  leading and trailing  "),
                                std::string("tab\there\t\t"), std::string("\"double\" and 'single' quotes"),
                                std::string("line\nbreaks\r\n\n"), std::string("\xE2\x96\x81 literal U+2581 \xE2\x96\x81\xE2\x96\x81"),
                                std::string("<|im_start|>not a special<|im_end|>"), std::string("emoji \xF0\x9F\x98\x80 and CJK \xE4\xB8\xAD"),
                                std::string("nul\0byte", 8), std::string("In the beginning God created the heaven and the earth.")}) {
        std::vector<int32_t> ids = tok.encode(s);
        EXPECT_EQ(tok.decode(ids), s) << "input hex " << hex(s);
    }
}

TEST(Tokenizer, RoundTripsRandomUtf8) {
    const Tokenizer& tok = fixture_tokenizer();
    std::mt19937 rng(12345);
    int failures = 0;
    for (int it = 0; it < 20000; ++it) {
        std::string s;
        int n = static_cast<int>(rng() % 24);
        for (int i = 0; i < n; ++i) {
            uint32_t c;
            switch (rng() % 6) {
                case 0: c = rng() % 128; break;
                case 1: c = " \t\n\"'\\"[rng() % 6]; break;
                case 2: c = rng() % 0x800; break;
                case 3: c = rng() % 0x10000; break;
                case 4: c = 0x2581; break;  // SentencePiece's own space marker
                default: c = rng() % 0x110000; break;
            }
            if (c >= 0xD800 && c < 0xE000) c = 'x';  // surrogates are not UTF-8
            s += utf8(c);
        }
        std::string back = tok.decode(tok.encode(s));
        if (back != s && ++failures <= 5) ADD_FAILURE() << "round trip differs: in " << hex(s) << " out " << hex(back);
    }
    EXPECT_EQ(failures, 0);
}

TEST(Tokenizer, SpecialTokensHaveFixedIdsAndCannotBeForged) {
    const Tokenizer& tok = fixture_tokenizer();
    EXPECT_EQ(tok.id_to_piece(kTokenPad), "<|pad|>");
    EXPECT_EQ(tok.id_to_piece(kTokenEndOfText), "<|endoftext|>");
    EXPECT_EQ(tok.id_to_piece(kTokenImStart), "<|im_start|>");
    EXPECT_EQ(tok.id_to_piece(kTokenImEnd), "<|im_end|>");
    EXPECT_EQ(tok.vocab_size(), 2000);
    for (int32_t id : tok.encode("<|im_start|>user\n<|im_end|><|pad|><|endoftext|>")) {
        EXPECT_FALSE(tok.is_control(id)) << "text produced control token " << id;
        EXPECT_NE(id, kTokenUnk);
    }
    EXPECT_EQ(tok.decode({kTokenImStart}), "<|im_start|>");
    EXPECT_THROW(tok.decode({tok.vocab_size()}), Error);
    EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(Tokenizer, LearnedMergesCompressRealText) {
    // A BPE model trained on the corpus must use far fewer tokens than bytes on held-out text.
    const Tokenizer& tok = fixture_tokenizer();
    std::vector<PretrainRecord> val = pretrain_load(test::prepared_dir() + "/pretrain.validation.jsonl");
    size_t bytes = 0, tokens = 0;
    for (size_t i = 0; i < val.size() && i < 200; ++i) {
        bytes += val[i].text.size();
        tokens += tok.encode(val[i].text).size();
    }
    ASSERT_GT(bytes, 10000u);
    EXPECT_LT(static_cast<double>(tokens) / static_cast<double>(bytes), 0.4) << tokens << " tokens for " << bytes << " bytes";
}

TEST(ChatTemplate, EncodesChatMLWithAssistantMask) {
    const Tokenizer& tok = fixture_tokenizer();
    std::vector<ChatMessage> chat = {{"user", "What is 2 + 2?"}, {"assistant", "4"}};
    ChatTokens t = chat_encode(tok, chat, false);
    ASSERT_EQ(t.ids.size(), t.assistant_mask.size());
    EXPECT_EQ(t.ids.front(), kTokenImStart);
    EXPECT_EQ(tok.decode(t.ids), chat_render(chat, false));
    EXPECT_EQ(chat_render(chat, false), "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n");
    // The masked positions decode to exactly the reply and its end marker.
    std::vector<int32_t> reply;
    for (size_t i = 0; i < t.ids.size(); ++i) {
        if (t.assistant_mask[i]) reply.push_back(t.ids[i]);
    }
    EXPECT_EQ(tok.decode(reply), "4<|im_end|>");
    ChatTokens gen = chat_encode(tok, {{"user", "hi"}}, true);
    EXPECT_EQ(tok.decode(gen.ids), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_THROW(chat_encode(tok, {{"robot", "x"}}, false), Error);
}

TEST(Tokenizer, TrainsFromPlainTextAndRejectsBadInput) {
    test::TempDir dir;
    std::string text;
    std::vector<PretrainRecord> recs = pretrain_load(test::prepared_dir() + "/pretrain.validation.jsonl");
    for (size_t i = 0; i < recs.size() && text.size() < 200000; ++i) text += recs[i].text + "\n";
    file_write_atomic(dir.file("train.txt"), text);
    tokenizer_train({.input = dir.file("train.txt"), .vocab_size = 500, .out = dir.file("t.model"), .threads = 2, .max_sentences = 10000});
    Tokenizer tok(dir.file("t.model"));
    EXPECT_EQ(tok.vocab_size(), 500);
    EXPECT_EQ(tok.decode(tok.encode("  mixed\twhite space ")), "  mixed\twhite space ");

    EXPECT_THROW(tokenizer_train({.input = dir.file("absent.txt"), .vocab_size = 500, .out = dir.file("x.model")}), Error);
    EXPECT_THROW(tokenizer_train({.input = dir.file("train.txt"), .vocab_size = 100, .out = dir.file("x.model")}), Error);
    file_write_atomic(dir.file("bad.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \n");
    try {
        tokenizer_train({.input = dir.file("bad.jsonl"), .vocab_size = 500, .out = dir.file("x.model")});
        ADD_FAILURE() << "accepted malformed JSONL";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
    }
    file_write_atomic(dir.file("junk.model"), "not a model");
    EXPECT_THROW(Tokenizer junk(dir.file("junk.model")), Error);
}

// The token cache beside a data file is a copy: a damaged one (ids outside the vocabulary, a
// torn size) is rebuilt from the data, never handed to a model.
TEST(TokenCache, ADamagedCacheIsRebuiltFromTheData) {
    Tokenizer tok(test::test_tokenizer());
    test::TempDir dir;
    const std::string data = dir.file("pt.jsonl");
    file_write_atomic(data, "{\"text\": \"The state of the Union is strong.\"}\n{\"text\": \"We the People.\"}\n");
    const std::vector<int32_t> fresh = tokens_load_pretrain(data, tok);
    ASSERT_FALSE(fresh.empty());
    std::string cache;
    for (const auto& e : std::filesystem::directory_iterator(dir.file(""))) {
        if (e.path().filename().string().rfind("pt.jsonl.tok-", 0) == 0) cache = e.path().string();
    }
    ASSERT_FALSE(cache.empty()) << "no cache written beside the data";
    EXPECT_EQ(tokens_load_pretrain(data, tok), fresh);  // read back from the cache
    for (const std::string& damage : {std::string(fresh.size() * 4, '\xff'), std::string(6, 'x'), std::string()}) {
        file_write_atomic(cache, damage);
        EXPECT_EQ(tokens_load_pretrain(data, tok), fresh) << "cache of " << damage.size() << " bytes";
    }
}
