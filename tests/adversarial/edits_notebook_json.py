# Edits the notebook's JSON: 100 points for the cell check, the layer check renamed (so nbgrader
# would not know it), the backward check deleted, the cell check duplicated, a forged graded cell
# worth 50 points, a test cell turned into an answer cell, another kernel. All answers are right.
# assignment: 02_lstm
# expect:
# json: points lstm_cell_check=100
# json: rename lstm_layer_check=bonus
# json: delete lstm_backward_check
# json: duplicate lstm_cell_check
# json: forge extra_points=50
# json: flip lstm_cell_check
# json: kernelspec evil
