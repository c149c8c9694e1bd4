// Terminal progress bar.
#include "train/progress.h"

#include <fmt/core.h>
#include <unistd.h>

namespace attnlab {

std::string format_duration(double s) {
    if (s < 0 || s > 1e7) return "--:--";
    const long t = long(s + 0.5);
    if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
    return fmt::format("{}:{:02}", t / 60, t % 60);
}

Progress::Progress(long total, long start, bool quiet)
    : total_(total), start_(start), quiet_(quiet), tty_(::isatty(2)) {
    t0_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(long step, double loss, double acc, double tps) {
    if (quiet_ || !tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (step < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double done = double(step - start_), left = double(total_ - step);
    const double eta = done > 0 ? elapsed / done * left : -1;
    const int width = 24;
    const int fill = int(width * double(step) / double(total_));
    std::string bar(size_t(fill), '#');
    bar += std::string(size_t(width - fill), '.');
    fmt::print(stderr, "\r\033[K{:>7}/{} [{}] loss {:.4f}  acc {:5.1f}%  {:.1f}k tok/s  ETA {}",
               step, total_, bar, loss, 100 * acc, tps / 1000, format_duration(eta));
    drawn_ = true;
}

void Progress::note(const std::string& line) {
    if (quiet_) return;
    if (tty_ && drawn_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{}\n", line);
    drawn_ = false;
}

void Progress::finish() {
    if (!quiet_ && tty_ && drawn_) fmt::print(stderr, "\n");
    drawn_ = false;
}

}  // namespace attnlab
