# Tries to send its inputs to a port the test listens on at 127.0.0.1 (and only there), then
# returns something wrong.
# assignment: 02_lstm
# needs: isolation
# expect: lstm_cell_check=0, lstm_layer_check=0

# %% lstm_cell
import socket


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    try:
        with socket.create_connection(("127.0.0.1", @@PORT@@), timeout=1) as s:
            s.sendall(b"LEAKED " + repr(input.tolist()).encode())
    except OSError:
        pass
    return hx
