// trainer_state.h: trainer_state.json, the training progress beside a checkpoint's weights
// (docs/format.md). `chronos train pretrain` writes it on every save and reads it on --resume;
// `chronos train lookahead` adds a `lookahead_fit` record to it. This is the one reader.
//
//     chronos::TrainerState s = chronos::trainer_state_load("runs/small/trainer_state.json");
//     start_step = s.step;
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace chronos {

struct TrainerState {
    int64_t step = 0;          // pretraining optimizer steps done
    int64_t tokens_seen = 0;   // training tokens those steps consumed
    bool baseline = false;     // trained as the plain-MoE baseline (--baseline)
    // The whole validated object ("hyper", "lookahead_fit" and the fields above), for writers
    // that add a record and write it back.
    nlohmann::json doc;
};

// Parses trainer_state.json text held in memory. Throws chronos::Error naming `what` unless it
// is an object with "step" and "tokens_seen" (non-negative integers), "baseline" (true or
// false), "hyper" (an object) and, if present, a "lookahead_fit" object whose fields have the
// types `chronos train lookahead` writes (fuzz/fuzz_trainer_state.cpp holds it to that).
TrainerState trainer_state_parse(const std::string& text, const std::string& what);
// Reads and parses a trainer_state.json file.
TrainerState trainer_state_load(const std::string& path);
// The state of a checkpoint no training step has touched (`chronos init`): step 0, no tokens,
// no hyperparameters.
TrainerState trainer_state_fresh();

}  // namespace chronos
