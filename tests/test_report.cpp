// Sweeps, reports and attention plots: grid expansion and its errors, a real
// (tiny) sweep through the attnlab binary that is resumed and skipped, the
// report's series and files, heatmaps per layer and head, well-formed SVG.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "report/attention_plot.h"
#include "report/report.h"
#include "report/svg.h"
#include "sweep/sweep.h"
#include "train/trainer.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
    const std::string d = ::testing::TempDir() + "attnlab-report-" + name;
    fs::remove_all(d);
    return d;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) n++;
    return n;
}

// Every opened tag is closed in order (void HTML elements and <!...> aside);
// returns "" or what is wrong.
std::string tag_balance(const std::string& doc) {
    std::vector<std::string> stack;
    const std::set<std::string> void_tags{"meta", "br", "hr", "img", "link", "input"};
    for (size_t p = doc.find('<'); p != std::string::npos; p = doc.find('<', p + 1)) {
        const size_t end = doc.find('>', p);
        if (end == std::string::npos) return "unterminated tag at " + std::to_string(p);
        const std::string tag = doc.substr(p + 1, end - p - 1);
        if (tag.empty()) return "empty tag";
        if (tag[0] == '!' || tag[0] == '?') continue;
        const bool closing = tag[0] == '/';
        const std::string name = tag.substr(
            closing ? 1 : 0, tag.find_first_of(" \n/", closing ? 1 : 0) - (closing ? 1 : 0));
        if (closing) {
            if (stack.empty() || stack.back() != name)
                return "</" + name + "> closes " +
                       (stack.empty() ? std::string("nothing") : "<" + stack.back() + ">");
            stack.pop_back();
        } else if (tag.back() != '/' && !void_tags.count(name)) {
            stack.push_back(name);
        }
    }
    return stack.empty() ? "" : "<" + stack.back() + "> is never closed";
}

// The attnlab executable the sweep starts: $ATTNLAB_BIN, or the one built next to this test.
std::string attnlab_binary() {
    if (const char* b = std::getenv("ATTNLAB_BIN")) return b;
    return (fs::read_symlink("/proc/self/exe").parent_path() / "attnlab").string();
}

// A model and task small enough that a run takes a few tens of milliseconds.
const char* kTinyBase = R"([base.model]
dim = 8
layers = 2
[base.task]
name = "ladder"
n = 4
k = 1
[base.train]
steps = 6
batch = 4
context = 8
warmup = 1
eval_every = 3
eval_windows = 8
log_every = 3
)";

}  // namespace

TEST(Svg, EscapesAndBalances) {
    Svg svg(100, 50);
    svg.open_group("class=\"a\"");
    svg.text(1, 2, "a < b & \"c\"");
    svg.rect(0, 0, 10, 10, "#ffffff");
    svg.close_group();
    const std::string s = svg.str();
    EXPECT_NE(s.find("a &lt; b &amp; &quot;c&quot;"), std::string::npos) << s;
    EXPECT_EQ(tag_balance(s), "");
    EXPECT_EQ(diverging_colour(0), "#ffffff");
    EXPECT_NE(diverging_colour(-1), diverging_colour(1));
    EXPECT_EQ(diverging_colour(-5), diverging_colour(-1));  // clamped
    EXPECT_EQ(svg_num(1.0), "1");
    EXPECT_EQ(svg_num(2.345), "2.35");  // two decimals at most (2.345 is just above in binary)
    Svg unclosed(10, 10);
    unclosed.open_group();
    EXPECT_THROW(unclosed.str(), Error);
}

TEST(Sweep, GridExpandsToTheCartesianProduct) {
    const std::string grid = std::string(kTinyBase) + R"(
[grid]
"model.attention" = ["softmax", "cog"]
"task.k" = [1, 2, 3]
"train.seed" = [1, 2]
)";
    const SweepPlan plan = plan_sweep(grid, "grid.toml");
    ASSERT_EQ(plan.axes.size(), 3u);
    ASSERT_EQ(plan.runs.size(), 12u);
    std::set<std::string> names;
    for (const auto& r : plan.runs) names.insert(r.name);
    EXPECT_EQ(names.size(), 12u);
    // The first axis varies slowest.
    EXPECT_EQ(plan.runs[0].name, "attention=softmax_k=1_seed=1");
    EXPECT_EQ(plan.runs[1].name, "attention=softmax_k=1_seed=2");
    EXPECT_EQ(plan.runs[11].name, "attention=cog_k=3_seed=2");
    EXPECT_EQ(plan.runs[11].cfg.task.k, 3);
    EXPECT_EQ(plan.runs[11].cfg.train.seed, 2u);
    EXPECT_EQ(plan.runs[11].cfg.model.dim, 8);  // from [base.model]
    EXPECT_EQ(plan.runs[11].cfg.train.threads, 1);
    EXPECT_EQ(plan.runs[11].cfg.model.attention, std::vector<AttnMap>(2, AttnMap::cog));

    // A tied axis: each point sets several keys; its `name` labels it.
    const std::string tied = std::string(kTinyBase) + R"(
[grid]
model = [
  { name = "tf-cog", "model.attention" = "cog" },
  { name = "lstm", "model.arch" = "lstm", "model.dim" = 12 },
  { model = { arch = "mlp", window = 4 } },
]
"train.seed" = [1, 2]
)";
    const SweepPlan p2 = plan_sweep(tied, "tied.toml");
    ASSERT_EQ(p2.runs.size(), 6u);
    EXPECT_TRUE(p2.axes[0].tied);
    EXPECT_EQ(p2.axes[0].labels, (std::vector<std::string>{"tf-cog", "lstm", "mlp 4"}));
    EXPECT_EQ(p2.axes[0].keys, (std::vector<std::string>{"model.attention", "model.arch",
                                                         "model.dim", "model.window"}));
    EXPECT_EQ(p2.runs[2].name, "model=lstm_seed=1");
    EXPECT_EQ(p2.runs[2].cfg.model.arch, Arch::lstm);
    EXPECT_EQ(p2.runs[2].cfg.model.dim, 12);
    EXPECT_EQ(p2.runs[0].cfg.model.dim, 8);
    EXPECT_EQ(p2.runs[4].cfg.model.window, 4);

    // Axes keep the file's order (the first varies slowest), whatever the keys' names.
    const SweepPlan order = plan_sweep(
        std::string(kTinyBase) +
            "[grid]\n\"train.seed\" = [1, 2]\n\"model.attention\" = [\"cog\", \"softmax\"]\n",
        "order.toml");
    EXPECT_EQ(order.axes[0].name, "train.seed");
    EXPECT_EQ(order.runs[1].name, "seed=1_attention=softmax");

    // "all" stands for every registered attention map.
    const SweepPlan p4 =
        plan_sweep(std::string(kTinyBase) + "[grid]\n\"model.attention\" = \"all\"\n", "all.toml");
    ASSERT_EQ(p4.runs.size(), all_attention_maps().size());
    EXPECT_EQ(p4.axes[0].labels[1], all_attention_maps()[1].name);

    // A recipe as the base, no grid: one run.
    const SweepPlan p3 = plan_sweep(
        "[base]\nrecipe = \"ladder-quick\"\n[base.train]\nsteps = 10\nwarmup = 2\n", "r.toml");
    ASSERT_EQ(p3.runs.size(), 1u);
    EXPECT_EQ(p3.runs[0].cfg.task.name, "ladder");
    EXPECT_EQ(p3.runs[0].cfg.train.steps, 10);
}

TEST(Sweep, GridErrorsNameTheKey) {
    const std::string base = kTinyBase;
    auto err = [&](const std::string& grid) {
        return error_of([&] { plan_sweep(base + grid, "g.toml"); });
    };
    std::string e = err("[grid]\n\"model.atention\" = [\"softmax\"]\n");
    EXPECT_NE(e.find("model.atention"), std::string::npos) << e;
    EXPECT_NE(e.find("model.attention"), std::string::npos) << e;  // the valid keys are listed
    e = err("[grid]\n\"model.attention\" = [\"softmax\", \"nope\"]\n");
    EXPECT_NE(e.find("model.attention"), std::string::npos) << e;
    EXPECT_NE(e.find("attention=nope"), std::string::npos) << e;  // the run
    e = err("[grid]\n\"model.layers\" = [1, 0]\n");
    EXPECT_NE(e.find("model.layers"), std::string::npos) << e;
    e = err("[grid]\n\"task.k\" = []\n");
    EXPECT_NE(e.find("empty"), std::string::npos) << e;
    e = err("[grid]\n\"task.k\" = 3\n");
    EXPECT_NE(e.find("must be a list"), std::string::npos) << e;
    e = err("[grid]\n\"train.threads\" = [1, 2]\n");
    EXPECT_NE(e.find("train.threads"), std::string::npos) << e;
    e = err("[grid]\n\"task.k\" = [1, 2]\nv = [{ \"task.k\" = 3 }]\n");
    EXPECT_NE(e.find("set by both"), std::string::npos) << e;
    e = err("[grid]\n\"task.k\" = [1, 1]\n");
    EXPECT_NE(e.find("twice"), std::string::npos) << e;
    // Resolution errors are found before anything runs: cog on an LSTM.
    e = err("[grid]\nv = [{ \"model.arch\" = \"lstm\", \"model.attention\" = \"cog\" }]\n");
    EXPECT_NE(e.find("model.attention"), std::string::npos) << e;
    EXPECT_NE(e.find("g.toml"), std::string::npos) << e;
    e = error_of([] { plan_sweep("[bsae]\n", "g.toml"); });
    EXPECT_NE(e.find("bsae"), std::string::npos) << e;
    e = error_of([] { plan_sweep("[base.modle]\ndim = 8\n", "g.toml"); });
    EXPECT_NE(e.find("modle"), std::string::npos) << e;
    e = error_of([] { plan_sweep("[base.model]\ndimm = 8\n", "g.toml"); });
    EXPECT_NE(e.find("model.dimm"), std::string::npos) << e;
    e = error_of([] { plan_sweep("[base]\nrecipe = \"nope\"\n", "g.toml"); });
    EXPECT_NE(e.find("nope"), std::string::npos) << e;
    e = error_of([] { load_grid("/nonexistent/grid.toml"); });
    EXPECT_NE(e.find("/nonexistent/grid.toml"), std::string::npos) << e;
}

// One tiny sweep serves the sweep, report and attention tests.
class TinySweep : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // ctest runs each test in its own process, possibly at the same time: one folder each.
        dir_ = fresh_dir("sweep-" + std::to_string(::getpid()));
        grid_ = std::string(kTinyBase) +
                "[grid]\n\"model.attention\" = [\"softmax\", \"cog\"]\n\"train.seed\" = [1, 2]\n";
        const SweepPlan plan = plan_sweep(grid_, "tiny.toml");
        // Run 1 was interrupted half-way: a checkpoint at step 3 of 6, no summary.
        TrainOptions t;
        t.out_dir = dir_ + "/" + plan.runs[1].name;
        t.stop_after = 3;
        t.quiet = true;
        train_new(plan.runs[1].cfg, t);
        ASSERT_FALSE(fs::exists(t.out_dir + "/summary.json"));
        SweepOptions opt;
        opt.out_dir = dir_;
        opt.binary = attnlab_binary();
        opt.jobs = 2;
        opt.quiet = true;
        ASSERT_TRUE(fs::exists(opt.binary))
            << "the attnlab binary is needed next to the tests: " << opt.binary;
        first_ = run_sweep(plan, opt);
    }
    static std::string dir_, grid_;
    static SweepOutcome first_;
};
std::string TinySweep::dir_, TinySweep::grid_;
SweepOutcome TinySweep::first_;

TEST_F(TinySweep, RunsResumesAndSkips) {
    EXPECT_EQ(first_.total, 4);
    EXPECT_EQ(first_.ran, 4);
    EXPECT_EQ(first_.skipped, 0);
    EXPECT_TRUE(first_.failed.empty());
    const SweepPlan plan = plan_sweep(grid_, "tiny.toml");
    for (const auto& r : plan.runs)
        EXPECT_TRUE(fs::exists(dir_ + "/" + r.name + "/summary.json")) << r.name;
    // The interrupted run was continued from its checkpoint, not started again.
    const std::string log = read_file(dir_ + "/" + plan.runs[1].name + "/train.log");
    EXPECT_NE(log.find("resuming"), std::string::npos) << log;

    // runs.csv: a header and one row per run, with the swept values and the accuracy.
    const std::string csv = read_file(dir_ + "/runs.csv");
    std::stringstream ss(csv);
    std::string line;
    std::getline(ss, line);
    EXPECT_EQ(
        line.rfind("run,model.attention,train.seed,accuracy,loss,accuracy_K1,params,steps,wall_s",
                   0),
        0u)
        << line;
    int rows = 0;
    while (std::getline(ss, line)) {
        EXPECT_EQ(line.rfind(plan.runs[size_t(rows)].name + ",", 0), 0u) << line;
        rows++;
    }
    EXPECT_EQ(rows, 4);
    EXPECT_NE(csv.find("attention=cog_seed=2,cog,2,"), std::string::npos) << csv;

    // Again: everything is finished, nothing runs, no summary is rewritten.
    const auto before = fs::last_write_time(dir_ + "/" + plan.runs[0].name + "/summary.json");
    SweepOptions opt;
    opt.out_dir = dir_;
    opt.binary = attnlab_binary();
    opt.quiet = true;
    const SweepOutcome again = run_sweep(plan, opt);
    EXPECT_EQ(again.skipped, 4);
    EXPECT_EQ(again.ran, 0);
    EXPECT_EQ(fs::last_write_time(dir_ + "/" + plan.runs[0].name + "/summary.json"), before);

    // A grid that now asks for something else is refused, naming the key, before anything runs.
    std::string changed = grid_;
    changed.replace(changed.find("steps = 6"), 9, "steps = 7");
    const std::string e = error_of([&] { run_sweep(plan_sweep(changed, "tiny.toml"), opt); });
    EXPECT_NE(e.find("train.steps"), std::string::npos) << e;
}

TEST_F(TinySweep, ReportHasOneSeriesPerMap) {
    ReportOptions opt;
    opt.dir = dir_;
    const ReportFiles f = write_report(opt);
    EXPECT_EQ(f.runs_finished, 4);
    EXPECT_EQ(f.series, (std::vector<std::string>{"softmax", "cog"}));
    EXPECT_EQ(f.x_axis, "");  // only the series and the seed vary: bars
    const std::string html = read_file(f.html);
    const std::string svg = read_file(f.svg);
    EXPECT_EQ(tag_balance(html), "");
    EXPECT_EQ(tag_balance(svg), "");
    EXPECT_EQ(count(svg, "class=\"series\""), 2u);
    EXPECT_EQ(count(svg, "class=\"series\" data-series=\"softmax\""), 1u);
    EXPECT_EQ(count(svg, "class=\"series\" data-series=\"cog\""), 1u);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    for (const char* fetch : {"src=", "href=", "<link", "url("})  // nothing is fetched
        EXPECT_EQ(html.find(fetch), std::string::npos) << fetch;
    EXPECT_NE(html.find("Learning curves"), std::string::npos);
    const std::string md = read_file(f.markdown);
    EXPECT_NE(md.find("| softmax | 2 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| cog | 2 |"), std::string::npos) << md;

    // With the seed along x, the plot is one line per map.
    opt.x = "train.seed";
    const ReportFiles lines = write_report(opt);
    EXPECT_EQ(lines.x_axis, "train.seed");
    const std::string line_svg = read_file(lines.svg);
    EXPECT_EQ(count(line_svg, "class=\"series\""), 2u);
    EXPECT_NE(line_svg.find("<polyline"), std::string::npos);
    EXPECT_EQ(tag_balance(read_file(lines.html)), "");

    opt.x = "task.k";
    EXPECT_NE(error_of([&] { write_report(opt); }).find("task.k"), std::string::npos);
    ReportOptions bad;
    bad.dir = fresh_dir("not-a-sweep");
    EXPECT_NE(error_of([&] { write_report(bad); }).find("sweep.json"), std::string::npos);
}

// A sweep of byte-level language models is plotted in validation bits per byte.
TEST(Report, TextSweepPlotsBitsPerByte) {
    const std::string dir = fresh_dir("text-sweep-" + std::to_string(::getpid()));
    const std::string corpus = dir + "-corpus.txt";
    {
        Rng rng(7);
        std::ofstream out(corpus, std::ios::binary | std::ios::trunc);
        for (int i = 0; i < 4096; i++) out.put(char('a' + rng.below(26)));
    }
    std::string grid = kTinyBase;
    grid.replace(grid.find("name = \"ladder\"\nn = 4\nk = 1\n"), 28,
                 "name = \"text\"\npath = \"" + corpus + "\"\n");
    grid += "[grid]\n\"train.seed\" = [1, 2]\n";
    SweepOptions opt;
    opt.out_dir = dir;
    opt.binary = attnlab_binary();
    opt.quiet = true;
    const SweepOutcome run = run_sweep(plan_sweep(grid, "text.toml"), opt);
    ASSERT_EQ(run.ran, 2);
    EXPECT_NE(read_file(dir + "/runs.csv").find(",bits_per_byte"), std::string::npos);

    ReportOptions ropt;
    ropt.dir = dir;
    const ReportFiles f = write_report(ropt);
    const std::string svg = read_file(f.svg), html = read_file(f.html);
    EXPECT_NE(svg.find("bits per byte"), std::string::npos);
    EXPECT_EQ(svg.find(">100%<"), std::string::npos);  // no percent ticks: not an accuracy axis
    EXPECT_NE(html.find("Validation bits per byte during training"), std::string::npos);
    EXPECT_EQ(tag_balance(html), "");
    const std::string md = read_file(f.markdown);
    EXPECT_NE(md.find("bits / byte"), std::string::npos) << md;
    // The table still gives accuracy in percent beside the bits (about 5 bits per byte
    // here would read as 500 % if the columns were mixed up).
    const std::regex row(
        R"(\n\| [^|]+ \| 2 \| ([0-9.]+) ± [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| ([0-9.]+) ±)");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(md, m, row)) << md;
    EXPECT_LT(std::stod(m[1]), 100.0) << md;
    EXPECT_GT(std::stod(m[2]), 1.0) << md;
}

TEST_F(TinySweep, AttentionPlotHasOneHeatmapPerLayerAndHead) {
    const SweepPlan plan = plan_sweep(grid_, "tiny.toml");
    AttentionPlotOptions opt;
    opt.run_dir = dir_ + "/" + plan.runs[2].name;  // cog
    opt.window = 5;
    const AttentionPlot p = plot_attention(opt);
    EXPECT_EQ(p.layers, 2);
    EXPECT_EQ(p.heads, 4);
    EXPECT_EQ(count(p.svg, "class=\"heatmap\""), 8u);  // 2 layers x 4 heads
    EXPECT_EQ(tag_balance(p.svg), "");
    EXPECT_GT(p.vmax, 0);
    const std::string out = dir_ + "/attention.html";
    write_attention_plot(p, out);
    EXPECT_EQ(tag_balance(read_file(out)), "");
    EXPECT_THROW(write_attention_plot(p, dir_ + "/attention.png"), Error);

    opt.window = 8;  // eval_windows = 8
    EXPECT_NE(error_of([&] { plot_attention(opt); }).find("--window 8"), std::string::npos);
}

TEST(AttentionPlot, RefusesModelsWithoutAttention) {
    SweepPlan plan =
        plan_sweep(std::string(kTinyBase) + "[grid]\n\"model.arch\" = [\"lstm\"]\n", "lstm.toml");
    TrainOptions t;
    t.out_dir = fresh_dir("lstm");
    t.quiet = true;
    train_new(plan.runs[0].cfg, t);
    AttentionPlotOptions opt;
    opt.run_dir = t.out_dir;
    const std::string e = error_of([&] { plot_attention(opt); });
    EXPECT_NE(e.find("no attention"), std::string::npos) << e;
}
