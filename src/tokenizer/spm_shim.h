// spm_shim.h: the C interface of libchronos_spm.so, the only code that touches SentencePiece.
//
// Why a separate module: Debian's libsentencepiece bundles and exports its own protobuf 3.14,
// while libtorch loads the system protobuf 3.21. In one symbol namespace they break each other
// at start-up. The tokenizer therefore loads this module with dlmopen(LM_ID_NEWLM): a link-map
// namespace of its own, where SentencePiece binds to its own protobuf (and its own C++ runtime)
// and the process's protobuf stays untouched.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// All functions return 0 on success; on failure they write a message into err (if given).
typedef struct chronos_spm chronos_spm;

int chronos_spm_train(const char* args, char* err, size_t err_cap);
chronos_spm* chronos_spm_load(const char* path, char* err, size_t err_cap);
void chronos_spm_free(chronos_spm* sp);
int32_t chronos_spm_vocab_size(const chronos_spm* sp);
int32_t chronos_spm_piece_to_id(const chronos_spm* sp, const char* piece);
int32_t chronos_spm_unk_id(const chronos_spm* sp);
int32_t chronos_spm_pad_id(const chronos_spm* sp);
int32_t chronos_spm_eos_id(const chronos_spm* sp);
int chronos_spm_is_control(const chronos_spm* sp, int32_t id);
// Copies the piece of `id` into out (NUL-terminated, truncated to cap); returns its length.
size_t chronos_spm_id_to_piece(const chronos_spm* sp, int32_t id, char* out, size_t cap);
// Encodes text; writes at most cap ids and sets *n to the number produced (retry with a larger
// buffer if *n > cap).
int chronos_spm_encode(const chronos_spm* sp, const char* text, size_t len, int32_t* out, size_t cap, size_t* n);
// Decodes ids; same buffer convention as encode, in bytes.
int chronos_spm_decode(const chronos_spm* sp, const int32_t* ids, size_t n, char* out, size_t cap, size_t* len);
}
