"""Model folders: ``config.json`` + ``manifest.json`` (sha256 of every file) + the model's data files.

Models are data, never code: nothing here unpickles or executes what it reads. Loading verifies every file
listed in the manifest and refuses a missing, truncated or altered file with a message naming it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

__all__ = ["MODELS_DIR", "find_model_dir", "read_config", "sha256_file", "verify_manifest", "write_manifest"]

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(model_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` listing sha256 and size of every other file in ``model_dir``."""
    d = Path(model_dir)
    files = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.name != "manifest.json" and not p.name.startswith("."):
            rel = p.relative_to(d).as_posix()
            if rel.lower().endswith(".md"):
                continue  # the model card may be edited without re-exporting
            files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    manifest = {
        "format": "qinglang-model/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "files": files,
    }
    if extra:
        manifest.update(extra)
    (d / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify_manifest(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Check every file in ``manifest.json`` exists with the recorded size and sha256; return the manifest."""
    d = Path(model_dir)
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise ModelLoadError(f"{d}: no manifest.json (not a qinglang model folder, or an incomplete copy)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{mpath}: unreadable manifest ({e})") from None
    for rel, meta in files.items():
        p = d / rel
        if not p.is_file():
            raise ModelLoadError(f"{d}: file {rel!r} listed in manifest.json is missing")
        size = p.stat().st_size
        if size != meta.get("bytes"):
            raise ModelLoadError(
                f"{p}: size {size} bytes, manifest says {meta.get('bytes')} (truncated or replaced file)")
        digest = sha256_file(p)
        if digest != meta.get("sha256"):
            raise ModelLoadError(f"{p}: sha256 {digest[:12]}… does not match manifest {str(meta.get('sha256'))[:12]}…")
    return manifest


def read_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a model folder's ``config.json``."""
    p = Path(model_dir) / "config.json"
    if not p.is_file():
        raise ModelLoadError(f"{model_dir}: no config.json")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ModelLoadError(f"{p}: invalid JSON ({e})") from None
    if not isinstance(cfg, dict) or "kind" not in cfg:
        raise ModelLoadError(f"{p}: config has no 'kind' (expected e.g. 'baseline' or 'onnx')")
    return cfg


def find_model_dir(name_or_path: str | os.PathLike | None) -> Path:
    """Resolve a model name (``default``, ``baseline``) or a folder path to a folder.

    Names are looked up in ``$QINGLANG_MODELS`` (if set) and then in the repository's ``models/`` folder.
    ``default`` falls back to ``baseline`` when no ``default`` folder exists.
    """
    name = "default" if name_or_path is None else os.fspath(name_or_path)
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    if os.sep in name or "/" in name:
        raise ModelLoadError(f"model folder {name!r} does not exist")
    roots = [Path(r) for r in os.environ.get("QINGLANG_MODELS", "").split(os.pathsep) if r] + [MODELS_DIR]
    candidates = [name] + (["baseline"] if name == "default" else [])
    for cand in candidates:
        for root in roots:
            if (root / cand / "config.json").is_file():
                return root / cand
    raise ModelLoadError(
        f"no model named {name!r} in {[str(r) for r in roots]} (pass a folder path, or set QINGLANG_MODELS)")
