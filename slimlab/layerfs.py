"""Layer efficiency and wasted bytes of a saved image, by dive's own definitions.

dive (github.com/wagoodman/dive, ``dive IMAGE --ci --json``) reads each layer tar of
``docker save`` into a tree and walks every layer's *leaves* (files, symlinks, empty
directories: nodes with no child in that layer), in name order, child first. Per path
(``/a/b``, a whiteout ``.wh.b`` counting as ``/a/b``) it keeps the sum of the sizes seen
and the smallest size seen. A whiteout's size is, when the path was a directory in the
layers below, the bytes of that directory's whole tree there; when it was a file, 0 --
so a deleted file costs its whole size, but a deleted directory is no waste (its files
are leaves of the layer that added them, the directory a leaf only of the one removing it).
Opaque markers (``.wh..wh..opq``) are not read at all. Then:

* efficiency = sum over paths of the smallest size / sum over paths of all sizes (1 when
  there are no bytes);
* wasted bytes = sum of all sizes of the paths seen in two layers or more, every copy
  counted, the one the image keeps included (a file written twice wastes both copies);
* user wasted = wasted bytes / bytes of every layer but the first (the base's), a ratio
  (dive calls it ``userWastedPercent`` and prints it times 100; NaN for one layer: None here).

A layer's bytes are the sum of its tar entries' sizes. This module follows dive 0.13's
``filetree.Efficiency`` line by line, quirks included, so the figures are equal, not close.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from dataclasses import dataclass

WHITEOUT = ".wh."
OPAQUE = ".wh..wh.."


@dataclass(frozen=True)
class WastedPath:
    path: str  # "/etc/app.conf"
    copies: int  # layers the path is in (dive's "count")
    bytes: int  # its sizes summed over those layers (dive's "sizeBytes", "Wasted Space")


@dataclass(frozen=True)
class LayerEfficiency:
    efficiency: float  # dive's efficiencyScore, 0..1
    wasted_bytes: int  # dive's inefficientBytes
    user_wasted_percent: float | None  # wasted / bytes above the first layer, a ratio; None with one layer
    layer_bytes: tuple[int, ...]  # each layer's bytes as dive counts them, first layer first
    wasted: tuple[WastedPath, ...]  # the biggest wasted paths, biggest first (ties by path)


class _Node:
    __slots__ = ("size", "is_dir", "children")

    def __init__(self, size: int = 0, is_dir: bool = False):
        self.size, self.is_dir, self.children = size, is_dir, {}

    def copy(self) -> _Node:
        twin = _Node(self.size, self.is_dir)
        twin.children = {name: child.copy() for name, child in self.children.items()}
        return twin

    def walk(self, path: tuple[str, ...] = ()):
        """(path, node) of every node below this one, children before their parent, names sorted
        (dive's VisitDepthChildFirst; Go sorts strings bytewise, as Python does code points)."""
        for name in sorted(self.children):
            yield from self.children[name].walk((*path, name))
        if path:
            yield path, self

    def tree_bytes(self) -> int:
        return self.size + sum(child.tree_bytes() for child in self.children.values())

    def get(self, parts: tuple[str, ...]) -> _Node | None:
        node = self
        for name in parts:
            node = node.children.get(name)
            if node is None:
                return None
        return node

    def add(self, parts: tuple[str, ...], size: int, is_dir: bool) -> None:
        """dive's AddPath: missing parents are made with no size and not as directories."""
        node = self
        for name in parts:
            if name not in node.children:
                if name.startswith(OPAQUE):
                    return
                node.children[name] = _Node()
            node = node.children[name]
        node.size, node.is_dir = size, is_dir

    def stack(self, upper: _Node) -> None:
        """dive's Stack: ``upper``'s nodes added over this tree, its whiteouts removing paths."""
        for path, node in upper.walk():
            parts = _real(path)
            if path[-1].startswith(WHITEOUT):
                parent = self.get(parts[:-1])
                if parent is not None:
                    parent.children.pop(parts[-1], None)
            else:
                self.add(parts, node.size, node.is_dir)


def _real(path: tuple[str, ...]) -> tuple[str, ...]:
    """A whiteout's path is the path it deletes ("white out prefixes are fictitious on leaf nodes")."""
    return (*path[:-1], path[-1].removeprefix(WHITEOUT))


def layer_paths(saved: tarfile.TarFile) -> list[str]:
    """The layer tars of a ``docker save`` archive, base first, as its manifest.json lists them
    (a layer listed twice is listed twice: dive reads it twice)."""
    manifest = json.load(saved.extractfile("manifest.json"))
    return list(manifest[0]["Layers"])


def _layer_tree(saved: tarfile.TarFile, path: str) -> tuple[_Node, int]:
    root, total = _Node(), 0
    with tarfile.open(fileobj=saved.extractfile(path), mode="r|") as layer:
        for member in layer:
            name = posixpath.normpath(member.name)  # Go's path.Clean
            if name == ".":
                continue
            total += member.size
            # a directory by its type or its mode's type bits, as Go's FileInfo().IsDir()
            is_dir = member.isdir() or member.mode & 0o170000 == 0o040000
            root.add(tuple(p for p in name.strip("/").split("/") if p), member.size, is_dir)
    return root, total


def analyze(saved: tarfile.TarFile, top: int = 20) -> LayerEfficiency:
    """dive's figures for the image saved in ``saved`` (an opened ``docker save`` tar)."""
    trees, layer_bytes = [], []
    for path in layer_paths(saved):
        tree, size = _layer_tree(saved, path)
        trees.append(tree)
        layer_bytes.append(size)
    # path -> [sum of sizes, smallest size (-1: none yet), layers seen in]
    seen: dict[str, list[int]] = {}
    twice: list[str] = []  # paths in the order they reached a second layer
    below = trees[0].copy() if trees else _Node()  # dive stacks layers 0..i-1 onto a copy of layer 0
    for tree in trees:
        for path, node in tree.walk():
            if node.children:
                continue  # dive visits leaves only
            key = "/" + "/".join(_real(path))
            entry = seen.setdefault(key, [0, -1, 0])
            if path[-1].startswith(WHITEOUT):
                was = below.get(_real(path))
                if was is None:
                    break  # dive: "path does not exist": the rest of this layer is not walked
                size = was.tree_bytes() if was.is_dir else 0
            else:
                size = node.size
            entry[0] += size
            if entry[1] < 0 or size < entry[1]:
                entry[1] = size
            entry[2] += 1
            if entry[2] == 2:
                twice.append(key)
        below.stack(tree)
    smallest = sum(e[1] for e in seen.values())
    everything = sum(e[0] for e in seen.values())
    wasted = sum(seen[p][0] for p in twice)
    user = sum(layer_bytes[1:])
    listed = sorted((WastedPath(p, seen[p][2], seen[p][0]) for p in twice), key=lambda w: (-w.bytes, w.path))
    return LayerEfficiency(
        efficiency=1.0 if everything == 0 else float(smallest) / float(everything),
        wasted_bytes=wasted,
        user_wasted_percent=wasted / user if user else None,
        layer_bytes=tuple(layer_bytes),
        wasted=tuple(listed[:top]),
    )
