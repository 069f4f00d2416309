# Errors hidden: IPython's showtraceback and sys.excepthook replaced; the cell raises.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: your lstm_cell raised RuntimeError: nothing to see here

# %% lstm_cell
import sys

sys.excepthook = lambda *args: None
ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None
ip._showtraceback = lambda *args, **kwargs: None
ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    raise RuntimeError("nothing to see here")
