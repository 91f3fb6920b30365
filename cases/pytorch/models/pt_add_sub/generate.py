"""Writes 1/model.pt, a TorchScript add/sub module, when the repository is rendered (needs torch)."""

from pathlib import Path


def generate(model_dir):
    import torch

    class AddSub(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor):
            return a + b, a - b

    target = Path(model_dir) / "1" / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(AddSub()).save(str(target))
