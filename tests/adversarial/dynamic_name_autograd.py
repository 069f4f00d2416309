# Autograd by a name built at run time (no static scan can read it): the backward engine is switched
# off in the sandbox for this assignment, so the part scores 0 with the reason.
# assignment: 02_lstm
# expect: lstm_backward_check=0
# feedback: lstm_backward: called autograd

# %% lstm_backward
def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    ins = [t.detach().requires_grad_() for t in (xs, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    xs_, h, c, *weights = ins
    hs = []
    for x_t in xs_:
        h, c = lstm_cell(x_t, (h, c), *weights)
        hs.append(h)
    out = (torch.stack(hs) * grad_hs).sum()
    engine = getattr(torch, "".join(reversed("dargotua")))
    return engine.grad(out, ins)
