# Prints a fake "all tests passed" (and a fake success line for each check) from a wrong function.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h differs from the reference

# %% lstm_cell
print("lstm_cell: correct on 3 random cases. All tests passed!")


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    print("lstm_cell: correct on 3 random cases. All tests passed!")
    h, c = hx
    return h, c
