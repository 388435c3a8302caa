// intent.h: the intent classifier's files in a checkpoint directory, the one home of their
// format: intent.safetensors (the weights, float32) and intent.json (its widths and how its
// features are made). `chronos train intent` writes them; the runtime and `chronos eval` read
// them, checked against the model's config.
//
// The network: features [2H] = [mean of the prompt's token embeddings | mean of its last
// tail_tokens] -> up (SiLU) [D] -> out -> one logit per (layer, expert) pair [L*E], layer-major;
// the feature standardisation is folded into up.
//
//     chronos::IntentClassifier ic = chronos::intent_load("runs/small", config);  // present = false if absent
//     chronos::intent_save("runs/small", ic, config);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/model_config.h"

namespace chronos {

struct IntentClassifier {
    bool present = false;     // false: the directory has no intent classifier
    int64_t hidden = 0;       // D
    int64_t horizon = 0;      // decode tokens whose experts it was trained to name
    int64_t tail_tokens = 8;  // prompt tokens of the second feature half
    double holdout = 0;       // share of the trace's prompts held out when it was trained
    std::vector<float> up_w, up_b, out_w, out_b;  // [D, 2H], [D], [L*E, D], [L*E]
};

// Reads dir/intent.safetensors and dir/intent.json when both exist (present = false when
// neither does); a missing half, malformed JSON, a missing field or a tensor whose dtype or
// shape does not fit config throws chronos::Error naming the file.
IntentClassifier intent_load(const std::string& dir, const ModelConfig& config);
// Writes both files, each atomically (weights first: a reader never sees new widths with old
// weights, whose shapes it would refuse).
void intent_save(const std::string& dir, const IntentClassifier& ic, const ModelConfig& config);

}  // namespace chronos
