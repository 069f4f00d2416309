# The backward pass sends SIGKILL to its own process, the layer calls os._exit(0).
# assignment: 02_lstm
# expect: lstm_layer_check=0, lstm_backward_check=0
# feedback: lstm_layer: your code ended the grading process (exited with code 0)

# %% lstm_layer
import os


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    os._exit(0)

# %% lstm_backward
import os
import signal


def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    os.kill(os.getpid(), signal.SIGKILL)
