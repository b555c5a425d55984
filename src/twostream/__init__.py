"""twostream: two-stream ConvNets for video action recognition (Simonyan & Zisserman, 2014)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``from twostream import Recognizer`` without importing torch on ``import twostream``
    if name in ("Recognizer", "Prediction"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'twostream' has no attribute {name!r}")
