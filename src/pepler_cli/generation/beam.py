"""Beam search on the key/value cache: the cached keys and values move with their hypotheses.

Beam search keeps ``beams`` hypotheses per example, scored by the sum of their tokens' log-probabilities.
At each step the ``2 * beams`` best one-token extensions are ranked; those ending in <eos> and ranked among
the first ``beams`` are set aside as finished, and the best ``beams`` not ending in <eos> live on. An
example stops once a finished hypothesis is at least as good as any live one can become; at ``max_tokens``
the live hypotheses compete with the finished ones, as greedy decoding's output is cut there too. The best
one is returned, so ``beams=1`` is exactly greedy decoding. Length normalisation is off by default
(``length_penalty=0``: plain sums, the textbook beam search); with ``length_penalty=a`` a hypothesis of n
tokens (its <eos> included) is ranked by ``sum / n**a``.

Diverse beam search (Vijayakumar et al. 2018, "Diverse Beam Search") splits the beams into ``groups`` of
``beams // groups``, each a beam search of its own, decoded in turn at every step: a group's log-probabilities
are lowered by ``diversity_penalty`` × the number of beams of the groups before it that chose the same token
at this step (Hamming diversity). Scores add up penalised values, and the best finished hypothesis of all
groups is returned. With several groups a group stops as transformers' group beam search (4.x) stops one:
once its best ``beams // groups`` finished hypotheses are all at least as good as the best candidate of the
step can become; from then on its beams count as <eos> (that library's padding) in later groups' penalty, so
when a group stops changes what the others write. One group is plain beam search.

``controls`` (logits_processing.py) change each step's log-probabilities, before they are added to the
hypotheses' scores: the scores are sums of processed log-probabilities, as in ``generate()``. A repetition
penalty therefore acts on log-probabilities here and on logits in greedy decoding: with one, ``beams=1`` is
not greedy decoding.

Every option is checked token for token against transformers' ``generate()`` (with ``early_stopping="never"``,
whose stopping rule is this one's) in tests/test_decoding_controls.py.
"""

from __future__ import annotations

import torch

from pepler_cli.generation.logits_processing import NO_CONTROLS, RepetitionControls, penalise_diversity
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.plugins import ExplanationModel


@torch.no_grad()
def beam_search(
    model: ExplanationModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    max_tokens: int,
    *,
    beams: int = 4,
    length_penalty: float = 0.0,
    groups: int = 1,
    diversity_penalty: float = 0.0,
    controls: RepetitionControls = NO_CONTROLS,
) -> torch.Tensor:
    """(B, ≤ max_tokens) token ids of each example's best hypothesis, <eos>-terminated when it finished
    (then padded with <eos>). ``beams=1`` is greedy decoding. See the module's docstring for the scoring.
    """
    _check_beams(beams, length_penalty, groups, diversity_penalty)
    lm = model.decoder(inputs, bos)
    examples, vocabulary = lm.logits.shape
    device = lm.logits.device
    width = beams // groups  # beams per group
    # Every example starts from `beams` copies of its prompt; only the first of each group is live, so the
    # first step's candidates are not repeated `width` times.
    lm.reorder(torch.arange(examples, device=device).repeat_interleave(beams))
    scores = torch.full((examples, groups, width), float("-inf"), device=device)
    scores[:, :, 0] = 0.0
    history = torch.empty((examples, groups, width, 0), dtype=torch.long, device=device)
    best_score = torch.full((examples,), float("-inf"), device=device)  # of finished hypotheses, normalised
    best_tokens = torch.full((examples, max_tokens), eos, dtype=torch.long, device=device)
    best_length = torch.zeros((examples,), dtype=torch.long, device=device)
    # The best finished scores of each group, normalised, that decide when it stops: one group returns its
    # best alone; several stop as transformers' group beam search does (see the module's docstring).
    finished = torch.full((examples, groups, 1 if groups == 1 else width), float("-inf"), device=device)
    done = torch.zeros((examples, groups), dtype=torch.bool, device=device)
    rows = torch.arange(examples, device=device)
    first_beams = (rows[:, None] * beams + torch.arange(groups, device=device)[None, :] * width)[:, :, None]
    # Each live hypothesis has one <eos> continuation: 2 * width candidates always hold width without it.
    considered = min(2 * width, width * vocabulary)

    for step in range(max_tokens):
        length = step + 1
        log_probs = torch.log_softmax(lm.logits.float(), dim=-1).view(examples, groups, width, vocabulary)
        tokens = torch.empty((examples, groups, width), dtype=torch.long, device=device)
        origins = torch.empty_like(tokens)
        histories = []
        stopped = done.clone()  # before this step: what the diversity penalty sees
        for group in range(groups):
            candidates = log_probs[:, group]
            if group and diversity_penalty:
                # The groups before have chosen this step's tokens; one that stopped counts as <eos>.
                earlier = torch.where(stopped[:, :group, None], eos, tokens[:, :group])
                candidates = penalise_diversity(candidates, earlier.reshape(examples, -1), diversity_penalty)
            if controls.active:
                flat = controls(history[:, group].reshape(examples * width, step), candidates.flatten(0, 1))
                candidates = flat.view(examples, width, vocabulary)
            totals = (scores[:, group, :, None] + candidates).view(examples, width * vocabulary)
            top_scores, top_index = torch.topk(totals, considered, dim=-1)  # best first
            origin = torch.div(top_index, vocabulary, rounding_mode="floor")
            token = top_index % vocabulary
            # Only a candidate ranked among the best `width` may finish (so one beam is greedy decoding).
            ends = (token == eos) & torch.isfinite(top_scores) & ~done[:, group, None]
            ends[:, width:] = False
            normalised = top_scores / length**length_penalty

            # The best candidate ending here (candidates are sorted, so the first <eos> one) may beat the best
            # finished hypothesis so far.
            first_end = ends.int().argmax(dim=-1)
            end_score = normalised.gather(1, first_end[:, None]).squeeze(1)
            better = ends.any(dim=-1) & (end_score > best_score)
            end_origin = origin.gather(1, first_end[:, None]).squeeze(1)
            ended = history[rows, group, end_origin]
            best_tokens[:, :step] = torch.where(better[:, None], ended, best_tokens[:, :step])
            best_tokens[:, step:] = torch.where(better[:, None], eos, best_tokens[:, step:])
            best_score = torch.where(better, end_score, best_score)
            best_length = torch.where(better, length, best_length)
            ending = normalised[:, :width].masked_fill(~ends[:, :width], float("-inf"))
            kept = finished.shape[2]
            finished[:, group] = torch.topk(
                torch.cat([finished[:, group], ending], dim=1), kept, dim=1
            ).values

            # The best `width` candidates without <eos> live on (a stable sort keeps their score order).
            keep = torch.sort((token == eos).int(), dim=-1, stable=True).indices[:, :width]
            scores[:, group] = top_scores.gather(1, keep)
            origins[:, group] = origin.gather(1, keep)
            tokens[:, group] = token.gather(1, keep)
            kept_history = history[:, group].gather(1, origins[:, group, :, None].expand(-1, -1, step))
            histories.append(torch.cat([kept_history, tokens[:, group, :, None]], dim=2))

            # Scores only fall as tokens are added, so a candidate can at best end now (no normalisation) or,
            # normalised, keep its score until max_tokens: once the finished ones are that good, they are final.
            ceiling = top_scores[:, 0] / (length if length_penalty == 0 else max_tokens) ** length_penalty
            done[:, group] |= finished[:, group, -1] >= ceiling
        history = torch.stack(histories, dim=1)
        if step == max_tokens - 1 or bool(done.all()):
            break
        lm.reorder((first_beams + origins).view(-1))
        lm.step(tokens.view(-1))

    # At max_tokens the best live hypotheses compete with the finished ones, as greedy's cut output would.
    length = history.shape[3]
    for group in range(groups):
        live_score = scores[:, group, 0] / length**length_penalty
        take_live = ~done[:, group] & (live_score > best_score)
        best_tokens[:, :length] = torch.where(
            take_live[:, None], history[:, group, 0], best_tokens[:, :length]
        )
        best_score = torch.where(take_live, live_score, best_score)
        best_length = torch.where(take_live, length, best_length)
    return best_tokens[:, : int(best_length.max())]


def _check_beams(beams: int, length_penalty: float, groups: int, diversity_penalty: float) -> None:
    if beams < 1:
        raise ValueError(f"beams must be ≥ 1, got {beams}")
    if length_penalty < 0:
        raise ValueError(f"length penalty must be ≥ 0, got {length_penalty}")
    if groups < 1:
        raise ValueError(f"beam groups must be ≥ 1, got {groups}")
    if beams % groups:
        raise ValueError(f"{beams} beams cannot be split into {groups} groups of equal size")
    if diversity_penalty < 0:
        raise ValueError(f"diversity penalty must be ≥ 0, got {diversity_penalty}")
