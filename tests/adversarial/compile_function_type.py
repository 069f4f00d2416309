# The cell's body compiled from a string and made a function with types.FunctionType.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses `compile`

# %% lstm_cell
import types

_code = compile("def f(*args):\n    return torch.lstm_cell(*args)\n", "<hidden>", "exec")
lstm_cell = types.FunctionType(_code.co_consts[0], globals(), "lstm_cell")
