# Writes up to 2 GB, into one file and then into many 1 MB files, from the backward pass.
# assignment: 02_lstm
# expect: lstm_backward_check=0

# %% lstm_backward
import os


def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    folder = os.environ.get("HOME", "/tmp")
    written = 0
    try:
        with open(os.path.join(folder, "big.bin"), "wb") as f:
            while written < 2**30:
                f.write(b"\0" * 2**20)
                written += 2**20
    except OSError:
        pass
    for i in range(1024):
        if written >= 2 * 2**30:
            break
        with open(os.path.join(folder, f"fill{i}.bin"), "wb") as f:
            f.write(b"\0" * 2**20)
        written += 2**20
    return None
