"""``pepler attention RUN --user U --item I``: the last layer's attention over the prompt and the words (Fig. 8).

The run writes its explanation for the pair (greedy, up to 20 tokens); the sequence ``[u, i, <bos>, words]``
then goes through the LM once more with attention weights returned, and the last layer's weights, averaged
over its heads, are drawn as a heatmap: one row per generated word (the query), one column per position it
may attend to. ``before`` draws the same for the model exactly as training started: rebuilt through the same
function ``pepler train`` used (``modeling.build.initial_model``) from the run's options and seed, and checked
against the digest of the prompt tensors the run recorded then; so a user sees whether training fused the IDs
into the model (the paper's Fig. 8: the words attend to the trained user and item vectors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import atomic_file
from pepler_cli.generation.greedy import greedy_decode
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.modeling.build import initial_model, prompt_digest
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.paper import MAX_EXPLANATION_TOKENS
from pepler_cli.plots import FORMATS
from pepler_cli.plugins import get_backbone, get_rating_head
from pepler_cli.run_model import LoadedRun, load_run
from pepler_cli.runs import MANIFEST


def attention_map(
    run: Path, user: str, item: str, out: Path, before: bool = False, trust_remote_code: bool = False
) -> dict[str, Any]:
    """Draw the heatmap to ``out`` (PNG or SVG); returns its title, the tokens and the weights drawn."""
    kind = FORMATS.get(Path(out).suffix.lower())
    if kind is None:
        raise UsageError(f"--out {out}: the figure's name must end in .png or .svg")
    loaded = load_run(run, torch.device("cpu"), trust_remote_code)
    model = loaded.model
    if not isinstance(model, ContinuousPromptModel):
        what = "prompt is discrete" if model.prompt_kind == "discrete" else f"model is {loaded.model_name}"
        raise PeplerError(f"{run}: attention maps show PEPLER's continuous prompt of user and item vectors; this "
                          f"run's {what}")  # fmt: skip
    if loaded.feature_hint != "none":
        raise PeplerError(f"{run}: attention maps show a prompt of user and item vectors alone; this run was "
                          f"trained with --feature-hint {loaded.feature_hint} (a feature's words in every prompt)")  # fmt: skip
    inputs = PromptInputs(
        torch.tensor([loaded.entities.user_row(user, f"--user {user}")]),
        torch.tensor([loaded.entities.item_row(item, f"--item {item}")]),
    )
    if before:
        model = initial_run_model(loaded, trust_remote_code)
        assert isinstance(model, ContinuousPromptModel)  # the same prompt kind as the run's
    special = loaded.special
    model.lead = special.lead
    with torch.no_grad():
        words = greedy_decode(model, inputs, special.bos, special.eos, MAX_EXPLANATION_TOKENS)[0].tolist()
        words = words[: words.index(special.eos)] if special.eos in words else words
        weights = _last_layer(model, inputs, [special.bos, *words])
    lead = [f"<{t}>" for t in loaded.tokenizer.batch_decode([[t] for t in special.lead])]
    tokens = ["<user>", "<item>", *lead, "<bos>", *(loaded.tokenizer.batch_decode([[w] for w in words]))]
    first = 2 + len(lead)  # <bos>'s position
    rows = weights[first + 1 :] if len(words) else weights[first:]  # the generated words (or <bos> when none)
    title = f"{loaded.manifest.get('name', Path(run).name)}: last-layer attention, user {user}, item {item}"
    title += " (before training)" if before else ""
    _draw(rows, tokens, tokens[first + 1 :] or ["<bos>"], title, out, kind)
    prompt_share = float(sum(sum(row[:2]) for row in rows) / max(len(rows), 1))
    return {"title": title, "tokens": tokens, "weights": rows, "prompt_share": prompt_share, "out": str(out)}


def initial_run_model(loaded: LoadedRun, trust_remote_code: bool = False) -> PromptModel:
    """The run's model as training started: built again from its recorded options and seed, and refused in one
    line when its prompt tensors differ from those the run recorded at its start (another torch, say)."""
    config = loaded.manifest["config"]
    head = get_rating_head(config["rating_head"]) if config.get("rating_head") else None
    lora = _lora_settings(loaded.manifest.get("lora"))
    model, _ = initial_model(
        config.get("prompt", "continuous"),
        get_backbone(config["backbone"]),
        config.get("backbone_path"),
        loaded.entities,
        head,
        seed=int(config.get("seed", 0)),
        from_scratch=bool(config.get("from_scratch")),
        lora=lora,
        trust_remote_code=trust_remote_code,
    )
    recorded = (loaded.manifest.get("initial") or {}).get("prompt_sha256")
    if recorded is not None and prompt_digest(model) != recorded:
        raise PeplerError(
            f"{loaded.path / MANIFEST}: field 'initial.prompt_sha256': the model rebuilt from the run's seed is not "
            "the one its training started from (other torch or plugin versions draw other numbers)"
        )
    return model.eval()


def _lora_settings(data: dict[str, Any] | None) -> Any:
    if data is None:
        return None
    from pepler_cli.modeling.lora import LoraSettings  # peft: only LoRA runs pay its import

    return LoraSettings.from_dict(data)


def _last_layer(model: ContinuousPromptModel, inputs: PromptInputs, ids: list[int]) -> list[list[float]]:
    """The last layer's attention weights over ``[u, i, lead…, ids…]``, averaged over heads: (positions,
    positions)."""
    lm = model.lm
    previous = getattr(lm.config, "_attn_implementation", None)
    lm.set_attn_implementation("eager")  # fused attention kernels do not return their weights
    try:
        words = lm.get_input_embeddings()(torch.tensor([ids]))
        prefix, _ = model.prefix(inputs)  # the user and item vectors, then a chat model's answer opening
        embeds = torch.cat([prefix, words.to(prefix.dtype)], dim=1)
        output = lm.base_model(inputs_embeds=embeds, output_attentions=True)
    finally:
        if previous is not None:
            lm.set_attn_implementation(previous)
    return output.attentions[-1][0].float().mean(dim=0).tolist()


def _draw(
    rows: list[list[float]], columns: list[str], labels: list[str], title: str, out: Path, kind: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(5, 0.45 * len(columns)), max(3, 0.35 * len(rows) + 1.5)))
    image = axes.imshow(rows, cmap="viridis", aspect="auto", vmin=0.0)
    axes.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize="small")
    axes.set_yticks(range(len(labels)), labels, fontsize="small")
    axes.set(xlabel="attended position", ylabel="generated word", title=title)
    figure.colorbar(image, ax=axes, fraction=0.04)
    with atomic_file(out, "wb") as handle:
        figure.savefig(
            handle,
            format=kind,
            dpi=120,
            bbox_inches="tight",
            metadata={"Date": None} if kind == "svg" else {},
        )
    plt.close(figure)
