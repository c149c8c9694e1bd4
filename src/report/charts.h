// Charts for the sweep report, drawn with the SVG builder: lines with a spread
// band (accuracy against a swept value, learning curves), grouped bars with
// whiskers, and a legend strip.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "report/svg.h"

namespace attnlab {

struct ChartSeries {
    std::string name, colour;
    std::vector<double> x, mean;                  // the line
    std::vector<double> lo, hi;                   // its band (empty: none)
    std::vector<std::pair<double, double>> dots;  // individual runs (x, y)
    std::vector<std::string> tips;                // per point of the line: a tooltip (may be empty)
};

struct LineChart {
    std::string title, subtitle, x_label, y_label;
    std::vector<std::string> categories;  // non-empty: x values are indices into these
    std::vector<double> x_ticks;          // numeric x: tick positions (empty: chosen automatically)
    std::vector<ChartSeries> series;
    double width = 760, height = 440;
    bool legend = true;        // the legend on the right
    bool percent = true;       // y in [0, 1] drawn as 0..100 %
    bool x_from_zero = false;  // numeric x: start the axis at 0 (learning curves)
};
Svg draw_line_chart(const LineChart& chart);

struct Bar {
    double mean = 0, lo = 0, hi = 0;  // whisker lo..hi
    std::vector<double> dots;         // individual runs
    std::string tip;
};

struct BarChart {
    std::string title, subtitle, y_label;
    std::vector<std::string> groups;                      // along x
    std::vector<std::string> series;                      // bars within a group
    std::vector<std::string> colours;                     // per series
    std::vector<std::vector<std::optional<Bar>>> values;  // [group][series]
    double width = 760, height = 420;
    bool legend = true;
    bool percent = true;
};
Svg draw_bar_chart(const BarChart& chart);

// A horizontal legend strip (wraps to more rows when needed).
Svg draw_legend(const std::vector<std::string>& names, const std::vector<std::string>& colours,
                double width);

// About `count` round tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int count);
// A number as a tick label: integers without decimals, otherwise up to 3 significant digits.
std::string tick_label(double v);

}  // namespace attnlab
