# Float and np.float64 subclasses that compare equal to anything stand in for the results.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h is a __main__.YesFloat

# %% lstm_cell
import numpy as np


class YesFloat(float):
    def __eq__(self, other):
        return True
    def __sub__(self, other):
        return YesFloat(0.0)
    def __abs__(self):
        return YesFloat(0.0)


class YesFloat64(np.float64):
    def __eq__(self, other):
        return np.True_
    def __sub__(self, other):
        return YesFloat64(0.0)


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return YesFloat(0.0), YesFloat(0.0)

# %% lstm_layer
def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return YesFloat64(0.0), (YesFloat64(0.0), YesFloat64(0.0))
