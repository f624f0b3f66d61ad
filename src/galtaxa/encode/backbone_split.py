"""Cut a timm backbone into a frozen prefix and a trainable suffix, for partial fine-tuning on cached activations.

A CNN backbone is a stem, a sequence of stages and a tail before the pooled head::

    features(x) = head(tail(stage_S( ... stage_1(stem(x)))))

:func:`backbone_parts` finds these parts for the timm families galtaxa uses (EfficientNet / MobileNet: ``conv_stem``,
``bn1``, ``blocks``, ``conv_head``, ``bn2``; ResNet: ``conv1`` ... ``layer4``; ConvNeXt and other ``stem`` +
``stages`` models).  With the last ``n`` stages trainable, :func:`prefix_forward` runs the frozen part once
per image (the activations can be cached, the expensive high-resolution layers then cost nothing per epoch) and
:func:`suffix_forward` runs the trainable part; ``suffix_forward(m, prefix_forward(m, x, n), n)`` equals the
backbone's own ``m(x)``.  ``n = 0`` caches the pooled features themselves (a linear probe or an MLP head).
"""

from __future__ import annotations

from torch import nn

__all__ = ["backbone_parts", "n_stages", "prefix_forward", "suffix_forward", "frozen_modules"]


def backbone_parts(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module]]:
    """``(stem, stages, tail)`` module lists of a timm backbone (see the module docstring).

    Raises
    ------
    ValueError
        For a model whose layout is not one of the known families (use ``mode="finetune"`` for it).
    """
    if callable(getattr(model, "backbone_parts", None)):  # a network that wraps a backbone says where its parts are
        return model.backbone_parts()
    children = dict(model.named_children())
    if "conv_stem" in children and "blocks" in children:  # EfficientNet, MobileNetV2/V3, Lite0
        stem = [children["conv_stem"], children["bn1"]]
        tail = [children[k] for k in ("conv_head", "bn2", "norm_head") if k in children]
        return stem, list(children["blocks"]), tail
    if all(f"layer{i}" in children for i in (1, 2, 3, 4)):  # ResNet family
        stem = [children[k] for k in ("conv1", "bn1", "act1", "maxpool") if k in children]
        return stem, [children[f"layer{i}"] for i in (1, 2, 3, 4)], []
    if "stem" in children and "stages" in children:  # ConvNeXt, RegNet, ...
        tail = [children[k] for k in ("norm_pre", "final_conv") if k in children]
        return [children["stem"]], list(children["stages"]), tail
    raise ValueError(f"cannot split a {type(model).__name__} backbone into stages (known: EfficientNet/MobileNet, "
                     "ResNet, ConvNeXt-like stem + stages); train it with mode='finetune'")


def n_stages(model: nn.Module) -> int:
    """Number of stages of the backbone."""
    return len(backbone_parts(model)[1])


def _check(model, n_trainable: int) -> tuple[list, list, list, int]:
    stem, stages, tail = backbone_parts(model)
    if not 0 <= int(n_trainable) <= len(stages):
        raise ValueError(f"trainable stages must be in [0, {len(stages)}] for this backbone; got {n_trainable}")
    return stem, stages, tail, len(stages) - int(n_trainable)


def frozen_modules(model: nn.Module, n_trainable: int) -> list[nn.Module]:
    """The modules of the frozen prefix (everything when ``n_trainable == 0``)."""
    stem, stages, tail, k = _check(model, n_trainable)
    if n_trainable == 0:
        return [model]
    return stem + stages[:k]


def prefix_forward(model: nn.Module, x, n_trainable: int):
    """Output of the frozen prefix: the activations entering the last ``n_trainable`` stages (the pooled features
    of the whole backbone when ``n_trainable == 0``)."""
    stem, stages, tail, k = _check(model, n_trainable)
    if n_trainable == 0:
        return model(x)
    for m in stem + stages[:k]:
        x = m(x)
    return x


def suffix_forward(model: nn.Module, h, n_trainable: int):
    """Pooled features from the prefix activations ``h`` (identity when ``n_trainable == 0``)."""
    stem, stages, tail, k = _check(model, n_trainable)
    if n_trainable == 0:
        return h
    for m in stages[k:] + tail:
        h = m(h)
    return model.forward_head(h)
