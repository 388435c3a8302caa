// memory_budget.h: the RAM budget of the expert tier from the memory this process may use. The
// limit is the cgroup's (v2 memory.max or v1 memory.limit_in_bytes, the smallest on the path
// to the root, as the kernel enforces them) or else MemAvailable; from it go what was measured
// for code and libraries, the dense weights, the session's KV cache and buffers, and a margin;
// the expert slot pool gets the rest. `--ram-budget auto` and `--mem-limit MB` use it.
//
//     chronos::rt::MemoryLimit limit = chronos::rt::memory_limit_detect();
//     chronos::rt::MemorySplit split = chronos::rt::memory_split_plan(model, options, limit);
//     options.ram_budget = split.experts;     // and print memory_split_describe(split)
#pragma once

#include <cstdint>
#include <string>

#include "runtime/model.h"
#include "runtime/session.h"

namespace chronos::rt {

struct MemoryLimit {
    uint64_t bytes = 0;
    std::string source;  // e.g. "cgroup v1 /sys/fs/cgroup/memory/x/memory.limit_in_bytes"
};

// The limit that applies to this process. `root` prefixes every path read (/proc/self/cgroup,
// /sys/fs/cgroup/..., /proc/meminfo), so tests can hand in a tree of their own; "" is the system.
MemoryLimit memory_limit_detect(const std::string& root = "");

// Resident set size of this process now (VmRSS), bytes.
uint64_t rss_bytes();

// Headroom kept out of the expert pool for what is not measured at start: allocator slack,
// page tables, thread stacks as they grow, the io_uring rings, the sampler and metrics.
uint64_t memory_margin_bytes(uint64_t limit);

struct MemorySplit {
    MemoryLimit limit;
    uint64_t code = 0;     // RSS before the dense weights: code, libraries, tokenizer, config
    uint64_t dense = 0;    // dense weights, faulted in
    uint64_t session = 0;  // KV cache and scratch of a session, measured on a probe session
    uint64_t margin = 0;
    uint64_t experts = 0;  // what is left: the expert pool
    int64_t slots = 0;     // whole expert slots in it
};

// Measures and splits: faults the dense weights in, builds a probe session (with the smallest
// pool) to measure its buffers, and leaves the rest to the experts. Fails with a clear message
// if the limit cannot hold one layer's top-k after the rest.
MemorySplit memory_split_plan(const Model& model, const SessionOptions& options, const MemoryLimit& limit);

// One line, e.g. "memory limit 400.0 MiB (cgroup v2 ...) = code 9.1 + dense weights 31.0 + ...".
std::string memory_split_describe(const MemorySplit& split);

}  // namespace chronos::rt
