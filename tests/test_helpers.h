// test_helpers.h: temporary directories and real-data paths for the tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "format/model_config.h"
#include "core/error.h"
#include "core/file_io.h"

namespace chronos::test {

// A fresh directory removed at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "chronos-test-XXXXXX").string();
        path_ = mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Data made by the prepare_real_data fixture (tests/prepare_fixture.sh).
inline std::string test_data_dir() { return CHRONOS_TEST_DATA; }
inline std::string prepared_dir() { return test_data_dir() + "/prepared"; }
inline std::string test_tokenizer() { return test_data_dir() + "/tokenizer.model"; }
inline std::string raw_data_dir() { return CHRONOS_RAW_DATA; }

// Runs fn and expects a chronos::Error whose message contains needle.
// The UTF-8 bytes of code point c.
inline std::string utf8(uint32_t c) {
    std::string s;
    if (c < 0x80) {
        s += static_cast<char>(c);
    } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 63));
    } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 63));
        s += static_cast<char>(0x80 | (c & 63));
    } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 63));
        s += static_cast<char>(0x80 | ((c >> 6) & 63));
        s += static_cast<char>(0x80 | (c & 63));
    }
    return s;
}

inline void expect_error_mentions(const std::function<void()>& fn, const std::string& needle) {
    try {
        fn();
        ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

// A small valid config: 2 layers (MLA, sliding window), 4 experts top-2, lookahead K=2.
inline ModelConfig tiny_model_config() {
    ModelConfig c;
    c.vocab_size = 300;
    c.hidden_size = 32;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.kv_lora_rank = 16;
    c.qk_nope_head_dim = 8;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 8;
    c.n_routed_experts = 4;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 24;
    c.max_position_embeddings = 128;
    c.sliding_window = 16;
    c.attention_pattern = {AttentionKind::mla, AttentionKind::swa};
    c.lookahead_steps = 2;
    c.lookahead_hidden_size = 16;
    return c;
}

}  // namespace chronos::test
