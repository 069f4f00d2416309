# The layer ignores SIGINT (an interrupt) and then loops forever.
# assignment: 02_lstm
# expect: lstm_layer_check=0
# feedback: lstm_layer: did not finish within

# %% lstm_layer
import signal


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        pass
