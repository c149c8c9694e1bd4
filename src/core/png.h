// PNG output through libpng: grey images and grids of them (sample sheets).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

// Writes a width x height 8-bit grey PNG (pixels row-major), atomically.
void write_png_grey(const std::string& path, const uint8_t* pixels, int width, int height);

// Tiles n images of rows x cols (each row-major, 8-bit grey) into a grid of
// `columns` images per row with `pad` pixels of `background` between and
// around them. Returns the sheet's pixels and sets width and height.
std::vector<uint8_t> tile_grid(const uint8_t* images, int n, int rows, int cols, int columns,
                               int pad, uint8_t background, int& width, int& height);

// Reads a PNG converted to 8-bit grey (for tests and tools); throws Error naming the file.
std::vector<uint8_t> read_png_grey(const std::string& path, int& width, int& height);

}  // namespace attnlab
