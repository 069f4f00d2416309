# Tries to write a forged graded notebook and to overwrite the gradebook; the layer is wrong.
# assignment: 02_lstm
# needs: isolation
# expect: lstm_layer_check=0

# %% lstm_layer
import os

for path in ("@@COURSE@@/gradebook.db", "@@COURSE@@/autograded/forges_results/02_lstm/lstm.ipynb",
             "@@COURSE@@/FORGED_BY_STUDENT", "results.json"):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write('{"score": 100} FORGED_BY_STUDENT')
    except OSError:
        pass


def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    N, H = xs.shape[1], w_hh.shape[1]
    return torch.zeros(xs.shape[0], N, H), (torch.zeros(N, H), torch.zeros(N, H))
