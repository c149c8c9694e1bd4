// Progress display: a redrawn bar on a terminal, plain periodic lines otherwise.
#pragma once
#include <chrono>
#include <string>

namespace attnlab {

class Progress {
  public:
    Progress(long total, long start, bool quiet);
    // Called every step; redraws at most 10 times a second on a terminal.
    void update(long step, double loss, double acc, double tokens_per_s);
    // A line that should stay (evaluation results); keeps the bar below it.
    void note(const std::string& line);
    void finish();

  private:
    long total_, start_;
    bool quiet_, tty_;
    std::chrono::steady_clock::time_point t0_, last_draw_;
    bool drawn_ = false;
};

std::string format_duration(double seconds);

}  // namespace attnlab
