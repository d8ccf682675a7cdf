"""pepler: personalized prompt learning for explainable recommendation (Li, Zhang, Chen; ACM TOIS 2023).

The library, one function per command (each loads its modules on first use, so importing pepler_cli is
instant)::

    import pepler_cli
    from pepler_cli.config import PrepareConfig, TrainConfig, GenerateConfig, ScoreConfig

    pepler_cli.prepare(PrepareConfig(source_or_dataset="reviews.json.gz", name="shop"))
    pepler_cli.train(TrainConfig(data="data/shop", out="runs/shop", backbone="gpt2-tiny"))
    pepler_cli.generate(GenerateConfig(run="runs/shop", out="preds.jsonl"))
    pepler_cli.score(ScoreConfig(predictions="preds.jsonl", data="data/shop"))
    rows = pepler_cli.compare(["runs/shop"])  # render with pepler_cli.evaluation.comparison.render_markdown
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_COMMANDS = {
    "prepare": ("pepler_cli.preparation", "prepare"),
    "train": ("pepler_cli.training.train", "train"),
    "generate": ("pepler_cli.generation.generate", "generate"),
    "score": ("pepler_cli.evaluation.score", "score"),
    "compare": ("pepler_cli.evaluation.comparison", "load_rows"),
}
__all__ = ["__version__", "compare", "generate", "prepare", "score", "train"]


def __getattr__(name: str) -> Any:
    if name in _COMMANDS:
        module, attribute = _COMMANDS[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'pepler_cli' has no attribute {name!r}")
