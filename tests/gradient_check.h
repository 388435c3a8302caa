// gradient_check.h: finite-difference gradient checks in float64 for the tests of the losses.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

namespace chronos::test {

// Compares autograd's gradient of f at x with central differences, element by element.
// Central differences in float64 with h = 1e-6: truncation error h^2 |f^(3)| / 6 ~ 1e-12 for
// these smooth losses of O(1) inputs, rounding error u64 |f| / h ~ 1e-10; the bound
// 1e-6 + 1e-5 |g| is four orders above both, and a wrong gradient term is off by O(|g|).
inline void check_gradient(const std::function<torch::Tensor(const torch::Tensor&)>& f, torch::Tensor x, const char* what) {
    x = x.detach().clone().set_requires_grad(true);
    torch::Tensor y = f(x);
    y.backward();
    torch::Tensor analytic = x.grad().clone();
    torch::NoGradGuard ng;
    const double h = 1e-6;
    torch::Tensor flat = x.detach().view({-1});
    double worst = 0;
    for (int64_t i = 0; i < flat.numel(); ++i) {
        double orig = flat[i].item<double>();
        flat[i] = orig + h;
        double up = f(x.detach()).item<double>();
        flat[i] = orig - h;
        double down = f(x.detach()).item<double>();
        flat[i] = orig;
        double numeric = (up - down) / (2 * h);
        double a = analytic.view({-1})[i].item<double>();
        worst = std::max(worst, std::abs(a - numeric));
        ASSERT_NEAR(a, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << what << ": element " << i;
    }
    EXPECT_GT(analytic.abs().sum().item<double>(), 0.0) << what << ": gradient is identically zero";
}

}  // namespace chronos::test
