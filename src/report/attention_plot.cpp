// Attention heatmaps: one forward pass over an evaluation window, then per
// layer and head a T x T grid of w_ij (rows: queries i, columns: keys j).
#include "report/attention_plot.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/safetensors.h"
#include "report/charts.h"
#include "report/svg.h"
#include "sweep/sweep.h"
#include "train/trainer.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

const char* kMasked = "#e6e6e6";  // keys a query cannot see (j > i)

// The colour bar: +vmax at the top, -vmax at the bottom.
void draw_colour_bar(Svg& svg, double x, double y, double h, double vmax) {
    const int steps = 64;
    svg.text(x, y - 10, "weight", 12, Anchor::start, "font-weight=\"bold\"");
    for (int i = 0; i < steps; i++) {
        const double v = 1 - 2 * (double(i) + 0.5) / steps;
        svg.rect(x, y + h * double(i) / steps, 16, h / steps + 0.5, diverging_colour(v));
    }
    svg.rect(x, y, 16, h, "none", "stroke=\"#444444\" stroke-width=\"0.8\"");
    for (int t = 0; t <= 4; t++) {
        const double v = vmax * (1 - 0.5 * t);
        const double yy = y + h * t / 4;
        svg.line(x + 16, yy, x + 20, yy, "#444444", 1);
        svg.text(x + 23, yy + 4, t == 2 ? std::string("0") : fmt::format("{:+.2g}", v), 11);
    }
    svg.text(x, y + h + 18, "blue < 0 < red", 10, Anchor::start, "fill=\"#555555\"");
    svg.rect(x, y + h + 28, 16, 10, kMasked);
    svg.text(x + 22, y + h + 37, "masked", 10, Anchor::start, "fill=\"#555555\"");
}

// The weights of one forward pass, (B = 1, H, T, T) per layer, and the tokens
// of the window they were computed on.
struct WindowWeights {
    const Model& model;
    int T = 0;
    std::vector<std::string> tokens;
    float at(int l, int h, int i, int j) const {
        return model.attention_weights(l)[(size_t(h) * T + size_t(i)) * T + size_t(j)];
    }
    // The largest |w| a query sees, over every layer and head.
    double largest(int L, int H) const {
        double vmax = 0;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++)
                    for (int j = 0; j <= i; j++)
                        vmax = std::max(vmax, double(std::abs(at(l, h, i, j))));
        return vmax;
    }
};

// Geometry: cells shrink with T so a head stays about 480 px wide.
struct Geometry {
    double cell, font, label_w, size, panel_w, panel_h;
    static constexpr double top = 82, left = 16, legend_w = 110;
    Geometry(int T, size_t longest_token) {
        cell = std::clamp(std::floor(480.0 / T), 4.0, 18.0);
        font = std::clamp(cell * 0.8, 4.0, 11.0);
        label_w = 0.62 * font * double(std::min<size_t>(longest_token, 12)) + 6;
        size = cell * T;
        panel_w = label_w + size + 28, panel_h = 20 + label_w + size + 22;
    }
};

// One (layer, head) panel: title, the T x T grid of w_ij, the tokens along both sides.
void draw_head(Svg& svg, const WindowWeights& w, const Geometry& g, int l, int h,
               const std::string& map_name, double vmax) {
    const int T = w.T;
    const double cell = g.cell, font = g.font, size = g.size;
    const double px = g.left + g.panel_w * h, py = g.top + g.panel_h * l;
    const double x0 = px + g.label_w, y0 = py + 20 + g.label_w;  // the grid's top-left corner
    svg.open_group(fmt::format("class=\"heatmap\" data-layer=\"{}\" data-head=\"{}\"", l, h));
    svg.text(x0, py + 13, fmt::format("layer {}, head {} ({})", l, h, map_name), 12, Anchor::start,
             "font-weight=\"bold\"");
    // Masked background, the causal triangle in white, then the non-white cells.
    svg.rect(x0, y0, size, size, kMasked);
    for (int i = 0; i < T; i++) svg.rect(x0, y0 + cell * i, cell * (i + 1), cell, "#ffffff");
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            const double v = w.at(l, h, i, j) / vmax;
            if (std::abs(v) < 0.01) continue;  // indistinguishable from white
            svg.open_group();
            svg.rect(x0 + cell * j, y0 + cell * i, cell, cell, diverging_colour(v));
            svg.title(fmt::format("i = {} ({}), j = {} ({}): w = {:.4f}", i, w.tokens[size_t(i)], j,
                                  w.tokens[size_t(j)], w.at(l, h, i, j)));
            svg.close_group();
        }
    svg.rect(x0, y0, size, size, "none", "stroke=\"#888888\" stroke-width=\"0.6\"");
    // Tokens: queries down the left, keys along the top.
    for (int i = 0; i < T; i++) {
        const std::string t = w.tokens[size_t(i)].substr(0, 12);
        svg.text(x0 - 3, y0 + cell * (i + 0.5) + font * 0.35, t, font, Anchor::end);
        svg.rotated_text(x0 + cell * (i + 0.5) + font * 0.35, y0 - 3, -90, t, font, Anchor::start);
    }
    // Positions every 8 (or 4) along the bottom.
    const int every = T > 32 ? 8 : 4;
    for (int j = 0; j < T; j += every) {
        const double x = x0 + cell * (j + 0.5);
        svg.line(x, y0 + size, x, y0 + size + 3, "#888888", 0.8);
        svg.text(x, y0 + size + 13, std::to_string(j), 9, Anchor::middle, "fill=\"#777777\"");
    }
    svg.close_group();
}

// The run and the options, checked: a model with attention, a window in the evaluation set.
void check_plot_options(const LoadedRun& run, const AttentionPlotOptions& opt) {
    const ModelConfig& m = run.cfg.model;
    if (m.arch != Arch::transformer && m.arch != Arch::cisformer)
        throw Error("run '" + opt.run_dir + "' is model.arch = '" + arch_name(m.arch) +
                    "', which has no attention weights to plot");
    const int windows = run.cfg.train.eval_windows;
    if (opt.window < 0 || opt.window >= windows)
        throw Error(fmt::format(
            "--window {} is out of range: the run's evaluation set has {} windows (0..{})",
            opt.window, windows, windows - 1));
    if (opt.vmax && !(*opt.vmax > 0 && std::isfinite(*opt.vmax)))
        throw Error(fmt::format("--vmax {} must be a positive number", *opt.vmax));
}

}  // namespace

AttentionPlot plot_attention(const AttentionPlotOptions& opt) {
    LoadedRun run = load_run(opt.run_dir, 1);
    check_plot_options(run, opt);
    const ModelConfig& m = run.cfg.model;
    const int T = run.cfg.train.context, L = m.layers, H = m.heads;
    // Evaluation window `window`, exactly as EvalSet draws it.
    const Window win =
        sample_window(run.task->eval_task(), run.cfg.train.eval_seed, uint64_t(opt.window), T);
    std::vector<int32_t> inputs(win.tokens.begin(), win.tokens.begin() + T);
    std::vector<int32_t> targets(win.tokens.begin() + 1, win.tokens.end());
    const Batch batch{inputs.data(), targets.data(), win.counted.data(), 1, T};
    const LossResult loss = run.model->forward(batch);

    WindowWeights w{*run.model, T, {}};
    size_t longest = 1;
    for (int i = 0; i < T; i++) {
        w.tokens.push_back(run.task->token_text(inputs[size_t(i)]));
        longest = std::max(longest, w.tokens.back().size());
    }
    double vmax = opt.vmax ? *opt.vmax : w.largest(L, H);
    if (!(vmax > 0)) vmax = 1;
    const Geometry g(T, longest);

    AttentionPlot plot;
    plot.layers = L, plot.heads = H, plot.T = T, plot.vmax = vmax;
    const std::string title = "Attention weights, run " + opt.run_dir;
    const std::string model =
        fmt::format("{} with {} layers, {} heads, dim {}, pos {}; task {}", arch_name(m.arch), L, H,
                    m.dim, pos_name(m.pos), run.cfg.task.name);
    std::string window = fmt::format("evaluation window {} (T = {}): ", opt.window, T);
    window += loss.counted ? fmt::format("{} of {} counted targets predicted correctly",
                                         loss.correct, loss.counted)
                           : "no counted targets";
    if (auto r = read_run_result(opt.run_dir))
        window += fmt::format("; run accuracy {:.1f}%", 100 * r->accuracy);
    const std::string how = fmt::format(
        "rows: query position i (its input token on the left), columns: key position j (token on "
        "top); "
        "colour: w_ij, symmetric around 0 (\u00b1{:.3g})",
        vmax);
    plot.caption = title + ": " + model + "; " + window;
    // Wide enough for the header lines (estimated at 0.6 em per character).
    const double header_w =
        g.left + 0.6 * std::max(15.0 * double(title.size()),
                                11.0 * double(std::max({model.size(), window.size(), how.size()})));
    Svg svg(std::max(g.left + g.panel_w * H + g.legend_w, header_w + 16),
            g.top + g.panel_h * L + 10);
    svg.text(g.left, 22, title, 15, Anchor::start, "font-weight=\"bold\"");
    svg.text(g.left, 40, model, 11, Anchor::start, "fill=\"#555555\"");
    svg.text(g.left, 56, window, 11, Anchor::start, "fill=\"#555555\"");
    svg.text(g.left, 72, how, 11, Anchor::start, "fill=\"#555555\"");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            draw_head(svg, w, g, l, h, attention_map_info(m.attention[size_t(l)]).name, vmax);
    draw_colour_bar(svg, g.left + g.panel_w * H + 10, g.top + 40, 220, vmax);
    plot.svg = svg.str();
    return plot;
}

void write_attention_plot(const AttentionPlot& plot, const std::string& path) {
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".svg") {
        write_text_atomic(path, plot.svg);
    } else if (ext == ".html" || ext == ".htm") {
        write_text_atomic(
            path,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Attention weights</title>\n<style>body { font-family: \"DejaVu Sans\", "
            "Helvetica, Arial, sans-serif; margin: 16px; } p { color: #555; font-size: 13px; }"
            "</style>\n</head>\n<body>\n" +
                plot.svg + "</body>\n</html>\n");
    } else {
        throw Error("--out '" + path + "' must end in .svg or .html");
    }
}

}  // namespace attnlab
