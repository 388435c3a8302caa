// fuzz_trainer_state.cpp: libFuzzer target for trainer_state_parse (trainer_state.json). Any
// input must either parse into a state whose counts are non-negative, agree with the document
// kept beside them and survive a round trip, or be rejected with chronos::Error; a crash, a
// sanitizer report or another exception (json::exception...) is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "fuzz_rejection.h"
#include "format/trainer_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    chronos::TrainerState s;
    try {
        s = chronos::trainer_state_parse(text, "fuzz");
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);  // rejected cleanly
        return 0;
    }
    // Accepted: the promises of the reader must hold; an exception from here on is a bug too.
    if (s.step < 0 || s.tokens_seen < 0 || !s.doc.is_object() || !s.doc.at("hyper").is_object()) std::abort();
    if (s.doc.at("step").get<int64_t>() != s.step || s.doc.at("tokens_seen").get<int64_t>() != s.tokens_seen) std::abort();
    if (s.doc.at("baseline").get<bool>() != s.baseline) std::abort();
    if (s.doc.contains("lookahead_fit") && !s.doc.at("lookahead_fit").is_object()) std::abort();
    // What a writer that adds a record writes back must read again, the same.
    const chronos::TrainerState again = chronos::trainer_state_parse(s.doc.dump(2), "fuzz (round trip)");
    if (again.step != s.step || again.tokens_seen != s.tokens_seen || again.baseline != s.baseline || again.doc != s.doc) std::abort();
    return 0;
}
