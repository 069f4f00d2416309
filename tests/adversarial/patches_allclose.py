# torch.allclose and friends replaced by "always True", then a wrong cell.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h differs from the reference

# %% lstm_cell
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return torch.tanh(h), c
