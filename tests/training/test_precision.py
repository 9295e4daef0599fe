"""What a job trains in on a GPU (`precision`) and where its data lives: the rules a CPU machine
can check. bench/train_gpu.py measures them on a GPU."""

from __future__ import annotations

import pytest

from tests.training.conftest import Published, spec_dict
from training.errors import SpecError
from training.spec import parse_spec

torch = pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

from training.device import (  # noqa: E402  (after the skip: it imports torch)
    fits_on_device,
    resolve_device,
    wants_amp,
)


def test_auto_precision_follows_the_work_of_a_step() -> None:
    # The two MLPs either side of the line on the H200 (README, GPU): fp32 won at 4.7 M
    # parameters x 1024 rows a step, bf16 at 17.9 M.
    assert not wants_amp("auto", 4_743_178, 1024)
    assert wants_amp("auto", 17_874_954, 1024)
    assert not wants_amp("auto", 85_002, 64)  # every demo model: fp32
    assert wants_amp("amp", 85_002, 64) and not wants_amp("fp32", 69_304_330, 1024)


def test_precision_is_a_spec_field() -> None:
    assert parse_spec(spec_dict("mlp")).precision == "auto"
    spec = parse_spec(spec_dict("mlp", precision="amp"))
    assert spec.precision == "amp" and spec.to_dict()["precision"] == "amp"
    with pytest.raises(
        SpecError, match=r"'precision' is 'fp16'; expected one of \['auto', 'fp32', 'amp'\]"
    ):
        parse_spec(spec_dict("mlp", precision="fp16"))
    with pytest.raises(SpecError, match="'precision' is 'amp' but 'device' is 'cpu'"):
        parse_spec(spec_dict("mlp", precision="amp", device="cpu"))


def test_the_cpu_trains_in_float32_and_keeps_its_data_in_host_memory() -> None:
    setup = resolve_device("cpu", amp=True)
    assert not setup.amp and setup.description.startswith("cpu")
    assert not fits_on_device(1, torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_setup_names_its_precision() -> None:
    amp, fp32 = resolve_device("cuda", amp=True), resolve_device("cuda", amp=False)
    assert amp.amp and amp.amp_dtype in (torch.bfloat16, torch.float16)
    assert not fp32.amp and fp32.description.endswith(", fp32)")
    assert fits_on_device(1 << 20, torch.device("cuda"))


def test_a_job_records_its_precision(published: Published) -> None:
    training = published.results["mlp"].manifest.training
    assert training["precision"] == "auto" and training["device"].startswith("cpu")
