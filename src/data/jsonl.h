// jsonl.h: JSON Lines reading with errors that name the file and line, and atomic writing.
//
//     chronos::jsonl_read("sft.train.jsonl", [&](const nlohmann::json& j, int64_t line) { ... });
//     chronos::JsonlWriter w("out.jsonl"); w.write(j); w.commit();
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/file_io.h"

namespace chronos {

// Calls `fn` for every non-blank line. Malformed JSON, a line that is not an object, and an
// empty file throw chronos::Error ("FILE:LINE: ..."). Returns the number of records.
int64_t jsonl_read(const std::string& path, const std::function<void(const nlohmann::json&, int64_t line)>& fn);

class JsonlWriter {
public:
    explicit JsonlWriter(const std::string& path) : file_(path) {}
    void write(const nlohmann::json& record);
    void commit() { file_.commit(); }
    int64_t count() const { return count_; }

private:
    AtomicFile file_;
    int64_t count_ = 0;
};

}  // namespace chronos
