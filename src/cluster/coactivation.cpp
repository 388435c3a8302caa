// coactivation.cpp: graph construction from traces, Louvain through igraph, and cluster plans.
#include "cluster/coactivation.h"

#include <igraph/igraph.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"

namespace chronos {

CoactivationGraph coactivation_build(const Trace& trace, const CoactivationOptions& o) {
    const TraceShape& s = trace.shape;
    CoactivationGraph g;
    g.nodes = static_cast<int64_t>(s.layers) * s.experts;
    g.node_count.assign(static_cast<size_t>(g.nodes), 0.0);
    std::vector<double> first_use_sum(static_cast<size_t>(g.nodes), 0.0), first_use_n(static_cast<size_t>(g.nodes), 0.0);
    std::map<std::pair<int64_t, int64_t>, double> w;
    auto add = [&](int64_t a, int64_t b, double x) {
        if (a == b) return;
        if (a > b) std::swap(a, b);
        w[{a, b}] += x;
    };
    std::vector<int64_t> active;  // pairs of one token
    for (const TraceSequence& seq : trace.sequences) {
        const size_t T = seq.tokens.size();
        std::vector<std::vector<int64_t>> per_token(T);
        std::vector<int64_t> first(static_cast<size_t>(g.nodes), -1);
        for (size_t t = 0; t < T; ++t) {
            active.clear();
            for (uint32_t l = 0; l < s.layers; ++l) {
                for (uint32_t k = 0; k < s.top_k; ++k) {
                    const int64_t p = static_cast<int64_t>(l) * s.experts + seq.expert(t, l, k, s);
                    active.push_back(p);
                    g.node_count[static_cast<size_t>(p)] += 1;
                    if (first[static_cast<size_t>(p)] < 0) first[static_cast<size_t>(p)] = static_cast<int64_t>(t);
                }
            }
            for (size_t i = 0; i < active.size(); ++i) {
                for (size_t j = i + 1; j < active.size(); ++j) add(active[i], active[j], 1.0);
            }
            per_token[t] = active;
            for (int64_t d = 1; d <= o.window && static_cast<int64_t>(t) - d >= 0; ++d) {
                for (int64_t a : per_token[t - static_cast<size_t>(d)]) {
                    for (int64_t b : active) add(a, b, o.reuse_weight / static_cast<double>(d));
                }
            }
        }
        for (int64_t p = 0; p < g.nodes; ++p) {
            if (first[static_cast<size_t>(p)] >= 0 && T > 0) {
                first_use_sum[static_cast<size_t>(p)] += static_cast<double>(first[static_cast<size_t>(p)]) / static_cast<double>(T);
                first_use_n[static_cast<size_t>(p)] += 1;
            }
        }
    }
    for (const auto& [e, x] : w) {
        g.edge_from.push_back(e.first);
        g.edge_to.push_back(e.second);
        g.edge_weight.push_back(x);
    }
    g.mean_first_use.resize(static_cast<size_t>(g.nodes));
    for (int64_t p = 0; p < g.nodes; ++p) {
        g.mean_first_use[static_cast<size_t>(p)] =
            first_use_n[static_cast<size_t>(p)] > 0 ? first_use_sum[static_cast<size_t>(p)] / first_use_n[static_cast<size_t>(p)] : 1.0;
    }
    return g;
}

namespace {

// Louvain on the sub-graph induced by `nodes`; returns a community id per entry of `nodes`.
std::vector<int64_t> louvain_on(const CoactivationGraph& g, const std::vector<int64_t>& nodes, double resolution) {
    std::map<int64_t, int64_t> local;
    for (size_t i = 0; i < nodes.size(); ++i) local[nodes[i]] = static_cast<int64_t>(i);
    igraph_vector_int_t edges;
    igraph_vector_t weights;
    igraph_vector_int_init(&edges, 0);
    igraph_vector_init(&weights, 0);
    for (size_t e = 0; e < g.edge_from.size(); ++e) {
        auto a = local.find(g.edge_from[e]), b = local.find(g.edge_to[e]);
        if (a == local.end() || b == local.end()) continue;
        igraph_vector_int_push_back(&edges, a->second);
        igraph_vector_int_push_back(&edges, b->second);
        igraph_vector_push_back(&weights, g.edge_weight[e]);
    }
    igraph_t graph;
    igraph_create(&graph, &edges, static_cast<igraph_integer_t>(nodes.size()), IGRAPH_UNDIRECTED);
    igraph_vector_int_t membership;
    igraph_vector_int_init(&membership, 0);
    igraph_error_t rc = igraph_community_multilevel(&graph, &weights, resolution, &membership, nullptr, nullptr);
    std::vector<int64_t> out(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) out[i] = rc == IGRAPH_SUCCESS ? VECTOR(membership)[static_cast<long>(i)] : 0;
    igraph_vector_int_destroy(&membership);
    igraph_destroy(&graph);
    igraph_vector_destroy(&weights);
    igraph_vector_int_destroy(&edges);
    if (rc != IGRAPH_SUCCESS) fail("igraph Louvain failed (error {})", static_cast<int>(rc));
    return out;
}

}  // namespace

std::vector<int64_t> louvain_communities(const CoactivationGraph& g, double resolution, uint64_t seed) {
    // igraph's Louvain visits nodes in random order: seed its RNG for reproducible packs.
    igraph_rng_seed(igraph_rng_default(), static_cast<igraph_uint_t>(seed));
    std::vector<int64_t> all(static_cast<size_t>(g.nodes));
    std::iota(all.begin(), all.end(), 0);
    return louvain_on(g, all, resolution);
}

ClusterPlan cluster_plan_build(const CoactivationGraph& g, const std::vector<int64_t>& membership, int64_t experts,
                               uint64_t bytes_per_pair, uint64_t max_bytes) {
    const auto cap = static_cast<size_t>(std::max<uint64_t>(1, max_bytes / std::max<uint64_t>(1, bytes_per_pair)));
    auto need_order = [&](std::vector<int64_t>& pairs) {
        std::stable_sort(pairs.begin(), pairs.end(), [&](int64_t a, int64_t b) {
            const int64_t la = a / experts, lb = b / experts;
            if (la != lb) return la < lb;
            return g.mean_first_use[static_cast<size_t>(a)] < g.mean_first_use[static_cast<size_t>(b)];
        });
    };
    std::map<int64_t, std::vector<int64_t>> communities;
    for (int64_t p = 0; p < g.nodes; ++p) communities[membership[static_cast<size_t>(p)]].push_back(p);
    ClusterPlan plan;
    std::vector<std::vector<int64_t>> work;
    for (auto& [id, pairs] : communities) work.push_back(pairs);
    // Split oversized communities: Louvain inside them first, then plain chunks in need order.
    for (size_t i = 0; i < work.size(); ++i) {
        std::vector<int64_t> pairs = work[i];
        if (pairs.size() <= cap) {
            need_order(pairs);
            plan.clusters.push_back(pairs);
            continue;
        }
        std::vector<int64_t> sub = louvain_on(g, pairs, 1.0);
        std::map<int64_t, std::vector<int64_t>> parts;
        for (size_t j = 0; j < pairs.size(); ++j) parts[sub[j]].push_back(pairs[j]);
        if (parts.size() > 1) {
            for (auto& [id, part] : parts) work.push_back(part);
            continue;
        }
        need_order(pairs);
        for (size_t s = 0; s < pairs.size(); s += cap) {
            plan.clusters.emplace_back(pairs.begin() + static_cast<long>(s), pairs.begin() + static_cast<long>(std::min(pairs.size(), s + cap)));
        }
    }
    // Deterministic file order: by the first pair of each cluster.
    std::sort(plan.clusters.begin(), plan.clusters.end(), [](const auto& a, const auto& b) { return a.front() < b.front(); });
    return plan;
}

}  // namespace chronos
