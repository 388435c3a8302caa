// spm_shim.cpp: libchronos_spm.so — SentencePiece behind a C interface (see spm_shim.h).
#include "tokenizer/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

struct chronos_spm {
    sentencepiece::SentencePieceProcessor sp;
};

static void set_err(char* err, size_t cap, const std::string& msg) {
    if (err == nullptr || cap == 0) return;
    std::strncpy(err, msg.c_str(), cap - 1);
    err[cap - 1] = '\0';
}

extern "C" {

__attribute__((visibility("default"))) int chronos_spm_train(const char* args, char* err, size_t err_cap) {
    auto status = sentencepiece::SentencePieceTrainer::Train(args);
    if (!status.ok()) {
        set_err(err, err_cap, status.ToString());
        return 1;
    }
    return 0;
}

__attribute__((visibility("default"))) chronos_spm* chronos_spm_load(const char* path, char* err, size_t err_cap) {
    auto* h = new chronos_spm();
    auto status = h->sp.Load(path);
    if (!status.ok()) {
        set_err(err, err_cap, status.ToString());
        delete h;
        return nullptr;
    }
    return h;
}

__attribute__((visibility("default"))) void chronos_spm_free(chronos_spm* sp) { delete sp; }
__attribute__((visibility("default"))) int32_t chronos_spm_vocab_size(const chronos_spm* sp) { return sp->sp.GetPieceSize(); }
__attribute__((visibility("default"))) int32_t chronos_spm_piece_to_id(const chronos_spm* sp, const char* piece) { return sp->sp.PieceToId(piece); }
__attribute__((visibility("default"))) int32_t chronos_spm_unk_id(const chronos_spm* sp) { return sp->sp.unk_id(); }
__attribute__((visibility("default"))) int32_t chronos_spm_pad_id(const chronos_spm* sp) { return sp->sp.pad_id(); }
__attribute__((visibility("default"))) int32_t chronos_spm_eos_id(const chronos_spm* sp) { return sp->sp.eos_id(); }
__attribute__((visibility("default"))) int chronos_spm_is_control(const chronos_spm* sp, int32_t id) { return sp->sp.IsControl(id) ? 1 : 0; }

__attribute__((visibility("default"))) size_t chronos_spm_id_to_piece(const chronos_spm* sp, int32_t id, char* out, size_t cap) {
    const std::string& piece = sp->sp.IdToPiece(id);
    if (cap > 0) {
        size_t k = std::min(cap - 1, piece.size());
        std::memcpy(out, piece.data(), k);
        out[k] = '\0';
    }
    return piece.size();
}

__attribute__((visibility("default"))) int chronos_spm_encode(const chronos_spm* sp, const char* text, size_t len, int32_t* out,
                                                              size_t cap, size_t* n) {
    std::vector<int> ids;
    if (!sp->sp.Encode(std::string_view(text, len), &ids).ok()) return 1;
    *n = ids.size();
    for (size_t i = 0; i < ids.size() && i < cap; ++i) out[i] = ids[i];
    return 0;
}

__attribute__((visibility("default"))) int chronos_spm_decode(const chronos_spm* sp, const int32_t* ids, size_t n, char* out,
                                                              size_t cap, size_t* len) {
    std::vector<int> v(ids, ids + n);
    std::string text;
    if (!sp->sp.Decode(v, &text).ok()) return 1;
    *len = text.size();
    std::memcpy(out, text.data(), std::min(cap, text.size()));
    return 0;
}

}  // extern "C"
