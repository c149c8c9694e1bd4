// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grey images of 10
// clothing classes, read from the gzip'd IDX files of Debian's
// dataset-fashion-mnist with zlib. Also reads any IDX image/label pair.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

// Where Debian's dataset-fashion-mnist installs the four IDX files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The ten class names, index = label.
const std::vector<std::string>& fashion_mnist_classes();

// n images of rows x cols bytes (0 = black .. 255 = white), row-major, with labels.
struct ImageSet {
    int n = 0, rows = 0, cols = 0;
    std::vector<uint8_t> pixels;  // (n, rows, cols)
    std::vector<uint8_t> labels;  // (n)
    const uint8_t* image(int i) const { return pixels.data() + size_t(i) * rows * cols; }
    int pixels_per_image() const { return rows * cols; }
};

// Reads an IDX image file (magic 0x00000803, dims n, rows, cols) and an IDX label
// file (magic 0x00000801, dim n), gzip'd or not (zlib reads both). Throws Error
// naming the file and the defect: missing, truncated, wrong magic, counts that
// disagree, labels >= num_classes.
ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int num_classes = 10);

enum class Split { train, test };

// The 60,000 training or 10,000 test images from `dir` (train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-...). A missing file gives an error that says
// how to install the Debian package.
ImageSet load_fashion_mnist(const std::string& dir, Split split);

// The side of the (square) training images in `dir`, from the IDX header alone.
int fashion_mnist_image_side(const std::string& dir);

}  // namespace attnlab
