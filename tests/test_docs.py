"""The README's op-kind table is generated from the registry and must be current."""

from archlint.docs import END, START, ops_table
from tests.conftest import ROOT


def test_readme_op_table_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == ops_table(), "run: python -m archlint.docs README.md"


def test_every_kind_documents_its_formulas():
    from archlint.ops import REGISTRY
    for name, entry in REGISTRY.items():
        for fn in (entry.macs_fn, entry.flops_fn, entry.rf_fn):
            if fn is not None and fn.__name__ not in ("_zero", "<lambda>"):
                assert fn.__doc__, (name, fn.__name__)
