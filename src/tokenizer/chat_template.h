// chat_template.h: the chat format every stage uses. A Chronos model's (ChatML):
//
//   <|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n{content}<|im_end|>\n
//
// The turn markers are emitted as their control-token ids, never parsed from text. A
// generation prompt ends with "<|im_start|>assistant\n"; generation stops at <|im_end|>.
// An imported model's: its family's layout (Tokenizer::chat_format: Qwen's ChatML, DeepSeek-V3's
// <｜User｜>/<｜Assistant｜>, DeepSeek-V2's "User: "/"Assistant:", Mixtral's [INST], OLMoE's
// <|user|>), built in and checked against the template itself (tests/chat_template.sh);
// generation stops at Tokenizer::end_of_turn.
//
//     std::vector<chronos::ChatMessage> chat = {{"user", "What is 2+2?"}};
//     chronos::ChatTokens t = chronos::chat_encode(tok, chat, /*add_generation_prompt=*/true);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace chronos {

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

struct ChatTokens {
    std::vector<int32_t> ids;
    // 1 where the token belongs to an assistant reply (content and its <|im_end|>): the
    // positions SFT trains on.
    std::vector<uint8_t> assistant_mask;
};

ChatTokens chat_encode(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt);
// The template as text, for display and for tokenizer-free tools.
std::string chat_render(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

}  // namespace chronos
