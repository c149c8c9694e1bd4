// The sweep report's data: a sweep folder read back (axes, runs, results,
// learning curves), which axis runs along x and which make the series, and the
// finished runs grouped into series x points (report.cpp draws and tabulates them).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/report.h"
#include "sweep/sweep.h"

namespace attnlab::report {

struct AxisInfo {
    std::string name;
    bool tied = false;
    std::vector<std::string> keys, values;
};

struct RunData {
    std::string name;
    std::vector<std::string> values;  // per axis
    std::optional<RunResult> result;
    std::vector<std::pair<double, double>> curve;  // (step, eval metric)
};

struct SweepData {
    std::string dir, title, grid;
    std::vector<AxisInfo> axes;
    std::vector<RunData> runs;
    // Byte-level language modelling (every finished run reports bits per byte): the
    // plots show validation bits per byte (lower is better) instead of accuracy.
    bool bits = false;
    bool some_bits = false;  // at least one finished run reports bits per byte: a table column
};

// Which axis runs along x and which axes make the series; the seed axis (and
// any axis with one value) is what a point aggregates over.
struct ChartAxes {
    int x = -1;
    std::vector<int> series;
};

struct Stats {
    int n = 0;
    double mean = 0, std = 0, min = 0, max = 0;
};

// The runs grouped: series x points, each cell the finished runs it aggregates.
struct Groups {
    std::vector<std::string> series;  // labels in order of first appearance
    std::vector<std::string> xs;      // x values in axis order ({""} without an x axis)
    std::vector<std::vector<std::vector<size_t>>> cells;  // [series][x] -> run indices
    std::vector<std::string> labels;  // task labels, in order of first appearance
    bool numeric_x = false;
    std::vector<double> x_numbers;

    std::vector<double> accuracies(size_t s, size_t x, const SweepData& d) const {
        std::vector<double> v;
        for (size_t r : cells[s][x]) v.push_back(d.runs[r].result->accuracy);
        return v;
    }
    // The plotted metric of each run in a cell: accuracy, or bits per byte (d.bits).
    std::vector<double> plotted(size_t s, size_t x, const SweepData& d) const {
        if (!d.bits) return accuracies(s, x, d);
        std::vector<double> v;
        for (size_t r : cells[s][x]) v.push_back(*d.runs[r].result->bits_per_byte);
        return v;
    }
    std::vector<double> task_accuracies(size_t s, size_t x, const std::string& label,
                                        const SweepData& d) const {
        std::vector<double> v;
        for (size_t r : cells[s][x])
            for (const auto& [l, acc] : d.runs[r].result->per_task)
                if (l == label) v.push_back(acc);
        return v;
    }
};

std::vector<std::string> split(const std::string& s, char sep);
// Reads sweep.json and every run's summary.json and metrics.csv.
SweepData load_sweep(const std::string& dir);
ChartAxes choose_layout(const SweepData& d, const ReportOptions& opt);
Groups group_runs(const SweepData& d, const ChartAxes& l);
Stats stats_of(const std::vector<double>& v);
// Whether s is a whole finite number, stored in out (no error: a non-numeric grid axis is
// drawn as categories).
bool try_parse_number(const std::string& s, double& out);
std::string short_key(const std::string& key);
std::string pct(double v);
bool runs_have_several_tasks(const SweepData& d);
std::string x_title(const SweepData& d, const ChartAxes& l);
// A value of the plotted metric as text: "87.5%", or "1.945" bits per byte.
std::string metric_text(const SweepData& d, double v);
int seeds_per_point(const Groups& g);

}  // namespace attnlab::report
