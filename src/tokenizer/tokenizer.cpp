// tokenizer.cpp: training and the exact round-trip wrapper around SentencePiece.
//
// SentencePiece writes a space as U+2581 ("▁") inside pieces, so an input that already holds
// U+2581 would decode to a space. The wrapper encodes each literal U+2581 as its three
// byte-fallback tokens, which decode to the raw bytes; every other character goes through
// SentencePiece unchanged.
#include "tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_shim.h"

namespace chronos {

namespace {

// The SentencePiece module, loaded once per process (see spm_shim.h for why it is isolated).
struct SpmModule {
    decltype(&chronos_spm_train) train;
    decltype(&chronos_spm_load) load;
    decltype(&chronos_spm_free) free;
    decltype(&chronos_spm_vocab_size) vocab_size;
    decltype(&chronos_spm_piece_to_id) piece_to_id;
    decltype(&chronos_spm_unk_id) unk_id;
    decltype(&chronos_spm_pad_id) pad_id;
    decltype(&chronos_spm_eos_id) eos_id;
    decltype(&chronos_spm_is_control) is_control;
    decltype(&chronos_spm_id_to_piece) id_to_piece;
    decltype(&chronos_spm_encode) encode;
    decltype(&chronos_spm_decode) decode;
};

const SpmModule& spm() {
    static const SpmModule module = []() {
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("CHRONOS_SPM_MODULE")) candidates.push_back(env);
        char exe[4096];
        ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            std::filesystem::path dir = std::filesystem::path(exe).parent_path();
            candidates.push_back((dir / "libchronos_spm.so").string());
            candidates.push_back((dir.parent_path() / "libchronos_spm.so").string());
        }
#ifdef CHRONOS_SPM_MODULE_PATH
        candidates.push_back(CHRONOS_SPM_MODULE_PATH);
#endif
        void* h = nullptr;
        std::string tried;
        for (const auto& c : candidates) {
            if (!file_exists(c)) continue;
            // A link-map namespace of its own: SentencePiece, its bundled protobuf and its own
            // copy of the C++ runtime never meet libtorch's (RTLD_DEEPBIND alone is not enough:
            // SentencePiece's logging then writes to an uninitialised std::cerr).
            h = dlmopen(LM_ID_NEWLM, c.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (h != nullptr) break;
            tried += fmt::format("\n  {}: {}", c, dlerror());
        }
        if (h == nullptr) fail("cannot load libchronos_spm.so (SentencePiece module); set CHRONOS_SPM_MODULE{}", tried);
        auto sym = [&](const char* name) {
            void* p = dlsym(h, name);
            if (p == nullptr) fail("libchronos_spm.so lacks {}", name);
            return p;
        };
        SpmModule m{};
        m.train = reinterpret_cast<decltype(m.train)>(sym("chronos_spm_train"));
        m.load = reinterpret_cast<decltype(m.load)>(sym("chronos_spm_load"));
        m.free = reinterpret_cast<decltype(m.free)>(sym("chronos_spm_free"));
        m.vocab_size = reinterpret_cast<decltype(m.vocab_size)>(sym("chronos_spm_vocab_size"));
        m.piece_to_id = reinterpret_cast<decltype(m.piece_to_id)>(sym("chronos_spm_piece_to_id"));
        m.unk_id = reinterpret_cast<decltype(m.unk_id)>(sym("chronos_spm_unk_id"));
        m.pad_id = reinterpret_cast<decltype(m.pad_id)>(sym("chronos_spm_pad_id"));
        m.eos_id = reinterpret_cast<decltype(m.eos_id)>(sym("chronos_spm_eos_id"));
        m.is_control = reinterpret_cast<decltype(m.is_control)>(sym("chronos_spm_is_control"));
        m.id_to_piece = reinterpret_cast<decltype(m.id_to_piece)>(sym("chronos_spm_id_to_piece"));
        m.encode = reinterpret_cast<decltype(m.encode)>(sym("chronos_spm_encode"));
        m.decode = reinterpret_cast<decltype(m.decode)>(sym("chronos_spm_decode"));
        return m;
    }();
    return module;
}

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581

// Turns JSONL {"text": ...} into one paragraph per line, the form the trainer reads.
std::string trainer_input_from(const std::string& input, const std::string& scratch_dir) {
    std::ifstream in(input);
    if (!in) fail("cannot open tokenizer training input {}", input);
    std::string first;
    if (!std::getline(in, first)) fail("{}: empty file, no text to train on", input);
    if (first.empty() || first[0] != '{') return input;  // plain text: use as is
    in.seekg(0);
    std::string out_path = scratch_dir + "/tokenizer-input.txt";
    std::ofstream out(out_path);
    std::string line;
    int64_t line_no = 0, text_lines = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            fail("{}:{}: malformed JSON: {}", input, line_no, error_text_clipped(e.what()));
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
            fail("{}:{}: expected an object with a \"text\" string", input, line_no);
        }
        std::string text = j["text"].get<std::string>();
        size_t start = 0;
        while (start <= text.size()) {
            size_t nl = text.find('\n', start);
            if (nl == std::string::npos) nl = text.size();
            if (nl > start) {
                out << std::string_view(text).substr(start, nl - start) << '\n';
                ++text_lines;
            }
            start = nl + 1;
        }
    }
    if (text_lines == 0) fail("{}: no text to train on (every \"text\" is empty)", input);
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
    char err[1024] = {0};
    if (spm().train(args.c_str(), err, sizeof(err)) != 0) fail("tokenizer training failed: {}", err);
    file_write_atomic(o.out, file_read_all(prefix + ".model"));
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A file beside the tokenizer as JSON, or null when absent; malformed JSON is an error.
nlohmann::json sibling_json(const std::string& path, const std::string& name) {
    const std::string p = (std::filesystem::path(path).parent_path() / name).string();
    if (!file_exists(p)) return nullptr;
    try {
        return nlohmann::json::parse(file_read_all(p));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: invalid JSON: {}", p, e.what());
    }
}

// A token named in tokenizer_config.json: a string, or {"content": ...}.
std::string token_content(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return "";
}

// Which known chat layout a chat_template (Jinja text) is: recognised by the markers it emits.
ChatFormat chat_format_of(const std::string& t) {
    if (t.find("<|im_start|>") != std::string::npos) return ChatFormat::chatml;
    if (t.find("<｜User｜>") != std::string::npos) return ChatFormat::deepseek_v3;
    if (t.find("[INST]") != std::string::npos) return ChatFormat::llama_inst;
    if (t.find("<|user|>") != std::string::npos) return ChatFormat::tulu;
    if (t.find("User: ") != std::string::npos && t.find("Assistant:") != std::string::npos) return ChatFormat::deepseek_v2;
    return ChatFormat::none;
}

}  // namespace

// The special tokens and chat layout of a published tokenizer, from tokenizer_config.json and
// generation_config.json beside it; id_of maps a token's spelling to its id (-1: absent).
void Tokenizer::read_published_config(const std::string& path, const std::function<int32_t(const std::string&)>& id_of,
                                      bool add_bos_default) {
    const nlohmann::json cfg = sibling_json(path, "tokenizer_config.json");
    const nlohmann::json gen = sibling_json(path, "generation_config.json");
    int32_t eos = -1;
    if (cfg.is_object() && cfg.contains("eos_token")) eos = id_of(token_content(cfg["eos_token"]));
    if (eos < 0 && gen.is_object() && gen.contains("eos_token_id")) {
        const nlohmann::json& e = gen["eos_token_id"];
        if (e.is_number_integer()) eos = e.get<int32_t>();
        if (e.is_array() && !e.empty() && e[0].is_number_integer()) eos = e[0].get<int32_t>();
    }
    std::string tmpl;
    if (cfg.is_object() && cfg.contains("chat_template")) {
        const nlohmann::json& t = cfg["chat_template"];
        if (t.is_string()) tmpl = t.get<std::string>();
        if (t.is_array()) {  // named templates: the default one
            for (const auto& x : t) {
                if (x.is_object() && x.value("name", "") == "default" && x.contains("template") && x["template"].is_string()) tmpl = x["template"].get<std::string>();
            }
        }
    }
    chat_ = tmpl.empty() ? ChatFormat::none : chat_format_of(tmpl);
    // A document ends with <|endoftext|> where the vocabulary has it (the ChatML families' eos
    // is their end of turn), else with the eos token.
    const int32_t endoftext = id_of("<|endoftext|>");
    end_of_text_ = endoftext >= 0 ? endoftext : eos;
    end_of_turn_ = chat_ == ChatFormat::chatml ? id_of("<|im_end|>") : eos;
    if (end_of_text_ < 0) fail("{}: no end-of-text token (no <|endoftext|>, and tokenizer_config.json names no eos_token)", path);
    if (end_of_turn_ < 0) end_of_turn_ = end_of_text_;
    const bool add_bos = cfg.is_object() ? cfg.value("add_bos_token", add_bos_default) : add_bos_default;
    if (add_bos && cfg.is_object() && cfg.contains("bos_token")) bos_ = id_of(token_content(cfg["bos_token"]));
}

void Tokenizer::load_hf(const std::string& path) {
    hf_ = std::make_unique<HfTokenizer>(path);
    vocab_size_ = hf_->vocab_size();
    published_ = true;
    read_published_config(path, [&](const std::string& token) -> int32_t {
        if (token.empty()) return -1;
        std::optional<int32_t> id = hf_->token_id(token);
        return id ? *id : -1;
    }, /*add_bos_default=*/false);
}

int32_t Tokenizer::special(std::string_view token) const {
    if (hf_) {
        std::optional<int32_t> id = hf_->token_id(token);
        if (!id) fail("{}: the vocabulary has no token {}", path_, std::string(token));
        return *id;
    }
    const int32_t id = spm().piece_to_id(sp_, std::string(token).c_str());
    if (id == spm().unk_id(sp_)) fail("{}: the vocabulary has no token {}", path_, std::string(token));
    return id;
}

std::vector<int32_t> Tokenizer::encode_template(std::string_view text) const {
    if (hf_) return hf_->encode(text, /*parse_special=*/true);
    if (!published_) return encode(text);
    // A published SentencePiece model: the control pieces' and <unk>'s spellings become their ids (the
    // leftmost, longest first) and the text between them is encoded piece by piece, as the
    // Hugging Face tokenizers split added tokens out before SentencePiece sees the text.
    std::vector<int32_t> out;
    size_t start = 0, at = 0;
    while (at < text.size()) {
        int32_t best = -1;
        size_t best_len = 0;
        for (const auto& [piece, id] : sp_specials_) {
            if (piece.size() > best_len && text.compare(at, piece.size(), piece) == 0) best = id, best_len = piece.size();
        }
        if (best < 0) {
            ++at;
            continue;
        }
        if (at > start) {
            const std::vector<int32_t> part = encode(text.substr(start, at - start));
            out.insert(out.end(), part.begin(), part.end());
        }
        out.push_back(best);
        at += best_len;
        start = at;
    }
    if (start < text.size()) {
        const std::vector<int32_t> part = encode(text.substr(start));
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

Tokenizer::Tokenizer(const std::string& model_path) : path_(model_path) {
    if (!file_exists(model_path)) fail("tokenizer model {} does not exist", model_path);
    if (ends_with(model_path, ".json")) {
        load_hf(model_path);
        return;
    }
    char err[1024] = {0};
    sp_ = spm().load(model_path.c_str(), err, sizeof(err));
    if (sp_ == nullptr) fail("cannot load tokenizer {}: {}", model_path, err);
    vocab_size_ = spm().vocab_size(sp_);
    control_.resize(static_cast<size_t>(vocab_size_));
    for (int32_t id = 0; id < vocab_size_; ++id) control_[static_cast<size_t>(id)] = static_cast<uint8_t>(spm().is_control(sp_, id));
    const bool chronos_ids = spm().pad_id(sp_) == kTokenPad && spm().eos_id(sp_) == kTokenEndOfText &&
                             spm().piece_to_id(sp_, "<|im_start|>") == kTokenImStart && spm().piece_to_id(sp_, "<|im_end|>") == kTokenImEnd;
    if (!chronos_ids) {
        // A published checkpoint's SentencePiece model (Llama, Mistral): its own special tokens,
        // named by the tokenizer_config.json that such a folder carries (a Llama-family
        // tokenizer starts each text with its bos unless that file says otherwise).
        const std::string config = (std::filesystem::path(model_path).parent_path() / "tokenizer_config.json").string();
        if (!file_exists(config)) {
            spm().free(sp_);
            sp_ = nullptr;
            fail("{}: not a Chronos tokenizer (special token ids differ), and no tokenizer_config.json beside it names a published one's", model_path);
        }
        published_ = true;
        const int32_t unk = unk_ = spm().unk_id(sp_);
        for (int32_t id = 0; id < vocab_size_; ++id) {
            if (control_[static_cast<size_t>(id)] || id == unk) sp_specials_.emplace_back(id_to_piece(id), id);
        }
        read_published_config(model_path, [&](const std::string& token) -> int32_t {
            if (token.empty()) return -1;
            const int32_t id = spm().piece_to_id(sp_, token.c_str());
            return id == unk && token != id_to_piece(unk) ? -1 : id;
        }, /*add_bos_default=*/true);
        return;
    }
    const int32_t unk = spm().unk_id(sp_);
    for (int b = 0; b < 256; ++b) {
        byte_ids_[b] = spm().piece_to_id(sp_, fmt::format("<0x{:02X}>", b).c_str());
        if (byte_ids_[b] == unk) {
            spm().free(sp_);
            sp_ = nullptr;
            fail("{}: tokenizer has no byte fallback piece for 0x{:02X}", model_path, b);
        }
    }
}

Tokenizer::~Tokenizer() {
    if (sp_ != nullptr) spm().free(sp_);
}

// SentencePiece's ids for text into ids (grown when they do not fit): how many there are.
size_t Tokenizer::spm_encode(std::string_view text, std::vector<int32_t>& ids) const {
    size_t n = 0;
    if (spm().encode(sp_, text.data(), text.size(), ids.data(), ids.size(), &n) != 0) fail("tokenizer: encode failed");
    if (n > ids.size()) {
        ids.resize(n);
        if (spm().encode(sp_, text.data(), text.size(), ids.data(), ids.size(), &n) != 0) fail("tokenizer: encode failed");
    }
    return n;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    if (hf_) return hf_->encode(text, /*parse_special=*/false);
    std::vector<int32_t> out;
    std::vector<int32_t> ids(64);
    if (published_) {  // a published SentencePiece model: the text as one piece, as its users encode it
        ids.resize(spm_encode(text, ids));
        return ids;
    }
    size_t start = 0;
    for (;;) {
        size_t marker = text.find(kSpaceMarker, start);
        std::string_view chunk = text.substr(start, marker == std::string_view::npos ? std::string_view::npos : marker - start);
        if (!chunk.empty()) {
            const size_t n = spm_encode(chunk, ids);
            out.insert(out.end(), ids.begin(), ids.begin() + static_cast<long>(n));
        }
        if (marker == std::string_view::npos) break;
        for (char c : kSpaceMarker) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        start = marker + kSpaceMarker.size();
    }
    return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    if (hf_) return hf_->decode(ids);
    std::string out;
    std::vector<int32_t> run;
    std::string buf(256, '\0');
    auto flush = [&]() {
        if (run.empty()) return;
        size_t len = 0;
        if (spm().decode(sp_, run.data(), run.size(), buf.data(), buf.size(), &len) != 0) fail("tokenizer: decode failed");
        if (len > buf.size()) {
            buf.resize(len);
            if (spm().decode(sp_, run.data(), run.size(), buf.data(), buf.size(), &len) != 0) fail("tokenizer: decode failed");
        }
        // SentencePiece drops the dummy prefix of every text it decodes; a published model's
        // users (transformers) drop only the one at the start of the whole text.
        if (published_ && !out.empty() && id_to_piece(run.front()).rfind("\u2581", 0) == 0) out += ' ';
        out.append(buf.data(), len);
        run.clear();
    };
    for (int32_t id : ids) {
        if (id < 0 || id >= vocab_size_) fail("tokenizer: id {} is outside the vocabulary (size {})", id, vocab_size_);
        // Control pieces (and a published model's <unk>, which SentencePiece would print as
        // " \u2047 ") are spelled.
        if (control_[static_cast<size_t>(id)] || (published_ && id == unk_)) {
            flush();
            out += id_to_piece(id);
        } else {
            run.push_back(id);
        }
    }
    flush();
    return out;
}

std::string Tokenizer::id_to_piece(int32_t id) const {
    if (hf_) return hf_->id_to_token(id);
    if (id < 0 || id >= vocab_size_) fail("tokenizer: id {} is outside the vocabulary", id);
    char buf[256];
    size_t n = spm().id_to_piece(sp_, id, buf, sizeof(buf));
    if (n < sizeof(buf)) return std::string(buf, n);
    std::string big(n + 1, '\0');
    spm().id_to_piece(sp_, id, big.data(), big.size());
    big.resize(n);
    return big;
}

int32_t Tokenizer::vocab_size() const { return vocab_size_; }

void Tokenizer::check_fits(int64_t model_vocab, const std::string& model_dir) const {
    if (vocab_size_ > model_vocab) {
        fail("{}: the tokenizer has {} tokens, more than the model's vocabulary of {} (config.json vocab_size)", model_dir, vocab_size_,
             model_vocab);
    }
}

bool Tokenizer::is_control(int32_t id) const {
    if (hf_) return id >= 0 && id < vocab_size_ && hf_->is_special(id);
    return id >= 0 && id < vocab_size_ && control_[static_cast<size_t>(id)];
}

}  // namespace chronos
