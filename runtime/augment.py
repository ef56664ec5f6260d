"""Turns stored batches into model inputs on the device: whole-batch crop, flip and normalise.

Images stay uint8 on the device and become float only one batch at a time, so a dataset costs
a quarter of the memory and no PIL or DataLoader worker runs in the training loop.
"""

import torch


class BatchPreparer:
    """Prepares inputs for one dataset kind: shuffling and augmentation once per epoch, and the
    conversion to the model's float input once per batch."""

    def __init__(self, *, kind: str, augment, device: torch.device, generator: torch.Generator):
        self.kind = kind
        self.device = device
        self.generator = generator
        self.padding = augment.random_crop_padding if augment else 0
        self.flip = bool(augment and augment.horizontal_flip)
        # uint8 -> float as x * scale + shift: x / 255, then (x - mean) / std when asked. Plain
        # numbers when every channel shares them (the usual case), which is the fastest form.
        self.scale, self.shift = 1.0 / 255.0, 0.0
        if augment and augment.normalize_mean is not None:
            mean, std = augment.normalize_mean, augment.normalize_std
            if len(set(mean)) == 1 and len(set(std)) == 1:
                self.scale, self.shift = 1.0 / (255.0 * std[0]), -mean[0] / std[0]
            else:
                shape = (1, len(mean), 1, 1)
                std_t = torch.tensor(std, device=device).view(shape)
                self.scale = 1.0 / (255.0 * std_t)
                self.shift = -torch.tensor(mean, device=device).view(shape) / std_t

    def source(self, x: torch.Tensor) -> torch.Tensor:
        """What `epoch` draws from, built once per run. Images: padded, with a mirrored copy
        after them when flipping, in NHWC layout, so an epoch is one indexing pass."""
        if self.kind != "image":
            return x
        p = self.padding
        padded = torch.nn.functional.pad(x, (p, p, p, p)) if p else x
        if self.flip:
            padded = torch.cat([padded, padded.flip(3)])
        return padded.permute(0, 2, 3, 1).contiguous()

    def epoch(self, source: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """The training inputs in `order`, each cropped at its own random offset and, when
        flipping, mirrored at random: one call per epoch rather than per batch, since at batch
        sizes like 100 the per-call cost of these ops outweighs the work. Images come out in
        channels_last layout (logical shape [N, C, H, W])."""
        if self.kind != "image":
            return source[order]
        count, p = order.numel(), self.padding
        height, width = source.shape[1] - 2 * p, source.shape[2] - 2 * p
        gen, dev = self.generator, self.generator.device
        offsets = torch.randint(0, 2 * p + 1, (2, count), generator=gen, device=dev)
        index = order
        if self.flip:
            # A mirrored image's crop at a uniform random offset is a uniform random crop of
            # the mirrored image, so the mirrored copy needs no offset correction.
            mirrored = torch.rand(count, generator=gen, device=dev) < 0.5
            index = order + mirrored.to(order.device) * (source.shape[0] // 2)
        # Every window as a view [S, offset_y, offset_x, H, W, C]; indexing copies only the
        # picked ones, straight into NHWC.
        windows = source.unfold(1, height, 1).unfold(2, width, 1).permute(0, 1, 2, 4, 5, 3)
        picked = windows[index, offsets[0].to(index.device), offsets[1].to(index.device)]
        return picked.permute(0, 3, 1, 2)

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """Model input for a batch: images become normalised floats; other kinds pass through
        (vectors are float32 already, token ids stay int64 for the embedding)."""
        if self.kind != "image":
            return x
        return x.float().mul_(self.scale).add_(self.shift)

    @classmethod
    def for_inference(cls, *, info, training, device: torch.device) -> "BatchPreparer":
        """Normalises as the training settings say, never augments (no random draws)."""
        augment = training.augment if training else None
        generator = torch.Generator(device=device)
        return cls(kind=info.kind, augment=augment, device=device, generator=generator)
