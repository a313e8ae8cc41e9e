"""The loss of a recovery step: next-token cross-entropy, optionally mixed with distillation from the dense model.

    loss = (1 - w) * CE(student, next tokens) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))

per predicted token (w = `distill_weight`, T = `distill_temperature`; T^2 keeps the gradient's scale independent
of T, as in Hinton et al.). The functions return *sums* over the tokens, so that the Trainer subclass can divide by
the tokens of the whole optimizer step and get the same gradient on one process or several.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["token_losses"]


def token_losses(student_logits: torch.Tensor, input_ids: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                 weight: float = 0.0, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed loss of a batch of windows, the summed cross-entropy alone (for the logs), and the tokens predicted.

    Args:
        student_logits (`torch.Tensor`): `(batch, seq_len, vocab)`.
        input_ids (`torch.Tensor`): `(batch, seq_len)`; position t predicts token t + 1.
        teacher_logits (`torch.Tensor`, *optional*): the dense teacher's logits on the same windows.
        weight (`float`, *optional*, defaults to 0.0): w above (ignored without a teacher).
        temperature (`float`, *optional*, defaults to 1.0): T above.
    """
    logits = student_logits[:, :-1].float()
    targets = input_ids[:, 1:]
    vocab = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="sum")
    tokens = targets.numel()
    if teacher_logits is None or weight == 0:
        return ce, ce.detach(), tokens
    t = temperature
    student = F.log_softmax(logits / t, dim=-1).reshape(-1, vocab)
    teacher = F.log_softmax(teacher_logits[:, :-1].float() / t, dim=-1).reshape(-1, vocab)
    kl = F.kl_div(student, teacher, log_target=True, reduction="sum") * t * t
    return (1.0 - weight) * ce + weight * kl, ce.detach(), tokens
