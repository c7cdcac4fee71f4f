"""mesaguard: inner-alignment red teaming and bounded autonomy for project-management agents.

Subpackages, one domain concept each: :mod:`mesaguard.items`, :mod:`mesaguard.contexts`,
:mod:`mesaguard.agents`, :mod:`mesaguard.organisms`, and more (see DESIGN.md).
"""

from importlib.metadata import PackageNotFoundError, version

from ._errors import AgentError, ArtifactError, ConfigError, DataError, MesaguardError

try:
    __version__ = version("mesaguard")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "AgentError",
    "ArtifactError",
    "ConfigError",
    "DataError",
    "MesaguardError",
    "__version__",
]
