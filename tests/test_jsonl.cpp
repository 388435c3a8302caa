// test_jsonl.cpp: malformed JSONL and wrong records get errors naming the file and line.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

void expect_error_mentions(const std::function<void()>& fn, const std::string& needle) {
    try {
        fn();
        ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Jsonl, MalformedLineNamesFileAndLine) {
    test::TempDir dir;
    const std::string p = dir.file("x.jsonl");
    file_write_atomic(p, "{\"text\": \"a\"}\n\n{\"text\": \"b\"\n{\"text\": \"c\"}\n");
    expect_error_mentions([&] { pretrain_load(p); }, p + ":3: malformed JSON");
}

TEST(Jsonl, EmptyFileAndNonObjectLinesAreErrors) {
    test::TempDir dir;
    file_write_atomic(dir.file("empty.jsonl"), "\n  \n");
    expect_error_mentions([&] { pretrain_load(dir.file("empty.jsonl")); }, "no records");
    file_write_atomic(dir.file("arr.jsonl"), "[1, 2]\n");
    expect_error_mentions([&] { pretrain_load(dir.file("arr.jsonl")); }, "arr.jsonl:1: expected a JSON object");
    expect_error_mentions([&] { pretrain_load(dir.file("absent.jsonl")); }, "cannot open");
}

TEST(Jsonl, RecordSchemasAreChecked) {
    test::TempDir dir;
    file_write_atomic(dir.file("p.jsonl"), "{\"txt\": \"a\"}\n");
    expect_error_mentions([&] { pretrain_load(dir.file("p.jsonl")); }, "p.jsonl:1: expected a string field \"text\"");
    file_write_atomic(dir.file("s.jsonl"),
                      "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n"
                      "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
    expect_error_mentions([&] { sft_load(dir.file("s.jsonl")); }, "s.jsonl:2: conversation has no assistant turn");
    file_write_atomic(dir.file("r.jsonl"), "{\"conversations\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n");
    expect_error_mentions([&] { sft_load(dir.file("r.jsonl")); }, "unknown role \"bot\"");
    file_write_atomic(dir.file("pref.jsonl"), "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}\n");
    expect_error_mentions([&] { preference_load(dir.file("pref.jsonl")); }, "identical");
    file_write_atomic(dir.file("q.jsonl"), "{\"prompt\": \"p\", \"answer\": 4}\n");
    expect_error_mentions([&] { prompts_load(dir.file("q.jsonl")); }, "q.jsonl:1: expected a string field \"answer\"");
}

TEST(Jsonl, WriterIsAtomicAndReadable) {
    test::TempDir dir;
    {
        JsonlWriter w(dir.file("w.jsonl"));
        w.write(nlohmann::json{{"text", "tab\there \"quoted\" \xE2\x96\x81"}});
        w.commit();
    }
    std::vector<PretrainRecord> r = pretrain_load(dir.file("w.jsonl"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].text, "tab\there \"quoted\" \xE2\x96\x81");
    {
        JsonlWriter w(dir.file("w.jsonl"));
        w.write(nlohmann::json{{"text", "never committed"}});
    }
    EXPECT_EQ(pretrain_load(dir.file("w.jsonl"))[0].text, "tab\there \"quoted\" \xE2\x96\x81");
}
