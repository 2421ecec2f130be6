"""Typed configs: dataclasses loaded from YAML, overridden by ``key=value``, saved per run.

Every stage (re-ID training, GAN training) defines its config as nested dataclasses whose
sections live with the layer they configure. Unknown keys are an error that names the key and
the keys that do exist, so a typo never silently falls back to a default. After loading, every
section's ``check()`` runs, so a bad value fails at once and names its key. Configs shipped
with the package (``genreid/configs``) are found by name (``tiny``, ``gan/dcgan_tiny``).

A plugin (a label strategy, a GAN architecture) owns its options: a field made with
:func:`chosen_by` holds the options dataclass of the plugin that another key names, checked
with the same unknown-key errors (and a stray key of another plugin is named as such). A task's
config carries ``version`` (:data:`CONFIG_VERSION`); an older mapping is brought up to date by
the config class's ``migrations`` before it is read (:func:`migrate`), and a section's
``moved_keys`` ({old key: its new place}) lets the error for an old key say where it went.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from genreid.core.changes import (
    Change,
    apply_changes,
    apply_overrides,
    parse_override,
    value_text,
)
from genreid.core.errors import ConfigError, RegistryError
from genreid.core.files import atomic_write_text

T = TypeVar("T")
_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}
SHIPPED = Path(__file__).resolve().parents[1] / "configs"
# The key layout of task configs (their ``version`` key); 1: before plugins owned their options
# (labels.epsilon, train.d_steps) and a GAN's learning rate moved to optim.gen/optim.dis.
CONFIG_VERSION = 2
_CHOSEN = "genreid.chosen_by"  # dataclass field metadata of a chosen_by field

__all__ = [
    "CONFIG_VERSION", "Change", "ChosenBy", "ConfigError", "apply_changes", "apply_overrides",
    "check_config", "chosen_by", "from_dict", "load_config", "migrate", "migrate_override",
    "migrate_overrides", "parse_override", "replace_config", "save_config", "to_dict",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ChosenBy:
    """A field holding the options dataclass of the plugin another key names."""

    key: str  # the key naming the plugin: a sibling field, or a dotted path from the root
    options: Callable[[str], type]  # plugin name -> its options dataclass (unknown: raises)
    names: Callable[[], Iterable[str]]  # every plugin, to say whose option a stray key is


def chosen_by(key: str, options: Callable[[str], type], names: Callable[[], Iterable[str]]) -> Any:
    """A dataclass field for the options of the plugin named by ``key`` (``strategy``, or
    ``model.arch`` from the config's root); None until the owner fills in the defaults."""
    return dataclasses.field(default=None, metadata={_CHOSEN: ChosenBy(key, options, names)})


def _option_owners(spec: ChosenBy, key: str) -> list[str]:
    """The plugins whose options have ``key``."""
    return [n for n in spec.names() if key in {f.name for f in dataclasses.fields(spec.options(n))}]


def _chooser_key(spec: ChosenBy, prefix: str) -> str:
    """The dotted key that names the plugin, for messages."""
    return spec.key if "." in spec.key else prefix + spec.key


def _unknown_key(
    cls: type, key: str, prefix: str, chosen: tuple[str, str, ChosenBy] | None
) -> ConfigError:
    """An unknown key's error: the closest key, whose option it is, and the known keys."""
    names = sorted(f.name for f in dataclasses.fields(cls))
    full = prefix + key
    hint = ""
    moved = getattr(cls, "moved_keys", {}).get(key)
    if moved:
        hint = f" It moved to {moved}."
    for f in dataclasses.fields(cls):  # an option of a plugin, written beside its name
        spec = f.metadata.get(_CHOSEN)
        owners = _option_owners(spec, key) if spec else []
        if owners:
            hint = (
                f" {prefix}{f.name}.{key} is an option of {', '.join(owners)} "
                f"({_chooser_key(spec, prefix)}): a plugin's options live in "
                f"{prefix}{f.name}.{hint}"
            )
    if chosen is not None:  # inside the options of the plugin `name` that `by` chose
        by, name, spec = chosen
        owners = [o for o in _option_owners(spec, key) if o != name]
        if owners:
            hint = (
                f" It is an option of {', '.join(owners)}, not of {name} ({by}); set "
                f"{prefix[:-1]}={{}} to start from {name}'s defaults.{hint}"
            )
    if not hint:  # no key of that name anywhere: the closest spelling of one
        known_keys = _known_keys(cls, prefix)
        close = difflib.get_close_matches(full, known_keys, n=1)
        hint = f" Did you mean {known_keys[close[0]]!r}?" if close else ""
    known = ", ".join(prefix + n for n in names) or "none"
    return ConfigError(f"unknown config key {full!r}.{hint} Known keys here: {known}")


def _known_keys(cls: type, prefix: str = "") -> dict[str, str]:
    """Every key under ``prefix`` for did-you-mean: {a spelling: the key to suggest}. Every
    plugin's options are listed at their place (``labels.options.epsilon``) and beside the
    field that holds them, where config version 1 kept them (``labels.epsilon``)."""
    keys: dict[str, str] = {}
    flat: dict[str, str] = {}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_CHOSEN)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.update(_known_keys(hints[f.name], f"{prefix}{f.name}."))
            continue
        keys[prefix + f.name] = prefix + f.name
        for name in spec.names() if spec is not None else ():
            for option in _known_keys(spec.options(name), f"{prefix}{f.name}."):
                keys[option] = option
                flat[prefix + option.rsplit(".", 1)[1]] = option
    return {**flat, **keys}  # a section's own key wins over an option's old spelling


def _coerce(
    value: Any, tp: Any, key: str, root: tuple[type, dict] | None = None, base: Any = None
) -> Any:
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
                return _coerce(value, arg, key, root, base if type(base) is arg else None)
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
        return from_dict(tp, value, prefix=f"{key}.", root=root or (tp, value), base=base)
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


def from_dict(
    cls: type[T],
    data: dict[str, Any],
    prefix: str = "",
    *,
    root: tuple[type, dict[str, Any]] | None = None,
    base: Any = None,
    chosen: tuple[str, str, ChosenBy] | None = None,
) -> T:
    """Build a config dataclass from a nested mapping; unknown keys raise ConfigError.

    At the top (no ``root``) an older mapping is first migrated (:func:`migrate`). ``base``:
    an instance whose values stand for the keys ``data`` leaves out (a section whose field
    gives other defaults than its class). ``chosen``: (key, plugin, spec) of options sections.
    """
    if data is None:
        data = {}
    if root is None:
        data = migrate(cls, data)
        root = (cls, data)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise _unknown_key(cls, str(key), prefix, chosen)
    kwargs = {}
    for k, v in data.items():
        f, key = fields[k], prefix + k
        spec = f.metadata.get(_CHOSEN)
        if spec is not None:
            kwargs[k] = _chosen_options(spec, cls, data, v, key, root)
        else:
            kwargs[k] = _coerce(v, hints[k], key, root, _section_default(f, hints[k]))
    if base is not None:  # the base's values, but for plugin options its owner re-derives
        kept = {
            n: getattr(base, n) for n, f in fields.items() if f.init and _CHOSEN not in f.metadata
        }
        kwargs = {**kept, **kwargs}
    return cls(**kwargs)


def _section_default(f: dataclasses.Field, tp: Any) -> Any:
    """A section field's own default instance when it differs from its class's (a lambda;
    ``X | None`` alike): what a partial section of that field starts from."""
    factory = f.default_factory
    types_ = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
    sections = [t for t in types_ if dataclasses.is_dataclass(t)]
    if not sections or factory is dataclasses.MISSING or factory in sections:
        return None
    value = factory()
    return value if type(value) in sections else None


def _default_at(cls: type, path: list[str]) -> Any:
    """The default value of a dotted key of a config class (sections built from defaults)."""
    value: Any = None
    for part in path:
        f = next((f for f in dataclasses.fields(cls) if f.name == part), None) if cls else None
        if f is None:
            return None
        value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        cls = type(value) if dataclasses.is_dataclass(value) else None
    return value


def _chooser(spec: ChosenBy, cls: type, data: dict[str, Any], root: tuple[type, dict]) -> Any:
    """The plugin name: a sibling key's value (or default), or a dotted key's from the root."""
    if "." not in spec.key:
        return data[spec.key] if spec.key in data else _default_at(cls, [spec.key])
    path, node = spec.key.split("."), root[1]
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _default_at(root[0], path)
        node = node[part]
    return node


def _chosen_options(
    spec: ChosenBy, cls: type, data: dict[str, Any], value: Any, key: str, root: tuple
) -> Any:
    """The options section ``key`` read as the dataclass of the plugin its chooser names."""
    name = _chooser(spec, cls, data, root)
    where = _chooser_key(spec, key[: key.rfind(".") + 1])
    try:
        options = spec.options(str(name))
    except (RegistryError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of {name}'s options, got {value!r}")
    return from_dict(options, value, f"{key}.", root=root, chosen=(where, str(name), spec))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) for YAML."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


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
    """Run ``check()`` of every section (depth first), then of ``cfg`` itself. A section's
    ``check(key)`` that takes an argument gets its dotted place (one section type, e.g. an
    optimiser, used at several keys names the right one)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_config(value, f"{prefix}{f.name}.")
    if hasattr(cfg, "check"):
        if prefix and inspect.signature(cfg.check).parameters:
            cfg.check(prefix[:-1])
        else:
            cfg.check()


def migrate(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping of an older ``version`` brought to :data:`CONFIG_VERSION` by the steps
    of ``cls.migrations`` ({version: step(mapping) -> mapping}); classes without a ``version``
    field are read as they are. Saved run folders and old configs load through this alone."""
    if "version" not in {f.name for f in dataclasses.fields(cls)}:
        return data
    found = data.get("version", 1)
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ConfigError(
            f"version: expected a config version 1 to {CONFIG_VERSION}, got {found!r}"
        )
    if found > CONFIG_VERSION:
        raise ConfigError(
            f"version: this config is version {found}, newer than this genreid reads "
            f"({CONFIG_VERSION}); update genreid"
        )
    for version, step in sorted(getattr(cls, "migrations", {}).items()):
        if found < version:
            data = step(data)
    return {**data, "version": CONFIG_VERSION}


def migrate_override(cls: type, item: str, within: dict[str, Any] | None = None) -> list[str]:
    """A ``key=value`` of config version 1 (in an override list an older pipeline saved) as
    the current layout's texts: ``train.lr=X`` -> ``optim.gen.lr=X`` and ``optim.dis.lr=X``,
    ``labels.epsilon=X`` -> ``labels.options.epsilon=X``; ``[item]`` where nothing moved.

    A plugin's option moves into the options of the plugin that ``within`` (the mapping the
    override applies to) chooses, and is dropped when that plugin has no such option (version
    1 ignored it); without ``within``, into those of the plugin that has it."""
    steps = getattr(cls, "migrations", {})
    if not steps or "version" not in {f.name for f in dataclasses.fields(cls)}:
        return [item]
    path, value = parse_override(item)
    key = ".".join(path)
    given = apply_changes({}, [Change(key, value)])
    data, added = copy.deepcopy(given), []
    written = _lookup(data, key)  # the value as the item wrote it, wherever it moves
    for chooser, options, spec in _chosen_fields(cls):
        if _lookup(data, chooser) is not None:
            continue  # the override names the plugin itself
        section = _lookup(data, options.rpartition(".")[0])
        if within is not None:
            name = _lookup(within, chooser)
        else:
            keys = section if isinstance(section, dict) else {}
            owners = [o for k in keys for o in _option_owners(spec, str(k))]
            name = owners[0] if owners else None
        if name is not None and isinstance(section, dict):
            apply_changes(data, [Change(chooser, name)])
            added.append(chooser)
    for _, step in sorted(steps.items()):
        data = step(data)
    for chooser in added:  # only there to choose the plugin
        parent, _, last = chooser.rpartition(".")
        node = _lookup(data, parent)
        if isinstance(node, dict):
            node.pop(last, None)
    if _leaves(data) == _leaves(given):
        return [item]
    raw = item.split("=", 1)[1]
    out = []
    if isinstance(value, dict):  # a whole section: set as a whole, as the item did
        out.append(f"{key}={value_text(_lookup(data, key) or {})}")
    for leaf, v in _leaves(data).items():
        if not isinstance(value, dict) or not (leaf + ".").startswith(key + "."):
            out.append(f"{leaf}={raw if v is written else value_text(v)}")
    return out


def migrate_overrides(
    cls: type, items: Iterable[str], within: dict[str, Any] | None = None
) -> list[str]:
    """:func:`migrate_override` of each item, in order (``within`` follows the items: one
    that names the plugin chooses for those after it)."""
    context = copy.deepcopy(within)
    out: list[str] = []
    for item in items:
        new = migrate_override(cls, str(item), context)
        out += new
        if context is not None:
            with contextlib.suppress(ConfigError):  # a section given as a value: its error later
                apply_overrides(context, new)
    return out


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The values of a nested mapping at their dotted keys (empty sections left out)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def read_config_dict(
    path: str | Path | None, overrides: list[str] | None = None, cls: type | None = None
) -> dict[str, Any]:
    """The raw mapping of a config file (``_base_: other.yaml`` merged in) plus overrides;
    with ``cls``, every file of the chain migrated to its current layout first."""
    data = {} if path is None else read_with_bases(find_config(path), cls=cls)
    return apply_overrides(data, overrides or [])


def read_with_bases(
    path: Path, seen: tuple[Path, ...] = (), cls: type | None = None
) -> dict[str, Any]:
    """A YAML config merged over its ``_base_`` chain (a base may name its own base). With
    ``cls`` each file is migrated (:func:`migrate`) by its own ``version`` before the merge: a
    version-1 file over a shipped (current) base is still version 1, and the other way round."""
    if path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise ConfigError(f"_base_: the configs name each other in a cycle ({chain})")
    data = read_yaml(path)
    base = data.pop("_base_", None)
    below = (
        {} if base is None else read_with_bases(path.parent / base, (*seen, path.resolve()), cls)
    )
    if cls is not None:
        try:
            data = migrate(cls, _with_choosers(cls, data, below))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (in {path})") from None
    return data if base is None else merge(below, data)


def _with_choosers(cls: type, data: dict[str, Any], below: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the plugin names (``labels.strategy``) it leaves to its base, for its
    migration to move its options by (the same values: merged over the base, they change
    nothing)."""
    if "version" not in {f.name for f in dataclasses.fields(cls)}:
        return data
    if data.get("version", 1) == CONFIG_VERSION:
        return data
    out = copy.deepcopy(data)
    for chooser, options, _ in _chosen_fields(cls):
        section = options.rpartition(".")[0]
        name = _lookup(below, chooser)
        if (
            name is not None
            and _lookup(out, chooser) is None
            and isinstance(_lookup(out, section), dict)
        ):
            with contextlib.suppress(ConfigError):  # a section given as a value: its error later
                apply_changes(out, [Change(chooser, name)])
    return out


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    changes: Iterable[Change] = (),
) -> T:
    """Defaults <- YAML file (``_base_: other.yaml`` allowed) <- ``key=value`` overrides <-
    typed ``changes``.

    ``path`` may be a file or a shipped config name; every section's ``check()`` runs. A file
    without ``version`` is version 1 (run folders saved before it existed); overrides on the
    defaults alone (no file) are read in the current layout.
    """
    data = apply_changes(read_config_dict(path, overrides, cls), changes)
    if path is None and "version" in {f.name for f in dataclasses.fields(cls)}:
        data = {"version": CONFIG_VERSION, **data}
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


def replace_config(cfg: T, changes: Iterable[Change]) -> T:
    """A loaded config with ``changes`` made: its mapping with the keys set, read again with
    the loader's types, checks and did-you-mean errors. A change of plugin (``labels.strategy``)
    starts that plugin's options from its defaults, as a file naming it would."""
    data = to_dict(cfg)
    chosen = list(_chosen_fields(type(cfg)))
    for change in changes:
        for options in (o for key, o, _ in chosen if key == change.key):
            section, _, name = options.rpartition(".")
            held = _lookup(data, section)
            if _lookup(data, change.key) != change.value and isinstance(held, dict):
                held.pop(name, None)
        apply_changes(data, [change])
    out = from_dict(type(cfg), data)
    check_config(out)
    return out


def _chosen_fields(cls: type, prefix: str = "") -> Iterable[tuple[str, str, ChosenBy]]:
    """(the key naming the plugin, its options' key, the field's spec) of every chosen_by
    field, from the root."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_CHOSEN)
        if spec is not None:
            yield _chooser_key(spec, prefix), prefix + f.name, spec
        elif dataclasses.is_dataclass(hints[f.name]):
            yield from _chosen_fields(hints[f.name], f"{prefix}{f.name}.")


def _lookup(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a nested mapping (the mapping itself for ``""``)."""
    for part in filter(None, key.split(".")):
        data = data.get(part) if isinstance(data, dict) else None
    return data
