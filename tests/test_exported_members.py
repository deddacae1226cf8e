"""The public API is what bpfnb.__all__ lists, every name presented as bpfnb's own, imported lazily."""

from __future__ import annotations

import subprocess
import sys
import types

import bpfnb


def test_all_is_sorted_and_complete():
    assert bpfnb.__all__ == sorted(bpfnb.__all__)
    values = {name: getattr(bpfnb, name) for name in dir(bpfnb)}  # imports every lazy name first
    # The layers' subpackages (bpfnb.maps, ...) appear once imported; of them only plot is API.
    layers = {name for name, value in values.items() if isinstance(value, types.ModuleType)} - {"plot"}
    public = {name for name in values if not name.startswith("_")} - layers
    assert public - {"annotations", "importlib", "TYPE_CHECKING", "Any"} == set(bpfnb.__all__)


def test_exported_objects_name_bpfnb_as_their_module():
    for name in bpfnb.__all__:
        value = getattr(bpfnb, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__ == f"bpfnb.{name}"
        else:
            assert value.__module__ == "bpfnb", name


def test_import_bpfnb_loads_no_plotting_no_arrow_no_ipython():
    heavy = ("matplotlib", "pyarrow", "IPython", "ipywidgets", "pandas")
    script = f"import sys, bpfnb; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


def test_the_doctor_command_loads_no_plotting_no_arrow_no_ipython():
    script = (
        "import sys\nfrom bpfnb.tools import cli\n"
        "cli._parser().parse_args(['doctor'])\nfrom bpfnb.tools import doctor\n"
        "print(sorted(m for m in ('matplotlib', 'pyarrow', 'IPython', 'ipywidgets') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"
