// chat_template.cpp: ChatML assembly with control-token ids and the assistant mask.
#include "tokenizer/chat_template.h"

#include <algorithm>

#include "core/error.h"

namespace chronos {

static void check_role(const std::string& role) {
    if (role != "system" && role != "user" && role != "assistant") {
        fail("chat: unknown role \"{}\" (expected system, user or assistant)", role);
    }
}

namespace {

// A published family's layout (the built-in equivalent of its chat_template), tokenized as the
// rendered template would be: the template's own text with its special tokens as ids, each
// message's content as plain text (no special token can be forged from it). An assistant turn's
// tokens, header included, and its end token make the assistant mask.
ChatTokens chat_encode_family(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    ChatTokens out;
    auto ids = [&](const std::vector<int32_t>& v, uint8_t mask) {
        out.ids.insert(out.ids.end(), v.begin(), v.end());
        out.assistant_mask.insert(out.assistant_mask.end(), v.size(), mask);
    };
    auto tmpl = [&](const std::string& text, uint8_t mask = 0) { ids(tok.encode_template(text), mask); };
    auto text = [&](const std::string& t, uint8_t mask = 0) { ids(tok.encode(t), mask); };
    const int32_t eot = tok.end_of_turn();
    std::string system;
    for (const ChatMessage& m : messages) {
        check_role(m.role);
        if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
    }
    if (tok.bos() >= 0) ids({tok.bos()}, 0);
    switch (tok.chat_format()) {
        case ChatFormat::chatml:  // Qwen: <|im_start|>role\ncontent<|im_end|>\n
            for (const ChatMessage& m : messages) {
                const uint8_t r = m.role == "assistant" ? 1 : 0;
                tmpl("<|im_start|>", 0);
                // The header and the content form one span of text between special tokens, as
                // the rendered template tokenizes (a newline run may merge across them).
                std::vector<int32_t> head = tok.encode(m.role + "\n" + m.content);
                ids(head, r);
                ids({eot}, r);
                text("\n");
            }
            if (add_generation_prompt) {
                tmpl("<|im_start|>");
                text("assistant\n");
            }
            break;
        case ChatFormat::deepseek_v3:  // bos system <｜User｜>u<｜Assistant｜>a<｜end▁of▁sentence｜>
            if (!system.empty()) text(system);
            for (const ChatMessage& m : messages) {
                if (m.role == "user") {
                    tmpl("<｜User｜>");
                    text(m.content);
                } else if (m.role == "assistant") {
                    tmpl("<｜Assistant｜>", 1);
                    text(m.content, 1);
                    ids({eot}, 1);
                }
            }
            if (add_generation_prompt) tmpl("<｜Assistant｜>");
            break;
        case ChatFormat::deepseek_v2:  // bos system\n\nUser: u\n\nAssistant: a<｜end▁of▁sentence｜>
            if (!system.empty()) text(system + "\n\n");
            for (const ChatMessage& m : messages) {
                if (m.role == "user") {
                    text("User: " + m.content + "\n\n");
                } else if (m.role == "assistant") {
                    text("Assistant: " + m.content, 1);
                    ids({eot}, 1);
                }
            }
            if (add_generation_prompt) text("Assistant:");
            break;
        case ChatFormat::llama_inst: {  // bos [INST] u [/INST]a</s>[INST] ... (the system text opens the first turn)
            // A user turn and the reply after it are one span of text between special tokens
            // (the template writes "[/INST]" and the reply with nothing between), so they are
            // encoded together; the reply's tokens are those past the user part's own encoding
            // (a token formed across the boundary counts as the reply's).
            for (size_t i = 0; i < messages.size(); ++i) {
                const ChatMessage& m = messages[i];
                if (m.role == "assistant" && (i == 0 || messages[i - 1].role != "user")) {  // a reply with no question
                    text(m.content, 1);
                    ids({eot}, 1);
                }
                if (m.role != "user") continue;
                const bool first = std::none_of(messages.begin(), messages.begin() + static_cast<long>(i),
                                                [](const ChatMessage& p) { return p.role == "user"; });
                const std::string user = "[INST] " + (first && !system.empty() ? system + "\n\n" : "") + m.content + " [/INST]";
                if (i + 1 < messages.size() && messages[i + 1].role == "assistant") {
                    const std::vector<int32_t> alone = tok.encode(user), both = tok.encode(user + messages[i + 1].content);
                    size_t k = 0;
                    while (k < alone.size() && k < both.size() && alone[k] == both[k]) ++k;
                    ids(std::vector<int32_t>(both.begin(), both.begin() + static_cast<long>(k)), 0);
                    ids(std::vector<int32_t>(both.begin() + static_cast<long>(k), both.end()), 1);
                    ids({eot}, 1);
                } else {
                    text(user);
                }
            }
            break;  // the prompt ends with [/INST]: the reply follows directly
        }
        case ChatFormat::tulu:  // <|system|>\ns\n<|user|>\nu\n<|assistant|>\na<eos>\n
            for (const ChatMessage& m : messages) {
                const uint8_t r = m.role == "assistant" ? 1 : 0;
                tmpl("<|" + m.role + "|>\n", r);
                text(m.content, r);
                if (r) ids({eot}, 1);
                text("\n", 0);
            }
            if (add_generation_prompt) tmpl("<|assistant|>\n");
            break;
        case ChatFormat::chronos:
        case ChatFormat::none:
            fail("{}: its chat template (tokenizer_config.json) is none Chronos knows (ChatML, DeepSeek-V2/V3, [INST], <|user|>); plain completions work", tok.path());
    }
    return out;
}

}  // namespace

ChatTokens chat_encode(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    if (tok.chat_format() != ChatFormat::chronos) return chat_encode_family(tok, messages, add_generation_prompt);
    ChatTokens out;
    auto append = [&](const std::vector<int32_t>& ids, uint8_t mask) {
        out.ids.insert(out.ids.end(), ids.begin(), ids.end());
        out.assistant_mask.insert(out.assistant_mask.end(), ids.size(), mask);
    };
    const std::vector<int32_t> newline = tok.encode("\n");
    for (const ChatMessage& m : messages) {
        check_role(m.role);
        const uint8_t reply = m.role == "assistant" ? 1 : 0;
        append({kTokenImStart}, 0);
        append(tok.encode(m.role + "\n"), 0);
        append(tok.encode(m.content), reply);
        append({kTokenImEnd}, reply);
        append(newline, 0);
    }
    if (add_generation_prompt) {
        append({kTokenImStart}, 0);
        append(tok.encode("assistant\n"), 0);
    }
    return out;
}

std::string chat_render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    std::string out;
    for (const ChatMessage& m : messages) {
        check_role(m.role);
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

}  // namespace chronos
