"""Feature hints (`train|generate --feature-hint`, `generate --feature`), the feature predictors, and the framing of
an explanation (what it follows: <bos>, or a chat model's answer opening)."""

from __future__ import annotations

import json
import pickle
import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.feature_prediction import USER_SMOOTHING, FeatureCounts, hit_rate
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.build import build_model
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.modeling.special_tokens import explanation_start, special_tokens
from pepler_cli.runs import FEATURE_SCORER

runner = CliRunner()
FEATURES = ("pool", "staff", "room", "view")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _records(pairs: list[tuple[str, str, str]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(user=u, item=i, feature=f) for u, i, f in pairs]


# --- the counts predictor -------------------------------------------------------------------------------


def test_counts_predictor_weighs_the_items_features_by_the_users_affinity():
    records = _records(
        [("a", "x", "pool")] * 3
        + [("b", "x", "staff")] * 2
        + [("a", "y", "staff")] * 4
        + [("c", "y", "view")]
    )
    counts = FeatureCounts.from_training(records, range(len(records)))
    # Overall: staff 6, pool 3, view 1 of 10. Item x: pool 3, staff 2. User a: staff 4, pool 3 (7 in all).
    assert counts.candidates("a", "x") == ["staff", "pool"]  # the item's features, most frequent first

    def score(n_item: int, n_user: int, user_total: int, overall: int) -> float:
        share = overall / 10
        return n_item * (n_user + USER_SMOOTHING * share) / (user_total + USER_SMOOTHING)

    for user, (pool, staff) in {"a": ((3, 7), (4, 7)), "c": ((0, 1), (0, 1))}.items():
        expected = "pool" if score(3, *pool, 3) > score(2, *staff, 6) else "staff"
        assert counts.predict(user, "x") == expected
    # A user who wrote about pool 200 times gets pool for x, whose own counts alone would not decide it.
    fan = _records([("f", "z", "pool")] * 200)
    assert FeatureCounts.from_training(records + fan, range(len(records) + 200)).predict("f", "x") == "pool"
    assert counts.predict("c", "unknown item") == "view"  # no training features: the user's
    assert counts.predict("nobody", "unknown item") == "staff"  # then the most frequent
    assert counts.vocabulary() == ["staff", "pool", "view"]
    assert hit_rate(["staff", "pool"], ["staff", "view"]) == 0.5


# --- framing: what an explanation follows ----------------------------------------------------------------


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_plain_lm_starts_after_bos_and_a_chat_model_after_its_answer_opening(tokenizer):
    assert explanation_start(tokenizer) == [tokenizer.eos_token_id]  # GPT-2: <|endoftext|>, the paper's
    chat = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    chat.chat_template = CHAT_TEMPLATE
    start = explanation_start(chat)
    assert chat.decode(start) == "<|im_start|>assistant\n"
    special = special_tokens(chat, start)
    assert special.bos == start[-1] and list(special.lead) == start[:-1] and special.start == start


def test_the_prefix_is_prompt_then_hint_then_lead_and_padding_changes_nothing(tiny_lm):
    entities = EntityIndex(("u0", "u1"), ("i0", "i1"))
    model = build_model("continuous", tiny_lm, entities, None).eval()
    model.lead = (11, 12)
    hints = [[100], [200, 201, 202]]
    tokens, mask = pad_left(hints, 0)
    both = PromptInputs(torch.tensor([0, 1]), torch.tensor([0, 1]), hint_tokens=tokens, hint_mask=mask)
    prefix, prefix_mask = model.prefix(both)
    assert prefix.shape[1] == 2 + 3 + 2 and prefix_mask is not None
    assert prefix_mask[0].tolist() == [True, True, False, False, True, True, True]
    embed = tiny_lm.get_input_embeddings()
    torch.testing.assert_close(prefix[1, 2:5], embed(torch.tensor([200, 201, 202])))
    torch.testing.assert_close(prefix[:, 5:], embed(torch.tensor([11, 12])).expand(2, -1, -1))
    # The first row alone, unpadded, gets the same next-token logits as inside the padded batch.
    from pepler_cli.modeling.incremental import IncrementalLM

    alone = PromptInputs(
        torch.tensor([0]),
        torch.tensor([0]),
        hint_tokens=torch.tensor([[100]]),
        hint_mask=torch.tensor([[True]]),
    )
    with torch.no_grad():
        batched = IncrementalLM(model, both, 50256).logits[0]
        single = IncrementalLM(model, alone, 50256).logits[0]
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)


def test_a_discrete_prompt_reads_its_features_then_the_hint(tiny_lm):
    entities = EntityIndex(("u0",), ("i0",))
    model = build_model("discrete", tiny_lm, entities, None)
    model.lead = (7,)
    prompt, prompt_mask = pad_left([[5, 6]], 0)
    hint, hint_mask = pad_left([[9]], 0)
    inputs = PromptInputs(torch.tensor([0]), torch.tensor([0]), prompt, prompt_mask, hint, hint_mask)
    prefix, mask = model.prefix(inputs)
    embed = tiny_lm.get_input_embeddings()
    torch.testing.assert_close(prefix[0], embed(torch.tensor([5, 6, 9, 7])))
    assert mask is not None and mask.all()


def test_without_hint_or_lead_the_prefix_is_the_papers(tiny_lm):
    entities = EntityIndex(("u0",), ("i0",))
    model = build_model("continuous", tiny_lm, entities, None)
    prefix, mask = model.prefix(PromptInputs(torch.tensor([0]), torch.tensor([0])))
    assert prefix.shape[1] == 2 and mask is None


# --- end to end on a tiny model --------------------------------------------------------------------------


def _write_nete(directory: Path, records: int = 240, seed: int = 5) -> None:
    """Sentences "the FEATURE was great" with a random feature: only a hint can tell which."""
    rng = random.Random(seed)
    reviews = []
    for n in range(records):
        feature = FEATURES[n % len(FEATURES)] if n < len(FEATURES) else rng.choice(FEATURES)
        user, item = f"U{n % 12 if n >= 12 else n}", f"I{n % 10 if n >= 10 else n}"
        sentence = f"the {feature} was great"
        reviews.append({"user": user, "item": item, "rating": 4, "template": (feature, "great", sentence, 1)})
    directory.mkdir(parents=True)
    (directory / "reviews.pickle").write_bytes(pickle.dumps(reviews, protocol=4))
    for k in range(1, 6):
        order = list(range(records))
        rng.shuffle(order)
        cut1, cut2 = int(records * 0.8), int(records * 0.9)
        (directory / str(k)).mkdir()
        for part, indices in (
            ("train", order[:cut1]),
            ("validation", order[cut1:cut2]),
            ("test", order[cut2:]),
        ):
            (directory / str(k) / f"{part}.index").write_text(" ".join(map(str, indices)))


@pytest.fixture(scope="module")
def hinted(tmp_path_factory):
    root = tmp_path_factory.mktemp("hints")
    _write_nete(root / "nete")
    data = root / "data"
    assert invoke("prepare", "tripadvisor", "--source", root / "nete", "--out", data).exit_code == 0
    runs = {}
    for mode in ("none", "given"):
        runs[mode] = root / f"run-{mode}"
        trained = invoke(
            "train", "--data", data, "--out", runs[mode], "--backbone", "gpt2-tiny", "--strategy", "joint",
            "--epochs", "12", "--batch-size", "16", "--learning-rate", "0.005", "--seed", "3", "--device", "cpu",
            "--logger", "none", "--feature-hint", mode,
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
    return root, data, runs


def _generate(run: Path, out: Path, *options: object) -> list[dict]:
    result = invoke("generate", run, "--out", out, "--device", "cpu", *options)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _mentions(rows: list[dict], key: str) -> float:
    return sum(f" {row[key]} " in f" {row['generated']} " for row in rows) / len(rows)


def test_a_model_trained_with_given_hints_writes_its_hint_more_often(hinted):
    root, _, runs = hinted
    without = _generate(runs["none"], root / "none.jsonl")
    given = _generate(runs["given"], root / "given.jsonl")
    assert all("hint" not in row for row in without)
    assert [row["hint"] for row in given] == [row["feature"] for row in given]
    assert _mentions(given, "hint") >= _mentions(without, "feature") + 0.3, (given[:3], without[:3])
    meta = yaml.safe_load((root / "given.meta.yaml").read_text(encoding="utf-8"))
    assert meta["feature_hint"] == {
        "mode": "given",
        "predictor": None,
        "feature": None,
        "reads_test_record": True,
    }
    manifest = yaml.safe_load((runs["given"] / "manifest.yaml").read_text(encoding="utf-8"))
    assert manifest["config"]["feature_hint"] == "given"
    assert manifest["model"]["explanation_start"] == [50256]
    assert (runs["given"] / FEATURE_SCORER).is_file() and not (runs["none"] / FEATURE_SCORER).exists()


def test_a_chosen_feature_is_written_about(hinted):
    root, _, runs = hinted
    rows = _generate(runs["given"], root / "chosen.jsonl", "--feature", "staff")
    assert {row["hint"] for row in rows} == {"staff"}
    assert _mentions(rows, "hint") > 0.5
    meta = yaml.safe_load((root / "chosen.meta.yaml").read_text(encoding="utf-8"))
    assert meta["feature_hint"]["mode"] == "chosen" and meta["feature_hint"]["feature"] == "staff"


@pytest.mark.parametrize("predictor", ["counts", "learned"])
def test_predicted_hints_come_from_the_items_training_features(hinted, predictor):
    root, data, runs = hinted
    rows = _generate(
        runs["given"],
        root / f"{predictor}.jsonl",
        "--feature-hint",
        "predicted",
        "--feature-predictor",
        predictor,
    )
    records = [json.loads(line) for line in (data / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    train = [int(n) for n in (data / "splits" / "1" / "train.index").read_text().split()]
    of_item: dict[str, set[str]] = {}
    for n in train:
        of_item.setdefault(records[n]["item"], set()).add(records[n]["feature"])
    assert all(row["hint"] in of_item[row["item"]] for row in rows)
    meta = yaml.safe_load((root / f"{predictor}.meta.yaml").read_text(encoding="utf-8"))
    assert (
        meta["feature_hint"]["predictor"] == predictor and meta["feature_hint"]["reads_test_record"] is False
    )


def test_hints_a_run_cannot_read_are_one_clear_line(hinted):
    root, _, runs = hinted
    result = invoke("generate", runs["none"], "--out", root / "x.jsonl", "--feature-hint", "given")
    assert result.exit_code != 0 and "trained without feature hints" in result.output
    result = invoke("generate", runs["none"], "--out", root / "x.jsonl", "--feature", "pool")
    assert result.exit_code != 0 and "--feature needs a run trained with --feature-hint" in result.output
    result = invoke("generate", runs["given"], "--out", root / "x.jsonl", "--feature-hint", "none")
    assert result.exit_code != 0 and "reads a feature in every prompt" in result.output
    result = invoke(
        "generate", runs["given"], "--out", root / "x.jsonl", "--feature", "pool", "--feature-hint", "given"
    )
    assert result.exit_code == 2 and "give one" in result.output
    assert "Traceback" not in result.output and not (root / "x.jsonl").exists()


def test_a_run_from_before_explanation_starts_were_recorded_loads_as_trained(hinted, tmp_path):
    import shutil

    from pepler_cli.run_model import load_run

    _, _, runs = hinted
    old = tmp_path / "old"
    shutil.copytree(runs["none"], old)
    manifest = yaml.safe_load((old / "manifest.yaml").read_text(encoding="utf-8"))
    del manifest["model"]["explanation_start"]
    del manifest["config"]["feature_hint"]
    (old / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    loaded = load_run(old, torch.device("cpu"))
    assert loaded.feature_hint == "none" and loaded.model.lead == () and loaded.special.bos == 50256


def test_a_damaged_explanation_start_names_the_field(hinted, tmp_path):
    import shutil

    _, _, runs = hinted
    bad = tmp_path / "bad"
    shutil.copytree(runs["none"], bad)
    manifest = yaml.safe_load((bad / "manifest.yaml").read_text(encoding="utf-8"))
    manifest["model"]["explanation_start"] = ["<bos>"]
    (bad / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    result = invoke("generate", bad, "--out", tmp_path / "p.jsonl")
    assert result.exit_code != 0 and "model.explanation_start" in result.output
    assert Counter(result.output.strip().splitlines()) and "Traceback" not in result.output
