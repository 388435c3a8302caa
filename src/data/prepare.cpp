// prepare.cpp: from corpora to split JSONL files.
//
// Kinds and where they come from (docs/data.md has the licences):
//   pretrain    State of the Union, Brown corpus, King James Bible, in chunks of paragraphs
//   sft         Perl and Python FAQs, WordNet definitions, quiz items, generated arithmetic
//   preference  spelling (codespell: a real corpus sentence vs the same with a known
//               misspelling), quiz answers vs another item's answer, arithmetic vs an off-by error
//   prompts     quiz items and generated arithmetic with exact answers
#include "data/prepare.h"

#include <spdlog/spdlog.h>

#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "data/jsonl.h"
#include "data/text_utils.h"

namespace chronos {

using nlohmann::json;

std::string data_file(const std::string& dir, RecordKind kind, Split split) {
    return fmt::format("{}/{}.{}.jsonl", dir, record_kind_name(kind), split_name(split));
}

namespace {

// The twelve writers, one per kind and split, with the running counts.
class SplitWriters {
public:
    SplitWriters(const std::string& dir, const SplitFractions& fractions) : fractions_(fractions) {
        for (RecordKind k : kRecordKinds) {
            for (Split s : kSplits) writers_[idx(k)][static_cast<size_t>(s)] = std::make_unique<JsonlWriter>(data_file(dir, k, s));
        }
    }

    void add(RecordKind kind, const std::string& key, json record, int64_t words) {
        Split split = split_assign(key, fractions_);
        const size_t k = idx(kind), s = static_cast<size_t>(split);
        writers_[k][s]->write(record);
        table_.records[k][s] += 1;
        table_.words[k][s] += words;
    }

    SplitTable commit() {
        for (auto& row : writers_) {
            for (auto& w : row) {
                if (w->count() == 0) fail("data prepare produced an empty split; sources look incomplete");
                w->commit();
            }
        }
        return table_;
    }

private:
    static size_t idx(RecordKind k) { return static_cast<size_t>(k); }
    SplitFractions fractions_;
    std::array<std::array<std::unique_ptr<JsonlWriter>, 3>, 4> writers_;
    SplitTable table_;
};

json sft_record(const std::string& source, const std::string& id, const std::string& q, const std::string& a) {
    return json{{"conversations", json::array({json{{"role", "user"}, {"content", q}},
                                               json{{"role", "assistant"}, {"content", a}}})},
                {"source", source},
                {"id", id}};
}

struct ArithItem {
    std::string expr;
    int64_t value;
};

// Generated arithmetic: portable (mt19937_64 is fully specified; we map its output ourselves
// instead of using std::uniform_int_distribution, whose algorithm differs between libraries).
std::vector<ArithItem> arithmetic_generate(int64_t count, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
    std::vector<ArithItem> items;
    std::set<std::string> seen;
    while (static_cast<int64_t>(items.size()) < count) {
        ArithItem it;
        switch (rng() % 5) {
            case 0: {
                int64_t a = pick(0, 999), b = pick(0, 999);
                it = {fmt::format("{} + {}", a, b), a + b};
                break;
            }
            case 1: {
                int64_t a = pick(0, 999), b = pick(0, a);
                it = {fmt::format("{} - {}", a, b), a - b};
                break;
            }
            case 2: {
                int64_t a = pick(2, 99), b = pick(2, 99);
                it = {fmt::format("{} * {}", a, b), a * b};
                break;
            }
            case 3: {
                int64_t b = pick(2, 30), q = pick(2, 60);
                it = {fmt::format("{} / {}", b * q, b), q};
                break;
            }
            default: {
                int64_t a = pick(1, 50), b = pick(1, 50), c = pick(2, 12);
                it = {fmt::format("({} + {}) * {}", a, b, c), (a + b) * c};
                break;
            }
        }
        if (seen.insert(it.expr).second) items.push_back(it);
    }
    return items;
}

// A sentence position where a word occurs, for the spelling preference pairs.
struct WordSite {
    const Document* doc;
    std::string sentence;
    size_t offset;
};

void add_spelling_pairs(SplitWriters& out, const std::vector<const Document*>& docs,
                        const std::vector<Misspelling>& misspellings, int64_t limit) {
    std::set<std::string> wanted;
    for (const Misspelling& m : misspellings) wanted.insert(m.right);
    // Up to 4 sites per wanted word, first in document order.
    std::unordered_map<std::string, std::vector<WordSite>> sites;
    for (const Document* d : docs) {
        for (const std::string& para : d->paragraphs) {
            for (const std::string& sentence : split_sentences(para)) {
                if (sentence.size() < 40 || sentence.size() > 400) continue;
                size_t i = 0;
                while (i < sentence.size()) {
                    while (i < sentence.size() && !(sentence[i] >= 'a' && sentence[i] <= 'z') &&
                           !(sentence[i] >= 'A' && sentence[i] <= 'Z'))
                        ++i;
                    size_t j = i;
                    while (j < sentence.size() && ((sentence[j] >= 'a' && sentence[j] <= 'z') || (sentence[j] >= 'A' && sentence[j] <= 'Z')))
                        ++j;
                    if (j > i && i >= 20) {
                        std::string word = sentence.substr(i, j - i);
                        if (wanted.count(word)) {
                            auto& v = sites[word];
                            if (v.size() < 4) v.push_back({d, sentence, i});
                        }
                    }
                    i = j;
                }
            }
        }
    }
    std::set<std::string> used;
    int64_t made = 0;
    for (const Misspelling& m : misspellings) {
        if (made >= limit) break;
        auto it = sites.find(m.right);
        if (it == sites.end() || !used.insert(m.right).second) continue;
        const WordSite& site = it->second[fnv1a64(m.wrong) % it->second.size()];
        std::string prompt = trim(site.sentence.substr(0, site.offset));
        std::string chosen = site.sentence.substr(site.offset);
        std::string rejected = m.wrong + site.sentence.substr(site.offset + m.right.size());
        json rec{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected},
                 {"source", "codespell+" + site.doc->source}, {"id", m.wrong + "->" + m.right}};
        // The pair lives in the split of the document its sentence comes from.
        out.add(RecordKind::preference, site.doc->source + ":" + site.doc->id, rec,
                count_words(prompt) + count_words(chosen) + count_words(rejected));
        ++made;
    }
}

}  // namespace

SplitTable data_prepare(const PrepareOptions& o) {
    source_paths_check(o.paths);
    dir_create(o.out_dir);

    spdlog::info("reading corpora");
    std::vector<Document> sotu = source_read_sotu(o.paths.sotu_dir);
    std::vector<Document> brown = source_read_brown(o.paths.brown_dir);
    std::vector<Document> kjv = source_read_kjv(o.paths.kjv_text);
    std::vector<QaItem> perlfaq = source_read_perlfaq(o.paths.perlfaq_dir);
    std::vector<QaItem> pyfaq = source_read_python_faq(o.paths.python_faq_dir);
    std::vector<QaItem> wordnet = source_read_wordnet(o.paths.wordnet_dir, o.wordnet_stride);
    std::vector<QaItem> quiz = source_read_quiz(o.paths.quiz_dir);
    std::vector<Misspelling> misspellings = source_read_codespell(o.paths.codespell_dict);
    spdlog::info("sources: {} SOTU addresses, {} Brown texts, {} KJV chapters, {} Perl FAQ, {} Python FAQ, "
                 "{} WordNet, {} quiz items, {} misspellings",
                 sotu.size(), brown.size(), kjv.size(), perlfaq.size(), pyfaq.size(), wordnet.size(), quiz.size(),
                 misspellings.size());
    for (const auto* src : {&sotu, &brown, &kjv}) {
        if (src->empty()) fail("data prepare: a pretraining source yielded no documents; check scripts/setup.sh");
    }

    SplitWriters out(o.out_dir, o.fractions);

    // Pretraining text.
    size_t total_docs = sotu.size() + brown.size() + kjv.size();
    ProgressBar bar("pretrain", total_docs, "docs");
    for (const auto* src : {&sotu, &brown, &kjv}) {
        for (const Document& d : *src) {
            std::vector<std::string> chunks = chunk_paragraphs(d.paragraphs, o.max_chunk_chars);
            for (size_t c = 0; c < chunks.size(); ++c) {
                json rec{{"text", chunks[c]}, {"source", d.source}, {"id", fmt::format("{}#{}", d.id, c)}};
                out.add(RecordKind::pretrain, d.source + ":" + d.id, rec, count_words(chunks[c]));
            }
            bar.advance(1);
        }
    }
    bar.finish();

    // SFT from FAQs and definitions.
    for (const auto* src : {&perlfaq, &pyfaq, &wordnet}) {
        for (const QaItem& q : *src) {
            out.add(RecordKind::sft, q.source + ":" + q.id, sft_record(q.source, q.id, q.question, q.answer),
                    count_words(q.question) + count_words(q.answer));
        }
    }

    // Quiz items: SFT, verifiable prompt and preference (answer vs the next item's answer of the
    // same source), all keyed alike so they share a split.
    for (size_t i = 0; i < quiz.size(); ++i) {
        const QaItem& q = quiz[i];
        const std::string key = q.source + ":" + q.id;
        const int64_t words = count_words(q.question) + count_words(q.answer);
        out.add(RecordKind::sft, key, sft_record(q.source, q.id, q.question, q.answer), words);
        out.add(RecordKind::prompts, key, json{{"prompt", q.question}, {"answer", q.answer}, {"source", q.source}, {"id", q.id}}, words);
        for (size_t k = 1; k < quiz.size(); ++k) {
            const QaItem& other = quiz[(i + k) % quiz.size()];
            // Same source and same question type (id prefix: region, "symbol", "number").
            const bool same_kind = other.source == q.source &&
                                   other.id.substr(0, other.id.find(':')) == q.id.substr(0, q.id.find(':'));
            if (same_kind && other.answer != q.answer) {
                out.add(RecordKind::preference, key,
                        json{{"prompt", q.question}, {"chosen", q.answer}, {"rejected", other.answer},
                             {"source", q.source}, {"id", q.id}},
                        words + count_words(other.answer));
                break;
            }
        }
    }

    // Generated arithmetic: even items teach (SFT), odd items are prompts and preference pairs.
    std::vector<ArithItem> arith = arithmetic_generate(o.arithmetic_items, o.seed);
    for (size_t i = 0; i < arith.size(); ++i) {
        const ArithItem& a = arith[i];
        const std::string question = fmt::format("What is {}?", a.expr);
        const std::string answer = std::to_string(a.value);
        const std::string key = "arith:" + a.expr;
        const int64_t words = count_words(question) + 1;
        if (i % 2 == 0) {
            out.add(RecordKind::sft, key, sft_record("arithmetic", a.expr, question, answer), words);
            continue;
        }
        out.add(RecordKind::prompts, key, json{{"prompt", question}, {"answer", answer}, {"source", "arithmetic"}, {"id", a.expr}}, words);
        int64_t delta = 1 + static_cast<int64_t>(fnv1a64(a.expr) % 10);
        int64_t wrong = (fnv1a64(key) & 1) && a.value >= delta ? a.value - delta : a.value + delta;
        out.add(RecordKind::preference, key,
                json{{"prompt", question}, {"chosen", answer}, {"rejected", std::to_string(wrong)},
                     {"source", "arithmetic"}, {"id", a.expr}},
                words + 1);
    }

    // Spelling: modern prose only (SOTU and Brown), so "chosen" is standard modern spelling.
    std::vector<const Document*> prose;
    for (const Document& d : sotu) prose.push_back(&d);
    for (const Document& d : brown) prose.push_back(&d);
    add_spelling_pairs(out, prose, misspellings, o.spelling_pairs);

    SplitTable table = out.commit();

    json manifest{{"format", "chronos-data-v1"},
                  {"max_chunk_chars", o.max_chunk_chars},
                  {"wordnet_stride", o.wordnet_stride},
                  {"arithmetic_items", o.arithmetic_items},
                  {"spelling_pairs", o.spelling_pairs},
                  {"seed", o.seed},
                  {"validation_fraction", o.fractions.validation},
                  {"test_fraction", o.fractions.test}};
    for (RecordKind k : kRecordKinds) {
        for (Split s : kSplits) {
            manifest["records"][record_kind_name(k)][split_name(s)] =
                table.records[static_cast<size_t>(k)][static_cast<size_t>(s)];
        }
    }
    file_write_atomic(o.out_dir + "/manifest.json", manifest.dump(2) + "\n");
    return table;
}

}  // namespace chronos
