"""Registered models: ``python -m core add-model`` and the list the explorer reads.

    python -m core add-model --adapter my_model.py --weights weights.safetensors --name mine

checks the adapter (:func:`core.models.adapter.check_spec`), prints the taps it
found, and adds an entry to ``<cache>/models/registry.json`` (written to a
temporary file and renamed into place, so an interrupted write never leaves
half a registry). Each entry names the adapter file, its SHA-256 and the
weights; a model's folder ``<cache>/models/NAME/`` holds ``adapter.json``, a
copy of its entry, so the explorer can list it beside the checkpoints.

    python -m core add-model --hub MIT/ast-finetuned-audioset-10-10-0.4593 [--download]

lists a Hugging Face AST by hub id: it is read from the local Hugging Face
cache, or fetched once when ``--download`` asks for that id (nothing else ever
downloads), loaded once as a check, and its entry names the id and the cached
folder. The explorer's sidebar adds one the same way.

An adapter is code: it is imported only when the registry lists it under the
folder asked for, with the same SHA-256. A folder holding an ``adapter.json``
that the registry does not list is refused, never imported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

from core.errors import InputError
from core.paths import cache_dir

__all__ = ["REGISTRY_FILE", "ENTRY_FILE", "registry_path", "registered", "entry_for_folder", "add_model",
           "add_hub_model", "remove_model", "file_record", "is_registered_folder", "configure", "run"]

REGISTRY_FILE = "registry.json"
ENTRY_FILE = "adapter.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def registry_path() -> Path:
    """``<cache>/models/registry.json`` (see :func:`core.paths.cache_dir`)."""
    return cache_dir() / "models" / REGISTRY_FILE


def registered() -> dict[str, dict]:
    """Name -> entry of every registered model (empty when nothing is registered).

    Raises
    ------
    InputError
        When the registry file is not valid JSON.
    """
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"the model registry is not valid JSON ({error})") from None
    models = doc.get("models", {}) if isinstance(doc, dict) else {}
    return {str(k): v for k, v in models.items() if isinstance(v, dict)}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save(models: dict[str, dict]) -> None:
    _write_atomic(registry_path(), json.dumps({"models": models}, indent=2, sort_keys=True) + "\n")


def is_registered_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds an ``adapter.json`` (registered or not: see :func:`entry_for_folder`)."""
    return (Path(folder) / ENTRY_FILE).is_file()


def entry_for_folder(folder: str | Path) -> dict:
    """The registry's entry for a model folder, checked against the adapter file on disk.

    Raises
    ------
    InputError
        The registry does not list this folder (an adapter merely found in a
        folder is never imported), the adapter file is gone, or it changed
        since it was registered.
    """
    folder = Path(folder).expanduser().resolve()
    for name, entry in registered().items():
        if "adapter" in entry and Path(entry.get("folder", "")).resolve() == folder:
            adapter = Path(entry["adapter"])
            if not adapter.is_file():
                raise InputError(adapter, f"the adapter of registered model {name!r} is gone")
            from core.models.adapter import file_sha256

            again = f"check and register it again with python -m core add-model --replace --name {name}"
            if file_sha256(adapter) != entry.get("adapter_sha256"):
                raise InputError(adapter, f"changed since model {name!r} was registered; {again}")
            for record in entry.get("files", []):
                if not _unchanged(record):
                    what = "is gone" if not Path(record["path"]).is_file() else "changed"
                    raise InputError(record["path"], f"{what} since model {name!r} was registered (its "
                                                     f"{record['role']}); {again}")
            return dict(entry, name=name)
    raise InputError(folder, f"holds an {ENTRY_FILE} but is not in the model registry ({registry_path()}); "
                             "an adapter is code and runs only once registered with python -m core add-model")


def file_record(path: str | Path, role: str) -> dict:
    """What registration remembers of a file a model is made of: ``path``, ``role``, ``sha256``, ``size``, ``mtime_ns``."""
    from core.models.adapter import file_sha256

    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "role": role, "sha256": file_sha256(path), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


def _unchanged(record: dict) -> bool:
    """The file still holds the registered bytes: same size and modification time, or else the same SHA-256."""
    from core.models.adapter import file_sha256

    path = Path(record["path"])
    if not path.is_file():
        return False
    stat = path.stat()
    if stat.st_size == record.get("size") and stat.st_mtime_ns == record.get("mtime_ns"):
        return True
    return stat.st_size == record.get("size") and file_sha256(path) == record.get("sha256")


def add_model(adapter: str | Path, weights: str | Path | None, name: str, *, replace: bool = False) -> dict:
    """Check an adapter with its weights and register it.

    Returns
    -------
    dict
        The registry entry: ``adapter``, ``adapter_sha256``, ``files`` (the
        weights and every local module the adapter imports, each with its
        SHA-256, size and modification time: :func:`file_record`), ``weights``,
        ``folder``, ``classes``, ``layout``, ``multi_label``, ``input_shape``, ``taps``.
        A later load refuses the model when any of these files changed.

    Raises
    ------
    InputError
        Bad name, a name already taken (unless ``replace``), or anything
        :func:`core.models.adapter.check_spec` refuses. Nothing is written then.
    """
    from core.models.adapter import build_adapted, check_spec, file_sha256

    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError("--name", f"{name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    models = registered()
    if name in models and not replace:
        raise InputError("--name", f"a model called {name!r} is already registered (--replace to replace it)")
    adapter = Path(adapter).expanduser().resolve()
    weights = Path(weights).expanduser().resolve() if weights is not None else None
    model, spec = build_adapted(adapter, weights)
    report = check_spec(model, spec, source=adapter)
    folder = registry_path().parent / name
    files = [file_record(path, "module the adapter imports") for path in spec.code_files[1:]]
    if weights is not None:
        files.append(file_record(weights, "weights"))
    entry = {"adapter": str(adapter), "adapter_sha256": file_sha256(adapter), "files": files,
             "weights": str(weights) if weights is not None else None, "folder": str(folder),
             "classes": spec.classes, "registered": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report}
    models[name] = entry
    _write_atomic(folder / ENTRY_FILE, json.dumps(dict(entry, name=name), indent=2) + "\n")
    _save(models)
    return dict(entry, name=name)


def add_hub_model(repo_id: str, *, download: bool = False, name: str | None = None, replace: bool = False) -> dict:
    """List a Hugging Face AST by hub id, after loading it once as a check.

    Parameters
    ----------
    repo_id : str
        ``"org/name"``.
    download : bool
        Fetch it when it is not in the local Hugging Face cache: only ever True
        when the user asked for this id.
    name : str or None
        What the explorer lists it under; ``None`` takes the id's last part.

    Returns
    -------
    dict
        The registry entry: ``hub_id``, ``folder`` (the cached snapshot),
        ``kind``, ``classes``, ``multi_label``, ``registered``, and ``name``.

    Raises
    ------
    InputError
        Not a hub id, not cached (and no download asked for), the download
        failed, the folder is not an AST classifier, or the name is taken.
        Nothing is written then.
    """
    from core.models.hf_ast import load_hf_ast, resolve_hub_id

    repo_id = str(repo_id).strip()
    name = repo_id.rsplit("/", 1)[-1] if name is None else name
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError("--name", f"{name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    models = registered()
    if name in models and not replace and models[name].get("hub_id") != repo_id:
        raise InputError("--name", f"a model called {name!r} is already registered (--replace to replace it)")
    folder = resolve_hub_id(repo_id, download=download)
    model = load_hf_ast(folder)  # refuses anything but an AST classifier
    entry = {"hub_id": repo_id, "folder": str(Path(folder).resolve()), "kind": "hf-ast", "classes": model.classes,
             "multi_label": bool(model.multi_label),
             "registered": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    models[name] = entry
    _save(models)
    return dict(entry, name=name)


def remove_model(name: str) -> None:
    """Drop a model from the registry (its folder's ``adapter.json`` stays, and no longer loads)."""
    models = registered()
    if name not in models:
        raise InputError("--name", f"no registered model {name!r}; registered: {sorted(models)}")
    del models[name]
    _save(models)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", type=Path, help="the adapter .py file (defines model_spec())")
    parser.add_argument("--hub", metavar="ID", help="a Hugging Face AST hub id ('org/name') instead of an adapter")
    parser.add_argument("--download", action="store_true",
                        help="with --hub: fetch the id when it is not in the local Hugging Face cache")
    parser.add_argument("--weights", type=Path, default=None, help=".safetensors or .pt state dict (optional)")
    parser.add_argument("--name", help="name the explorer lists it under (with --hub: the id's last part by default)")
    parser.add_argument("--replace", action="store_true", help="replace a model already registered under NAME")
    parser.add_argument("--remove", action="store_true", help="unregister NAME instead")


def run(args: argparse.Namespace) -> int:
    if args.remove:
        if args.name is None:
            raise InputError("--name", "give the name of the model to remove")
        remove_model(args.name)
        print(f"removed {args.name!r} from {registry_path()}")
        return 0
    if args.hub is not None:
        if args.adapter is not None:
            raise InputError("--hub", "give either --hub or --adapter, not both")
        entry = add_hub_model(args.hub, download=args.download, name=args.name, replace=args.replace)
        print(f"{entry['name']}: {args.hub}, {len(entry['classes'])} classes "
              f"({'multi-label, sigmoid' if entry['multi_label'] else 'single-label, softmax'}), from {entry['folder']}")
        print(f"registered in {registry_path()}")
        return 0
    if args.adapter is None:
        raise InputError("--adapter", "give the adapter file to check and register (or --hub ID)")
    if args.name is None:
        raise InputError("--name", "give the name the explorer lists the model under")
    entry = add_model(args.adapter, args.weights, args.name, replace=args.replace)
    print(f"{entry['name']}: {entry['n_classes']} classes ({'multi-label, sigmoid' if entry['multi_label'] else 'single-label, softmax'}), "
          f"input {tuple(entry['input_shape'])} ({entry['layout']})")
    print("taps found:")
    for tap, info in entry["taps"].items():
        view = f", viewed {info['view']}" if info["view"] else ""
        print(f"  {tap:<24} {info['kind']:<10} {tuple(info['shape'])}{view}")
    print(f"registered in {registry_path()}; the explorer runs {entry['adapter']}")
    return 0
