# A fork loop (at most 3000 attempts; every child sleeps, then exits) inside the layer.
# assignment: 02_lstm
# expect: lstm_layer_check=0

# %% lstm_layer
import os
import time


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    for _ in range(3000):
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
    return None
