// chat_template.cpp: ChatML assembly with control-token ids and the assistant mask.
#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace chronos {

static void check_role(const std::string& role) {
    if (role != "system" && role != "user" && role != "assistant") {
        fail("chat: unknown role \"{}\" (expected system, user or assistant)", role);
    }
}

ChatTokens chat_encode(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
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
