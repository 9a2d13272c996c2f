"""The one configuration object of acdc, with YAML, environment and CLI overrides.

:class:`Context` is composed of one dataclass per topic (:mod:`acdc.settings`), each
holding its fields and checking them; :data:`GROUPS` lists the fields by topic for
Studio, the CLI's ``--help`` and ``acdc config``. Fields are read flat: ``ctx.lora_rank``.

Precedence, highest first: a value given explicitly (CLI option, YAML file, LangGraph
Studio), then the ``ACDC_<FIELD>`` environment variable, then the default. As in the
LangGraph templates, a field still equal to its default takes the environment value.
"""

import dataclasses
import logging
import math
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from acdc import safe_files, setting_bounds
from acdc.settings.breeding import BreedingSettings
from acdc.settings.budget import BudgetSettings
from acdc.settings.curator import CuratorSettings
from acdc.settings.judge import JudgeSettings
from acdc.settings.rules import ConfigError
from acdc.settings.run import RunSettings
from acdc.settings.serving import ServingSettings
from acdc.settings.storage import StorageSettings
from acdc.settings.taskforce import TaskforceSettings
from acdc.settings.tasks import TaskSettings

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "GROUP_CLASSES",
    "ConfigError",
    "Context",
    "parse_value",
    "read_config_file",
]

ENV_PREFIX = "ACDC_"

GROUP_CLASSES: dict[str, type[Any]] = {
    "run": RunSettings,
    "serving": ServingSettings,
    "breeding": BreedingSettings,
    "tasks": TaskSettings,
    "judge": JudgeSettings,
    "curator": CuratorSettings,
    "taskforce": TaskforceSettings,
    "storage": StorageSettings,
    "budget": BudgetSettings,
}
"""Each topic's settings class, in the order Studio, ``--help`` and ``acdc config`` show."""
GROUPS: dict[str, tuple[str, ...]] = {
    topic: tuple(f.name for f in fields(group)) for topic, group in GROUP_CLASSES.items()
}
"""Each topic's field names."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML file; ConfigError (naming file, line) if not.

    Read with the caps of :mod:`acdc.safe_files` (size, alias expansion, nesting).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist", "config")
    try:
        loaded = safe_files.load_yaml(path, "config file")
    except safe_files.InputFileError as err:
        raise ConfigError(str(err), "config") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise ConfigError(
            f"{path}: must hold a mapping of field: value, got {type(loaded).__name__}", "config"
        )
    return loaded


def _studio_groups(schema: dict[str, Any]) -> None:
    """Show the settings in Studio by topic: in GROUPS order, each labelled with its topic.

    Studio renders the graph's context schema (pydantic's JSON schema of Context) as one
    form; its fields stay flat, as LangGraph builds Context from them.
    """
    properties = schema["properties"]
    schema["properties"] = {
        name: {
            **properties[name],
            "title": f"{topic}: {properties[name]['title']}",
            "description": f"[{topic}] {properties[name].get('description', '')}",
        }
        for topic, names in GROUPS.items()
        for name in names
    }


@dataclass(kw_only=True)
class Context(
    RunSettings,
    ServingSettings,
    BreedingSettings,
    TaskSettings,
    JudgeSettings,
    CuratorSettings,
    TaskforceSettings,
    StorageSettings,
    BudgetSettings,
):
    """Every setting of an acdc run, shown in LangGraph Studio and the CLI's ``--help``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"json_schema_extra": _studio_groups}
    """Read by pydantic when LangGraph makes Studio's form (a plain dict: no pydantic import)."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            raw = _environment_value(f, getattr(self, f.name))
            if raw is not None:
                setattr(self, f.name, parse_value(f.name, hints[f.name], raw))
        for f in fields(self):
            setattr(self, f.name, _typed(f.name, hints[f.name], getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Refuse a value out of range, naming the field: every topic checks its own."""
        for group in GROUP_CLASSES.values():
            group.check(self)

    @property
    def attached_urls(self) -> list[str]:
        """Population servers to attach to (``server_urls`` or ``server_url``); [] = start one."""
        urls = self.server_urls or ([self.server_url] if self.server_url else [])
        return [url.rstrip("/") for url in urls]

    @property
    def pool_target(self) -> int:
        """Active tasks the pool grows to, and is refilled to after each adaptation.

        ``initial_pool``, capped by ``pool_max``.
        """
        return min(self.initial_pool, self.pool_max)

    @property
    def run_dir(self) -> Path:
        """Folder of this run."""
        return Path(self.runs_dir) / self.run_id

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        base: dict[str, Any] | None = None,
        base_name: str = "",
        **overrides: Any,
    ) -> "Context":
        """Build a Context from ``base``, then a YAML file, then explicit overrides.

        ``None`` overrides are not given. A refusal names where the bad value came from:
        the file, ``base_name`` (e.g. a run's recorded config.yaml), the option or the
        environment variable, and the field.
        """
        return cls.resolve(config_file, base=base, base_name=base_name, **overrides)[0]

    @classmethod
    def resolve(
        cls,
        config_file: str | Path | None = None,
        *,
        base: dict[str, Any] | None = None,
        base_name: str = "",
        **overrides: Any,
    ) -> tuple["Context", dict[str, str]]:
        """:meth:`load`, and where each setting's value came from.

        A source is ``default``, ``environment ACDC_<FIELD>``, ``file <path>``,
        ``option --<field>`` or ``run <base_name>`` (a run's recorded settings); ``acdc
        config`` prints them, and ``acdc run`` builds its Context here, so the two agree.
        """
        values: dict[str, Any] = dict(base or {})
        origin = dict.fromkeys(values, f"run {base_name}".strip())
        if config_file is not None:
            loaded = read_config_file(config_file)
            values.update(loaded)
            origin.update(dict.fromkeys(loaded, f"file {config_file}"))
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        origin.update({k: "option --" + k.replace("_", "-") for k in given})
        _translate_renamed(values, origin)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            where = sorted({origin[k] for k in unknown if origin[k]})
            prefix = f"{', '.join(where)}: " if where else ""
            raise ConfigError(f"{prefix}unknown setting(s): {', '.join(unknown)}", unknown[0])
        try:
            ctx = cls(**values)
        except ConfigError as err:
            source = origin.get(err.field, "")
            if not source and os.environ.get(ENV_PREFIX + err.field.upper()) is not None:
                source = f"environment variable {ENV_PREFIX + err.field.upper()}"
            raise ConfigError(f"{source}: {err}" if source else str(err), err.field) from None
        sources = {}
        for f in fields(cls):
            given_value = values.get(f.name, _default(f))
            if _environment_value(f, given_value) is not None:
                sources[f.name] = f"environment {ENV_PREFIX}{f.name.upper()}"
            else:
                sources[f.name] = origin.get(f.name, "default")
        return ctx, sources

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view, as recorded in a run folder."""
        return dataclasses.asdict(self)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"Context field {f.name} has no default")


def _environment_value(f: dataclasses.Field[Any], given: Any) -> str | None:
    """The ``ACDC_<FIELD>`` string that replaces ``given``, or None.

    The environment counts only where the value given is still the default, so an
    explicit value wins; :meth:`Context.resolve` names sources by this same rule.
    """
    raw = os.environ.get(ENV_PREFIX + f.name.upper())
    return raw if raw is not None and given == _default(f) else None


def _translate_renamed(values: dict[str, Any], origin: dict[str, str]) -> None:
    """Read settings of older configs under their new names (documented in the README).

    ``novel_unrelated_share`` became ``novel_related_share`` (its complement): the old
    default sent 80 % of novel requests to the unrelated prompt, the reference sends 80 %
    to the related one. An old file or recorded run keeps its own behaviour, and a warning
    says how to write it now; naming both is refused.
    """
    if os.environ.get(ENV_PREFIX + "NOVEL_UNRELATED_SHARE") is not None:
        raise ConfigError(
            f"environment variable {ENV_PREFIX}NOVEL_UNRELATED_SHARE: renamed; set "
            f"{ENV_PREFIX}NOVEL_RELATED_SHARE to 1 minus its value instead",
            "novel_related_share",
        )
    if "novel_unrelated_share" not in values:
        return
    where = origin.pop("novel_unrelated_share", "") or "config"
    old = values.pop("novel_unrelated_share")
    if "novel_related_share" in values:
        raise ConfigError(
            f"{where}: novel_unrelated_share is the old name of 1 - novel_related_share; "
            "give novel_related_share alone",
            "novel_related_share",
        )
    if isinstance(old, bool) or not isinstance(old, int | float) or not 0.0 <= old <= 1.0:
        raise ConfigError(
            f"{where}: novel_unrelated_share (now 1 - novel_related_share) must be a number "
            f"in [0, 1], got {safe_files.preview(old)}",
            "novel_related_share",
        )
    values["novel_related_share"] = round(1.0 - float(old), 6)
    origin["novel_related_share"] = where
    logging.getLogger(__name__).warning(
        "%s: novel_unrelated_share %s is read as novel_related_share %s; write that instead",
        where,
        old,
        values["novel_related_share"],
    )


def _typed(name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's type; raises ConfigError naming the field.

    Ints stay ints (2.5 generations is an error, not 2), floats must be finite, paths
    become strings, lists must be lists (a bare string is not a list of one), and a
    ``Literal`` field holds one of its values.
    """
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    wrong = f"{name} must be {{}}, got {safe_files.preview(value)} ({type(value).__name__})"
    if origin is Literal and value not in get_args(hint):
        shown = safe_files.preview(value)
        raise ConfigError(f"{name} must be one of {get_args(hint)}, got {shown}", name)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(wrong.format("true or false"), name)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(wrong.format("an integer"), name)
    if hint is int and (beyond := setting_bounds.out_of_bounds(name, value)):
        raise ConfigError(beyond, name)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(wrong.format("a number"), name)
        if not math.isfinite(value):
            raise ConfigError(wrong.format("a finite number"), name)
        if beyond := setting_bounds.float_out_of_bounds(name, value):
            raise ConfigError(beyond, name)
        return float(value)
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(wrong.format("a string"), name)
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(
                wrong.format("a list (in YAML: [a, b] or one '- item' per line)"), name
            )
        if get_args(hint) == (str,):
            value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(wrong.format("a list of strings"), name)
    return value


def parse_value(name: str, hint: Any, raw: str) -> Any:
    """Parse a string (environment variable or CLI option) as the field's type."""
    origin = get_origin(hint)
    try:
        if origin is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        if origin in (types.UnionType, typing.Union):
            return parse_value(name, next(a for a in get_args(hint) if a is not type(None)), raw)
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes"}
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError as err:
        raise ConfigError(f"{name}: cannot parse {safe_files.preview(raw)} as {hint}") from err
    return raw
