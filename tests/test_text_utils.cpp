// test_text_utils.cpp: the corpus text transforms on small inputs taken from the real files.
#include <gtest/gtest.h>

#include "data/text_utils.h"

using namespace chronos;

TEST(TextUtils, BrownDetokenize) {
    EXPECT_EQ(brown_detokenize("The/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' ./."),
              "The Fulton County said \"no evidence\".");
    EXPECT_EQ(brown_detokenize("However/wrb ,/, the/at jury/nn (/( 1961/cd )/) ;/. Atlanta's/np$ mayor/nn"),
              "However, the jury (1961); Atlanta's mayor");
    EXPECT_EQ(brown_detokenize("and/or/cc"), "and/or");
}

TEST(TextUtils, QuizFirstForm) {
    EXPECT_EQ(quiz_first_form("{G{eorge} }Washington"), "George Washington");
    EXPECT_EQ(quiz_first_form("Andorra la V[ell|iej]a"), "Andorra la Vella");
    EXPECT_EQ(quiz_first_form("1789-{17}97"), "1789-1797");
    EXPECT_EQ(quiz_first_form("Burr|Clinton"), "Burr");
    EXPECT_EQ(quiz_first_form("St. John\\'s"), "St. John's");
    // Accents overstruck on a terminal (letter, backspace, mark, either way round), as in the
    // files' own lines.
    EXPECT_EQ(quiz_first_form("Bogot['\ba|a\b'|a]"), "Bogotá");
    EXPECT_EQ(quiz_first_form("C[^\bo|o\b^|o]te d'Ivoire"), "Côte d'Ivoire");
    EXPECT_EQ(quiz_first_form("Mo[z|,\bc|c\b,|c]ambique"), "Mozambique");
    EXPECT_EQ(quiz_first_form("S[~\ba|a\b~|a]o Tom['\be|e\b'|e]"), "São Tomé");
    EXPECT_EQ(quiz_first_form("Chi[,\bs|s\b,|s]inau|Kishinev"), "Chișinau");
    EXPECT_EQ(quiz_first_form("[\xC2\xB0\bA|A\b\xC2\xB0|A]land Islands"), "Åland Islands");
    EXPECT_EQ(quiz_first_form("Lothl['\bo|o|o\b']rien"), "Lothlórien");
    EXPECT_EQ(quiz_first_form("Ann[u\b'|u]minas"), "Annúminas");
}

TEST(TextUtils, PodInline) {
    EXPECT_EQ(pod_inline_to_text("Use C<printf> and B<not> I<this> E<lt>tagE<gt>"), "Use printf and not this <tag>");
    EXPECT_EQ(pod_inline_to_text("see L<perlfunc/sprintf> or L<the docs|perlop>"), "see perlfunc/sprintf or the docs");
    EXPECT_EQ(pod_inline_to_text("C<< $a <=> $b >> sorts"), "$a <=> $b sorts");
}

TEST(TextUtils, HtmlToText) {
    EXPECT_EQ(html_to_text("<p>Users are <em>often</em>\nsurprised &amp; confused.</p><p>Next &#8220;para&#8221;</p>"),
              "Users are often surprised & confused.\n\nNext \xE2\x80\x9Cpara\xE2\x80\x9D");
    EXPECT_EQ(html_to_text("<pre>x = 1\n  y = 2</pre>"), "x = 1\n  y = 2");
}

TEST(TextUtils, Utf8Validation) {
    EXPECT_TRUE(utf8_valid("plain \xE2\x96\x81 \xF0\x9F\x98\x80"));
    EXPECT_FALSE(utf8_valid("\xff"));
    EXPECT_FALSE(utf8_valid("\xC0\xAF"));          // overlong '/'
    EXPECT_FALSE(utf8_valid("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(utf8_valid("\xE2\x96"));          // truncated
    EXPECT_EQ(utf8_sanitize("a\xffz"), "a\xEF\xBF\xBDz");
}

TEST(TextUtils, SentencesAndChunks) {
    auto s = split_sentences("Mr. Smith went to Washington. He spoke! Did J. Adams reply? Yes");
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0], "Mr. Smith went to Washington.");
    EXPECT_EQ(s[2], "Did J. Adams reply?");
    std::vector<std::string> paras = {"aaaa aaaa.", "bbbb bbbb.", std::string(50, 'c') + ". " + std::string(50, 'd') + "."};
    auto chunks = chunk_paragraphs(paras, 60);
    for (const auto& c : chunks) EXPECT_LE(c.size(), 60u) << c;
    std::string joined;
    for (const auto& c : chunks) joined += c;
    EXPECT_NE(joined.find(std::string(50, 'c')), std::string::npos);
    EXPECT_NE(joined.find(std::string(50, 'd')), std::string::npos);
    EXPECT_EQ(chunks[0], "aaaa aaaa.\n\nbbbb bbbb.");
}
