// coactivation.h: the co-activation graph over (layer, expert) pairs, and its Louvain
// communities.
//
// Nodes: pair p = layer * E + expert. Edge weights:
//   - same token: every two pairs active in one token (across layers) gain 1;
//   - reuse window: pairs active at tokens t and t' with 0 < t' - t <= window (in tokens,
//     within one sequence) gain reuse_weight / (t' - t).
// Louvain (igraph_community_multilevel) groups pairs that fire together; communities larger
// than a byte cap are split (by Louvain on the sub-graph, then in need order) so that one read
// stays bounded. Inside a cluster, pairs are ordered by when they tend to be needed: layer,
// then mean first-use position within a sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "format/trace.h"
#include "format/pack.h"

namespace chronos {

struct CoactivationGraph {
    int64_t nodes = 0;
    std::vector<int64_t> edge_from, edge_to;  // from < to
    std::vector<double> edge_weight;
    std::vector<double> node_count;      // activations per pair
    std::vector<double> mean_first_use;  // mean relative position of first use in a sequence (0..1)
};

struct CoactivationOptions {
    int64_t window = 4;          // reuse window in tokens
    double reuse_weight = 1.0;
};

CoactivationGraph coactivation_build(const Trace& trace, const CoactivationOptions& options);

// Louvain communities; returns membership per node (pairs never seen are their own cluster
// per layer, so every pair is packed somewhere).
std::vector<int64_t> louvain_communities(const CoactivationGraph& g, double resolution, uint64_t seed);

// Communities -> clusters of at most max_bytes (bytes_per_pair each), ordered within.
ClusterPlan cluster_plan_build(const CoactivationGraph& g, const std::vector<int64_t>& membership, int64_t experts,
                               uint64_t bytes_per_pair, uint64_t max_bytes);

}  // namespace chronos
