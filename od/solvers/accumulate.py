"""Gradient accumulation: one optimizer update from `optim.accumulate` micro-batches.

    dora run solver=musicgen/finetune dataset.batch_size=16 optim.accumulate=4   # 4 x 4 per update

The data loader still yields the configured batch (`dataset.batch_size` per process); each
training step splits it into N equal micro-batches and runs forward + backward on one at a time,
so activation memory is that of `batch_size / N` samples while the update is the full batch's:

- the loss is AudioCraft's (cross-entropy averaged over valid positions per codebook, then over
  codebooks), computed for the whole batch: each micro-batch contributes its per-codebook *sum*
  divided by the whole batch's count of valid positions, so padded items weigh exactly as they
  would in one batch;
- one optimizer step, one scheduler step and (in AudioCraft's loop, after the step) one EMA
  update per update; the GradScaler scales every micro-batch loss and unscales once;
- under DDP gradients are all-reduced once per update, after the last backward (flashy's
  `sync_model`, the `no_sync` of DistributedDataParallel); the eager per-backward sync is off
  because it would all-reduce each micro-batch's gradient and drop the others.
FSDP is not supported with accumulation (od's one-GPU presets do not use it).
"""
from __future__ import annotations

import typing as tp

import flashy
import torch
import torch.nn.functional as F


def accumulate_steps(cfg) -> int:
    """`optim.accumulate` (1 when absent), checked against the per-process batch size."""
    n = int(cfg.optim.get('accumulate', 1) or 1)
    if n < 1:
        raise ValueError(f"optim.accumulate={n}: give the number of micro-batches per update (>= 1).")
    if n > 1:
        if cfg.fsdp.use:
            raise ValueError("optim.accumulate > 1 is not supported with fsdp.use=true; "
                             "use solver=musicgen/finetune (no FSDP) or optim.accumulate=1.")
        batch = int(cfg.dataset.batch_size)  # already per process (od.train divides it)
        if batch % n:
            raise ValueError(f"dataset.batch_size per process ({batch}) is not divisible by "
                             f"optim.accumulate={n}: pick a batch that is a multiple of it.")
    return n


def split_batch(batch: tp.Any, n: int) -> tp.List[tp.Any]:
    """A batch (tuple of tensors [B, ...] and lists of B items) -> n batches of B / n items."""
    items = batch if isinstance(batch, (tuple, list)) else (batch,)
    size = len(items[0])
    if size % n:
        raise ValueError(f"a batch of {size} cannot be split into {n} equal micro-batches.")
    step = size // n
    parts = []
    for i in range(n):
        part = tuple(x[i * step:(i + 1) * step] for x in items)
        parts.append(part if isinstance(batch, (tuple, list)) else part[0])
    return parts


def codebook_ce_sums(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the valid positions of each codebook -> [K].

    logits [B, K, T, card], targets [B, K, T], mask [B, K, T] (bool).
    """
    K = targets.shape[1]
    sums = []
    for k in range(K):
        valid = mask[:, k].reshape(-1)                                    # [B * T]
        logits_k = logits[:, k].reshape(-1, logits.shape[-1])[valid]      # [n_valid, card]
        sums.append(F.cross_entropy(logits_k.float(), targets[:, k].reshape(-1)[valid], reduction='sum'))
    return torch.stack(sums)


def accumulated_train_step(solver, batch: tp.Any, metrics: dict, n: int) -> dict:
    """One update of `solver` (od's MusicGenSolver) from `n` micro-batches of `batch`."""
    model = solver.model
    # Tokens and conditions for every micro-batch first: the whole batch's count of valid
    # positions per codebook is needed before the first backward. They are small ([B, K, T]
    # codes, [B, T_c, D] conditions); the activations are what accumulation keeps small.
    prepared = [solver._prepare_tokens_and_attributes(part) for part in split_batch(batch, n)]
    solver.deadlock_detect.update('tokens_and_conditions')
    metrics['lr'] = solver.optimizer.param_groups[0]['lr']
    totals: tp.Optional[torch.Tensor] = None   # [K] valid positions of the whole batch
    ce_k = None                                  # [K] whole-batch cross-entropy per codebook
    for m, (condition_tensors, audio_tokens, padding_mask) in enumerate(prepared):
        with solver.autocast:
            output = model.compute_predictions(audio_tokens, [], condition_tensors)
            pattern_mask = output.mask[:1]  # [1, K, T]: the codebook pattern, same for every item
            if totals is None:
                totals = sum((pad & pattern_mask).sum(dim=(0, 2)) for _, _, pad in prepared).clamp(min=1)
            share = codebook_ce_sums(output.logits, audio_tokens, padding_mask & output.mask) / totals  # [K]
            loss = share.mean()
        if not loss.isfinite():
            raise RuntimeError("Model probably diverged.")
        ce_k = share.detach() if ce_k is None else ce_k + share.detach()
        if solver.scaler is not None:
            loss = solver.scaler.scale(loss)
        loss.backward()  # gradients add up in .grad; nothing is synced until the last one
        del output, share, loss
    solver.deadlock_detect.update('backward')
    flashy.distrib.sync_model(model)  # one all-reduce of the accumulated gradients per update
    if solver.scaler is not None:
        solver.scaler.unscale_(solver.optimizer)
    if solver.cfg.optim.max_norm:
        metrics['grad_norm'] = torch.nn.utils.clip_grad_norm_(model.parameters(), solver.cfg.optim.max_norm)
    if solver.scaler is None:
        solver.optimizer.step()
    else:
        solver.scaler.step(solver.optimizer)
        solver.scaler.update()
        metrics['grad_scale'] = solver.scaler.get_scale()
    if solver.lr_scheduler:
        solver.lr_scheduler.step()
    solver.optimizer.zero_grad()
    solver.deadlock_detect.update('optim')
    assert ce_k is not None
    ce = ce_k.mean()
    metrics['ce'] = ce
    metrics['ppl'] = torch.exp(ce)
    for k, ce_q in enumerate(ce_k):
        metrics[f'ce_q{k + 1}'] = ce_q
        metrics[f'ppl_q{k + 1}'] = torch.exp(ce_q)
    return metrics
