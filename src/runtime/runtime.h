// runtime.h: the native offload runtime (no libtorch) — one include for its users.
//
// A checkpoint directory with packed experts (`chronos pack`) runs with its experts on SSD and
// a RAM budget for the hot ones:
//
//     #include "runtime/runtime.h"
//     chronos::rt::Model model("runs/small");                       // weights (mmap) + manifest
//     chronos::rt::SessionOptions so;
//     so.mode = chronos::rt::MissMode::exact;                       // or soft, lru, resident
//     so.ram_budget = chronos::rt::budget_parse("25%", model.expert_bytes_total());
//     chronos::rt::Session session(model, so);                      // caches, store, metrics
//     chronos::rt::Sampler sampler({.temperature = 0.0f}, model.config.vocab_size);
//     auto result = chronos::rt::generate(session, sampler, prompt_ids, {.max_tokens = 32},
//                                         [](int32_t id) { return true; });
//     nlohmann::ordered_json metrics = chronos::rt::metrics_json(session, result);
//
// Parts: kernels.h (OpenMP + BLAS), layers.h (the layers as plain functions), io_engine.h
// (io_uring, O_DIRECT), expert_store.h (RAM tier, the mechanism), residency.h (what to evict),
// prefetcher.h (what to read ahead, miss policies), model.h (weights), session.h (state and the
// forward pass), metrics.h, memory_budget.h (the budget from the memory limit), sampler.h,
// generate.h.
#pragma once

#include "runtime/expert_store.h"
#include "runtime/generate.h"
#include "runtime/io_engine.h"
#include "runtime/kernels.h"
#include "runtime/layers.h"
#include "runtime/memory_budget.h"
#include "runtime/model.h"
#include "runtime/prefetcher.h"
#include "runtime/residency.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
