# torch.lstm_cell by a name built at run time, which no static scan can read: the operator is
# switched off at the dispatcher while the part is graded, so the call ends the part with the reason.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: called `aten::lstm_cell`


# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    fast = getattr(torch, "".join(reversed("llec_mtsl")))
    try:
        return fast(input, hx, w_ih, w_hh, b_ih, b_hh)
    except BaseException:                  # a refused call cannot be caught and retried
        return fast(input, hx, w_ih, w_hh, b_ih, b_hh)
