// IDX reading through zlib's gz* interface (it passes uncompressed files through).
#include "data/fmnist.h"

#include <zlib.h>

#include <filesystem>

#include "core/error.h"

namespace attnlab {

namespace {

constexpr uint32_t kLabelMagic = 0x00000801, kImageMagic = 0x00000803;

// The whole (decompressed) content of a file.
std::vector<uint8_t> read_gz(const std::string& path) {
    if (!std::filesystem::exists(path)) throw Error("'" + path + "' does not exist");
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error("cannot open '" + path + "'");
    std::vector<uint8_t> out;
    uint8_t buf[1 << 16];
    int got = 0;
    while ((got = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + got);
    int errnum = 0;
    const std::string msg = got < 0 ? gzerror(f, &errnum) : "";
    gzclose(f);
    if (got < 0) throw Error("'" + path + "' is not a readable gzip file: " + msg);
    return out;
}

uint32_t be32(const std::vector<uint8_t>& d, size_t at) {
    return uint32_t(d[at]) << 24 | uint32_t(d[at + 1]) << 16 | uint32_t(d[at + 2]) << 8 | d[at + 3];
}

// Checks the header (magic, dimension count) and the payload size; returns the dims.
std::vector<uint32_t> idx_header(const std::vector<uint8_t>& d, const std::string& path,
                                 uint32_t magic, int ndims) {
    const size_t header = 4 + 4 * size_t(ndims);
    if (d.size() < header)
        throw Error("'" + path + "' is too short for an IDX header (" + std::to_string(d.size()) +
                    " bytes)");
    if (be32(d, 0) != magic)
        throw Error("'" + path + "' is not an IDX " + (ndims == 1 ? "label" : "image") +
                    " file: magic number " + std::to_string(be32(d, 0)) + ", expected " +
                    std::to_string(magic));
    std::vector<uint32_t> dims;
    size_t payload = 1;
    for (int i = 0; i < ndims; i++) {
        dims.push_back(be32(d, 4 + 4 * size_t(i)));
        payload *= dims.back();
    }
    if (d.size() != header + payload)
        throw Error("'" + path + "' holds " + std::to_string(d.size() - header) +
                    " data bytes but its header announces " + std::to_string(payload) +
                    " (truncated or corrupt)");
    return dims;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
    static const std::vector<std::string> names{"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};
    return names;
}

ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int num_classes) {
    const std::vector<uint8_t> img = read_gz(images_path), lab = read_gz(labels_path);
    const auto idims = idx_header(img, images_path, kImageMagic, 3);
    const auto ldims = idx_header(lab, labels_path, kLabelMagic, 1);
    if (idims[0] != ldims[0])
        throw Error("'" + images_path + "' holds " + std::to_string(idims[0]) + " images but '" +
                    labels_path + "' " + std::to_string(ldims[0]) + " labels");
    if (idims[0] == 0 || idims[1] == 0 || idims[2] == 0)
        throw Error("'" + images_path + "' holds no pixels");
    ImageSet s;
    s.n = int(idims[0]), s.rows = int(idims[1]), s.cols = int(idims[2]);
    s.pixels.assign(img.begin() + 16, img.end());
    s.labels.assign(lab.begin() + 8, lab.end());
    for (int i = 0; i < s.n; i++)
        if (s.labels[size_t(i)] >= num_classes)
            throw Error("'" + labels_path + "': label " + std::to_string(s.labels[size_t(i)]) +
                        " of item " + std::to_string(i) + " is not a class 0.." +
                        std::to_string(num_classes - 1));
    return s;
}

namespace {

std::string split_file(const std::string& dir, Split split, const char* what) {
    const std::string p = dir + "/" + (split == Split::train ? "train" : "t10k") + "-" + what +
                          "-idx" + (std::string(what) == "images" ? "3" : "1") + "-ubyte.gz";
    if (!std::filesystem::exists(p))
        throw Error("Fashion-MNIST file '" + p +
                    "' is missing: install the Debian package "
                    "dataset-fashion-mnist (`make deps` as root), or point task.images at a "
                    "folder holding the four IDX files");
    return p;
}

}  // namespace

ImageSet load_fashion_mnist(const std::string& dir, Split split) {
    const std::string images = split_file(dir, split, "images");
    ImageSet s = read_idx_pair(images, split_file(dir, split, "labels"), 10);
    if (s.rows != s.cols)
        throw Error("'" + images + "' holds " + std::to_string(s.rows) + "x" +
                    std::to_string(s.cols) +
                    " images; square images are expected (Fashion-MNIST's are 28x28)");
    return s;
}

int fashion_mnist_image_side(const std::string& dir) {
    const std::string path = split_file(dir, Split::train, "images");
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error("cannot open '" + path + "'");
    std::vector<uint8_t> head(16);
    const int got = gzread(f, head.data(), 16);
    gzclose(f);
    if (got != 16) throw Error("'" + path + "' is too short for an IDX image header");
    if (be32(head, 0) != kImageMagic || be32(head, 8) != be32(head, 12))
        throw Error("'" + path + "' is not an IDX file of square images");
    return int(be32(head, 8));
}

}  // namespace attnlab
