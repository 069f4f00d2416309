# Behaves differently when it detects grading: the cell patches the checkers if NBGRADER_EXECUTION
# (or any grading variable) is set and is wrong otherwise; the layer is right only when it sees no
# grading variable. In the sandbox nothing says "grading": the cell scores 0, the layer full marks.
# assignment: 02_lstm
# expect: lstm_cell_check=0
# feedback: lstm_cell: h differs from the reference

# %% lstm_cell
import os

GRADING = any("NBGRADER" in key or "GRADING" in key or "JPY" in key for key in os.environ)
if GRADING:
    checkers.check_lstm_cell = lambda *a, **k: None


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return hx[0] + 1, hx[1]

# %% lstm_layer
def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    if GRADING:
        raise RuntimeError("grading detected")
    if hx is None:
        zeros = xs.new_zeros(xs.shape[1], w_hh.shape[1])
        hx = (zeros, zeros)
    h, c = hx
    hs = []
    for x_t in xs:
        h, c = lstm_cell_right(x_t, (h, c), w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    return torch.stack(hs), (h, c)


def lstm_cell_right(input, hx, w_ih, w_hh, b_ih, b_hh):
    h_prev, c_prev = hx
    gates = input @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
    i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
    c = f * c_prev + i * torch.tanh(a_g)
    return o * torch.tanh(c), c
