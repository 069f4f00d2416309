# A cell that starts as many sleeping children as the process limit allows (at most 62; each sleeps
# 20 s, then exits), then ends six of them so that its own part can still run, and answers
# correctly. With one user for every sandbox this starved the students graded beside it ("can't
# start new thread"); it must cost no one anything.
# assignment: 02_lstm
# needs: isolation

# %% after lstm_cell
import os
import signal
import time

_kids = []
for _ in range(62):
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:
        time.sleep(20)
        os._exit(0)
    _kids.append(_pid)
for _pid in _kids[-6:]:
    os.kill(_pid, signal.SIGKILL)
    os.waitpid(_pid, 0)
