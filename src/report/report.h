// The sweep report: reads a sweep folder (sweep.json, each run's summary.json
// and metrics.csv) and writes one self-contained HTML page (inline SVG, no
// scripts, nothing fetched), the same table as markdown, and the main plot as
// a standalone SVG.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep.h"

namespace attnlab {

struct ReportOptions {
    std::string dir;     // the sweep folder
    std::string html;    // default: <dir>/report.html
    std::string x;       // the axis along x ("" = chosen automatically, "none" = no x axis: bars)
    std::string series;  // the axes that make the series, comma-separated ("" = automatic)
};

struct ReportFiles {
    std::string html, markdown, svg;
    int runs_finished = 0, runs_total = 0;
    std::string x_axis;               // the axis drawn along x ("" when none)
    std::vector<std::string> series;  // the series labels, in order
};

// Writes <html>, <dir>/report.md and <dir>/accuracy.svg; throws Error naming
// the folder when it is not a sweep folder or no run has finished yet.
ReportFiles write_report(const ReportOptions& opt);

}  // namespace attnlab
