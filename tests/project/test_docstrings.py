"""Every public name has a docstring, so ``help()``, editors and the manual show the same text.

The public surface is ``syncws.__all__`` and the ``__all__`` of the public modules below (the
ones the manual's API reference documents). For each public class: its own docstring, every
public method, property and event handler attribute, and every constructor parameter named in
the class or ``__init__`` docstring; for each public function and method: a docstring that names
every parameter.
"""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re
from typing import Any, Iterator, List, Tuple

import pytest

import syncws

PUBLIC_MODULES = [
    "syncws",
    "syncws.websocket",
    "syncws.events",
    "syncws.blob",
    "syncws.errors",
    "syncws.executors",
    "syncws.server",
    "syncws.testing",
    "syncws.protocol.deflate",
    "syncws.protocol.frames",
]
# The sans-I/O protocol modules are internal but for these names, which users of the test
# server (``extensions=``, ``send_frame``, ``recv_frame``) and of ``compression=`` meet.
PUBLIC_NAMES = {
    "syncws.protocol.deflate": ["DeflateOptions", "server_negotiate"],
    "syncws.protocol.frames": ["Opcode", "Frame"],
}

# Special methods whose behaviour is the class's own (the others, like __repr__ or __eq__,
# mean what Python says they mean).
_DOCUMENTED_SPECIAL = {"__call__", "__iter__", "__enter__", "__exit__", "__get__", "__set__",
                       "__post_init__"}


def _public_objects() -> Iterator[Tuple[str, Any]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in PUBLIC_NAMES.get(module_name, module.__all__):
            yield f"{module_name}.{name}", getattr(module, name)


def _own_doc(obj: Any) -> str:
    """The docstring ``obj`` itself defines (not one inherited or generated)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if issubclass(obj, tuple) and doc.startswith(f"{obj.__name__}("):
            return ""  # namedtuple's generated "Name(field, ...)"
        return doc
    return getattr(obj, "__doc__", None) or ""


def _members(cls: type) -> Iterator[Tuple[str, Any]]:
    """The public methods, properties and descriptors ``cls`` defines itself (aliases too)."""
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in _DOCUMENTED_SPECIAL:
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property) or hasattr(value, "__set__"):
            yield name, value


def _parameters(function: Any) -> List[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []
    return [
        name
        for name, parameter in signature.parameters.items()
        if name not in ("self", "cls")
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def _names(text: str) -> set:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


PUBLIC = sorted(dict(_public_objects()).items())


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_have_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no docstring"


@pytest.mark.parametrize("qualname, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_name_is_documented(qualname: str, obj: Any) -> None:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # constants and type aliases: documented by ``#:`` comments in the source
    problems = []
    if not _own_doc(obj).strip():
        problems.append(f"{qualname} has no docstring")
    if inspect.isfunction(obj):
        missing = [p for p in _parameters(obj) if p not in _names(obj.__doc__ or "")]
        if missing:
            problems.append(f"{qualname}() does not document {missing}")
    else:
        problems += _class_problems(qualname, obj)
    assert not problems, "\n".join(problems)


def _class_problems(qualname: str, cls: type) -> List[str]:
    problems = []
    init = cls.__dict__.get("__init__")
    if init is not None and not issubclass(cls, BaseException):
        documented = _names(_own_doc(cls) + (init.__doc__ or ""))
        missing = [p for p in _parameters(init) if p not in documented]
        if missing:
            problems.append(f"{qualname} does not document constructor parameters {missing}")
    slots = cls.__dict__.get("__slots__")
    for name, member in _members(cls):
        doc = member.__doc__ or ""
        if isinstance(slots, dict) and name in slots:
            doc = slots[name] or ""  # help() and autodoc show a __slots__ dict's values
        if not doc.strip():
            problems.append(f"{qualname}.{name} has no docstring")
        elif inspect.isfunction(member):
            missing = [p for p in _parameters(member) if p not in _names(doc)]
            if missing:
                problems.append(f"{qualname}.{name}() does not document {missing}")
    return problems


def test_help_of_websocket_names_every_constructor_parameter() -> None:
    text = pydoc.render_doc(syncws.WebSocket, renderer=pydoc.plaintext)
    parameters = _parameters(syncws.WebSocket.__init__)
    assert len(parameters) >= 24
    missing = [name for name in parameters if not re.search(rf"\b{name}\b: ", text)]
    assert not missing, f"help(syncws.WebSocket) does not describe {missing}"


def test_help_never_points_at_files_users_do_not_have() -> None:
    for qualname, obj in PUBLIC:
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
            text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
            assert "API.md" not in text and "shared/" not in text, qualname
