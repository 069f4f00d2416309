# The answer key reached through the module the notebook itself imports: the checkers' internal
# oracle. The scan names the checkers' internals; in the sandbox `checkers` is a stand-in without them.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: uses the internals of `course_lib.checkers`

# %% lstm_cell
def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    oracle = checkers.cells._oracle("lstm")
    return oracle(input=input, hx=hx, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
