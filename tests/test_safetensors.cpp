// test_safetensors.cpp: round trips and the byte layout of written files, checked against the
// format as the specification states it (u64 LE header length, JSON header starting with '{',
// space padding, data_offsets relative to the byte buffer, little-endian data).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

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

std::string bytes_of(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

}  // namespace

TEST(Safetensors, WrittenFileMatchesSpecificationByteForByte) {
    test::TempDir dir;
    const float a[2] = {1.0f, -2.5f};
    const uint16_t b[3] = {0x3f80, 0xc000, 0x7f80};  // bf16 1, -2, inf
    SafetensorsWriter w;
    w.add("a", DType::F32, {2}, a, sizeof(a));
    w.add("b", DType::BF16, {1, 3}, b, sizeof(b));
    w.set_metadata("format", "pt");
    w.write(dir.file("x.safetensors"));

    std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"BF16","shape":[1,3],"data_offsets":[8,14]}})";
    while ((8 + header.size()) % 8 != 0) header += ' ';  // buffer starts 8-aligned
    std::string expected = u64le(header.size()) + header;
    // Little-endian element bytes, as the format requires (this machine is little-endian).
    expected += std::string("\x00\x00\x80\x3f", 4) + std::string("\x00\x00\x20\xc0", 4);
    expected += std::string("\x80\x3f\x00\xc0\x80\x7f", 6);

    std::string actual = file_read_all(dir.file("x.safetensors"));
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
        ASSERT_EQ(static_cast<uint8_t>(actual[i]), static_cast<uint8_t>(expected[i])) << "first difference at byte " << i;
    }
}

TEST(Safetensors, ReadsHandMadeFileInReferenceWriterOrder) {
    // Laid out as the reference writer does: tensors sorted by dtype alignment, then name; the
    // header padded with spaces; no metadata.
    std::string header = R"({"z":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"m":{"dtype":"F16","shape":[],"data_offsets":[16,18]}})";
    while ((8 + header.size()) % 8 != 0) header += ' ';
    int64_t z[2] = {-7, 1LL << 40};
    uint16_t m = 0x3c00;  // 1.0 in f16
    std::string file = u64le(header.size()) + header + bytes_of(z, 16) + bytes_of(&m, 2);
    test::TempDir dir;
    file_write_atomic(dir.file("h.safetensors"), file);

    SafetensorsFile f(dir.file("h.safetensors"));
    ASSERT_EQ(f.tensors().size(), 2u);
    TensorView tz = f.tensor("z");
    EXPECT_EQ(tz.info->dtype, DType::I64);
    EXPECT_EQ(tz.as<int64_t>()[0], -7);
    EXPECT_EQ(tz.as<int64_t>()[1], 1LL << 40);
    TensorView tm = f.tensor("m");
    EXPECT_TRUE(tm.info->shape.empty());  // a scalar
    EXPECT_EQ(tm.info->numel(), 1);
    EXPECT_EQ(tm.as<uint16_t>()[0], 0x3c00);
    EXPECT_EQ(f.header().data_start % 8, 0u);
}

TEST(Safetensors, RoundTripIsBitExactForEveryDtype) {
    test::TempDir dir;
    std::mt19937 rng(7);
    struct Case {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;
    };
    std::vector<Case> cases;
    int i = 0;
    for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                    DType::U8, DType::BOOL, DType::U16, DType::U32, DType::U64, DType::F8_E4M3, DType::F8_E5M2}) {
        Case c{fmt::format("t{}.{}", i++, dtype_name(d)), d, {3, static_cast<int64_t>(1 + rng() % 5)}, {}};
        c.bytes.resize(static_cast<size_t>(c.shape[0] * c.shape[1]) * dtype_size(d));
        for (auto& b : c.bytes) b = static_cast<uint8_t>(rng());
        cases.push_back(std::move(c));
    }
    cases.push_back({"empty", DType::F32, {0, 4}, {}});
    SafetensorsWriter w;
    for (const Case& c : cases) w.add(c.name, c.dtype, c.shape, c.bytes.data(), c.bytes.size());
    w.set_metadata("note", "round trip \xE2\x9C\x93");
    w.write(dir.file("rt.safetensors"));

    SafetensorsFile f(dir.file("rt.safetensors"));
    EXPECT_EQ(f.metadata().at("note"), "round trip \xE2\x9C\x93");
    ASSERT_EQ(f.tensors().size(), cases.size());
    for (const Case& c : cases) {
        TensorView t = f.tensor(c.name);
        EXPECT_EQ(t.info->dtype, c.dtype) << c.name;
        EXPECT_EQ(t.info->shape, c.shape) << c.name;
        ASSERT_EQ(t.info->nbytes(), c.bytes.size()) << c.name;
        EXPECT_EQ(std::memcmp(t.data, c.bytes.data(), c.bytes.size()), 0) << c.name;
    }
}

TEST(Safetensors, MissingTensorIsAClearError) {
    test::TempDir dir;
    float x = 1;
    SafetensorsWriter w;
    w.add("x", DType::F32, {1}, &x, 4);
    w.write(dir.file("a.safetensors"));
    SafetensorsFile f(dir.file("a.safetensors"));
    EXPECT_THROW(f.tensor("y"), Error);
}

TEST(Safetensors, WriterRejectsInconsistentTensors) {
    float x[4] = {};
    SafetensorsWriter w;
    EXPECT_THROW(w.add("x", DType::F32, {3}, x, 16), Error);  // 3 floats are 12 bytes
    w.add("x", DType::F32, {4}, x, 16);
    EXPECT_THROW(w.add("x", DType::F32, {4}, x, 16), Error);  // duplicate name
    EXPECT_THROW(w.add("__metadata__", DType::F32, {4}, x, 16), Error);
}

TEST(AtomicWrite, FailedWriteLeavesPreviousFileIntact) {
    test::TempDir dir;
    const std::string path = dir.file("keep.safetensors");
    float x = 3;
    SafetensorsWriter w;
    w.add("x", DType::F32, {1}, &x, 4);
    w.write(path);
    const std::string before = file_read_all(path);
    {
        // A write that is abandoned before commit (as on an exception mid-save).
        AtomicFile f(path);
        f.write("garbage");
    }
    EXPECT_EQ(file_read_all(path), before);
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
        EXPECT_EQ(e.path().filename().string(), "keep.safetensors") << "temporary file left behind";
    }
}

TEST(AtomicWrite, MakesTheFolderTheFileIsNamedIn) {
    test::TempDir dir;
    const std::string path = dir.file("runs/new/out.txt");  // neither folder exists yet
    {
        AtomicFile f(path);
        f.write("hello");
        f.commit();
    }
    EXPECT_EQ(file_read_all(path), "hello");
}
