# torch.lstm_cell bound to a loop variable by a top-level `for` that "defines nothing", then called
# through that variable: the loop statement defines `fast`, so the scan charges it to the cell.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `torch.lstm_cell`

# %% lstm_cell
for fast in (torch.lstm_cell,):
    pass


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return fast(input, hx, w_ih, w_hh, b_ih, b_hh)
