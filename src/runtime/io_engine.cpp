// io_engine.cpp: see io_engine.h.
#include "runtime/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "core/error.h"

namespace chronos::rt {

struct IoEngine::Impl {
    std::vector<int> fds;
    std::vector<bool> direct;
    std::vector<std::string> paths;
    bool uring = false;
    uint32_t depth = 0;
    io_uring ring{};
    std::deque<IoCompletion> done;  // synchronous mode: completions waiting to be reaped
};

IoEngine::IoEngine(const std::vector<std::string>& paths, const IoOptions& options) : impl_(std::make_unique<Impl>()) {
    impl_->paths = paths;
    for (const std::string& p : paths) {
        int fd = -1;
        bool direct = false;
        if (options.direct) {
            fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
            direct = fd >= 0;
            if (fd < 0 && errno != EINVAL) fail("cannot open pack file {}: {}", p, std::strerror(errno));
        }
        if (fd < 0) fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open pack file {}: {}", p, std::strerror(errno));
        impl_->fds.push_back(fd);
        impl_->direct.push_back(direct);
    }
    impl_->depth = options.queue_depth;
    if (options.uring) {
        impl_->uring = io_uring_queue_init(options.queue_depth, &impl_->ring, 0) == 0;
    }
}

IoEngine::~IoEngine() {
    // Drain what is in flight so the kernel never writes into freed buffers.
    IoCompletion c[16];
    while (in_flight_ > 0) {
        try {
            reap(c, 16, true);
        } catch (...) {
            break;
        }
    }
    if (impl_->uring) io_uring_queue_exit(&impl_->ring);
    for (int fd : impl_->fds) ::close(fd);
}

bool IoEngine::direct() const {
    for (bool d : impl_->direct) {
        if (!d) return false;
    }
    return true;
}

bool IoEngine::uring() const { return impl_->uring; }

std::string IoEngine::describe() const {
    return fmt::format("{}, {}, queue depth {}", impl_->uring ? "io_uring" : "preadv (synchronous)",
                       direct() ? "O_DIRECT" : "buffered", impl_->uring ? impl_->depth : 1);
}

void IoEngine::inject_error(int64_t nth, int err) {
    inject_countdown_ = nth;
    inject_err_ = err;
}

void IoEngine::submit(uint64_t tag, int32_t file, uint64_t offset, const iovec* iov, int n) {
    CHRONOS_ASSERT(file >= 0 && static_cast<size_t>(file) < impl_->fds.size(), "read of an unknown pack file");
    const int fd = impl_->fds[static_cast<size_t>(file)];
    if (!impl_->uring) {
        ssize_t r = ::preadv(fd, iov, n, static_cast<off_t>(offset));
        impl_->done.push_back({tag, r < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r)});
        ++in_flight_;
        return;
    }
    // The queue may be full of unreaped work: wait for the kernel to take entries.
    io_uring_sqe* sqe = io_uring_get_sqe(&impl_->ring);
    while (sqe == nullptr) {
        io_uring_submit(&impl_->ring);
        sqe = io_uring_get_sqe(&impl_->ring);
    }
    // IORING_FEAT_SUBMIT_STABLE (Linux 5.5+): the iovec array is only read during submit.
    io_uring_prep_readv(sqe, fd, iov, static_cast<unsigned>(n), offset);
    io_uring_sqe_set_data64(sqe, tag);
    int r = io_uring_submit(&impl_->ring);
    if (r < 0) fail("io_uring submit failed for {}: {}", impl_->paths[static_cast<size_t>(file)], std::strerror(-r));
    ++in_flight_;
}

int IoEngine::reap(IoCompletion* out, int max, bool wait) {
    int got = 0;
    if (!impl_->uring) {
        while (got < max && !impl_->done.empty()) {
            out[got++] = impl_->done.front();
            impl_->done.pop_front();
        }
    } else {
        while (got < max && static_cast<uint32_t>(got) < in_flight_) {
            io_uring_cqe* cqe = nullptr;
            int r = (wait && got == 0) ? io_uring_wait_cqe(&impl_->ring, &cqe) : io_uring_peek_cqe(&impl_->ring, &cqe);
            if (r == -EINTR) continue;
            if (r == -EAGAIN || cqe == nullptr) break;
            if (r < 0) fail("io_uring wait failed: {}", std::strerror(-r));
            out[got++] = {io_uring_cqe_get_data64(cqe), static_cast<int64_t>(cqe->res)};
            io_uring_cqe_seen(&impl_->ring, cqe);
        }
    }
    for (int i = 0; i < got; ++i) {
        --in_flight_;
        if (inject_countdown_ == 0) out[i].result = -inject_err_;
        if (inject_countdown_ >= 0) --inject_countdown_;
        if (out[i].result > 0) bytes_read_ += static_cast<uint64_t>(out[i].result);
        ++reads_;
    }
    return got;
}

}  // namespace chronos::rt
