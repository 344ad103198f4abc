"""archlint: static analysis and linting of convolutional networks.

``archlint.analyze(model)`` returns a :class:`Report`. Importing archlint never imports
torch; the PyTorch frontend loads it only when given a torch model.
"""

from archlint.analyses.receptive_field import receptive_field
from archlint.api import analyze
from archlint.errors import ArchlintError
from archlint.fixes.apply import apply as apply
from archlint.report import Report, compare

__version__ = "0.1.0"
__all__ = ["ArchlintError", "Report", "__version__", "analyze", "compare", "receptive_field"]
