// alignment_losses.cpp: SFT, DPO, ORPO and the router KL anchor (alignment_losses.h).
#include "train/alignment_losses.h"

namespace chronos {

torch::Tensor sequence_logprob(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask) {
    torch::Tensor logp = torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);  // [B, T]
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
