// tokenizer.cpp: training and the exact round-trip wrapper around SentencePiece.
//
// SentencePiece writes a space as U+2581 ("▁") inside pieces, so an input that already holds
// U+2581 would decode to a space. The wrapper encodes each literal U+2581 as its three
// byte-fallback tokens, which decode to the raw bytes; every other character goes through
// SentencePiece unchanged.
#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581

// Turns JSONL {"text": ...} into one paragraph per line, the form the trainer reads.
std::string trainer_input_from(const std::string& input, const std::string& scratch_dir) {
    std::ifstream in(input);
    if (!in) fail("cannot open tokenizer training input {}", input);
    std::string first;
    std::getline(in, first);
    if (first.empty() || first[0] != '{') return input;  // plain text: use as is
    in.seekg(0);
    std::string out_path = scratch_dir + "/tokenizer-input.txt";
    std::ofstream out(out_path);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            fail("{}:{}: malformed JSON: {}", input, line_no, e.what());
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
            fail("{}:{}: expected an object with a \"text\" string", input, line_no);
        }
        std::string text = j["text"].get<std::string>();
        size_t start = 0;
        while (start <= text.size()) {
            size_t nl = text.find('\n', start);
            if (nl == std::string::npos) nl = text.size();
            if (nl > start) out << std::string_view(text).substr(start, nl - start) << '\n';
            start = nl + 1;
        }
    }
    return out_path;
}

}  // namespace

void tokenizer_train(const TokenizerTrainOptions& o) {
    if (o.vocab_size < 300) fail("vocab size {} is too small (byte fallback alone needs 261)", o.vocab_size);
    if (!file_exists(o.input)) fail("tokenizer training input {} does not exist", o.input);
    namespace fs = std::filesystem;
    fs::path scratch = fs::temp_directory_path() / ("chronos-spm-" + std::to_string(::getpid()));
    fs::create_directories(scratch);
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{scratch};

    std::string input = trainer_input_from(o.input, scratch.string());
    std::string prefix = (scratch / "tok").string();
    std::string args = fmt::format(
        "--input={} --model_prefix={} --vocab_size={} --model_type=bpe --byte_fallback=true "
        "--normalization_rule_name=identity --remove_extra_whitespaces=false --add_dummy_prefix=false "
        "--split_digits=true --allow_whitespace_only_pieces=true --max_sentence_length=16384 "
        "--input_sentence_size={} --shuffle_input_sentence=true --seed_sentencepiece_size=200000 "
        "--pad_id=0 --unk_id=1 --eos_id=2 --bos_id=-1 --pad_piece=<|pad|> --unk_piece=<unk> "
        "--eos_piece=<|endoftext|> --control_symbols=<|im_start|>,<|im_end|> --character_coverage=0.9995 "
        "--num_threads={} --minloglevel=2",
        input, prefix, o.vocab_size, o.max_sentences, o.threads);
    auto status = sentencepiece::SentencePieceTrainer::Train(args);
    if (!status.ok()) fail("tokenizer training failed: {}", status.ToString());
    file_write_atomic(o.out, file_read_all(prefix + ".model"));
}

Tokenizer::Tokenizer(const std::string& model_path) : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
    if (!file_exists(model_path)) fail("tokenizer model {} does not exist", model_path);
    auto status = sp_->Load(model_path);
    if (!status.ok()) fail("cannot load tokenizer {}: {}", model_path, status.ToString());
    if (sp_->pad_id() != kTokenPad || sp_->eos_id() != kTokenEndOfText ||
        sp_->PieceToId("<|im_start|>") != kTokenImStart || sp_->PieceToId("<|im_end|>") != kTokenImEnd) {
        fail("{}: not a Chronos tokenizer (special token ids differ)", model_path);
    }
    for (int b = 0; b < 256; ++b) {
        byte_ids_[b] = sp_->PieceToId(fmt::format("<0x{:02X}>", b));
        if (byte_ids_[b] == sp_->unk_id()) fail("{}: tokenizer has no byte fallback piece for 0x{:02X}", model_path, b);
    }
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    std::vector<int> ids;
    size_t start = 0;
    for (;;) {
        size_t marker = text.find(kSpaceMarker, start);
        std::string_view chunk = text.substr(start, marker == std::string_view::npos ? std::string_view::npos : marker - start);
        if (!chunk.empty()) {
            auto status = sp_->Encode(chunk, &ids);
            if (!status.ok()) fail("tokenizer: encode failed: {}", status.ToString());
            out.insert(out.end(), ids.begin(), ids.end());
        }
        if (marker == std::string_view::npos) break;
        for (char c : kSpaceMarker) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        start = marker + kSpaceMarker.size();
    }
    return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    std::vector<int> run;
    std::string piece_text;
    auto flush = [&]() {
        if (run.empty()) return;
        auto status = sp_->Decode(run, &piece_text);
        if (!status.ok()) fail("tokenizer: decode failed: {}", status.ToString());
        out += piece_text;
        run.clear();
    };
    const int32_t n = vocab_size();
    for (int32_t id : ids) {
        if (id < 0 || id >= n) fail("tokenizer: id {} is outside the vocabulary (size {})", id, n);
        if (sp_->IsControl(id)) {
            flush();
            out += sp_->IdToPiece(id);
        } else {
            run.push_back(id);
        }
    }
    flush();
    return out;
}

std::string Tokenizer::id_to_piece(int32_t id) const {
    if (id < 0 || id >= vocab_size()) fail("tokenizer: id {} is outside the vocabulary", id);
    return sp_->IdToPiece(id);
}

int32_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

bool Tokenizer::is_control(int32_t id) const { return id >= 0 && id < vocab_size() && sp_->IsControl(id); }

}  // namespace chronos
