"""Multi-arch images: one image per platform and an OCI image index over them, reproducibly.

An image of a sweep with several targets is not built by the engine but written here, as
an OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/sha256/...``: the
form registries and ``skopeo`` read), then loaded into the engine from the same bytes:

- its layers are the base's tar (slimlab.bases, already reproducible), a layer of the
  binary's own libraries and files when it has any, and the binary's layer
  (``/app/<name>``), each a tar with sorted entries, mtime 0 and root owners, stored
  gzip-compressed (level 6, no name or time in the header) as a registry holds it;
- its config names the platform (``architecture``, ``variant`` for arm/v7, ``os``) and
  runs the binary as ``nonroot`` (65532), as an engine-built image does; every time in it
  is the epoch;
- each platform's manifest is tagged ``<ref>.<os>-<arch>[-<variant>]`` in the layout's
  ``index.json``, and ``<ref>`` names an image index over every platform the layout holds
  for it, in TARGETS' order. The index is rewritten as each platform is added (the same set
  gives the same bytes whatever the order), so a resumed sweep ends with a complete index.

So the same binary and base give the same manifest and index digests on every build.
One layout per run holds every variant's images, so a base's layer is stored once.

Docker 20.10 cannot load an OCI archive: each platform's image goes into the engine as a
``docker save`` archive made of the very same config and layer tars (``docker load``), so
the engine's image id is the OCI config's digest, and the image whose size the row reports
and whose containers run is the one in the index.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .image import NONROOT, ImageOutcome, inputs, measured
from .model.target import TARGETS, Target
from .proc import tail

EPOCH = "1970-01-01T00:00:00Z"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
# What the engine puts in an image built FROM scratch, so both kinds of image run alike.
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
LAYOUT_DIR = "oci"  # in the run directory


def _json(value) -> bytes:
    """Canonical JSON: sorted keys, no spaces, so the same content is the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def platform(target: Target) -> dict[str, str]:
    """The OCI platform of ``target``: {"architecture": "arm", "os": "linux", "variant": "v7"}."""
    found = {"architecture": target.goarch, "os": target.goos}
    if target.goarm:
        found["variant"] = f"v{target.goarm}"
    return found


def platform_slug(target: Target) -> str:
    return target.name.replace("/", "-")  # linux-arm-v7: a ref name has no '/'


def ref_name(axes: dict[str, str]) -> str:
    """The index's tag for a variant's axes but its target: what OCI allows in a ref name
    (letters and digits, ``.`` and ``-`` between them), e.g. ``hello.go.static.none.scratch``."""
    parts = [v for k, v in axes.items() if k != "target"]
    return ".".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-") or "x" for p in parts)


class Layout:
    """An OCI image layout directory; blobs are written once (by digest), index.json atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (self.path / "oci-layout").exists():
            self._write(self.path / "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        if not (self.path / "index.json").exists():
            self._write(self.path / "index.json", _json({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}))

    # The sweep builds images in threads: index.json is read, changed and written by one at a
    # time (a platform's tag and its index's update together: tagging()).
    tagging = threading.RLock()

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        tmp.write_bytes(data)
        tmp.replace(path)

    def blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def put(self, data: bytes, media_type: str, **extra) -> dict:
        """Store ``data`` as a blob; its descriptor."""
        digest = _sha256(data)
        path = self.blob_path(digest)
        if not path.exists():
            self._write(path, data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def refs(self) -> dict[str, dict]:
        """ref name -> descriptor, from index.json."""
        index = json.loads((self.path / "index.json").read_text())
        return {d.get("annotations", {}).get(REF_NAME, ""): d for d in index["manifests"]}

    def tag(self, ref: str, descriptor: dict) -> None:
        with self.tagging:
            refs = self.refs()
            refs[ref] = {**descriptor, "annotations": {REF_NAME: ref}}
            manifests = [refs[r] for r in sorted(refs)]
            self._write(self.path / "index.json",
                        _json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}))


def _tar(entries: list[tuple[str, Path | None, int]]) -> bytes:
    """A layer tar of ``entries`` (path in the image, file here or None for a directory, mode):
    their parent directories added, sorted by path, mtime 0, owned by root."""
    members: dict[str, tuple[Path | None, int]] = {}
    for path, source, mode in entries:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            members.setdefault("/".join(parts[:depth]), (None, 0o755))
        members["/".join(parts)] = (source, mode)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(members):
            source, mode = members[name]
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, mode, 0, 0, "", ""
            if source is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = source.stat().st_size
                with open(source, "rb") as fh:
                    tar.addfile(info, fh)
    return buffer.getvalue()


# diff id -> its compressed blob's descriptor: a base's tar is compressed once per process.
_COMPRESSED: dict[str, dict] = {}


def _gzip(data: bytes) -> bytes:
    # mtime 0 and no file name in the header: the same tar gives the same blob (same zlib).
    return gzip.compress(data, compresslevel=6, mtime=0)


@dataclass(frozen=True)
class PlatformImage:
    ref: str  # the index's ref in the layout
    platform: str  # "linux/arm/v7"
    manifest: dict  # its descriptor in the index (digest, size, platform)
    config_digest: str  # the engine's image id, once loaded
    bytes: int  # config and compressed layers: what a registry stores for this platform
    layers: tuple[tuple[str, bytes], ...]  # (diff id, uncompressed tar), base first
    seconds: float  # writing it: the tars, their compression, the blobs and the index


def write_platform(layout: Layout, ref: str, base, binary: Path, name: str, target: Target,
                   extra: dict[str, Path] | None = None) -> PlatformImage:
    """``binary`` as ``/app/<name>`` on ``base`` (a bases.BaseLayer) for ``target``, written into
    ``layout`` and tagged ``<ref>.<platform>``; the index ``ref`` is brought up to date."""
    started = time.perf_counter()
    tars = []
    if base.tar is not None:
        tars.append((Path(base.tar).read_bytes(), f"base {base.name} ({base.digest})"))
    if extra:
        tars.append((_tar([(p, f, 0o644) for p, f in sorted(extra.items())]), "COPY files/ /"))
    tars.append((_tar([(f"app/{name}", binary, 0o755)]), f"COPY {name} /app/{name}"))
    layers, descriptors, history = [], [], []
    for data, created_by in tars:
        diff_id = _sha256(data)
        layers.append((diff_id, data))
        known = _COMPRESSED.get(diff_id)  # a base's layer, compressed for an earlier variant
        if known is None or not layout.blob_path(known["digest"]).exists():
            known = _COMPRESSED[diff_id] = layout.put(_gzip(data), LAYER)
        descriptors.append(known)
        history.append({"created": EPOCH, "created_by": created_by})
    history += [{"created": EPOCH, "created_by": f"USER {NONROOT}", "empty_layer": True},
                {"created": EPOCH, "created_by": f'ENTRYPOINT ["/app/{name}"]', "empty_layer": True}]
    config = {**platform(target), "created": EPOCH,
              "config": {"User": NONROOT, "Env": ENV, "Entrypoint": [f"/app/{name}"]},
              "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]}, "history": history}
    config_desc = layout.put(_json(config), CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": descriptors}
    descriptor = layout.put(_json(manifest), MANIFEST, platform=platform(target))
    with layout.tagging:  # another thread's platform of the same index waits, or it could be left out
        layout.tag(f"{ref}.{platform_slug(target)}", descriptor)
        update_index(layout, ref)
    return PlatformImage(ref, target.name, descriptor, config_desc["digest"],
                         config_desc["size"] + sum(d["size"] for d in descriptors), tuple(layers),
                         time.perf_counter() - started)


def update_index(layout: Layout, ref: str) -> dict:
    """The index ``ref`` over every platform image ``<ref>.<platform>`` the layout holds, in
    TARGETS' order, (re)written and tagged; its descriptor."""
    refs = layout.refs()
    manifests = [refs[f"{ref}.{platform_slug(t)}"] for t in TARGETS.values() if f"{ref}.{platform_slug(t)}" in refs]
    manifests = [{k: v for k, v in m.items() if k != "annotations"} for m in manifests]
    descriptor = layout.put(_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}), INDEX)
    layout.tag(ref, descriptor)
    # The index it replaces (fewer platforms) goes, unless another ref names the same bytes: the
    # layout holds no blob that nothing reaches, so the same images give the same directory.
    replaced = refs.get(ref, {}).get("digest")
    if replaced and replaced != descriptor["digest"] and all(d["digest"] != replaced for d in layout.refs().values()):
        layout.blob_path(replaced).unlink(missing_ok=True)
    return descriptor


def index_of(layout: Layout, ref: str) -> tuple[str, list[str]] | None:
    """The index ``ref``'s digest and its platforms ("linux/arm64"), or None when there is none."""
    descriptor = layout.refs().get(ref)
    if descriptor is None:
        return None
    index = json.loads(layout.blob(descriptor["digest"]))
    return descriptor["digest"], ["/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                                         m["platform"].get("variant"))))
                                  for m in index["manifests"]]


def docker_archive(image: PlatformImage, layout: Layout, tag: str) -> bytes:
    """What ``docker save`` writes for the image (manifest.json, the config, each layer's tar),
    from the layout's own bytes: ``docker load`` of it gives an image whose id is the config's digest."""
    buffer = io.BytesIO()
    config = layout.blob(image.config_digest)
    files = [("manifest.json", _json([{"Config": f"{image.config_digest.split(':')[1]}.json", "RepoTags": [tag],
                                       "Layers": [f"{d.split(':')[1]}/layer.tar" for d, _ in image.layers]}])),
             (f"{image.config_digest.split(':')[1]}.json", config),
             *((f"{d.split(':')[1]}/layer.tar", data) for d, data in image.layers)]
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in dict(files).items():  # a layer twice in one image is one file
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass(frozen=True)
class OciOutcome:
    image: ImageOutcome  # the engine's figures of the loaded image, as for an engine-built one
    platform: PlatformImage | None = None
    layout: str | None = None  # "PATH:REF", PATH relative to the run directory


def build_platform_image(api, run_dir: Path, ref: str, base, binary: Path, name: str, target: Target,
                         closure=None, files: dict[str, Path] | None = None) -> OciOutcome:
    """The platform image of ``binary`` on ``base``, written into the run's layout and loaded
    into the engine (tagged by its manifest's digest); its figures as image.build_image gives them."""
    extra, packages, by_kind = inputs(base, closure, files)
    started = time.perf_counter()
    try:
        layout = Layout(run_dir / LAYOUT_DIR)
        made = write_platform(layout, ref, base, binary, name, target, extra)
        tag = f"slimlab/image:oci-{made.manifest['digest'].split(':')[1][:32]}"
        try:
            image, cached = api.images.get(tag), True
            cached = image.id == made.config_digest
        except Exception:  # noqa: BLE001 - not loaded yet (docker.errors.ImageNotFound)
            cached = False
        if not cached:
            api.images.load(docker_archive(made, layout, tag))
            image = api.images.get(tag)
        if image.id != made.config_digest:
            raise RuntimeError(f"the engine loaded {tag} as {image.id}, not as the config {made.config_digest}")
        seconds = 0.0 if cached else time.perf_counter() - started
        return OciOutcome(measured(api, image, tag, base, binary, seconds, cached, packages, by_kind), made,
                          f"{LAYOUT_DIR}:{ref}")
    except Exception as exc:  # noqa: BLE001 - the engine's own message (or an OSError) is the row's reason
        return OciOutcome(ImageOutcome(False, base.name, reason=f"image build: {type(exc).__name__}: "
                                                                 f"{tail(str(exc), 600)}",
                                       base_packages=packages, seconds=time.perf_counter() - started))
