"""The adversary's norms and the lp conversion rule between them."""

from __future__ import annotations

import enum
import math
import numbers

__all__ = ["Norm", "convert_radius"]


class Norm(str, enum.Enum):
    """An lp norm of the adversary's perturbation: ``"l1"``, ``"l2"`` or ``"linf"``."""

    L1 = "l1"
    L2 = "l2"
    LINF = "linf"

    @property
    def p(self) -> float:
        """The exponent p of the norm (``math.inf`` for linf)."""
        return {Norm.L1: 1.0, Norm.L2: 2.0, Norm.LINF: math.inf}[self]

    @classmethod
    def parse(cls, value: Norm | str) -> Norm:
        """Return the Norm named by ``value`` ("l1", "l2", "linf", case-insensitive)."""
        if isinstance(value, Norm):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            aliases = {"l1": "l1", "1": "l1", "l2": "l2", "2": "l2",
                       "linf": "linf", "inf": "linf", "l_inf": "linf"}
            if key in aliases:
                return cls(aliases[key])
        raise ValueError(
            f"unknown norm {value!r}; choose from {', '.join(repr(n.value) for n in cls)}"
        )

    def __str__(self) -> str:
        return self.value


def _inverse_p(norm: Norm) -> float:
    return 0.0 if norm is Norm.LINF else 1.0 / norm.p


def convert_radius(radius, from_norm: Norm | str, to_norm: Norm | str, dim: int):
    """Convert a certified radius in ``from_norm`` into one in ``to_norm`` in dimension ``dim``.

    Uses the inclusion of lp balls: ``||v||_a <= d^(1/a - 1/b) ||v||_b`` for ``b > a``, so a ball of
    radius ``R / d^(1/a - 1/b)`` in the b-norm lies inside the a-ball of radius R; for ``b < a``,
    ``||v||_a <= ||v||_b`` and the radius carries over unchanged. The result is a valid but in
    general loose certificate ([YDH+20], Section 3.5 of the spec).
    """
    a = Norm.parse(from_norm)
    b = Norm.parse(to_norm)
    if not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if b.p > a.p:
        exponent = _inverse_p(a) - _inverse_p(b)
        return radius / float(dim) ** exponent
    return radius
