# Clips correctly, but writes the clipped tensors back into the caller's list (replacing its items).
# assignment: 01_rnn
# expect: clip_grad_norm_check=0
# feedback: changed the list grads it was given

# %% clip_grad_norm
def clip_grad_norm(grads, max_norm):
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    scale = min(1.0, max_norm / (total + 1e-6))
    for i in range(len(grads)):
        grads[i] = grads[i] * scale
    return list(grads), total
