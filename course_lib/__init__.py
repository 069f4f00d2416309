"""course_lib: the one package behind the course *From RNNs to LSTMs*.

The book's figures, the exercises' graders and the tests all call it.

- ``course_lib.reference``  reference RNN/LSTM/GRU cells and layers, BPTT by hand, a fast LSTM, attention
- ``course_lib.convert``    weights between PyTorch, the reference layout and Keras 3
- ``course_lib.checkers``   graders that compare a student's function with the reference and name mistakes
- ``course_lib.data``       the adding and copy tasks, a seasonal series, a small text corpus
- ``course_lib.train``      a training loop and measurements (per-step gradient norms)
- ``course_lib.plots``      the book's figures
"""
__version__ = "0.1.0"
