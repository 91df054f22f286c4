"""``NetworkView``: the network's allowed members handed through, nothing else reachable, no
private state of torch read by the plugin layer."""

import ast
from pathlib import Path

import pytest
import torch

import fusekit.plugin.views as views
from fusekit.plugin import NetworkView
from fusekit.testing.fixtures import build_network, make_batch


@pytest.fixture
def network():
    return build_network()


def test_the_engines_network_implements_every_forwarded_member(network):
    missing = [name for name in views.FORWARDED if not hasattr(network, name)]
    assert not missing


def test_forwarded_members_are_the_networks_own(network):
    view = NetworkView(network)
    assert view.names == network.names and view.spec is network.spec
    assert view.fusion is network.fusion and view.criterion is network.criterion
    assert view.fuse == network.fuse  # the bound method itself, not a wrapper
    network.eval()
    assert view.training is False
    assert view.weightings == tuple(network.weightings)


@pytest.mark.parametrize("name", ["backbones", "origins", "_forward_pre_hooks", "state_dict"])
def test_a_member_outside_the_list_is_refused_naming_the_allowed_ones(network, name):
    with pytest.raises(AttributeError, match=rf"NetworkView has no '{name}'.*'decide'"):
        getattr(NetworkView(network), name)


def test_a_hook_registered_through_the_view_is_seen_until_removed(network):
    view, seen = NetworkView(network), []

    def hook(module, args):
        seen.append(len(args[0]))

    assert not view.has_forward_pre_hook(hook)
    handle = view.register_forward_pre_hook(hook)
    assert view.has_forward_pre_hook(hook)
    view(make_batch(dict(network.spec.input_shapes), n=5))
    assert seen == [5]
    handle.remove()
    assert not view.has_forward_pre_hook(hook)
    assert not view.copy().has_forward_pre_hook(hook)


def test_the_plugin_layer_reads_no_private_attribute_of_the_network():
    tree = ast.parse(Path(views.__file__).read_text(encoding="utf-8"))
    private = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and node.attr not in {"_network", "_loop"}  # the views' own slots
    }
    assert not private


def test_modes_and_copies_return_views(network):
    view = NetworkView(network)
    assert view.train() is view and view.eval() is view and view.requires_grad_(False) is view
    copied = view.copy(plain=True)
    assert isinstance(copied, NetworkView) and copied.weightings == ()
    assert all(not p.requires_grad for p in copied.parameters())
    first, original = next(copied.parameters()), next(network.parameters())
    assert torch.equal(first, original) and first is not original  # same weights, own tensors
