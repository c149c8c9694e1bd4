// Gaussian fits and the Frechet distance, in double precision throughout.
#include "report/fid.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace attnlab {

Gaussian fit_gaussian(const float* f, int n, int d) {
    if (n < 2)
        throw Error("a Gaussian fit needs at least 2 feature vectors, got " + std::to_string(n));
    Gaussian g;
    g.d = d;
    g.mean.assign(size_t(d), 0.0);
    g.cov.assign(size_t(d) * d, 0.0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) g.mean[size_t(j)] += f[size_t(i) * d + j];
    for (auto& m : g.mean) m /= n;
    std::vector<double> c(static_cast<size_t>(d));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) c[size_t(j)] = f[size_t(i) * d + j] - g.mean[size_t(j)];
        for (int j = 0; j < d; j++)
            for (int k = j; k < d; k++) g.cov[size_t(j) * d + k] += c[size_t(j)] * c[size_t(k)];
    }
    for (int j = 0; j < d; j++)
        for (int k = j; k < d; k++) g.cov[size_t(k) * d + j] = g.cov[size_t(j) * d + k] /= (n - 1);
    return g;
}

void symmetric_eigen(const std::vector<double>& A0, int n, std::vector<double>& values,
                     std::vector<double>& V) {
    std::vector<double> A = A0;
    V.assign(size_t(n) * n, 0.0);
    for (int i = 0; i < n; i++) V[size_t(i) * n + i] = 1.0;
    auto at = [&](int i, int j) -> double& { return A[size_t(i) * n + j]; };
    double total = 0;
    for (double a : A) total += a * a;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += at(i, j) * at(i, j);
        if (off <= 1e-30 * total || off == 0) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (at(p, q) == 0) continue;
                // The rotation that zeros A[p][q]: tan(2 theta) = 2 A_pq / (A_qq - A_pp).
                const double theta = (at(q, q) - at(p, p)) / (2 * at(p, q));
                const double t =
                    (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {  // A <- A J (columns p, q)
                    const double akp = at(k, p), akq = at(k, q);
                    at(k, p) = c * akp - s * akq, at(k, q) = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {  // A <- J^T A (rows p, q)
                    const double apk = at(p, k), aqk = at(q, k);
                    at(p, k) = c * apk - s * aqk, at(q, k) = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {  // V <- V J
                    const double vkp = V[size_t(k) * n + p], vkq = V[size_t(k) * n + q];
                    V[size_t(k) * n + p] = c * vkp - s * vkq,
                                      V[size_t(k) * n + q] = s * vkp + c * vkq;
                }
            }
    }
    values.resize(size_t(n));
    for (int i = 0; i < n; i++) values[size_t(i)] = at(i, i);
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
    if (a.d != b.d || a.d < 1) throw Error("Frechet distance of Gaussians of different dimensions");
    const int d = a.d;
    double dist = 0;
    for (int i = 0; i < d; i++)
        dist += (a.mean[size_t(i)] - b.mean[size_t(i)]) * (a.mean[size_t(i)] - b.mean[size_t(i)]);
    for (int i = 0; i < d; i++) dist += a.cov[size_t(i) * d + i] + b.cov[size_t(i) * d + i];
    // R = S1^(1/2) = V diag(sqrt(max(l, 0))) V^T; M = R S2 R.
    std::vector<double> l, V;
    symmetric_eigen(a.cov, d, l, V);
    std::vector<double> R(size_t(d) * d, 0.0), RS(size_t(d) * d, 0.0), M(size_t(d) * d, 0.0);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++)
                s += V[size_t(i) * d + k] * std::sqrt(std::max(l[size_t(k)], 0.0)) *
                     V[size_t(j) * d + k];
            R[size_t(i) * d + j] = s;
        }
    for (int i = 0; i < d; i++)
        for (int k = 0; k < d; k++) {
            const double r = R[size_t(i) * d + k];
            for (int j = 0; j < d; j++) RS[size_t(i) * d + j] += r * b.cov[size_t(k) * d + j];
        }
    for (int i = 0; i < d; i++)
        for (int k = 0; k < d; k++) {
            const double r = RS[size_t(i) * d + k];
            for (int j = 0; j < d; j++) M[size_t(i) * d + j] += r * R[size_t(k) * d + j];
        }
    for (int i = 0; i < d; i++)  // symmetrise away rounding
        for (int j = i + 1; j < d; j++)
            M[size_t(i) * d + j] = M[size_t(j) * d + i] =
                0.5 * (M[size_t(i) * d + j] + M[size_t(j) * d + i]);
    std::vector<double> m, W;
    symmetric_eigen(M, d, m, W);
    double trace_sqrt = 0;
    for (double v : m) trace_sqrt += std::sqrt(std::max(v, 0.0));
    return dist - 2 * trace_sqrt;
}

}  // namespace attnlab
