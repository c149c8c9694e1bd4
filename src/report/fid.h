// The Frechet distance between two sets of feature vectors, each summarised by
// a Gaussian (Heusel et al. 2017): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
// With the features of attnlab's own Fashion-MNIST classifier (diffusion/
// classifier.h) it is the "FID (attnlab Fashion-MNIST features)"; it is not
// comparable to Inception-based FIDs in papers.
#pragma once
#include <vector>

namespace attnlab {

struct Gaussian {
    int d = 0;
    std::vector<double> mean;  // (d)
    std::vector<double> cov;   // (d, d), the unbiased sample covariance
};

// Mean and covariance of n >= 2 rows of d features.
Gaussian fit_gaussian(const float* features, int n, int d);

// Eigen-decomposition of a symmetric (n, n) matrix by cyclic Jacobi rotations:
// A = V diag(values) V^T, V's columns the eigenvectors (row-major in `vectors`).
void symmetric_eigen(const std::vector<double>& A, int n, std::vector<double>& values,
                     std::vector<double>& vectors);

// Tr((S1 S2)^(1/2)) is computed as sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), a
// symmetric positive semi-definite matrix with the same eigenvalues as S1 S2.
double frechet_distance(const Gaussian& a, const Gaussian& b);

}  // namespace attnlab
