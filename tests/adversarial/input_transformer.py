# An IPython input transformer that blanks every later cell mentioning "checkers" (the test cells, in a
# normal kernel); the layer is left unimplemented. The cell and the backward pass are right.
# assignment: 02_lstm
# expect: lstm_layer_check=0
# feedback: lstm_layer: not implemented yet

# %% after lstm_cell
def _blank(lines):
    return [] if any("checkers" in line for line in lines) else lines


get_ipython().input_transformers_cleanup.append(_blank)

# %% lstm_layer
def lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
    raise NotImplementedError()
