// progress.cpp: drawing of the progress bar; redraws at most 10 times a second.
#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace chronos {

static bool progress_wanted() {
    const char* env = std::getenv("CHRONOS_PROGRESS");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    if (env != nullptr && std::strcmp(env, "1") == 0) return true;
    return isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
}

std::string format_duration(double seconds) {
    if (seconds < 0 || seconds > 1e7) return "--:--";
    auto s = static_cast<long>(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_count(double value) {
    if (value >= 1e9) return fmt::format("{:.2f}G", value / 1e9);
    if (value >= 1e6) return fmt::format("{:.2f}M", value / 1e6);
    if (value >= 1e3) return fmt::format("{:.1f}k", value / 1e3);
    return fmt::format("{:.0f}", value);
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(progress_wanted()) {
    start_ = std::chrono::steady_clock::now();
    last_draw_ = start_ - std::chrono::seconds(1);
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(uint64_t n) { set(done_ + n); }

void ProgressBar::set(uint64_t done) {
    done_ = done;
    draw(false);
}

void ProgressBar::set_note(const std::string& note) { note_ = note; }

void ProgressBar::finish() {
    if (finished_) return;
    finished_ = true;
    if (!enabled_) return;
    draw(true);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

void ProgressBar::draw(bool force) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string line;
    if (total_ > 0) {
        double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
        const int width = 24;
        int filled = static_cast<int>(frac * width);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(width, '.');
        double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : -1;
        line = fmt::format("{} [{}] {:3.0f}% {}/{} {} {}/s elapsed {} ETA {}", label_, bar, frac * 100,
                           format_count(done_), format_count(total_), unit_, format_count(rate),
                           format_duration(elapsed), format_duration(eta));
    } else {
        line = fmt::format("{} {} {} {}/s elapsed {}", label_, format_count(done_), unit_,
                           format_count(rate), format_duration(elapsed));
    }
    if (!note_.empty()) line += "  " + note_;
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
}

}  // namespace chronos
