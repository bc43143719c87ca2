"""Recognise a DeepLab in a layer dataflow (``tflite_units``): architecture and conv roles.

Read from the output back to the input, the way the network is composed:
- output: [ARG_MAX | SOFTMAX] <- final resize(s) <- 1x1 logits conv (classes);
- optional v3+ decoder: convs (two 3x3, or two depthwise + pointwise pairs) <- concat of
  [resize(ASPP output), 1x1 projection of a backbone feature];
- ASPP: 1x1 projection <- concat of branches reading one backbone feature F: image
  pooling (global average -> 1x1 -> broadcast), 1x1, 3x3 atrous, or depthwise atrous +
  pointwise;
- backbone: the chain from the input to F, cut into blocks at each linear (no
  activation) conv, with a residual ADD when the block's input is added back.
  Depthwise in every block: MobileNetV2. Fused blocks (a full k x k expansion, or a lone
  projection) and a final 1x1 conv: MobileNet-EdgeTPU. The depth multiplier is the one
  whose channel plan gives the graph's widths; the output stride is the product of
  the convs' strides.

Nothing is taken from tensor names; where a name carries a TF scope it is checked
against the role found here (``scope_path``), so names can only make the import stricter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError
from ..labels import default_label_set
from .backbones.mobilenet_edgetpu import LOW_LEVEL_BLOCK as EDGETPU_LOW
from .backbones.mobilenet_edgetpu import edgetpu_widths
from .backbones.mobilenetv2 import LOW_LEVEL_BLOCK as MNV2_LOW
from .backbones.mobilenetv2 import mobilenet_widths
from .tflite_units import Node, Units

_MULTIPLIERS = (1.0, 0.75, 0.5, 0.35, 1.3, 1.4, 0.25)


@dataclass
class Structure:
    """What the graph is: ``config`` for ``deeplab()``, the conv node of each module path,
    and the graph's channel order of the ASPP concatenation (keys "pool", "b0", "b1"...)."""

    config: dict[str, Any]
    assign: dict[str, Node]
    concat_order: list[str]
    residual: list[bool] = field(default_factory=list)  # per backbone block


def _fail(msg: str) -> ModelError:
    return ModelError(f"not a DeepLab graph the importer recognises: {msg}")


def recognise(units: Units) -> Structure:
    nodes = units.nodes
    end = nodes[units.output]
    while end.kind in ("argmax", "softmax", "logistic"):
        end = nodes[end.inputs[0]]
    modes = []
    while end.kind == "resize":
        modes.append(end.mode)
        end = nodes[end.inputs[0]]
    logits = end
    if logits.kind != "conv" or logits.kernel != 1 or logits.groups != 1 or logits.act != "none":
        raise _fail("the output is not a 1x1 logits convolution (and a resize)")
    assign: dict[str, Node] = {"classifier": logits}
    config: dict[str, Any] = {"num_classes": logits.out_channels}

    chain, stop = _back_chain(nodes, nodes[logits.inputs[0]])
    decoder = stop.kind == "concat" and any(nodes[i].kind == "resize" for i in stop.inputs)
    if decoder:
        proj, low_node = _decoder(nodes, chain, stop, assign, config, modes)
    else:
        if not chain:
            raise _fail("no ASPP projection before the logits")
        proj = chain[-1]
        if len(chain) != 1:
            raise _fail("convolutions between the ASPP projection and the logits")
        low_node = None
    feature, order = _aspp(nodes, proj, assign, config)
    backbone = _backbone(nodes, feature, assign, config)
    if low_node is not None and low_node is not backbone["low_level"]:
        raise _fail("the decoder reads a backbone feature other than the stride-4 one")
    if len(set(modes)) > 1 or not modes:
        raise _fail("the final upsampling is missing or mixes bilinear conventions")
    config["upsampling"] = modes[0]
    strided_even = any(
        n.kind == "conv" and n.stride > 1 and any(s % 2 == 0 for s in nodes[n.inputs[0]].shape[1:3])
        for n in nodes
    )
    if strided_even:
        config["padding"] = "tf_same"
    labels = default_label_set(config["num_classes"]).key
    config["labels"] = None if labels.startswith("generic") else labels
    return Structure(config, assign, order, backbone["residual"])


def _back_chain(nodes: list[Node], n: Node) -> tuple[list[Node], Node]:
    """The convs leading to ``n`` (in forward order) and the node before them."""
    chain = []
    while n.kind == "conv":
        chain.append(n)
        n = nodes[n.inputs[0]]
    return chain[::-1], n


def _decoder(nodes, chain, concat, assign, config, modes) -> tuple[Node, Node]:
    ups = [nodes[i] for i in concat.inputs]
    if len(ups) != 2 or ups[0].kind != "resize" or ups[1].kind != "conv":
        raise _fail("the decoder concatenates something other than [upsampled ASPP, low-level]")
    up, low = ups
    modes.append(up.mode)
    if low.kernel != 1 or low.act == "none":
        raise _fail("the decoder's low-level projection is not a 1x1 conv with activation")
    assign["decoder.low_level"] = low
    if len(chain) == 4 and chain[0].depthwise and chain[2].depthwise:
        separable = True
        for name, node in zip(("conv1.depthwise", "conv1.pointwise", "conv2.depthwise",
                               "conv2.pointwise"), chain):  # fmt: skip
            assign[f"decoder.fuse.{name}"] = node
    elif len(chain) == 2 and not any(c.depthwise for c in chain):
        separable = False
        assign["decoder.fuse.conv1"], assign["decoder.fuse.conv2"] = chain
    else:
        raise _fail(f"a decoder of {len(chain)} convolutions")
    config.update(
        version="v3+",
        decoder_channels=chain[-1].out_channels,
        decoder_low_level_channels=low.out_channels,
        decoder_separable=separable,
    )
    proj_chain, stop = _back_chain(nodes, nodes[up.inputs[0]])
    if len(proj_chain) != 1 or stop.kind != "concat":
        raise _fail("the decoder does not upsample the ASPP projection")
    return proj_chain[0], nodes[low.inputs[0]]


def _aspp(nodes, proj, assign, config) -> tuple[Node, list[str]]:
    concat = nodes[proj.inputs[0]]
    if proj.kernel != 1 or concat.kind != "concat":
        raise _fail("the ASPP projection is not a 1x1 conv of concatenated branches")
    assign["head.project"] = proj
    feature, order, rates, separable = None, [], [], None
    pooling = False
    for i in concat.inputs:
        n = nodes[i]
        if n.kind == "broadcast":
            conv = nodes[n.inputs[0]]
            pool = nodes[conv.inputs[0]] if conv.kind == "conv" else None
            if pool is None or pool.kind != "pool" or conv.kernel != 1:
                raise _fail("an image-level branch that is not pool -> 1x1 conv -> broadcast")
            src, key, pooling = nodes[pool.inputs[0]], "pool", True
            assign["head.pooling.conv"] = conv
        elif n.kind == "conv" and n.kernel == 1 and nodes[n.inputs[0]].depthwise:
            dw = nodes[n.inputs[0]]
            src, key = nodes[dw.inputs[0]], f"b{len(rates) + 1}"
            rates.append(dw.dilation)
            separable = True if separable in (None, True) else _mixed()
            assign[f"head.branches.{len(rates)}.depthwise"] = dw
            assign[f"head.branches.{len(rates)}.pointwise"] = n
        elif n.kind == "conv" and n.kernel == 1:
            src, key = nodes[n.inputs[0]], "b0"
            if "head.branches.0" in assign:
                raise _fail("two 1x1 ASPP branches")
            assign["head.branches.0"] = n
        elif n.kind == "conv" and n.kernel == 3:
            src, key = nodes[n.inputs[0]], f"b{len(rates) + 1}"
            rates.append(n.dilation)
            separable = False if separable in (None, False) else _mixed()
            assign[f"head.branches.{len(rates)}"] = n
        else:
            raise _fail(f"an ASPP branch made of {n.kind}")
        if feature is not None and src is not feature:
            raise _fail("ASPP branches read different features")
        feature = src
        order.append(key)
    if "head.branches.0" not in assign:
        raise _fail("no 1x1 ASPP branch")
    config.update(
        version=config.get("version", "v3"),
        atrous_rates=rates,
        image_pooling=pooling,
        aspp_channels=proj.out_channels,
        aspp_separable=bool(separable),
    )
    return feature, order


def _mixed():
    raise _fail("ASPP branches mix separable and plain atrous convolutions")


def _ancestors(nodes, last: Node) -> list[Node]:
    seen, todo = set(), [last.id]
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(nodes[i].inputs)
    return [nodes[i] for i in sorted(seen)]


def classifier_backbone(units: Units) -> dict[str, Node]:
    """Backbone module path -> conv of an ImageNet MobileNetV2 classifier graph
    ([SOFTMAX] <- logits 1x1 <- global pool <- 1x1 to 1280 <- the blocks); the 1280 conv
    and the logits are not part of DeepLab's MobileNetV2 and are left out."""
    nodes = units.nodes
    end = nodes[units.output]
    while end.kind in ("softmax", "logistic"):
        end = nodes[end.inputs[0]]
    pool = nodes[end.inputs[0]] if end.kind == "conv" else None
    last = nodes[pool.inputs[0]] if pool is not None and pool.kind == "pool" else None
    if last is None or last.kind != "conv" or last.kernel != 1:
        raise _fail("not an ImageNet classifier (logits <- pool <- 1x1 conv)")
    assign: dict[str, Node] = {}
    _backbone(nodes, nodes[last.inputs[0]], assign, {})
    return {k.removeprefix("backbone."): v for k, v in assign.items()}


def _backbone(nodes, feature: Node, assign, config) -> dict[str, Any]:
    chain = [n for n in _ancestors(nodes, feature) if n.kind != "input"]
    if not chain or chain[0].kind != "conv" or chain[0].inputs != [0]:
        raise _fail("the backbone does not start with a convolution of the input")
    stem, blocks, cur, block_in = chain[0], [], [], chain[0]
    for n in chain[1:]:
        if n.kind == "conv":
            prev = cur[-1] if cur else block_in
            if n.inputs != [prev.id]:
                raise _fail(f"backbone layer at op {n.ops[0]} branches off the main path")
            cur.append(n)
            if n.act == "none":
                blocks.append({"convs": cur, "input": block_in, "output": n, "residual": False})
                cur, block_in = [], n
        elif n.kind == "add" and blocks and not cur:
            b = blocks[-1]
            if sorted(n.inputs) != sorted([b["output"].id, b["input"].id]) or n.act != "none":
                raise _fail(f"an ADD at op {n.ops[0]} that is not a residual connection")
            b["residual"], b["output"] = True, n
            block_in = n
        else:
            raise _fail(f"a {n.kind} inside the backbone (op {n.ops[0]})")
    tail = cur
    fused = any(len(b["convs"]) == 1 or not any(c.depthwise for c in b["convs"]) for b in blocks)
    if fused:
        name, widths_of, low_block = "mobilenet_edgetpu", edgetpu_widths, EDGETPU_LOW
        if len(tail) != 1 or tail[0].kernel != 1:
            raise _fail("a MobileNet-EdgeTPU without its final 1x1 convolution")
        assign["backbone.last"] = tail[0]
    else:
        name, widths_of, low_block = "mobilenet_v2", mobilenet_widths, MNV2_LOW
        if tail:
            raise _fail("convolutions after the last MobileNetV2 block")
    widths = [stem.out_channels] + [b["convs"][-1].out_channels for b in blocks]
    dm = next((m for m in _MULTIPLIERS if widths_of(m) == widths), None)
    if dm is None:
        raise _fail(f"{name} widths {widths} fit no depth multiplier")
    assign["backbone.stem"] = stem
    for i, b in enumerate(blocks):
        for c in b["convs"]:
            role = "project" if c is b["convs"][-1] else ("depthwise" if c.depthwise else "expand")
            assign[f"backbone.blocks.{i}.{role}"] = c
    stride = 1
    for n in chain:
        stride *= n.stride if n.kind == "conv" else 1
    if stride not in (8, 16, 32):
        raise _fail(f"backbone output stride {stride}")
    config.update(backbone=name, depth_multiplier=dm, output_stride=stride)
    low = blocks[low_block]["convs"][-2] if len(blocks) > low_block else None
    return {"low_level": low, "nodes": chain, "residual": [b["residual"] for b in blocks]}


# --------------------------------------------------------------------- name cross-check

_SCOPES = [
    (re.compile(r"Mobilenet(?:V2|EdgeTPU)/Conv_1(?:/|$)"), lambda m: "backbone.last"),
    (re.compile(r"Mobilenet(?:V2|EdgeTPU)/Conv(?:/|$)"), lambda m: "backbone.stem"),
    (
        re.compile(r"Mobilenet(?:V2|EdgeTPU)/expanded_conv(?:_(\d+))?/(expand|depthwise|project)"),
        lambda m: f"backbone.blocks.{int(m.group(1) or 0)}.{m.group(2)}",
    ),
    (re.compile(r"^aspp(\d+)_(depthwise|pointwise)"), lambda m: f"head.branches.{m[1]}.{m[2]}"),
    (re.compile(r"^aspp(\d+)(?:/|$)"), lambda m: f"head.branches.{m[1]}"),
    (re.compile(r"^image_pooling(?:/|$)"), lambda m: "head.pooling.conv"),
    (re.compile(r"^concat_projection(?:/|$)"), lambda m: "head.project"),
    (re.compile(r"^logits/semantic(?:/|$)"), lambda m: "classifier"),
    (re.compile(r"^decoder/feature_projection0"), lambda m: "decoder.low_level"),
    (
        re.compile(r"^decoder/decoder_conv(\d)_(depthwise|pointwise)"),
        lambda m: f"decoder.fuse.conv{int(m[1]) + 1}.{m[2]}",
    ),
]


def scope_path(name: str) -> str | None:
    """The module path a TF scope in a weight tensor's name points to, if it has one."""
    first = name.split(";")[0]
    for pattern, path in _SCOPES:
        m = pattern.search(first)
        if m:
            return path(m)
    return None
