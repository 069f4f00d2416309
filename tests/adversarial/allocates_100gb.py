# One allocation of 100 GB inside the cell function.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: your lstm_cell raised RuntimeError

# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    big = torch.empty(25 * 2**30, dtype=torch.float32)      # 100 GB, one request
    big.fill_(1.0)
    return hx
