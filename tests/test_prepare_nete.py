"""Preparing the paper's NETE-format datasets: records checked, splits kept, texts truncated exactly."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from pepler_cli.data import truncation
from pepler_cli.data.nete import (
    DATASETS_URL,
    check_nete_source,
    nete_source_files,
    prepare_nete,
    read_nete_reviews,
    read_nete_splits,
)
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.writing import Truncation
from pepler_cli.data.truncation import truncate_texts
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.text_cleanup import clean_up_spaces

FIXTURE = Path(__file__).parent / "fixtures" / "nete-tiny"

LONG = (
    "the breakfast buffet was absolutely wonderful with fresh fruit , pastries , eggs cooked to order and "
    "the best coffee in town"
)


def _reference(text: str, tokenizer, limit: int = 20) -> str:
    """The PEPLER authors' formula, one text at a time."""
    return tokenizer.decode(tokenizer(text)["input_ids"][:limit])


def _review(n: int, **changes):
    review = {
        "user": f"u{n % 3}",
        "item": f"i{n % 2}",
        "rating": 1 + n % 5,
        "template": ("room", "clean", f"the room was clean {n}", 1),
    }
    review.update(changes)
    return review


def _nete_dir(root: Path, reviews: list, protocol: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reviews.pickle").write_bytes(pickle.dumps(reviews, protocol=protocol))
    n = len(reviews)
    for k in range(1, 6):
        (root / str(k)).mkdir(exist_ok=True)
        (root / str(k) / "train.index").write_text(" ".join(str(i) for i in range(n - 2)))
        (root / str(k) / "validation.index").write_text(str(n - 2))
        (root / str(k) / "test.index").write_text(str(n - 1))
    return root


@pytest.fixture()
def nete_dir(tmp_path):
    return Path(shutil.copytree(FIXTURE, tmp_path / "TripAdvisor"))


def test_prepare_keeps_records_and_given_splits(nete_dir, tmp_path, tokenizer):
    out = tmp_path / "data" / "tripadvisor"
    result = prepare_nete("tripadvisor", nete_dir, out, truncation=Truncation(tokenizer))
    reviews = pickle.loads((nete_dir / "reviews.pickle").read_bytes())
    dataset = load_prepared(out)

    assert len(dataset.records) == len(reviews) == 60
    for record, review in zip(dataset.records, reviews):
        feature, adjective, sentence, sentiment = review["template"]
        assert (record.user, record.item, record.rating) == (
            review["user"],
            review["item"],
            float(review["rating"]),
        )
        assert (record.feature, record.opinion, record.sentiment) == (feature, adjective, sentiment)
        # The authors' formula through transformers 4.x's decode, which cleaned up spaces (text_cleanup.py).
        assert record.text == clean_up_spaces(_reference(sentence, tokenizer))
    assert any(record.text != review["template"][2] for record, review in zip(dataset.records, reviews))

    for k in range(1, 6):
        given = tuple(
            [int(x) for x in (nete_dir / str(k) / f"{part}.index").read_text().split()]
            for part in ("train", "validation", "test")
        )
        assert dataset.splits[k] == given  # the same numbers in the same order, split 5 one a line
    assert dataset.features == sorted({r["template"][0] for r in reviews})

    manifest = result.manifest
    assert manifest["source"]["kind"] == "nete" and manifest["source"]["dataset"] == "tripadvisor"
    assert sorted(manifest["source"]["sha256"]) == sorted(nete_source_files(nete_dir))
    assert manifest["counts"]["reviews_read"] == 60 and manifest["counts"]["reviews_dropped"] == 0
    assert manifest["splits"]["count"] == 5 and manifest["splits"]["seed"] is None
    assert result.statistics.records == 60 and result.statistics.users == 8


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol(tmp_path, protocol):
    reviews = [_review(n) for n in range(6)]
    source = _nete_dir(tmp_path / "src", reviews, protocol)
    columns = read_nete_reviews(source / "reviews.pickle")
    assert columns.texts == [r["template"][2] for r in reviews]
    assert columns.ratings == [float(r["rating"]) for r in reviews]


def test_extras_ignored_and_lenient_shapes_accepted(tmp_path):
    reviews = [
        _review(0, predicted="clean", text="full review text", sentence=[("x", "y")]),
        _review(1, user=12345, item=678),  # integer ids
        _review(2, template=["room", "clean", "a list, not a tuple", -1.0]),
        _review(3, rating=3.5),
    ]
    source = _nete_dir(tmp_path / "src", reviews)
    columns = read_nete_reviews(source / "reviews.pickle")
    assert columns.users[1] == "12345" and columns.items[1] == "678"
    assert columns.sentiments == [1, 1, -1, 1]
    assert columns.ratings[3] == 3.5


@pytest.mark.parametrize(
    "bad, message",
    [
        ("not a dict", "record 3: expected a dict"),
        ({"item": "i", "rating": 1, "template": ("a", "b", "c", 1)}, "record 3: field 'user' is missing"),
        (_review(3, template=None), "record 3: field 'template': expected a 4-tuple"),
        (_review(3, user=1.5), "record 3: field 'user': expected a string, got float 1.5"),
        (_review(3, item=None), "record 3: field 'item': expected a string"),
        (_review(3, rating="5"), "record 3: field 'rating': expected a number, got str '5'"),
        (_review(3, rating=True), "record 3: field 'rating': expected a number"),
        (_review(3, rating=float("nan")), "record 3: field 'rating': expected a finite number"),
        (_review(3, template=("a", "b", "c")), "record 3: field 'template': expected a 4-tuple"),
        (_review(3, template="abcd"), "record 3: field 'template': expected a 4-tuple"),
        (_review(3, template=(1, "b", "c", 1)), "record 3: field 'template[0]' (feature): expected a string"),
        (_review(3, template=("a", None, "c", 1)), "record 3: field 'template[1]' (adjective)"),
        (
            _review(3, template=("a", "b", 42, 1)),
            "record 3: field 'template[2]' (sentence): expected a string, got int 42",
        ),
        (
            _review(3, template=("a", "b", "c", 0)),
            "record 3: field 'template[3]' (sentiment): expected 1 or -1",
        ),
        (_review(3, template=("a", "b", "c", "1")), "field 'template[3]' (sentiment)"),
    ],
)
def test_bad_record_names_file_record_and_field(tmp_path, bad, message):
    reviews = [_review(n) for n in range(5)]
    reviews[3] = bad
    source = _nete_dir(tmp_path / "src", reviews)
    with pytest.raises(PeplerError) as caught:
        read_nete_reviews(source / "reviews.pickle")
    text = caught.value.message
    assert text.startswith(str(source / "reviews.pickle") + ": ")
    assert message in text and "\n" not in text


@pytest.mark.parametrize(
    "content, message", [({"a": 1}, "expected a list of review dicts"), ([], "holds no reviews")]
)
def test_pickle_of_the_wrong_shape(tmp_path, content, message):
    path = tmp_path / "reviews.pickle"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(PeplerError, match=message):
        read_nete_reviews(path)


def test_index_files_accept_any_whitespace_and_check_numbers(tmp_path):
    source = _nete_dir(tmp_path / "src", [_review(n) for n in range(6)])
    (source / "2" / "train.index").write_text("\n 0\t1\r\n2  3 \n")
    assert read_nete_splits(source, 6)[2][0] == [0, 1, 2, 3]
    (source / "4" / "test.index").write_text("5 6")
    with pytest.raises(PeplerError, match=r"4/test.index: entry 2 is record 6, outside 0..5"):
        read_nete_splits(source, 6)
    (source / "4" / "test.index").write_text("5 five")
    with pytest.raises(PeplerError, match=r"4/test.index: entry 2 is 'five', not a record number"):
        read_nete_splits(source, 6)


def test_missing_source_explains_where_to_get_the_datasets(tmp_path):
    with pytest.raises(UsageError) as caught:
        check_nete_source("yelp", None)
    message = caught.value.message
    assert caught.value.exit_code == 2
    assert DATASETS_URL in message and "Yelp" in message and "--source DIR" in message
    assert "DIR/reviews.pickle" in message and "DIR/1..5/{train,validation,test}.index" in message
    with pytest.raises(UsageError, match="no such directory"):
        check_nete_source("amazon", tmp_path / "absent")
    source = _nete_dir(tmp_path / "src", [_review(n) for n in range(4)])
    (source / "3" / "validation.index").unlink()
    with pytest.raises(UsageError, match=r"missing .*3/validation.index"):
        check_nete_source("tripadvisor", source)


def test_existing_output_is_refused_before_any_work(nete_dir, tmp_path, tokenizer):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PeplerError, match="already exists"):
        prepare_nete("tripadvisor", nete_dir, out, truncation=Truncation(tokenizer))


# ---------------------------------------------------------------------------------------------- truncation

TEXTS = [
    LONG,
    "short and sweet",
    "",
    "   leading and trailing   ",
    "it's the room 's best ; don't , won't !!! ... ??",
    "numbers 123456789 0.5 1,000 and-hyphen x'rex ''s",
    "naïve café ☕ 日本語のテキストはとても長いです、本当に長いです。" * 2,
    "tab\tand\nnewline and control \x01 char " * 3,
    "contains <|endoftext|> the special token and then goes on and on for a long while past twenty tokens",
    "😀" * 30,
    LONG,  # repeated texts are handled once
]


@pytest.mark.parametrize("limit", [1, 5, 20])
def test_truncation_matches_the_authors_formula(limit, tokenizer):
    assert truncate_texts(TEXTS, limit, tokenizer=tokenizer) == [
        _reference(t, tokenizer, limit) for t in TEXTS
    ]


def test_truncation_without_the_piece_shortcut_gives_the_same(monkeypatch, tokenizer):
    fast = truncate_texts(TEXTS, 20, tokenizer=tokenizer)
    monkeypatch.setattr(truncation, "_gpt2_like", lambda backend: False)
    assert truncate_texts(TEXTS, 20, tokenizer=tokenizer) == fast


class _CleaningTokenizer:
    """A tokenizer whose decode changes text (as older transformers' space clean-up did)."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def decode(self, ids):
        return self._tokenizer.decode(ids).replace(" ,", ",").replace(" 's", "'s")

    def batch_decode(self, batch):
        return [self.decode(ids) for ids in batch]


def test_truncation_follows_a_tokenizer_whose_decode_changes_text(tokenizer):
    tokenizer = _CleaningTokenizer(tokenizer)
    expected = [_reference(t, tokenizer) for t in TEXTS]
    assert expected[4] != TEXTS[4]  # " ," and " 's" were cleaned up
    assert truncate_texts(TEXTS, 20, tokenizer=tokenizer) == expected


def test_references_keep_their_spaces_when_asked(tmp_path, tokenizer):
    sentences = ["it 's clean , really .", "the room is n't big !", "rock ' n roll", "plain text"]
    reviews = [_review(n, template=("room", "clean", sentences[n % 4], 1)) for n in range(8)]
    source = _nete_dir(tmp_path / "TripAdvisor", reviews)
    kept = prepare_nete(
        "tripadvisor", source, tmp_path / "kept", truncation=Truncation(tokenizer, clean_up_spaces=False)
    )
    cleaned = prepare_nete("tripadvisor", source, tmp_path / "cleaned", truncation=Truncation(tokenizer))
    assert kept.manifest["clean_up_spaces"] is False and cleaned.manifest["clean_up_spaces"] is True
    assert [r.text for r in load_prepared(tmp_path / "kept").records][:4] == sentences
    assert [r.text for r in load_prepared(tmp_path / "cleaned").records][:4] == [
        "it's clean, really.", "the room isn't big!", "rock'n roll", "plain text"
    ]  # fmt: skip


def test_nete_export_round_trip(nete_dir, tmp_path, tokenizer):
    from pepler_cli.data.nete import export_nete
    from pepler_cli.data.safe_pickle import load_plain_pickle

    first = tmp_path / "first"
    prepare_nete("tripadvisor", nete_dir, first, truncation=Truncation(tokenizer))
    exported = export_nete(first, tmp_path / "exported")
    with open(exported / "reviews.pickle", "rb") as handle:
        reviews = load_plain_pickle(exported / "reviews.pickle", handle)  # plain data only
    assert set(reviews[0]) == {"user", "item", "rating", "template"} and len(reviews[0]["template"]) == 4
    again = tmp_path / "again"
    prepare_nete("tripadvisor", exported, again, truncation=Truncation(tokenizer))
    before, after = load_prepared(first), load_prepared(again)
    assert (
        after.records == before.records
        and after.splits == before.splits
        and after.features == before.features
    )


def test_nete_export_needs_opinions(tmp_path):
    from pepler_cli.data.nete import export_nete
    from pepler_cli.data.prepared.records import Record
    from pepler_cli.data.prepared.writing import write_prepared

    records = [Record(f"u{n}", f"i{n}", 4.0, "the sound is great", "sound") for n in range(4)]
    data = tmp_path / "data"
    write_prepared(data, records, {1: ([0, 1], [2], [3])}, name="x", source={}, splits_info={"count": 1})
    with pytest.raises(PeplerError, match="record 0: NETE needs an opinion"):
        export_nete(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()
