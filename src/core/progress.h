// progress.h: a one-line progress bar with rate and ETA for long steps.
//
// It draws on stderr, and only when both stdout and stderr are terminals, so that logs and
// piped output stay clean. CHRONOS_PROGRESS=0 turns it off, =1 forces it on.
//
//     chronos::ProgressBar bar("tokenize", total_lines, "lines");
//     for (...) { ...; bar.advance(1); }
//     bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace chronos {

class ProgressBar {
public:
    // total = 0 means unknown: the bar shows the count and rate without ETA.
    ProgressBar(std::string label, uint64_t total, std::string unit);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void advance(uint64_t n);
    void set(uint64_t done);
    // Extra text shown after the rate, e.g. the current loss.
    void set_note(const std::string& note);
    void finish();

    bool enabled() const { return enabled_; }

private:
    void draw(bool force);

    std::string label_;
    std::string unit_;
    std::string note_;
    uint64_t total_;
    uint64_t done_ = 0;
    bool enabled_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

// Formats seconds as H:MM:SS or M:SS.
std::string format_duration(double seconds);
// Formats a count with k/M/G suffixes ("12.3k").
std::string format_count(double value);

}  // namespace chronos
