// jsonl.cpp: line-by-line JSON parsing.
#include "data/jsonl.h"

#include <fstream>

#include "core/error.h"

namespace chronos {

int64_t jsonl_read(const std::string& path, const std::function<void(const nlohmann::json&, int64_t)>& fn) {
    std::ifstream in(path);
    if (!in) fail("cannot open {}", path);
    std::string line;
    int64_t line_no = 0;
    int64_t records = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            fail("{}:{}: malformed JSON: {}", path, line_no, error_text_clipped(e.what()));
        }
        if (!j.is_object()) fail("{}:{}: expected a JSON object, got {}", path, line_no, j.type_name());
        fn(j, line_no);
        ++records;
    }
    if (in.bad()) fail("cannot read {}", path);
    if (records == 0) fail("{}: no records (empty file)", path);
    return records;
}

void JsonlWriter::write(const nlohmann::json& record) {
    file_.write(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict));
    file_.write("\n", 1);
    ++count_;
}

}  // namespace chronos
