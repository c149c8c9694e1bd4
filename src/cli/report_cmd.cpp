// `attnlab sweep | report | attention`: run a grid of trainings, report on it,
// and draw a run's attention weights.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "report/attention_plot.h"
#include "report/report.h"

namespace attnlab {

namespace fs = std::filesystem;

void add_report_commands(CLI::App& app) {
    add_sweep_command(app);

    auto r = std::make_shared<ReportOptions>();
    auto* report =
        app.add_subcommand("report", "HTML report (plots, tables) and report.md of a sweep folder");
    report->add_option("dir", r->dir, "sweep folder")->required();
    report->add_option("--out", r->html, "HTML file (default: DIR/report.html)");
    report->add_option("--x", r->x,
                       "axis along x (default: the first swept key, numeric ones first, but the "
                       "seed and the series; \"none\" for bars)");
    report->add_option("--series", r->series,
                       "axes that make the lines, comma-separated (default: "
                       "model.attention / model.arch)");
    report->callback([r] {
        const ReportFiles f = write_report(*r);
        std::string series;
        for (const auto& s : f.series) series += (series.empty() ? "" : " | ") + s;
        const int missing = f.runs_total - f.runs_finished;
        if (missing > 0)
            fmt::print(
                "partial sweep: {} of {} runs missing (not finished); the report shows "
                "the {} finished ones\n",
                missing, f.runs_total, f.runs_finished);
        fmt::print("{} of {} runs; x: {}; series: {}\nwrote {}, {}, {}\n", f.runs_finished,
                   f.runs_total, f.x_axis.empty() ? "(none, bars)" : f.x_axis, series, f.html,
                   f.markdown, f.svg);
    });

    struct AttentionArgs {
        AttentionPlotOptions opt;
        double vmax = 0;
        std::string out;
    };
    auto a = std::make_shared<AttentionArgs>();
    auto* attention =
        app.add_subcommand("attention", "heatmaps of every layer's and head's attention weights");
    attention->add_option("--run", a->opt.run_dir, "run folder")->required();
    attention->add_option("--window", a->opt.window, "evaluation window (default 0)");
    attention->add_option("--out", a->out, "output file, .svg or .html")->required();
    attention->add_option("--vmax", a->vmax, "colour scale limit (default: the largest |weight|)");
    attention->callback([a] {
        const std::string ext = fs::path(a->out).extension().string();
        if (ext != ".svg" && ext != ".html" && ext != ".htm")
            throw Error("--out '" + a->out + "' must end in .svg or .html");
        if (a->vmax != 0) a->opt.vmax = a->vmax;
        const AttentionPlot p = plot_attention(a->opt);
        write_attention_plot(p, a->out);
        fmt::print("wrote {}: {} layers x {} heads, T = {}, colour scale \u00b1{:.3g}\n", a->out,
                   p.layers, p.heads, p.T, p.vmax);
    });
}

}  // namespace attnlab
