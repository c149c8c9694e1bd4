// Core pieces: gemm against the naive reference, the RNG, safetensors round trip and rejection.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/gemm.h"
#include "core/parse_number.h"
#include "core/rng.h"
#include "core/safetensors.h"

using namespace attnlab;

TEST(Gemm, MatchesNaiveForAllTransposes) {
    Rng rng(1);
    const int M = 7, N = 5, K = 9;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            std::vector<float> A(M * K), B(K * N), C1(M * N), C2(M * N);
            for (auto& a : A) a = float(rng.normal());
            for (auto& b : B) b = float(rng.normal());
            for (int i = 0; i < M * N; i++) C1[i] = C2[i] = float(rng.normal());
            const int lda = ta ? M : K, ldb = tb ? K : N;
            gemm(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C1.data(), N);
            gemm_naive(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C2.data(), N);
            for (int i = 0; i < M * N; i++) EXPECT_NEAR(C1[i], C2[i], 1e-5) << ta << tb << i;
        }
}

TEST(Rng, DeterministicAndUniform) {
    Rng a(42), b(42), c(43);
    EXPECT_EQ(a.next_u64(), b.next_u64());
    EXPECT_NE(a.next_u64(), c.next_u64());
    std::vector<int> hist(10, 0);
    for (int i = 0; i < 100000; i++) hist[Rng(7).split(uint64_t(i)).below(10)]++;
    for (int h : hist) EXPECT_NEAR(h, 10000, 500);
    double mean = 0, var = 0;
    Rng r(3);
    for (int i = 0; i < 100000; i++) {
        const double x = r.normal();
        mean += x, var += x * x;
    }
    EXPECT_NEAR(mean / 1e5, 0.0, 0.02);
    EXPECT_NEAR(var / 1e5, 1.0, 0.02);
}

static std::string tmp_path(const char* name) {
    return std::string(::testing::TempDir()) + name;
}

TEST(SafeTensors, RoundTripAndMetadata) {
    const std::string path = tmp_path("rt.safetensors");
    std::vector<float> a{1, 2, 3, 4, 5, 6};
    std::vector<int32_t> b{7, -8};
    SafeTensorsWriter w;
    w.add_f32("a", {2, 3}, a.data());
    w.add("b", "I32", {2}, b.data(), 8);
    w.set_metadata("format", "attnlab-1");
    w.write(path);
    SafeTensorsFile f(path);
    EXPECT_EQ(f.metadata_or("format", ""), "attnlab-1");
    const float* pa = f.f32("a", {2, 3});
    for (int i = 0; i < 6; i++) EXPECT_EQ(pa[i], a[size_t(i)]);
    EXPECT_THROW(f.f32("a", {3, 2}), Error);
    EXPECT_THROW(f.f32("missing", {1}), Error);
    EXPECT_THROW(f.f32("b", {2}), Error);
}

// A file whose header is not padded to a multiple of 8 (other writers need not pad;
// found by fuzz_safetensors under UBSan): its floats are read from an aligned copy of
// the data section. An F32 tensor at an offset that is not a multiple of 4 is refused.
static std::vector<uint8_t> unpadded_file(const std::string& header, const std::vector<float>& x,
                                          size_t lead) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; i++) s[size_t(i)] = char(header.size() >> (8 * i));
    s += header;
    s.append(lead, '\7');
    s.append(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    return {s.begin(), s.end()};
}

TEST(SafeTensors, UnpaddedHeaderGivesAlignedFloats) {
    const std::vector<float> x{1.5f, -2.0f, 3.25f};
    const std::string h = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
    ASSERT_NE((8 + h.size()) % 4, 0u);  // the data section starts misaligned in the file
    const SafeTensorsFile f("unpadded", unpadded_file(h, x, 0));
    const float* a = f.f32("a", {3});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % alignof(float), 0u);
    for (size_t i = 0; i < x.size(); i++) EXPECT_EQ(a[i], x[i]);
    const std::string h2 = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}})";
    const SafeTensorsFile g("odd offset", unpadded_file(h2, x, 1));
    try {
        g.f32("a", {3});
        ADD_FAILURE() << "an F32 tensor at byte 1 was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("starts at byte 1"), std::string::npos) << e.what();
    }
}

TEST(SafeTensors, RejectsTruncatedAndCorruptFiles) {
    const std::string path = tmp_path("bad.safetensors");
    std::vector<float> a(100, 1.0f);
    SafeTensorsWriter w;
    w.add_f32("a", {100}, a.data());
    w.write(path);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto write = [&](const std::string& s) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << s;
    };
    write(bytes.substr(0, bytes.size() - 10));  // truncated data
    EXPECT_THROW(SafeTensorsFile{path}, Error);
    write(bytes.substr(0, 5));  // shorter than the length field
    EXPECT_THROW(SafeTensorsFile{path}, Error);
    std::string corrupt = bytes;
    corrupt[8] = '#';  // JSON broken: the opening brace
    write(corrupt);
    EXPECT_THROW(SafeTensorsFile{path}, Error);
    std::string huge = bytes;
    huge[6] = char(0x7f);  // header length beyond the file
    write(huge);
    EXPECT_THROW(SafeTensorsFile{path}, Error);
    try {
        write(bytes.substr(0, bytes.size() - 10));
        SafeTensorsFile f(path);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SafeTensors, WriteIsAtomicAndReportsUnwritableFolder) {
    std::vector<float> a(4, 2.0f);
    SafeTensorsWriter w;
    w.add_f32("a", {4}, a.data());
    EXPECT_THROW(w.write("/nonexistent-folder/x.safetensors"), Error);
}

TEST(ParseNumber, WholeTextOrAnErrorNamingTheField) {
    EXPECT_EQ(parse_count("0", "x"), 0);
    EXPECT_EQ(parse_count("1200", "x"), 1200);
    EXPECT_DOUBLE_EQ(parse_number("0.8875", "x"), 0.8875);
    EXPECT_DOUBLE_EQ(parse_number("-1e-3", "x"), -1e-3);
    EXPECT_DOUBLE_EQ(parse_number("1e-320", "x"), 1e-320);  // underflows, still finite
    for (const char* bad :
         {"", "-1", "+3", " 3", "3 ", "8.0", "1e3", "abc", "99999999999999999999"})
        EXPECT_THROW(parse_count(bad, "x"), Error) << bad;
    for (const char* bad : {"", " 1", "1 ", "nan", "inf", "1e999", "0.5x", "--1"})
        EXPECT_THROW(parse_number(bad, "x"), Error) << bad;
    try {
        parse_number("0.9q", "'c.safetensors': the metadata test_accuracy");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "'c.safetensors': the metadata test_accuracy is '0.9q', not a finite number");
    }
}
