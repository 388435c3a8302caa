// file_io.cpp: POSIX implementations; errors name the path and errno text.
#include "core/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace chronos {

static std::string errno_text() { return std::strerror(errno); }

std::string file_read_all(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open {}: {}", path, errno_text());
    std::string out;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            fail("cannot read {}: {}", path, std::strerror(e));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

void file_write_atomic(const std::string& path, std::string_view content) {
    AtomicFile f(path);
    f.write(content);
    f.commit();
}

void file_out_check(const std::string& output, const char* output_option, const std::string& input, const char* input_option) {
    std::error_code ec;
    if (std::filesystem::equivalent(output, input, ec) && !ec) {
        fail("{} {} is the {} file: it would be overwritten while it is read", output_option, output, input_option);
    }
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void dir_create(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) fail("cannot create directory {}: {}", path, ec.message());
}

static void fsync_parent_dir(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // best effort: some file systems refuse directory fds
    ::fsync(fd);
    ::close(fd);
}

void dir_create_parent(const std::string& file_path) {
    const std::string parent = std::filesystem::path(file_path).parent_path().string();
    if (!parent.empty()) dir_create(parent);  // nothing to do when it exists
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    tmp_path_ = path_ + ".tmp-" + std::to_string(::getpid());
    dir_create_parent(path_);
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create {}: {}", tmp_path_, errno_text());
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
    CHRONOS_ASSERT(fd_ >= 0, "write after commit");
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd_, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write {}: {}", tmp_path_, errno_text());
        }
        p += n;
        size -= static_cast<size_t>(n);
        offset_ += static_cast<uint64_t>(n);
    }
}

void AtomicFile::pad_to(uint64_t alignment) {
    uint64_t rem = offset_ % alignment;
    if (rem == 0) return;
    std::vector<uint8_t> zeros(alignment - rem, 0);
    write(zeros.data(), zeros.size());
}

void AtomicFile::commit() {
    CHRONOS_ASSERT(fd_ >= 0, "commit twice");
    if (::fsync(fd_) != 0) fail("cannot fsync {}: {}", tmp_path_, errno_text());
    if (::close(fd_) != 0) {
        fd_ = -1;
        fail("cannot close {}: {}", tmp_path_, errno_text());
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        fail("cannot rename {} to {}: {}", tmp_path_, path_, errno_text());
    }
    committed_ = true;
    fsync_parent_dir(path_);
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
    // Non-blocking, so that a FIFO in a file's place is refused below instead of waiting for a
    // writer (the flag changes nothing for a regular file).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail("cannot open {}: {}", path, errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        fail("cannot stat {}: {}", path, std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("{} is not a regular file", path);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            fail("cannot mmap {}: {}", path, std::strerror(e));
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() { release(); }

void MappedFile::drop_pages(const uint8_t* p, size_t n) const {
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;  // whole pages inside the range only
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        data_ = other.data_;
        size_ = other.size_;
        other.data_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

void MappedFile::release() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

FileLock::FileLock(const std::string& path, const std::string& busy) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create {}: {}", path, std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd_);
        fail("{}", busy);
    }
}

FileLock::~FileLock() { ::close(fd_); }

}  // namespace chronos
