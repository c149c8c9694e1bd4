// libpng writes through its simplified API (png_image), which handles the
// setjmp error path internally and reports failures in image.message.
#include "core/png.h"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace attnlab {

void write_png_grey(const std::string& path, const uint8_t* pixels, int width, int height) {
    if (width < 1 || height < 1)
        throw Error("cannot write an empty PNG (" + std::to_string(width) + "x" +
                    std::to_string(height) + ") to '" + path + "'");
    png_image img;
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = png_uint_32(width), img.height = png_uint_32(height);
    img.format = PNG_FORMAT_GRAY;
    // Encoded in memory (a first call measures it), then written atomically and durably.
    png_alloc_size_t size = 0;
    std::vector<uint8_t> bytes;
    if (png_image_write_to_memory(&img, nullptr, &size, 0, pixels, width, nullptr)) {
        bytes.resize(size);
        if (!png_image_write_to_memory(&img, bytes.data(), &size, 0, pixels, width, nullptr))
            size = 0;
    }
    if (size == 0) throw Error("cannot write PNG '" + path + "': " + img.message);
    write_file_atomic(path, bytes.data(), size);
}

std::vector<uint8_t> tile_grid(const uint8_t* images, int n, int rows, int cols, int columns,
                               int pad, uint8_t background, int& width, int& height) {
    if (n < 1 || columns < 1) throw Error("a grid needs at least one image and one column");
    const int grid_rows = (n + columns - 1) / columns, grid_cols = std::min(n, columns);
    width = grid_cols * (cols + pad) + pad, height = grid_rows * (rows + pad) + pad;
    std::vector<uint8_t> out(size_t(width) * height, background);
    for (int i = 0; i < n; i++) {
        const int y0 = pad + (i / columns) * (rows + pad), x0 = pad + (i % columns) * (cols + pad);
        for (int y = 0; y < rows; y++)
            std::memcpy(&out[size_t(y0 + y) * width + x0], images + (size_t(i) * rows + y) * cols,
                        size_t(cols));
    }
    return out;
}

std::vector<uint8_t> read_png_grey(const std::string& path, int& width, int& height) {
    png_image img;
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path.c_str()))
        throw Error("cannot read PNG '" + path + "': " + img.message);
    img.format = PNG_FORMAT_GRAY;
    width = int(img.width), height = int(img.height);
    std::vector<uint8_t> px(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, nullptr, px.data(), 0, nullptr))
        throw Error("cannot read PNG '" + path + "': " + img.message);
    return px;
}

}  // namespace attnlab
