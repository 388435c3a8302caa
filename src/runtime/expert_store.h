// expert_store.h: the RAM tier of routed experts. The unit of residency is one (layer, expert)
// pair ("pair id" = layer * n_experts + expert). A fixed pool of 4096-aligned slots, allocated
// once from the byte budget, holds the resident pairs; reads come from the cluster packs through
// the IoEngine, whole runs of adjacent experts as one sequential read.
//
// Readiness is per pair: a layer waits only for the experts it needs. Which ready, unpinned slot
// to give up is the replacement policy's choice (residency.h), not the store's: the store is the
// mechanism (slots, reads, checks). Every read is checked: an IO error or a short read throws
// chronos::Error naming the pack, never hands out garbage weights; a pair's bytes are checked
// against their checksum the first time they arrive (a mismatch throws the same way). Packs
// are immutable while open (`chronos pack` writes a new generation and renames; the store's
// descriptors keep the files it opened), so a pair's later reads return the bytes already
// checked: hashing 197 KB again on every arrival cost `small`'s soft decode at 25% about 45 us
// of its 550 us per token (docs/experiments.md).
//
//     chronos::rt::Residency policy(layers, experts, chronos::rt::Residency::Kind::chronos, 0.5f);
//     chronos::rt::ExpertStore store(manifest, ckpt_dir, budget_bytes, 2, {}, &policy);
//     int32_t want[2] = {3, 9}; float score[2] = {0.9f, 0.7f};
//     store.prefetch(want, score, 2);            // async
//     store.fetch_wait(3);                       // blocks until pair 3 is resident
//     const uint8_t* w = store.data(3);          // gate | up | down, stored dtype
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/pack.h"
#include "runtime/io_engine.h"
#include "runtime/residency.h"

namespace chronos::rt {

// A budget that holds every expert (the store allocates at most one slot per pair).
constexpr uint64_t kBudgetAll = UINT64_MAX;

struct StoreCounters {
    uint64_t reads = 0;        // read calls completed (one may carry several experts)
    uint64_t bytes_read = 0;   // bytes the read calls returned
    uint64_t experts_read = 0; // experts that arrived
    uint64_t evictions = 0;
    uint64_t prefetches_dropped = 0;  // prefetch requests refused (no slot with a lower score)
    uint64_t evicted_unused = 0;      // experts read and evicted without ever being used
    uint64_t experts_verified = 0;    // arrivals whose bytes were hashed (each pair's first)
};

class ExpertStore {
public:
    // budget_bytes: RAM for expert slots; throws if it cannot hold `min_slots` experts. policy
    // chooses what to evict (it may be null for a store that never evicts: a budget for all).
    ExpertStore(const PackManifest& manifest, const std::string& dir, uint64_t budget_bytes, int64_t min_slots,
                const IoOptions& io, Residency* policy = nullptr);
    ~ExpertStore();
    ExpertStore(const ExpertStore&) = delete;
    ExpertStore& operator=(const ExpertStore&) = delete;

    int64_t pairs() const { return static_cast<int64_t>(slot_of_.size()); }
    int64_t slot_count() const { return static_cast<int64_t>(slots_.size()); }
    uint64_t slot_bytes() const { return slot_bytes_; }
    uint64_t allocated_bytes() const { return pool_bytes_; }  // the pool as allocated
    uint64_t expert_bytes() const { return expert_bytes_; }   // one expert in its stored dtype
    uint64_t resident_bytes() const;                          // ready slots x expert bytes
    const PackManifest& manifest() const { return manifest_; }

    bool ready(int32_t pair) const;
    bool loading(int32_t pair) const;
    // A pair whose slot was filled by prefetch() (not by a blocking fetch) and not used since:
    // the reads pipeline slack is measured on.
    bool unused_prefetch(int32_t pair) const;
    // When a ready pair's read completed, in seconds of the steady clock.
    double ready_s(int32_t pair) const;
    // Bytes of a ready pair (gate [F, H] | up [F, H] | down [H, F], stored dtype).
    const uint8_t* data(int32_t pair) const;

    // Queues reads for the pairs that are neither ready nor loading, highest score first (each
    // raises its policy score to at least this). A pair gets a free slot or evicts a ready,
    // unpinned slot the policy gives up for it (one scoring lower); otherwise it is dropped.
    // Never blocks. Returns the number of pairs queued.
    int prefetch(const int32_t* pair, const float* score, int n);
    // Blocks until the pair is ready, queueing it if needed (the policy's victim, whatever its
    // score). Returns the seconds spent waiting.
    double fetch_wait(int32_t pair);
    // Queues reads for pairs a layer needs now (exact mode issues its misses together, so they
    // overlap each other): each takes a free slot or the policy's victim among ready, unpinned
    // slots scoring below `below`. Never blocks: stops at the first pair no slot is left for
    // (fetch_wait reads it later, taking any victim). Returns the pairs queued.
    int fetch_async(const int32_t* pair, int n, float below);
    // Collects finished reads without blocking.
    void poll();
    // Reads every pair (needs a budget that holds them all).
    void load_all();
    // Reads pairs 0 .. n-1 (at most as many as there are slots) and waits for them.
    void preload(int64_t n);

    // The layer computed with this pair (a read that is used is not counted as evicted unused).
    void mark_used(int32_t pair);
    void pin(int32_t pair);
    void unpin(int32_t pair);

    const StoreCounters& counters() const { return counters_; }
    IoEngine& io() { return *io_; }
    const IoEngine& io() const { return *io_; }

private:
    enum class SlotState : uint8_t { free, loading, ready };
    struct Slot {
        uint8_t* data = nullptr;
        int32_t pair = -1;
        SlotState state = SlotState::free;
        int32_t pins = 0;
        bool used = false;        // computed with since it was read
        bool prefetched = false;  // read queued by prefetch()
        double ready_s = 0;       // steady-clock seconds at which the read completed
    };
    static constexpr int kMaxRun = 16;  // experts per coalesced read
    struct Op {
        bool used = false;
        int n = 0;
        int32_t file = 0;
        uint64_t offset = 0, needed = 0;
        int32_t pairs[kMaxRun];
        iovec iov[kMaxRun];
    };

    static constexpr int kReapBatch = 16;  // completions collected per call
    int32_t take_slot(float below_score);  // a free slot, or the policy's victim scoring below; -1 if none
    void assign(int32_t slot, int32_t pair, bool prefetched);  // the slot starts loading the pair; queued_ gets it
    int reap(bool wait);                   // completes the reads that finished (at least one if wait); how many
    void submit_pairs(std::vector<int32_t>& queued);         // coalesce and submit
    void complete(const IoCompletion& c);
    int32_t free_op();

    PackManifest manifest_;
    std::string dir_;
    uint64_t expert_bytes_ = 0, slot_bytes_ = 0, pool_bytes_ = 0;
    uint8_t* pool_ = nullptr;
    std::vector<Slot> slots_;
    std::vector<int32_t> slot_of_;  // per pair, -1 when not resident
    std::vector<uint8_t> verified_; // per pair, 1 once its bytes matched the manifest's checksum
    Residency* policy_ = nullptr;
    std::vector<int32_t> candidates_;  // scratch for take_slot: evictable pairs
    std::vector<Op> ops_;
    std::vector<int32_t> queued_;   // scratch for prefetch
    std::vector<int> order_;        // scratch for prefetch
    std::unique_ptr<IoEngine> io_;
    StoreCounters counters_;
};

}  // namespace chronos::rt
