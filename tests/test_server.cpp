// test_server.cpp: the server's request checks and text handling without a socket: every field
// of a completion and a chat request parsed or refused with its status and parameter; the UTF-8
// check against hand-made sequences (overlong, surrogate, truncated, above U+10FFFF); stop
// sequences found at their first occurrence and held back while they may still be forming.
#include <gtest/gtest.h>

#include "server/engine.h"
#include "server/openai_protocol.h"
#include "data/text_utils.h"

using namespace chronos::server;
using chronos::utf8_valid;  // the one UTF-8 check (data/text_utils.h) the server's parser uses

namespace {

ApiError refusal(const std::string& body, bool chat = false) {
    try {
        completion_parse(body, RequestLimits{}, chat);
    } catch (const ApiError& e) {
        return e;
    }
    ADD_FAILURE() << "accepted: " << body;
    return ApiError(0, "", "");
}

TEST(ServerProtocol, ParsesACompletionAndAChat) {
    CompletionRequest r = completion_parse(
        R"({"model": "m", "prompt": "Hi", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "seed": 7, "stop": ["\n", "x"], "n": 2, "stream": true})",
        RequestLimits{}, false);
    EXPECT_EQ(r.model, "m");
    EXPECT_EQ(r.prompt, "Hi");
    EXPECT_EQ(r.max_tokens, 5);
    EXPECT_EQ(r.temperature, 0.0);
    EXPECT_EQ(r.top_p, 0.5);
    EXPECT_TRUE(r.has_seed);
    EXPECT_EQ(r.seed, 7u);
    EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "x"}));
    EXPECT_EQ(r.n, 2);
    EXPECT_TRUE(r.stream);
    CompletionRequest c = completion_parse(
        R"({"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "stop": "END"})",
        RequestLimits{}, true);
    ASSERT_EQ(c.messages.size(), 2u);
    EXPECT_EQ(c.messages[1].content, "ab");
    EXPECT_EQ(c.stop, (std::vector<std::string>{"END"}));
    EXPECT_EQ(c.max_tokens, RequestLimits{}.max_tokens);  // chat: the server's bound, lowered to the context by the engine
    EXPECT_FALSE(c.max_tokens_given);
    EXPECT_EQ(completion_parse(R"({"model": "m", "prompt": "x"})", RequestLimits{}, false).max_tokens, 16);  // completions: OpenAI's 16
    // An array of one prompt is a prompt; max_completion_tokens counts as max_tokens (unless null).
    EXPECT_EQ(completion_parse(R"({"model": "m", "prompt": ["x"], "max_completion_tokens": 3})", RequestLimits{}, false).max_tokens, 3);
    EXPECT_EQ(completion_parse(R"({"model": "m", "prompt": "x", "max_completion_tokens": null, "max_tokens": 4})", RequestLimits{}, false).max_tokens, 4);
    EXPECT_TRUE(completion_parse(R"({"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}})", RequestLimits{}, false)
                    .include_usage);
}

TEST(ServerProtocol, RefusesEachBadFieldWithItsParameter) {
    struct Case {
        const char* body;
        bool chat;
        const char* param;
    };
    const Case cases[] = {
        {R"({"prompt": "x"})", false, "model"},
        {R"({"model": 3, "prompt": "x"})", false, "model"},
        {R"({"model": "m"})", false, "prompt"},
        {R"({"model": "m", "prompt": ["a", "b"]})", false, "prompt"},
        {R"({"model": "m", "prompt": "x", "max_tokens": 0})", false, "max_tokens"},
        {R"({"model": "m", "prompt": "x", "max_tokens": 513})", false, "max_tokens"},
        {R"({"model": "m", "prompt": "x", "max_tokens": 1.5})", false, "max_tokens"},
        {R"({"model": "m", "prompt": "x", "temperature": 2.5})", false, "temperature"},
        {R"({"model": "m", "prompt": "x", "top_p": 0})", false, "top_p"},
        {R"({"model": "m", "prompt": "x", "top_p": 1e-50})", false, "top_p"},
        {R"({"model": "m", "prompt": "x", "stream_options": {"include_usage": true}})", false, "stream_options"},
        {R"({"model": "m", "messages": [{"role": "user", "content": [{"type": 3, "text": "a"}]}]})", true, "messages"},
        {R"({"model": "m", "prompt": "x", "n": 9})", false, "n"},
        {R"({"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", false, "stop"},
        {R"({"model": "m", "prompt": "x", "stop": [""]})", false, "stop"},
        {R"({"model": "m", "prompt": "x", "stop": 3})", false, "stop"},
        {R"({"model": "m", "prompt": "x", "stream": "yes"})", false, "stream"},
        {R"({"model": "m", "prompt": "x", "seed": "7"})", false, "seed"},
        {R"({"model": "m", "prompt": "x", "logprobs": 3})", false, "logprobs"},
        {R"({"model": "m", "prompt": "x", "presence_penalty": 1})", false, "presence_penalty"},
        {R"({"model": "m", "prompt": "x", "what": 1})", false, "what"},
        {R"({"model": "m", "prompt": "x", "messages": [{"role": "user", "content": "x"}]})", false, "messages"},
        {R"({"model": "m", "messages": []})", true, "messages"},
        {R"({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})", true, "messages"},
        {R"({"model": "m", "messages": [{"role": "user"}]})", true, "messages"},
        {R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true, "messages"},
        {R"({"model": "m", "prompt": "x", "messages": [{"role": "user", "content": "x"}]})", true, "prompt"},
    };
    for (const Case& c : cases) {
        const ApiError e = refusal(c.body, c.chat);
        EXPECT_EQ(e.status, 400) << c.body;
        EXPECT_EQ(e.param, c.param) << c.body << ": " << e.what();
        EXPECT_EQ(e.type, "invalid_request_error");
        const nlohmann::json j = error_json(e);
        EXPECT_TRUE(j["error"]["message"].is_string());
    }
    EXPECT_EQ(refusal("{\"model\": \"m\", \"prompt\": \"\xc3\"}").status, 400);  // truncated UTF-8
    EXPECT_EQ(refusal("[1, 2]").status, 400);
    EXPECT_EQ(refusal("").status, 400);
}

TEST(ServerProtocol, Utf8Validation) {
    EXPECT_TRUE(utf8_valid(""));
    EXPECT_TRUE(utf8_valid("plain ascii"));
    EXPECT_TRUE(utf8_valid("\xc3\xa9t\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"));  // é, 中, 😀
    EXPECT_TRUE(utf8_valid("\xf4\x8f\xbf\xbf"));                                // U+10FFFF
    EXPECT_FALSE(utf8_valid("\xc0\xaf"));                                       // overlong '/'
    EXPECT_FALSE(utf8_valid("\xe0\x80\xaf"));                                   // overlong, 3 bytes
    EXPECT_FALSE(utf8_valid("\xed\xa0\x80"));                                   // surrogate U+D800
    EXPECT_FALSE(utf8_valid("\xf4\x90\x80\x80"));                               // above U+10FFFF
    EXPECT_FALSE(utf8_valid("\xe4\xb8"));                                       // truncated
    EXPECT_FALSE(utf8_valid("\x80"));                                           // lone continuation
    EXPECT_FALSE(utf8_valid("\xff"));
}

TEST(ServerProtocol, StopSequencesAreFoundAndHeldBack) {
    // Found at the first occurrence of any of them.
    StopScan s = stop_scan("hello world. bye", {"bye", "."});
    EXPECT_EQ(s.stop_at, 11u);
    EXPECT_EQ(s.safe, 11u);
    // "wor" may still become "world": held back; with no stop sequence everything is safe.
    s = stop_scan("hello wor", {"world"});
    EXPECT_EQ(s.stop_at, std::string::npos);
    EXPECT_EQ(s.safe, 6u);
    EXPECT_EQ(stop_scan("hello wor", {}).safe, 9u);
    EXPECT_EQ(stop_scan("abc", {"xyz"}).safe, 3u);
}

TEST(ServerProtocol, ResponsesHaveTheOpenAiShape) {
    CompletionRequest chat;
    chat.chat = true;
    chat.model = "m";
    nlohmann::json r = completion_response(chat, "id1", 5, {{"hi", "stop"}}, Usage{3, 1});
    EXPECT_EQ(r["object"], "chat.completion");
    EXPECT_EQ(r["choices"][0]["message"]["content"], "hi");
    EXPECT_EQ(r["usage"]["total_tokens"], 4);
    nlohmann::json first = completion_chunk(chat, "id1", 5, 0, "h", "", true, nullptr);
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
    nlohmann::json last = completion_chunk(chat, "id1", 5, 0, "", "length", false, nullptr);
    EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
    EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
    Usage u{2, 3};
    EXPECT_EQ(completion_chunk(chat, "id1", 5, 0, "", "", false, &u)["usage"]["completion_tokens"], 3);
}

}  // namespace
