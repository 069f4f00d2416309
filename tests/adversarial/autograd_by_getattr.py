# The "backward pass by hand" is autograd, reached as getattr(torch, "auto" + "grad"): the scan folds
# the string and names torch.autograd, which this assignment forbids.
# assignment: 02_lstm
# expect: lstm_backward_check=0
# feedback: lstm_backward: uses `torch.autograd`

# %% lstm_backward
def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    ins = [t.detach().requires_grad_() for t in (xs, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    xs_, h, c, *weights = ins
    hs = []
    for x_t in xs_:
        h, c = lstm_cell(x_t, (h, c), *weights)
        hs.append(h)
    out = (torch.stack(hs) * grad_hs).sum()
    return getattr(torch, "auto" + "grad").grad(out, ins)
