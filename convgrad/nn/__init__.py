"""Layers: thin wrappers that keep the forward cache and call the functional backward."""
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .init import manual_seed
from .module import Module, Parameter, Sequential
from .resample import Downsample, Upsample
