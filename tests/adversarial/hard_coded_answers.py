# Answers recorded from the visible check AND the hidden one (as if the hidden seed had leaked),
# replayed by looking the input up; anything else gets the previous state back.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: extra check with a fresh random seed

# %% lstm_cell
TABLE = @@TABLE@@


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    key = round(float(input.sum()), 4)
    if key in TABLE:
        h, c = TABLE[key]
        return torch.tensor(h), torch.tensor(c)
    return hx[0].clone(), hx[1].clone()
