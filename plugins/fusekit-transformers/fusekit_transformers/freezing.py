"""Which weights of a pretrained encoder train: all, none, or only its last ``k`` layers.

``freeze=True`` freezes everything (the backbone declares itself frozen, so fusekit encodes each
training row once per fit), ``False`` fine-tunes everything, and an int ``k`` freezes all but the
last ``k`` blocks of the encoder's layer stack (and what follows them: a final norm, a pooler).
The layer stack is the longest ``nn.ModuleList`` of the model (BERT's ``encoder.layer``, ViT's
``encoder.layer``, CLIP's ``encoder.layers``, ResNet's and ConvNeXt's ``encoder.stages``).
"""

from __future__ import annotations

from numbers import Integral

from torch import nn

from fusekit.plugin import Interval

#: Learning rate for fine-tuning a pretrained transformer encoder: 2e-5, inside the 2e-5..5e-5
#: range Devlin et al. (2019, BERT, appendix A.3) found best for fine-tuning; heads trained from
#: scratch want fusekit's default (1e-3). Give it to the encoder with :func:`param_groups`.
RECOMMENDED_LR = 2e-5


#: The declared constraint of a backbone's ``freeze``: True (all weights fixed), False (all
#: trained) or an int k >= 0 (all but the last k layers fixed; at most the encoder's layer count,
#: which :func:`apply_freeze` checks). ``bool`` itself, not ``"boolean"``: :func:`apply_freeze`
#: tells True and False from the ints 1 and 0 by identity.
FREEZE_CONSTRAINT = [bool, Interval(Integral, 0, None, closed="left")]


def layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The model's longest ``nn.ModuleList`` (its blocks) with its name, or ``None``."""
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    return max(lists, key=lambda item: len(item[1]), default=None)


def apply_freeze(owner: str, model: nn.Module, freeze: bool | int) -> bool:
    """Set ``requires_grad`` as ``freeze`` says; return True when nothing of ``model`` trains."""
    if freeze is False:
        return False
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if freeze is True or freeze == 0:
        return True
    stack = layer_stack(model)
    if stack is None or freeze > len(stack[1]):
        found = 0 if stack is None else len(stack[1])
        raise ValueError(
            f"{owner}: freeze={freeze} asks to train the last {freeze} layers, but the encoder has "
            f"{found}"
        )
    name, blocks = stack
    first_trained = len(blocks) - freeze
    trained = {f"{name}.{i}." for i in range(first_trained, len(blocks))}
    after_stack = False
    for parameter_name, parameter in model.named_parameters():
        in_stack = parameter_name.startswith(f"{name}.")
        if in_stack:
            after_stack = True
        if any(parameter_name.startswith(prefix) for prefix in trained) or (
            after_stack and not in_stack
        ):
            parameter.requires_grad_(True)
    return False


def param_groups(*modalities: str, lr: float = RECOMMENDED_LR) -> list[tuple[str, dict]]:
    """skorch ``optimizer__param_groups`` giving these modalities' pretrained encoders ``lr``.

    ``FusionClassifier(..., optimizer__param_groups=param_groups("text"))``: the encoder of
    modality ``text`` trains at 2e-5, the rest of the network at the estimator's ``lr``.
    """
    return [(f"backbones.{modality}.model.*", {"lr": lr}) for modality in modalities]
