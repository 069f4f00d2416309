# torch.lstm_cell reached through a name assigned from torch (`t = torch`), not an import: the scan
# follows the assignment, so the cell and the layer that calls it score 0, with the reason.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `torch.lstm_cell`

# %% lstm_cell
t = torch


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return t.lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh)
