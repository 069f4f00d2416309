# A course_lib.py with checkers that pass everything, written into the working directory (and HOME),
# then imported in place of the real one; the backward pass is not written.
# assignment: 02_lstm
# expect: lstm_backward_check=0
# feedback: lstm_backward: not implemented yet

# %% after lstm_layer_check
import os
import sys

FAKE = "class checkers:\n    def __getattr__(self, name):\n        return lambda *a, **k: print('correct')\ncheckers = checkers()\n"
for folder in (os.getcwd(), os.environ.get("HOME", "."), "."):
    try:
        with open(os.path.join(folder, "course_lib.py"), "w") as f:
            f.write(FAKE)
        sys.path.insert(0, folder)
    except OSError:
        pass
for name in ("course_lib", "course_lib.checkers"):
    sys.modules.pop(name, None)
import course_lib

checkers = course_lib.checkers

# %% lstm_backward
def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    raise NotImplementedError()
