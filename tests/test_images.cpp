// Fashion-MNIST IDX reading (on small generated files, and the Debian files
// when installed) and PNG grids.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/png.h"
#include "data/fmnist.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> be32(uint32_t x) {
    return {uint8_t(x >> 24), uint8_t(x >> 16), uint8_t(x >> 8), uint8_t(x)};
}

void write_gz(const fs::path& p, const std::vector<uint8_t>& bytes) {
    gzFile f = gzopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    gzclose(f);
}

std::vector<uint8_t> idx(uint32_t magic, std::vector<uint32_t> dims, std::vector<uint8_t> data) {
    std::vector<uint8_t> out = be32(magic);
    for (auto d : dims) {
        auto b = be32(d);
        out.insert(out.end(), b.begin(), b.end());
    }
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

struct TmpDir {
    fs::path path;
    TmpDir() {
        path = fs::temp_directory_path() /
               ("attnlab-img-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
        fs::create_directories(path);
    }
    ~TmpDir() { fs::remove_all(path); }
    static int& counter() {
        static int c = 0;
        return c;
    }
};

// 3 images of 2x4, pixel = 10 * image + position; labels 2, 0, 9.
std::vector<uint8_t> image_bytes(int n = 3) {
    std::vector<uint8_t> px;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 8; j++) px.push_back(uint8_t(10 * i + j));
    return px;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Idx, ReadsGeneratedFiles) {
    TmpDir d;
    write_gz(d.path / "img.gz", idx(0x803, {3, 2, 4}, image_bytes()));
    write_gz(d.path / "lab.gz", idx(0x801, {3}, {2, 0, 9}));
    const ImageSet s = read_idx_pair(d.path / "img.gz", d.path / "lab.gz");
    EXPECT_EQ(s.n, 3);
    EXPECT_EQ(s.rows, 2);
    EXPECT_EQ(s.cols, 4);
    EXPECT_EQ(s.labels, (std::vector<uint8_t>{2, 0, 9}));
    EXPECT_EQ(s.image(1)[0], 10);
    EXPECT_EQ(s.image(2)[7], 27);
}

TEST(Idx, ReadsUncompressedFiles) {
    TmpDir d;
    auto write = [](const fs::path& p, const std::vector<uint8_t>& b) {
        std::ofstream(p, std::ios::binary)
            .write(reinterpret_cast<const char*>(b.data()), long(b.size()));
    };
    write(d.path / "img", idx(0x803, {3, 2, 4}, image_bytes()));
    write(d.path / "lab", idx(0x801, {3}, {1, 1, 1}));
    EXPECT_EQ(read_idx_pair(d.path / "img", d.path / "lab").n, 3);
}

TEST(Idx, NamesEachDefect) {
    TmpDir d;
    const fs::path img = d.path / "img.gz", lab = d.path / "lab.gz";
    write_gz(lab, idx(0x801, {3}, {2, 0, 9}));
    EXPECT_NE(error_of([&] { read_idx_pair(d.path / "absent.gz", lab); }).find("does not exist"),
              std::string::npos);
    write_gz(img, idx(0x801, {3, 2, 4}, image_bytes()));  // label magic on an image file
    EXPECT_NE(error_of([&] { read_idx_pair(img, lab); }).find("magic"), std::string::npos);
    auto truncated = idx(0x803, {3, 2, 4}, image_bytes());
    truncated.pop_back();
    write_gz(img, truncated);
    EXPECT_NE(error_of([&] { read_idx_pair(img, lab); }).find("truncated"), std::string::npos);
    write_gz(img, {0, 0, 8});
    EXPECT_NE(error_of([&] { read_idx_pair(img, lab); }).find("too short"), std::string::npos);
    write_gz(img, idx(0x803, {2, 2, 4}, image_bytes(2)));
    EXPECT_NE(error_of([&] { read_idx_pair(img, lab); }).find("3 labels"), std::string::npos);
    write_gz(img, idx(0x803, {3, 2, 4}, image_bytes()));
    write_gz(lab, idx(0x801, {3}, {2, 10, 9}));
    EXPECT_NE(error_of([&] { read_idx_pair(img, lab); }).find("label 10"), std::string::npos);
}

TEST(FashionMnist, MissingFolderSaysHowToInstall) {
    const std::string e = error_of([] { load_fashion_mnist("/nonexistent-fmnist", Split::test); });
    EXPECT_NE(e.find("dataset-fashion-mnist"), std::string::npos) << e;
}

TEST(FashionMnist, DebianFilesHaveTheDocumentedShape) {
    if (!fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const ImageSet s = load_fashion_mnist(kFashionMnistDir, Split::test);
    EXPECT_EQ(s.n, 10000);
    std::vector<int> per_class(10);
    for (auto l : s.labels) per_class[l]++;
    for (int c : per_class) EXPECT_EQ(c, 1000);  // the test set is balanced
}

TEST(Png, GridRoundTrips) {
    TmpDir d;
    const std::vector<uint8_t> px = image_bytes();  // 3 images of 2x4
    int w = 0, h = 0;
    const auto grid = tile_grid(px.data(), 3, 2, 4, 2, 1, 255, w, h);
    EXPECT_EQ(w, 2 * 5 + 1);
    EXPECT_EQ(h, 2 * 3 + 1);
    EXPECT_EQ(grid[size_t(1) * w + 1], 0);    // image 0, pixel (0, 0)
    EXPECT_EQ(grid[size_t(1) * w + 6], 10);   // image 1 starts at x = 6
    EXPECT_EQ(grid[size_t(4) * w + 4], 23);   // image 2, pixel (0, 3), second grid row (y = 4)
    EXPECT_EQ(grid[size_t(4) * w + 7], 255);  // the empty cell stays background
    write_png_grey((d.path / "g.png").string(), grid.data(), w, h);
    int rw = 0, rh = 0;
    EXPECT_EQ(read_png_grey((d.path / "g.png").string(), rw, rh), grid);
    EXPECT_EQ(rw, w);
    EXPECT_EQ(rh, h);
    EXPECT_FALSE(fs::exists(d.path / "g.png.tmp"));
    EXPECT_NE(error_of([&] {
                  write_png_grey("/nonexistent-dir/x.png", grid.data(), w, h);
              }).find("/nonexistent-dir/x.png"),
              std::string::npos);
}
