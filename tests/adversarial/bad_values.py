# NaN in the cell, inf in the layer's last state, float64 from the layer... and shapes that broadcast
# in the backward pass (one row where there should be N).
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0, lstm_backward_check=0
# feedback: lstm_cell: h contains non-finite values

# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    h = torch.full((input.shape[0], w_hh.shape[1]), float("nan"))
    return h, h

# %% lstm_layer
def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[1]
    out = torch.zeros(L, N, H, dtype=torch.float64)
    return out, (torch.full((N, H), float("inf")), torch.zeros(N, H))

# %% lstm_backward
def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    return (torch.zeros_like(xs[:, :1]), torch.zeros_like(h0[:1]), torch.zeros_like(c0[:1]),
            torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih), torch.zeros_like(b_hh))
