"""Are pepler's NRT, Att2Seq and PETER networks the authors' networks? Checked against the authors' own code.

    python benchmarks/baselines_fidelity.py [--authors-code DIR] [--data reviews.pickle --index-dir DIR]

Getting the authors' code (the commits the results name; DIR defaults to $PEPLER_AUTHORS_CODE, else /tmp/h5):

    mkdir DIR && cd DIR
    git clone https://github.com/lileipisces/NRT
    git -C NRT checkout d457fc8b5f528d5ddf6407df0b1201bec2909c16
    git clone https://github.com/lileipisces/Att2Seq
    git -C Att2Seq checkout acd6f9670b3da3acf498fd600a6eec9164303b04
    git clone https://github.com/lileipisces/PETER
    git -C PETER checkout 1f1d7f616fcce69c90b5cc15ad87d815acc6a753

Only their module.py (the networks) and utils.py (DataLoader, Batchify) are imported, by path; utils.py
imports bleu.py and rouge.py from its own folder. Their main.py is not run, so it needs no patch here; running
it on torch >= 2.6 needs one (the whole-model checkpoint is a pickle): in each main.py
``sed -i 's/torch.load(f)/torch.load(f, weights_only=False)/' main.py``. The script checks module.py and
utils.py against the git blob ids of those commits and records whether they match.

Data: a NETE export (``reviews.pickle`` + ``<index-dir>/{train,validation,test}.index``), e.g. from
``pepler export-data --format nete``. Without --data the script writes a small synthetic one (203 records,
10 users, 8 items, a multi-word feature, texts of 3 to 21 words, split 163/20/20) to a temporary folder.

For each of nrt, att2seq, peter and peter+ (PETER reading the feature): the authors' network is built with
their classes and default hyper-parameters on their DataLoader's corpus (seed 1111), ours with the same sizes
takes its weights (load_state_dict, strict), and both go to eval mode (dropout off: train-mode dropout draws
differ by layout). Then:

* parameters: ours and theirs at the data's sizes, and at TripAdvisor's (ntoken 20,004, 10 users, 8 items);
* loss: on their training Batchify's first batch, theirs exactly as their main.py's train() forms it, ours
  as pepler's training loop takes it: the model plugin's ``losses`` (``BaselineModel``) combined by the loop's
  ``objective`` with the same weights; the largest gradient difference of that loss;
* a few training steps of their network with their optimizer and clipping; before each, ours takes its
  weights, and both losses and gradients on that step's batch are compared (largest differences over the
  steps);
* greedy decoding after those steps, on their test Batchify's first batch, 15 steps as their generate()
  (theirs: NRT/Att2Seq carry the RNN state, PETER re-runs the whole prefix each step; ours: start/step, PETER
  from its key/value cache): equal ids, and for NRT/PETER the largest rating difference.

Writes results/baselines-fidelity.json. A minute or two on two CPU cores.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import pickle
import platform
import random
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from authors_code import AUTHORS
from torch import Tensor, nn

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "baselines-fidelity.json"
TOLERANCE = 1e-5
SEED = 1111  # PETER's main.py default seed (NRT and Att2Seq set none)
WORDS = 15  # --words of all three main.py
VOCAB_SIZE = 20_000  # --vocab_size of all three main.py
TRIPADVISOR = {"ntoken": 20_004, "nuser": 10, "nitem": 8}
# The counts the authors' classes give at those sizes (measured on their code; PETER+ adds no parameter).
TRIPADVISOR_COUNTS = {"nrt": 15_995_405, "att2seq": 24_839_844, "peter": 27_081_253, "peter+": 27_081_253}

# The files imported from each repository (authors_code.AUTHORS: their commits and blob ids).
IMPORTED = ("module.py", "utils.py")

# The authors' main.py defaults per network: repository, batch size, loss weights (context, rating),
# optimizer (name, lr) and gradient clipping.
MODELS: dict[str, dict[str, Any]] = {
    "nrt": {"repo": "NRT", "batch": 200, "weights": (0.0, 1.0), "optimizer": ("adam", 1e-4), "clip": None},
    "att2seq": {
        "repo": "Att2Seq",
        "batch": 50,
        "weights": (0.0, 0.0),
        "optimizer": ("adam", 1e-4),
        "clip": 5.0,
    },
    "peter": {"repo": "PETER", "batch": 128, "weights": (1.0, 0.1), "optimizer": ("sgd", 1.0), "clip": 1.0},
    "peter+": {"repo": "PETER", "batch": 128, "weights": (1.0, 0.1), "optimizer": ("sgd", 1.0), "clip": 1.0},
}


def import_pepler_baselines() -> tuple[Any, ...]:
    """pepler's networks: installed, or straight from the plugin's source folder of this checkout."""
    with contextlib.suppress(ImportError):
        return _pepler_baselines()
    sys.path.insert(0, str(REPO / "plugins" / "pepler-baselines" / "src"))
    return _pepler_baselines()


def _pepler_baselines() -> tuple[Any, ...]:
    from pepler_baselines.att2seq import Att2Seq
    from pepler_baselines.nrt import NRT
    from pepler_baselines.peter import PETER

    return NRT, Att2Seq, PETER


NRT, Att2Seq, PETER = import_pepler_baselines()


# The authors' code ------------------------------------------------------------------------------------------


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content, to compare with the commit's tree."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@contextlib.contextmanager
def authors_folder(folder: Path) -> Iterator[None]:
    """Let utils.py find its bleu.py/rouge.py, then leave sys.path and sys.modules as they were."""
    saved_path = list(sys.path)
    saved_modules = {name: sys.modules.pop(name, None) for name in ("bleu", "rouge")}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            sys.modules.pop(name, None)
            if module is not None:
                sys.modules[name] = module


def load_by_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_authors(root: Path, repo: str) -> tuple[ModuleType, ModuleType]:
    """Their module.py and utils.py under names of their own (the three repositories reuse file names)."""
    with authors_folder(root / repo):
        module = load_by_path(f"authors_{repo.lower()}_module", root / repo / "module.py")
        utils = load_by_path(f"authors_{repo.lower()}_utils", root / repo / "utils.py")
    return module, utils


def provenance(root: Path) -> dict[str, Any]:
    """Each repository's commit and whether the imported files are that commit's."""
    found = {}
    for repo, facts in AUTHORS.items():
        imported = {name: blob for name, blob in facts["blobs"].items() if name in IMPORTED}
        files = {name: git_blob_id(root / repo / name) for name in imported}
        found[repo] = {
            "url": facts["url"],
            "commit": facts["commit"],
            "files_imported": files,
            "files_match_commit": files == imported,
        }
    return found


# Data -------------------------------------------------------------------------------------------------------


def write_fixture(folder: Path, records: int = 203, seed: int = 0) -> tuple[Path, Path]:
    """A small NETE export: reviews.pickle and 1/{train,validation,test}.index (163/20/20 records).

    Split sizes avoid a last batch of one record, which crashes the authors' code.
    """
    rng = random.Random(seed)
    vocabulary = [
        *(
            "the",
            "room",
            "was",
            "clean",
            "and",
            "staff",
            "very",
            "friendly",
            "location",
            "great",
            "breakfast",
        ),
        *(
            "pool",
            "view",
            "bed",
            "small",
            "big",
            "nice",
            "service",
            "quiet",
            "comfortable",
            "bathroom",
            "price",
        ),
    ]
    features = ["room", "staff", "location", "breakfast", "pool", "front desk"]
    reviews = []
    for _ in range(records):
        feature = rng.choice(features)
        words = [feature, *rng.choices(vocabulary, k=rng.randint(2, 20))]
        reviews.append(
            {
                "user": f"user{rng.randrange(10)}",
                "item": f"item{rng.randrange(8)}",
                "rating": float(rng.randint(1, 5)),
                "template": (feature, "nice", " ".join(words), 1),
            }
        )
    data = folder / "reviews.pickle"
    data.write_bytes(pickle.dumps(reviews))
    order = list(range(records))
    rng.shuffle(order)
    index_dir = folder / "1"
    index_dir.mkdir()
    for name, part in [("train", order[:163]), ("validation", order[163:183]), ("test", order[183:])]:
        (index_dir / f"{name}.index").write_text(" ".join(map(str, part)) + "\n")
    return data, index_dir


def read_corpus(utils: ModuleType, data: Path, index_dir: Path) -> Any:
    """Their DataLoader (it opens the pickle twice without closing it: silence that ResourceWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return utils.DataLoader(str(data), str(index_dir) + os.sep, VOCAB_SIZE)


# Networks ---------------------------------------------------------------------------------------------------


def build_theirs(
    name: str, module: ModuleType, nuser: int, nitem: int, ntoken: int, rating_range: tuple
) -> nn.Module:
    """Their network with their main.py's default hyper-parameters."""
    if name == "nrt":
        return module.NRT(nuser, nitem, ntoken, 300, 400, 4, rating_range[1], rating_range[0])
    if name == "att2seq":
        return module.Att2Seq(nuser, nitem, ntoken, 64, 512, 0.2, 2)
    src_len = 3 if name == "peter+" else 2
    return module.PETER(True, src_len, WORDS + 1, 2, nuser, nitem, ntoken, 512, 2, 2048, 2, 0.2)


def build_ours(name: str, nuser: int, nitem: int, ntoken: int, rating_range: tuple) -> nn.Module:
    """Ours with the same sizes (our defaults are the authors' hyper-parameters)."""
    if name == "nrt":
        return NRT(nuser, nitem, ntoken, max_rating=rating_range[1], min_rating=rating_range[0])
    if name == "att2seq":
        return Att2Seq(nuser, nitem, ntoken)
    return PETER(nuser, nitem, ntoken)


def count(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def tripadvisor_counts(name: str, module: ModuleType) -> dict[str, int]:
    """Both networks at TripAdvisor's sizes, built on the meta device (no memory, no initialisation cost)."""
    sizes = (TRIPADVISOR["nuser"], TRIPADVISOR["nitem"], TRIPADVISOR["ntoken"])
    with torch.device("meta"):
        theirs = build_theirs(name, module, *sizes, (1.0, 5.0))
        ours = build_ours(name, *sizes, (1.0, 5.0))
    return {"ours": count(ours), "theirs": count(theirs)}


# Losses -----------------------------------------------------------------------------------------------------


def their_loss(name: str, model: nn.Module, batch: tuple[Tensor, ...], ntoken: int, pad: int) -> Tensor:
    """The loss exactly as their main.py's train() forms it (reg weights at their defaults)."""
    text_criterion = nn.NLLLoss(ignore_index=pad)
    rating_criterion = nn.MSELoss()
    user, item, rating, seq = batch[:4]
    if name == "nrt":
        rating_p, log_word_prob = model(user, item, seq[:, :-1])
        r_loss = rating_criterion(rating_p, rating)
        t_loss = text_criterion(log_word_prob.view(-1, ntoken), seq[:, 1:].reshape((-1,)))
        l2_loss = torch.cat([x.view(-1) for x in model.parameters()]).pow(2.0).sum()
        return 1.0 * t_loss + 1.0 * r_loss + 0 * l2_loss
    if name == "att2seq":
        log_word_prob = model(user, item, seq[:, :-1])
        return text_criterion(log_word_prob.view(-1, ntoken), seq[:, 1:].reshape((-1,)))
    seq = seq.t()
    text = torch.cat([batch[4].t(), seq[:-1]], 0) if name == "peter+" else seq[:-1]
    log_word_prob, log_context_dis, rating_p, _ = model(user, item, text)
    context_dis = log_context_dis.unsqueeze(0).repeat((WORDS, 1, 1))
    c_loss = text_criterion(context_dis.view(-1, ntoken), seq[1:-1].reshape((-1,)))
    r_loss = rating_criterion(rating_p, rating)
    t_loss = text_criterion(log_word_prob.view(-1, ntoken), seq[1:].reshape((-1,)))
    return 1.0 * t_loss + 1.0 * c_loss + 0.1 * r_loss


def our_loss(name: str, network: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """The loss pepler's training loop takes a step on: the model plugin's ``losses`` of the batch (as
    ``BaselineModel``), combined by the loop's ``objective`` with the authors' weights."""
    from pepler_baselines.model import BaselineModel

    from pepler_cli.modeling.batch import Batch
    from pepler_cli.training.loop import objective

    user, item, rating, seq = batch[:4]
    hint = batch[4] if name == "peter+" else None
    context_weight, rating_weight = MODELS[name]["weights"]
    model = BaselineModel(network, context_weight, WORDS)
    inputs = Batch(
        users=user,
        items=item,
        tokens=seq,
        token_mask=seq != network.pad_idx,
        ratings=rating,
        hint_tokens=hint,
        hint_mask=None if hint is None else torch.ones_like(hint, dtype=torch.bool),
    )
    return objective(model.losses(inputs), rating_weight)


def optimizer(name: str, network: nn.Module) -> torch.optim.Optimizer:
    kind, lr = MODELS[name]["optimizer"]
    if kind == "adam":
        return torch.optim.Adam(network.parameters(), lr=lr)
    return torch.optim.SGD(network.parameters(), lr=lr)


def gradient_difference(theirs: nn.Module, ours: nn.Module) -> tuple[float, float]:
    """Largest |grad difference| over same-named parameters, and the largest |grad| for scale."""
    their_grads = {key: p.grad for key, p in theirs.named_parameters()}
    worst = largest = 0.0
    for key, parameter in ours.named_parameters():
        mine, other = parameter.grad, their_grads[key]
        if mine is None or other is None:
            if (mine is None) != (other is None) and (mine if mine is not None else other).abs().max() > 0:
                return math.inf, largest
            continue
        worst = max(worst, (mine - other).abs().max().item())
        largest = max(largest, other.abs().max().item())
    return worst, largest


# Decoding ---------------------------------------------------------------------------------------------------


def their_greedy(
    name: str, model: nn.Module, batch: tuple[Tensor, ...]
) -> tuple[list[list[int]], Tensor | None]:
    """Their generate(): 15 greedy steps; NRT/Att2Seq carry the RNN state, PETER re-runs the whole prefix."""
    user, item, _, seq = batch[:4]
    with torch.no_grad():
        if name in ("nrt", "att2seq"):
            inputs, chosen, rating = seq[:, :1], [], None
            if name == "nrt":
                rating, hidden = model.encoder(user, item)
                state: tuple[Tensor, ...] = (hidden,)
            else:
                hidden = model.encoder(user, item)
                state = (hidden, torch.zeros_like(hidden))
            for _ in range(WORDS):
                log_word_prob, *state = model.decoder(inputs, *state)
                inputs = torch.argmax(log_word_prob.squeeze(1).exp(), dim=1, keepdim=True)
                chosen.append(inputs)
            return torch.cat(chosen, 1).tolist(), rating
        bos = seq[:, 0].unsqueeze(0)
        text = torch.cat([batch[4].t(), bos], 0) if name == "peter+" else bos
        start = text.size(0)
        rating = None
        for step in range(WORDS):
            if step == 0:
                log_word_prob, _, rating, _ = model(user, item, text, False)
            else:
                log_word_prob = model(user, item, text, False, False, False)[0]
            text = torch.cat([text, torch.argmax(log_word_prob.exp(), dim=1).unsqueeze(0)], 0)
        return text[start:].t().tolist(), rating


def our_greedy(
    name: str, network: nn.Module, batch: tuple[Tensor, ...]
) -> tuple[list[list[int]], Tensor | None]:
    """start/step, argmax of the logits, 15 steps (PETER from its key/value cache)."""
    user, item, _, seq = batch[:4]
    hint = {"hint": batch[4]} if name == "peter+" else {}
    with torch.no_grad():
        state, logits = network.start(user, item, seq[:, 0], **hint)
        chosen = []
        for _ in range(WORDS):
            chosen.append(logits.argmax(dim=-1))
            state, logits = network.step(state, chosen[-1])
        return torch.stack(chosen, 1).tolist(), network.predict_ratings(user, item)


# One network ------------------------------------------------------------------------------------------------


def check(name: str, root: Path, data: Path, index_dir: Path, steps: int) -> dict[str, Any]:
    """Everything this script measures for one network (see the module docstring)."""
    spec = MODELS[name]
    module, utils = load_authors(root, spec["repo"])
    corpus = read_corpus(utils, data, index_dir)
    word2idx = corpus.word_dict.word2idx
    sizes = (len(corpus.user_dict), len(corpus.item_dict), len(corpus.word_dict))
    rating_range = (corpus.min_rating, corpus.max_rating)
    random.seed(SEED)  # their training Batchify reshuffles with Python's random when it wraps
    train = utils.Batchify(corpus.train, word2idx, WORDS, spec["batch"], shuffle=True)
    test = utils.Batchify(corpus.test, word2idx, WORDS, spec["batch"])

    torch.manual_seed(SEED)
    theirs = build_theirs(name, module, *sizes, rating_range)
    ours = build_ours(name, *sizes, rating_range)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.eval()
    ours.eval()
    pad, ntoken = word2idx["<pad>"], sizes[2]
    their_optimizer = optimizer(name, theirs)

    result: dict[str, Any] = {
        "sizes": {
            "nuser": sizes[0],
            "nitem": sizes[1],
            "ntoken": sizes[2],
            "rating_range": list(rating_range),
        },
        "parameters": {"ours": count(ours), "theirs": count(theirs)},
        "parameters_tripadvisor": {
            **tripadvisor_counts(name, module),
            "facts_file": TRIPADVISOR_COUNTS[name],
        },
    }
    compared = []
    for _ in range(steps):
        # Ours takes their current weights at every step: each step's loss and gradients are compared from the
        # same weights (free-running copies would drift apart by float rounding, amplified by SGD at lr 1).
        ours.load_state_dict(theirs.state_dict(), strict=True)
        theirs.zero_grad()
        ours.zero_grad()
        batch = train.next_batch()
        their_value = their_loss(name, theirs, batch, ntoken, pad)
        our_value = our_loss(name, ours, batch)
        their_value.backward()
        our_value.backward()
        worst, largest = gradient_difference(theirs, ours)
        compared.append(
            {
                "batch_size": batch[0].size(0),
                "ours": our_value.item(),
                "theirs": their_value.item(),
                "abs_diff": abs(our_value.item() - their_value.item()),
                "grad_max_abs_diff": worst,
                "grad_max_abs": largest,
            }
        )
        if spec["clip"] is not None:
            nn.utils.clip_grad_norm_(theirs.parameters(), spec["clip"])
        their_optimizer.step()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    first = compared[0]
    result["loss"] = {key: first[key] for key in ("batch_size", "ours", "theirs", "abs_diff")}
    result["gradient"] = {"max_abs_diff": first["grad_max_abs_diff"], "max_abs_grad": first["grad_max_abs"]}
    result["training_steps"] = {
        "steps": steps,
        "optimizer": list(spec["optimizer"]),
        "clip": spec["clip"],
        "their_losses": [round(row["theirs"], 6) for row in compared],
        "max_loss_abs_diff": max(row["abs_diff"] for row in compared),
        "max_grad_abs_diff": max(row["grad_max_abs_diff"] for row in compared),
    }

    batch = test.next_batch()
    their_ids, their_rating = their_greedy(name, theirs, batch)
    our_ids, our_rating = our_greedy(name, ours, batch)
    result["greedy"] = {
        "rows": len(our_ids),
        "equal_ids": our_ids == their_ids,
        "distinct_tokens": len({token for row in our_ids for token in row}),
        "first_row": [corpus.word_dict.idx2word[token] for token in our_ids[0]],
    }
    if their_rating is not None and our_rating is not None:
        result["greedy"]["rating_max_abs_diff"] = (our_rating - their_rating).abs().max().item()
    result["greedy_equal"] = result["greedy"]["equal_ids"]
    result["pass"] = passed(result)
    return result


def passed(result: dict[str, Any]) -> bool:
    """Equal sizes, losses and gradients within the tolerance at every step, equal greedy ids."""
    parameters, tripadvisor = result["parameters"], result["parameters_tripadvisor"]
    return (
        parameters["ours"] == parameters["theirs"]
        and tripadvisor["ours"] == tripadvisor["theirs"] == tripadvisor["facts_file"]
        and result["loss"]["abs_diff"] <= TOLERANCE
        and result["training_steps"]["max_loss_abs_diff"] <= TOLERANCE
        and result["training_steps"]["max_grad_abs_diff"] <= TOLERANCE
        and result["greedy"]["equal_ids"]
    )


# Main -------------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = Path(os.environ.get("PEPLER_AUTHORS_CODE", "/tmp/h5"))
    p.add_argument("--authors-code", type=Path, default=default_root, help="folder with NRT/ Att2Seq/ PETER/")
    p.add_argument("--data", type=Path, default=None, help="a NETE reviews.pickle (default: a synthetic one)")
    p.add_argument("--index-dir", type=Path, default=None, help="folder of train/validation/test.index")
    p.add_argument(
        "--steps", type=int, default=5, help="training steps compared (the first is the loss check)"
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    root = args.authors_code.resolve()
    missing = [repo for repo in AUTHORS if not (root / repo / "module.py").is_file()]
    if missing:
        p.error(f"{root} lacks {', '.join(missing)}: clone them as the docstring says (--help)")
    if (args.data is None) != (args.index_dir is None):
        p.error("--data and --index-dir go together")

    with tempfile.TemporaryDirectory() as scratch:
        if args.data is None:
            data, index_dir = write_fixture(Path(scratch))
            data_note = "synthetic NETE fixture written by write_fixture() (203 records, split 163/20/20)"
        else:
            data, index_dir = args.data.resolve(), args.index_dir.resolve()
            data_note = f"{data} with {index_dir}"
        models = {name: check(name, root, data, index_dir, args.steps) for name in MODELS}
        for name, result in models.items():
            loss = result["loss"]
            print(
                f"{name:8} parameters {result['parameters']['ours']:,} = {result['parameters']['theirs']:,}"
                f" | TripAdvisor {result['parameters_tripadvisor']['ours']:,}"
                f" | loss {loss['ours']:.6f} vs {loss['theirs']:.6f} (|diff| {loss['abs_diff']:.2e})"
                f" | grad |diff| {result['gradient']['max_abs_diff']:.2e}"
                f" | greedy equal {result['greedy_equal']} | pass {result['pass']}"
            )

    command = "python benchmarks/baselines_fidelity.py --authors-code " + str(root)
    if args.data is not None:
        command += f" --data {args.data} --index-dir {args.index_dir}"
    if args.steps != 5:
        command += f" --steps {args.steps}"
    report = {
        "what": "pepler's NRT, Att2Seq and PETER networks against the authors' classes: sizes, loss, "
        "gradients, training steps and greedy decoding from the same weights (eval mode)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commands": [command],
        "authors_code": provenance(root),
        "patches_applied": [],
        "patches_note": "none: only module.py and utils.py are imported; running their main.py on "
        "torch >= 2.6 needs torch.load(f) -> torch.load(f, weights_only=False) "
        "(NRT main.py 214, Att2Seq 206, PETER 320)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "data": data_note,
        "tolerance": TOLERANCE,
        "seed": SEED,
        "models": models,
        "all_pass": all(result["pass"] for result in models.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} (all pass: {report['all_pass']})")


if __name__ == "__main__":
    main()
