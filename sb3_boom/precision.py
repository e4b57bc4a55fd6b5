"""Precisions the networks can run in, and whether a device multiplies bfloat16 matrices natively."""

import torch as th

# Precision of the networks' forward passes: the dtype torch.autocast runs matmuls in (None: float32).
PRECISIONS: dict[str, th.dtype | None] = {"float32": None, "bfloat16": th.bfloat16}


def bfloat16_is_native(device: th.device | str) -> bool:
    """
    Whether ``device`` multiplies bf16 matrices in hardware: on a CPU, AVX512-BF16 or AMX (without
    them, torch converts bf16 to float32 and back around each matmul); on CUDA, compute capability
    8.0 or above. Other devices: assumed native.
    """
    device = th.device(device)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(th.cpu, name, lambda: False)() for name in checks)
    if device.type == "cuda":
        return th.cuda.is_bf16_supported(including_emulation=False)
    return True
