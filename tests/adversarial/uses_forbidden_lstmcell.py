# A correct cell built on torch.nn.LSTMCell (through an alias), which the assignment forbids: the
# policy check gives 0 to the parts whose code reaches it (the layer calls the cell), with the reason.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `nn.LSTMCell`

# %% lstm_cell
import torch.nn as tnn


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    cell = tnn.LSTMCell(w_ih.shape[1], w_hh.shape[1])
    with torch.no_grad():
        for param, value in zip(cell.parameters(), (w_ih, w_hh, b_ih, b_hh)):
            param.copy_(value)
        return cell(input, hx)
