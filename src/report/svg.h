// A small SVG builder for the report and attention plots: shapes and text with
// escaped attributes, groups, and the colour scales both plots share.
#pragma once
#include <string>
#include <vector>

namespace attnlab {

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string xml_escape(const std::string& s);
// A coordinate or length with at most two decimals and no trailing zeros.
std::string svg_num(double x);

enum class Anchor { start, middle, end };

class Svg {
  public:
    Svg(double width, double height);

    double width() const { return width_; }
    double height() const { return height_; }

    // `extra` is appended verbatim inside the element (already-escaped attributes).
    void rect(double x, double y, double w, double h, const std::string& fill,
              const std::string& extra = "");
    void line(double x1, double y1, double x2, double y2, const std::string& stroke,
              double stroke_width = 1, const std::string& extra = "");
    void polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke,
                  double stroke_width = 1.5, const std::string& extra = "");
    // A closed filled polygon (confidence bands).
    void polygon(const std::vector<std::pair<double, double>>& points, const std::string& fill,
                 double opacity, const std::string& extra = "");
    void circle(double cx, double cy, double r, const std::string& fill,
                const std::string& extra = "");
    void text(double x, double y, const std::string& s, double size = 12,
              Anchor anchor = Anchor::start, const std::string& extra = "");
    // Text rotated by `degrees` about its anchor point.
    void rotated_text(double x, double y, double degrees, const std::string& s, double size = 12,
                      Anchor anchor = Anchor::start);
    // <g ...> ... </g>; every open_group needs a close_group.
    void open_group(const std::string& attributes = "");
    void close_group();
    // A <title> tooltip for the element most recently opened as a group.
    void title(const std::string& s);
    // Inserts another document's elements at (x, y) (its <svg> wrapper dropped).
    void embed(const Svg& other, double x, double y);

    // The complete document with the xmlns declaration, usable standalone or inline in HTML.
    std::string str() const;

  private:
    double width_, height_;
    std::string body_;
    int open_groups_ = 0;
};

// Colours as "#rrggbb".
std::string rgb_hex(double r, double g, double b);  // components in [0, 1]
// Distinct colours for series 0, 1, 2, ... (repeats after ten).
std::string series_colour(size_t i);
// The diverging blue-white-red scale: v in [-1, 1] (clamped), -1 blue, 0 white, +1 red.
std::string diverging_colour(double v);

}  // namespace attnlab
