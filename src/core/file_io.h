// file_io.h: whole-file reads, atomic writes and read-only memory maps.
//
// Every file Chronos saves (checkpoints, packs, JSONL splits, manifests) goes through
// AtomicFile: it writes `path.tmp-<pid>`, fsyncs, renames over `path` and fsyncs the directory,
// so a crash mid-save leaves the previous file intact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chronos {

std::string file_read_all(const std::string& path);
// Atomically replaces `path` with `content`.
void file_write_atomic(const std::string& path, std::string_view content);
bool file_exists(const std::string& path);
// Fails, naming both options, when `output` is the same file as `input` (a command would
// overwrite what it reads).
void file_out_check(const std::string& output, const char* output_option, const std::string& input, const char* input_option);
bool dir_exists(const std::string& path);
// mkdir -p; throws on failure.
void dir_create(const std::string& path);
// mkdir -p of the folder a file will be written in (an output named in a folder that does not
// exist yet gets the folder, as `--out DIR` commands make theirs).
void dir_create_parent(const std::string& file_path);

// An exclusive lock (flock) on `path`, created if missing, held for the object's lifetime and
// dropped by the kernel when the process dies, kill -9 too. Fails with `busy` when another
// process holds it: one tuner per study, one pipeline per folder.
class FileLock {
public:
    FileLock(const std::string& path, const std::string& busy);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

// A file being written for an atomic replace. Call commit() to publish it; if the object is
// destroyed without commit(), the temporary file is removed and `path` is untouched.
class AtomicFile {
public:
    explicit AtomicFile(std::string path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t size);
    void write(std::string_view s) { write(s.data(), s.size()); }
    // Writes zero bytes until the file offset is a multiple of `alignment`.
    void pad_to(uint64_t alignment);
    uint64_t offset() const { return offset_; }
    // fsync, rename over the final path, fsync the directory.
    void commit();

private:
    std::string path_;
    std::string tmp_path_;
    int fd_ = -1;
    uint64_t offset_ = 0;
    bool committed_ = false;
};

// A read-only private mapping of a whole file (empty files map to nullptr/0).
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // Drops the pages of [p, p + n) from this process (they stay in the page cache), so that a
    // pass over a file larger than memory does not hold it all in the resident set.
    void drop_pages(const uint8_t* p, size_t n) const;

private:
    void release();
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace chronos
