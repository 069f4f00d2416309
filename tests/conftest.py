"""Shared test set-up: one thread per process, Keras on PyTorch, deterministic hypothesis."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

torch.set_num_threads(1)
settings.register_profile("course", derandomize=True, deadline=None, max_examples=40)
settings.load_profile("course")
