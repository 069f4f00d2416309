# torch.lstm_cell unpickled from bytes, so that its name appears nowhere as a name.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `pickle`

# %% lstm_cell
import pickle

fast = pickle.loads(b"ctorch\nlstm_cell\n.")


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    return fast(input, hx, w_ih, w_hh, b_ih, b_hh)
