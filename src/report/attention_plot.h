// `attnlab attention`: the attention weights of every layer and head of a
// trained run on one evaluation window, drawn as heatmaps on a diverging
// blue-white-red scale symmetric around 0 (so cog's negative weights show),
// with the window's tokens on the axes.
#pragma once
#include <optional>
#include <string>

namespace attnlab {

struct AttentionPlotOptions {
    std::string run_dir;
    int window = 0;              // index into the run's evaluation set
    std::optional<double> vmax;  // colour scale -vmax..vmax (default: the largest |w| shown)
};

struct AttentionPlot {
    std::string svg;      // the complete SVG document
    std::string caption;  // one line: run, window, model
    int layers = 0, heads = 0, T = 0;
    double vmax = 0;
};

// Loads the run, evaluates the window and draws every (layer, head); throws
// Error when the run has no attention (lstm, mlp) or the window is out of range.
AttentionPlot plot_attention(const AttentionPlotOptions& opt);

// Writes the plot to `path`: .svg as is, .html as a page around it.
void write_attention_plot(const AttentionPlot& plot, const std::string& path);

}  // namespace attnlab
