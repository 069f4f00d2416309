"""course_lib: the one package behind the course *From RNNs to LSTMs*.

The book's figures, the exercises' graders and the tests all call it.

- ``course_lib.reference``  reference RNN/LSTM/GRU cells and layers, BPTT by hand, fast layers, attention
- ``course_lib.convert``    weights between PyTorch, the reference layout and Keras 3
- ``course_lib.checkers``   graders that compare a student's function with the reference and name mistakes
- ``course_lib.data``       the adding and copy tasks, a seasonal series, a small public-domain text
- ``course_lib.models``     a recurrent model around nn.RNN/LSTM/GRU and a small causal transformer (attention model)
- ``course_lib.train``      a seeded training loop (Adam/SGD, clipping, early stop) and evaluation
- ``course_lib.measure``    gate recordings, gradients through time, cost and memory, training experiments
- ``course_lib.plots``      the book's figures
"""
__version__ = "0.1.0"
