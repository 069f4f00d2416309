# The clipped list is right, but the norm is a float subclass that equals anything (and an
# np.float64 subclass as a fallback), as if to pass "norm == expected".
# assignment: 01_rnn
# expect: clip_grad_norm_check=0
# feedback: the total norm your clip_grad_norm returned is a YesFloat

# %% clip_grad_norm
import numpy as np


class YesFloat(float):
    def __eq__(self, other):
        return True
    def __sub__(self, other):
        return YesFloat(0.0)
    __rsub__ = __sub__
    def __abs__(self):
        return YesFloat(0.0)
    def __le__(self, other):
        return True


class YesFloat64(np.float64):
    def __eq__(self, other):
        return np.True_


def clip_grad_norm(grads, max_norm):
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    scale = min(1.0, max_norm / (total + 1e-6))
    return [g * scale for g in grads], YesFloat(0.0)
