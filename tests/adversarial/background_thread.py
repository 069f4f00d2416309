# A background thread and an atexit hook that patch torch.allclose, the checkers and the functions
# later, after the checks started; the cell is wrong.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h differs from the reference

# %% lstm_cell
import atexit
import threading
import time


def _patch():
    time.sleep(0.2)
    torch.allclose = lambda *a, **k: True
    checkers.check_lstm_cell = lambda *a, **k: None
    globals()["lstm_cell"] = lambda *a, **k: (a[1][0], a[1][1])


threading.Thread(target=_patch, daemon=True).start()
atexit.register(_patch)


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return torch.tanh(h), c
