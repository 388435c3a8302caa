// alignment_losses.h: the objectives of the alignment stages and the router KL anchor, as plain
// functions of tensors (their gradients are checked by finite differences in
// tests/test_alignment.cpp). Shapes: B sequences (or pairs), T positions, V vocabulary,
// E routed experts.
//
//   SFT      mean NLL over the response tokens (mask) of the batch
//   DPO      Rafailov et al. 2023: -log sigmoid(beta ((pi_c - pi_r) - (ref_c - ref_r))), mean over
//            pairs, pi and ref the summed response log-probabilities under the policy and the
//            frozen reference
//   ORPO     Hong et al. 2024: NLL(chosen) + lambda * -log sigmoid(log odds(c) - log odds(r)),
//            log odds(y) = log p - log(1 - p), p = exp(mean response token log-prob)
//   distill  alpha T^2 KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) CE, means
//            over the valid tokens (Hinton et al. 2015; T^2 keeps the soft term's gradient scale
//            independent of T)
//   GRPO     Shao et al. 2024: per completion i of a group, advantage A_i = (r_i - mean r) / (std r + eps);
//            per token -min(rho A, clip(rho, 1 - eps, 1 + eps) A) + beta k3, rho = pi / pi_old
//            (pi_old: the sampling policy), k3 = pi_ref / pi - log(pi_ref / pi) - 1 (Schulman's
//            unbiased, non-negative KL estimator); mean over each completion's tokens, then over
//            the completions
//   anchor   KL(p_ref || p) of the router distributions per valid token and layer, mean over
//            both: the router may not drift from the stage's starting model without cost
#pragma once

#include <torch/torch.h>

#include <vector>

namespace chronos {

// logits [B, T, V], targets [B, T] int64, mask [B, T] (1 where the target counts) ->
// per-sequence sums of log p(target) [B], and the number of counted tokens per sequence [B].
torch::Tensor sequence_logprob(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask);
torch::Tensor mask_count(const torch::Tensor& mask);

// SFT: sum of -log p over the masked tokens / their number (0 when none).
torch::Tensor loss_sft(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask);

struct PreferenceLoss {
    torch::Tensor loss;      // scalar
    torch::Tensor accuracy;  // share of pairs whose chosen scores above the rejected (no gradient)
    torch::Tensor margin;    // mean of the compared scores' difference (no gradient)
};

// policy_c, policy_r, ref_c, ref_r [B]: summed response log-probs. The reference ones carry no
// gradient. The score compared is beta ((pi_c - ref_c) - (pi_r - ref_r)) (the implicit reward).
PreferenceLoss loss_dpo(const torch::Tensor& policy_c, const torch::Tensor& policy_r, const torch::Tensor& ref_c,
                        const torch::Tensor& ref_r, double beta);

// mean_c, mean_r [B]: mean response token log-probs (length-normalised) of chosen and rejected;
// nll_c: the NLL term on the chosen responses (scalar). log odds are computed stably as
// m - log(-expm1(m)) (m < 0).
PreferenceLoss loss_orpo(const torch::Tensor& mean_c, const torch::Tensor& mean_r, const torch::Tensor& nll_c, double lambda);

// student, teacher [B, T, V] logits (the teacher's without gradient), targets [B, T], valid [B, T].
torch::Tensor loss_distill(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& targets, const torch::Tensor& valid,
                           double alpha, double temperature);

// logits [B, T, V], targets [B, T] int64 -> log p(target) [B, T].
torch::Tensor token_logprob(const torch::Tensor& logits, const torch::Tensor& targets);

// rewards [P, G] (P groups of G completions of one prompt) -> advantages [P, G]: each group
// centred on its mean and divided by its standard deviation (population, as the group is all
// there is) + eps. A group whose rewards are all equal gets advantages 0: nothing to learn.
torch::Tensor grpo_advantages(const torch::Tensor& rewards, double eps = 1e-4);

struct GrpoLoss {
    torch::Tensor loss;           // scalar
    torch::Tensor kl;             // mean k3 over the counted tokens (no gradient)
    torch::Tensor clip_fraction;  // share of counted tokens whose ratio lies outside [1 - eps, 1 + eps] (no gradient)
};
// logp, old_logp, ref_logp, mask [N, T]; advantages [N]. old_logp and ref_logp carry no
// gradient; ref_logp may be undefined when beta is 0. Completions with no counted token add 0.
GrpoLoss loss_grpo(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                   const torch::Tensor& advantages, double clip_eps, double beta);

// ref_probs, probs: L x [B, T, E] router distributions (ref without gradient); valid [B, T].
// Mean over layers and valid tokens of sum_e p_ref (log p_ref - log p). 0 when nothing is valid.
torch::Tensor loss_router_kl(const std::vector<torch::Tensor>& ref_probs, const std::vector<torch::Tensor>& probs,
                             const torch::Tensor& valid);

}  // namespace chronos
