// memory_budget.cpp: see memory_budget.h.
#include "runtime/memory_budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "runtime/estimate.h"

namespace chronos::rt {

namespace {

// A cgroup limit file's value; "max" and the v1 "no limit" value (close to 2^63) are none.
bool read_limit(const std::string& path, uint64_t* bytes) {
    std::ifstream in(path);
    std::string v;
    if (!(in >> v) || v == "max") return false;
    try {
        const unsigned long long x = std::stoull(v);
        if (x >= (1ull << 62)) return false;
        *bytes = x;
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

// The limit files from a cgroup's directory up to the hierarchy's root, the smallest kept.
void smallest_on_path(const std::string& mount, std::string cg, const char* file, const char* kind, MemoryLimit* best) {
    for (;;) {
        const std::string path = mount + (cg == "/" ? "" : cg) + "/" + file;
        uint64_t bytes = 0;
        if (read_limit(path, &bytes) && (best->bytes == 0 || bytes < best->bytes)) *best = {bytes, fmt::format("{} {}", kind, path)};
        if (cg.empty() || cg == "/") break;
        const size_t slash = cg.rfind('/');
        cg = slash == 0 ? "/" : cg.substr(0, slash);
    }
}

double mib(uint64_t b) { return static_cast<double>(b) / (1 << 20); }

}  // namespace

MemoryLimit memory_limit_detect(const std::string& root) {
    MemoryLimit best;
    std::ifstream cgroups(root + "/proc/self/cgroup");
    std::string line;
    while (std::getline(cgroups, line)) {
        // "hierarchy-id:controllers:path"; v2 is "0::path".
        const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controllers.empty()) {
            for (const char* mount : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
                smallest_on_path(root + mount, path, "memory.max", "cgroup v2", &best);
            }
        } else {
            std::stringstream ss(controllers);
            std::string c;
            while (std::getline(ss, c, ',')) {
                if (c != "memory") continue;
                smallest_on_path(root + "/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "cgroup v1", &best);
                // Inside a container the path may not be visible: the mount's root is ours.
                smallest_on_path(root + "/sys/fs/cgroup/memory", "/", "memory.limit_in_bytes", "cgroup v1", &best);
            }
        }
    }
    if (best.bytes > 0) return best;
    std::ifstream meminfo(root + "/proc/meminfo");
    while (std::getline(meminfo, line)) {
        unsigned long long kb = 0;
        if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) return {kb * 1024, "MemAvailable in /proc/meminfo"};
    }
    fail("cannot find this process's memory limit (no cgroup memory limit and no MemAvailable in {}/proc/meminfo): give --mem-limit",
         root);
}

uint64_t rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        unsigned long long kb = 0;
        if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) return kb * 1024;
    }
    fail("cannot read VmRSS from /proc/self/status");
}

uint64_t memory_margin_bytes(uint64_t limit) { return (16ull << 20) + limit / 50; }

MemorySplit memory_split_plan(const Model& model, const SessionOptions& options, const MemoryLimit& limit) {
    MemorySplit s;
    s.limit = limit;
    s.code = rss_bytes();
    model.dense_prefault();
    const uint64_t after_dense = rss_bytes();
    s.dense = after_dense > s.code ? after_dense - s.code : 0;
    s.margin = memory_margin_bytes(limit.bytes);
    const uint64_t slot = pack_slot_bytes(model.manifest);
    const uint64_t need = static_cast<uint64_t>(model.config.num_experts_per_tok) * slot;
    auto refuse = [&](uint64_t session, const std::string& how) {
        const uint64_t taken = s.code + s.dense + session + s.margin;
        fail("the memory limit of {:.1f} MiB ({}) leaves {:.1f} MiB for experts after code {:.1f}, dense weights {:.1f}, session "
             "{:.1f} ({}) and margin {:.1f} MiB; one layer's top-k needs {:.1f} MiB",
             mib(limit.bytes), limit.source, limit.bytes > taken ? mib(limit.bytes - taken) : 0.0, mib(s.code), mib(s.dense),
             mib(session), how, mib(s.margin), mib(need));
    };
    // The session's KV cache and buffers grow with the context. When even half their computed
    // size exceeds what the limit leaves, the limit is refused before a probe session would
    // allocate them (a context of millions of positions would fault in gigabytes); an estimate
    // off by up to 2x thus never refuses a session that fits, and closer cases are measured.
    EstimateOptions eo;
    eo.experts = model.manifest.dtype;
    eo.dense = model.dense_type();
    eo.code_bytes = s.code;
    const Estimate est = estimate_config(model.config, eo);
    const uint64_t session_estimate = est.kv_bytes_context + est.session_bytes;
    const uint64_t left = limit.bytes > s.code + s.dense ? limit.bytes - s.code - s.dense : 0;
    if (session_estimate / 2 > left) {
        refuse(session_estimate, fmt::format("computed for the context of {} positions", model.config.max_position_embeddings));
    }
    {
        // A probe with the smallest pool (one layer's top-k) measures the session's own buffers.
        SessionOptions probe = options;
        probe.mode = MissMode::exact;
        probe.preload = false;
        probe.ram_budget = need;
        Session session(model, probe);
        const uint64_t with_session = rss_bytes();
        const uint64_t grown = with_session > after_dense ? with_session - after_dense : 0;
        s.session = grown > probe.ram_budget ? grown - probe.ram_budget : 0;
    }
    const uint64_t taken = s.code + s.dense + s.session + s.margin;
    if (limit.bytes < taken + need) refuse(s.session, "measured");
    const int64_t pairs = static_cast<int64_t>(model.manifest.entries.size());
    s.slots = std::min<int64_t>(static_cast<int64_t>((limit.bytes - taken) / slot), pairs);
    if (options.mode == MissMode::resident && s.slots < pairs) {
        fail("resident mode holds every expert ({:.1f} MiB), but the memory limit of {:.1f} MiB ({}) leaves {:.1f} MiB for them: "
             "use exact or soft",
             mib(slot * static_cast<uint64_t>(pairs)), mib(limit.bytes), limit.source, mib(limit.bytes - taken));
    }
    s.experts = static_cast<uint64_t>(s.slots) * slot;
    return s;
}

std::string memory_split_describe(const MemorySplit& s) {
    return fmt::format("memory limit {:.1f} MiB ({}) = code {:.1f} + dense weights {:.1f} + session {:.1f} + margin {:.1f} + "
                       "experts {:.1f} MiB ({} slots) + {:.1f} MiB unused",
                       mib(s.limit.bytes), s.limit.source, mib(s.code), mib(s.dense), mib(s.session), mib(s.margin), mib(s.experts),
                       s.slots, mib(s.limit.bytes - s.code - s.dense - s.session - s.margin - s.experts));
}

}  // namespace chronos::rt
