// hf_tokenizer.cpp: a Hugging Face tokenizer.json run the way transformers.js runs it (the
// reference of tests/hf_tokenizer.sh): the text is split on the added tokens first, then each
// other section goes through normalizer, pre-tokenizer and BPE; decoding runs the decoder chain.
// Where transformers.js and the Rust `tokenizers` library differ, this follows transformers.js;
// such places carry a comment starting "JS:".
#include "tokenizer/hf_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {
namespace {

using json = nlohmann::json;
using Pieces = std::vector<std::string>;

// ---------------------------------------------------------------- UTF-8

// Decodes the code point at s[i] and advances i; false for anything that is not UTF-8
// (overlong forms, surrogates, values past U+10FFFF, truncated sequences).
bool utf8_next(std::string_view s, size_t& i, char32_t& cp) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
        cp = c;
        ++i;
        return true;
    }
    size_t n = 0;
    char32_t min = 0;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
        const uint8_t b = static_cast<uint8_t>(s[i + k]);
        if ((b & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
    return true;
}

void utf8_append(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::vector<char32_t> code_points(std::string_view s) {
    std::vector<char32_t> out;
    char32_t c = 0;
    for (size_t i = 0; i < s.size();) {
        if (!utf8_next(s, i, c)) fail("invalid UTF-8 at byte {}", i);
        out.push_back(c);
    }
    return out;
}

// Bytes to text as the WHATWG TextDecoder does without `fatal`: each maximal ill-formed
// subsequence becomes one U+FFFD. With strip_bom a leading U+FEFF is dropped (the decoder's
// default; transformers.js turns it off for ByteLevel and leaves it on for ByteFallback).
std::string whatwg_utf8_decode(std::string_view bytes, bool strip_bom) {
    std::string out;
    char32_t cp = 0;
    int32_t needed = 0, seen = 0;
    uint8_t lower = 0x80, upper = 0xBF;
    for (size_t i = 0; i < bytes.size(); ++i) {
        const uint8_t b = static_cast<uint8_t>(bytes[i]);
        if (needed == 0) {
            if (b < 0x80) utf8_append(out, b);
            else if (b >= 0xC2 && b <= 0xDF) needed = 1, cp = b & 0x1F;
            else if (b >= 0xE0 && b <= 0xEF) needed = 2, cp = b & 0x0F, lower = b == 0xE0 ? 0xA0 : 0x80, upper = b == 0xED ? 0x9F : 0xBF;
            else if (b >= 0xF0 && b <= 0xF4) needed = 3, cp = b & 0x07, lower = b == 0xF0 ? 0x90 : 0x80, upper = b == 0xF4 ? 0x8F : 0xBF;
            else utf8_append(out, 0xFFFD);
            continue;
        }
        if (b < lower || b > upper) {  // the sequence so far is one error; b starts afresh
            needed = seen = 0, lower = 0x80, upper = 0xBF;
            utf8_append(out, 0xFFFD);
            --i;
            continue;
        }
        lower = 0x80, upper = 0xBF;
        cp = (cp << 6) | (b & 0x3F);
        if (++seen == needed) {
            utf8_append(out, cp);
            needed = seen = 0;
        }
    }
    if (needed != 0) utf8_append(out, 0xFFFD);
    if (strip_bom && out.compare(0, 3, "\xEF\xBB\xBF") == 0) out.erase(0, 3);
    return out;
}

// JavaScript's \s and String.prototype.trim: WhiteSpace and LineTerminator of ECMA-262. PCRE2's
// \s under PCRE2_UCP is another set (it has U+0085 and U+180E, lacks U+FEFF).
bool js_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}
constexpr std::string_view kJsSpace = "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";

std::string js_trim(std::string_view s, bool left, bool right) {
    size_t begin = 0, end = s.size(), i = 0;
    char32_t c = 0;
    bool leading = true;
    while (i < s.size()) {
        const size_t at = i;
        utf8_next(s, i, c);
        if (!js_space(c)) {
            if (leading) begin = at, leading = false;
            end = i;
        }
    }
    if (leading) return "";  // all whitespace
    return std::string(s.substr(left ? begin : 0, (right ? end : s.size()) - (left ? begin : 0)));
}

int32_t hex_digit(char32_t c) {
    if (c >= '0' && c <= '9') return static_cast<int32_t>(c - '0');
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? static_cast<int32_t>(c - 'a' + 10) : -1;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out += to;
    }
    out.append(s, pos);
    return out;
}

// ---------------------------------------------------------------- regular expressions

// PCRE2 10.42 classifies characters by Unicode 14; utf8proc 2.8 (our NFC) by Unicode 15, and the
// JavaScript engines by their ICU (Unicode 15 or later). Characters assigned after PCRE2's
// tables are unassigned (Cn) to it: the pink heart U+1FA77 would not be \p{S}. So each \p{X}
// is widened by the characters utf8proc puts in X and PCRE2 leaves unassigned. Characters
// assigned after utf8proc's Unicode still differ from a newer JavaScript engine.
const std::string& category_extras(const std::string& name) {
    static const std::map<std::string, std::string> extras = [] {
        std::string subject;  // every character utf8proc knows (private use aside), in order
        for (char32_t c = 0; c <= 0x10FFFF; ++c) {
            const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
            if (cat != UTF8PROC_CATEGORY_CN && cat != UTF8PROC_CATEGORY_CS && cat != UTF8PROC_CATEGORY_CO) utf8_append(subject, c);
        }
        int32_t err = 0;
        PCRE2_SIZE offset = 0;
        pcre2_code* cn = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("\\p{Cn}"), PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &offset, nullptr);
        CHRONOS_ASSERT(cn != nullptr, "\\p{Cn} compiles");
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(cn, nullptr);
        std::map<std::string, std::vector<char32_t>> chars;
        for (size_t pos = 0; pcre2_match(cn, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr) > 0;) {
            size_t i = pcre2_get_ovector_pointer(md)[0];
            char32_t c = 0;
            utf8_next(subject, i, c);
            pos = i;
            const std::string cat = utf8proc_category_string(static_cast<utf8proc_int32_t>(c));
            chars[cat].push_back(c);
            chars[cat.substr(0, 1)].push_back(c);
        }
        pcre2_match_data_free(md);
        pcre2_code_free(cn);
        std::map<std::string, std::string> ranges;
        for (auto& [cat, list] : chars) {
            std::sort(list.begin(), list.end());
            for (size_t a = 0, b = 0; a < list.size(); a = b) {
                for (b = a + 1; b < list.size() && list[b] == list[b - 1] + 1;) ++b;
                ranges[cat] += fmt::format("\\x{{{:X}}}-\\x{{{:X}}}", static_cast<uint32_t>(list[a]), static_cast<uint32_t>(list[b - 1]));
            }
        }
        return ranges;
    }();
    static const std::string none;
    auto it = extras.find(name);
    return it == extras.end() ? none : it->second;
}

// Rewrites a JavaScript pattern (flags "gu", as transformers.js compiles them) into PCRE2 syntax
// with the same meaning: \s \d \w and '.' spelled out (PCRE2_UCP would give them Unicode sets),
// \uXXXX as \x{XXXX}, [] and [^] as JavaScript reads them, Unicode categories widened as above.
std::string js_to_pcre2(std::string_view js) {
    std::string out;
    bool in_class = false;
    auto unsupported = [&](std::string_view what) { fail("regex /{}/: {} is not supported", js, what); };
    for (size_t i = 0; i < js.size();) {
        const char c = js[i];
        if (c == '\\') {
            if (i + 1 >= js.size()) fail("regex /{}/: ends in a backslash", js);
            const char e = js[i + 1];
            i += 2;
            auto set = [&](std::string_view members, bool negated) {
                if (!in_class) out += negated ? "[^" : "[";
                else if (negated) unsupported(fmt::format("\\{} inside a character class", e));
                out += members;
                if (!in_class) out += "]";
            };
            switch (e) {
                case 's': case 'S': set(kJsSpace, e == 'S'); break;
                case 'd': case 'D': set("0-9", e == 'D'); break;
                case 'w': case 'W': set("A-Za-z0-9_", e == 'W'); break;
                case 'v': out += "\\x{0B}"; break;  // PCRE2's \v is a class of vertical spaces
                case 'b':
                    if (!in_class) unsupported("\\b");
                    out += "\\x{08}";
                    break;
                case 'B': unsupported("\\B"); break;
                case 'u': {
                    auto hex = [&](size_t from, size_t to) {
                        if (to > js.size() || from == to) fail("regex /{}/: bad \\u escape", js);
                        char32_t v = 0;
                        for (size_t k = from; k < to; ++k) {
                            if (hex_digit(static_cast<unsigned char>(js[k])) < 0) fail("regex /{}/: bad \\u escape", js);
                            v = v * 16 + static_cast<char32_t>(hex_digit(static_cast<unsigned char>(js[k])));
                        }
                        return v;
                    };
                    char32_t v = 0;
                    if (i < js.size() && js[i] == '{') {
                        const size_t close = js.find('}', i);
                        v = hex(i + 1, close == std::string_view::npos ? js.size() + 1 : close);
                        i = close + 1;
                    } else {
                        v = hex(i, i + 4);
                        i += 4;
                        if (v >= 0xD800 && v <= 0xDBFF && js.substr(i, 2) == "\\u") {  // a surrogate pair
                            const char32_t low = hex(i + 2, i + 6);
                            if (low >= 0xDC00 && low <= 0xDFFF) v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00), i += 6;
                        }
                    }
                    out += fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(v));
                    break;
                }
                case 'p': case 'P': {
                    const size_t close = js.find('}', i);
                    if (i >= js.size() || js[i] != '{' || close == std::string_view::npos) fail("regex /{}/: bad \\{} escape", js, e);
                    std::string name(js.substr(i + 1, close - i - 1));
                    i = close + 1;
                    for (std::string_view prefix : {"General_Category=", "gc="})
                        if (name.starts_with(prefix)) name.erase(0, prefix.size());
                    const std::string& extra = category_extras(name);
                    if (e == 'P' && in_class) {
                        if (!extra.empty()) unsupported("\\P{" + name + "} inside a character class");
                        out += "\\P{" + name + "}";
                    } else {
                        set("\\p{" + name + "}" + extra, e == 'P');
                    }
                    break;
                }
                default: out += '\\', out += e;
            }
            continue;
        }
        if (in_class) {
            if (c == ']') in_class = false;
            out += c == '[' ? "\\[" : std::string(1, c);  // JS: a literal '['; PCRE2 would read [:alpha:]
            ++i;
        } else if (c == '[') {
            // JS: [] matches nothing and [^] anything; PCRE2 would take the ']' for a literal.
            if (js.substr(i, 2) == "[]") out += "(?!)", i += 2;
            else if (js.substr(i, 3) == "[^]") out += "[\\x{0}-\\x{10FFFF}]", i += 3;
            else in_class = true, out += c, ++i;
            if (in_class && i < js.size() && js[i] == '^') out += '^', ++i;
        } else if (c == '.') {
            out += "[^\\n\\r\\x{2028}\\x{2029}]";
            ++i;
        } else if (c == '(' && js.substr(i, 2) == "(?" && (i + 2 >= js.size() || std::string_view(":=!<").find(js[i + 2]) == std::string_view::npos)) {
            unsupported("an inline modifier group");  // JS (Node 20) rejects them too
        } else {
            out += c;
            ++i;
        }
    }
    return out;
}

// A compiled pattern with JavaScript's matchAll semantics.
class Regex {
public:
    explicit Regex(const std::string& js_source) : source_(js_source) {
        const std::string pattern = js_to_pcre2(js_source);
        int32_t err = 0;
        PCRE2_SIZE offset = 0;
        // $ matches at the very end only, as in JavaScript without the m flag.
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                              &err, &offset, nullptr);
        if (code_ == nullptr) fail("regex /{}/: {} (at offset {} of its PCRE2 form)", js_source, message(err), offset);
        pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // where JIT is unavailable the interpreter runs
    }
    ~Regex() { pcre2_code_free(code_); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Calls fn(begin, end) for each match in order, as String.prototype.matchAll with the g and u
    // flags: after an empty match the search resumes one code point later. s is valid UTF-8.
    template <typename Fn>
    void for_each_match(std::string_view s, Fn&& fn) const {
        std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(pcre2_match_data_create_from_pattern(code_, nullptr),
                                                                                &pcre2_match_data_free);
        const auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
        for (size_t pos = 0; pos <= s.size();) {
            int32_t rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
            // The JIT's stack is small; the interpreter keeps its backtracking on the heap.
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md.get(), nullptr);
            if (rc == PCRE2_ERROR_NOMATCH) return;
            if (rc < 0) fail("regex /{}/: {}", source_, message(rc));
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
            fn(static_cast<size_t>(ov[0]), static_cast<size_t>(ov[1]));
            pos = ov[1];
            if (ov[1] == ov[0]) {
                if (pos == s.size()) return;
                char32_t c = 0;
                utf8_next(s, pos, c);
            }
        }
    }

    // String.prototype.replaceAll(regex, content) for a content without '$' patterns.
    std::string replace_all(std::string_view s, std::string_view content) const {
        std::string out;
        size_t prev = 0;
        for_each_match(s, [&](size_t b, size_t e) {
            out.append(s.substr(prev, b - prev));
            out += content;
            prev = e;
        });
        out.append(s.substr(prev));
        return out;
    }

private:
    static std::string message(int32_t code) {
        std::array<PCRE2_UCHAR, 256> buf{};
        pcre2_get_error_message(code, buf.data(), buf.size());
        return reinterpret_cast<const char*>(buf.data());
    }
    std::string source_;
    pcre2_code* code_ = nullptr;
};

std::string escape_regex(std::string_view s) {  // transformers.js's escapeRegExp
    std::string out;
    for (char c : s) {
        if (std::string_view(".*+?^${}()|[]\\").find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

// A tokenizer.json "pattern" ({"String": ...} or {"Regex": ...}) as transformers.js's
// createPattern compiles it.
std::unique_ptr<Regex> make_pattern(const json& pattern, const std::string& where) {
    if (!pattern.is_object()) fail("{}: \"pattern\" is not an object", where);
    if (pattern.contains("Regex")) {
        std::string source = pattern.at("Regex").get<std::string>();
        // JS: Python-only escapes \# \& \~ are unescaped, and the case-insensitive contraction
        // group (which JS cannot parse) is spelled out. Spelled out, it does not match "'ſ" as
        // a PCRE2 (?i:'s) would.
        std::string unescaped;
        for (size_t i = 0; i < source.size(); ++i) {
            if (source[i] == '\\' && i + 1 < source.size() && std::string_view("#&~").find(source[i + 1]) != std::string_view::npos) continue;
            unescaped += source[i];
        }
        source = replace_all(unescaped, "(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))");
        try {
            return std::make_unique<Regex>(source);
        } catch (const Error& e) {
            fail("{}: {}", where, e.what());
        }
    }
    if (pattern.contains("String")) {
        const std::string s = pattern.at("String").get<std::string>();
        if (s.empty()) fail("{}: an empty String pattern is not supported", where);
        return std::make_unique<Regex>(escape_regex(s));
    }
    fail("{}: pattern {} is neither String nor Regex", where, pattern.dump());
}

std::string replacement_content(const json& j, const std::string& where) {
    const std::string content = j.at("content").get<std::string>();
    // JS: replaceAll reads $&, $1, ... in the replacement; no tokenizer we know uses them.
    if (content.find('$') != std::string::npos) fail("{}: a replacement containing '$' is not supported", where);
    return content;
}

// A boolean field read as transformers.js reads it (`j.key ?? fallback`): missing or null gives
// the fallback.
bool flag(const json& j, const char* key, bool fallback, const std::string& where) {
    if (!j.contains(key) || j.at(key).is_null()) return fallback;
    if (!j.at(key).is_boolean()) fail("{}: \"{}\" is {}, not true or false", where, key, j.at(key).dump());
    return j.at(key).get<bool>();
}

std::string type_of(const json& j, const std::string& where) {
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string()) fail("{}: not an object with a \"type\"", where);
    return j.at("type").get<std::string>();
}

// ---------------------------------------------------------------- GPT-2 byte-level alphabet

// Byte b is written as code point kByteChar[b]: printable Latin-1 stays, the rest moves to 256+.
const std::array<char32_t, 256> kByteChar = [] {
    std::array<char32_t, 256> table{};
    char32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[b] = printable ? b : next++;
    }
    return table;
}();

// ---------------------------------------------------------------- normalizers

struct Normalizer {
    virtual ~Normalizer() = default;
    virtual std::string apply(std::string s) const = 0;
};

struct UnicodeForm : Normalizer {
    utf8proc_option_t options;
    explicit UnicodeForm(int32_t o) : options(static_cast<utf8proc_option_t>(UTF8PROC_STABLE | o)) {}
    std::string apply(std::string s) const override {
        utf8proc_uint8_t* out = nullptr;
        const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out, options);
        if (n < 0) fail("Unicode normalisation: {}", utf8proc_errmsg(n));
        std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
        std::free(out);
        return r;
    }
};

struct Prepend : Normalizer {
    std::string prefix;
    std::string apply(std::string s) const override { return prefix + s; }
};

struct Replace : Normalizer {
    std::unique_ptr<Regex> pattern;
    std::string content;
    std::string apply(std::string s) const override { return pattern->replace_all(s, content); }
};

struct StripNormalizer : Normalizer {
    bool left = false, right = false;
    std::string apply(std::string s) const override { return js_trim(s, left, right); }
};

struct NormalizerSequence : Normalizer {
    std::vector<std::unique_ptr<Normalizer>> steps;
    std::string apply(std::string s) const override {
        for (const auto& n : steps) s = n->apply(std::move(s));
        return s;
    }
};

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where) {
    const std::string type = type_of(j, where);
    const std::string at = where + " (" + type + ")";
    if (type == "NFC") return std::make_unique<UnicodeForm>(UTF8PROC_COMPOSE);
    if (type == "NFD") return std::make_unique<UnicodeForm>(UTF8PROC_DECOMPOSE);
    if (type == "NFKC") return std::make_unique<UnicodeForm>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (type == "NFKD") return std::make_unique<UnicodeForm>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
    if (type == "Prepend") {
        auto n = std::make_unique<Prepend>();
        n->prefix = j.at("prepend").get<std::string>();
        return n;
    }
    if (type == "Replace") {
        auto n = std::make_unique<Replace>();
        n->pattern = make_pattern(j.at("pattern"), at);
        n->content = replacement_content(j, at);
        return n;
    }
    if (type == "Strip") {
        auto n = std::make_unique<StripNormalizer>();
        n->left = flag(j, "strip_left", false, at);
        n->right = flag(j, "strip_right", false, at);
        return n;
    }
    if (type == "Sequence") {
        auto n = std::make_unique<NormalizerSequence>();
        for (const json& step : j.at("normalizers")) n->steps.push_back(make_normalizer(step, where + " > Sequence"));
        return n;
    }
    fail("{}: normalizer type \"{}\" is not supported", where, type);
}

// ---------------------------------------------------------------- pre-tokenizers

struct PreTokenizer {
    virtual ~PreTokenizer() = default;
    virtual void apply(const std::string& piece, Pieces& out) const = 0;
};

// Split with behavior Isolated: the matches and the text between them, in order.
struct Split : PreTokenizer {
    std::unique_ptr<Regex> pattern;
    void apply(const std::string& s, Pieces& out) const override {
        size_t prev = 0;
        pattern->for_each_match(s, [&](size_t b, size_t e) {
            if (prev < b) out.emplace_back(s, prev, b - prev);
            if (e > b) out.emplace_back(s, b, e - b);
            prev = e;
        });
        if (prev < s.size()) out.emplace_back(s, prev);
    }
};

// Each UTF-8 byte becomes its byte-level character, optionally after the GPT-2 split.
struct ByteLevel : PreTokenizer {
    bool add_prefix_space = false;
    std::unique_ptr<Regex> gpt2;  // null with use_regex false
    static std::string encode(std::string_view s) {
        std::string out;
        for (char c : s) utf8_append(out, kByteChar[static_cast<uint8_t>(c)]);
        return out;
    }
    void apply(const std::string& piece, Pieces& out) const override {
        // Every piece reaching this step gets the prefix space (in both references).
        const std::string s = add_prefix_space && !piece.starts_with(' ') ? " " + piece : piece;
        if (!gpt2) {
            out.push_back(encode(s));
            return;
        }
        gpt2->for_each_match(s, [&](size_t b, size_t e) { out.push_back(encode(std::string_view(s).substr(b, e - b))); });
    }
};

struct PreTokenizerSequence : PreTokenizer {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    void apply(const std::string& piece, Pieces& out) const override {
        Pieces pieces{piece};
        for (const auto& step : steps) {
            Pieces next;
            for (const std::string& p : pieces) step->apply(p, next);
            pieces = std::move(next);
        }
        for (std::string& p : pieces) out.push_back(std::move(p));
    }
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where) {
    const std::string type = type_of(j, where);
    const std::string at = where + " (" + type + ")";
    if (type == "Split") {
        const std::string behavior = j.value("behavior", "");
        // JS: every behavior but Removed splits as Isolated; those other behaviors and invert
        // (which JS reads differently from Rust) are refused rather than guessed.
        if (behavior != "Isolated") fail("{}: behavior \"{}\" is not supported (only Isolated)", at, behavior);
        if (flag(j, "invert", false, at)) fail("{}: invert is not supported", at);
        auto p = std::make_unique<Split>();
        p->pattern = make_pattern(j.at("pattern"), at);
        return p;
    }
    if (type == "ByteLevel") {
        auto p = std::make_unique<ByteLevel>();
        p->add_prefix_space = flag(j, "add_prefix_space", false, at);
        if (flag(j, "use_regex", true, at))  // transformers.js's GPT-2 pattern
            p->gpt2 = std::make_unique<Regex>("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
        return p;
    }
    if (type == "Sequence") {
        auto p = std::make_unique<PreTokenizerSequence>();
        for (const json& step : j.at("pretokenizers")) p->steps.push_back(make_pre_tokenizer(step, where + " > Sequence"));
        return p;
    }
    fail("{}: pre-tokenizer type \"{}\" is not supported", where, type);
}

// ---------------------------------------------------------------- decoders

struct Decoder {
    virtual ~Decoder() = default;
    virtual Pieces chain(Pieces tokens) const = 0;
};

// Byte-level tokens back to bytes, then text; added tokens pass through as they are.
// JS: a character outside the byte alphabet becomes byte 0 (Rust keeps the token's own UTF-8).
// Not as JS: transformers.js hands the added tokens to the top-level decoder only, so a
// ByteLevel inside a Sequence would read them as bytes (garbage); here every ByteLevel passes
// them through, as Rust does. The published files put ByteLevel at the top.
struct ByteLevelDecoder : Decoder {
    const std::unordered_set<std::string>* added = nullptr;
    static uint8_t byte_of(char32_t c) {
        static const std::unordered_map<char32_t, uint8_t> table = [] {
            std::unordered_map<char32_t, uint8_t> t;
            for (uint32_t b = 0; b < 256; ++b) t[kByteChar[b]] = static_cast<uint8_t>(b);
            return t;
        }();
        auto it = table.find(c);
        return it == table.end() ? 0 : it->second;
    }
    Pieces chain(Pieces tokens) const override {
        Pieces out;
        std::string bytes;
        bool pending = false;
        auto flush = [&] {
            if (pending) out.push_back(whatwg_utf8_decode(bytes, false));
            bytes.clear();
            pending = false;
        };
        for (std::string& t : tokens) {
            if (added->count(t)) {
                flush();
                out.push_back(std::move(t));
                continue;
            }
            for (char32_t c : code_points(t)) bytes += static_cast<char>(byte_of(c));
            pending = true;
        }
        flush();
        return out;
    }
};

struct ReplaceDecoder : Decoder {
    std::unique_ptr<Regex> pattern;
    std::string content;
    Pieces chain(Pieces tokens) const override {
        for (std::string& t : tokens) t = pattern->replace_all(t, content);
        return tokens;
    }
};

// Runs of <0xNN> tokens become text (each run decoded on its own, with the TextDecoder's
// replacement characters and its dropping of a leading BOM).
struct ByteFallbackDecoder : Decoder {
    // The byte of a "<0xNN>" token as transformers.js reads it (6 UTF-16 units, parseInt of
    // the middle two in base 16), or -1.
    static int32_t byte_of(const std::string& t) {
        if (!t.starts_with("<0x") || !t.ends_with(">")) return -1;
        const std::vector<char32_t> cps = code_points(t);
        size_t units = 0;
        for (char32_t c : cps) units += c > 0xFFFF ? 2 : 1;
        if (units != 6 || cps.size() != 6) return -1;  // astral middles make parseInt NaN anyway
        // parseInt(middle, 16): optional whitespace, an optional sign, then hex digits.
        size_t k = 3;
        while (k < 5 && js_space(cps[k])) ++k;
        bool negative = false;
        if (k < 5 && (cps[k] == '+' || cps[k] == '-')) negative = cps[k] == '-', ++k;
        int32_t value = 0, digits = 0;
        for (; k < 5 && hex_digit(cps[k]) >= 0; ++k, ++digits) value = value * 16 + hex_digit(cps[k]);
        if (digits == 0) return -1;
        return static_cast<uint8_t>(negative ? -value : value);  // Uint8Array wraps modulo 256
    }
    Pieces chain(Pieces tokens) const override {
        Pieces out;
        std::string bytes;
        for (std::string& t : tokens) {
            const int32_t b = byte_of(t);
            if (b >= 0) {
                bytes += static_cast<char>(b);
                continue;
            }
            if (!bytes.empty()) out.push_back(whatwg_utf8_decode(bytes, true)), bytes.clear();
            out.push_back(std::move(t));
        }
        if (!bytes.empty()) out.push_back(whatwg_utf8_decode(bytes, true));
        return out;
    }
};

struct FuseDecoder : Decoder {
    Pieces chain(Pieces tokens) const override {
        std::string all;
        for (const std::string& t : tokens) all += t;
        return {all};
    }
};

// Drops up to `start` leading and `stop` trailing copies of one character from each token.
struct StripDecoder : Decoder {
    char32_t content = 0;
    int64_t start = 0, stop = 0;
    Pieces chain(Pieces tokens) const override {
        for (std::string& t : tokens) {
            const std::vector<char32_t> cps = code_points(t);
            size_t b = 0, e = cps.size();
            for (int64_t k = 0; k < start && b < cps.size() && cps[b] == content; ++k) ++b;
            for (int64_t k = 0; k < stop && e > b && cps[e - 1] == content; ++k) --e;
            std::string s;
            for (size_t i = b; i < e; ++i) utf8_append(s, cps[i]);
            t = std::move(s);
        }
        return tokens;
    }
};

struct DecoderSequence : Decoder {
    std::vector<std::unique_ptr<Decoder>> steps;
    Pieces chain(Pieces tokens) const override {
        for (const auto& d : steps) tokens = d->chain(std::move(tokens));
        return tokens;
    }
};

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where, const std::unordered_set<std::string>* added) {
    const std::string type = type_of(j, where);
    const std::string at = where + " (" + type + ")";
    if (type == "ByteLevel") {
        auto d = std::make_unique<ByteLevelDecoder>();
        d->added = added;
        return d;
    }
    if (type == "Replace") {
        auto d = std::make_unique<ReplaceDecoder>();
        d->pattern = make_pattern(j.at("pattern"), at);
        d->content = replacement_content(j, at);
        return d;
    }
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        auto d = std::make_unique<StripDecoder>();
        const std::vector<char32_t> cps = code_points(j.at("content").get<std::string>());
        if (cps.size() != 1) fail("{}: content must be one character", at);
        // JS compares UTF-16 units, so a character outside the BMP is never stripped.
        d->content = cps[0] > 0xFFFF ? 0xFFFFFFFF : cps[0];
        d->start = j.value("start", int64_t{0});
        d->stop = j.value("stop", int64_t{0});
        return d;
    }
    if (type == "Sequence") {
        auto d = std::make_unique<DecoderSequence>();
        for (const json& step : j.at("decoders")) d->steps.push_back(make_decoder(step, where + " > Sequence", added));
        return d;
    }
    fail("{}: decoder type \"{}\" is not supported", where, type);
}

// transformers.js's clean_up_tokenization (tokenizer_config.json clean_up_tokenization_spaces).
std::string clean_up_tokenization(std::string s) {
    static const std::pair<std::string_view, std::string_view> rules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : rules) s = replace_all(std::move(s), from, to);
    return s;
}

}  // namespace

// ---------------------------------------------------------------- the BPE model

// Merges by rank over a linked list of symbols with a heap of candidate pairs: the lowest rank
// merges first, the leftmost among equal ranks (transformers.js adds position/length to the
// rank, which orders the same way). Strings are interned so that pairs are integer keys.
struct Bpe {
    std::unordered_map<std::string, int32_t> symbols;  // every merge part and result
    std::vector<int32_t> symbol_id;                    // symbol -> token id, -1 when not a token
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    std::unordered_map<uint64_t, Merge> merges;  // (left << 32 | right) -> rank and result
    std::array<int32_t, 256> byte_ids{};         // ids of <0x00>..<0xFF>, -1 when missing
    bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
    int32_t unk_id = -1;
    std::string unk_token;

    mutable std::mutex cache_mutex;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // words under 256 bytes

    int32_t intern(const std::string& s) { return symbols.try_emplace(s, static_cast<int32_t>(symbols.size())).first->second; }

    static uint64_t key(int32_t l, int32_t r) { return static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32 | static_cast<uint32_t>(r); }

    void word(const std::string& w, const std::unordered_map<std::string, int32_t>& vocab, std::vector<int32_t>& out) const {
        if (w.size() < 256) {
            std::lock_guard<std::mutex> lock(cache_mutex);
            auto it = cache.find(w);
            if (it != cache.end()) {
                out.insert(out.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        struct Node {
            uint32_t begin, end;
            int32_t symbol, prev, next;
            uint32_t version;
        };
        std::vector<Node> nodes;
        char32_t c = 0;
        for (size_t i = 0; i < w.size();) {
            const size_t b = i;
            utf8_next(w, i, c);
            auto it = symbols.find(w.substr(b, i - b));
            const int32_t n = static_cast<int32_t>(nodes.size());
            nodes.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(i), it == symbols.end() ? -1 : it->second, n - 1, n + 1, 0});
        }
        nodes.back().next = -1;
        struct Candidate {
            int32_t rank;
            uint32_t pos;
            int32_t left, right;
            uint32_t left_version, right_version;
            bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
        };
        std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
        auto offer = [&](int32_t l) {
            if (l < 0 || nodes[l].next < 0) return;
            const Node& a = nodes[l];
            const Node& b = nodes[a.next];
            if (a.symbol < 0 || b.symbol < 0) return;
            auto it = merges.find(key(a.symbol, b.symbol));
            if (it != merges.end()) heap.push({it->second.rank, a.begin, l, a.next, a.version, b.version});
        };
        for (int32_t i = 0; i + 1 < static_cast<int32_t>(nodes.size()); ++i) offer(i);
        while (!heap.empty()) {
            const Candidate top = heap.top();
            heap.pop();
            Node& a = nodes[top.left];
            if (a.version != top.left_version || a.next != top.right || nodes[top.right].version != top.right_version) continue;
            Node& b = nodes[top.right];
            a.end = b.end;
            a.symbol = merges.at(key(a.symbol, b.symbol)).result;
            a.next = b.next;
            ++a.version;
            b.version = UINT32_MAX;  // gone
            if (a.next >= 0) nodes[a.next].prev = top.left;
            offer(a.prev);
            offer(top.left);
        }
        std::vector<int32_t> ids;
        for (int32_t i = 0; i >= 0; i = nodes[i].next) {
            int32_t id = nodes[i].symbol >= 0 ? symbol_id[nodes[i].symbol] : -1;
            const std::string_view piece = std::string_view(w).substr(nodes[i].begin, nodes[i].end - nodes[i].begin);
            if (id < 0) {
                auto it = vocab.find(std::string(piece));
                if (it != vocab.end()) id = it->second;
            }
            if (id >= 0) {
                ids.push_back(id);
                continue;
            }
            // Not a token: its bytes as <0xNN> tokens where all exist, else the unknown token.
            bool bytes_ok = byte_fallback;
            for (char ch : piece) bytes_ok = bytes_ok && byte_ids[static_cast<uint8_t>(ch)] >= 0;
            if (bytes_ok) {
                for (char ch : piece) ids.push_back(byte_ids[static_cast<uint8_t>(ch)]);
            } else {
                if (unk_id < 0) fail("\"{}\" is not in the vocabulary and the model has no unk_token", piece);
                ids.push_back(unk_id);
            }
        }
        if (w.size() < 256) {
            std::lock_guard<std::mutex> lock(cache_mutex);
            if (cache.size() >= 10000) cache.clear();
            cache.emplace(w, ids);
        }
        out.insert(out.end(), ids.begin(), ids.end());
    }
};

// ---------------------------------------------------------------- the tokenizer

struct HfTokenizer::Impl {
    std::string path;
    std::unordered_map<std::string, int32_t> vocab;  // model vocabulary, then the added tokens over it
    std::vector<std::string> tokens;                 // by id
    std::vector<uint8_t> has_token, special;         // by id
    std::unordered_set<std::string> added;           // contents of the added tokens
    struct Added {
        int32_t id;
        bool lstrip, rstrip;
    };
    std::unordered_map<std::string, Added> added_by_content;
    // A byte trie of the added tokens for the longest-match split.
    std::vector<std::unordered_map<uint8_t, int32_t>> trie{1};
    std::vector<int32_t> trie_end{-1};  // node -> length of the token ending there, or -1
    std::unique_ptr<Normalizer> normalizer;
    std::unique_ptr<PreTokenizer> pre_tokenizer;
    std::unique_ptr<Decoder> decoder;
    Bpe bpe;
    bool clean_up = false;

    void set_token(int32_t id, const std::string& content) {
        if (id < 0) fail("{}: negative token id {}", path, id);
        if (id >= (1 << 24)) fail("{}: token id {} is implausibly large", path, id);  // rather than allocating for it
        if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1), has_token.resize(id + 1), special.resize(id + 1);
        tokens[id] = content;
        has_token[id] = 1;
        vocab[content] = id;
    }

    void load_model(const json& m) {
        const std::string where = path + ": model";
        if (!m.is_object()) fail("{}: missing or not an object", where);
        const std::string type = m.value("type", "");
        if (type != "BPE") fail("{}: type \"{}\" is not supported (only BPE)", where, type);
        if (!m.value("dropout", json()).is_null()) fail("{}: BPE dropout is not supported", where);
        for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (m.contains(affix) && m.at(affix).is_string() && !m.at(affix).get<std::string>().empty()) fail("{}: a non-empty {} is not supported", where, affix);
        if (!m.contains("vocab") || !m.at("vocab").is_object()) fail("{}: \"vocab\" is not an object", where);
        vocab.reserve(m.at("vocab").size() + 1024);
        for (const auto& [token, id] : m.at("vocab").items()) {
            if (!id.is_number_integer()) fail("{}: vocab entry \"{}\" has the id {}, not an integer", where, token, id.dump());
            set_token(id.get<int32_t>(), token);
        }
        bpe.byte_fallback = flag(m, "byte_fallback", false, where);
        bpe.fuse_unk = flag(m, "fuse_unk", false, where);
        bpe.ignore_merges = flag(m, "ignore_merges", false, where);
        if (m.contains("unk_token") && m.at("unk_token").is_string()) bpe.unk_token = m.at("unk_token").get<std::string>();
        if (!m.contains("merges") || !m.at("merges").is_array()) fail("{}: \"merges\" is not an array", where);
        const json& merges = m.at("merges");
        bpe.symbols.reserve(2 * merges.size() + 512);
        bpe.merges.reserve(merges.size());
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            const json& merge = merges[rank];
            std::string left, right;
            if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
                left = merge[0].get<std::string>(), right = merge[1].get<std::string>();
            } else if (merge.is_string()) {  // the format before tokenizers 0.20: "left right"
                const std::string s = merge.get<std::string>();
                const size_t space = s.find(' ');
                if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) fail("{}: merge {} \"{}\" is not two tokens and a space", where, rank, s);
                left = s.substr(0, space), right = s.substr(space + 1);
            } else {
                fail("{}: merge {} is {}, not a pair of strings", where, rank, merge.dump());
            }
            const int32_t l = bpe.intern(left), r = bpe.intern(right), result = bpe.intern(left + right);
            bpe.merges[Bpe::key(l, r)] = {static_cast<int32_t>(rank), result};  // a repeated pair: the later rank counts, as in both references
        }
    }

    // After the added tokens are in `vocab`: what the model looks up sees them (JS adds them to
    // the model's map, so BPE output spelling an added token takes its id).
    void finish_model() {
        bpe.symbol_id.assign(bpe.symbols.size(), -1);
        for (const auto& [s, sym] : bpe.symbols) {
            auto it = vocab.find(s);
            if (it != vocab.end()) bpe.symbol_id[sym] = it->second;
        }
        for (uint32_t b = 0; b < 256; ++b) {
            auto it = vocab.find(fmt::format("<0x{:02X}>", b));
            bpe.byte_ids[b] = it == vocab.end() ? -1 : it->second;
        }
        if (!bpe.unk_token.empty()) {
            auto it = vocab.find(bpe.unk_token);
            if (it != vocab.end()) bpe.unk_id = it->second;
        }
    }

    void add_token(const json& t, size_t index) {
        const std::string where = fmt::format("{}: added_tokens[{}]", path, index);
        if (!t.is_object() || !t.contains("id") || !t.contains("content")) fail("{}: needs \"id\" and \"content\"", where);
        const std::string content = t["content"].get<std::string>();
        const int32_t id = t["id"].get<int32_t>();
        code_points(content);  // valid UTF-8
        set_token(id, content);
        if (flag(t, "special", false, where)) special[id] = 1;
        // JS: single_word and normalized are not read; added tokens match anywhere in the raw
        // text (Rust would match normalized=true tokens in the normalized text and respect
        // word boundaries for single_word).
        added.insert(content);
        added_by_content[content] = {id, flag(t, "lstrip", false, where), flag(t, "rstrip", false, where)};
        if (content.empty()) return;  // JS never matches an empty token
        int32_t node = 0;
        for (char c : content) {
            auto [it, inserted] = trie[node].try_emplace(static_cast<uint8_t>(c), static_cast<int32_t>(trie.size()));
            if (inserted) trie.emplace_back(), trie_end.push_back(-1);
            node = it->second;
        }
        trie_end[node] = static_cast<int32_t>(content.size());
    }

    void read_config(const std::string& config_path) {
        json cfg;
        try {
            cfg = json::parse(file_read_all(config_path));
        } catch (const json::exception& e) {
            fail("{}: malformed JSON: {}", config_path, e.what());
        }
        if (!cfg.is_object()) fail("{}: not a JSON object", config_path);
        clean_up = flag(cfg, "clean_up_tokenization_spaces", true, config_path);  // JS defaults to true
        std::string cls = cfg.contains("tokenizer_class") && cfg["tokenizer_class"].is_string() ? cfg["tokenizer_class"].get<std::string>() : "";
        if (cls.ends_with("Fast")) cls.resize(cls.size() - 4);
        if (cls == "LlamaTokenizer" && !flag(cfg, "legacy", true, config_path))
            fail("{}: LlamaTokenizer with legacy false (a Metaspace pre-tokenizer in transformers.js) is not supported", config_path);
        for (const char* option : {"remove_space", "do_lowercase_and_remove_accent"})
            if (flag(cfg, option, false, config_path)) fail("{}: {} is not supported", config_path, option);
    }

    // The text between added tokens, and the added tokens, in order (transformers.js's
    // DictionarySplitter: the longest token starting at the first position where one starts).
    Pieces split_added(std::string_view text) const {
        Pieces sections;
        size_t start = 0;
        for (size_t i = 0; i < text.size();) {
            int32_t node = 0, match = -1;
            for (size_t j = i; j < text.size(); ++j) {
                auto it = trie[node].find(static_cast<uint8_t>(text[j]));
                if (it == trie[node].end()) break;
                node = it->second;
                if (trie_end[node] >= 0) match = trie_end[node];
            }
            if (match < 0) {
                ++i;
                continue;
            }
            if (i > start) sections.emplace_back(text.substr(start, i - start));
            sections.emplace_back(text.substr(i, match));
            i += match;
            start = i;
        }
        if (start < text.size()) sections.emplace_back(text.substr(start));
        // lstrip / rstrip trim the whitespace of the neighbouring sections.
        for (size_t i = 0; i < sections.size(); ++i) {
            auto it = added_by_content.find(sections[i]);
            if (it == added_by_content.end()) continue;
            if (it->second.lstrip && i > 0) sections[i - 1] = js_trim(sections[i - 1], false, true);
            if (it->second.rstrip && i + 1 < sections.size()) sections[i + 1] = js_trim(sections[i + 1], true, false);
        }
        return sections;
    }
};

HfTokenizer::HfTokenizer(const std::string& tokenizer_json_path) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.path = tokenizer_json_path;
    json j;
    try {
        j = json::parse(file_read_all(tokenizer_json_path));
    } catch (const json::exception& e) {
        fail("{}: malformed JSON: {}", tokenizer_json_path, e.what());
    }
    if (!j.is_object()) fail("{}: not a JSON object", tokenizer_json_path);
    try {
        static const json none;
        m.load_model(j.contains("model") ? j.at("model") : none);
        if (j.contains("added_tokens")) {
            const json& added = j.at("added_tokens");
            if (!added.is_array()) fail("{}: \"added_tokens\" is not an array", tokenizer_json_path);
            for (size_t i = 0; i < added.size(); ++i) m.add_token(added[i], i);
        }
        m.finish_model();
        if (j.contains("normalizer") && !j["normalizer"].is_null()) m.normalizer = make_normalizer(j["normalizer"], m.path + ": normalizer");
        if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) m.pre_tokenizer = make_pre_tokenizer(j["pre_tokenizer"], m.path + ": pre_tokenizer");
        if (j.contains("decoder") && !j["decoder"].is_null()) m.decoder = make_decoder(j["decoder"], m.path + ": decoder", &m.added);
    } catch (const json::exception& e) {  // a field of the wrong type or missing
        fail("{}: {}", tokenizer_json_path, e.what());
    }
    const std::string config = (std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json").string();
    if (file_exists(config)) m.read_config(config);
}

HfTokenizer::~HfTokenizer() = default;

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool parse_special) const {
    const Impl& m = *impl_;
    char32_t c = 0;
    for (size_t i = 0; i < text.size();)
        if (!utf8_next(text, i, c)) fail("encode: the text is not valid UTF-8 (byte {})", i);
    std::vector<int32_t> ids;
    const Pieces sections = parse_special ? m.split_added(text) : Pieces{std::string(text)};
    for (const std::string& section : sections) {
        if (section.empty()) continue;
        if (parse_special) {
            auto it = m.added_by_content.find(section);
            if (it != m.added_by_content.end()) {
                ids.push_back(it->second.id);
                continue;
            }
        }
        const std::string normalized = m.normalizer ? m.normalizer->apply(section) : section;
        if (normalized.empty()) continue;
        Pieces words;
        if (m.pre_tokenizer) m.pre_tokenizer->apply(normalized, words);
        else words.push_back(normalized);
        const size_t first = ids.size();
        for (const std::string& w : words) {
            if (w.empty()) continue;
            auto it = m.bpe.ignore_merges ? m.vocab.find(w) : m.vocab.end();
            if (it != m.vocab.end()) ids.push_back(it->second);
            else m.bpe.word(w, m.vocab, ids);
        }
        if (m.bpe.fuse_unk && m.bpe.unk_id >= 0) {  // runs of unknowns within a section become one
            auto end = std::unique(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end(),
                                   [&](int32_t a, int32_t b) { return a == m.bpe.unk_id && b == m.bpe.unk_id; });
            ids.erase(end, ids.end());
        }
    }
    return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    const Impl& m = *impl_;
    Pieces tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (id < 0 || static_cast<size_t>(id) >= m.tokens.size() || !m.has_token[id]) fail("decode: id {} is outside the vocabulary ({} ids)", id, m.tokens.size());
        if (skip_special && m.special[id]) continue;
        tokens.push_back(m.tokens[id]);
    }
    std::string text;
    if (m.decoder) {
        for (const std::string& piece : m.decoder->chain(std::move(tokens))) text += piece;
    } else {  // no decoder: the tokens joined by spaces, as both references do
        for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
    }
    return m.clean_up ? clean_up_tokenization(std::move(text)) : text;
}

int32_t HfTokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }

std::optional<int32_t> HfTokenizer::token_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it == impl_->vocab.end()) return std::nullopt;
    return it->second;
}

std::string HfTokenizer::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size() || !impl_->has_token[id]) fail("id {} is outside the vocabulary ({} ids)", id, impl_->tokens.size());
    return impl_->tokens[id];
}

bool HfTokenizer::is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

}  // namespace chronos
