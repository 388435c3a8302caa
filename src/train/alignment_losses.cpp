// alignment_losses.cpp: SFT, DPO, ORPO, distillation, GRPO and the router KL anchor (alignment_losses.h).
#include "train/alignment_losses.h"

namespace chronos {

torch::Tensor token_logprob(const torch::Tensor& logits, const torch::Tensor& targets) {
    return torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor sequence_logprob(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask) {
    torch::Tensor logp = token_logprob(logits, targets);  // [B, T]
    return (logp * mask.to(logp.scalar_type())).sum(-1);
}

torch::Tensor mask_count(const torch::Tensor& mask) { return mask.to(torch::kFloat64).sum(-1); }

torch::Tensor loss_sft(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask) {
    const double n = mask.to(torch::kFloat64).sum().item<double>();
    if (n == 0) return torch::zeros({}, logits.options());
    return -sequence_logprob(logits, targets, mask).sum() / n;
}

PreferenceLoss loss_dpo(const torch::Tensor& policy_c, const torch::Tensor& policy_r, const torch::Tensor& ref_c,
                        const torch::Tensor& ref_r, double beta) {
    torch::Tensor z = beta * ((policy_c - ref_c.detach()) - (policy_r - ref_r.detach()));  // [B]
    PreferenceLoss r;
    r.loss = -torch::nn::functional::logsigmoid(z).mean();
    r.accuracy = (z.detach() > 0).to(torch::kFloat64).mean();
    r.margin = z.detach().to(torch::kFloat64).mean();
    return r;
}

PreferenceLoss loss_orpo(const torch::Tensor& mean_c, const torch::Tensor& mean_r, const torch::Tensor& nll_c, double lambda) {
    // log odds(p) = log p - log(1 - p) with log p = m: log(1 - e^m) = log(-expm1(m)), exact near m = 0.
    auto log_odds = [](const torch::Tensor& m) { return m - torch::log(-torch::expm1(m)); };
    torch::Tensor z = log_odds(mean_c) - log_odds(mean_r);
    PreferenceLoss r;
    r.loss = nll_c - lambda * torch::nn::functional::logsigmoid(z).mean();
    r.accuracy = (z.detach() > 0).to(torch::kFloat64).mean();
    r.margin = z.detach().to(torch::kFloat64).mean();
    return r;
}

torch::Tensor loss_distill(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& targets, const torch::Tensor& valid,
                           double alpha, double temperature) {
    torch::Tensor v = valid.to(student.scalar_type());
    const double n = v.sum().item<double>();
    if (n == 0) return torch::zeros({}, student.options());
    torch::Tensor log_q = torch::log_softmax(student / temperature, -1);
    torch::Tensor log_p = torch::log_softmax(teacher.detach() / temperature, -1);
    torch::Tensor kl = (log_p.exp() * (log_p - log_q)).sum(-1);                                          // [B, T]
    torch::Tensor nll = -torch::log_softmax(student, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);  // [B, T]
    return (alpha * temperature * temperature * (kl * v).sum() + (1 - alpha) * (nll * v).sum()) / n;
}

torch::Tensor grpo_advantages(const torch::Tensor& rewards, double eps) {
    TORCH_CHECK(rewards.dim() == 2, "rewards [groups, completions per group]");
    torch::Tensor mean = rewards.mean(1, true);
    torch::Tensor std = (rewards - mean).pow(2).mean(1, true).sqrt();
    return (rewards - mean) / (std + eps);
}

GrpoLoss loss_grpo(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                   const torch::Tensor& advantages, double clip_eps, double beta) {
    torch::Tensor m = mask.to(logp.scalar_type());                         // [N, T]
    torch::Tensor count = m.sum(-1);                                       // [N]
    // Differences zeroed where nothing counts: a prompt or pad position far off the sampling
    // policy could overflow exp() to inf, and inf * 0 would make the loss NaN.
    torch::Tensor ratio = torch::exp((logp - old_logp.detach()) * m);      // [N, T]
    torch::Tensor a = advantages.detach().to(logp.scalar_type()).unsqueeze(1);
    torch::Tensor surrogate = torch::min(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a);
    torch::Tensor per_token = -surrogate;
    torch::Tensor k3 = torch::zeros_like(logp);
    if (beta > 0 || ref_logp.defined()) {
        TORCH_CHECK(ref_logp.defined(), "GRPO's KL term needs the reference's log-probs");
        torch::Tensor d = (ref_logp.detach() - logp) * m;  // log(pi_ref / pi) on the counted tokens
        k3 = torch::exp(d) - d - 1;
        if (beta > 0) per_token = per_token + beta * k3;
    }
    torch::Tensor counted = count > 0;
    torch::Tensor per_seq = (per_token * m).sum(-1) / count.clamp_min(1);  // [N]
    const double n = counted.sum().item<double>();
    GrpoLoss r;
    const double tokens = m.sum().item<double>();
    if (n == 0) {
        r.loss = (logp * 0).sum();
        r.kl = torch::zeros({}, torch::kFloat64);
        r.clip_fraction = torch::zeros({}, torch::kFloat64);
        return r;
    }
    r.loss = per_seq.sum() / n;
    torch::NoGradGuard ng;
    r.kl = ((k3 * m).sum() / tokens).to(torch::kFloat64);
    torch::Tensor clipped = ((ratio < 1 - clip_eps) | (ratio > 1 + clip_eps)).to(logp.scalar_type());
    r.clip_fraction = ((clipped * m).sum() / tokens).to(torch::kFloat64);
    return r;
}

torch::Tensor loss_router_kl(const std::vector<torch::Tensor>& ref_probs, const std::vector<torch::Tensor>& probs, const torch::Tensor& valid) {
    TORCH_CHECK(ref_probs.size() == probs.size() && !probs.empty(), "one router distribution per layer for both models");
    torch::Tensor v = valid.to(probs[0].scalar_type());  // [B, T]
    const double n = v.sum().item<double>();
    if (n == 0) return torch::zeros({}, probs[0].options());
    // Floor at the smallest normal of the type: a softmax that underflowed to 0 would give -inf.
    const double tiny = probs[0].scalar_type() == torch::kFloat64 ? 1e-300 : 1e-30;
    torch::Tensor total = torch::zeros({}, probs[0].options());
    for (size_t l = 0; l < probs.size(); ++l) {
        const torch::Tensor ref = ref_probs[l].detach();
        torch::Tensor kl = (ref * (torch::log(ref.clamp_min(tiny)) - torch::log(probs[l].clamp_min(tiny)))).sum(-1);  // [B, T]
        total = total + (kl * v).sum() / n;
    }
    return total / static_cast<double>(probs.size());
}

}  // namespace chronos
