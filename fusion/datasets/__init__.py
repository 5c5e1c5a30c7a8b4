"""Data sets that work offline: digits and breast cancer (from scikit-learn's bundled copies)
and MNIST (from its IDX files, downloaded once and checksummed if asked).

>>> from fusion import datasets
>>> X, y = datasets.digits()
>>> X.shape
(1797, 64)
"""

from .bundled import Bunch, breast_cancer, digits
from .idx import (
    MNIST_FILES,
    MNIST_MIRRORS,
    DownloadError,
    IDXError,
    default_cache_dir,
    download_file,
    mnist,
    read_idx,
)

__all__ = [
    "MNIST_FILES", "MNIST_MIRRORS", "Bunch", "DownloadError", "IDXError", "breast_cancer",
    "default_cache_dir", "digits", "download_file", "mnist", "read_idx",
]
