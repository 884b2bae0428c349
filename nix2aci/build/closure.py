"""The runtime closure Nix hands the builder.

Input: the files ``exportReferencesGraph`` writes into the build directory of
a derivation without structured attributes, one per root, in Nix's validity
registration format: for each store path, the path, its deriver (empty), the
number of its references and the references, one per line.
Output: a :class:`Closure`, which answers which store paths a set of roots needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..errors import Nix2AciError


@attrs.frozen
class Closure:
    """Store paths and their references: ``{path: (referenced paths, sorted)}``."""

    references: dict[str, tuple[str, ...]]

    @classmethod
    def from_registrations(cls, texts: Iterable[str]) -> Closure:
        """Read exportReferencesGraph's files (their texts); a path in several of them is read once."""
        references: dict[str, tuple[str, ...]] = {}
        for text in texts:
            lines = text.splitlines()
            index = 0
            while index < len(lines):
                path, count = lines[index], lines[index + 2] if index + 2 < len(lines) else ""
                if not count.isdigit() or index + 3 + int(count) > len(lines):
                    raise Nix2AciError(f"the closure Nix exported is cut or malformed at {path!r}")
                references[path] = tuple(sorted(lines[index + 3 : index + 3 + int(count)]))
                index += 3 + int(count)
        return cls(references)

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
