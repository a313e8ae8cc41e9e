"""The one device check behind `--device` and `execution_device`."""

import pytest
import torch

from optimum_dpruner.errors import ConfigError
from optimum_dpruner.runtime.devices import check_device


def test_cpu_passes_and_comes_back_parsed():
    assert check_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device,message", [
    ("gpu0", r"device='gpu0' is not a device name; use e\.g\. 'cpu'"),
    ("", r"device='' is not a device name"),
    pytest.param("cuda:7", r"device='cuda:7', but no cuda device is available here; use 'cpu'",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    pytest.param("cuda:99", r"device='cuda:99', but this machine has \d+ cuda device\(s\)",
                 marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
], ids=["not-a-name", "empty", "no-cuda", "index-past-the-devices"])
def test_bad_devices_name_the_argument_and_the_fix(device, message):
    with pytest.raises(ConfigError, match=message):
        check_device(device)


def test_the_argument_and_fix_are_the_callers():
    with pytest.raises(ConfigError, match=r"^--device='tpu9' is not a device name"):
        check_device("tpu9", "--device", fix="pass --device cpu.")


def test_pipeline_and_cli_share_the_check():
    from optimum_dpruner.stages import capture

    assert capture.check_device is check_device
