// test_safetensors_malformed.cpp: every malformed-header case the reader must reject, each
// with chronos::Error and a message naming the fault (never a crash, never a silent accept).
#include <gtest/gtest.h>

#include "core/error.h"
#include "format/safetensors.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

std::string u64le(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

// A file with `header` and `buffer_bytes` zero bytes of data.
std::string make_file(const std::string& header, size_t buffer_bytes) {
    return u64le(header.size()) + header + std::string(buffer_bytes, '\0');
}

// Parses `file` from memory and from disk; both must reject with a message containing `needle`.
void expect_rejected(const std::string& file, const std::string& needle) {
    auto data = reinterpret_cast<const uint8_t*>(file.data());
    try {
        safetensors_parse(data, file.size(), "case");
        ADD_FAILURE() << "accepted a malformed file; expected an error containing \"" << needle << "\"";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "error was \"" << e.what() << "\", expected it to mention \"" << needle << "\"";
    }
    test::TempDir dir;
    file_write_atomic(dir.file("bad.safetensors"), file);
    EXPECT_THROW(SafetensorsFile f(dir.file("bad.safetensors")), Error);
}

const std::string kOk = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST(SafetensorsMalformed, ValidBaselineIsAccepted) {
    std::string f = make_file(kOk, 8);
    EXPECT_NO_THROW(safetensors_parse(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "ok"));
}

TEST(SafetensorsMalformed, TooShortForLengthPrefix) { expect_rejected(std::string("\x05\x00\x00", 3), "too short"); }
TEST(SafetensorsMalformed, EmptyFile) { expect_rejected("", "too short"); }

TEST(SafetensorsMalformed, HeaderLengthBeyondFile) {
    expect_rejected(u64le(1000) + kOk + std::string(8, '\0'), "exceeds the file");
}

TEST(SafetensorsMalformed, HeaderLengthAbsurd) { expect_rejected(u64le(~0ull) + "{}", "not a safetensors file"); }

TEST(SafetensorsMalformed, HeaderNotStartingWithBrace) {
    expect_rejected(make_file(" " + kOk, 8), "must start with '{'");
}

TEST(SafetensorsMalformed, InvalidJson) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8), "not valid JSON");
    expect_rejected(make_file(R"({"a":})", 0), "not valid JSON");
}

TEST(SafetensorsMalformed, InvalidUtf8InHeader) {
    expect_rejected(make_file("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "not valid JSON");
}

TEST(SafetensorsMalformed, TruncatedHeader) { expect_rejected(make_file("{\"a", 0), "not valid JSON"); }

TEST(SafetensorsMalformed, DuplicateTensorName) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                    "duplicate key");
}

TEST(SafetensorsMalformed, UnknownDtype) {
    expect_rejected(make_file(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", 8), "unknown dtype");
}

TEST(SafetensorsMalformed, DtypeNotString) {
    expect_rejected(make_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8), "dtype is not a string");
}

TEST(SafetensorsMalformed, ShapeTimesDtypeDisagreesWithOffsets) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "give 12 bytes");
    expect_rejected(make_file(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", 8), "give 16 bytes");
}

TEST(SafetensorsMalformed, NegativeOrFractionalShape) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative integers");
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8), "non-negative integers");
}

TEST(SafetensorsMalformed, ShapeOverflow) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", 8), "overflows");
}

TEST(SafetensorsMalformed, OffsetsMalformed) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "[begin, end]");
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "end before begin");
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":"0,8"}})", 8), "[begin, end]");
}

TEST(SafetensorsMalformed, OffsetsOutsideBuffer) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "buffer has 4 bytes");
}

TEST(SafetensorsMalformed, OverlappingTensors) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                    "overlaps");
}

TEST(SafetensorsMalformed, HoleInBuffer) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "hole of 4 bytes");
}

TEST(SafetensorsMalformed, TrailingBytesAfterLastTensor) {
    expect_rejected(make_file(kOk, 12), "tensors cover 8");
}

TEST(SafetensorsMalformed, MissingOrUnknownFields) {
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "needs dtype, shape and data_offsets");
    expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), "unknown field");
    expect_rejected(make_file(R"({"a":[1,2]})", 8), "not an object");
}

TEST(SafetensorsMalformed, MetadataMustMapStringsToStrings) {
    expect_rejected(make_file(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "not a string");
    expect_rejected(make_file(R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "not an object");
}
