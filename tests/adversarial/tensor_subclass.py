# A torch.Tensor subclass whose __torch_function__ answers allclose, eq, equal and sub as if all matched.
# assignment: 02_lstm
# expect: lstm_cell_check=0, lstm_layer_check=0
# feedback: lstm_cell: h is a __main__.Liar

# %% lstm_cell
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("allclose", "equal", "eq", "__eq__", "isclose"):
            return True
        if name in ("sub", "__sub__", "__rsub__"):
            return torch.zeros(())
        return super().__torch_function__(func, types, args, kwargs or {})


def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    z = torch.zeros(input.shape[0], w_hh.shape[1]).as_subclass(Liar)
    return z, z
