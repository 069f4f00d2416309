# The gradient norms come back as infinity (and the layer's first output as NaN).
# assignment: 01_rnn
# expect: state_gradient_norms_check=0, rnn_layer_check=0
# feedback: state_gradient_norms: norms contains non-finite values

# %% state_gradient_norms
def state_gradient_norms(xs, h0, w_ih, w_hh, b_ih, b_hh):
    return torch.full((xs.shape[0],), float("inf"))

# %% rnn_layer
def rnn_layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
    h = xs.new_zeros(xs.shape[1], w_hh.shape[1]) if h0 is None else h0
    hs = []
    for x_t in xs:
        h = rnn_cell(x_t, h, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    out = torch.stack(hs)
    out[0, 0, 0] = float("nan")
    return out, h
