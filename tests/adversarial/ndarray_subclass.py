# An ndarray subclass that says it equals anything, returned as the layer's output.
# assignment: 02_lstm
# expect: lstm_layer_check=0
# feedback: lstm_layer: output is a __main__.Sneaky

# %% lstm_layer
import numpy as np


class Sneaky(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(self.shape)


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[1]
    z = np.zeros((N, H), dtype=np.float32).view(Sneaky)
    return np.zeros((L, N, H), dtype=np.float32).view(Sneaky), (z, z)
