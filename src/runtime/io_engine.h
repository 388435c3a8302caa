// io_engine.h: asynchronous reads of expert packs — io_uring with a queue depth above 1 and
// O_DIRECT where the file system allows it; buffered reads as an option and as the fallback
// where O_DIRECT is refused; synchronous preadv where io_uring is unavailable. A simulated slow
// disk (sim_read_ms) holds each completion back until that long after its submission, without
// blocking the caller, so prefetch overlap can be measured on a fast disk.
//
// The engine is driven from one thread: submit() queues a vectored read (one sequential read
// of a file range into several buffers), flush() hands everything queued to the kernel in one
// call, reap() collects completions (flushing first, so a wait never waits on a read the kernel
// was not given). The kernel performs the reads while the caller computes. One flush for many
// reads matters in a VM: each io_uring_enter that starts reads notifies the virtual disk (on
// the project's Xeon VM 15 us to start one 4 KB read, 18.5 us for four). Every completion
// carries the byte count the read call returned, so callers count bytes from what happened.
//
//     chronos::rt::IoEngine io({"packs/a.ctsr"}, {});
//     iovec v{buf, 4096};
//     io.submit(/*tag=*/7, /*file=*/0, /*offset=*/0, &v, 1);
//     io.flush();
//     chronos::rt::IoCompletion c[8];
//     int n = io.reap(c, 8, /*wait=*/true);            // c[0].tag == 7, c[0].result == bytes read
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chronos::rt {

struct IoOptions {
    bool direct = true;           // O_DIRECT (falls back to buffered per file where refused)
    bool uring = true;            // io_uring (falls back to synchronous preadv where unavailable)
    uint32_t queue_depth = 64;    // submission queue entries
    double sim_read_ms = 0;       // > 0: no read completes sooner than this after its submission
};

// Largest simulated read latency accepted (a minute per read is no disk anyone measures).
constexpr double kSimReadMsMax = 60000.0;
// The simulated read latency the environment asks for: CHRONOS_SIM_READ_MS (a number of
// milliseconds in [0, kSimReadMsMax]), 0 when unset; throws naming the variable otherwise.
double io_sim_read_ms_from_env();

struct IoCompletion {
    uint64_t tag = 0;
    int64_t result = 0;  // bytes read, or -errno
};

class IoEngine {
public:
    IoEngine(const std::vector<std::string>& paths, const IoOptions& options);
    ~IoEngine();
    IoEngine(const IoEngine&) = delete;
    IoEngine& operator=(const IoEngine&) = delete;

    // Queues a read of file `file` at `offset` into iov[0..n); it starts at the next flush()
    // (or reap()). With O_DIRECT the offset, every buffer and every length must be 4096-aligned.
    // iov must stay valid until then.
    void submit(uint64_t tag, int32_t file, uint64_t offset, const iovec* iov, int n);
    // Starts every queued read with one system call.
    void flush();
    // Collects up to `max` completions; with wait, blocks until at least one is there (or none is
    // in flight). Returns how many were written to out. With a simulated latency, a read the
    // kernel finished is held back until its due time.
    int reap(IoCompletion* out, int max, bool wait);
    uint32_t in_flight() const { return in_flight_; }    // submitted, not yet reaped (queued ones included)
    bool direct() const;           // every file opened with O_DIRECT
    bool uring() const;            // reads go through io_uring
    std::string describe() const;  // e.g. "io_uring, O_DIRECT, queue depth 64" (+ ", simulated 30 ms per read")
    uint64_t bytes_read() const { return bytes_read_; }  // sum of the positive results reaped
    uint64_t reads() const { return reads_; }            // read calls completed

    // Fault injection for tests: the n-th read from now (0 = the next) completes with -err.
    void inject_error(int64_t nth, int err);

private:
    int reap_kernel(IoCompletion* out, int max, bool wait);  // completions as the kernel delivers them
    int reap_simulated(IoCompletion* out, int max, bool wait);

    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint32_t in_flight_ = 0;
    uint64_t bytes_read_ = 0, reads_ = 0;
    int64_t inject_countdown_ = -1;
    int inject_err_ = 0;
};

}  // namespace chronos::rt
