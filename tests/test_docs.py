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


def test_readme_first_command_shows_a_finding():
    """The README's first command lints the demo fixture and shows an AL101 saving, exit 0.

    Hand derivation (fixtures/demo.py): block1 is a dense 3x3 conv 32->32 at 32x32, 32*32*9*1024
    = 9,437,184 MACs; depthwise 3x3 + pointwise 1x1 cost 32*9*1024 + 32*32*1024 = 1,343,488.
    block2 is the same at 16x16: 2,359,296 -> 335,872. Saved in total: 8,093,696 + 2,023,424 =
    10,117,120 (printed 10.12M). AL101 is info, so the default run exits 0.
    """
    import json

    from tests.conftest import run_cli
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = text.split("```bash\n", 1)[1].splitlines()[0]
    assert first == "pip install . && archlint fixtures/onnx/demo_cnn.onnx"
    target = first.split("archlint ", 1)[1].split()
    proc = run_cli(*target)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "AL101 [info] on 2 layers (/block1/Conv, /block2/Conv)" in proc.stdout
    assert "MACs -10.12M in total" in proc.stdout
    assert "findings: none" not in proc.stdout
    proc = run_cli(*target, "--format", "json")
    found = {f["layer"]: f["saving"]["macs"] for f in json.loads(proc.stdout)["findings"] if f["code"] == "AL101"}
    assert found == {"/block1/Conv": {"before": 9437184, "after": 1343488},
                     "/block2/Conv": {"before": 2359296, "after": 335872}}


def test_demo_fixture_is_what_its_script_writes():
    """fixtures/onnx/demo_cnn.onnx is exactly what ``python -m fixtures.demo`` builds, and small."""
    from fixtures.demo import OUT, build
    assert OUT.read_bytes() == build().SerializeToString()
    assert OUT.stat().st_size < 200 * 1024
