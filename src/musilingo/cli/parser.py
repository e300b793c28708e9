"""Typed function -> argparse subcommand: the signature and docstring of a command are its CLI.

A command is a plain Python function. :func:`add_function_arguments` reads it once:

- the docstring's summary (first paragraph) is the command's description, its Google-style
  ``Args:`` section gives each parameter's help text;
- a parameter without a default is a positional, unless it is keyword-only (after ``*``): then
  it is a required ``--flag``; parameters with a default are ``--flags`` (``_`` -> ``-``; the
  parameter ``as_json`` is ``--json``);
- ``Literal[...]`` lists the choices; ``bool`` gives ``--x/--no-x``; ``list[T]`` and
  ``tuple[T, ...]`` take several values (``--x a b``; the flag may repeat); ``tuple[T, T]`` takes
  exactly two; ``dict[str, int]`` takes ``KIND=N`` pairs; ``X | None`` is ``X``;
- a parameter typed as a dataclass expands into one flag per field, whose help is the field's
  attribute docstring (the string literal under the field). Flags left out keep the field's
  default, so the dataclass's own ``__post_init__`` validates the values given. A dataclass with
  a ``from_yaml(path, **overrides)`` classmethod also gets ``--recipe FILE``: the file sets the
  same keys and the flags given override it;
- a command whose return annotation is ``dict`` gets ``--json``: the CLI prints the returned
  dict indented, or on one line with ``--json``.

:func:`call_command` turns the parsed namespace back into the call. Imports nothing heavy.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from typing import Any, Callable

FLAG_NAMES = {"as_json": "json"}  # parameter -> flag where the flag's name would shadow a module
RECIPE_FLAG = "recipe"


class _Unset:
    """Default of dataclass flags: tells a flag left out from one given (field default applies)."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()


# ----------------------------------------------------------------------------------- docstrings
def parse_docstring(doc: str | None) -> tuple[str, str, dict[str, str]]:
    """Google-style docstring -> (summary, description, {parameter: help}).

    The summary is the first paragraph joined into one line; the description is the text before
    the first section header (``Args:``, ``Returns:`` ...); each ``name: text`` entry of ``Args:``
    (continuation lines indented further) becomes one line of help.
    """
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    summary_lines, body, args = [], [], {}
    i = 0
    while i < len(lines) and lines[i].strip():
        summary_lines.append(lines[i].strip())
        i += 1
    section = None
    current = None
    for line in lines[i:]:
        stripped = line.strip()
        if line and not line[0].isspace() and stripped.endswith(":") and " " not in stripped[:-1]:
            section, current = stripped[:-1].lower(), None
            continue
        if section is None:
            body.append(line)
        elif section in ("args", "arguments", "parameters"):
            indent = len(line) - len(line.lstrip())
            head, sep, rest = stripped.partition(":")
            if indent <= 4 and sep and head.replace("_", "").replace("*", "").isalnum():
                current = head.lstrip("*")
                args[current] = rest.strip()
            elif current and stripped:
                args[current] += " " + stripped
    return " ".join(summary_lines), "\n".join(body).strip(), args


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """A dataclass's attribute docstrings: {field: the string literal right under it}."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


# ---------------------------------------------------------------------------------------- types
def _unoptional(hint):
    """``X | None`` -> ``X`` (other hints unchanged)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _kind_count(text: str) -> tuple[str, int]:
    """``key=2`` -> ("key", 2)."""
    kind, sep, n = text.partition("=")
    if not sep or not kind or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected KIND=N with N >= 0, got {text!r}")
    return kind, int(n)


class _KindCounts(argparse.Action):
    """``--qa-oversample key=2 tempo=1`` -> {"key": 2, "tempo": 1}."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, dict(values))


class _Extend(argparse.Action):
    """Several values per flag, and the flag may repeat: ``--x a b --x c`` -> [a, b, c]."""

    def __call__(self, parser, namespace, values, option_string=None):
        old = getattr(namespace, self.dest, None)
        old = list(old) if isinstance(old, (list, tuple)) else []
        setattr(namespace, self.dest, old + list(values))


def _scalar(hint) -> Callable[[str], Any]:
    return hint if hint in (int, float) else str


def _argument_spec(hint) -> dict[str, Any]:
    """argparse keyword arguments (type, nargs, choices, action) for one type hint."""
    base = _unoptional(hint)
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is typing.Literal:
        return {"type": type(args[0]) if args else str, "choices": list(args)}
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is dict:
        return {"nargs": "+", "type": _kind_count, "metavar": "KIND=N", "action": _KindCounts}
    if origin is tuple and args and args[-1] is not Ellipsis:
        return {"nargs": len(args), "type": _scalar(args[0])}
    if origin in (list, tuple):
        inner = args[0] if args else str
        spec = {"nargs": "+", "action": _Extend}
        if typing.get_origin(inner) is typing.Literal:
            values = list(typing.get_args(inner))
            spec.update(type=type(values[0]), choices=values)
        else:
            spec.update(type=_scalar(inner))
        return spec
    return {"type": _scalar(base)}


def _help(text: str | None, default: Any = None, is_bool: bool = False) -> str:
    """Help text plus its default (``on``/``off`` for a boolean; none shown for None/empty)."""
    text = (text or "").strip()
    if is_bool:
        shown = "on" if default else "off"
    elif default is None or default is UNSET or default in ([], (), ""):
        shown = None
    else:
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    if shown is not None and "(default" not in text and "default:" not in text:
        text = text.rstrip(".") + f" (default: {shown})"
    return text.replace("%", "%%")


def _metavar(name: str, spec: dict) -> dict:
    """``--batch-size BATCH_SIZE``, not the dotted dest of a dataclass field."""
    if "choices" in spec or "metavar" in spec \
            or spec.get("action") is argparse.BooleanOptionalAction:
        return {}
    return {"metavar": name.upper()}


def _flag(name: str) -> str:
    return "--" + FLAG_NAMES.get(name, name).replace("_", "-")


# --------------------------------------------------------------------------------------- builder
def command_doc(func: Callable) -> tuple[str, str]:
    """(summary, description) of a command function."""
    summary, body, _ = parse_docstring(func.__doc__)
    return summary, (summary + ("\n\n" + body if body else "")).strip()


def _add_dataclass_arguments(p: argparse.ArgumentParser, pname: str, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    summary = parse_docstring(cls.__doc__)[0].rstrip(".")
    group = p.add_argument_group(summary or f"{cls.__name__} options")
    if callable(getattr(cls, "from_yaml", None)):
        group.add_argument(_flag(RECIPE_FLAG), dest=f"{pname}.{RECIPE_FLAG}", default=None,
                           metavar="FILE", help="YAML file of these options (some or all); the "
                           "flags given override its values")
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        spec = _argument_spec(hints[f.name])
        is_bool = spec.get("action") is argparse.BooleanOptionalAction and isinstance(default, bool)
        group.add_argument(_flag(f.name), dest=f"{pname}.{f.name}", default=UNSET,
                           help=_help(docs.get(f.name), default, is_bool),
                           **_metavar(f.name, spec), **spec)


def add_function_arguments(p: argparse.ArgumentParser, func: Callable) -> None:
    """Add one argument per parameter of ``func`` to ``p`` (see the module docstring)."""
    hints = typing.get_type_hints(func)
    _, _, docs = parse_docstring(func.__doc__)
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{func.__qualname__}: *{name} cannot be a command-line argument")
        hint = hints.get(name, str)
        base = _unoptional(hint)
        if dataclasses.is_dataclass(base) and isinstance(base, type):
            _add_dataclass_arguments(p, name, base)
            continue
        spec = _argument_spec(hint)
        required = param.default is inspect.Parameter.empty
        if required and param.kind is not param.KEYWORD_ONLY:
            if spec.get("action") is _Extend:
                spec["action"] = "store"
            p.add_argument(name, help=_help(docs.get(name)), **spec)
            continue
        is_bool = spec.get("action") is argparse.BooleanOptionalAction
        kwargs = {"required": True} if required else {"default": param.default}
        p.add_argument(_flag(name), dest=name,
                       help=_help(docs.get(name), None if required else param.default, is_bool),
                       **kwargs, **spec)
    if _returns_dict(func, hints):
        p.add_argument("--json", dest="_as_json", action="store_true",
                       help="print the result on one line of JSON (default: indented)")


def _returns_dict(func: Callable, hints: dict) -> bool:
    ret = hints.get("return")
    return ret is dict or typing.get_origin(ret) is dict


def call_command(func: Callable, values: dict[str, Any]) -> Any:
    """Call ``func`` with the parsed ``values`` (dataclass parameters built from their flags)."""
    hints = typing.get_type_hints(func)
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        base = _unoptional(hints.get(name, str))
        if dataclasses.is_dataclass(base) and isinstance(base, type):
            given = {k.split(".", 1)[1]: v for k, v in values.items()
                     if k.startswith(name + ".") and v is not UNSET}
            recipe = given.pop(RECIPE_FLAG, None)
            kwargs[name] = base.from_yaml(recipe, **given) if recipe else base(**given)
        elif name in values:
            kwargs[name] = values[name]
    return func(**kwargs)


def resolve(target: str) -> Callable:
    """``"package.module:function"`` -> the function (imports that module only)."""
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
