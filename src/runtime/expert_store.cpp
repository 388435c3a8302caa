// expert_store.cpp: see expert_store.h.
#include "runtime/expert_store.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace chronos::rt {


ExpertStore::ExpertStore(const PackManifest& manifest, const std::string& dir, uint64_t budget_bytes, int64_t min_slots,
                         const IoOptions& io, Residency* policy)
    : manifest_(manifest), dir_(dir), policy_(policy) {
    CHRONOS_ASSERT(!manifest_.entries.empty(), "empty pack manifest");
    expert_bytes_ = manifest_.entries[0].length;
    slot_bytes_ = pack_slot_bytes(manifest_);
    const int64_t n_pairs = static_cast<int64_t>(manifest_.entries.size());
    const int64_t n_slots = std::min<int64_t>(n_pairs, static_cast<int64_t>(budget_bytes / slot_bytes_));
    if (n_slots < min_slots) {
        fail("RAM budget of {} bytes holds {} experts of {} bytes; at least {} are needed (one layer's top-k)", budget_bytes,
             n_slots, slot_bytes_, min_slots);
    }
    pool_bytes_ = static_cast<uint64_t>(n_slots) * slot_bytes_;
    pool_ = static_cast<uint8_t*>(std::aligned_alloc(kPackAlignment, pool_bytes_));
    if (pool_ == nullptr) fail("cannot allocate {} bytes for the expert pool", pool_bytes_);
    // Touch the pool so its pages are really ours: the allocation is the resident figure.
    std::memset(pool_, 0, pool_bytes_);
    slots_.resize(static_cast<size_t>(n_slots));
    for (int64_t s = 0; s < n_slots; ++s) slots_[static_cast<size_t>(s)].data = pool_ + static_cast<uint64_t>(s) * slot_bytes_;
    slot_of_.assign(static_cast<size_t>(n_pairs), -1);
    verified_.assign(static_cast<size_t>(n_pairs), 0);
    candidates_.reserve(static_cast<size_t>(n_slots));
    queued_.reserve(static_cast<size_t>(n_pairs));
    order_.reserve(static_cast<size_t>(4 * n_pairs));
    std::vector<std::string> paths;
    for (const std::string& f : manifest_.files) paths.push_back(dir + "/" + f);
    io_ = std::make_unique<IoEngine>(paths, io);
    ops_.resize(io.queue_depth);
}

ExpertStore::~ExpertStore() {
    io_.reset();  // drains reads in flight before the pool goes
    std::free(pool_);
}

uint64_t ExpertStore::resident_bytes() const {
    uint64_t n = 0;
    for (const Slot& s : slots_) n += s.state == SlotState::ready ? expert_bytes_ : 0;
    return n;
}

bool ExpertStore::ready(int32_t pair) const {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    return s >= 0 && slots_[static_cast<size_t>(s)].state == SlotState::ready;
}

bool ExpertStore::loading(int32_t pair) const {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    return s >= 0 && slots_[static_cast<size_t>(s)].state == SlotState::loading;
}

bool ExpertStore::unused_prefetch(int32_t pair) const {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    return s >= 0 && slots_[static_cast<size_t>(s)].prefetched && !slots_[static_cast<size_t>(s)].used;
}

double ExpertStore::ready_s(int32_t pair) const {
    CHRONOS_ASSERT(ready(pair), "ready time asked for a pair that is not resident");
    return slots_[static_cast<size_t>(slot_of_[static_cast<size_t>(pair)])].ready_s;
}

const uint8_t* ExpertStore::data(int32_t pair) const {
    CHRONOS_ASSERT(ready(pair), "expert data asked for a pair that is not resident");
    return slots_[static_cast<size_t>(slot_of_[static_cast<size_t>(pair)])].data;
}

void ExpertStore::mark_used(int32_t pair) {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    if (s >= 0) slots_[static_cast<size_t>(s)].used = true;
}

void ExpertStore::pin(int32_t pair) {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    CHRONOS_ASSERT(s >= 0, "pin of a pair without a slot");
    ++slots_[static_cast<size_t>(s)].pins;
}

void ExpertStore::unpin(int32_t pair) {
    const int32_t s = slot_of_[static_cast<size_t>(pair)];
    CHRONOS_ASSERT(s >= 0 && slots_[static_cast<size_t>(s)].pins > 0, "unpin without pin");
    --slots_[static_cast<size_t>(s)].pins;
}

int32_t ExpertStore::take_slot(float below_score) {
    candidates_.clear();
    for (size_t i = 0; i < slots_.size(); ++i) {
        const Slot& s = slots_[i];
        if (s.state == SlotState::free) return static_cast<int32_t>(i);
        if (s.state == SlotState::ready && s.pins == 0) candidates_.push_back(s.pair);
    }
    if (candidates_.empty()) return -1;
    CHRONOS_ASSERT(policy_ != nullptr, "an expert store without a replacement policy had to evict");
    const int v = policy_->victim(candidates_.data(), static_cast<int>(candidates_.size()), below_score);
    if (v < 0) return -1;
    const int32_t best = slot_of_[static_cast<size_t>(candidates_[static_cast<size_t>(v)])];
    Slot& s = slots_[static_cast<size_t>(best)];
    slot_of_[static_cast<size_t>(s.pair)] = -1;
    s.pair = -1;
    s.state = SlotState::free;
    ++counters_.evictions;
    counters_.evicted_unused += s.used ? 0 : 1;
    s.used = false;
    return best;
}

int32_t ExpertStore::free_op() {
    for (size_t i = 0; i < ops_.size(); ++i) {
        if (!ops_[i].used) return static_cast<int32_t>(i);
    }
    return -1;
}

void ExpertStore::submit_pairs(std::vector<int32_t>& queued) {
    // Sort by (file, offset) and cut into runs of experts adjacent in the file: each run is one
    // sequential read into several slots.
    std::sort(queued.begin(), queued.end(), [&](int32_t a, int32_t b) {
        const PackEntry& x = manifest_.entries[static_cast<size_t>(a)];
        const PackEntry& y = manifest_.entries[static_cast<size_t>(b)];
        return x.file != y.file ? x.file < y.file : x.offset < y.offset;
    });
    size_t i = 0;
    while (i < queued.size()) {
        int32_t o = free_op();
        while (o < 0) {  // every op in flight: collect one
            reap(/*wait=*/true);
            o = free_op();
        }
        Op& op = ops_[static_cast<size_t>(o)];
        const PackEntry& first = manifest_.entries[static_cast<size_t>(queued[i])];
        op.used = true;
        op.n = 0;
        op.file = first.file;
        op.offset = first.offset;
        uint64_t end = first.offset;
        while (i < queued.size() && op.n < kMaxRun) {
            const PackEntry& e = manifest_.entries[static_cast<size_t>(queued[i])];
            if (e.file != op.file || e.offset != end) break;
            const int32_t slot = slot_of_[static_cast<size_t>(queued[i])];
            op.pairs[op.n] = queued[i];
            op.iov[op.n] = {slots_[static_cast<size_t>(slot)].data, slot_bytes_};
            ++op.n;
            op.needed = e.offset + e.length - op.offset;
            end = e.offset + slot_bytes_;
            ++i;
        }
        io_->submit(static_cast<uint64_t>(o), op.file, op.offset, op.iov, op.n);
    }
    io_->flush();  // one notification of the disk for all of them
    queued.clear();
}

void ExpertStore::complete(const IoCompletion& c) {
    Op& op = ops_[static_cast<size_t>(c.tag)];
    CHRONOS_ASSERT(op.used, "completion for an idle read");
    // The path is only spelled out for an error: the decode loop allocates nothing.
    auto path = [&] { return dir_ + "/" + manifest_.files[static_cast<size_t>(op.file)]; };
    if (c.result < 0) {
        fail("reading {} bytes at offset {} of {} failed: {}", op.needed, op.offset, path(), std::strerror(static_cast<int>(-c.result)));
    }
    // The request is rounded up to whole slots; only the bytes of the experts must arrive (the
    // file may end before the last slot does).
    if (static_cast<uint64_t>(c.result) < op.needed) {
        fail("short read of {}: {} of {} bytes at offset {} (pack truncated?)", path(), c.result, op.needed, op.offset);
    }
    counters_.reads++;
    counters_.bytes_read += static_cast<uint64_t>(c.result);
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    for (int j = 0; j < op.n; ++j) {
        const int32_t pair = op.pairs[j];
        const PackEntry& e = manifest_.entries[static_cast<size_t>(pair)];
        Slot& s = slots_[static_cast<size_t>(slot_of_[static_cast<size_t>(pair)])];
        if (!verified_[static_cast<size_t>(pair)]) {
            if (pack_checksum(s.data, e.length) != e.checksum) {
                fail("checksum mismatch for layer {} expert {} in {} (offset {}): the pack is corrupt; rebuild it with `chronos pack`",
                     e.layer, e.expert, path(), e.offset);
            }
            verified_[static_cast<size_t>(pair)] = 1;
            counters_.experts_verified++;
        }
        s.state = SlotState::ready;
        s.ready_s = now;
        counters_.experts_read++;
    }
    op.used = false;
}

int ExpertStore::reap(bool wait) {
    IoCompletion c[kReapBatch];
    const int n = io_->reap(c, kReapBatch, wait);
    for (int j = 0; j < n; ++j) complete(c[j]);
    return n;
}

void ExpertStore::assign(int32_t slot, int32_t pair, bool prefetched) {
    Slot& s = slots_[static_cast<size_t>(slot)];
    s.pair = pair;
    s.state = SlotState::loading;
    s.prefetched = prefetched;
    slot_of_[static_cast<size_t>(pair)] = slot;
    queued_.push_back(pair);
}

void ExpertStore::poll() {
    while (reap(/*wait=*/false) == kReapBatch) {
    }
}

int ExpertStore::prefetch(const int32_t* pair, const float* score, int n) {
    queued_.clear();
    // Highest score first, so the best predictions win the slots.
    order_.resize(static_cast<size_t>(n));  // capacity reserved for every pair: no allocation
    for (int i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = i;
    std::sort(order_.begin(), order_.end(), [&](int a, int b) { return score[a] > score[b]; });
    const int* order = order_.data();
    const int m = n;
    for (int i = 0; i < m; ++i) {
        const int32_t p = pair[order[i]];
        if (slot_of_[static_cast<size_t>(p)] >= 0) continue;  // resident, loading, or queued just now
        float keep = score[order[i]];
        if (policy_ != nullptr) {
            policy_->raise_score(p, keep);
            keep = policy_->score(p);
        }
        const int32_t s = take_slot(keep);
        if (s < 0) {
            counters_.prefetches_dropped++;
            continue;
        }
        assign(s, p, /*prefetched=*/true);
    }
    const int queued = static_cast<int>(queued_.size());
    if (queued > 0) submit_pairs(queued_);
    return queued;
}

int ExpertStore::fetch_async(const int32_t* pair, int n, float below) {
    queued_.clear();
    for (int i = 0; i < n; ++i) {
        if (slot_of_[static_cast<size_t>(pair[i])] >= 0) continue;  // resident, loading, or queued just now
        const int32_t s = take_slot(below);
        if (s < 0) break;
        assign(s, pair[i], /*prefetched=*/false);
    }
    const int queued = static_cast<int>(queued_.size());
    if (queued > 0) submit_pairs(queued_);
    return queued;
}

double ExpertStore::fetch_wait(int32_t pair) {
    if (ready(pair)) return 0.0;
    const auto t0 = std::chrono::steady_clock::now();
    constexpr float kAny = std::numeric_limits<float>::infinity();  // a needed pair takes any victim
    if (slot_of_[static_cast<size_t>(pair)] < 0) {
        int32_t s = take_slot(kAny);
        while (s < 0) {  // every slot is loading or pinned: let a read finish
            CHRONOS_ASSERT(io_->in_flight() > 0, "every expert slot is pinned: the budget check should have prevented this");
            reap(/*wait=*/true);
            s = take_slot(kAny);
        }
        queued_.clear();
        assign(s, pair, /*prefetched=*/false);
        submit_pairs(queued_);
    }
    while (!ready(pair)) {
        const int n = reap(/*wait=*/true);
        CHRONOS_ASSERT(n > 0 || io_->in_flight() > 0, "waiting for a read that was never submitted");
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void ExpertStore::load_all() {
    if (slot_count() < pairs()) fail("resident mode needs a budget that holds all {} experts", pairs());
    preload(pairs());
}

void ExpertStore::preload(int64_t n) {
    n = std::min(n, slot_count());
    for (int32_t p = 0; p < static_cast<int32_t>(n); ++p) {
        if (slot_of_[static_cast<size_t>(p)] >= 0) continue;
        assign(take_slot(std::numeric_limits<float>::infinity()), p, /*prefetched=*/false);
    }
    submit_pairs(queued_);
    while (io_->in_flight() > 0) reap(/*wait=*/true);
}

}  // namespace chronos::rt
