// adamw.cpp: the update (Loshchilov & Hutter) and its state file.
#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace chronos {

double lr_at(const AdamWOptions& o, int64_t step) {
    if (o.warmup_steps > 0 && step < o.warmup_steps) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
    const int64_t decay_steps = std::max<int64_t>(1, o.total_steps - o.warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(step - o.warmup_steps) / static_cast<double>(decay_steps));
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosine);
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const AdamWOptions& options) : o_(options) {
    for (const auto& [name, p] : params) {
        slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), p.dim() >= 2});
    }
}

double AdamW::step() {
    torch::NoGradGuard no_grad;
    const double lr = lr_at(o_, step_);
    ++step_;
    const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
    const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(step_));
    for (Slot& s : slots_) {
        const torch::Tensor& g = s.param.grad();
        if (!g.defined()) continue;
        s.m.mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
        s.v.mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
        if (s.decay && o_.weight_decay > 0) s.param.mul_(1.0 - lr * o_.weight_decay);
        torch::Tensor denom = (s.v / bc2).sqrt_().add_(o_.eps);
        s.param.addcdiv_(s.m, denom, -lr / bc1);
    }
    return lr;
}

void AdamW::save(const std::string& path) const {
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;  // contiguous copies alive until write()
    for (const Slot& s : slots_) {
        for (const auto& [prefix, t] : {std::pair{"exp_avg.", s.m}, std::pair{"exp_avg_sq.", s.v}}) {
            keep.push_back(t.contiguous());
            std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
            w.add(prefix + s.name, DType::F32, shape, keep.back().data_ptr<float>(), static_cast<uint64_t>(t.numel()) * 4);
        }
    }
    w.set_metadata("step", std::to_string(step_));
    w.write(path);
}

void AdamW::load(const std::string& path) {
    SafetensorsFile f(path);
    auto it = f.metadata().find("step");
    if (it == f.metadata().end()) fail("{}: no step in the optimizer state", path);
    for (Slot& s : slots_) {
        for (auto [prefix, t] : {std::pair{"exp_avg.", s.m}, std::pair{"exp_avg_sq.", s.v}}) {
            TensorView view = f.tensor(prefix + s.name);
            if (view.info->dtype != DType::F32 || view.info->numel() != t.numel()) {
                fail("{}: optimizer state of {} does not match the model", path, s.name);
            }
            std::memcpy(t.data_ptr<float>(), view.data, view.info->nbytes());
        }
    }
    step_ = std::stoll(it->second);
}

}  // namespace chronos
