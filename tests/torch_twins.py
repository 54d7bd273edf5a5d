"""The built-in models (convgrad.models) written in torch, module for module, so state_dict
names and shapes match: the oracle for moving weights and whole models between the two."""


def torch_basic_block(torch, in_channels, out_channels, stride=1):
    """torch's BasicBlock as common torch code writes it (conv1, bn1, conv2, bn2, shortcut)."""
    T = torch.nn

    class BasicBlock(T.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = T.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
            self.bn1 = T.BatchNorm2d(out_channels)
            self.conv2 = T.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
            self.bn2 = T.BatchNorm2d(out_channels)
            self.shortcut = T.Sequential()
            if stride != 1 or in_channels != out_channels:
                self.shortcut = T.Sequential(T.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                             T.BatchNorm2d(out_channels))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.shortcut(x))

    return BasicBlock()


def torch_model(torch, name, in_channels=1, image_size=28, num_classes=10):
    """The torch twin of convgrad.models.build(name, ...)."""
    T = torch.nn

    def cbr(c_in, c_out):
        return [T.Conv2d(c_in, c_out, 3, padding=1, bias=False), T.BatchNorm2d(c_out), T.ReLU()]

    if name == "lenet":
        side = ((image_size - 2) // 2 - 2) // 2
        return T.Sequential(T.Conv2d(in_channels, 32, 3), T.ReLU(), T.MaxPool2d(2),
                            T.Conv2d(32, 64, 3), T.ReLU(), T.MaxPool2d(2),
                            T.Flatten(), T.Linear(64 * side * side, 128), T.ReLU(), T.Linear(128, num_classes))
    if name == "cnn":
        side = image_size // 4
        return T.Sequential(*cbr(in_channels, 32), *cbr(32, 32), T.MaxPool2d(2),
                            *cbr(32, 64), *cbr(64, 64), T.MaxPool2d(2),
                            T.Flatten(), T.Dropout(0.25), T.Linear(64 * side * side, 256), T.ReLU(), T.Dropout(0.5),
                            T.Linear(256, num_classes))
    if name == "resnet":
        return T.Sequential(*cbr(in_channels, 32), torch_basic_block(torch, 32, 32),
                            torch_basic_block(torch, 32, 64, 2), torch_basic_block(torch, 64, 128, 2),
                            T.AdaptiveAvgPool2d(1), T.Flatten(), T.Linear(128, num_classes))
    raise ValueError(name)


def randomise_statistics(model, torch, seed=0):
    """BatchNorm affine parameters and running statistics away from their (1, 0, 0, 1) start,
    so that a wrongly mapped one shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model
