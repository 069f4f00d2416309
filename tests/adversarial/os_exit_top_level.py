# os._exit(0) at the top level of a cell (which would kill a normal kernel and every later test);
# the cell function itself is wrong. The exiting cell is skipped and everything else is graded.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h differs from the reference

# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return hx[0] * 0.5, hx[1]

# %% after lstm_cell
import os

os._exit(0)
