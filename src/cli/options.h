// options.h: range checks for the numeric options of the `chronos` command. CLI11's own Range
// lets NaN through (every comparison with NaN is false) and takes "inf" for a number; these
// reject both. A failure names the option (CLI11 prefixes it) and the range.
//
//     cmd->add_option("--temperature", t)->check(chronos::cli_range(0, 100));
//     cmd->add_option("--top-p", p)->check(chronos::cli_range(0, 1, /*low_open=*/true));  // (0, 1]
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

namespace chronos {

// A finite number x with lo <= x <= hi (lo < x with low_open).
CLI::Validator cli_range(double lo, double hi, bool low_open = false);

// "a,b,c" -> {"a", "b", "c"}; an empty list, an empty item (a trailing comma too) or an item
// with spaces is an error naming the option.
std::vector<std::string> cli_split_list(const std::string& list, const char* option);
// A list of percentages, each in (0, 100] ("10,25,50").
std::vector<double> cli_percent_list(const std::string& list, const char* option);

// The --out of a command that saves a checkpoint: checkpoint_out_check (never a folder that is
// not a checkpoint, never one of the command's inputs), and, with warn_replaced, a warning when
// it will replace a checkpoint (off when the command resumes it, or in all but one process of
// a data-parallel run).
void cli_checkpoint_out(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs, bool warn_replaced = true);

// Upper bound of --threads: OpenBLAS is built here for at most 64 threads, and past a few
// threads per core the products only slow down.
constexpr int kMaxThreads = 256;

}  // namespace chronos
