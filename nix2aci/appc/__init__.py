"""The appc ImageManifest (spec v0.8.11) as validated models.

One module per spec concept, after appc/spec's Go ``schema/types``. The shapes,
types and patterns live in ``image-manifest.schema.json`` (which the Nix side
reads too); the modules check what a JSON Schema cannot (uniqueness, os/arch,
port ranges, isolator combinations, well-known annotation values).
"""

from .annotations import Annotation
from .app import App, EnvironmentVariable, EventHandler
from .dependencies import Dependency
from .identifiers import MANIFEST_SCHEMA, is_ac_identifier, is_ac_name
from .imageid import ImageID
from .isolators import CAPABILITIES, KNOWN_ISOLATORS, Isolator
from .labels import VALID_OS_ARCH, Label
from .manifest import ImageManifest
from .mounts import MountPoint
from .ports import Port
from .version import AC_VERSION, RELEASES

__all__ = [
    "AC_VERSION",
    "CAPABILITIES",
    "KNOWN_ISOLATORS",
    "MANIFEST_SCHEMA",
    "RELEASES",
    "VALID_OS_ARCH",
    "Annotation",
    "App",
    "Dependency",
    "EnvironmentVariable",
    "EventHandler",
    "ImageID",
    "ImageManifest",
    "Isolator",
    "Label",
    "MountPoint",
    "Port",
    "is_ac_identifier",
    "is_ac_name",
]
