// Reading a sweep folder back and arranging its runs for the report: the
// axes along x and across series, and the runs grouped into cells.
#include "report/report_data.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace attnlab::report {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep)) out.push_back(item);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

// (step, eval_acc) of the rows of metrics.csv that carry an evaluation; with bits,
// (step, eval_loss / ln 2), the validation bits per byte.
std::vector<std::pair<double, double>> read_curve(const std::string& path, bool bits) {
    std::ifstream in(path);
    std::vector<std::pair<double, double>> curve;
    std::string line;
    if (!in || !std::getline(in, line)) return curve;
    const auto header = split(line, ',');
    const auto step_col = std::find(header.begin(), header.end(), "step") - header.begin();
    const auto acc_col =
        std::find(header.begin(), header.end(), bits ? "eval_loss" : "eval_acc") - header.begin();
    const double scale = bits ? 1 / std::log(2.0) : 1;
    if (size_t(acc_col) >= header.size() || size_t(step_col) >= header.size()) return curve;
    while (std::getline(in, line)) {
        const auto f = split(line, ',');
        if (f.size() != header.size() || f[size_t(acc_col)].empty()) continue;
        try {
            curve.emplace_back(std::stod(f[size_t(step_col)]),
                               scale * std::stod(f[size_t(acc_col)]));
        } catch (const std::exception&) {
            throw Error("'" + path + "' has a malformed row: " + line);
        }
    }
    return curve;
}

SweepData load_sweep(const std::string& dir) {
    const std::string path = dir + "/sweep.json";
    std::ifstream in(path);
    if (!in)
        throw Error("'" + dir +
                    "' is not a sweep folder (no sweep.json); `attnlab sweep --grid FILE --out " +
                    dir + "` makes one");
    SweepData d;
    d.dir = dir;
    try {
        const auto j = nlohmann::json::parse(in);
        d.title = j.value("title", "");
        d.grid = j.value("grid", "");
        for (const auto& a : j.at("axes"))
            d.axes.push_back({a.at("name").get<std::string>(), a.at("tied").get<bool>(),
                              a.at("keys").get<std::vector<std::string>>(),
                              a.at("values").get<std::vector<std::string>>()});
        for (const auto& r : j.at("runs")) {
            RunData run;
            run.name = r.at("name").get<std::string>();
            run.values = r.at("values").get<std::vector<std::string>>();
            if (run.values.size() != d.axes.size())
                throw Error("run '" + run.name + "' has the wrong number of values");
            d.runs.push_back(std::move(run));
        }
    } catch (const Error& e) {
        throw Error("'" + path + "': " + e.what());
    } catch (const std::exception& e) {
        throw Error("cannot read '" + path + "': " + e.what());
    }
    bool any = false, all_bits = true;
    for (auto& run : d.runs) {
        run.result = read_run_result(dir + "/" + run.name);
        if (!run.result) continue;
        any = true;
        all_bits = all_bits && run.result->bits_per_byte.has_value();
        d.some_bits = d.some_bits || run.result->bits_per_byte.has_value();
    }
    d.bits = any && all_bits;
    for (auto& run : d.runs)
        if (run.result) run.curve = read_curve(dir + "/" + run.name + "/metrics.csv", d.bits);
    return d;
}

bool is_series_axis(const AxisInfo& a) {
    for (const auto& k : a.keys)
        if (k == "model.attention" || k == "model.arch") return true;
    return false;
}

std::string short_key(const std::string& key) {
    const size_t dot = key.rfind('.');
    return dot == std::string::npos ? key : key.substr(dot + 1);
}

bool try_parse_number(const std::string& s, double& out) {
    try {
        size_t used = 0;
        out = std::stod(s, &used);
        return used == s.size() && std::isfinite(out);
    } catch (const std::exception&) {
        return false;
    }
}

ChartAxes choose_layout(const SweepData& d, const ReportOptions& opt) {
    auto find_axis = [&](const std::string& name) {
        for (size_t a = 0; a < d.axes.size(); a++)
            if (d.axes[a].name == name) return int(a);
        std::string list;
        for (const auto& a : d.axes) list += (list.empty() ? "" : ", ") + a.name;
        throw Error("the sweep in '" + d.dir + "' has no axis '" + name + "'; its axes: " + list);
    };
    auto varying = [&](int a) { return d.axes[size_t(a)].values.size() > 1; };
    ChartAxes l;
    if (!opt.series.empty())
        for (const auto& s : split(opt.series, ',')) {
            const int a = find_axis(s);
            if (std::find(l.series.begin(), l.series.end(), a) == l.series.end())
                l.series.push_back(a);
        }
    else
        for (size_t a = 0; a < d.axes.size(); a++)
            if (varying(int(a)) && is_series_axis(d.axes[a])) l.series.push_back(int(a));
    auto in_series = [&](int a) {
        return std::find(l.series.begin(), l.series.end(), a) != l.series.end();
    };
    if (opt.x == "none") {
        l.x = -1;
    } else if (!opt.x.empty()) {
        l.x = find_axis(opt.x);
        if (!varying(l.x)) throw Error("--x " + opt.x + ": that axis has a single value");
        if (in_series(l.x)) throw Error("--x " + opt.x + " is also a series axis");
    } else {
        // The first candidate with numeric values (a level, a size), else the first candidate.
        auto numeric = [&](size_t a) {
            for (const auto& v : d.axes[a].values) {
                double x;
                if (!try_parse_number(v, x)) return false;
            }
            return true;
        };
        for (bool need_numeric : {true, false})
            for (size_t a = 0; a < d.axes.size() && l.x < 0; a++)
                if (varying(int(a)) && d.axes[a].name != "train.seed" && !in_series(int(a)) &&
                    (!need_numeric || numeric(a)))
                    l.x = int(a);
    }
    // Any other varying axis (but the seed) separates series too, so no point mixes them.
    for (size_t a = 0; a < d.axes.size(); a++)
        if (varying(int(a)) && d.axes[a].name != "train.seed" && int(a) != l.x &&
            !in_series(int(a)))
            l.series.push_back(int(a));
    return l;
}

std::string series_label(const SweepData& d, const ChartAxes& l, const RunData& r) {
    std::string s;
    for (int a : l.series) {
        const AxisInfo& ax = d.axes[size_t(a)];
        const std::string part = is_series_axis(ax)
                                     ? r.values[size_t(a)]
                                     : short_key(ax.name) + "=" + r.values[size_t(a)];
        s += (s.empty() ? "" : ", ") + part;
    }
    if (!s.empty()) return s;
    for (size_t a = 0; a < d.axes.size();
         a++)  // a single series: name it by its map if the grid says
        if (is_series_axis(d.axes[a])) return r.values[a];
    return "all runs";
}

Stats stats_of(const std::vector<double>& v) {
    Stats s;
    s.n = int(v.size());
    if (v.empty()) return s;
    s.min = *std::min_element(v.begin(), v.end());
    s.max = *std::max_element(v.begin(), v.end());
    for (double x : v) s.mean += x;
    s.mean /= double(v.size());
    if (v.size() > 1) {
        double ss = 0;
        for (double x : v) ss += (x - s.mean) * (x - s.mean);
        s.std = std::sqrt(ss / double(v.size() - 1));
    }
    return s;
}

std::string pct(double v) {
    return fmt::format("{:.1f}", 100 * v);
}

Groups group_runs(const SweepData& d, const ChartAxes& l) {
    Groups g;
    g.xs = l.x >= 0 ? d.axes[size_t(l.x)].values : std::vector<std::string>{""};
    for (const auto& r : d.runs) {
        const std::string s = series_label(d, l, r);
        if (std::find(g.series.begin(), g.series.end(), s) == g.series.end()) g.series.push_back(s);
    }
    g.cells.assign(g.series.size(), std::vector<std::vector<size_t>>(g.xs.size()));
    for (size_t i = 0; i < d.runs.size(); i++) {
        const RunData& r = d.runs[i];
        if (!r.result) continue;
        const size_t s = size_t(std::find(g.series.begin(), g.series.end(), series_label(d, l, r)) -
                                g.series.begin());
        const size_t x =
            l.x >= 0
                ? size_t(std::find(g.xs.begin(), g.xs.end(), r.values[size_t(l.x)]) - g.xs.begin())
                : 0;
        g.cells[s][x].push_back(i);
        for (const auto& [label, acc] : r.result->per_task)
            if (std::find(g.labels.begin(), g.labels.end(), label) == g.labels.end())
                g.labels.push_back(label);
    }
    g.numeric_x = l.x >= 0;
    for (const auto& x : g.xs) {
        double v = 0;
        if (!try_parse_number(x, v)) g.numeric_x = false;
        g.x_numbers.push_back(v);
    }
    return g;
}

bool runs_have_several_tasks(const SweepData& d) {
    for (const auto& r : d.runs)
        if (r.result && r.result->per_task.size() > 1) return true;
    return false;
}

std::string x_title(const SweepData& d, const ChartAxes& l) {
    return l.x >= 0 ? d.axes[size_t(l.x)].name : "";
}

// A value of the plotted metric as text: "87.5%", or "1.945" bits per byte.
std::string metric_text(const SweepData& d, double v) {
    return d.bits ? fmt::format("{:.3f}", v) : pct(v) + "%";
}

int seeds_per_point(const Groups& g) {
    int most = 0;
    for (const auto& row : g.cells)
        for (const auto& c : row) most = std::max(most, int(c.size()));
    return most;
}

}  // namespace attnlab::report
