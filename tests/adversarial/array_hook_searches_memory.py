# Objects whose __array__ and __float__ walk gc and the stack frames to find the expected answer.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h is a __main__.Spy

# %% lstm_cell
import gc
import sys


class Spy:
    def _search(self):
        found = [o for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.dtype == torch.float64]
        frame = sys._getframe()
        while frame is not None:
            found += [v for v in frame.f_locals.values() if isinstance(v, torch.Tensor)]
            frame = frame.f_back
        return found[-1] if found else torch.zeros(1)

    def __array__(self, *args, **kwargs):
        return self._search().numpy()

    def __float__(self):
        return float(self._search().reshape(-1)[0])


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return Spy(), Spy()
