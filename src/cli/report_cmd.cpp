// `attnlab sweep | report | attention`: run a grid of trainings, report on it,
// and draw a run's attention weights.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "report/attention_plot.h"
#include "report/report.h"
#include "report/sweep.h"

namespace attnlab {

namespace fs = std::filesystem;

void add_report_commands(CLI::App& app) {
    struct SweepArgs {
        std::string grid, out;
        int jobs = 0, threads = 1;
        bool dry_run = false;
    };
    auto s = std::make_shared<SweepArgs>();
    auto* sweep =
        app.add_subcommand("sweep", "train every run of a grid file, in parallel, resumably");
    sweep
        ->add_option("--grid", s->grid, "grid file: [base] configuration and [grid] values to vary")
        ->required();
    sweep->add_option("--out", s->out, "sweep folder (one run folder per run, runs.csv)")
        ->required();
    sweep->add_option("--jobs", s->jobs, "runs at a time (default: the number of cores)");
    sweep->add_option("--threads", s->threads, "train.threads of every run (default 1)");
    sweep->add_flag("--dry-run", s->dry_run, "validate the grid and list its runs, train nothing");
    sweep->callback([s] {
        if (s->jobs < 0)
            throw Error(fmt::format("--jobs {} must be >= 0 (0 = one per core)", s->jobs));
        if (s->threads < 1) throw Error(fmt::format("--threads {} must be >= 1", s->threads));
        const SweepPlan plan = load_grid(s->grid, s->threads);
        if (s->dry_run) {
            for (const auto& r : plan.runs) {
                std::string settings;
                for (const auto& [k, v] : r.settings) settings += " " + k + "=" + v;
                fmt::print("{}{}\n", r.name, settings);
            }
            fmt::print("{} runs; the grid is valid\n", plan.runs.size());
            return;
        }
        SweepOptions opt;
        opt.out_dir = s->out;
        opt.jobs = s->jobs;
        std::error_code ec;
        opt.binary = fs::read_symlink("/proc/self/exe", ec).string();
        if (ec) throw Error("cannot find the attnlab executable (/proc/self/exe): " + ec.message());
        const SweepOutcome o = run_sweep(plan, opt);
        fmt::print(
            "sweep done: {} runs, {} trained now, {} finished before, {} failed; index "
            "{}/runs.csv\n",
            o.total, o.ran, o.skipped, o.failed.size(), s->out);
        if (!o.failed.empty()) {
            std::string names;
            for (const auto& n : o.failed) names += " " + n;
            fmt::print(stderr,
                       "failed runs (see <run>/train.log; run the sweep again to retry):{}\n",
                       names);
            throw CLI::RuntimeError(1);
        }
    });

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
