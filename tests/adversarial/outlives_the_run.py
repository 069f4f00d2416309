# A cell that double-forks a child which waits 15 s (longer than any part takes), then sends SIGKILL
# to every process it may signal, every 5 ms for at most 90 s; the student answers correctly. Such a child must not outlive its part,
# nor an interrupted run, nor sabotage the plain re-run.
# assignment: 02_lstm
# needs: isolation

# %% after lstm_cell
import os
import signal
import time

if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        time.sleep(15)
        _end = time.monotonic() + 90
        while time.monotonic() < _end:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.005)
    os._exit(0)
