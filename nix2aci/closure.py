"""The runtime closure Nix hands the builder.

Input: the ``closure`` list that ``exportReferencesGraph`` writes into
``.attrs.json`` with structured attributes: one object per store path, with at
least ``path`` and ``references``.
Output: a :class:`Closure`, which answers which store paths a set of roots needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .errors import Nix2AciError


@attrs.frozen
class Closure:
    """Store paths and their references: ``{path: (referenced paths, sorted)}``."""

    references: dict[str, tuple[str, ...]]

    @classmethod
    def from_graph(cls, graph: list[dict]) -> Closure:
        """Read exportReferencesGraph's JSON list."""
        return cls({node["path"]: tuple(sorted(node["references"])) for node in graph})

    def paths_needed_by(self, roots: Iterable[str]) -> list[str]:
        """All store paths reachable from ``roots`` (roots included), sorted."""
        needed: set[str] = set()
        pending = list(roots)
        while pending:
            path = pending.pop()
            if path in needed:
                continue
            if path not in self.references:
                raise Nix2AciError(f"{path} is not in the closure Nix exported to the build")
            needed.add(path)
            pending.extend(self.references[path])
        return sorted(needed)
