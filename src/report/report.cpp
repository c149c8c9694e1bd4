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
#include "report/report_data.h"
#include "report/svg.h"
#include "train/progress.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

using namespace report;

// The main plot: accuracy against x (lines), or, without an x axis, bars of
// the overall accuracy and of each task per series.
Svg main_chart(const SweepData& d, const ChartAxes& l, const Groups& g) {
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
std::vector<Svg> curve_panels(const SweepData& d, const ChartAxes& l, const Groups& g) {
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
std::vector<Svg> task_panels(const SweepData& d, const ChartAxes& l, const Groups& g) {
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
std::vector<std::vector<std::string>> summary_table(const SweepData& d, const ChartAxes& l,
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

// "12 of 12 runs finished, 3m 4s of compute (sum of run wall times). Grid ...: axes."
std::string meta_text(const SweepData& d, const ReportFiles& files, double compute_s) {
    std::string axes_text;
    for (const auto& a : d.axes) {
        std::string vals;
        for (const auto& v : a.values) vals += (vals.empty() ? "" : ", ") + v;
        axes_text += (axes_text.empty() ? "" : "; ") + a.name + " in {" + vals + "}";
    }
    return fmt::format(
        "{} of {} runs finished{}, {} of compute (sum of run wall times). Grid {}: {}.",
        files.runs_finished, files.runs_total,
        files.runs_finished < files.runs_total
            ? fmt::format(" ({} missing)", files.runs_total - files.runs_finished)
            : "",
        format_duration(compute_s), d.grid, axes_text.empty() ? "a single run" : axes_text);
}

std::vector<std::string> series_colours(const Groups& g) {
    std::vector<std::string> colours;
    for (size_t s = 0; s < g.series.size(); s++) colours.push_back(series_colour(s));
    return colours;
}

// The HTML sections after the main plot: learning curves and per-task panels.
std::string html_panels(const SweepData& d, const ChartAxes& l, const Groups& g) {
    std::string html;
    const auto curves = curve_panels(d, l, g);
    if (!curves.empty()) {
        html += std::string("<h2>Learning curves</h2>\n<p class=\"note\">") +
                (d.bits ? "Bits per byte on the validation part"
                        : "Accuracy on the fixed evaluation set") +
                " during training; line: mean over runs, band: min to max.</p>\n";
        html += draw_legend(g.series, series_colours(g), 1000).str();
        html += "<div class=\"panels\">\n";
        for (const auto& p : curves) html += p.str();
        html += "</div>\n";
    }
    if (l.x >= 0 && runs_have_several_tasks(d)) {
        html += "<h2>Accuracy per task</h2>\n";
        html += draw_legend(g.series, series_colours(g), 1000).str() + "<div class=\"panels\">\n";
        for (const auto& p : task_panels(d, l, g)) html += p.str();
        html += "</div>\n";
    }
    return html;
}

// Each run's name and its axis values, for the diffusion section's FID table and samples.
std::vector<std::pair<std::string, std::string>> run_labels(const SweepData& d) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (const auto& r : d.runs) {
        std::string v;
        for (size_t a = 0; a < r.values.size(); a++)
            v += (a ? ", " : "") + d.axes[a].name + " = " + r.values[a];
        labels.emplace_back(r.name, v);
    }
    return labels;
}

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
    const ChartAxes l = choose_layout(d, opt);
    const Groups g = group_runs(d, l);
    files.x_axis = l.x >= 0 ? d.axes[size_t(l.x)].name : "";
    files.series = g.series;

    const std::string title =
        !d.title.empty() ? d.title : "Sweep " + fs::path(opt.dir).filename().string();
    const std::string meta = meta_text(d, files, compute_s);
    const Svg main = main_chart(d, l, g);
    files.svg = opt.dir + "/accuracy.svg";
    write_text_atomic(files.svg, main.str());

    const auto table = summary_table(d, l, g);
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
        xml_escape(title) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n";
    html += "<h1>" + xml_escape(title) + "</h1>\n<p class=\"meta\">" + xml_escape(meta) + "</p>\n";
    html += std::string(d.bits ? "<h2>Bits per byte</h2>\n" : "<h2>Accuracy</h2>\n") + main.str();
    html += html_panels(d, l, g);
    html +=
        "<h2>Table</h2>\n<p class=\"note\">Final evaluation accuracy in percent: mean ± standard "
        "deviation "
        "over runs (seeds), their minimum and maximum.</p>\n" +
        html_table(table);
    const DiffusionSection diffusion = diffusion_section(opt.dir, run_labels(d));
    html += diffusion.html;
    html += "<details>\n<summary>All " + std::to_string(d.runs.size()) + " runs</summary>\n" +
            html_table(runs_table(d, g)) + "</details>\n";
    html += "<p class=\"note\">Written by <code>attnlab report " + xml_escape(opt.dir) +
            "</code>.</p>\n</body>\n</html>\n";
    files.html = opt.html.empty() ? opt.dir + "/report.html" : opt.html;
    write_text_atomic(files.html, html);

    std::string md = "# " + title + "\n\n" + meta + "\n\n![accuracy](accuracy.svg)\n\n" +
                     markdown_table(table) + diffusion.markdown;
    files.markdown = opt.dir + "/report.md";
    write_text_atomic(files.markdown, md);
    return files;
}

}  // namespace attnlab
