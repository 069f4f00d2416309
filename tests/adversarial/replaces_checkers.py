# The checker's __code__ replaced, checkers patched, sys.modules['course_lib'] swapped; the layer is wrong.
# assignment: 02_lstm
# expect: lstm_layer_check=0
# feedback: lstm_layer: output differs from the reference

# %% lstm_layer
import sys
import types

try:
    checkers.check_lstm_layer.__wrapped__.__code__ = (lambda *args, **kwargs: None).__code__
except (AttributeError, ValueError):
    pass
checkers.check_lstm_layer = lambda *args, **kwargs: print("lstm_layer: correct on 3 random cases")
fake = types.ModuleType("course_lib")
fake.checkers = checkers
sys.modules["course_lib"] = fake
sys.modules["course_lib.checkers"] = checkers


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    N, H = xs.shape[1], w_hh.shape[1]
    h = c = torch.zeros(N, H)
    return torch.zeros(xs.shape[0], N, H), (h, c)
