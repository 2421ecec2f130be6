"""Typed configs: dataclasses loaded from YAML, overridden by ``key=value``, saved per run.

Every stage (re-ID training, GAN training) defines its config as nested dataclasses whose
sections live with the layer they configure. Unknown keys are an error that names the key and
the keys that do exist, so a typo never silently falls back to a default. After loading, every
section's ``check()`` runs, so a bad value fails at once and names its key. Configs shipped
with the package (``genreid/configs``) are found by name (``tiny``, ``gan/dcgan_tiny``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from genreid.core.errors import ConfigError
from genreid.core.files import atomic_write_text

T = TypeVar("T")
_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}
SHIPPED = Path(__file__).resolve().parents[1] / "configs"

__all__ = ["ConfigError", "load_config", "save_config", "to_dict", "from_dict", "check_config"]


def _known_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        ftype = get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(ftype):
            keys += _known_keys(ftype, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check and convert one value to the annotated type, with an error naming the key."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is typing.Literal:
        allowed = get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads off/on/no/yes as booleans
            value = next((w for w in _BOOL_WORDS[value] if w in allowed), value)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; expected one of {', '.join(map(str, allowed))}"
            )
        return value
    if origin in (list, tuple):
        if isinstance(value, str | int | float):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} keys, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build a config dataclass from a nested mapping; unknown keys raise ConfigError."""
    if data is None:
        data = {}
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            full = prefix + str(key)
            known = [prefix + n for n in sorted(names)]
            close = difflib.get_close_matches(full, _known_keys(cls, prefix), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown config key {full!r}.{hint} Known keys here: {', '.join(known)}"
            )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) for YAML."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.epochs=5`` -> (["train", "epochs"], 5), the value read as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (e.g. train.epochs=5)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    return key.split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (in place and returned)."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or a ConfigError that says what is wrong with it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys, got {type(data).__name__}")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Folders under genreid/configs that hold data files, not run configs (the paper tables of
# `genreid reproduce`): never listed or found as configs.
NOT_CONFIGS = ("reproduce",)


def shipped_configs() -> list[str]:
    """Names of the configs shipped with the package, e.g. ``train/tiny``."""
    names = (p.relative_to(SHIPPED).with_suffix("").as_posix() for p in SHIPPED.rglob("*.yaml"))
    return sorted(n for n in names if n.split("/", 1)[0] not in NOT_CONFIGS)


def find_config(name: str | Path) -> Path:
    """A config file: an existing path, or a shipped name (``tiny``, ``train/tiny.yaml``)."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    stem = str(name).removesuffix(".yaml").removesuffix(".yml")
    stem = stem.split("configs/", 1)[-1]  # configs/train/tiny.yaml from a checkout
    shipped = shipped_configs()
    matches = [n for n in shipped if n == stem or n.split("/", 1)[-1] == stem]
    if len(matches) == 1:
        return SHIPPED / f"{matches[0]}.yaml"
    if len(matches) > 1:
        raise ConfigError(f"config name {name!r} is ambiguous: {', '.join(matches)}")
    close = difflib.get_close_matches(stem, shipped, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"config {name!r} is neither a file nor a shipped config.{hint} Shipped: "
        f"{', '.join(shipped)} (`genreid config list`)"
    )


def check_config(cfg: Any, prefix: str = "") -> None:
    """Run ``check()`` of every section (depth first), then of ``cfg`` itself."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_config(value, f"{prefix}{f.name}.")
    if hasattr(cfg, "check"):
        cfg.check()


def read_config_dict(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The raw mapping of a config file (``_base_: other.yaml`` merged in) plus overrides."""
    data = {} if path is None else read_with_bases(find_config(path))
    return apply_overrides(data, overrides or [])


def read_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config merged over its ``_base_`` chain (a base may name its own base)."""
    if path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise ConfigError(f"_base_: the configs name each other in a cycle ({chain})")
    data = read_yaml(path)
    base = data.pop("_base_", None)
    if base is None:
        return data
    return merge(read_with_bases(path.parent / base, (*seen, path.resolve())), data)


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Defaults <- YAML file (``_base_: other.yaml`` allowed) <- ``key=value`` overrides.

    ``path`` may be a file or a shipped config name; every section's ``check()`` runs.
    """
    data = read_config_dict(path, overrides)
    where = f" (in {find_config(path)})" if path is not None else ""
    try:
        cfg = from_dict(cls, data)
        check_config(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None
    return cfg


def load_section(path: str | Path, key: str, cls: type[T], overrides: list[str] | None = None) -> T:
    """One section (e.g. ``model``) of a saved config, typed and checked, others ignored."""
    data = apply_overrides(read_yaml(path), overrides or [])
    section = data.get(key) or {}
    try:
        cfg = from_dict(cls, section, prefix=f"{key}.")
        check_config(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})") from None
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config as YAML (atomically: a crash never leaves half a config)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
