// test_parsers.cpp: the in-memory parsers behind the fuzz targets (fuzz/): CTRC traces
// (trace_parse) and trainer_state.json (trainer_state_parse) — the clear error of each
// malformed input the readers refuse, and acceptance of what the writers write.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "format/trace.h"
#include "core/error.h"
#include "core/file_io.h"
#include "format/trainer_state.h"
#include "test_helpers.h"

using namespace chronos;
using chronos::test::expect_error_mentions;

namespace {

template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// A CTRC header (docs/trace-format.md).
std::string trace_header(uint32_t layers, uint32_t experts, uint32_t top_k, uint64_t sequences, uint64_t tokens) {
    std::string b = "CTRC";
    put<uint32_t>(b, 1);
    put<uint32_t>(b, layers);
    put<uint32_t>(b, experts);
    put<uint32_t>(b, top_k);
    put<uint32_t>(b, 0);
    put<uint64_t>(b, sequences);
    put<uint64_t>(b, tokens);
    return b;
}

// One sequence record of T tokens for `per_token` ids a token, the ids given.
void trace_record(std::string& b, uint32_t T, uint32_t prompt_len, const std::vector<uint16_t>& experts) {
    put<uint32_t>(b, T);
    put<uint32_t>(b, prompt_len);
    for (uint32_t t = 0; t < T; ++t) put<uint32_t>(b, 7 + t);
    for (uint16_t e : experts) put<uint16_t>(b, e);
    for (size_t i = 0; i < experts.size(); ++i) put<float>(b, 0.5f);
}

Trace parse(const std::string& b) { return trace_parse(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "t.ctrc"); }

// A 1-layer, 4-expert, top-2 trace of one 2-token sequence.
std::string small_trace(const std::vector<uint16_t>& experts = {0, 1, 2, 3}) {
    std::string b = trace_header(1, 4, 2, 1, 2);
    trace_record(b, 2, 1, experts);
    return b;
}

const char* kState = R"({"step": 150, "tokens_seen": 76800, "baseline": false,
  "hyper": {"seq_len": 64, "batch_size": 8, "lr": 0.003, "seed": 1234},
  "lookahead_fit": {"steps": 40, "hidden": 64, "input_layer": 0, "target": "router_topk", "batch_size": 8,
                    "seq_len": 32, "lr": 0.001, "warmup_steps": 4, "seed": 1, "data": "x.jsonl",
                    "val_lookahead_before": 2.5, "val_lookahead_after": null}})";

// kState with one field of the top level (or of lookahead_fit) replaced; null value = erased.
std::string state_with(const char* key, const nlohmann::json& value, bool in_fit = false) {
    nlohmann::json j = nlohmann::json::parse(kState);
    nlohmann::json& at = in_fit ? j["lookahead_fit"] : j;
    if (value.is_discarded()) at.erase(key);
    else at[key] = value;
    return j.dump();
}

const nlohmann::json kErase = nlohmann::json::value_t::discarded;

}  // namespace

TEST(TraceParser, AcceptsWhatTheWriterWritesAndAgreesWithTraceRead) {
    test::TempDir dir;
    const std::string b = small_trace();
    Trace t = parse(b);
    ASSERT_EQ(t.sequences.size(), 1u);
    EXPECT_EQ(t.sequences[0].tokens, (std::vector<uint32_t>{7, 8}));
    EXPECT_EQ(t.sequences[0].expert(1, 0, 1, t.shape), 3);
    file_write_atomic(dir.file("t.ctrc"), b);
    EXPECT_EQ(trace_read(dir.file("t.ctrc")).sequences[0].experts, t.sequences[0].experts);
    // An empty sequence is a record like any other.
    std::string empty = trace_header(1, 4, 2, 1, 0);
    trace_record(empty, 0, 0, {});
    EXPECT_EQ(parse(empty).sequences[0].tokens.size(), 0u);
}

TEST(TraceParser, MalformedTracesGetClearErrors) {
    expect_error_mentions([] { parse(trace_header(1, 65536, 2, 0, 0)); }, "t.ctrc: trace header has an invalid shape (layers 1, experts 65536, top_k 2)");
    expect_error_mentions([] { parse(trace_header(0, 4, 2, 0, 0)); }, "invalid shape");
    expect_error_mentions([] { parse(trace_header(1, 4, 5, 0, 0)); }, "invalid shape");
    // Counts no file of this size could hold are refused before anything is allocated.
    expect_error_mentions([] { parse(trace_header(1, 4, 2, uint64_t{1} << 60, 0)); }, "t.ctrc: trace header counts exceed the file");
    expect_error_mentions([] { parse(trace_header(1, 4, 2, 0, ~uint64_t{0})); }, "counts exceed the file");
    // T x bytes per token would wrap around 2^64 (2^32 - 1 layers x 65535 ids a token).
    std::string wrap = trace_header(0xffffffffu, 65535, 65535, 1, 0);
    put<uint32_t>(wrap, 0xffffffffu);
    put<uint32_t>(wrap, 0);
    expect_error_mentions([&] { parse(wrap); }, "t.ctrc: trace is truncated");
    expect_error_mentions([] { parse(small_trace({0, 1, 2, 2})); }, "t.ctrc: sequence 0 token 1 layer 0 chooses expert 2 twice");
    expect_error_mentions([] { parse(small_trace({0, 4, 2, 3})); }, "expert id 4 out of range (4 experts)");
    std::string prompt = trace_header(1, 4, 2, 1, 2);
    trace_record(prompt, 2, 3, {0, 1, 2, 3});
    expect_error_mentions([&] { parse(prompt); }, "prompt is longer than the sequence");
    std::string total = trace_header(1, 4, 2, 1, 3);
    trace_record(total, 2, 1, {0, 1, 2, 3});
    expect_error_mentions([&] { parse(total); }, "header says 3 tokens, sequences hold 2");
    expect_error_mentions([] { parse(small_trace() + "x"); }, "trailing bytes after the last sequence");
    expect_error_mentions([] { parse(small_trace().substr(0, 50)); }, "trace is truncated");
    expect_error_mentions([] { parse(""); }, "trace is truncated");
}

TEST(TrainerStateParser, AcceptsWhatTheTrainersWrite) {
    TrainerState s = trainer_state_parse(kState, "state.json");
    EXPECT_EQ(s.step, 150);
    EXPECT_EQ(s.tokens_seen, 76800);
    EXPECT_FALSE(s.baseline);
    EXPECT_EQ(s.doc["lookahead_fit"]["steps"], 40);
    // Written before lookahead_fit records had input_layer and target, or without a validation set.
    EXPECT_NO_THROW(trainer_state_parse(state_with("target", kErase, true), "s"));
    EXPECT_NO_THROW(trainer_state_parse(state_with("val_lookahead_before", kErase, true), "s"));
    EXPECT_NO_THROW(trainer_state_parse(state_with("lookahead_fit", kErase), "s"));
    // The state of an untrained checkpoint reads back.
    TrainerState fresh = trainer_state_parse(trainer_state_fresh().doc.dump(), "fresh");
    EXPECT_EQ(fresh.step, 0);
    EXPECT_EQ(fresh.tokens_seen, 0);
    test::TempDir dir;
    file_write_atomic(dir.file("trainer_state.json"), kState);
    EXPECT_EQ(trainer_state_load(dir.file("trainer_state.json")).doc, s.doc);
}

TEST(TrainerStateParser, MalformedStatesGetClearErrors) {
    auto bad = [](const std::string& text, const std::string& needle) {
        expect_error_mentions([&] { trainer_state_parse(text, "ts.json"); }, needle);
    };
    bad("{\"step\": ", "ts.json: not valid JSON");
    bad("[150]", "ts.json: trainer state is not a JSON object");
    bad(state_with("step", kErase), "ts.json: missing field \"step\"");
    bad(state_with("step", -1), "ts.json: \"step\" must be a non-negative integer, got -1");
    bad(state_with("step", 1.5), "\"step\" must be a non-negative integer, got 1.5");
    bad(state_with("step", nlohmann::json::parse("9223372036854775808")), "\"step\" must be a non-negative integer, got 9223372036854775808");
    bad(state_with("tokens_seen", "many"), "\"tokens_seen\" must be a non-negative integer, got \"many\"");
    bad(state_with("baseline", 0), "ts.json: \"baseline\" must be true or false");
    bad(state_with("hyper", nlohmann::json::array()), "ts.json: \"hyper\" must be an object");
    bad(state_with("hyper", kErase), "missing field \"hyper\"");
    bad(state_with("lookahead_fit", 3), "ts.json: lookahead_fit is not an object");
    bad(state_with("steps", 0, true), "ts.json: lookahead_fit: \"steps\" must be a positive integer, got 0");
    bad(state_with("seq_len", 1, true), "lookahead_fit: \"seq_len\" must be an integer above 1, got 1");
    bad(state_with("input_layer", -1, true), "lookahead_fit: \"input_layer\" must be a non-negative integer, got -1");
    bad(state_with("target", "router_logits", true), "lookahead_fit: \"target\" must be \"router_probs\" or \"router_topk\"");
    bad(state_with("lr", 0, true), "lookahead_fit: \"lr\" must be a positive number");
    bad(state_with("seed", "one", true), "lookahead_fit: \"seed\" must be an integer");
    bad(state_with("data", 5, true), "lookahead_fit: \"data\" must be a string");
    bad(state_with("val_lookahead_after", "low", true), "lookahead_fit: \"val_lookahead_after\" must be a number or null");
    test::TempDir dir;
    expect_error_mentions([&] { trainer_state_load(dir.file("absent.json")); }, "absent.json");
}
