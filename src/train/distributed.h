// distributed.h: data-parallel training with c10d. Gloo on CPU (NCCL would slot in for CUDA
// tensors); rendezvous through a FileStore ("file:PATH", one machine or a shared file system)
// or a TCPStore ("tcp:HOST:PORT", rank 0 listens).
//
//     chronos::DistributedGroup group(rank, world, "tcp:10.0.0.1:29500");
//     group.allreduce_mean(grads);    // every rank ends with the mean
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace chronos {

class DistributedGroup {
public:
    // world == 1 needs no rendezvous and does nothing on allreduce.
    DistributedGroup(int rank, int world, const std::string& rendezvous);
    ~DistributedGroup();
    int rank() const { return rank_; }
    int world() const { return world_; }
    // Averages the tensors over ranks in place (one flat buffer, one collective).
    void allreduce_mean(const std::vector<torch::Tensor>& tensors);
    void barrier();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int rank_, world_;
};

// Launches `nproc` copies of this command as workers (rank i of nproc, file rendezvous),
// forwards their exit status; a failing worker stops the others.
int distributed_launch(int nproc, int argc, char** argv, int threads_per_worker);

}  // namespace chronos
