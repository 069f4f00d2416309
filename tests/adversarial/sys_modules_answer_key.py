# The course's reference cell taken from sys.modules (the sandbox used to preload the answer key).
# The scan names it; in the sandbox the module is a sealed stand-in and its files are hidden.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `course_lib.reference`

# %% lstm_cell
import sys


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    reference = sys.modules["course_lib.reference"]
    return reference.lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh)
