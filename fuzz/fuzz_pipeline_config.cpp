// fuzz_pipeline_config.cpp: libFuzzer target for the pipeline file of `chronos pipeline`
// (pipeline_config_parse). Any input must be rejected with chronos::Error (one line naming the
// input) or give stages whose promises hold: a known kind, a unique plain name, references
// only to earlier stages or to folders, the inputs each kind needs, and options the pipeline
// does not set itself.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "core/error.h"
#include "format/pipeline_config.h"
#include "fuzz_rejection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const chronos::PipelineConfig pc = chronos::pipeline_config_parse(text, "fuzz");
        if (pc.stages.empty()) std::abort();
        std::set<std::string> names;
        const std::set<std::string> kinds = {"pretrain", "sft", "dpo", "orpo", "grpo", "distill"};
        for (const chronos::PipelineStage& s : pc.stages) {
            if (!kinds.count(s.stage) || s.name.empty() || names.count(s.name) || s.data.empty()) std::abort();
            if (s.name.find_first_of("/.\n ") != std::string::npos) std::abort();
            if (s.from_is_stage && !names.count(s.from)) std::abort();
            if (s.teacher_is_stage && !names.count(s.teacher)) std::abort();
            if (s.stage == "pretrain" && (s.config.empty() || !s.from.empty())) std::abort();
            if (s.stage != "pretrain" && s.steps < 1) std::abort();
            if (s.stage == "distill" && s.teacher.empty()) std::abort();
            for (const auto& [flag, value] : s.options) {
                if (flag.rfind("--", 0) != 0 || flag == "--out" || flag == "--from" || flag == "--resume") std::abort();
            }
            names.insert(s.name);
        }
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);
    }
    return 0;
}
