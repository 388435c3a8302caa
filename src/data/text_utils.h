// text_utils.h: small text transforms the corpus readers share: UTF-8 checks, HTML and POD
// to plain text, Brown-corpus detokenisation, sentence splitting and chunking.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chronos {

bool utf8_valid(std::string_view s);
// Replaces each invalid byte with U+FFFD so the result is valid UTF-8.
std::string utf8_sanitize(std::string_view s);

std::string trim(std::string_view s);
// Collapses every run of white space (spaces, tabs, newlines) to one space and trims.
std::string collapse_spaces(std::string_view s);
std::vector<std::string> split_lines(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);

// Decodes the HTML entities that Sphinx emits (&amp; &lt; &gt; &quot; &#39; &#NNN; &#xHH;).
std::string html_unescape(std::string_view s);
// Drops tags, keeps text; <p>, <br>, <li>, <pre> and headings become paragraph breaks.
std::string html_to_text(std::string_view html);
// Perl POD formatting codes (C<...>, B<...>, L<text|target>, E<lt>, ...) to plain text.
std::string pod_inline_to_text(std::string_view pod);

// One Brown-corpus paragraph of "word/tag" tokens to ordinary text.
std::string brown_detokenize(std::string_view tagged);

// Splits prose into sentences at ". ", "? ", "! " (keeping the punctuation).
std::vector<std::string> split_sentences(std::string_view text);
// Packs paragraphs into chunks of at most max_chars (joined by "\n\n"); a paragraph longer
// than max_chars is cut at sentence, then word, boundaries.
std::vector<std::string> chunk_paragraphs(const std::vector<std::string>& paragraphs, size_t max_chars);

// Expands a bsdgames quiz field to its first spelling: "{G{eorge} }Washington" ->
// "George Washington", "Andorra la V[ell|iej]a" -> "Andorra la Vella", "a|b" -> "a"; an
// accented letter written as an overstrike ("Bogot['<BS>a|a<BS>'|a]") becomes the precomposed
// character ("Bogotá").
std::string quiz_first_form(std::string_view field);

uint64_t fnv1a64(std::string_view s);
// White-space separated words.
int64_t count_words(std::string_view s);

}  // namespace chronos
