"""The plugin registry: entry-point discovery, run-time registration of fakes, unknown names."""

from __future__ import annotations

import pytest

from pepler_cli.errors import PeplerError
from pepler_cli.plugins import Backbone, RatingHead, get_backbone, get_rating_head, registry


class FakeHead:
    name = "fake-head"
    description = "a rating head that always says 3"

    def build(self, width: int):
        import torch

        class Three(torch.nn.Module):
            def forward(self, user, item):
                return torch.full((user.shape[0],), 3.0)

        return Three()


@pytest.fixture
def fake_head():
    head = FakeHead()
    registry.register("rating_head", head, package="tests", version="0.0")
    yield head
    registry.unregister("rating_head", head.name)


def test_builtin_plugins_are_discovered_through_entry_points():
    assert {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt2-tiny"} <= set(registry.names("backbone"))
    assert {"mf", "mlp"} <= set(registry.names("rating_head"))
    rows = {(r.name, r.kind): r for r in registry.info()}
    assert rows[("gpt2-tiny", "backbone")].package == "pepler-gpt2"
    assert rows[("mlp", "rating_head")].package == "pepler-rating-heads"
    assert rows[("gpt2", "backbone")].version


def test_plugins_satisfy_their_protocols():
    assert isinstance(get_backbone("gpt2"), Backbone)
    assert isinstance(get_rating_head("mf"), RatingHead)


def test_fake_plugin_is_registered_and_removed(fake_head):
    assert get_rating_head("fake-head") is fake_head
    assert ("fake-head", "tests", "0.0") in {(r.name, r.package, r.version) for r in registry.info()}
    registry.unregister("rating_head", "fake-head")
    assert "fake-head" not in registry.names("rating_head")


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(PeplerError) as caught:
        get_backbone("gpt5")
    assert "unknown backbone 'gpt5'" in caught.value.message
    assert "gpt2-tiny" in caught.value.message
    assert caught.value.exit_code == 2
    with pytest.raises(PeplerError, match="available: .*mf.*mlp"):
        get_rating_head("svd")


def test_a_plugin_that_fails_to_import_is_a_clear_error():
    from importlib.metadata import EntryPoint

    from pepler_cli.plugins import _Entry

    point = EntryPoint(name="exploding", value="no_such_module_for_pepler:thing", group="pepler.backbones")
    registry._registered["backbone"]["exploding"] = _Entry("exploding", "backbone", "pkg", "1", point)
    try:
        with pytest.raises(PeplerError, match="plugin 'exploding' from package pkg failed to load"):
            get_backbone("exploding")
    finally:
        registry.unregister("backbone", "exploding")
