# The cell returns objects whose __eq__ is always True (and which claim to be close to anything).
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h is a __main__.Anything; expected a torch.Tensor

# %% lstm_cell
class Anything:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __sub__(self, other):
        return 0.0
    __rsub__ = __sub__
    def __abs__(self):
        return 0.0
    def __lt__(self, other):
        return True
    __le__ = __lt__


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return Anything(), Anything()
