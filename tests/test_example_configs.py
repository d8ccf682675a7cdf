"""Every config under examples/configs/ is a valid set of `pepler train` options (`*.generate.yaml`: of
`pepler generate`'s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pepler_cli.config import GenerateConfig, TrainConfig, resolve
from pepler_cli.plugins import get_model, registry

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "configs"
GENERATE_CONFIGS = sorted(FOLDER.glob("*.generate.yaml"))
CONFIGS = sorted(set(FOLDER.glob("*.yaml")) - set(GENERATE_CONFIGS))


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_example_config_is_valid(path: Path) -> None:
    options = resolve(TrainConfig, path, {"data": Path("data"), "out": Path("out")})
    config = get_model(options.model).resolve(options)  # the model's own checks and defaults
    assert config.model in registry.names("model")
    if config.model == "pepler":
        assert config.backbone in registry.names("backbone")
        assert config.rating_head is None or config.rating_head in registry.names("rating_head")
    else:  # a baseline's file spells out every one of its authors' hyper-parameters
        assert set(config.model_options) == set(get_model(config.model).options)


@pytest.mark.parametrize("path", GENERATE_CONFIGS, ids=[path.stem for path in GENERATE_CONFIGS])
def test_example_generate_config_is_valid(path: Path) -> None:
    resolve(GenerateConfig, path, {"run": Path("run"), "out": Path("preds.jsonl")})


def test_the_demo_uses_the_pretrained_backbone() -> None:
    demo = resolve(TrainConfig, CONFIGS[0].with_name("demo.yaml"), {"data": Path("d"), "out": Path("o")})
    assert demo.backbone == "smollm2-135m" and demo.strategy == "sequential-lora"
