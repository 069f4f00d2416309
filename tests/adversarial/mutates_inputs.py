# A correct cell that also scales the weights it was given in place (and a layer that zeroes h0).
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: your lstm_cell modified its argument w_ih in place

# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    h_prev, c_prev = hx
    gates = input @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    w_ih.mul_(0.5)
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
    i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
    c = f * c_prev + i * torch.tanh(a_g)
    return o * torch.tanh(c), c
