// distributed.cpp: process group set-up, the gradient all-reduce, and the local launcher.
#include "train/distributed.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <chrono>
#include <filesystem>

#include "core/error.h"

extern char** environ;

namespace chronos {

struct DistributedGroup::Impl {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

DistributedGroup::DistributedGroup(int rank, int world, const std::string& rendezvous) : rank_(rank), world_(world) {
    if (world <= 1) return;
    if (rank < 0 || rank >= world) fail("rank {} is outside world size {}", rank, world);
    impl_ = std::make_unique<Impl>();
    std::string host = "127.0.0.1";
    if (rendezvous.rfind("file:", 0) == 0) {
        impl_->store = c10::make_intrusive<c10d::FileStore>(rendezvous.substr(5), world);
    } else if (rendezvous.rfind("tcp:", 0) == 0) {
        std::string hp = rendezvous.substr(4);
        size_t colon = hp.rfind(':');
        if (colon == std::string::npos) fail("rendezvous \"{}\" must be tcp:HOST:PORT", rendezvous);
        host = hp.substr(0, colon);
        int port = std::stoi(hp.substr(colon + 1));
        c10d::TCPStoreOptions opts;
        opts.port = static_cast<uint16_t>(port);
        opts.isServer = rank == 0;
        opts.numWorkers = world;
        opts.waitWorkers = true;
        opts.timeout = std::chrono::milliseconds(300000);
        impl_->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
    } else {
        fail("rendezvous \"{}\" must be file:PATH or tcp:HOST:PORT", rendezvous);
    }
    auto options = c10d::ProcessGroupGloo::Options::create();
    // On one machine bind to loopback; across machines let Gloo pick the interface that
    // reaches the hostname.
    const bool local = host == "127.0.0.1" || host == "localhost" || rendezvous.rfind("file:", 0) == 0;
    options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
    options->timeout = std::chrono::milliseconds(300000);
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, rank, world, options);
}

DistributedGroup::~DistributedGroup() = default;

void DistributedGroup::allreduce_mean(const std::vector<torch::Tensor>& tensors) {
    if (world_ <= 1) return;
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : tensors) flat_parts.push_back(t.reshape({-1}));
    std::vector<torch::Tensor> buffer = {torch::cat(flat_parts)};
    impl_->pg->allreduce(buffer)->wait();
    buffer[0].div_(world_);
    int64_t offset = 0;
    for (const auto& t : tensors) {
        t.copy_(buffer[0].narrow(0, offset, t.numel()).view_as(t));
        offset += t.numel();
    }
}

void DistributedGroup::barrier() {
    if (world_ <= 1) return;
    impl_->pg->barrier()->wait();
}

int distributed_launch(int nproc, int argc, char** argv, int threads_per_worker) {
    namespace fs = std::filesystem;
    const std::string store = (fs::temp_directory_path() / ("chronos-rdzv-" + std::to_string(::getpid()))).string();
    fs::remove(store);
    std::vector<pid_t> pids;
    for (int rank = 0; rank < nproc; ++rank) {
        std::vector<std::string> args;
        for (int i = 0; i < argc; ++i) {
            std::string a = argv[i];
            // The launcher's own options (and the thread count, replaced below) are dropped.
            if (a == "--nproc" || (a == "--threads" && threads_per_worker > 0)) {
                ++i;  // and its value
                continue;
            }
            if (a.rfind("--nproc=", 0) == 0 || (a.rfind("--threads=", 0) == 0 && threads_per_worker > 0)) continue;
            args.push_back(a);
        }
        args.insert(args.end(), {"--rank", std::to_string(rank), "--world-size", std::to_string(nproc),
                                 "--rendezvous", "file:" + store});
        if (threads_per_worker > 0) {
            // Global options go before the subcommand: insert after argv[0].
            args.insert(args.begin() + 1, {"--threads", std::to_string(threads_per_worker)});
        }
        std::vector<char*> cargv;
        for (auto& a : args) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        pid_t pid;
        if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargv.data(), environ) != 0) {
            for (pid_t p : pids) ::kill(p, SIGTERM);
            fail("cannot start worker {}", rank);
        }
        pids.push_back(pid);
    }
    int status_out = 0;
    size_t remaining = pids.size();
    while (remaining > 0) {
        int status = 0;
        pid_t done = ::wait(&status);
        if (done < 0) break;
        --remaining;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && status_out == 0) {
            status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            for (pid_t p : pids) {
                if (p != done) ::kill(p, SIGTERM);
            }
        }
    }
    fs::remove(store);
    return status_out;
}

}  // namespace chronos
