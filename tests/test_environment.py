"""The installed environment keeps the promises the architecture makes."""

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_device_never_loads_tensorflow_or_tensorrt() -> None:
    loaded = _modules_after("import device, device.detections, device.sources.synthetic, device.models.bundle")
    assert not {m for m in loaded if m.split(".")[0] in {"tensorflow", "keras", "tensorrt", "pycuda", "trainer"}}


def test_import_trainer_needs_neither_tensorrt_nor_device() -> None:
    loaded = _modules_after("import trainer")
    assert not {m for m in loaded if m.split(".")[0] in {"tensorrt", "pycuda", "device"}}


def test_urllib3_is_the_genuine_package() -> None:
    from tests.check_urllib3 import main

    assert main() == 0
    import minio  # noqa: F401  (imports urllib3.PoolManager the genuine way)
    import urllib3

    assert hasattr(urllib3, "PoolManager") and "urllib3_future" not in (urllib3.__file__ or "")


def test_grafana_annotations_work_without_the_dashboard_sdk() -> None:
    """The trainer marks rollouts on a machine that only has the trainer extra installed."""
    loaded = _modules_after("import grafana.annotations, trainer.fleet.cli")
    assert "grafana_foundation_sdk" not in {m.split(".")[0] for m in loaded}
