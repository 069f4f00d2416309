# A cell that sends SIGKILL, then SIGSTOP (never SIGCONT), to every process it may signal (`kill(-1)`)
# and to every pid it finds in /proc, every 5 ms for 2 s (bounded), in every part, then answers
# correctly. Graded beside other students it must zero none of them, and it keeps its own marks.
# assignment: 02_lstm
# needs: isolation

# %% after lstm_cell
import os
import signal
import time

_end = time.monotonic() + 2.0
while time.monotonic() < _end:
    for _sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(-1, _sig)
        except OSError:
            pass
        for _pid in os.listdir("/proc"):
            if _pid.isdigit() and int(_pid) != os.getpid():
                try:
                    os.kill(int(_pid), _sig)
                except OSError:
                    pass
    time.sleep(0.005)
