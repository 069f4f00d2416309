# sys.exit() inside the cell function: no effect on the grader, the part fails.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: your lstm_cell raised SystemExit

# %% lstm_cell
import sys


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    sys.exit()
