// Line and bar charts for the report: plot area, ticks and grid, series with
// spread, legends. Text widths are estimated (0.6 em per character), which is
// close enough for the sans-serif fonts a browser picks.
#include "report/charts.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace attnlab {

namespace {

double text_width(const std::string& s, double size) {
    return 0.6 * size * double(s.size());
}

double longest(const std::vector<std::string>& v, double size) {
    double w = 0;
    for (const auto& s : v) w = std::max(w, text_width(s, size));
    return w;
}

const char* kGrid = "#e4e4e4";
const char* kAxis = "#444444";
const char* kMuted = "#555555";

// The frame shared by both chart kinds: title, subtitle, y grid with labels, y label.
struct Frame {
    double left, top, width, height;  // the plot area
    double y_min, y_max;
    double y(double v) const { return top + height - (v - y_min) / (y_max - y_min) * height; }
};

void draw_titles(Svg& svg, const std::string& title, const std::string& subtitle, double left) {
    if (!title.empty())
        svg.text(left, 20, title, 15, Anchor::start, "font-weight=\"bold\" fill=\"#222222\"");
    if (!subtitle.empty())
        svg.text(left, 37, subtitle, 11, Anchor::start, std::string("fill=\"") + kMuted + "\"");
}

void draw_y_axis(Svg& svg, const Frame& f, const std::vector<double>& ticks, bool percent,
                 const std::string& label) {
    for (double t : ticks) {
        const double y = f.y(t);
        svg.line(f.left, y, f.left + f.width, y, kGrid, 1);
        svg.text(f.left - 6, y + 4, percent ? tick_label(100 * t) + "%" : tick_label(t), 11,
                 Anchor::end, std::string("fill=\"") + kMuted + "\"");
    }
    svg.line(f.left, f.top, f.left, f.top + f.height, kAxis, 1);
    svg.line(f.left, f.top + f.height, f.left + f.width, f.top + f.height, kAxis, 1);
    if (!label.empty()) svg.rotated_text(14, f.top + f.height / 2, -90, label, 12, Anchor::middle);
}

std::vector<double> y_range_ticks(bool percent, const std::vector<double>& values, double& lo,
                                  double& hi) {
    if (percent) {
        lo = 0, hi = 1;
        return {0, 0.2, 0.4, 0.6, 0.8, 1.0};
    }
    lo = values.empty() ? 0 : *std::min_element(values.begin(), values.end());
    hi = values.empty() ? 1 : *std::max_element(values.begin(), values.end());
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    auto ticks = nice_ticks(lo, hi, 5);
    lo = std::min(lo, ticks.front());
    hi = std::max(hi, ticks.back());
    return ticks;
}

void legend_column(Svg& svg, double x, double y, const std::vector<std::string>& names,
                   const std::vector<std::string>& colours, bool lines) {
    for (size_t i = 0; i < names.size(); i++) {
        const double yy = y + 20 * double(i);
        svg.open_group("class=\"legend-entry\" data-series=\"" + xml_escape(names[i]) + "\"");
        if (lines) {
            svg.line(x, yy, x + 20, yy, colours[i], 2.5);
            svg.circle(x + 10, yy, 3.5, colours[i]);
        } else {
            svg.rect(x + 3, yy - 6, 14, 12, colours[i]);
        }
        svg.text(x + 26, yy + 4, names[i], 12);
        svg.close_group();
    }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
    if (!(hi > lo)) return {lo};
    const double raw = (hi - lo) / std::max(1, count);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / mag;
    const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    std::vector<double> ticks;
    for (double t = std::floor(lo / step + 1e-9) * step; t <= hi + step * 0.5; t += step) {
        ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
        if (t >= hi - step * 1e-9) break;
    }
    return ticks;
}

std::string tick_label(double v) {
    if (std::abs(v - std::round(v)) < 1e-9 * std::max(1.0, std::abs(v)))
        return fmt::format("{}", long(std::round(v)));
    return fmt::format("{:.3g}", v);
}

namespace {

// One series of a line chart: its min-max band, single-run dots, the mean line
// and (for few points) markers with tool tips; X maps x values to pixels.
void draw_series(Svg& svg, const ChartSeries& s, const Frame& f,
                 const std::function<double(double)>& X) {
    svg.open_group("class=\"series\" data-series=\"" + xml_escape(s.name) + "\"");
    if (!s.lo.empty() && s.x.size() > 1) {
        std::vector<std::pair<double, double>> band;
        for (size_t i = 0; i < s.x.size(); i++) band.emplace_back(X(s.x[i]), f.y(s.hi[i]));
        for (size_t i = s.x.size(); i-- > 0;) band.emplace_back(X(s.x[i]), f.y(s.lo[i]));
        svg.polygon(band, s.colour, 0.13);
    }
    for (const auto& [x, y] : s.dots)
        svg.circle(X(x), f.y(y), 2, s.colour, "fill-opacity=\"0.45\"");
    std::vector<std::pair<double, double>> line;
    for (size_t i = 0; i < s.x.size(); i++) line.emplace_back(X(s.x[i]), f.y(s.mean[i]));
    if (line.size() > 1) svg.polyline(line, s.colour, 2, "stroke-opacity=\"0.85\"");
    // Markers only where there are few points (sweep values, not learning-curve steps).
    if (s.x.size() <= 24) {
        for (size_t i = 0; i < s.x.size(); i++) {
            if (!s.lo.empty() && s.x.size() == 1)
                svg.line(line[i].first, f.y(s.lo[i]), line[i].first, f.y(s.hi[i]), s.colour, 1.5);
            svg.open_group();
            svg.circle(line[i].first, line[i].second, 3.5, s.colour,
                       "stroke=\"#ffffff\" stroke-width=\"1\"");
            if (i < s.tips.size() && !s.tips[i].empty()) svg.title(s.tips[i]);
            svg.close_group();
        }
    }
    svg.close_group();
}

}  // namespace

Svg draw_line_chart(const LineChart& c) {
    Svg svg(c.width, c.height);
    std::vector<std::string> names, colours;
    for (const auto& s : c.series) names.push_back(s.name), colours.push_back(s.colour);
    const double legend_w = c.legend ? std::max(90.0, longest(names, 12) + 44) : 0;
    const bool rotate_x =
        !c.categories.empty() &&
        longest(c.categories, 11) > (c.width - 100 - legend_w) / double(c.categories.size()) - 6;
    const double bottom = 44 + (rotate_x ? 0.5 * longest(c.categories, 11) : 0);
    Frame f;
    f.left = 62;
    f.top = c.subtitle.empty() ? 34 : 50;
    f.width = c.width - f.left - 16 - legend_w;
    f.height = c.height - f.top - bottom;
    draw_titles(svg, c.title, c.subtitle, f.left);

    std::vector<double> all_y;
    double x_lo = INFINITY, x_hi = -INFINITY;
    for (const auto& s : c.series) {
        for (size_t i = 0; i < s.x.size(); i++) {
            x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
            all_y.push_back(s.mean[i]);
            if (!s.lo.empty()) all_y.push_back(s.lo[i]), all_y.push_back(s.hi[i]);
        }
        for (const auto& [x, y] : s.dots) all_y.push_back(y);
    }
    const auto y_ticks = y_range_ticks(c.percent, all_y, f.y_min, f.y_max);
    draw_y_axis(svg, f, y_ticks, c.percent, c.y_label);

    double x_min, x_max;
    std::vector<double> x_ticks = c.x_ticks;
    if (!c.categories.empty()) {
        x_min = -0.5, x_max = double(c.categories.size()) - 0.5;
    } else {
        if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
        if (c.x_from_zero) x_lo = std::min(x_lo, 0.0);
        if (x_ticks.empty()) x_ticks = nice_ticks(x_lo, x_hi, 6);
        x_lo = std::min(x_lo, x_ticks.front()), x_hi = std::max(x_hi, x_ticks.back());
        const double pad = x_hi > x_lo ? 0.04 * (x_hi - x_lo) : 1;
        x_min = x_lo - pad, x_max = x_hi + pad;
    }
    auto X = [&](double v) { return f.left + (v - x_min) / (x_max - x_min) * f.width; };
    const double axis_y = f.top + f.height;
    if (!c.categories.empty()) {
        for (size_t i = 0; i < c.categories.size(); i++) {
            const double x = X(double(i));
            svg.line(x, axis_y, x, axis_y + 4, kAxis, 1);
            if (rotate_x)
                svg.rotated_text(x, axis_y + 14, -30, c.categories[i], 11, Anchor::end);
            else
                svg.text(x, axis_y + 17, c.categories[i], 11, Anchor::middle);
        }
    } else {
        for (double t : x_ticks) {
            const double x = X(t);
            svg.line(x, axis_y, x, axis_y + 4, kAxis, 1);
            svg.text(x, axis_y + 17, tick_label(t), 11, Anchor::middle);
        }
    }
    if (!c.x_label.empty())
        svg.text(f.left + f.width / 2, c.height - 8, c.x_label, 12, Anchor::middle);

    for (const auto& s : c.series) draw_series(svg, s, f, X);
    if (c.legend) legend_column(svg, f.left + f.width + 18, f.top + 10, names, colours, true);
    return svg;
}

Svg draw_bar_chart(const BarChart& c) {
    Svg svg(c.width, c.height);
    const double legend_w = c.legend ? std::max(90.0, longest(c.series, 12) + 44) : 0;
    const double left = 62;
    const double plot_w = c.width - left - 16 - legend_w;
    const double group_w = plot_w / double(std::max<size_t>(1, c.groups.size()));
    const bool rotate_x = longest(c.groups, 11) > group_w - 6;
    Frame f;
    f.left = left;
    f.top = c.subtitle.empty() ? 34 : 50;
    f.width = plot_w;
    f.height = c.height - f.top - (30 + (rotate_x ? 0.5 * longest(c.groups, 11) + 8 : 10));
    draw_titles(svg, c.title, c.subtitle, f.left);
    std::vector<double> all_y;
    for (const auto& row : c.values)
        for (const auto& b : row)
            if (b) all_y.push_back(b->lo), all_y.push_back(b->hi), all_y.push_back(b->mean);
    all_y.push_back(0);
    const auto y_ticks = y_range_ticks(c.percent, all_y, f.y_min, f.y_max);
    draw_y_axis(svg, f, y_ticks, c.percent, c.y_label);

    const size_t ns = std::max<size_t>(1, c.series.size());
    const double bar_w = std::min(64.0, group_w * 0.8 / double(ns));
    const double inner = bar_w * double(ns);
    const double axis_y = f.top + f.height;
    for (size_t g = 0; g < c.groups.size(); g++) {
        const double cx = f.left + group_w * (double(g) + 0.5);
        if (rotate_x)
            svg.rotated_text(cx, axis_y + 14, -30, c.groups[g], 11, Anchor::end);
        else
            svg.text(cx, axis_y + 17, c.groups[g], 11, Anchor::middle);
    }
    for (size_t s = 0; s < c.series.size(); s++) {
        svg.open_group("class=\"series\" data-series=\"" + xml_escape(c.series[s]) + "\"");
        for (size_t g = 0; g < c.groups.size(); g++) {
            if (s >= c.values[g].size() || !c.values[g][s]) continue;
            const Bar& b = *c.values[g][s];
            const double x =
                f.left + group_w * double(g) + (group_w - inner) / 2 + bar_w * double(s);
            const double cx = x + bar_w / 2;
            svg.open_group();
            svg.rect(x + 1, f.y(b.mean), bar_w - 2, f.y(0) - f.y(b.mean), c.colours[s],
                     "fill-opacity=\"0.85\"");
            if (!b.tip.empty()) svg.title(b.tip);
            svg.close_group();
            if (b.hi > b.lo) {
                svg.line(cx, f.y(b.lo), cx, f.y(b.hi), "#222222", 1.2);
                const double cap = std::min(6.0, bar_w / 4);
                svg.line(cx - cap, f.y(b.lo), cx + cap, f.y(b.lo), "#222222", 1.2);
                svg.line(cx - cap, f.y(b.hi), cx + cap, f.y(b.hi), "#222222", 1.2);
            }
            for (size_t i = 0; i < b.dots.size(); i++) {
                const double jitter =
                    b.dots.size() > 1 ? (double(i) / double(b.dots.size() - 1) - 0.5) * bar_w * 0.4
                                      : 0;
                svg.circle(cx + jitter, f.y(b.dots[i]), 2, "#222222", "fill-opacity=\"0.55\"");
            }
            if (bar_w >= 22) {
                const double v = c.percent ? 100 * b.mean : b.mean;
                svg.text(cx, f.y(std::max(b.hi, b.mean)) - 4,
                         !c.percent    ? fmt::format("{:.3g}", v)
                         : bar_w >= 34 ? fmt::format("{:.1f}", v)
                                       : fmt::format("{:.0f}", v),
                         10, Anchor::middle, std::string("fill=\"") + kMuted + "\"");
            }
        }
        svg.close_group();
    }
    if (c.legend) legend_column(svg, f.left + f.width + 18, f.top + 10, c.series, c.colours, false);
    return svg;
}

Svg draw_legend(const std::vector<std::string>& names, const std::vector<std::string>& colours,
                double width) {
    // Lay the entries out in rows first to know the height.
    std::vector<std::pair<double, double>> pos;
    double x = 8, y = 14;
    for (const auto& n : names) {
        const double w = 28 + text_width(n, 12) + 18;
        if (x + w > width && x > 8) x = 8, y += 20;
        pos.emplace_back(x, y);
        x += w;
    }
    Svg svg(width, y + 10);
    for (size_t i = 0; i < names.size(); i++) {
        const auto [px, py] = pos[i];
        svg.open_group("class=\"legend-entry\" data-series=\"" + xml_escape(names[i]) + "\"");
        svg.line(px, py, px + 20, py, colours[i], 2.5);
        svg.circle(px + 10, py, 3.5, colours[i]);
        svg.text(px + 26, py + 4, names[i], 12);
        svg.close_group();
    }
    return svg;
}

}  // namespace attnlab
