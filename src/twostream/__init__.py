"""twostream: two-stream ConvNets for video action recognition (Simonyan & Zisserman, 2014)."""

__version__ = "0.1.0"
