// io_engine.cpp: see io_engine.h.
#include "runtime/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include "core/error.h"

namespace chronos::rt {

using Clock = std::chrono::steady_clock;

struct IoEngine::Impl {
    std::vector<int> fds;
    std::vector<bool> direct;
    std::vector<std::string> paths;
    bool uring = false;
    uint32_t depth = 0;
    io_uring ring{};
    uint32_t queued = 0;            // prepared in the ring, not yet handed to the kernel
    std::deque<IoCompletion> done;  // synchronous mode: completions waiting to be reaped
    // Simulated latency: each submitted tag's due time, and completions held until then.
    Clock::duration sim_delay{};
    struct Due {
        uint64_t tag;
        Clock::time_point at;
    };
    struct Held {
        IoCompletion c;
        Clock::time_point at;
    };
    std::vector<Due> due;    // submitted, not yet back from the kernel
    std::vector<Held> held;  // back from the kernel, not yet due
};

double io_sim_read_ms_from_env() {
    const char* env = std::getenv("CHRONOS_SIM_READ_MS");
    if (env == nullptr || *env == '\0') return 0.0;
    char* end = nullptr;
    const double ms = std::strtod(env, &end);
    if (end == env || *end != '\0' || !std::isfinite(ms) || ms < 0 || ms > kSimReadMsMax) {
        fail("CHRONOS_SIM_READ_MS='{}' is not a number of milliseconds in [0, {:.0f}]", env, kSimReadMsMax);
    }
    return ms;
}

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
    if (!(options.sim_read_ms >= 0 && options.sim_read_ms <= kSimReadMsMax)) {
        fail("simulated read latency {} ms is outside [0, {:.0f}]", options.sim_read_ms, kSimReadMsMax);
    }
    impl_->sim_delay = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(options.sim_read_ms));
    // Sized for every read the queue can hold: the hot path then never grows them.
    impl_->due.reserve(2 * static_cast<size_t>(options.queue_depth));
    impl_->held.reserve(2 * static_cast<size_t>(options.queue_depth));
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
    std::string s = fmt::format("{}, {}, queue depth {}", impl_->uring ? "io_uring" : "preadv (synchronous)",
                                direct() ? "O_DIRECT" : "buffered", impl_->uring ? impl_->depth : 1);
    if (impl_->sim_delay.count() > 0) {
        s += fmt::format(", simulated {:g} ms per read", std::chrono::duration<double, std::milli>(impl_->sim_delay).count());
    }
    return s;
}

void IoEngine::inject_error(int64_t nth, int err) {
    inject_countdown_ = nth;
    inject_err_ = err;
}

void IoEngine::submit(uint64_t tag, int32_t file, uint64_t offset, const iovec* iov, int n) {
    CHRONOS_ASSERT(file >= 0 && static_cast<size_t>(file) < impl_->fds.size(), "read of an unknown pack file");
    const int fd = impl_->fds[static_cast<size_t>(file)];
    if (impl_->sim_delay.count() > 0) impl_->due.push_back({tag, Clock::now() + impl_->sim_delay});
    if (!impl_->uring) {
        ssize_t r = ::preadv(fd, iov, n, static_cast<off_t>(offset));
        impl_->done.push_back({tag, r < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r)});
        ++in_flight_;
        return;
    }
    // The submission queue may be full of prepared reads: hand them to the kernel first.
    io_uring_sqe* sqe = io_uring_get_sqe(&impl_->ring);
    while (sqe == nullptr) {
        flush();
        sqe = io_uring_get_sqe(&impl_->ring);
    }
    // IORING_FEAT_SUBMIT_STABLE (Linux 5.5+): the iovec array is read when the kernel takes the
    // entry, at flush().
    io_uring_prep_readv(sqe, fd, iov, static_cast<unsigned>(n), offset);
    io_uring_sqe_set_data64(sqe, tag);
    ++impl_->queued;
    ++in_flight_;
}

void IoEngine::flush() {
    if (!impl_->uring || impl_->queued == 0) return;
    const int r = io_uring_submit(&impl_->ring);
    if (r < 0) fail("io_uring submit failed for {} reads: {}", impl_->queued, std::strerror(-r));
    impl_->queued = 0;
}

int IoEngine::reap(IoCompletion* out, int max, bool wait) {
    flush();  // a read still queued would never complete
    const int got = impl_->sim_delay.count() > 0 ? reap_simulated(out, max, wait) : reap_kernel(out, max, wait);
    for (int i = 0; i < got; ++i) {
        --in_flight_;
        if (inject_countdown_ == 0) out[i].result = -inject_err_;
        if (inject_countdown_ >= 0) --inject_countdown_;
        if (out[i].result > 0) bytes_read_ += static_cast<uint64_t>(out[i].result);
        ++reads_;
    }
    return got;
}

int IoEngine::reap_simulated(IoCompletion* out, int max, bool wait) {
    Impl& m = *impl_;
    bool block_on_kernel = false;
    for (;;) {
        // Everything the kernel has finished moves to `held`, with its due time.
        IoCompletion c[16];
        const int n = in_flight_ > m.held.size() ? reap_kernel(c, 16, block_on_kernel) : 0;
        for (int i = 0; i < n; ++i) {
            size_t d = 0;
            while (d < m.due.size() && m.due[d].tag != c[i].tag) ++d;
            CHRONOS_ASSERT(d < m.due.size(), "a completion for a read that was never submitted");
            m.held.push_back({c[i], m.due[d].at});
            m.due[d] = m.due.back();
            m.due.pop_back();
        }
        // Hand out what is due, earliest first.
        const Clock::time_point now = Clock::now();
        int got = 0;
        while (got < max) {
            size_t best = m.held.size();
            for (size_t h = 0; h < m.held.size(); ++h) {
                if (m.held[h].at <= now && (best == m.held.size() || m.held[h].at < m.held[best].at)) best = h;
            }
            if (best == m.held.size()) break;
            out[got++] = m.held[best].c;
            m.held[best] = m.held.back();
            m.held.pop_back();
        }
        if (got > 0 || !wait || in_flight_ == 0) return got;
        // Sleep until the earliest due time, held or still with the kernel. Once that has passed
        // with nothing held due, the read is one the kernel has not finished (the disk is slower
        // than the simulation): block on the kernel for it.
        Clock::time_point first = Clock::time_point::max();
        for (const Impl::Held& h : m.held) first = std::min(first, h.at);
        for (const Impl::Due& d : m.due) first = std::min(first, d.at);
        block_on_kernel = first <= now;
        if (!block_on_kernel) std::this_thread::sleep_until(first);
    }
}

int IoEngine::reap_kernel(IoCompletion* out, int max, bool wait) {
    const uint32_t in_kernel = in_flight_ - static_cast<uint32_t>(impl_->held.size());
    int got = 0;
    if (!impl_->uring) {
        while (got < max && !impl_->done.empty()) {
            out[got++] = impl_->done.front();
            impl_->done.pop_front();
        }
    } else {
        while (got < max && static_cast<uint32_t>(got) < in_kernel) {
            io_uring_cqe* cqe = nullptr;
            int r = (wait && got == 0) ? io_uring_wait_cqe(&impl_->ring, &cqe) : io_uring_peek_cqe(&impl_->ring, &cqe);
            if (r == -EINTR) continue;
            if (r == -EAGAIN || cqe == nullptr) break;
            if (r < 0) fail("io_uring wait failed: {}", std::strerror(-r));
            out[got++] = {io_uring_cqe_get_data64(cqe), static_cast<int64_t>(cqe->res)};
            io_uring_cqe_seen(&impl_->ring, cqe);
        }
    }
    return got;
}

}  // namespace chronos::rt
