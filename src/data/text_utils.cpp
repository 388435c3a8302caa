// text_utils.cpp: see text_utils.h. Plain loops; these run once per corpus at prepare time.
#include "data/text_utils.h"

#include <cctype>
#include <cstring>

namespace chronos {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
static size_t utf8_seq_len(std::string_view s, size_t i) {
    auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    uint8_t c = b(i);
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return n;
}

bool utf8_valid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        size_t n = utf8_seq_len(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string utf8_sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t n = utf8_seq_len(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && is_space(s[a])) ++a;
    while (b > a && is_space(s[b - 1])) --b;
    return std::string(s.substr(a, b - a));
}

std::string collapse_spaces(std::string_view s) {
    std::string out;
    bool pending = false;
    for (char c : s) {
        if (is_space(c)) {
            pending = !out.empty();
        } else {
            if (pending) out.push_back(' ');
            pending = false;
            out.push_back(c);
        }
    }
    return out;
}

std::vector<std::string> split_lines(std::string_view s) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < s.size()) {
        size_t nl = s.find('\n', start);
        if (nl == std::string_view::npos) nl = s.size();
        std::string_view line = s.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.emplace_back(line);
        start = nl + 1;
    }
    return lines;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

static void append_utf8(std::string& out, uint32_t cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string html_unescape(std::string_view s) {
    static const struct {
        const char* name;
        const char* text;
    } kNamed[] = {{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
                  {"para", "\xC2\xB6"}, {"copy", "\xC2\xA9"}, {"mdash", "\xE2\x80\x94"}, {"ndash", "\xE2\x80\x93"},
                  {"hellip", "\xE2\x80\xA6"}, {"rsquo", "\xE2\x80\x99"}, {"lsquo", "\xE2\x80\x98"},
                  {"ldquo", "\xE2\x80\x9C"}, {"rdquo", "\xE2\x80\x9D"}};
    std::string out;
    for (size_t i = 0; i < s.size();) {
        if (s[i] == '&') {
            size_t semi = s.find(';', i);
            if (semi != std::string_view::npos && semi - i <= 10) {
                std::string_view ent = s.substr(i + 1, semi - i - 1);
                bool done = false;
                if (!ent.empty() && ent[0] == '#') {
                    uint32_t cp = 0;
                    bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
                    std::string digits(ent.substr(hex ? 2 : 1));
                    if (!digits.empty()) {
                        cp = static_cast<uint32_t>(std::strtoul(digits.c_str(), nullptr, hex ? 16 : 10));
                        append_utf8(out, cp);
                        done = true;
                    }
                } else {
                    for (const auto& e : kNamed) {
                        if (ent == e.name) {
                            out += e.text;
                            done = true;
                            break;
                        }
                    }
                }
                if (done) {
                    i = semi + 1;
                    continue;
                }
            }
        }
        out.push_back(s[i]);
        ++i;
    }
    return out;
}

std::string html_to_text(std::string_view html) {
    std::string out;
    bool in_pre = false;
    for (size_t i = 0; i < html.size();) {
        if (html[i] == '<') {
            size_t close = html.find('>', i);
            if (close == std::string_view::npos) break;
            std::string tag(html.substr(i + 1, close - i - 1));
            std::string name;
            for (char c : tag) {
                if (std::isalnum(static_cast<unsigned char>(c)) || c == '/') name.push_back(static_cast<char>(std::tolower(c)));
                else break;
            }
            if (name == "pre") in_pre = true;
            if (name == "/pre") in_pre = false;
            static const char* kBreaks[] = {"p", "/p", "br", "li", "pre", "/pre", "h1", "h2", "h3", "h4", "/div", "dt", "dd"};
            for (const char* b : kBreaks) {
                if (name == b) {
                    out += "\n\n";
                    break;
                }
            }
            i = close + 1;
            continue;
        }
        size_t next = html.find('<', i);
        if (next == std::string_view::npos) next = html.size();
        std::string text = html_unescape(html.substr(i, next - i));
        if (in_pre) {
            out += text;
        } else {
            for (char& c : text) {
                if (c == '\n' || c == '\t' || c == '\r') c = ' ';
            }
            out += text;
        }
        i = next;
    }
    // Normalise paragraph breaks: collapse spaces inside paragraphs outside code, at most one
    // blank line between paragraphs.
    std::string result;
    size_t start = 0;
    while (start < out.size()) {
        size_t brk = out.find("\n\n", start);
        if (brk == std::string::npos) brk = out.size();
        std::string para = out.substr(start, brk - start);
        bool code = para.find('\n') != std::string::npos;
        std::string cleaned = code ? trim(para) : collapse_spaces(para);
        if (!cleaned.empty()) {
            if (!result.empty()) result += "\n\n";
            result += cleaned;
        }
        start = brk + 2;
    }
    return result;
}

std::string pod_inline_to_text(std::string_view pod) {
    std::string out;
    for (size_t i = 0; i < pod.size();) {
        // A formatting code is an upper-case letter followed by '<' (or '<<' + space for the
        // multi-bracket form).
        if (i + 1 < pod.size() && std::isupper(static_cast<unsigned char>(pod[i])) && pod[i + 1] == '<') {
            char code = pod[i];
            size_t open = i + 1;
            size_t n = 0;
            while (open + n < pod.size() && pod[open + n] == '<') ++n;
            std::string closer(n, '>');
            size_t content_start = open + n;
            size_t end;
            if (n == 1) {
                // Nested codes: match brackets.
                int depth = 1;
                end = content_start;
                while (end < pod.size() && depth > 0) {
                    if (pod[end] == '<') ++depth;
                    else if (pod[end] == '>') --depth;
                    if (depth > 0) ++end;
                }
            } else {
                end = pod.find(" " + closer, content_start);
                if (end != std::string_view::npos) end += 1;
            }
            if (end == std::string_view::npos || end > pod.size()) {
                out.append(pod.substr(i));
                break;
            }
            std::string inner = trim(pod.substr(content_start, end - content_start));
            if (code == 'E') {
                if (inner == "lt") out += "<";
                else if (inner == "gt") out += ">";
                else if (inner == "verbar") out += "|";
                else if (inner == "sol") out += "/";
                else out += html_unescape("&" + inner + ";");
            } else if (code == 'L') {
                std::string text = inner;
                size_t bar = text.find('|');
                if (bar != std::string::npos) text = text.substr(0, bar);
                out += pod_inline_to_text(text);
            } else if (code == 'Z' || code == 'X') {
                // zero-width / index entry: nothing
            } else {
                out += pod_inline_to_text(inner);
            }
            i = end + n;
            continue;
        }
        out.push_back(pod[i]);
        ++i;
    }
    return out;
}

std::string brown_detokenize(std::string_view tagged) {
    std::string out;
    bool attach_next = true;  // no space before the next token
    size_t i = 0;
    while (i < tagged.size()) {
        while (i < tagged.size() && is_space(tagged[i])) ++i;
        if (i >= tagged.size()) break;
        size_t j = i;
        while (j < tagged.size() && !is_space(tagged[j])) ++j;
        std::string_view token = tagged.substr(i, j - i);
        i = j;
        size_t slash = token.rfind('/');
        std::string word(slash == std::string_view::npos || slash == 0 ? token : token.substr(0, slash));
        if (word == "``") {
            if (!attach_next) out.push_back(' ');
            out += "\"";
            attach_next = true;
            continue;
        }
        if (word == "''") {
            out += "\"";
            attach_next = false;
            continue;
        }
        bool closing = word == "." || word == "," || word == ";" || word == ":" || word == "?" || word == "!" ||
                       word == ")" || word == "'" || word == "]";
        if (!closing && !attach_next) out.push_back(' ');
        out += word;
        attach_next = word == "(" || word == "[";
    }
    return out;
}

std::vector<std::string> split_sentences(std::string_view text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
        char c = text[i];
        if ((c == '.' || c == '?' || c == '!') && text[i + 1] == ' ') {
            // Do not split after single capital initials ("J. Adams") or "Mr."/"Mrs."/"Dr.".
            size_t w = i;
            while (w > start && !is_space(text[w - 1])) --w;
            std::string_view word = text.substr(w, i - w);
            bool abbrev = (word.size() == 1 && std::isupper(static_cast<unsigned char>(word[0]))) || word == "Mr" ||
                          word == "Mrs" || word == "Dr" || word == "St" || word == "Gen" || word == "No";
            if (abbrev) continue;
            std::string s = trim(text.substr(start, i + 1 - start));
            if (!s.empty()) out.push_back(s);
            start = i + 2;
        }
    }
    std::string tail = trim(text.substr(start));
    if (!tail.empty()) out.push_back(tail);
    return out;
}

static void append_piece(std::vector<std::string>& chunks, std::string& current, const std::string& piece,
                         const char* joiner, size_t max_chars) {
    if (!current.empty() && current.size() + std::strlen(joiner) + piece.size() > max_chars) {
        chunks.push_back(current);
        current.clear();
    }
    if (!current.empty()) current += joiner;
    current += piece;
}

std::vector<std::string> chunk_paragraphs(const std::vector<std::string>& paragraphs, size_t max_chars) {
    std::vector<std::string> chunks;
    std::string current;
    for (const std::string& para : paragraphs) {
        if (para.empty()) continue;
        if (para.size() <= max_chars) {
            append_piece(chunks, current, para, "\n\n", max_chars);
            continue;
        }
        // Long paragraph: close the current chunk, then pack its sentences.
        if (!current.empty()) {
            chunks.push_back(current);
            current.clear();
        }
        for (const std::string& sentence : split_sentences(para)) {
            if (sentence.size() <= max_chars) {
                append_piece(chunks, current, sentence, " ", max_chars);
                continue;
            }
            size_t pos = 0;
            while (pos < sentence.size()) {
                size_t take = std::min(max_chars, sentence.size() - pos);
                if (pos + take < sentence.size()) {
                    size_t space = sentence.rfind(' ', pos + take);
                    if (space != std::string::npos && space > pos) take = space - pos;
                }
                append_piece(chunks, current, trim(std::string_view(sentence).substr(pos, take)), " ", max_chars);
                pos += take;
            }
        }
        if (!current.empty()) {
            chunks.push_back(current);
            current.clear();
        }
    }
    if (!current.empty()) chunks.push_back(current);
    return chunks;
}

namespace {

// A letter overstruck with an accent ("'" BS "a", or "a" BS "'", as the quiz files spell
// accented letters for a terminal that overprints) as the precomposed character it shows.
// An accent without an entry for its letter leaves the plain letter.
std::string quiz_overstrike(const std::string& accent, char letter) {
    struct Entry {
        const char* accent;
        const char* letters;   // the letters this accent composes with
        const char* composed;  // their UTF-8 forms, space-separated, in the same order
    };
    static const Entry kTable[] = {
        {"'", "aeiouyAEIOUYc", "á é í ó ú ý Á É Í Ó Ú Ý ć"},
        {"`", "aeiouAEIOU", "à è ì ò ù À È Ì Ò Ù"},
        {"^", "aeiouAEIOU", "â ê î ô û Â Ê Î Ô Û"},
        {"~", "aonAON", "ã õ ñ Ã Õ Ñ"},
        {"\"", "aeiouyAEIOU", "ä ë ï ö ü ÿ Ä Ë Ï Ö Ü"},
        {",", "cCsStT", "ç Ç ș Ș ț Ț"},
        {"/", "oO", "ø Ø"},
        {"\xC2\xB0", "aA", "å Å"},  // the degree sign drawn over a letter: a ring
    };
    for (const Entry& e : kTable) {
        if (accent != e.accent) continue;
        const char* at = std::strchr(e.letters, letter);
        if (at == nullptr) break;
        std::string_view forms(e.composed);
        for (long i = at - e.letters; i > 0; --i) forms.remove_prefix(forms.find(' ') + 1);
        return std::string(forms.substr(0, forms.find(' ')));
    }
    return std::string(1, letter);
}

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Replaces every "X BS Y" overstrike in s, X or Y a letter and the other its accent.
std::string quiz_compose(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\b' || out.empty() || i + 1 >= s.size()) {
            out.push_back(s[i]);
            continue;
        }
        // The mark before the backspace: one byte, or a two-byte UTF-8 character (the degree sign).
        const size_t mark_len = out.size() >= 2 && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80 ? 2 : 1;
        std::string before;
        while (before.size() < mark_len) {
            before.insert(before.begin(), out.back());
            out.pop_back();
        }
        const size_t skip = (static_cast<unsigned char>(s[i + 1]) & 0xE0) == 0xC0 && i + 2 < s.size() ? 2 : 1;
        const std::string after = s.substr(i + 1, skip);
        if (after.size() == 1 && ascii_letter(after[0]) && !(before.size() == 1 && ascii_letter(before[0]))) {
            out += quiz_overstrike(before, after[0]);
        } else if (before.size() == 1 && ascii_letter(before[0])) {
            out += quiz_overstrike(after, before[0]);
        } else {
            out += after;  // no letter in the pair: the later mark shows
        }
        i += skip;
    }
    return out;
}

}  // namespace

std::string quiz_first_form(std::string_view field) {
    std::string out;
    int bracket_depth = 0;   // inside [a|b]: skip alternatives after the first
    bool skipping = false;
    int skip_depth = 0;
    for (size_t i = 0; i < field.size(); ++i) {
        char c = field[i];
        if (c == '\\' && i + 1 < field.size()) {
            if (!skipping) out.push_back(field[i + 1]);
            ++i;
            continue;
        }
        if (c == '{' || c == '}') continue;  // optional text is included
        if (c == '[') {
            ++bracket_depth;
            continue;
        }
        if (c == ']') {
            if (skipping && skip_depth == bracket_depth) skipping = false;
            --bracket_depth;
            continue;
        }
        if (c == '|') {
            if (bracket_depth == 0) break;  // top-level alternative: keep the first
            if (!skipping) {
                skipping = true;
                skip_depth = bracket_depth;
            }
            continue;
        }
        if (!skipping) out.push_back(c);
    }
    return collapse_spaces(quiz_compose(out));
}

int64_t count_words(std::string_view s) {
    int64_t n = 0;
    bool in_word = false;
    for (char c : s) {
        const bool space = is_space(c);
        if (!space && !in_word) ++n;
        in_word = !space;
    }
    return n;
}

uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) {
        h ^= static_cast<uint8_t>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace chronos
