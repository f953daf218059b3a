"""Fast constructors for the frozen dataclasses the engine makes on every decision.

A frozen dataclass's own ``__init__`` sets each field through ``object.__setattr__``
(the class's ``__setattr__`` refuses), which for the dozen fields of a ``Request`` costs
about twice as much as the rest of issuing it. A builder instead fills the slots of a
*maker*: a subclass that adds no slots and sets attributes the ordinary way (so each
field is one plain slot store), then turns the instance into the class itself by
``__class__`` assignment, which Python allows between classes of the same layout. What it
returns is indistinguishable from what the class makes: of that very class, equal, frozen,
and with every slot set. Where the assignment is refused (it never is for these classes)
the builder sets the slots through their descriptors instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

_UNSET = object()


def frozen_builder(cls: type[T], fixed: dict[str, Any] | None = None) -> Callable[..., T]:
    """A keyword-only constructor for the frozen slots dataclass ``cls``.

    With ``fixed``, those fields take the values given here and every other field is a
    required argument: a field added to the class later cannot be left silently at its
    default by a caller that does not know of it.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which a builder would skip")
    maker = _maker(cls)
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls, "maker": maker, "unset": _UNSET}
    signature: list[str] = []
    body = ["    made = new(maker)" if maker else "    made = new(cls)"]
    fields = dataclasses.fields(cast(Any, cls))
    unknown = set(fixed or ()) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")

    def store(name: str, value: str) -> str:
        return f"    made.{name} = {value}" if maker else f"    set_{name}(made, {value})"

    for f in fields:
        name = f.name
        scope[f"set_{name}"] = cls.__dict__[name].__set__
        if fixed is not None:
            if name in fixed:
                scope[f"fixed_{name}"] = fixed[name]
                body.append(store(name, f"fixed_{name}"))
                continue
            signature.append(name)
        elif f.default is not dataclasses.MISSING:
            scope[f"default_{name}"] = f.default
            signature.append(f"{name}=default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"factory_{name}"] = f.default_factory
            signature.append(f"{name}=unset")
            body.append(f"    if {name} is unset:\n        {name} = factory_{name}()")
        else:
            signature.append(name)
        body.append(store(name, name))
    if maker:
        body.append("    made.__class__ = cls")
    body.append("    return made")
    head = f"def build(*, {', '.join(signature)}):" if signature else "def build():"
    source = head + "\n" + "\n".join(body) + "\n"
    namespace = dict(scope)
    exec(compile(source, f"<builder of {cls.__qualname__}>", "exec"), namespace)
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    build.__doc__ = f"Make a {cls.__name__} (see obedience.engine._builders)."
    return build


_MAKERS: dict[type[Any], type[Any] | None] = {}


def _maker(cls: type[Any]) -> type[Any] | None:
    """The maker of ``cls`` (one per class), or None if its instances cannot change class.

    The maker adds no slots, so its instances have the layout of ``cls``; it takes back
    ``object``'s own attribute setting (both ``__setattr__`` and ``__delattr__``, which
    share one type slot), so each store is a plain slot store.
    """
    if cls in _MAKERS:
        return _MAKERS[cls]
    maker: type[Any] | None = type(
        f"{cls.__name__}Maker",
        (cls,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": __name__,
            "__doc__": f"Fills a {cls.__name__} under construction (see frozen_builder).",
        },
    )
    try:
        probe = object.__new__(cast(type[Any], maker))
        probe.__class__ = cls
    except TypeError:
        maker = None
    _MAKERS[cls] = maker
    return maker
