// The sweep report: runs grouped into series (attention map or architecture)
// and points along one swept value, aggregated over seeds, drawn and tabulated.
#include "report/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "report/charts.h"
#include "report/diffusion_report.h"
#include "report/svg.h"
#include "train/progress.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

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

bool parse_number(const std::string& s, double& out) {
    try {
        size_t used = 0;
        out = std::stod(s, &used);
        return used == s.size() && std::isfinite(out);
    } catch (const std::exception&) {
        return false;
    }
}

// Which axis runs along x and which axes make the series; the seed axis (and
// any axis with one value) is what a point aggregates over.
struct Layout {
    int x = -1;
    std::vector<int> series;
};

Layout choose_layout(const SweepData& d, const ReportOptions& opt) {
    auto find_axis = [&](const std::string& name) {
        for (size_t a = 0; a < d.axes.size(); a++)
            if (d.axes[a].name == name) return int(a);
        std::string list;
        for (const auto& a : d.axes) list += (list.empty() ? "" : ", ") + a.name;
        throw Error("the sweep in '" + d.dir + "' has no axis '" + name + "'; its axes: " + list);
    };
    auto varying = [&](int a) { return d.axes[size_t(a)].values.size() > 1; };
    Layout l;
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
                if (!parse_number(v, x)) return false;
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

std::string series_label(const SweepData& d, const Layout& l, const RunData& r) {
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

struct Stats {
    int n = 0;
    double mean = 0, std = 0, min = 0, max = 0;
};

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

Groups group_runs(const SweepData& d, const Layout& l) {
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
        if (!parse_number(x, v)) g.numeric_x = false;
        g.x_numbers.push_back(v);
    }
    return g;
}

bool runs_have_several_tasks(const SweepData& d) {
    for (const auto& r : d.runs)
        if (r.result && r.result->per_task.size() > 1) return true;
    return false;
}

std::string x_title(const SweepData& d, const Layout& l) {
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

// The main plot: accuracy against x (lines), or, without an x axis, bars of
// the overall accuracy and of each task per series.
Svg main_chart(const SweepData& d, const Layout& l, const Groups& g) {
    const int n = seeds_per_point(g);
    const std::string spread =
        n > 1
            ? fmt::format("mean of up to {} runs; whiskers/band: min to max; dots: single runs", n)
            : "one run per point";
    if (l.x < 0) {
        BarChart c;
        c.title = d.bits ? "Final validation bits per byte (lower is better)"
                         : "Final evaluation accuracy";
        c.subtitle = spread;
        c.y_label = d.bits ? "bits per byte" : "accuracy";
        c.percent = !d.bits;
        c.series = g.series;
        for (size_t s = 0; s < g.series.size(); s++) c.colours.push_back(series_colour(s));
        c.groups.push_back("overall");
        if (runs_have_several_tasks(d) && !d.bits)
            for (const auto& label : g.labels) c.groups.push_back(label);
        for (size_t gi = 0; gi < c.groups.size(); gi++) {
            std::vector<std::optional<Bar>> row;
            for (size_t s = 0; s < g.series.size(); s++) {
                const auto v =
                    gi == 0 ? g.plotted(s, 0, d) : g.task_accuracies(s, 0, c.groups[gi], d);
                if (v.empty()) {
                    row.emplace_back();
                    continue;
                }
                const Stats st = stats_of(v);
                Bar b{st.mean, st.min, st.max, v,
                      fmt::format("{} / {}: {} (min {}, max {}, {} runs)", g.series[s],
                                  c.groups[gi], metric_text(d, st.mean), metric_text(d, st.min),
                                  metric_text(d, st.max), st.n)};
                row.push_back(b);
            }
            c.values.push_back(row);
        }
        c.width =
            std::clamp(120 + 40.0 * double(c.groups.size() * g.series.size()) + 200, 760.0, 1240.0);
        return draw_bar_chart(c);
    }
    LineChart c;
    c.width = 860, c.height = 460;
    c.title = (d.bits ? "Final validation bits per byte against "
                      : "Final evaluation accuracy against ") +
              x_title(d, l);
    c.subtitle = spread;
    c.x_label = x_title(d, l);
    c.y_label = d.bits ? "bits per byte" : "accuracy";
    c.percent = !d.bits;
    if (!g.numeric_x)
        c.categories = g.xs;
    else if (g.xs.size() <= 12)
        c.x_ticks = g.x_numbers;
    for (size_t s = 0; s < g.series.size(); s++) {
        ChartSeries cs;
        cs.name = g.series[s];
        cs.colour = series_colour(s);
        for (size_t x = 0; x < g.xs.size(); x++) {
            const auto v = g.plotted(s, x, d);
            if (v.empty()) continue;
            const Stats st = stats_of(v);
            const double xv = g.numeric_x ? g.x_numbers[x] : double(x);
            cs.x.push_back(xv), cs.mean.push_back(st.mean), cs.lo.push_back(st.min),
                cs.hi.push_back(st.max);
            for (double a : v) cs.dots.emplace_back(xv, a);
            cs.tips.push_back(fmt::format("{}, {} = {}: {} (min {}, max {}, {} runs)", cs.name,
                                          x_title(d, l), g.xs[x], metric_text(d, st.mean),
                                          metric_text(d, st.min), metric_text(d, st.max), st.n));
        }
        c.series.push_back(std::move(cs));
    }
    return draw_line_chart(c);
}

// Learning curves: one panel per x value, eval accuracy against step per series.
std::vector<Svg> curve_panels(const SweepData& d, const Layout& l, const Groups& g) {
    std::vector<Svg> panels;
    for (size_t x = 0; x < g.xs.size(); x++) {
        LineChart c;
        c.title = l.x >= 0 ? x_title(d, l) + " = " + g.xs[x]
                  : d.bits ? "Validation bits per byte during training"
                           : "Evaluation accuracy during training";
        c.x_label = "step";
        c.y_label = d.bits ? "bits per byte" : "eval accuracy";
        c.percent = !d.bits;
        c.legend = false;
        c.x_from_zero = true;
        c.width = l.x >= 0 ? 420 : 760;
        c.height = l.x >= 0 ? 270 : 380;
        bool any = false;
        for (size_t s = 0; s < g.series.size(); s++) {
            std::map<double, std::vector<double>> by_step;
            for (size_t r : g.cells[s][x])
                for (const auto& [step, acc] : d.runs[r].curve) by_step[step].push_back(acc);
            ChartSeries cs;
            cs.name = g.series[s];
            cs.colour = series_colour(s);
            for (const auto& [step, v] : by_step) {
                const Stats st = stats_of(v);
                cs.x.push_back(step), cs.mean.push_back(st.mean), cs.lo.push_back(st.min),
                    cs.hi.push_back(st.max);
            }
            any = any || !cs.x.empty();
            c.series.push_back(std::move(cs));
        }
        if (any) panels.push_back(draw_line_chart(c));
    }
    return panels;
}

// Per-task bars, one panel per x value (only when runs report several tasks).
std::vector<Svg> task_panels(const SweepData& d, const Layout& l, const Groups& g) {
    std::vector<Svg> panels;
    for (size_t x = 0; x < g.xs.size(); x++) {
        BarChart c;
        c.title = x_title(d, l) + " = " + g.xs[x];
        c.y_label = "accuracy";
        c.series = g.series;
        for (size_t s = 0; s < g.series.size(); s++) c.colours.push_back(series_colour(s));
        c.groups = g.labels;
        c.legend = false;
        c.width = 420, c.height = 270;
        for (const auto& label : g.labels) {
            std::vector<std::optional<Bar>> row;
            for (size_t s = 0; s < g.series.size(); s++) {
                const auto v = g.task_accuracies(s, x, label, d);
                if (v.empty()) {
                    row.emplace_back();
                    continue;
                }
                const Stats st = stats_of(v);
                row.push_back(Bar{st.mean, st.min, st.max, v,
                                  fmt::format("{} / {}: {}%", g.series[s], label, pct(st.mean))});
            }
            c.values.push_back(row);
        }
        panels.push_back(draw_bar_chart(c));
    }
    return panels;
}

// The summary table as rows of cells (first row: the header); numbers in percent.
std::vector<std::vector<std::string>> summary_table(const SweepData& d, const Layout& l,
                                                    const Groups& g) {
    std::string series_head;
    for (int a : l.series)
        series_head += (series_head.empty() ? "" : " / ") + d.axes[size_t(a)].name;
    std::vector<std::string> head{series_head.empty() ? "series" : series_head};
    if (l.x >= 0) head.push_back(x_title(d, l));
    for (const char* h : {"runs", "accuracy %", "min", "max"}) head.push_back(h);
    const bool tasks = runs_have_several_tasks(d);
    if (tasks)
        for (const auto& label : g.labels) head.push_back(label + " %");
    if (d.some_bits) head.push_back("bits / byte");
    head.push_back("params");
    head.push_back("s / run");
    std::vector<std::vector<std::string>> rows{head};
    for (size_t s = 0; s < g.series.size(); s++)
        for (size_t x = 0; x < g.xs.size(); x++) {
            const auto& cell = g.cells[s][x];
            if (cell.empty()) continue;
            const Stats st = stats_of(g.accuracies(s, x, d));
            std::vector<std::string> row{g.series[s]};
            if (l.x >= 0) row.push_back(g.xs[x]);
            row.push_back(std::to_string(st.n));
            row.push_back(st.n > 1 ? pct(st.mean) + " ± " + pct(st.std) : pct(st.mean));
            row.push_back(pct(st.min));
            row.push_back(pct(st.max));
            if (tasks)
                for (const auto& label : g.labels) {
                    const auto v = g.task_accuracies(s, x, label, d);
                    row.push_back(v.empty() ? "" : pct(stats_of(v).mean));
                }
            if (d.some_bits) {
                std::vector<double> v;
                for (size_t r : cell)
                    if (d.runs[r].result->bits_per_byte)
                        v.push_back(*d.runs[r].result->bits_per_byte);
                const Stats b = stats_of(v);
                row.push_back(v.empty() ? ""
                              : b.n > 1 ? fmt::format("{:.3f} ± {:.3f}", b.mean, b.std)
                                        : fmt::format("{:.3f}", b.mean));
            }
            double params = 0, wall = 0;
            for (size_t r : cell)
                params += double(d.runs[r].result->params), wall += d.runs[r].result->wall_s;
            row.push_back(fmt::format("{:.0f}", params / double(cell.size())));
            row.push_back(fmt::format("{:.1f}", wall / double(cell.size())));
            rows.push_back(std::move(row));
        }
    return rows;
}

// Every run, one row each.
std::vector<std::vector<std::string>> runs_table(const SweepData& d, const Groups& g) {
    std::vector<std::string> head{"run"};
    for (const auto& a : d.axes) head.push_back(a.name);
    head.push_back("accuracy %");
    const bool tasks = runs_have_several_tasks(d);
    if (tasks)
        for (const auto& label : g.labels) head.push_back(label + " %");
    head.push_back("loss");
    if (d.some_bits) head.push_back("bits / byte");
    head.push_back("steps");
    head.push_back("wall s");
    std::vector<std::vector<std::string>> rows{head};
    for (const auto& r : d.runs) {
        std::vector<std::string> row{r.name};
        for (const auto& v : r.values) row.push_back(v);
        if (!r.result) {
            row.push_back("not finished");
            rows.push_back(std::move(row));
            continue;
        }
        row.push_back(pct(r.result->accuracy));
        if (tasks)
            for (const auto& label : g.labels) {
                std::string cell;
                for (const auto& [l, acc] : r.result->per_task)
                    if (l == label) cell = pct(acc);
                row.push_back(cell);
            }
        row.push_back(fmt::format("{:.4f}", r.result->loss));
        if (d.some_bits)
            row.push_back(r.result->bits_per_byte ? fmt::format("{:.4f}", *r.result->bits_per_byte)
                                                  : "");
        row.push_back(std::to_string(r.result->steps));
        row.push_back(fmt::format("{:.1f}", r.result->wall_s));
        rows.push_back(std::move(row));
    }
    return rows;
}

bool looks_numeric(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789.-+ ±e") == std::string::npos;
}

std::string html_table(const std::vector<std::vector<std::string>>& rows) {
    std::string h = "<table>\n<thead><tr>";
    for (const auto& c : rows[0]) h += "<th>" + xml_escape(c) + "</th>";
    h += "</tr></thead>\n<tbody>\n";
    for (size_t i = 1; i < rows.size(); i++) {
        h += "<tr>";
        for (const auto& c : rows[i])
            h += (looks_numeric(c) ? "<td class=\"num\">" : "<td>") + xml_escape(c) + "</td>";
        h += "</tr>\n";
    }
    return h + "</tbody>\n</table>\n";
}

std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
    auto cell = [](std::string s) {
        for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2)
            s.replace(p, 1, "\\|");
        return s;
    };
    std::string m = "|";
    for (const auto& c : rows[0]) m += " " + cell(c) + " |";
    m += "\n|";
    for (size_t i = 0; i < rows[0].size(); i++) m += i == 0 ? "---|" : "---:|";
    m += "\n";
    for (size_t i = 1; i < rows.size(); i++) {
        m += "|";
        for (const auto& c : rows[i]) m += " " + cell(c) + " |";
        m += "\n";
    }
    return m;
}

const char* kStyle =
    R"(body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; max-width: 1320px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta { color: #555; font-size: 13px; margin-top: 0; }
p.note { color: #555; font-size: 13px; }
.panels { display: flex; flex-wrap: wrap; gap: 8px; }
svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d8d8d8; padding: 3px 8px; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
details summary { cursor: pointer; margin: 12px 0; font-size: 14px; }
)";

}  // namespace

ReportFiles write_report(const ReportOptions& opt) {
    const SweepData d = load_sweep(opt.dir);
    ReportFiles files;
    files.runs_total = int(d.runs.size());
    double compute_s = 0;
    for (const auto& r : d.runs)
        if (r.result) files.runs_finished++, compute_s += r.result->wall_s;
    if (files.runs_finished == 0)
        throw Error("no run in '" + opt.dir +
                    "' has finished yet (none has a summary.json); nothing to report");
    const Layout l = choose_layout(d, opt);
    const Groups g = group_runs(d, l);
    files.x_axis = l.x >= 0 ? d.axes[size_t(l.x)].name : "";
    files.series = g.series;

    const std::string title =
        !d.title.empty() ? d.title : "Sweep " + fs::path(opt.dir).filename().string();
    std::string axes_text;
    for (const auto& a : d.axes) {
        std::string vals;
        for (const auto& v : a.values) vals += (vals.empty() ? "" : ", ") + v;
        axes_text += (axes_text.empty() ? "" : "; ") + a.name + " in {" + vals + "}";
    }
    const std::string meta =
        fmt::format("{} of {} runs finished{}, {} of compute (sum of run wall times). Grid {}: {}.",
                    files.runs_finished, files.runs_total,
                    files.runs_finished < files.runs_total
                        ? fmt::format(" ({} missing)", files.runs_total - files.runs_finished)
                        : "",
                    format_duration(compute_s), d.grid,
                    axes_text.empty() ? "a single run" : axes_text);

    const Svg main = main_chart(d, l, g);
    files.svg = opt.dir + "/accuracy.svg";
    write_text_atomic(files.svg, main.str());

    const auto table = summary_table(d, l, g);
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
        xml_escape(title) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n";
    html += "<h1>" + xml_escape(title) + "</h1>\n<p class=\"meta\">" + xml_escape(meta) + "</p>\n";
    html += std::string(d.bits ? "<h2>Bits per byte</h2>\n" : "<h2>Accuracy</h2>\n") + main.str();
    const auto curves = curve_panels(d, l, g);
    if (!curves.empty()) {
        html += std::string("<h2>Learning curves</h2>\n<p class=\"note\">") +
                (d.bits ? "Bits per byte on the validation part"
                        : "Accuracy on the fixed evaluation set") +
                " during training; line: mean over runs, band: min to max.</p>\n";
        html += draw_legend(
                    g.series,
                    [&] {
                        std::vector<std::string> c;
                        for (size_t s = 0; s < g.series.size(); s++) c.push_back(series_colour(s));
                        return c;
                    }(),
                    1000)
                    .str();
        html += "<div class=\"panels\">\n";
        for (const auto& p : curves) html += p.str();
        html += "</div>\n";
    }
    if (l.x >= 0 && runs_have_several_tasks(d)) {
        html += "<h2>Accuracy per task</h2>\n";
        std::vector<std::string> colours;
        for (size_t s = 0; s < g.series.size(); s++) colours.push_back(series_colour(s));
        html += draw_legend(g.series, colours, 1000).str() + "<div class=\"panels\">\n";
        for (const auto& p : task_panels(d, l, g)) html += p.str();
        html += "</div>\n";
    }
    html +=
        "<h2>Table</h2>\n<p class=\"note\">Final evaluation accuracy in percent: mean ± standard "
        "deviation "
        "over runs (seeds), their minimum and maximum.</p>\n" +
        html_table(table);
    std::vector<std::pair<std::string, std::string>> run_labels;  // diffusion runs: FID and samples
    for (const auto& r : d.runs) {
        std::string v;
        for (size_t a = 0; a < r.values.size(); a++) v += (a ? ", " : "") + d.axes[a].name + " = " + r.values[a];
        run_labels.emplace_back(r.name, v);
    }
    const DiffusionSection diffusion = diffusion_section(opt.dir, run_labels);
    html += diffusion.html;
    html += "<details>\n<summary>All " + std::to_string(d.runs.size()) + " runs</summary>\n" +
            html_table(runs_table(d, g)) + "</details>\n";
    html += "<p class=\"note\">Written by <code>attnlab report " + xml_escape(opt.dir) +
            "</code>.</p>\n</body>\n</html>\n";
    files.html = opt.html.empty() ? opt.dir + "/report.html" : opt.html;
    write_text_atomic(files.html, html);

    std::string md =
        "# " + title + "\n\n" + meta + "\n\n![accuracy](accuracy.svg)\n\n" + markdown_table(table) +
        diffusion.markdown;
    files.markdown = opt.dir + "/report.md";
    write_text_atomic(files.markdown, md);
    return files;
}

}  // namespace attnlab
