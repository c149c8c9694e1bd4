// The SVG builder: elements appended to a string, numbers printed short.
#include "report/svg.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"

namespace attnlab {

std::string xml_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string svg_num(double x) {
    if (!std::isfinite(x)) return "0";
    std::string s = fmt::format("{:.2f}", x);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    if (s == "-0") s = "0";
    return s;
}

static const char* anchor_name(Anchor a) {
    return a == Anchor::start ? "start" : a == Anchor::middle ? "middle" : "end";
}

Svg::Svg(double width, double height) : width_(width), height_(height) {}

void Svg::rect(double x, double y, double w, double h, const std::string& fill,
               const std::string& extra) {
    body_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}{}/>\n",
                         svg_num(x), svg_num(y), svg_num(std::max(0.0, w)),
                         svg_num(std::max(0.0, h)), fill, extra.empty() ? "" : " ", extra);
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke,
               double stroke_width, const std::string& extra) {
    body_ += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}{}/>\n",
        svg_num(x1), svg_num(y1), svg_num(x2), svg_num(y2), stroke, svg_num(stroke_width),
        extra.empty() ? "" : " ", extra);
}

static std::string points_attr(const std::vector<std::pair<double, double>>& points) {
    std::string p;
    for (const auto& [x, y] : points) {
        if (!p.empty()) p += ' ';
        p += svg_num(x);
        p += ',';
        p += svg_num(y);
    }
    return p;
}

void Svg::polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke,
                   double stroke_width, const std::string& extra) {
    body_ += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" "
        "stroke-linejoin=\"round\"{}{}/>\n",
        points_attr(points), stroke, svg_num(stroke_width), extra.empty() ? "" : " ", extra);
}

void Svg::polygon(const std::vector<std::pair<double, double>>& points, const std::string& fill,
                  double opacity, const std::string& extra) {
    body_ += fmt::format(
        "<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"{}\" stroke=\"none\"{}{}/>\n",
        points_attr(points), fill, svg_num(opacity), extra.empty() ? "" : " ", extra);
}

void Svg::circle(double cx, double cy, double r, const std::string& fill,
                 const std::string& extra) {
    body_ += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"{}{}/>\n", svg_num(cx),
                         svg_num(cy), svg_num(r), fill, extra.empty() ? "" : " ", extra);
}

void Svg::text(double x, double y, const std::string& s, double size, Anchor anchor,
               const std::string& extra) {
    body_ +=
        fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\"{}{}>{}</text>\n",
                    svg_num(x), svg_num(y), svg_num(size), anchor_name(anchor),
                    extra.empty() ? "" : " ", extra, xml_escape(s));
}

void Svg::rotated_text(double x, double y, double degrees, const std::string& s, double size,
                       Anchor anchor) {
    text(x, y, s, size, anchor,
         fmt::format("transform=\"rotate({} {} {})\"", svg_num(degrees), svg_num(x), svg_num(y)));
}

void Svg::open_group(const std::string& attributes) {
    body_ += attributes.empty() ? "<g>\n" : "<g " + attributes + ">\n";
    open_groups_++;
}

void Svg::close_group() {
    if (open_groups_ == 0) throw Error("internal: Svg::close_group without an open group");
    body_ += "</g>\n";
    open_groups_--;
}

void Svg::title(const std::string& s) {
    body_ += "<title>" + xml_escape(s) + "</title>\n";
}

void Svg::embed(const Svg& other, double x, double y) {
    if (other.open_groups_ != 0) throw Error("internal: embedding an SVG with open groups");
    body_ += fmt::format("<g transform=\"translate({} {})\">\n", svg_num(x), svg_num(y)) +
             other.body_ + "</g>\n";
}

std::string Svg::str() const {
    if (open_groups_ != 0) throw Error("internal: SVG document with unclosed groups");
    return fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
        "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n{2}</svg>\n",
        svg_num(width_), svg_num(height_), body_);
}

std::string rgb_hex(double r, double g, double b) {
    auto c = [](double v) { return int(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
    return fmt::format("#{:02x}{:02x}{:02x}", c(r), c(g), c(b));
}

std::string series_colour(size_t i) {
    static const std::array<const char*, 10> palette{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                     "#9467bd", "#8c564b", "#e377c2", "#17becf",
                                                     "#7f7f7f", "#bcbd22"};
    return palette[i % palette.size()];
}

std::string diverging_colour(double v) {
    // Stops from dark blue through white to dark red, evenly spaced on [-1, 1].
    struct Rgb {
        double r, g, b;
    };
    static const std::array<Rgb, 7> stops{{{0.13, 0.40, 0.67},
                                           {0.40, 0.66, 0.81},
                                           {0.82, 0.90, 0.94},
                                           {1.00, 1.00, 1.00},
                                           {0.99, 0.86, 0.78},
                                           {0.94, 0.54, 0.38},
                                           {0.70, 0.09, 0.17}}};
    if (!std::isfinite(v)) v = 0;
    const double t = (std::clamp(v, -1.0, 1.0) + 1) / 2 * double(stops.size() - 1);
    const size_t i = std::min(size_t(t), stops.size() - 2);
    const double f = t - double(i);
    const Rgb& a = stops[i];
    const Rgb& b = stops[i + 1];
    return rgb_hex(a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b));
}

}  // namespace attnlab
