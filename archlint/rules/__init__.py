"""The rule catalogue. ``RULES`` maps each code to its :class:`Rule`, in catalogue order."""

from archlint.rules.base import SEVERITIES, Finding, Rule, Saving, severity_rank
from archlint.rules.geometry import AL104, AL105, AL106, AL107, AL108
from archlint.rules.model import AL201, AL202, AL301, AL302
from archlint.rules.substitution import AL101, AL102, AL103
from archlint.rules.suppression import AL001

RULES: dict[str, Rule] = {r.code: r for r in (AL001, AL101, AL102, AL103, AL104, AL105, AL106, AL107, AL108,
                                                AL201, AL202, AL301, AL302)}

__all__ = ["RULES", "SEVERITIES", "Finding", "Rule", "Saving", "severity_rank"]
