// The LSTM layer over a whole window: one gemm for the input projection of all
// time steps, a gemm per step for the recurrence, and exact backpropagation through time.
#pragma once

namespace attnlab {

// Gates in the order i, f, g, o: block k of the 4C rows of w_ih, w_hh and bias
// (and of every 4C-wide row of gates) belongs to gate k, as in PyTorch's nn.LSTM.
//   a_t = x_t w_ih^T + h_{t-1} w_hh^T + bias                    (4C pre-activations)
//   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   h_{-1} = c_{-1} = 0
// h, c, tanh_c (B, T, C); gates (B, T, 4C) receives (i, f, g, o) after their
// non-linearities; x (B, T, IC); w_ih (4C, IC), w_hh (4C, C), bias (4C).
void lstm_forward(float* h, float* c, float* tanh_c, float* gates, const float* x,
                  const float* w_ih, const float* w_hh, const float* bias, int B, int T, int IC,
                  int C);

// Backpropagation through time over the window, last step first.
// dh (B, T, C): on entry dL/dh_t from above (head or next layer); the recurrent
// part da_{t+1} w_hh is added into it, so on return it holds the total dL/dh_t.
// dgates (B, T, 4C) and dc (B, T, C) are written, not accumulated: dL/da_t and
// the total dL/dc_t (on return the t = 0 rows of dgates hold 0: they are cleared
// to form the recurrent weight gradient in one product). Then dx += da w_ih (dx may be nullptr),
// dw_ih += da^T x, dw_hh += sum_t da_t^T h_{t-1}, dbias += sum over rows of da.
void lstm_backward(float* dx, float* dw_ih, float* dw_hh, float* dbias, float* dgates, float* dc,
                   float* dh, const float* x, const float* h, const float* c, const float* tanh_c,
                   const float* gates, const float* w_ih, const float* w_hh, int B, int T, int IC,
                   int C);

}  // namespace attnlab
